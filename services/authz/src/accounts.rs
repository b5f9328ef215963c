//! Users, login and sessions.

use std::time::Duration;

use phirepass_proto::authz as pb;
use phirepass_store::{SessionRow, Store, UserRow, new_id, now_millis};

use crate::audit::Audit;
use crate::crypto;
use crate::error::{AuthzError, Result};
use crate::hash_pool::HashPool;
use crate::limiter::LoginLimiter;
use crate::lookup;
use crate::validate;

pub(crate) fn user_to_proto(user: &UserRow) -> pb::User {
    pb::User {
        id: user.id.clone(),
        username: user.username.clone(),
        created_at: user.created_at,
        disabled: user.disabled,
        admin: user.admin,
    }
}

pub(crate) fn millis(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

/// A CreateUser request with a valid username and password.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct NewUser {
    pub(crate) username: String,
    pub(crate) password: String,
}

impl TryFrom<pb::CreateUserRequest> for NewUser {
    type Error = AuthzError;

    fn try_from(req: pb::CreateUserRequest) -> Result<Self> {
        validate::username(&req.username)?;
        validate::password(&req.password)?;
        Ok(Self {
            username: req.username,
            password: req.password,
        })
    }
}

/// Users, passwords, sessions, SSH keys, groups, first-run setup and
/// invitations: everything about who people are.
pub(crate) struct Accounts {
    pub(crate) store: Store,
    pub(crate) limiter: LoginLimiter,
    /// Every Argon2 hash and verification goes through it.
    pub(crate) hasher: HashPool,
    pub(crate) audit: Audit,
    pub(crate) session_ttl: Duration,
    /// Hash of a random password, verified against when a login names an
    /// unknown user so that case costs the same as a wrong password.
    pub(crate) dummy_hash: String,
}

impl Accounts {
    pub(crate) async fn create_user(&self, req: NewUser) -> Result<pb::User> {
        let user = UserRow {
            id: new_id(),
            username: req.username,
            password_hash: self.hasher.hash(req.password).await?,
            disabled: false,
            admin: false,
            created_at: now_millis(),
        };
        match self.store.insert_user(&user).await {
            Ok(()) => {}
            Err(phirepass_store::StoreError::Conflict) => {
                return Err(AuthzError::AlreadyExists("user"));
            }
            Err(e) => return Err(e.into()),
        }
        tracing::info!(user_id = %user.id, username = %user.username, "user created");
        self.audit
            .change("user.add", &[("username", &user.username)])
            .await;
        Ok(user_to_proto(&user))
    }

    pub(crate) async fn set_user_disabled(
        &self,
        req: pb::SetUserDisabledRequest,
    ) -> Result<pb::User> {
        let user = self
            .store
            .set_user_disabled(&req.username, req.disabled)
            .await?
            .ok_or(AuthzError::NotFound("user"))?;
        tracing::info!(user_id = %user.id, disabled = user.disabled, "user disabled flag set");
        let action = if user.disabled {
            "user.disable"
        } else {
            "user.enable"
        };
        self.audit
            .change(action, &[("username", &user.username)])
            .await;
        Ok(user_to_proto(&user))
    }

    pub(crate) async fn set_user_admin(&self, req: pb::SetUserAdminRequest) -> Result<pb::User> {
        let user = self
            .store
            .set_user_admin(&req.username, req.admin)
            .await?
            .ok_or(AuthzError::NotFound("user"))?;
        tracing::info!(user_id = %user.id, admin = user.admin, "user admin flag set");
        let admin = if user.admin { "true" } else { "false" };
        self.audit
            .change(
                "user.set_admin",
                &[("username", &user.username), ("admin", admin)],
            )
            .await;
        Ok(user_to_proto(&user))
    }

    pub(crate) async fn remove_user(
        &self,
        req: pb::RemoveUserRequest,
    ) -> Result<pb::RemoveUserResponse> {
        if !self.store.remove_user(&req.username).await? {
            return Err(AuthzError::NotFound("user"));
        }
        tracing::info!(username = %req.username, "user removed");
        self.audit
            .change("user.remove", &[("username", &req.username)])
            .await;
        Ok(pb::RemoveUserResponse {})
    }

    /// New password; every login session of the user ends.
    pub(crate) async fn set_password(&self, req: pb::SetPasswordRequest) -> Result<pb::User> {
        validate::password(&req.password)?;
        // Hash only for a user that exists, but answer NOT_FOUND either way
        // only after the lookup: this is an admin call, not a login.
        lookup::user_named(&self.store, &req.username).await?;
        let hash = self.hasher.hash(req.password).await?;
        let user = self
            .store
            .set_password_hash(&req.username, &hash)
            .await?
            .ok_or(AuthzError::NotFound("user"))?;
        tracing::info!(user_id = %user.id, "password changed, sessions ended");
        self.audit
            .change("user.passwd", &[("username", &user.username)])
            .await;
        Ok(user_to_proto(&user))
    }

    /// Same work and same answer whether the user is unknown, disabled or
    /// the password wrong: an unknown user is checked against a dummy hash.
    /// The attempt is counted and the limits checked before hashing
    /// ([`crate::login_guard`]): `Err(RateLimited)` when its source must
    /// wait, without spending Argon2; `Err(Busy)` when the hashing pool is
    /// full.
    pub(crate) async fn check_password(
        &self,
        username: &str,
        password: String,
        ip: Option<&str>,
    ) -> Result<UserRow> {
        let admission = match self.limiter.admit_password(username, ip).await {
            Ok(admission) => admission,
            Err(refusal) => {
                tracing::warn!(username, client_ip = ?ip, why = refusal.why(), "password refused before hashing");
                return Err(AuthzError::RateLimited);
            }
        };
        let user = if validate::username(username).is_ok() {
            self.store.user_by_username(username).await?
        } else {
            None
        };
        let hash = user
            .as_ref()
            .map_or_else(|| self.dummy_hash.clone(), |u| u.password_hash.clone());
        let password_ok = self.hasher.verify(password, hash).await?;

        match user {
            Some(user) if password_ok && !user.disabled => {
                self.limiter.password_ok(&admission).await;
                Ok(user)
            }
            Some(user) if password_ok => {
                tracing::warn!(user_id = %user.id, "password refused: user disabled");
                Err(AuthzError::Unauthenticated)
            }
            _ => {
                tracing::warn!(username, client_ip = ?ip, known_source = admission.known, "password check failed");
                Err(AuthzError::Unauthenticated)
            }
        }
    }

    pub(crate) async fn login(&self, req: pb::LoginRequest) -> Result<pb::LoginResponse> {
        let user = self
            .check_password(&req.username, req.password, req.client_ip.as_deref())
            .await?;
        let response = self.new_session(&user).await?;
        tracing::info!(user_id = %user.id, "login succeeded");
        Ok(response)
    }

    /// For the SSH edge: Login's checks without a session. Every failure,
    /// a lockout included, is the one UNAUTHENTICATED answer: the edge has
    /// nothing more useful to tell an SSH client.
    pub(crate) async fn verify_password(&self, req: pb::VerifyPasswordRequest) -> Result<pb::User> {
        match self
            .check_password(&req.username, req.password, req.client_ip.as_deref())
            .await
        {
            Ok(user) => {
                tracing::info!(user_id = %user.id, "password verified");
                Ok(user_to_proto(&user))
            }
            Err(AuthzError::RateLimited) => Err(AuthzError::Unauthenticated),
            Err(e) => Err(e),
        }
    }

    /// A new login session for `user`.
    pub(crate) async fn new_session(&self, user: &UserRow) -> Result<pb::LoginResponse> {
        let token = crypto::new_session_token();
        let now = now_millis();
        let session = SessionRow {
            id: new_id(),
            token_hash: crypto::sha256_hex(&token),
            user_id: user.id.clone(),
            created_at: now,
            expires_at: now.saturating_add(millis(self.session_ttl)),
        };
        self.store.insert_session(&session).await?;
        tracing::debug!(user_id = %user.id, session_id = %session.id, "session created");
        Ok(pb::LoginResponse {
            session_token: token,
            user: Some(user_to_proto(user)),
            expires_at: session.expires_at,
        })
    }

    pub(crate) async fn verify_session(&self, token: &str) -> Result<pb::User> {
        if token.is_empty() {
            return Err(AuthzError::Unauthenticated);
        }
        let found = self
            .store
            .live_session(&crypto::sha256_hex(token), now_millis())
            .await?;
        match found {
            // Failed logins never end a session: a stranger's guesses
            // must not log anyone out.
            Some((_, user)) if !user.disabled => Ok(user_to_proto(&user)),
            _ => Err(AuthzError::Unauthenticated),
        }
    }

    /// Idempotent: logging out an unknown or expired session succeeds.
    pub(crate) async fn logout(&self, token: &str) -> Result<()> {
        if !token.is_empty() {
            let removed = self
                .store
                .delete_session(&crypto::sha256_hex(token))
                .await?;
            tracing::info!(removed, "logout");
        }
        Ok(())
    }
}
