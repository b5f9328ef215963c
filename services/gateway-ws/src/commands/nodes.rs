//! Which nodes a user may see (owned, or granted to them or their groups), the one a request
//! names (by name or id; "unknown node" alike for a node that does not exist and one the user
//! may not see), and what the registry says about it: online or not, and the agent's
//! self-report (its declared commands).

use std::collections::BTreeMap;

use phirepass_proto::authz::{ListAccessibleTargetsRequest, ListNodesRequest, TargetKind};
use phirepass_proto::registry::{GetNodeRequest, NodePresence};
use phirepass_tunnel::command::{AgentStatus, CommandInfo};
use serde_json::{Value, json};
use tracing::debug;

use crate::error::GatewayError;
use crate::state::AppState;

/// A node the caller may see.
#[derive(Debug, Clone)]
pub struct VisibleNode {
    pub node_id: String,
    pub name: String,
    /// Why: "owner", "user grant", "group grant: <group>".
    pub reason: String,
}

/// The nodes `user_id`/`username` may see, by node id: their own, then those a grant reaches
/// (an authz without `ListAccessibleTargets` still yields the user's own nodes).
pub async fn reachable(
    state: &AppState,
    user_id: &str,
    username: &str,
) -> Result<BTreeMap<String, VisibleNode>, GatewayError> {
    let mut authz = state.authz.clone();
    let mut nodes: BTreeMap<String, VisibleNode> = authz
        .list_nodes(ListNodesRequest {
            user_id: Some(user_id.to_owned()),
        })
        .await
        .map_err(|s| GatewayError::from_status(s, "nodes"))?
        .into_inner()
        .nodes
        .into_iter()
        .map(|n| {
            let node = VisibleNode {
                node_id: n.node_id.clone(),
                name: n.name,
                reason: "owner".into(),
            };
            (n.node_id, node)
        })
        .collect();
    let request = ListAccessibleTargetsRequest {
        username: username.to_owned(),
    };
    match authz.list_accessible_targets(request).await {
        Ok(reply) => {
            for t in reply.into_inner().targets {
                let Some(target) = t.target else { continue };
                if target.kind == TargetKind::Node as i32 {
                    nodes.entry(target.id.clone()).or_insert(VisibleNode {
                        node_id: target.id,
                        name: target.name,
                        reason: t.reason,
                    });
                }
            }
        }
        Err(status) => debug!(code = ?status.code(), "accessible targets unavailable"),
    }
    Ok(nodes)
}

/// The node `wanted` (an id, else a name) among those the user may see.
pub async fn find(
    state: &AppState,
    user_id: &str,
    username: &str,
    wanted: &str,
) -> Result<VisibleNode, GatewayError> {
    let nodes = reachable(state, user_id, username).await?;
    if let Some(node) = nodes.get(wanted) {
        return Ok(node.clone());
    }
    nodes
        .into_values()
        .find(|n| n.name == wanted)
        .ok_or_else(|| GatewayError::UnknownNode(wanted.to_owned()))
}

/// The registry's entry for a node, `None` when no gateway holds it.
pub async fn presence(
    state: &AppState,
    node_id: &str,
) -> Result<Option<NodePresence>, GatewayError> {
    let request = GetNodeRequest {
        node_id: node_id.to_owned(),
    };
    match state.registry.clone().get_node(request).await {
        Ok(reply) => Ok(Some(reply.into_inner())),
        Err(status) if status.code() == tonic::Code::NotFound => Ok(None),
        Err(status) => Err(GatewayError::Unavailable(format!(
            "registry get_node: {:?}: {}",
            status.code(),
            status.message()
        ))),
    }
}

/// The agent's self-report kept with its presence (`None` from agents that send none, or an
/// unreadable one).
pub fn agent_status(presence: &NodePresence) -> Option<AgentStatus> {
    if presence.agent_status_json.is_empty() {
        return None;
    }
    match serde_json::from_str(&presence.agent_status_json) {
        Ok(status) => Some(status),
        Err(error) => {
            debug!(node_id = %presence.node_id, %error, "unreadable agent status");
            None
        }
    }
}

/// What the node's agent declares about `command`, when it is online and said so.
pub async fn manifest(state: &AppState, node_id: &str, command: &str) -> Option<CommandInfo> {
    let presence = presence(state, node_id).await.ok().flatten()?;
    agent_status(&presence)?
        .commands
        .into_iter()
        .find(|c| c.name == command)
}

/// `GET /api/nodes/{node}/status`'s body.
pub fn status_json(node: &VisibleNode, presence: Option<&NodePresence>) -> Value {
    json!({
        "node_id": node.node_id,
        "node_name": node.name,
        "online": presence.is_some(),
        "gateway_id": presence.map(|p| p.gateway_id.clone()),
        "connected_at": presence.map(|p| p.connected_at),
        "last_heartbeat": presence.map(|p| p.last_heartbeat),
        "agent": presence.and_then(agent_status),
    })
}
