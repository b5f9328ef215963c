//! `phirepass-authz` binary: reads the environment and calls
//! [`phirepass_authz::serve`].
//!
//! Environment: `PHIREPASS_SERVICE_TOKEN` (required), `AUTHZ_ADDR` (default
//! 127.0.0.1:50051), `DATABASE_URL` (default `sqlite://phirepass.db?mode=rwc`),
//! `REDIS_URL` (optional; in-memory presence without it),
//! `AUTHZ_SESSION_TTL_SECS` (default 43200), `NATS_URL` (optional; audit
//! events go to the JetStream stream `PP_EVENTS`, in memory without it),
//! `AUTHZ_LOGIN_MAX_FAILURES` (default 5), `AUTHZ_LOGIN_MAX_FAILURES_PER_IP`
//! (default 50), `AUTHZ_LOGIN_WINDOW_SECS` (default 60),
//! `AUTHZ_DEVICE_STARTS_PER_MINUTE` (default 10, per client IP),
//! `AUTHZ_DECISION_CACHE_MS` (default 5000; 0 turns the Authorize cache off),
//! `AUTHZ_TUNNEL_NAME_POLICY` (`any`, the default, or `user-prefix`),
//! `AUTHZ_TUNNEL_RESERVED_NAMES` (comma list, added to the built-in list),
//! `AUTHZ_APP_TOKEN_TTL_SECS` (default 900).
//!
//! While no user exists it logs a first-run setup code at WARN.

#![forbid(unsafe_code)]

use std::net::SocketAddr;
use std::time::Duration;

use anyhow::Context as _;
use phirepass_authz::{AuthzConfig, AuthzDeps, LoginLimits, serve};
use phirepass_runtime::config::{env_opt, env_or};
use phirepass_runtime::grpc::{SERVICE_TOKEN_VAR, ServiceToken};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let _telemetry = phirepass_runtime::telemetry::init("phirepass-authz");

    let token = ServiceToken::from_env().with_context(|| {
        format!("{SERVICE_TOKEN_VAR} must be set to the service token shared by all services")
    })?;
    let addr: SocketAddr = env_or("AUTHZ_ADDR", SocketAddr::from(([127, 0, 0, 1], 50051)))?;
    let session_ttl = Duration::from_secs(env_or("AUTHZ_SESSION_TTL_SECS", 12 * 3600_u64)?);
    let database_url =
        env_opt("DATABASE_URL").unwrap_or_else(|| "sqlite://phirepass.db?mode=rwc".to_owned());
    let redis_url = env_opt("REDIS_URL");
    let defaults = LoginLimits::default();
    let login_limits = LoginLimits {
        max_failures: env_or("AUTHZ_LOGIN_MAX_FAILURES", defaults.max_failures)?,
        max_failures_per_ip: env_or(
            "AUTHZ_LOGIN_MAX_FAILURES_PER_IP",
            defaults.max_failures_per_ip,
        )?,
        window: Duration::from_secs(env_or(
            "AUTHZ_LOGIN_WINDOW_SECS",
            defaults.window.as_secs(),
        )?),
    };

    let store = phirepass_store::Store::connect(&database_url)
        .await
        .context("connecting to DATABASE_URL")?;
    let presence = phirepass_presence::connect(redis_url.as_deref(), "pp:")
        .await
        .context("connecting to REDIS_URL")?;
    let events = phirepass_bus::connect_events(env_opt("NATS_URL").as_deref())
        .await
        .context("connecting to NATS_URL for the audit event stream")?;
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .with_context(|| format!("binding {addr}"))?;

    let base = AuthzConfig::new(token);
    let config = AuthzConfig {
        session_ttl,
        login_limits,
        device_starts_per_minute: env_or(
            "AUTHZ_DEVICE_STARTS_PER_MINUTE",
            base.device_starts_per_minute,
        )?,
        decision_cache_ttl: Duration::from_millis(env_or(
            "AUTHZ_DECISION_CACHE_MS",
            u64::try_from(base.decision_cache_ttl.as_millis()).unwrap_or(5000),
        )?),
        tunnel_name_policy: match env_opt("AUTHZ_TUNNEL_NAME_POLICY") {
            Some(policy) => policy
                .parse()
                .map_err(|e: String| anyhow::anyhow!("AUTHZ_TUNNEL_NAME_POLICY: {e}"))?,
            None => base.tunnel_name_policy,
        },
        tunnel_reserved_names: env_opt("AUTHZ_TUNNEL_RESERVED_NAMES")
            .map(|list| {
                list.split(',')
                    .map(|n| n.trim().to_ascii_lowercase())
                    .filter(|n| !n.is_empty())
                    .collect()
            })
            .unwrap_or_default(),
        app_token_ttl: Duration::from_secs(env_or(
            "AUTHZ_APP_TOKEN_TTL_SECS",
            base.app_token_ttl.as_secs(),
        )?),
        ..base
    };
    serve(
        config,
        listener,
        AuthzDeps {
            store,
            presence,
            events,
        },
        phirepass_runtime::shutdown::signal(),
    )
    .await?;
    Ok(())
}
