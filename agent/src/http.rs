//! The optional local HTTP server, for health probes and operators on the host:
//! `GET /healthz`, `GET /status` (JSON) and `GET /version`. Off unless `AGENT_HTTP_ADDR`
//! (or the config file's `http_addr`) names an address.
//!
//! A minimal HTTP/1.1 responder instead of a framework keeps the agent small: GET only, one
//! request per connection (`Connection: close`), a request head of at most 8 KiB read within
//! 5 s, at most 64 connections at a time.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;

use crate::status_board::StatusBoard;

/// The agent's version, as reported to the gateway and on `/version`.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");

/// The largest request head (request line and headers) read.
pub const MAX_REQUEST_HEAD: usize = 8 * 1024;

/// How long a client may take to send its request head, and to read the answer.
pub const IO_TIMEOUT: Duration = Duration::from_secs(5);

/// Connections served at once; more wait in the listen backlog.
pub const MAX_CONNECTIONS: usize = 64;

/// Why the server cannot start: names the address, the variable and the fix.
#[derive(Debug, thiserror::Error)]
#[error("cannot serve /healthz, /status and /version on {addr} ({var}): {source}; {hint}", var = crate::config::HTTP_ADDR_VAR, hint = hint(source))]
pub struct BindError {
    pub addr: SocketAddr,
    #[source]
    pub source: std::io::Error,
}

fn hint(e: &std::io::Error) -> &'static str {
    use std::io::ErrorKind;
    match e.kind() {
        ErrorKind::AddrInUse => {
            "another program (or a second agent) already listens there: choose a free port in AGENT_HTTP_ADDR, or unset it to turn the server off"
        }
        ErrorKind::AddrNotAvailable => {
            "that IP is not an address of this host: use 127.0.0.1 or one of this host's addresses"
        }
        ErrorKind::PermissionDenied => "ports below 1024 need privileges: choose a port above 1024",
        _ => "fix AGENT_HTTP_ADDR, or unset it to turn the server off",
    }
}

/// Binds `addr` and serves in a background task, stopped when the returned handle is dropped.
pub(crate) async fn spawn(addr: SocketAddr, board: StatusBoard) -> Result<AbortOnDrop, BindError> {
    let bind_error = |source| BindError { addr, source };
    let listener = TcpListener::bind(addr).await.map_err(bind_error)?;
    let local = listener.local_addr().map_err(bind_error)?;
    tracing::info!(addr = %local, "serving /healthz, /status and /version");
    Ok(AbortOnDrop(tokio::spawn(serve(listener, board))))
}

/// Accepts connections until the task is aborted; each is answered in its own task.
pub async fn serve(listener: TcpListener, board: StatusBoard) {
    let slots = Arc::new(Semaphore::new(MAX_CONNECTIONS));
    let mut tasks = tokio::task::JoinSet::new();
    loop {
        // Waiting for a slot before accepting leaves the excess in the kernel's backlog.
        let Ok(slot) = slots.clone().acquire_owned().await else {
            return;
        };
        let (stream, _peer) = match listener.accept().await {
            Ok(accepted) => accepted,
            Err(error) => {
                tracing::warn!(%error, "http accept failed");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let board = board.clone();
        tasks.spawn(async move {
            answer(stream, &board).await;
            drop(slot);
        });
        // Reap finished tasks so the set does not grow; aborting `serve` aborts the rest.
        while tasks.try_join_next().is_some() {}
    }
}

/// A response: status, content type and body.
struct Reply {
    status: u16,
    content_type: &'static str,
    body: Vec<u8>,
    allow_get: bool,
}

impl Reply {
    fn text(status: u16, body: &str) -> Self {
        Self {
            status,
            content_type: "text/plain; charset=utf-8",
            body: body.as_bytes().to_vec(),
            allow_get: false,
        }
    }

    fn json(status: u16, body: &serde_json::Value) -> Self {
        Self {
            status,
            content_type: "application/json",
            body: body.to_string().into_bytes(),
            allow_get: false,
        }
    }

    fn encode(&self) -> Vec<u8> {
        let mut head = format!(
            "HTTP/1.1 {} {}\r\nContent-Type: {}\r\nContent-Length: {}\r\nCache-Control: no-store\r\nConnection: close\r\n",
            self.status,
            reason(self.status),
            self.content_type,
            self.body.len()
        );
        if self.allow_get {
            head.push_str("Allow: GET\r\n");
        }
        head.push_str("\r\n");
        let mut out = head.into_bytes();
        out.extend_from_slice(&self.body);
        out
    }
}

fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        400 => "Bad Request",
        404 => "Not Found",
        405 => "Method Not Allowed",
        408 => "Request Timeout",
        431 => "Request Header Fields Too Large",
        503 => "Service Unavailable",
        _ => "Error",
    }
}

/// Reads one request head, answers it, closes. A client that sends nothing in time gets a
/// 408; one that cannot take the answer in time is dropped.
async fn answer(mut stream: TcpStream, board: &StatusBoard) {
    let reply = match tokio::time::timeout(IO_TIMEOUT, read_head(&mut stream)).await {
        Err(_) => Reply::text(408, "request head not received in time\n"),
        Ok(Err(reply)) => reply,
        Ok(Ok(head)) => route(&head, board),
    };
    let write = async {
        stream.write_all(&reply.encode()).await?;
        stream.shutdown().await
    };
    if let Ok(Err(error)) = tokio::time::timeout(IO_TIMEOUT, write).await {
        tracing::debug!(%error, "http client went away");
    }
}

/// The request head up to its blank line, at most [`MAX_REQUEST_HEAD`] bytes.
async fn read_head(stream: &mut TcpStream) -> Result<String, Reply> {
    let mut head = Vec::with_capacity(1024);
    let mut buf = [0u8; 1024];
    loop {
        let n = stream
            .read(&mut buf)
            .await
            .map_err(|_| Reply::text(400, "cannot read the request\n"))?;
        if n == 0 {
            return Err(Reply::text(
                400,
                "the request ended before its blank line\n",
            ));
        }
        head.extend_from_slice(&buf[..n]);
        if let Some(end) = head.windows(4).position(|w| w == b"\r\n\r\n") {
            head.truncate(end);
            return String::from_utf8(head)
                .map_err(|_| Reply::text(400, "the request head is not UTF-8\n"));
        }
        if head.len() > MAX_REQUEST_HEAD {
            return Err(Reply::text(431, "request head larger than 8 KiB\n"));
        }
    }
}

/// Picks the answer from the request line.
fn route(head: &str, board: &StatusBoard) -> Reply {
    let line = head.split("\r\n").next().unwrap_or_default();
    let mut parts = line.split(' ');
    let (Some(method), Some(target), Some(version), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Reply::text(400, "malformed request line\n");
    };
    if !version.starts_with("HTTP/1.") || !target.starts_with('/') {
        return Reply::text(400, "malformed request line\n");
    }
    let path = target.split('?').next().unwrap_or_default();
    let known = matches!(path, "/healthz" | "/status" | "/version");
    if !known {
        return Reply::text(404, "not found: try /healthz, /status or /version\n");
    }
    if method != "GET" {
        return Reply {
            allow_get: true,
            ..Reply::text(405, "only GET is served\n")
        };
    }
    match path {
        "/healthz" => match board.health(now_ms()) {
            Ok(()) => Reply::text(200, "ok"),
            Err(reason) => Reply::json(
                503,
                &serde_json::json!({ "status": "unhealthy", "reason": reason }),
            ),
        },
        "/status" => Reply::json(200, &status(board)),
        _ => Reply::text(200, VERSION),
    }
}

fn now_ms() -> u64 {
    u64::try_from(phirepass_runtime::clock::now_millis()).unwrap_or(0)
}

/// `/status`: the agent's own figures, its link and the commands callers may ask for (names
/// and parameter types; programs and arguments stay private to the host).
fn status(board: &StatusBoard) -> serde_json::Value {
    let report = board.status();
    let mut body = crate::builtin::health::agent_figures(report.started_at);
    if let Some(fields) = body.as_object_mut() {
        fields.insert("link".to_owned(), serde_json::json!(board.link()));
        fields.insert("commands".to_owned(), serde_json::json!(report.commands));
        fields.insert(
            "config_path".to_owned(),
            serde_json::json!(report.config_path),
        );
    }
    body
}

pub(crate) struct AbortOnDrop(pub(crate) tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}
