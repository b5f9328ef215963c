//! `vault_keys` (master keys ever used, retired once no entry needs them)
//! and `vault_settings` (e.g. the KDF salt).

use std::collections::BTreeSet;

use sqlx::Row;

use crate::{Store, StoreError};

/// A master key the vault has used.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VaultKeyRow {
    pub key_id: String,
    pub created_at: i64,
    pub retired_at: Option<i64>,
}

impl Store {
    /// The value of setting `name`, storing `candidate` first if it has
    /// none: the first caller's value wins and stays.
    #[tracing::instrument(skip(self, candidate))]
    pub async fn vault_setting_or_insert(
        &self,
        name: &str,
        candidate: &str,
    ) -> Result<String, StoreError> {
        sqlx::query(
            "INSERT INTO vault_settings (name, value) VALUES ($1, $2) \
             ON CONFLICT (name) DO NOTHING",
        )
        .bind(name)
        .bind(candidate)
        .execute(&self.pool)
        .await?;
        let row = sqlx::query("SELECT value FROM vault_settings WHERE name = $1")
            .bind(name)
            .fetch_one(&self.pool)
            .await?;
        Ok(row.try_get("value")?)
    }

    /// Distinct key ids that seal any option or credential.
    #[tracing::instrument(skip(self))]
    pub async fn vault_key_ids_in_use(&self) -> Result<BTreeSet<String>, StoreError> {
        let rows = sqlx::query(
            "SELECT key_id FROM relay_host_options UNION SELECT key_id FROM relay_credentials",
        )
        .fetch_all(&self.pool)
        .await?;
        Ok(rows
            .iter()
            .map(|row| row.try_get::<String, _>("key_id"))
            .collect::<Result<_, _>>()?)
    }

    /// Records `key_ids` (first use at `now`) and un-retires `current`: a
    /// key that comes back into use is no longer retired.
    #[tracing::instrument(skip(self))]
    pub async fn register_vault_keys(
        &self,
        key_ids: &[&str],
        current: &str,
        now: i64,
    ) -> Result<(), StoreError> {
        for key_id in key_ids {
            sqlx::query(
                "INSERT INTO vault_keys (key_id, created_at) VALUES ($1, $2) \
                 ON CONFLICT (key_id) DO NOTHING",
            )
            .bind(*key_id)
            .bind(now)
            .execute(&self.pool)
            .await?;
        }
        sqlx::query("UPDATE vault_keys SET retired_at = NULL WHERE key_id = $1")
            .bind(current)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// Every key ever used, oldest first.
    #[tracing::instrument(skip(self))]
    pub async fn vault_keys(&self) -> Result<Vec<VaultKeyRow>, StoreError> {
        let rows = sqlx::query(
            "SELECT key_id, created_at, retired_at FROM vault_keys ORDER BY created_at, key_id",
        )
        .fetch_all(&self.pool)
        .await?;
        let key = |row: &sqlx::any::AnyRow| -> Result<VaultKeyRow, sqlx::Error> {
            Ok(VaultKeyRow {
                key_id: row.try_get("key_id")?,
                created_at: row.try_get("created_at")?,
                retired_at: row.try_get("retired_at")?,
            })
        };
        Ok(rows.iter().map(key).collect::<Result<_, _>>()?)
    }

    #[tracing::instrument(skip(self))]
    pub async fn retire_vault_key(&self, key_id: &str, now: i64) -> Result<(), StoreError> {
        sqlx::query("UPDATE vault_keys SET retired_at = $1 WHERE key_id = $2")
            .bind(now)
            .bind(key_id)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// How many options and credentials each key id seals.
    #[tracing::instrument(skip(self))]
    pub async fn vault_entries_per_key(&self) -> Result<Vec<(String, u64)>, StoreError> {
        let rows = sqlx::query(
            "SELECT key_id, COUNT(*) AS n FROM (SELECT key_id FROM relay_host_options \
             UNION ALL SELECT key_id FROM relay_credentials) AS e GROUP BY key_id",
        )
        .fetch_all(&self.pool)
        .await?;
        let count = |row: &sqlx::any::AnyRow| -> Result<(String, u64), sqlx::Error> {
            let n: i64 = row.try_get("n")?;
            Ok((row.try_get("key_id")?, u64::try_from(n).unwrap_or(0)))
        };
        Ok(rows.iter().map(count).collect::<Result<_, _>>()?)
    }
}
