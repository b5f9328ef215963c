//! The browser terminal's SSH client: russh over a TunnelStream to the node's sshd. SSH is spoken
//! here, in the edge, so the password never crosses the bus and NATS only carries SSH ciphertext.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use phirepass_tunnel::{OpenError, Target};
use russh::client::{self, AuthResult};
use russh::keys::HashAlg;
use russh::{ChannelReadHalf, ChannelWriteHalf};
use tracing::{info, instrument};

use crate::state::AppState;

/// Time allowed for the SSH handshake and authentication with the target.
const SSH_SETUP_TIMEOUT: Duration = Duration::from_secs(20);

/// Bytes a session carried, for the registry and the dashboard.
#[derive(Default, Debug)]
pub struct Counters {
    pub bytes_in: AtomicU64,
    pub bytes_out: AtomicU64,
}

impl Counters {
    pub fn snapshot(&self) -> (u64, u64) {
        (
            self.bytes_in.load(Ordering::Relaxed),
            self.bytes_out.load(Ordering::Relaxed),
        )
    }
}

/// Why a terminal could not be opened, in words fit for the user.
#[derive(Debug)]
pub enum OpenFailure {
    RequiresPassword(String),
    Other(String),
}

pub struct Terminal {
    pub handle: client::Handle<TargetHostKey>,
    pub reader: ChannelReadHalf,
    pub writer: ChannelWriteHalf<client::Msg>,
}

/// Accepts the node's host key and logs its fingerprint. The key belongs to the sshd the
/// authenticated agent itself chose (its allowlisted SSH_HOST); per-node pinning is future work.
pub struct TargetHostKey {
    node: String,
}

impl client::Handler for TargetHostKey {
    type Error = russh::Error;

    async fn check_server_key(
        &mut self,
        key: &russh::keys::PublicKeyOrCertificate,
    ) -> Result<bool, Self::Error> {
        let russh::keys::PublicKeyOrCertificate::PublicKey { key, .. } = key else {
            return Ok(false);
        };
        info!(
            node = %self.node,
            algorithm = %key.algorithm().as_str(),
            fingerprint = %key.fingerprint(HashAlg::Sha256),
            "target host key"
        );
        Ok(true)
    }
}

/// The edges' algorithm policy toward targets (`phirepass_ssh_target::algorithms`): the
/// post-quantum hybrid first, no NIST ECDH, SHA-1 or encrypt-and-MAC, strict key exchange,
/// AES-GCM first (hardware-accelerated, fastest for bulk output); no compression.
fn ssh_config() -> client::Config {
    client::Config {
        preferred: phirepass_ssh_target::algorithms::preferred(false, false),
        inactivity_timeout: None,
        keepalive_interval: Some(Duration::from_secs(30)),
        window_size: 2 * 1024 * 1024,
        ..client::Config::default()
    }
}

/// A live SSH connection to a node's sshd, handshake done, nobody logged in yet: what the
/// browser's first `open_tunnel` (without a password) checks before anyone types a password.
pub struct Checked {
    pub node_id: String,
    handle: client::Handle<TargetHostKey>,
}

impl Checked {
    /// Still usable for a login to `node_id` (sshd closes a connection nobody logged in on
    /// after its LoginGraceTime).
    pub fn usable_for(&self, node_id: &str) -> bool {
        self.node_id == node_id && !self.handle.is_closed()
    }
}

/// Opens a stream to the node's SSH target and completes the SSH handshake: proves the node is
/// online, its agent reaches its sshd, and that what answers speaks SSH.
#[instrument(skip(state), fields(gateway = %state.config.gateway_id))]
pub async fn check_node(
    state: &AppState,
    node_id: &str,
    node_name: &str,
) -> Result<Checked, OpenFailure> {
    let mut headers = Vec::new();
    phirepass_runtime::telemetry::inject(&mut headers);
    let stream = phirepass_tunnel::open(
        &state.bus,
        &state.subjects,
        &state.config.gateway_id,
        node_id,
        Target::Ssh,
        headers,
        &state.stream_config,
    )
    .await
    .map_err(|e| OpenFailure::Other(open_error(node_name, e)))?;
    let handler = TargetHostKey {
        node: node_name.to_string(),
    };
    let handshake = client::connect_stream(Arc::new(ssh_config()), stream, handler);
    let handle = tokio::time::timeout(SSH_SETUP_TIMEOUT, handshake)
        .await
        .map_err(|_| OpenFailure::Other(format!("ssh handshake with {node_name} timed out")))?
        .map_err(|e| {
            OpenFailure::Other(format!(
                "ssh handshake with {node_name} failed: {e} (is an SSH server listening at the \
                 agent's SSH_HOST:SSH_PORT?)"
            ))
        })?;
    Ok(Checked {
        node_id: node_id.to_string(),
        handle,
    })
}

/// Words for a failed stream open: which node, and what to do about it.
fn open_error(node_name: &str, e: OpenError) -> String {
    match e {
        OpenError::NodeOffline => {
            format!("node {node_name} is offline: its agent is not connected to Phirepass")
        }
        OpenError::Refused(reason) => format!(
            "node {node_name} has no SSH server answering ({reason}): start sshd on it, or point \
             the agent's SSH_HOST and SSH_PORT at one"
        ),
        OpenError::Timeout => format!("node {node_name} did not answer in time"),
        other => format!("could not reach node {node_name}: {other}"),
    }
}

/// What the password dialog says once the node answered.
pub fn ask_for_password(node_name: &str, username: &str) -> String {
    if username.is_empty() {
        format!(
            "{node_name} is online and its SSH server answers. Log in with an account on that host."
        )
    } else {
        format!("password required for {username} on {node_name}")
    }
}

/// Logs in on a checked connection and starts a shell in a pty of `size`. A wrong password is
/// `RequiresPassword`, so the browser asks again (on a new connection: OpenSSH refuses another
/// account on the same one).
pub async fn open_terminal(
    mut checked: Checked,
    node_name: &str,
    username: &str,
    password: &str,
    size: (u32, u32),
) -> Result<Terminal, OpenFailure> {
    let setup = async {
        let handle = &mut checked.handle;
        let auth = handle
            .authenticate_password(username, password)
            .await
            .map_err(|e| OpenFailure::Other(format!("ssh authentication error: {e}")))?;
        if !matches!(auth, AuthResult::Success) {
            return Err(OpenFailure::RequiresPassword(format!(
                "authentication failed for {username} on {node_name}: wrong password?"
            )));
        }
        let channel = handle
            .channel_open_session()
            .await
            .map_err(|e| OpenFailure::Other(format!("could not open a session: {e}")))?;
        channel
            .request_pty(false, "xterm-256color", size.0, size.1, 0, 0, &[])
            .await
            .map_err(|e| OpenFailure::Other(format!("pty request failed: {e}")))?;
        channel
            .request_shell(false)
            .await
            .map_err(|e| OpenFailure::Other(format!("shell request failed: {e}")))?;
        Ok(channel.split())
    };
    let (reader, writer) = tokio::time::timeout(SSH_SETUP_TIMEOUT, setup)
        .await
        .map_err(|_| OpenFailure::Other(format!("ssh setup with {node_name} timed out")))??;
    Ok(Terminal {
        handle: checked.handle,
        reader,
        writer,
    })
}
