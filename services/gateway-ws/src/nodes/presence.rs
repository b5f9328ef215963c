//! Keeps the registry's view of the nodes this gateway holds fresh.

use std::sync::Arc;
use std::time::Duration;

use phirepass_proto::authz::Node;
use phirepass_proto::registry::{NodeDisconnectedRequest, NodePresence};
use phirepass_tunnel::node_link::HostStats;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tracing::{Instrument, debug, warn};

use crate::state::AppState;

/// Registry entries expire after ~45 s; refresh well inside that.
const REFRESH: Duration = Duration::from_secs(15);

/// Reports one held node: connected, refreshed with its latest stats, disconnected.
pub struct NodePresenceReporter {
    stats: watch::Sender<Option<HostStats>>,
    task: JoinHandle<()>,
    state: Arc<AppState>,
    node_id: String,
}

impl NodePresenceReporter {
    pub fn start(state: Arc<AppState>, node: Node) -> Self {
        let (tx, mut rx) = watch::channel::<Option<HostStats>>(None);
        let task_state = state.clone();
        let node_id = node.node_id.clone();
        let task = tokio::spawn(
            async move {
                let mut registry = task_state.registry.clone();
                let presence = |stats: Option<&HostStats>| NodePresence {
                    node_id: node.node_id.clone(),
                    name: node.name.clone(),
                    user_id: node.user_id.clone(),
                    gateway_id: task_state.config.gateway_id.clone(),
                    connected_at: 0,
                    last_heartbeat: 0,
                    stats: stats.map(stats_to_proto),
                };
                if let Err(e) = registry.node_connected(presence(None)).await {
                    warn!(code = ?e.code(), "registry did not record the node");
                }
                loop {
                    tokio::select! {
                        changed = rx.changed() => if changed.is_err() { break },
                        _ = tokio::time::sleep(REFRESH) => {}
                    }
                    let current = rx.borrow_and_update().clone();
                    if let Err(e) = registry.node_heartbeat(presence(current.as_ref())).await {
                        debug!(code = ?e.code(), "registry heartbeat failed");
                    }
                }
            }
            .in_current_span(),
        );
        Self {
            stats: tx,
            task,
            state,
            node_id,
        }
    }

    pub fn update(&self, stats: HostStats) {
        let _ = self.stats.send(Some(stats));
    }

    pub async fn stop(self) {
        self.task.abort();
        let req = NodeDisconnectedRequest {
            node_id: self.node_id,
            gateway_id: self.state.config.gateway_id.clone(),
        };
        if let Err(e) = self.state.registry.clone().node_disconnected(req).await {
            debug!(code = ?e.code(), "registry did not record the disconnect");
        }
    }
}

/// The registry's copy of an agent's host stats.
fn stats_to_proto(s: &HostStats) -> phirepass_proto::registry::NodeStats {
    phirepass_proto::registry::NodeStats {
        hostname: s.hostname.clone(),
        cpu_percent: f64::from(s.cpu_percent),
        mem_total_bytes: s.mem_total_bytes,
        mem_used_bytes: s.mem_used_bytes,
        load1: s.load1,
        load5: s.load5,
        load15: s.load15,
        uptime_secs: s.uptime_secs,
    }
}
