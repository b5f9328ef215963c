//! Keeps the registry's view of the nodes this gateway holds fresh.

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::Duration;

use phirepass_proto::authz::Node;
use phirepass_proto::registry::{AllowedPorts, NodeDisconnectedRequest, NodePresence};
use phirepass_tunnel::node_link::HostStats;
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;
use tracing::{Instrument, debug, warn};

use crate::state::{AppState, Kick};

/// Registry entries expire after ~45 s; refresh well inside that.
const REFRESH: Duration = Duration::from_secs(15);

/// Which agent connection the reports are about.
pub struct Identity {
    pub conn_id: String,
    pub agent_addr: String,
    pub instance: String,
    /// When the agent last sent anything (unix ms): the registry's takeover rule reads it.
    pub last_seen: Arc<AtomicI64>,
    /// Drops the connection when the registry says another one holds the node now.
    pub kick: mpsc::UnboundedSender<Kick>,
}

/// Writes to the registry come at most this often, however fast an agent sends reports.
const MIN_WRITE_INTERVAL: Duration = Duration::from_secs(1);

/// What the holder last heard from the agent: host stats and its self-report (JSON).
#[derive(Clone, Default)]
struct Report {
    stats: Option<HostStats>,
    status_json: String,
}

/// Reports one held node: connected, refreshed with its latest stats and self-report,
/// disconnected.
pub struct NodePresenceReporter {
    report: watch::Sender<Report>,
    task: JoinHandle<()>,
    state: Arc<AppState>,
    node_id: String,
}

impl NodePresenceReporter {
    pub fn start(state: Arc<AppState>, node: Node, me: Identity) -> Self {
        let (tx, mut rx) = watch::channel::<Report>(Report::default());
        let task_state = state.clone();
        let node_id = node.node_id.clone();
        let task = tokio::spawn(
            async move {
                let mut registry = task_state.registry.clone();
                let presence = |report: &Report| NodePresence {
                    node_id: node.node_id.clone(),
                    name: node.name.clone(),
                    user_id: node.user_id.clone(),
                    gateway_id: task_state.config.gateway_id.clone(),
                    connected_at: 0,
                    last_heartbeat: 0,
                    stats: report.stats.as_ref().map(stats_to_proto),
                    agent_addr: me.agent_addr.clone(),
                    conn_id: me.conn_id.clone(),
                    agent_seen_at: me.last_seen.load(Ordering::Relaxed),
                    agent_instance: me.instance.clone(),
                    agent_status_json: report.status_json.clone(),
                };
                // The claim recorded the node; this refresh re-creates it if the registry
                // was unreachable then.
                let mut first = true;
                loop {
                    if !first {
                        tokio::select! {
                            changed = rx.changed() => if changed.is_err() { break },
                            _ = tokio::time::sleep(REFRESH) => {}
                        }
                    }
                    first = false;
                    let current = rx.borrow_and_update().clone();
                    let written = tokio::time::Instant::now();
                    match registry.node_heartbeat(presence(&current)).await {
                        Ok(reply) if !reply.get_ref().accepted => {
                            warn!("another connection holds this node now; dropping this one");
                            let _ = me.kick.send(Kick {
                                reason: "another connection of this node took over after this one was silent".into(),
                                fatal: false,
                            });
                            break;
                        }
                        Ok(_) => {}
                        Err(e) => debug!(code = ?e.code(), "registry heartbeat failed"),
                    }
                    // An agent changing its report in a loop costs one write a second.
                    tokio::time::sleep_until(written + MIN_WRITE_INTERVAL).await;
                }
            }
            .in_current_span(),
        );
        Self {
            report: tx,
            task,
            state,
            node_id,
        }
    }

    pub fn update(&self, stats: HostStats) {
        self.report.send_modify(|r| r.stats = Some(stats));
    }

    /// The agent's self-report (its `status` link message, as JSON), kept with the node.
    pub fn set_status(&self, status_json: String) {
        self.report.send_modify(|r| r.status_json = status_json);
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
        cpu_percent: s.cpu().map(f64::from),
        mem_total_bytes: s.mem_total_bytes,
        mem_used_bytes: s.mem_used_bytes,
        load1: s.load1,
        load5: s.load5,
        load15: s.load15,
        uptime_secs: s.uptime_secs,
        allowed_ports: s.allowed_ports.as_ref().map(|ports| AllowedPorts {
            ports: ports.iter().copied().map(u32::from).collect(),
        }),
        ssh_reachable: s.ssh_reachable,
    }
}
