//! Lookups by name that answer NOT_FOUND, shared by the admin calls.

use phirepass_store::{GroupRow, Store, TargetRef, UserRow};

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

pub(crate) async fn target_named(store: &Store, name: &str) -> Result<TargetRef> {
    store
        .target_by_name(name)
        .await?
        .ok_or(AuthzError::NotFound("target"))
}
