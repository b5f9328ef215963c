//! The shared credential services present to each other.

use std::fmt;
use std::sync::Arc;

use crate::config::{ConfigError, env_required};

/// Environment variable holding the service token.
pub const SERVICE_TOKEN_VAR: &str = "PHIREPASS_SERVICE_TOKEN";

/// A bearer token shared by the services of one deployment. `Debug` never
/// shows it.
#[derive(Clone, PartialEq, Eq)]
pub struct ServiceToken(Arc<str>);

impl ServiceToken {
    /// Wraps an existing token.
    pub fn new(token: String) -> Self {
        Self(Arc::from(token.trim()))
    }

    /// Reads `PHIREPASS_SERVICE_TOKEN`.
    pub fn from_env() -> Result<Self, ConfigError> {
        env_required(SERVICE_TOKEN_VAR).map(Self::new)
    }

    /// A fresh random token: 32 bytes from the OS-seeded thread RNG, as hex.
    pub fn generate() -> Self {
        let bytes: [u8; 32] = rand::random();
        Self(Arc::from(hex::encode(bytes)))
    }

    /// The token itself, e.g. to hand to a child service. Never log it.
    pub fn expose_secret(&self) -> &str {
        &self.0
    }

    /// Whether the token can travel in a header: non-empty visible ASCII.
    pub(crate) fn is_header_safe(&self) -> bool {
        !self.0.is_empty() && self.0.bytes().all(|b| b.is_ascii_graphic())
    }
}

impl fmt::Debug for ServiceToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ServiceToken(<redacted>)")
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn debug_redacts() {
        let token = ServiceToken::new("super-secret".to_owned());
        let shown = format!("{token:?}");
        assert!(!shown.contains("super-secret"), "{shown}");
    }

    #[test]
    fn generate_is_64_hex_and_unique() {
        let a = ServiceToken::generate();
        let b = ServiceToken::generate();
        assert_eq!(a.expose_secret().len(), 64);
        assert!(a.expose_secret().bytes().all(|c| c.is_ascii_hexdigit()));
        assert_ne!(a, b);
    }

    #[test]
    fn header_safety() {
        assert!(ServiceToken::new("abc".to_owned()).is_header_safe());
        assert!(!ServiceToken::new(String::new()).is_header_safe());
        assert!(!ServiceToken::new("a b".to_owned()).is_header_safe());
    }
}
