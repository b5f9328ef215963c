//! Opening an authenticated SSH connection to a target over any byte stream, in bounded time.
//! An endless banner, a stalled key exchange or a silent peer cost at most `setup_timeout`
//! (russh reads the banner into a fixed buffer, so memory stays bounded too).

use std::sync::{Arc, Mutex};
use std::time::Duration;

use russh::client;
use russh::keys::PublicKey;
use tokio::io::{AsyncRead, AsyncWrite};
use tracing::{info, instrument, warn};

use crate::algorithms::preferred;
use crate::credentials::{Credentials, authenticate};
use crate::error::TargetError;
use crate::hostkey::{HostKeyError, HostKeyInfo, HostKeyPolicy, HostKeyTrust, parse_pin, verify};

/// Everything needed to log in to one target.
#[derive(Clone, Debug)]
pub struct TargetSpec {
    /// The target's name (for messages and logs; host keys are pinned per name).
    pub name: String,
    /// The account on the target.
    pub username: String,
    pub credentials: Credentials,
    /// `hostkey.openssh`, when pinned.
    pub pinned_host_key: Option<String>,
    pub policy: HostKeyPolicy,
    /// Allow legacy algorithms (SHA-1, CBC, `ssh-rsa`).
    pub insecure: bool,
    pub compression: bool,
    /// Bound for banner + key exchange, and again for authentication.
    pub setup_timeout: Duration,
    /// SSH channel window toward the edge; larger windows carry more per round trip.
    pub window_size: u32,
    /// Extra time a person gets to answer (a host-key prompt, keyboard-interactive answers),
    /// added to `setup_timeout` only for the stage that asks.
    pub interactive_timeout: Duration,
}

impl TargetSpec {
    pub fn new(
        name: impl Into<String>,
        username: impl Into<String>,
        credentials: Credentials,
    ) -> Self {
        Self {
            name: name.into(),
            username: username.into(),
            credentials,
            pinned_host_key: None,
            policy: HostKeyPolicy::AcceptOnce,
            insecure: false,
            compression: false,
            setup_timeout: Duration::from_secs(15),
            window_size: 8 * 1024 * 1024,
            interactive_timeout: Duration::from_secs(120),
        }
    }
}

/// Verifies the target's host key during the handshake and remembers what it decided.
pub struct TargetHandler {
    target: String,
    pinned: Option<PublicKey>,
    policy: HostKeyPolicy,
    outcome: Arc<Mutex<Option<Decision>>>,
}

/// What `check_server_key` decided, kept for a readable error after russh's generic one.
type Decision = Result<(HostKeyInfo, HostKeyTrust), HostKeyError>;

impl client::Handler for TargetHandler {
    type Error = russh::Error;

    async fn check_server_key(
        &mut self,
        key: &russh::keys::PublicKeyOrCertificate,
    ) -> Result<bool, Self::Error> {
        // No certificate authorities are configured, so only plain keys can be trusted.
        let russh::keys::PublicKeyOrCertificate::PublicKey { key, .. } = key else {
            return Ok(false);
        };
        let result = verify(&self.target, self.pinned.as_ref(), &self.policy, key)
            .await
            .map(|trust| (HostKeyInfo::from_key(key), trust));
        let ok = result.is_ok();
        if let Ok(mut slot) = self.outcome.lock() {
            *slot = Some(result);
        }
        Ok(ok)
    }
}

/// An authenticated connection to a target.
pub struct TargetSession {
    pub handle: client::Handle<TargetHandler>,
    pub host_key: HostKeyInfo,
    /// `AcceptedUnpinned`: the caller should pin `host_key.openssh` now and tell the user.
    pub trust: HostKeyTrust,
}

fn client_config(spec: &TargetSpec) -> client::Config {
    client::Config {
        preferred: preferred(spec.insecure, spec.compression),
        inactivity_timeout: None,
        keepalive_interval: Some(Duration::from_secs(30)),
        keepalive_max: 3,
        window_size: spec.window_size,
        ..client::Config::default()
    }
}

/// A connection whose handshake is done and whose host key is verified, nobody logged in yet:
/// what the browser terminal holds while it asks for a password (no password is typed for a
/// target whose key was refused).
pub struct TargetHandshake {
    pub handle: client::Handle<TargetHandler>,
    pub host_key: HostKeyInfo,
    /// `AcceptedUnpinned`: the caller should pin `host_key.openssh` now and tell the user.
    pub trust: HostKeyTrust,
    target: String,
}

impl TargetHandshake {
    /// The connection is still open (sshd closes one nobody logged in on after its
    /// LoginGraceTime).
    pub fn is_open(&self) -> bool {
        !self.handle.is_closed()
    }

    /// Logs in as `spec.username` with `spec.credentials`, bounded like [`connect`].
    #[instrument(skip_all, fields(target = %self.target, user = %spec.username, method = spec.credentials.method()))]
    pub async fn login(self, spec: &TargetSpec) -> Result<TargetSession, TargetError> {
        let Self {
            mut handle,
            host_key,
            trust,
            target,
        } = self;
        let auth_bound = if matches!(spec.credentials, Credentials::KeyboardInteractive(_)) {
            spec.setup_timeout + spec.interactive_timeout
        } else {
            spec.setup_timeout
        };
        let ok = tokio::time::timeout(
            auth_bound,
            authenticate(&mut handle, &target, &spec.username, &spec.credentials),
        )
        .await
        .map_err(|_| TargetError::Timeout {
            target: target.clone(),
            stage: "authentication",
            after: auth_bound,
        })??;
        if !ok {
            return Err(TargetError::AuthRejected {
                target,
                username: spec.username.clone(),
                method: spec.credentials.method(),
            });
        }
        info!(host_key = %host_key, trust = ?trust, "target session ready");
        Ok(TargetSession {
            handle,
            host_key,
            trust,
        })
    }
}

/// Handshake and host-key verification over `stream`, bounded by `setup_timeout` (plus
/// `interactive_timeout` when the policy asks someone); `spec.credentials` is not used yet.
#[instrument(skip_all, fields(target = %spec.name))]
pub async fn handshake<S>(stream: S, spec: &TargetSpec) -> Result<TargetHandshake, TargetError>
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let pinned = match spec
        .pinned_host_key
        .as_deref()
        .filter(|p| !p.trim().is_empty())
    {
        Some(line) => Some(parse_pin(line).map_err(TargetError::Credentials)?),
        None => None,
    };
    let asks_host_key = pinned.is_none() && matches!(spec.policy, HostKeyPolicy::Prompt(_));
    let outcome = Arc::new(Mutex::new(None));
    let handler = TargetHandler {
        target: spec.name.clone(),
        pinned,
        policy: spec.policy.clone(),
        outcome: outcome.clone(),
    };
    let bound = if asks_host_key {
        spec.setup_timeout + spec.interactive_timeout
    } else {
        spec.setup_timeout
    };
    let handshake = client::connect_stream(Arc::new(client_config(spec)), stream, handler);
    let connected =
        tokio::time::timeout(bound, handshake)
            .await
            .map_err(|_| TargetError::Timeout {
                target: spec.name.clone(),
                stage: "ssh handshake (banner and key exchange)",
                after: bound,
            })?;
    let decided = outcome.lock().ok().and_then(|mut slot| slot.take());
    match (connected, decided) {
        (Ok(handle), Some(Ok((host_key, trust)))) => Ok(TargetHandshake {
            handle,
            host_key,
            trust,
            target: spec.name.clone(),
        }),
        (_, Some(Err(refused))) => {
            warn!(error = %refused, "target host key refused");
            Err(refused.into())
        }
        (Err(russh::Error::Version), _) => Err(TargetError::NotSsh {
            target: spec.name.clone(),
        }),
        (Err(e), _) => Err(TargetError::Protocol(format!("handshake: {e}"))),
        (Ok(_), None) => Err(TargetError::Protocol(
            "handshake ended without a host key".into(),
        )),
    }
}

/// Handshake, host-key verification and login over `stream`.
#[instrument(skip_all, fields(target = %spec.name, user = %spec.username, method = spec.credentials.method()))]
pub async fn connect<S>(stream: S, spec: &TargetSpec) -> Result<TargetSession, TargetError>
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    handshake(stream, spec).await?.login(spec).await
}
