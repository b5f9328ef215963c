//! Groups and membership.

use phirepass_proto::authz as pb;
use phirepass_store::{GroupRow, StoreError, new_id, now_millis};

use crate::accounts::{Accounts, user_to_proto};
use crate::error::{AuthzError, Result};
use crate::lookup;
use crate::validate;

fn group_to_proto(group: &GroupRow) -> pb::Group {
    pb::Group {
        id: group.id.clone(),
        name: group.name.clone(),
        created_at: group.created_at,
        member_count: group.member_count,
    }
}

impl Accounts {
    pub(crate) async fn create_group(&self, req: pb::CreateGroupRequest) -> Result<pb::Group> {
        validate::target_name(&req.name)?;
        let id = new_id();
        let now = now_millis();
        match self.store.insert_group(&id, &req.name, now).await {
            Ok(()) => {}
            Err(StoreError::Conflict) => return Err(AuthzError::AlreadyExists("group")),
            Err(e) => return Err(e.into()),
        }
        tracing::info!(group_id = %id, group = %req.name, "group created");
        self.audit
            .change("group.add", &[("group", &req.name)])
            .await;
        Ok(pb::Group {
            id,
            name: req.name,
            created_at: now,
            member_count: 0,
        })
    }

    pub(crate) async fn remove_group(
        &self,
        req: pb::RemoveGroupRequest,
    ) -> Result<pb::RemoveGroupResponse> {
        if !self.store.remove_group(&req.name).await? {
            return Err(AuthzError::NotFound("group"));
        }
        tracing::info!(group = %req.name, "group removed");
        self.audit
            .change("group.remove", &[("group", &req.name)])
            .await;
        Ok(pb::RemoveGroupResponse {})
    }

    pub(crate) async fn list_groups(
        &self,
        _req: pb::ListGroupsRequest,
    ) -> Result<pb::ListGroupsResponse> {
        let groups = self.store.list_groups().await?;
        Ok(pb::ListGroupsResponse {
            groups: groups.iter().map(group_to_proto).collect(),
        })
    }

    pub(crate) async fn add_group_member(
        &self,
        req: pb::AddGroupMemberRequest,
    ) -> Result<pb::AddGroupMemberResponse> {
        let group = lookup::group_named(&self.store, &req.group).await?;
        let user = lookup::user_named(&self.store, &req.username).await?;
        self.store
            .add_group_member(&group.id, &user.id, now_millis())
            .await?;
        tracing::info!(group = %group.name, user_id = %user.id, "group member added");
        self.audit
            .change(
                "group.member.add",
                &[("group", &group.name), ("username", &user.username)],
            )
            .await;
        Ok(pb::AddGroupMemberResponse {})
    }

    pub(crate) async fn remove_group_member(
        &self,
        req: pb::RemoveGroupMemberRequest,
    ) -> Result<pb::RemoveGroupMemberResponse> {
        let group = lookup::group_named(&self.store, &req.group).await?;
        let user = lookup::user_named(&self.store, &req.username).await?;
        if !self.store.remove_group_member(&group.id, &user.id).await? {
            return Err(AuthzError::NotFound("group member"));
        }
        tracing::info!(group = %group.name, user_id = %user.id, "group member removed");
        self.audit
            .change(
                "group.member.remove",
                &[("group", &group.name), ("username", &user.username)],
            )
            .await;
        Ok(pb::RemoveGroupMemberResponse {})
    }

    pub(crate) async fn list_group_members(
        &self,
        req: pb::ListGroupMembersRequest,
    ) -> Result<pb::ListGroupMembersResponse> {
        let group = lookup::group_named(&self.store, &req.group).await?;
        let members = self.store.group_members(&group.id).await?;
        Ok(pb::ListGroupMembersResponse {
            members: members.iter().map(user_to_proto).collect(),
        })
    }
}
