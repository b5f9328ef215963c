//! `sessions` table: browser/CLI login sessions, stored by token hash.

use sqlx::Row;
use sqlx::any::AnyRow;

use crate::{Store, StoreError, UserRow};

/// A login session. `token_hash` is the hex SHA-256 of the bearer token;
/// the token itself is never stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionRow {
    pub id: String,
    pub token_hash: String,
    pub user_id: String,
    pub created_at: i64,
    pub expires_at: i64,
}

impl Store {
    #[tracing::instrument(skip(self, session), fields(session_id = %session.id, user_id = %session.user_id))]
    pub async fn insert_session(&self, session: &SessionRow) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO sessions (id, token_hash, user_id, created_at, expires_at) \
             VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(&session.id)
        .bind(&session.token_hash)
        .bind(&session.user_id)
        .bind(session.created_at)
        .bind(session.expires_at)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// The session with this token hash and its user, if it exists and has
    /// not expired at `now`. The caller still checks `disabled`.
    ///
    /// Looking up by hash in SQL is not a timing oracle: an attacker cannot
    /// choose the hash of a guess to share a prefix with a stored one.
    #[tracing::instrument(skip(self, token_hash))]
    pub async fn live_session(
        &self,
        token_hash: &str,
        now: i64,
    ) -> Result<Option<(SessionRow, UserRow)>, StoreError> {
        let row = sqlx::query(
            "SELECT s.id, s.token_hash, s.user_id, s.created_at, s.expires_at, \
                    u.username, u.password_hash, u.disabled, u.admin, u.created_at AS user_created_at \
             FROM sessions s JOIN users u ON u.id = s.user_id \
             WHERE s.token_hash = $1 AND s.expires_at > $2",
        )
        .bind(token_hash)
        .bind(now)
        .fetch_optional(&self.pool)
        .await?;
        let Some(row) = row else { return Ok(None) };
        Ok(Some(session_and_user(&row)?))
    }

    /// Deletes a session by token hash; `true` if one was deleted.
    #[tracing::instrument(skip(self, token_hash))]
    pub async fn delete_session(&self, token_hash: &str) -> Result<bool, StoreError> {
        let done = sqlx::query("DELETE FROM sessions WHERE token_hash = $1")
            .bind(token_hash)
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected() > 0)
    }

    /// Removes sessions that expired before `now`; returns how many.
    #[tracing::instrument(skip(self))]
    pub async fn delete_expired_sessions(&self, now: i64) -> Result<u64, StoreError> {
        let done = sqlx::query("DELETE FROM sessions WHERE expires_at <= $1")
            .bind(now)
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected())
    }
}

fn session_and_user(row: &AnyRow) -> Result<(SessionRow, UserRow), sqlx::Error> {
    let session = SessionRow {
        id: row.try_get("id")?,
        token_hash: row.try_get("token_hash")?,
        user_id: row.try_get("user_id")?,
        created_at: row.try_get("created_at")?,
        expires_at: row.try_get("expires_at")?,
    };
    let user = UserRow {
        id: session.user_id.clone(),
        username: row.try_get("username")?,
        password_hash: row.try_get("password_hash")?,
        disabled: crate::users::flag(row, "disabled")?,
        admin: crate::users::flag(row, "admin")?,
        created_at: row.try_get("user_created_at")?,
    };
    Ok((session, user))
}
