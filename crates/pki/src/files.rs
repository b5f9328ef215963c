//! Where a service finds its identity: a directory with `trust.crt`, `<kind>.crt` and
//! `<kind>.key` (what `phirepass pki init` writes), or three explicit paths.

use std::path::{Path, PathBuf};

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use sha2::{Digest, Sha256};

use crate::{PkiError, ServiceKind};

/// Environment variable naming the directory that holds a service's TLS files.
pub const TLS_DIR_VAR: &str = "PHIREPASS_TLS_DIR";
const CERT_VAR: &str = "PHIREPASS_TLS_CERT";
const KEY_VAR: &str = "PHIREPASS_TLS_KEY";
const TRUST_VAR: &str = "PHIREPASS_TLS_TRUST";

/// The files of one identity.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsFiles {
    /// PEM bundle of every CA certificate trusted (several while a CA is rotated).
    pub trust: PathBuf,
    /// PEM certificate chain, leaf first.
    pub cert: PathBuf,
    /// PEM private key of the leaf.
    pub key: PathBuf,
}

impl TlsFiles {
    /// The layout `phirepass pki init` writes: `DIR/trust.crt`, `DIR/<kind>.crt`, `DIR/<kind>.key`.
    pub fn in_dir(dir: &Path, kind: ServiceKind) -> Self {
        Self {
            trust: dir.join("trust.crt"),
            cert: dir.join(format!("{}.crt", kind.name())),
            key: dir.join(format!("{}.key", kind.name())),
        }
    }

    /// From the environment: `PHIREPASS_TLS_CERT`, `PHIREPASS_TLS_KEY` and
    /// `PHIREPASS_TLS_TRUST` each override the file `PHIREPASS_TLS_DIR` would give. `None` when
    /// neither the directory nor all three files are set.
    pub fn from_env(kind: ServiceKind) -> Result<Option<Self>, PkiError> {
        let var = |name: &str| {
            std::env::var_os(name)
                .filter(|v| !v.is_empty())
                .map(PathBuf::from)
        };
        let (cert, key, trust) = (var(CERT_VAR), var(KEY_VAR), var(TRUST_VAR));
        let base = match var(TLS_DIR_VAR) {
            Some(dir) => Self::in_dir(&dir, kind),
            None => match (cert, key, trust) {
                (None, None, None) => return Ok(None),
                (Some(cert), Some(key), Some(trust)) => return Ok(Some(Self { trust, cert, key })),
                _ => {
                    return Err(PkiError::Invalid {
                        path: format!("{CERT_VAR}/{KEY_VAR}/{TRUST_VAR}"),
                        reason: format!("set all three, or {TLS_DIR_VAR}"),
                    });
                }
            },
        };
        Ok(Some(Self {
            trust: trust.unwrap_or(base.trust),
            cert: cert.unwrap_or(base.cert),
            key: key.unwrap_or(base.key),
        }))
    }
}

pub(crate) fn read(path: &Path) -> Result<Vec<u8>, PkiError> {
    std::fs::read(path).map_err(|source| PkiError::Io {
        path: path.display().to_string(),
        source,
    })
}

/// Every certificate in a PEM file; an error when there is none.
pub fn read_certs(path: &Path) -> Result<Vec<CertificateDer<'static>>, PkiError> {
    let bytes = read(path)?;
    let certs = CertificateDer::pem_slice_iter(&bytes)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| PkiError::Invalid {
            path: path.display().to_string(),
            reason: e.to_string(),
        })?;
    if certs.is_empty() {
        return Err(PkiError::Invalid {
            path: path.display().to_string(),
            reason: "no certificate in the file".into(),
        });
    }
    Ok(certs)
}

/// The private key in a PEM file.
pub fn read_key(path: &Path) -> Result<PrivateKeyDer<'static>, PkiError> {
    let bytes = read(path)?;
    PrivateKeyDer::from_pem_slice(&bytes).map_err(|e| PkiError::Invalid {
        path: path.display().to_string(),
        reason: format!("no private key: {e}"),
    })
}

/// Writes `contents`; private keys (`private`) are created readable by the owner only.
pub fn write(path: &Path, contents: &str, private: bool) -> Result<(), PkiError> {
    use std::io::Write;
    let io = |source| PkiError::Io {
        path: path.display().to_string(),
        source,
    };
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(if private { 0o600 } else { 0o644 });
    }
    let mut file = options.open(path).map_err(io)?;
    file.write_all(contents.as_bytes()).map_err(io)?;
    file.sync_all().map_err(io)
}

/// SHA-256 of a certificate's DER, hex.
pub fn fingerprint(cert: &CertificateDer<'_>) -> String {
    hex::encode(Sha256::digest(cert.as_ref()))
}

/// The modification time of a file, to notice rotation.
pub(crate) fn modified(path: &Path) -> Option<std::time::SystemTime> {
    std::fs::metadata(path).and_then(|m| m.modified()).ok()
}
