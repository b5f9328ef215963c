//! The optional local HTTP server (`GET /version`), for health probes.

use std::net::SocketAddr;

use axum::Router;
use axum::routing::get;
use tokio::net::TcpListener;

/// The agent's version, as reported to the gateway and on `/version`.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");

pub fn router() -> Router {
    Router::new().route("/version", get(|| async { VERSION }))
}

/// Binds `addr` and serves in a background task, stopped when the returned
/// handle is dropped.
pub(crate) async fn spawn(addr: SocketAddr) -> std::io::Result<AbortOnDrop> {
    let listener = TcpListener::bind(addr).await?;
    let local = listener.local_addr()?;
    tracing::info!(addr = %local, "serving /version");
    let task = tokio::spawn(async move {
        if let Err(error) = axum::serve(listener, router()).await {
            tracing::warn!(%error, "http server stopped");
        }
    });
    Ok(AbortOnDrop(task))
}

pub(crate) struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}
