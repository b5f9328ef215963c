//! `device_authorizations`: RFC 8628 style activation of agents and CLIs.
//! Both codes are stored as hashes. No token is stored: it is minted when
//! the approved device polls, and `delivered_at` makes that happen once.

use sqlx::Row;
use sqlx::any::AnyRow;

use crate::{Store, StoreError};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeviceAuthRow {
    pub id: String,
    /// "agent" or "cli".
    pub kind: String,
    pub hostname: String,
    /// Where the start came from, as the gateway resolved it; empty when unknown.
    pub client_ip: String,
    pub created_at: i64,
    pub expires_at: i64,
    pub approved_at: Option<i64>,
    /// The approving user.
    pub user_id: Option<String>,
    /// Kind "agent": the node created on approval.
    pub node_name: Option<String>,
    /// Kind "cli": the API token's scopes.
    pub scopes: Vec<String>,
    pub delivered_at: Option<i64>,
}

const COLUMNS: &str = "id, kind, hostname, client_ip, created_at, expires_at, approved_at, user_id, \
     node_name, scopes, delivered_at";

fn from_row(row: &AnyRow) -> Result<DeviceAuthRow, sqlx::Error> {
    let scopes: Option<String> = row.try_get("scopes")?;
    Ok(DeviceAuthRow {
        id: row.try_get("id")?,
        kind: row.try_get("kind")?,
        hostname: row.try_get("hostname")?,
        client_ip: row.try_get("client_ip")?,
        created_at: row.try_get("created_at")?,
        expires_at: row.try_get("expires_at")?,
        approved_at: row.try_get("approved_at")?,
        user_id: row.try_get("user_id")?,
        node_name: row.try_get("node_name")?,
        scopes: scopes
            .unwrap_or_default()
            .split_whitespace()
            .map(str::to_owned)
            .collect(),
        delivered_at: row.try_get("delivered_at")?,
    })
}

/// The approval recorded by [`Store::approve_device`].
#[derive(Debug, Clone, Copy)]
pub struct DeviceApproval<'a> {
    pub user_id: &'a str,
    pub node_name: Option<&'a str>,
    pub scopes: &'a [String],
}

impl Store {
    /// [`StoreError::Conflict`] if either hash collides with a stored one.
    #[tracing::instrument(skip(self, row, device_code_hash, user_code_hash), fields(device_id = %row.id))]
    pub async fn insert_device_authorization(
        &self,
        row: &DeviceAuthRow,
        device_code_hash: &str,
        user_code_hash: &str,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO device_authorizations \
             (id, device_code_hash, user_code_hash, kind, hostname, client_ip, created_at, \
             expires_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        )
        .bind(&row.id)
        .bind(device_code_hash)
        .bind(user_code_hash)
        .bind(&row.kind)
        .bind(&row.hostname)
        .bind(&row.client_ip)
        .bind(row.created_at)
        .bind(row.expires_at)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// The authorization a person may still approve with this user code:
    /// not approved yet and not expired at `now`.
    #[tracing::instrument(skip(self, user_code_hash))]
    pub async fn pending_device_by_user_code(
        &self,
        user_code_hash: &str,
        now: i64,
    ) -> Result<Option<DeviceAuthRow>, StoreError> {
        let sql = format!(
            "SELECT {COLUMNS} FROM device_authorizations \
             WHERE user_code_hash = $1 AND approved_at IS NULL AND expires_at > $2"
        );
        let row = sqlx::query(&sql)
            .bind(user_code_hash)
            .bind(now)
            .fetch_optional(&self.pool)
            .await?;
        Ok(row.as_ref().map(from_row).transpose()?)
    }

    #[tracing::instrument(skip(self, device_code_hash))]
    pub async fn device_by_device_code(
        &self,
        device_code_hash: &str,
    ) -> Result<Option<DeviceAuthRow>, StoreError> {
        let sql =
            format!("SELECT {COLUMNS} FROM device_authorizations WHERE device_code_hash = $1");
        let row = sqlx::query(&sql)
            .bind(device_code_hash)
            .fetch_optional(&self.pool)
            .await?;
        Ok(row.as_ref().map(from_row).transpose()?)
    }

    /// Records the approval if the authorization is still pending at `now`;
    /// `false` if another approval won or it expired.
    #[tracing::instrument(skip(self, approval), fields(user_id = %approval.user_id))]
    pub async fn approve_device(
        &self,
        id: &str,
        approval: DeviceApproval<'_>,
        now: i64,
    ) -> Result<bool, StoreError> {
        let done = sqlx::query(
            "UPDATE device_authorizations SET approved_at = $1, user_id = $2, node_name = $3, \
             scopes = $4 WHERE id = $5 AND approved_at IS NULL AND expires_at > $6",
        )
        .bind(now)
        .bind(approval.user_id)
        .bind(approval.node_name)
        .bind(approval.scopes.join(" "))
        .bind(id)
        .bind(now)
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    /// Undoes [`Store::approve_device`] when what the approval had to
    /// create failed (e.g. the node name is taken), so it can be retried.
    #[tracing::instrument(skip(self))]
    pub async fn unapprove_device(&self, id: &str) -> Result<(), StoreError> {
        sqlx::query(
            "UPDATE device_authorizations SET approved_at = NULL, user_id = NULL, \
             node_name = NULL, scopes = NULL WHERE id = $1 AND delivered_at IS NULL",
        )
        .bind(id)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Claims the one delivery of an approved authorization; `false` if it
    /// was delivered already (or is not approved).
    #[tracing::instrument(skip(self))]
    pub async fn mark_device_delivered(&self, id: &str, now: i64) -> Result<bool, StoreError> {
        let done = sqlx::query(
            "UPDATE device_authorizations SET delivered_at = $1 \
             WHERE id = $2 AND approved_at IS NOT NULL AND delivered_at IS NULL",
        )
        .bind(now)
        .bind(id)
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    /// Removes authorizations that expired before `before`; returns how many.
    #[tracing::instrument(skip(self))]
    pub async fn delete_expired_devices(&self, before: i64) -> Result<u64, StoreError> {
        let done = sqlx::query("DELETE FROM device_authorizations WHERE expires_at <= $1")
            .bind(before)
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected())
    }
}
