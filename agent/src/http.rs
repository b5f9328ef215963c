//! The optional local HTTP server (`GET /version`), for health probes. Off unless
//! `AGENT_HTTP_ADDR` names an address.

use std::net::SocketAddr;

use axum::Router;
use axum::routing::get;
use tokio::net::TcpListener;

/// The agent's version, as reported to the gateway and on `/version`.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");

pub fn router() -> Router {
    Router::new().route("/version", get(|| async { VERSION }))
}

/// Why the `/version` server cannot start: names the address, the variable and the fix.
#[derive(Debug, thiserror::Error)]
#[error("cannot serve /version on {addr} ({var}): {source}; {hint}", var = crate::config::HTTP_ADDR_VAR, hint = hint(source))]
pub struct BindError {
    pub addr: SocketAddr,
    #[source]
    pub source: std::io::Error,
}

fn hint(e: &std::io::Error) -> &'static str {
    use std::io::ErrorKind;
    match e.kind() {
        ErrorKind::AddrInUse => {
            "another program (or a second agent) already listens there: choose a free port in AGENT_HTTP_ADDR, or unset it to turn the server off"
        }
        ErrorKind::AddrNotAvailable => {
            "that IP is not an address of this host: use 127.0.0.1 or one of this host's addresses"
        }
        ErrorKind::PermissionDenied => "ports below 1024 need privileges: choose a port above 1024",
        _ => "fix AGENT_HTTP_ADDR, or unset it to turn the server off",
    }
}

/// Binds `addr` and serves in a background task, stopped when the returned
/// handle is dropped.
pub(crate) async fn spawn(addr: SocketAddr) -> Result<AbortOnDrop, BindError> {
    let bind_error = |source| BindError { addr, source };
    let listener = TcpListener::bind(addr).await.map_err(bind_error)?;
    let local = listener.local_addr().map_err(bind_error)?;
    tracing::info!(addr = %local, "serving /version");
    let task = tokio::spawn(async move {
        if let Err(error) = axum::serve(listener, router()).await {
            tracing::warn!(%error, "http server stopped");
        }
    });
    Ok(AbortOnDrop(task))
}

pub(crate) struct AbortOnDrop(pub(crate) tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}
