//! `phirepass admin groups`: groups and their members.

use clap::Subcommand;
use phirepass_proto::authz::{
    AddGroupMemberRequest, CreateGroupRequest, ListGroupMembersRequest, ListGroupsRequest,
    RemoveGroupMemberRequest, RemoveGroupRequest,
};
use serde_json::json;

use super::connect::Global;
use super::output::{Out, status, time};

#[derive(Subcommand)]
pub enum GroupsCommand {
    /// Create a group.
    #[command(after_help = "Example:\n  phirepass admin groups add ops")]
    Add { name: String },
    /// Delete a group with its memberships and grants.
    #[command(after_help = "Example:\n  phirepass admin groups remove ops")]
    Remove { name: String },
    /// List groups with their member counts.
    #[command(after_help = "Example:\n  phirepass admin groups list")]
    List,
    /// Members of a group.
    #[command(
        subcommand,
        after_help = "Examples:\n  phirepass admin groups members add ops alice\n  \
        phirepass admin groups members list ops"
    )]
    Members(MembersCommand),
}

#[derive(Subcommand)]
pub enum MembersCommand {
    /// Add a user to a group (adding twice is not an error).
    #[command(after_help = "Example:\n  phirepass admin groups members add ops alice")]
    Add { group: String, user: String },
    /// Remove a user from a group.
    #[command(after_help = "Example:\n  phirepass admin groups members remove ops alice")]
    Remove { group: String, user: String },
    /// List a group's members.
    #[command(after_help = "Example:\n  phirepass admin groups members list ops")]
    List { group: String },
}

pub async fn run(cmd: GroupsCommand, g: &Global, out: Out) -> anyhow::Result<()> {
    let mut authz = g.authz()?;
    let st = |s| status("authz", s);
    match cmd {
        GroupsCommand::Add { name } => {
            let gr = authz
                .create_group(CreateGroupRequest { name })
                .await
                .map_err(st)?
                .into_inner();
            out.done(
                &format!("group {} created (id {})", gr.name, gr.id),
                json!({"id": gr.id, "name": gr.name, "created_at": gr.created_at}),
            );
        }
        GroupsCommand::Remove { name } => {
            authz
                .remove_group(RemoveGroupRequest { name: name.clone() })
                .await
                .map_err(st)?;
            out.done(&format!("group {name} removed"), json!({"removed": name}));
        }
        GroupsCommand::List => {
            let groups = authz
                .list_groups(ListGroupsRequest {})
                .await
                .map_err(st)?
                .into_inner()
                .groups;
            let rows = groups
                .iter()
                .map(|gr| {
                    vec![
                        gr.name.clone(),
                        gr.id.clone(),
                        gr.member_count.to_string(),
                        time(gr.created_at),
                    ]
                })
                .collect();
            let items = groups
                .iter()
                .map(|gr| {
                    json!({
                        "id": gr.id,
                        "name": gr.name,
                        "member_count": gr.member_count,
                        "created_at": gr.created_at,
                    })
                })
                .collect();
            out.list(&["NAME", "ID", "MEMBERS", "CREATED"], rows, items);
        }
        GroupsCommand::Members(MembersCommand::Add { group, user }) => {
            authz
                .add_group_member(AddGroupMemberRequest {
                    group: group.clone(),
                    username: user.clone(),
                })
                .await
                .map_err(st)?;
            out.done(
                &format!("{user} added to {group}"),
                json!({"group": group, "username": user}),
            );
        }
        GroupsCommand::Members(MembersCommand::Remove { group, user }) => {
            authz
                .remove_group_member(RemoveGroupMemberRequest {
                    group: group.clone(),
                    username: user.clone(),
                })
                .await
                .map_err(st)?;
            out.done(
                &format!("{user} removed from {group}"),
                json!({"group": group, "removed": user}),
            );
        }
        GroupsCommand::Members(MembersCommand::List { group }) => {
            let members = authz
                .list_group_members(ListGroupMembersRequest { group })
                .await
                .map_err(st)?
                .into_inner()
                .members;
            let rows = members
                .iter()
                .map(|u| vec![u.username.clone(), u.id.clone()])
                .collect();
            let items = members
                .iter()
                .map(|u| json!({"id": u.id, "username": u.username, "disabled": u.disabled}))
                .collect();
            out.list(&["USERNAME", "ID"], rows, items);
        }
    }
    Ok(())
}
