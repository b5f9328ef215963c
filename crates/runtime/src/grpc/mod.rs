//! gRPC between Phirepass services: mutual TLS 1.3 and a per-RPC allowlist of caller kinds.
//!
//! Every server speaks TLS only ([`tls::incoming`]), asks clients for a certificate from the
//! deployment CA and enforces its service's [`Policy`] from the kind that certificate names
//! ([`PolicyLayer`]); admin methods also take a user's API token without a certificate (the
//! admin CLI), which the handler verifies. Clients ([`channel`]) present their own identity
//! and check that the server is the kind they meant to reach. Every call carries the caller's
//! W3C trace context ([`CallMetadata`], [`RemoteContext`]).

mod api_token;
mod auth;
pub mod policy;
pub mod probe;
pub mod server;
pub mod tls;

pub use api_token::{API_TOKEN_PREFIX, TokenNeed, api_token};
pub use auth::{CallMetadata, RemoteContext, bearer, remote_context};
pub use policy::{Caller, Policy, PolicyLayer, Rule};
pub use server::GrpcService;

use phirepass_pki::{Identity, ServiceKind};
use rustls::pki_types::CertificateDer;
use tonic::service::interceptor::InterceptedService;
use tonic::transport::{Channel, Endpoint};

/// A channel that adds the trace context (and, for admin clients, the API token) to every call.
pub type AuthedChannel = InterceptedService<Channel, CallMetadata>;

/// Errors building channels, interceptors or servers.
#[derive(Debug, thiserror::Error)]
pub enum GrpcError {
    /// The URL cannot be used as a gRPC endpoint.
    #[error("invalid grpc url {url:?}: {reason}")]
    InvalidUrl { url: String, reason: String },
    /// The token is empty or cannot be sent as a header value.
    #[error("api token must be non-empty printable ascii")]
    InvalidToken,
    /// A channel was requested outside a tokio runtime.
    #[error("grpc channels need a running tokio runtime")]
    NoRuntime,
    /// The TLS material could not be turned into a config.
    #[error("grpc tls: {0}")]
    Tls(#[from] phirepass_pki::PkiError),
    /// The server failed while serving.
    #[error("grpc transport: {0}")]
    Transport(#[from] tonic::transport::Error),
    /// The reflection service could not be built.
    #[error("grpc reflection: {0}")]
    Reflection(#[from] tonic_reflection::server::Error),
    /// The remote answered with an error status.
    #[error("grpc call failed: {0}")]
    Status(#[from] tonic::Status),
}

/// How often a service rereads its certificate files (renewals and CA rotation, no restart).
pub const IDENTITY_RELOAD: std::time::Duration = std::time::Duration::from_secs(60);

/// `kind`'s identity from `PHIREPASS_TLS_DIR` (or `PHIREPASS_TLS_CERT`/`_KEY`/`_TRUST`), reloaded
/// every [`IDENTITY_RELOAD`]; a clear error when none is configured (there is no plaintext
/// fallback). Call inside a tokio runtime.
pub fn identity_from_env(kind: ServiceKind) -> Result<Identity, crate::ConfigError> {
    let var = phirepass_pki::TLS_DIR_VAR;
    let identity = Identity::from_env(kind)
        .map_err(|e| crate::ConfigError::invalid(var, e))?
        .ok_or_else(|| crate::ConfigError::Invalid {
            name: var.to_owned(),
            reason: format!(
                "unset: {} needs its certificate ({var} holding trust.crt, {k}.crt and {k}.key, \
                 e.g. from `phirepass pki init`; or PHIREPASS_TLS_CERT, PHIREPASS_TLS_KEY and \
                 PHIREPASS_TLS_TRUST)",
                kind.name(),
                k = kind.name()
            ),
        })?;
    identity.spawn_reloader(IDENTITY_RELOAD);
    Ok(identity)
}

/// Plaintext accepted connections with `TCP_NODELAY`, for the health-only probe port of a
/// service that serves no gRPC API (ssh-edge): without it small unary replies wait for the
/// client's delayed ACK (p99 of ~40 ms instead of ~5 ms, measured).
pub fn incoming(listener: tokio::net::TcpListener) -> tonic::transport::server::TcpIncoming {
    tonic::transport::server::TcpIncoming::from(listener).with_nodelay(Some(true))
}

/// A lazily connected mutual-TLS channel to `url` (e.g. `https://authz:50051`; `http://` is
/// accepted and means the same: the connection is TLS either way), presenting `identity` and
/// requiring the server's certificate to name `server`. Nothing is dialled until the first
/// call, so services can start in any order. Must be called inside a tokio runtime.
pub fn channel(
    url: &str,
    identity: &Identity,
    server: ServiceKind,
) -> Result<AuthedChannel, GrpcError> {
    let config = identity.client_config(Some(server))?;
    lazy(url, config, CallMetadata::new())
}

/// A channel for a client without an identity (the admin CLI): it verifies the server against
/// `trust` and that it is `server`, presents no certificate and sends `token` on every call.
pub fn admin_channel(
    url: &str,
    trust: &[CertificateDer<'static>],
    server: ServiceKind,
    token: &str,
) -> Result<AuthedChannel, GrpcError> {
    let metadata = CallMetadata::with_token(token)?;
    let config = phirepass_pki::anonymous_client_config(trust, Some(server))?;
    lazy(url, config, metadata)
}

/// The certificates in a PEM trust bundle (e.g. `LocalPki::trust_pem`), for [`admin_channel`].
pub fn trust_certs(pem: &str) -> Result<Vec<CertificateDer<'static>>, GrpcError> {
    use rustls::pki_types::pem::PemObject as _;
    CertificateDer::pem_slice_iter(pem.as_bytes())
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| {
            GrpcError::Tls(phirepass_pki::PkiError::Invalid {
                path: "trust bundle".into(),
                reason: e.to_string(),
            })
        })
}

fn lazy(
    url: &str,
    config: rustls::ClientConfig,
    metadata: CallMetadata,
) -> Result<AuthedChannel, GrpcError> {
    let invalid = |reason: String| GrpcError::InvalidUrl {
        url: url.to_owned(),
        reason,
    };
    // tonic must not try TLS itself: the connector does it, whatever the scheme says.
    let plain = match url.strip_prefix("https://") {
        Some(rest) => format!("http://{rest}"),
        None => url.to_owned(),
    };
    let endpoint = Endpoint::from_shared(plain).map_err(|e| invalid(e.to_string()))?;
    if endpoint.uri().host().is_none() {
        return Err(invalid("no host".into()));
    }
    if tokio::runtime::Handle::try_current().is_err() {
        return Err(GrpcError::NoRuntime);
    }
    let connector = tls::Connector::new(tls::client_config(config));
    Ok(InterceptedService::new(
        endpoint.connect_with_connector_lazy(connector),
        metadata,
    ))
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use phirepass_pki::LocalPki;

    fn identity() -> Identity {
        LocalPki::generate()
            .unwrap()
            .identity(ServiceKind::GatewayWs)
            .unwrap()
    }

    #[tokio::test]
    async fn channel_is_lazy() {
        // Nothing listens here; building the channel must still succeed.
        assert!(channel("https://127.0.0.1:1", &identity(), ServiceKind::Authz).is_ok());
        assert!(channel("http://127.0.0.1:1", &identity(), ServiceKind::Authz).is_ok());
    }

    #[tokio::test]
    async fn channel_rejects_bad_url() {
        assert!(matches!(
            channel("not a url", &identity(), ServiceKind::Authz),
            Err(GrpcError::InvalidUrl { .. })
        ));
    }

    #[test]
    fn channel_outside_runtime_is_an_error() {
        assert!(matches!(
            channel("http://127.0.0.1:1", &identity(), ServiceKind::Authz),
            Err(GrpcError::NoRuntime)
        ));
    }
}
