//! `phirepass-secrets` binary: reads the environment and calls
//! [`phirepass_secrets::serve`].
//!
//! Environment: `PHIREPASS_SERVICE_TOKEN` (required), `SECRETS_ADDR`
//! (default 127.0.0.1:50053), `DATABASE_URL` (default
//! `sqlite://phirepass.db?mode=rwc`), `PHIREPASS_SECRETS_KEY` (base64 of 32
//! bytes) or `PHIREPASS_SECRETS_PASSPHRASE` (required, one of them),
//! `PHIREPASS_SECRETS_OLD_KEY` / `_OLD_PASSPHRASE` (during a rotation),
//! `PHIREPASS_SECRETS_ADMIN_TOKEN` (optional admin bearer, no decrypt rights),
//! `AUTHZ_URL` (optional: accept authz API tokens on the admin surface),
//! `NATS_URL` (optional: vault changes go to the JetStream audit stream,
//! in memory without it).
#![forbid(unsafe_code)]

use anyhow::Context as _;
use phirepass_runtime::config::env_opt;
use phirepass_runtime::grpc::{SERVICE_TOKEN_VAR, ServiceToken};
use phirepass_secrets::{SecretsConfig, SecretsDeps, serve};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let _telemetry = phirepass_runtime::telemetry::init("phirepass-secrets");
    let token = ServiceToken::from_env().with_context(|| {
        format!("{SERVICE_TOKEN_VAR} must be set to the service token shared by all services")
    })?;
    let config = SecretsConfig::from_env(token)?;
    let database_url =
        env_opt("DATABASE_URL").unwrap_or_else(|| "sqlite://phirepass.db?mode=rwc".to_owned());
    let store = phirepass_store::Store::connect(&database_url)
        .await
        .context("connecting to DATABASE_URL")?;
    let listener = tokio::net::TcpListener::bind(config.addr)
        .await
        .with_context(|| format!("cannot bind grpc listener on {}", config.addr))?;
    let events = phirepass_bus::connect_events(env_opt("NATS_URL").as_deref())
        .await
        .context("connecting to NATS_URL for the audit event stream")?;
    serve(
        config,
        listener,
        SecretsDeps::new(store).with_events(events),
        phirepass_runtime::shutdown::signal(),
    )
    .await?;
    Ok(())
}
