//! `containers`: the host's containers, read from the Docker engine's HTTP API over its Unix
//! socket (`GET /containers/json?all=1`); no `docker` binary is needed.

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::{Value, json};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::UnixStream;

/// The Docker engine's default socket.
pub const DOCKER_SOCKET: &str = "/var/run/docker.sock";

/// The largest answer read from the engine (a host with thousands of containers).
pub const MAX_RESPONSE: usize = 4 * 1024 * 1024;

/// How long the whole exchange with the engine may take.
pub const DOCKER_TIMEOUT: Duration = Duration::from_secs(5);

/// HTTP/1.0 keeps the answer simple: the engine closes the connection after it and never
/// uses chunked encoding (a proxy in front of it might: that is decoded too).
const REQUEST: &[u8] =
    b"GET /containers/json?all=1 HTTP/1.0\r\nHost: docker\r\nAccept: application/json\r\n\r\n";

/// The engine's socket and limits; tests point `socket` at a stand-in server.
#[derive(Debug, Clone)]
pub struct DockerApi {
    pub socket: PathBuf,
    pub timeout: Duration,
    pub max_response: usize,
}

impl DockerApi {
    pub fn new(socket: impl Into<PathBuf>) -> Self {
        Self {
            socket: socket.into(),
            timeout: DOCKER_TIMEOUT,
            max_response: MAX_RESPONSE,
        }
    }

    /// Whether a Unix socket exists at the path (the built-in is offered only then).
    pub fn present(&self) -> bool {
        use std::os::unix::fs::FileTypeExt as _;
        std::fs::metadata(&self.socket).is_ok_and(|m| m.file_type().is_socket())
    }

    /// `{"socket", "containers": [{"id", "names", "image", "state", "status", "created"}]}`.
    pub async fn report(&self) -> Result<Value, String> {
        let body = tokio::time::timeout(self.timeout, self.fetch())
            .await
            .map_err(|_| {
                format!(
                    "the Docker engine at {} did not answer within {} s",
                    self.socket.display(),
                    self.timeout.as_secs()
                )
            })??;
        let list: Vec<Value> = serde_json::from_slice(&body).map_err(|error| {
            format!("the Docker engine's container list is not the expected JSON: {error}")
        })?;
        let containers: Vec<Value> = list.iter().map(summary).collect();
        Ok(json!({ "socket": self.socket, "containers": containers }))
    }

    async fn fetch(&self) -> Result<Vec<u8>, String> {
        let mut stream = UnixStream::connect(&self.socket)
            .await
            .map_err(|error| connect_error(&self.socket, &error))?;
        let io = |error: std::io::Error| format!("talking to the Docker engine failed: {error}");
        stream.write_all(REQUEST).await.map_err(io)?;
        // One byte over the limit tells a complete answer from a cut one.
        let limit = (self.max_response + 64 * 1024) as u64;
        let mut raw = Vec::new();
        (&mut stream)
            .take(limit + 1)
            .read_to_end(&mut raw)
            .await
            .map_err(io)?;
        if raw.len() as u64 > limit {
            return Err(self.too_large());
        }
        let body = parse_response(&raw)?;
        if body.len() > self.max_response {
            return Err(self.too_large());
        }
        Ok(body)
    }

    fn too_large(&self) -> String {
        format!(
            "the Docker engine's container list is larger than {} MiB",
            self.max_response / (1024 * 1024)
        )
    }
}

/// One container as reported: the short id, names without the leading `/`, creation time
/// in Unix seconds.
fn summary(container: &Value) -> Value {
    let text = |key: &str| {
        container
            .get(key)
            .and_then(Value::as_str)
            .unwrap_or_default()
    };
    let names: Vec<&str> = container
        .get("Names")
        .and_then(Value::as_array)
        .map(|names| {
            names
                .iter()
                .filter_map(Value::as_str)
                .map(|n| n.trim_start_matches('/'))
                .collect()
        })
        .unwrap_or_default();
    json!({
        "id": text("Id").get(..12).unwrap_or(text("Id")),
        "names": names,
        "image": text("Image"),
        "state": text("State"),
        "status": text("Status"),
        "created": container.get("Created").and_then(Value::as_i64),
    })
}

/// The body of a complete HTTP/1.x answer with status 200; the engine's `message` otherwise.
pub fn parse_response(raw: &[u8]) -> Result<Vec<u8>, String> {
    let head_end =
        find(raw, b"\r\n\r\n").ok_or("the Docker engine's answer has no complete HTTP header")?;
    let head = String::from_utf8_lossy(&raw[..head_end]);
    let body = &raw[head_end + 4..];
    let mut lines = head.split("\r\n");
    let status_line = lines.next().unwrap_or_default();
    let status: u16 = status_line
        .strip_prefix("HTTP/1.")
        .and_then(|rest| rest.get(2..5))
        .and_then(|code| code.parse().ok())
        .ok_or_else(|| format!("the Docker engine's answer is not HTTP: {status_line:?}"))?;
    let header = |name: &str| {
        head.split("\r\n").skip(1).find_map(|line| {
            let (key, value) = line.split_once(':')?;
            key.trim()
                .eq_ignore_ascii_case(name)
                .then(|| value.trim().to_owned())
        })
    };
    let chunked = header("transfer-encoding").is_some_and(|v| v.eq_ignore_ascii_case("chunked"));
    let body = if chunked {
        dechunk(body)?
    } else if let Some(length) = header("content-length") {
        let length: usize = length
            .parse()
            .map_err(|_| format!("the Docker engine sent a bad Content-Length: {length:?}"))?;
        body.get(..length)
            .ok_or("the Docker engine's answer ended before its Content-Length")?
            .to_vec()
    } else {
        body.to_vec()
    };
    if status != 200 {
        let message = serde_json::from_slice::<Value>(&body)
            .ok()
            .and_then(|v| v.get("message").and_then(Value::as_str).map(str::to_owned))
            .unwrap_or_else(|| String::from_utf8_lossy(&body).chars().take(200).collect());
        return Err(format!("the Docker engine answered {status}: {message}"));
    }
    Ok(body)
}

/// Decodes `Transfer-Encoding: chunked` (extensions and trailers ignored).
fn dechunk(mut rest: &[u8]) -> Result<Vec<u8>, String> {
    let bad = || "the Docker engine's chunked answer is malformed".to_owned();
    let mut body = Vec::new();
    loop {
        let line_end = find(rest, b"\r\n").ok_or_else(bad)?;
        let size_text = String::from_utf8_lossy(&rest[..line_end]);
        let size_text = size_text.split(';').next().unwrap_or_default().trim();
        let size = usize::from_str_radix(size_text, 16).map_err(|_| bad())?;
        rest = &rest[line_end + 2..];
        if size == 0 {
            return Ok(body);
        }
        let chunk = rest.get(..size).ok_or_else(bad)?;
        body.extend_from_slice(chunk);
        rest = rest
            .get(size..)
            .and_then(|r| r.strip_prefix(b"\r\n"))
            .ok_or_else(bad)?;
    }
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

fn connect_error(socket: &Path, error: &std::io::Error) -> String {
    use std::io::ErrorKind;
    let hint = match error.kind() {
        ErrorKind::NotFound => "no Docker engine runs on this host",
        ErrorKind::PermissionDenied => {
            "the agent's user may not use the socket: add it to the `docker` group, or turn the \
             built-in off with `containers = false`"
        }
        ErrorKind::ConnectionRefused => "the Docker engine is not running",
        _ => "is the Docker engine running?",
    };
    format!(
        "cannot connect to the Docker engine at {}: {error} ({hint})",
        socket.display()
    )
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn bodies_by_length_by_close_and_chunked() {
        let sized = b"HTTP/1.0 200 OK\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n[]trailing";
        assert_eq!(parse_response(sized).unwrap(), b"[]");
        let closed = b"HTTP/1.1 200 OK\r\n\r\n[1]";
        assert_eq!(parse_response(closed).unwrap(), b"[1]");
        let chunked = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3;x=y\r\n[1,\r\n2\r\n2]\r\n0\r\n\r\n";
        assert_eq!(parse_response(chunked).unwrap(), b"[1,2]");
    }

    #[test]
    fn errors_name_the_problem() {
        let refused = b"HTTP/1.1 500 Internal Server Error\r\nContent-Length: 27\r\n\r\n{\"message\":\"engine broken\"}";
        assert_eq!(
            parse_response(refused).unwrap_err(),
            "the Docker engine answered 500: engine broken"
        );
        assert!(
            parse_response(b"HTTP/1.1 200 OK\r\n")
                .unwrap_err()
                .contains("no complete HTTP header")
        );
        assert!(
            parse_response(b"SSH-2.0-x\r\n\r\n")
                .unwrap_err()
                .contains("not HTTP")
        );
        let cut = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nff\r\nabc";
        assert!(parse_response(cut).unwrap_err().contains("malformed"));
        let short = b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc";
        assert!(parse_response(short).unwrap_err().contains("ended before"));
    }

    #[test]
    fn summary_keeps_what_operators_read() {
        let container = serde_json::json!({
            "Id": "8dfafdbc3a40b2c1f0e4d1c2a3b4c5d6e7f8091a2b3c4d5e6f708192a3b4c5d6",
            "Names": ["/web-1"], "Image": "nginx:1.27", "State": "running",
            "Status": "Up 2 hours", "Created": 1733500000, "Labels": {"secret": "x"}
        });
        assert_eq!(
            summary(&container),
            serde_json::json!({"id": "8dfafdbc3a40", "names": ["web-1"], "image": "nginx:1.27",
                "state": "running", "status": "Up 2 hours", "created": 1733500000})
        );
    }
}
