//! Status endpoints: `/version`, `/stats` (public, counts only) and the logged-in views
//! `/api/nodes` and `/api/connections`, which span every gateway instance via the registry.

use std::sync::Arc;

use axum::Json;
use axum::extract::State;
use axum::http::HeaderMap;
use phirepass_proto::registry::{ListNodesRequest, ListSessionsRequest};
use serde_json::{Value, json};

use crate::accounts::auth::require_user;
use crate::error::GatewayError;
use crate::state::AppState;

pub async fn version(State(state): State<Arc<AppState>>) -> Json<Value> {
    Json(json!({
        "name": "phirepass-gateway-ws",
        "version": env!("CARGO_PKG_VERSION"),
        "gateway_id": state.config.gateway_id,
    }))
}

pub async fn stats(State(state): State<Arc<AppState>>) -> Json<Value> {
    let mut registry = state.registry.clone();
    // Cluster-wide counts are best effort: a registry outage must not hide this gateway's own stats.
    let nodes = registry
        .list_nodes(ListNodesRequest { user_id: None })
        .await
        .map(|r| r.into_inner().nodes.len())
        .ok();
    let sessions = registry
        .list_sessions(ListSessionsRequest::default())
        .await
        .map(|r| r.into_inner().sessions.len())
        .ok();
    Json(json!({
        "gateway_id": state.config.gateway_id,
        "uptime_secs": state.started_at.elapsed().as_secs(),
        "process": process_stats(),
        "local": {
            "nodes": state.nodes().len(),
            "connections": state.web().len(),
        },
        "cluster": { "nodes": nodes, "sessions": sessions },
    }))
}

/// The caller's own connected nodes, across every gateway, with last heartbeat and stats.
pub async fn nodes(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
) -> Result<Json<Value>, GatewayError> {
    let user = require_user(&state, &headers).await?;
    let nodes = state
        .registry
        .clone()
        .list_nodes(ListNodesRequest {
            user_id: Some(user.id),
        })
        .await
        .map_err(|s| GatewayError::from_status(s, "nodes"))?
        .into_inner()
        .nodes;
    let list: Vec<Value> = nodes
        .into_iter()
        .map(|n| {
            json!({
                "node_id": n.node_id,
                "name": n.name,
                "gateway_id": n.gateway_id,
                "connected_at": n.connected_at,
                "last_heartbeat": n.last_heartbeat,
                "stats": n.stats.map(|s| json!({
                    "hostname": s.hostname,
                    "cpu_percent": s.cpu_percent,
                    "mem_total_bytes": s.mem_total_bytes,
                    "mem_used_bytes": s.mem_used_bytes,
                    "load": [s.load1, s.load5, s.load15],
                    "uptime_secs": s.uptime_secs,
                })),
            })
        })
        .collect();
    Ok(Json(json!({ "nodes": list })))
}

/// The caller's active terminal sessions across every gateway, plus their open connections here.
pub async fn connections(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
) -> Result<Json<Value>, GatewayError> {
    let user = require_user(&state, &headers).await?;
    let sessions = state
        .registry
        .clone()
        .list_sessions(ListSessionsRequest {
            user_id: Some(user.id.clone()),
            node_id: None,
        })
        .await
        .map_err(|s| GatewayError::from_status(s, "sessions"))?
        .into_inner()
        .sessions;
    let sessions: Vec<Value> = sessions
        .into_iter()
        .filter(|s| s.user_id == user.id)
        .map(|s| {
            json!({
                "session_id": s.session_id,
                "node_id": s.node_id,
                "gateway_id": s.gateway_id,
                "started_at": s.started_at,
                "last_seen": s.last_seen,
                "bytes_in": s.bytes_in,
                "bytes_out": s.bytes_out,
            })
        })
        .collect();
    let local: Vec<Value> = state
        .web()
        .values()
        .filter(|c| c.user_id == user.id)
        .map(|c| json!(c))
        .collect();
    Ok(Json(json!({ "sessions": sessions, "connections": local })))
}

/// Resident memory and threads from /proc; absent fields on systems without it.
fn process_stats() -> Value {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.split_whitespace().next())
            .and_then(|v| v.parse::<u64>().ok())
    };
    json!({
        "pid": std::process::id(),
        "rss_bytes": field("VmRSS:").map(|kb| kb * 1024),
        "threads": field("Threads:"),
    })
}
