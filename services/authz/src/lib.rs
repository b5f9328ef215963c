//! `phirepass-authz`: identities and access decisions over gRPC.
//!
//! Users (Argon2id passwords, SSH keys), groups, targets (agent nodes and
//! direct hosts, one namespace of names), grants, login sessions, node and
//! API tokens (`pp_node_`/`pp_api_<token_id>_<secret>`, stored as id +
//! SHA-256), login brute-force limits, and the one `Authorize` decision,
//! each published as an audit event. Every RPC requires the service token
//! or (admin and list methods) an API token with the right scope; health
//! and reflection do not.

#![forbid(unsafe_code)]

mod accessible;
mod accounts;
mod api_tokens;
mod app_tokens;
mod audit;
mod auth;
mod authorize;
mod codes;
mod crypto;
mod decision_cache;
mod devices;
mod error;
mod groups;
mod invitations;
mod keys;
mod limiter;
mod nodes;
mod service;
mod setup;
mod targets;
mod tunnel_names;
mod validate;

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use phirepass_bus::{EventLog, MemoryEventLog};
use phirepass_presence::Presence;
use phirepass_runtime::grpc::ServiceToken;
use phirepass_store::Store;
use tokio::net::TcpListener;
use tonic::transport::Server;

pub use api_tokens::{SCOPE_ADMIN, SCOPE_READ};
pub use auth::AdminAuth;
pub use devices::DEVICE_CODE_TTL;
pub use error::AuthzError;
pub use limiter::LoginLimits;
pub use service::{AuthedAuthzServer, AuthzService, ServiceParts};
pub use setup::{SETUP_CODE_TTL, issue_setup_code};
pub use tunnel_names::{BUILTIN_RESERVED_TUNNEL_NAMES, TunnelNamePolicy};

/// Name reported by the health service (the gRPC service name).
pub const SERVICE_NAME: &str = "phirepass.authz.v1.Authz";

/// How often expired sessions are deleted from the database.
const SESSION_SWEEP_EVERY: Duration = Duration::from_secs(600);

#[derive(Debug, Clone)]
pub struct AuthzConfig {
    pub service_token: ServiceToken,
    /// Lifetime of a login session (default 12 h).
    pub session_ttl: Duration,
    /// Login lockout thresholds (defaults: 5 failures per user, 50 per IP,
    /// in 60 s; env `AUTHZ_LOGIN_MAX_FAILURES`, `AUTHZ_LOGIN_MAX_FAILURES_PER_IP`,
    /// `AUTHZ_LOGIN_WINDOW_SECS`).
    pub login_limits: LoginLimits,
    /// Where audit events go (default [`AUDIT_SUBJECT`]).
    pub audit_subject: String,
    /// Whether [`serve`] issues (and logs) a first-run setup code when no
    /// user exists (default on). `phirepass dev` turns it off and calls
    /// [`issue_setup_code`] itself, to print the code in its banner.
    pub issue_setup_code: bool,
    /// Device authorizations one client IP may start per minute (default
    /// 10; env `AUTHZ_DEVICE_STARTS_PER_MINUTE`).
    pub device_starts_per_minute: u64,
    /// How long a device authorization can be approved (default
    /// [`DEVICE_CODE_TTL`], 10 minutes).
    pub device_code_ttl: Duration,
    /// How long Authorize decisions are cached in presence, shared by every
    /// replica and invalidated at once by any change (default 5 s; zero
    /// turns the cache off; env `AUTHZ_DECISION_CACHE_MS`).
    pub decision_cache_ttl: Duration,
    /// Which free tunnel names a user may reserve (default any; env
    /// `AUTHZ_TUNNEL_NAME_POLICY`: `any` or `user-prefix`).
    pub tunnel_name_policy: TunnelNamePolicy,
    /// Tunnel names no user may claim, besides
    /// [`BUILTIN_RESERVED_TUNNEL_NAMES`] (env `AUTHZ_TUNNEL_RESERVED_NAMES`,
    /// comma separated).
    pub tunnel_reserved_names: Vec<String>,
    /// Lifetime of an app token (default 15 minutes; env
    /// `AUTHZ_APP_TOKEN_TTL_SECS`). Verify hands out a fresh one when less
    /// than 5 minutes or a third of this remain, whichever is smaller.
    pub app_token_ttl: Duration,
}

/// The subject of access-decision audit events.
pub const AUDIT_SUBJECT: &str = "pp.events.audit";

impl AuthzConfig {
    pub fn new(service_token: ServiceToken) -> Self {
        Self {
            service_token,
            session_ttl: Duration::from_secs(12 * 3600),
            login_limits: LoginLimits::default(),
            audit_subject: AUDIT_SUBJECT.to_owned(),
            issue_setup_code: true,
            device_starts_per_minute: 10,
            device_code_ttl: DEVICE_CODE_TTL,
            decision_cache_ttl: Duration::from_secs(5),
            tunnel_name_policy: TunnelNamePolicy::Any,
            tunnel_reserved_names: Vec::new(),
            app_token_ttl: Duration::from_secs(15 * 60),
        }
    }
}

#[derive(Clone)]
pub struct AuthzDeps {
    pub store: Store,
    pub presence: Arc<dyn Presence>,
    /// Audit events: a JetStream log in production
    /// (`phirepass_bus::JetStreamEventLog`), in memory otherwise.
    pub events: Arc<dyn EventLog>,
}

impl AuthzDeps {
    /// Deps with an in-memory event log (the embedded default).
    pub fn new(store: Store, presence: Arc<dyn Presence>) -> Self {
        Self {
            store,
            presence,
            events: Arc::new(MemoryEventLog::new()),
        }
    }
}

/// Serves Authz (authenticated), health and reflection on `listener` until
/// `shutdown` resolves.
#[tracing::instrument(name = "authz.serve", skip_all, fields(addr = ?listener.local_addr().ok()))]
pub async fn serve(
    config: AuthzConfig,
    listener: TcpListener,
    deps: AuthzDeps,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), AuthzError> {
    let parts = ServiceParts {
        presence: deps.presence,
        events: deps.events,
        audit_subject: config.audit_subject,
        session_ttl: config.session_ttl,
        limits: config.login_limits,
        device_starts_per_minute: config.device_starts_per_minute,
        device_code_ttl: config.device_code_ttl,
        decision_cache_ttl: config.decision_cache_ttl,
        tunnel_name_policy: config.tunnel_name_policy,
        tunnel_reserved_names: config.tunnel_reserved_names,
        app_token_ttl: config.app_token_ttl,
    };
    if config.issue_setup_code {
        setup::issue_setup_code(&deps.store).await?;
    }
    let service = AuthzService::new(deps.store, parts).await?;
    let (_health_reporter, health) = phirepass_runtime::health::reporter_for(SERVICE_NAME).await;
    let reflection = tonic_reflection::server::Builder::configure()
        .register_encoded_file_descriptor_set(phirepass_proto::FILE_DESCRIPTOR_SET)
        .with_service_name(SERVICE_NAME)
        .build_v1()?;

    let sweeper = tokio::spawn(sweep_sessions(service.store().clone()));
    tracing::info!("authz serving");
    let served = Server::builder()
        .add_service(health)
        .add_service(reflection)
        .add_service(service.into_server(config.service_token))
        .serve_with_incoming_shutdown(phirepass_runtime::grpc::incoming(listener), shutdown)
        .await;
    sweeper.abort();
    tracing::info!("authz stopped");
    Ok(served?)
}

/// Deletes expired sessions and device authorizations now and then;
/// expired ones are already refused, this only keeps the tables small.
async fn sweep_sessions(store: Store) {
    let mut tick = tokio::time::interval(SESSION_SWEEP_EVERY);
    loop {
        tick.tick().await;
        let now = phirepass_store::now_millis();
        match store.delete_expired_sessions(now).await {
            Ok(0) => {}
            Ok(n) => tracing::debug!(deleted = n, "expired sessions swept"),
            Err(error) => tracing::warn!(%error, "session sweep failed"),
        }
        // An approved device gets an hour past expiry to collect its token.
        let before = now.saturating_sub(3_600_000);
        match store.delete_expired_devices(before).await {
            Ok(0) => {}
            Ok(n) => tracing::debug!(deleted = n, "expired device authorizations swept"),
            Err(error) => tracing::warn!(%error, "device authorization sweep failed"),
        }
    }
}
