//! gateway-ws: the browser and agent WebSocket edge.
//!
//! Agents dial `GET /api/nodes/ws`; the instance holding an agent relays its tunnel frames to
//! and from NATS. Browsers log in (`POST /api/auth/login`) and open terminals on
//! `GET /api/web/ws`; the terminal's SSH client runs here over a TunnelStream to the node,
//! wherever it is held. Wire formats: `docs/protocol.md`. The web UI (pages, assets and the
//! JSON API behind them: setup, invitations, device activation, the dashboard) is described in
//! `docs/web.md`.

mod admin;
mod assets;
pub mod auth;
pub mod config;
mod cors;
mod csrf;
mod device;
pub mod error;
mod invitations;
mod kick;
mod node_ws;
mod origin;
mod pages;
mod presence;
pub mod proxy;
mod revocation;
mod setup;
mod startup;
mod state;
mod status;
mod targets;
mod terminal;
mod tunnels;
mod web_ws;

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;

use axum::Router;
use axum::routing::{get, post};
use phirepass_bus::Bus;
use phirepass_proto::authz::authz_client::AuthzClient;
use phirepass_proto::registry::registry_client::RegistryClient;
use phirepass_runtime::grpc::channel;
use tokio::net::TcpListener;
use tower::Layer;
use tracing::info;

pub use config::{AppMode, GatewayConfig, IpSource};
pub use error::GatewayError;
/// The browser wire format lives with the other wire formats; re-exported for old paths.
pub use phirepass_tunnel::browser_protocol;
use state::AppState;

/// What the gateway needs from outside: the bus its nodes are reached through.
pub struct GatewayDeps {
    pub bus: Arc<dyn Bus>,
}

/// Serves the gateway on `listener` until `shutdown` resolves.
pub async fn serve(
    config: GatewayConfig,
    listener: TcpListener,
    deps: GatewayDeps,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), GatewayError> {
    let token = config.service_token.clone();
    let authz = AuthzClient::new(
        channel(&config.authz_url, token.clone())
            .map_err(|e| GatewayError::Startup(e.to_string()))?,
    );
    let registry = RegistryClient::new(
        channel(&config.registry_url, token).map_err(|e| GatewayError::Startup(e.to_string()))?,
    );
    if config.mode == AppMode::Production {
        startup::require_users(&authz, config.first_run_setup).await?;
    }
    let state = Arc::new(AppState::new(config, deps.bus, authz, registry));
    let background = [
        tokio::spawn(revocation::watch_tokens(state.clone())),
        tokio::spawn(log_stats(state.clone())),
        tokio::spawn(kick::listen(state.clone())),
    ];
    info!(
        addr = %listener.local_addr()?,
        gateway = %state.config.gateway_id,
        mode = ?state.config.mode,
        "gateway-ws listening"
    );
    // The Host router runs before routing: tunnel and app hosts never reach the dashboard.
    let app = axum::middleware::from_fn_with_state(state.clone(), proxy::by_host)
        .layer(router(state.clone()));
    let result =
        axum::serve(
            listener,
            axum::ServiceExt::<axum::extract::Request>::into_make_service_with_connect_info::<
                SocketAddr,
            >(app),
        )
        .with_graceful_shutdown(shutdown)
        .await;
    for task in background {
        task.abort();
    }
    kick_all(&state);
    result.map_err(GatewayError::Io)
}

fn router(state: Arc<AppState>) -> Router {
    Router::new()
        .route("/api/web/ws", get(web_ws::upgrade))
        .route("/api/nodes/ws", get(node_ws::upgrade))
        .route("/api/auth/login", post(auth::login))
        .route("/api/auth/logout", post(auth::logout))
        .route("/api/auth/me", get(auth::me))
        .route("/api/nodes", get(status::nodes))
        .route("/api/connections", get(status::connections))
        .route("/stats", get(status::stats))
        .route("/version", get(status::version))
        .route("/api/targets", get(targets::list))
        .route("/api/tunnels", get(tunnels::list))
        .route("/api/apps/open", get(proxy::apps::open))
        .route("/api/setup/status", get(setup::status))
        .route("/api/setup", post(setup::complete))
        .route("/api/join/inspect", post(invitations::inspect))
        .route("/api/join", post(invitations::join))
        .route("/api/device/start", post(device::start))
        .route("/api/device/poll", post(device::poll))
        .route("/api/device/approve", post(device::approve))
        .route("/api/admin/live", get(admin::live))
        .route("/api/admin/directory", get(admin::directory))
        .route("/api/admin/sessions/kick", post(admin::kick))
        .route(
            "/api/admin/invitations",
            get(invitations::list).post(invitations::create),
        )
        .route("/api/admin/invitations/revoke", post(invitations::revoke))
        .route("/assets/{name}", get(assets::serve))
        .route("/", get(pages::page))
        .route("/login", get(pages::page))
        .route("/setup", get(pages::page))
        .route("/admin", get(pages::page))
        .route("/activate", get(pages::page))
        .route("/join/{code}", get(pages::page))
        .route("/terminal/{node}", get(pages::page))
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            cors::cors,
        ))
        .layer(axum::middleware::from_fn(pages::security_headers))
        .with_state(state)
}

/// On shutdown, held agents are told to reconnect (to another instance), not to give up.
fn kick_all(state: &AppState) {
    for held in state.nodes().values() {
        let _ = held.kick.send(state::Kick {
            reason: "gateway shutting down".into(),
            fatal: false,
        });
    }
}

async fn log_stats(state: Arc<AppState>) {
    let mut tick = tokio::time::interval(state.config.stats_refresh_interval);
    tick.tick().await;
    loop {
        tick.tick().await;
        info!(
            nodes = state.nodes().len(),
            connections = state.web().len(),
            uptime_secs = state.started_at.elapsed().as_secs(),
            "gateway stats"
        );
    }
}
