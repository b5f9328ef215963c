//! `node_groups` and `node_group_members`: named groups of agent nodes, a grant's target for
//! commands (and access) on every member at once.

use std::collections::HashMap;

use sqlx::Row;

use crate::targets::TargetKind;
use crate::{Store, StoreError, new_id};

/// A node group with its members' names, sorted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeGroupRow {
    pub id: String,
    pub name: String,
    pub created_at: i64,
    pub nodes: Vec<String>,
}

impl Store {
    /// Adds `node_ids` to the group `name`, creating the group when it does not exist yet.
    /// Adding a member twice is not an error.
    #[tracing::instrument(skip(self))]
    pub async fn add_node_group_members(
        &self,
        name: &str,
        node_ids: &[String],
        now: i64,
    ) -> Result<NodeGroupRow, StoreError> {
        let mut tx = self.pool.begin().await?;
        // Write first, so SQLite takes its write lock before any read.
        sqlx::query(
            "INSERT INTO node_groups (id, name, created_at) VALUES ($1, $2, $3) \
             ON CONFLICT (name) DO NOTHING",
        )
        .bind(new_id())
        .bind(name)
        .bind(now)
        .execute(&mut *tx)
        .await?;
        let row = sqlx::query("SELECT id FROM node_groups WHERE name = $1")
            .bind(name)
            .fetch_one(&mut *tx)
            .await?;
        let group_id: String = row.try_get("id")?;
        for node_id in node_ids {
            sqlx::query(
                "INSERT INTO node_group_members (group_id, node_id, created_at) \
                 VALUES ($1, $2, $3) ON CONFLICT (group_id, node_id) DO NOTHING",
            )
            .bind(&group_id)
            .bind(node_id)
            .bind(now)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        self.node_group_by_name(name)
            .await?
            .ok_or(StoreError::Query(sqlx::Error::RowNotFound))
    }

    /// Takes `node_ids` out of the group; returns how many were members.
    #[tracing::instrument(skip(self))]
    pub async fn remove_node_group_members(
        &self,
        group_id: &str,
        node_ids: &[String],
    ) -> Result<u64, StoreError> {
        let mut tx = self.pool.begin().await?;
        let mut removed = 0;
        for node_id in node_ids {
            let done =
                sqlx::query("DELETE FROM node_group_members WHERE group_id = $1 AND node_id = $2")
                    .bind(group_id)
                    .bind(node_id)
                    .execute(&mut *tx)
                    .await?;
            removed += done.rows_affected();
        }
        tx.commit().await?;
        Ok(removed)
    }

    /// Deletes a node group with its memberships and the grants on it; `false` if unknown.
    #[tracing::instrument(skip(self))]
    pub async fn remove_node_group(&self, name: &str) -> Result<bool, StoreError> {
        let mut tx = self.pool.begin().await?;
        let Some(row) = sqlx::query("SELECT id FROM node_groups WHERE name = $1")
            .bind(name)
            .fetch_optional(&mut *tx)
            .await?
        else {
            return Ok(false);
        };
        let id: String = row.try_get("id")?;
        sqlx::query("DELETE FROM grants WHERE target_kind = $1 AND target_id = $2")
            .bind(TargetKind::NodeGroup.as_str())
            .bind(&id)
            .execute(&mut *tx)
            .await?;
        for sql in [
            "DELETE FROM node_group_members WHERE group_id = $1",
            "DELETE FROM node_groups WHERE id = $1",
        ] {
            sqlx::query(sql).bind(&id).execute(&mut *tx).await?;
        }
        tx.commit().await?;
        Ok(true)
    }

    #[tracing::instrument(skip(self))]
    pub async fn node_group_by_name(&self, name: &str) -> Result<Option<NodeGroupRow>, StoreError> {
        let Some(row) = sqlx::query("SELECT id, name, created_at FROM node_groups WHERE name = $1")
            .bind(name)
            .fetch_optional(&self.pool)
            .await?
        else {
            return Ok(None);
        };
        let id: String = row.try_get("id")?;
        let members = sqlx::query(
            "SELECT n.name FROM node_group_members m JOIN nodes n ON n.id = m.node_id \
             WHERE m.group_id = $1 ORDER BY n.name",
        )
        .bind(&id)
        .fetch_all(&self.pool)
        .await?;
        Ok(Some(NodeGroupRow {
            id,
            name: row.try_get("name")?,
            created_at: row.try_get("created_at")?,
            nodes: members
                .iter()
                .map(|r| r.try_get("name"))
                .collect::<Result<_, _>>()?,
        }))
    }

    /// Every node group with its members, ordered by name.
    #[tracing::instrument(skip(self))]
    pub async fn list_node_groups(&self) -> Result<Vec<NodeGroupRow>, StoreError> {
        let rows = sqlx::query("SELECT id, name, created_at FROM node_groups ORDER BY name")
            .fetch_all(&self.pool)
            .await?;
        let members = sqlx::query(
            "SELECT m.group_id, n.name FROM node_group_members m \
             JOIN nodes n ON n.id = m.node_id ORDER BY n.name",
        )
        .fetch_all(&self.pool)
        .await?;
        let mut by_group: HashMap<String, Vec<String>> = HashMap::new();
        for m in &members {
            by_group
                .entry(m.try_get("group_id")?)
                .or_default()
                .push(m.try_get("name")?);
        }
        let mut groups = Vec::with_capacity(rows.len());
        for row in &rows {
            let id: String = row.try_get("id")?;
            groups.push(NodeGroupRow {
                nodes: by_group.remove(&id).unwrap_or_default(),
                id,
                name: row.try_get("name")?,
                created_at: row.try_get("created_at")?,
            });
        }
        Ok(groups)
    }

    /// node id -> the names of the node groups it belongs to, sorted.
    #[tracing::instrument(skip(self))]
    pub async fn node_group_names_by_node(
        &self,
    ) -> Result<HashMap<String, Vec<String>>, StoreError> {
        let rows = sqlx::query(
            "SELECT m.node_id, g.name FROM node_group_members m \
             JOIN node_groups g ON g.id = m.group_id ORDER BY g.name",
        )
        .fetch_all(&self.pool)
        .await?;
        let mut out: HashMap<String, Vec<String>> = HashMap::new();
        for row in &rows {
            out.entry(row.try_get("node_id")?)
                .or_default()
                .push(row.try_get("name")?);
        }
        Ok(out)
    }

    /// The ids of the nodes in group `group_id`.
    #[tracing::instrument(skip(self))]
    pub async fn node_group_member_ids(&self, group_id: &str) -> Result<Vec<String>, StoreError> {
        let rows = sqlx::query("SELECT node_id FROM node_group_members WHERE group_id = $1")
            .bind(group_id)
            .fetch_all(&self.pool)
            .await?;
        Ok(rows
            .iter()
            .map(|r| r.try_get("node_id"))
            .collect::<Result<_, _>>()?)
    }
}
