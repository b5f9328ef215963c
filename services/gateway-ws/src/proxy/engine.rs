//! The proxy engine shared by tunnels and app ports: a pooled hyper 1 client whose connections
//! are TunnelStreams, streaming bodies both ways and bridging protocol upgrades (WebSocket).

use std::error::Error as _;
use std::time::Duration;

use axum::body::Body;
use axum::extract::Request;
use axum::http::{StatusCode, Version};
use axum::response::Response;
use hyper_util::client::legacy::Client;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use phirepass_tunnel::OpenError;
use tracing::{debug, warn};

use super::connector::{TunnelConnector, upstream_uri};
use super::headers::{self, upgrade_requested};
use super::revocation::{AppWatch, bridge_watched};
use crate::browser::revocation::LiveGuard;

/// Idle connections kept per (node, port): enough for a browser's or a benchmark's parallelism.
const MAX_IDLE_PER_UPSTREAM: usize = 64;
/// Idle pooled connections are closed after this (below the TunnelStream idle timeout's reach:
/// keepalives hold them, but an unused stream should not live forever).
const POOL_IDLE: Duration = Duration::from_secs(30);

/// Why a request could not be proxied.
#[derive(Debug)]
pub enum Failure {
    /// Nobody holds the node (NATS "no responders").
    Offline,
    /// The node refused the stream (port not allowed, local connect failed).
    Refused(String),
    /// The upstream did not answer with a response head in time.
    Timeout,
    /// Anything else between us and the upstream.
    Unreachable(String),
}

pub struct Engine {
    client: Client<TunnelConnector, Body>,
    response_timeout: Duration,
}

impl Engine {
    pub fn new(connector: TunnelConnector, response_timeout: Duration) -> Self {
        let client = Client::builder(TokioExecutor::new())
            .pool_idle_timeout(POOL_IDLE)
            .pool_max_idle_per_host(MAX_IDLE_PER_UPSTREAM)
            .pool_timer(TokioTimer::new())
            // The client's Host is kept as it came: the upstream sees the public name.
            .set_host(false)
            .build(connector);
        Self {
            client,
            response_timeout,
        }
    }

    /// Sends `request` to `port` on node `node_id` and returns the upstream's response, with
    /// hop-by-hop headers removed. For a granted upgrade the answer is the 101 and a task
    /// bridges the two upgraded connections.
    pub async fn forward(
        &self,
        opener: &str,
        node_id: &str,
        port: u16,
        mut request: Request,
        client: &headers::Client<'_>,
    ) -> Result<Response, Failure> {
        let upgrade = upgrade_requested(request.headers());
        let client_upgrade = upgrade.is_some().then(|| hyper::upgrade::on(&mut request));
        let watch = request
            .extensions_mut()
            .remove::<AppWatch>()
            .and_then(|w| w.take());
        let (mut parts, body) = request.into_parts();
        let path = parts
            .uri
            .path_and_query()
            .map(|p| p.as_str())
            .unwrap_or("/");
        parts.uri = upstream_uri(opener, node_id, port, path)
            .map_err(|e| Failure::Unreachable(e.to_string()))?;
        parts.version = Version::HTTP_11;
        headers::upstream_request(&mut parts.headers, client, upgrade.clone());
        let upstream = Request::from_parts(parts, body);
        let answer = tokio::time::timeout(self.response_timeout, self.client.request(upstream))
            .await
            .map_err(|_| Failure::Timeout)?;
        let mut response = answer.map_err(classify)?;
        let switching = response.status() == StatusCode::SWITCHING_PROTOCOLS;
        match client_upgrade {
            Some(client_side) if switching => {
                let upstream_side = hyper::upgrade::on(&mut response);
                let protocol = response.headers().get(axum::http::header::UPGRADE).cloned();
                let websocket = protocol
                    .as_ref()
                    .is_some_and(|p| p.as_bytes().eq_ignore_ascii_case(b"websocket"));
                tokio::spawn(bridge(client_side, upstream_side, watch, websocket));
                let (mut parts, _) = response.into_parts();
                headers::client_response(&mut parts.headers, protocol);
                Ok(Response::from_parts(parts, Body::empty()))
            }
            _ => {
                let (mut parts, body) = response.into_parts();
                headers::client_response(&mut parts.headers, None);
                Ok(Response::from_parts(parts, Body::new(body)))
            }
        }
    }
}

/// Copies bytes both ways between the client's and the upstream's upgraded connections; a
/// watched one (an app WebSocket) also ends when its access is revoked.
async fn bridge(
    client: hyper::upgrade::OnUpgrade,
    upstream: hyper::upgrade::OnUpgrade,
    watch: Option<LiveGuard>,
    websocket: bool,
) {
    match tokio::join!(client, upstream) {
        (Ok(client), Ok(upstream)) => {
            let mut client = TokioIo::new(client);
            let mut upstream = TokioIo::new(upstream);
            if let Some(guard) = watch {
                return bridge_watched(client, upstream, guard, websocket).await;
            }
            match tokio::io::copy_bidirectional(&mut client, &mut upstream).await {
                Ok((up, down)) => debug!(up, down, "upgraded connection closed"),
                Err(e) => debug!(error = %e, "upgraded connection ended"),
            }
        }
        (Err(e), _) | (_, Err(e)) => warn!(error = %e, "upgrade failed"),
    }
}

/// Finds the TunnelStream open error behind a client error, if there is one.
fn classify(error: hyper_util::client::legacy::Error) -> Failure {
    let mut source = error.source();
    while let Some(e) = source {
        if let Some(open) = e.downcast_ref::<OpenError>() {
            return match open {
                OpenError::NodeOffline => Failure::Offline,
                OpenError::Refused(reason) => Failure::Refused(reason.clone()),
                OpenError::Timeout => Failure::Timeout,
                OpenError::NoTicket(reason) => Failure::Refused(reason.clone()),
                other => Failure::Unreachable(other.to_string()),
            };
        }
        source = e.source();
    }
    Failure::Unreachable(error.to_string())
}
