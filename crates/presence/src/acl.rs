//! The Redis ACL: one user per service kind that uses Redis, with only its keys and the
//! commands [`crate::RedisPresence`] sends for the operations that service calls.
//!
//! Who touches what (every key goes through `Presence` under the deployment prefix, `pp:`):
//! - authz: `authz:*` (login guard `authz:login:*`, rate limits `authz:<what>:<who>`, the
//!   decision cache and its generation) and `apptoken:*` (app tokens). get, put, delete, incr.
//! - registry: `node:*`, `session:*`, `tunnel:*` (presence records). get, put, put_if_absent,
//!   replace_if, delete_if, delete, list.
//! - secrets, gateway-ws, ssh-edge: no Redis (they ask registry and authz over gRPC), no user.
//!
//! No two services share a key. Redis ACLs do not filter `SCAN`, so registry (which lists)
//! can see the *names* of authz's keys, never their values.

use std::path::Path;

use phirepass_pki::ServiceKind;
use sha2::{Digest, Sha256};

use crate::PresenceError;
use crate::redis_impl::glob_escape;

// AUTH is always allowed. redis-rs also sends CLIENT SETINFO on connect and ignores its
// failure; Redis 7.0 does not know it (an ACL file naming it fails to load), so not granted.
const CONNECTION: &[&str] = &["ping", "hello"];
// get, put (SET PX), delete, incr (EVAL of INCR + PTTL + PEXPIRE: scripts are ACL-checked).
const AUTHZ_COMMANDS: &[&str] = &["get", "set", "del", "eval", "incr", "pttl", "pexpire"];
// list is SCAN + MGET; replace_if/delete_if are EVAL of GET + SET/DEL.
const REGISTRY_COMMANDS: &[&str] = &["get", "set", "del", "eval", "scan", "mget"];

/// One service's Redis user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AclUser {
    pub kind: ServiceKind,
    /// Key patterns (already prefixed and glob-escaped), e.g. `pp:node:*`.
    pub keys: Vec<String>,
    pub commands: Vec<&'static str>,
}

/// The users for a deployment whose services use `prefix` (the services' `pp:`).
pub fn users(prefix: &str) -> Vec<AclUser> {
    let patterns = |owned: &[&str]| {
        owned
            .iter()
            .map(|p| format!("{}*", glob_escape(&format!("{prefix}{p}"))))
            .collect()
    };
    let commands = |own: &[&'static str]| CONNECTION.iter().chain(own).copied().collect();
    vec![
        AclUser {
            kind: ServiceKind::Authz,
            keys: patterns(&["authz:", "apptoken:"]),
            commands: commands(AUTHZ_COMMANDS),
        },
        AclUser {
            kind: ServiceKind::Registry,
            keys: patterns(&["node:", "session:", "tunnel:"]),
            commands: commands(REGISTRY_COMMANDS),
        },
    ]
}

/// The services that get a Redis user.
pub fn kinds() -> Vec<ServiceKind> {
    users("").into_iter().map(|u| u.kind).collect()
}

/// A generated ACL: the file for `aclfile` and each service's password.
pub struct RedisAcl {
    /// Holds only SHA-256 hashes of the passwords.
    pub file: String,
    pub passwords: Vec<(ServiceKind, String)>,
}

impl std::fmt::Debug for RedisAcl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisAcl")
            .field("file", &self.file)
            .finish_non_exhaustive()
    }
}

impl RedisAcl {
    /// Fresh random passwords (256 bits each) for every user of [`users`].
    pub fn generate(prefix: &str) -> Result<Self, PresenceError> {
        let passwords = kinds()
            .into_iter()
            .map(|kind| (kind, hex::encode(rand::random::<[u8; 32]>())))
            .collect::<Vec<_>>();
        let file = acl_file(prefix, &passwords)?;
        Ok(Self { file, passwords })
    }

    /// Writes `redis.acl` and `redis-<kind>.password` (mode 0600) into `dir`.
    pub fn write_to(&self, dir: &Path) -> Result<(), PresenceError> {
        let write = |name: String, text: &str| {
            phirepass_pki::write(&dir.join(name), text, true)
                .map_err(|e| PresenceError::Tls(e.to_string()))
        };
        write("redis.acl".into(), &self.file)?;
        for (kind, password) in &self.passwords {
            write(password_file_name(*kind), &format!("{password}\n"))?;
        }
        Ok(())
    }
}

/// `redis-<kind>.password`: where [`RedisAcl::write_to`] puts a service's password.
pub fn password_file_name(kind: ServiceKind) -> String {
    format!("redis-{}.password", kind.name())
}

/// The ACL file text: the default user off, then one line per service. Services without a
/// password in `passwords` are left out (they cannot log in).
pub fn acl_file(
    prefix: &str,
    passwords: &[(ServiceKind, String)],
) -> Result<String, PresenceError> {
    if prefix.chars().any(char::is_whitespace) {
        return Err(PresenceError::Tls(
            "redis key prefix must not contain whitespace".into(),
        ));
    }
    // Without this line Redis creates `default` with no password and every permission.
    let mut out = String::from("user default off resetkeys resetchannels -@all\n");
    for user in users(prefix) {
        let Some((_, password)) = passwords.iter().find(|(k, _)| *k == user.kind) else {
            continue;
        };
        let hash = hex::encode(Sha256::digest(password.as_bytes()));
        out.push_str(&format!(
            "user {} on #{hash} resetkeys {} resetchannels -@all {}\n",
            user.kind.name(),
            user.keys
                .iter()
                .map(|k| format!("~{k}"))
                .collect::<Vec<_>>()
                .join(" "),
            user.commands
                .iter()
                .map(|c| format!("+{c}"))
                .collect::<Vec<_>>()
                .join(" "),
        ));
    }
    Ok(out)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn file_holds_hashes_and_each_service_owns_its_keys() {
        let acl = RedisAcl::generate("pp:").unwrap();
        assert!(acl.file.starts_with("user default off "));
        for (_, password) in &acl.passwords {
            assert!(!acl.file.contains(password.as_str()));
        }
        let authz = acl
            .file
            .lines()
            .find(|l| l.starts_with("user authz "))
            .unwrap();
        assert!(authz.contains("~pp:authz:* ~pp:apptoken:*"));
        assert!(!authz.contains("+scan"), "authz never lists");
        let registry = acl
            .file
            .lines()
            .find(|l| l.starts_with("user registry "))
            .unwrap();
        assert!(registry.contains("~pp:node:* ~pp:session:* ~pp:tunnel:*"));
        assert!(!registry.contains("authz"));
        assert_eq!(acl.file.lines().count(), 3);
    }

    #[test]
    fn prefixes_are_escaped_and_checked() {
        let users = users("a*b:");
        assert_eq!(users[0].keys[0], "a\\*b:authz:*");
        assert!(acl_file("a b", &[]).is_err());
    }
}
