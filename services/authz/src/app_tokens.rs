//! App tokens (design note 004): one node's port through the HTTP proxy.
//!
//! `pp_app_<43 base64url chars>` (256 bits). Only the SHA-256 is stored, as
//! `apptoken:<hex>` -> JSON scope in the presence store with the token's
//! TTL, so any replica verifies it. The hash is the lookup key: no secret
//! is ever compared byte by byte. Every verify re-checks the grant through
//! Authorize (and its cache, which any admin change invalidates), so a
//! revoke stops the next request.

use std::sync::Arc;
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use phirepass_presence::Presence;
use phirepass_proto::authz as pb;
use phirepass_store::{Store, TargetKind, now_millis};
use serde::{Deserialize, Serialize};

use crate::accounts::millis;
use crate::authorize::Decisions;
use crate::crypto::sha256_hex;
use crate::decision_cache::CachedDecision;
use crate::error::{AuthzError, Result};
use crate::requests::{AccessQuery, Subject};

const APP_PREFIX: &str = "pp_app_";
const APP_SECRET_CHARS: usize = 43;
const KEY_PREFIX: &str = "apptoken:";
/// The action app tokens are authorized for.
const ACTION: &str = "http";
/// Refresh when less than this remains (or a third of the TTL, if smaller).
const REFRESH_WINDOW: Duration = Duration::from_secs(300);

/// What a token may reach, as stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct Scope {
    user_id: String,
    node_id: String,
    node_name: String,
    port: u32,
    expires_at: i64,
}

fn key_of(token: &str) -> String {
    format!("{KEY_PREFIX}{}", sha256_hex(token))
}

fn new_app_token() -> String {
    format!(
        "{APP_PREFIX}{}",
        URL_SAFE_NO_PAD.encode(rand::random::<[u8; 32]>())
    )
}

/// Shape check before any lookup: malformed tokens cost nothing.
fn well_formed(token: &str) -> bool {
    token.strip_prefix(APP_PREFIX).is_some_and(|secret| {
        secret.len() == APP_SECRET_CHARS
            && secret
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    })
}

fn check_port(port: u32) -> Result<()> {
    if (1..=65_535).contains(&port) {
        Ok(())
    } else {
        Err(AuthzError::InvalidArgument("port must be 1-65535".into()))
    }
}

/// App tokens in presence; every verify asks [`Decisions`] again.
pub(crate) struct AppTokens {
    pub(crate) store: Store,
    pub(crate) presence: Arc<dyn Presence>,
    pub(crate) decisions: Decisions,
    pub(crate) app_token_ttl: Duration,
}

impl AppTokens {
    fn refresh_window(&self) -> Duration {
        REFRESH_WINDOW.min(self.app_token_ttl / 3)
    }

    /// The node `node` names (by name or id), NOT_FOUND otherwise.
    async fn app_node(&self, node: &str) -> Result<(String, String)> {
        match self.store.target_by_name(node).await? {
            Some(t) if t.kind == TargetKind::Node => Ok((t.id, t.name)),
            _ => Err(AuthzError::NotFound("node")),
        }
    }

    /// Authorize (with its cache) for action "http"; the response on allow.
    /// Authorize (with its cache) for action "http"; the decision on allow.
    async fn authorize_app(
        &self,
        user_id: &str,
        node_id: &str,
        client_ip: Option<String>,
    ) -> Result<CachedDecision> {
        let query = AccessQuery {
            subject: Subject::Id(user_id.to_owned()),
            target: node_id.to_owned(),
            action: ACTION.to_owned(),
            client_ip,
            login: None,
            configured_login: String::new(),
        };
        let d = self.decisions.authorize(&query).await?;
        if d.allowed {
            Ok(d)
        } else {
            Err(AuthzError::PermissionDenied)
        }
    }

    async fn mint_app_token(&self, scope_of: Scope) -> Result<pb::AppToken> {
        let token = new_app_token();
        let scope = Scope {
            expires_at: now_millis().saturating_add(millis(self.app_token_ttl)),
            ..scope_of
        };
        let json = serde_json::to_string(&scope)?;
        self.presence
            .put(&key_of(&token), &json, self.app_token_ttl)
            .await?;
        Ok(pb::AppToken {
            token,
            node_id: scope.node_id,
            node_name: scope.node_name,
            port: scope.port,
            expires_at: scope.expires_at,
        })
    }

    pub(crate) async fn create_app_token(
        &self,
        req: pb::CreateAppTokenRequest,
    ) -> Result<pb::AppToken> {
        if req.user_id.is_empty() {
            return Err(AuthzError::InvalidArgument("user_id is required".into()));
        }
        check_port(req.port)?;
        let (node_id, node_name) = self.app_node(&req.node).await?;
        self.authorize_app(&req.user_id, &node_id, req.client_ip)
            .await?;
        let token = self
            .mint_app_token(Scope {
                user_id: req.user_id.clone(),
                node_id,
                node_name,
                port: req.port,
                expires_at: 0,
            })
            .await?;
        tracing::info!(user_id = %req.user_id, node_id = %token.node_id, port = token.port, "app token created");
        Ok(token)
    }

    pub(crate) async fn verify_app_token(
        &self,
        req: pb::VerifyAppTokenRequest,
    ) -> Result<pb::VerifyAppTokenResponse> {
        if !well_formed(&req.token) {
            return Err(AuthzError::Unauthenticated);
        }
        let Some(raw) = self.presence.get(&key_of(&req.token)).await? else {
            tracing::info!(node = %req.node, port = req.port, "unknown or expired app token");
            return Err(AuthzError::Unauthenticated);
        };
        let scope: Scope = serde_json::from_str(&raw).map_err(|_| AuthzError::Unauthenticated)?;
        let now = now_millis();
        if scope.expires_at <= now
            || scope.port != req.port
            || !self.names_node(&scope, &req.node).await?
        {
            tracing::warn!(user_id = %scope.user_id, node_id = %scope.node_id, node = %req.node, port = req.port, "app token out of scope or expired");
            return Err(AuthzError::Unauthenticated);
        }
        let d = self
            .authorize_app(&scope.user_id, &scope.node_id, req.client_ip)
            .await?;
        let refreshed = if scope.expires_at - now < millis(self.refresh_window()) {
            Some(self.mint_app_token(scope.clone()).await?)
        } else {
            None
        };
        Ok(pb::VerifyAppTokenResponse {
            user_id: scope.user_id,
            username: d.username.unwrap_or_default(),
            node_id: scope.node_id,
            expires_at: scope.expires_at,
            refreshed,
        })
    }

    /// Whether the request's `node` (name or id) is the token's node.
    async fn names_node(&self, scope: &Scope, node: &str) -> Result<bool> {
        if node.is_empty() {
            return Ok(false);
        }
        if node == scope.node_id || node == scope.node_name {
            return Ok(true);
        }
        Ok(match self.store.target_by_name(node).await? {
            Some(t) => t.kind == TargetKind::Node && t.id == scope.node_id,
            None => false,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_well_formed() {
        let token = new_app_token();
        assert_eq!(token.len(), APP_PREFIX.len() + APP_SECRET_CHARS);
        assert!(well_formed(&token));
        assert!(!well_formed("pp_app_short"));
        assert!(!well_formed(&token.replace("pp_app_", "pp_api_")));
        assert_ne!(key_of(&token), key_of(&new_app_token()));
    }
}
