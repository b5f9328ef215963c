//! Relay sessions in the registry (`edge_kind: "ssh"`), their heartbeats, and kicks: every edge
//! listens on the kick subject and ends the session if it holds it.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use futures_util::StreamExt;
use phirepass_proto::authz::AuthorizeResponse;
use phirepass_proto::registry::{SessionClosedRequest, SessionPresence};
use russh::Disconnect;
use tracing::{info, warn};

use crate::edge::{Conn, Edge};

/// Registers the connection's session on its first relayed channel.
pub(crate) async fn opened(conn: &Conn, decision: &AuthorizeResponse) {
    let Some(authed) = conn.authed.get() else {
        return;
    };
    let presence = SessionPresence {
        session_id: conn.id.clone(),
        user_id: authed.user_id.clone(),
        username: authed.username.clone(),
        node_id: decision.target_id.clone(),
        gateway_id: conn.edge.config.edge_id.clone(),
        started_at: 0,
        last_seen: 0,
        bytes_in: 0,
        bytes_out: 0,
        target_name: decision.target_name.clone(),
        edge_kind: "ssh".into(),
        client_ip: conn.client_ip(),
    };
    if conn.presence.set(presence.clone()).is_err() {
        return;
    }
    if let (Ok(mut held), Some(handle)) = (conn.edge.sessions.lock(), conn.handle.get()) {
        held.insert(conn.id.clone(), handle.clone());
    }
    crate::relay::revocation::hold_relay(conn, decision);
    if let Err(status) = conn.edge.registry.clone().session_opened(presence).await {
        warn!(error = %status.message(), session = %conn.id, "registering the session failed");
    }
}

fn with_counters(conn: &Conn) -> Option<SessionPresence> {
    let mut p = conn.presence.get()?.clone();
    p.bytes_in = conn.bytes_to_target.load(Ordering::Relaxed);
    p.bytes_out = conn.bytes_to_client.load(Ordering::Relaxed);
    Some(p)
}

pub(crate) async fn heartbeat(conn: &Conn) {
    let Some(p) = with_counters(conn) else {
        return;
    };
    if let Err(status) = conn.edge.registry.clone().session_heartbeat(p).await {
        warn!(error = %status.message(), session = %conn.id, "session heartbeat failed");
    }
}

pub(crate) async fn closed(conn: &Conn) {
    // Every authenticated connection is held for access re-checks, relaying or not.
    crate::relay::revocation::release(conn);
    if conn.presence.get().is_none() {
        return;
    }
    if let Ok(mut held) = conn.edge.sessions.lock() {
        held.remove(&conn.id);
    }
    let request = SessionClosedRequest {
        session_id: conn.id.clone(),
    };
    if let Err(status) = conn.edge.registry.clone().session_closed(request).await {
        warn!(error = %status.message(), session = %conn.id, "unregistering the session failed");
    }
    info!(
        session = %conn.id,
        bytes_to_target = conn.bytes_to_target.load(Ordering::Relaxed),
        bytes_to_client = conn.bytes_to_client.load(Ordering::Relaxed),
        "relay session closed"
    );
}

/// Ends sessions named on the kick subject, if this instance holds them.
pub(crate) async fn watch_kicks(edge: Arc<Edge>) {
    let subject = edge.subjects.session_kick();
    let mut sub = match edge.bus.subscribe(&subject).await {
        Ok(sub) => sub,
        Err(error) => {
            warn!(%error, subject, "cannot subscribe to session kicks");
            return;
        }
    };
    while let Some(msg) = sub.next().await {
        let Ok(id) = std::str::from_utf8(&msg.payload) else {
            continue;
        };
        let handle = edge.sessions.lock().ok().and_then(|s| s.get(id).cloned());
        if let Some(handle) = handle {
            info!(session = id, "session kicked");
            let _ = handle
                .disconnect(
                    Disconnect::ByApplication,
                    "phirepass: this session was ended by an administrator".into(),
                    "en".into(),
                )
                .await;
        }
    }
}
