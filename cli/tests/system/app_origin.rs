//! Issue #9 finding 1: an app host takes WebSocket upgrades and unsafe methods only from its own
//! pages. The app cookie is SameSite=Lax, so a browser attaches it to requests from any same-site
//! page (another app host, a tunnel under the same domain); the gateway must refuse those before
//! the app sees them. Real stack, a real agent exposing a real HTTP server that counts what
//! reaches it, and reqwest / tungstenite speaking as the browser would (the header matrix).
//! The same attack from a real Chromium page is in the web suite (`cross_site`).

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use axum::Router;
use axum::extract::ws::WebSocketUpgrade;
use axum::routing::{any, get};
use tokio::net::{TcpListener, TcpStream};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

use crate::common::http_proxy::{ProxyCluster, start_agent_with_ports};

const ALICE: &str = "alice";
const PASSWORD: &str = "app-Password-1";
const NODE: &str = "node-a";

/// An app that counts every request and WebSocket that reaches it.
#[derive(Clone, Default)]
struct Seen {
    requests: Arc<AtomicUsize>,
    sockets: Arc<AtomicUsize>,
}

impl Seen {
    fn get(&self) -> (usize, usize) {
        (
            self.requests.load(Ordering::SeqCst),
            self.sockets.load(Ordering::SeqCst),
        )
    }
}

async fn counting_app(seen: Seen) -> SocketAddr {
    let requests = seen.requests.clone();
    let sockets = seen.sockets.clone();
    let app = Router::new()
        .route(
            "/hit",
            any(move || async move {
                requests.fetch_add(1, Ordering::SeqCst);
                "hit"
            }),
        )
        .route(
            "/ws",
            get(move |ws: WebSocketUpgrade| async move {
                sockets.fetch_add(1, Ordering::SeqCst);
                ws.on_upgrade(|_socket| async {})
            }),
        );
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    addr
}

struct App {
    _cluster: ProxyCluster,
    _agent: crate::common::AgentHandle,
    gw: SocketAddr,
    /// `<port>-node-a.apps.localhost:<gateway port>`, as the browser sends it in Host.
    host: String,
    token: String,
    seen: Seen,
}

async fn app() -> App {
    let cluster = ProxyCluster::start(1, &[(ALICE, PASSWORD)], Duration::from_secs(900)).await;
    let seen = Seen::default();
    let upstream = counting_app(seen.clone()).await;
    let gw_addr = cluster.gateways[0].addr.clone();
    let node_token = cluster.node_token(ALICE, NODE).await;
    let agent = start_agent_with_ports(&gw_addr, &node_token, &[upstream.port()]);
    cluster.wait_node_online(NODE).await;
    let gw: SocketAddr = gw_addr.parse().unwrap();
    let session = phirepass_testkit::browser::login(&gw_addr, ALICE, PASSWORD)
        .await
        .unwrap();
    let open = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
        .get(format!(
            "http://{gw_addr}/api/apps/open?node={NODE}&port={}",
            upstream.port()
        ))
        .bearer_auth(&session)
        .send()
        .await
        .unwrap();
    assert_eq!(open.status(), 303);
    let location = open.headers()["location"].to_str().unwrap();
    let token = location.split("token=").nth(1).unwrap().to_string();
    App {
        _cluster: cluster,
        _agent: agent,
        gw,
        host: format!("{}-{NODE}.apps.localhost:{}", upstream.port(), gw.port()),
        token,
        seen,
    }
}

impl App {
    fn cookie(&self) -> String {
        format!("__Host-phirepass_app={}", self.token)
    }

    /// One plain request on the app host with the app cookie and `headers`; the status.
    async fn request(&self, method: &str, headers: &[(&str, &str)]) -> (u16, String) {
        let name = self.host.split(':').next().unwrap();
        let client = reqwest::Client::builder()
            .resolve(name, self.gw)
            .build()
            .unwrap();
        let mut r = client
            .request(method.parse().unwrap(), format!("http://{}/hit", self.host))
            .header("cookie", self.cookie());
        for (k, v) in headers {
            r = r.header(*k, *v);
        }
        let r = r.send().await.unwrap();
        (r.status().as_u16(), r.text().await.unwrap())
    }

    /// A WebSocket handshake on the app host; the status the gateway answered.
    async fn upgrade(&self, headers: &[(&str, &str)]) -> u16 {
        let tcp = TcpStream::connect(self.gw).await.unwrap();
        let mut req = format!("ws://{}/ws", self.host)
            .into_client_request()
            .unwrap();
        let cookie = self.cookie();
        let all = headers.iter().copied().chain([("cookie", cookie.as_str())]);
        for (k, v) in all {
            req.headers_mut().insert(
                axum::http::HeaderName::from_bytes(k.as_bytes()).unwrap(),
                v.parse().unwrap(),
            );
        }
        match tokio_tungstenite::client_async(req, tcp).await {
            Ok((_, response)) => response.status().as_u16(),
            Err(tokio_tungstenite::tungstenite::Error::Http(r)) => r.status().as_u16(),
            Err(e) => panic!("handshake failed oddly: {e}"),
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn unsafe_methods_only_from_the_app_hosts_own_pages() {
    let app = app().await;
    let own = &format!("http://{}", app.host)[..];
    let sibling = &format!("http://8080-other.apps.localhost:{}", app.gw.port())[..];
    let tunnel = &format!("http://evil.tunnel.localhost:{}", app.gw.port())[..];
    let allowed: &[(&str, &[(&str, &str)])] = &[
        ("POST", &[("origin", own)]),
        ("PUT", &[("origin", own), ("sec-fetch-site", "same-origin")]),
        ("DELETE", &[("sec-fetch-site", "same-origin")]),
        // A page with Referrer-Policy: no-referrer posts with Origin: null.
        (
            "POST",
            &[("origin", "null"), ("sec-fetch-site", "same-origin")],
        ),
        // Safe methods from anywhere: links, images, top-level navigations.
        (
            "GET",
            &[("origin", sibling), ("sec-fetch-site", "same-site")],
        ),
        ("HEAD", &[("sec-fetch-site", "cross-site")]),
        ("GET", &[]),
    ];
    for (i, (method, headers)) in allowed.iter().enumerate() {
        let before = app.seen.get().0;
        let (status, _) = app.request(method, headers).await;
        assert_eq!(status, 200, "{method} {headers:?}");
        assert_eq!(app.seen.get().0, before + 1, "case {i}: the app saw it");
    }
    let refused: &[(&str, &[(&str, &str)])] = &[
        ("POST", &[("origin", sibling)]),
        ("POST", &[("origin", tunnel)]),
        (
            "PATCH",
            &[("origin", sibling), ("sec-fetch-site", "same-site")],
        ),
        (
            "DELETE",
            &[("origin", own), ("sec-fetch-site", "same-site")],
        ),
        ("POST", &[("origin", own), ("sec-fetch-site", "cross-site")]),
        ("POST", &[("sec-fetch-site", "same-site")]),
        ("POST", &[("origin", "null")]),
        ("POST", &[("origin", "http://evil.example")]),
        // A client that says nothing about where it comes from cannot use the cookie.
        ("POST", &[]),
        ("PUT", &[]),
    ];
    let before = app.seen.get();
    for (method, headers) in refused {
        let (status, body) = app.request(method, headers).await;
        assert_eq!(status, 403, "{method} {headers:?}: {body}");
        assert!(body.contains("refused"), "{body}");
    }
    assert_eq!(app.seen.get(), before, "a refused request reached the app");
    let (_, body) = app.request("POST", &[("origin", sibling)]).await;
    assert!(
        body.contains(&format!("Origin {sibling} is not {own}")),
        "{body}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn websockets_only_from_the_app_hosts_own_pages() {
    let app = app().await;
    let own = &format!("http://{}", app.host)[..];
    let sibling = &format!("http://8080-other.apps.localhost:{}", app.gw.port())[..];
    assert_eq!(app.upgrade(&[("origin", own)]).await, 101);
    assert_eq!(app.seen.get().1, 1);
    for headers in [
        &[("origin", sibling)][..],
        &[("origin", "http://evil.tunnel.localhost")],
        &[("origin", own), ("sec-fetch-site", "same-site")],
        &[("origin", "null")],
        &[],
    ] {
        assert_eq!(app.upgrade(headers).await, 403, "{headers:?}");
    }
    assert_eq!(app.seen.get().1, 1, "a refused WebSocket reached the app");
}
