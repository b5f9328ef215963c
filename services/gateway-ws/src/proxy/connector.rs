//! Connections for the proxy's HTTP client: each one a TunnelStream to a node's port. The
//! client's URIs name the upstream as `http://<opener>@<node_id>:<port>`, so its pool keeps idle
//! connections per (opener, node, port) and never hands one node's connection to another, nor
//! one user's to another: each connection opens with authz's ticket for its user (the
//! opener `u-<user id>`), or for the public (`public`: `ssh -R` HTTP tunnels).

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use axum::http::Uri;
use hyper::rt::{Read, ReadBufCursor, Write};
use hyper_util::client::legacy::connect::{Connected, Connection};
use hyper_util::rt::TokioIo;
use phirepass_bus::Bus;
use phirepass_tunnel::{OpenError, StreamConfig, Subjects, Target, TunnelStream};

use crate::state::Authz;
use crate::tickets::{self, Opener};

#[derive(Clone)]
pub struct TunnelConnector {
    pub bus: Arc<dyn Bus>,
    pub subjects: Subjects,
    pub edge_id: String,
    pub stream_config: StreamConfig,
    pub authz: Authz,
}

/// The opener of a public tunnel's connections.
pub const PUBLIC: &str = "public";

/// The opener naming user `user_id`.
pub fn user_opener(user_id: &str) -> String {
    format!("u-{user_id}")
}

/// The upstream address a proxy URI names.
pub fn upstream_uri(
    opener: &str,
    node_id: &str,
    port: u16,
    path_and_query: &str,
) -> Result<Uri, OpenError> {
    if !phirepass_tunnel::valid_token(node_id) || !phirepass_tunnel::valid_token(opener) {
        return Err(OpenError::InvalidId);
    }
    format!("http://{opener}@{node_id}:{port}{path_and_query}")
        .parse()
        .map_err(|_| OpenError::InvalidId)
}

impl tower::Service<Uri> for TunnelConnector {
    type Response = TunnelIo;
    type Error = OpenError;
    type Future = Pin<Box<dyn Future<Output = Result<TunnelIo, OpenError>> + Send>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, uri: Uri) -> Self::Future {
        let this = self.clone();
        Box::pin(async move {
            let node_id = uri.host().ok_or(OpenError::InvalidId)?;
            let port = uri.port_u16().ok_or(OpenError::InvalidId)?;
            let userinfo = uri.authority().and_then(|a| a.as_str().split_once('@'));
            let opener = match userinfo {
                Some((PUBLIC, _)) => Opener::PublicTunnel,
                Some((user, _)) => match user.strip_prefix("u-") {
                    Some(id) => Opener::UserId(id),
                    None => return Err(OpenError::InvalidId),
                },
                None => return Err(OpenError::InvalidId),
            };
            let mut headers = Vec::new();
            phirepass_runtime::telemetry::inject(&mut headers);
            let target = Target::Port { port };
            let edge = this.edge_id.as_str();
            let ticket =
                |id| tickets::issue(&this.authz, edge, opener, node_id, node_id, &target, id);
            let stream = phirepass_tunnel::open_ticketed(
                &this.bus,
                &this.subjects,
                edge,
                node_id,
                target.clone(),
                headers,
                &this.stream_config,
                ticket,
            )
            .await?;
            Ok(TunnelIo(TokioIo::new(stream)))
        })
    }
}

/// A TunnelStream as hyper I/O.
pub struct TunnelIo(TokioIo<TunnelStream>);

impl Connection for TunnelIo {
    fn connected(&self) -> Connected {
        Connected::new()
    }
}

impl Read for TunnelIo {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: ReadBufCursor<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().0).poll_read(cx, buf)
    }
}

impl Write for TunnelIo {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().0).poll_write(cx, buf)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().0).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().0).poll_shutdown(cx)
    }
}
