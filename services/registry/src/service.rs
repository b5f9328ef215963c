//! The `phirepass.registry.v1.Registry` gRPC service.
//!
//! Nodes live under `node:<id>`, sessions under `session:<id>`, tunnels
//! under `tunnel:<name>:<port>` (see [`crate::tunnels`]), as JSON with a TTL
//! that heartbeats refresh: a dead edge's entries expire by themselves.

use std::sync::Arc;
use std::time::Duration;

use phirepass_bus::Bus;
use phirepass_presence::Presence;
use phirepass_proto::registry as pb;
use phirepass_proto::registry::registry_server::{Registry, RegistryServer};
use phirepass_runtime::grpc::{ServerAuth, ServiceToken, remote_context};
use tonic::service::interceptor::InterceptedService;
use tonic::{Request, Response, Status};
use tracing_opentelemetry::OpenTelemetrySpanExt as _;

use crate::error::{RegistryError, Result};
use crate::records::{
    NODE_PREFIX, NodeRecord, SESSION_PREFIX, SessionRecord, check_id, node_key, session_key,
};
use crate::tunnels::{TUNNEL_PREFIX, Upsert};
use crate::{RegistryConfig, RegistryDeps};

// Compare-and-delete retries when a heartbeat rewrites the record between
// our read and our delete.
const DISCONNECT_ATTEMPTS: usize = 3;

/// The Registry gRPC service. Cheap to clone.
#[derive(Clone)]
pub struct RegistryService {
    presence: Arc<dyn Presence>,
    node_ttl: Duration,
    session_ttl: Duration,
    tunnel_ttl: Duration,
    /// The bus and kick subject, when the registry can kick sessions.
    kick: Option<(Arc<dyn Bus>, String)>,
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

/// The authenticated tonic service, ready for `Server::add_service`.
pub type AuthedRegistryServer = InterceptedService<RegistryServer<RegistryService>, ServerAuth>;

pub(crate) fn now_millis() -> i64 {
    let since = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    i64::try_from(since.as_millis()).unwrap_or(i64::MAX)
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
        }
    }

    pub(crate) fn presence(&self) -> &dyn Presence {
        self.presence.as_ref()
    }

    pub(crate) fn tunnel_ttl(&self) -> Duration {
        self.tunnel_ttl
    }

    pub(crate) fn kick_bus(&self) -> Option<(&dyn Bus, &str)> {
        self.kick
            .as_ref()
            .map(|(bus, subject)| (bus.as_ref(), subject.as_str()))
    }

    /// Wraps the service so every call must carry the service token.
    pub fn into_server(self, token: ServiceToken) -> AuthedRegistryServer {
        RegistryServer::with_interceptor(self, ServerAuth::new(token))
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

    async fn put_node(&self, record: &NodeRecord) -> Result<()> {
        let json = serde_json::to_string(record)?;
        self.presence
            .put(&node_key(&record.node_id), &json, self.node_ttl)
            .await?;
        Ok(())
    }

    async fn node_connected(&self, presence: pb::NodePresence) -> Result<()> {
        let mut record = NodeRecord::try_from(presence)?;
        let now = now_millis();
        if record.connected_at == 0 {
            record.connected_at = now;
        }
        record.last_heartbeat = now;
        self.put_node(&record).await?;
        tracing::info!(node_id = %record.node_id, gateway_id = %record.gateway_id, "node connected");
        Ok(())
    }

    /// Refreshes the node unless another gateway holds it now.
    async fn node_heartbeat(&self, presence: pb::NodePresence) -> Result<bool> {
        let mut record = NodeRecord::try_from(presence)?;
        let existing: Option<(String, NodeRecord)> =
            self.get_json(&node_key(&record.node_id)).await?;
        if let Some((_, current)) = existing {
            if current.gateway_id != record.gateway_id {
                tracing::info!(node_id = %record.node_id, holder = %current.gateway_id, "heartbeat from a stale gateway ignored");
                return Ok(false);
            }
            if record.connected_at == 0 {
                record.connected_at = current.connected_at;
            }
            if record.stats.is_none() {
                record.stats = current.stats;
            }
        }
        let now = now_millis();
        if record.connected_at == 0 {
            record.connected_at = now;
        }
        record.last_heartbeat = now;
        self.put_node(&record).await?;
        Ok(true)
    }

    /// Removes the node only while `gateway_id` still holds it: the delete
    /// compares against the exact record read, so a takeover in between
    /// makes it a no-op.
    async fn node_disconnected(&self, node_id: &str, gateway_id: &str) -> Result<bool> {
        check_id("node_id", node_id)?;
        let key = node_key(node_id);
        for _ in 0..DISCONNECT_ATTEMPTS {
            let Some((raw, current)) = self.get_json::<NodeRecord>(&key).await? else {
                return Ok(false);
            };
            if current.gateway_id != gateway_id {
                tracing::info!(node_id, holder = %current.gateway_id, "disconnect from a non-holder ignored");
                return Ok(false);
            }
            if self.presence.delete_if(&key, &raw).await? {
                tracing::info!(node_id, gateway_id, "node disconnected");
                return Ok(true);
            }
        }
        Ok(false)
    }

    async fn list_nodes(&self, user_id: Option<&str>) -> Result<Vec<pb::NodePresence>> {
        let mut out = Vec::new();
        for (key, raw) in self.presence.list(NODE_PREFIX).await? {
            match serde_json::from_str::<NodeRecord>(&raw) {
                Ok(r) if user_id.is_none_or(|u| u == r.user_id) => out.push(r.into()),
                Ok(_) => {}
                Err(error) => tracing::warn!(%key, %error, "skipping unreadable node record"),
            }
        }
        Ok(out)
    }

    async fn get_node(&self, node_id: &str) -> Result<pb::NodePresence> {
        check_id("node_id", node_id)?;
        let (_, record) = self
            .get_json::<NodeRecord>(&node_key(node_id))
            .await?
            .ok_or(RegistryError::NotFound("node"))?;
        Ok(record.into())
    }

    /// Opened and heartbeat are both upserts that keep the first start time.
    async fn upsert_session(&self, presence: pb::SessionPresence) -> Result<()> {
        let mut record = SessionRecord::try_from(presence)?;
        let key = session_key(&record.session_id);
        if record.started_at == 0 {
            let existing = self.get_json::<SessionRecord>(&key).await?;
            record.started_at = existing.map_or_else(now_millis, |(_, r)| r.started_at);
        }
        record.last_seen = now_millis();
        let json = serde_json::to_string(&record)?;
        self.presence.put(&key, &json, self.session_ttl).await?;
        Ok(())
    }

    async fn list_sessions(
        &self,
        req: &pb::ListSessionsRequest,
    ) -> Result<Vec<pb::SessionPresence>> {
        let mut out = Vec::new();
        for (key, raw) in self.presence.list(SESSION_PREFIX).await? {
            match serde_json::from_str::<SessionRecord>(&raw) {
                Ok(r)
                    if req.user_id.as_ref().is_none_or(|u| *u == r.user_id)
                        && req.node_id.as_ref().is_none_or(|n| *n == r.node_id) =>
                {
                    out.push(r.into());
                }
                Ok(_) => {}
                Err(error) => tracing::warn!(%key, %error, "skipping unreadable session record"),
            }
        }
        Ok(out)
    }
}

fn link<T>(request: &Request<T>) {
    let _ = tracing::Span::current().set_parent(remote_context(request));
}

fn ok<T>(result: Result<T>) -> std::result::Result<Response<T>, Status> {
    result.map(Response::new).map_err(Status::from)
}

#[tonic::async_trait]
impl Registry for RegistryService {
    #[tracing::instrument(name = "registry.node_connected", skip_all, fields(node_id = %request.get_ref().node_id, gateway_id = %request.get_ref().gateway_id))]
    async fn node_connected(
        &self,
        request: Request<pb::NodePresence>,
    ) -> std::result::Result<Response<pb::NodeConnectedResponse>, Status> {
        link(&request);
        let done = RegistryService::node_connected(self, request.into_inner()).await;
        ok(done.map(|()| pb::NodeConnectedResponse {}))
    }

    #[tracing::instrument(name = "registry.node_heartbeat", skip_all, fields(node_id = %request.get_ref().node_id, gateway_id = %request.get_ref().gateway_id))]
    async fn node_heartbeat(
        &self,
        request: Request<pb::NodePresence>,
    ) -> std::result::Result<Response<pb::NodeHeartbeatResponse>, Status> {
        link(&request);
        let accepted = RegistryService::node_heartbeat(self, request.into_inner()).await;
        ok(accepted.map(|accepted| pb::NodeHeartbeatResponse { accepted }))
    }

    #[tracing::instrument(name = "registry.node_disconnected", skip_all, fields(node_id = %request.get_ref().node_id, gateway_id = %request.get_ref().gateway_id))]
    async fn node_disconnected(
        &self,
        request: Request<pb::NodeDisconnectedRequest>,
    ) -> std::result::Result<Response<pb::NodeDisconnectedResponse>, Status> {
        link(&request);
        let req = request.get_ref();
        let removed = RegistryService::node_disconnected(self, &req.node_id, &req.gateway_id).await;
        ok(removed.map(|removed| pb::NodeDisconnectedResponse { removed }))
    }

    #[tracing::instrument(name = "registry.list_nodes", skip_all, fields(user_id = ?request.get_ref().user_id))]
    async fn list_nodes(
        &self,
        request: Request<pb::ListNodesRequest>,
    ) -> std::result::Result<Response<pb::ListNodesResponse>, Status> {
        link(&request);
        let nodes = RegistryService::list_nodes(self, request.get_ref().user_id.as_deref()).await;
        ok(nodes.map(|nodes| pb::ListNodesResponse { nodes }))
    }

    #[tracing::instrument(name = "registry.get_node", skip_all, fields(node_id = %request.get_ref().node_id))]
    async fn get_node(
        &self,
        request: Request<pb::GetNodeRequest>,
    ) -> std::result::Result<Response<pb::NodePresence>, Status> {
        link(&request);
        ok(RegistryService::get_node(self, &request.get_ref().node_id).await)
    }

    #[tracing::instrument(name = "registry.session_opened", skip_all, fields(session_id = %request.get_ref().session_id, node_id = %request.get_ref().node_id))]
    async fn session_opened(
        &self,
        request: Request<pb::SessionPresence>,
    ) -> std::result::Result<Response<pb::SessionOpenedResponse>, Status> {
        link(&request);
        let done = self.upsert_session(request.into_inner()).await;
        ok(done.map(|()| pb::SessionOpenedResponse {}))
    }

    #[tracing::instrument(name = "registry.session_heartbeat", skip_all, fields(session_id = %request.get_ref().session_id))]
    async fn session_heartbeat(
        &self,
        request: Request<pb::SessionPresence>,
    ) -> std::result::Result<Response<pb::SessionHeartbeatResponse>, Status> {
        link(&request);
        let done = self.upsert_session(request.into_inner()).await;
        ok(done.map(|()| pb::SessionHeartbeatResponse {}))
    }

    #[tracing::instrument(name = "registry.session_closed", skip_all, fields(session_id = %request.get_ref().session_id))]
    async fn session_closed(
        &self,
        request: Request<pb::SessionClosedRequest>,
    ) -> std::result::Result<Response<pb::SessionClosedResponse>, Status> {
        link(&request);
        let session_id = &request.get_ref().session_id;
        let removed = async {
            check_id("session_id", session_id)?;
            Ok(self.presence.delete(&session_key(session_id)).await?)
        }
        .await;
        ok(removed.map(|removed| pb::SessionClosedResponse { removed }))
    }

    #[tracing::instrument(name = "registry.list_sessions", skip_all, fields(user_id = ?request.get_ref().user_id, node_id = ?request.get_ref().node_id))]
    async fn list_sessions(
        &self,
        request: Request<pb::ListSessionsRequest>,
    ) -> std::result::Result<Response<pb::ListSessionsResponse>, Status> {
        link(&request);
        let sessions = RegistryService::list_sessions(self, request.get_ref()).await;
        ok(sessions.map(|sessions| pb::ListSessionsResponse { sessions }))
    }

    #[tracing::instrument(name = "registry.tunnel_opened", skip_all, fields(name = %request.get_ref().name, port = request.get_ref().port, session_id = %request.get_ref().session_id))]
    async fn tunnel_opened(
        &self,
        request: Request<pb::TunnelPresence>,
    ) -> std::result::Result<Response<pb::TunnelOpenedResponse>, Status> {
        link(&request);
        let done = match self.upsert_tunnel(request.into_inner()).await {
            Ok(Upsert::Held) => Ok(pb::TunnelOpenedResponse {}),
            Ok(Upsert::Taken { .. }) => Err(RegistryError::AlreadyExists("tunnel")),
            Err(e) => Err(e),
        };
        ok(done)
    }

    #[tracing::instrument(name = "registry.tunnel_heartbeat", skip_all, fields(name = %request.get_ref().name, port = request.get_ref().port, session_id = %request.get_ref().session_id))]
    async fn tunnel_heartbeat(
        &self,
        request: Request<pb::TunnelPresence>,
    ) -> std::result::Result<Response<pb::TunnelHeartbeatResponse>, Status> {
        link(&request);
        let accepted = self
            .upsert_tunnel(request.into_inner())
            .await
            .map(|u| match u {
                Upsert::Held => true,
                Upsert::Taken { holder } => {
                    tracing::info!(%holder, "heartbeat for a tunnel another session holds ignored");
                    false
                }
            });
        ok(accepted.map(|accepted| pb::TunnelHeartbeatResponse { accepted }))
    }

    #[tracing::instrument(name = "registry.tunnel_closed", skip_all, fields(name = %request.get_ref().name, port = request.get_ref().port, session_id = %request.get_ref().session_id))]
    async fn tunnel_closed(
        &self,
        request: Request<pb::TunnelClosedRequest>,
    ) -> std::result::Result<Response<pb::TunnelClosedResponse>, Status> {
        link(&request);
        let removed = self.close_tunnel(request.get_ref()).await;
        ok(removed.map(|removed| pb::TunnelClosedResponse { removed }))
    }

    #[tracing::instrument(name = "registry.get_tunnel", skip_all, fields(name = %request.get_ref().name, port = request.get_ref().port))]
    async fn get_tunnel(
        &self,
        request: Request<pb::GetTunnelRequest>,
    ) -> std::result::Result<Response<pb::TunnelPresence>, Status> {
        link(&request);
        let req = request.get_ref();
        ok(RegistryService::get_tunnel(self, &req.name, req.port).await)
    }

    #[tracing::instrument(name = "registry.list_tunnels", skip_all, fields(user_id = ?request.get_ref().user_id))]
    async fn list_tunnels(
        &self,
        request: Request<pb::ListTunnelsRequest>,
    ) -> std::result::Result<Response<pb::ListTunnelsResponse>, Status> {
        link(&request);
        let user_id = request.get_ref().user_id.as_deref();
        let tunnels = RegistryService::list_tunnels(self, TUNNEL_PREFIX, user_id).await;
        ok(tunnels.map(|t| pb::ListTunnelsResponse {
            tunnels: t.into_iter().map(Into::into).collect(),
        }))
    }

    #[tracing::instrument(name = "registry.kick_tunnel", skip_all, fields(name = %request.get_ref().name))]
    async fn kick_tunnel(
        &self,
        request: Request<pb::KickTunnelRequest>,
    ) -> std::result::Result<Response<pb::KickTunnelResponse>, Status> {
        link(&request);
        let kicked = RegistryService::kick_tunnel(self, &request.get_ref().name).await;
        ok(kicked.map(|session_ids| pb::KickTunnelResponse { session_ids }))
    }
}
