//! Online, resumable key rotation.
//!
//! Every entry not yet under the current key is opened with the key its
//! envelope names and resealed under the current one by a single
//! compare-and-swap UPDATE (one statement = one transaction): an entry is
//! always entirely old or entirely new, so a rotation killed anywhere leaves
//! every entry readable, and running it again just continues. A concurrent
//! write makes the swap miss; the entry is then already current.

use phirepass_store::now_millis;
use sqlx::Row as _;

use crate::credentials;
use crate::envelope::Aad;
use crate::error::{Result, SecretsError};
use crate::vault::{OPTIONS_TABLE, Vault};

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
        let rows = sqlx::query(
            "SELECT host, key, value_envelope FROM relay_host_options WHERE key_id <> $1 \
             ORDER BY host, key LIMIT $2",
        )
        .bind(self.current_key_id())
        .bind(BATCH.min(i64::try_from(budget).unwrap_or(BATCH)))
        .fetch_all(self.store.pool())
        .await?;
        let mut done = 0;
        for row in rows {
            let host: String = row.try_get("host")?;
            let key: String = row.try_get("key")?;
            let old: String = row.try_get("value_envelope")?;
            let aad = Aad {
                table: OPTIONS_TABLE,
                row: &host,
                field: &key,
            };
            let plain = self.open_text(aad, &old)?;
            let sealed = self.seal(aad, plain.as_bytes())?;
            sqlx::query(
                "UPDATE relay_host_options SET value_envelope = $1, key_id = $2, updated_at = $3 \
                 WHERE host = $4 AND key = $5 AND value_envelope = $6",
            )
            .bind(sealed)
            .bind(self.current_key_id())
            .bind(now_millis())
            .bind(&host)
            .bind(&key)
            .bind(&old)
            .execute(self.store.pool())
            .await?;
            done += 1;
        }
        Ok(done)
    }

    async fn rotate_credentials(&self, budget: u64) -> Result<u64> {
        if budget == 0 {
            return Ok(0);
        }
        let rows = sqlx::query(
            "SELECT id, secret_envelope, passphrase_envelope FROM relay_credentials \
             WHERE key_id <> $1 ORDER BY id LIMIT $2",
        )
        .bind(self.current_key_id())
        .bind(BATCH.min(i64::try_from(budget).unwrap_or(BATCH)))
        .fetch_all(self.store.pool())
        .await?;
        let mut done = 0;
        for row in rows {
            let id: String = row.try_get("id")?;
            let old_secret: String = row.try_get("secret_envelope")?;
            let old_pass: Option<String> = row.try_get("passphrase_envelope")?;
            let secret = self.open_text(credentials::aad(&id, "secret"), &old_secret)?;
            let secret = self.seal(credentials::aad(&id, "secret"), secret.as_bytes())?;
            let pass = match &old_pass {
                Some(p) => {
                    let plain = self.open_text(credentials::aad(&id, "passphrase"), p)?;
                    Some(self.seal(credentials::aad(&id, "passphrase"), plain.as_bytes())?)
                }
                None => None,
            };
            // Secret and passphrase change together: one row, one statement.
            sqlx::query(
                "UPDATE relay_credentials SET secret_envelope = $1, passphrase_envelope = $2, \
                 key_id = $3, updated_at = $4 WHERE id = $5 AND secret_envelope = $6",
            )
            .bind(secret)
            .bind(pass)
            .bind(self.current_key_id())
            .bind(now_millis())
            .bind(&id)
            .bind(&old_secret)
            .execute(self.store.pool())
            .await?;
            done += 1;
        }
        Ok(done)
    }

    /// Retires every non-current key that no entry references.
    async fn retire_unused(&self) -> Result<()> {
        let in_use = self.key_ids_in_use().await?;
        let rows = sqlx::query("SELECT key_id FROM vault_keys WHERE retired_at IS NULL")
            .fetch_all(self.store.pool())
            .await?;
        for row in rows {
            let key_id: String = row.try_get("key_id")?;
            if key_id != self.current_key_id() && !in_use.contains(&key_id) {
                sqlx::query("UPDATE vault_keys SET retired_at = $1 WHERE key_id = $2")
                    .bind(now_millis())
                    .bind(&key_id)
                    .execute(self.store.pool())
                    .await?;
                tracing::info!(key_id = %key_id, "master key retired");
            }
        }
        Ok(())
    }

    /// Key ids, how many entries each seals, and what is left to rotate.
    #[tracing::instrument(skip(self))]
    pub async fn rotation_status(&self) -> Result<RotationStatus> {
        let counts = sqlx::query(
            "SELECT key_id, COUNT(*) AS n FROM (SELECT key_id FROM relay_host_options \
             UNION ALL SELECT key_id FROM relay_credentials) AS e GROUP BY key_id",
        )
        .fetch_all(self.store.pool())
        .await?;
        let count_of = |id: &str| -> Result<u64> {
            for row in &counts {
                if row.try_get::<String, _>("key_id")? == id {
                    return Ok(u64::try_from(row.try_get::<i64, _>("n")?).unwrap_or(0));
                }
            }
            Ok(0)
        };
        let rows = sqlx::query(
            "SELECT key_id, created_at, retired_at FROM vault_keys ORDER BY created_at, key_id",
        )
        .fetch_all(self.store.pool())
        .await?;
        let mut keys = Vec::with_capacity(rows.len());
        let mut pending = 0;
        for row in rows {
            let key_id: String = row.try_get("key_id")?;
            let entries = count_of(&key_id)?;
            let current = key_id == self.current_key_id();
            if !current {
                pending += entries;
            }
            keys.push(KeyUsage {
                entries,
                created_at: row.try_get("created_at")?,
                retired_at: row.try_get("retired_at")?,
                current,
                key_id,
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
