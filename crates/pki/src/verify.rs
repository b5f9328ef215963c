//! rustls callbacks that read the identity's current material on every handshake, so a
//! renewed certificate or a rotated trust bundle applies to new connections without restart.

use std::fmt;
use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::{ResolvesClientCert, WebPkiServerVerifier};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls::server::{ClientHello, ResolvesServerCert, WebPkiClientVerifier};
use rustls::sign::CertifiedKey;
use rustls::{DigitallySignedStruct, DistinguishedName, Error, RootCertStore, SignatureScheme};

use crate::identity::Shared;
use crate::{PkiError, ServiceKind, peer_kind, provider};

/// The verifiers built from one trust bundle.
pub(crate) struct Verifiers {
    pub(crate) server: Arc<WebPkiServerVerifier>,
    pub(crate) client_required: Arc<dyn ClientCertVerifier>,
    pub(crate) client_optional: Arc<dyn ClientCertVerifier>,
}

impl Verifiers {
    pub(crate) fn new(roots: RootCertStore) -> Result<Self, PkiError> {
        let roots = Arc::new(roots);
        let err = |e: rustls::server::VerifierBuilderError| PkiError::Verifier(e.to_string());
        let client = || WebPkiClientVerifier::builder_with_provider(roots.clone(), provider());
        Ok(Self {
            server: WebPkiServerVerifier::builder_with_provider(roots.clone(), provider())
                .build()
                .map_err(|e| PkiError::Verifier(e.to_string()))?,
            client_required: client().build().map_err(err)?,
            client_optional: client().allow_unauthenticated().build().map_err(err)?,
        })
    }
}

fn kind_error(error: PkiError) -> Error {
    Error::General(error.to_string())
}

/// Presents the current certificate, as server and as client.
pub(crate) struct CurrentCert(pub(crate) Arc<Shared>);

impl fmt::Debug for CurrentCert {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "CurrentCert({})", self.0.kind)
    }
}

impl ResolvesServerCert for CurrentCert {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(self.0.material().certified.clone())
    }
}

impl ResolvesClientCert for CurrentCert {
    fn resolve(&self, _hints: &[&[u8]], _schemes: &[SignatureScheme]) -> Option<Arc<CertifiedKey>> {
        Some(self.0.material().certified.clone())
    }

    fn has_certs(&self) -> bool {
        true
    }
}

/// Verifies clients against the current trust bundle; a client that presents a certificate
/// must also carry a phirepass kind.
pub(crate) struct CurrentClientVerifier {
    pub(crate) shared: Arc<Shared>,
    pub(crate) mandatory: bool,
}

impl fmt::Debug for CurrentClientVerifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "CurrentClientVerifier(mandatory: {})", self.mandatory)
    }
}

impl CurrentClientVerifier {
    fn current(&self) -> Arc<dyn ClientCertVerifier> {
        let material = self.shared.material();
        match self.mandatory {
            true => material.verifiers.client_required.clone(),
            false => material.verifiers.client_optional.clone(),
        }
    }
}

impl ClientCertVerifier for CurrentClientVerifier {
    fn offer_client_auth(&self) -> bool {
        true
    }

    fn client_auth_mandatory(&self) -> bool {
        self.mandatory
    }

    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        // Every phirepass client holds one certificate: no hints needed.
        &[]
    }

    fn verify_client_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        now: UnixTime,
    ) -> Result<ClientCertVerified, Error> {
        let verified = self
            .current()
            .verify_client_cert(end_entity, intermediates, now)?;
        peer_kind(end_entity).map_err(kind_error)?;
        Ok(verified)
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, Error> {
        self.current().verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, Error> {
        self.current().verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.current().supported_verify_schemes()
    }
}

/// Verifies a server against a trust bundle (the identity's current one, or a fixed one for
/// clients without an identity) and, when `expect` is set, that it is that kind of service.
pub(crate) struct KindServerVerifier {
    pub(crate) source: TrustSource,
    pub(crate) expect: Option<ServiceKind>,
}

pub(crate) enum TrustSource {
    Identity(Arc<Shared>),
    Fixed(Arc<WebPkiServerVerifier>),
}

impl fmt::Debug for KindServerVerifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "KindServerVerifier(expect: {:?})", self.expect)
    }
}

impl KindServerVerifier {
    fn current(&self) -> Arc<WebPkiServerVerifier> {
        match &self.source {
            TrustSource::Identity(shared) => shared.material().verifiers.server.clone(),
            TrustSource::Fixed(verifier) => verifier.clone(),
        }
    }
}

impl ServerCertVerifier for KindServerVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, Error> {
        let verified =
            self.current()
                .verify_server_cert(end_entity, intermediates, server_name, ocsp, now)?;
        if let Some(expect) = self.expect {
            let kind = peer_kind(end_entity).map_err(kind_error)?;
            if kind != expect {
                return Err(Error::General(format!(
                    "expected the {expect} service, the peer is {kind}"
                )));
            }
        }
        Ok(verified)
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, Error> {
        self.current().verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, Error> {
        self.current().verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.current().supported_verify_schemes()
    }
}
