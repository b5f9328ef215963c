//! The `phirepass.registry.v1.Registry` gRPC service.
//!
//! Nodes live under `node:<id>`, sessions under `session:<id>` (see
//! [`crate::nodes`]), tunnels under `tunnel:<name>:<port>` (see
//! [`crate::tunnels`]), as JSON with a TTL that heartbeats refresh: a dead
//! edge's entries expire by themselves. The handlers here only link the
//! caller's trace, delegate, and convert.

use phirepass_proto::registry as pb;
use phirepass_proto::registry::registry_server::{Registry, RegistryServer};
use phirepass_runtime::grpc::remote_context;
use tonic::{Request, Response, Status};
use tracing_opentelemetry::OpenTelemetrySpanExt as _;

use crate::admin::Need;
use crate::error::{RegistryError, Result};
use crate::nodes::Claim;
use crate::records::{check_id, session_key};
pub use crate::state::RegistryService;
use crate::tunnels::{TUNNEL_PREFIX, Upsert};

/// The tonic service, ready for `Server::add_service`: who may call what is enforced in front
/// of it ([`crate::policy::POLICY`]) and, for admin clients, by [`crate::admin::allow`].
pub type AuthedRegistryServer = RegistryServer<RegistryService>;

impl RegistryService {
    pub fn into_server(self) -> AuthedRegistryServer {
        RegistryServer::new(self)
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

    #[tracing::instrument(name = "registry.claim_node", skip_all, fields(node_id = ?request.get_ref().presence.as_ref().map(|p| &p.node_id)))]
    async fn claim_node(
        &self,
        request: Request<pb::ClaimNodeRequest>,
    ) -> std::result::Result<Response<pb::ClaimNodeResponse>, Status> {
        link(&request);
        let req = request.into_inner();
        let presence = req
            .presence
            .ok_or_else(|| Status::invalid_argument("presence is required"))?;
        let claim = RegistryService::claim_node(self, presence, req.takeover_after_ms).await;
        ok(claim.map(|claim| match claim {
            Claim::Granted => pb::ClaimNodeResponse {
                granted: true,
                holder: None,
            },
            Claim::Held(holder) => pb::ClaimNodeResponse {
                granted: false,
                holder: Some((*holder).into()),
            },
        }))
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
            Ok(self.presence().delete(&session_key(session_id)).await?)
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
        crate::admin::allow(self.admin_tokens(), &request, Need::Read).await?;
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
        crate::admin::allow(self.admin_tokens(), &request, Need::Admin).await?;
        let kicked = RegistryService::kick_tunnel(self, &request.get_ref().name).await;
        ok(kicked.map(|session_ids| pb::KickTunnelResponse { session_ids }))
    }
}
