//! Who may call what. The TLS layer already admitted the call by the allowlist
//! ([`crate::policy`]): a service whose certificate names an allowed kind, or, on admin
//! methods, a bearer token. The interceptor keeps services as services and API-shaped
//! bearers as tokens; each handler then asks [`guard`] for the access it needs, which
//! verifies an API token against the store (the interceptor cannot: it is synchronous).

use phirepass_runtime::grpc::{Caller as Admitted, bearer};
use tonic::service::Interceptor;
use tonic::{Request, Status};

use crate::actor::Actor;
use crate::api_tokens::{SCOPE_ADMIN, SCOPE_READ};
use crate::error::{AuthzError, Result};
use crate::nodes::Tokens;

const API_PREFIX: &str = "pp_api_";

/// What a handler needs from its caller.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Access {
    /// Edge-facing calls (logins, token checks, decisions): services only.
    Service,
    /// Global listing: the service token, or an API token with `read` or
    /// `admin` whose user is an admin now.
    Read,
    /// Listing one user's own data (tokens, nodes, grants, tunnel names):
    /// like `Read`, but a non-admin's `read`/`admin` token gets through and
    /// the handler holds it to her own rows ([`crate::actor::own_data_only`]).
    Own,
    /// Changes: the service token, or an API token with `admin` whose user
    /// is an admin now.
    Admin,
}

/// The authenticated caller, stored in request extensions.
#[derive(Clone)]
pub(crate) enum Caller {
    Service,
    /// Not verified yet: see [`guard`].
    ApiToken(String),
}

/// The interceptor in front of the Authz service.
#[derive(Clone, Debug, Default)]
pub struct AdminAuth;

impl Interceptor for AdminAuth {
    fn call(&mut self, mut request: Request<()>) -> std::result::Result<Request<()>, Status> {
        let caller = match request.extensions().get::<Admitted>() {
            Some(Admitted::Service(_)) => Caller::Service,
            Some(Admitted::Token) => match bearer(&request) {
                Some(token) if token.starts_with(API_PREFIX) => Caller::ApiToken(token.to_owned()),
                _ => return Err(Status::unauthenticated("not an API token")),
            },
            // Not admitted by the allowlist layer: never served.
            None => return Err(Status::unauthenticated("unauthenticated")),
        };
        request.extensions_mut().insert(caller);
        Ok(request)
    }
}

/// Checks the caller may make a call that needs `access`; returns who
/// they are.
pub(crate) async fn guard<T>(
    tokens: &Tokens,
    request: &Request<T>,
    access: Access,
) -> Result<Actor> {
    let token = match request.extensions().get::<Caller>() {
        Some(Caller::Service) => return Ok(Actor::Service),
        Some(Caller::ApiToken(token)) => token,
        None => return Err(AuthzError::Unauthenticated),
    };
    // Disabled and deleted users were refused by api_caller.
    let caller = tokens.api_caller(token).await?;
    // The effective right is the token's scope capped by the user's role
    // now: a demoted admin's admin-scope token is a non-admin's token.
    let role_admin = caller.user.admin;
    let can_read = caller.has_scope(SCOPE_READ) || caller.has_scope(SCOPE_ADMIN);
    let refusal = match access {
        Access::Service => Some("this call is for internal services only"),
        Access::Own if !can_read => Some("the API token has neither the read nor the admin scope"),
        Access::Read if !can_read => Some("the API token has neither the read nor the admin scope"),
        Access::Admin if !caller.has_scope(SCOPE_ADMIN) => {
            Some("the API token lacks the admin scope")
        }
        Access::Read | Access::Admin if !role_admin => Some(
            "the API token's user is not an admin: a non-admin's token may only list her own tokens, nodes, grants and tunnel names",
        ),
        Access::Own | Access::Read | Access::Admin => None,
    };
    if let Some(why) = refusal {
        tracing::warn!(user_id = %caller.user.id, token_id = %caller.info.token_id, ?access, role_admin, why, "api token refused");
        return Err(AuthzError::Forbidden(why));
    }
    tracing::debug!(user_id = %caller.user.id, token_id = %caller.info.token_id, role_admin, "api token caller");
    Ok(Actor::User {
        user_id: caller.user.id,
        username: caller.user.username,
        admin: role_admin,
    })
}
