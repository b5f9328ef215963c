//! `phirepass-registry` binary: reads the environment and calls
//! [`phirepass_registry::serve`].
//!
//! Environment: `PHIREPASS_SERVICE_TOKEN` (required), `REGISTRY_ADDR`
//! (default 127.0.0.1:50052), `REDIS_URL` (optional; in-memory without it,
//! which only makes sense for a single process), `REGISTRY_NODE_TTL_SECS`
//! (default 45), `REGISTRY_SESSION_TTL_SECS` (default 60),
//! `REGISTRY_TUNNEL_TTL_SECS` (default 60), `NATS_URL` (optional; without it
//! KickTunnel fails with FAILED_PRECONDITION), `PHIREPASS_SUBJECT_PREFIX`
//! (default `pp`).

#![forbid(unsafe_code)]

use std::net::SocketAddr;
use std::time::Duration;

use anyhow::Context as _;
use phirepass_registry::{RegistryConfig, RegistryDeps, serve};
use phirepass_runtime::config::{env_opt, env_or};
use phirepass_runtime::grpc::{SERVICE_TOKEN_VAR, ServiceToken};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let _telemetry = phirepass_runtime::telemetry::init("phirepass-registry");

    let token = ServiceToken::from_env().with_context(|| {
        format!("{SERVICE_TOKEN_VAR} must be set to the service token shared by all services")
    })?;
    let addr: SocketAddr = env_or("REGISTRY_ADDR", SocketAddr::from(([127, 0, 0, 1], 50052)))?;
    let node_ttl = Duration::from_secs(env_or("REGISTRY_NODE_TTL_SECS", 45_u64)?);
    let session_ttl = Duration::from_secs(env_or("REGISTRY_SESSION_TTL_SECS", 60_u64)?);
    let tunnel_ttl = Duration::from_secs(env_or("REGISTRY_TUNNEL_TTL_SECS", 60_u64)?);
    let subject_prefix: String = env_or("PHIREPASS_SUBJECT_PREFIX", "pp".to_owned())?;
    let redis_url = env_opt("REDIS_URL");
    if redis_url.is_none() {
        tracing::warn!("REDIS_URL not set: presence is in memory and not shared between replicas");
    }

    let presence = phirepass_presence::connect(redis_url.as_deref(), "pp:")
        .await
        .context("connecting to REDIS_URL")?;
    // Only kicks use the bus: without NATS there is no edge to reach.
    let bus = match env_opt("NATS_URL") {
        Some(url) => Some(
            phirepass_bus::connect(Some(&url))
                .await
                .context("connecting to NATS_URL")?,
        ),
        None => {
            tracing::warn!("NATS_URL not set: KickTunnel is unavailable");
            None
        }
    };
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .with_context(|| format!("binding {addr}"))?;

    let config = RegistryConfig {
        node_ttl,
        session_ttl,
        tunnel_ttl,
        subject_prefix,
        ..RegistryConfig::new(token)
    };
    serve(
        config,
        listener,
        RegistryDeps { presence, bus },
        phirepass_runtime::shutdown::signal(),
    )
    .await?;
    Ok(())
}
