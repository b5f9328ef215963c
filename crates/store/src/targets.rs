//! `hosts` and `target_names`: direct hosts, and the one namespace of target
//! names shared by hosts, nodes and reserved tunnel names.

use sqlx::Row;
use sqlx::any::AnyRow;

use crate::{Store, StoreError};

/// What a target name refers to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TargetKind {
    Node,
    Host,
    /// A reserved `ssh -R` tunnel name (see `tunnel_names`).
    Tunnel,
    /// A node group (`node_groups`): a grant's target only, never in `target_names`.
    NodeGroup,
}

impl TargetKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Node => "node",
            Self::Host => "host",
            Self::Tunnel => "tunnel",
            Self::NodeGroup => "node_group",
        }
    }

    pub(crate) fn parse(s: &str) -> Result<Self, sqlx::Error> {
        match s {
            "node" => Ok(Self::Node),
            "host" => Ok(Self::Host),
            "tunnel" => Ok(Self::Tunnel),
            "node_group" => Ok(Self::NodeGroup),
            other => Err(sqlx::Error::Decode(
                format!("unknown target kind {other:?}").into(),
            )),
        }
    }
}

/// A direct host target.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostRow {
    pub id: String,
    pub name: String,
    pub ip: String,
    pub port: u16,
    pub created_at: i64,
}

/// A name in the target namespace.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TargetRef {
    pub kind: TargetKind,
    pub id: String,
    pub name: String,
}

const HOST_COLUMNS: &str = "id, name, ip, port, created_at";

fn host_from_row(row: &AnyRow) -> Result<HostRow, sqlx::Error> {
    let port: i64 = row.try_get("port")?;
    Ok(HostRow {
        id: row.try_get("id")?,
        name: row.try_get("name")?,
        ip: row.try_get("ip")?,
        port: u16::try_from(port).map_err(|e| sqlx::Error::Decode(Box::new(e)))?,
        created_at: row.try_get("created_at")?,
    })
}

impl Store {
    /// Inserts a host; [`StoreError::Conflict`] if any target (host or node)
    /// already has its name.
    #[tracing::instrument(skip(self, host), fields(host_id = %host.id, name = %host.name))]
    pub async fn insert_host(&self, host: &HostRow) -> Result<(), StoreError> {
        let mut tx = self.pool.begin().await?;
        sqlx::query("INSERT INTO target_names (name, kind, target_id) VALUES ($1, $2, $3)")
            .bind(&host.name)
            .bind(TargetKind::Host.as_str())
            .bind(&host.id)
            .execute(&mut *tx)
            .await?;
        sqlx::query(
            "INSERT INTO hosts (id, name, ip, port, created_at) VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(&host.id)
        .bind(&host.name)
        .bind(&host.ip)
        .bind(i64::from(host.port))
        .bind(host.created_at)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(())
    }

    /// Deletes a host and its grants; `false` if no host has that name.
    #[tracing::instrument(skip(self))]
    pub async fn remove_host(&self, name: &str) -> Result<bool, StoreError> {
        let mut tx = self.pool.begin().await?;
        let done = sqlx::query("DELETE FROM target_names WHERE name = $1 AND kind = $2")
            .bind(name)
            .bind(TargetKind::Host.as_str())
            .execute(&mut *tx)
            .await?;
        if done.rows_affected() == 0 {
            return Ok(false);
        }
        let row = sqlx::query("SELECT id FROM hosts WHERE name = $1")
            .bind(name)
            .fetch_one(&mut *tx)
            .await?;
        let id: String = row.try_get("id")?;
        sqlx::query("DELETE FROM grants WHERE target_kind = $1 AND target_id = $2")
            .bind(TargetKind::Host.as_str())
            .bind(&id)
            .execute(&mut *tx)
            .await?;
        sqlx::query("DELETE FROM hosts WHERE id = $1")
            .bind(&id)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(true)
    }

    #[tracing::instrument(skip(self))]
    pub async fn host_by_id(&self, id: &str) -> Result<Option<HostRow>, StoreError> {
        let sql = format!("SELECT {HOST_COLUMNS} FROM hosts WHERE id = $1");
        let row = sqlx::query(&sql)
            .bind(id)
            .fetch_optional(&self.pool)
            .await?;
        Ok(row.as_ref().map(host_from_row).transpose()?)
    }

    /// Every host, ordered by name.
    #[tracing::instrument(skip(self))]
    pub async fn list_hosts(&self) -> Result<Vec<HostRow>, StoreError> {
        let sql = format!("SELECT {HOST_COLUMNS} FROM hosts ORDER BY name");
        let rows = sqlx::query(&sql).fetch_all(&self.pool).await?;
        Ok(rows.iter().map(host_from_row).collect::<Result<_, _>>()?)
    }

    /// Looks a target up by name, or (for nodes) by node id.
    #[tracing::instrument(skip(self))]
    pub async fn target_by_name(&self, name: &str) -> Result<Option<TargetRef>, StoreError> {
        let row = sqlx::query("SELECT name, kind, target_id FROM target_names WHERE name = $1")
            .bind(name)
            .fetch_optional(&self.pool)
            .await?;
        let row = match row {
            Some(row) => Some(row),
            // Edges may hold a node id rather than its name.
            None => {
                sqlx::query("SELECT name, 'node' AS kind, id AS target_id FROM nodes WHERE id = $1")
                    .bind(name)
                    .fetch_optional(&self.pool)
                    .await?
            }
        };
        let Some(row) = row else { return Ok(None) };
        let kind: String = row.try_get("kind")?;
        Ok(Some(TargetRef {
            kind: TargetKind::parse(&kind)?,
            id: row.try_get("target_id")?,
            name: row.try_get("name")?,
        }))
    }
}
