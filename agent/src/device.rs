//! `phirepass-agent login --device`: device activation (RFC 8628 style). The agent asks the
//! gateway for a short code, prints it with the URL to enter it at, and polls until a logged-in
//! user approves it on `/activate` (the node token comes back once), the code expires, or the
//! user gives up. Plain HTTP/1.1 over TCP or rustls: two small JSON calls need no HTTP stack.

use std::path::PathBuf;
use std::time::Duration;

use phirepass_runtime::clock::now_millis;
use serde_json::{Value, json};
use tokio::io::{AsyncRead, AsyncReadExt as _, AsyncWrite, AsyncWriteExt as _};
use tokio::net::TcpStream;

/// Longest reply accepted from the gateway.
const MAX_REPLY: usize = 64 * 1024;
const CALL_TIMEOUT: Duration = Duration::from_secs(30);
/// RFC 8628 `slow_down`: add this much to the interval when told to back off.
const SLOW_DOWN: Duration = Duration::from_secs(5);

#[derive(Debug, thiserror::Error)]
pub enum DeviceError {
    #[error("bad gateway URL {0:?}: expected http://host[:port] or https://host[:port]")]
    BadUrl(String),
    #[error("cannot reach the gateway at {addr}: {source}")]
    Connect {
        addr: String,
        source: std::io::Error,
    },
    #[error("talking to the gateway: {0}")]
    Io(#[from] std::io::Error),
    #[error("the gateway did not answer within {}s", CALL_TIMEOUT.as_secs())]
    Timeout,
    #[error("the gateway answered {status}: {message}")]
    Refused { status: u16, message: String },
    #[error("unexpected answer from the gateway: {0}")]
    Malformed(String),
    #[error("the code expired before anyone approved it; run the login again")]
    Expired,
    #[error(transparent)]
    Tls(#[from] crate::tls::TlsError),
}

/// Where the gateway is: `http(s)://host[:port]`, any path ignored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GatewayUrl {
    pub tls: bool,
    pub host: String,
    pub port: u16,
    /// The CA the gateway's certificate must chain to (`--ca`); `None`: the webpki roots.
    pub ca: Option<PathBuf>,
}

impl GatewayUrl {
    /// `https://`, or `http://` to loopback only: the approved token comes back in the reply.
    pub fn parse(url: &str) -> Result<Self, DeviceError> {
        Self::parse_with(url, None, false)
    }

    /// [`GatewayUrl::parse`] trusting `ca` only, and, with `allow_insecure`
    /// (`PHIREPASS_INSECURE_GATEWAY`, development), `http://` to any host.
    pub fn parse_with(
        url: &str,
        ca: Option<PathBuf>,
        allow_insecure: bool,
    ) -> Result<Self, DeviceError> {
        let parsed = Self::parse_any(url)?;
        crate::tls::check_plaintext(url, parsed.tls, &parsed.host, allow_insecure, "https")?;
        Ok(Self { ca, ..parsed })
    }

    fn parse_any(url: &str) -> Result<Self, DeviceError> {
        let bad = || DeviceError::BadUrl(url.to_string());
        let (tls, rest) = if let Some(r) = url.strip_prefix("https://") {
            (true, r)
        } else if let Some(r) = url.strip_prefix("http://") {
            (false, r)
        } else {
            return Err(bad());
        };
        let authority = rest.split('/').next().unwrap_or_default();
        let (host, port) = match authority.rsplit_once(':') {
            Some((h, p)) if !h.ends_with(']') || authority.starts_with('[') => {
                (h, p.parse::<u16>().map_err(|_| bad())?)
            }
            _ => (authority, if tls { 443 } else { 80 }),
        };
        let host = host.trim_start_matches('[').trim_end_matches(']');
        if host.is_empty() {
            return Err(bad());
        }
        Ok(Self {
            tls,
            host: host.to_string(),
            port,
            ca: None,
        })
    }

    fn host_header(&self) -> String {
        let host = if self.host.contains(':') {
            format!("[{}]", self.host)
        } else {
            self.host.clone()
        };
        match (self.tls, self.port) {
            (true, 443) | (false, 80) => host,
            _ => format!("{host}:{}", self.port),
        }
    }
}

/// What the gateway hands out at the start.
#[derive(Debug, Clone)]
pub struct Started {
    pub device_code: String,
    pub user_code: String,
    pub expires_at_ms: i64,
    pub interval: Duration,
    pub verification_uri: String,
    pub verification_uri_complete: String,
}

/// The approved result: the node token and the node's name.
#[derive(Debug, Clone)]
pub struct Approved {
    pub token: String,
    pub node_name: String,
    pub username: String,
    /// authz's ticket keys, to pin (absent from gateways older than signed opens).
    pub ticket_keys: Option<phirepass_ticket::KeySet>,
}

/// One JSON POST; the reply's status and body.
async fn post(url: &GatewayUrl, path: &str, body: &Value) -> Result<(u16, Value), DeviceError> {
    let call = async {
        let addr = format!("{}:{}", url.host, url.port);
        let tcp = TcpStream::connect(&addr)
            .await
            .map_err(|source| DeviceError::Connect { addr, source })?;
        let _ = tcp.set_nodelay(true);
        if url.tls {
            let config = crate::tls::client_config(url.ca.as_deref())?;
            let name = rustls::pki_types::ServerName::try_from(url.host.clone())
                .map_err(|_| DeviceError::BadUrl(url.host.clone()))?;
            let tls = tokio_rustls::TlsConnector::from(config)
                .connect(name, tcp)
                .await?;
            exchange(tls, url, path, body).await
        } else {
            exchange(tcp, url, path, body).await
        }
    };
    tokio::time::timeout(CALL_TIMEOUT, call)
        .await
        .map_err(|_| DeviceError::Timeout)?
}

async fn exchange<S: AsyncRead + AsyncWrite + Unpin>(
    mut stream: S,
    url: &GatewayUrl,
    path: &str,
    body: &Value,
) -> Result<(u16, Value), DeviceError> {
    let body = body.to_string();
    let request = format!(
        "POST {path} HTTP/1.1\r\nHost: {}\r\nUser-Agent: phirepass-agent/{}\r\n\
         Content-Type: application/json\r\nAccept: application/json\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
        url.host_header(),
        crate::VERSION,
        body.len()
    );
    stream.write_all(request.as_bytes()).await?;
    stream.flush().await?;
    let mut raw = Vec::new();
    (&mut stream)
        .take(MAX_REPLY as u64 + 1)
        .read_to_end(&mut raw)
        .await?;
    if raw.len() > MAX_REPLY {
        return Err(DeviceError::Malformed("reply too large".into()));
    }
    parse_reply(&raw)
}

fn parse_reply(raw: &[u8]) -> Result<(u16, Value), DeviceError> {
    let text = String::from_utf8_lossy(raw);
    let (head, body) = text
        .split_once("\r\n\r\n")
        .ok_or_else(|| DeviceError::Malformed("no HTTP header".into()))?;
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse::<u16>().ok())
        .ok_or_else(|| DeviceError::Malformed("no HTTP status".into()))?;
    let chunked = head
        .lines()
        .any(|l| l.to_ascii_lowercase().starts_with("transfer-encoding:") && l.contains("chunked"));
    let body = if chunked {
        dechunk(body)
    } else {
        body.to_string()
    };
    let json = if body.trim().is_empty() {
        Value::Null
    } else {
        serde_json::from_str(&body).map_err(|e| DeviceError::Malformed(e.to_string()))?
    };
    Ok((status, json))
}

fn dechunk(mut body: &str) -> String {
    let mut out = String::new();
    while let Some((size, rest)) = body.split_once("\r\n") {
        let Ok(n) = usize::from_str_radix(size.trim(), 16) else {
            break;
        };
        if n == 0 || rest.len() < n {
            break;
        }
        out.push_str(&rest[..n]);
        body = rest[n..].trim_start_matches("\r\n");
    }
    out
}

fn refused(status: u16, body: &Value) -> DeviceError {
    DeviceError::Refused {
        status,
        message: body["error"].as_str().unwrap_or("no detail").to_string(),
    }
}

fn field(body: &Value, name: &str) -> Result<String, DeviceError> {
    body[name]
        .as_str()
        .map(str::to_string)
        .ok_or_else(|| DeviceError::Malformed(format!("no {name}")))
}

/// What is asking to be activated: the approval creates a node (agent) or an API token (cli).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DeviceKind {
    Agent,
    Cli,
}

impl DeviceKind {
    fn as_str(self) -> &'static str {
        match self {
            DeviceKind::Agent => "agent",
            DeviceKind::Cli => "cli",
        }
    }
}

/// This machine's name, shown on the approval page as a hint (empty when unknown).
pub fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_string())
        .unwrap_or_default()
}

/// Asks the gateway for a code.
pub async fn start(
    url: &GatewayUrl,
    kind: DeviceKind,
    hostname: &str,
) -> Result<Started, DeviceError> {
    let (status, body) = post(
        url,
        "/api/device/start",
        &json!({ "kind": kind.as_str(), "hostname": hostname }),
    )
    .await?;
    if status != 200 {
        return Err(refused(status, &body));
    }
    Ok(Started {
        device_code: field(&body, "device_code")?,
        user_code: field(&body, "user_code")?,
        expires_at_ms: body["expires_at"].as_i64().unwrap_or(0),
        interval: Duration::from_secs(body["interval_secs"].as_u64().unwrap_or(5).max(1)),
        verification_uri: field(&body, "verification_uri")?,
        verification_uri_complete: field(&body, "verification_uri_complete")?,
    })
}

/// Polls every `interval` (longer when the gateway says to slow down) until approved or expired.
pub async fn wait(url: &GatewayUrl, started: &Started) -> Result<Approved, DeviceError> {
    let mut interval = started.interval;
    loop {
        if started.expires_at_ms > 0 && now_millis() >= started.expires_at_ms {
            return Err(DeviceError::Expired);
        }
        tokio::time::sleep(interval).await;
        let (status, body) = post(
            url,
            "/api/device/poll",
            &json!({ "device_code": started.device_code }),
        )
        .await?;
        match (status, body["state"].as_str()) {
            (200, Some("pending")) => {}
            (200, Some("approved")) => {
                let token = field(&body, "token")?;
                return Ok(Approved {
                    token,
                    node_name: body["node"]["name"].as_str().unwrap_or("").to_string(),
                    username: body["username"].as_str().unwrap_or("").to_string(),
                    ticket_keys: serde_json::from_value(body["ticket_keys"].clone()).ok(),
                });
            }
            (200, Some("expired")) | (404, _) => return Err(DeviceError::Expired),
            (429, _) => interval += SLOW_DOWN,
            (200, other) => {
                return Err(DeviceError::Malformed(format!("state {other:?}")));
            }
            _ => return Err(refused(status, &body)),
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn gateway_urls() {
        let u = GatewayUrl::parse("http://127.0.0.1:8080/anything").unwrap();
        assert_eq!((u.tls, u.host.as_str(), u.port), (false, "127.0.0.1", 8080));
        assert_eq!(u.host_header(), "127.0.0.1:8080");
        let u = GatewayUrl::parse("https://gw.example").unwrap();
        assert_eq!(
            (u.tls, u.port, u.host_header()),
            (true, 443, "gw.example".into())
        );
        let u = GatewayUrl::parse("http://[::1]:9000").unwrap();
        assert_eq!((u.host.as_str(), u.port), ("::1", 9000));
        assert_eq!(u.host_header(), "[::1]:9000");
        assert!(GatewayUrl::parse("ws://x").is_err());
        // The token comes back in the reply: plain http to another host only when allowed.
        assert!(matches!(
            GatewayUrl::parse("http://gw.example:8080"),
            Err(DeviceError::Tls(_))
        ));
        let u = GatewayUrl::parse_with("http://gw.example:8080", None, true).unwrap();
        assert_eq!((u.tls, u.host.as_str()), (false, "gw.example"));
        assert!(GatewayUrl::parse("http://localhost:8080").is_ok());
        assert!(GatewayUrl::parse("http://").is_err());
        assert!(GatewayUrl::parse("http://h:notaport").is_err());
    }

    #[test]
    fn replies_plain_and_chunked() {
        let (s, v) =
            parse_reply(b"HTTP/1.1 200 OK\r\ncontent-length: 11\r\n\r\n{\"a\":\"b\"}\n").unwrap();
        assert_eq!((s, v["a"].as_str()), (200, Some("b")));
        let raw = b"HTTP/1.1 429 Too Many\r\ntransfer-encoding: chunked\r\n\r\n4\r\n{\"a\"\r\n5\r\n:\"b\"}\r\n0\r\n\r\n";
        let (s, v) = parse_reply(raw).unwrap();
        assert_eq!((s, v["a"].as_str()), (429, Some("b")));
        assert!(parse_reply(b"garbage").is_err());
    }
}
