//! `phirepass-ssh-edge` binary: config from the environment, then `serve`.
#![forbid(unsafe_code)]

use anyhow::Context as _;
use phirepass_bus::ServiceKind;
use phirepass_runtime::config::env_opt;
use phirepass_runtime::data_tls::nats_identity;
use phirepass_ssh_edge::{SERVICE_NAME, SshEdgeConfig, SshEdgeDeps, SshEdgeListeners, serve};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let _telemetry = phirepass_runtime::telemetry::init(SERVICE_NAME);
    let config = SshEdgeConfig::from_env()?;
    let health = tokio::net::TcpListener::bind(config.health_addr)
        .await
        .with_context(|| format!("cannot bind health listener on {}", config.health_addr))?;
    let ssh = tokio::net::TcpListener::bind(config.ssh_addr)
        .await
        .with_context(|| format!("cannot bind the ssh listener on {}", config.ssh_addr))?;
    let nats = env_opt("NATS_URL");
    let identity = nats_identity(ServiceKind::SshEdge)?;
    let deps = SshEdgeDeps {
        bus: phirepass_bus::connect_with(nats.as_deref(), ServiceKind::SshEdge, identity.as_ref())
            .await
            .context("connecting to the bus (NATS)")?,
        events: phirepass_bus::connect_events_with(
            nats.as_deref(),
            ServiceKind::SshEdge,
            identity.as_ref(),
        )
        .await
        .context("connecting the audit event log")?,
    };
    serve(
        config,
        SshEdgeListeners { health, ssh },
        deps,
        phirepass_runtime::shutdown::signal(),
    )
    .await?;
    Ok(())
}
