//! `phirepass-authz`: identities and access decisions over gRPC.
//!
//! Users (Argon2id passwords, SSH keys), groups, targets (agent nodes and
//! direct hosts, one namespace of names), grants, login sessions, node and
//! API tokens (`pp_node_`/`pp_api_<token_id>_<secret>`, stored as id +
//! SHA-256), login brute-force limits, and the one `Authorize` decision,
//! each published as an audit event. gRPC is mutual TLS: every RPC is
//! allowed to the service kinds [`policy::POLICY`] names and, on admin and
//! list methods, to an API token with the right scope; health and
//! reflection need only TLS.

#![forbid(unsafe_code)]

mod accessible;
mod accounts;
mod actor;
mod api_tokens;
mod app_tokens;
mod audit;
mod auth;
mod authorize;
mod codes;
mod command_access;
mod config;
mod crypto;
mod decision_cache;
mod device_approval;
mod devices;
mod error;
mod groups;
mod hash_pool;
mod invitations;
mod keys;
mod limiter;
mod login_guard;
mod lookup;
mod node_groups;
mod nodes;
mod operator;
mod own;
pub mod policy;
mod requests;
mod service;
mod setup;
mod targets;
mod tickets;
mod tunnel_names;
mod validate;

use std::future::Future;
use std::time::Duration;

use phirepass_runtime::grpc::server::GrpcService;
use phirepass_store::Store;
use tokio::net::TcpListener;

pub use api_tokens::{SCOPE_ADMIN, SCOPE_READ};
pub use auth::AdminAuth;
pub use config::{AUDIT_SUBJECT, AuthzConfig, AuthzDeps, AuthzEndpoints};
pub use devices::DEVICE_CODE_TTL;
pub use error::AuthzError;
pub use hash_pool::HashLimits;
pub use limiter::{LoginLimits, UserLimits};
pub use operator::{DEV_OPERATOR, dev_operator_token};
pub use service::{AuthedAuthzServer, AuthzService, ServiceParts};
pub use setup::{SETUP_CODE_TTL, issue_setup_code};
pub use tickets::TicketKeyring;
pub use tunnel_names::{BUILTIN_RESERVED_TUNNEL_NAMES, TunnelNamePolicy};

/// Name reported by the health service (the gRPC service name).
pub const SERVICE_NAME: &str = "phirepass.authz.v1.Authz";

/// How often expired sessions are deleted from the database.
const SESSION_SWEEP_EVERY: Duration = Duration::from_secs(600);

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
        user_limits: config.user_limits,
        hash_limits: config.hash_limits,
        device_starts_per_minute: config.device_starts_per_minute,
        device_code_ttl: config.device_code_ttl,
        decision_cache_ttl: config.decision_cache_ttl,
        tunnel_name_policy: config.tunnel_name_policy,
        tunnel_reserved_names: config.tunnel_reserved_names,
        app_token_ttl: config.app_token_ttl,
        tickets: config.tickets,
    };
    if config.issue_setup_code {
        setup::issue_setup_code(&deps.store).await?;
    }
    let service = AuthzService::new(deps.store, parts).await?;
    let sweeper = tokio::spawn(sweep_sessions(service.store().clone()));
    let grpc = GrpcService {
        name: SERVICE_NAME,
        routes: tonic::service::Routes::new(service.into_server()),
        policy: config.policy,
    };
    let served = phirepass_runtime::grpc::server::serve(
        grpc,
        phirepass_proto::FILE_DESCRIPTOR_SET,
        listener,
        &config.identity,
        shutdown,
    )
    .await;
    sweeper.abort();
    Ok(served?)
}

/// Deletes expired sessions and device authorizations now and then;
/// expired ones are already refused, this only keeps the tables small.
async fn sweep_sessions(store: Store) {
    let mut tick = tokio::time::interval(SESSION_SWEEP_EVERY);
    loop {
        tick.tick().await;
        let now = phirepass_runtime::clock::now_millis();
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
