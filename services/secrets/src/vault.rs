//! The vault: a store plus the key ring. Startup work (KDF salt, key
//! registration, the check that every entry's key is configured) and the
//! sealing helpers the option, credential and rotation modules share.

use std::collections::BTreeSet;

use phirepass_store::{Store, now_millis};
use zeroize::Zeroizing;

use crate::envelope::{self, Aad};
use crate::error::{Result, SecretsError};
use crate::keys::{KeyRing, KeySource};

pub(crate) const OPTIONS_TABLE: &str = "relay_host_options";
pub(crate) const CREDENTIALS_TABLE: &str = "relay_credentials";
const KDF_SALT: &str = "kdf_salt";

/// Store + keys; cheap to clone.
#[derive(Debug, Clone)]
pub struct Vault {
    pub(crate) store: Store,
    pub(crate) ring: KeyRing,
}

impl Vault {
    /// Derives the keys (passphrases use the vault's stored Argon2id salt),
    /// records them, and refuses to open a vault whose entries are sealed
    /// under a key it was not given.
    #[tracing::instrument(name = "vault.open", skip_all)]
    pub async fn open(store: Store, current: &KeySource, old: Option<&KeySource>) -> Result<Self> {
        let salt = kdf_salt(&store).await?;
        let derive = |src: &KeySource| {
            let src = src.clone();
            let salt = salt.clone();
            // Argon2id is deliberately slow: keep it off the async workers.
            tokio::task::spawn_blocking(move || src.derive(&salt))
        };
        let current = derive(current)
            .await
            .map_err(|_| SecretsError::Keys(crate::keys::KeyError::Kdf))??;
        let old = match old {
            Some(src) => Some(
                derive(src)
                    .await
                    .map_err(|_| SecretsError::Keys(crate::keys::KeyError::Kdf))??,
            ),
            None => None,
        }
        .filter(|old| old.id() != current.id());
        let vault = Self {
            store,
            ring: KeyRing { current, old },
        };
        let unknown: Vec<String> = vault
            .key_ids_in_use()
            .await?
            .into_iter()
            .filter(|id| vault.ring.all().iter().all(|k| k.id() != id))
            .collect();
        if !unknown.is_empty() {
            return Err(SecretsError::UnknownKeys(unknown));
        }
        vault.register_keys().await?;
        tracing::info!(
            key_id = vault.ring.current.id(),
            old_key_id = vault.ring.old.as_ref().map(|k| k.id()),
            "vault opened"
        );
        Ok(vault)
    }

    pub fn current_key_id(&self) -> &str {
        self.ring.current.id()
    }

    pub(crate) fn seal(&self, aad: Aad<'_>, plaintext: &[u8]) -> Result<String> {
        Ok(envelope::seal(&self.ring.current, aad, plaintext)?)
    }

    /// Opens an envelope as UTF-8 text (every stored value is text).
    pub(crate) fn open_text(&self, aad: Aad<'_>, sealed: &str) -> Result<Zeroizing<String>> {
        let mut bytes = envelope::open(&self.ring.all(), aad, sealed)?;
        let text = String::from_utf8(std::mem::take(&mut *bytes))
            .map_err(|_| envelope::EnvelopeError::Malformed)?;
        Ok(Zeroizing::new(text))
    }

    /// Distinct key ids referenced by any entry.
    pub(crate) async fn key_ids_in_use(&self) -> Result<BTreeSet<String>> {
        Ok(self.store.vault_key_ids_in_use().await?)
    }

    async fn register_keys(&self) -> Result<()> {
        let ring = self.ring.all();
        let ids: Vec<&str> = ring.iter().map(|key| key.id()).collect();
        self.store
            .register_vault_keys(&ids, self.ring.current.id(), now_millis())
            .await?;
        Ok(())
    }
}

/// The Argon2id salt for passphrase keys: created once, then stable.
async fn kdf_salt(store: &Store) -> Result<Vec<u8>> {
    let candidate = hex::encode(rand::random::<[u8; 16]>());
    let value = store.vault_setting_or_insert(KDF_SALT, &candidate).await?;
    hex::decode(value).map_err(|_| SecretsError::FailedPrecondition("corrupt kdf salt".into()))
}

/// Rejects empty or unprintable names (hosts, credentials).
pub(crate) fn check_name(what: &str, name: &str) -> Result<()> {
    if name.is_empty() || name.len() > 255 || name.chars().any(char::is_control) {
        return Err(SecretsError::InvalidArgument(format!(
            "{what} must be 1-255 printable characters"
        )));
    }
    Ok(())
}
