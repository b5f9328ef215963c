//! The command rights a user's grants give on one node: grants on the node itself and on
//! the node groups it belongs to, to the user directly or to her groups.

use sqlx::Row;

use crate::access::{GrantVia, PrincipalKind, split_list};
use crate::{Store, StoreError};

/// One grant reaching a user on a node that lists commands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommandGrant {
    pub via: GrantVia,
    /// The node group the grant targets; `None` for a grant on the node itself.
    pub node_group: Option<String>,
    /// Command names, or `*` for every command the node declares.
    pub commands: Vec<String>,
}

impl CommandGrant {
    /// Whether this grant lets its holder run `command`.
    pub fn allows(&self, command: &str) -> bool {
        self.commands.iter().any(|c| c == command || c == "*")
    }
}

impl Store {
    /// The grants reaching `user_id` on node `node_id` that list commands, strongest first:
    /// the user's own before her groups' (by group name), a grant on the node before one on
    /// a node group (by group name).
    #[tracing::instrument(skip(self))]
    pub async fn command_grants(
        &self,
        user_id: &str,
        node_id: &str,
    ) -> Result<Vec<CommandGrant>, StoreError> {
        let rows = sqlx::query(
            "SELECT gr.principal_kind, COALESCE(g.name, '') AS group_name, \
             COALESCE(ng.name, '') AS node_group, gr.commands FROM grants gr \
             LEFT JOIN user_groups g ON gr.principal_kind = 'group' AND g.id = gr.principal_id \
             LEFT JOIN node_groups ng ON gr.target_kind = 'node_group' AND ng.id = gr.target_id \
             WHERE gr.commands <> '' AND \
             ((gr.target_kind = 'node' AND gr.target_id = $1) OR \
              (gr.target_kind = 'node_group' AND gr.target_id IN \
                 (SELECT n.group_id FROM node_group_members n WHERE n.node_id = $2))) AND \
             ((gr.principal_kind = 'user' AND gr.principal_id = $3) OR \
              (gr.principal_kind = 'group' AND gr.principal_id IN \
                 (SELECT m.group_id FROM group_members m WHERE m.user_id = $4)))",
        )
        .bind(node_id)
        .bind(node_id)
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
            let node_group: String = row.try_get("node_group")?;
            grants.push(CommandGrant {
                via,
                node_group: Some(node_group).filter(|g| !g.is_empty()),
                commands: split_list(&row.try_get::<String, _>("commands")?),
            });
        }
        grants.sort_by(|a, b| {
            strength(&a.via)
                .cmp(&strength(&b.via))
                .then_with(|| a.node_group.cmp(&b.node_group))
        });
        Ok(grants)
    }
}

/// Orders a direct grant before group grants, and groups by name.
fn strength(via: &GrantVia) -> (u8, &str) {
    match via {
        GrantVia::User => (0, ""),
        GrantVia::Group(name) => (1, name),
    }
}
