//! `phirepass-gateway-ws`: reads env, initialises telemetry, serves until SIGTERM/Ctrl-C.

use anyhow::Context;
use phirepass_bus::ServiceKind;
use phirepass_gateway_ws::{GatewayConfig, GatewayDeps, serve};
use phirepass_runtime::config::{env_opt, env_or};
use phirepass_runtime::data_tls::nats_identity;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let _telemetry = phirepass_runtime::telemetry::init("phirepass-gateway-ws");
    let config = GatewayConfig::from_env()?;
    let host: String = env_or("HOST", "0.0.0.0".to_string())?;
    let port: u16 = env_or("PORT", 8080)?;
    let nats_identity = nats_identity(ServiceKind::GatewayWs)?;
    let bus = phirepass_bus::connect_with(
        env_opt("NATS_URL").as_deref(),
        ServiceKind::GatewayWs,
        nats_identity.as_ref(),
    )
    .await
    .context("connecting to NATS")?;
    // Command audit events (issue #10): JetStream with NATS, else in memory.
    let events = phirepass_bus::connect_events_with(
        env_opt("NATS_URL").as_deref(),
        ServiceKind::GatewayWs,
        nats_identity.as_ref(),
    )
    .await
    .context("connecting the audit event log")?;
    let listener = tokio::net::TcpListener::bind((host.as_str(), port))
        .await
        .with_context(|| format!("binding {host}:{port}"))?;
    let mut deps = GatewayDeps::new(bus).with_events(events);
    // The internal `Commands` gRPC service: off unless an address is given.
    if let Some(addr) = env_opt("GATEWAY_GRPC_ADDR") {
        let grpc = tokio::net::TcpListener::bind(addr.as_str())
            .await
            .with_context(|| format!("binding GATEWAY_GRPC_ADDR={addr}"))?;
        deps = deps.with_commands_listener(grpc);
    }
    serve(
        config,
        listener,
        deps,
        phirepass_runtime::shutdown::signal(),
    )
    .await?;
    Ok(())
}
