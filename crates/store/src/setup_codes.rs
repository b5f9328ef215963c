//! `setup_codes`: the one-time codes that let the first person create the
//! first (admin) user. Stored as hashes; any live code works on any replica.

use sqlx::Row;

use crate::{Store, StoreError, UserRow};

/// What [`Store::complete_setup`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SetupOutcome {
    /// The first user exists now; every setup code is used up.
    Created,
    /// No live code has that hash.
    UnknownCode,
    /// Someone else finished setup first (or a user was created otherwise).
    UsersExist,
}

impl Store {
    #[tracing::instrument(skip(self, code_hash))]
    pub async fn insert_setup_code(
        &self,
        code_hash: &str,
        now: i64,
        expires_at: i64,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO setup_codes (code_hash, created_at, expires_at) VALUES ($1, $2, $3)",
        )
        .bind(code_hash)
        .bind(now)
        .bind(expires_at)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Hashes of the codes still valid at `now`.
    #[tracing::instrument(skip(self))]
    pub async fn live_setup_code_hashes(&self, now: i64) -> Result<Vec<String>, StoreError> {
        let rows = sqlx::query("SELECT code_hash FROM setup_codes WHERE expires_at > $1")
            .bind(now)
            .fetch_all(&self.pool)
            .await?;
        Ok(rows
            .iter()
            .map(|r| r.try_get::<String, _>("code_hash"))
            .collect::<Result<_, _>>()?)
    }

    /// Removes expired codes; returns how many.
    #[tracing::instrument(skip(self))]
    pub async fn delete_expired_setup_codes(&self, now: i64) -> Result<u64, StoreError> {
        let done = sqlx::query("DELETE FROM setup_codes WHERE expires_at <= $1")
            .bind(now)
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected())
    }

    /// Creates `user` as the first user if `code_hash` is a live code and no
    /// user exists, using up every code in the same transaction. Deleting
    /// all codes first serialises concurrent attempts: the second finds no
    /// code left.
    #[tracing::instrument(skip(self, code_hash, user), fields(user_id = %user.id))]
    pub async fn complete_setup(
        &self,
        code_hash: &str,
        user: &UserRow,
        now: i64,
    ) -> Result<SetupOutcome, StoreError> {
        let mut tx = self.pool.begin().await?;
        let used = sqlx::query("DELETE FROM setup_codes WHERE expires_at > $1 RETURNING code_hash")
            .bind(now)
            .fetch_all(&mut *tx)
            .await?;
        let mut found = false;
        for row in &used {
            found |= row.try_get::<String, _>("code_hash")? == code_hash;
        }
        if !found {
            return Ok(SetupOutcome::UnknownCode);
        }
        let count: i64 = sqlx::query("SELECT COUNT(*) AS n FROM users WHERE username <> $1")
            .bind(crate::users::SERVICE_ACCOUNT)
            .fetch_one(&mut *tx)
            .await?
            .try_get("n")?;
        if count > 0 {
            return Ok(SetupOutcome::UsersExist);
        }
        crate::users::insert_user_in(&mut tx, user).await?;
        tx.commit().await?;
        Ok(SetupOutcome::Created)
    }
}
