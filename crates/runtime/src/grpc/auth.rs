//! Per-call metadata: the caller's W3C trace context (both ways) and, for admin clients, the
//! bearer API token. Who the caller is comes from TLS ([`super::policy`]), not from here.

use opentelemetry::Context;
use opentelemetry::propagation::{Extractor, Injector, TextMapPropagator as _};
use opentelemetry_sdk::propagation::TraceContextPropagator;
use tonic::metadata::{AsciiMetadataKey, AsciiMetadataValue, MetadataMap};
use tonic::service::Interceptor;
use tonic::{Request, Status};
use tracing_opentelemetry::OpenTelemetrySpanExt as _;

use super::GrpcError;

const BEARER: &str = "Bearer ";

/// The caller's trace context, stored in request extensions by the
/// [`super::PolicyLayer`]. Handlers call `span.set_parent(remote_context(&req))`.
#[derive(Clone, Debug)]
pub struct RemoteContext(pub Context);

/// The caller's trace context, or an empty one if none was sent.
pub fn remote_context<T>(request: &Request<T>) -> Context {
    request
        .extensions()
        .get::<RemoteContext>()
        .map(|rc| rc.0.clone())
        .unwrap_or_default()
}

/// Client-side interceptor: adds the current span's trace context to every call and, for an
/// admin client, `authorization: Bearer <API token>`.
#[derive(Clone, Default)]
pub struct CallMetadata {
    authorization: Option<AsciiMetadataValue>,
}

impl std::fmt::Debug for CallMetadata {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CallMetadata")
            .field("bearer", &self.authorization.is_some())
            .finish()
    }
}

impl CallMetadata {
    /// Trace context only (service to service: the certificate says who calls).
    pub fn new() -> Self {
        Self::default()
    }

    /// Also a bearer token. Fails if it is empty or cannot be sent as a header value.
    pub fn with_token(token: &str) -> Result<Self, GrpcError> {
        let token = token.trim();
        if token.is_empty() || !token.bytes().all(|b| b.is_ascii_graphic()) {
            return Err(GrpcError::InvalidToken);
        }
        let mut authorization = AsciiMetadataValue::try_from(format!("{BEARER}{token}"))
            .map_err(|_| GrpcError::InvalidToken)?;
        authorization.set_sensitive(true);
        Ok(Self {
            authorization: Some(authorization),
        })
    }
}

impl Interceptor for CallMetadata {
    fn call(&mut self, mut request: Request<()>) -> Result<Request<()>, Status> {
        let metadata = request.metadata_mut();
        if let Some(authorization) = &self.authorization {
            metadata.insert("authorization", authorization.clone());
        }
        let cx = tracing::Span::current().context();
        TraceContextPropagator::new().inject_context(&cx, &mut MetadataInjector(metadata));
        Ok(request)
    }
}

/// The bearer token of a request, if it carries one.
pub fn bearer<T>(request: &Request<T>) -> Option<&str> {
    let value = request.metadata().get("authorization")?.to_str().ok()?;
    value
        .get(..BEARER.len())
        .filter(|scheme| scheme.eq_ignore_ascii_case(BEARER))
        .and_then(|_| value.get(BEARER.len()..))
}

struct MetadataInjector<'a>(&'a mut MetadataMap);

impl Injector for MetadataInjector<'_> {
    fn set(&mut self, key: &str, value: String) {
        let (Ok(key), Ok(value)) = (
            AsciiMetadataKey::from_bytes(key.as_bytes()),
            AsciiMetadataValue::try_from(value),
        ) else {
            return;
        };
        self.0.insert(key, value);
    }
}

pub(super) struct HeaderExtractor<'a>(pub(super) &'a http::HeaderMap);

impl Extractor for HeaderExtractor<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).and_then(|v| v.to_str().ok())
    }

    fn keys(&self) -> Vec<&str> {
        self.0.keys().map(|k| k.as_str()).collect()
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
#[path = "auth_tests.rs"]
mod tests;
