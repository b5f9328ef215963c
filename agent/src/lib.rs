//! `phirepass-agent`: runs on a customer host, dials the gateway's
//! `/api/nodes/ws` WebSocket and carries tunnel streams to local TCP targets
//! it allows: its SSH server (`SSH_HOST:SSH_PORT`) and the ports listed in
//! `ALLOWED_PORTS` on 127.0.0.1. Nothing else is ever dialled.
#![forbid(unsafe_code)]

pub mod backoff;
pub mod cli;
pub mod config;
pub mod device;
mod error;
pub mod http;
mod session;
pub mod stats;
mod streams;
pub mod token;

use std::future::Future;
use std::sync::Arc;

pub use config::{AgentConfig, AppMode, SshAuthMethod};
pub use error::AgentError;
pub use http::VERSION;
pub use streams::{MAX_STREAMS, NOT_ALLOWED, resolve};

use backoff::Backoff;
use session::SessionEnd;
use stats::StatsSampler;

/// Connects to the gateway and serves until `shutdown` resolves (`Ok`), the
/// token is rejected or the node is disconnected for good (`Err`). Lost
/// connections are retried with jittered exponential backoff.
pub async fn run(
    config: AgentConfig,
    token: String,
    shutdown: impl Future<Output = ()>,
) -> Result<(), AgentError> {
    let token = token::normalize(&token)?;
    // wss:// uses rustls; pick ring explicitly (an error means a provider
    // is already installed, which is fine).
    let _ = rustls::crypto::ring::default_provider().install_default();
    let _http = match config.http_addr {
        Some(addr) => Some(http::spawn(addr).await.map_err(AgentError::Http)?),
        None => None,
    };

    let config = Arc::new(config);
    let mut shutdown = std::pin::pin!(shutdown);
    let mut backoff = Backoff::default();
    let mut sampler = StatsSampler::new();
    loop {
        match session::run(&config, &token, &mut sampler, shutdown.as_mut()).await? {
            SessionEnd::Shutdown => return Ok(()),
            SessionEnd::Lost { reason, stable } => {
                if stable {
                    backoff.reset();
                }
                let delay = backoff.next_delay();
                tracing::warn!(%reason, delay_ms = delay.as_millis() as u64, "gateway connection lost, reconnecting");
                tokio::select! {
                    () = tokio::time::sleep(delay) => {}
                    () = &mut shutdown => return Ok(()),
                }
            }
        }
    }
}
