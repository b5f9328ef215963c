//! What the agent knows about itself right now, shared by the link (which updates it) and the
//! local HTTP server's `/healthz` and `/status` (which read it).

use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

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
    /// When the last link ended, Unix epoch milliseconds; 0 = never.
    pub disconnected_at: u64,
}

/// How long `/healthz` stays 200 without a link: after the start (the first connection is
/// still being made) and after a link ends (the agent is reconnecting; its backoff is capped
/// at 30 s, so two attempts fit).
pub const HEALTH_GRACE: Duration = Duration::from_secs(60);

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
            disconnected_at: 0,
        };
    }

    pub fn heartbeat_sent(&self, now_ms: u64) {
        self.lock().link.last_heartbeat_at = now_ms;
    }

    pub fn disconnected(&self, reason: &str) {
        let mut g = self.lock();
        g.link.connected = false;
        g.link.last_error = Some(reason.to_owned());
        g.link.disconnected_at =
            u64::try_from(phirepass_runtime::clock::now_millis()).unwrap_or_default();
    }

    /// `/healthz`'s verdict at `now_ms`: healthy while connected to a gateway, or within
    /// [`HEALTH_GRACE`] of the start (never connected yet) or of the last link's end; else why
    /// not, for the 503's body.
    pub fn health(&self, now_ms: u64) -> Result<(), String> {
        let g = self.lock();
        let link = &g.link;
        if link.connected {
            return Ok(());
        }
        let grace = u64::try_from(HEALTH_GRACE.as_millis()).unwrap_or(u64::MAX);
        let since = link.disconnected_at.max(g.status.started_at);
        if now_ms.saturating_sub(since) <= grace {
            return Ok(());
        }
        let secs = now_ms.saturating_sub(since) / 1000;
        Err(match (&link.last_error, link.connected_at) {
            (_, 0) => format!("not connected to a gateway since the start {secs} s ago"),
            (Some(error), _) => format!("not connected to a gateway for {secs} s: {error}"),
            (None, _) => format!("not connected to a gateway for {secs} s"),
        })
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    const START: u64 = 1_000_000;
    const GRACE: u64 = HEALTH_GRACE.as_millis() as u64;

    fn board() -> StatusBoard {
        StatusBoard::new(AgentStatus {
            started_at: START,
            ..AgentStatus::default()
        })
    }

    #[test]
    fn healthy_while_starting_then_not_without_a_link() {
        let board = board();
        assert_eq!(board.health(START + GRACE), Ok(()));
        let error = board.health(START + GRACE + 1000).unwrap_err();
        assert!(error.contains("since the start 61 s ago"), "{error}");
    }

    #[test]
    fn healthy_while_connected_and_while_reconnecting() {
        let board = board();
        board.connected("n1", "web-1", "wss://gw", START + 10);
        assert_eq!(board.health(START + 10 * GRACE), Ok(()));
        board.disconnected("connection reset");
        let ended = board.link().disconnected_at;
        assert!(ended > START);
        assert_eq!(board.health(ended + GRACE), Ok(()));
        let error = board.health(ended + GRACE + 5000).unwrap_err();
        assert!(error.contains("for 65 s: connection reset"), "{error}");
    }
}
