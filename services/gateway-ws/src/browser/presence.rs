//! Keeps the registry's view of this gateway's browser sessions (terminals) fresh.

use std::sync::Arc;
use std::time::Duration;

use phirepass_proto::registry::{SessionClosedRequest, SessionPresence};
use tokio::task::JoinHandle;
use tracing::{Instrument, debug, warn};

use crate::browser::terminal::Counters;
use crate::state::AppState;

/// Sessions refresh often: the refresh carries the byte counts the dashboard shows.
const SESSION_REFRESH: Duration = Duration::from_secs(5);

/// Reports one browser session (a terminal) to the registry until dropped via `close`.
pub struct SessionReporter {
    task: JoinHandle<()>,
    state: Arc<AppState>,
    session_id: String,
}

impl SessionReporter {
    pub fn start(state: Arc<AppState>, session: SessionPresence, counters: Arc<Counters>) -> Self {
        let session_id = session.session_id.clone();
        let task_state = state.clone();
        let task = tokio::spawn(
            async move {
                let mut registry = task_state.registry.clone();
                if let Err(e) = registry.session_opened(session.clone()).await {
                    warn!(code = ?e.code(), "registry did not record the session");
                }
                loop {
                    tokio::time::sleep(SESSION_REFRESH).await;
                    let mut s = session.clone();
                    (s.bytes_in, s.bytes_out) = counters.snapshot();
                    if let Err(e) = registry.session_heartbeat(s).await {
                        debug!(code = ?e.code(), "session heartbeat failed");
                    }
                }
            }
            .in_current_span(),
        );
        Self {
            task,
            state,
            session_id,
        }
    }

    pub async fn close(self) {
        self.task.abort();
        let req = SessionClosedRequest {
            session_id: self.session_id,
        };
        if let Err(e) = self.state.registry.clone().session_closed(req).await {
            debug!(code = ?e.code(), "registry did not record the session end");
        }
    }
}
