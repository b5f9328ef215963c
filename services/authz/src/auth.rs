//! Who may call what. The interceptor accepts the internal service token
//! (full access) or anything shaped like an API token; each handler then
//! asks [`guard`] for the access it needs, which verifies an API
//! token against the store (the interceptor cannot: it is synchronous).

use phirepass_runtime::grpc::{ServerAuth, ServiceToken};
use tonic::service::Interceptor;
use tonic::{Request, Status};

use crate::actor::Actor;
use crate::api_tokens::{SCOPE_ADMIN, SCOPE_READ};
use crate::error::{AuthzError, Result};
use crate::nodes::Tokens;

const BEARER: &str = "bearer ";
const API_PREFIX: &str = "pp_api_";

/// What a handler needs from its caller.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Access {
    /// Edge-facing calls (logins, token checks, decisions): the service
    /// token only.
    Service,
    /// Listing: the service token, or an API token with `read` or `admin`.
    Read,
    /// Changes: the service token, or an API token with `admin`.
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
#[derive(Clone, Debug)]
pub struct AdminAuth {
    service: ServerAuth,
}

impl AdminAuth {
    pub fn new(token: ServiceToken) -> Self {
        Self {
            service: ServerAuth::new(token),
        }
    }
}

fn bearer_api_token(request: &Request<()>) -> Option<String> {
    let value = request.metadata().get("authorization")?.to_str().ok()?;
    let scheme = value.get(..BEARER.len())?;
    let token = value.get(BEARER.len()..)?;
    (scheme.eq_ignore_ascii_case(BEARER) && token.starts_with(API_PREFIX)).then(|| token.to_owned())
}

impl Interceptor for AdminAuth {
    fn call(&mut self, request: Request<()>) -> std::result::Result<Request<()>, Status> {
        if let Some(token) = bearer_api_token(&request) {
            let mut request = request;
            request.extensions_mut().insert(Caller::ApiToken(token));
            return Ok(request);
        }
        let mut request = self.service.call(request)?;
        request.extensions_mut().insert(Caller::Service);
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
    let caller = tokens.api_caller(token).await?;
    let allowed = match access {
        Access::Service => false,
        Access::Read => caller.has_scope(SCOPE_READ) || caller.has_scope(SCOPE_ADMIN),
        Access::Admin => caller.has_scope(SCOPE_ADMIN),
    };
    if !allowed {
        tracing::warn!(user_id = %caller.user.id, token_id = %caller.info.token_id, ?access, "api token lacks scope");
        return Err(AuthzError::PermissionDenied);
    }
    tracing::debug!(user_id = %caller.user.id, token_id = %caller.info.token_id, "api token caller");
    Ok(Actor::User {
        user_id: caller.user.id,
        username: caller.user.username,
    })
}
