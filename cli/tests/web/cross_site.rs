//! Issue #9 findings 1 and 2 and session fixation in a real Chromium (e2e/cross_site.mjs), on
//! the real stack (authz, registry, gateway on NATS, Redis and PostgreSQL), a real agent and a
//! tunnel published as ssh-edge publishes one. The dashboard (`dash.pp.localhost`), the victim's
//! app host (`<port>-victim-web.apps.pp.localhost`) and the attacker's tunnel
//! (`evil.tunnel.pp.localhost`) are one site, like production's sibling sub-domains; Chromium
//! resolves every `*.localhost` name to loopback by itself. The attacker's page sends the
//! victim's app a credentialed POST and a WebSocket, and tosses cookies by script and through its
//! upstream's Set-Cookie; the app must see neither request (it sees the two its own page sends),
//! and the victim's device approval must act as the victim.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use axum::Router;
use axum::extract::ws::WebSocketUpgrade;
use axum::response::Html;
use axum::routing::{any, get};
use phirepass_testkit::browser::{http, login};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

use crate::common::http_proxy::{ProxyCluster, start_agent_with_ports};
use crate::web_ui_e2e::{prerequisites, run_suite};

const VICTIM: (&str, &str) = ("alice", "alice-Password-1");
const ATTACKER: (&str, &str) = ("mallory", "mallory-Password-1");
const NODE: &str = "victim-web";
const SITE: &str = "pp.localhost";

/// The victim's app: a page, and a POST and a WebSocket endpoint that count what reaches them.
async fn victim_app(posts: Arc<AtomicUsize>, sockets: Arc<AtomicUsize>) -> SocketAddr {
    let app = Router::new()
        .route("/", get(|| async { Html("<h1>victim app</h1>") }))
        .route(
            "/post",
            any(move || async move {
                posts.fetch_add(1, Ordering::SeqCst);
                "posted"
            }),
        )
        .route(
            "/ws",
            get(move |ws: WebSocketUpgrade| async move {
                sockets.fetch_add(1, Ordering::SeqCst);
                ws.on_upgrade(|_socket| async {})
            }),
        );
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move { axum::serve(listener, app).await });
    addr
}

/// The attacker's tunnel upstream: a page, and Set-Cookie lines aimed at the dashboard and the
/// app hosts (ours by name, nameless, not ASCII, a parent Domain), plus two of its own.
const EVIL_PAGE: &[u8] = b"HTTP/1.1 200 OK\r\n\
Content-Type: text/html\r\n\
Content-Length: 25\r\n\
Set-Cookie: pp_session=planted; Domain=pp.localhost; Path=/api/device\r\n\
Set-Cookie: __Host-pp_session=planted; Path=/; Secure\r\n\
Set-Cookie: __phirepass_app=planted; Domain=pp.localhost; Path=/\r\n\
Set-Cookie: =pp_session=planted; Domain=pp.localhost; Path=/api/device\r\n\
Set-Cookie: raw=planted\xff; Path=/\r\n\
Set-Cookie: tossed=1; Domain=pp.localhost; Path=/\r\n\
Set-Cookie: theirs=1; Path=/\r\n\
Connection: close\r\n\
\r\n\
<p>nothing to see</p>\n\n\n\n";

async fn evil_upstream() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move {
        while let Ok((mut s, _)) = listener.accept().await {
            tokio::spawn(async move {
                let mut seen = Vec::new();
                let mut buf = [0u8; 4096];
                while !seen.windows(4).any(|w| w == b"\r\n\r\n") {
                    match s.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => seen.extend_from_slice(&buf[..n]),
                    }
                }
                let _ = s.write_all(EVIL_PAGE).await;
            });
        }
    });
    addr
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sibling_hosts_cannot_ride_or_toss_cookies_in_chromium() {
    prerequisites().await;
    let cluster = ProxyCluster::start_with(
        1,
        &[VICTIM, ATTACKER],
        Duration::from_secs(900),
        |config, local| {
            config.proxy.tunnel_domain = Some(format!("tunnel.{SITE}"));
            config.proxy.apps_domain = Some(format!("apps.{SITE}"));
            config.proxy.main_origin = Some(format!("http://dash.{SITE}:{}", local.port()));
        },
    )
    .await;
    let gw = cluster.gateways[0].addr.clone();
    let port = gw.rsplit(':').next().expect("port").to_string();

    let posts = Arc::new(AtomicUsize::new(0));
    let sockets = Arc::new(AtomicUsize::new(0));
    let app = victim_app(posts.clone(), sockets.clone()).await;
    let node_token = cluster.node_token(VICTIM.0, NODE).await;
    let _agent = start_agent_with_ports(&gw, &node_token, &[app.port()]);
    cluster.wait_node_online(NODE).await;
    let _tunnel = cluster.publish_tunnel("evil", evil_upstream().await).await;

    let attacker = login(&gw, ATTACKER.0, ATTACKER.1)
        .await
        .expect("attacker login");
    // The victim's agent asks for a device code (`phirepass-agent login --device`).
    let started = http(
        &gw,
        "POST",
        "/api/device/start",
        &[],
        &serde_json::json!({"kind": "agent", "hostname": "victim-box"}).to_string(),
    )
    .await
    .expect("device start");
    assert_eq!(started.status, 200, "{}", started.body);
    let started: serde_json::Value = serde_json::from_str(&started.body).expect("json");
    let code = started["user_code"].as_str().expect("user_code");

    let app_url = format!("http://{}-{NODE}.apps.{SITE}:{port}", app.port());
    let evil_url = format!("http://evil.tunnel.{SITE}:{port}/");
    let app_port = app.port().to_string();
    run_suite(
        "cross_site.mjs",
        &format!("dash.{SITE}:{port}"),
        &[
            ("VICTIM_USER", VICTIM.0),
            ("VICTIM_PASSWORD", VICTIM.1),
            ("VICTIM_NODE", NODE),
            ("APP_PORT", &app_port),
            ("APP_URL", &app_url),
            ("EVIL_URL", &evil_url),
            ("ATTACKER_TOKEN", &attacker),
            ("USER_CODE", code),
        ],
    )
    .await;
    // Only the app's own page got through: one POST, one WebSocket.
    assert_eq!(
        posts.load(Ordering::SeqCst),
        1,
        "the attacker's POST reached the app"
    );
    assert_eq!(
        sockets.load(Ordering::SeqCst),
        1,
        "the attacker's WebSocket reached the app"
    );
}
