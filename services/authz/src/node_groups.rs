//! Node groups: named groups of agent nodes (`phirepass admin node group add web web-1`),
//! so one grant reaches every member (`access grant --node-group web --command x`).
//! Membership lives here; a change invalidates cached decisions like any grant change.

use phirepass_proto::authz as pb;
use phirepass_store::{NodeGroupRow, Store, TargetKind, now_millis};

use crate::audit::Audit;
use crate::error::{AuthzError, Result};
use crate::lookup;
use crate::validate;

/// Most nodes one call adds or removes.
const MAX_NODES_PER_CALL: usize = 256;

pub(crate) fn node_group_to_proto(group: &NodeGroupRow) -> pb::NodeGroup {
    pb::NodeGroup {
        id: group.id.clone(),
        name: group.name.clone(),
        created_at: group.created_at,
        nodes: group.nodes.clone(),
    }
}

pub(crate) struct NodeGroups {
    pub(crate) store: Store,
    pub(crate) audit: Audit,
}

impl NodeGroups {
    /// The ids of `nodes` (names or ids), each an agent node; NOT_FOUND names the first
    /// unknown one.
    async fn node_ids(&self, nodes: &[String]) -> Result<Vec<String>> {
        if nodes.is_empty() || nodes.len() > MAX_NODES_PER_CALL {
            return Err(AuthzError::InvalidArgument(format!(
                "name 1 to {MAX_NODES_PER_CALL} nodes"
            )));
        }
        let mut ids = Vec::with_capacity(nodes.len());
        for name in nodes {
            match self.store.target_by_name(name).await? {
                Some(t) if t.kind == TargetKind::Node => {
                    if !ids.contains(&t.id) {
                        ids.push(t.id);
                    }
                }
                Some(t) => {
                    return Err(AuthzError::InvalidArgument(format!(
                        "{name} is a {}, not a node: only agent nodes join node groups",
                        t.kind.as_str()
                    )));
                }
                None => return Err(AuthzError::Missing(format!("node {name} not found"))),
            }
        }
        Ok(ids)
    }

    pub(crate) async fn add_members(
        &self,
        req: pb::AddNodeGroupMembersRequest,
    ) -> Result<pb::NodeGroup> {
        validate::node_group_name(&req.group)?;
        let ids = self.node_ids(&req.nodes).await?;
        let group = self
            .store
            .add_node_group_members(&req.group, &ids, now_millis())
            .await?;
        let nodes = req.nodes.join(",");
        tracing::info!(node_group = %group.name, nodes, "node group members added");
        self.audit
            .change(
                "node_group.member.add",
                &[("node_group", &group.name), ("nodes", &nodes)],
            )
            .await;
        Ok(node_group_to_proto(&group))
    }

    pub(crate) async fn remove_members(
        &self,
        req: pb::RemoveNodeGroupMembersRequest,
    ) -> Result<pb::NodeGroup> {
        let group = lookup::node_group_named(&self.store, &req.group).await?;
        let ids = self.node_ids(&req.nodes).await?;
        let removed = self
            .store
            .remove_node_group_members(&group.id, &ids)
            .await?;
        if removed == 0 {
            return Err(AuthzError::Missing(format!(
                "none of {} is in node group {}",
                req.nodes.join(", "),
                group.name
            )));
        }
        let nodes = req.nodes.join(",");
        tracing::info!(node_group = %group.name, nodes, removed, "node group members removed");
        self.audit
            .change(
                "node_group.member.remove",
                &[("node_group", &group.name), ("nodes", &nodes)],
            )
            .await;
        let group = lookup::node_group_named(&self.store, &req.group).await?;
        Ok(node_group_to_proto(&group))
    }

    pub(crate) async fn remove_group(
        &self,
        req: pb::RemoveNodeGroupRequest,
    ) -> Result<pb::RemoveNodeGroupResponse> {
        if !self.store.remove_node_group(&req.name).await? {
            return Err(AuthzError::Missing(format!(
                "node group {} not found",
                req.name
            )));
        }
        tracing::info!(node_group = %req.name, "node group removed");
        self.audit
            .change("node_group.remove", &[("node_group", &req.name)])
            .await;
        Ok(pb::RemoveNodeGroupResponse {})
    }

    pub(crate) async fn list(&self) -> Result<pb::ListNodeGroupsResponse> {
        let groups = self.store.list_node_groups().await?;
        Ok(pb::ListNodeGroupsResponse {
            groups: groups.iter().map(node_group_to_proto).collect(),
        })
    }
}
