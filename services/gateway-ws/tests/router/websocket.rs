//! The browser WebSocket's Origin rule, which holds in development mode too: another site's
//! page must not open a terminal with the visitor's cookie.

use axum::http::StatusCode;
use std::net::SocketAddr;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

use tokio_tungstenite::tungstenite::Error;

use crate::common::{Gateway, error};

/// Opens `/api/web/ws` with `origin`; `Err` is the refusal's status and JSON body.
async fn upgrade(addr: SocketAddr, origin: &str) -> Result<(), (StatusCode, serde_json::Value)> {
    let mut request = format!("ws://{addr}/api/web/ws")
        .into_client_request()
        .unwrap();
    request
        .headers_mut()
        .insert("origin", origin.parse().unwrap());
    match tokio_tungstenite::connect_async(request).await {
        Ok((mut socket, _)) => {
            socket.close(None).await.ok();
            Ok(())
        }
        Err(Error::Http(response)) => {
            let body = response.body().clone().unwrap_or_default();
            Err((response.status(), serde_json::from_slice(&body).unwrap()))
        }
        Err(other) => panic!("unexpected websocket error: {other}"),
    }
}

#[tokio::test]
async fn development_mode_refuses_another_sites_websocket() {
    let gw = Gateway::start(|_| {}).await;
    let refused = upgrade(gw.listen().await, "http://evil.example").await;
    assert_eq!(
        refused,
        Err((StatusCode::FORBIDDEN, error("origin not allowed")))
    );
}

#[tokio::test]
async fn the_gateways_own_origin_may_open_the_websocket() {
    let gw = Gateway::start(|_| {}).await;
    let addr = gw.listen().await;
    // tungstenite sends `Host: <addr>`, so this page is same-origin.
    assert_eq!(upgrade(addr, &format!("http://{addr}")).await, Ok(()));
}
