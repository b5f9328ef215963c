//! The `phirepass.authz.v1.Authz` gRPC service: handlers that record a span
//! (parented to the caller's trace), check the caller's access, dispatch to
//! one component and, after a change to access, invalidate the decision
//! cache.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use phirepass_bus::EventLog;
use phirepass_presence::Presence;
use phirepass_proto::authz as pb;
use phirepass_proto::authz::authz_server::{Authz, AuthzServer};
use phirepass_runtime::grpc::remote_context;
use phirepass_store::Store;
use tonic::service::interceptor::InterceptedService;
use tonic::{Request, Response, Status};
use tracing::Instrument as _;
use tracing_opentelemetry::OpenTelemetrySpanExt as _;

use crate::accounts::Accounts;
use crate::app_tokens::AppTokens;
use crate::audit::Audit;
use crate::auth::{Access, AdminAuth};
use crate::authorize::Decisions;
use crate::crypto;
use crate::decision_cache::DecisionCache;
use crate::devices::Devices;
use crate::error::Result;
use crate::hash_pool::{HashLimits, HashPool};
use crate::limiter::{LoginLimiter, LoginLimits, UserLimits};
use crate::node_groups::NodeGroups;
use crate::nodes::Tokens;
use crate::targets::Targets;
use crate::tickets::{OpenTickets, TicketKeyring};
use crate::tunnel_names::{TunnelNamePolicy, TunnelNames};

/// The components the handlers dispatch to; each holds only what it uses.
pub(crate) struct Components {
    accounts: Accounts,
    decisions: Decisions,
    tokens: Tokens,
    targets: Targets,
    node_groups: NodeGroups,
    devices: Devices,
    tunnel_names: TunnelNames,
    app_tokens: AppTokens,
    tickets: OpenTickets,
}

impl Components {
    /// After a call that changes users, groups, targets, grants or tokens:
    /// on success every cached decision is dropped.
    async fn changed<T>(&self, result: Result<T>) -> Result<T> {
        if result.is_ok() {
            self.decisions.invalidate().await;
        }
        result
    }
}

/// The Authz gRPC service. Cheap to clone.
#[derive(Clone)]
pub struct AuthzService {
    components: Arc<Components>,
}

impl std::fmt::Debug for AuthzService {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AuthzService")
            .field("session_ttl", &self.components.accounts.session_ttl)
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
    pub user_limits: UserLimits,
    pub hash_limits: HashLimits,
    pub device_starts_per_minute: u64,
    pub device_code_ttl: Duration,
    /// How long an Authorize decision is cached (zero: not at all).
    pub decision_cache_ttl: Duration,
    pub tunnel_name_policy: TunnelNamePolicy,
    /// Added to the built-in reserved tunnel names.
    pub tunnel_reserved_names: Vec<String>,
    pub app_token_ttl: Duration,
    /// The ticket signing keys (issue #8).
    pub tickets: Arc<TicketKeyring>,
}

impl AuthzService {
    pub async fn new(store: Store, parts: ServiceParts) -> Result<Self> {
        let hasher = HashPool::new(parts.hash_limits);
        let dummy_hash = hasher.hash(crypto::new_session_token()).await?;
        let limiter = LoginLimiter::new(parts.presence.clone(), parts.limits, parts.user_limits);
        let audit = Audit::new(parts.events, parts.audit_subject);
        let cache = DecisionCache::new(parts.presence.clone(), parts.decision_cache_ttl);
        let decisions = Decisions::new(store.clone(), cache, audit.clone());
        let tokens = Tokens {
            store: store.clone(),
            audit: audit.clone(),
        };
        let components = Components {
            accounts: Accounts {
                store: store.clone(),
                limiter: limiter.clone(),
                hasher,
                audit: audit.clone(),
                session_ttl: parts.session_ttl,
                dummy_hash,
            },
            targets: Targets {
                store: store.clone(),
                audit: audit.clone(),
            },
            node_groups: NodeGroups {
                store: store.clone(),
                audit: audit.clone(),
            },
            devices: Devices {
                store: store.clone(),
                limiter,
                tokens: tokens.clone(),
                audit: audit.clone(),
                device_starts_per_minute: parts.device_starts_per_minute,
                device_code_ttl: parts.device_code_ttl,
            },
            tunnel_names: TunnelNames {
                store: store.clone(),
                audit,
                tunnel_name_policy: parts.tunnel_name_policy,
                tunnel_reserved_names: parts.tunnel_reserved_names,
            },
            app_tokens: AppTokens {
                store,
                presence: parts.presence,
                decisions: decisions.clone(),
                app_token_ttl: parts.app_token_ttl,
            },
            tickets: OpenTickets {
                decisions: decisions.clone(),
                keyring: parts.tickets,
            },
            decisions,
            tokens,
        };
        Ok(Self {
            components: Arc::new(components),
        })
    }

    /// Wraps the service so every call admitted by [`crate::policy::POLICY`] is marked as a
    /// service's or an API token's (checked per method).
    pub fn into_server(self) -> AuthedAuthzServer {
        AuthzServer::with_interceptor(self, AdminAuth)
    }

    pub(crate) fn store(&self) -> &Store {
        &self.components.accounts.store
    }

    /// Links the span, checks access, runs `f`.
    async fn run<Req, Resp, F, Fut>(
        &self,
        request: Request<Req>,
        access: Access,
        f: F,
    ) -> Reply<Resp>
    where
        F: FnOnce(Arc<Components>, Req) -> Fut,
        Fut: Future<Output = Result<Resp>>,
    {
        let _ = tracing::Span::current().set_parent(remote_context(&request));
        let actor = crate::auth::guard(&self.components.tokens, &request, access).await?;
        crate::actor::with_actor(actor, f(self.components.clone(), request.into_inner()))
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
                    self.run($request, Access::$access, |$i: Arc<Components>, $r: $req| async move { $body })
                        .await
                }
                .instrument(span),
            )
        }
    };
}

impl Authz for AuthzService {
    handler!(create_user(request: pb::CreateUserRequest) -> pb::User, Admin,
        |c, r| c.changed(c.accounts.create_user(r.try_into()?).await).await, username = %request.get_ref().username);
    handler!(list_users(request: pb::ListUsersRequest) -> pb::ListUsersResponse, Read, |c, _r| {
        let users = c.accounts.store.list_users().await?;
        Ok(pb::ListUsersResponse {
            users: users.iter().map(crate::accounts::user_to_proto).collect(),
        })
    });
    handler!(set_user_disabled(request: pb::SetUserDisabledRequest) -> pb::User, Admin,
        |c, r| c.changed(c.accounts.set_user_disabled(r).await).await,
        username = %request.get_ref().username, disabled = request.get_ref().disabled);
    handler!(login(request: pb::LoginRequest) -> pb::LoginResponse, Service,
        |c, r| c.accounts.login(r).await,
        username = %request.get_ref().username, client_ip = ?request.get_ref().client_ip);
    handler!(verify_session(request: pb::VerifySessionRequest) -> pb::User, Service,
        |c, r| c.accounts.verify_session(&r.session_token).await);
    handler!(logout(request: pb::LogoutRequest) -> pb::LogoutResponse, Service, |c, r| {
        c.accounts.logout(&r.session_token).await.map(|()| pb::LogoutResponse {})
    });
    handler!(create_node_token(request: pb::CreateNodeTokenRequest) -> pb::CreateNodeTokenResponse, Admin,
        |c, r| c.changed(c.tokens.create_node_token(r).await).await,
        username = %request.get_ref().username, node = %request.get_ref().node_name);
    handler!(list_tokens(request: pb::ListTokensRequest) -> pb::ListTokensResponse, Own, |c, r| {
        let username = crate::own::username(r.username)?;
        let tokens = c.tokens.list_tokens(username.as_deref()).await?;
        Ok(pb::ListTokensResponse { tokens })
    }, username = ?request.get_ref().username);
    handler!(revoke_token(request: pb::RevokeTokenRequest) -> pb::RevokeTokenResponse, Admin, |c, r| {
        let revoked = c.tokens.revoke_token(&r.token_id).await;
        c.changed(revoked).await.map(|()| pb::RevokeTokenResponse {})
    }, token_id = %request.get_ref().token_id);
    handler!(verify_node_token(request: pb::VerifyNodeTokenRequest) -> pb::Node, Service,
        |c, r| c.tokens.verify_node_token(&r.token).await);
    handler!(check_tokens(request: pb::CheckTokensRequest) -> pb::CheckTokensResponse, Service, |c, r| {
        let invalid_token_ids = c.tokens.check_tokens(r.token_ids).await?;
        Ok(pb::CheckTokensResponse { invalid_token_ids })
    }, count = request.get_ref().token_ids.len());
    handler!(list_nodes(request: pb::ListNodesRequest) -> pb::ListNodesResponse, Own, |c, r| {
        let user_id = crate::own::user_id(r.user_id)?;
        let nodes = c.tokens.list_nodes(user_id.as_deref()).await?;
        Ok(pb::ListNodesResponse { nodes })
    }, user_id = ?request.get_ref().user_id);
    handler!(count_users(request: pb::CountUsersRequest) -> pb::CountUsersResponse, Read, |c, _r| {
        let count = c.accounts.store.count_users().await?;
        Ok(pb::CountUsersResponse { count })
    });

    handler!(remove_user(request: pb::RemoveUserRequest) -> pb::RemoveUserResponse, Admin,
        |c, r| c.changed(c.accounts.remove_user(r).await).await, username = %request.get_ref().username);
    handler!(set_password(request: pb::SetPasswordRequest) -> pb::User, Admin,
        |c, r| c.changed(c.accounts.set_password(r).await).await, username = %request.get_ref().username);
    handler!(add_user_key(request: pb::AddUserKeyRequest) -> pb::UserKey, Admin,
        |c, r| c.changed(c.accounts.add_user_key(r).await).await, username = %request.get_ref().username);
    handler!(list_user_keys(request: pb::ListUserKeysRequest) -> pb::ListUserKeysResponse, Read,
        |c, r| c.accounts.list_user_keys(r).await, username = %request.get_ref().username);
    handler!(remove_user_key(request: pb::RemoveUserKeyRequest) -> pb::RemoveUserKeyResponse, Admin,
        |c, r| c.changed(c.accounts.remove_user_key(r).await).await,
        username = %request.get_ref().username, fingerprint = %request.get_ref().fingerprint);
    handler!(verify_user_key(request: pb::VerifyUserKeyRequest) -> pb::VerifyUserKeyResponse, Service,
        |c, r| c.accounts.verify_user_key(r).await, username = %request.get_ref().username);

    handler!(create_group(request: pb::CreateGroupRequest) -> pb::Group, Admin,
        |c, r| c.changed(c.accounts.create_group(r).await).await, group = %request.get_ref().name);
    handler!(remove_group(request: pb::RemoveGroupRequest) -> pb::RemoveGroupResponse, Admin,
        |c, r| c.changed(c.accounts.remove_group(r).await).await, group = %request.get_ref().name);
    handler!(list_groups(request: pb::ListGroupsRequest) -> pb::ListGroupsResponse, Read,
        |c, r| c.accounts.list_groups(r).await);
    handler!(add_group_member(request: pb::AddGroupMemberRequest) -> pb::AddGroupMemberResponse, Admin,
        |c, r| c.changed(c.accounts.add_group_member(r).await).await,
        group = %request.get_ref().group, username = %request.get_ref().username);
    handler!(remove_group_member(request: pb::RemoveGroupMemberRequest) -> pb::RemoveGroupMemberResponse, Admin,
        |c, r| c.changed(c.accounts.remove_group_member(r).await).await,
        group = %request.get_ref().group, username = %request.get_ref().username);
    handler!(list_group_members(request: pb::ListGroupMembersRequest) -> pb::ListGroupMembersResponse, Read,
        |c, r| c.accounts.list_group_members(r).await, group = %request.get_ref().group);

    handler!(add_host(request: pb::AddHostRequest) -> pb::Target, Admin,
        |c, r| c.changed(c.targets.add_host(r).await).await, host = %request.get_ref().name);
    handler!(remove_host(request: pb::RemoveHostRequest) -> pb::RemoveHostResponse, Admin,
        |c, r| c.changed(c.targets.remove_host(r).await).await, host = %request.get_ref().name);
    handler!(list_targets(request: pb::ListTargetsRequest) -> pb::ListTargetsResponse, Read,
        |c, r| c.targets.list_targets(r).await);
    handler!(grant(request: pb::GrantRequest) -> pb::GrantEntry, Admin,
        |c, r| c.changed(c.targets.grant(r.try_into()?).await).await,
        principal = %request.get_ref().principal, target = %request.get_ref().target);
    handler!(revoke(request: pb::RevokeRequest) -> pb::RevokeResponse, Admin,
        |c, r| c.changed(c.targets.revoke(r.try_into()?).await).await,
        principal = %request.get_ref().principal, target = %request.get_ref().target);
    handler!(add_node_group_members(request: pb::AddNodeGroupMembersRequest) -> pb::NodeGroup, Admin,
        |c, r| c.changed(c.node_groups.add_members(r).await).await, node_group = %request.get_ref().group);
    handler!(remove_node_group_members(request: pb::RemoveNodeGroupMembersRequest) -> pb::NodeGroup, Admin,
        |c, r| c.changed(c.node_groups.remove_members(r).await).await, node_group = %request.get_ref().group);
    handler!(remove_node_group(request: pb::RemoveNodeGroupRequest) -> pb::RemoveNodeGroupResponse, Admin,
        |c, r| c.changed(c.node_groups.remove_group(r).await).await, node_group = %request.get_ref().name);
    handler!(list_node_groups(request: pb::ListNodeGroupsRequest) -> pb::ListNodeGroupsResponse, Read,
        |c, _r| c.node_groups.list().await);
    handler!(list_grants(request: pb::ListGrantsRequest) -> pb::ListGrantsResponse, Own,
        |c, r| c.targets.list_grants(crate::own::grants(r)?).await);
    handler!(authorize(request: pb::AuthorizeRequest) -> pb::AuthorizeResponse, Service,
        |c, r| Ok(c.decisions.authorize(&r.try_into()?).await?.into()),
        target = %request.get_ref().target, action = %request.get_ref().action);

    handler!(create_api_token(request: pb::CreateApiTokenRequest) -> pb::CreateApiTokenResponse, Admin,
        |c, r| c.changed(c.tokens.create_api_token(r.try_into()?).await).await, username = %request.get_ref().username);
    handler!(verify_api_token(request: pb::VerifyApiTokenRequest) -> pb::VerifyApiTokenResponse, Service,
        |c, r| c.tokens.verify_api_token(r).await);

    handler!(verify_password(request: pb::VerifyPasswordRequest) -> pb::User, Service,
        |c, r| c.accounts.verify_password(r).await,
        username = %request.get_ref().username, client_ip = ?request.get_ref().client_ip);
    handler!(list_accessible_targets(request: pb::ListAccessibleTargetsRequest) -> pb::ListAccessibleTargetsResponse, Service,
        |c, r| c.decisions.list_accessible_targets(r).await, username = %request.get_ref().username);
    handler!(set_user_admin(request: pb::SetUserAdminRequest) -> pb::User, Admin,
        |c, r| c.changed(c.accounts.set_user_admin(r).await).await,
        username = %request.get_ref().username, admin = request.get_ref().admin);

    handler!(setup_status(request: pb::SetupStatusRequest) -> pb::SetupStatusResponse, Service,
        |c, _r| c.accounts.setup_status().await);
    handler!(complete_setup(request: pb::CompleteSetupRequest) -> pb::LoginResponse, Service,
        |c, r| c.changed(c.accounts.complete_setup(r).await).await,
        username = %request.get_ref().username, client_ip = ?request.get_ref().client_ip);
    handler!(create_invitation(request: pb::CreateInvitationRequest) -> pb::CreateInvitationResponse, Admin,
        |c, r| c.changed(c.accounts.create_invitation(r).await).await, admin = request.get_ref().admin);
    handler!(list_invitations(request: pb::ListInvitationsRequest) -> pb::ListInvitationsResponse, Read,
        |c, _r| c.accounts.list_invitations().await);
    handler!(revoke_invitation(request: pb::RevokeInvitationRequest) -> pb::RevokeInvitationResponse, Admin,
        |c, r| c.changed(c.accounts.revoke_invitation(r).await).await, invitation_id = %request.get_ref().id);
    handler!(inspect_invitation(request: pb::InspectInvitationRequest) -> pb::Invitation, Service,
        |c, r| c.accounts.inspect_invitation(r).await);
    handler!(accept_invitation(request: pb::AcceptInvitationRequest) -> pb::LoginResponse, Service,
        |c, r| c.changed(c.accounts.accept_invitation(r).await).await,
        username = %request.get_ref().username, client_ip = ?request.get_ref().client_ip);
    handler!(start_device_authorization(request: pb::StartDeviceAuthorizationRequest) -> pb::DeviceAuthorization, Service,
        |c, r| c.devices.start_device_authorization(r).await,
        kind = %request.get_ref().kind, client_ip = ?request.get_ref().client_ip);
    handler!(inspect_device(request: pb::InspectDeviceRequest) -> pb::DeviceDetails, Service,
        |c, r| c.devices.inspect_device(r).await, user_id = %request.get_ref().user_id);
    handler!(approve_device(request: pb::ApproveDeviceRequest) -> pb::ApproveDeviceResponse, Service,
        |c, r| c.changed(c.devices.approve_device(r).await).await,
        user_id = %request.get_ref().user_id, node = %request.get_ref().node_name,
        replace_node = request.get_ref().replace_node, admin_scope = request.get_ref().admin_scope);
    handler!(poll_device_authorization(request: pb::PollDeviceAuthorizationRequest) -> pb::PollDeviceAuthorizationResponse, Service,
    |c, r| {
        let polled = c.devices.poll_device_authorization(r).await?;
        // Handing out a token created or re-keyed a node or API token.
        if polled.token.is_some() {
            c.decisions.invalidate().await;
        }
        Ok(polled)
    });

    handler!(claim_tunnel_name(request: pb::ClaimTunnelNameRequest) -> pb::ClaimTunnelNameResponse, Admin,
        |c, r| {
            let claim = c.tunnel_names.claim_tunnel_name(r).await?;
            if claim.reserved {
                c.decisions.invalidate().await;
            }
            Ok(claim.reply)
        },
        user_id = %request.get_ref().user_id, name = %request.get_ref().name, reserve = request.get_ref().reserve);
    handler!(list_tunnel_names(request: pb::ListTunnelNamesRequest) -> pb::ListTunnelNamesResponse, Own,
        |c, r| c.tunnel_names.list_tunnel_names(pb::ListTunnelNamesRequest {
            user_id: crate::own::user_id(r.user_id.filter(|u| !u.is_empty()))?,
        }).await, user_id = ?request.get_ref().user_id);
    handler!(release_tunnel_name(request: pb::ReleaseTunnelNameRequest) -> pb::ReleaseTunnelNameResponse, Admin,
        |c, r| c.changed(c.tunnel_names.release_tunnel_name(r).await).await, name = %request.get_ref().name);
    handler!(create_app_token(request: pb::CreateAppTokenRequest) -> pb::AppToken, Service,
        |c, r| c.app_tokens.create_app_token(r).await,
        user_id = %request.get_ref().user_id, node = %request.get_ref().node, port = request.get_ref().port);
    handler!(verify_app_token(request: pb::VerifyAppTokenRequest) -> pb::VerifyAppTokenResponse, Service,
        |c, r| c.app_tokens.verify_app_token(r).await,
        node = %request.get_ref().node, port = request.get_ref().port);
    handler!(issue_open_ticket(request: pb::IssueOpenTicketRequest) -> pb::IssueOpenTicketResponse, Service,
        |c, r| c.tickets.issue(r).await,
        node = %request.get_ref().node_id, port = request.get_ref().port, stream = request.get_ref().stream_id);
    handler!(ticket_keys(request: pb::TicketKeysRequest) -> pb::TicketKeysResponse, Service,
        |c, _r| Ok(c.tickets.keyring.keys_reply()));
}
