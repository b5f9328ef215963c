//! The `phirepass.authz.v1.Authz` gRPC service: thin handlers that record a
//! span (parented to the caller's trace) and delegate to [`Inner`].

use std::sync::Arc;
use std::time::Duration;

use phirepass_presence::Presence;
use phirepass_proto::authz as pb;
use phirepass_proto::authz::authz_server::{Authz, AuthzServer};
use phirepass_runtime::grpc::{ServerAuth, ServiceToken, remote_context};
use phirepass_store::Store;
use tonic::service::interceptor::InterceptedService;
use tonic::{Request, Response, Status};
use tracing_opentelemetry::OpenTelemetrySpanExt as _;

use crate::crypto;
use crate::error::Result;
use crate::limiter::LoginLimiter;

/// Authz logic shared by the handlers.
pub(crate) struct Inner {
    pub(crate) store: Store,
    pub(crate) limiter: LoginLimiter,
    pub(crate) session_ttl: Duration,
    /// Hash of a random password, verified against when a login names an
    /// unknown user so that case costs the same as a wrong password.
    pub(crate) dummy_hash: String,
}

/// The Authz gRPC service. Cheap to clone.
#[derive(Clone)]
pub struct AuthzService {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for AuthzService {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AuthzService")
            .field("session_ttl", &self.inner.session_ttl)
            .finish_non_exhaustive()
    }
}

/// The authenticated tonic service, ready for `Server::add_service`.
pub type AuthedAuthzServer = InterceptedService<AuthzServer<AuthzService>, ServerAuth>;

impl AuthzService {
    pub async fn new(
        store: Store,
        presence: Arc<dyn Presence>,
        session_ttl: Duration,
    ) -> Result<Self> {
        let dummy_hash = crypto::hash_password(crypto::new_session_token()).await?;
        Ok(Self {
            inner: Arc::new(Inner {
                store,
                limiter: LoginLimiter::new(presence),
                session_ttl,
                dummy_hash,
            }),
        })
    }

    /// Wraps the service so every call must carry the service token.
    pub fn into_server(self, token: ServiceToken) -> AuthedAuthzServer {
        AuthzServer::with_interceptor(self, ServerAuth::new(token))
    }

    pub(crate) fn store(&self) -> &Store {
        &self.inner.store
    }
}

/// Parents the current handler span to the caller's trace, if it sent one.
fn link<T>(request: &Request<T>) {
    let _ = tracing::Span::current().set_parent(remote_context(request));
}

fn ok<T>(result: Result<T>) -> std::result::Result<Response<T>, Status> {
    result.map(Response::new).map_err(Status::from)
}

#[tonic::async_trait]
impl Authz for AuthzService {
    #[tracing::instrument(name = "authz.create_user", skip_all, fields(username = %request.get_ref().username))]
    async fn create_user(
        &self,
        request: Request<pb::CreateUserRequest>,
    ) -> std::result::Result<Response<pb::User>, Status> {
        link(&request);
        ok(self.inner.create_user(request.into_inner()).await)
    }

    #[tracing::instrument(name = "authz.list_users", skip_all)]
    async fn list_users(
        &self,
        request: Request<pb::ListUsersRequest>,
    ) -> std::result::Result<Response<pb::ListUsersResponse>, Status> {
        link(&request);
        ok(async {
            let users = self.inner.store.list_users().await?;
            Ok(pb::ListUsersResponse {
                users: users.iter().map(crate::accounts::user_to_proto).collect(),
            })
        }
        .await)
    }

    #[tracing::instrument(name = "authz.set_user_disabled", skip_all, fields(username = %request.get_ref().username, disabled = request.get_ref().disabled))]
    async fn set_user_disabled(
        &self,
        request: Request<pb::SetUserDisabledRequest>,
    ) -> std::result::Result<Response<pb::User>, Status> {
        link(&request);
        ok(self.inner.set_user_disabled(request.into_inner()).await)
    }

    #[tracing::instrument(name = "authz.login", skip_all, fields(username = %request.get_ref().username, client_ip = ?request.get_ref().client_ip))]
    async fn login(
        &self,
        request: Request<pb::LoginRequest>,
    ) -> std::result::Result<Response<pb::LoginResponse>, Status> {
        link(&request);
        ok(self.inner.login(request.into_inner()).await)
    }

    #[tracing::instrument(name = "authz.verify_session", skip_all)]
    async fn verify_session(
        &self,
        request: Request<pb::VerifySessionRequest>,
    ) -> std::result::Result<Response<pb::User>, Status> {
        link(&request);
        ok(self
            .inner
            .verify_session(&request.get_ref().session_token)
            .await)
    }

    #[tracing::instrument(name = "authz.logout", skip_all)]
    async fn logout(
        &self,
        request: Request<pb::LogoutRequest>,
    ) -> std::result::Result<Response<pb::LogoutResponse>, Status> {
        link(&request);
        let result = self.inner.logout(&request.get_ref().session_token).await;
        ok(result.map(|()| pb::LogoutResponse {}))
    }

    #[tracing::instrument(name = "authz.create_node_token", skip_all, fields(username = %request.get_ref().username, node = %request.get_ref().node_name))]
    async fn create_node_token(
        &self,
        request: Request<pb::CreateNodeTokenRequest>,
    ) -> std::result::Result<Response<pb::CreateNodeTokenResponse>, Status> {
        link(&request);
        ok(self.inner.create_node_token(request.into_inner()).await)
    }

    #[tracing::instrument(name = "authz.list_tokens", skip_all, fields(username = ?request.get_ref().username))]
    async fn list_tokens(
        &self,
        request: Request<pb::ListTokensRequest>,
    ) -> std::result::Result<Response<pb::ListTokensResponse>, Status> {
        link(&request);
        let tokens = self
            .inner
            .list_tokens(request.get_ref().username.as_deref())
            .await;
        ok(tokens.map(|tokens| pb::ListTokensResponse { tokens }))
    }

    #[tracing::instrument(name = "authz.revoke_token", skip_all, fields(token_id = %request.get_ref().token_id))]
    async fn revoke_token(
        &self,
        request: Request<pb::RevokeTokenRequest>,
    ) -> std::result::Result<Response<pb::RevokeTokenResponse>, Status> {
        link(&request);
        let result = self.inner.revoke_token(&request.get_ref().token_id).await;
        ok(result.map(|()| pb::RevokeTokenResponse {}))
    }

    #[tracing::instrument(name = "authz.verify_node_token", skip_all)]
    async fn verify_node_token(
        &self,
        request: Request<pb::VerifyNodeTokenRequest>,
    ) -> std::result::Result<Response<pb::Node>, Status> {
        link(&request);
        ok(self.inner.verify_node_token(&request.get_ref().token).await)
    }

    #[tracing::instrument(name = "authz.check_tokens", skip_all, fields(count = request.get_ref().token_ids.len()))]
    async fn check_tokens(
        &self,
        request: Request<pb::CheckTokensRequest>,
    ) -> std::result::Result<Response<pb::CheckTokensResponse>, Status> {
        link(&request);
        let invalid = self
            .inner
            .check_tokens(request.into_inner().token_ids)
            .await;
        ok(invalid.map(|invalid_token_ids| pb::CheckTokensResponse { invalid_token_ids }))
    }

    #[tracing::instrument(name = "authz.resolve_node", skip_all, fields(user_id = %request.get_ref().user_id, node = %request.get_ref().node))]
    async fn resolve_node(
        &self,
        request: Request<pb::ResolveNodeRequest>,
    ) -> std::result::Result<Response<pb::Node>, Status> {
        link(&request);
        let req = request.get_ref();
        ok(self.inner.resolve_node(&req.user_id, &req.node).await)
    }

    #[tracing::instrument(name = "authz.list_nodes", skip_all, fields(user_id = ?request.get_ref().user_id))]
    async fn list_nodes(
        &self,
        request: Request<pb::ListNodesRequest>,
    ) -> std::result::Result<Response<pb::ListNodesResponse>, Status> {
        link(&request);
        let nodes = self
            .inner
            .list_nodes(request.get_ref().user_id.as_deref())
            .await;
        ok(nodes.map(|nodes| pb::ListNodesResponse { nodes }))
    }

    #[tracing::instrument(name = "authz.count_users", skip_all)]
    async fn count_users(
        &self,
        request: Request<pb::CountUsersRequest>,
    ) -> std::result::Result<Response<pb::CountUsersResponse>, Status> {
        link(&request);
        let count = self.inner.store.count_users().await.map_err(Into::into);
        ok(count.map(|count| pb::CountUsersResponse { count }))
    }
}
