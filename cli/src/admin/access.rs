//! `phirepass admin access`: grants of a target (host or node) to a user or a group.

use clap::{Args, Subcommand};
use phirepass_proto::authz::{
    GrantEntry, GrantRequest, ListGrantsRequest, PrincipalKind, RevokeRequest, TargetKind,
};
use serde_json::json;

use super::connect::Global;
use super::output::{Out, status, time};

#[derive(Subcommand)]
pub enum AccessCommand {
    /// Let a user or a group reach a target, as the accounts listed with --login (granting
    /// again replaces the list).
    #[command(
        after_help = "Examples:\n  phirepass admin access grant --user alice --host db-1\n  \
        phirepass admin access grant --group ops --host db-1\n  \
        phirepass admin access grant --user alice --node web-1 --login deploy --login root\n\n\
        Without --login the user gets the target's default account: the one its vault login\n\
        names (auth.username), else her own name. With logins, `ssh alice:web-1:root@edge`\n\
        picks one, `ssh alice:web-1@edge` uses the vault's account if listed, else the first."
    )]
    Grant(GrantArgs),
    /// Remove a grant.
    #[command(after_help = "Example:\n  phirepass admin access revoke --user alice --host db-1")]
    Revoke(TargetArgs),
    /// List grants, optionally of one target, user or group.
    #[command(after_help = "Examples:\n  phirepass admin access list\n  \
        phirepass admin access list --host db-1\n  phirepass admin access list --group ops")]
    List {
        /// Only grants of this target.
        #[arg(long, visible_aliases = ["target", "node"], conflicts_with = "node_group")]
        host: Option<String>,
        /// Only grants of this node group.
        #[arg(long, value_name = "GROUP")]
        node_group: Option<String>,
        #[command(flatten)]
        principal: Principal,
    },
}

#[derive(Args)]
pub struct TargetArgs {
    #[command(flatten)]
    principal: RequiredPrincipal,
    #[command(flatten)]
    target: RequiredTarget,
}

#[derive(Args)]
#[group(required = true, multiple = false)]
struct RequiredTarget {
    /// The target: a host, node or reserved tunnel name.
    #[arg(long, visible_aliases = ["target", "node"])]
    host: Option<String>,
    /// A node group (`phirepass admin node group add`): every node in it, now and later.
    #[arg(long, value_name = "GROUP")]
    node_group: Option<String>,
}

impl RequiredTarget {
    /// The name, and whether it names a node group.
    fn name(self) -> (String, bool) {
        match (self.host, self.node_group) {
            (_, Some(group)) => (group, true),
            (host, None) => (host.unwrap_or_default(), false),
        }
    }
}

#[derive(Args)]
pub struct GrantArgs {
    #[command(flatten)]
    target: TargetArgs,
    /// An account on the target the principal may log in as (repeat for more; the first is
    /// the default when the vault names no account).
    #[arg(long = "login", value_name = "ACCOUNT")]
    logins: Vec<String>,
    /// A command the principal may run on the node(s) (repeat for more; `*`: every command
    /// the host declares). Nodes and node groups only.
    #[arg(long = "command", value_name = "NAME")]
    commands: Vec<String>,
}

#[derive(Args)]
#[group(required = true, multiple = false)]
struct RequiredPrincipal {
    /// A username.
    #[arg(long)]
    user: Option<String>,
    /// A group name.
    #[arg(long)]
    group: Option<String>,
}

#[derive(Args)]
#[group(required = false, multiple = false)]
pub struct Principal {
    /// Only grants to this user.
    #[arg(long)]
    user: Option<String>,
    /// Only grants to this group.
    #[arg(long)]
    group: Option<String>,
}

fn principal(user: Option<String>, group: Option<String>) -> Option<(PrincipalKind, String)> {
    match (user, group) {
        (Some(u), _) => Some((PrincipalKind::User, u)),
        (None, Some(g)) => Some((PrincipalKind::Group, g)),
        (None, None) => None,
    }
}

pub async fn run(cmd: AccessCommand, g: &Global, out: Out) -> anyhow::Result<()> {
    let mut authz = g.authz()?;
    let st = |s| status("authz", s);
    match cmd {
        AccessCommand::Grant(GrantArgs {
            target: a,
            logins,
            commands,
        }) => {
            let (kind, who) = principal(a.principal.user, a.principal.group)
                .ok_or_else(|| super::output::usage("--user or --group is needed"))?;
            let (target, node_group) = a.target.name();
            let e = authz
                .grant(GrantRequest {
                    principal_kind: kind as i32,
                    principal: who,
                    target,
                    logins,
                    commands,
                    node_group,
                })
                .await
                .map_err(st)?
                .into_inner();
            out.done(
                &format!(
                    "{} {} may reach {} {}{}",
                    kind_name(e.principal_kind()),
                    e.principal,
                    target_text(&e),
                    logins_text(&e.logins),
                    commands_text(&e.commands)
                ),
                grant_json(&e),
            );
        }
        AccessCommand::Revoke(a) => {
            let (kind, who) = principal(a.principal.user, a.principal.group)
                .ok_or_else(|| super::output::usage("--user or --group is needed"))?;
            let (target, node_group) = a.target.name();
            authz
                .revoke(RevokeRequest {
                    principal_kind: kind as i32,
                    principal: who.clone(),
                    target: target.clone(),
                    node_group,
                })
                .await
                .map_err(st)?;
            let shown = if node_group {
                format!("node group {target}")
            } else {
                target.clone()
            };
            out.done(
                &format!("{} {who} may no longer reach {shown}", kind_name(kind)),
                json!({"revoked": {"principal_kind": kind_name(kind), "principal": who,
                                   "target": target, "node_group": node_group}}),
            );
        }
        AccessCommand::List {
            host,
            node_group,
            principal: p,
        } => {
            let (kind, who) = match principal(p.user, p.group) {
                Some((k, w)) => (Some(k as i32), Some(w)),
                None => (None, None),
            };
            let grants = authz
                .list_grants(ListGrantsRequest {
                    node_group: node_group.is_some(),
                    target: node_group.or(host),
                    principal_kind: kind,
                    principal: who,
                })
                .await
                .map_err(st)?
                .into_inner()
                .grants;
            let rows = grants
                .iter()
                .map(|e| {
                    vec![
                        e.target.clone(),
                        target_kind(e.target_kind()).into(),
                        kind_name(e.principal_kind()).into(),
                        e.principal.clone(),
                        if e.logins.is_empty() {
                            "(default)".into()
                        } else {
                            e.logins.join(",")
                        },
                        if e.commands.is_empty() {
                            "-".into()
                        } else {
                            e.commands.join(",")
                        },
                        time(e.created_at),
                    ]
                })
                .collect();
            let items = grants.iter().map(grant_json).collect();
            out.list(
                &[
                    "TARGET",
                    "KIND",
                    "PRINCIPAL TYPE",
                    "PRINCIPAL",
                    "LOGINS",
                    "COMMANDS",
                    "GRANTED",
                ],
                rows,
                items,
            );
        }
    }
    Ok(())
}

fn kind_name(k: PrincipalKind) -> &'static str {
    match k {
        PrincipalKind::User => "user",
        PrincipalKind::Group => "group",
        PrincipalKind::Unspecified => "?",
    }
}

pub fn target_kind(k: TargetKind) -> &'static str {
    match k {
        TargetKind::Host => "host",
        TargetKind::Node => "node",
        TargetKind::Tunnel => "tunnel",
        TargetKind::NodeGroup => "node group",
        TargetKind::Unspecified => "?",
    }
}

fn grant_json(e: &GrantEntry) -> serde_json::Value {
    json!({
        "id": e.id,
        "principal_kind": kind_name(e.principal_kind()),
        "principal": e.principal,
        "target": e.target,
        "target_kind": target_kind(e.target_kind()),
        "logins": e.logins,
        "commands": e.commands,
        "created_at": e.created_at,
    })
}

/// How the grant's accounts read after "alice may reach web-1".
fn logins_text(logins: &[String]) -> String {
    match logins {
        [] => "as its default account".into(),
        [one] => format!("as {one}"),
        many => format!("as {}", many.join(", ")),
    }
}

/// "node group web" or the target's name.
fn target_text(e: &GrantEntry) -> String {
    if e.target_kind() == TargetKind::NodeGroup {
        format!("node group {}", e.target)
    } else {
        e.target.clone()
    }
}

/// What follows "alice may reach web-1 as its default account" when commands are granted.
fn commands_text(commands: &[String]) -> String {
    match commands {
        [] => String::new(),
        [all] if all == "*" => " and run every command it declares".into(),
        names => format!(" and run {}", names.join(", ")),
    }
}
