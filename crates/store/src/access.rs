//! Groups, memberships and grants (principal user|group → target).

use sqlx::Row;
use sqlx::any::AnyRow;

use crate::targets::TargetKind;
use crate::users::UserRow;
use crate::{Store, StoreError};

/// Who a grant is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PrincipalKind {
    User,
    Group,
}

impl PrincipalKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::User => "user",
            Self::Group => "group",
        }
    }

    pub(crate) fn parse(s: &str) -> Result<Self, sqlx::Error> {
        match s {
            "user" => Ok(Self::User),
            "group" => Ok(Self::Group),
            other => Err(sqlx::Error::Decode(
                format!("unknown principal kind {other:?}").into(),
            )),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupRow {
    pub id: String,
    pub name: String,
    pub created_at: i64,
    pub member_count: u64,
}

/// A grant with its principal's and target's names resolved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GrantRow {
    pub id: String,
    pub principal_kind: PrincipalKind,
    pub principal_id: String,
    pub principal_name: String,
    pub target_kind: TargetKind,
    pub target_id: String,
    pub target_name: String,
    /// Accounts on the target this grant allows, in the order given; empty: the target's
    /// default account only.
    pub logins: Vec<String>,
    /// Commands this grant lets its principal run (names, or `*`); empty: none.
    pub commands: Vec<String>,
    pub created_at: i64,
}

/// Why a user may reach a target through grants.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GrantVia {
    User,
    Group(String),
}

const GROUP_SELECT: &str = "SELECT g.id, g.name, g.created_at, \
     (SELECT COUNT(*) FROM group_members m WHERE m.group_id = g.id) AS member_count \
     FROM user_groups g";

// Names are joined from whichever table the kinds point at.
const GRANT_SELECT: &str = "SELECT gr.id, gr.principal_kind, gr.principal_id, \
     COALESCE(u.username, g.name, '') AS principal_name, gr.target_kind, gr.target_id, \
     COALESCE(t.name, ng.name, '') AS target_name, gr.logins, gr.commands, gr.created_at \
     FROM grants gr \
     LEFT JOIN users u ON gr.principal_kind = 'user' AND u.id = gr.principal_id \
     LEFT JOIN user_groups g ON gr.principal_kind = 'group' AND g.id = gr.principal_id \
     LEFT JOIN target_names t ON t.kind = gr.target_kind AND t.target_id = gr.target_id \
     LEFT JOIN node_groups ng ON gr.target_kind = 'node_group' AND ng.id = gr.target_id";

fn group_from_row(row: &AnyRow) -> Result<GroupRow, sqlx::Error> {
    let count: i64 = row.try_get("member_count")?;
    Ok(GroupRow {
        id: row.try_get("id")?,
        name: row.try_get("name")?,
        created_at: row.try_get("created_at")?,
        member_count: u64::try_from(count).unwrap_or(0),
    })
}

fn grant_from_row(row: &AnyRow) -> Result<GrantRow, sqlx::Error> {
    let principal_kind: String = row.try_get("principal_kind")?;
    let target_kind: String = row.try_get("target_kind")?;
    Ok(GrantRow {
        id: row.try_get("id")?,
        principal_kind: PrincipalKind::parse(&principal_kind)?,
        principal_id: row.try_get("principal_id")?,
        principal_name: row.try_get("principal_name")?,
        target_kind: TargetKind::parse(&target_kind)?,
        target_id: row.try_get("target_id")?,
        target_name: row.try_get("target_name")?,
        logins: split_list(&row.try_get::<String, _>("logins")?),
        commands: split_list(&row.try_get::<String, _>("commands")?),
        created_at: row.try_get("created_at")?,
    })
}

/// Logins and commands are stored comma-separated (their names never hold a comma).
pub(crate) fn split_list(stored: &str) -> Vec<String> {
    stored
        .split(',')
        .filter(|l| !l.is_empty())
        .map(str::to_owned)
        .collect()
}

/// The logins every grant reaching one user gives on one target, strongest grant first
/// (a direct grant, then groups by name).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GrantLogins {
    pub via: GrantVia,
    /// Every listed login, strongest grant first, each once.
    pub listed: Vec<String>,
    /// Some grant lists no login: the target's default account is allowed too.
    pub default_allowed: bool,
}

impl Store {
    /// [`StoreError::Conflict`] if the name is taken.
    #[tracing::instrument(skip(self))]
    pub async fn insert_group(&self, id: &str, name: &str, now: i64) -> Result<(), StoreError> {
        sqlx::query("INSERT INTO user_groups (id, name, created_at) VALUES ($1, $2, $3)")
            .bind(id)
            .bind(name)
            .bind(now)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    #[tracing::instrument(skip(self))]
    pub async fn group_by_name(&self, name: &str) -> Result<Option<GroupRow>, StoreError> {
        let sql = format!("{GROUP_SELECT} WHERE g.name = $1");
        let row = sqlx::query(&sql)
            .bind(name)
            .fetch_optional(&self.pool)
            .await?;
        Ok(row.as_ref().map(group_from_row).transpose()?)
    }

    #[tracing::instrument(skip(self))]
    pub async fn list_groups(&self) -> Result<Vec<GroupRow>, StoreError> {
        let sql = format!("{GROUP_SELECT} ORDER BY g.name");
        let rows = sqlx::query(&sql).fetch_all(&self.pool).await?;
        Ok(rows.iter().map(group_from_row).collect::<Result<_, _>>()?)
    }

    /// Deletes a group with its memberships and grants; `false` if unknown.
    #[tracing::instrument(skip(self))]
    pub async fn remove_group(&self, name: &str) -> Result<bool, StoreError> {
        let mut tx = self.pool.begin().await?;
        let Some(row) = sqlx::query("SELECT id FROM user_groups WHERE name = $1")
            .bind(name)
            .fetch_optional(&mut *tx)
            .await?
        else {
            return Ok(false);
        };
        let id: String = row.try_get("id")?;
        for sql in [
            "DELETE FROM grants WHERE principal_kind = 'group' AND principal_id = $1",
            "DELETE FROM group_members WHERE group_id = $1",
            "DELETE FROM user_groups WHERE id = $1",
        ] {
            sqlx::query(sql).bind(&id).execute(&mut *tx).await?;
        }
        tx.commit().await?;
        Ok(true)
    }

    /// Idempotent.
    #[tracing::instrument(skip(self))]
    pub async fn add_group_member(
        &self,
        group_id: &str,
        user_id: &str,
        now: i64,
    ) -> Result<(), StoreError> {
        match sqlx::query(
            "INSERT INTO group_members (group_id, user_id, created_at) VALUES ($1, $2, $3)",
        )
        .bind(group_id)
        .bind(user_id)
        .bind(now)
        .execute(&self.pool)
        .await
        .map_err(StoreError::from)
        {
            Ok(_) | Err(StoreError::Conflict) => Ok(()),
            Err(e) => Err(e),
        }
    }

    /// `false` if the user was not a member.
    #[tracing::instrument(skip(self))]
    pub async fn remove_group_member(
        &self,
        group_id: &str,
        user_id: &str,
    ) -> Result<bool, StoreError> {
        let done = sqlx::query("DELETE FROM group_members WHERE group_id = $1 AND user_id = $2")
            .bind(group_id)
            .bind(user_id)
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected() > 0)
    }

    /// Members ordered by username.
    #[tracing::instrument(skip(self))]
    pub async fn group_members(&self, group_id: &str) -> Result<Vec<UserRow>, StoreError> {
        let rows = sqlx::query(
            "SELECT u.id, u.username, u.password_hash, u.disabled, u.admin, u.created_at \
             FROM group_members m JOIN users u ON u.id = m.user_id \
             WHERE m.group_id = $1 ORDER BY u.username",
        )
        .bind(group_id)
        .fetch_all(&self.pool)
        .await?;
        Ok(rows
            .iter()
            .map(crate::users::from_row)
            .collect::<Result<_, _>>()?)
    }

    /// Idempotent: granting twice returns the existing grant, with its logins and commands
    /// replaced by `logins` and `commands` (names must not contain a comma; the caller
    /// validates them).
    #[tracing::instrument(skip(self))]
    pub async fn insert_grant(
        &self,
        principal: (PrincipalKind, &str),
        target: (TargetKind, &str),
        logins: &[String],
        commands: &[String],
        now: i64,
    ) -> Result<GrantRow, StoreError> {
        let stored = logins.join(",");
        let stored_commands = commands.join(",");
        let inserted = sqlx::query(
            "INSERT INTO grants (id, principal_kind, principal_id, target_kind, target_id, logins, commands, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        )
        .bind(crate::new_id())
        .bind(principal.0.as_str())
        .bind(principal.1)
        .bind(target.0.as_str())
        .bind(target.1)
        .bind(&stored)
        .bind(&stored_commands)
        .bind(now)
        .execute(&self.pool)
        .await
        .map_err(StoreError::from);
        match inserted {
            Ok(_) => {}
            Err(StoreError::Conflict) => {
                sqlx::query(
                    "UPDATE grants SET logins = $1, commands = $2 WHERE principal_kind = $3 \
                     AND principal_id = $4 AND target_kind = $5 AND target_id = $6",
                )
                .bind(&stored)
                .bind(&stored_commands)
                .bind(principal.0.as_str())
                .bind(principal.1)
                .bind(target.0.as_str())
                .bind(target.1)
                .execute(&self.pool)
                .await?;
            }
            Err(e) => return Err(e),
        }
        let sql = format!(
            "{GRANT_SELECT} WHERE gr.principal_kind = $1 AND gr.principal_id = $2 \
             AND gr.target_kind = $3 AND gr.target_id = $4"
        );
        let row = sqlx::query(&sql)
            .bind(principal.0.as_str())
            .bind(principal.1)
            .bind(target.0.as_str())
            .bind(target.1)
            .fetch_one(&self.pool)
            .await?;
        Ok(grant_from_row(&row)?)
    }

    /// Deletes a grant; `false` if there was none.
    #[tracing::instrument(skip(self))]
    pub async fn delete_grant(
        &self,
        principal: (PrincipalKind, &str),
        target: (TargetKind, &str),
    ) -> Result<bool, StoreError> {
        let done = sqlx::query(
            "DELETE FROM grants WHERE principal_kind = $1 AND principal_id = $2 \
             AND target_kind = $3 AND target_id = $4",
        )
        .bind(principal.0.as_str())
        .bind(principal.1)
        .bind(target.0.as_str())
        .bind(target.1)
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() > 0)
    }

    /// Grants ordered by target then principal, optionally filtered.
    #[tracing::instrument(skip(self))]
    pub async fn list_grants(
        &self,
        principal: Option<(PrincipalKind, &str)>,
        target: Option<(TargetKind, &str)>,
    ) -> Result<Vec<GrantRow>, StoreError> {
        let mut clauses = Vec::new();
        let mut binds: Vec<&str> = Vec::new();
        if let Some((kind, id)) = principal {
            clauses.push(format!(
                "gr.principal_kind = ${} AND gr.principal_id = ${}",
                binds.len() + 1,
                binds.len() + 2
            ));
            binds.extend([kind.as_str(), id]);
        }
        if let Some((kind, id)) = target {
            clauses.push(format!(
                "gr.target_kind = ${} AND gr.target_id = ${}",
                binds.len() + 1,
                binds.len() + 2
            ));
            binds.extend([kind.as_str(), id]);
        }
        let filter = if clauses.is_empty() {
            String::new()
        } else {
            format!(" WHERE {}", clauses.join(" AND "))
        };
        let sql = format!("{GRANT_SELECT}{filter} ORDER BY target_name, principal_name");
        let mut query = sqlx::query(&sql);
        for value in binds {
            query = query.bind(value);
        }
        let rows = query.fetch_all(&self.pool).await?;
        Ok(rows.iter().map(grant_from_row).collect::<Result<_, _>>()?)
    }

    /// Every grant that reaches `user_id`: their direct grants and those of
    /// the groups they belong to, ordered by target then principal name.
    #[tracing::instrument(skip(self))]
    pub async fn grants_reaching_user(&self, user_id: &str) -> Result<Vec<GrantRow>, StoreError> {
        let sql = format!(
            "{GRANT_SELECT} WHERE (gr.principal_kind = 'user' AND gr.principal_id = $1) \
             OR (gr.principal_kind = 'group' AND gr.principal_id IN \
                 (SELECT m.group_id FROM group_members m WHERE m.user_id = $2)) \
             ORDER BY target_name, principal_name"
        );
        let rows = sqlx::query(&sql)
            .bind(user_id)
            .bind(user_id)
            .fetch_all(&self.pool)
            .await?;
        Ok(rows.iter().map(grant_from_row).collect::<Result<_, _>>()?)
    }

    /// How `user_id` is granted the target, if at all: a direct grant wins
    /// over a group grant; among groups the first by name.
    #[tracing::instrument(skip(self))]
    pub async fn grant_via(
        &self,
        user_id: &str,
        target: (TargetKind, &str),
    ) -> Result<Option<GrantVia>, StoreError> {
        let direct = sqlx::query(
            "SELECT id FROM grants WHERE principal_kind = 'user' AND principal_id = $1 \
             AND target_kind = $2 AND target_id = $3",
        )
        .bind(user_id)
        .bind(target.0.as_str())
        .bind(target.1)
        .fetch_optional(&self.pool)
        .await?;
        if direct.is_some() {
            return Ok(Some(GrantVia::User));
        }
        let group = sqlx::query(
            "SELECT g.name FROM grants gr \
             JOIN group_members m ON m.group_id = gr.principal_id \
             JOIN user_groups g ON g.id = gr.principal_id \
             WHERE gr.principal_kind = 'group' AND m.user_id = $1 \
             AND gr.target_kind = $2 AND gr.target_id = $3 ORDER BY g.name",
        )
        .bind(user_id)
        .bind(target.0.as_str())
        .bind(target.1)
        .fetch_optional(&self.pool)
        .await?;
        Ok(group
            .map(|row| row.try_get::<String, _>("name"))
            .transpose()?
            .map(GrantVia::Group))
    }

    /// The logins `user_id` may use on the target through grants, if any grant reaches it
    /// (for a node, grants on the node groups holding it too).
    #[tracing::instrument(skip(self))]
    pub async fn grant_logins(
        &self,
        user_id: &str,
        target: (TargetKind, &str),
    ) -> Result<Option<GrantLogins>, StoreError> {
        // Only nodes are members of node groups: for other kinds the second id matches none.
        let member_id = if target.0 == TargetKind::Node {
            target.1
        } else {
            ""
        };
        let rows = sqlx::query(
            "SELECT gr.principal_kind, COALESCE(g.name, '') AS group_name, gr.logins FROM grants gr \
             LEFT JOIN user_groups g ON gr.principal_kind = 'group' AND g.id = gr.principal_id \
             WHERE ((gr.target_kind = $1 AND gr.target_id = $2) OR \
              (gr.target_kind = 'node_group' AND gr.target_id IN \
                 (SELECT n.group_id FROM node_group_members n WHERE n.node_id = $3))) AND \
             ((gr.principal_kind = 'user' AND gr.principal_id = $4) OR \
              (gr.principal_kind = 'group' AND gr.principal_id IN \
                 (SELECT m.group_id FROM group_members m WHERE m.user_id = $5)))",
        )
        .bind(target.0.as_str())
        .bind(target.1)
        .bind(member_id)
        .bind(user_id)
        .bind(user_id)
        .fetch_all(&self.pool)
        .await?;
        let mut grants = Vec::with_capacity(rows.len());
        for row in &rows {
            let kind: String = row.try_get("principal_kind")?;
            let via = match PrincipalKind::parse(&kind)? {
                PrincipalKind::User => GrantVia::User,
                PrincipalKind::Group => GrantVia::Group(row.try_get("group_name")?),
            };
            grants.push((via, split_list(&row.try_get::<String, _>("logins")?)));
        }
        // The direct grant first, then groups by name: the order Authorize reports.
        grants.sort_by(|(a, _), (b, _)| match (a, b) {
            (GrantVia::User, GrantVia::User) => std::cmp::Ordering::Equal,
            (GrantVia::User, _) => std::cmp::Ordering::Less,
            (_, GrantVia::User) => std::cmp::Ordering::Greater,
            (GrantVia::Group(a), GrantVia::Group(b)) => a.cmp(b),
        });
        let Some((via, _)) = grants.first() else {
            return Ok(None);
        };
        let mut answer = GrantLogins {
            via: via.clone(),
            listed: Vec::new(),
            default_allowed: false,
        };
        for (_, logins) in &grants {
            answer.default_allowed |= logins.is_empty();
            for login in logins {
                if !answer.listed.contains(login) {
                    answer.listed.push(login.clone());
                }
            }
        }
        Ok(Some(answer))
    }
}
