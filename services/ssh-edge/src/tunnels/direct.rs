//! Private aliases: `direct-tcpip` to `<alias>:<port>` from a management login (`ssh -J
//! alice@edge -W db:5432`, `ssh -L`). Allowed for the tunnel's owner, or when
//! `Authorize(user, alias, "tcp")` allows (a reserved name is a TUNNEL target, so grants work).
//! Then a TunnelStream to the holder's node id carries the bytes, whichever edge holds it.

use std::sync::Arc;

use phirepass_proto::authz::AuthorizeRequest;
use phirepass_proto::registry::{GetTunnelRequest, TunnelPresence};
use phirepass_tunnel::{OpenError, StreamConfig, Target};
use russh::server::{ChannelOpenHandle, Msg};
use russh::{Channel, ChannelOpenFailure};
use tracing::{Instrument, info, info_span, warn};

use super::{Counters, names, pipe};
use crate::edge::{Authed, Conn};
use crate::username::Login;

/// Decides a `direct-tcpip` open. When allowed, confirms the channel and bridges it in a task;
/// otherwise refuses it with the reason, which OpenSSH prints ("open failed: ...").
/// The decision is quick (two RPCs); the stream opens after the channel is confirmed, and a
/// failure then closes the channel.
pub(crate) async fn open_alias(
    conn: &Arc<Conn>,
    channel: Channel<Msg>,
    host: &str,
    port: u32,
    reply: ChannelOpenHandle,
) {
    match decide_open(conn, host, port).await {
        Ok((tunnel, owner, span)) => {
            reply.accept().await;
            tokio::spawn(bridge(conn.clone(), channel, tunnel, owner).instrument(span));
        }
        Err(reason) => {
            reply
                .reject(ChannelOpenFailure::Other {
                    code: ADMINISTRATIVELY_PROHIBITED,
                    reason,
                })
                .await;
        }
    }
}

/// The reason for a tunnel's own publisher (tickets say so to authz: a random name is no target).
const OWNER: &str = "owner";

/// SSH_OPEN_ADMINISTRATIVELY_PROHIBITED (RFC 4254 section 5.1).
const ADMINISTRATIVELY_PROHIBITED: u32 = 1;

async fn decide_open(
    conn: &Arc<Conn>,
    host: &str,
    port: u32,
) -> Result<(TunnelPresence, bool, tracing::Span), String> {
    let Some(authed) = conn.authed.get().cloned() else {
        return Err("not authenticated".into());
    };
    let shown: String = host.chars().take(70).flat_map(char::escape_debug).collect();
    let target = format!("{shown}:{port}");
    if !matches!(authed.login, Login::Menu { .. }) {
        info!(session = %conn.id, user = %authed.username, target, "direct-tcpip refused: relay login");
        return Err("port forwarding is only available with a management login (user@edge)".into());
    }
    let decision = decide(conn, &authed, host, port).await;
    let allowed = decision.is_ok();
    let reason = match &decision {
        Ok((_, why)) => why.clone(),
        Err(why) => why.clone(),
    };
    info!(session = %conn.id, user = %authed.username, target, allowed, reason, "tcp alias access");
    crate::audit::alias_access(
        &conn.edge,
        &conn.id,
        &authed.username,
        &target,
        allowed,
        &reason,
        &conn.client_ip(),
    )
    .await;
    let Ok((tunnel, why)) = decision else {
        // The client prints the reason too; a tunnel screen of this session also shows it.
        if conn.tunnels.requested() {
            conn.tunnels.note(format!("refused: {target}: {reason}"));
        }
        return Err(reason);
    };
    let span = info_span!("tcp_alias", session = %conn.id, user = %authed.username, alias = %tunnel.name, port);
    Ok((tunnel, why == OWNER, span))
}

/// The live tcp tunnel and why access is allowed, or why not (said once for unknown and
/// forbidden aliases, so names are not revealed).
async fn decide(
    conn: &Conn,
    authed: &Authed,
    host: &str,
    port: u32,
) -> Result<(TunnelPresence, String), String> {
    // The client typed `host`; it goes back to it escaped and bounded, like the log line.
    let shown: String = host.chars().take(70).flat_map(char::escape_debug).collect();
    let hidden = || format!("no private alias {shown}:{port} that you may reach");
    let name = host.to_ascii_lowercase();
    if names::invalid(&name).is_some() || port == 0 || port > u32::from(u16::MAX) {
        return Err(hidden());
    }
    let request = GetTunnelRequest {
        name: name.clone(),
        port,
    };
    let tunnel = match conn.edge.registry.clone().get_tunnel(request).await {
        Ok(t) => t.into_inner(),
        Err(status) if status.code() == tonic::Code::NotFound => return Err(hidden()),
        Err(status) => {
            warn!(error = %status.message(), "looking up a tunnel failed");
            return Err("the registry is unavailable".into());
        }
    };
    if tunnel.kind != "tcp" {
        return Err(hidden());
    }
    if tunnel.user_id == authed.user_id {
        return Ok((tunnel, OWNER.into()));
    }
    let request = AuthorizeRequest {
        user_id: authed.user_id.clone(),
        username: String::new(),
        target: name,
        action: "tcp".into(),
        client_ip: Some(conn.client_ip()),
        ..Default::default()
    };
    match conn.edge.authz.clone().authorize(request).await {
        Ok(reply) => {
            let reply = reply.into_inner();
            if reply.allowed {
                Ok((tunnel, reply.reason))
            } else {
                Err(hidden())
            }
        }
        Err(status) => {
            warn!(error = %status.message(), "authorize failed");
            Err("the access service is unavailable".into())
        }
    }
}

async fn bridge(conn: Arc<Conn>, channel: Channel<Msg>, tunnel: TunnelPresence, owner: bool) {
    let edge = &conn.edge;
    let Ok(port) = u16::try_from(tunnel.port) else {
        return;
    };
    let Some(authed) = conn.authed.get() else {
        return;
    };
    let mut headers = Vec::new();
    phirepass_runtime::telemetry::inject(&mut headers);
    let ask = crate::tickets::Ask {
        user_id: &authed.user_id,
        target_name: &tunnel.name,
        node_id: &tunnel.node_id,
        target: Target::Port { port },
        tunnel_owner: owner,
    };
    let stream = phirepass_tunnel::open_ticketed(
        &edge.bus,
        &edge.subjects,
        &edge.config.edge_id,
        &tunnel.node_id,
        Target::Port { port },
        headers,
        &StreamConfig::bulk(),
        |id| crate::tickets::issue(edge, &ask, id),
    )
    .await;
    let stream = match stream {
        Ok(s) => s,
        Err(error) => {
            let why = match error {
                OpenError::NodeOffline => "the tunnel went offline".to_string(),
                OpenError::Refused(reason) => reason,
                other => other.to_string(),
            };
            info!(reason = %why, "tcp alias stream not opened");
            let _ = channel.close().await;
            return;
        }
    };
    let counters = Counters::default();
    let (to_client, from_client) = pipe::bridge(stream, channel, &counters).await;
    conn.bytes_to_client
        .fetch_add(to_client, std::sync::atomic::Ordering::Relaxed);
    conn.bytes_to_target
        .fetch_add(from_client, std::sync::atomic::Ordering::Relaxed);
    info!(to_client, from_client, "tcp alias stream ended");
}
