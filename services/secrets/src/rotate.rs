//! Online, resumable key rotation.
//!
//! Every entry not yet under the current key is opened with the key its
//! envelope names and resealed under the current one by a single
//! compare-and-swap UPDATE (one statement = one transaction): an entry is
//! always entirely old or entirely new, so a rotation killed anywhere leaves
//! every entry readable, and running it again just continues. A concurrent
//! write makes the swap miss; the entry is then already current.

use phirepass_store::now_millis;

use crate::credentials;
use crate::error::{Result, SecretsError};
use crate::options;
use crate::vault::Vault;

/// Entries fetched per round trip.
const BATCH: i64 = 64;

/// Usage of one master key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyUsage {
    pub key_id: String,
    pub entries: u64,
    pub created_at: i64,
    pub retired_at: Option<i64>,
    pub current: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RotationStatus {
    pub current_key_id: String,
    pub keys: Vec<KeyUsage>,
    /// Entries not yet under the current key.
    pub pending: u64,
    /// Entries resealed by this call.
    pub rotated: u64,
}

impl Vault {
    /// Reseals up to `max_entries` (all if `None`) entries under the current
    /// key, then retires every old key no entry references any more.
    #[tracing::instrument(skip(self))]
    pub async fn rotate(
        &self,
        new_key_id: &str,
        max_entries: Option<u64>,
    ) -> Result<RotationStatus> {
        if new_key_id != self.current_key_id() {
            return Err(SecretsError::FailedPrecondition(format!(
                "this service's current key id is {}, not {new_key_id}: restart it with the new \
                 key as PHIREPASS_SECRETS_KEY and the old one as PHIREPASS_SECRETS_OLD_KEY",
                self.current_key_id()
            )));
        }
        let limit = max_entries.unwrap_or(u64::MAX);
        let mut rotated = 0;
        while rotated < limit {
            let n = self.rotate_options(limit - rotated).await?;
            let n = n + self.rotate_credentials(limit - rotated - n).await?;
            if n == 0 {
                break;
            }
            rotated += n;
        }
        self.retire_unused().await?;
        let mut status = self.rotation_status().await?;
        status.rotated = rotated;
        tracing::info!(rotated, pending = status.pending, "rotation pass done");
        Ok(status)
    }

    async fn rotate_options(&self, budget: u64) -> Result<u64> {
        let rows = self
            .store
            .relay_options_not_under(self.current_key_id(), batch(budget))
            .await?;
        let mut done = 0;
        for row in rows {
            let aad = options::aad(&row.host, &row.key);
            let plain = self.open_text(aad, &row.value_envelope)?;
            let sealed = self.seal(aad, plain.as_bytes())?;
            // A miss means a concurrent write: the entry is already current.
            self.store
                .reseal_relay_option(&row, &sealed, self.current_key_id(), now_millis())
                .await?;
            done += 1;
        }
        Ok(done)
    }

    async fn rotate_credentials(&self, budget: u64) -> Result<u64> {
        if budget == 0 {
            return Ok(0);
        }
        let rows = self
            .store
            .relay_credentials_not_under(self.current_key_id(), batch(budget))
            .await?;
        let mut done = 0;
        for row in rows {
            let id = row.id.as_str();
            let secret = self.open_text(credentials::aad(id, "secret"), &row.secret_envelope)?;
            let secret = self.seal(credentials::aad(id, "secret"), secret.as_bytes())?;
            let pass = match &row.passphrase_envelope {
                Some(p) => {
                    let plain = self.open_text(credentials::aad(id, "passphrase"), p)?;
                    Some(self.seal(credentials::aad(id, "passphrase"), plain.as_bytes())?)
                }
                None => None,
            };
            // Secret and passphrase change together: one row, one statement.
            self.store
                .reseal_relay_credential(
                    &row,
                    &secret,
                    pass.as_deref(),
                    self.current_key_id(),
                    now_millis(),
                )
                .await?;
            done += 1;
        }
        Ok(done)
    }

    /// Retires every non-current key that no entry references.
    async fn retire_unused(&self) -> Result<()> {
        let in_use = self.key_ids_in_use().await?;
        for key in self.store.vault_keys().await? {
            let unused = key.key_id != self.current_key_id() && !in_use.contains(&key.key_id);
            if key.retired_at.is_none() && unused {
                self.store
                    .retire_vault_key(&key.key_id, now_millis())
                    .await?;
                tracing::info!(key_id = %key.key_id, "master key retired");
            }
        }
        Ok(())
    }

    /// Key ids, how many entries each seals, and what is left to rotate.
    #[tracing::instrument(skip(self))]
    pub async fn rotation_status(&self) -> Result<RotationStatus> {
        let counts = self.store.vault_entries_per_key().await?;
        let count_of = |id: &str| {
            counts
                .iter()
                .find(|(key_id, _)| key_id == id)
                .map_or(0, |(_, n)| *n)
        };
        let mut keys = Vec::new();
        let mut pending = 0;
        for key in self.store.vault_keys().await? {
            let entries = count_of(&key.key_id);
            let current = key.key_id == self.current_key_id();
            if !current {
                pending += entries;
            }
            keys.push(KeyUsage {
                entries,
                created_at: key.created_at,
                retired_at: key.retired_at,
                current,
                key_id: key.key_id,
            });
        }
        Ok(RotationStatus {
            current_key_id: self.current_key_id().to_owned(),
            keys,
            pending,
            rotated: 0,
        })
    }
}

/// Entries to fetch: a batch, or fewer when the budget is smaller.
fn batch(budget: u64) -> i64 {
    BATCH.min(i64::try_from(budget).unwrap_or(BATCH))
}
