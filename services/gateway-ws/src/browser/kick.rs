//! Ending a browser terminal from the dashboard. The admin's gateway publishes the session id on
//! `Subjects::session_kick()`; every gateway listens, and the one holding that terminal ends it.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures_util::StreamExt;
use tokio::sync::oneshot;
use tracing::{info, warn};

use crate::error::GatewayError;
use crate::state::AppState;

/// What the user sees when an admin ends their terminal.
pub const KICKED: &str = "ended by an administrator";

/// A running terminal's place in the kick table; dropping it removes the entry.
pub struct KickSlot {
    state: Arc<AppState>,
    session_id: String,
}

impl KickSlot {
    /// Registers `session_id`; the receiver fires when somebody kicks it.
    pub fn register(state: Arc<AppState>, session_id: &str) -> (Self, oneshot::Receiver<()>) {
        let (tx, rx) = oneshot::channel();
        state.terminals().insert(session_id.to_string(), tx);
        let slot = Self {
            state,
            session_id: session_id.to_string(),
        };
        (slot, rx)
    }
}

impl Drop for KickSlot {
    fn drop(&mut self) {
        self.state.terminals().remove(&self.session_id);
    }
}

/// Asks every gateway to end `session_id`.
pub async fn publish(state: &AppState, session_id: &str) -> Result<(), GatewayError> {
    state
        .bus
        .publish(
            &state.subjects.session_kick(),
            Vec::new(),
            Bytes::copy_from_slice(session_id.as_bytes()),
        )
        .await
        .map_err(|e| GatewayError::Upstream(format!("kick: {e}")))
}

/// Listens for kicks for as long as the gateway runs; resubscribes if the bus drops it.
pub async fn listen(state: Arc<AppState>) {
    let subject = state.subjects.session_kick();
    loop {
        match state.bus.subscribe(&subject).await {
            Ok(mut sub) => {
                while let Some(msg) = sub.next().await {
                    let Ok(id) = std::str::from_utf8(&msg.payload) else {
                        continue;
                    };
                    if let Some(tx) = state.terminals().remove(id) {
                        info!(session = %id, "terminal kicked");
                        let _ = tx.send(());
                    }
                }
                warn!("kick subscription ended; resubscribing");
            }
            Err(e) => warn!(error = %e, "cannot subscribe to kicks; retrying"),
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}
