//! `phirepass-ssh-edge`: the SSH front door of Phirepass, a bastion any OpenSSH client can use.
//!
//! * `alice@edge` opens the management screen (targets alice may reach, online or not);
//! * `alice:web-1@edge` relays to target `web-1`: a direct host over TCP from the edge, or an
//!   agent node over a TunnelStream (whichever gateway holds it), as its default account;
//!   `alice:web-1:root@edge` as `root`, when a grant lists that login;
//! * `ssh -R [name:]port:host:port alice@edge` publishes a tunnel: port 80 as
//!   `http://<name>.<tunnel domain>`, other ports as private aliases reached with
//!   `ssh -J alice@edge -W name:port` (see `tunnels`).
//!
//! Users authenticate through authz (public key with a verified signature, password,
//! keyboard-interactive); every channel is authorised with `Authorize`; target credentials
//! come from the vault and never reach the user; target host keys are pinned per target.
//! When the vault stores no login for a target, or `SSH_EDGE_UNKNOWN_HOSTKEY=prompt` meets an
//! unpinned key, the login continues with keyboard-interactive after the user is verified and
//! relays the target's questions to her (`relay::passthrough`).
//! See [`username`] for the login grammar.
#![forbid(unsafe_code)]

mod algorithms;
mod audit;
pub mod config;
mod edge;
mod handler;
pub mod host_key;
mod menu;
mod menu_pick;
mod menu_prompts;
mod per_source;
mod relay;
mod server;
mod sessions;
mod tickets;
mod tunnels;
/// The login grammar lives in `phirepass-parse` (fuzzed there).
pub use phirepass_parse::ssh_login as username;

use std::future::Future;
use std::sync::{Arc, Mutex};

use futures_util::FutureExt;
use phirepass_bus::{Bus, EventLog};
use phirepass_pki::ServiceKind;
use phirepass_proto::authz::authz_client::AuthzClient;
use phirepass_proto::registry::registry_client::RegistryClient;
use phirepass_proto::secrets::secrets_client::SecretsClient;
use phirepass_runtime::config::ConfigError;
use phirepass_runtime::grpc::{GrpcError, channel};
use phirepass_tunnel::{StreamConfig, Subjects};
use tokio::net::TcpListener;
use tokio::sync::Semaphore;

pub use config::{
    DEFAULT_HEALTH_ADDR, HEALTH_ADDR_VAR, HostKeySource, Penalties, PerSourceLimits, SshEdgeConfig,
    UnknownHostKey,
};

/// The name the health service reports as `SERVING`.
pub const SERVICE_NAME: &str = "phirepass-ssh-edge";

/// Errors of the ssh-edge service.
#[derive(Debug, thiserror::Error)]
pub enum SshEdgeError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error(transparent)]
    Grpc(#[from] GrpcError),
    #[error(transparent)]
    HostKey(#[from] host_key::HostKeyError),
    #[error("ssh-edge i/o: {0}")]
    Io(#[from] std::io::Error),
}

/// The two listeners: gRPC health and SSH.
pub struct SshEdgeListeners {
    pub health: TcpListener,
    pub ssh: TcpListener,
}

/// What ssh-edge needs from the rest of the system.
#[derive(Clone)]
pub struct SshEdgeDeps {
    /// Reaches agent nodes (TunnelStreams) and carries kicks.
    pub bus: Arc<dyn Bus>,
    /// Where the edge's own audit events go (refused logins).
    pub events: Arc<dyn EventLog>,
}

/// The bus subject on which a session id (UTF-8) asks whichever edge holds it to end it.
pub fn kick_subject(subject_prefix: &str) -> String {
    Subjects::new(subject_prefix).session_kick()
}

/// Serves SSH and health until `shutdown` resolves.
pub async fn serve(
    config: SshEdgeConfig,
    listeners: SshEdgeListeners,
    deps: SshEdgeDeps,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), SshEdgeError> {
    let key = host_key::load_or_generate(&config.host_key)?;
    let id = &config.identity;
    let edge = Arc::new(edge::Edge {
        authz: AuthzClient::new(channel(&config.authz_url, id, ServiceKind::Authz)?),
        secrets: SecretsClient::new(channel(&config.secrets_url, id, ServiceKind::Secrets)?),
        registry: RegistryClient::new(channel(&config.registry_url, id, ServiceKind::Registry)?),
        bus: deps.bus,
        events: deps.events,
        subjects: Subjects::new(config.subject_prefix.clone()),
        stream_config: StreamConfig::bulk(),
        preauth: Arc::new(Semaphore::new(config.max_unauthenticated)),
        per_source: per_source::PerSource::new(config.per_source.clone()),
        sessions: Mutex::new(Default::default()),
        held: Mutex::new(Default::default()),
        tickets: Default::default(),
        config,
    });
    tracing::info!(
        ssh = %listeners.ssh.local_addr()?,
        edge = %edge.config.edge_id,
        unknown_hostkey = ?edge.config.unknown_host_key,
        "ssh-edge listening"
    );
    let shutdown = shutdown.shared();
    let kicks = tokio::spawn(sessions::watch_kicks(edge.clone()));
    let revocations = tokio::spawn(relay::revocation::watch(edge.clone()));
    let ssh = server::accept_loop(
        edge.clone(),
        listeners.ssh,
        Arc::new(server::russh_config(key, edge.config.kex_post_quantum_only)),
        shutdown.clone(),
    );
    let health =
        phirepass_runtime::health::serve_health_only(SERVICE_NAME, listeners.health, shutdown);
    let (_, health) = tokio::join!(ssh, health);
    kicks.abort();
    revocations.abort();
    health?;
    Ok(())
}
