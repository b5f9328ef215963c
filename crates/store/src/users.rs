//! `users` table.

use sqlx::Row;
use sqlx::any::AnyRow;

use crate::{Store, StoreError};

/// `phirepass dev`'s operator account (it holds the admin CLI's API token). Not a person: it
/// does not count as a user, so a fresh dev still offers the first-run setup.
pub const SERVICE_ACCOUNT: &str = "dev-operator";

/// A user as stored. `password_hash` is a PHC string (Argon2id).
#[derive(Clone, PartialEq, Eq)]
pub struct UserRow {
    pub id: String,
    pub username: String,
    pub password_hash: String,
    pub disabled: bool,
    /// May use the dashboard and manage invitations.
    pub admin: bool,
    pub created_at: i64,
}

// Hand-written so the password hash never ends up in a log line.
impl std::fmt::Debug for UserRow {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UserRow")
            .field("id", &self.id)
            .field("username", &self.username)
            .field("disabled", &self.disabled)
            .field("admin", &self.admin)
            .field("created_at", &self.created_at)
            .finish_non_exhaustive()
    }
}

pub(crate) const COLUMNS: &str = "id, username, password_hash, disabled, admin, created_at";

pub(crate) fn from_row(row: &AnyRow) -> Result<UserRow, sqlx::Error> {
    Ok(UserRow {
        id: row.try_get("id")?,
        username: row.try_get("username")?,
        password_hash: row.try_get("password_hash")?,
        disabled: flag(row, "disabled")?,
        admin: flag(row, "admin")?,
        created_at: row.try_get("created_at")?,
    })
}

/// Reads a boolean column: BOOLEAN on PostgreSQL, INTEGER 0/1 on SQLite
/// (the Any driver cannot decode SQLite's BOOLEAN affinity as bool).
pub(crate) fn flag(row: &AnyRow, column: &str) -> Result<bool, sqlx::Error> {
    match row.try_get::<bool, _>(column) {
        Ok(value) => Ok(value),
        Err(_) => Ok(row.try_get::<i64, _>(column)? != 0),
    }
}

/// Inserts a user on `conn` (a pooled connection or a transaction).
pub(crate) async fn insert_user_in(
    conn: &mut sqlx::AnyConnection,
    user: &UserRow,
) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO users (id, username, password_hash, disabled, admin, created_at) \
         VALUES ($1, $2, $3, $4, $5, $6)",
    )
    .bind(&user.id)
    .bind(&user.username)
    .bind(&user.password_hash)
    .bind(user.disabled)
    .bind(user.admin)
    .bind(user.created_at)
    .execute(conn)
    .await?;
    Ok(())
}

impl Store {
    /// Inserts a user; [`StoreError::Conflict`] if the username is taken.
    #[tracing::instrument(skip(self, user), fields(user_id = %user.id, username = %user.username))]
    pub async fn insert_user(&self, user: &UserRow) -> Result<(), StoreError> {
        let mut conn = self.pool.acquire().await?;
        insert_user_in(&mut conn, user).await
    }

    #[tracing::instrument(skip(self))]
    pub async fn user_by_username(&self, username: &str) -> Result<Option<UserRow>, StoreError> {
        let sql = format!("SELECT {COLUMNS} FROM users WHERE username = $1");
        let row = sqlx::query(&sql)
            .bind(username)
            .fetch_optional(&self.pool)
            .await?;
        Ok(row.as_ref().map(from_row).transpose()?)
    }

    #[tracing::instrument(skip(self))]
    pub async fn user_by_id(&self, id: &str) -> Result<Option<UserRow>, StoreError> {
        let sql = format!("SELECT {COLUMNS} FROM users WHERE id = $1");
        let row = sqlx::query(&sql)
            .bind(id)
            .fetch_optional(&self.pool)
            .await?;
        Ok(row.as_ref().map(from_row).transpose()?)
    }

    /// Every user, ordered by username.
    #[tracing::instrument(skip(self))]
    pub async fn list_users(&self) -> Result<Vec<UserRow>, StoreError> {
        let sql = format!("SELECT {COLUMNS} FROM users ORDER BY username");
        let rows = sqlx::query(&sql).fetch_all(&self.pool).await?;
        Ok(rows.iter().map(from_row).collect::<Result<_, _>>()?)
    }

    #[tracing::instrument(skip(self))]
    pub async fn count_users(&self) -> Result<u64, StoreError> {
        let row = sqlx::query("SELECT COUNT(*) AS n FROM users WHERE username <> $1")
            .bind(SERVICE_ACCOUNT)
            .fetch_one(&self.pool)
            .await?;
        let n: i64 = row.try_get("n")?;
        Ok(u64::try_from(n).unwrap_or(0))
    }

    /// Sets the `disabled` flag; returns the updated user, `None` if unknown.
    #[tracing::instrument(skip(self))]
    pub async fn set_user_disabled(
        &self,
        username: &str,
        disabled: bool,
    ) -> Result<Option<UserRow>, StoreError> {
        let done = sqlx::query("UPDATE users SET disabled = $1 WHERE username = $2")
            .bind(disabled)
            .bind(username)
            .execute(&self.pool)
            .await?;
        if done.rows_affected() == 0 {
            return Ok(None);
        }
        self.user_by_username(username).await
    }

    /// Sets the `admin` flag; returns the updated user, `None` if unknown.
    #[tracing::instrument(skip(self))]
    pub async fn set_user_admin(
        &self,
        username: &str,
        admin: bool,
    ) -> Result<Option<UserRow>, StoreError> {
        let done = sqlx::query("UPDATE users SET admin = $1 WHERE username = $2")
            .bind(admin)
            .bind(username)
            .execute(&self.pool)
            .await?;
        if done.rows_affected() == 0 {
            return Ok(None);
        }
        self.user_by_username(username).await
    }
}

impl Store {
    /// Replaces the password hash and ends every login session of the user;
    /// returns the user, `None` if unknown.
    #[tracing::instrument(skip(self, password_hash))]
    pub async fn set_password_hash(
        &self,
        username: &str,
        password_hash: &str,
    ) -> Result<Option<UserRow>, StoreError> {
        let mut tx = self.pool.begin().await?;
        let done = sqlx::query("UPDATE users SET password_hash = $1 WHERE username = $2")
            .bind(password_hash)
            .bind(username)
            .execute(&mut *tx)
            .await?;
        if done.rows_affected() == 0 {
            return Ok(None);
        }
        sqlx::query(
            "DELETE FROM sessions WHERE user_id = (SELECT id FROM users WHERE username = $1)",
        )
        .bind(username)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        self.user_by_username(username).await
    }

    /// Deletes a user and everything that hangs off them: sessions, keys,
    /// memberships, grants, tokens, and their nodes (with the nodes' names
    /// and grants). `false` if unknown.
    #[tracing::instrument(skip(self))]
    pub async fn remove_user(&self, username: &str) -> Result<bool, StoreError> {
        let mut tx = self.pool.begin().await?;
        // Write first, so SQLite takes its write lock before any read.
        let done = sqlx::query("UPDATE users SET disabled = $1 WHERE username = $2")
            .bind(true)
            .bind(username)
            .execute(&mut *tx)
            .await?;
        if done.rows_affected() == 0 {
            return Ok(false);
        }
        let row = sqlx::query("SELECT id FROM users WHERE username = $1")
            .bind(username)
            .fetch_one(&mut *tx)
            .await?;
        let id: String = row.try_get("id")?;
        // Order matters: rows that reference others go first.
        for sql in [
            "DELETE FROM node_group_members WHERE node_id IN \
             (SELECT id FROM nodes WHERE user_id = $1)",
            "DELETE FROM grants WHERE target_kind = 'node' AND target_id IN \
             (SELECT id FROM nodes WHERE user_id = $1)",
            "DELETE FROM target_names WHERE kind = 'node' AND target_id IN \
             (SELECT id FROM nodes WHERE user_id = $1)",
            "DELETE FROM nodes WHERE user_id = $1",
            "DELETE FROM grants WHERE target_kind = 'tunnel' AND target_id IN \
             (SELECT id FROM tunnel_names WHERE user_id = $1)",
            "DELETE FROM target_names WHERE kind = 'tunnel' AND target_id IN \
             (SELECT id FROM tunnel_names WHERE user_id = $1)",
            "DELETE FROM tunnel_names WHERE user_id = $1",
            "DELETE FROM pat_tokens WHERE user_id = $1",
            "DELETE FROM sessions WHERE user_id = $1",
            "DELETE FROM user_keys WHERE user_id = $1",
            "DELETE FROM group_members WHERE user_id = $1",
            "DELETE FROM grants WHERE principal_kind = 'user' AND principal_id = $1",
            "DELETE FROM users WHERE id = $1",
        ] {
            sqlx::query(sql).bind(&id).execute(&mut *tx).await?;
        }
        tx.commit().await?;
        Ok(true)
    }
}
