//! `phirepass-secrets` binary: [`SecretsConfig::from_env`] and
//! [`SecretsDeps::from_env`] (the variables are listed in the library's
//! `config` module), then [`phirepass_secrets::serve`] until SIGTERM/Ctrl-C.
#![forbid(unsafe_code)]

use anyhow::Context as _;
use phirepass_secrets::{SecretsConfig, SecretsDeps, serve};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let _telemetry = phirepass_runtime::telemetry::init("phirepass-secrets");
    let config = SecretsConfig::from_env()?;
    let deps = SecretsDeps::from_env()
        .await
        .context("connecting to DATABASE_URL and NATS_URL")?;
    let listener = tokio::net::TcpListener::bind(config.addr)
        .await
        .with_context(|| format!("cannot bind grpc listener on {}", config.addr))?;
    serve(
        config,
        listener,
        deps,
        phirepass_runtime::shutdown::signal(),
    )
    .await?;
    Ok(())
}
