//! First run: while no user exists, a one-time setup code (printed by authz
//! at start) lets one person create the first user, an admin.

use std::time::Duration;

use phirepass_proto::authz as pb;
use phirepass_store::{SetupOutcome, Store, UserRow, new_id, now_millis};

use crate::accounts::{Accounts, millis};
use crate::codes;
use crate::crypto;
use crate::error::{AuthzError, Result};
use crate::limiter::attempt_key;
use crate::validate;

/// How long a setup code stays valid.
pub const SETUP_CODE_TTL: Duration = Duration::from_secs(24 * 3600);

/// If no user exists yet, creates a new setup code, stores its hash, logs it
/// once at WARN (the one secret authz ever logs: the operator must see it)
/// and returns it. `None` once the instance has a user.
///
/// Only the newest code is valid: every earlier one is dropped first, so the
/// code printed by the last start is the one to type (an older code from a
/// scrolled-away console or an earlier run is refused as wrong).
///
/// [`crate::serve`] calls this at start unless
/// `AuthzConfig::issue_setup_code` is off; `phirepass dev` turns that off
/// and calls it itself to print the code in its banner.
#[tracing::instrument(name = "authz.issue_setup_code", skip_all)]
pub async fn issue_setup_code(store: &Store) -> Result<Option<String>> {
    let now = now_millis();
    if store.count_users().await? > 0 {
        store.delete_expired_setup_codes(now).await?;
        return Ok(None);
    }
    // Every stored code counts as expired from now on: only the one issued below is valid.
    store.delete_expired_setup_codes(i64::MAX).await?;
    let code = codes::new_setup_code();
    let Some(hash) = codes::setup_code_hash(&code) else {
        return Err(AuthzError::Hash("setup code does not parse".into()));
    };
    store
        .insert_setup_code(&hash, now, now.saturating_add(millis(SETUP_CODE_TTL)))
        .await?;
    tracing::warn!("first run: open /setup and enter setup code {code} (valid for 24 hours)");
    Ok(Some(code))
}

impl Accounts {
    pub(crate) async fn setup_status(&self) -> Result<pb::SetupStatusResponse> {
        Ok(pb::SetupStatusResponse {
            needs_setup: self.store.count_users().await? == 0,
        })
    }

    /// Constant-time comparison against every live code (there are few:
    /// one per authz start).
    async fn setup_code_matches(&self, hash: &str) -> Result<bool> {
        let live = self.store.live_setup_code_hashes(now_millis()).await?;
        Ok(live.iter().fold(false, |found, stored| {
            found | crypto::hashes_equal(stored, hash)
        }))
    }

    pub(crate) async fn complete_setup(
        &self,
        req: pb::CompleteSetupRequest,
    ) -> Result<pb::LoginResponse> {
        let ip_key = attempt_key("setup-fail", req.client_ip.as_deref());
        let limits = self.limiter.limits();
        if self
            .limiter
            .reached(&ip_key, limits.max_failures_per_ip)
            .await
        {
            tracing::warn!("setup refused: too many wrong codes");
            return Err(AuthzError::RateLimited);
        }
        if self.store.count_users().await? > 0 {
            return Err(AuthzError::FailedPrecondition("setup is already complete"));
        }
        let hash = codes::setup_code_hash(&req.setup_code);
        let matches = match &hash {
            Some(hash) => self.setup_code_matches(hash).await?,
            None => false,
        };
        let Some(hash) = hash.filter(|_| matches) else {
            self.limiter.bump(&ip_key, limits.window).await;
            tracing::warn!(client_ip = ?req.client_ip, "setup refused: wrong setup code");
            return Err(AuthzError::PermissionDenied);
        };
        validate::username(&req.username)?;
        validate::password(&req.password)?;
        let user = UserRow {
            id: new_id(),
            username: req.username,
            password_hash: self.hasher.hash(req.password).await?,
            disabled: false,
            admin: true,
            created_at: now_millis(),
        };
        match self
            .store
            .complete_setup(&hash, &user, now_millis())
            .await?
        {
            SetupOutcome::Created => {}
            SetupOutcome::UsersExist => {
                return Err(AuthzError::FailedPrecondition("setup is already complete"));
            }
            // Gone since the check: used by a concurrent setup (which took
            // every code with it), or expired.
            SetupOutcome::UnknownCode => {
                return Err(if self.store.count_users().await? > 0 {
                    AuthzError::FailedPrecondition("setup is already complete")
                } else {
                    AuthzError::PermissionDenied
                });
            }
        }
        tracing::info!(user_id = %user.id, username = %user.username, "first run: admin created");
        self.audit
            .change("setup.complete", &[("username", &user.username)])
            .await;
        self.new_session(&user).await
    }
}
