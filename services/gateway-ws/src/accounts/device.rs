//! Device activation (RFC 8628 style) for `phirepass-agent login --device` and the CLI: the
//! device starts and polls without a session; a logged-in user approves its short code on
//! `/activate`. authz rate-limits starts per client address and wrong codes per user.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::Json;
use axum::extract::{ConnectInfo, State};
use axum::http::HeaderMap;
use axum::http::header::HOST;
use phirepass_proto::authz::{
    ApproveDeviceRequest, Node, PollDeviceAuthorizationRequest, StartDeviceAuthorizationRequest,
};
use serde::Deserialize;
use serde_json::{Value, json};
use tracing::{info, instrument};

use crate::accounts::auth::require_user;
use crate::config::AppMode;
use crate::error::GatewayError;
use crate::http::client_ip::client_ip;
use crate::state::AppState;

const MAX_FIELD_LEN: usize = 256;

fn too_long(fields: &[&str]) -> Result<(), GatewayError> {
    if fields.iter().any(|f| f.len() > MAX_FIELD_LEN) {
        return Err(GatewayError::BadRequest("field too long".into()));
    }
    Ok(())
}

fn node_json(n: Node) -> Value {
    json!({ "node_id": n.node_id, "name": n.name, "username": n.username })
}

#[derive(Deserialize)]
pub struct StartBody {
    kind: String,
    #[serde(default)]
    hostname: String,
}

/// `POST /api/device/start` `{kind: "agent"|"cli", hostname}`:
/// `{device_code, user_code, expires_at, interval_secs, verification_uri, verification_uri_complete}`.
#[instrument(skip_all, fields(kind = %body.kind, hostname = %body.hostname))]
pub async fn start(
    State(state): State<Arc<AppState>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    Json(body): Json<StartBody>,
) -> Result<Json<Value>, GatewayError> {
    crate::http::origin::check(&state.config, &headers)?;
    too_long(&[&body.kind, &body.hostname])?;
    let ip = client_ip(&state.config, peer, &headers);
    let d = state
        .authz
        .clone()
        .start_device_authorization(StartDeviceAuthorizationRequest {
            kind: body.kind,
            hostname: body.hostname,
            client_ip: Some(ip),
        })
        .await
        .map_err(|s| GatewayError::from_status(s, "device"))?
        .into_inner();
    let base = activation_base(&state, &headers)?;
    // Neither code is logged: a user code read from logs approves someone else's device.
    info!("device authorization started");
    Ok(Json(json!({
        "device_code": d.device_code,
        "user_code": d.user_code,
        "expires_at": d.expires_at,
        "interval_secs": d.interval_secs,
        "verification_uri": format!("{base}/activate"),
        "verification_uri_complete": format!("{base}/activate?code={}", d.user_code),
    })))
}

/// Where the person should go: the configured dashboard origin (`PROXY_MAIN_ORIGIN`, else the
/// first `ACCESS_CONTROL_ALLOW_ORIGIN`). The request's Host is chosen by whoever sends it, so
/// it is used only when it names this machine (`phirepass dev`): anything else would let a
/// stranger make the gateway hand out a link to their own site.
fn activation_base(state: &AppState, headers: &HeaderMap) -> Result<String, GatewayError> {
    if let Some(origin) = &state.config.proxy.main_origin {
        return Ok(origin.clone());
    }
    let host = headers
        .get(HOST)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("localhost");
    if !is_loopback_host(host) {
        return Err(GatewayError::Conflict(
            "device activation needs the dashboard's public address: set PROXY_MAIN_ORIGIN \
             (or ACCESS_CONTROL_ALLOW_ORIGIN) on the gateway"
                .into(),
        ));
    }
    let scheme = match state.config.mode {
        AppMode::Production => "https",
        AppMode::Development => "http",
    };
    Ok(format!("{scheme}://{host}"))
}

/// `localhost`, `*.localhost` or a loopback IP, with an optional numeric port and nothing else
/// (no `@`, `/` or other characters that would change what the URL points to).
fn is_loopback_host(host: &str) -> bool {
    // `port` is `None` when absent; `Some` must then be digits.
    let (name, port) = match host.strip_prefix('[') {
        Some(rest) => match rest.split_once(']') {
            Some((ip, "")) => (ip, None),
            Some((ip, after)) => match after.strip_prefix(':') {
                Some(port) => (ip, Some(port)),
                None => return false,
            },
            None => return false,
        },
        None => match host.rsplit_once(':') {
            Some((name, port)) => (name, Some(port)),
            None => (host, None),
        },
    };
    let port_ok = port.is_none_or(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()));
    let name = name.to_ascii_lowercase();
    let name_ok = name
        .parse::<std::net::IpAddr>()
        .is_ok_and(|ip| ip.is_loopback())
        || ((name == "localhost" || name.ends_with(".localhost"))
            && name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.'));
    port_ok && name_ok
}

#[cfg(test)]
mod tests {
    use super::is_loopback_host;

    #[test]
    fn only_plain_loopback_hosts_are_trusted() {
        for ok in [
            "localhost",
            "127.0.0.1:8080",
            "[::1]:80",
            "[::1]",
            "app.localhost:3000",
        ] {
            assert!(is_loopback_host(ok), "{ok}");
        }
        for bad in [
            "evil.example",
            "localhost:80@evil.example",
            "localhost.evil.example",
            "127.0.0.1/evil",
            "[::1]x",
            "localhost:",
            "10.0.0.1:80",
        ] {
            assert!(!is_loopback_host(bad), "{bad}");
        }
    }
}

#[derive(Deserialize)]
pub struct PollBody {
    device_code: String,
}

/// `POST /api/device/poll` `{device_code}`: `{state: pending|approved|expired, token?, node?,
/// username}`. The token comes exactly once.
pub async fn poll(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    Json(body): Json<PollBody>,
) -> Result<Json<Value>, GatewayError> {
    crate::http::origin::check(&state.config, &headers)?;
    too_long(&[&body.device_code])?;
    let r = state
        .authz
        .clone()
        .poll_device_authorization(PollDeviceAuthorizationRequest {
            device_code: body.device_code,
        })
        .await
        .map_err(|s| GatewayError::from_status(s, "device code"))?
        .into_inner();
    Ok(Json(json!({
        "state": r.state,
        "token": r.token,
        "node": r.node.map(node_json),
        "username": r.username,
    })))
}

#[derive(Deserialize)]
pub struct ApproveBody {
    user_code: String,
    #[serde(default)]
    node_name: String,
}

/// `POST /api/device/approve` `{user_code, node_name}` (logged in): `{kind, node?}`.
#[instrument(skip_all, fields(node_name = %body.node_name))]
pub async fn approve(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    Json(body): Json<ApproveBody>,
) -> Result<Json<Value>, GatewayError> {
    crate::http::origin::check(&state.config, &headers)?;
    too_long(&[&body.user_code, &body.node_name])?;
    let user = require_user(&state, &headers).await?;
    let r = state
        .authz
        .clone()
        .approve_device(ApproveDeviceRequest {
            user_id: user.id,
            user_code: body.user_code.trim().to_ascii_uppercase(),
            node_name: body.node_name.trim().to_string(),
        })
        .await
        .map_err(|s| GatewayError::from_status(s, "device code"))?
        .into_inner();
    info!(user = %user.username, kind = %r.kind, "device approved");
    Ok(Json(
        json!({ "kind": r.kind, "node": r.node.map(node_json) }),
    ))
}
