//! Master keys: where they come from (raw base64 or an Argon2id passphrase),
//! their ids, and the ring of current + previous key used during rotation.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use sha2::{Digest as _, Sha256};
use zeroize::Zeroizing;

/// Length of a key id: the first 8 hex digits of SHA-256(master key).
pub const KEY_ID_LEN: usize = 8;

/// Environment variables naming the master keys.
pub const KEY_VAR: &str = "PHIREPASS_SECRETS_KEY";
pub const PASSPHRASE_VAR: &str = "PHIREPASS_SECRETS_PASSPHRASE";
pub const OLD_KEY_VAR: &str = "PHIREPASS_SECRETS_OLD_KEY";
pub const OLD_PASSPHRASE_VAR: &str = "PHIREPASS_SECRETS_OLD_PASSPHRASE";

/// Errors loading or deriving a master key. Never contains key material.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error(
        "no master key: set {KEY_VAR} (base64 of 32 random bytes, e.g. `openssl rand -base64 32`) \
         or {PASSPHRASE_VAR}"
    )]
    Missing,
    #[error("set only one of {0} and {1}")]
    Both(&'static str, &'static str),
    #[error("{0} must be base64 of exactly 32 bytes")]
    BadKey(&'static str),
    #[error("{0} must not be empty")]
    EmptyPassphrase(&'static str),
    #[error("argon2id key derivation failed")]
    Kdf,
}

/// A 32-byte master key and its id. Zeroized on drop; Debug shows the id only.
#[derive(Clone)]
pub struct MasterKey {
    bytes: Zeroizing<[u8; 32]>,
    id: String,
}

impl std::fmt::Debug for MasterKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MasterKey")
            .field("id", &self.id)
            .finish_non_exhaustive()
    }
}

impl MasterKey {
    pub fn from_bytes(bytes: [u8; 32]) -> Self {
        let bytes = Zeroizing::new(bytes);
        let digest = Sha256::digest(bytes.as_ref());
        let id = hex::encode(digest).chars().take(KEY_ID_LEN).collect();
        Self { bytes, id }
    }

    #[cfg(test)]
    pub(crate) fn with_id(bytes: [u8; 32], id: String) -> Self {
        Self {
            bytes: Zeroizing::new(bytes),
            id,
        }
    }

    pub fn id(&self) -> &str {
        &self.id
    }

    pub(crate) fn bytes(&self) -> &[u8] {
        self.bytes.as_ref()
    }

    /// Generates a random key (for `phirepass dev` and tests).
    pub fn generate() -> Self {
        Self::from_bytes(rand::random())
    }

    /// The key as base64, for persisting a generated dev key (0600).
    pub fn to_base64(&self) -> Zeroizing<String> {
        Zeroizing::new(B64.encode(self.bytes.as_ref()))
    }
}

/// Where a master key comes from. Debug never shows the material.
#[derive(Clone)]
pub enum KeySource {
    Raw(MasterKey),
    /// Derived with Argon2id and the vault's stored KDF salt at startup.
    Passphrase(Zeroizing<String>),
}

impl std::fmt::Debug for KeySource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Raw(key) => write!(f, "KeySource::Raw({})", key.id()),
            Self::Passphrase(_) => f.write_str("KeySource::Passphrase(<redacted>)"),
        }
    }
}

impl KeySource {
    /// Parses a base64 32-byte key; `var` names the setting in errors.
    pub fn from_base64(var: &'static str, value: &str) -> Result<Self, KeyError> {
        let decoded = Zeroizing::new(
            B64.decode(value.trim())
                .map_err(|_| KeyError::BadKey(var))?,
        );
        let bytes: [u8; 32] = decoded
            .as_slice()
            .try_into()
            .map_err(|_| KeyError::BadKey(var))?;
        Ok(Self::Raw(MasterKey::from_bytes(bytes)))
    }

    pub fn passphrase(var: &'static str, value: String) -> Result<Self, KeyError> {
        let value = Zeroizing::new(value);
        if value.is_empty() {
            return Err(KeyError::EmptyPassphrase(var));
        }
        Ok(Self::Passphrase(value))
    }

    /// Reads one of `key_var` / `pass_var`; `Ok(None)` when neither is set.
    pub fn from_env(
        key_var: &'static str,
        pass_var: &'static str,
    ) -> Result<Option<Self>, KeyError> {
        let key = std::env::var(key_var).ok().map(Zeroizing::new);
        let pass = std::env::var(pass_var).ok();
        match (key, pass) {
            (Some(_), Some(_)) => Err(KeyError::Both(key_var, pass_var)),
            (Some(key), None) => Self::from_base64(key_var, &key).map(Some),
            (None, Some(pass)) => Self::passphrase(pass_var, pass).map(Some),
            (None, None) => Ok(None),
        }
    }

    /// Turns the source into a key; passphrases use Argon2id (default
    /// parameters) with `kdf_salt`, which the vault stores so it is stable.
    pub fn derive(&self, kdf_salt: &[u8]) -> Result<MasterKey, KeyError> {
        match self {
            Self::Raw(key) => Ok(key.clone()),
            Self::Passphrase(pass) => {
                let mut out = Zeroizing::new([0u8; 32]);
                argon2::Argon2::default()
                    .hash_password_into(pass.as_bytes(), kdf_salt, out.as_mut())
                    .map_err(|_| KeyError::Kdf)?;
                Ok(MasterKey::from_bytes(*out))
            }
        }
    }
}

/// The keys the service holds: it seals with `current` and opens with
/// whichever key an envelope names.
#[derive(Debug, Clone)]
pub struct KeyRing {
    pub current: MasterKey,
    pub old: Option<MasterKey>,
}

impl KeyRing {
    pub fn all(&self) -> Vec<&MasterKey> {
        std::iter::once(&self.current)
            .chain(self.old.as_ref())
            .collect()
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_eight_hex_and_stable() {
        let a = MasterKey::from_bytes([1; 32]);
        assert_eq!(a.id().len(), KEY_ID_LEN);
        assert!(a.id().chars().all(|c| c.is_ascii_hexdigit()));
        assert_eq!(a.id(), MasterKey::from_bytes([1; 32]).id());
        assert_ne!(a.id(), MasterKey::from_bytes([2; 32]).id());
    }

    #[test]
    fn base64_keys_must_be_32_bytes() {
        let good = B64.encode([3u8; 32]);
        let key = KeySource::from_base64(KEY_VAR, &good)
            .unwrap()
            .derive(b"")
            .unwrap();
        assert_eq!(key.id(), MasterKey::from_bytes([3; 32]).id());
        for bad in [B64.encode([3u8; 31]), "not base64!".to_owned()] {
            let err = KeySource::from_base64(KEY_VAR, &bad).unwrap_err();
            assert!(err.to_string().contains(KEY_VAR), "{err}");
        }
    }

    #[test]
    fn passphrases_derive_stably_per_salt() {
        let src = KeySource::passphrase(PASSPHRASE_VAR, "correct horse".into()).unwrap();
        let a = src.derive(b"0123456789abcdef").unwrap();
        assert_eq!(a.id(), src.derive(b"0123456789abcdef").unwrap().id());
        assert_ne!(a.id(), src.derive(b"fedcba9876543210").unwrap().id());
        assert!(KeySource::passphrase(PASSPHRASE_VAR, String::new()).is_err());
    }

    #[test]
    fn debug_never_shows_material() {
        let src = KeySource::passphrase(PASSPHRASE_VAR, "correct horse".into()).unwrap();
        assert!(!format!("{src:?}").contains("horse"));
        let key = MasterKey::from_bytes([0x41; 32]);
        let shown = format!("{:?}", KeySource::Raw(key.clone()));
        assert!(!shown.contains(&*key.to_base64()));
    }
}
