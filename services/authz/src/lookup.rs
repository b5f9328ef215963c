//! Lookups by name that answer NOT_FOUND, shared by the admin calls.

use phirepass_store::{GroupRow, NodeGroupRow, Store, TargetRef, UserRow};

use crate::error::{AuthzError, Result};

pub(crate) async fn user_named(store: &Store, username: &str) -> Result<UserRow> {
    store
        .user_by_username(username)
        .await?
        .ok_or(AuthzError::NotFound("user"))
}

pub(crate) async fn group_named(store: &Store, name: &str) -> Result<GroupRow> {
    store
        .group_by_name(name)
        .await?
        .ok_or(AuthzError::NotFound("group"))
}

/// NOT_FOUND naming the group and how node groups come to be.
pub(crate) async fn node_group_named(store: &Store, name: &str) -> Result<NodeGroupRow> {
    store.node_group_by_name(name).await?.ok_or_else(|| {
        AuthzError::Missing(format!(
            "node group {name} not found (AddNodeGroupMembers creates it: `phirepass admin node group add {name} <node>`)"
        ))
    })
}

pub(crate) async fn target_named(store: &Store, name: &str) -> Result<TargetRef> {
    store
        .target_by_name(name)
        .await?
        .ok_or(AuthzError::NotFound("target"))
}
