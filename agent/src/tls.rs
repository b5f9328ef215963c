//! How the agent reaches its gateway. The node token crosses the network only inside TLS that
//! was verified: against the webpki roots, or against one CA file (`PHIREPASS_GATEWAY_CA`,
//! `--ca`) and nothing else. Plain `ws://` / `http://` is refused unless the gateway is on
//! this host (loopback) or `PHIREPASS_INSECURE_GATEWAY=true` says so, which development mode
//! allows and production mode refuses.

use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use phirepass_runtime::config::ConfigError;
use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject as _;

/// A PEM file of the CA(s) the gateway's certificate must chain to, instead of the webpki roots.
pub const CA_VAR: &str = "PHIREPASS_GATEWAY_CA";
/// Development only: allows plain `ws://`/`http://` to a gateway that is not on loopback.
pub const INSECURE_VAR: &str = "PHIREPASS_INSECURE_GATEWAY";

#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("cannot read the gateway CA {path}: {detail}")]
    ReadCa { path: String, detail: String },
    #[error("{path} holds no certificate (expected PEM \"BEGIN CERTIFICATE\" blocks)")]
    NoCa { path: String },
    #[error("the gateway CA {path} is not usable: {detail}")]
    BadCa { path: String, detail: String },
    #[error(
        "{url} is plain text to a host that is not this machine: the node token would cross the \
         network readable; use {secure}://, or set {INSECURE_VAR}=true (development only)"
    )]
    Plaintext { url: String, secure: &'static str },
}

/// Whether `host` (a URL's host, brackets allowed) is this machine: `localhost` or a loopback
/// address. Other names may resolve anywhere, so they count as remote.
pub fn is_loopback(host: &str) -> bool {
    let host = host.trim_start_matches('[').trim_end_matches(']');
    host.eq_ignore_ascii_case("localhost")
        || host.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

/// Refuses a plain-text URL (`secure == false`) to a remote host unless `allow_insecure`.
pub fn check_plaintext(
    url: &str,
    secure: bool,
    host: &str,
    allow_insecure: bool,
    secure_scheme: &'static str,
) -> Result<(), TlsError> {
    if secure || allow_insecure || is_loopback(host) {
        return Ok(());
    }
    Err(TlsError::Plaintext {
        url: url.to_owned(),
        secure: secure_scheme,
    })
}

/// The rustls client settings for the gateway: the CA in `ca` only, else the webpki roots.
pub fn client_config(ca: Option<&Path>) -> Result<Arc<rustls::ClientConfig>, TlsError> {
    let mut roots = rustls::RootCertStore::empty();
    match ca {
        None => roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned()),
        Some(path) => {
            for cert in read_ca(path)? {
                roots.add(cert).map_err(|e| TlsError::BadCa {
                    path: path.display().to_string(),
                    detail: e.to_string(),
                })?;
            }
        }
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| TlsError::BadCa {
            path: String::new(),
            detail: e.to_string(),
        })?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(Arc::new(config))
}

fn read_ca(path: &Path) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let name = || path.display().to_string();
    let certs = CertificateDer::pem_file_iter(path)
        .and_then(|certs| certs.collect::<Result<Vec<_>, _>>())
        .map_err(|e| TlsError::ReadCa {
            path: name(),
            detail: e.to_string(),
        })?;
    if certs.is_empty() {
        return Err(TlsError::NoCa { path: name() });
    }
    Ok(certs)
}

/// `PHIREPASS_INSECURE_GATEWAY` (true/false, 1/0, yes/no; unset is false), refused in
/// production.
pub fn insecure_flag(raw: Option<String>, production: bool) -> Result<bool, ConfigError> {
    let set = match raw
        .as_deref()
        .map(|r| r.trim().to_ascii_lowercase())
        .as_deref()
    {
        None | Some("" | "0" | "false" | "no" | "off") => false,
        Some("1" | "true" | "yes" | "on") => true,
        Some(other) => {
            return Err(ConfigError::invalid(
                INSECURE_VAR,
                format!("expected true or false, got {other:?}"),
            ));
        }
    };
    if set && production {
        return Err(ConfigError::invalid(
            INSECURE_VAR,
            "plain-text gateways are for development only (APP_MODE=production); unset it and \
             give the gateway a certificate",
        ));
    }
    Ok(set)
}

/// [`insecure_flag`] from the process environment (`APP_MODE` decides production).
pub fn insecure_flag_from_env() -> Result<bool, ConfigError> {
    let production = std::env::var("APP_MODE").is_ok_and(|m| {
        matches!(
            m.trim().to_ascii_lowercase().as_str(),
            "production" | "prod"
        )
    });
    insecure_flag(std::env::var(INSECURE_VAR).ok(), production)
}

/// The CA path from its variable, empty meaning unset.
pub fn ca_path(raw: Option<String>) -> Option<PathBuf> {
    raw.map(|v| v.trim().to_owned())
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn loopback_names() {
        for host in [
            "localhost",
            "LOCALHOST",
            "127.0.0.1",
            "127.8.9.1",
            "[::1]",
            "::1",
        ] {
            assert!(is_loopback(host), "{host}");
        }
        for host in [
            "gw.example.com",
            "10.0.0.1",
            "localhost.evil.com",
            "[::2]",
            "0.0.0.0",
        ] {
            assert!(!is_loopback(host), "{host}");
        }
    }

    #[test]
    fn plaintext_only_to_loopback_or_when_allowed() {
        assert!(check_plaintext("ws://127.0.0.1:8080", false, "127.0.0.1", false, "wss").is_ok());
        assert!(check_plaintext("wss://gw.example", true, "gw.example", false, "wss").is_ok());
        assert!(check_plaintext("ws://gw.example", false, "gw.example", true, "wss").is_ok());
        let refused = check_plaintext("ws://gw.example", false, "gw.example", false, "wss");
        let message = refused.unwrap_err().to_string();
        assert!(
            message.contains("use wss://") && message.contains(INSECURE_VAR),
            "{message}"
        );
    }

    #[test]
    fn insecure_flag_is_for_development() {
        assert!(!insecure_flag(None, true).unwrap());
        assert!(insecure_flag(Some("true".into()), false).unwrap());
        assert!(!insecure_flag(Some("0".into()), true).unwrap());
        assert!(insecure_flag(Some("yes".into()), true).is_err());
        assert!(insecure_flag(Some("maybe".into()), false).is_err());
    }

    #[test]
    fn ca_files_must_hold_a_certificate() {
        let dir = tempfile::tempdir().unwrap();
        let empty = dir.path().join("empty.pem");
        std::fs::write(&empty, "not a certificate\n").unwrap();
        assert!(matches!(
            client_config(Some(&empty)),
            Err(TlsError::NoCa { .. })
        ));
        let missing = dir.path().join("missing.pem");
        assert!(matches!(
            client_config(Some(&missing)),
            Err(TlsError::ReadCa { .. })
        ));
        assert!(client_config(None).is_ok());
    }
}
