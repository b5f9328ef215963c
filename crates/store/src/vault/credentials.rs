//! `relay_credentials`: shared credentials, secret and passphrase sealed.

use sqlx::Row;
use sqlx::any::AnyRow;

use crate::{Store, StoreError};

/// A credential as stored. `kind` is `password` or `ssh_key`; `meta` a JSON
/// object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RelayCredentialRow {
    pub id: String,
    pub name: String,
    pub kind: String,
    pub secret_envelope: String,
    pub passphrase_envelope: Option<String>,
    pub key_id: String,
    pub meta: String,
    pub created_at: i64,
    pub updated_at: i64,
}

const SELECT: &str = "SELECT id, name, kind, secret_envelope, passphrase_envelope, key_id, meta, \
     created_at, updated_at FROM relay_credentials";

fn from_row(row: &AnyRow) -> Result<RelayCredentialRow, sqlx::Error> {
    Ok(RelayCredentialRow {
        id: row.try_get("id")?,
        name: row.try_get("name")?,
        kind: row.try_get("kind")?,
        secret_envelope: row.try_get("secret_envelope")?,
        passphrase_envelope: row.try_get("passphrase_envelope")?,
        key_id: row.try_get("key_id")?,
        meta: row.try_get("meta")?,
        created_at: row.try_get("created_at")?,
        updated_at: row.try_get("updated_at")?,
    })
}

impl Store {
    /// [`StoreError::Conflict`] if the name is taken.
    #[tracing::instrument(skip_all, fields(id = %row.id, name = %row.name))]
    pub async fn insert_relay_credential(
        &self,
        row: &RelayCredentialRow,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO relay_credentials (id, name, kind, secret_envelope, passphrase_envelope, \
             key_id, meta, created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
        )
        .bind(&row.id)
        .bind(&row.name)
        .bind(&row.kind)
        .bind(&row.secret_envelope)
        .bind(row.passphrase_envelope.clone())
        .bind(&row.key_id)
        .bind(&row.meta)
        .bind(row.created_at)
        .bind(row.updated_at)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Every credential, by name.
    #[tracing::instrument(skip(self))]
    pub async fn relay_credentials(&self) -> Result<Vec<RelayCredentialRow>, StoreError> {
        let rows = sqlx::query(&format!("{SELECT} ORDER BY name"))
            .fetch_all(&self.pool)
            .await?;
        Ok(rows.iter().map(from_row).collect::<Result<_, _>>()?)
    }

    #[tracing::instrument(skip(self))]
    pub async fn relay_credential_by_name(
        &self,
        name: &str,
    ) -> Result<Option<RelayCredentialRow>, StoreError> {
        let row = sqlx::query(&format!("{SELECT} WHERE name = $1"))
            .bind(name)
            .fetch_optional(&self.pool)
            .await?;
        Ok(row.as_ref().map(from_row).transpose()?)
    }

    #[tracing::instrument(skip(self))]
    pub async fn relay_credential_by_id(
        &self,
        id: &str,
    ) -> Result<Option<RelayCredentialRow>, StoreError> {
        let row = sqlx::query(&format!("{SELECT} WHERE id = $1"))
            .bind(id)
            .fetch_optional(&self.pool)
            .await?;
        Ok(row.as_ref().map(from_row).transpose()?)
    }

    /// Deletes credential `id` and, in the same transaction, the options
    /// named in `assignment_keys` of every host in `hosts` (the hosts it is
    /// assigned to).
    #[tracing::instrument(skip(self))]
    pub async fn delete_relay_credential(
        &self,
        id: &str,
        hosts: &[String],
        assignment_keys: &[&str],
    ) -> Result<(), StoreError> {
        let mut tx = self.pool.begin().await?;
        for host in hosts {
            super::options::clear_in(&mut tx, host, assignment_keys).await?;
        }
        sqlx::query("DELETE FROM relay_credentials WHERE id = $1")
            .bind(id)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(())
    }

    /// Up to `limit` credentials not sealed under `key_id`, by id.
    #[tracing::instrument(skip(self))]
    pub async fn relay_credentials_not_under(
        &self,
        key_id: &str,
        limit: i64,
    ) -> Result<Vec<RelayCredentialRow>, StoreError> {
        let sql = format!("{SELECT} WHERE key_id <> $1 ORDER BY id LIMIT $2");
        let rows = sqlx::query(&sql)
            .bind(key_id)
            .bind(limit)
            .fetch_all(&self.pool)
            .await?;
        Ok(rows.iter().map(from_row).collect::<Result<_, _>>()?)
    }

    /// Replaces secret and passphrase envelopes together (one row, one
    /// statement) only if the row still holds `old`'s secret envelope.
    /// Whether it swapped.
    #[tracing::instrument(skip_all, fields(id = %old.id))]
    pub async fn reseal_relay_credential(
        &self,
        old: &RelayCredentialRow,
        secret_envelope: &str,
        passphrase_envelope: Option<&str>,
        key_id: &str,
        now: i64,
    ) -> Result<bool, StoreError> {
        let done = sqlx::query(
            "UPDATE relay_credentials SET secret_envelope = $1, passphrase_envelope = $2, \
             key_id = $3, updated_at = $4 WHERE id = $5 AND secret_envelope = $6",
        )
        .bind(secret_envelope)
        .bind(passphrase_envelope)
        .bind(key_id)
        .bind(now)
        .bind(&old.id)
        .bind(&old.secret_envelope)
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() > 0)
    }
}
