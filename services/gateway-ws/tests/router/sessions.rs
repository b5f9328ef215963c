//! Login, the session cookie, and the statuses and error bodies of authenticated routes.

use axum::body::Body;
use axum::http::{Request, StatusCode};

use crate::common::{Gateway, HOST, error, get, json, login, password};

fn with_cookie(path: &str, cookie: &str) -> Request<Body> {
    Request::get(path)
        .header("host", HOST)
        .header("cookie", cookie)
        .body(Body::empty())
        .unwrap()
}

#[tokio::test]
async fn api_calls_without_a_session_get_401_and_no_store() {
    let gw = Gateway::start(|_| {}).await;
    let response = gw.send(get("/api/auth/me")).await;
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    let h = response.headers();
    assert_eq!(h["cache-control"], "no-store");
    assert_eq!(h["x-content-type-options"], "nosniff");
    assert_eq!(h["x-frame-options"], "DENY");
    assert_eq!(h["referrer-policy"], "no-referrer");
    assert_eq!(json(response).await, error("not logged in"));
}

#[tokio::test]
async fn login_sets_an_http_only_strict_cookie_that_me_accepts() {
    let gw = Gateway::start(|_| {}).await;
    gw.admin
        .clone()
        .create_user(phirepass_proto::authz::CreateUserRequest {
            username: "alice".into(),
            password: password("alice"),
        })
        .await
        .unwrap();
    let response = gw.send(login("alice", &password("alice"))).await;
    assert_eq!(response.status(), StatusCode::OK);
    let cookie = response.headers()["set-cookie"]
        .to_str()
        .unwrap()
        .to_string();
    assert!(cookie.starts_with("pp_session="), "{cookie}");
    assert!(cookie.contains("; HttpOnly; SameSite=Strict; Path=/; Max-Age="));
    // Development mode: plain-HTTP cookies.
    assert!(!cookie.contains("Secure"), "{cookie}");
    let body = json(response).await;
    assert_eq!(body["user"]["username"], "alice");
    assert_eq!(body["user"]["admin"], false);
    assert!(cookie.contains(body["token"].as_str().unwrap()));

    let pair = cookie.split(';').next().unwrap();
    let response = gw.send(with_cookie("/api/auth/me", pair)).await;
    assert_eq!(response.status(), StatusCode::OK);
    let me = json(response).await;
    assert_eq!(me["username"], "alice");
    assert_eq!(me["id"], body["user"]["id"]);
}

#[tokio::test]
async fn a_wrong_password_or_unknown_user_is_401_wrong_username_or_password() {
    let gw = Gateway::start(|_| {}).await;
    gw.user("bob").await;
    // One answer for both, so the login page cannot be used to find which names exist.
    for (user, pass) in [
        ("bob", "not-bobs-password-at-all"),
        ("nobody", "whatever-pw-1"),
    ] {
        let response = gw.send(login(user, pass)).await;
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
        assert_eq!(json(response).await, error("wrong username or password"));
    }
}

#[tokio::test]
async fn overlong_credentials_are_refused_unread() {
    let gw = Gateway::start(|_| {}).await;
    let response = gw.send(login("carol", &"x".repeat(1025))).await;
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    assert_eq!(json(response).await, error("credentials too long"));
}

#[tokio::test]
async fn login_needs_a_json_body() {
    let gw = Gateway::start(|_| {}).await;
    let mut request = login("dave", "whatever-password");
    request.headers_mut().insert(
        "content-type",
        "application/x-www-form-urlencoded".parse().unwrap(),
    );
    let response = gw.send(request).await;
    assert_eq!(response.status(), StatusCode::UNSUPPORTED_MEDIA_TYPE);
}

#[tokio::test]
async fn admin_views_are_403_for_users_and_401_for_strangers() {
    let gw = Gateway::start(|_| {}).await;
    let cookie = gw.user("erin").await;
    let response = gw.send(with_cookie("/api/admin/live", &cookie)).await;
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
    assert_eq!(json(response).await, error("access denied"));

    let response = gw.send(get("/api/admin/directory")).await;
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(json(response).await, error("not logged in"));
}

#[tokio::test]
async fn a_forged_cookie_is_401() {
    let gw = Gateway::start(|_| {}).await;
    let response = gw
        .send(with_cookie("/api/auth/me", "pp_session=00ff00ff00ff"))
        .await;
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(json(response).await, error("not logged in"));
}
