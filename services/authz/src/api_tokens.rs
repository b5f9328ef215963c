//! API tokens for admin clients (`pp_api_<token_id>_<secret>`, stored as id
//! + SHA-256 like node tokens) and the scopes they carry.

use phirepass_proto::authz as pb;
use phirepass_store::{NewApiToken, TOKEN_KIND_API, TokenInfo, UserRow, now_millis};

use crate::accounts::user_to_proto;
use crate::crypto;
use crate::error::{AuthzError, Result};
use crate::lookup;
use crate::nodes::{MintedToken, Tokens, expires_at};

/// May call every admin method.
pub const SCOPE_ADMIN: &str = "admin";
/// May call the List*/Count* methods.
pub const SCOPE_READ: &str = "read";

pub(crate) const MAX_NAME: usize = 64;

/// A verified API token and its owner.
#[derive(Debug)]
pub(crate) struct ApiCaller {
    pub(crate) user: UserRow,
    pub(crate) info: TokenInfo,
}

impl ApiCaller {
    pub(crate) fn has_scope(&self, scope: &str) -> bool {
        self.info.scopes.iter().any(|s| s == scope)
    }
}

/// A CreateApiToken request with its name and scopes checked; the scopes
/// sorted and without duplicates.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ApiTokenRequest {
    pub(crate) username: String,
    pub(crate) name: String,
    pub(crate) scopes: Vec<String>,
    /// Checked after the user is found, as it always was.
    pub(crate) expires_in_secs: Option<u64>,
}

impl TryFrom<pb::CreateApiTokenRequest> for ApiTokenRequest {
    type Error = AuthzError;

    fn try_from(req: pb::CreateApiTokenRequest) -> Result<Self> {
        if req.name.len() > MAX_NAME || req.name.chars().any(char::is_control) {
            return Err(AuthzError::InvalidArgument(format!(
                "name must be at most {MAX_NAME} printable characters"
            )));
        }
        let mut scopes = req.scopes;
        scopes.sort();
        scopes.dedup();
        if scopes.is_empty() || !scopes.iter().all(|s| s == SCOPE_ADMIN || s == SCOPE_READ) {
            return Err(AuthzError::InvalidArgument(
                "scopes must be one or more of \"admin\", \"read\"".into(),
            ));
        }
        Ok(Self {
            username: req.username,
            name: req.name,
            scopes,
            expires_in_secs: req.expires_in_secs,
        })
    }
}

impl Tokens {
    pub(crate) async fn create_api_token(
        &self,
        req: ApiTokenRequest,
    ) -> Result<pb::CreateApiTokenResponse> {
        let scopes = req.scopes;
        let user = lookup::user_named(&self.store, &req.username).await?;
        let expires_at = expires_at(now_millis(), req.expires_in_secs)?;
        let token = self
            .mint_api_token(&user, req.name, scopes.clone(), expires_at)
            .await?;
        Ok(pb::CreateApiTokenResponse {
            token: token.secret,
            token_id: token.token_id,
            scopes,
            expires_at,
        })
    }

    /// A new API token for `user` (CreateApiToken, and device activation of
    /// a CLI). `scopes` are already checked.
    pub(crate) async fn mint_api_token(
        &self,
        user: &UserRow,
        name: String,
        scopes: Vec<String>,
        expires_at: Option<i64>,
    ) -> Result<MintedToken> {
        if user.disabled {
            return Err(AuthzError::FailedPrecondition("user is disabled"));
        }
        let (token_id, secret) = crypto::new_api_token();
        self.store
            .insert_api_token(&NewApiToken {
                token_id: token_id.clone(),
                token_hash: crypto::sha256_hex(&secret),
                user_id: user.id.clone(),
                name,
                scopes: scopes.clone(),
                created_at: now_millis(),
                expires_at,
            })
            .await?;
        tracing::info!(user_id = %user.id, token_id = %token_id, scopes = ?scopes, "api token created");
        let scopes = scopes.join(" ");
        self.audit
            .change(
                "api_token.create",
                &[
                    ("username", &user.username),
                    ("token_id", &token_id),
                    ("scopes", &scopes),
                ],
            )
            .await;
        Ok(MintedToken { token_id, secret })
    }

    /// One answer for every failure: malformed, unknown, wrong secret,
    /// revoked, expired, a node token, or an owner disabled. Failed logins
    /// never refuse a token: a stranger's guesses must not cut anyone off.
    pub(crate) async fn api_caller(&self, token: &str) -> Result<ApiCaller> {
        let Some(token_id) = crypto::parse_api_token(token) else {
            return Err(AuthzError::Unauthenticated);
        };
        let Some(info) = self.store.token_info(token_id).await? else {
            return Err(AuthzError::Unauthenticated);
        };
        let hash_ok = crypto::hashes_equal(&crypto::sha256_hex(token), &info.token_hash);
        let live = info.kind == TOKEN_KIND_API
            && info.revoked_at.is_none()
            && info.expires_at.is_none_or(|at| at > now_millis())
            && !info.user_disabled;
        if !hash_ok || !live {
            tracing::warn!(token_id, hash_ok, "api token refused");
            return Err(AuthzError::Unauthenticated);
        }
        let user = self
            .store
            .user_by_id(&info.user_id)
            .await?
            .ok_or(AuthzError::Unauthenticated)?;
        Ok(ApiCaller { user, info })
    }

    pub(crate) async fn verify_api_token(
        &self,
        req: pb::VerifyApiTokenRequest,
    ) -> Result<pb::VerifyApiTokenResponse> {
        let caller = self.api_caller(&req.token).await?;
        Ok(pb::VerifyApiTokenResponse {
            user: Some(user_to_proto(&caller.user)),
            scopes: caller.info.scopes,
            token_id: caller.info.token_id,
            expires_at: caller.info.expires_at,
        })
    }
}
