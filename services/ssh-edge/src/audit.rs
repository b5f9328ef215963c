//! Audit events of the edge itself: logins refused before any access decision could be
//! asked for (a malformed username). authz records every Authorize decision on its own.

use phirepass_runtime::clock::now_millis;
use serde::Serialize;

use crate::edge::Edge;

#[derive(Serialize)]
struct RefusedLogin<'a> {
    /// Always "ssh_login_refused".
    kind: &'static str,
    ts: i64,
    allowed: bool,
    edge_id: &'a str,
    /// The username as received, escaped and cut (never raw control characters).
    login: &'a str,
    reason: &'a str,
    client_ip: &'a str,
}

pub(crate) async fn refused_login(edge: &Edge, login: &str, reason: &str, client_ip: &str) {
    let event = RefusedLogin {
        kind: "ssh_login_refused",
        ts: now_millis(),
        allowed: false,
        edge_id: &edge.config.edge_id,
        login,
        reason,
        client_ip,
    };
    append(edge, &event).await;
}

#[derive(Serialize)]
struct AliasAccess<'a> {
    /// Always "ssh_tcp_alias".
    kind: &'static str,
    ts: i64,
    allowed: bool,
    edge_id: &'a str,
    session_id: &'a str,
    username: &'a str,
    /// `alias:port` as asked (escaped, cut).
    target: &'a str,
    reason: &'a str,
    client_ip: &'a str,
}

/// A `direct-tcpip` open to a private tunnel alias: who, which alias, and the decision.
pub(crate) async fn alias_access(
    edge: &Edge,
    session_id: &str,
    username: &str,
    target: &str,
    allowed: bool,
    reason: &str,
    client_ip: &str,
) {
    let event = AliasAccess {
        kind: "ssh_tcp_alias",
        ts: now_millis(),
        allowed,
        edge_id: &edge.config.edge_id,
        session_id,
        username,
        target,
        reason,
        client_ip,
    };
    append(edge, &event).await;
}

async fn append(edge: &Edge, event: &impl Serialize) {
    let payload = match serde_json::to_vec(event) {
        Ok(p) => bytes::Bytes::from(p),
        Err(error) => {
            tracing::error!(%error, "audit event not encoded");
            return;
        }
    };
    if let Err(error) = edge
        .events
        .append(&edge.config.audit_subject, payload)
        .await
    {
        tracing::error!(%error, subject = %edge.config.audit_subject, "audit event not stored");
    }
}
