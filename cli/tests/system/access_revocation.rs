//! Access ends with its revocation (issue #9 finding 10): a logout ends the browser terminal
//! and its socket; a revoked grant or a disabled user ends app-host WebSockets and SSH relays,
//! each with a message saying so, within the documented bounds.

use std::time::{Duration, Instant};

use futures_util::StreamExt;
use phirepass_gateway_ws::browser_protocol::WebControl;
use phirepass_proto::authz::{PrincipalKind, RevokeRequest, SetUserDisabledRequest};
use phirepass_testkit::browser::{Browser, http, login};
use phirepass_testkit::sshd::{TEST_PASSWORD, TEST_USER, TestSshd};
use tokio::io::AsyncBufReadExt;

use crate::common::http_proxy::{
    ProxyCluster, backend, start_agent_with_ports, websocket, ws_echo, ws_text,
};
use crate::common::*;

const T: Duration = Duration::from_secs(20);
/// A logout is announced to every gateway: its terminals end at once.
const LOGOUT_BOUND: Duration = Duration::from_secs(5);
/// Grants are re-checked every 5 s by default (ACCESS_RECHECK_SECS, SSH_EDGE_ACCESS_RECHECK_SECS).
const REVOKE_BOUND: Duration = Duration::from_secs(12);
/// On NATS authz announces every change to access: the edges act on it at once.
pub(crate) const ANNOUNCED_BOUND: Duration = Duration::from_secs(4);

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn logout_ends_the_browser_terminal_and_its_socket() {
    let cluster = Cluster::start(Backend::Real, 2).await;
    let (a, b) = (&cluster.gateways[0], &cluster.gateways[1]);
    cluster.add_user("alice", "alice-password").await;
    let (token, _) = cluster.node_token("alice", NODE).await;
    let sshd = TestSshd::start().await.expect("sshd");
    let _agent = start_agent(&b.addr, &token, sshd.addr);
    let session = login(&a.addr, "alice", "alice-password")
        .await
        .expect("login");
    let other_session = login(&a.addr, "alice", "alice-password")
        .await
        .expect("second login");
    assert!(wait_node_listed(&a.addr, &session, NODE, true, T).await);

    let mut terminal = authenticated(&a.addr, &session).await;
    let opened = terminal
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
        "{opened:?}"
    );
    terminal.type_text("echo $((6*7))\r").await.expect("type");
    terminal.read_until("42\r\n", T).await.expect("42");
    let mut idle = authenticated(&a.addr, &session).await;
    let mut survivor = authenticated(&a.addr, &other_session).await;

    // The same session logs out, through the other gateway.
    let bearer = format!("Bearer {session}");
    let reply = http(
        &b.addr,
        "POST",
        "/api/auth/logout",
        &[("authorization", &bearer)],
        "",
    )
    .await
    .expect("logout");
    assert_eq!(reply.status, 200, "{}", reply.body);
    let started = Instant::now();

    let (reason, _) = terminal
        .wait_closed(LOGOUT_BOUND)
        .await
        .expect("the open terminal ends after the logout");
    assert!(started.elapsed() < LOGOUT_BOUND);
    let reason = reason.unwrap_or_default();
    assert!(
        reason.contains("access revoked: you were logged out"),
        "{reason}"
    );
    match terminal.control(LOGOUT_BOUND).await {
        Ok(Some(WebControl::Error { message, .. })) => {
            assert!(message.contains("logged out"), "{message}")
        }
        other => panic!("expected an error saying why, got {other:?}"),
    }
    assert!(matches!(
        terminal.control(LOGOUT_BOUND).await,
        Ok(None) | Err(_)
    ));

    // The idle socket on that session opens no terminal any more.
    match idle.open_tunnel(NODE, TEST_USER, Some(TEST_PASSWORD)).await {
        Ok(WebControl::Error { message, .. }) => {
            assert!(message.contains("logged out"), "{message}")
        }
        Ok(other) => panic!("a terminal opened after the logout: {other:?}"),
        Err(_closed) => {}
    }
    assert!(started.elapsed() < LOGOUT_BOUND);

    // Her other session is untouched.
    let opened = survivor
        .open_tunnel(NODE, TEST_USER, Some(TEST_PASSWORD))
        .await
        .expect("open on the other session");
    assert!(
        matches!(
            opened,
            WebControl::Ok {
                session_id: Some(_),
                ..
            }
        ),
        "{opened:?}"
    );
}

/// In memory nothing carries authz's announcement to the gateway: the periodic re-check alone
/// ends a terminal whose grant was revoked, within ACCESS_RECHECK_SECS.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn revoked_grant_ends_the_browser_terminal_by_the_periodic_check() {
    let users = [("alice", "alice-password"), ("bob", "bob-password")];
    let cluster = Cluster::start_with(Backend::Embedded, 1, &users, |_| {}).await;
    let gw = &cluster.gateways[0];
    let (token, _) = cluster.node_token("alice", NODE).await;
    let sshd = TestSshd::start().await.expect("sshd");
    let _agent = start_agent(&gw.addr, &token, sshd.addr);
    let grant = phirepass_proto::authz::GrantRequest {
        principal_kind: PrincipalKind::User as i32,
        principal: "bob".into(),
        target: NODE.into(),
        ..Default::default()
    };
    cluster.authz().grant(grant).await.expect("grant");
    cluster.wait_node_online(NODE).await;
    let session = login(&gw.addr, "bob", "bob-password").await.expect("login");
    let mut terminal = authenticated(&gw.addr, &session).await;
    let opened = terminal
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
        "{opened:?}"
    );

    let revoke = RevokeRequest {
        principal_kind: PrincipalKind::User as i32,
        principal: "bob".into(),
        target: NODE.into(),
        ..Default::default()
    };
    cluster.authz().revoke(revoke).await.expect("revoke");
    let started = Instant::now();
    let (reason, _) = terminal
        .wait_closed(REVOKE_BOUND)
        .await
        .expect("the terminal ends after the revocation");
    assert!(started.elapsed() < REVOKE_BOUND);
    let reason = reason.unwrap_or_default();
    assert!(
        reason.contains(&format!("access revoked: you may no longer reach {NODE}")),
        "{reason}"
    );
    // The socket stays (the session is valid); opening the node again is refused.
    match terminal
        .open_tunnel(NODE, TEST_USER, Some(TEST_PASSWORD))
        .await
    {
        Ok(WebControl::Error { message, .. }) => {
            assert!(message.contains("unknown node"), "{message}")
        }
        other => panic!("expected a refusal, got {other:?}"),
    }
}

async fn authenticated(addr: &str, session: &str) -> Browser {
    let mut browser = Browser::connect(addr, session).await.expect("ws");
    let hello = browser.control(T).await.expect("auth reply");
    assert!(matches!(hello, Some(WebControl::Ok { .. })), "{hello:?}");
    browser
}

const PASSWORD: &str = "app-Password-1";

/// The app cookie (`name=value`) `user` gets for `node`'s `port`: through the dashboard's
/// `/api/apps/open` and the app host's callback, as a browser gets it.
async fn app_cookie(gw: &str, user: &str, node: &str, port: u16) -> String {
    let gw_addr: std::net::SocketAddr = gw.parse().expect("gateway address");
    let c = reqwest::Client::builder()
        .cookie_store(true)
        .resolve(&format!("{port}-{node}.apps.localhost"), gw_addr)
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("client");
    let r = c
        .post(format!("http://{gw}/api/auth/login"))
        .header("content-type", "application/json")
        .body(serde_json::json!({"username": user, "password": PASSWORD}).to_string())
        .send()
        .await
        .expect("login");
    assert_eq!(r.status(), 200, "login {user}");
    let r = c
        .get(format!("http://{gw}/api/apps/open?node={node}&port={port}"))
        .send()
        .await
        .expect("open");
    assert_eq!(r.status(), 303);
    let callback = r.headers()["location"]
        .to_str()
        .expect("location")
        .to_string();
    let r = c.get(&callback).send().await.expect("callback");
    assert_eq!(r.status(), 303, "callback");
    let set = r.headers()["set-cookie"].to_str().expect("set-cookie");
    set.split(';').next().expect("name=value").to_string()
}

/// Waits for the server's close frame; returns its reason.
async fn close_reason(
    ws: &mut tokio_tungstenite::WebSocketStream<tokio::net::TcpStream>,
    bound: Duration,
) -> String {
    use tokio_tungstenite::tungstenite::Message;
    let deadline = tokio::time::Instant::now() + bound;
    loop {
        let next = tokio::time::timeout_at(deadline, ws.next())
            .await
            .expect("the websocket ends within the bound");
        match next {
            Some(Ok(Message::Close(Some(frame)))) => return frame.reason.to_string(),
            Some(Ok(Message::Close(None))) | None => panic!("closed without a reason"),
            Some(Ok(_)) => continue,
            Some(Err(e)) => panic!("websocket error before a close frame: {e}"),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn app_websocket_ends_when_its_grant_is_revoked_or_its_user_disabled() {
    let users = [("alice", PASSWORD), ("bob", PASSWORD)];
    let cluster = ProxyCluster::start(1, &users, Duration::from_secs(900)).await;
    let app = backend("app:a").await;
    let gw = cluster.gateways[0].addr.clone();
    let node_token = cluster.node_token("alice", "node-a").await;
    let _agent = start_agent_with_ports(&gw, &node_token, &[app.port()]);
    let grant = phirepass_proto::authz::GrantRequest {
        principal_kind: PrincipalKind::User as i32,
        principal: "bob".into(),
        target: "node-a".into(),
        ..Default::default()
    };
    cluster.authz().grant(grant).await.expect("grant");
    cluster.wait_node_online("node-a").await;
    let gw_port = gw.rsplit(':').next().expect("port");
    let host = format!("{}-node-a.apps.localhost:{gw_port}", app.port());
    let origin = format!("http://{host}");
    let open = |cookie: String| {
        let (gw, host, origin) = (gw.clone(), host.clone(), origin.clone());
        async move {
            let headers = [("cookie", cookie.as_str()), ("origin", origin.as_str())];
            let mut ws = websocket(&gw, &host, "/ws", &headers).await;
            assert_eq!(ws_text(&mut ws).await, "app:a");
            ws
        }
    };
    let mut bob = open(app_cookie(&gw, "bob", "node-a", app.port()).await).await;
    let mut alice = open(app_cookie(&gw, "alice", "node-a", app.port()).await).await;
    assert_eq!(ws_echo(&mut bob, "granted").await, "granted");

    let revoke = RevokeRequest {
        principal_kind: PrincipalKind::User as i32,
        principal: "bob".into(),
        target: "node-a".into(),
        ..Default::default()
    };
    cluster.authz().revoke(revoke).await.expect("revoke");
    let started = Instant::now();
    let reason = close_reason(&mut bob, REVOKE_BOUND).await;
    assert!(started.elapsed() < REVOKE_BOUND);
    assert!(reason.contains("access revoked"), "{reason}");
    // The owner's WebSocket on the same node stays.
    assert_eq!(ws_echo(&mut alice, "still mine").await, "still mine");

    let disable = SetUserDisabledRequest {
        username: "alice".into(),
        disabled: true,
    };
    cluster
        .authz()
        .set_user_disabled(disable)
        .await
        .expect("disable");
    let started = Instant::now();
    let reason = close_reason(&mut alice, REVOKE_BOUND).await;
    assert!(started.elapsed() < REVOKE_BOUND);
    assert!(reason.contains("access revoked"), "{reason}");
}

/// Starts `ssh login "echo started; sleep 120"` and waits until the relay runs.
pub(crate) async fn long_relay(client: &SshClient, login: &str) -> tokio::process::Child {
    let mut child = client
        .ssh_command(login, &[], &["echo started; sleep 120"])
        .spawn()
        .expect("ssh");
    let stdout = child.stdout.take().expect("stdout");
    let mut lines = tokio::io::BufReader::new(stdout).lines();
    let first = tokio::time::timeout(T, lines.next_line())
        .await
        .expect("relay started in time")
        .expect("read");
    assert_eq!(first.as_deref(), Some("started"));
    child
}

/// Waits for the client to exit; returns its stderr.
pub(crate) async fn ended(mut child: tokio::process::Child, bound: Duration) -> String {
    use tokio::io::AsyncReadExt;
    let started = Instant::now();
    let status = tokio::time::timeout(bound, child.wait())
        .await
        .expect("the relay ends within the bound")
        .expect("wait");
    assert!(started.elapsed() < bound);
    assert!(!status.success());
    let mut stderr = String::new();
    if let Some(mut e) = child.stderr.take() {
        let _ = e.read_to_string(&mut stderr).await;
    }
    stderr
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn ssh_relays_end_when_the_grant_is_revoked_or_the_user_disabled() {
    // No periodic round within the test: authz's announcement alone must end the relays.
    let f = EdgeFixture::start(|c| c.access_recheck_interval = Duration::from_secs(300)).await;
    let mut alice = f.alice();
    alice.log_level = "INFO";
    let host_login = format!("{ALICE}:{HOST}");
    let to_host = long_relay(&alice, &host_login).await;
    let mut to_node = long_relay(&alice, &format!("{ALICE}:{AGENT_NODE}")).await;

    let grant = |revoke: bool| {
        let authz = f.cluster.authz();
        async move {
            let mut authz = authz;
            if revoke {
                let r = RevokeRequest {
                    principal_kind: PrincipalKind::User as i32,
                    principal: ALICE.into(),
                    target: HOST.into(),
                    ..Default::default()
                };
                authz.revoke(r).await.expect("revoke");
            } else {
                let g = phirepass_proto::authz::GrantRequest {
                    principal_kind: PrincipalKind::User as i32,
                    principal: ALICE.into(),
                    target: HOST.into(),
                    ..Default::default()
                };
                authz.grant(g).await.expect("grant");
            }
        }
    };
    grant(true).await;
    let stderr = ended(to_host, ANNOUNCED_BOUND).await;
    assert!(
        stderr.contains("access revoked: you may no longer reach web-1"),
        "{stderr}"
    );
    // Her own node is still hers.
    assert!(
        to_node.try_wait().expect("try_wait").is_none(),
        "owner's relay ended"
    );

    // Granted again, then she is disabled: every relay of hers ends.
    grant(false).await;
    let to_host = long_relay(&alice, &host_login).await;
    let disable = SetUserDisabledRequest {
        username: ALICE.into(),
        disabled: true,
    };
    f.cluster
        .authz()
        .set_user_disabled(disable)
        .await
        .expect("disable");
    let stderr = ended(to_host, ANNOUNCED_BOUND).await;
    assert!(
        stderr.contains("access revoked: your account was disabled or removed"),
        "{stderr}"
    );
    // Her node's relay ends too (its agent's token stops verifying, or the re-check ends it).
    ended(to_node, ANNOUNCED_BOUND).await;
}
