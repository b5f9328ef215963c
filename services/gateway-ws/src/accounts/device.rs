//! Device activation (RFC 8628 style) for `phirepass-agent login --device` and the CLI: the
//! device starts and polls without a session; a logged-in user looks its short code up on
//! `/activate` (kind, hostname, source address, when) and confirms that very request. authz
//! rate-limits starts per client address and wrong codes per user.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::Json;
use axum::extract::{ConnectInfo, State};
use axum::http::HeaderMap;
use axum::http::header::HOST;
use phirepass_proto::authz::{
    ApproveDeviceRequest, InspectDeviceRequest, Node, PollDeviceAuthorizationRequest,
    StartDeviceAuthorizationRequest,
};
use phirepass_proto::registry::GetNodeRequest;
use serde::Deserialize;
use serde_json::{Value, json};
use tracing::{info, instrument, warn};

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
    // With the node token, authz's ticket keys: the agent pins them (issue #8).
    let ticket_keys = match &r.token {
        Some(_) => Some(state.tickets.key_set().await),
        None => None,
    };
    Ok(Json(json!({
        "state": r.state,
        "token": r.token,
        "node": r.node.map(node_json),
        "username": r.username,
        "ticket_keys": ticket_keys,
    })))
}

#[derive(Deserialize)]
pub struct InspectBody {
    user_code: String,
    #[serde(default)]
    node_name: String,
}

/// `POST /api/device/inspect` `{user_code, node_name?}` (logged in): what the code asks for,
/// before anything is approved: `{device_id, kind, hostname, client_ip, created_at, expires_at,
/// now, node_name, existing_node?, can_grant_admin}`. `existing_node` is the caller's node that
/// approving an agent under `node_name` would re-key, with whether it is online and when its
/// agent was last heard from.
#[instrument(skip_all)]
pub async fn inspect(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    Json(body): Json<InspectBody>,
) -> Result<Json<Value>, GatewayError> {
    crate::http::origin::check(&state.config, &headers)?;
    too_long(&[&body.user_code, &body.node_name])?;
    let user = require_user(&state, &headers).await?;
    let d = state
        .authz
        .clone()
        .inspect_device(InspectDeviceRequest {
            user_id: user.id,
            user_code: normal_code(&body.user_code),
            node_name: body.node_name.trim().to_string(),
        })
        .await
        .map_err(|s| GatewayError::from_status(s, "device code"))?
        .into_inner();
    let existing = match d.existing_node {
        Some(node) => Some(existing_node_json(&state, node).await),
        None => None,
    };
    Ok(Json(json!({
        "device_id": d.device_id,
        "kind": d.kind,
        "hostname": d.hostname,
        "client_ip": d.client_ip,
        "created_at": d.created_at,
        "expires_at": d.expires_at,
        // The page shows times relative to the gateway's clock, not the browser's.
        "now": phirepass_runtime::clock::now_millis(),
        "node_name": d.node_name,
        "existing_node": existing,
        "can_grant_admin": d.can_grant_admin,
    })))
}

/// The node an approval would re-key, with its presence: online and last heard from, or offline
/// (no gateway holds it). A registry failure says "unknown" rather than "offline".
async fn existing_node_json(state: &AppState, node: Node) -> Value {
    let presence = state
        .registry
        .clone()
        .get_node(GetNodeRequest {
            node_id: node.node_id.clone(),
        })
        .await;
    let (online, last_seen) = match presence {
        Ok(p) => {
            let p = p.into_inner();
            let seen = if p.agent_seen_at > 0 {
                p.agent_seen_at
            } else {
                p.last_heartbeat
            };
            (json!(true), json!(seen))
        }
        Err(s) if s.code() == tonic::Code::NotFound => (json!(false), Value::Null),
        Err(s) => {
            warn!(error = %s, "node presence unknown");
            (Value::Null, Value::Null)
        }
    };
    json!({
        "node_id": node.node_id,
        "name": node.name,
        "created_at": node.created_at,
        "online": online,
        "last_seen": last_seen,
    })
}

fn normal_code(code: &str) -> String {
    code.trim().to_ascii_uppercase()
}

#[derive(Deserialize)]
pub struct ApproveBody {
    user_code: String,
    #[serde(default)]
    node_name: String,
    /// From `/api/device/inspect`: the request the person reviewed.
    #[serde(default)]
    device_id: String,
    #[serde(default)]
    replace_node: bool,
    #[serde(default)]
    admin_scope: bool,
}

/// `POST /api/device/approve` `{user_code, device_id, node_name, replace_node?, admin_scope?}`
/// (logged in): `{kind, node?, scopes, replaced}`. Without the `device_id` that
/// `/api/device/inspect` returned, nothing is approved (409).
#[instrument(skip_all, fields(node_name = %body.node_name, replace_node = body.replace_node, admin_scope = body.admin_scope))]
pub async fn approve(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    Json(body): Json<ApproveBody>,
) -> Result<Json<Value>, GatewayError> {
    crate::http::origin::check(&state.config, &headers)?;
    too_long(&[&body.user_code, &body.node_name, &body.device_id])?;
    let user = require_user(&state, &headers).await?;
    let r = state
        .authz
        .clone()
        .approve_device(ApproveDeviceRequest {
            user_id: user.id,
            user_code: normal_code(&body.user_code),
            node_name: body.node_name.trim().to_string(),
            device_id: body.device_id,
            replace_node: body.replace_node,
            admin_scope: body.admin_scope,
        })
        .await
        .map_err(|s| GatewayError::from_status(s, "device code"))?
        .into_inner();
    info!(user = %user.username, kind = %r.kind, replaced = r.replaced, scopes = ?r.scopes, "device approved");
    Ok(Json(json!({
        "kind": r.kind,
        "node": r.node.map(node_json),
        "scopes": r.scopes,
        "replaced": r.replaced,
    })))
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
