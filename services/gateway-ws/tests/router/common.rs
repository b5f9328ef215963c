//! The shared harness: a gateway router backed by real authz and registry services.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::http::{Request, Response, StatusCode};
use phirepass_authz::{AuthzConfig, AuthzDeps};
use phirepass_gateway_ws::{AppState, GatewayConfig, GatewayDeps, GatewayError, app, serve};
use phirepass_pki::{LocalPki, ServiceKind};
use phirepass_proto::authz::CreateUserRequest;
use phirepass_proto::authz::authz_client::AuthzClient;
use phirepass_proto::registry::registry_client::RegistryClient;
use phirepass_registry::{RegistryConfig, RegistryDeps};
use phirepass_runtime::grpc::{AuthedChannel, channel};
use serde_json::Value;
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use tower::ServiceExt;

/// The Host every request names unless a test says otherwise.
pub const HOST: &str = "gw.test:8080";
/// A peer address for `ConnectInfo`, which the real server would insert.
const PEER: SocketAddr =
    SocketAddr::new(std::net::IpAddr::V4(std::net::Ipv4Addr::LOCALHOST), 40000);

pub struct Gateway {
    pub state: Arc<AppState>,
    /// The harness's own authz client (the `authz` certificate, which this authz's widened
    /// policy lets call everything): users are created with it, not with the gateway's, which
    /// is held to gateway-ws's real allowlist rows.
    pub admin: AuthzClient<AuthedChannel>,
    /// The registry as ssh-edge calls it (tunnel presence is ssh-edge's to report).
    pub edge_registry: RegistryClient<AuthedChannel>,
    /// The deployment CA (PEM), for clients without a certificate (API tokens).
    pub trust_pem: String,
}

impl Gateway {
    /// A development-mode gateway (the default of `GatewayConfig::local`), changed by `tweak`.
    pub async fn start(tweak: impl FnOnce(&mut GatewayConfig)) -> Self {
        let pki = LocalPki::generate().unwrap();
        let bus = phirepass_bus::connect(None).await.unwrap();
        let authz = loopback().await;
        let authz_url = format!("https://{}", authz.local_addr().unwrap());
        let deps = AuthzDeps {
            store: phirepass_store::Store::memory_sqlite().await.unwrap(),
            presence: phirepass_presence::connect(None, "pp:").await.unwrap(),
            events: phirepass_bus::connect_events(None).await.unwrap(),
        };
        let mut authz_config = AuthzConfig::new(pki.identity(ServiceKind::Authz).unwrap());
        authz_config.issue_setup_code = false;
        authz_config.policy = phirepass_authz::policy::POLICY.also_allowing(ServiceKind::Authz);
        let admin = AuthzClient::new(
            channel(
                &authz_url,
                &pki.identity(ServiceKind::Authz).unwrap(),
                ServiceKind::Authz,
            )
            .unwrap(),
        );
        tokio::spawn(phirepass_authz::serve(
            authz_config,
            authz,
            deps,
            std::future::pending(),
        ));
        let registry = loopback().await;
        let registry_url = format!("https://{}", registry.local_addr().unwrap());
        let deps = RegistryDeps {
            presence: phirepass_presence::connect(None, "pp:").await.unwrap(),
            bus: Some(bus.clone()),
        };
        tokio::spawn(phirepass_registry::serve(
            RegistryConfig::new(pki.identity(ServiceKind::Registry).unwrap()),
            registry,
            deps,
            std::future::pending(),
        ));
        let edge_registry = RegistryClient::new(
            channel(
                &registry_url,
                &pki.identity(ServiceKind::SshEdge).unwrap(),
                ServiceKind::Registry,
            )
            .unwrap(),
        );
        let gateway = pki.identity(ServiceKind::GatewayWs).unwrap();
        let mut config = GatewayConfig::local(authz_url, registry_url, gateway);
        tweak(&mut config);
        Self {
            state: AppState::connect(config, bus).unwrap(),
            admin,
            edge_registry,
            trust_pem: pki.trust_pem().to_owned(),
        }
    }

    /// Sends one request through a fresh router; the peer is loopback.
    pub async fn send(&self, mut request: Request<Body>) -> Response<Body> {
        request.extensions_mut().insert(ConnectInfo(PEER));
        app(self.state.clone()).oneshot(request).await.unwrap()
    }

    /// Creates a (non-admin) user in authz, logs in, and returns the session cookie pair.
    pub async fn user(&self, username: &str) -> String {
        let request = CreateUserRequest {
            username: username.into(),
            password: password(username),
        };
        self.admin.clone().create_user(request).await.unwrap();
        let response = self.send(login(username, &password(username))).await;
        assert_eq!(response.status(), StatusCode::OK);
        let cookie = response.headers()["set-cookie"].to_str().unwrap();
        cookie.split(';').next().unwrap().to_string()
    }

    /// Serves the router on a loopback port, for requests that need a real connection.
    pub async fn listen(&self) -> SocketAddr {
        let listener = loopback().await;
        let addr = listener.local_addr().unwrap();
        let service = app(self.state.clone()).into_make_service_with_connect_info::<SocketAddr>();
        tokio::spawn(async move { axum::serve(listener, service).await });
        addr
    }
}

/// A gateway run by `serve` itself (with its background tasks and shutdown drain), on the
/// same configuration and bus, until the returned sender fires.
pub struct Served {
    pub addr: SocketAddr,
    pub stop: oneshot::Sender<()>,
    pub done: JoinHandle<Result<(), GatewayError>>,
}

impl Gateway {
    pub async fn serve(&self) -> Served {
        let listener = loopback().await;
        let addr = listener.local_addr().unwrap();
        let (stop, stopped) = oneshot::channel::<()>();
        let deps = GatewayDeps::new(self.state.bus.clone());
        let shutdown = async move {
            let _ = stopped.await;
        };
        let done = tokio::spawn(serve(self.state.config.clone(), listener, deps, shutdown));
        Served { addr, stop, done }
    }
}

async fn loopback() -> TcpListener {
    TcpListener::bind("127.0.0.1:0").await.unwrap()
}

pub fn password(username: &str) -> String {
    format!("{username}-correct-horse-battery")
}

/// `POST /api/auth/login` as the web UI sends it.
pub fn login(username: &str, password: &str) -> Request<Body> {
    let body = serde_json::json!({ "username": username, "password": password });
    Request::post("/api/auth/login")
        .header("host", HOST)
        .header("origin", format!("http://{HOST}"))
        .header("content-type", "application/json")
        .body(Body::from(body.to_string()))
        .unwrap()
}

/// A GET from this site's pages.
pub fn get(path: &str) -> Request<Body> {
    Request::get(path)
        .header("host", HOST)
        .body(Body::empty())
        .unwrap()
}

/// The response body as JSON.
pub async fn json(response: Response<Body>) -> Value {
    let bytes = axum::body::to_bytes(response.into_body(), 1 << 20)
        .await
        .unwrap();
    serde_json::from_slice(&bytes).unwrap()
}

/// The error body every `GatewayError` produces.
pub fn error(message: &str) -> Value {
    serde_json::json!({ "error": message })
}
