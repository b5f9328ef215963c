//! Issue #9 finding 7 through the real gateway: a stranger at another address sends 50 wrong
//! passwords for alice, an admin. Only the stranger's address is throttled; alice logs in from
//! her own address, and her live session keeps answering, WebSocket included. (The old
//! lockout locked any user after five wrong passwords from anyone and ended her sessions.)

use std::net::{IpAddr, Ipv4Addr};
use std::time::Duration;

use crate::common::{Backend, Cluster};
use phirepass_gateway_ws::browser_protocol::WebControl;
use phirepass_proto::authz::SetUserAdminRequest;
use phirepass_testkit::browser::Browser;

const PASSWORD: &str = "alice-password";

/// An HTTP client whose connections come from `ip` (any 127.x address is loopback on Linux).
fn client_from(ip: Ipv4Addr) -> reqwest::Client {
    reqwest::Client::builder()
        .local_address(IpAddr::V4(ip))
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap()
}

/// POST /api/auth/login: the status and, on success, the session token.
async fn login(c: &reqwest::Client, gw: &str, user: &str, password: &str) -> (u16, String) {
    let reply = c
        .post(format!("http://{gw}/api/auth/login"))
        .header("content-type", "application/json")
        .body(serde_json::json!({"username": user, "password": password}).to_string())
        .send()
        .await
        .unwrap();
    let status = reply.status().as_u16();
    let text = reply.text().await.unwrap_or_default();
    let body: serde_json::Value = serde_json::from_str(&text).unwrap_or_default();
    (
        status,
        body["token"].as_str().unwrap_or_default().to_owned(),
    )
}

async fn me(c: &reqwest::Client, gw: &str, token: &str) -> u16 {
    c.get(format!("http://{gw}/api/auth/me"))
        .header("cookie", format!("__Host-pp_session={token}"))
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_strangers_wrong_passwords_throttle_only_the_stranger() {
    let cluster = Cluster::start(Backend::Real, 1).await;
    let gw = cluster.gateways[0].addr.as_str();
    cluster.add_user("alice", PASSWORD).await;
    cluster.add_user("bob", PASSWORD).await;
    cluster
        .authz()
        .set_user_admin(SetUserAdminRequest {
            username: "alice".into(),
            admin: true,
        })
        .await
        .unwrap();
    let home = client_from(Ipv4Addr::new(127, 0, 0, 1));
    let stranger = client_from(Ipv4Addr::new(127, 0, 0, 2));

    let (status, session) = login(&home, gw, "alice", PASSWORD).await;
    assert_eq!(status, 200);
    let mut statuses = Vec::new();
    for _ in 0..50 {
        statuses.push(
            login(&stranger, gw, "alice", "not alice's password")
                .await
                .0,
        );
    }
    // Five guesses are checked, then the stranger's address waits for alice...
    assert!(statuses[..5].iter().all(|s| *s == 401), "{statuses:?}");
    assert!(statuses[5..].iter().all(|s| *s == 429), "{statuses:?}");
    // ...and, over its own limit, for everyone: even bob's right password.
    assert_eq!(login(&stranger, gw, "bob", PASSWORD).await.0, 429);

    // Alice's live session still answers, and opens the terminal WebSocket.
    assert_eq!(me(&home, gw, &session).await, 200);
    let mut browser = Browser::connect(gw, &session).await.unwrap();
    let hello = browser.control(Duration::from_secs(20)).await.unwrap();
    assert!(matches!(hello, Some(WebControl::Ok { .. })), "{hello:?}");
    // She logs in again from home, and bob from his own address.
    let (status, again) = login(&home, gw, "alice", PASSWORD).await;
    assert_eq!(status, 200);
    assert_eq!(me(&home, gw, &again).await, 200);
    let bobs = client_from(Ipv4Addr::new(127, 0, 0, 3));
    assert_eq!(login(&bobs, gw, "bob", PASSWORD).await.0, 200);
    assert_eq!(me(&home, gw, &session).await, 200);
}
