//! The Origin rule and the CSRF guard on state-changing calls, in development mode (the mode
//! that once skipped the Origin check on WebSockets, never on these calls).

use axum::body::Body;
use axum::http::{Request, StatusCode};

use crate::common::{Gateway, HOST, error, json};

fn post(path: &str, headers: &[(&str, &str)]) -> Request<Body> {
    let mut request = Request::post(path).header("host", HOST);
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    request.body(Body::from("{}")).unwrap()
}

#[tokio::test]
async fn another_sites_origin_is_refused_with_403() {
    let gw = Gateway::start(|_| {}).await;
    let request = post(
        "/api/auth/logout",
        &[
            ("origin", "http://evil.example"),
            ("content-type", "application/json"),
        ],
    );
    let response = gw.send(request).await;
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
    assert_eq!(json(response).await, error("origin not allowed"));
}

#[tokio::test]
async fn cross_site_fetch_metadata_without_origin_is_refused() {
    let gw = Gateway::start(|_| {}).await;
    let request = post(
        "/api/auth/logout",
        &[
            ("sec-fetch-site", "cross-site"),
            ("content-type", "application/json"),
        ],
    );
    let response = gw.send(request).await;
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
    assert_eq!(json(response).await, error("origin not allowed"));
}

#[tokio::test]
async fn a_form_post_from_this_site_needs_json_or_the_custom_header() {
    let gw = Gateway::start(|_| {}).await;
    let origin = format!("http://{HOST}");
    let form = post(
        "/api/auth/logout",
        &[
            ("origin", &origin),
            ("content-type", "application/x-www-form-urlencoded"),
        ],
    );
    let response = gw.send(form).await;
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    assert_eq!(
        json(response).await,
        error("send a JSON body (content-type: application/json) or the x-phirepass header")
    );

    let custom = post(
        "/api/auth/logout",
        &[("origin", &origin), ("x-phirepass", "1")],
    );
    let response = gw.send(custom).await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(json(response).await, serde_json::json!({ "ok": true }));
}

#[tokio::test]
async fn a_listed_origin_may_post_from_another_host() {
    let gw = Gateway::start(|c| c.allowed_origins = vec!["https://ui.example".into()]).await;
    let request = post(
        "/api/auth/logout",
        &[
            ("origin", "https://ui.example/"),
            ("content-type", "application/json"),
        ],
    );
    assert_eq!(gw.send(request).await.status(), StatusCode::OK);
}

#[tokio::test]
async fn login_refuses_a_foreign_origin_before_asking_authz() {
    let gw = Gateway::start(|_| {}).await;
    let mut request = crate::common::login("nobody", "whatever-password");
    request
        .headers_mut()
        .insert("origin", "http://evil.example".parse().unwrap());
    let response = gw.send(request).await;
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
    assert_eq!(json(response).await, error("origin not allowed"));
}
