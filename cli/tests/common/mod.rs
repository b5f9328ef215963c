//! A whole Phirepass deployment inside one test: authz, registry and N gateway-ws instances,
//! on the real NATS + Redis + PostgreSQL, or on the embedded defaults.
#![allow(dead_code)]

use std::sync::Arc;
use std::time::Duration;

use phirepass_proto::authz::authz_client::AuthzClient;
use phirepass_proto::authz::{CreateNodeTokenRequest, CreateUserRequest};
use phirepass_runtime::grpc::{AuthedChannel, ServiceToken, channel};
use phirepass_testkit::browser::http;
use phirepass_testkit::unique;
use tokio::net::TcpListener;
use tokio::sync::watch;

pub const NODE: &str = "web-1";

#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// NATS, Redis and PostgreSQL on loopback.
    Real,
    /// In-process bus, in-memory presence, SQLite in memory.
    Embedded,
}

pub struct Gateway {
    pub addr: String,
    pub id: String,
}

pub struct Cluster {
    pub authz_url: String,
    pub registry_url: String,
    pub token: ServiceToken,
    pub gateways: Vec<Gateway>,
    stop: watch::Sender<bool>,
}

impl Drop for Cluster {
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

pub fn nats_url() -> String {
    std::env::var("NATS_URL").unwrap_or_else(|_| "nats://127.0.0.1:4222".into())
}

pub fn redis_url() -> String {
    std::env::var("REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".into())
}

impl Cluster {
    pub async fn start(backend: Backend, gateways: usize) -> Self {
        Self::start_with(backend, gateways, &[], |_| {}).await
    }

    /// Starts the services; `users` (name, password) exist before any gateway starts (a
    /// production gateway refuses to start without one); `tweak` adjusts each gateway's config.
    pub async fn start_with(
        backend: Backend,
        gateways: usize,
        users: &[(&str, &str)],
        tweak: impl Fn(&mut phirepass_gateway_ws::GatewayConfig),
    ) -> Self {
        let _ = phirepass_runtime::telemetry::init("phirepass-tests");
        let token = ServiceToken::generate();
        let (stop, stop_rx) = watch::channel(false);
        let (store, presence, bus) = match backend {
            Backend::Real => (
                phirepass_store::Store::fresh_postgres_for_test()
                    .await
                    .expect("fresh postgres database"),
                phirepass_presence::connect(Some(&redis_url()), &unique("t:"))
                    .await
                    .expect("redis"),
                phirepass_bus::connect(Some(&nats_url()))
                    .await
                    .expect("nats"),
            ),
            Backend::Embedded => (
                phirepass_store::Store::memory_sqlite()
                    .await
                    .expect("sqlite"),
                phirepass_presence::connect(None, "pp:")
                    .await
                    .expect("memory presence"),
                phirepass_bus::connect(None).await.expect("memory bus"),
            ),
        };
        // Every gateway of one deployment shares the subject prefix; tests get their own.
        let prefix = unique("t");
        let events: Arc<dyn phirepass_bus::EventLog> = match backend {
            Backend::Real => {
                let nats = phirepass_bus::NatsBus::connect(&nats_url())
                    .await
                    .expect("nats");
                let stream = format!("PP_EVENTS_{}", prefix.to_uppercase());
                Arc::new(
                    phirepass_bus::JetStreamEventLog::with_stream(&nats, &prefix, &stream)
                        .await
                        .expect("jetstream"),
                )
            }
            Backend::Embedded => Arc::new(phirepass_bus::MemoryEventLog::new()),
        };
        let authz_listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let registry_listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let authz_url = format!("http://{}", authz_listener.local_addr().expect("addr"));
        let registry_url = format!("http://{}", registry_listener.local_addr().expect("addr"));
        tokio::spawn(phirepass_authz::serve(
            phirepass_authz::AuthzConfig::new(token.clone()),
            authz_listener,
            phirepass_authz::AuthzDeps {
                store,
                presence: presence.clone(),
                events,
            },
            stopper(&stop_rx),
        ));
        tokio::spawn(phirepass_registry::serve(
            phirepass_registry::RegistryConfig::new(token.clone()),
            registry_listener,
            phirepass_registry::RegistryDeps { presence },
            stopper(&stop_rx),
        ));
        let authz = AuthzClient::new(channel(&authz_url, token.clone()).expect("channel"));
        for (username, password) in users {
            let req = CreateUserRequest {
                username: username.to_string(),
                password: password.to_string(),
            };
            authz.clone().create_user(req).await.expect("create user");
        }
        let mut list = Vec::new();
        for _ in 0..gateways {
            let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
            let addr = listener.local_addr().expect("addr").to_string();
            let mut config = phirepass_gateway_ws::GatewayConfig::local(
                authz_url.clone(),
                registry_url.clone(),
                token.clone(),
            );
            config.subject_prefix = prefix.clone();
            tweak(&mut config);
            let id = config.gateway_id.clone();
            tokio::spawn(phirepass_gateway_ws::serve(
                config,
                listener,
                phirepass_gateway_ws::GatewayDeps { bus: bus.clone() },
                stopper(&stop_rx),
            ));
            list.push(Gateway { addr, id });
        }
        Self {
            authz_url,
            registry_url,
            token,
            gateways: list,
            stop,
        }
    }

    pub fn authz(&self) -> AuthzClient<AuthedChannel> {
        AuthzClient::new(channel(&self.authz_url, self.token.clone()).expect("channel"))
    }

    pub async fn add_user(&self, username: &str, password: &str) {
        self.authz()
            .create_user(CreateUserRequest {
                username: username.into(),
                password: password.into(),
            })
            .await
            .expect("create user");
    }

    /// Registers `node` for `user`; returns (token, token_id).
    pub async fn node_token(&self, user: &str, node: &str) -> (String, String) {
        let r = self
            .authz()
            .create_node_token(CreateNodeTokenRequest {
                username: user.into(),
                node_name: node.into(),
                expires_in_secs: None,
            })
            .await
            .expect("create node token")
            .into_inner();
        (r.token, r.token_id)
    }
}

/// Polls `GET /api/nodes` on `addr` as the logged-in user until `node` is (or is no longer) listed.
pub async fn wait_node_listed(
    addr: &str,
    session: &str,
    node: &str,
    listed: bool,
    timeout: Duration,
) -> bool {
    let deadline = tokio::time::Instant::now() + timeout;
    let auth = format!("Bearer {session}");
    while tokio::time::Instant::now() < deadline {
        if let Ok(reply) = http(addr, "GET", "/api/nodes", &[("authorization", &auth)], "").await {
            let json: serde_json::Value = serde_json::from_str(&reply.body).unwrap_or_default();
            let present = json["nodes"]
                .as_array()
                .map(|a| a.iter().any(|n| n["name"] == node))
                .unwrap_or(false);
            if present == listed {
                return true;
            }
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    false
}

/// Path of a workspace binary next to the test executable (built by `cargo build --workspace --bins`).
pub fn workspace_bin(name: &str) -> std::path::PathBuf {
    let exe = std::env::current_exe().expect("current exe");
    let dir = exe.parent().and_then(|d| d.parent()).expect("target dir");
    dir.join(name)
}

pub type SharedBus = Arc<dyn phirepass_bus::Bus>;

/// An in-process agent; dropping the handle stops it.
pub struct AgentHandle {
    pub task: tokio::task::JoinHandle<Result<(), phirepass_agent::AgentError>>,
    stop: watch::Sender<bool>,
}

impl Drop for AgentHandle {
    fn drop(&mut self) {
        let _ = self.stop.send(true);
    }
}

pub fn agent_config(gateway_addr: &str, ssh: std::net::SocketAddr) -> phirepass_agent::AgentConfig {
    let url = format!("ws://{gateway_addr}/api/nodes/ws");
    phirepass_agent::AgentConfig::from_lookup(|key| match key {
        "SERVER_URL" => Some(url.clone()),
        "SSH_HOST" => Some(ssh.ip().to_string()),
        "SSH_PORT" => Some(ssh.port().to_string()),
        "PORT" => Some("0".into()),
        _ => None,
    })
    .expect("agent config")
}

pub fn start_agent(gateway_addr: &str, token: &str, ssh: std::net::SocketAddr) -> AgentHandle {
    let (stop, rx) = watch::channel(false);
    let task = tokio::spawn(phirepass_agent::run(
        agent_config(gateway_addr, ssh),
        token.to_string(),
        stopper(&rx),
    ));
    AgentHandle { task, stop }
}
