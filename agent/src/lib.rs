//! `phirepass-agent`: runs on a customer host, dials the gateway's
//! `/api/nodes/ws` WebSocket and carries tunnel streams to local TCP targets
//! it allows: its SSH server (`SSH_HOST:SSH_PORT`) and the ports listed in
//! `ALLOWED_PORTS` on 127.0.0.1. Nothing else is ever dialled.
#![forbid(unsafe_code)]

pub mod backoff;
pub mod builtin;
pub mod cli;
pub mod commands;
pub mod config;
pub mod device;
mod error;
pub mod http;
pub mod pins;
mod session;
pub mod ssh_check;
pub mod stats;
pub mod status_board;
mod streams;
pub mod tls;
pub mod token;

use std::future::Future;
use std::sync::Arc;

pub use config::{AgentConfig, AppMode, SshAuthMethod};
pub use error::AgentError;
pub use http::VERSION;
pub use streams::{MAX_STREAMS, NOT_ALLOWED, resolve};

use backoff::Backoff;
use session::SessionEnd;
use stats::StatsSampler;

/// Connects to the gateway and serves until `shutdown` resolves (`Ok`), the
/// token is rejected or the node is disconnected for good (`Err`). Lost
/// connections are retried with jittered exponential backoff.
pub async fn run(
    config: AgentConfig,
    token: String,
    shutdown: impl Future<Output = ()>,
) -> Result<(), AgentError> {
    let token = token::normalize(&token)?;
    // Never send the token in clear, whoever built the config; a bad CA file stops the start.
    config::check_transport(&config.server_url, config.allow_insecure_gateway)?;
    tls::client_config(config.gateway_ca.as_deref())?;
    if config.allow_insecure_gateway {
        tracing::warn!(
            "{} is set: plain ws:// to a remote gateway is allowed (development only)",
            tls::INSECURE_VAR
        );
    }
    // wss:// uses rustls; pick ring explicitly (an error means a provider
    // is already installed, which is fine).
    let _ = rustls::crypto::ring::default_provider().install_default();
    let commands = Arc::new(commands::Commands::new(config.host.clone()));
    let board = status_board(&config, &commands);
    let _http = match config.http_addr {
        Some(addr) => Some(http::spawn(addr, board.clone()).await?),
        None => None,
    };
    log_settings(&config);
    let (ssh_status, ssh_rx) = tokio::sync::watch::channel(None);
    let _ssh_check = http::AbortOnDrop(tokio::spawn(ssh_check::watch(
        config.ssh_host.clone(),
        config.ssh_port,
        ssh_status,
    )));

    // One set of pins (and replay cache), commands (and rate windows) for the whole run,
    // across reconnects.
    let shared = session::RunShared {
        pins: pins::Pins::load(config.ticket_keys_file.as_deref())?,
        commands,
        board,
        instance: format!("{:016x}", rand::random::<u64>()),
    };
    let config = Arc::new(config);
    let mut shutdown = std::pin::pin!(shutdown);
    let mut backoff = Backoff::default();
    let mut sampler = StatsSampler::new();
    loop {
        let mut ssh = ssh_rx.clone();
        let session = session::run(
            &config,
            &shared,
            &token,
            &mut sampler,
            &mut ssh,
            shutdown.as_mut(),
        );
        let end = session.await;
        match &end {
            Ok(SessionEnd::Lost { reason, .. } | SessionEnd::Refused { reason, .. }) => {
                shared.board.disconnected(reason);
            }
            Err(e) => shared.board.disconnected(&e.to_string()),
            Ok(SessionEnd::Shutdown) => shared.board.disconnected("agent shutting down"),
        }
        match end? {
            SessionEnd::Shutdown => return Ok(()),
            SessionEnd::Refused {
                reason,
                retry_after,
            } => {
                // Not a hot loop, and never a kick of the connection that holds the node.
                tracing::warn!(
                    "the gateway refused this connection: {reason} (trying again in {} s)",
                    retry_after.as_secs()
                );
                tokio::select! {
                    () = tokio::time::sleep(retry_after) => {}
                    () = &mut shutdown => return Ok(()),
                }
            }
            SessionEnd::Lost { reason, stable } => {
                if stable {
                    backoff.reset();
                }
                let delay = backoff.next_delay();
                tracing::warn!(%reason, delay_ms = delay.as_millis() as u64, "gateway connection lost, reconnecting");
                tokio::select! {
                    () = tokio::time::sleep(delay) => {}
                    () = &mut shutdown => return Ok(()),
                }
            }
        }
    }
}

/// The self-report this run starts with: version, start time, every command callers may ask
/// for, where they were declared.
fn status_board(config: &AgentConfig, commands: &commands::Commands) -> status_board::StatusBoard {
    status_board::StatusBoard::new(phirepass_tunnel::command::AgentStatus {
        version: VERSION.to_owned(),
        started_at: u64::try_from(phirepass_runtime::clock::now_millis()).unwrap_or_default(),
        commands: commands.manifest(),
        config_path: config
            .host
            .path
            .as_ref()
            .map(|p| p.display().to_string())
            .unwrap_or_default(),
    })
}

/// What an operator needs to know at start: the ports tunnels may reach, and retired
/// variables that no longer do what they did.
fn log_settings(config: &AgentConfig) {
    if config.allowed_ports.is_empty() {
        tracing::info!(
            "tunnels may reach SSH_HOST:SSH_PORT only; set ALLOWED_PORTS (e.g. ALLOWED_PORTS=3000,8080) to let users open local ports"
        );
    } else {
        let ports: Vec<String> = config.allowed_ports.iter().map(u16::to_string).collect();
        tracing::info!(
            "tunnels may reach SSH_HOST:SSH_PORT and 127.0.0.1 ports {} (ALLOWED_PORTS)",
            ports.join(", ")
        );
    }
    let host = &config.host;
    match &host.path {
        Some(path) => tracing::info!(
            config = %path.display(),
            commands = ?host.commands.iter().map(|c| c.name.as_str()).collect::<Vec<_>>(),
            "declared commands"
        ),
        None => tracing::info!(
            "no agent config file ({}): no declared commands, built-ins only",
            commands::DEFAULT_PATH
        ),
    }
    if !config.retired_http_vars.is_empty() {
        tracing::warn!(
            "{} no longer configure the agent's /version server (it is off); set {}=127.0.0.1:8081 to turn it on",
            config.retired_http_vars.join(" and "),
            config::HTTP_ADDR_VAR
        );
    }
}
