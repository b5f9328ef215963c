//! Command decisions: `Authorize` with action `command:<name>`. A command runs only on an
//! agent node, for its owner, or for a user whom a grant (her own or one of her groups', on
//! the node or on a node group holding it) lists the command, or `*`, for.

use phirepass_store::GrantVia;

use crate::authorize::{Decision, Decisions};
use crate::decision_cache::Who;
use crate::error::Result;

/// How an Authorize action names a command.
pub(crate) const COMMAND_ACTION: &str = "command:";

/// The command an action is about, if it is `command:<name>`.
pub(crate) fn command_of(action: &str) -> Option<&str> {
    action.strip_prefix(COMMAND_ACTION)
}

impl Decisions {
    /// May `who` run `command` on `target`? The user and target checks are Authorize's
    /// own; a grant reaching the node gives no command it does not list.
    pub(crate) async fn evaluate_command(
        &self,
        who: Who<'_>,
        target: &str,
        command: &str,
    ) -> Result<Decision> {
        let mut d = self.evaluate(who, target).await?;
        // Command rights never come with accounts: nothing to log in as.
        (d.allowed, d.any_login, d.default_allowed) = (false, false, false);
        d.logins.clear();
        let (Some(user), Some(_)) = (&d.user, &d.target) else {
            return Ok(d);
        };
        if user.disabled {
            return Ok(d);
        }
        let Some(node) = &d.node else {
            d.reason = "commands run only on nodes".to_owned();
            return Ok(d);
        };
        if node.user_id == user.id {
            d.allowed = true;
            d.reason = "owner".to_owned();
            return Ok(d);
        }
        let grants = self.store.command_grants(&user.id, &node.id).await?;
        let Some(grant) = grants.iter().find(|g| g.allows(command)) else {
            d.reason = format!("no grant for {COMMAND_ACTION}{command}");
            return Ok(d);
        };
        let via = match &grant.via {
            GrantVia::User => "user grant".to_owned(),
            GrantVia::Group(group) => format!("group grant: {group}"),
        };
        let on = grant
            .node_group
            .as_ref()
            .map(|g| format!(" on node group {g}"))
            .unwrap_or_default();
        let listed = if grant.commands.iter().any(|c| c == command) {
            command
        } else {
            "*"
        };
        d.allowed = true;
        d.reason = format!("{via}{on}: {COMMAND_ACTION}{listed}");
        Ok(d)
    }
}
