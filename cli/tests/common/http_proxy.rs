//! HTTP proxy fixtures: authz + registry + N gateway-ws on the real NATS, Redis and PostgreSQL
//! (with the app-token TTL a test needs), real local HTTP backends (identity, header echo,
//! streaming SHA-256 upload, WebSocket echo), tunnels published the way ssh-edge publishes
//! them (registry TunnelOpened + `phirepass_tunnel::listen` bridged to TCP), and agents
//! exposing ports.

use std::net::SocketAddr;
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::ws::{Message, WebSocketUpgrade};
use axum::http::HeaderMap;
use axum::routing::{any, get, post};
use futures_util::{SinkExt, StreamExt};
use phirepass_proto::registry::TunnelPresence;
use phirepass_testkit::unique;
use phirepass_tunnel::{StreamConfig, Subjects, Target};
use sha2::Digest;
use tokio::net::{TcpListener, TcpStream};

use super::{Backend, Cluster, Layout, SharedBus, nats_url};

/// A [`Cluster`] on the real NATS, Redis and PostgreSQL whose registry and gateways each have
/// their own NATS connection, and whose gateways build URLs pointing back at themselves.
pub struct ProxyCluster {
    cluster: Cluster,
}

impl std::ops::Deref for ProxyCluster {
    type Target = Cluster;

    fn deref(&self) -> &Cluster {
        &self.cluster
    }
}

impl ProxyCluster {
    /// `gateways` instances, each on its own NATS connection, with proxy public port = its
    /// own listening port (so URLs it builds point back at it).
    pub async fn start(gateways: usize, users: &[(&str, &str)], app_token_ttl: Duration) -> Self {
        Self::start_with(gateways, users, app_token_ttl, |_, _| {}).await
    }

    /// [`start`](Self::start), then `tweak` on each gateway's config, given its address.
    pub async fn start_with(
        gateways: usize,
        users: &[(&str, &str)],
        app_token_ttl: Duration,
        tweak: impl Fn(&mut phirepass_gateway_ws::GatewayConfig, SocketAddr),
    ) -> Self {
        let layout = Layout {
            users,
            own_connections: true,
            app_token_ttl: Some(app_token_ttl),
            ..Layout::new(Backend::Real, gateways)
        };
        let cluster = Cluster::start_layout(layout, |config, local| {
            config.proxy.public_port = Some(local.port());
            config.proxy.main_origin = Some(format!("http://{local}"));
            tweak(config, local);
        })
        .await;
        Self { cluster }
    }

    /// Registers `node` for `user`; returns the node token.
    pub async fn node_token(&self, user: &str, node: &str) -> String {
        self.cluster.node_token(user, node).await.0
    }

    /// Registers HTTP tunnel `name` for node id `node_id` (nobody needs to listen on it).
    pub async fn register_tunnel(&self, name: &str, node_id: &str) {
        self.registry()
            .tunnel_opened(TunnelPresence {
                name: name.into(),
                port: 80,
                kind: "http".into(),
                node_id: node_id.into(),
                edge_id: "edge-test".into(),
                session_id: unique("sess-"),
                user_id: "u-test".into(),
                username: "tester".into(),
                client_ip: "127.0.0.1".into(),
                ..Default::default()
            })
            .await
            .expect("tunnel opened");
    }

    /// Publishes HTTP tunnel `name` whose port 80 reaches `backend`, like an `ssh -R` session:
    /// a listener on its own NATS connection bridging each accepted stream to a TCP connection.
    pub async fn publish_tunnel(&self, name: &str, backend: SocketAddr) -> TunnelHandle {
        let node_id = format!("sshr-{}{:04x}", unique(""), std::process::id() & 0xffff);
        let bus: SharedBus = phirepass_bus::connect(Some(&nats_url()))
            .await
            .expect("nats");
        let mut listener = phirepass_tunnel::listen(
            bus,
            Subjects::new(self.prefix.clone()),
            &node_id,
            StreamConfig::default(),
        )
        .await
        .expect("listen");
        let task = tokio::spawn(async move {
            while let Some(incoming) = listener.next().await {
                if incoming.request().target != (Target::Port { port: 80 }) {
                    let _ = incoming.reject("port not published").await;
                    continue;
                }
                tokio::spawn(async move {
                    let Ok(mut tcp) = TcpStream::connect(backend).await else {
                        return;
                    };
                    let Ok(mut stream) = incoming.accept().await else {
                        return;
                    };
                    let _ = tokio::io::copy_bidirectional(&mut stream, &mut tcp).await;
                });
            }
        });
        self.register_tunnel(name, &node_id).await;
        TunnelHandle { node_id, task }
    }
}

pub struct TunnelHandle {
    pub node_id: String,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for TunnelHandle {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Headers the backend received on `/headers`, as JSON `{name: [values]}`.
fn headers_json(h: &HeaderMap) -> String {
    let mut map = serde_json::Map::new();
    for name in h.keys() {
        let values: Vec<serde_json::Value> = h
            .get_all(name)
            .iter()
            .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned().into())
            .collect();
        map.insert(name.as_str().to_string(), values.into());
    }
    serde_json::Value::Object(map).to_string()
}

/// A real HTTP server on loopback. `GET /` answers `identity`; `/headers` echoes the request
/// headers as JSON; `POST /upload` streams the body through SHA-256 and answers
/// `<hex> <length>`; `/ws` is a WebSocket echo (text `identity` first).
pub async fn backend(identity: &str) -> SocketAddr {
    let id = identity.to_string();
    let id_ws = identity.to_string();
    let app = Router::new()
        .route("/", get(move || async move { id }))
        .route(
            "/headers",
            any(|h: HeaderMap| async move { headers_json(&h) }),
        )
        .route("/upload", post(upload))
        .route(
            "/ws",
            get(move |ws: WebSocketUpgrade| async move {
                ws.on_upgrade(move |mut socket| async move {
                    if socket.send(Message::Text(id_ws.into())).await.is_err() {
                        return;
                    }
                    while let Some(Ok(msg)) = socket.next().await {
                        let echo = match msg {
                            Message::Text(t) => Message::Text(t),
                            Message::Binary(b) => Message::Binary(b),
                            Message::Close(_) => break,
                            _ => continue,
                        };
                        if socket.send(echo).await.is_err() {
                            break;
                        }
                    }
                })
            }),
        );
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    addr
}

async fn upload(body: Body) -> String {
    let mut hasher = sha2::Sha256::new();
    let mut len = 0u64;
    let mut stream = body.into_data_stream();
    while let Some(chunk) = stream.next().await {
        let Ok(chunk) = chunk else {
            return "error".into();
        };
        len += chunk.len() as u64;
        hasher.update(&chunk);
    }
    format!("{} {len}", hex_lower(&hasher.finalize()))
}

pub fn hex_lower(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// One raw HTTP/1.1 request (`head` without the final blank line); returns (status, body).
/// Lets a test send any Host spelling, including several Host headers.
pub async fn raw(addr: &str, head: &str) -> (u16, String) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut s = TcpStream::connect(addr).await.expect("connect");
    let req = format!("{head}\r\nConnection: close\r\n\r\n");
    s.write_all(req.as_bytes()).await.expect("write");
    let mut out = Vec::new();
    tokio::time::timeout(Duration::from_secs(20), s.read_to_end(&mut out))
        .await
        .expect("reply in time")
        .expect("read");
    let text = String::from_utf8_lossy(&out).into_owned();
    let status = text
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let body = text
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_string())
        .unwrap_or_default();
    (status, body)
}

/// A WebSocket to `path` on `host` through the gateway at `addr`, with extra headers.
pub async fn websocket(
    addr: &str,
    host: &str,
    path: &str,
    headers: &[(&str, &str)],
) -> tokio_tungstenite::WebSocketStream<TcpStream> {
    use tokio_tungstenite::tungstenite::client::IntoClientRequest;
    let tcp = TcpStream::connect(addr).await.expect("connect");
    let mut req = format!("ws://{host}{path}")
        .into_client_request()
        .expect("request");
    for (k, v) in headers {
        req.headers_mut().insert(
            axum::http::HeaderName::from_bytes(k.as_bytes()).expect("name"),
            v.parse().expect("value"),
        );
    }
    let (ws, _) = tokio_tungstenite::client_async(req, tcp)
        .await
        .expect("websocket handshake");
    ws
}

/// The next text message.
pub async fn ws_text(ws: &mut tokio_tungstenite::WebSocketStream<TcpStream>) -> String {
    use tokio_tungstenite::tungstenite::Message as M;
    loop {
        let msg = tokio::time::timeout(Duration::from_secs(10), ws.next())
            .await
            .expect("message in time")
            .expect("open")
            .expect("frame");
        if let M::Text(t) = msg {
            return t.to_string();
        }
    }
}

/// Sends text and returns the next text message (the echo).
pub async fn ws_echo(ws: &mut tokio_tungstenite::WebSocketStream<TcpStream>, text: &str) -> String {
    use tokio_tungstenite::tungstenite::Message as M;
    ws.send(M::Text(text.into())).await.expect("send");
    ws_text(ws).await
}

/// An in-process agent for `token` exposing `ports` on 127.0.0.1 (SSH points nowhere).
pub fn start_agent_with_ports(
    gateway_addr: &str,
    token: &str,
    ports: &[u16],
) -> super::AgentHandle {
    // No sshd behind this agent: port 1 refuses at once.
    let ssh = SocketAddr::from(([127, 0, 0, 1], 1));
    super::start_agent_with(
        super::agent_config_with_ports(gateway_addr, ssh, ports),
        token,
    )
}
