//! How a service reaches Redis beyond its URL: TLS with the service's client certificate
//! (`rediss://`, the deployment trust bundle instead of any public root) and its own ACL user.
//!
//! Redis 7 cannot take the user from the client certificate (8.x can), so each service
//! authenticates with its ACL password on top of the TLS client certificate the server
//! requires (`tls-auth-clients yes`).

use std::path::{Path, PathBuf};

use phirepass_pki::{ServiceKind, TlsFiles};
use redis::{ClientTlsConfig, ConnectionAddr, IntoConnectionInfo, TlsCertificates};

use crate::PresenceError;

/// File holding the service's Redis ACL password (one line).
pub const PASSWORD_FILE_VAR: &str = "REDIS_PASSWORD_FILE";
/// The Redis ACL user; defaults to the service kind's name when a password is given.
pub const USERNAME_VAR: &str = "REDIS_USERNAME";

/// Credentials and TLS files for one service's Redis connection. `Default` is what the
/// embedded defaults and plain `redis://` URLs use: nothing beyond the URL.
#[derive(Clone, Default)]
pub struct RedisAuth {
    /// The service's identity files; required for `rediss://`.
    pub tls: Option<TlsFiles>,
    /// ACL user; overrides a user named in the URL.
    pub username: Option<String>,
    /// ACL password; overrides a password in the URL.
    pub password: Option<String>,
}

impl std::fmt::Debug for RedisAuth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisAuth")
            .field("tls", &self.tls)
            .field("username", &self.username)
            .field("password", &self.password.as_ref().map(|_| "<redacted>"))
            .finish()
    }
}

impl RedisAuth {
    /// The service's identity (`phirepass_pki::TlsFiles::from_env(kind)`: `PHIREPASS_TLS_DIR`
    /// or `PHIREPASS_TLS_CERT`/`_KEY`/`_TRUST`) and its password from `REDIS_PASSWORD_FILE`;
    /// the user is `REDIS_USERNAME`, else the kind's name (`authz`, `registry`).
    pub fn from_env(kind: ServiceKind) -> Result<Self, PresenceError> {
        let tls = TlsFiles::from_env(kind).map_err(|e| PresenceError::Tls(e.to_string()))?;
        let password = match std::env::var_os(PASSWORD_FILE_VAR).filter(|v| !v.is_empty()) {
            Some(path) => Some(read_password(Path::new(&path))?),
            None => None,
        };
        let username = std::env::var(USERNAME_VAR)
            .ok()
            .filter(|v| !v.is_empty())
            .or_else(|| password.as_ref().map(|_| kind.name().to_owned()));
        Ok(Self {
            tls,
            username,
            password,
        })
    }

    /// `kind`'s identity in a PKI directory with `username`/`password` (tests, `phirepass dev`).
    pub fn for_kind(dir: &Path, kind: ServiceKind, password: Option<String>) -> Self {
        Self {
            tls: Some(TlsFiles::in_dir(dir, kind)),
            username: password.as_ref().map(|_| kind.name().to_owned()),
            password,
        }
    }
}

/// A password file's first line, without its line ending.
pub fn read_password(path: &Path) -> Result<String, PresenceError> {
    let text = read(path)?;
    let text = String::from_utf8(text)
        .map_err(|_| PresenceError::Tls(format!("{}: not UTF-8", path.display())))?;
    let line = text.lines().next().unwrap_or("").trim_end().to_owned();
    if line.is_empty() {
        return Err(PresenceError::Tls(format!("{}: empty", path.display())));
    }
    Ok(line)
}

fn read(path: &Path) -> Result<Vec<u8>, PresenceError> {
    std::fs::read(path).map_err(|source| PresenceError::Io {
        path: PathBuf::from(path),
        source,
    })
}

/// The redis-rs client for `url` with `auth` applied. `rediss://` requires identity files:
/// the trust bundle replaces every other root, and the client certificate is presented.
pub(crate) fn client(url: &str, auth: &RedisAuth) -> Result<redis::Client, PresenceError> {
    let mut info = url
        .into_connection_info()
        .map_err(PresenceError::InvalidUrl)?;
    if let Some(username) = &auth.username {
        info.redis.username = Some(username.clone());
    }
    if let Some(password) = &auth.password {
        info.redis.password = Some(password.clone());
    }
    match (&info.addr, &auth.tls) {
        (ConnectionAddr::TcpTls { insecure: true, .. }, _) => Err(PresenceError::Tls(
            "rediss:// with #insecure is refused: the server certificate is always verified".into(),
        )),
        (ConnectionAddr::TcpTls { .. }, None) => Err(PresenceError::Tls(
            "rediss:// needs the service's TLS files (PHIREPASS_TLS_DIR)".into(),
        )),
        (ConnectionAddr::TcpTls { .. }, Some(files)) => {
            let certificates = TlsCertificates {
                client_tls: Some(ClientTlsConfig {
                    client_cert: read(&files.cert)?,
                    client_key: read(&files.key)?,
                }),
                root_cert: Some(read(&files.trust)?),
            };
            redis::Client::build_with_tls(info, certificates).map_err(PresenceError::InvalidUrl)
        }
        (_, tls) => {
            if tls.is_some() {
                // Plain URLs keep working (embedded defaults, local tests), loudly.
                tracing::warn!("redis url is not rediss://: presence traffic is not encrypted");
            }
            redis::Client::open(info).map_err(PresenceError::InvalidUrl)
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn tls_urls_need_identity_files_and_no_insecure() {
        let none = RedisAuth::default();
        assert!(matches!(
            client("rediss://127.0.0.1:6380", &none),
            Err(PresenceError::Tls(_))
        ));
        let files = RedisAuth {
            tls: Some(TlsFiles::in_dir(
                Path::new("/nonexistent"),
                ServiceKind::Authz,
            )),
            ..RedisAuth::default()
        };
        assert!(matches!(
            client("rediss://127.0.0.1:6380/#insecure", &files),
            Err(PresenceError::Tls(_))
        ));
        assert!(matches!(
            client("rediss://127.0.0.1:6380", &files),
            Err(PresenceError::Io { .. })
        ));
        assert!(client("redis://127.0.0.1:6379", &none).is_ok());
    }

    #[test]
    fn debug_hides_the_password() {
        let auth = RedisAuth {
            password: Some("hunter2".into()),
            ..RedisAuth::default()
        };
        assert!(!format!("{auth:?}").contains("hunter2"));
    }
}
