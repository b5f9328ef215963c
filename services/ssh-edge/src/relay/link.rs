//! The edge's SSH connection to a target: credentials from the vault, TCP for a direct host or a
//! TunnelStream for an agent node (held by whichever gateway), then host-key policy and login.
//! [`plan`] reads the vault; [`connect_link`] connects with a finished [`TargetSpec`], so the
//! login-time passthrough (`relay::passthrough`) can supply the user's answers instead.
//! The vault's login is used only for the account it belongs to ([`Plan::as_account`]): any
//! other account the user types the target's own password for.

use std::sync::Arc;

use phirepass_proto::authz::{AuthorizeResponse, TargetKind};
use phirepass_proto::secrets::{ResolveHostAuthRequest, SetOptionRequest};
use phirepass_ssh_target::{
    Credentials, HostKeyError, HostKeyPolicy, HostKeyTrust, TargetError, TargetSession, TargetSpec,
    connect,
};
use phirepass_tunnel::{OpenError, Target};
use tokio::net::TcpStream;
use tracing::{info, instrument, warn};

use crate::config::UnknownHostKey;
use crate::edge::Conn;

/// An authenticated connection to a target, shared by the channels of one client connection.
pub(crate) struct TargetLink {
    pub name: String,
    /// The account on the target this link is logged in as.
    pub account: String,
    /// The account the vault names for the target (empty: none), for later Authorize calls.
    pub configured: String,
    pub session: TargetSession,
    /// Told to the user on the first channel (e.g. a host key accepted and pinned).
    pub notice: std::sync::Mutex<Option<String>>,
}

const HOSTKEY_OPTION: &str = "hostkey.openssh";

/// What the vault holds for logging in to one target.
pub(crate) struct Plan {
    pub name: String,
    /// The account to log in as; the stored credentials, if any, belong to it.
    pub username: String,
    /// The account the vault names (`auth.username`), if any.
    pub configured: Option<String>,
    /// `None`: nothing stored, the user has to answer the target's prompts.
    pub credentials: Option<Credentials>,
    pub pinned_host_key: Option<String>,
    insecure: bool,
    compression: bool,
}

impl Plan {
    /// The plan for `account`: the stored credentials stay only if they are that account's.
    pub fn for_account(mut self, account: &str) -> Self {
        if !account.is_empty() && account != self.username {
            self.username = account.to_owned();
            self.credentials = None;
        }
        self
    }

    /// The vault's account for Authorize (`configured_login`); empty when none.
    pub fn configured_login(&self) -> String {
        self.configured.clone().unwrap_or_default()
    }

    /// The user must be asked something before the target can be used.
    pub fn needs_user(&self, policy: UnknownHostKey) -> bool {
        self.credentials.is_none()
            || (policy == UnknownHostKey::Prompt && self.pinned_host_key.is_none())
    }

    pub fn spec(&self, conn: &Conn, credentials: Credentials, policy: HostKeyPolicy) -> TargetSpec {
        let mut spec = TargetSpec::new(self.name.clone(), self.username.clone(), credentials);
        spec.pinned_host_key = self.pinned_host_key.clone();
        spec.insecure = self.insecure;
        spec.compression = self.compression;
        spec.setup_timeout = conn.edge.config.target_timeout;
        spec.policy = policy;
        spec
    }
}

/// Reads the target's login from the vault; `user` (the phirepass username) is the target
/// account when the vault names none. Errors are messages for the user.
pub(crate) async fn plan(conn: &Conn, target: &str, user: &str) -> Result<Plan, String> {
    let name = target.to_owned();
    let auth = match conn
        .edge
        .secrets
        .clone()
        .resolve_host_auth(ResolveHostAuthRequest { host: name.clone() })
        .await
    {
        Ok(auth) => Some(auth.into_inner()),
        Err(status) if status.code() == tonic::Code::NotFound => None,
        Err(status) => {
            warn!(error = %status.message(), "vault unavailable");
            return Err("the credential vault is unavailable; try again later".into());
        }
    };
    let Some(auth) = auth else {
        return Ok(Plan {
            username: user.to_owned(),
            configured: None,
            name,
            credentials: None,
            pinned_host_key: None,
            insecure: false,
            compression: false,
        });
    };
    let credentials = match (auth.password, auth.identity) {
        (_, Some(identity)) if auth.method != "password" => Some(Credentials::Key {
            openssh: identity,
            passphrase: auth.passphrase,
        }),
        (Some(password), _) => Some(Credentials::Password(password)),
        (None, Some(identity)) => Some(Credentials::Key {
            openssh: identity,
            passphrase: auth.passphrase,
        }),
        (None, None) => None,
    };
    // The vault's account, else the user's own phirepass username.
    let configured = auth.username.filter(|u| !u.is_empty());
    let username = configured.clone().unwrap_or_else(|| user.to_owned());
    let option = |key: &str| auth.options.get(key).map(String::as_str);
    Ok(Plan {
        name,
        username,
        configured,
        credentials,
        pinned_host_key: option(HOSTKEY_OPTION)
            .filter(|p| !p.trim().is_empty())
            .map(str::to_owned),
        insecure: option("insecure") == Some("true"),
        compression: option("compression") == Some("true"),
    })
}

fn own_username(conn: &Conn) -> String {
    conn.authed
        .get()
        .map(|a| a.username.clone())
        .unwrap_or_default()
}

/// Opens the link for an allowed decision, when nobody can be asked anything (a channel of
/// the management screen, or a login that skipped the passthrough). Errors are for the user.
#[instrument(skip_all, fields(session = %conn.id, target = %decision.target_name))]
pub(crate) async fn open(
    conn: &Conn,
    decision: &AuthorizeResponse,
) -> Result<Arc<TargetLink>, String> {
    let user = own_username(conn);
    let plan = plan(conn, &decision.target_name, &user)
        .await?
        .for_account(&decision.login);
    let name = &plan.name;
    let Some(credentials) = plan.credentials.clone() else {
        let account = &plan.username;
        return Err(format!(
            "no login is stored for {account} on {name}: log in as `{}` to type its password, or an administrator must store its credentials in the vault",
            crate::username::relay_login(&user, name, Some(account))
        ));
    };
    let (policy, prompt) = match conn.edge.config.unknown_host_key {
        UnknownHostKey::AcceptOnce => (HostKeyPolicy::AcceptOnce, false),
        UnknownHostKey::Reject => (HostKeyPolicy::Reject, false),
        UnknownHostKey::Prompt => (HostKeyPolicy::Reject, true),
    };
    let spec = plan.spec(conn, credentials, policy);
    let configured = plan.configured_login();
    connect_link(conn, decision, &spec, &configured)
        .await
        .map_err(|e| match e {
        LinkError::Target(TargetError::HostKey(unknown @ HostKeyError::Unknown { .. }))
            if prompt =>
        {
            format!(
                "{unknown}. This session cannot ask you to confirm it: connect with `ssh {user}:{name}@<edge>` to answer the prompt, or an administrator must pin hostkey.openssh or set SSH_EDGE_UNKNOWN_HOSTKEY=accept-once"
            )
        }
        other => describe(other, &user, decision),
    })
}

/// The user's message for a failed link: a refused account says which account was tried and
/// the exact login that picks another.
pub(crate) fn describe(error: LinkError, user: &str, decision: &AuthorizeResponse) -> String {
    let LinkError::Target(TargetError::AuthRejected {
        target,
        username,
        method,
    }) = &error
    else {
        return error.to_string();
    };
    let others: Vec<&String> = decision.logins.iter().filter(|l| *l != username).collect();
    let choose = match others.first() {
        Some(first) => format!(
            "to log in as another account your grants allow ({}), log in as `{}`",
            others
                .iter()
                .map(|s| s.as_str())
                .collect::<Vec<_>>()
                .join(", "),
            crate::username::relay_login(user, target, Some(first))
        ),
        None => format!(
            "to log in as another account, log in as `{}` (USER:TARGET:ACCOUNT; a grant must allow it)",
            crate::username::relay_login(user, target, Some("ACCOUNT"))
        ),
    };
    format!("{target} refused the {method} login as {username:?}; {choose}")
}

/// Why a link could not be opened; shown to the user.
#[derive(Debug, thiserror::Error)]
pub(crate) enum LinkError {
    #[error("{0}")]
    Reach(String),
    #[error(transparent)]
    Target(#[from] TargetError),
}

/// Reaches the target, verifies its host key, logs in with `spec`, and pins a newly accepted
/// host key.
#[instrument(skip_all, fields(session = %conn.id, target = %decision.target_name))]
pub(crate) async fn connect_link(
    conn: &Conn,
    decision: &AuthorizeResponse,
    spec: &TargetSpec,
    configured: &str,
) -> Result<Arc<TargetLink>, LinkError> {
    let edge = &conn.edge;
    let name = spec.name.clone();
    let session = match TargetKind::try_from(decision.target_kind) {
        Ok(TargetKind::Host) => {
            let tcp = tokio::time::timeout(
                edge.config.target_timeout,
                TcpStream::connect(decision.address.as_str()),
            )
            .await
            .map_err(|_| {
                LinkError::Reach(format!(
                    "{name} ({}) did not accept a connection in time",
                    decision.address
                ))
            })?
            .map_err(|e| {
                LinkError::Reach(format!(
                    "cannot connect to {name} ({}): {e}",
                    decision.address
                ))
            })?;
            let _ = tcp.set_nodelay(true);
            connect(tcp, spec).await
        }
        Ok(TargetKind::Node) => {
            let mut headers = Vec::new();
            phirepass_runtime::telemetry::inject(&mut headers);
            let ask = crate::tickets::Ask {
                user_id: &decision.user_id,
                target_name: &decision.target_id,
                node_id: &decision.target_id,
                target: Target::Ssh,
                tunnel_owner: false,
            };
            let stream = phirepass_tunnel::open_ticketed(
                &edge.bus,
                &edge.subjects,
                &edge.config.edge_id,
                &decision.target_id,
                Target::Ssh,
                headers,
                &edge.stream_config,
                |id| crate::tickets::issue(edge, &ask, id),
            )
            .await
            .map_err(|e| {
                LinkError::Reach(match e {
                    OpenError::NodeOffline => {
                        format!("{name} is offline (its agent is not connected)")
                    }
                    OpenError::Refused(reason) => {
                        format!("{name} refused the connection: {reason}")
                    }
                    OpenError::Timeout => format!("{name} did not answer in time"),
                    other => format!("cannot reach {name}: {other}"),
                })
            })?;
            connect(stream, spec).await
        }
        _ => {
            return Err(LinkError::Reach(format!(
                "{name} is not a target this edge can reach"
            )));
        }
    }?;

    let notice = if session.trust == HostKeyTrust::AcceptedUnpinned {
        let key = &session.host_key;
        warn!(algorithm = %key.algorithm, fingerprint = %key.fingerprint, policy = ?spec.policy, "target host key was not pinned: accepted and pinning it");
        let pinned = edge
            .secrets
            .clone()
            .set_option(SetOptionRequest {
                host: name.clone(),
                key: HOSTKEY_OPTION.into(),
                value: key.openssh.clone(),
            })
            .await;
        Some(match pinned {
            Ok(_) => format!(
                "phirepass: the host key of {name} was not pinned; accepted it and pinned it now: {key}\r\n"
            ),
            Err(status) => {
                warn!(error = %status.message(), "pinning the target host key failed");
                format!(
                    "phirepass: the host key of {name} is not pinned; accepted it once (pinning failed): {key}\r\n"
                )
            }
        })
    } else {
        None
    };
    info!(host_key = %session.host_key, "relay link open");
    Ok(Arc::new(TargetLink {
        name,
        account: spec.username.clone(),
        configured: configured.to_owned(),
        session,
        notice: std::sync::Mutex::new(notice),
    }))
}
