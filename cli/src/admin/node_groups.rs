//! `phirepass admin node group`: named groups of agent nodes, for grants on many nodes at
//! once (`access grant --node-group web --command disk_usage`) and runs on all of them.

use clap::Subcommand;
use phirepass_proto::authz::{
    AddNodeGroupMembersRequest, ListNodeGroupsRequest, NodeGroup, RemoveNodeGroupMembersRequest,
    RemoveNodeGroupRequest,
};
use serde_json::json;

use super::connect::Global;
use super::output::{Out, status, time};

#[derive(Subcommand)]
pub enum NodeGroupCommand {
    /// Add nodes to a node group, creating the group when it is new (adding twice is not an
    /// error).
    #[command(
        after_help = "Examples:\n  phirepass admin node group add web web-1 web-2\n  \
        phirepass admin access grant --group ops --node-group web --command disk_usage"
    )]
    Add {
        group: String,
        /// Node names (or ids).
        #[arg(required = true, value_name = "NODE")]
        nodes: Vec<String>,
    },
    /// Take nodes out of a node group; without nodes, delete the group and the grants on it.
    #[command(
        after_help = "Examples:\n  phirepass admin node group remove web web-2\n  \
        phirepass admin node group remove web        # the group and its grants"
    )]
    Remove {
        group: String,
        #[arg(value_name = "NODE")]
        nodes: Vec<String>,
    },
    /// List node groups with their members.
    #[command(after_help = "Examples:\n  phirepass admin node group list\n  \
        phirepass admin node group list --json")]
    List,
}

pub async fn run(cmd: NodeGroupCommand, g: &Global, out: Out) -> anyhow::Result<()> {
    let mut authz = g.authz()?;
    let st = |s| status("authz", s);
    match cmd {
        NodeGroupCommand::Add { group, nodes } => {
            let gr = authz
                .add_node_group_members(AddNodeGroupMembersRequest { group, nodes })
                .await
                .map_err(st)?
                .into_inner();
            out.done(
                &format!("node group {}: {}", gr.name, members_text(&gr)),
                group_json(&gr),
            );
        }
        NodeGroupCommand::Remove { group, nodes } if nodes.is_empty() => {
            authz
                .remove_node_group(RemoveNodeGroupRequest {
                    name: group.clone(),
                })
                .await
                .map_err(st)?;
            out.done(
                &format!("node group {group} removed, with the grants on it"),
                json!({"removed": group}),
            );
        }
        NodeGroupCommand::Remove { group, nodes } => {
            let gr = authz
                .remove_node_group_members(RemoveNodeGroupMembersRequest { group, nodes })
                .await
                .map_err(st)?
                .into_inner();
            out.done(
                &format!("node group {}: {}", gr.name, members_text(&gr)),
                group_json(&gr),
            );
        }
        NodeGroupCommand::List => {
            let groups = authz
                .list_node_groups(ListNodeGroupsRequest {})
                .await
                .map_err(st)?
                .into_inner()
                .groups;
            let rows = groups
                .iter()
                .map(|gr| {
                    vec![
                        gr.name.clone(),
                        gr.nodes.len().to_string(),
                        gr.nodes.join(","),
                        time(gr.created_at),
                    ]
                })
                .collect();
            let items = groups.iter().map(group_json).collect();
            out.list(&["NODE GROUP", "NODES", "MEMBERS", "CREATED"], rows, items);
        }
    }
    Ok(())
}

fn members_text(group: &NodeGroup) -> String {
    if group.nodes.is_empty() {
        "no nodes".into()
    } else {
        group.nodes.join(", ")
    }
}

fn group_json(group: &NodeGroup) -> serde_json::Value {
    json!({
        "id": group.id,
        "name": group.name,
        "nodes": group.nodes,
        "created_at": group.created_at,
    })
}
