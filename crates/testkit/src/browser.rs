//! A scripted browser: logs in over HTTP and drives `/api/web/ws` with the documented protocol.

use std::time::Duration;

use anyhow::{Context, anyhow, bail};
use bytes::Bytes;
use futures_util::{SinkExt, StreamExt};
use phirepass_tunnel::browser_protocol::{WebControl, WebFrame};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

pub struct HttpReply {
    pub status: u16,
    pub headers: String,
    pub body: String,
}

/// A minimal HTTP/1.1 request on loopback (`addr` is `host:port`), enough for the JSON API.
pub async fn http(
    addr: &str,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> anyhow::Result<HttpReply> {
    let mut stream = TcpStream::connect(addr)
        .await
        .with_context(|| format!("connecting to {addr}"))?;
    let mut req = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nContent-Length: {}\r\n",
        body.len()
    );
    if !body.is_empty() {
        req.push_str("Content-Type: application/json\r\n");
    }
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    req.push_str("\r\n");
    req.push_str(body);
    stream.write_all(req.as_bytes()).await?;
    let mut raw = Vec::new();
    tokio::time::timeout(Duration::from_secs(30), stream.read_to_end(&mut raw)).await??;
    let text = String::from_utf8_lossy(&raw).to_string();
    let (head, body) = text
        .split_once("\r\n\r\n")
        .ok_or_else(|| anyhow!("malformed HTTP reply"))?;
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| anyhow!("no status in reply"))?;
    Ok(HttpReply {
        status,
        headers: head.to_string(),
        body: body.to_string(),
    })
}

/// Logs in and returns the session token (also set as the `__Host-pp_session` cookie by the gateway).
pub async fn login(addr: &str, username: &str, password: &str) -> anyhow::Result<String> {
    let body = serde_json::json!({ "username": username, "password": password }).to_string();
    let reply = http(addr, "POST", "/api/auth/login", &[], &body).await?;
    if reply.status != 200 {
        bail!("login failed with {}: {}", reply.status, reply.body);
    }
    let json: serde_json::Value = serde_json::from_str(&reply.body)?;
    json["token"]
        .as_str()
        .map(str::to_string)
        .ok_or_else(|| anyhow!("no token in login reply"))
}

pub struct Browser {
    ws: WebSocketStream<MaybeTlsStream<TcpStream>>,
    /// Terminal output received so far and not yet consumed by `read_until`.
    pub output: String,
}

impl Browser {
    /// Opens `/api/web/ws` with the session cookie, as a browser would.
    pub async fn connect(addr: &str, token: &str) -> anyhow::Result<Self> {
        Self::connect_with(addr, &[("cookie", &format!("__Host-pp_session={token}"))]).await
    }

    pub async fn connect_with(addr: &str, headers: &[(&str, &str)]) -> anyhow::Result<Self> {
        let mut request = format!("ws://{addr}/api/web/ws").into_client_request()?;
        for (k, v) in headers {
            request
                .headers_mut()
                .insert(http::HeaderName::from_bytes(k.as_bytes())?, v.parse()?);
        }
        let (ws, _) = tokio_tungstenite::connect_async(request).await?;
        Ok(Self {
            ws,
            output: String::new(),
        })
    }

    /// Drives a `/api/web/ws` socket the caller opened itself (e.g. wss:// with a test CA).
    pub fn from_socket(ws: WebSocketStream<MaybeTlsStream<TcpStream>>) -> Self {
        Self {
            ws,
            output: String::new(),
        }
    }

    pub async fn send(&mut self, frame: WebFrame) -> anyhow::Result<()> {
        self.send_raw(frame.encode()).await
    }

    pub async fn send_raw(&mut self, bytes: Bytes) -> anyhow::Result<()> {
        self.ws.send(Message::Binary(bytes)).await?;
        Ok(())
    }

    /// The next frame; terminal bytes are also appended to `output`. `None` when closed.
    pub async fn recv(&mut self, timeout: Duration) -> anyhow::Result<Option<WebFrame>> {
        loop {
            let msg = tokio::time::timeout(timeout, self.ws.next())
                .await
                .context("timed out waiting for a frame")?;
            match msg {
                None | Some(Ok(Message::Close(_))) => return Ok(None),
                Some(Err(e)) => return Err(e.into()),
                Some(Ok(Message::Binary(b))) => {
                    let frame = WebFrame::decode(b)?;
                    if let WebFrame::Ssh(data) = &frame {
                        self.output.push_str(&String::from_utf8_lossy(data));
                    }
                    return Ok(Some(frame));
                }
                Some(Ok(_)) => continue,
            }
        }
    }

    /// The next control message, skipping terminal output.
    pub async fn control(&mut self, timeout: Duration) -> anyhow::Result<Option<WebControl>> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            match self.recv(left).await? {
                None => return Ok(None),
                Some(WebFrame::Control(c)) => return Ok(Some(c)),
                Some(WebFrame::Ssh(_)) => continue,
            }
        }
    }

    pub async fn open_tunnel(
        &mut self,
        node: &str,
        username: &str,
        password: Option<&str>,
    ) -> anyhow::Result<WebControl> {
        self.send(WebFrame::Control(WebControl::OpenTunnel {
            node: node.into(),
            username: username.into(),
            password: password.map(str::to_string),
            cols: 80,
            rows: 24,
        }))
        .await?;
        loop {
            match self.control(Duration::from_secs(30)).await? {
                Some(WebControl::Heartbeat) => continue,
                Some(other) => return Ok(other),
                None => bail!("connection closed while opening the tunnel"),
            }
        }
    }

    pub async fn type_text(&mut self, text: &str) -> anyhow::Result<()> {
        self.send(WebFrame::Ssh(Bytes::copy_from_slice(text.as_bytes())))
            .await
    }

    /// Waits until terminal output contains `needle`; consumes output up to and including it.
    pub async fn read_until(&mut self, needle: &str, timeout: Duration) -> anyhow::Result<String> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            if let Some(pos) = self.output.find(needle) {
                let seen: String = self.output.drain(..pos + needle.len()).collect();
                return Ok(seen);
            }
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            if left.is_zero() {
                bail!(
                    "timed out waiting for {needle:?}; output so far: {:?}",
                    self.output
                );
            }
            match self.recv(left).await? {
                None => bail!(
                    "closed while waiting for {needle:?}; output: {:?}",
                    self.output
                ),
                Some(WebFrame::Control(WebControl::TunnelClosed { reason, .. })) => {
                    bail!(
                        "terminal closed ({reason:?}) while waiting for {needle:?}; output: {:?}",
                        self.output
                    )
                }
                Some(_) => {}
            }
        }
    }

    /// Waits for TunnelClosed, returning (reason, exit status).
    pub async fn wait_closed(
        &mut self,
        timeout: Duration,
    ) -> anyhow::Result<(Option<String>, Option<u32>)> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            match self.control(left).await? {
                Some(WebControl::TunnelClosed {
                    reason,
                    exit_status,
                }) => return Ok((reason, exit_status)),
                Some(_) => {}
                None => bail!("connection closed without TunnelClosed"),
            }
        }
    }
}
