//! App-host WebSockets end when the grant that allowed them is revoked (or the user is disabled
//! or deleted). The upgrade request registers the stream with the gateway's live-access table
//! (`browser::revocation`); the engine's bridge ends the upgraded connection when it is
//! revoked, with a WebSocket close frame (1008, "access revoked: ...") when it can place one
//! between the upstream's frames.

use std::sync::{Arc, Mutex};

use axum::extract::Request;
use axum::http::StatusCode;
use axum::response::Response;
use hyper::upgrade::Upgraded;
use hyper_util::rt::TokioIo;
use phirepass_proto::authz::VerifyAppTokenRequest;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tracing::{debug, info, warn};

use super::headers::{self, upgrade_requested};
use super::page;
use crate::browser::revocation::LiveGuard;
use crate::http::client_ip::client_ip;
use crate::state::AppState;

/// A live-access registration riding in the upgrade request's extensions to the engine.
#[derive(Clone)]
pub(super) struct AppWatch(Arc<Mutex<Option<LiveGuard>>>);

impl AppWatch {
    pub(super) fn take(&self) -> Option<LiveGuard> {
        self.0.lock().unwrap_or_else(|p| p.into_inner()).take()
    }
}

/// For an upgrade on app host `<port>-<node>`: registers the stream for the token's user on
/// `node_id`. Other requests pass unchanged (each is verified on its own).
pub(super) async fn watch_app(
    state: &AppState,
    (token, node, port, node_id): (&str, &str, u16, &str),
    mut request: Request,
    client: &headers::Client<'_>,
) -> Result<Request, Response> {
    if upgrade_requested(request.headers()).is_none() {
        return Ok(request);
    }
    // Who the token is for now (the request's own check may be a second old).
    let reply = state
        .authz
        .clone()
        .verify_app_token(VerifyAppTokenRequest {
            token: token.to_string(),
            node: node.to_string(),
            port: u32::from(port),
            client_ip: Some(client_ip(&state.config, client.peer, request.headers())),
        })
        .await;
    let who = match reply {
        Ok(r) => r.into_inner(),
        Err(s) => {
            info!(node = %node, port, code = ?s.code(), "app websocket refused");
            let message = format!("you no longer have access to node {node}");
            return Err(page::page(StatusCode::FORBIDDEN, &message, None));
        }
    };
    let guard = state.live.register(&who.user_id, &who.username, None);
    guard.set_target(Some((node_id, node)));
    request
        .extensions_mut()
        .insert(AppWatch(Arc::new(Mutex::new(Some(guard)))));
    Ok(request)
}

/// Copies both ways until both sides are done, or until `guard` is revoked: then the client
/// gets a close frame saying why (a WebSocket at a frame boundary) and both sides are closed.
pub(super) async fn bridge_watched(
    client: TokioIo<Upgraded>,
    upstream: TokioIo<Upgraded>,
    mut guard: LiveGuard,
    websocket: bool,
) {
    let (mut cr, mut cw) = tokio::io::split(client);
    let (mut ur, mut uw) = tokio::io::split(upstream);
    let mut cursor = FrameCursor::default();
    let revoked = {
        let up = async {
            let copied = tokio::io::copy(&mut cr, &mut uw).await;
            let _ = uw.shutdown().await;
            copied
        };
        let down = copy_frames(&mut ur, &mut cw, &mut cursor);
        tokio::pin!(up, down);
        let (mut up_done, mut down_done) = (false, false);
        loop {
            tokio::select! {
                r = &mut up, if !up_done => {
                    up_done = true;
                    debug!(result = ?r.map_err(|e| e.to_string()), "upgraded connection: client side done");
                }
                r = &mut down, if !down_done => {
                    down_done = true;
                    debug!(result = ?r.map_err(|e| e.to_string()), "upgraded connection: upstream side done");
                }
                reason = guard.revoked() => break Some(reason),
            }
            if up_done && down_done {
                break None;
            }
        }
    };
    let Some(reason) = revoked else {
        return;
    };
    info!(reason = %reason, "app websocket ended: access revoked");
    if websocket && cursor.at_boundary() {
        let _ = cw.write_all(&close_frame(&reason)).await;
    } else if websocket {
        warn!("app websocket revoked mid-frame: closed without a close frame");
    }
    let _ = cw.shutdown().await;
    let _ = uw.shutdown().await;
}

/// Copies upstream to client, keeping `cursor` on the WebSocket frame boundaries.
async fn copy_frames<R, W>(r: &mut R, w: &mut W, cursor: &mut FrameCursor) -> std::io::Result<u64>
where
    R: AsyncRead + Unpin,
    W: AsyncWrite + Unpin,
{
    let mut buf = vec![0u8; 16 * 1024];
    let mut total = 0u64;
    loop {
        let n = r.read(&mut buf).await?;
        if n == 0 {
            w.shutdown().await?;
            return Ok(total);
        }
        // Interrupted mid-write, the client may hold part of these bytes: not a boundary.
        cursor.in_flight = true;
        w.write_all(&buf[..n]).await?;
        cursor.feed(&buf[..n]);
        cursor.in_flight = false;
        total += n as u64;
    }
}

/// Where a byte stream of WebSocket frames (RFC 6455 section 5.2) stands.
#[derive(Default, Debug)]
pub(super) struct FrameCursor {
    /// Bytes of a frame header read so far.
    header: Vec<u8>,
    /// Payload bytes of the current frame still to come.
    remaining: u64,
    in_flight: bool,
}

impl FrameCursor {
    pub(super) fn feed(&mut self, mut data: &[u8]) {
        while !data.is_empty() {
            if self.remaining > 0 {
                let take = usize::try_from(self.remaining)
                    .unwrap_or(usize::MAX)
                    .min(data.len());
                self.remaining -= take as u64;
                data = &data[take..];
                continue;
            }
            self.header.push(data[0]);
            data = &data[1..];
            if let Some(payload) = complete_header(&self.header) {
                self.header.clear();
                self.remaining = payload;
            }
        }
    }

    pub(super) fn at_boundary(&self) -> bool {
        !self.in_flight && self.remaining == 0 && self.header.is_empty()
    }
}

/// The payload length once `h` holds a whole frame header.
fn complete_header(h: &[u8]) -> Option<u64> {
    let second = *h.get(1)?;
    let ext = match second & 0x7f {
        126 => 2,
        127 => 8,
        _ => 0,
    };
    let mask = if second & 0x80 != 0 { 4 } else { 0 };
    let rest = &h[2..];
    if rest.len() < ext + mask {
        return None;
    }
    Some(match second & 0x7f {
        126 => u64::from(u16::from_be_bytes([rest[0], rest[1]])),
        127 => rest[..8].iter().fold(0u64, |n, b| (n << 8) | u64::from(*b)),
        n => u64::from(n),
    })
}

/// A server-to-client close frame: 1008 (policy violation) and `reason`, cut to fit.
pub(super) fn close_frame(reason: &str) -> Vec<u8> {
    let mut end = reason.len().min(123);
    while !reason.is_char_boundary(end) {
        end -= 1;
    }
    let reason = &reason.as_bytes()[..end];
    let mut frame = vec![0x88, (2 + reason.len()) as u8, 0x03, 0xF0];
    frame.extend_from_slice(reason);
    frame
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursor_follows_frames_split_anywhere() {
        // A short text frame, a 300-byte binary frame (16-bit length), a masked ping.
        let mut stream = vec![0x81, 0x02, b'h', b'i', 0x82, 126, 0x01, 0x2C];
        stream.extend(std::iter::repeat_n(7u8, 300));
        stream.extend([0x89, 0x81, 1, 2, 3, 4, b'p']);
        for split in 0..stream.len() {
            let mut c = FrameCursor::default();
            c.feed(&stream[..split]);
            c.feed(&stream[split..]);
            assert!(c.at_boundary(), "split at {split}");
        }
        let mut c = FrameCursor::default();
        c.feed(&stream[..10]);
        assert!(!c.at_boundary());
    }

    #[test]
    fn close_frame_carries_1008_and_the_reason() {
        let f = close_frame("access revoked: you may no longer reach node-a");
        assert_eq!(&f[..4], &[0x88, 48, 0x03, 0xF0]);
        assert_eq!(&f[4..], b"access revoked: you may no longer reach node-a");
        let long = close_frame(&"é".repeat(100));
        assert!(long.len() <= 127 && std::str::from_utf8(&long[4..]).is_ok());
    }
}
