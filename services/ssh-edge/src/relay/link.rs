//! The edge's SSH connection to a target: credentials from the vault, TCP for a direct host or a
//! TunnelStream for an agent node (held by whichever gateway), then host-key policy and login.

use std::sync::Arc;

use phirepass_proto::authz::{AuthorizeResponse, TargetKind};
use phirepass_proto::secrets::{ResolveHostAuthRequest, SetOptionRequest};
use phirepass_ssh_target::{
    Credentials, HostKeyPolicy, HostKeyTrust, TargetSession, TargetSpec, connect,
};
use phirepass_tunnel::{OpenError, Target};
use tokio::net::TcpStream;
use tracing::{info, instrument, warn};

use crate::config::UnknownHostKey;
use crate::edge::Conn;

/// An authenticated connection to a target, shared by the channels of one client connection.
pub(crate) struct TargetLink {
    pub name: String,
    pub session: TargetSession,
    /// Told to the user on the first channel (e.g. a host key accepted and pinned).
    pub notice: std::sync::Mutex<Option<String>>,
}

const HOSTKEY_OPTION: &str = "hostkey.openssh";

/// Opens the link for an allowed decision. Errors are messages for the user.
#[instrument(skip_all, fields(session = %conn.id, target = %decision.target_name))]
pub(crate) async fn open(
    conn: &Conn,
    decision: &AuthorizeResponse,
) -> Result<Arc<TargetLink>, String> {
    let edge = &conn.edge;
    let name = decision.target_name.clone();
    let auth = match edge
        .secrets
        .clone()
        .resolve_host_auth(ResolveHostAuthRequest { host: name.clone() })
        .await
    {
        Ok(auth) => auth.into_inner(),
        Err(status) if status.code() == tonic::Code::NotFound => {
            return Err(format!(
                "no login is configured for {name}: an administrator must store its credentials in the vault"
            ));
        }
        Err(status) => {
            warn!(error = %status.message(), "vault unavailable");
            return Err("the credential vault is unavailable; try again later".into());
        }
    };
    let credentials = match (auth.password, auth.identity) {
        (_, Some(identity)) if auth.method != "password" => Credentials::Key {
            openssh: identity,
            passphrase: auth.passphrase,
        },
        (Some(password), _) => Credentials::Password(password),
        (None, Some(identity)) => Credentials::Key {
            openssh: identity,
            passphrase: auth.passphrase,
        },
        (None, None) => {
            return Err(format!(
                "no password or key is configured for {name}: an administrator must store one in the vault"
            ));
        }
    };
    let username = auth
        .username
        .filter(|u| !u.is_empty())
        .or_else(|| conn.authed.get().map(|a| a.username.clone()))
        .unwrap_or_default();
    let option = |key: &str| auth.options.get(key).map(String::as_str);
    let mut spec = TargetSpec::new(name.clone(), username, credentials);
    spec.pinned_host_key = option(HOSTKEY_OPTION).map(str::to_owned);
    spec.insecure = option("insecure") == Some("true");
    spec.compression = option("compression") == Some("true");
    spec.setup_timeout = edge.config.target_timeout;
    spec.policy = match edge.config.unknown_host_key {
        UnknownHostKey::AcceptOnce => HostKeyPolicy::AcceptOnce,
        UnknownHostKey::Reject => HostKeyPolicy::Reject,
    };

    let session = match TargetKind::try_from(decision.target_kind) {
        Ok(TargetKind::Host) => {
            let tcp = tokio::time::timeout(
                edge.config.target_timeout,
                TcpStream::connect(decision.address.as_str()),
            )
            .await
            .map_err(|_| {
                format!(
                    "{name} ({}) did not accept a connection in time",
                    decision.address
                )
            })?
            .map_err(|e| format!("cannot connect to {name} ({}): {e}", decision.address))?;
            let _ = tcp.set_nodelay(true);
            connect(tcp, &spec).await
        }
        Ok(TargetKind::Node) => {
            let mut headers = Vec::new();
            phirepass_runtime::telemetry::inject(&mut headers);
            let stream = phirepass_tunnel::open(
                &edge.bus,
                &edge.subjects,
                &edge.config.edge_id,
                &decision.target_id,
                Target::Ssh,
                headers,
                &edge.stream_config,
            )
            .await
            .map_err(|e| match e {
                OpenError::NodeOffline => format!("{name} is offline (its agent is not connected)"),
                OpenError::Refused(reason) => format!("{name} refused the connection: {reason}"),
                OpenError::Timeout => format!("{name} did not answer in time"),
                other => format!("cannot reach {name}: {other}"),
            })?;
            connect(stream, &spec).await
        }
        _ => return Err(format!("{name} is not a target this edge can reach")),
    }
    .map_err(|e| e.to_string())?;

    let notice = if session.trust == HostKeyTrust::AcceptedUnpinned {
        let key = &session.host_key;
        warn!(algorithm = %key.algorithm, fingerprint = %key.fingerprint, "target host key was not pinned: accepted once and pinning it");
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
        session,
        notice: std::sync::Mutex::new(notice),
    }))
}
