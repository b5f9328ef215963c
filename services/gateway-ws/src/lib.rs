//! gateway-ws: the browser and agent WebSocket edge.
//!
//! Agents dial `GET /api/nodes/ws`; the instance holding an agent relays its tunnel frames to
//! and from NATS. Browsers log in (`POST /api/auth/login`) and open terminals on
//! `GET /api/web/ws`; the terminal's SSH client runs here over a TunnelStream to the node,
//! wherever it is held. Wire formats: `docs/protocol.md`. The web UI (pages, assets and the
//! JSON API behind them: setup, invitations, device activation, the dashboard) is described in
//! `docs/web.md`.
//!
//! * `server`: [`app`] (every route and layer) and [`serve`] (bind, background, drain).
//! * `http`: pages, assets, security headers, CORS, the Origin/CSRF rule, the client address.
//! * `accounts`: login and the session cookie, setup, invitations, device activation.
//! * `browser`: the terminal WebSocket and its SSH client.
//! * `nodes`: the agent WebSocket, node presence, token revocation.
//! * `dashboard`: the JSON the dashboard reads.
//! * `commands`: allowlisted commands on nodes (issue #10): the runner, the `Commands` gRPC
//!   service on the internal listener (`GATEWAY_GRPC_ADDR`) and the web UI's HTTP API.
//! * [`proxy`]: the HTTP proxy by Host (tunnels, app ports).
//! * [`tls`]: HTTPS on the public listener (`GATEWAY_TLS_CERT`), handshake deadline, reloads.

mod accounts;
mod browser;
mod commands;
pub mod config;
mod dashboard;
pub mod error;
mod http;
mod nodes;
pub mod proxy;
mod server;
mod startup;
mod state;
mod tickets;
pub mod tls;

pub use config::{AppMode, GatewayConfig, IpSource, TlsSettings};
pub use error::GatewayError;
/// The browser wire format lives with the other wire formats; re-exported for old paths.
pub use phirepass_tunnel::browser_protocol;
pub use server::{GatewayDeps, app, serve};
pub use state::AppState;
