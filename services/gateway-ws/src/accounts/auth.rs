//! Browser login: `POST /api/auth/login`, `POST /api/auth/logout`, `GET /api/auth/me`, and the
//! session lookup every authenticated route and WebSocket uses.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::Json;
use axum::extract::{ConnectInfo, State};
use axum::http::HeaderMap;
use axum::http::header::SET_COOKIE;
use axum::response::{IntoResponse, Response};
use phirepass_proto::authz::{
    LoginRequest, LoginResponse, LogoutRequest, User, VerifySessionRequest,
};
use serde::{Deserialize, Serialize};
use tracing::{info, instrument};

use crate::accounts::cookie::{Jar, read, session_cookie, session_token};
use crate::error::GatewayError;
use crate::http::client_ip::client_ip;
use crate::state::AppState;

/// Longest username or password the gateway forwards; anything longer is refused unread.
const MAX_CREDENTIAL_LEN: usize = 1024;

#[derive(Deserialize)]
pub struct LoginBody {
    pub username: String,
    pub password: String,
}

#[derive(Serialize)]
pub struct SessionUser {
    pub id: String,
    pub username: String,
    /// May use the dashboard and manage invitations.
    pub admin: bool,
}

#[derive(Serialize)]
struct LoginReply {
    /// Bearer token for non-browser clients; browsers use the httpOnly cookie instead.
    token: String,
    expires_at: i64,
    user: SessionUser,
}

impl From<User> for SessionUser {
    fn from(u: User) -> Self {
        Self {
            id: u.id,
            username: u.username,
            admin: u.admin,
        }
    }
}

#[instrument(skip_all, fields(username = %body.username))]
pub async fn login(
    State(state): State<Arc<AppState>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    Json(body): Json<LoginBody>,
) -> Result<Response, GatewayError> {
    crate::http::origin::check(&state.config, &headers)?;
    check_credential_len(&body.username, &body.password)?;
    let ip = client_ip(&state.config, peer, &headers);
    let reply = state
        .authz
        .clone()
        .login(LoginRequest {
            username: body.username,
            password: body.password,
            client_ip: Some(ip),
        })
        .await
        .map_err(|s| match s.code() {
            tonic::Code::Unauthenticated => GatewayError::WrongCredentials,
            _ => GatewayError::from_status(s, "user"),
        })?
        .into_inner();
    start_session(&state, &headers, reply, "user logged in").await
}

/// Refuses oversized credentials before they reach authz.
pub fn check_credential_len(username: &str, password: &str) -> Result<(), GatewayError> {
    if username.len() > MAX_CREDENTIAL_LEN || password.len() > MAX_CREDENTIAL_LEN {
        return Err(GatewayError::BadRequest("credentials too long".into()));
    }
    Ok(())
}

/// Answers a successful login (password, first-run setup, accepted invitation): the session
/// cookie for browsers and the token in the body for other clients. The token is always the
/// fresh one authz minted for this login; a session cookie the browser already carried (left
/// by an earlier login, or planted to fix the session) is revoked, so it cannot ride along.
pub async fn start_session(
    state: &AppState,
    headers: &HeaderMap,
    reply: LoginResponse,
    what: &'static str,
) -> Result<Response, GatewayError> {
    let user = reply
        .user
        .ok_or_else(|| GatewayError::Upstream("login without user".into()))?;
    info!(user = %user.username, admin = user.admin, "{what}");
    let jar = Jar::of(&state.config, headers);
    if let Some(previous) = read(headers, jar.session())
        && previous != reply.session_token
    {
        revoke(state, previous).await;
    }
    let max_age = ((reply.expires_at - phirepass_runtime::clock::now_millis()) / 1000).max(0);
    let cookie = session_cookie(jar, &reply.session_token, max_age);
    let body = LoginReply {
        token: reply.session_token,
        expires_at: reply.expires_at,
        user: user.into(),
    };
    Ok(([(SET_COOKIE, cookie)], Json(body)).into_response())
}

/// Ends the session a stale cookie names; an unknown or expired token is already nothing.
async fn revoke(state: &AppState, token: String) {
    if token.len() > MAX_CREDENTIAL_LEN {
        return;
    }
    let revoked = state
        .authz
        .clone()
        .logout(LogoutRequest {
            session_token: token,
        })
        .await;
    if let Err(s) = revoked {
        tracing::debug!(code = ?s.code(), "the cookie carried into a login was no session");
    }
}

pub async fn logout(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
) -> Result<Response, GatewayError> {
    crate::http::origin::check(&state.config, &headers)?;
    let jar = Jar::of(&state.config, &headers);
    if let Some(token) = session_token(jar, &headers) {
        // Whose session it is, so every gateway ends that user's sockets on it at once.
        let owner = verify_session(&state, token.clone()).await.ok();
        state
            .authz
            .clone()
            .logout(LogoutRequest {
                session_token: token,
            })
            .await
            .map_err(|s| GatewayError::from_status(s, "session"))?;
        if let Some(user) = owner {
            crate::browser::revocation::publish_changed(&state, &user.id).await;
        }
    }
    let cookie = session_cookie(jar, "", 0);
    Ok((
        [(SET_COOKIE, cookie)],
        Json(serde_json::json!({"ok": true})),
    )
        .into_response())
}

pub async fn me(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
) -> Result<Json<SessionUser>, GatewayError> {
    Ok(Json(require_user(&state, &headers).await?.into()))
}

/// The logged-in user of a request: the session cookie, or `Authorization: Bearer`.
pub async fn require_user(state: &AppState, headers: &HeaderMap) -> Result<User, GatewayError> {
    let jar = Jar::of(&state.config, headers);
    let token = session_token(jar, headers).ok_or(GatewayError::Unauthenticated)?;
    verify_session(state, token).await
}

/// The logged-in user, who must be an admin: every admin call goes through here before the
/// gateway uses its service token on the user's behalf.
pub async fn require_admin(state: &AppState, headers: &HeaderMap) -> Result<User, GatewayError> {
    let user = require_user(state, headers).await?;
    if !user.admin {
        tracing::warn!(user = %user.username, "admin call refused: not an admin");
        return Err(GatewayError::Forbidden);
    }
    Ok(user)
}

pub async fn verify_session(state: &AppState, token: String) -> Result<User, GatewayError> {
    if token.is_empty() || token.len() > MAX_CREDENTIAL_LEN {
        return Err(GatewayError::Unauthenticated);
    }
    state
        .authz
        .clone()
        .verify_session(VerifySessionRequest {
            session_token: token,
        })
        .await
        .map(|r| r.into_inner())
        .map_err(|s| GatewayError::from_status(s, "session"))
}
