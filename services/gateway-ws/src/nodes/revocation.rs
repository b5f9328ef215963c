//! Drops held agents whose node token was revoked or expired, within a few seconds.

use std::sync::Arc;

use phirepass_proto::authz::CheckTokensRequest;
use tracing::{debug, warn};

use crate::state::{AppState, Kick};

/// One batched CheckTokens call per interval covers every agent this instance holds.
pub async fn watch_tokens(state: Arc<AppState>) {
    let mut tick = tokio::time::interval(state.config.token_check_interval);
    loop {
        tick.tick().await;
        let token_ids: Vec<String> = state.nodes().values().map(|n| n.token_id.clone()).collect();
        if token_ids.is_empty() {
            continue;
        }
        let invalid = match state
            .authz
            .clone()
            .check_tokens(CheckTokensRequest { token_ids })
            .await
        {
            Ok(r) => r.into_inner().invalid_token_ids,
            Err(e) => {
                debug!(code = ?e.code(), "token check failed; will retry");
                continue;
            }
        };
        if invalid.is_empty() {
            continue;
        }
        for (node_id, held) in state.nodes().iter() {
            if invalid.contains(&held.token_id) {
                warn!(node_id = %node_id, "node token no longer valid; dropping agent");
                let _ = held.kick.send(Kick {
                    reason: "node token revoked or expired".into(),
                    fatal: true,
                });
            }
        }
    }
}
