//! The HTTP proxy by Host, in front of the dashboard: `<name>.<TUNNEL_DOMAIN>` reaches an
//! `ssh -R` tunnel, `<port>-<node>.<APPS_DOMAIN>` a port on an agent's host (with an app
//! token), a malformed Host gets 400, and every other host the dashboard, unchanged.

pub mod apps;
mod connector;
mod engine;
pub mod headers;
/// Host parsing lives in `phirepass-parse` (fuzzed there).
pub use phirepass_parse::host;
mod page;
mod revocation;
pub mod shared;
mod tunnel;

use std::net::SocketAddr;
use std::sync::Arc;

use axum::extract::{ConnectInfo, Request, State};
use axum::http::header::HOST;
use axum::middleware::Next;
use axum::response::Response;

use crate::state::AppState;
use host::Site;

/// The layer in front of the dashboard's router.
pub async fn by_host(State(state): State<Arc<AppState>>, request: Request, next: Next) -> Response {
    let host = match host::request_host(request.uri(), request.headers()) {
        Ok(Some(host)) => host,
        // HTTP/1.0 without Host: only the dashboard can be meant.
        Ok(None) => return next.run(request).await,
        Err(host::BadHost) => return page::bad_host(),
    };
    let site = host::classify(&host, &state.proxy.domains);
    if site == Site::Main {
        return next.run(request).await;
    }
    let Some(peer) = request
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0)
    else {
        return page::not_served();
    };
    // The Host as sent (with its port) for X-Forwarded-Host; it parsed, so it is ASCII.
    let sent_host = request
        .headers()
        .get(HOST)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string)
        .or_else(|| request.uri().authority().map(|a| a.to_string()))
        .unwrap_or_else(|| host.clone());
    let client = headers::Client {
        config: &state.config,
        peer,
        host: &sent_host,
    };
    match site {
        Site::Tunnel(name) => tunnel::serve(&state, &name, request, &client).await,
        Site::App { port, node } => apps::serve(&state, &node, port, request, &client).await,
        Site::NotServed | Site::Main => page::not_served(),
    }
}
