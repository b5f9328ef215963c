//! `relay_host_options`: one sealed value per (host, key).

use sqlx::Row;
use sqlx::any::AnyRow;

use crate::{Store, StoreError};

/// One host option as stored: the value is an envelope.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RelayOptionRow {
    pub host: String,
    pub key: String,
    pub value_envelope: String,
    pub key_id: String,
    pub updated_at: i64,
}

const SELECT: &str = "SELECT host, key, value_envelope, key_id, updated_at FROM relay_host_options";

fn from_row(row: &AnyRow) -> Result<RelayOptionRow, sqlx::Error> {
    Ok(RelayOptionRow {
        host: row.try_get("host")?,
        key: row.try_get("key")?,
        value_envelope: row.try_get("value_envelope")?,
        key_id: row.try_get("key_id")?,
        updated_at: row.try_get("updated_at")?,
    })
}

impl Store {
    /// Upserts every option in one transaction: all are written or none.
    #[tracing::instrument(skip_all, fields(count = options.len()))]
    pub async fn put_relay_options(&self, options: &[RelayOptionRow]) -> Result<(), StoreError> {
        let mut tx = self.pool.begin().await?;
        for option in options {
            sqlx::query(
                "INSERT INTO relay_host_options (host, key, value_envelope, key_id, updated_at) \
                 VALUES ($1, $2, $3, $4, $5) \
                 ON CONFLICT (host, key) DO UPDATE SET value_envelope = excluded.value_envelope, \
                 key_id = excluded.key_id, updated_at = excluded.updated_at",
            )
            .bind(&option.host)
            .bind(&option.key)
            .bind(&option.value_envelope)
            .bind(&option.key_id)
            .bind(option.updated_at)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// Whether the option existed.
    #[tracing::instrument(skip(self))]
    pub async fn delete_relay_option(&self, host: &str, key: &str) -> Result<bool, StoreError> {
        let done = sqlx::query("DELETE FROM relay_host_options WHERE host = $1 AND key = $2")
            .bind(host)
            .bind(key)
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected() > 0)
    }

    /// Deletes every option of `host`; returns how many there were.
    #[tracing::instrument(skip(self))]
    pub async fn delete_relay_options(&self, host: &str) -> Result<u64, StoreError> {
        let done = sqlx::query("DELETE FROM relay_host_options WHERE host = $1")
            .bind(host)
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected())
    }

    /// Deletes the options of `host` named in `keys`, in one transaction;
    /// whether any existed.
    #[tracing::instrument(skip(self))]
    pub async fn clear_relay_options(&self, host: &str, keys: &[&str]) -> Result<bool, StoreError> {
        let mut tx = self.pool.begin().await?;
        let removed = clear_in(&mut tx, host, keys).await?;
        tx.commit().await?;
        Ok(removed)
    }

    /// Every option of `host`, by key.
    #[tracing::instrument(skip(self))]
    pub async fn relay_options(&self, host: &str) -> Result<Vec<RelayOptionRow>, StoreError> {
        let rows = sqlx::query(&format!("{SELECT} WHERE host = $1 ORDER BY key"))
            .bind(host)
            .fetch_all(&self.pool)
            .await?;
        Ok(rows.iter().map(from_row).collect::<Result<_, _>>()?)
    }

    /// Option `key` of every host that has it, by host.
    #[tracing::instrument(skip(self))]
    pub async fn relay_options_with_key(
        &self,
        key: &str,
    ) -> Result<Vec<RelayOptionRow>, StoreError> {
        let rows = sqlx::query(&format!("{SELECT} WHERE key = $1 ORDER BY host"))
            .bind(key)
            .fetch_all(&self.pool)
            .await?;
        Ok(rows.iter().map(from_row).collect::<Result<_, _>>()?)
    }

    /// Up to `limit` options not sealed under `key_id`, by host and key.
    #[tracing::instrument(skip(self))]
    pub async fn relay_options_not_under(
        &self,
        key_id: &str,
        limit: i64,
    ) -> Result<Vec<RelayOptionRow>, StoreError> {
        let sql = format!("{SELECT} WHERE key_id <> $1 ORDER BY host, key LIMIT $2");
        let rows = sqlx::query(&sql)
            .bind(key_id)
            .bind(limit)
            .fetch_all(&self.pool)
            .await?;
        Ok(rows.iter().map(from_row).collect::<Result<_, _>>()?)
    }

    /// Replaces `old`'s envelope with `value_envelope` (sealed under
    /// `key_id`) only if the row still holds `old`'s envelope: one
    /// compare-and-swap statement, so a concurrent write wins. Whether it
    /// swapped.
    #[tracing::instrument(skip_all, fields(host = %old.host, key = %old.key))]
    pub async fn reseal_relay_option(
        &self,
        old: &RelayOptionRow,
        value_envelope: &str,
        key_id: &str,
        now: i64,
    ) -> Result<bool, StoreError> {
        let done = sqlx::query(
            "UPDATE relay_host_options SET value_envelope = $1, key_id = $2, updated_at = $3 \
             WHERE host = $4 AND key = $5 AND value_envelope = $6",
        )
        .bind(value_envelope)
        .bind(key_id)
        .bind(now)
        .bind(&old.host)
        .bind(&old.key)
        .bind(&old.value_envelope)
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() > 0)
    }
}

/// Deletes `host`'s options named in `keys` inside `tx`.
pub(super) async fn clear_in(
    tx: &mut sqlx::Transaction<'_, sqlx::Any>,
    host: &str,
    keys: &[&str],
) -> Result<bool, StoreError> {
    let mut removed = 0;
    for key in keys {
        let done = sqlx::query("DELETE FROM relay_host_options WHERE host = $1 AND key = $2")
            .bind(host)
            .bind(key)
            .execute(&mut **tx)
            .await?;
        removed += done.rows_affected();
    }
    Ok(removed > 0)
}
