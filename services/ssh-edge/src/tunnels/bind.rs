//! `tcpip-forward` and `cancel-tcpip-forward`: naming, claiming and registering a forward.

use std::sync::Arc;

use phirepass_proto::authz::ClaimTunnelNameRequest;
use tracing::{info, warn};

use super::{Counters, Forward, NodeSlot, names, node, presence};
use crate::edge::{Authed, Conn};
use crate::username::Login;

/// How many random names are tried before giving up.
const RANDOM_TRIES: usize = 8;

enum Register {
    Done,
    /// (name, port) is held by another session.
    Taken,
    Failed(String),
}

/// Handles one `tcpip-forward`; `true` grants it. Every outcome is noted for the screen.
pub(crate) async fn forward(conn: &Arc<Conn>, address: &str, port: u32) -> bool {
    let Some(authed) = conn.authed.get().cloned() else {
        return false;
    };
    let shown: String = address
        .chars()
        .take(70)
        .flat_map(char::escape_debug)
        .collect();
    let strict = match &authed.login {
        Login::Menu { strict, .. } => *strict,
        Login::Relay { target, .. } => {
            info!(session = %conn.id, user = %authed.username, target, "ssh -R refused: relay login");
            return false;
        }
    };
    let (count, closed) = {
        let mut st = conn.tunnels.state();
        st.requests += 1;
        (st.forwards.len(), st.closed)
    };
    let refuse = |why: String| {
        info!(session = %conn.id, user = %authed.username, address = %shown, port, reason = %why, "ssh -R forward refused");
        conn.tunnels
            .note(format!("refused: -R {shown}:{port}: {why}"));
        false
    };
    if closed {
        return false;
    }
    let Ok(port) = u16::try_from(port) else {
        return refuse("ports go from 1 to 65535".into());
    };
    if port == 0 {
        return refuse(
            "ask for a port (80 publishes HTTP; any other port is a private alias)".into(),
        );
    }
    if count >= conn.edge.config.max_forwards {
        return refuse(format!(
            "at most {} forwards per session",
            conn.edge.config.max_forwards
        ));
    }
    if conn
        .tunnels
        .forwards()
        .iter()
        .any(|f| f.address == address && f.port == port)
    {
        return refuse("this forward is already published".into());
    }
    let node_id = match node_for(conn, port).await {
        Ok(id) => id,
        Err(why) => return refuse(why),
    };
    match pick(conn, &authed, address, port, &node_id, strict).await {
        Ok((name, fallback)) => granted(conn, &authed, &name, port, fallback),
        Err(why) => {
            drop_idle_node(conn, &node_id);
            refuse(why)
        }
    }
}

/// The granted name (registered), with why the requested one was not granted; `Err` refuses.
async fn pick(
    conn: &Conn,
    authed: &Authed,
    address: &str,
    port: u16,
    node_id: &str,
    strict: bool,
) -> Result<(String, Option<String>), String> {
    let mut fallback = None;
    if let Some(name) = names::requested(address) {
        let why = match names::invalid(&name) {
            Some(bad) => {
                let shown: String = name.chars().take(70).flat_map(char::escape_debug).collect();
                format!("requested name {shown} is invalid: {bad}")
            }
            None => match claim(conn, authed, &name, true).await? {
                Some(reason) => format!("requested name {name} is not available ({reason})"),
                None => match register(conn, authed, &name, port, node_id, address).await {
                    Register::Done => return Ok((name, None)),
                    Register::Taken => {
                        format!("requested name {name} is taken (in use by another session)")
                    }
                    Register::Failed(why) => return Err(why),
                },
            },
        };
        if strict {
            return Err(format!("{why}; strict names: no other name given"));
        }
        fallback = Some(why);
    }
    for _ in 0..RANDOM_TRIES {
        let name = names::random();
        // Reserved like a chosen name: an unreserved live name could be reserved by anyone
        // who asks for it, and so be theirs the moment this session ends (issue #14).
        if claim(conn, authed, &name, true).await?.is_some() {
            continue;
        }
        match register(conn, authed, &name, port, node_id, address).await {
            Register::Done => return Ok((name, fallback)),
            Register::Taken => continue,
            Register::Failed(why) => return Err(why),
        }
    }
    Err("no free name found; try again".into())
}

/// The node id that answers for `port`: the session's first one unless it already has a
/// forward on that port (then another, so `-R a:80 -R b:80` both work). New ids listen
/// before they are registered anywhere, so no open can arrive unanswered.
async fn node_for(conn: &Arc<Conn>, port: u16) -> Result<String, String> {
    {
        let st = conn.tunnels.state();
        if let Some(slot) = st.nodes.iter().find(|s| {
            !st.forwards
                .iter()
                .any(|f| f.node_id == s.node_id && f.port == port)
        }) {
            return Ok(slot.node_id.clone());
        }
    }
    let node_id = format!("sshr-{:016x}", rand::random::<u64>());
    let task = node::start(conn.clone(), node_id.clone()).await?;
    let mut st = conn.tunnels.state();
    if st.closed {
        task.abort();
        return Err("the session is closing".into());
    }
    st.nodes.push(NodeSlot {
        node_id: node_id.clone(),
        task,
    });
    Ok(node_id)
}

/// Stops listening on `node_id` when no forward uses it.
pub(super) fn drop_idle_node(conn: &Conn, node_id: &str) {
    let mut st = conn.tunnels.state();
    if st.forwards.iter().any(|f| f.node_id == node_id) {
        return;
    }
    st.nodes.retain(|s| {
        let keep = s.node_id != node_id;
        if !keep {
            s.task.abort();
        }
        keep
    });
}

/// `Ok(None)` when the name may be used, `Ok(Some(reason))` when not, `Err` when authz
/// could not answer.
async fn claim(
    conn: &Conn,
    authed: &Authed,
    name: &str,
    reserve: bool,
) -> Result<Option<String>, String> {
    let request = ClaimTunnelNameRequest {
        user_id: authed.user_id.clone(),
        name: name.to_owned(),
        reserve,
    };
    match conn.edge.authz.clone().claim_tunnel_name(request).await {
        Ok(reply) => {
            let reply = reply.into_inner();
            Ok((!reply.allowed).then_some(reply.reason))
        }
        Err(status) => {
            warn!(error = %status.message(), name, "claiming a tunnel name failed");
            Err("the access service is unavailable; try again later".into())
        }
    }
}

async fn register(
    conn: &Conn,
    authed: &Authed,
    name: &str,
    port: u16,
    node_id: &str,
    address: &str,
) -> Register {
    let forward = Arc::new(Forward {
        name: name.to_owned(),
        port,
        address: address.to_owned(),
        node_id: node_id.to_owned(),
        kind: names::kind(port),
        counters: Counters::default(),
    });
    let record = presence::record(conn, authed, &forward);
    match conn.edge.registry.clone().tunnel_opened(record).await {
        Ok(_) => {}
        Err(status) if status.code() == tonic::Code::AlreadyExists => return Register::Taken,
        Err(status) => {
            warn!(error = %status.message(), name, port, "registering a tunnel failed");
            return Register::Failed("the registry is unavailable; try again later".into());
        }
    }
    let mut st = conn.tunnels.state();
    st.forwards.push(forward);
    if let (Ok(mut held), Some(handle)) = (conn.edge.sessions.lock(), conn.handle.get()) {
        held.insert(conn.id.clone(), handle.clone());
    }
    Register::Done
}

fn granted(conn: &Conn, authed: &Authed, name: &str, port: u16, fallback: Option<String>) -> bool {
    let config = &conn.edge.config;
    let line = if port == 80 {
        format!("http tunnel: {}", config.tunnel_url.replace("{name}", name))
    } else {
        let host = config
            .public_host
            .clone()
            .unwrap_or_else(|| config.ssh_addr.to_string());
        format!(
            "tcp alias: {name}:{port} (reach it with: ssh -J {}@{host} -W {name}:{port} ...)",
            authed.username
        )
    };
    if let Some(why) = &fallback {
        conn.tunnels.note(format!("{why}; using {name}"));
    }
    info!(session = %conn.id, user = %authed.username, name, port, fallback = ?fallback, "ssh -R tunnel published");
    conn.tunnels.note(line);
    true
}

/// Handles one `cancel-tcpip-forward`.
pub(crate) async fn cancel(conn: &Arc<Conn>, address: &str, port: u32) -> bool {
    let Ok(port) = u16::try_from(port) else {
        return false;
    };
    let removed = {
        let mut st = conn.tunnels.state();
        let found = st
            .forwards
            .iter()
            .position(|f| f.address == address && f.port == port);
        found.map(|i| st.forwards.remove(i))
    };
    let Some(forward) = removed else {
        return false;
    };
    drop_idle_node(conn, &forward.node_id);
    presence::unregister(conn, &forward).await;
    conn.tunnels
        .note(format!("closed: {}:{}", forward.name, forward.port));
    true
}
