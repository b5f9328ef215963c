//! Bearer-token interceptors with W3C trace-context propagation.

use opentelemetry::Context;
use opentelemetry::propagation::{Extractor, Injector, TextMapPropagator as _};
use opentelemetry_sdk::propagation::TraceContextPropagator;
use subtle::ConstantTimeEq as _;
use tonic::metadata::{AsciiMetadataKey, AsciiMetadataValue, KeyRef, MetadataMap};
use tonic::service::Interceptor;
use tonic::{Request, Status};
use tracing_opentelemetry::OpenTelemetrySpanExt as _;

use super::{GrpcError, ServiceToken};

const BEARER: &str = "Bearer ";

/// The caller's trace context, stored in request extensions by
/// [`ServerAuth`]. Handlers call `span.set_parent(remote_context(&req))`.
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

/// Server-side interceptor: requires `authorization: Bearer <token>`
/// (constant-time compare), answers `UNAUTHENTICATED` otherwise, and stores
/// the caller's trace context as a [`RemoteContext`] extension.
#[derive(Clone, Debug)]
pub struct ServerAuth {
    token: ServiceToken,
}

impl ServerAuth {
    /// Accepts calls that present `token`. An empty token accepts nothing.
    pub fn new(token: ServiceToken) -> Self {
        Self { token }
    }

    fn authorized(&self, metadata: &MetadataMap) -> bool {
        let expected = self.token.expose_secret().as_bytes();
        if expected.is_empty() {
            return false;
        }
        let Some(presented) = metadata.get("authorization").and_then(|v| v.to_str().ok()) else {
            return false;
        };
        let Some(presented) = presented
            .get(..BEARER.len())
            .filter(|scheme| scheme.eq_ignore_ascii_case(BEARER))
            .and_then(|_| presented.get(BEARER.len()..))
        else {
            return false;
        };
        bool::from(presented.as_bytes().ct_eq(expected))
    }
}

impl Interceptor for ServerAuth {
    fn call(&mut self, mut request: Request<()>) -> Result<Request<()>, Status> {
        if !self.authorized(request.metadata()) {
            tracing::warn!("rejected grpc call without a valid service token");
            return Err(Status::unauthenticated("invalid or missing service token"));
        }
        let cx = TraceContextPropagator::new().extract(&MetadataExtractor(request.metadata()));
        request.extensions_mut().insert(RemoteContext(cx));
        Ok(request)
    }
}

/// Client-side interceptor: adds the bearer token and the current span's
/// trace context to every call.
#[derive(Clone)]
pub struct ClientAuth {
    authorization: AsciiMetadataValue,
}

impl std::fmt::Debug for ClientAuth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ClientAuth(<redacted>)")
    }
}

impl ClientAuth {
    /// Fails if the token cannot be sent as a header value.
    pub fn new(token: ServiceToken) -> Result<Self, GrpcError> {
        if !token.is_header_safe() {
            return Err(GrpcError::InvalidToken);
        }
        let mut authorization =
            AsciiMetadataValue::try_from(format!("{BEARER}{}", token.expose_secret()))
                .map_err(|_| GrpcError::InvalidToken)?;
        authorization.set_sensitive(true);
        Ok(Self { authorization })
    }
}

impl Interceptor for ClientAuth {
    fn call(&mut self, mut request: Request<()>) -> Result<Request<()>, Status> {
        let metadata = request.metadata_mut();
        metadata.insert("authorization", self.authorization.clone());
        let cx = tracing::Span::current().context();
        TraceContextPropagator::new().inject_context(&cx, &mut MetadataInjector(metadata));
        Ok(request)
    }
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

struct MetadataExtractor<'a>(&'a MetadataMap);

impl Extractor for MetadataExtractor<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).and_then(|v| v.to_str().ok())
    }

    fn keys(&self) -> Vec<&str> {
        self.0
            .keys()
            .filter_map(|k| match k {
                KeyRef::Ascii(k) => Some(k.as_str()),
                KeyRef::Binary(_) => None,
            })
            .collect()
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
#[path = "auth_tests.rs"]
mod tests;
