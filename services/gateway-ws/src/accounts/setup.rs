//! First run: while no user exists, `/setup` creates the first admin, given the one-time setup
//! code authz printed at start. A stranger who finds the page first cannot claim the instance.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use axum::Json;
use axum::extract::{ConnectInfo, State};
use axum::http::HeaderMap;
use axum::response::Response;
use phirepass_proto::authz::{CompleteSetupRequest, SetupStatusRequest};
use serde::Deserialize;
use serde_json::{Value, json};
use tracing::{instrument, warn};

use crate::accounts::auth::{check_credential_len, start_session};
use crate::error::GatewayError;
use crate::http::client_ip::client_ip;
use crate::state::AppState;

#[derive(Deserialize)]
pub struct SetupBody {
    code: String,
    username: String,
    password: String,
}

/// `GET /api/setup/status`: `{needs_setup}`.
pub async fn status(State(state): State<Arc<AppState>>) -> Result<Json<Value>, GatewayError> {
    let needs = state
        .authz
        .clone()
        .setup_status(SetupStatusRequest {})
        .await
        .map_err(|s| GatewayError::from_status(s, "setup"))?
        .into_inner()
        .needs_setup;
    Ok(Json(json!({ "needs_setup": needs })))
}

/// `POST /api/setup` `{code, username, password}`: creates the first admin and logs them in.
/// 403 for a wrong code (counted per client address by authz), 409 once a user exists.
#[instrument(skip_all, fields(username = %body.username))]
pub async fn complete(
    State(state): State<Arc<AppState>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    Json(body): Json<SetupBody>,
) -> Result<Response, GatewayError> {
    crate::http::origin::check(&state.config, &headers)?;
    check_credential_len(&body.username, &body.password)?;
    if body.code.len() > 256 {
        return Err(GatewayError::BadRequest("setup code too long".into()));
    }
    let ip = client_ip(&state.config, peer, &headers);
    let reply = state
        .authz
        .clone()
        .complete_setup(CompleteSetupRequest {
            setup_code: body.code,
            username: body.username,
            password: body.password,
            client_ip: Some(ip.clone()),
        })
        .await
        .map_err(|s| {
            if s.code() == tonic::Code::PermissionDenied {
                warn!(client_ip = %ip, "setup refused: wrong setup code");
                GatewayError::BadRequest("wrong setup code".into())
            } else {
                GatewayError::from_status(s, "setup")
            }
        })?
        .into_inner();
    state.setup_done.store(true, Ordering::Relaxed);
    start_session(&state, &headers, reply, "first admin created").await
}
