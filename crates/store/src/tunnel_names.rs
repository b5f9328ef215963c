//! `tunnel_names`: `ssh -R` names reserved by a user for good, each also a
//! `target_names` row of kind 'tunnel' (one namespace with nodes and hosts).

use sqlx::Row;
use sqlx::any::AnyRow;

use crate::targets::TargetKind;
use crate::{Store, StoreError};

/// A reserved tunnel name with its owner's username.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TunnelNameRow {
    pub id: String,
    pub name: String,
    pub user_id: String,
    pub username: String,
    pub created_at: i64,
}

const SELECT: &str = "SELECT t.id, t.name, t.user_id, COALESCE(u.username, '') AS username, \
     t.created_at FROM tunnel_names t LEFT JOIN users u ON u.id = t.user_id";

fn from_row(row: &AnyRow) -> Result<TunnelNameRow, sqlx::Error> {
    Ok(TunnelNameRow {
        id: row.try_get("id")?,
        name: row.try_get("name")?,
        user_id: row.try_get("user_id")?,
        username: row.try_get("username")?,
        created_at: row.try_get("created_at")?,
    })
}

impl Store {
    /// Reserves `name` for `user_id`; [`StoreError::Conflict`] if any target
    /// (tunnel, node or host) already has that name. The target_names
    /// primary key decides between concurrent claims.
    #[tracing::instrument(skip(self))]
    pub async fn insert_tunnel_name(
        &self,
        id: &str,
        name: &str,
        user_id: &str,
        now: i64,
    ) -> Result<(), StoreError> {
        let mut tx = self.pool.begin().await?;
        sqlx::query("INSERT INTO target_names (name, kind, target_id) VALUES ($1, $2, $3)")
            .bind(name)
            .bind(TargetKind::Tunnel.as_str())
            .bind(id)
            .execute(&mut *tx)
            .await?;
        sqlx::query(
            "INSERT INTO tunnel_names (id, name, user_id, created_at) VALUES ($1, $2, $3, $4)",
        )
        .bind(id)
        .bind(name)
        .bind(user_id)
        .bind(now)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(())
    }

    #[tracing::instrument(skip(self))]
    pub async fn tunnel_name(&self, name: &str) -> Result<Option<TunnelNameRow>, StoreError> {
        let sql = format!("{SELECT} WHERE t.name = $1");
        let row = sqlx::query(&sql)
            .bind(name)
            .fetch_optional(&self.pool)
            .await?;
        Ok(row.as_ref().map(from_row).transpose()?)
    }

    #[tracing::instrument(skip(self))]
    pub async fn tunnel_name_by_id(&self, id: &str) -> Result<Option<TunnelNameRow>, StoreError> {
        let sql = format!("{SELECT} WHERE t.id = $1");
        let row = sqlx::query(&sql)
            .bind(id)
            .fetch_optional(&self.pool)
            .await?;
        Ok(row.as_ref().map(from_row).transpose()?)
    }

    /// Reserved names, optionally one user's, ordered by name.
    #[tracing::instrument(skip(self))]
    pub async fn list_tunnel_names(
        &self,
        user_id: Option<&str>,
    ) -> Result<Vec<TunnelNameRow>, StoreError> {
        let rows = match user_id {
            Some(user_id) => {
                let sql = format!("{SELECT} WHERE t.user_id = $1 ORDER BY t.name");
                sqlx::query(&sql)
                    .bind(user_id)
                    .fetch_all(&self.pool)
                    .await?
            }
            None => {
                let sql = format!("{SELECT} ORDER BY t.name");
                sqlx::query(&sql).fetch_all(&self.pool).await?
            }
        };
        Ok(rows.iter().map(from_row).collect::<Result<_, _>>()?)
    }

    /// Frees a reserved name and drops the grants on it; `false` if `name`
    /// is not a reserved tunnel name.
    #[tracing::instrument(skip(self))]
    pub async fn remove_tunnel_name(&self, name: &str) -> Result<bool, StoreError> {
        let mut tx = self.pool.begin().await?;
        let Some(row) = sqlx::query("SELECT id FROM tunnel_names WHERE name = $1")
            .bind(name)
            .fetch_optional(&mut *tx)
            .await?
        else {
            return Ok(false);
        };
        let id: String = row.try_get("id")?;
        sqlx::query("DELETE FROM grants WHERE target_kind = $1 AND target_id = $2")
            .bind(TargetKind::Tunnel.as_str())
            .bind(&id)
            .execute(&mut *tx)
            .await?;
        sqlx::query("DELETE FROM target_names WHERE kind = $1 AND target_id = $2")
            .bind(TargetKind::Tunnel.as_str())
            .bind(&id)
            .execute(&mut *tx)
            .await?;
        sqlx::query("DELETE FROM tunnel_names WHERE id = $1")
            .bind(&id)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(true)
    }
}
