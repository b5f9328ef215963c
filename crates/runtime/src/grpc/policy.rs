//! Who may call which RPC: each service writes one table ([`Policy`]) of its methods and the
//! service kinds allowed to call each, and [`PolicyLayer`] enforces it on every request from
//! the peer certificate the TLS handshake verified, before any handler runs. Methods missing
//! from the table are refused (default deny). Health and reflection (other gRPC services on the
//! same server) pass: they say nothing a TLS peer cannot learn otherwise.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use opentelemetry::propagation::TextMapPropagator as _;
use opentelemetry_sdk::propagation::TraceContextPropagator;
use phirepass_pki::ServiceKind;
use tonic::Status;
use tonic::body::Body;

use super::auth::{HeaderExtractor, RemoteContext};
use super::tls::PeerInfo;

/// One RPC and who may call it.
#[derive(Debug, Clone, Copy)]
pub struct Rule {
    /// The method as on the wire, e.g. `Authorize`.
    pub method: &'static str,
    /// Service kinds whose certificate lets them call it.
    pub callers: &'static [ServiceKind],
    /// Whether a bearer token (a user's API token, checked by the handler) may call it instead,
    /// with or without a client certificate.
    pub api_token: bool,
}

impl Rule {
    /// Callable by these service kinds only.
    pub const fn services(method: &'static str, callers: &'static [ServiceKind]) -> Self {
        Self {
            method,
            callers,
            api_token: false,
        }
    }

    /// Callable by these service kinds, and by an admin client with an API token.
    pub const fn admin(method: &'static str, callers: &'static [ServiceKind]) -> Self {
        Self {
            method,
            callers,
            api_token: true,
        }
    }
}

/// A gRPC service's allowlist.
#[derive(Debug, Clone, Copy)]
pub struct Policy {
    /// The fully qualified service name, e.g. `phirepass.authz.v1.Authz`.
    pub service: &'static str,
    pub rules: &'static [Rule],
}

/// Who made an admitted call; a request extension for the handlers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Caller {
    /// A service whose verified certificate names this kind, allowed by the table.
    Service(ServiceKind),
    /// A bearer token on a method that accepts one: the handler must verify it.
    Token,
}

impl Policy {
    /// Where the table and the service's `.proto` disagree: each method the proto declares
    /// (`rpc Name(`) must have exactly one row, and each row must name a declared method.
    /// Empty when they agree; each service's tests check its own table with it.
    pub fn mismatches_with_proto(&self, proto: &str) -> Vec<String> {
        let methods: Vec<&str> = proto
            .lines()
            .filter_map(|l| l.trim().strip_prefix("rpc "))
            .filter_map(|l| l.split(['(', ' ']).next())
            .collect();
        let mut wrong = Vec::new();
        for m in &methods {
            let rows = self.rules.iter().filter(|r| r.method == *m).count();
            if rows != 1 {
                wrong.push(format!("{m}: {rows} rows"));
            }
        }
        for r in self.rules.iter().filter(|r| !methods.contains(&r.method)) {
            wrong.push(format!("{}: not in the proto", r.method));
        }
        wrong
    }

    /// The rule for `method`, if the table has one.
    pub fn rule(&self, method: &str) -> Option<&Rule> {
        self.rules.iter().find(|r| r.method == method)
    }

    /// This policy with `kind` also allowed on every method: for test harnesses, whose client
    /// stands in for every service at once (e.g. as `authz`, a kind that calls nothing in the
    /// real tables). Leaks one small table per call; never used by a service's `from_env`.
    pub fn also_allowing(self, kind: ServiceKind) -> Policy {
        let rules: Vec<Rule> = self
            .rules
            .iter()
            .map(|rule| {
                let mut callers = rule.callers.to_vec();
                if !callers.contains(&kind) {
                    callers.push(kind);
                }
                Rule {
                    callers: Box::leak(callers.into_boxed_slice()),
                    ..*rule
                }
            })
            .collect();
        Policy {
            service: self.service,
            rules: Box::leak(rules.into_boxed_slice()),
        }
    }

    /// Whether `kind` may call `method` with its certificate alone.
    pub fn allows(&self, kind: ServiceKind, method: &str) -> bool {
        self.rule(method).is_some_and(|r| r.callers.contains(&kind))
    }

    /// The decision for a call to `path` (`/service/method`): `Ok(None)` for another gRPC
    /// service on the same server (health, reflection).
    pub fn check(
        &self,
        path: &str,
        peer: Option<ServiceKind>,
        bearer: bool,
    ) -> Result<Option<Caller>, Status> {
        let Some(method) = path
            .strip_prefix('/')
            .and_then(|p| p.strip_prefix(self.service))
            .and_then(|p| p.strip_prefix('/'))
        else {
            return Ok(None);
        };
        let rule = self.rule(method);
        if let (Some(kind), Some(rule)) = (peer, rule)
            && rule.callers.contains(&kind)
        {
            return Ok(Some(Caller::Service(kind)));
        }
        if bearer && rule.is_some_and(|r| r.api_token) {
            return Ok(Some(Caller::Token));
        }
        match peer {
            None => {
                tracing::warn!(method, "grpc call without a client certificate refused");
                Err(Status::unauthenticated(format!(
                    "{method} needs a client certificate{}",
                    if rule.is_some_and(|r| r.api_token) {
                        " or an API token"
                    } else {
                        ""
                    }
                )))
            }
            Some(kind) => {
                tracing::warn!(caller = %kind.name(), method, "grpc call refused by the allowlist");
                Err(Status::permission_denied(format!(
                    "{} may not call {method}",
                    kind.name()
                )))
            }
        }
    }
}

/// The tower layer enforcing a [`Policy`] (`Server::builder().layer(..)`).
#[derive(Debug, Clone, Copy)]
pub struct PolicyLayer {
    policy: Policy,
}

impl PolicyLayer {
    pub fn new(policy: Policy) -> Self {
        Self { policy }
    }
}

impl<S> tower::Layer<S> for PolicyLayer {
    type Service = PolicyService<S>;

    fn layer(&self, inner: S) -> PolicyService<S> {
        PolicyService {
            inner,
            policy: self.policy,
        }
    }
}

/// See [`PolicyLayer`].
#[derive(Debug, Clone)]
pub struct PolicyService<S> {
    inner: S,
    policy: Policy,
}

type Reply<E> = Pin<Box<dyn Future<Output = Result<http::Response<Body>, E>> + Send>>;

impl<S> tower::Service<http::Request<Body>> for PolicyService<S>
where
    S: tower::Service<http::Request<Body>, Response = http::Response<Body>>,
    S::Future: Send + 'static,
    S::Error: Send + 'static,
{
    type Response = http::Response<Body>;
    type Error = S::Error;
    type Future = Reply<S::Error>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut request: http::Request<Body>) -> Self::Future {
        let peer = request.extensions().get::<PeerInfo>().and_then(|p| p.kind);
        let bearer = request.headers().contains_key(http::header::AUTHORIZATION);
        match self.policy.check(request.uri().path(), peer, bearer) {
            Ok(caller) => {
                let cx = TraceContextPropagator::new().extract(&HeaderExtractor(request.headers()));
                request.extensions_mut().insert(RemoteContext(cx));
                if let Some(caller) = caller {
                    request.extensions_mut().insert(caller);
                }
                Box::pin(self.inner.call(request))
            }
            Err(status) => Box::pin(std::future::ready(Ok(status.into_http()))),
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use tonic::Code;

    const POLICY: Policy = Policy {
        service: "pkg.Svc",
        rules: &[
            Rule::services("Decide", &[ServiceKind::GatewayWs, ServiceKind::SshEdge]),
            Rule::admin("Change", &[]),
        ],
    };

    #[test]
    fn allowed_kind_passes_as_a_service() {
        let caller = POLICY
            .check("/pkg.Svc/Decide", Some(ServiceKind::SshEdge), false)
            .unwrap();
        assert_eq!(caller, Some(Caller::Service(ServiceKind::SshEdge)));
    }

    #[test]
    fn other_kind_is_denied_and_named() {
        let err = POLICY
            .check("/pkg.Svc/Decide", Some(ServiceKind::Registry), false)
            .unwrap_err();
        assert_eq!(err.code(), Code::PermissionDenied);
        assert!(err.message().contains("registry"), "{}", err.message());
        assert!(err.message().contains("Decide"), "{}", err.message());
    }

    #[test]
    fn no_certificate_is_unauthenticated() {
        let err = POLICY.check("/pkg.Svc/Decide", None, true).unwrap_err();
        assert_eq!(err.code(), Code::Unauthenticated);
    }

    #[test]
    fn admin_methods_take_a_token_not_a_bare_service() {
        assert_eq!(
            POLICY.check("/pkg.Svc/Change", None, true).unwrap(),
            Some(Caller::Token)
        );
        let err = POLICY
            .check("/pkg.Svc/Change", Some(ServiceKind::GatewayWs), false)
            .unwrap_err();
        assert_eq!(err.code(), Code::PermissionDenied);
        assert_eq!(
            POLICY
                .check("/pkg.Svc/Change", None, false)
                .unwrap_err()
                .code(),
            Code::Unauthenticated
        );
    }

    #[test]
    fn unknown_methods_are_denied_other_services_pass() {
        let err = POLICY
            .check("/pkg.Svc/Nope", Some(ServiceKind::Authz), true)
            .unwrap_err();
        assert_eq!(err.code(), Code::PermissionDenied);
        assert_eq!(
            POLICY
                .check("/grpc.health.v1.Health/Check", None, false)
                .unwrap(),
            None
        );
        // A prefix of the service name is not the service.
        assert!(
            POLICY
                .check("/pkg.SvcX/Decide", None, false)
                .unwrap()
                .is_none()
        );
    }
}
