//! `pat_tokens` and `nodes`: node (agent) tokens and the nodes they register.
//!
//! A node has exactly one current token (`nodes.token_id`). Issuing a token
//! for an existing node of the same user rotates it: the old token is revoked.

use std::collections::HashSet;

use sqlx::Row;
use sqlx::any::AnyRow;

use crate::{Store, StoreError, new_id};

/// Scope carried by node tokens.
pub const SCOPE_NODE_CONNECT: &str = "node:connect";

/// What [`Store::create_node_token`] needs; hashes only, never the secret.
#[derive(Debug, Clone)]
pub struct NewNodeToken {
    pub token_id: String,
    pub token_hash: String,
    pub user_id: String,
    pub node_name: String,
    pub scopes: Vec<String>,
    pub created_at: i64,
    pub expires_at: Option<i64>,
}

/// A node joined with its owner's username.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeRow {
    pub id: String,
    pub name: String,
    pub user_id: String,
    pub username: String,
    pub token_id: String,
    pub created_at: i64,
}

/// A token joined with its owner and (if it is the node's current token)
/// its node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenInfo {
    pub token_id: String,
    pub token_hash: String,
    pub user_id: String,
    pub username: String,
    pub user_disabled: bool,
    /// The node name the token was issued for.
    pub name: String,
    /// `None` once the node's token was rotated to another one.
    pub node_id: Option<String>,
    pub scopes: Vec<String>,
    pub created_at: i64,
    pub expires_at: Option<i64>,
    pub revoked_at: Option<i64>,
    /// [`TOKEN_KIND_NODE`] or [`TOKEN_KIND_API`].
    pub kind: String,
}

/// `pat_tokens.kind` of node (agent) tokens.
pub const TOKEN_KIND_NODE: &str = "node";
/// `pat_tokens.kind` of API tokens for admin clients.
pub const TOKEN_KIND_API: &str = "api";

const TOKEN_SELECT: &str = "SELECT t.token_id, t.token_hash, t.user_id, u.username, \
     u.disabled, t.name, n.id AS node_id, t.scopes, t.created_at, t.expires_at, t.revoked_at, t.kind \
     FROM pat_tokens t JOIN users u ON u.id = t.user_id \
     LEFT JOIN nodes n ON n.token_id = t.token_id";

const NODE_SELECT: &str = "SELECT n.id, n.name, n.user_id, u.username, n.token_id, n.created_at \
     FROM nodes n JOIN users u ON u.id = n.user_id";

// Keeps IN lists well under every backend's bind-parameter limit.
const IN_CHUNK: usize = 500;

impl Store {
    /// Stores a token and creates (or rotates) its node, atomically.
    /// [`StoreError::Conflict`] if another user owns a node of that name.
    #[tracing::instrument(skip(self, new), fields(token_id = %new.token_id, user_id = %new.user_id, node = %new.node_name))]
    pub async fn create_node_token(&self, new: &NewNodeToken) -> Result<NodeRow, StoreError> {
        let mut tx = self.pool.begin().await?;
        // Write first, so SQLite takes its write lock before any read.
        sqlx::query(
            "INSERT INTO pat_tokens (id, token_id, token_hash, user_id, name, scopes, created_at, expires_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        )
        .bind(new_id())
        .bind(&new.token_id)
        .bind(&new.token_hash)
        .bind(&new.user_id)
        .bind(&new.node_name)
        .bind(new.scopes.join(" "))
        .bind(new.created_at)
        .bind(new.expires_at)
        .execute(&mut *tx)
        .await?;

        let existing = sqlx::query("SELECT id, user_id, token_id FROM nodes WHERE name = $1")
            .bind(&new.node_name)
            .fetch_optional(&mut *tx)
            .await?;
        match existing {
            None => {
                let node_id = new_id();
                // The shared target namespace: a host of that name conflicts.
                sqlx::query(
                    "INSERT INTO target_names (name, kind, target_id) VALUES ($1, 'node', $2)",
                )
                .bind(&new.node_name)
                .bind(&node_id)
                .execute(&mut *tx)
                .await?;
                sqlx::query(
                    "INSERT INTO nodes (id, user_id, token_id, name, created_at) \
                     VALUES ($1, $2, $3, $4, $5)",
                )
                .bind(&node_id)
                .bind(&new.user_id)
                .bind(&new.token_id)
                .bind(&new.node_name)
                .bind(new.created_at)
                .execute(&mut *tx)
                .await?;
            }
            Some(row) => {
                let owner: String = row.try_get("user_id")?;
                if owner != new.user_id {
                    return Err(StoreError::Conflict);
                }
                let node_id: String = row.try_get("id")?;
                let old_token: String = row.try_get("token_id")?;
                sqlx::query("UPDATE nodes SET token_id = $1 WHERE id = $2")
                    .bind(&new.token_id)
                    .bind(&node_id)
                    .execute(&mut *tx)
                    .await?;
                sqlx::query(
                    "UPDATE pat_tokens SET revoked_at = $1 WHERE token_id = $2 AND revoked_at IS NULL",
                )
                .bind(new.created_at)
                .bind(&old_token)
                .execute(&mut *tx)
                .await?;
                tracing::info!(node_id = %node_id, old_token_id = %old_token, "node token rotated");
            }
        }
        tx.commit().await?;
        self.node_by_name(&new.node_name)
            .await?
            .ok_or(StoreError::Query(sqlx::Error::RowNotFound))
    }

    #[tracing::instrument(skip(self))]
    pub async fn token_info(&self, token_id: &str) -> Result<Option<TokenInfo>, StoreError> {
        let sql = format!("{TOKEN_SELECT} WHERE t.token_id = $1");
        let row = sqlx::query(&sql)
            .bind(token_id)
            .fetch_optional(&self.pool)
            .await?;
        Ok(row.as_ref().map(token_from_row).transpose()?)
    }

    /// Tokens, newest first, optionally only those of one user.
    #[tracing::instrument(skip(self))]
    pub async fn list_tokens(&self, user_id: Option<&str>) -> Result<Vec<TokenInfo>, StoreError> {
        let rows = match user_id {
            Some(user_id) => {
                let sql = format!(
                    "{TOKEN_SELECT} WHERE t.user_id = $1 ORDER BY t.created_at DESC, t.token_id"
                );
                sqlx::query(&sql)
                    .bind(user_id)
                    .fetch_all(&self.pool)
                    .await?
            }
            None => {
                let sql = format!("{TOKEN_SELECT} ORDER BY t.created_at DESC, t.token_id");
                sqlx::query(&sql).fetch_all(&self.pool).await?
            }
        };
        Ok(rows.iter().map(token_from_row).collect::<Result<_, _>>()?)
    }

    /// Marks a token revoked (keeping the first revocation time); `false`
    /// if no such token exists.
    #[tracing::instrument(skip(self))]
    pub async fn revoke_token(&self, token_id: &str, now: i64) -> Result<bool, StoreError> {
        let done = sqlx::query(
            "UPDATE pat_tokens SET revoked_at = COALESCE(revoked_at, $1) WHERE token_id = $2",
        )
        .bind(now)
        .bind(token_id)
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() > 0)
    }

    /// The subset of `token_ids` that still authenticate a node at `now`:
    /// current token of a node, not revoked, not expired, user enabled.
    #[tracing::instrument(skip(self, token_ids), fields(count = token_ids.len()))]
    pub async fn valid_node_tokens(
        &self,
        token_ids: &[String],
        now: i64,
    ) -> Result<HashSet<String>, StoreError> {
        let mut valid = HashSet::new();
        for chunk in token_ids.chunks(IN_CHUNK) {
            let placeholders = (0..chunk.len())
                .map(|i| format!("${}", i + 3))
                .collect::<Vec<_>>()
                .join(", ");
            let sql = format!(
                "SELECT t.token_id FROM pat_tokens t \
                 JOIN users u ON u.id = t.user_id \
                 JOIN nodes n ON n.token_id = t.token_id \
                 WHERE t.revoked_at IS NULL AND (t.expires_at IS NULL OR t.expires_at > $1) \
                 AND u.disabled = $2 AND t.token_id IN ({placeholders})"
            );
            let mut query = sqlx::query(&sql).bind(now).bind(false);
            for id in chunk {
                query = query.bind(id);
            }
            for row in query.fetch_all(&self.pool).await? {
                valid.insert(row.try_get::<String, _>("token_id")?);
            }
        }
        Ok(valid)
    }

    #[tracing::instrument(skip(self))]
    pub async fn node_by_id(&self, id: &str) -> Result<Option<NodeRow>, StoreError> {
        self.node_where("n.id", id).await
    }

    #[tracing::instrument(skip(self))]
    pub async fn node_by_name(&self, name: &str) -> Result<Option<NodeRow>, StoreError> {
        self.node_where("n.name", name).await
    }

    async fn node_where(&self, column: &str, value: &str) -> Result<Option<NodeRow>, StoreError> {
        let sql = format!("{NODE_SELECT} WHERE {column} = $1");
        let row = sqlx::query(&sql)
            .bind(value)
            .fetch_optional(&self.pool)
            .await?;
        Ok(row.as_ref().map(node_from_row).transpose()?)
    }

    /// Nodes ordered by name, optionally only those of one user.
    #[tracing::instrument(skip(self))]
    pub async fn list_nodes(&self, user_id: Option<&str>) -> Result<Vec<NodeRow>, StoreError> {
        let rows = match user_id {
            Some(user_id) => {
                let sql = format!("{NODE_SELECT} WHERE n.user_id = $1 ORDER BY n.name");
                sqlx::query(&sql)
                    .bind(user_id)
                    .fetch_all(&self.pool)
                    .await?
            }
            None => {
                let sql = format!("{NODE_SELECT} ORDER BY n.name");
                sqlx::query(&sql).fetch_all(&self.pool).await?
            }
        };
        Ok(rows.iter().map(node_from_row).collect::<Result<_, _>>()?)
    }
}

fn token_from_row(row: &AnyRow) -> Result<TokenInfo, sqlx::Error> {
    let scopes: String = row.try_get("scopes")?;
    Ok(TokenInfo {
        token_id: row.try_get("token_id")?,
        token_hash: row.try_get("token_hash")?,
        user_id: row.try_get("user_id")?,
        username: row.try_get("username")?,
        user_disabled: crate::users::flag(row, "disabled")?,
        name: row.try_get("name")?,
        node_id: row.try_get("node_id")?,
        scopes: scopes.split_whitespace().map(str::to_owned).collect(),
        created_at: row.try_get("created_at")?,
        expires_at: row.try_get("expires_at")?,
        revoked_at: row.try_get("revoked_at")?,
        kind: row.try_get("kind")?,
    })
}

fn node_from_row(row: &AnyRow) -> Result<NodeRow, sqlx::Error> {
    Ok(NodeRow {
        id: row.try_get("id")?,
        name: row.try_get("name")?,
        user_id: row.try_get("user_id")?,
        username: row.try_get("username")?,
        token_id: row.try_get("token_id")?,
        created_at: row.try_get("created_at")?,
    })
}
