//! Service identities for a deployment that does not trust its own network.
//!
//! Every service instance holds an X.509 certificate from the deployment's CA whose URI SAN
//! names its kind (`spiffe://phirepass/gateway-ws`). [`Ca`] creates the CA and issues
//! certificates; [`Identity`] loads one service's certificate, key and trust bundle from files
//! and hands out rustls configs that follow the files when they change (rotation without
//! restart); [`peer_kind`] reads the kind of a peer whose chain rustls already verified.

#![forbid(unsafe_code)]

mod ca;
mod files;
mod identity;
mod kind;
mod local;
mod verify;

pub use ca::{Ca, IssueOptions, Issued};
pub use files::{TLS_DIR_VAR, TlsFiles, fingerprint, read_certs, read_key, write};
pub use identity::{ClientAuth, Identity, anonymous_client_config};
pub use kind::{SPIFFE_PREFIX, ServiceKind, peer_kind};
pub use local::{LocalPki, ca_files, trust_file};

/// Errors creating, reading or using certificates.
#[derive(Debug, thiserror::Error)]
pub enum PkiError {
    /// Generating or signing a certificate failed.
    #[error("certificate generation: {0}")]
    Generate(#[from] rcgen::Error),
    /// A file could not be read or written.
    #[error("{path}: {source}")]
    Io {
        path: String,
        #[source]
        source: std::io::Error,
    },
    /// A file did not hold what it should (no certificate, no key, unparsable DER).
    #[error("{path}: {reason}")]
    Invalid { path: String, reason: String },
    /// rustls refused the material (e.g. a key that does not match, an empty trust bundle).
    #[error("tls configuration: {0}")]
    Tls(#[from] rustls::Error),
    /// The trust bundle could not be turned into a verifier.
    #[error("trust bundle: {0}")]
    Verifier(String),
    /// A certificate names no phirepass kind, or another kind than expected.
    #[error("certificate kind: {0}")]
    Kind(String),
}

/// The crypto provider every phirepass TLS config uses (ring, already in the tree).
pub fn provider() -> std::sync::Arc<rustls::crypto::CryptoProvider> {
    std::sync::Arc::new(rustls::crypto::ring::default_provider())
}
