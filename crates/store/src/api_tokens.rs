//! API tokens for admin clients: rows of `pat_tokens` with kind `api`,
//! listed and revoked like node tokens.

use crate::nodes::TOKEN_KIND_API;
use crate::{Store, StoreError, new_id};

/// What [`Store::insert_api_token`] needs; the hash only, never the secret.
#[derive(Debug, Clone)]
pub struct NewApiToken {
    pub token_id: String,
    pub token_hash: String,
    pub user_id: String,
    pub name: String,
    pub scopes: Vec<String>,
    pub created_at: i64,
    pub expires_at: Option<i64>,
}

impl Store {
    #[tracing::instrument(skip(self, new), fields(token_id = %new.token_id, user_id = %new.user_id))]
    pub async fn insert_api_token(&self, new: &NewApiToken) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO pat_tokens (id, token_id, token_hash, user_id, name, scopes, created_at, expires_at, kind) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
        )
        .bind(new_id())
        .bind(&new.token_id)
        .bind(&new.token_hash)
        .bind(&new.user_id)
        .bind(&new.name)
        .bind(new.scopes.join(" "))
        .bind(new.created_at)
        .bind(new.expires_at)
        .bind(TOKEN_KIND_API)
        .execute(&self.pool)
        .await?;
        Ok(())
    }
}
