//! What every handler of one gateway instance shares.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Instant;

use phirepass_bus::{Bus, EventLog, MemoryEventLog};
use phirepass_pki::ServiceKind;
use phirepass_proto::authz::authz_client::AuthzClient;
use phirepass_proto::registry::registry_client::RegistryClient;
use phirepass_proto::secrets::secrets_client::SecretsClient;
use phirepass_runtime::grpc::{AuthedChannel, channel};
use phirepass_tunnel::{StreamConfig, Subjects};
use tokio::sync::{mpsc, oneshot};
use tokio_util::task::TaskTracker;

use crate::config::GatewayConfig;
use crate::error::GatewayError;

pub type Authz = AuthzClient<AuthedChannel>;
pub type Registry = RegistryClient<AuthedChannel>;
pub type Secrets = SecretsClient<AuthedChannel>;

/// Why the gateway asks a held agent to go away.
#[derive(Debug, Clone)]
pub struct Kick {
    pub reason: String,
    /// Fatal kicks (revoked token) tell the agent not to reconnect.
    pub fatal: bool,
}

/// An agent connection this instance holds.
pub struct HeldNode {
    /// Distinguishes a reconnect of the same node from the connection it replaced.
    pub conn_id: u64,
    pub token_id: String,
    pub kick: mpsc::UnboundedSender<Kick>,
    /// Where the agent connected from, and when (unix ms): told to a refused second agent.
    pub agent_addr: String,
    /// The agent process (its Auth `instance`; empty from older agents).
    pub agent_instance: String,
    pub connected_at_ms: i64,
    /// When the agent last sent anything (unix ms), updated by the connection's read loop.
    pub last_seen_ms: Arc<std::sync::atomic::AtomicI64>,
}

impl HeldNode {
    pub fn last_heard(&self) -> i64 {
        self.last_seen_ms.load(std::sync::atomic::Ordering::Relaxed)
    }
}

/// A browser connection this instance serves.
#[derive(Clone, Debug, serde::Serialize)]
pub struct WebConnection {
    pub id: String,
    pub user_id: String,
    pub username: String,
    pub client_ip: String,
    pub node_id: Option<String>,
    pub connected_at_ms: i64,
}

pub struct AppState {
    pub config: GatewayConfig,
    pub bus: Arc<dyn Bus>,
    pub subjects: Subjects,
    pub stream_config: StreamConfig,
    pub authz: Authz,
    pub registry: Registry,
    /// The vault, for node host-key pins (`None` without `secrets_url`: terminals refused).
    pub secrets: Option<Secrets>,
    pub started_at: Instant,
    nodes: Mutex<HashMap<String, HeldNode>>,
    web: Mutex<HashMap<String, WebConnection>>,
    /// Terminals running here, by session id: firing the sender ends one (a kick).
    terminals: Mutex<HashMap<String, oneshot::Sender<()>>>,
    /// Set once authz says the first user exists, so pages stop asking.
    pub setup_done: std::sync::atomic::AtomicBool,
    /// The HTTP proxy by Host (tunnels, app ports).
    pub proxy: crate::proxy::shared::Proxy,
    /// Every browser and agent WebSocket, so shutdown can wait for them to finish.
    pub tasks: TaskTracker,
    /// Browser sockets, terminals and app WebSockets, re-checked against authz.
    pub live: crate::browser::revocation::LiveAccess,
    /// authz's ticket keys: opens to held agents are checked against them (issue #8).
    pub tickets: crate::tickets::Tickets,
    /// Command audit events (`<prefix>.events.audit`): runs asked here, agents' own events.
    pub audit: crate::commands::audit::AuditLog,
}

impl AppState {
    /// Connects the authz, registry and secrets clients (lazily: nothing is dialled until first use).
    /// Audit events go to a fresh in-memory log; see [`AppState::connect_with`].
    pub fn connect(config: GatewayConfig, bus: Arc<dyn Bus>) -> Result<Arc<Self>, GatewayError> {
        Self::connect_with(config, bus, Arc::new(MemoryEventLog::new()))
    }

    /// [`AppState::connect`], publishing audit events on `events`.
    pub fn connect_with(
        config: GatewayConfig,
        bus: Arc<dyn Bus>,
        events: Arc<dyn EventLog>,
    ) -> Result<Arc<Self>, GatewayError> {
        let startup = |e: phirepass_runtime::grpc::GrpcError| GatewayError::Startup(e.to_string());
        let id = &config.identity;
        let authz =
            AuthzClient::new(channel(&config.authz_url, id, ServiceKind::Authz).map_err(startup)?);
        let registry = RegistryClient::new(
            channel(&config.registry_url, id, ServiceKind::Registry).map_err(startup)?,
        );
        let secrets = match &config.secrets_url {
            Some(url) => Some(SecretsClient::new(
                channel(url, id, ServiceKind::Secrets).map_err(startup)?,
            )),
            None => None,
        };
        let mut state = Self::new(config, bus, authz, registry);
        state.secrets = secrets;
        state.audit = crate::commands::audit::AuditLog::new(events, state.audit_subject());
        Ok(Arc::new(state))
    }

    pub fn new(config: GatewayConfig, bus: Arc<dyn Bus>, authz: Authz, registry: Registry) -> Self {
        let subjects = Subjects::new(config.subject_prefix.clone());
        Self {
            proxy: crate::proxy::shared::Proxy::new(
                &config,
                bus.clone(),
                subjects.clone(),
                authz.clone(),
            ),
            tickets: crate::tickets::Tickets::new(authz.clone()),
            audit: crate::commands::audit::AuditLog::new(
                Arc::new(MemoryEventLog::new()),
                format!("{}.events.audit", config.subject_prefix),
            ),
            subjects,
            stream_config: StreamConfig::default(),
            config,
            bus,
            authz,
            registry,
            secrets: None,
            started_at: Instant::now(),
            nodes: Mutex::new(HashMap::new()),
            web: Mutex::new(HashMap::new()),
            terminals: Mutex::new(HashMap::new()),
            setup_done: std::sync::atomic::AtomicBool::new(false),
            tasks: TaskTracker::new(),
            live: Default::default(),
        }
    }

    /// Where this gateway's audit events go: `<prefix>.events.audit`, beside authz's.
    pub fn audit_subject(&self) -> String {
        format!("{}.events.audit", self.config.subject_prefix)
    }

    pub fn nodes(&self) -> MutexGuard<'_, HashMap<String, HeldNode>> {
        // A poisoned lock only means another connection panicked mid-update; the map is still usable.
        self.nodes.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub fn terminals(&self) -> MutexGuard<'_, HashMap<String, oneshot::Sender<()>>> {
        self.terminals.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub fn web(&self) -> MutexGuard<'_, HashMap<String, WebConnection>> {
        self.web.lock().unwrap_or_else(|p| p.into_inner())
    }
}
