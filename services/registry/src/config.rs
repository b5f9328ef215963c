//! What [`crate::serve`] is configured with, and how the binary reads it
//! from the environment.
//!
//! Environment: `PHIREPASS_TLS_DIR` (required: trust.crt, registry.crt, registry.key; or
//! `PHIREPASS_TLS_CERT`/`_KEY`/`_TRUST`), `AUTHZ_URL` (optional: admin clients' API tokens
//! are verified there; without it only services reach the registry), `REGISTRY_ADDR`
//! (default 127.0.0.1:50052), `REDIS_URL` (optional; in-memory without it,
//! which only makes sense for a single process), `REGISTRY_NODE_TTL_SECS`
//! (default 45), `REGISTRY_SESSION_TTL_SECS` (default 60),
//! `REGISTRY_TUNNEL_TTL_SECS` (default 60), `NATS_URL` (optional; without it
//! KickTunnel fails with FAILED_PRECONDITION), `PHIREPASS_SUBJECT_PREFIX`
//! (default `pp`).

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use phirepass_bus::Bus;
use phirepass_pki::{Identity, ServiceKind};
use phirepass_presence::Presence;
use phirepass_runtime::config::{ConfigError, env_opt, env_or};
use phirepass_runtime::grpc::identity_from_env;

use crate::error::RegistryError;

/// Environment variable for the gRPC listener address.
pub const ADDR_VAR: &str = "REGISTRY_ADDR";
/// Key prefix of every presence entry in Redis.
const PRESENCE_PREFIX: &str = "pp:";

#[derive(Debug, Clone)]
pub struct RegistryConfig {
    /// Where the binary's gRPC listener binds (`REGISTRY_ADDR`).
    pub addr: SocketAddr,
    /// The registry's certificate and trust bundle (gRPC server and authz client).
    pub identity: Identity,
    /// Authz, to verify admin clients' API tokens (`AUTHZ_URL`).
    pub authz_url: Option<String>,
    /// Who may call which RPC: [`crate::policy::POLICY`]; test harnesses widen it.
    pub policy: phirepass_runtime::grpc::Policy,
    /// A node disappears this long after its last heartbeat (default 45 s).
    pub node_ttl: Duration,
    /// A session disappears this long after its last heartbeat (default 60 s).
    pub session_ttl: Duration,
    /// A tunnel disappears this long after its last heartbeat (default 60 s).
    pub tunnel_ttl: Duration,
    /// Bus subject prefix, for the kick subject (default `pp`).
    pub subject_prefix: String,
}

impl RegistryConfig {
    pub fn new(identity: Identity) -> Self {
        Self {
            addr: SocketAddr::from(([127, 0, 0, 1], 50052)),
            identity,
            authz_url: None,
            policy: crate::policy::POLICY,
            node_ttl: Duration::from_secs(45),
            session_ttl: Duration::from_secs(60),
            tunnel_ttl: Duration::from_secs(60),
            subject_prefix: "pp".to_owned(),
        }
    }

    /// The defaults of [`RegistryConfig::new`], overridden by the variables
    /// listed in the module docs (all but `REDIS_URL` and `NATS_URL`, see
    /// [`RegistryDeps::from_env`]).
    pub fn from_env() -> Result<Self, ConfigError> {
        let base = Self::new(identity_from_env(ServiceKind::Registry)?);
        Ok(Self {
            addr: env_or(ADDR_VAR, base.addr)?,
            authz_url: env_opt("AUTHZ_URL"),
            node_ttl: secs_or("REGISTRY_NODE_TTL_SECS", base.node_ttl)?,
            session_ttl: secs_or("REGISTRY_SESSION_TTL_SECS", base.session_ttl)?,
            tunnel_ttl: secs_or("REGISTRY_TUNNEL_TTL_SECS", base.tunnel_ttl)?,
            subject_prefix: env_or("PHIREPASS_SUBJECT_PREFIX", base.subject_prefix.clone())?,
            ..base
        })
    }
}

fn secs_or(name: &str, default: Duration) -> Result<Duration, ConfigError> {
    env_or(name, default.as_secs()).map(Duration::from_secs)
}

#[derive(Clone)]
pub struct RegistryDeps {
    pub presence: Arc<dyn Presence>,
    /// Carries KickTunnel's kicks; without it KickTunnel fails with
    /// FAILED_PRECONDITION.
    pub bus: Option<Arc<dyn Bus>>,
}

impl RegistryDeps {
    /// Presence on `REDIS_URL` (in memory without it) and, when `NATS_URL`
    /// is set, the bus for kicks.
    pub async fn from_env() -> Result<Self, RegistryError> {
        let redis_url = env_opt("REDIS_URL");
        if redis_url.is_none() {
            tracing::warn!(
                "REDIS_URL not set: presence is in memory and not shared between replicas"
            );
        }
        let presence = phirepass_presence::connect_with(
            redis_url.as_deref(),
            PRESENCE_PREFIX,
            &phirepass_presence::RedisAuth::from_env(ServiceKind::Registry)?,
        )
        .await?;
        // Only kicks use the bus: without NATS there is no edge to reach.
        let bus = match env_opt("NATS_URL") {
            Some(url) => {
                let identity = phirepass_runtime::data_tls::nats_identity(ServiceKind::Registry)?;
                let kind = ServiceKind::Registry;
                Some(phirepass_bus::connect_with(Some(&url), kind, identity.as_ref()).await?)
            }
            None => {
                tracing::warn!("NATS_URL not set: KickTunnel is unavailable");
                None
            }
        };
        Ok(Self { presence, bus })
    }
}
