//! The Host router in front of the dashboard, and the pages behind it.

use axum::body::Body;
use axum::http::{Request, StatusCode};

use crate::common::{Gateway, get};

fn on_host(host: &str, path: &str) -> Request<Body> {
    Request::get(path)
        .header("host", host)
        .body(Body::empty())
        .unwrap()
}

async fn text(response: axum::http::Response<Body>) -> String {
    let bytes = axum::body::to_bytes(response.into_body(), 1 << 20)
        .await
        .unwrap();
    String::from_utf8(bytes.to_vec()).unwrap()
}

#[tokio::test]
async fn a_malformed_host_is_400_before_any_route() {
    let gw = Gateway::start(|_| {}).await;
    let response = gw.send(on_host("a/b", "/version")).await;
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    assert!(text(response).await.contains("invalid Host header"));
}

#[tokio::test]
async fn an_unknown_tunnel_name_is_404() {
    let gw = Gateway::start(|_| {}).await;
    let response = gw.send(on_host("missing.tunnel.localhost", "/")).await;
    assert_eq!(response.status(), StatusCode::NOT_FOUND);
    assert!(text(response).await.contains("no tunnel named missing"));
}

#[tokio::test]
async fn the_app_hosts_reserved_paths_are_never_proxied() {
    let gw = Gateway::start(|_| {}).await;
    let request = on_host("8080-web1.apps.localhost", "/__phirepass/anything");
    let response = gw.send(request).await;
    assert_eq!(response.status(), StatusCode::NOT_FOUND);
    assert!(
        text(response)
            .await
            .contains("nothing is served at this address")
    );
}

#[tokio::test]
async fn other_hosts_reach_the_dashboard() {
    let gw = Gateway::start(|_| {}).await;
    let response = gw.send(on_host("anything.example", "/version")).await;
    assert_eq!(response.status(), StatusCode::OK);
    let response = gw.send(on_host("anything.example", "/no-such-page")).await;
    assert_eq!(response.status(), StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn pages_send_a_fresh_instance_to_setup_then_strangers_to_login() {
    let gw = Gateway::start(|_| {}).await;
    let response = gw.send(get("/admin")).await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    assert_eq!(response.headers()["location"], "/setup");

    gw.user("frank").await;
    let response = gw.send(get("/admin?tab=users")).await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    assert_eq!(
        response.headers()["location"],
        "/login?next=/admin%3Ftab%3Dusers"
    );
    let response = gw.send(get("/login")).await;
    assert_eq!(response.status(), StatusCode::OK);
    let h = response.headers();
    assert_eq!(h["content-type"], "text/html; charset=utf-8");
    assert!(
        h["content-security-policy"]
            .to_str()
            .unwrap()
            .contains("frame-ancestors 'none'")
    );
    assert_eq!(h["cache-control"], "no-store");
}
