//! Shutdown drains: `serve` returns only after the WebSockets it tracks have ended, and waits
//! for them a bounded time.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use phirepass_gateway_ws::browser_protocol::{WebControl, WebFrame};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

use crate::common::Gateway;

type Socket = WebSocketStream<MaybeTlsStream<tokio::net::TcpStream>>;

/// A same-origin browser WebSocket that never authenticates.
async fn open_browser_socket(addr: SocketAddr) -> Socket {
    let mut request = format!("ws://{addr}/api/web/ws")
        .into_client_request()
        .unwrap();
    let origin = format!("http://{addr}").parse().unwrap();
    request.headers_mut().insert("origin", origin);
    let (socket, _) = tokio_tungstenite::connect_async(request).await.unwrap();
    // The server tracks the connection once its upgrade completes, just after the 101.
    tokio::time::sleep(Duration::from_millis(200)).await;
    socket
}

#[tokio::test]
async fn serve_returns_only_after_open_websockets_end() {
    let gw = Gateway::start(|c| c.auth_deadline = Duration::from_millis(1500)).await;
    let served = gw.serve().await;
    let mut socket = open_browser_socket(served.addr).await;
    served.stop.send(()).unwrap();

    // The socket stays open until its auth deadline; serve waits for it.
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(!served.done.is_finished());

    let result = tokio::time::timeout(Duration::from_secs(4), served.done)
        .await
        .unwrap()
        .unwrap();
    assert!(result.is_ok(), "{result:?}");
    let Some(Ok(Message::Binary(frame))) = socket.next().await else {
        panic!("expected the gateway's refusal frame");
    };
    let WebFrame::Control(WebControl::Error { message, .. }) = WebFrame::decode(frame).unwrap()
    else {
        panic!("expected an error control frame");
    };
    assert_eq!(message, "not logged in: auth timed out");
}

#[tokio::test]
async fn the_shutdown_drain_is_bounded() {
    let gw = Gateway::start(|c| c.auth_deadline = Duration::from_secs(60)).await;
    let served = gw.serve().await;
    let _socket = open_browser_socket(served.addr).await;
    let started = Instant::now();
    served.stop.send(()).unwrap();
    let result = tokio::time::timeout(Duration::from_secs(10), served.done)
        .await
        .unwrap()
        .unwrap();
    assert!(result.is_ok(), "{result:?}");
    // The drain waited for the socket, then gave up on it after a few seconds.
    let waited = started.elapsed();
    assert!(
        waited >= Duration::from_secs(4) && waited < Duration::from_secs(8),
        "{waited:?}"
    );
}
