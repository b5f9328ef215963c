//! `phirepass admin invitations`: single-use sign-up codes (there is no public sign-up).

use clap::Subcommand;
use phirepass_proto::authz::{
    CreateInvitationRequest, Invitation, ListInvitationsRequest, RevokeInvitationRequest,
};
use serde_json::json;

use super::connect::Global;
use super::output::{Out, status, time, usage};

#[derive(Subcommand)]
pub enum InvitationsCommand {
    /// Create an invitation and print its code (shown once) for `/join/<code>`.
    #[command(after_help = "Examples:\n  phirepass admin invitations create\n  \
        phirepass admin invitations create --username carol --admin --ttl 2d")]
    Create {
        /// Fix the username the invitee gets (default: they choose).
        #[arg(long)]
        username: Option<String>,
        /// The new user is an admin.
        #[arg(long)]
        admin: bool,
        /// How long the code stays usable: `30m`, `12h`, `7d` (default 7d, at most 30d).
        #[arg(long, value_parser = parse_ttl, value_name = "DURATION")]
        ttl: Option<u64>,
    },
    /// List invitations with their state (pending, used, revoked, expired).
    List,
    /// Revoke an invitation by id (as `list` shows it); revoking twice is fine.
    #[command(after_help = "Example:\n  phirepass admin invitations revoke 3f2a...")]
    Revoke { id: String },
}

/// `90`, `90s`, `30m`, `12h`, `7d` → seconds.
fn parse_ttl(s: &str) -> Result<u64, String> {
    let s = s.trim();
    let (digits, unit) = match s.find(|c: char| !c.is_ascii_digit()) {
        Some(i) => s.split_at(i),
        None => (s, "s"),
    };
    let n: u64 = digits
        .parse()
        .map_err(|_| format!("{s:?} is not a duration like 30m, 12h or 7d"))?;
    let scale = match unit {
        "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86_400,
        _ => return Err(format!("unknown unit {unit:?}: use s, m, h or d")),
    };
    n.checked_mul(scale)
        .filter(|secs| *secs > 0)
        .ok_or_else(|| format!("{s:?} is not a positive duration"))
}

pub async fn run(cmd: InvitationsCommand, g: &Global, out: Out) -> anyhow::Result<()> {
    let mut authz = g.authz()?;
    let st = |s| status("authz", s);
    match cmd {
        InvitationsCommand::Create {
            username,
            admin,
            ttl,
        } => {
            let r = authz
                .create_invitation(CreateInvitationRequest {
                    // The server records the API token's user (or "service").
                    created_by: String::new(),
                    username,
                    admin,
                    ttl_secs: ttl,
                })
                .await
                .map_err(st)?
                .into_inner();
            let inv = r
                .invitation
                .ok_or_else(|| usage("the server returned no invitation"))?;
            let mut doc = invitation_json(&inv);
            doc["code"] = json!(r.code);
            out.done(
                &format!(
                    "invitation {} created, valid until {}\ncode (shown once): {}\nthe invitee opens /join/{}",
                    inv.id,
                    time(inv.expires_at),
                    r.code,
                    r.code
                ),
                doc,
            );
        }
        InvitationsCommand::List => {
            let list = authz
                .list_invitations(ListInvitationsRequest {})
                .await
                .map_err(st)?
                .into_inner()
                .invitations;
            let rows = list
                .iter()
                .map(|i| {
                    vec![
                        i.id.clone(),
                        i.state.clone(),
                        if i.username.is_empty() {
                            "-".into()
                        } else {
                            i.username.clone()
                        },
                        if i.admin { "admin" } else { "user" }.into(),
                        i.created_by.clone(),
                        time(i.expires_at),
                        i.used_by.clone().unwrap_or_else(|| "-".into()),
                    ]
                })
                .collect();
            let items = list.iter().map(invitation_json).collect();
            out.list(
                &[
                    "ID",
                    "STATE",
                    "USERNAME",
                    "ROLE",
                    "CREATED BY",
                    "EXPIRES",
                    "USED BY",
                ],
                rows,
                items,
            );
        }
        InvitationsCommand::Revoke { id } => {
            authz
                .revoke_invitation(RevokeInvitationRequest { id: id.clone() })
                .await
                .map_err(st)?;
            out.done(&format!("invitation {id} revoked"), json!({"revoked": id}));
        }
    }
    Ok(())
}

fn invitation_json(i: &Invitation) -> serde_json::Value {
    json!({
        "id": i.id,
        "username": i.username,
        "admin": i.admin,
        "created_by": i.created_by,
        "created_at": i.created_at,
        "expires_at": i.expires_at,
        "state": i.state,
        "used_by": i.used_by,
    })
}

#[cfg(test)]
mod tests {
    use super::parse_ttl;

    #[test]
    fn ttls_parse() {
        assert_eq!(parse_ttl("90"), Ok(90));
        assert_eq!(parse_ttl("30m"), Ok(1800));
        assert_eq!(parse_ttl("7d"), Ok(604_800));
        assert!(parse_ttl("0d").is_err());
        assert!(parse_ttl("3w").is_err());
        assert!(parse_ttl("d").is_err());
    }
}
