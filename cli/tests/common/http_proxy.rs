//! HTTP proxy fixtures: authz + registry + N gateway-ws on the real NATS, Redis and PostgreSQL
//! (with the app-token TTL a test needs), real local HTTP backends (identity, header echo,
//! streaming SHA-256 upload, WebSocket echo), tunnels published the way ssh-edge publishes
//! them (registry TunnelOpened + `phirepass_tunnel::listen` bridged to TCP), and agents
//! exposing ports.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::ws::{Message, WebSocketUpgrade};
use axum::http::HeaderMap;
use axum::routing::{any, get, post};
use futures_util::{SinkExt, StreamExt};
use phirepass_proto::authz::CreateUserRequest;
use phirepass_proto::authz::authz_client::AuthzClient;
use phirepass_proto::registry::TunnelPresence;
use phirepass_proto::registry::registry_client::RegistryClient;
use phirepass_runtime::grpc::{AuthedChannel, ServiceToken, channel};
use phirepass_testkit::unique;
use phirepass_tunnel::{StreamConfig, Subjects, Target};
use sha2::Digest;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

use super::{Gateway, SharedBus, nats_url, redis_url};

pub struct ProxyCluster {
    pub authz_url: String,
    pub registry_url: String,
    pub token: ServiceToken,
    pub gateways: Vec<Gateway>,
    pub prefix: String,
    stop: watch::Sender<bool>,
    stop_rx: watch::Receiver<bool>,
}

impl Drop for ProxyCluster {
    fn drop(&mut self) {
        let _ = self.stop.send(true);
    }
}

fn stopper(rx: &watch::Receiver<bool>) -> impl std::future::Future<Output = ()> + Send + 'static {
    let mut rx = rx.clone();
    async move {
        let _ = rx.wait_for(|s| *s).await;
    }
}

impl ProxyCluster {
    /// `gateways` instances, each on its own NATS connection, with proxy public port = its
    /// own listening port (so URLs it builds point back at it).
    pub async fn start(gateways: usize, users: &[(&str, &str)], app_token_ttl: Duration) -> Self {
        let _ = phirepass_runtime::telemetry::init("phirepass-tests");
        let token = ServiceToken::generate();
        let (stop, stop_rx) = watch::channel(false);
        let store = phirepass_store::Store::fresh_postgres_for_test()
            .await
            .expect("fresh postgres database");
        let presence = phirepass_presence::connect(Some(&redis_url()), &unique("t:"))
            .await
            .expect("redis");
        let prefix = unique("t");
        let nats = phirepass_bus::NatsBus::connect(&nats_url())
            .await
            .expect("nats");
        let events: Arc<dyn phirepass_bus::EventLog> = Arc::new(
            phirepass_bus::JetStreamEventLog::with_stream(
                &nats,
                &prefix,
                &format!("PP_EVENTS_{}", prefix.to_uppercase()),
            )
            .await
            .expect("jetstream"),
        );
        let authz_listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let registry_listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let authz_url = format!("http://{}", authz_listener.local_addr().expect("addr"));
        let registry_url = format!("http://{}", registry_listener.local_addr().expect("addr"));
        let mut authz_config = phirepass_authz::AuthzConfig::new(token.clone());
        authz_config.audit_subject = format!("{prefix}.events.audit");
        authz_config.app_token_ttl = app_token_ttl;
        tokio::spawn(phirepass_authz::serve(
            authz_config,
            authz_listener,
            phirepass_authz::AuthzDeps {
                store,
                presence: presence.clone(),
                events,
            },
            stopper(&stop_rx),
        ));
        let registry_bus = phirepass_bus::connect(Some(&nats_url()))
            .await
            .expect("nats");
        tokio::spawn(phirepass_registry::serve(
            phirepass_registry::RegistryConfig {
                subject_prefix: prefix.clone(),
                ..phirepass_registry::RegistryConfig::new(token.clone())
            },
            registry_listener,
            phirepass_registry::RegistryDeps {
                presence,
                bus: Some(registry_bus),
            },
            stopper(&stop_rx),
        ));
        let authz = AuthzClient::new(channel(&authz_url, token.clone()).expect("channel"));
        for (username, password) in users {
            authz
                .clone()
                .create_user(CreateUserRequest {
                    username: username.to_string(),
                    password: password.to_string(),
                })
                .await
                .expect("create user");
        }
        let mut list = Vec::new();
        for _ in 0..gateways {
            let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
            let local = listener.local_addr().expect("addr");
            let mut config = phirepass_gateway_ws::GatewayConfig::local(
                authz_url.clone(),
                registry_url.clone(),
                token.clone(),
            );
            config.subject_prefix = prefix.clone();
            config.proxy.public_port = Some(local.port());
            config.proxy.main_origin = Some(format!("http://{local}"));
            let id = config.gateway_id.clone();
            let bus = phirepass_bus::connect(Some(&nats_url()))
                .await
                .expect("nats");
            tokio::spawn(phirepass_gateway_ws::serve(
                config,
                listener,
                phirepass_gateway_ws::GatewayDeps { bus },
                stopper(&stop_rx),
            ));
            list.push(Gateway {
                addr: local.to_string(),
                id,
            });
        }
        Self {
            authz_url,
            registry_url,
            token,
            gateways: list,
            prefix,
            stop,
            stop_rx,
        }
    }

    pub fn authz(&self) -> AuthzClient<AuthedChannel> {
        AuthzClient::new(channel(&self.authz_url, self.token.clone()).expect("channel"))
    }

    pub fn registry(&self) -> RegistryClient<AuthedChannel> {
        RegistryClient::new(channel(&self.registry_url, self.token.clone()).expect("channel"))
    }

    /// Registers `node` for `user`; returns the node token.
    pub async fn node_token(&self, user: &str, node: &str) -> String {
        self.authz()
            .create_node_token(phirepass_proto::authz::CreateNodeTokenRequest {
                username: user.into(),
                node_name: node.into(),
                expires_in_secs: None,
            })
            .await
            .expect("create node token")
            .into_inner()
            .token
    }

    /// Waits until the registry lists node `name` as connected.
    pub async fn wait_node_online(&self, name: &str) {
        super::wait_node_online(self.authz(), self.registry(), name).await;
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
    let url = format!("ws://{gateway_addr}/api/nodes/ws");
    let list = ports
        .iter()
        .map(|p| p.to_string())
        .collect::<Vec<_>>()
        .join(",");
    let config = phirepass_agent::AgentConfig::from_lookup(|key| match key {
        "SERVER_URL" => Some(url.clone()),
        "SSH_HOST" => Some("127.0.0.1".into()),
        "SSH_PORT" => Some("1".into()),
        "PORT" => Some("0".into()),
        "ALLOWED_PORTS" => Some(list.clone()),
        _ => None,
    })
    .expect("agent config");
    let (stop, rx) = watch::channel(false);
    let task = tokio::spawn(phirepass_agent::run(
        config,
        token.to_string(),
        stopper(&rx),
    ));
    super::AgentHandle { task, stop }
}
