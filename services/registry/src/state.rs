//! The registry's state: the presence store, the TTLs and the bus that
//! carries kicks. [`crate::nodes`] and [`crate::tunnels`] add the operations
//! on it; [`crate::service`] serves them over gRPC.

use std::sync::Arc;
use std::time::Duration;

use phirepass_bus::Bus;
use phirepass_presence::Presence;

use crate::config::{RegistryConfig, RegistryDeps};
use crate::error::Result;

/// The Registry gRPC service. Cheap to clone.
#[derive(Clone)]
pub struct RegistryService {
    presence: Arc<dyn Presence>,
    node_ttl: Duration,
    session_ttl: Duration,
    tunnel_ttl: Duration,
    /// The bus and kick subject, when the registry can kick sessions.
    kick: Option<(Arc<dyn Bus>, String)>,
    /// Verifies admin clients' API tokens (when authz is configured).
    admin: Option<crate::admin::AdminTokens>,
}

impl std::fmt::Debug for RegistryService {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RegistryService")
            .field("node_ttl", &self.node_ttl)
            .field("session_ttl", &self.session_ttl)
            .field("tunnel_ttl", &self.tunnel_ttl)
            .field("kick", &self.kick.as_ref().map(|(_, subject)| subject))
            .finish_non_exhaustive()
    }
}

impl RegistryService {
    pub fn new(config: &RegistryConfig, deps: RegistryDeps) -> Self {
        let kick_subject =
            phirepass_tunnel::Subjects::new(config.subject_prefix.clone()).session_kick();
        Self {
            presence: deps.presence,
            node_ttl: config.node_ttl,
            session_ttl: config.session_ttl,
            tunnel_ttl: config.tunnel_ttl,
            kick: deps.bus.map(|bus| (bus, kick_subject)),
            admin: None,
        }
    }

    /// Accepts admin clients' API tokens, verified with authz.
    pub fn with_admin_tokens(mut self, admin: Option<crate::admin::AdminTokens>) -> Self {
        self.admin = admin;
        self
    }

    pub(crate) fn admin_tokens(&self) -> Option<&crate::admin::AdminTokens> {
        self.admin.as_ref()
    }

    pub(crate) fn presence(&self) -> &dyn Presence {
        self.presence.as_ref()
    }

    pub(crate) fn tunnel_ttl(&self) -> Duration {
        self.tunnel_ttl
    }

    pub(crate) fn node_ttl(&self) -> Duration {
        self.node_ttl
    }

    pub(crate) fn session_ttl(&self) -> Duration {
        self.session_ttl
    }

    pub(crate) fn kick_bus(&self) -> Option<(&dyn Bus, &str)> {
        self.kick
            .as_ref()
            .map(|(bus, subject)| (bus.as_ref(), subject.as_str()))
    }

    pub(crate) async fn get_json<T: serde::de::DeserializeOwned>(
        &self,
        key: &str,
    ) -> Result<Option<(String, T)>> {
        let Some(raw) = self.presence.get(key).await? else {
            return Ok(None);
        };
        Ok(Some((raw.clone(), serde_json::from_str(&raw)?)))
    }
}
