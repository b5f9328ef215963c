//! `phirepass dev`'s operator credential. With the shared service token gone, the admin CLI
//! needs an API token even before any person has an account: dev keeps an enabled admin
//! account, [`DEV_OPERATOR`], whose password nobody knows (a random secret, hashed and
//! dropped), and an admin-scope API token for it in its data directory (0600), which the CLI
//! reads when given no other credential. Production deployments never create it: their first
//! admin comes from the setup code, and admin clients use that admin's API tokens.

use std::sync::Arc;

use phirepass_bus::EventLog;
use phirepass_store::{Store, UserRow, new_id, now_millis};

use crate::api_tokens::SCOPE_ADMIN;
use crate::audit::Audit;
use crate::crypto;
use crate::error::{AuthzError, Result};
use crate::hash_pool::{HashLimits, HashPool};
use crate::nodes::Tokens;

/// The account that owns dev's operator token.
pub const DEV_OPERATOR: &str = phirepass_store::SERVICE_ACCOUNT;

/// Ensures the operator account and a working admin API token for it. `kept` is the token
/// dev stored earlier: while it still verifies (admin scope, enabled admin owner), `Ok(None)`;
/// otherwise a new token, to store in its place.
pub async fn dev_operator_token(
    store: &Store,
    events: Arc<dyn EventLog>,
    audit_subject: String,
    kept: Option<&str>,
) -> Result<Option<String>> {
    let tokens = Tokens {
        store: store.clone(),
        audit: Audit::new(events, audit_subject),
    };
    if let Some(kept) = kept
        && let Ok(caller) = tokens.api_caller(kept).await
        && caller.user.admin
        && caller.has_scope(SCOPE_ADMIN)
    {
        return Ok(None);
    }
    let user = match store.user_by_username(DEV_OPERATOR).await? {
        Some(user) if user.admin && !user.disabled => user,
        Some(_) => {
            return Err(AuthzError::FailedPrecondition(
                "the dev-operator account is disabled or no longer an admin",
            ));
        }
        None => {
            // A password nobody ever sees: the account exists for its API token only.
            let hasher = HashPool::new(HashLimits::default());
            let user = UserRow {
                id: new_id(),
                username: DEV_OPERATOR.to_owned(),
                password_hash: hasher.hash(crypto::new_session_token()).await?,
                disabled: false,
                admin: true,
                created_at: now_millis(),
            };
            store.insert_user(&user).await?;
            tracing::info!(user_id = %user.id, "dev operator account created");
            user
        }
    };
    let minted = tokens
        .mint_api_token(
            &user,
            "phirepass dev operator".to_owned(),
            vec![SCOPE_ADMIN.to_owned()],
            None,
        )
        .await?;
    Ok(Some(minted.secret))
}
