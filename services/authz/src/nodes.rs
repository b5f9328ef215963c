//! Node tokens and nodes (access to nodes is decided in `authorize`).

use std::collections::HashSet;

use phirepass_proto::authz as pb;
use phirepass_store::{
    NewNodeToken, NodeRow, SCOPE_NODE_CONNECT, Store, StoreError, TOKEN_KIND_NODE, TokenInfo,
    UserRow, now_millis,
};

use crate::audit::Audit;
use crate::crypto;
use crate::error::{AuthzError, Result};
use crate::validate;

// Ten years: far beyond any sensible expiry, small enough never to overflow.
const MAX_EXPIRES_IN_SECS: u64 = 10 * 365 * 24 * 3600;
// One CheckTokens call covers every agent one gateway holds, with headroom.
const MAX_CHECK_TOKENS: usize = 20_000;

/// A token just created: its id and the full secret (shown once).
pub(crate) struct MintedToken {
    pub(crate) token_id: String,
    pub(crate) secret: String,
}

pub(crate) fn node_to_proto(node: &NodeRow) -> pb::Node {
    pb::Node {
        node_id: node.id.clone(),
        name: node.name.clone(),
        user_id: node.user_id.clone(),
        username: node.username.clone(),
        token_id: node.token_id.clone(),
        created_at: node.created_at,
    }
}

fn token_to_proto(token: TokenInfo) -> pb::Token {
    pb::Token {
        token_id: token.token_id,
        user_id: token.user_id,
        username: token.username,
        node_id: token.node_id.unwrap_or_default(),
        node_name: if token.kind == TOKEN_KIND_NODE {
            token.name.clone()
        } else {
            String::new()
        },
        name: token.name,
        kind: token.kind,
        scopes: token.scopes,
        created_at: token.created_at,
        expires_at: token.expires_at,
        revoked: token.revoked_at.is_some(),
    }
}

/// `now + secs` in unix millis, `None` without an expiry.
pub(crate) fn expires_at(now: i64, expires_in_secs: Option<u64>) -> Result<Option<i64>> {
    match expires_in_secs {
        None => Ok(None),
        // Bounded above, so the conversion and addition cannot overflow.
        Some(secs) if (1..=MAX_EXPIRES_IN_SECS).contains(&secs) => {
            Ok(Some(now + i64::try_from(secs).unwrap_or(0) * 1000))
        }
        Some(_) => Err(AuthzError::InvalidArgument(format!(
            "expires_in_secs must be between 1 and {MAX_EXPIRES_IN_SECS}"
        ))),
    }
}

/// Whether a token still authenticates its node at `now`.
fn token_is_live(token: &TokenInfo, now: i64) -> bool {
    token.revoked_at.is_none()
        && token.expires_at.is_none_or(|at| at > now)
        && !token.user_disabled
        && token.node_id.is_some()
}

/// Node and API tokens: minting, verifying, listing and revoking.
#[derive(Clone)]
pub(crate) struct Tokens {
    pub(crate) store: Store,
    pub(crate) audit: Audit,
}

impl Tokens {
    pub(crate) async fn create_node_token(
        &self,
        req: pb::CreateNodeTokenRequest,
    ) -> Result<pb::CreateNodeTokenResponse> {
        validate::node_name(&req.node_name)?;
        let user = self
            .store
            .user_by_username(&req.username)
            .await?
            .ok_or_else(|| AuthzError::Missing(format!("user {} not found", req.username)))?;
        let expires_at = expires_at(now_millis(), req.expires_in_secs)?;
        // Re-issuing a token replaces the old one and drops the agent using it: only when
        // asked. (Two racing creates of a new name may still both succeed; the second then
        // rotates, as it always did.)
        let existing = self.store.node_by_name(&req.node_name).await?;
        match (existing, req.rotate) {
            (Some(node), false) => {
                return Err(AuthzError::Exists(format!(
                    "node {} already exists (owned by {}). Creating a token for it again replaces its token: \
                     the agent connected with the current token is disconnected and must log in with the new one. \
                     To do that, pass --rotate; to register another node, choose another name",
                    node.name, node.username
                )));
            }
            (None, true) => {
                return Err(AuthzError::Missing(format!(
                    "node {} does not exist, so it has no token to rotate: create it without --rotate",
                    req.node_name
                )));
            }
            _ => {}
        }
        let (token, node) = self
            .mint_node_token(&user, &req.node_name, expires_at)
            .await?;
        Ok(pb::CreateNodeTokenResponse {
            token: token.secret,
            token_id: token.token_id,
            node_id: node.id,
            expires_at,
        })
    }

    /// Registers (or re-keys) `user`'s node `node_name` with a new token:
    /// CreateNodeToken, and device activation of an agent.
    pub(crate) async fn mint_node_token(
        &self,
        user: &UserRow,
        node_name: &str,
        expires_at: Option<i64>,
    ) -> Result<(MintedToken, NodeRow)> {
        if user.disabled {
            return Err(AuthzError::FailedPrecondition("user is disabled"));
        }
        let (token_id, secret) = crypto::new_node_token();
        let new = NewNodeToken {
            token_id: token_id.clone(),
            token_hash: crypto::sha256_hex(&secret),
            user_id: user.id.clone(),
            node_name: node_name.to_owned(),
            scopes: vec![SCOPE_NODE_CONNECT.to_owned()],
            created_at: now_millis(),
            expires_at,
        };
        let node = match self.store.create_node_token(&new).await {
            Ok(node) => node,
            Err(StoreError::Conflict) => return Err(AuthzError::AlreadyExists("node name")),
            Err(e) => return Err(e.into()),
        };
        tracing::info!(user_id = %user.id, node_id = %node.id, token_id = %token_id, "node token created");
        self.audit
            .change(
                "node.token.create",
                &[
                    ("username", &user.username),
                    ("node", &node.name),
                    ("token_id", &token_id),
                ],
            )
            .await;
        Ok((MintedToken { token_id, secret }, node))
    }

    pub(crate) async fn list_tokens(&self, username: Option<&str>) -> Result<Vec<pb::Token>> {
        let user_id = match username {
            Some(name) => Some(
                self.store
                    .user_by_username(name)
                    .await?
                    .ok_or(AuthzError::NotFound("user"))?
                    .id,
            ),
            None => None,
        };
        let tokens = self.store.list_tokens(user_id.as_deref()).await?;
        Ok(tokens.into_iter().map(token_to_proto).collect())
    }

    pub(crate) async fn revoke_token(&self, token_id: &str) -> Result<()> {
        if !self.store.revoke_token(token_id, now_millis()).await? {
            return Err(AuthzError::NotFound("token"));
        }
        tracing::info!(token_id, "token revoked");
        self.audit
            .change("token.revoke", &[("token_id", token_id)])
            .await;
        Ok(())
    }

    /// One answer for every failure: unknown, malformed, wrong secret,
    /// revoked, expired, rotated away or owned by a disabled user.
    pub(crate) async fn verify_node_token(&self, token: &str) -> Result<pb::Node> {
        let Some(token_id) = crypto::parse_node_token(token) else {
            return Err(AuthzError::Unauthenticated);
        };
        let Some(info) = self.store.token_info(token_id).await? else {
            return Err(AuthzError::Unauthenticated);
        };
        let hash_ok = crypto::hashes_equal(&crypto::sha256_hex(token), &info.token_hash);
        if !hash_ok || !token_is_live(&info, now_millis()) {
            tracing::warn!(token_id, hash_ok, "node token refused");
            return Err(AuthzError::Unauthenticated);
        }
        let node_id = info.node_id.as_deref().unwrap_or_default();
        let node = self
            .store
            .node_by_id(node_id)
            .await?
            .ok_or(AuthzError::Unauthenticated)?;
        Ok(node_to_proto(&node))
    }

    pub(crate) async fn check_tokens(&self, token_ids: Vec<String>) -> Result<Vec<String>> {
        if token_ids.len() > MAX_CHECK_TOKENS {
            return Err(AuthzError::InvalidArgument(format!(
                "at most {MAX_CHECK_TOKENS} token ids per call"
            )));
        }
        let mut seen = HashSet::new();
        let unique: Vec<String> = token_ids
            .into_iter()
            .filter(|id| seen.insert(id.clone()))
            .collect();
        let valid = self.store.valid_node_tokens(&unique, now_millis()).await?;
        Ok(unique
            .into_iter()
            .filter(|id| !valid.contains(id))
            .collect())
    }

    pub(crate) async fn list_nodes(&self, user_id: Option<&str>) -> Result<Vec<pb::Node>> {
        let nodes = self.store.list_nodes(user_id).await?;
        Ok(nodes.iter().map(node_to_proto).collect())
    }
}
