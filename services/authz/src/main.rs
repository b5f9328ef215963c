//! `phirepass-authz` binary: [`AuthzConfig::from_env`] and
//! [`AuthzEndpoints::from_env`] (the variables are listed in the library's
//! `config` module), then [`phirepass_authz::serve`] until SIGTERM/Ctrl-C.
//! While no user exists it logs a first-run setup code at WARN.

#![forbid(unsafe_code)]

use anyhow::Context as _;
use phirepass_authz::{AuthzConfig, AuthzEndpoints, serve};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let _telemetry = phirepass_runtime::telemetry::init("phirepass-authz");
    let config = AuthzConfig::from_env()?;
    let endpoints = AuthzEndpoints::from_env()?;
    let deps = endpoints
        .connect()
        .await
        .context("connecting to DATABASE_URL, REDIS_URL and NATS_URL")?;
    let listener = tokio::net::TcpListener::bind(endpoints.addr)
        .await
        .with_context(|| format!("binding {}", endpoints.addr))?;
    serve(
        config,
        listener,
        deps,
        phirepass_runtime::shutdown::signal(),
    )
    .await?;
    Ok(())
}
