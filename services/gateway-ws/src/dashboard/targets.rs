//! `GET /api/targets`: the nodes a user may reach (owned or granted), online or offline, with
//! the live ones' last heartbeat and host stats, and whether app ports can be opened
//! (`apps_enabled`: the gateway has an `APPS_DOMAIN`). The nodes page polls it.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::Json;
use axum::extract::State;
use axum::http::HeaderMap;
use phirepass_proto::registry::{self, NodeStats};
use serde_json::{Value, json};

use crate::accounts::auth::require_user;
use crate::error::GatewayError;
use crate::state::AppState;

/// A node's last heartbeat. `cpu_percent` is null until the agent has two samples;
/// `allowed_ports` (the agent's ALLOWED_PORTS) and `ssh_reachable` (its last check of
/// SSH_HOST:SSH_PORT) are null from agents too old to report them.
pub fn stats_json(s: NodeStats) -> Value {
    json!({
        "hostname": s.hostname,
        "cpu_percent": s.cpu_percent,
        "mem_total_bytes": s.mem_total_bytes,
        "mem_used_bytes": s.mem_used_bytes,
        "load": [s.load1, s.load5, s.load15],
        "uptime_secs": s.uptime_secs,
        "allowed_ports": s.allowed_ports.map(|a| a.ports),
        "ssh_reachable": s.ssh_reachable,
    })
}

pub async fn list(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
) -> Result<Json<Value>, GatewayError> {
    let user = require_user(&state, &headers).await?;
    // node id -> (name, why the user may reach it)
    let reachable: BTreeMap<String, (String, String)> =
        crate::commands::nodes::reachable(&state, &user.id, &user.username)
            .await?
            .into_iter()
            .map(|(id, n)| (id, (n.name, n.reason)))
            .collect();
    let live: BTreeMap<String, registry::NodePresence> = state
        .registry
        .clone()
        .list_nodes(registry::ListNodesRequest { user_id: None })
        .await
        .map_err(|s| GatewayError::from_status(s, "nodes"))?
        .into_inner()
        .nodes
        .into_iter()
        .filter(|n| reachable.contains_key(&n.node_id))
        .map(|n| (n.node_id.clone(), n))
        .collect();
    let mut nodes: Vec<(String, Value)> = reachable
        .into_iter()
        .map(|(id, (name, reason))| {
            let presence = live.get(&id);
            let v = json!({
                "node_id": id,
                "name": name,
                "reason": reason,
                "online": presence.is_some(),
                "last_heartbeat": presence.map(|p| p.last_heartbeat),
                "stats": presence.and_then(|p| p.stats.clone()).map(stats_json),
            });
            (name, v)
        })
        .collect();
    nodes.sort_by(|a, b| a.0.cmp(&b.0));
    let nodes: Vec<Value> = nodes.into_iter().map(|(_, v)| v).collect();
    // The dashboard offers "Open port…" only when this gateway serves app hosts.
    let apps_enabled = state.config.proxy.apps_domain.is_some();
    Ok(Json(
        json!({ "nodes": nodes, "apps_enabled": apps_enabled }),
    ))
}
