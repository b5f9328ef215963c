//! The browser terminal across two gateway instances that share only NATS, Redis and PostgreSQL:
//! the browser is on gateway A, the agent on gateway B, the target a real OpenSSH sshd.

use std::time::Duration;

use crate::common::{Backend, Cluster, NODE, start_agent, wait_node_listed};
use phirepass_gateway_ws::browser_protocol::WebControl;
use phirepass_testkit::browser::{Browser, login};
use phirepass_testkit::sshd::{TEST_PASSWORD, TEST_USER, TestSshd};

const T: Duration = Duration::from_secs(20);

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn cross_edge_terminal() {
    let cluster = Cluster::start(Backend::Real, 2).await;
    let (a, b) = (&cluster.gateways[0], &cluster.gateways[1]);
    assert_ne!(a.id, b.id);
    cluster.add_user("alice", "alice-password").await;
    let (token, _) = cluster.node_token("alice", NODE).await;
    let sshd = TestSshd::start().await.expect("sshd");
    let _agent = start_agent(&b.addr, &token, sshd.addr);

    let session = login(&a.addr, "alice", "alice-password")
        .await
        .expect("login");
    assert!(
        wait_node_listed(&a.addr, &session, NODE, true, T).await,
        "node never listed on gateway A"
    );

    let mut browser = Browser::connect(&a.addr, &session).await.expect("ws");
    assert!(matches!(
        browser.control(T).await.expect("auth reply"),
        Some(WebControl::Ok { .. })
    ));
    let opened = browser
        .open_tunnel(NODE, TEST_USER, Some(TEST_PASSWORD))
        .await
        .expect("open");
    assert!(
        matches!(
            opened,
            WebControl::Ok {
                session_id: Some(_),
                ..
            }
        ),
        "open failed: {opened:?}"
    );

    browser.type_text("echo $((6*7))\r").await.expect("type");
    browser.read_until("42\r\n", T).await.expect("42");

    browser
        .send(phirepass_gateway_ws::browser_protocol::WebFrame::Control(
            WebControl::Resize {
                cols: 101,
                rows: 33,
            },
        ))
        .await
        .expect("resize");
    browser.type_text("stty size\r").await.expect("type");
    browser
        .read_until("33 101", T)
        .await
        .expect("stty size follows the resize");

    browser.type_text("exit\r").await.expect("type");
    let (_, status) = browser.wait_closed(T).await.expect("TunnelClosed");
    assert_eq!(status, Some(0));
}
