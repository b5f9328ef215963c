//! One service instance's identity: its certificate and key, and the CAs it trusts.

use std::fmt;
use std::sync::{Arc, Mutex, RwLock, Weak};
use std::time::{Duration, SystemTime};

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::sign::CertifiedKey;
use rustls::{ClientConfig, RootCertStore, ServerConfig};

use crate::files::{self, TlsFiles};
use crate::verify::{
    CurrentCert, CurrentClientVerifier, KindServerVerifier, TrustSource, Verifiers,
};
use crate::{PkiError, ServiceKind, peer_kind, provider};

/// Whether a server asks its clients for a certificate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClientAuth {
    /// Every client must present a certificate from the trust bundle.
    Required,
    /// A client may come without one (e.g. the admin CLI with an API token); one that presents
    /// a certificate must present a valid one.
    Optional,
}

pub(crate) struct Material {
    pub(crate) certified: Arc<CertifiedKey>,
    pub(crate) verifiers: Verifiers,
    fingerprint: String,
}

pub(crate) struct Shared {
    pub(crate) kind: ServiceKind,
    files: Option<TlsFiles>,
    current: RwLock<Arc<Material>>,
    stamps: Mutex<[Option<SystemTime>; 3]>,
}

impl Shared {
    pub(crate) fn material(&self) -> Arc<Material> {
        self.current
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .clone()
    }
}

/// A service's certificate, key and trust bundle. Cheap to clone; configs built from it follow
/// [`Identity::reload`].
#[derive(Clone)]
pub struct Identity {
    shared: Arc<Shared>,
}

impl fmt::Debug for Identity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Identity")
            .field("kind", &self.shared.kind)
            .field("fingerprint", &self.fingerprint())
            .finish()
    }
}

fn roots(trust: &[CertificateDer<'static>]) -> Result<RootCertStore, PkiError> {
    let mut store = RootCertStore::empty();
    for cert in trust {
        store.add(cert.clone())?;
    }
    Ok(store)
}

fn material(
    kind: ServiceKind,
    chain: Vec<CertificateDer<'static>>,
    key: PrivateKeyDer<'static>,
    trust: &[CertificateDer<'static>],
) -> Result<Material, PkiError> {
    let leaf = chain.first().ok_or_else(|| PkiError::Invalid {
        path: "certificate".into(),
        reason: "empty chain".into(),
    })?;
    let named = peer_kind(leaf)?;
    if named != kind {
        return Err(PkiError::Kind(format!(
            "the certificate is for {named}, this process is {kind}"
        )));
    }
    let fingerprint = files::fingerprint(leaf);
    let certified = CertifiedKey::from_der(chain, key, &provider())?;
    Ok(Material {
        certified: Arc::new(certified),
        verifiers: Verifiers::new(roots(trust)?)?,
        fingerprint,
    })
}

impl Identity {
    /// From PEM text: the certificate chain (leaf first), its key and the trust bundle.
    pub fn from_pem(
        kind: ServiceKind,
        cert_pem: &str,
        key_pem: &str,
        trust_pem: &str,
    ) -> Result<Self, PkiError> {
        let pem_err = |what: &str, e: rustls::pki_types::pem::Error| PkiError::Invalid {
            path: what.into(),
            reason: e.to_string(),
        };
        let chain = CertificateDer::pem_slice_iter(cert_pem.as_bytes())
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| pem_err("certificate", e))?;
        let key =
            PrivateKeyDer::from_pem_slice(key_pem.as_bytes()).map_err(|e| pem_err("key", e))?;
        let trust = CertificateDer::pem_slice_iter(trust_pem.as_bytes())
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| pem_err("trust bundle", e))?;
        Ok(Self::new(kind, None, material(kind, chain, key, &trust)?))
    }

    /// From files; [`Identity::reload`] rereads them when they change.
    pub fn load(kind: ServiceKind, files: TlsFiles) -> Result<Self, PkiError> {
        let stamps = stamps(&files);
        let loaded = read_material(kind, &files)?;
        let identity = Self::new(kind, Some(files), loaded);
        *identity
            .shared
            .stamps
            .lock()
            .unwrap_or_else(|p| p.into_inner()) = stamps;
        Ok(identity)
    }

    /// From `PHIREPASS_TLS_DIR` (or the three explicit file variables); `None` when unset.
    pub fn from_env(kind: ServiceKind) -> Result<Option<Self>, PkiError> {
        TlsFiles::from_env(kind)?
            .map(|files| Self::load(kind, files))
            .transpose()
    }

    fn new(kind: ServiceKind, files: Option<TlsFiles>, material: Material) -> Self {
        Self {
            shared: Arc::new(Shared {
                kind,
                files,
                current: RwLock::new(Arc::new(material)),
                stamps: Mutex::new([None; 3]),
            }),
        }
    }

    pub fn kind(&self) -> ServiceKind {
        self.shared.kind
    }

    /// SHA-256 of the current leaf certificate (hex).
    pub fn fingerprint(&self) -> String {
        self.shared.material().fingerprint.clone()
    }

    /// Rereads the files if any changed. `Ok(true)` when new material is in use; on an error
    /// the previous material stays in use (a half-written renewal must not take a service down).
    pub fn reload(&self) -> Result<bool, PkiError> {
        let Some(files) = &self.shared.files else {
            return Ok(false);
        };
        let now = stamps(files);
        let mut seen = self.shared.stamps.lock().unwrap_or_else(|p| p.into_inner());
        if *seen == now {
            return Ok(false);
        }
        let fresh = read_material(self.shared.kind, files)?;
        *seen = now;
        *self
            .shared
            .current
            .write()
            .unwrap_or_else(|poisoned| poisoned.into_inner()) = Arc::new(fresh);
        Ok(true)
    }

    /// Checks the files every `period` for as long as any clone of this identity lives.
    pub fn spawn_reloader(&self, period: Duration) {
        let weak: Weak<Shared> = Arc::downgrade(&self.shared);
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(period);
            tick.tick().await;
            loop {
                tick.tick().await;
                let Some(shared) = weak.upgrade() else { return };
                let identity = Identity { shared };
                match identity.reload() {
                    Ok(true) => tracing::info!(
                        kind = %identity.kind(),
                        fingerprint = %identity.fingerprint(),
                        "tls identity reloaded"
                    ),
                    Ok(false) => {}
                    Err(error) => {
                        tracing::warn!(kind = %identity.kind(), %error, "tls identity reload failed; keeping the current one")
                    }
                }
            }
        });
    }

    /// A TLS 1.3 server config presenting this identity.
    pub fn server_config(&self, client_auth: ClientAuth) -> Result<ServerConfig, PkiError> {
        let verifier = Arc::new(CurrentClientVerifier {
            shared: self.shared.clone(),
            mandatory: client_auth == ClientAuth::Required,
        });
        let mut config = ServerConfig::builder_with_provider(provider())
            .with_protocol_versions(&[&rustls::version::TLS13])?
            .with_client_cert_verifier(verifier)
            .with_cert_resolver(Arc::new(CurrentCert(self.shared.clone())));
        config.ignore_client_order = true;
        Ok(config)
    }

    /// A TLS 1.3 client config presenting this identity; the server must chain to the trust
    /// bundle and, when `expect` is set, be that kind of service.
    pub fn client_config(&self, expect: Option<ServiceKind>) -> Result<ClientConfig, PkiError> {
        let verifier = KindServerVerifier {
            source: TrustSource::Identity(self.shared.clone()),
            expect,
        };
        Ok(ClientConfig::builder_with_provider(provider())
            .with_protocol_versions(&[&rustls::version::TLS13])?
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(verifier))
            .with_client_cert_resolver(Arc::new(CurrentCert(self.shared.clone()))))
    }
}

/// A client config for a process without an identity (the admin CLI): it verifies the server
/// against `trust` (and its kind, when `expect` is set) and presents no certificate.
pub fn anonymous_client_config(
    trust: &[CertificateDer<'static>],
    expect: Option<ServiceKind>,
) -> Result<ClientConfig, PkiError> {
    let verifiers = Verifiers::new(roots(trust)?)?;
    let verifier = KindServerVerifier {
        source: TrustSource::Fixed(verifiers.server),
        expect,
    };
    Ok(ClientConfig::builder_with_provider(provider())
        .with_protocol_versions(&[&rustls::version::TLS13])?
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(verifier))
        .with_no_client_auth())
}

fn stamps(files: &TlsFiles) -> [Option<SystemTime>; 3] {
    [
        files::modified(&files.trust),
        files::modified(&files.cert),
        files::modified(&files.key),
    ]
}

fn read_material(kind: ServiceKind, files: &TlsFiles) -> Result<Material, PkiError> {
    let chain = files::read_certs(&files.cert)?;
    let key = files::read_key(&files.key)?;
    let trust = files::read_certs(&files.trust)?;
    material(kind, chain, key, &trust)
}
