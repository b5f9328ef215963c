//! Public HTTP tunnels: `<name>.<TUNNEL_DOMAIN>` goes to the `ssh -R` session that published
//! `name` on port 80, found in the registry. The name is the only key: nothing else from the
//! request chooses the upstream.

use axum::extract::Request;
use axum::http::StatusCode;
use axum::response::Response;
use phirepass_proto::registry::GetTunnelRequest;
use tracing::{debug, warn};

use super::engine::Failure;
use super::shared::Proxy;
use super::{headers, page};
use crate::state::AppState;

/// The port a public HTTP tunnel is published on (`ssh -R [name:]80:...`).
pub const HTTP_PORT: u16 = 80;
enum Lookup {
    Found(String),
    Unknown,
    Failed,
}

async fn resolve(state: &AppState, proxy: &Proxy, name: &str) -> Lookup {
    if let Some(node) = proxy.tunnels.get(name) {
        return Lookup::Found(node);
    }
    let reply = state
        .registry
        .clone()
        .get_tunnel(GetTunnelRequest {
            name: name.to_string(),
            port: u32::from(HTTP_PORT),
        })
        .await;
    match reply {
        Ok(t) => {
            let t = t.into_inner();
            // Trust nothing but an exact answer for the name asked.
            if t.name != name
                || t.port != u32::from(HTTP_PORT)
                || !phirepass_tunnel::valid_token(&t.node_id)
            {
                warn!(tunnel = %name, "registry answered for another tunnel; refusing");
                return Lookup::Failed;
            }
            proxy.tunnels.put(name.to_string(), t.node_id.clone());
            Lookup::Found(t.node_id)
        }
        Err(s) if s.code() == tonic::Code::NotFound => Lookup::Unknown,
        Err(s) => {
            warn!(tunnel = %name, code = ?s.code(), "tunnel lookup failed");
            Lookup::Failed
        }
    }
}

pub async fn serve(
    state: &AppState,
    name: &str,
    request: Request,
    client: &headers::Client<'_>,
) -> Response {
    let proxy = &state.proxy;
    let node_id = match resolve(state, proxy, name).await {
        Lookup::Found(node) => node,
        Lookup::Unknown => {
            return page::page(
                StatusCode::NOT_FOUND,
                &format!("no tunnel named {name}"),
                None,
            );
        }
        Lookup::Failed => {
            return page::page(
                StatusCode::BAD_GATEWAY,
                "tunnel lookup failed, try again",
                None,
            );
        }
    };
    match proxy
        .engine
        .forward(
            super::connector::PUBLIC,
            &node_id,
            HTTP_PORT,
            request,
            client,
        )
        .await
    {
        Ok(response) => response,
        Err(failure) => {
            if matches!(failure, Failure::Offline) {
                // The session may have gone (or moved); look the name up afresh next time.
                proxy.tunnels.forget(name);
            }
            debug!(tunnel = %name, ?failure, "tunnel request failed");
            page::failure(&failure, &format!("tunnel {name}"))
        }
    }
}
