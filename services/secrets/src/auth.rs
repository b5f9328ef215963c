//! Who is calling: the internal service token (the edges) or the admin
//! token. Only internal callers may decrypt (ResolveHostAuth).
//!
//! The service token is checked by the shared [`ServerAuth`] (which also
//! extracts the trace context); the optional admin token is a second,
//! separate bearer so an admin client never holds decrypt rights. Authz API
//! tokens are verified per call by [`crate::api_tokens::allow`].

use phirepass_runtime::grpc::{ServerAuth, ServiceToken};
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

/// Accepts the service token (internal), the admin token (admin), or
/// (when authz is configured) anything shaped like an authz API token,
/// which the handler verifies (this interceptor cannot: it is synchronous).
#[derive(Clone, Debug)]
pub struct CallerAuth {
    internal: ServerAuth,
    admin: Option<ServiceToken>,
    api_tokens: bool,
}

impl CallerAuth {
    pub fn new(service_token: ServiceToken, admin_token: Option<ServiceToken>) -> Self {
        Self {
            internal: ServerAuth::new(service_token),
            admin: admin_token.filter(|t| !t.expose_secret().is_empty()),
            api_tokens: false,
        }
    }

    /// Lets `pp_api_` bearers through to the handlers' checks.
    pub(crate) fn with_api_tokens(mut self, on: bool) -> Self {
        self.api_tokens = on;
        self
    }

    fn api_token(&self, request: &Request<()>) -> Option<String> {
        if !self.api_tokens {
            return None;
        }
        let value = request.metadata().get("authorization")?.to_str().ok()?;
        let token = value
            .get(..7)
            .filter(|s| s.eq_ignore_ascii_case("bearer "))
            .and(value.get(7..))?;
        token.starts_with(API_PREFIX).then(|| token.to_owned())
    }

    fn is_admin(&self, request: &Request<()>) -> bool {
        let Some(admin) = &self.admin else {
            return false;
        };
        let Some(presented) = request
            .metadata()
            .get("authorization")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| {
                v.get(..7)
                    .filter(|s| s.eq_ignore_ascii_case("bearer "))
                    .and(v.get(7..))
            })
        else {
            return false;
        };
        bool::from(presented.as_bytes().ct_eq(admin.expose_secret().as_bytes()))
    }
}

impl Interceptor for CallerAuth {
    fn call(&mut self, request: Request<()>) -> Result<Request<()>, Status> {
        if let Some(token) = self.api_token(&request) {
            let mut request = request;
            request.extensions_mut().insert(PresentedApiToken(token));
            return Ok(request);
        }
        if self.is_admin(&request) {
            let mut request = request;
            request.extensions_mut().insert(Caller::Admin);
            return Ok(request);
        }
        let mut request = self.internal.call(request)?;
        request.extensions_mut().insert(Caller::Internal);
        Ok(request)
    }
}

/// PERMISSION_DENIED unless the request came with the service token.
pub fn require_internal<T>(request: &Request<T>) -> Result<(), crate::SecretsError> {
    match request.extensions().get::<Caller>() {
        Some(Caller::Internal) => Ok(()),
        _ => {
            tracing::warn!("decrypt refused to a non-internal caller");
            Err(crate::SecretsError::PermissionDenied)
        }
    }
}
