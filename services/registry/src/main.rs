//! `phirepass-registry` binary: [`RegistryConfig::from_env`] and
//! [`RegistryDeps::from_env`] (the variables are listed in the library's
//! `config` module), then [`phirepass_registry::serve`] until SIGTERM/Ctrl-C.

#![forbid(unsafe_code)]

use anyhow::Context as _;
use phirepass_registry::{RegistryConfig, RegistryDeps, serve};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let _telemetry = phirepass_runtime::telemetry::init("phirepass-registry");
    let config = RegistryConfig::from_env()?;
    let deps = RegistryDeps::from_env()
        .await
        .context("connecting to REDIS_URL and NATS_URL")?;
    let listener = tokio::net::TcpListener::bind(config.addr)
        .await
        .with_context(|| format!("binding {}", config.addr))?;
    serve(
        config,
        listener,
        deps,
        phirepass_runtime::shutdown::signal(),
    )
    .await?;
    Ok(())
}
