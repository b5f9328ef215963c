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
        #[arg(long, visible_alias = "target")]
        host: Option<String>,
        #[command(flatten)]
        principal: Principal,
    },
}

#[derive(Args)]
pub struct TargetArgs {
    #[command(flatten)]
    principal: RequiredPrincipal,
    /// The target: a host, node or reserved tunnel name.
    #[arg(long, visible_aliases = ["target", "node"])]
    host: String,
}

#[derive(Args)]
pub struct GrantArgs {
    #[command(flatten)]
    target: TargetArgs,
    /// An account on the target the principal may log in as (repeat for more; the first is
    /// the default when the vault names no account).
    #[arg(long = "login", value_name = "ACCOUNT")]
    logins: Vec<String>,
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
        AccessCommand::Grant(GrantArgs { target: a, logins }) => {
            let (kind, who) = principal(a.principal.user, a.principal.group)
                .ok_or_else(|| super::output::usage("--user or --group is needed"))?;
            let e = authz
                .grant(GrantRequest {
                    principal_kind: kind as i32,
                    principal: who,
                    target: a.host,
                    logins,
                })
                .await
                .map_err(st)?
                .into_inner();
            out.done(
                &format!(
                    "{} {} may reach {} {}",
                    kind_name(e.principal_kind()),
                    e.principal,
                    e.target,
                    logins_text(&e.logins)
                ),
                grant_json(&e),
            );
        }
        AccessCommand::Revoke(a) => {
            let (kind, who) = principal(a.principal.user, a.principal.group)
                .ok_or_else(|| super::output::usage("--user or --group is needed"))?;
            authz
                .revoke(RevokeRequest {
                    principal_kind: kind as i32,
                    principal: who.clone(),
                    target: a.host.clone(),
                })
                .await
                .map_err(st)?;
            out.done(
                &format!("{} {who} may no longer reach {}", kind_name(kind), a.host),
                json!({"revoked": {"principal_kind": kind_name(kind), "principal": who, "target": a.host}}),
            );
        }
        AccessCommand::List { host, principal: p } => {
            let (kind, who) = match principal(p.user, p.group) {
                Some((k, w)) => (Some(k as i32), Some(w)),
                None => (None, None),
            };
            let grants = authz
                .list_grants(ListGrantsRequest {
                    target: host,
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
