//! `invitations`: single-use, expiring codes that let one person create an
//! account (there is no public sign-up). Stored by code hash.

use sqlx::Row;
use sqlx::any::AnyRow;

use crate::{Store, StoreError, UserRow};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InvitationRow {
    pub id: String,
    /// Fixed username, or empty to let the invitee choose.
    pub username: String,
    pub admin: bool,
    pub created_by: String,
    pub created_at: i64,
    pub expires_at: i64,
    pub used_at: Option<i64>,
    /// Username of the account created with it.
    pub used_by: Option<String>,
    pub revoked_at: Option<i64>,
}

impl InvitationRow {
    /// "pending", "used", "revoked" or "expired" at `now`.
    pub fn state(&self, now: i64) -> &'static str {
        if self.used_at.is_some() {
            "used"
        } else if self.revoked_at.is_some() {
            "revoked"
        } else if self.expires_at <= now {
            "expired"
        } else {
            "pending"
        }
    }
}

/// What [`Store::accept_invitation`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AcceptOutcome {
    /// The user exists and the invitation is used up.
    Accepted(InvitationRow),
    /// Unknown, used, revoked, expired, or fixed to another username.
    NotUsable,
    /// The username is taken; the invitation stays usable.
    UsernameTaken,
}

const COLUMNS: &str =
    "id, username, admin, created_by, created_at, expires_at, used_at, used_by, revoked_at";

fn from_row(row: &AnyRow) -> Result<InvitationRow, sqlx::Error> {
    Ok(InvitationRow {
        id: row.try_get("id")?,
        username: row.try_get("username")?,
        admin: crate::users::flag(row, "admin")?,
        created_by: row.try_get("created_by")?,
        created_at: row.try_get("created_at")?,
        expires_at: row.try_get("expires_at")?,
        used_at: row.try_get("used_at")?,
        used_by: row.try_get("used_by")?,
        revoked_at: row.try_get("revoked_at")?,
    })
}

impl Store {
    #[tracing::instrument(skip(self, invitation, code_hash), fields(invitation_id = %invitation.id))]
    pub async fn insert_invitation(
        &self,
        invitation: &InvitationRow,
        code_hash: &str,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO invitations (id, code_hash, username, admin, created_by, created_at, expires_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind(&invitation.id)
        .bind(code_hash)
        .bind(&invitation.username)
        .bind(invitation.admin)
        .bind(&invitation.created_by)
        .bind(invitation.created_at)
        .bind(invitation.expires_at)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Every invitation, newest first.
    #[tracing::instrument(skip(self))]
    pub async fn list_invitations(&self) -> Result<Vec<InvitationRow>, StoreError> {
        let sql = format!("SELECT {COLUMNS} FROM invitations ORDER BY created_at DESC, id");
        let rows = sqlx::query(&sql).fetch_all(&self.pool).await?;
        Ok(rows.iter().map(from_row).collect::<Result<_, _>>()?)
    }

    #[tracing::instrument(skip(self, code_hash))]
    pub async fn invitation_by_code_hash(
        &self,
        code_hash: &str,
    ) -> Result<Option<InvitationRow>, StoreError> {
        let sql = format!("SELECT {COLUMNS} FROM invitations WHERE code_hash = $1");
        let row = sqlx::query(&sql)
            .bind(code_hash)
            .fetch_optional(&self.pool)
            .await?;
        Ok(row.as_ref().map(from_row).transpose()?)
    }

    /// Marks an invitation revoked (keeping the first time); `false` if no
    /// such invitation exists.
    #[tracing::instrument(skip(self))]
    pub async fn revoke_invitation(&self, id: &str, now: i64) -> Result<bool, StoreError> {
        let done = sqlx::query(
            "UPDATE invitations SET revoked_at = COALESCE(revoked_at, $1) WHERE id = $2",
        )
        .bind(now)
        .bind(id)
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() > 0)
    }

    /// Uses the invitation and creates `user` in one transaction; `admin`
    /// comes from the invitation. The conditional UPDATE is the claim: of
    /// two concurrent accepts only one changes the row.
    #[tracing::instrument(skip(self, code_hash, user), fields(user_id = %user.id, username = %user.username))]
    pub async fn accept_invitation(
        &self,
        code_hash: &str,
        user: &UserRow,
        now: i64,
    ) -> Result<AcceptOutcome, StoreError> {
        let mut tx = self.pool.begin().await?;
        let claimed = sqlx::query(
            "UPDATE invitations SET used_at = $1, used_by = $2 WHERE code_hash = $3 \
             AND used_at IS NULL AND revoked_at IS NULL AND expires_at > $4",
        )
        .bind(now)
        .bind(&user.username)
        .bind(code_hash)
        .bind(now)
        .execute(&mut *tx)
        .await?;
        if claimed.rows_affected() == 0 {
            return Ok(AcceptOutcome::NotUsable);
        }
        let sql = format!("SELECT {COLUMNS} FROM invitations WHERE code_hash = $1");
        let invitation = from_row(
            &sqlx::query(&sql)
                .bind(code_hash)
                .fetch_one(&mut *tx)
                .await?,
        )?;
        if !invitation.username.is_empty() && invitation.username != user.username {
            return Ok(AcceptOutcome::NotUsable);
        }
        let user = UserRow {
            admin: invitation.admin,
            ..user.clone()
        };
        match crate::users::insert_user_in(&mut tx, &user).await {
            Ok(()) => {}
            Err(StoreError::Conflict) => return Ok(AcceptOutcome::UsernameTaken),
            Err(e) => return Err(e),
        }
        tx.commit().await?;
        Ok(AcceptOutcome::Accepted(invitation))
    }
}
