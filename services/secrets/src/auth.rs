//! Who is calling: an internal service (its certificate, admitted by the allowlist in
//! [`crate::policy`]), the optional admin token, or an authz API token. Only internal callers
//! may decrypt (ResolveHostAuth), and the allowlist lets only ssh-edge call it.
//!
//! The admin token is a bearer separate from any service identity, so an admin client never
//! holds decrypt rights. Authz API tokens are verified per call by
//! [`crate::api_tokens::allow`].

use phirepass_runtime::grpc::{Caller as Admitted, bearer};
use subtle::ConstantTimeEq as _;
use tonic::service::Interceptor;
use tonic::{Request, Status};

/// The prefix that marks an authz API token.
pub(crate) const API_PREFIX: &str = "pp_api_";

/// An API token as presented, not verified yet (request extension).
#[derive(Clone)]
pub(crate) struct PresentedApiToken(pub(crate) String);

/// The kind of caller, stored in request extensions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Caller {
    Internal,
    Admin,
}

/// Turns what the allowlist admitted into a [`Caller`]: a service is internal; a bearer is
/// the admin token (constant-time compare) or, when authz is configured, anything shaped like
/// an authz API token, which the handler verifies (this interceptor cannot: it is synchronous).
#[derive(Clone, Debug)]
pub struct CallerAuth {
    admin: Option<String>,
    api_tokens: bool,
}

impl CallerAuth {
    pub fn new(admin_token: Option<String>) -> Self {
        Self {
            admin: admin_token.filter(|t| !t.trim().is_empty()),
            api_tokens: false,
        }
    }

    /// Lets `pp_api_` bearers through to the handlers' checks.
    pub(crate) fn with_api_tokens(mut self, on: bool) -> Self {
        self.api_tokens = on;
        self
    }

    fn is_admin(&self, presented: &str) -> bool {
        let Some(admin) = &self.admin else {
            return false;
        };
        bool::from(presented.as_bytes().ct_eq(admin.trim().as_bytes()))
    }
}

impl Interceptor for CallerAuth {
    fn call(&mut self, mut request: Request<()>) -> Result<Request<()>, Status> {
        match request.extensions().get::<Admitted>() {
            Some(Admitted::Service(_)) => {
                request.extensions_mut().insert(Caller::Internal);
                Ok(request)
            }
            Some(Admitted::Token) => {
                let presented = bearer(&request).unwrap_or_default().to_owned();
                if self.api_tokens && presented.starts_with(API_PREFIX) {
                    request
                        .extensions_mut()
                        .insert(PresentedApiToken(presented));
                    return Ok(request);
                }
                if self.is_admin(&presented) {
                    request.extensions_mut().insert(Caller::Admin);
                    return Ok(request);
                }
                tracing::warn!("secrets call with an unknown bearer refused");
                Err(Status::unauthenticated("invalid or missing credential"))
            }
            None => Err(Status::unauthenticated("unauthenticated")),
        }
    }
}

/// PERMISSION_DENIED unless the request came from a service the allowlist admitted.
pub fn require_internal<T>(request: &Request<T>) -> Result<(), crate::SecretsError> {
    match request.extensions().get::<Caller>() {
        Some(Caller::Internal) => Ok(()),
        _ => {
            tracing::warn!("decrypt refused to a non-internal caller");
            Err(crate::SecretsError::PermissionDenied)
        }
    }
}
