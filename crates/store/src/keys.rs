//! `user_keys`: users' SSH public keys, identified by SHA256 fingerprint.

use sqlx::Row;
use sqlx::any::AnyRow;

use crate::{Store, StoreError};

/// One public key (never private material).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserKeyRow {
    pub id: String,
    pub user_id: String,
    /// `SHA256:<base64, no padding>`.
    pub fingerprint: String,
    pub algorithm: String,
    /// `<algorithm> <base64 blob>`, without the comment.
    pub public_key: String,
    pub comment: String,
    pub created_at: i64,
}

const COLUMNS: &str = "id, user_id, fingerprint, algorithm, public_key, comment, created_at";

fn from_row(row: &AnyRow) -> Result<UserKeyRow, sqlx::Error> {
    Ok(UserKeyRow {
        id: row.try_get("id")?,
        user_id: row.try_get("user_id")?,
        fingerprint: row.try_get("fingerprint")?,
        algorithm: row.try_get("algorithm")?,
        public_key: row.try_get("public_key")?,
        comment: row.try_get("comment")?,
        created_at: row.try_get("created_at")?,
    })
}

impl Store {
    /// [`StoreError::Conflict`] if the user already has this fingerprint.
    #[tracing::instrument(skip(self, key), fields(user_id = %key.user_id, fingerprint = %key.fingerprint))]
    pub async fn insert_user_key(&self, key: &UserKeyRow) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO user_keys (id, user_id, fingerprint, algorithm, public_key, comment, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind(&key.id)
        .bind(&key.user_id)
        .bind(&key.fingerprint)
        .bind(&key.algorithm)
        .bind(&key.public_key)
        .bind(&key.comment)
        .bind(key.created_at)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// A user's keys, oldest first.
    #[tracing::instrument(skip(self))]
    pub async fn user_keys(&self, user_id: &str) -> Result<Vec<UserKeyRow>, StoreError> {
        let sql =
            format!("SELECT {COLUMNS} FROM user_keys WHERE user_id = $1 ORDER BY created_at, id");
        let rows = sqlx::query(&sql)
            .bind(user_id)
            .fetch_all(&self.pool)
            .await?;
        Ok(rows.iter().map(from_row).collect::<Result<_, _>>()?)
    }

    #[tracing::instrument(skip(self))]
    pub async fn user_key(
        &self,
        user_id: &str,
        fingerprint: &str,
    ) -> Result<Option<UserKeyRow>, StoreError> {
        let sql =
            format!("SELECT {COLUMNS} FROM user_keys WHERE user_id = $1 AND fingerprint = $2");
        let row = sqlx::query(&sql)
            .bind(user_id)
            .bind(fingerprint)
            .fetch_optional(&self.pool)
            .await?;
        Ok(row.as_ref().map(from_row).transpose()?)
    }

    /// `false` if the user had no such key.
    #[tracing::instrument(skip(self))]
    pub async fn delete_user_key(
        &self,
        user_id: &str,
        fingerprint: &str,
    ) -> Result<bool, StoreError> {
        let done = sqlx::query("DELETE FROM user_keys WHERE user_id = $1 AND fingerprint = $2")
            .bind(user_id)
            .bind(fingerprint)
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected() > 0)
    }
}
