//! A stand-in gateway for the agent to dial: accepts the node WebSocket and
//! speaks the link's control messages.

use std::time::Duration;

use futures_util::{SinkExt as _, StreamExt as _};
use phirepass_tunnel::{LinkMessage, NodeControl};
use tokio::net::{TcpListener, TcpStream};
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::Message;

use crate::TOKEN;

/// How long any one step of the gateway may wait for the agent.
pub const WAIT: Duration = Duration::from_secs(10);

pub type Ws = WebSocketStream<TcpStream>;

pub async fn accept(listener: &TcpListener) -> Ws {
    let (tcp, _) = tokio::time::timeout(WAIT, listener.accept())
        .await
        .unwrap()
        .unwrap();
    tokio_tungstenite::accept_async(tcp).await.unwrap()
}

pub async fn send(ws: &mut Ws, control: NodeControl) {
    ws.send(Message::Binary(LinkMessage::Control(control).encode()))
        .await
        .unwrap();
}

/// The next control message that `keep` selects (others are skipped).
pub async fn expect(ws: &mut Ws, keep: impl Fn(&NodeControl) -> bool) -> NodeControl {
    let next = async {
        loop {
            match ws.next().await {
                Some(Ok(Message::Binary(b))) => {
                    if let LinkMessage::Control(c) = LinkMessage::decode(b).unwrap()
                        && keep(&c)
                    {
                        return c;
                    }
                }
                Some(Ok(_)) => {}
                other => panic!("connection ended: {other:?}"),
            }
        }
    };
    tokio::time::timeout(WAIT, next)
        .await
        .expect("expected message did not arrive")
}

/// Accepts a connection, checks Auth, answers AuthOk.
pub async fn authed(listener: &TcpListener) -> Ws {
    let mut ws = accept(listener).await;
    match expect(&mut ws, |_| true).await {
        NodeControl::Auth {
            token,
            version,
            instance,
        } => {
            assert_eq!(instance.len(), 16, "a random instance id: {instance:?}");
            assert_eq!(token, TOKEN);
            assert_eq!(version, phirepass_agent::VERSION);
        }
        other => panic!("first message was {other:?}"),
    }
    send(
        &mut ws,
        NodeControl::AuthOk {
            node_id: "n1".into(),
            node_name: "node".into(),
        },
    )
    .await;
    ws
}

/// A listener on a free loopback port and the node endpoint URL on it.
pub async fn bind() -> (TcpListener, String) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("ws://{}/api/nodes/ws", listener.local_addr().unwrap());
    (listener, url)
}
