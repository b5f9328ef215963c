//! Checks a production gateway makes before it accepts anyone.

use std::time::Duration;

use phirepass_proto::authz::CountUsersRequest;
use tracing::{info, warn};

use crate::error::GatewayError;
use crate::state::Authz;

/// authz may start after the gateway (compose, systemd): wait this long for it to answer.
const AUTHZ_WAIT: Duration = Duration::from_secs(30);

/// A production edge with no users would be an open door for whoever registers first: refuse
/// to start, and say how to create the first user. With `first_run_setup` the operator has
/// chosen the `/setup` page instead, which only the holder of authz's setup code can use.
pub async fn require_users(authz: &Authz, first_run_setup: bool) -> Result<(), GatewayError> {
    let deadline = tokio::time::Instant::now() + AUTHZ_WAIT;
    let mut delay = Duration::from_millis(200);
    let count = loop {
        match authz.clone().count_users(CountUsersRequest {}).await {
            Ok(reply) => break reply.into_inner().count,
            Err(status) if tokio::time::Instant::now() < deadline => {
                info!(code = ?status.code(), "waiting for authz");
                tokio::time::sleep(delay).await;
                delay = (delay * 2).min(Duration::from_secs(3));
            }
            Err(status) => {
                return Err(GatewayError::Startup(format!(
                    "authz did not answer within {}s: {}",
                    AUTHZ_WAIT.as_secs(),
                    status.message()
                )));
            }
        }
    };
    if count == 0 && first_run_setup {
        warn!("no users exist yet: serving /setup, which needs the setup code authz logged");
    } else if count == 0 {
        warn!("refusing to start: no users exist");
        return Err(GatewayError::NoUsers);
    }
    Ok(())
}
