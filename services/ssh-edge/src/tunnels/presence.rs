//! Tunnels in the registry: refreshed while the session lives, removed on cancel and when the
//! session ends (a dead edge's records expire by TTL).

use std::sync::Arc;

use phirepass_proto::registry::{TunnelClosedRequest, TunnelPresence};
use tracing::{info, warn};

use super::Forward;
use crate::edge::{Authed, Conn};

pub(super) fn record(conn: &Conn, authed: &Authed, forward: &Forward) -> TunnelPresence {
    let (bytes_in, bytes_out, connections) = forward.counts();
    TunnelPresence {
        name: forward.name.clone(),
        port: u32::from(forward.port),
        kind: forward.kind.into(),
        node_id: forward.node_id.clone(),
        edge_id: conn.edge.config.edge_id.clone(),
        session_id: conn.id.clone(),
        user_id: authed.user_id.clone(),
        username: authed.username.clone(),
        client_ip: conn.client_ip(),
        started_at: 0,
        last_seen: 0,
        bytes_in,
        bytes_out,
        connections,
    }
}

pub(super) async fn unregister(conn: &Conn, forward: &Forward) {
    let request = TunnelClosedRequest {
        name: forward.name.clone(),
        port: u32::from(forward.port),
        session_id: conn.id.clone(),
    };
    if let Err(status) = conn.edge.registry.clone().tunnel_closed(request).await {
        warn!(error = %status.message(), name = %forward.name, port = forward.port, "unregistering a tunnel failed");
    }
    let (bytes_in, bytes_out, connections) = forward.counts();
    info!(session = %conn.id, name = %forward.name, port = forward.port, bytes_in, bytes_out, connections, "ssh -R tunnel closed");
}

/// Refreshes every forward; one now held by another session (ours expired) is dropped.
pub(crate) async fn heartbeat(conn: &Conn) {
    let Some(authed) = conn.authed.get() else {
        return;
    };
    for forward in conn.tunnels.forwards() {
        let reply = conn
            .edge
            .registry
            .clone()
            .tunnel_heartbeat(record(conn, authed, &forward))
            .await;
        match reply {
            Ok(r) if r.get_ref().accepted => {}
            Ok(_) => lost(conn, &forward),
            Err(status) => {
                warn!(error = %status.message(), name = %forward.name, "tunnel heartbeat failed");
            }
        }
    }
}

fn lost(conn: &Conn, forward: &Arc<Forward>) {
    warn!(session = %conn.id, name = %forward.name, port = forward.port, "tunnel taken over after its record expired: dropped");
    {
        let mut st = conn.tunnels.state();
        st.forwards.retain(|f| !Arc::ptr_eq(f, forward));
    }
    super::bind::drop_idle_node(conn, &forward.node_id);
    conn.tunnels.note(format!(
        "lost: {}:{} (the registry gave it to another session)",
        forward.name, forward.port
    ));
}

/// The session ended: stop answering opens, then forget every forward.
pub(crate) async fn closed(conn: &Conn) {
    let (forwards, requested) = {
        let mut st = conn.tunnels.state();
        st.closed = true;
        for slot in st.nodes.drain(..) {
            slot.task.abort();
        }
        (std::mem::take(&mut st.forwards), st.requests > 0)
    };
    if !requested {
        return;
    }
    // Registered for kicks on its first forward (management logins never relay).
    if let Ok(mut held) = conn.edge.sessions.lock() {
        held.remove(&conn.id);
    }
    let all = forwards.iter().map(|f| unregister(conn, f));
    futures_util::future::join_all(all).await;
}
