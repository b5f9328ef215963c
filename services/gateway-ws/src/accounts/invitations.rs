//! Invitations, the only way in after setup: admins create, list and revoke them; the invitee
//! opens `/join/<code>`, sees what it offers and picks a password.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::Json;
use axum::extract::{ConnectInfo, State};
use axum::http::HeaderMap;
use axum::response::Response;
use phirepass_proto::authz::{
    AcceptInvitationRequest, CreateInvitationRequest, InspectInvitationRequest, Invitation,
    ListInvitationsRequest, RevokeInvitationRequest,
};
use serde::Deserialize;
use serde_json::{Value, json};
use tracing::{info, instrument};

use crate::accounts::auth::{check_credential_len, require_admin, start_session};
use crate::error::GatewayError;
use crate::http::client_ip::client_ip;
use crate::state::AppState;

/// Longest invitation code accepted; real ones are far shorter.
const MAX_CODE_LEN: usize = 256;

fn invitation_json(i: Invitation) -> Value {
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

fn check_code(code: &str) -> Result<(), GatewayError> {
    if code.is_empty() || code.len() > MAX_CODE_LEN {
        return Err(GatewayError::NotFound("invitation".into()));
    }
    Ok(())
}

#[derive(Deserialize)]
pub struct CreateBody {
    username: Option<String>,
    #[serde(default)]
    admin: bool,
    ttl_secs: Option<u64>,
}

/// `POST /api/admin/invitations`: `{code, invitation}`; the code is shown this once.
#[instrument(skip_all)]
pub async fn create(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    Json(body): Json<CreateBody>,
) -> Result<Json<Value>, GatewayError> {
    crate::http::origin::check(&state.config, &headers)?;
    let admin = require_admin(&state, &headers).await?;
    let reply = state
        .authz
        .clone()
        .create_invitation(CreateInvitationRequest {
            created_by: admin.username.clone(),
            username: body.username.filter(|u| !u.trim().is_empty()),
            admin: body.admin,
            ttl_secs: body.ttl_secs,
        })
        .await
        .map_err(|s| GatewayError::from_status(s, "invitation"))?
        .into_inner();
    info!(by = %admin.username, admin_invite = body.admin, "invitation created");
    Ok(Json(json!({
        "code": reply.code,
        "invitation": reply.invitation.map(invitation_json),
    })))
}

/// `GET /api/admin/invitations`.
pub async fn list(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
) -> Result<Json<Value>, GatewayError> {
    require_admin(&state, &headers).await?;
    let list = state
        .authz
        .clone()
        .list_invitations(ListInvitationsRequest {})
        .await
        .map_err(|s| GatewayError::from_status(s, "invitations"))?
        .into_inner()
        .invitations;
    let list: Vec<Value> = list.into_iter().map(invitation_json).collect();
    Ok(Json(json!({ "invitations": list })))
}

#[derive(Deserialize)]
pub struct RevokeBody {
    id: String,
}

/// `POST /api/admin/invitations/revoke` `{id}`.
pub async fn revoke(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    Json(body): Json<RevokeBody>,
) -> Result<Json<Value>, GatewayError> {
    crate::http::origin::check(&state.config, &headers)?;
    let admin = require_admin(&state, &headers).await?;
    state
        .authz
        .clone()
        .revoke_invitation(RevokeInvitationRequest {
            id: body.id.clone(),
        })
        .await
        .map_err(|s| GatewayError::from_status(s, "invitation"))?;
    info!(by = %admin.username, invitation = %body.id, "invitation revoked");
    Ok(Json(json!({ "ok": true })))
}

#[derive(Deserialize)]
pub struct InspectBody {
    code: String,
}

/// `POST /api/join/inspect` `{code}`: what the invitation offers; 404 (one answer) when it is
/// unknown, used, revoked or expired. POST so the code stays out of access logs' query strings.
pub async fn inspect(
    State(state): State<Arc<AppState>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    Json(body): Json<InspectBody>,
) -> Result<Json<Value>, GatewayError> {
    crate::http::origin::check(&state.config, &headers)?;
    check_code(&body.code)?;
    let invitation = state
        .authz
        .clone()
        .inspect_invitation(InspectInvitationRequest {
            code: body.code,
            client_ip: Some(client_ip(&state.config, peer, &headers)),
        })
        .await
        .map_err(|s| GatewayError::from_status(s, "invitation"))?
        .into_inner();
    let mut v = invitation_json(invitation);
    // The invitee needs neither the id nor who else used what.
    if let Some(o) = v.as_object_mut() {
        o.remove("id");
        o.remove("used_by");
    }
    Ok(Json(v))
}

#[derive(Deserialize)]
pub struct JoinBody {
    code: String,
    #[serde(default)]
    username: String,
    password: String,
}

/// `POST /api/join` `{code, username, password}`: uses the invitation, creates the user and
/// logs them in.
#[instrument(skip_all, fields(username = %body.username))]
pub async fn join(
    State(state): State<Arc<AppState>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    Json(body): Json<JoinBody>,
) -> Result<Response, GatewayError> {
    crate::http::origin::check(&state.config, &headers)?;
    check_code(&body.code)?;
    check_credential_len(&body.username, &body.password)?;
    let reply = state
        .authz
        .clone()
        .accept_invitation(AcceptInvitationRequest {
            code: body.code,
            username: body.username,
            password: body.password,
            client_ip: Some(client_ip(&state.config, peer, &headers)),
        })
        .await
        .map_err(|s| GatewayError::from_status(s, "invitation"))?
        .into_inner();
    start_session(&state, &headers, reply, "invitation accepted").await
}
