//! What the agent knows about itself right now, shared by the link (which updates it) and the
//! local HTTP server's `/healthz` and `/status` (which read it).

use std::sync::{Arc, Mutex, MutexGuard};

use phirepass_tunnel::command::AgentStatus;
use serde::Serialize;

/// The link's state as `/status` shows it.
#[derive(Debug, Clone, Default, Serialize, PartialEq, Eq)]
pub struct LinkState {
    pub connected: bool,
    /// Set once a gateway accepted the token.
    pub node_id: String,
    pub node_name: String,
    pub gateway_url: String,
    /// Unix epoch milliseconds; 0 = never.
    pub connected_at: u64,
    pub last_heartbeat_at: u64,
    /// Why the last link ended, when it did.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_error: Option<String>,
}

#[derive(Debug, Default)]
struct Inner {
    status: AgentStatus,
    link: LinkState,
}

/// Cheap to clone; every clone sees the same state.
#[derive(Debug, Clone, Default)]
pub struct StatusBoard(Arc<Mutex<Inner>>);

impl StatusBoard {
    pub fn new(status: AgentStatus) -> Self {
        Self(Arc::new(Mutex::new(Inner {
            status,
            link: LinkState::default(),
        })))
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        // A panic elsewhere while holding this lock left plain data behind: keep using it.
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The self-report sent to gateways.
    pub fn status(&self) -> AgentStatus {
        self.lock().status.clone()
    }

    pub fn set_status(&self, status: AgentStatus) {
        self.lock().status = status;
    }

    pub fn link(&self) -> LinkState {
        self.lock().link.clone()
    }

    pub fn connected(&self, node_id: &str, node_name: &str, gateway_url: &str, now_ms: u64) {
        let mut g = self.lock();
        g.link = LinkState {
            connected: true,
            node_id: node_id.to_owned(),
            node_name: node_name.to_owned(),
            gateway_url: gateway_url.to_owned(),
            connected_at: now_ms,
            last_heartbeat_at: 0,
            last_error: None,
        };
    }

    pub fn heartbeat_sent(&self, now_ms: u64) {
        self.lock().link.last_heartbeat_at = now_ms;
    }

    pub fn disconnected(&self, reason: &str) {
        let mut g = self.lock();
        g.link.connected = false;
        g.link.last_error = Some(reason.to_owned());
    }
}
