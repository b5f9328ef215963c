//! `phirepass-secrets` binary: config from the environment, then `serve`.
#![forbid(unsafe_code)]

use anyhow::Context as _;
use phirepass_secrets::{SERVICE_NAME, SecretsConfig, SecretsDeps, serve};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let _telemetry = phirepass_runtime::telemetry::init(SERVICE_NAME);
    let config = SecretsConfig::from_env()?;
    let listener = tokio::net::TcpListener::bind(config.addr)
        .await
        .with_context(|| format!("cannot bind grpc listener on {}", config.addr))?;
    serve(
        config,
        listener,
        SecretsDeps::default(),
        phirepass_runtime::shutdown::signal(),
    )
    .await?;
    Ok(())
}
