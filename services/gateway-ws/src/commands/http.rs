//! The web UI's command API (session cookie, the usual CSRF rule for the POST):
//!
//! * `GET /api/nodes/{node}/status`: `{node_id, node_name, online, gateway_id, connected_at,
//!   last_heartbeat, agent}` (`agent`: the AgentStatus the node's agent last sent, or null).
//! * `POST /api/nodes/{node}/commands/{name}` with `{"params": {...}}`: 200
//!   `application/x-ndjson`, one object per line as it comes: `started`, `stdout`/`stderr`
//!   (`data`: the bytes as UTF-8, lossy), then `finished` (`result`: the RunResult; a run
//!   that ended without one, e.g. its node went away, has `result.error`). Refusals before
//!   anything ran are plain errors `{"error"}`: 403 no grant, 404 unknown node, 409 the agent
//!   refused, 429 agent busy or rate limited, 503 offline.
//!
//! Closing the response (the browser navigates away, a fetch is aborted) cancels the run.

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;

use axum::Json;
use axum::body::{Body, Bytes};
use axum::extract::{ConnectInfo, Path, State};
use axum::http::header::{CACHE_CONTROL, CONTENT_TYPE};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use futures_util::StreamExt;
use phirepass_tunnel::command::RunResult;
use serde::Deserialize;
use serde_json::{Value, json};

use crate::accounts::auth::require_user;
use crate::commands::audit::Caller;
use crate::commands::nodes;
use crate::commands::runner::{self, RunEvent, RunRequest};
use crate::error::GatewayError;
use crate::http::client_ip::client_ip;
use crate::state::AppState;

/// `GET /api/nodes/{node}/status`.
pub async fn status(
    State(state): State<Arc<AppState>>,
    Path(node): Path<String>,
    headers: HeaderMap,
) -> Result<Json<Value>, GatewayError> {
    let user = require_user(&state, &headers).await?;
    let node = nodes::find(&state, &user.id, &user.username, &node).await?;
    let presence = nodes::presence(&state, &node.node_id).await?;
    Ok(Json(nodes::status_json(&node, presence.as_ref())))
}

#[derive(Deserialize)]
struct RunBody {
    #[serde(default)]
    params: BTreeMap<String, String>,
    #[serde(default)]
    correlation_id: String,
}

/// `POST /api/nodes/{node}/commands/{name}`.
pub async fn run(
    State(state): State<Arc<AppState>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    Path((node, name)): Path<(String, String)>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, GatewayError> {
    crate::http::origin::check(&state.config, &headers)?;
    let user = require_user(&state, &headers).await?;
    let body: RunBody = if body.is_empty() {
        RunBody {
            params: BTreeMap::new(),
            correlation_id: String::new(),
        }
    } else {
        serde_json::from_slice(&body).map_err(|e| {
            GatewayError::BadRequest(format!(
                "the body must be {{\"params\": {{\"name\": \"value\", ...}}}}: {e}"
            ))
        })?
    };
    let caller = Caller {
        user_id: user.id,
        username: user.username,
        client_ip: client_ip(&state.config, peer, &headers),
        via: "http",
    };
    let request = RunRequest {
        node,
        command: name,
        params: body.params,
        correlation_id: body.correlation_id,
    };
    let run = runner::start(&state, &caller, request).await?;
    let started = json!({
        "type": "started",
        "node_id": run.node_id,
        "node_name": run.node_name,
        "correlation_id": run.correlation_id,
    });
    let first = futures_util::stream::once(async move { line(&started) });
    let rest = runner::into_stream(run.events).map(|event| line(&event_json(event)));
    let body = Body::from_stream(first.chain(rest).map(Ok::<_, Infallible>));
    Ok((
        StatusCode::OK,
        [
            (CONTENT_TYPE, "application/x-ndjson"),
            (CACHE_CONTROL, "no-store"),
        ],
        body,
    )
        .into_response())
}

fn line(value: &Value) -> Bytes {
    let mut text = value.to_string();
    text.push('\n');
    Bytes::from(text)
}

fn event_json(event: Result<RunEvent, GatewayError>) -> Value {
    match event {
        Ok(RunEvent::Stdout(bytes)) => {
            json!({"type": "stdout", "data": String::from_utf8_lossy(&bytes)})
        }
        Ok(RunEvent::Stderr(bytes)) => {
            json!({"type": "stderr", "data": String::from_utf8_lossy(&bytes)})
        }
        Ok(RunEvent::Finished(result)) => json!({"type": "finished", "result": result}),
        // No result came: say why in the shape the UI already shows.
        Err(error) => {
            let result = RunResult {
                error: Some(error.public_message()),
                ..RunResult::default()
            };
            json!({"type": "finished", "result": result})
        }
    }
}
