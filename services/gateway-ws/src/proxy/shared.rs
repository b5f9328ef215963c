//! The proxy's shared parts, held in the gateway's state: the pooled client and the short-lived
//! lookup caches. Nothing here reads the gateway's state, so the state can own it.

use std::borrow::Borrow;
use std::collections::HashMap;
use std::hash::Hash;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use phirepass_bus::Bus;
use phirepass_tunnel::{StreamConfig, Subjects};

use super::connector::TunnelConnector;
use super::engine::Engine;
use super::host::Domains;
use crate::config::GatewayConfig;

/// How long a lookup's node stays cached: a moved tunnel is found again, and a verified app
/// token asked about again, within this.
const CACHE_TTL: Duration = Duration::from_secs(1);
const CACHE_MAX: usize = 4096;

pub struct Proxy {
    pub(super) domains: Domains,
    pub(super) engine: Engine,
    /// Tunnel name -> node id.
    pub(super) tunnels: NodeCache<String>,
    /// (app token, node, port) -> node id.
    pub(super) verified: NodeCache<(String, String, u16)>,
    /// (app token, node, port) -> the token's user id (tickets are per user).
    pub(super) users: NodeCache<(String, String, u16)>,
}

impl Proxy {
    pub fn new(
        config: &GatewayConfig,
        bus: Arc<dyn Bus>,
        subjects: Subjects,
        authz: crate::state::Authz,
    ) -> Self {
        let connector = TunnelConnector {
            bus,
            subjects,
            edge_id: config.gateway_id.clone(),
            stream_config: StreamConfig::bulk(),
            authz,
        };
        Self {
            domains: Domains {
                tunnel: config.proxy.tunnel_domain.clone(),
                apps: config.proxy.apps_domain.clone(),
            },
            engine: Engine::new(connector, config.proxy.response_timeout),
            tunnels: NodeCache::default(),
            verified: NodeCache::default(),
            users: NodeCache::default(),
        }
    }
}

/// key -> (node id, when looked up), bounded: a full cache first drops its expired entries.
pub(super) struct NodeCache<K> {
    entries: Mutex<HashMap<K, (String, Instant)>>,
}

impl<K> Default for NodeCache<K> {
    fn default() -> Self {
        Self {
            entries: Mutex::new(HashMap::new()),
        }
    }
}

impl<K: Hash + Eq> NodeCache<K> {
    fn entries(&self) -> std::sync::MutexGuard<'_, HashMap<K, (String, Instant)>> {
        // A poisoned lock only means a request panicked mid-update; the map is still usable.
        self.entries.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub(super) fn get<Q>(&self, key: &Q) -> Option<String>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        self.entries()
            .get(key)
            .filter(|(_, at)| at.elapsed() < CACHE_TTL)
            .map(|(node, _)| node.clone())
    }

    pub(super) fn put(&self, key: K, node_id: String) {
        let mut entries = self.entries();
        if entries.len() >= CACHE_MAX {
            entries.retain(|_, (_, at)| at.elapsed() < CACHE_TTL);
        }
        entries.insert(key, (node_id, Instant::now()));
    }

    pub(super) fn forget<Q>(&self, key: &Q)
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        self.entries().remove(key);
    }
}
