//! Everything the gateway must refuse: bad node tokens, revoked agents, unknown or foreign nodes,
//! wrong passwords, foreign browser origins in production.

use std::process::Stdio;
use std::time::Duration;

use crate::common::{Backend, Cluster, NODE, start_agent, wait_node_listed, workspace_bin};
use phirepass_gateway_ws::browser_protocol::{ErrorKind, WebControl};
use phirepass_gateway_ws::{AppMode, GatewayConfig};
use phirepass_proto::authz::{GrantRequest, PrincipalKind, RevokeTokenRequest};
use phirepass_testkit::browser::{Browser, http, login};
use phirepass_testkit::sshd::{TEST_PASSWORD, TEST_USER, TestSshd};

const T: Duration = Duration::from_secs(20);

async fn logged_in_browser(addr: &str, user: &str, password: &str) -> Browser {
    let session = login(addr, user, password).await.expect("login");
    let mut b = Browser::connect(addr, &session).await.expect("ws");
    assert!(matches!(
        b.control(T).await.expect("auth"),
        Some(WebControl::Ok { .. })
    ));
    b
}

#[tokio::test(flavor = "multi_thread")]
async fn agent_with_unknown_token_exits_nonzero_with_a_clear_message() {
    let cluster = Cluster::start(Backend::Real, 1).await;
    let fake = format!("pp_node_{}_{}", "0".repeat(16), "a".repeat(64));
    let out = tokio::process::Command::new(workspace_bin("phirepass-agent"))
        .arg("start")
        .env("PAT_TOKEN", &fake)
        .env(
            "SERVER_URL",
            format!("ws://{}/api/nodes/ws", cluster.gateways[0].addr),
        )
        .env("PORT", "0")
        .stdin(Stdio::null())
        .output();
    let out = tokio::time::timeout(T, out)
        .await
        .expect("agent exits instead of retrying")
        .expect("run agent");
    assert!(!out.status.success(), "agent must exit non-zero");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("rejected"),
        "stderr should say the token was rejected: {stderr}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn revoked_token_drops_the_live_agent_within_five_seconds() {
    let cluster = Cluster::start(Backend::Real, 1).await;
    let gw = &cluster.gateways[0].addr;
    cluster.add_user("alice", "alice-password").await;
    let (token, token_id) = cluster.node_token("alice", NODE).await;
    let sshd = TestSshd::start().await.expect("sshd");
    let mut agent = start_agent(gw, &token, sshd.addr);
    let session = login(gw, "alice", "alice-password").await.expect("login");
    assert!(wait_node_listed(gw, &session, NODE, true, T).await);

    cluster
        .authz()
        .revoke_token(RevokeTokenRequest { token_id })
        .await
        .expect("revoke");
    let ended = tokio::time::timeout(Duration::from_secs(5), &mut agent.task).await;
    let result = ended
        .expect("agent dropped within 5 s")
        .expect("agent task");
    assert!(
        result.is_err(),
        "a revoked agent stops with an error, it does not reconnect"
    );
    assert!(
        wait_node_listed(gw, &session, NODE, false, T).await,
        "node still listed after revocation"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn unknown_node_and_another_users_node_get_the_same_refusal() {
    let cluster = Cluster::start(Backend::Real, 1).await;
    let gw = &cluster.gateways[0].addr;
    cluster.add_user("alice", "alice-password").await;
    cluster.add_user("bob", "bob-password").await;
    let (bob_token, _) = cluster.node_token("bob", "bobs-box").await;
    let sshd = TestSshd::start().await.expect("sshd");
    let _agent = start_agent(gw, &bob_token, sshd.addr);

    let mut alice = logged_in_browser(gw, "alice", "alice-password").await;
    for node in ["bobs-box", "no-such-node"] {
        let reply = alice
            .open_tunnel(node, TEST_USER, Some(TEST_PASSWORD))
            .await
            .expect("reply");
        match reply {
            WebControl::Error {
                kind: ErrorKind::Generic,
                message,
            } => assert!(message.contains("unknown node"), "{message}"),
            other => panic!("expected a refusal for {node}, got {other:?}"),
        }
    }
    // Bob reaches his own node on the same gateway.
    let mut bob = logged_in_browser(gw, "bob", "bob-password").await;
    let reply = bob
        .open_tunnel("bobs-box", TEST_USER, Some(TEST_PASSWORD))
        .await
        .expect("reply");
    assert!(matches!(reply, WebControl::Ok { .. }), "{reply:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_grants_logins_bound_the_accounts_the_browser_terminal_may_use() {
    let cluster = Cluster::start(Backend::Real, 1).await;
    let gw = &cluster.gateways[0].addr;
    cluster.add_user("alice", "alice-password").await;
    cluster.add_user("bob", "bob-password").await;
    let (bob_token, _) = cluster.node_token("bob", "bobs-box").await;
    let sshd = TestSshd::start().await.expect("sshd");
    let _agent = start_agent(gw, &bob_token, sshd.addr);
    let session = login(gw, "bob", "bob-password").await.expect("login");
    assert!(wait_node_listed(gw, &session, "bobs-box", true, T).await);
    let grant = |logins: &[&str]| GrantRequest {
        principal_kind: PrincipalKind::User as i32,
        principal: "alice".into(),
        target: "bobs-box".into(),
        logins: logins.iter().map(|l| l.to_string()).collect(),
        ..Default::default()
    };

    let mut alice = logged_in_browser(gw, "alice", "alice-password").await;
    cluster
        .authz()
        .grant(grant(&["deploy"]))
        .await
        .expect("grant");
    // Refused before any password is asked, naming what the grant allows; the dialog asks again.
    for password in [None, Some(TEST_PASSWORD)] {
        match alice
            .open_tunnel("bobs-box", TEST_USER, password)
            .await
            .expect("reply")
        {
            WebControl::Error {
                kind: ErrorKind::RequiresPassword,
                message,
            } => assert!(
                message.contains(&format!("as {TEST_USER:?}")) && message.contains("deploy"),
                "{message}"
            ),
            other => panic!("{TEST_USER} is not a granted login: {other:?}"),
        }
    }
    // A grant listing the account, or listing none (the typed account stands), opens it.
    for logins in [&[TEST_USER, "deploy"][..], &[][..]] {
        cluster.authz().grant(grant(logins)).await.expect("grant");
        let reply = alice
            .open_tunnel("bobs-box", TEST_USER, Some(TEST_PASSWORD))
            .await
            .expect("reply");
        assert!(
            matches!(reply, WebControl::Ok { .. }),
            "{logins:?}: {reply:?}"
        );
        alice = logged_in_browser(gw, "alice", "alice-password").await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn missing_or_wrong_target_password_asks_for_one() {
    let cluster = Cluster::start(Backend::Real, 1).await;
    let gw = &cluster.gateways[0].addr;
    cluster.add_user("alice", "alice-password").await;
    let (token, _) = cluster.node_token("alice", NODE).await;
    let sshd = TestSshd::start().await.expect("sshd");
    let _agent = start_agent(gw, &token, sshd.addr);
    let session = login(gw, "alice", "alice-password").await.expect("login");
    assert!(wait_node_listed(gw, &session, NODE, true, T).await);

    let mut b = logged_in_browser(gw, "alice", "alice-password").await;
    for password in [None, Some("wrong-password")] {
        let reply = b
            .open_tunnel(NODE, TEST_USER, password)
            .await
            .expect("reply");
        assert!(
            matches!(
                reply,
                WebControl::Error {
                    kind: ErrorKind::RequiresPassword,
                    ..
                }
            ),
            "password {password:?}: {reply:?}"
        );
    }
    let reply = b
        .open_tunnel(NODE, TEST_USER, Some(TEST_PASSWORD))
        .await
        .expect("reply");
    assert!(matches!(reply, WebControl::Ok { .. }), "{reply:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn wrong_login_password_is_refused() {
    let cluster = Cluster::start(Backend::Real, 1).await;
    let gw = &cluster.gateways[0].addr;
    cluster.add_user("alice", "alice-password").await;
    for (user, pw) in [("alice", "nope"), ("mallory", "alice-password")] {
        let body = serde_json::json!({"username": user, "password": pw}).to_string();
        let reply = http(gw, "POST", "/api/auth/login", &[], &body)
            .await
            .expect("http");
        assert_eq!(reply.status, 401, "{user}: {}", reply.body);
    }
    // A WebSocket without a session is refused too.
    let mut b = Browser::connect(gw, "not-a-session").await.expect("ws");
    assert!(matches!(
        b.control(T).await.expect("reply"),
        Some(WebControl::Error { .. })
    ));
}

#[tokio::test(flavor = "multi_thread")]
async fn production_refuses_foreign_origins() {
    let users = [("alice", "alice-password")];
    let cluster = Cluster::start_with(Backend::Real, 1, &users, |c: &mut GatewayConfig| {
        c.mode = AppMode::Production;
        c.allowed_origins = vec!["https://phirepass.example".into()];
    })
    .await;
    let gw = &cluster.gateways[0].addr;
    let session = login(gw, "alice", "alice-password")
        .await
        .expect("login without Origin");
    let cookie = format!("__Host-pp_session={session}");

    let foreign = Browser::connect_with(
        gw,
        &[("cookie", &cookie), ("origin", "https://evil.example")],
    )
    .await;
    match foreign {
        Err(e) => assert!(e.to_string().contains("403"), "expected 403, got {e}"),
        Ok(_) => panic!("a foreign origin must not get a websocket"),
    }
    let body = serde_json::json!({"username": "alice", "password": "alice-password"}).to_string();
    let reply = http(
        gw,
        "POST",
        "/api/auth/login",
        &[("origin", "https://evil.example")],
        &body,
    )
    .await
    .expect("http");
    assert_eq!(reply.status, 403);

    // CORS: the allowed origin gets a preflight answer and credentialed responses; others nothing.
    let allowed = ("origin", "https://phirepass.example");
    let pre = http(gw, "OPTIONS", "/api/auth/login", &[allowed], "")
        .await
        .expect("http");
    assert_eq!(pre.status, 204);
    let pre_headers = pre.headers.to_lowercase();
    assert!(
        pre_headers.contains("access-control-allow-origin: https://phirepass.example"),
        "{pre_headers}"
    );
    let me = http(
        gw,
        "GET",
        "/api/auth/me",
        &[allowed, ("cookie", &cookie)],
        "",
    )
    .await
    .expect("http");
    assert_eq!(me.status, 200, "{}", me.body);
    assert!(
        me.headers
            .to_lowercase()
            .contains("access-control-allow-credentials: true")
    );
    let evil = http(
        gw,
        "GET",
        "/version",
        &[("origin", "https://evil.example")],
        "",
    )
    .await
    .expect("http");
    assert!(
        !evil
            .headers
            .to_lowercase()
            .contains("access-control-allow-origin")
    );

    let mut ok = Browser::connect_with(
        gw,
        &[("cookie", &cookie), ("origin", "https://phirepass.example")],
    )
    .await
    .expect("allowed origin");
    assert!(matches!(
        ok.control(T).await.expect("auth"),
        Some(WebControl::Ok { .. })
    ));
}

#[tokio::test(flavor = "multi_thread")]
async fn production_gateway_refuses_to_start_without_users() {
    let cluster = Cluster::start(Backend::Embedded, 0).await;
    let mut config = GatewayConfig::local(
        cluster.authz_url.clone(),
        cluster.registry_url.clone(),
        cluster
            .pki
            .identity(phirepass_pki::ServiceKind::GatewayWs)
            .expect("identity"),
    );
    config.mode = AppMode::Production;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let bus = phirepass_bus::connect(None).await.expect("bus");
    let served = phirepass_gateway_ws::serve(
        config,
        listener,
        phirepass_gateway_ws::GatewayDeps::new(bus),
        std::future::pending(),
    );
    let err = tokio::time::timeout(T, served)
        .await
        .expect("refuses promptly")
        .expect_err("must not start");
    assert!(
        err.to_string().contains("phirepass admin users add"),
        "the error says how to fix it: {err}"
    );
    assert!(err.to_string().contains("GATEWAY_FIRST_RUN_SETUP"), "{err}");

    // The operator opted into first-run setup: the gateway starts and sends everyone to /setup.
    let mut config = GatewayConfig::local(
        cluster.authz_url.clone(),
        cluster.registry_url.clone(),
        cluster
            .pki
            .identity(phirepass_pki::ServiceKind::GatewayWs)
            .expect("identity"),
    );
    config.mode = AppMode::Production;
    config.first_run_setup = true;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr").to_string();
    let bus = phirepass_bus::connect(None).await.expect("bus");
    let served = tokio::spawn(phirepass_gateway_ws::serve(
        config,
        listener,
        phirepass_gateway_ws::GatewayDeps::new(bus),
        std::future::pending(),
    ));
    let mut status = None;
    for _ in 0..100 {
        if let Ok(reply) = http(&addr, "GET", "/api/setup/status", &[], "").await {
            status = Some(reply);
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let status = status.expect("the gateway serves with first-run setup on");
    assert_eq!(status.status, 200, "{}", status.body);
    assert!(
        status.body.contains("\"needs_setup\":true"),
        "{}",
        status.body
    );
    served.abort();
}
