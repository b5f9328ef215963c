//! Passwords (Argon2id), bearer secrets and their hashes.
//!
//! Node tokens look like `pp_node_<token_id>_<secret>` (16 + 64 hex chars);
//! session tokens like `pp_sess_<secret>`. Only SHA-256 hashes are stored.

use argon2::Argon2;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::error::{AuthzError, Result};

const NODE_PREFIX: &str = "pp_node_";
const SESSION_PREFIX: &str = "pp_sess_";
const API_PREFIX: &str = "pp_api_";
const TOKEN_ID_HEX: usize = 16;
const SECRET_HEX: usize = 64;

/// Hashes a password with Argon2id (default OWASP parameters: 19 MiB, two
/// passes). Blocking on purpose: call it through [`crate::hash_pool`].
pub(crate) fn hash_password_blocking(password: &str) -> Result<String> {
    let salt = SaltString::encode_b64(&rand::random::<[u8; 16]>())
        .map_err(|e| AuthzError::Hash(e.to_string()))?;
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| AuthzError::Hash(e.to_string()))
}

/// `true` if `password` matches the PHC `hash`. Malformed hashes never
/// match. Blocking: call it through [`crate::hash_pool`].
pub(crate) fn verify_password_blocking(password: &str, hash: &str) -> bool {
    let Ok(parsed) = PasswordHash::new(hash) else {
        return false;
    };
    Argon2::default()
        .verify_password(password.as_bytes(), &parsed)
        .is_ok()
}

/// Hex SHA-256, the stored form of every bearer token.
pub(crate) fn sha256_hex(data: &str) -> String {
    hex::encode(Sha256::digest(data.as_bytes()))
}

/// Constant-time equality of two stored hashes.
pub(crate) fn hashes_equal(a: &str, b: &str) -> bool {
    bool::from(a.as_bytes().ct_eq(b.as_bytes()))
}

fn random_hex<const N: usize>() -> String {
    hex::encode(rand::random::<[u8; N]>())
}

/// A new node token: `(token_id, full token)`.
pub(crate) fn new_node_token() -> (String, String) {
    let token_id = random_hex::<8>();
    let token = format!("{NODE_PREFIX}{token_id}_{}", random_hex::<32>());
    (token_id, token)
}

/// The token id of a well-formed node token, `None` otherwise.
pub(crate) fn parse_node_token(token: &str) -> Option<&str> {
    parse_token(NODE_PREFIX, token)
}

/// A new API token: `(token_id, full token)`.
pub(crate) fn new_api_token() -> (String, String) {
    let token_id = random_hex::<8>();
    let token = format!("{API_PREFIX}{token_id}_{}", random_hex::<32>());
    (token_id, token)
}

/// The token id of a well-formed API token, `None` otherwise.
pub(crate) fn parse_api_token(token: &str) -> Option<&str> {
    parse_token(API_PREFIX, token)
}

fn parse_token<'a>(prefix: &str, token: &'a str) -> Option<&'a str> {
    let rest = token.strip_prefix(prefix)?;
    let (token_id, secret) = rest.split_once('_')?;
    let is_hex = |s: &str, len: usize| {
        s.len() == len
            && s.bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    };
    (is_hex(token_id, TOKEN_ID_HEX) && is_hex(secret, SECRET_HEX)).then_some(token_id)
}

/// A new session token (32 random bytes).
pub(crate) fn new_session_token() -> String {
    format!("{SESSION_PREFIX}{}", random_hex::<32>())
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn node_tokens_roundtrip() {
        let (id, token) = new_node_token();
        assert_eq!(id.len(), 16);
        assert_eq!(token.len(), NODE_PREFIX.len() + 16 + 1 + 64);
        assert_eq!(parse_node_token(&token), Some(id.as_str()));
    }

    #[test]
    fn malformed_node_tokens_are_rejected() {
        let (_, token) = new_node_token();
        for bad in [
            "",
            "pp_node_",
            &token[..token.len() - 1],
            &token.replace("pp_node_", "pp_nodx_"),
            &token.to_uppercase(),
            "pp_node_0123456789abcdef_zz",
        ] {
            assert_eq!(parse_node_token(bad), None, "{bad}");
        }
    }

    #[test]
    fn api_tokens_roundtrip() {
        let (id, token) = new_api_token();
        assert_eq!(parse_api_token(&token), Some(id.as_str()));
        assert_eq!(parse_node_token(&token), None);
    }

    #[test]
    fn hashes_compare() {
        assert!(hashes_equal(&sha256_hex("a"), &sha256_hex("a")));
        assert!(!hashes_equal(&sha256_hex("a"), &sha256_hex("b")));
        assert_ne!(new_session_token(), new_session_token());
    }

    #[test]
    fn passwords_verify() {
        let hash = hash_password_blocking("correct horse").unwrap();
        assert!(hash.starts_with("$argon2id$"));
        assert!(verify_password_blocking("correct horse", &hash));
        assert!(!verify_password_blocking("wrong", &hash));
        assert!(!verify_password_blocking("x", "not a hash"));
    }
}
