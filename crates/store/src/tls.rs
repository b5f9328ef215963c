//! PostgreSQL over TLS: `sslmode=verify-full` against the deployment trust bundle, with the
//! service's certificate as client certificate (the server maps its CN, the kind's name, to
//! the role of the same name: `cert` in pg_hba.conf).
//!
//! The Any driver only takes a URL, so the files become `sslrootcert`/`sslcert`/`sslkey`
//! query parameters; sqlx reads them at every new connection, so a renewed certificate is
//! used by the pool's next connection.

use std::path::{Path, PathBuf};

use phirepass_pki::TlsFiles;

use crate::StoreError;

/// TLS toward PostgreSQL: the trust bundle, and a client certificate when the role
/// authenticates by certificate (services). The migration owner authenticates by password
/// and may present none.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PgTls {
    pub trust: PathBuf,
    pub cert: Option<PathBuf>,
    pub key: Option<PathBuf>,
}

impl PgTls {
    /// Server verification only (admin tools, the migration owner).
    pub fn trust_only(trust: &Path) -> Self {
        Self {
            trust: trust.to_owned(),
            cert: None,
            key: None,
        }
    }
}

impl From<TlsFiles> for PgTls {
    fn from(files: TlsFiles) -> Self {
        Self {
            trust: files.trust,
            cert: Some(files.cert),
            key: Some(files.key),
        }
    }
}

const FILE_PARAMS: &[&str] = &["sslrootcert", "sslcert", "sslkey"];

/// `url` with the TLS parameters of `tls`. A URL without `sslmode` gets `verify-full`; one
/// that names anything weaker, or names files itself, is refused: identity files mean the
/// connection must be verified TLS.
pub(crate) fn apply(url: &str, tls: &PgTls) -> Result<String, StoreError> {
    let (base, query) = url.split_once('?').unwrap_or((url, ""));
    let mut params: Vec<String> = query
        .split('&')
        .filter(|p| !p.is_empty())
        .map(str::to_owned)
        .collect();
    let mut has_mode = false;
    for param in &params {
        let (name, value) = param.split_once('=').unwrap_or((param, ""));
        if name == "sslmode" {
            if value != "verify-full" {
                return Err(StoreError::Tls(
                    "identity files need sslmode=verify-full (or no sslmode)",
                ));
            }
            has_mode = true;
        }
        if FILE_PARAMS.contains(&name) {
            return Err(StoreError::Tls(
                "the database url names tls files and identity files are given too",
            ));
        }
    }
    if !has_mode {
        params.push("sslmode=verify-full".into());
    }
    params.push(format!("sslrootcert={}", encode(&tls.trust)));
    match (&tls.cert, &tls.key) {
        (Some(cert), Some(key)) => {
            params.push(format!("sslcert={}", encode(cert)));
            params.push(format!("sslkey={}", encode(key)));
        }
        (None, None) => {}
        _ => return Err(StoreError::Tls("a client certificate needs its key")),
    }
    Ok(format!("{base}?{}", params.join("&")))
}

/// Percent-encodes a path for a URL query value.
fn encode(path: &Path) -> String {
    let mut out = String::new();
    for byte in path.to_string_lossy().bytes() {
        if byte.is_ascii_alphanumeric() || b"-._~/".contains(&byte) {
            out.push(char::from(byte));
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    fn identity() -> PgTls {
        PgTls {
            trust: "/etc/pp/trust.crt".into(),
            cert: Some("/etc/pp/my dir/authz.crt".into()),
            key: Some("/etc/pp/authz.key".into()),
        }
    }

    #[test]
    fn adds_verify_full_and_the_files() {
        assert_eq!(
            apply("postgres://authz@db/phirepass", &identity()).unwrap(),
            "postgres://authz@db/phirepass?sslmode=verify-full&sslrootcert=/etc/pp/trust.crt\
             &sslcert=/etc/pp/my%20dir/authz.crt&sslkey=/etc/pp/authz.key"
        );
        let owner = apply(
            "postgres://o:p@db/x?sslmode=verify-full&application_name=m",
            &PgTls::trust_only(Path::new("/t.crt")),
        )
        .unwrap();
        assert_eq!(
            owner,
            "postgres://o:p@db/x?sslmode=verify-full&application_name=m&sslrootcert=/t.crt"
        );
    }

    #[test]
    fn refuses_weaker_modes_and_conflicting_files() {
        for mode in ["disable", "prefer", "require", "verify-ca"] {
            let url = format!("postgres://db/x?sslmode={mode}");
            assert!(apply(&url, &identity()).is_err(), "{mode}");
        }
        assert!(apply("postgres://db/x?sslrootcert=/a", &identity()).is_err());
    }
}
