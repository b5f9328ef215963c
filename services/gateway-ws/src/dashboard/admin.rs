//! The dashboard's data: every live node and session (with kick), users and groups. Each call
//! checks that the session's user is an admin before the gateway uses its service token.

use std::collections::HashMap;
use std::sync::Arc;

use axum::Json;
use axum::extract::State;
use axum::http::HeaderMap;
use phirepass_proto::authz::{ListGroupMembersRequest, ListGroupsRequest, ListUsersRequest};
use phirepass_proto::registry::{ListNodesRequest, ListSessionsRequest};
use serde::Deserialize;
use serde_json::{Value, json};
use tracing::info;

use crate::accounts::auth::require_admin;
use crate::dashboard::targets::stats_json;
use crate::error::GatewayError;
use crate::state::AppState;

/// `GET /api/admin/live`: `{nodes, sessions}` across every gateway.
pub async fn live(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
) -> Result<Json<Value>, GatewayError> {
    require_admin(&state, &headers).await?;
    let registry = state.registry.clone();
    let (nodes, sessions, users) = tokio::try_join!(
        async {
            registry
                .clone()
                .list_nodes(ListNodesRequest { user_id: None })
                .await
                .map_err(|s| GatewayError::from_status(s, "nodes"))
        },
        async {
            registry
                .clone()
                .list_sessions(ListSessionsRequest::default())
                .await
                .map_err(|s| GatewayError::from_status(s, "sessions"))
        },
        async {
            state
                .authz
                .clone()
                .list_users(ListUsersRequest {})
                .await
                .map_err(|s| GatewayError::from_status(s, "users"))
        },
    )?;
    let names: HashMap<String, String> = users
        .into_inner()
        .users
        .into_iter()
        .map(|u| (u.id, u.username))
        .collect();
    let mut nodes = nodes.into_inner().nodes;
    nodes.sort_by(|a, b| a.name.cmp(&b.name));
    let nodes: Vec<Value> = nodes
        .into_iter()
        .map(|n| {
            json!({
                "node_id": n.node_id,
                "name": n.name,
                "owner": names.get(&n.user_id).cloned().unwrap_or_default(),
                "gateway_id": n.gateway_id,
                "connected_at": n.connected_at,
                "last_heartbeat": n.last_heartbeat,
                "stats": n.stats.map(stats_json),
            })
        })
        .collect();
    let mut sessions = sessions.into_inner().sessions;
    sessions.sort_by_key(|s| s.started_at);
    let sessions: Vec<Value> = sessions
        .into_iter()
        .map(|s| {
            json!({
                "session_id": s.session_id,
                "username": s.username,
                "target_name": if s.target_name.is_empty() { s.node_id } else { s.target_name },
                "edge_kind": s.edge_kind,
                "client_ip": s.client_ip,
                "gateway_id": s.gateway_id,
                "started_at": s.started_at,
                "last_seen": s.last_seen,
                "bytes_in": s.bytes_in,
                "bytes_out": s.bytes_out,
            })
        })
        .collect();
    Ok(Json(json!({ "nodes": nodes, "sessions": sessions })))
}

/// `GET /api/admin/directory`: `{users, groups}` (groups with their members' names).
pub async fn directory(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
) -> Result<Json<Value>, GatewayError> {
    require_admin(&state, &headers).await?;
    let mut authz = state.authz.clone();
    let users = authz
        .list_users(ListUsersRequest {})
        .await
        .map_err(|s| GatewayError::from_status(s, "users"))?
        .into_inner()
        .users;
    let groups = authz
        .list_groups(ListGroupsRequest {})
        .await
        .map_err(|s| GatewayError::from_status(s, "groups"))?
        .into_inner()
        .groups;
    let mut group_list = Vec::with_capacity(groups.len());
    for g in groups {
        let members = authz
            .list_group_members(ListGroupMembersRequest {
                group: g.name.clone(),
            })
            .await
            .map_err(|s| GatewayError::from_status(s, "group members"))?
            .into_inner()
            .members;
        let members: Vec<String> = members.into_iter().map(|m| m.username).collect();
        group_list.push(json!({ "name": g.name, "members": members }));
    }
    let users: Vec<Value> = users
        .into_iter()
        .map(|u| {
            json!({
                "username": u.username,
                "admin": u.admin,
                "disabled": u.disabled,
                "created_at": u.created_at,
            })
        })
        .collect();
    Ok(Json(json!({ "users": users, "groups": group_list })))
}

#[derive(Deserialize)]
pub struct KickBody {
    session_id: String,
}

/// `POST /api/admin/sessions/kick` `{session_id}`: ends that terminal on whichever gateway holds
/// it (within a second or two).
pub async fn kick(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    Json(body): Json<KickBody>,
) -> Result<Json<Value>, GatewayError> {
    crate::http::origin::check(&state.config, &headers)?;
    let admin = require_admin(&state, &headers).await?;
    if body.session_id.is_empty() || body.session_id.len() > 128 {
        return Err(GatewayError::BadRequest("bad session id".into()));
    }
    crate::browser::kick::publish(&state, &body.session_id).await?;
    info!(by = %admin.username, session = %body.session_id, "session kick requested");
    Ok(Json(json!({ "ok": true })))
}
