//! Browser login: `POST /api/auth/login`, `POST /api/auth/logout`, `GET /api/auth/me`, and the
//! session lookup every authenticated route and WebSocket uses.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::Json;
use axum::extract::{ConnectInfo, State};
use axum::http::header::{AUTHORIZATION, COOKIE, SET_COOKIE};
use axum::http::{HeaderMap, HeaderValue};
use axum::response::{IntoResponse, Response};
use phirepass_proto::authz::{
    LoginRequest, LoginResponse, LogoutRequest, User, VerifySessionRequest,
};
use serde::{Deserialize, Serialize};
use tracing::{info, instrument};

use crate::config::AppMode;
use crate::error::GatewayError;
use crate::origin::client_ip;
use crate::state::AppState;

pub const SESSION_COOKIE: &str = "pp_session";
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
    crate::csrf::check(&state.config, &headers)?;
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
        .map_err(|s| GatewayError::from_status(s, "user"))?
        .into_inner();
    start_session(&state, reply, "user logged in")
}

/// Refuses oversized credentials before they reach authz.
pub fn check_credential_len(username: &str, password: &str) -> Result<(), GatewayError> {
    if username.len() > MAX_CREDENTIAL_LEN || password.len() > MAX_CREDENTIAL_LEN {
        return Err(GatewayError::BadRequest("credentials too long".into()));
    }
    Ok(())
}

/// Answers a successful login (password, first-run setup, accepted invitation): the session
/// cookie for browsers and the token in the body for other clients.
pub fn start_session(
    state: &AppState,
    reply: LoginResponse,
    what: &'static str,
) -> Result<Response, GatewayError> {
    let user = reply
        .user
        .ok_or_else(|| GatewayError::Upstream("login without user".into()))?;
    info!(user = %user.username, admin = user.admin, "{what}");
    let max_age = ((reply.expires_at - crate::state::now_ms()) / 1000).max(0);
    let cookie = session_cookie(&reply.session_token, max_age, state.config.mode);
    let body = LoginReply {
        token: reply.session_token,
        expires_at: reply.expires_at,
        user: user.into(),
    };
    Ok(([(SET_COOKIE, cookie)], Json(body)).into_response())
}

pub async fn logout(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
) -> Result<Response, GatewayError> {
    crate::csrf::check(&state.config, &headers)?;
    if let Some(token) = session_token(&headers) {
        state
            .authz
            .clone()
            .logout(LogoutRequest {
                session_token: token,
            })
            .await
            .map_err(|s| GatewayError::from_status(s, "session"))?;
    }
    let cookie = session_cookie("", 0, state.config.mode);
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
    let token = session_token(headers).ok_or(GatewayError::Unauthenticated)?;
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

/// The session token from the cookie or a bearer header; never from the URL.
pub fn session_token(headers: &HeaderMap) -> Option<String> {
    if let Some(bearer) = headers
        .get(AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
    {
        return Some(bearer.trim().to_string());
    }
    headers
        .get_all(COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, _)| *name == SESSION_COOKIE)
        .map(|(_, value)| value.to_string())
        .filter(|v| !v.is_empty())
}

fn session_cookie(token: &str, max_age: i64, mode: AppMode) -> HeaderValue {
    let secure = if mode == AppMode::Production {
        "; Secure"
    } else {
        ""
    };
    let value = format!(
        "{SESSION_COOKIE}={token}; HttpOnly; SameSite=Strict; Path=/; Max-Age={max_age}{secure}"
    );
    // Tokens are hex, so the header value is always valid; fall back to clearing the cookie.
    HeaderValue::from_str(&value)
        .unwrap_or_else(|_| HeaderValue::from_static("pp_session=; Max-Age=0"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn token_from_cookie_or_bearer() {
        let mut h = HeaderMap::new();
        h.insert(COOKIE, HeaderValue::from_static("a=b; pp_session=abc; c=d"));
        assert_eq!(session_token(&h).as_deref(), Some("abc"));
        h.insert(AUTHORIZATION, HeaderValue::from_static("Bearer xyz"));
        assert_eq!(session_token(&h).as_deref(), Some("xyz"));
        assert_eq!(session_token(&HeaderMap::new()), None);
    }

    #[test]
    fn production_cookie_is_secure() {
        let c = session_cookie("t", 10, AppMode::Production);
        let s = c.to_str().unwrap_or_default();
        assert!(s.contains("HttpOnly") && s.contains("Secure") && s.contains("SameSite=Strict"));
    }
}
