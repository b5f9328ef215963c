//! State shared by every connection of one ssh-edge instance, and per connection.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};

use phirepass_bus::{Bus, EventLog};
use phirepass_proto::authz::authz_client::AuthzClient;
use phirepass_proto::registry::SessionPresence;
use phirepass_proto::registry::registry_client::RegistryClient;
use phirepass_proto::secrets::secrets_client::SecretsClient;
use phirepass_runtime::grpc::AuthedChannel;
use phirepass_tunnel::{StreamConfig, Subjects};
use russh::server::Handle;
use tokio::sync::{OnceCell, Semaphore};

use crate::config::SshEdgeConfig;
use crate::per_source::{Outcome, PerSource};
use crate::relay::TargetLink;
use crate::tunnels::SessionTunnels;
use crate::username::Login;

pub(crate) struct Edge {
    pub config: SshEdgeConfig,
    pub authz: AuthzClient<AuthedChannel>,
    pub secrets: SecretsClient<AuthedChannel>,
    pub registry: RegistryClient<AuthedChannel>,
    pub bus: Arc<dyn Bus>,
    pub events: Arc<dyn EventLog>,
    pub subjects: Subjects,
    pub stream_config: StreamConfig,
    /// Permits for unauthenticated connections; a connection gives its permit back on login.
    pub preauth: Arc<Semaphore>,
    /// Per-source caps and penalties, checked before the global cap.
    pub per_source: PerSource,
    /// Sessions this instance holds, by session id, for kicks.
    pub sessions: Mutex<HashMap<String, Handle>>,
    /// Authenticated connections by session id, re-checked against their user's access.
    pub held: Mutex<HashMap<String, crate::relay::revocation::Held>>,
    /// authz's ticket keys, for opens to the `ssh -R` nodes held here (issue #8).
    pub tickets: crate::tickets::HolderTickets,
}

/// Who logged in, once authentication succeeded.
#[derive(Clone, Debug)]
pub(crate) struct Authed {
    pub login: Login,
    pub user_id: String,
    pub username: String,
}

/// One client connection.
pub(crate) struct Conn {
    pub edge: Arc<Edge>,
    pub peer: SocketAddr,
    /// Also the registry session id.
    pub id: String,
    pub handle: OnceLock<Handle>,
    pub authed: OnceLock<Authed>,
    /// The user is verified and answering the target's prompts: the pre-auth deadline is
    /// extended once, by the time the target may take to ask and check.
    pub interactive: AtomicBool,
    /// Authentication attempts refused (wrong password or key, malformed username).
    pub auth_failures: AtomicU32,
    /// The connection to the target, shared by all channels of a relay login.
    pub link: OnceCell<Arc<TargetLink>>,
    /// Why the target of a relay login cannot be used, found while she logged in.
    pub link_error: OnceLock<String>,
    pub bytes_to_target: AtomicU64,
    pub bytes_to_client: AtomicU64,
    /// Set once the session is registered (first relayed channel).
    pub presence: OnceLock<SessionPresence>,
    /// `ssh -R` forwards of a management login.
    pub tunnels: SessionTunnels,
}

impl Conn {
    pub fn new(edge: Arc<Edge>, peer: SocketAddr) -> Self {
        Self {
            edge,
            peer,
            id: format!("ssh-{:016x}", rand::random::<u64>()),
            handle: OnceLock::new(),
            authed: OnceLock::new(),
            interactive: AtomicBool::new(false),
            auth_failures: AtomicU32::new(0),
            link: OnceCell::new(),
            link_error: OnceLock::new(),
            bytes_to_target: AtomicU64::new(0),
            bytes_to_client: AtomicU64::new(0),
            presence: OnceLock::new(),
            tunnels: SessionTunnels::default(),
        }
    }

    pub fn client_ip(&self) -> String {
        self.peer.ip().to_string()
    }

    /// How the connection ended as far as its source's penalty goes (not a shutdown).
    pub fn outcome(&self) -> Outcome {
        if self.authed.get().is_some() || self.interactive.load(Ordering::Relaxed) {
            Outcome::Verified
        } else if self.auth_failures.load(Ordering::Relaxed) > 0 {
            Outcome::AuthFailed
        } else {
            Outcome::NoAuth
        }
    }
}
