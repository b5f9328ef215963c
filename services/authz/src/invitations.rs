//! Invitations: no public sign-up. An admin creates a single-use, expiring
//! code; the invitee opens `/join/<code>` and picks a password (and a
//! username unless the invitation fixes one).

use std::time::Duration;

use phirepass_proto::authz as pb;
use phirepass_store::{AcceptOutcome, InvitationRow, UserRow, new_id, now_millis};

use crate::accounts::{Accounts, millis};
use crate::actor::{Actor, current_actor};
use crate::codes;
use crate::error::{AuthzError, Result};
use crate::limiter::attempt_key;
use crate::validate;

const DEFAULT_TTL: Duration = Duration::from_secs(7 * 24 * 3600);
const MAX_TTL: Duration = Duration::from_secs(30 * 24 * 3600);
const MIN_TTL: Duration = Duration::from_secs(1);
/// The one answer for a code that cannot be used, whatever the reason.
const NOT_USABLE: AuthzError = AuthzError::NotFound("invitation");
const CODE_KIND: &str = "invite";
/// How many sources' worth of wrong codes all sources together may try per
/// window before every inspection is refused.
const GLOBAL_CEILING: u64 = 20;

fn to_proto(row: &InvitationRow, now: i64) -> pb::Invitation {
    pb::Invitation {
        id: row.id.clone(),
        username: row.username.clone(),
        admin: row.admin,
        created_by: row.created_by.clone(),
        created_at: row.created_at,
        expires_at: row.expires_at,
        state: row.state(now).to_owned(),
        used_by: row.used_by.clone(),
    }
}

fn ttl(secs: Option<u64>) -> Result<Duration> {
    let ttl = secs.map_or(DEFAULT_TTL, Duration::from_secs);
    if (MIN_TTL..=MAX_TTL).contains(&ttl) {
        Ok(ttl)
    } else {
        Err(AuthzError::InvalidArgument(format!(
            "ttl_secs must be between {} and {}",
            MIN_TTL.as_secs(),
            MAX_TTL.as_secs()
        )))
    }
}

impl Accounts {
    /// The creator to record: an API token's user; for the service token the
    /// request's `created_by` (a username or user id, which must be an
    /// admin), or "service" when empty.
    async fn invitation_creator(&self, created_by: &str) -> Result<String> {
        if let Actor::User { username, .. } = current_actor() {
            return Ok(username);
        }
        if created_by.is_empty() {
            return Ok("service".to_owned());
        }
        let user = match self.store.user_by_username(created_by).await? {
            Some(user) => Some(user),
            None => self.store.user_by_id(created_by).await?,
        };
        match user {
            Some(user) if user.admin && !user.disabled => Ok(user.username),
            Some(user) => {
                tracing::warn!(user_id = %user.id, "invitation refused: creator is not an admin");
                Err(AuthzError::PermissionDenied)
            }
            None => Err(AuthzError::NotFound("user")),
        }
    }

    pub(crate) async fn create_invitation(
        &self,
        req: pb::CreateInvitationRequest,
    ) -> Result<pb::CreateInvitationResponse> {
        let username = req.username.unwrap_or_default();
        if !username.is_empty() {
            validate::username(&username)?;
            if self.store.user_by_username(&username).await?.is_some() {
                return Err(AuthzError::AlreadyExists("user"));
            }
        }
        let ttl = ttl(req.ttl_secs)?;
        let created_by = self.invitation_creator(&req.created_by).await?;
        let now = now_millis();
        let code = codes::new_url_secret();
        let hash = codes::url_secret_hash(CODE_KIND, &code)
            .ok_or_else(|| AuthzError::Hash("invitation code does not parse".into()))?;
        let row = InvitationRow {
            id: new_id(),
            username,
            admin: req.admin,
            created_by,
            created_at: now,
            expires_at: now.saturating_add(millis(ttl)),
            used_at: None,
            used_by: None,
            revoked_at: None,
        };
        self.store.insert_invitation(&row, &hash).await?;
        tracing::info!(invitation_id = %row.id, created_by = %row.created_by, admin = row.admin, "invitation created");
        let admin = if row.admin { "true" } else { "false" };
        self.audit
            .change(
                "invitation.create",
                &[
                    ("invitation_id", &row.id),
                    ("username", &row.username),
                    ("admin", admin),
                ],
            )
            .await;
        Ok(pb::CreateInvitationResponse {
            invitation: Some(to_proto(&row, now)),
            code,
        })
    }

    pub(crate) async fn list_invitations(&self) -> Result<pb::ListInvitationsResponse> {
        let now = now_millis();
        let rows = self.store.list_invitations().await?;
        Ok(pb::ListInvitationsResponse {
            invitations: rows.iter().map(|r| to_proto(r, now)).collect(),
        })
    }

    pub(crate) async fn revoke_invitation(
        &self,
        req: pb::RevokeInvitationRequest,
    ) -> Result<pb::RevokeInvitationResponse> {
        if !self.store.revoke_invitation(&req.id, now_millis()).await? {
            return Err(AuthzError::NotFound("invitation"));
        }
        tracing::info!(invitation_id = %req.id, "invitation revoked");
        self.audit
            .change("invitation.revoke", &[("invitation_id", &req.id)])
            .await;
        Ok(pb::RevokeInvitationResponse {})
    }

    /// The pending invitation behind `code`; every other case is the one
    /// NOT_FOUND, counted per client IP (one stranger's guesses lock out only
    /// their own address) and in one global ceiling, [`GLOBAL_CEILING`] times
    /// higher, against guessing spread over many addresses.
    async fn usable_invitation(&self, code: &str, ip: Option<&str>) -> Result<InvitationRow> {
        let ip_key = attempt_key("invite-fail", ip);
        let all_key = attempt_key("invite-fail-all", None);
        let limits = self.limiter.limits();
        let ceiling = limits.max_failures_per_ip.saturating_mul(GLOBAL_CEILING);
        if self
            .limiter
            .reached(&ip_key, limits.max_failures_per_ip)
            .await
            || self.limiter.reached(&all_key, ceiling).await
        {
            tracing::warn!(client_ip = ?ip, "invitation refused: too many unusable codes");
            return Err(AuthzError::RateLimited);
        }
        let found = match codes::url_secret_hash(CODE_KIND, code) {
            Some(hash) => self.store.invitation_by_code_hash(&hash).await?,
            None => None,
        };
        match found {
            Some(row) if row.state(now_millis()) == "pending" => Ok(row),
            other => {
                self.limiter.bump(&ip_key, limits.window).await;
                self.limiter.bump(&all_key, limits.window).await;
                let state = other.as_ref().map(|r| r.state(now_millis()));
                tracing::warn!(?state, "invitation code not usable");
                Err(NOT_USABLE)
            }
        }
    }

    pub(crate) async fn inspect_invitation(
        &self,
        req: pb::InspectInvitationRequest,
    ) -> Result<pb::Invitation> {
        let row = self
            .usable_invitation(&req.code, req.client_ip.as_deref())
            .await?;
        Ok(to_proto(&row, now_millis()))
    }

    pub(crate) async fn accept_invitation(
        &self,
        req: pb::AcceptInvitationRequest,
    ) -> Result<pb::LoginResponse> {
        let invitation = self
            .usable_invitation(&req.code, req.client_ip.as_deref())
            .await?;
        let username = match (invitation.username.as_str(), req.username.as_str()) {
            ("", chosen) => chosen.to_owned(),
            (fixed, chosen) if chosen.is_empty() || chosen == fixed => fixed.to_owned(),
            _ => {
                return Err(AuthzError::InvalidArgument(
                    "this invitation is for another username".into(),
                ));
            }
        };
        validate::username(&username)?;
        validate::password(&req.password)?;
        let user = UserRow {
            id: new_id(),
            username,
            password_hash: self.hasher.hash(req.password).await?,
            disabled: false,
            admin: invitation.admin,
            created_at: now_millis(),
        };
        // Hashed with the same tag as `usable_invitation` looked it up by.
        let hash = codes::url_secret_hash(CODE_KIND, &req.code).ok_or(NOT_USABLE)?;
        let accepted = match self
            .store
            .accept_invitation(&hash, &user, now_millis())
            .await?
        {
            AcceptOutcome::Accepted(invitation) => invitation,
            AcceptOutcome::NotUsable => return Err(NOT_USABLE),
            AcceptOutcome::UsernameTaken => return Err(AuthzError::AlreadyExists("user")),
        };
        let user = UserRow {
            admin: accepted.admin,
            ..user
        };
        tracing::info!(invitation_id = %accepted.id, user_id = %user.id, username = %user.username, "invitation accepted");
        self.audit
            .change(
                "invitation.accept",
                &[
                    ("invitation_id", &accepted.id),
                    ("username", &user.username),
                ],
            )
            .await;
        self.new_session(&user).await
    }
}
