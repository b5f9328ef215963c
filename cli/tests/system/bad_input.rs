//! Malformed browser frames get a clear error and a closed connection; memory stays bounded and
//! a terminal open on another connection keeps working.

use std::time::Duration;

use crate::common::{Backend, Cluster, NODE, start_agent, wait_node_listed};
use bytes::Bytes;
use phirepass_gateway_ws::browser_protocol::{ErrorKind, WebControl, WebFrame};
use phirepass_testkit::browser::{Browser, login};
use phirepass_testkit::sshd::{TEST_PASSWORD, TEST_USER, TestSshd};

const T: Duration = Duration::from_secs(20);

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn malformed_frames_close_only_their_connection() {
    let cluster = Cluster::start(Backend::Real, 1).await;
    let gw = cluster.gateways[0].addr.clone();
    cluster.add_user("alice", "alice-password").await;
    let (token, _) = cluster.node_token("alice", NODE).await;
    let sshd = TestSshd::start().await.expect("sshd");
    let _agent = start_agent(&gw, &token, sshd.addr);
    let session = login(&gw, "alice", "alice-password").await.expect("login");
    assert!(wait_node_listed(&gw, &session, NODE, true, T).await);

    let mut healthy = Browser::connect(&gw, &session).await.expect("ws");
    healthy.control(T).await.expect("auth");
    let opened = healthy
        .open_tunnel(NODE, TEST_USER, Some(TEST_PASSWORD))
        .await
        .expect("open");
    assert!(matches!(opened, WebControl::Ok { .. }), "{opened:?}");

    let cases: [(&str, &[u8]); 5] = [
        ("truncated header", &[1, 0, 0]),
        ("length 0xFFFFFFFF", &[1, 0xff, 0xff, 0xff, 0xff, b'a']),
        ("length mismatch", &[1, 0, 0, 0, 9, b'a']),
        ("unknown protocol byte", &[9, 0, 0, 0, 1, b'x']),
        (
            "garbage json",
            &[0, 0, 0, 0, 5, b'{', b'x', b'x', b'}', b'!'],
        ),
    ];
    let before = phirepass_testkit::rss_bytes("self");
    for round in 0..20 {
        for (name, raw) in cases {
            let mut b = Browser::connect(&gw, &session).await.expect("ws");
            b.control(T).await.expect("auth");
            b.send_raw(Bytes::copy_from_slice(raw)).await.expect("send");
            match b.control(T).await {
                Ok(Some(WebControl::Error {
                    kind: ErrorKind::Generic,
                    message,
                })) if round == 0 => {
                    assert!(!message.is_empty(), "{name}: empty error message");
                }
                Ok(Some(WebControl::Error { .. })) => {}
                other => panic!("{name}: expected an error, got {other:?}"),
            }
            assert!(
                matches!(b.recv(T).await, Ok(None) | Err(_)),
                "{name}: connection must close"
            );
        }
        // An 8 MiB message is refused by the WebSocket layer before it is buffered.
        let mut big = Browser::connect(&gw, &session).await.expect("ws");
        big.control(T).await.expect("auth");
        let _ = big.send_raw(Bytes::from(vec![1u8; 8 * 1024 * 1024])).await;
        // The gateway says why (when the socket still lets it), then closes.
        loop {
            match big.recv(T).await {
                Ok(Some(WebFrame::Control(WebControl::Error { .. }))) => continue,
                Ok(None) | Err(_) => break,
                Ok(Some(other)) => panic!("oversized message: unexpected {other:?}"),
            }
        }
    }
    let growth = phirepass_testkit::rss_bytes("self").saturating_sub(before);
    assert!(
        growth < 64 * 1024 * 1024,
        "memory grew by {growth} bytes over 120 bad connections"
    );

    healthy
        .type_text("echo still-$((40+2))\r")
        .await
        .expect("type");
    healthy
        .read_until("still-42", T)
        .await
        .expect("the healthy session is untouched");
}
