//! The gateway's HTTP server: [`app`] is every route and layer, [`serve`] binds it to a
//! listener with the background tasks, and on shutdown drains the WebSockets it tracks.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::routing::{get, post};
use axum::serve::ListenerExt as _;
use phirepass_bus::{Bus, EventLog, MemoryEventLog};
use tokio::net::TcpListener;
use tower::Layer;
use tracing::{debug, info, warn};

use crate::accounts::{auth, device, invitations, setup};
use crate::browser::kick;
use crate::config::{AppMode, GatewayConfig};
use crate::dashboard::{admin, status, targets, tunnels};
use crate::error::GatewayError;
use crate::http::{assets, cors, hsts, pages};
use crate::nodes::revocation;
use crate::state::{AppState, Kick};
use crate::tls::TlsListener;
use crate::{browser, commands, nodes, proxy, startup};

/// How long shutdown waits for open WebSockets to finish after agents were told to leave.
const DRAIN: Duration = Duration::from_secs(5);

/// What the gateway needs from outside: the bus its nodes are reached through, the event log
/// its audit events go to, and (optionally) the listener of its internal gRPC service.
pub struct GatewayDeps {
    pub bus: Arc<dyn Bus>,
    /// Audit events (`<prefix>.events.audit`); a fresh in-memory log unless given.
    pub events: Arc<dyn EventLog>,
    /// The `Commands` gRPC service's listener (`GATEWAY_GRPC_ADDR`); `None`: not served.
    pub commands_listener: Option<TcpListener>,
}

impl GatewayDeps {
    /// The bus only: audit events in memory, no gRPC listener.
    pub fn new(bus: Arc<dyn Bus>) -> Self {
        Self {
            bus,
            events: Arc::new(MemoryEventLog::new()),
            commands_listener: None,
        }
    }

    /// Audit events go to `events` (the deployment's log, JetStream in production).
    pub fn with_events(mut self, events: Arc<dyn EventLog>) -> Self {
        self.events = events;
        self
    }

    /// Serves the `Commands` gRPC service on `listener` (mutual TLS, API tokens).
    pub fn with_commands_listener(mut self, listener: TcpListener) -> Self {
        self.commands_listener = Some(listener);
        self
    }
}

/// Serves the gateway on `listener` until `shutdown` resolves.
pub async fn serve(
    config: GatewayConfig,
    listener: TcpListener,
    deps: GatewayDeps,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), GatewayError> {
    startup::check_config(&config)?;
    let mut config = config;
    if config.tls.is_some() && !config.proxy.secure() {
        // Cookies (`__Host-`, Secure), built URLs and HSTS follow the scheme clients use.
        info!("tls is on: the public scheme is https");
        config.proxy.public_scheme = "https".into();
    }
    // Loaded first, so a wrong file stops the start with its name.
    let tls = match &config.tls {
        Some(settings) => Some((crate::tls::acceptor(settings)?, settings.handshake_timeout)),
        None => None,
    };
    let state = AppState::connect_with(config, deps.bus, deps.events)?;
    if state.config.mode == AppMode::Production {
        startup::require_users(&state.authz, state.config.first_run_setup).await?;
    }
    let background = [
        tokio::spawn(revocation::watch_tokens(state.clone())),
        tokio::spawn(log_stats(state.clone())),
        tokio::spawn(kick::listen(state.clone())),
        tokio::spawn(crate::browser::revocation::watch(state.clone())),
    ];
    let (grpc_stop, grpc) = match deps.commands_listener {
        Some(listener) => {
            let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
            let task = tokio::spawn(crate::commands::grpc::serve(
                state.clone(),
                listener,
                async move {
                    let _ = stopped.await;
                },
            ));
            (Some(stop), Some(task))
        }
        None => (None, None),
    };
    info!(
        addr = %listener.local_addr()?,
        gateway = %state.config.gateway_id,
        mode = ?state.config.mode,
        tls = tls.is_some(),
        "gateway-ws listening"
    );
    let make_service = app(state.clone()).into_make_service_with_connect_info::<SocketAddr>();
    let result = match tls {
        Some(((acceptor, _reload), timeout)) => {
            // tap_io: axum's ConnectInfo<SocketAddr> for a listener of another crate.
            let listener = TlsListener::new(listener, acceptor, timeout)?.tap_io(|_| {});
            axum::serve(listener, make_service)
                .with_graceful_shutdown(shutdown)
                .await
        }
        None => {
            axum::serve(listener, make_service)
                .with_graceful_shutdown(shutdown)
                .await
        }
    };
    for task in background {
        task.abort();
    }
    if let (Some(stop), Some(task)) = (grpc_stop, grpc) {
        let _ = stop.send(());
        match task.await {
            Ok(Err(e)) => warn!(error = %e, "commands grpc service failed"),
            Err(e) => warn!(error = %e, "commands grpc service panicked"),
            Ok(Ok(())) => {}
        }
    }
    kick_all(&state);
    drain(&state).await;
    result.map_err(GatewayError::Io)
}

/// Every route, behind the Host router (tunnel and app hosts never reach the dashboard), CORS
/// and the security headers. Handlers read the peer address from `ConnectInfo<SocketAddr>`.
pub fn app(state: Arc<AppState>) -> Router {
    let by_host = axum::middleware::from_fn_with_state(state.clone(), proxy::by_host);
    // The Host router runs before routing, so it wraps the whole router as a service; HSTS
    // covers it too (tunnel and app hosts are https as well).
    Router::new()
        .fallback_service(by_host.layer(routes(state.clone())))
        .layer(axum::middleware::from_fn_with_state(state, hsts::hsts))
}

fn routes(state: Arc<AppState>) -> Router {
    Router::new()
        .route("/api/web/ws", get(browser::socket::upgrade))
        .route("/api/nodes/ws", get(nodes::socket::upgrade))
        .route("/api/auth/login", post(auth::login))
        .route("/api/auth/logout", post(auth::logout))
        .route("/api/auth/me", get(auth::me))
        .route("/api/nodes", get(status::nodes))
        .route("/api/nodes/{node}/status", get(commands::http::status))
        .route(
            "/api/nodes/{node}/commands/{name}",
            post(commands::http::run),
        )
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
        .route("/api/device/inspect", post(device::inspect))
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
        .route("/nodes/{node}", get(pages::page))
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
        let _ = held.kick.send(Kick {
            reason: "gateway shutting down".into(),
            fatal: false,
        });
    }
}

/// Waits, at most [`DRAIN`], for the tracked WebSockets to end (their registry entries are
/// removed on the way out); whatever is still open after that is dropped with the runtime.
async fn drain(state: &AppState) {
    state.tasks.close();
    if tokio::time::timeout(DRAIN, state.tasks.wait())
        .await
        .is_err()
    {
        warn!(
            open = state.tasks.len(),
            "connections still open after the shutdown drain"
        );
    }
}

/// Every interval: INFO when the node or connection count changed since the last line, DEBUG
/// otherwise, so an idle gateway (and `phirepass dev`'s banner) is not buried in repeats.
async fn log_stats(state: Arc<AppState>) {
    let mut tick = tokio::time::interval(state.config.stats_refresh_interval);
    tick.tick().await;
    let mut last = (0, 0);
    loop {
        tick.tick().await;
        let counts = (state.nodes().len(), state.web().len());
        let uptime_secs = state.started_at.elapsed().as_secs();
        let (nodes, connections) = counts;
        if counts != last {
            info!(nodes, connections, uptime_secs, "gateway stats");
        } else {
            debug!(nodes, connections, uptime_secs, "gateway stats");
        }
        last = counts;
    }
}
