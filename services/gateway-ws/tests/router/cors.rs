//! CORS: listed origins get credentialed access and preflight answers; others get nothing.

use axum::body::Body;
use axum::http::{Method, Request, StatusCode};

use crate::common::{Gateway, HOST};

const LISTED: &str = "https://ui.example";

fn from(origin: &str, method: Method, path: &str) -> Request<Body> {
    Request::builder()
        .method(method)
        .uri(path)
        .header("host", HOST)
        .header("origin", origin)
        .body(Body::empty())
        .unwrap()
}

async fn listed_gateway() -> Gateway {
    Gateway::start(|c| c.allowed_origins = vec![LISTED.into()]).await
}

#[tokio::test]
async fn preflight_from_a_listed_origin_is_answered_here() {
    let gw = listed_gateway().await;
    let response = gw.send(from(LISTED, Method::OPTIONS, "/api/auth/me")).await;
    assert_eq!(response.status(), StatusCode::NO_CONTENT);
    let h = response.headers();
    assert_eq!(h["access-control-allow-origin"], LISTED);
    assert_eq!(h["access-control-allow-credentials"], "true");
    assert_eq!(h["access-control-allow-methods"], "GET, POST");
    assert_eq!(
        h["access-control-allow-headers"],
        "content-type, authorization"
    );
    assert_eq!(h["access-control-max-age"], "600");
    assert_eq!(h["vary"], "origin");
}

#[tokio::test]
async fn preflight_from_an_unlisted_origin_reaches_the_router() {
    let gw = listed_gateway().await;
    let response = gw
        .send(from(
            "https://evil.example",
            Method::OPTIONS,
            "/api/auth/me",
        ))
        .await;
    assert_eq!(response.status(), StatusCode::METHOD_NOT_ALLOWED);
    assert!(
        !response
            .headers()
            .contains_key("access-control-allow-origin")
    );
}

#[tokio::test]
async fn listed_origins_see_responses_and_unlisted_ones_do_not() {
    let gw = listed_gateway().await;
    let response = gw.send(from(LISTED, Method::GET, "/version")).await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.headers()["access-control-allow-origin"], LISTED);

    let response = gw
        .send(from("https://evil.example", Method::GET, "/version"))
        .await;
    assert_eq!(response.status(), StatusCode::OK);
    assert!(
        !response
            .headers()
            .contains_key("access-control-allow-origin")
    );
    assert!(
        !response
            .headers()
            .contains_key("access-control-allow-credentials")
    );
}
