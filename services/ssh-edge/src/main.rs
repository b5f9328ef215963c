//! `phirepass-ssh-edge` binary: config from the environment, then `serve`.
#![forbid(unsafe_code)]

use anyhow::Context as _;
use phirepass_ssh_edge::{SERVICE_NAME, SshEdgeConfig, SshEdgeDeps, serve};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let _telemetry = phirepass_runtime::telemetry::init(SERVICE_NAME);
    let config = SshEdgeConfig::from_env()?;
    let listener = tokio::net::TcpListener::bind(config.health_addr)
        .await
        .with_context(|| format!("cannot bind health listener on {}", config.health_addr))?;
    serve(
        config,
        listener,
        SshEdgeDeps::default(),
        phirepass_runtime::shutdown::signal(),
    )
    .await?;
    Ok(())
}
