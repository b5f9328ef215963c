//! `GET /api/tunnels`: the caller's `ssh -R` tunnels for the dashboard: the names they reserved
//! (authz ListTunnelNames) merged with their live tunnels (registry ListTunnels), each with its
//! public URL when it is an HTTP tunnel and the gateway serves a tunnel domain.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::Json;
use axum::extract::State;
use axum::http::HeaderMap;
use phirepass_proto::authz::ListTunnelNamesRequest;
use phirepass_proto::registry::{ListTunnelsRequest, TunnelPresence};
use serde::Serialize;
use serde_json::{Value, json};

use crate::accounts::auth::require_user;
use crate::config::ProxyConfig;
use crate::error::GatewayError;
use crate::proxy::host::tunnel_label;
use crate::state::AppState;

/// The port that makes a tunnel public HTTP (`ssh -R 80:…`); any other is a private alias.
const HTTP_PORT: u32 = 80;

/// One row of the list: a live tunnel, or a reserved name with nothing published on it.
#[derive(Serialize, Debug, PartialEq)]
pub struct TunnelRow {
    pub name: String,
    pub online: bool,
    /// `http` (public, port 80) or `alias` (private, reached through ssh-edge); none offline.
    pub kind: Option<&'static str>,
    pub port: Option<u32>,
    /// `<scheme>://<name>.<TUNNEL_DOMAIN>[:port]/` for live HTTP tunnels; none without a domain.
    pub url: Option<String>,
    /// The name is the user's for good (it stays listed, offline, when the client leaves).
    pub reserved: bool,
    /// When the name was reserved (ms since the epoch).
    pub created_at: Option<i64>,
    /// When the live tunnel was opened (ms since the epoch).
    pub since: Option<i64>,
}

pub async fn list(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
) -> Result<Json<Value>, GatewayError> {
    let user = require_user(&state, &headers).await.map_err(unavailable)?;
    let reserved: BTreeMap<String, i64> = state
        .authz
        .clone()
        .list_tunnel_names(ListTunnelNamesRequest {
            user_id: Some(user.id.clone()),
        })
        .await
        .map_err(|s| unavailable(GatewayError::from_status(s, "tunnel names")))?
        .into_inner()
        .names
        .into_iter()
        // Only ever the caller's own, whatever the service answers.
        .filter(|n| n.user_id == user.id)
        .map(|n| (n.name, n.created_at))
        .collect();
    let live: Vec<TunnelPresence> = state
        .registry
        .clone()
        .list_tunnels(ListTunnelsRequest {
            user_id: Some(user.id.clone()),
        })
        .await
        .map_err(|s| unavailable(GatewayError::from_status(s, "tunnels")))?
        .into_inner()
        .tunnels
        .into_iter()
        .filter(|t| t.user_id == user.id)
        .collect();
    let proxy = &state.config.proxy;
    let tunnels = merge(&reserved, live, proxy);
    Ok(Json(json!({
        "tunnels": tunnels,
        "tunnel_domain": proxy.tunnel_domain,
        "ssh_command": publish_command(&user.username, proxy),
    })))
}

/// A backing service that cannot be reached is a 503 here, not a 502.
fn unavailable(e: GatewayError) -> GatewayError {
    match e {
        GatewayError::Upstream(detail) => GatewayError::Unavailable(detail),
        other => other,
    }
}

/// Every live tunnel, plus every reserved name with nothing live on it; sorted by name and port.
pub fn merge(
    reserved: &BTreeMap<String, i64>,
    live: Vec<TunnelPresence>,
    proxy: &ProxyConfig,
) -> Vec<TunnelRow> {
    let mut rows: Vec<TunnelRow> = live
        .into_iter()
        .map(|t| {
            let http = t.port == HTTP_PORT && t.kind == "http";
            TunnelRow {
                url: if http {
                    public_url(&t.name, proxy)
                } else {
                    None
                },
                online: true,
                kind: Some(if http { "http" } else { "alias" }),
                port: Some(t.port),
                reserved: reserved.contains_key(&t.name),
                created_at: reserved.get(&t.name).copied(),
                since: (t.started_at > 0).then_some(t.started_at),
                name: t.name,
            }
        })
        .collect();
    for (name, created_at) in reserved {
        if !rows.iter().any(|r| r.name == *name) {
            rows.push(TunnelRow {
                name: name.clone(),
                online: false,
                kind: None,
                port: None,
                url: None,
                reserved: true,
                created_at: Some(*created_at),
                since: None,
            });
        }
    }
    rows.sort_by(|a, b| a.name.cmp(&b.name).then(a.port.cmp(&b.port)));
    rows
}

/// The URL the tunnel proxy answers for `name`, built like the app URLs (scheme, domain,
/// public port); none when no tunnel domain is configured or the name is no host label.
pub fn public_url(name: &str, proxy: &ProxyConfig) -> Option<String> {
    let domain = proxy.tunnel_domain.as_deref()?;
    if !tunnel_label(name) {
        return None;
    }
    let port = proxy
        .public_port
        .map(|p| format!(":{p}"))
        .unwrap_or_default();
    Some(format!("{}://{name}.{domain}{port}/", proxy.public_scheme))
}

/// The exact command that publishes a local web server on port 3000 through this deployment's
/// ssh-edge; none when the gateway was not told where ssh-edge is (`SSH_EDGE_PUBLIC_ADDR`).
pub fn publish_command(username: &str, proxy: &ProxyConfig) -> Option<String> {
    let addr = proxy.ssh_edge_addr.as_deref()?;
    // host:port, [v6]:port, or a bare host (port 22).
    let (host, port) = match addr.rsplit_once(':') {
        Some((host, port))
            if !host.is_empty() && port.parse::<u16>().is_ok() && !port.is_empty() =>
        {
            (host.trim_start_matches('[').trim_end_matches(']'), port)
        }
        _ => (addr, "22"),
    };
    let port = if port == "22" {
        String::new()
    } else {
        format!("-p {port} ")
    };
    Some(format!("ssh {port}-R 80:localhost:3000 {username}@{host}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn live(name: &str, port: u32, kind: &str) -> TunnelPresence {
        TunnelPresence {
            name: name.into(),
            port,
            kind: kind.into(),
            started_at: 5,
            ..TunnelPresence::default()
        }
    }

    #[test]
    fn urls_follow_the_proxy_configuration() {
        let mut proxy = ProxyConfig::local();
        assert_eq!(
            public_url("myapp", &proxy).as_deref(),
            Some("http://myapp.tunnel.localhost/")
        );
        proxy.public_scheme = "https".into();
        proxy.public_port = Some(8443);
        assert_eq!(
            public_url("myapp", &proxy).as_deref(),
            Some("https://myapp.tunnel.localhost:8443/")
        );
        assert_eq!(public_url("Not.A.Label", &proxy), None);
        proxy.tunnel_domain = None;
        assert_eq!(public_url("myapp", &proxy), None);
    }

    #[test]
    fn the_publish_command_names_the_edge() {
        let mut proxy = ProxyConfig::local();
        assert_eq!(publish_command("bob", &proxy), None);
        proxy.ssh_edge_addr = Some("127.0.0.1:2222".into());
        assert_eq!(
            publish_command("bob", &proxy).as_deref(),
            Some("ssh -p 2222 -R 80:localhost:3000 bob@127.0.0.1")
        );
        proxy.ssh_edge_addr = Some("edge.example.com:22".into());
        assert_eq!(
            publish_command("bob", &proxy).as_deref(),
            Some("ssh -R 80:localhost:3000 bob@edge.example.com")
        );
        proxy.ssh_edge_addr = Some("edge.example.com".into());
        assert_eq!(
            publish_command("bob", &proxy).as_deref(),
            Some("ssh -R 80:localhost:3000 bob@edge.example.com")
        );
        proxy.ssh_edge_addr = Some("[::1]:2222".into());
        assert_eq!(
            publish_command("bob", &proxy).as_deref(),
            Some("ssh -p 2222 -R 80:localhost:3000 bob@::1")
        );
    }

    #[test]
    fn reserved_names_and_live_tunnels_merge() {
        let proxy = ProxyConfig::local();
        let reserved: BTreeMap<String, i64> =
            [("site".to_string(), 1), ("idle".to_string(), 2)].into();
        let rows = merge(
            &reserved,
            vec![
                live("site", 80, "http"),
                live("db", 5432, "tcp"),
                live("site", 6000, "tcp"),
            ],
            &proxy,
        );
        let summary: Vec<_> = rows
            .iter()
            .map(|r| (r.name.as_str(), r.online, r.kind, r.port, r.reserved))
            .collect();
        assert_eq!(
            summary,
            [
                ("db", true, Some("alias"), Some(5432), false),
                ("idle", false, None, None, true),
                ("site", true, Some("http"), Some(80), true),
                ("site", true, Some("alias"), Some(6000), true),
            ]
        );
        assert_eq!(
            rows[2].url.as_deref(),
            Some("http://site.tunnel.localhost/")
        );
        assert_eq!((rows[2].created_at, rows[2].since), (Some(1), Some(5)));
        assert_eq!(rows[3].url, None);
        assert_eq!(rows[1].url, None);
    }
}
