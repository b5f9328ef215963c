//! The `phirepass.authz.v1.Authz` gRPC service: handlers that record a span
//! (parented to the caller's trace), check the caller's access and delegate
//! to [`Inner`].

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use phirepass_bus::EventLog;
use phirepass_presence::Presence;
use phirepass_proto::authz as pb;
use phirepass_proto::authz::authz_server::{Authz, AuthzServer};
use phirepass_runtime::grpc::{ServiceToken, remote_context};
use phirepass_store::Store;
use tonic::service::interceptor::InterceptedService;
use tonic::{Request, Response, Status};
use tracing::Instrument as _;
use tracing_opentelemetry::OpenTelemetrySpanExt as _;

use crate::auth::{Access, AdminAuth};
use crate::crypto;
use crate::decision_cache::DecisionCache;
use crate::error::Result;
use crate::limiter::{LoginLimiter, LoginLimits};
use crate::tunnel_names::TunnelNamePolicy;

/// Authz logic shared by the handlers.
pub(crate) struct Inner {
    pub(crate) store: Store,
    pub(crate) limiter: LoginLimiter,
    pub(crate) cache: DecisionCache,
    pub(crate) events: Arc<dyn EventLog>,
    pub(crate) audit_subject: String,
    pub(crate) session_ttl: Duration,
    pub(crate) device_starts_per_minute: u64,
    pub(crate) device_code_ttl: Duration,
    /// App tokens live here (and the decision cache and limiter).
    pub(crate) presence: Arc<dyn Presence>,
    pub(crate) tunnel_name_policy: TunnelNamePolicy,
    pub(crate) tunnel_reserved_names: Vec<String>,
    pub(crate) app_token_ttl: Duration,
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
pub type AuthedAuthzServer = InterceptedService<AuthzServer<AuthzService>, AdminAuth>;

/// What [`AuthzService::new`] needs besides the store.
#[derive(Clone)]
pub struct ServiceParts {
    pub presence: Arc<dyn Presence>,
    pub events: Arc<dyn EventLog>,
    pub audit_subject: String,
    pub session_ttl: Duration,
    pub limits: LoginLimits,
    pub device_starts_per_minute: u64,
    pub device_code_ttl: Duration,
    /// How long an Authorize decision is cached (zero: not at all).
    pub decision_cache_ttl: Duration,
    pub tunnel_name_policy: TunnelNamePolicy,
    /// Added to the built-in reserved tunnel names.
    pub tunnel_reserved_names: Vec<String>,
    pub app_token_ttl: Duration,
}

impl AuthzService {
    pub async fn new(store: Store, parts: ServiceParts) -> Result<Self> {
        let dummy_hash = crypto::hash_password(crypto::new_session_token()).await?;
        Ok(Self {
            inner: Arc::new(Inner {
                store,
                cache: DecisionCache::new(parts.presence.clone(), parts.decision_cache_ttl),
                limiter: LoginLimiter::new(parts.presence.clone(), parts.limits),
                presence: parts.presence,
                tunnel_name_policy: parts.tunnel_name_policy,
                tunnel_reserved_names: parts.tunnel_reserved_names,
                app_token_ttl: parts.app_token_ttl,
                events: parts.events,
                audit_subject: parts.audit_subject,
                session_ttl: parts.session_ttl,
                device_starts_per_minute: parts.device_starts_per_minute,
                device_code_ttl: parts.device_code_ttl,
                dummy_hash,
            }),
        })
    }

    /// Wraps the service so every call must carry the service token or an
    /// API token (checked per method).
    pub fn into_server(self, token: ServiceToken) -> AuthedAuthzServer {
        AuthzServer::with_interceptor(self, AdminAuth::new(token))
    }

    pub(crate) fn store(&self) -> &Store {
        &self.inner.store
    }

    /// Links the span, checks access, runs `f`.
    async fn run<Req, Resp, F, Fut>(
        &self,
        request: Request<Req>,
        access: Access,
        f: F,
    ) -> Reply<Resp>
    where
        F: FnOnce(Arc<Inner>, Req) -> Fut,
        Fut: Future<Output = Result<Resp>>,
    {
        let _ = tracing::Span::current().set_parent(remote_context(&request));
        let actor = self.inner.guard(&request, access).await?;
        crate::auth::with_actor(actor, f(self.inner.clone(), request.into_inner()))
            .await
            .map(Response::new)
            .map_err(Status::from)
    }
}

type Reply<T> = std::result::Result<Response<T>, Status>;

/// One handler: a span named `authz.<method>` (plus fields), then
/// [`AuthzService::run`] with the access it needs. Written out in the shape
/// `#[async_trait]` gives the trait, because that attribute cannot see into
/// macro invocations.
macro_rules! handler {
    ($method:ident($request:ident: $req:ty) -> $resp:ty, $access:ident, |$i:ident, $r:ident| $body:expr $(, $($field:tt)*)?) => {
        fn $method<'life0, 'async_trait>(
            &'life0 self,
            $request: Request<$req>,
        ) -> Pin<Box<dyn Future<Output = Reply<$resp>> + Send + 'async_trait>>
        where
            'life0: 'async_trait,
            Self: 'async_trait,
        {
            let span = tracing::info_span!(concat!("authz.", stringify!($method)) $(, $($field)*)?);
            Box::pin(
                async move {
                    self.run($request, Access::$access, |$i: Arc<Inner>, $r: $req| async move { $body })
                        .await
                }
                .instrument(span),
            )
        }
    };
}

impl Authz for AuthzService {
    handler!(create_user(request: pb::CreateUserRequest) -> pb::User, Admin,
        |i, r| i.create_user(r).await, username = %request.get_ref().username);
    handler!(list_users(request: pb::ListUsersRequest) -> pb::ListUsersResponse, Read, |i, _r| {
        let users = i.store.list_users().await?;
        Ok(pb::ListUsersResponse {
            users: users.iter().map(crate::accounts::user_to_proto).collect(),
        })
    });
    handler!(set_user_disabled(request: pb::SetUserDisabledRequest) -> pb::User, Admin,
        |i, r| i.set_user_disabled(r).await,
        username = %request.get_ref().username, disabled = request.get_ref().disabled);
    handler!(login(request: pb::LoginRequest) -> pb::LoginResponse, Service,
        |i, r| i.login(r).await,
        username = %request.get_ref().username, client_ip = ?request.get_ref().client_ip);
    handler!(verify_session(request: pb::VerifySessionRequest) -> pb::User, Service,
        |i, r| i.verify_session(&r.session_token).await);
    handler!(logout(request: pb::LogoutRequest) -> pb::LogoutResponse, Service, |i, r| {
        i.logout(&r.session_token).await.map(|()| pb::LogoutResponse {})
    });
    handler!(create_node_token(request: pb::CreateNodeTokenRequest) -> pb::CreateNodeTokenResponse, Admin,
        |i, r| i.create_node_token(r).await,
        username = %request.get_ref().username, node = %request.get_ref().node_name);
    handler!(list_tokens(request: pb::ListTokensRequest) -> pb::ListTokensResponse, Read, |i, r| {
        let tokens = i.list_tokens(r.username.as_deref()).await?;
        Ok(pb::ListTokensResponse { tokens })
    }, username = ?request.get_ref().username);
    handler!(revoke_token(request: pb::RevokeTokenRequest) -> pb::RevokeTokenResponse, Admin, |i, r| {
        i.revoke_token(&r.token_id).await.map(|()| pb::RevokeTokenResponse {})
    }, token_id = %request.get_ref().token_id);
    handler!(verify_node_token(request: pb::VerifyNodeTokenRequest) -> pb::Node, Service,
        |i, r| i.verify_node_token(&r.token).await);
    handler!(check_tokens(request: pb::CheckTokensRequest) -> pb::CheckTokensResponse, Service, |i, r| {
        let invalid_token_ids = i.check_tokens(r.token_ids).await?;
        Ok(pb::CheckTokensResponse { invalid_token_ids })
    }, count = request.get_ref().token_ids.len());
    handler!(list_nodes(request: pb::ListNodesRequest) -> pb::ListNodesResponse, Read, |i, r| {
        let nodes = i.list_nodes(r.user_id.as_deref()).await?;
        Ok(pb::ListNodesResponse { nodes })
    }, user_id = ?request.get_ref().user_id);
    handler!(count_users(request: pb::CountUsersRequest) -> pb::CountUsersResponse, Read, |i, _r| {
        let count = i.store.count_users().await?;
        Ok(pb::CountUsersResponse { count })
    });

    handler!(remove_user(request: pb::RemoveUserRequest) -> pb::RemoveUserResponse, Admin,
        |i, r| i.remove_user(r).await, username = %request.get_ref().username);
    handler!(set_password(request: pb::SetPasswordRequest) -> pb::User, Admin,
        |i, r| i.set_password(r).await, username = %request.get_ref().username);
    handler!(add_user_key(request: pb::AddUserKeyRequest) -> pb::UserKey, Admin,
        |i, r| i.add_user_key(r).await, username = %request.get_ref().username);
    handler!(list_user_keys(request: pb::ListUserKeysRequest) -> pb::ListUserKeysResponse, Read,
        |i, r| i.list_user_keys(r).await, username = %request.get_ref().username);
    handler!(remove_user_key(request: pb::RemoveUserKeyRequest) -> pb::RemoveUserKeyResponse, Admin,
        |i, r| i.remove_user_key(r).await,
        username = %request.get_ref().username, fingerprint = %request.get_ref().fingerprint);
    handler!(verify_user_key(request: pb::VerifyUserKeyRequest) -> pb::VerifyUserKeyResponse, Service,
        |i, r| i.verify_user_key(r).await, username = %request.get_ref().username);

    handler!(create_group(request: pb::CreateGroupRequest) -> pb::Group, Admin,
        |i, r| i.create_group(r).await, group = %request.get_ref().name);
    handler!(remove_group(request: pb::RemoveGroupRequest) -> pb::RemoveGroupResponse, Admin,
        |i, r| i.remove_group(r).await, group = %request.get_ref().name);
    handler!(list_groups(request: pb::ListGroupsRequest) -> pb::ListGroupsResponse, Read,
        |i, r| i.list_groups(r).await);
    handler!(add_group_member(request: pb::AddGroupMemberRequest) -> pb::AddGroupMemberResponse, Admin,
        |i, r| i.add_group_member(r).await,
        group = %request.get_ref().group, username = %request.get_ref().username);
    handler!(remove_group_member(request: pb::RemoveGroupMemberRequest) -> pb::RemoveGroupMemberResponse, Admin,
        |i, r| i.remove_group_member(r).await,
        group = %request.get_ref().group, username = %request.get_ref().username);
    handler!(list_group_members(request: pb::ListGroupMembersRequest) -> pb::ListGroupMembersResponse, Read,
        |i, r| i.list_group_members(r).await, group = %request.get_ref().group);

    handler!(add_host(request: pb::AddHostRequest) -> pb::Target, Admin,
        |i, r| i.add_host(r).await, host = %request.get_ref().name);
    handler!(remove_host(request: pb::RemoveHostRequest) -> pb::RemoveHostResponse, Admin,
        |i, r| i.remove_host(r).await, host = %request.get_ref().name);
    handler!(list_targets(request: pb::ListTargetsRequest) -> pb::ListTargetsResponse, Read,
        |i, r| i.list_targets(r).await);
    handler!(grant(request: pb::GrantRequest) -> pb::GrantEntry, Admin,
        |i, r| i.grant(r).await,
        principal = %request.get_ref().principal, target = %request.get_ref().target);
    handler!(revoke(request: pb::RevokeRequest) -> pb::RevokeResponse, Admin,
        |i, r| i.revoke(r).await,
        principal = %request.get_ref().principal, target = %request.get_ref().target);
    handler!(list_grants(request: pb::ListGrantsRequest) -> pb::ListGrantsResponse, Read,
        |i, r| i.list_grants(r).await);
    handler!(authorize(request: pb::AuthorizeRequest) -> pb::AuthorizeResponse, Service,
        |i, r| i.authorize(r).await,
        target = %request.get_ref().target, action = %request.get_ref().action);

    handler!(create_api_token(request: pb::CreateApiTokenRequest) -> pb::CreateApiTokenResponse, Admin,
        |i, r| i.create_api_token(r).await, username = %request.get_ref().username);
    handler!(verify_api_token(request: pb::VerifyApiTokenRequest) -> pb::VerifyApiTokenResponse, Service,
        |i, r| i.verify_api_token(r).await);

    handler!(verify_password(request: pb::VerifyPasswordRequest) -> pb::User, Service,
        |i, r| i.verify_password(r).await,
        username = %request.get_ref().username, client_ip = ?request.get_ref().client_ip);
    handler!(list_accessible_targets(request: pb::ListAccessibleTargetsRequest) -> pb::ListAccessibleTargetsResponse, Service,
        |i, r| i.list_accessible_targets(r).await, username = %request.get_ref().username);
    handler!(set_user_admin(request: pb::SetUserAdminRequest) -> pb::User, Admin,
        |i, r| i.set_user_admin(r).await,
        username = %request.get_ref().username, admin = request.get_ref().admin);

    handler!(setup_status(request: pb::SetupStatusRequest) -> pb::SetupStatusResponse, Service,
        |i, _r| i.setup_status().await);
    handler!(complete_setup(request: pb::CompleteSetupRequest) -> pb::LoginResponse, Service,
        |i, r| i.complete_setup(r).await,
        username = %request.get_ref().username, client_ip = ?request.get_ref().client_ip);
    handler!(create_invitation(request: pb::CreateInvitationRequest) -> pb::CreateInvitationResponse, Admin,
        |i, r| i.create_invitation(r).await, admin = request.get_ref().admin);
    handler!(list_invitations(request: pb::ListInvitationsRequest) -> pb::ListInvitationsResponse, Read,
        |i, _r| i.list_invitations().await);
    handler!(revoke_invitation(request: pb::RevokeInvitationRequest) -> pb::RevokeInvitationResponse, Admin,
        |i, r| i.revoke_invitation(r).await, invitation_id = %request.get_ref().id);
    handler!(inspect_invitation(request: pb::InspectInvitationRequest) -> pb::Invitation, Service,
        |i, r| i.inspect_invitation(r).await);
    handler!(accept_invitation(request: pb::AcceptInvitationRequest) -> pb::LoginResponse, Service,
        |i, r| i.accept_invitation(r).await,
        username = %request.get_ref().username, client_ip = ?request.get_ref().client_ip);
    handler!(start_device_authorization(request: pb::StartDeviceAuthorizationRequest) -> pb::DeviceAuthorization, Service,
        |i, r| i.start_device_authorization(r).await,
        kind = %request.get_ref().kind, client_ip = ?request.get_ref().client_ip);
    handler!(approve_device(request: pb::ApproveDeviceRequest) -> pb::ApproveDeviceResponse, Service,
        |i, r| i.approve_device(r).await,
        user_id = %request.get_ref().user_id, node = %request.get_ref().node_name);
    handler!(poll_device_authorization(request: pb::PollDeviceAuthorizationRequest) -> pb::PollDeviceAuthorizationResponse, Service,
        |i, r| i.poll_device_authorization(r).await);

    handler!(claim_tunnel_name(request: pb::ClaimTunnelNameRequest) -> pb::ClaimTunnelNameResponse, Admin,
        |i, r| i.claim_tunnel_name(r).await,
        user_id = %request.get_ref().user_id, name = %request.get_ref().name, reserve = request.get_ref().reserve);
    handler!(list_tunnel_names(request: pb::ListTunnelNamesRequest) -> pb::ListTunnelNamesResponse, Read,
        |i, r| i.list_tunnel_names(r).await, user_id = ?request.get_ref().user_id);
    handler!(release_tunnel_name(request: pb::ReleaseTunnelNameRequest) -> pb::ReleaseTunnelNameResponse, Admin,
        |i, r| i.release_tunnel_name(r).await, name = %request.get_ref().name);
    handler!(create_app_token(request: pb::CreateAppTokenRequest) -> pb::AppToken, Service,
        |i, r| i.create_app_token(r).await,
        user_id = %request.get_ref().user_id, node = %request.get_ref().node, port = request.get_ref().port);
    handler!(verify_app_token(request: pb::VerifyAppTokenRequest) -> pb::VerifyAppTokenResponse, Service,
        |i, r| i.verify_app_token(r).await,
        node = %request.get_ref().node, port = request.get_ref().port);
}
