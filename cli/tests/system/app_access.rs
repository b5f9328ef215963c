//! Agent ports in the browser (issue #5, design note 004): dashboard -> app token -> callback
//! -> host-only cookie -> proxied requests, with a real agent exposing a real HTTP server.
use std::time::Duration;

use crate::common::http_proxy::{
    ProxyCluster, backend, start_agent_with_ports, websocket, ws_echo, ws_text,
};

const ALICE: &str = "alice";
const BOB: &str = "bob";
const PASSWORD: &str = "app-Password-1";

struct Apps {
    cluster: ProxyCluster,
    gw: String,
    port_a: u16,
    port_b: u16,
    _agents: Vec<crate::common::AgentHandle>,
}

/// alice owns node-a (exposing two backends, "app:a" and "app:b") and node-b (exposing
/// "app:a" only); bob has a grant on node-a.
async fn apps(ttl: Duration) -> Apps {
    let cluster = ProxyCluster::start(1, &[(ALICE, PASSWORD), (BOB, PASSWORD)], ttl).await;
    let a = backend("app:a").await;
    let b = backend("app:b").await;
    let gw = cluster.gateways[0].addr.clone();
    let token_a = cluster.node_token(ALICE, "node-a").await;
    let token_b = cluster.node_token(ALICE, "node-b").await;
    let agents = vec![
        start_agent_with_ports(&gw, &token_a, &[a.port(), b.port()]),
        start_agent_with_ports(&gw, &token_b, &[a.port()]),
    ];
    cluster
        .authz()
        .grant(phirepass_proto::authz::GrantRequest {
            principal_kind: phirepass_proto::authz::PrincipalKind::User as i32,
            principal: BOB.into(),
            target: "node-a".into(),
            ..Default::default()
        })
        .await
        .unwrap();
    cluster.wait_node_online("node-a").await;
    cluster.wait_node_online("node-b").await;
    Apps {
        cluster,
        gw,
        port_a: a.port(),
        port_b: b.port(),
        _agents: agents,
    }
}

fn gw_port(gw: &str) -> u16 {
    gw.rsplit(':').next().unwrap().parse().unwrap()
}

fn app_host(port: u16, node: &str) -> String {
    format!("{port}-{node}.apps.localhost")
}

/// reqwest's cookie store as Chromium keeps cookies: `*.localhost` over http is a secure
/// context (the store counts only `localhost` and loopback addresses), so the `Secure`
/// `__Host-` app cookie is kept and sent there as in Chromium.
#[derive(Default)]
struct ChromiumJar(reqwest::cookie::Jar);

impl reqwest::cookie::CookieStore for ChromiumJar {
    fn set_cookies(
        &self,
        headers: &mut dyn Iterator<Item = &reqwest::header::HeaderValue>,
        url: &reqwest::Url,
    ) {
        self.0.set_cookies(headers, &as_chromium(url));
    }

    fn cookies(&self, url: &reqwest::Url) -> Option<reqwest::header::HeaderValue> {
        self.0.cookies(&as_chromium(url))
    }
}

fn as_chromium(url: &reqwest::Url) -> reqwest::Url {
    let mut url = url.clone();
    if url.scheme() == "http" && url.host_str().is_some_and(|h| h.ends_with(".localhost")) {
        url.set_scheme("https").unwrap();
    }
    url
}

/// A browser: cookie store, follows redirects, app hosts resolved to the gateway.
fn browser(apps: &Apps, follow: bool) -> reqwest::Client {
    let addr: std::net::SocketAddr = apps.gw.parse().unwrap();
    let jar = std::sync::Arc::new(ChromiumJar::default());
    let mut b = reqwest::Client::builder().cookie_provider(jar);
    for node in ["node-a", "node-b"] {
        for port in [apps.port_a, apps.port_b] {
            b = b.resolve(&app_host(port, node), addr);
        }
    }
    if !follow {
        b = b.redirect(reqwest::redirect::Policy::none());
    }
    b.build().unwrap()
}

async fn login(c: &reqwest::Client, gw: &str, user: &str) {
    let r = c
        .post(format!("http://{gw}/api/auth/login"))
        .header("content-type", "application/json")
        .body(serde_json::json!({"username": user, "password": PASSWORD}).to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200, "login {user}");
}

/// Mints a token through the dashboard endpoint without following; returns the callback URL.
async fn callback_url(apps: &Apps, user: &str, node: &str, port: u16) -> String {
    let c = browser(apps, false);
    login(&c, &apps.gw, user).await;
    let r = c
        .get(format!(
            "http://{}/api/apps/open?node={node}&port={port}",
            apps.gw
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 303);
    let location = r.headers()["location"].to_str().unwrap().to_string();
    let expected = format!(
        "http://{}:{}/__phirepass/callback?token=pp_app_",
        app_host(port, node),
        gw_port(&apps.gw)
    );
    assert!(location.starts_with(&expected), "{location}");
    location
}

fn token_of(callback: &str) -> String {
    callback.split("token=").nth(1).unwrap().to_string()
}

/// GET `/` on an app host with `Cookie: __Host-phirepass_app=<token>` (no cookie store).
async fn with_cookie(apps: &Apps, node: &str, port: u16, token: &str) -> (u16, String) {
    let c = browser(apps, false);
    let r = c
        .get(format!(
            "http://{}:{}/",
            app_host(port, node),
            gw_port(&apps.gw)
        ))
        .header("cookie", format!("__Host-phirepass_app={token}"))
        .send()
        .await
        .unwrap();
    (r.status().as_u16(), r.text().await.unwrap())
}

#[tokio::test(flavor = "multi_thread")]
async fn token_callback_cookie_flow_like_a_browser() {
    let apps = apps(Duration::from_secs(900)).await;
    let c = browser(&apps, true);
    login(&c, &apps.gw, ALICE).await;
    let open = format!(
        "http://{}/api/apps/open?node=node-a&port={}",
        apps.gw, apps.port_a
    );
    let r = c.get(&open).send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.url().path(), "/");
    assert_eq!(
        r.url().host_str(),
        Some(app_host(apps.port_a, "node-a").as_str())
    );
    let csp = r.headers()["content-security-policy"]
        .to_str()
        .unwrap()
        .to_string();
    assert!(csp.contains("frame-ancestors 'self'"), "{csp}");
    assert_eq!(r.text().await.unwrap(), "app:a");

    // The backend never sees Phirepass's cookies, even when a client sends them.
    let headers_url = format!(
        "http://{}:{}/headers",
        app_host(apps.port_a, "node-a"),
        gw_port(&apps.gw)
    );
    let seen: serde_json::Value = serde_json::from_str(
        &c.get(&headers_url)
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap(),
    )
    .unwrap();
    assert!(seen.get("cookie").is_none(), "{seen}");
    let token = token_of(&callback_url(&apps, ALICE, "node-a", apps.port_a).await);
    let raw = browser(&apps, false)
        .get(&headers_url)
        .header(
            "cookie",
            format!(
                "__Host-pp_session=main-secret; pp_session=s; __Host-phirepass_app={token}; \
                 __phirepass_app=t; theirs=1"
            ),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(raw.status(), 200);
    let seen: serde_json::Value = serde_json::from_str(&raw.text().await.unwrap()).unwrap();
    assert_eq!(seen["cookie"], serde_json::json!(["theirs=1"]));

    // Without a cookie: 401 with a way back through the dashboard.
    let anon = browser(&apps, false)
        .get(format!(
            "http://{}:{}/",
            app_host(apps.port_a, "node-a"),
            gw_port(&apps.gw)
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(anon.status(), 401);
    assert!(
        anon.text()
            .await
            .unwrap()
            .contains("/api/apps/open?node=node-a")
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn callback_sets_a_host_only_cookie() {
    let apps = apps(Duration::from_secs(900)).await;
    let callback = callback_url(&apps, ALICE, "node-a", apps.port_a).await;
    let r = browser(&apps, false).get(&callback).send().await.unwrap();
    assert_eq!(r.status(), 303);
    assert_eq!(r.headers()["location"], "/");
    assert_eq!(r.headers()["cache-control"], "no-store");
    let cookie = r.headers()["set-cookie"].to_str().unwrap().to_string();
    // A loopback name is a secure context for the browser: the `__Host-` cookie, which no
    // other host can set or overwrite.
    assert!(
        cookie.starts_with("__Host-phirepass_app=pp_app_"),
        "{cookie}"
    );
    for attr in ["HttpOnly", "SameSite=Lax", "Path=/", "Secure"] {
        assert!(cookie.split("; ").any(|a| a == attr), "{attr}: {cookie}");
    }
    assert!(!cookie.to_ascii_lowercase().contains("domain="), "{cookie}");
    // Unauthenticated open: to the login page, coming back here afterwards.
    let r = browser(&apps, false)
        .get(format!(
            "http://{}/api/apps/open?node=node-a&port=80",
            apps.gw
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 303);
    assert!(
        r.headers()["location"]
            .to_str()
            .unwrap()
            .starts_with("/login?next=")
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn out_of_scope_expired_and_forged_tokens_are_refused() {
    let apps = apps(Duration::from_secs(4)).await;
    let token = token_of(&callback_url(&apps, ALICE, "node-a", apps.port_a).await);
    assert_eq!(
        with_cookie(&apps, "node-a", apps.port_a, &token).await,
        (200, "app:a".to_string())
    );
    // Port A's token on port B of the same node, and on another node.
    assert_eq!(
        with_cookie(&apps, "node-a", apps.port_b, &token).await.0,
        401
    );
    assert_eq!(
        with_cookie(&apps, "node-b", apps.port_a, &token).await.0,
        401
    );
    // Same checks on the callback itself.
    let port = gw_port(&apps.gw);
    for host in [
        app_host(apps.port_b, "node-a"),
        app_host(apps.port_a, "node-b"),
    ] {
        let r = browser(&apps, false)
            .get(format!(
                "http://{host}:{port}/__phirepass/callback?token={token}"
            ))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 401, "{host}");
        assert!(r.headers().get("set-cookie").is_none());
    }
    // Forged: right shape, never issued; and garbage.
    let forged = format!("pp_app_{}", "A".repeat(43));
    assert_eq!(
        with_cookie(&apps, "node-a", apps.port_a, &forged).await.0,
        401
    );
    assert_eq!(with_cookie(&apps, "node-a", apps.port_a, "x").await.0, 401);
    // Expired: the TTL is 4 s.
    tokio::time::sleep(Duration::from_secs(5)).await;
    assert_eq!(
        with_cookie(&apps, "node-a", apps.port_a, &token).await.0,
        401
    );
    let r = browser(&apps, false)
        .get(format!(
            "http://{}:{port}/__phirepass/callback?token={token}",
            app_host(apps.port_a, "node-a")
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
}

#[tokio::test(flavor = "multi_thread")]
async fn refreshed_tokens_keep_a_long_session_alive() {
    // Refreshed when a third of the TTL (2 s) remains; checked at least every ~1.5 s.
    let apps = apps(Duration::from_secs(6)).await;
    let c = browser(&apps, true);
    login(&c, &apps.gw, ALICE).await;
    let r = c
        .get(format!(
            "http://{}/api/apps/open?node=node-a&port={}",
            apps.gw, apps.port_a
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(r.text().await.unwrap(), "app:a");
    let url = format!(
        "http://{}:{}/",
        app_host(apps.port_a, "node-a"),
        gw_port(&apps.gw)
    );
    // Twice the TTL: only refreshed cookies can carry the session this far.
    for _ in 0..25 {
        tokio::time::sleep(Duration::from_millis(400)).await;
        let r = c.get(&url).send().await.unwrap();
        assert_eq!(r.status(), 200);
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn revoking_the_grant_stops_the_next_request() {
    let apps = apps(Duration::from_secs(900)).await;
    let token = token_of(&callback_url(&apps, BOB, "node-a", apps.port_a).await);
    assert_eq!(
        with_cookie(&apps, "node-a", apps.port_a, &token).await,
        (200, "app:a".to_string())
    );
    apps.cluster
        .authz()
        .revoke(phirepass_proto::authz::RevokeRequest {
            principal_kind: phirepass_proto::authz::PrincipalKind::User as i32,
            principal: BOB.into(),
            target: "node-a".into(),
            ..Default::default()
        })
        .await
        .unwrap();
    // The gateway trusts a verified token for at most one second.
    tokio::time::sleep(Duration::from_millis(1100)).await;
    assert_eq!(
        with_cookie(&apps, "node-a", apps.port_a, &token).await.0,
        403
    );
    // And bob cannot mint a new one.
    let c = browser(&apps, false);
    login(&c, &apps.gw, BOB).await;
    let r = c
        .get(format!(
            "http://{}/api/apps/open?node=node-a&port={}",
            apps.gw, apps.port_a
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
}

#[tokio::test(flavor = "multi_thread")]
async fn websocket_through_an_app_port() {
    let apps = apps(Duration::from_secs(900)).await;
    let token = token_of(&callback_url(&apps, ALICE, "node-a", apps.port_b).await);
    let host = format!("{}:{}", app_host(apps.port_b, "node-a"), gw_port(&apps.gw));
    let cookie = format!("__Host-phirepass_app={token}");
    let origin = format!("http://{host}");
    let headers = [("cookie", cookie.as_str()), ("origin", origin.as_str())];
    let mut ws = websocket(&apps.gw, &host, "/ws", &headers).await;
    assert_eq!(ws_text(&mut ws).await, "app:b");
    assert_eq!(ws_echo(&mut ws, "echo me").await, "echo me");
}
