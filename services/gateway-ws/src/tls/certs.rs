//! The gateway's certificate: a PEM chain and key loaded from files, served to every client
//! (one certificate whose SANs name the dashboard, tunnel and app hosts, wildcards included),
//! and swapped for new connections when the files change on disk.

use std::path::Path;
use std::sync::{Arc, RwLock};
use std::time::{Duration, SystemTime};

use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject as _;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use tracing::{info, warn};

use super::TlsSettings;

/// Why a certificate or key could not be used; names the file, never key material.
#[derive(Debug, thiserror::Error)]
pub enum CertError {
    #[error("cannot read the certificate chain {path}: {detail}")]
    Chain { path: String, detail: String },
    #[error("{path} holds no certificate (expected PEM \"BEGIN CERTIFICATE\" blocks)")]
    NoCertificate { path: String },
    #[error("cannot read the private key {path}: {detail}")]
    Key { path: String, detail: String },
    #[error("the key {key} does not belong to the certificate {cert}: {detail}")]
    Mismatch {
        cert: String,
        key: String,
        detail: String,
    },
}

/// Reads the chain (leaf first) and its key, and checks that they belong together.
pub fn load(cert: &Path, key: &Path, provider: &CryptoProvider) -> Result<CertifiedKey, CertError> {
    let cert_name = cert.display().to_string();
    let key_name = key.display().to_string();
    let chain = CertificateDer::pem_file_iter(cert)
        .and_then(|certs| certs.collect::<Result<Vec<_>, _>>())
        .map_err(|e| CertError::Chain {
            path: cert_name.clone(),
            detail: e.to_string(),
        })?;
    if chain.is_empty() {
        return Err(CertError::NoCertificate { path: cert_name });
    }
    let private = PrivateKeyDer::from_pem_file(key).map_err(|e| CertError::Key {
        path: key_name.clone(),
        detail: e.to_string(),
    })?;
    CertifiedKey::from_der(chain, private, provider).map_err(|e| CertError::Mismatch {
        cert: cert_name,
        key: key_name,
        detail: e.to_string(),
    })
}

/// Hands every handshake the current certificate; [`watch`] replaces it.
#[derive(Debug)]
pub struct Resolver {
    current: RwLock<Arc<CertifiedKey>>,
}

impl Resolver {
    pub fn new(key: CertifiedKey) -> Self {
        Self {
            current: RwLock::new(Arc::new(key)),
        }
    }

    fn replace(&self, key: CertifiedKey) {
        *self.current.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(key);
    }

    fn current(&self) -> Arc<CertifiedKey> {
        self.current
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }
}

impl ResolvesServerCert for Resolver {
    // One certificate for every name: SNI (or its absence) does not choose.
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(self.current())
    }
}

/// What identifies a version of a file without reading it.
type Stamp = Option<(SystemTime, u64)>;

fn stamp(path: &Path) -> Stamp {
    let meta = std::fs::metadata(path).ok()?;
    Some((meta.modified().ok()?, meta.len()))
}

/// Every `settings.reload_interval`, reloads the pair when either file changed. A pair that
/// does not load (half written, key of another certificate) keeps the previous one serving,
/// and is tried again at the next change.
pub async fn watch(resolver: Arc<Resolver>, settings: TlsSettings, provider: Arc<CryptoProvider>) {
    let Some(every) = settings.reload_interval else {
        return;
    };
    let mut seen = (stamp(&settings.cert), stamp(&settings.key));
    let mut tick = tokio::time::interval(every.max(Duration::from_millis(100)));
    tick.tick().await;
    loop {
        tick.tick().await;
        let now = (stamp(&settings.cert), stamp(&settings.key));
        if now == seen {
            continue;
        }
        seen = now;
        match load(&settings.cert, &settings.key, &provider) {
            Ok(key) => {
                resolver.replace(key);
                info!(cert = %settings.cert.display(), "tls certificate reloaded");
            }
            Err(error) => {
                warn!(%error, "tls certificate changed but cannot be used; still serving the previous one");
            }
        }
    }
}
