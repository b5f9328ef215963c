//! The web UI's server side without a browser: pages and their headers, first-run redirects,
//! CSRF and admin refusals, a dashboard kick across gateways and the device flow's HTTP API
//! (`GET /api/tunnels` is in `tunnels_api`).

use std::time::{Duration, Instant};

use crate::common::{Backend, Cluster, NODE, start_agent, wait_node_listed};
use phirepass_gateway_ws::browser_protocol::WebControl;
use phirepass_proto::authz::SetUserAdminRequest;
use phirepass_testkit::browser::{Browser, HttpReply, http, login};
use phirepass_testkit::sshd::{TEST_PASSWORD, TEST_USER, TestSshd};
use serde_json::{Value, json};

pub(crate) const T: Duration = Duration::from_secs(30);

fn header<'a>(reply: &'a HttpReply, name: &str) -> Option<&'a str> {
    reply.headers.lines().find_map(|l| {
        let (k, v) = l.split_once(':')?;
        k.trim().eq_ignore_ascii_case(name).then(|| v.trim())
    })
}

pub(crate) fn json_of(reply: &HttpReply) -> Value {
    serde_json::from_str(&reply.body).unwrap_or_else(|_| panic!("not JSON: {}", reply.body))
}

async fn post(addr: &str, path: &str, session: Option<&str>, body: Value) -> HttpReply {
    let cookie = session.map(|s| format!("__Host-pp_session={s}"));
    let mut headers = vec![("origin", format!("http://{addr}"))];
    if let Some(c) = &cookie {
        headers.push(("cookie", c.clone()));
    }
    let headers: Vec<(&str, &str)> = headers.iter().map(|(k, v)| (*k, v.as_str())).collect();
    http(addr, "POST", path, &headers, &body.to_string())
        .await
        .expect("http")
}

pub(crate) async fn get(addr: &str, path: &str, session: Option<&str>) -> HttpReply {
    let cookie = session.map(|s| format!("__Host-pp_session={s}"));
    let headers: Vec<(&str, &str)> = cookie.iter().map(|c| ("cookie", c.as_str())).collect();
    http(addr, "GET", path, &headers, "").await.expect("http")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fresh_instance_sends_every_page_to_setup() {
    let cluster = Cluster::start(Backend::Embedded, 1).await;
    let addr = &cluster.gateways[0].addr;
    for path in ["/", "/login", "/admin", "/terminal/x", "/activate"] {
        let r = get(addr, path, None).await;
        assert_eq!(r.status, 303, "{path}");
        assert_eq!(header(&r, "location"), Some("/setup"), "{path}");
    }
    let r = get(addr, "/setup", None).await;
    assert_eq!(r.status, 200);
    assert_eq!(
        json_of(&get(addr, "/api/setup/status", None).await)["needs_setup"],
        true
    );
    // A wrong code is refused and creates nobody.
    let r = post(
        addr,
        "/api/setup",
        None,
        json!({"code": "ABCD-EFGH-JKMN", "username": "eve", "password": "eve-password-1"}),
    )
    .await;
    assert_eq!(r.status, 400, "{}", r.body);
    assert_eq!(
        json_of(&get(addr, "/api/setup/status", None).await)["needs_setup"],
        true
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pages_assets_and_security_headers() {
    let cluster =
        Cluster::start_with(Backend::Embedded, 1, &[("alice", "alice-password")], |_| {}).await;
    let addr = &cluster.gateways[0].addr;
    let r = get(addr, "/admin", None).await;
    assert_eq!(r.status, 303);
    assert_eq!(header(&r, "location"), Some("/login?next=/admin"));
    assert_eq!(
        header(&get(addr, "/setup", None).await, "location"),
        Some("/login")
    );

    let page = get(addr, "/login", None).await;
    assert_eq!(page.status, 200);
    assert!(
        header(&page, "content-type")
            .unwrap()
            .starts_with("text/html")
    );
    let csp = header(&page, "content-security-policy").expect("CSP");
    assert!(csp.contains("script-src 'self'") && csp.contains("frame-ancestors 'none'"));
    assert_eq!(header(&page, "cache-control"), Some("no-store"));
    assert_eq!(header(&page, "x-frame-options"), Some("DENY"));
    assert!(page.body.contains("/assets/app.js"));

    let js = get(addr, "/assets/terminal.js", None).await;
    assert_eq!(js.status, 200);
    assert!(
        header(&js, "content-type")
            .unwrap()
            .starts_with("text/javascript")
    );
    assert!(js.body.len() > 100_000, "xterm.js is bundled");
    let etag = header(&js, "etag").expect("etag").to_string();
    let again = http(
        addr,
        "GET",
        "/assets/terminal.js",
        &[("if-none-match", &etag)],
        "",
    )
    .await
    .unwrap();
    assert_eq!(again.status, 304);
    assert_eq!(get(addr, "/assets/../Cargo.toml", None).await.status, 404);
    assert_eq!(get(addr, "/assets/nope.js", None).await.status, 404);

    let session = login(addr, "alice", "alice-password").await.unwrap();
    let term = get(addr, "/terminal/web-1", Some(&session)).await;
    assert_eq!(term.status, 200);
    assert!(term.body.contains("/assets/terminal.js"));
    let me = json_of(&get(addr, "/api/auth/me", Some(&session)).await);
    assert_eq!(
        (me["username"].as_str(), me["admin"].as_bool()),
        (Some("alice"), Some(false))
    );
    let api = get(addr, "/api/targets", Some(&session)).await;
    assert_eq!(api.status, 200, "{}", api.body);
    assert_eq!(header(&api, "cache-control"), Some("no-store"));
    // `phirepass dev`'s defaults serve app hosts, so the dashboard offers "Open port…".
    assert_eq!(json_of(&api)["apps_enabled"], true);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn csrf_and_admin_refusals() {
    let cluster =
        Cluster::start_with(Backend::Embedded, 1, &[("alice", "alice-password")], |_| {}).await;
    let addr = &cluster.gateways[0].addr;
    let body = json!({"username": "alice", "password": "alice-password"}).to_string();
    // Another site's page cannot log a browser in (login CSRF), even in development mode.
    let r = http(
        addr,
        "POST",
        "/api/auth/login",
        &[("origin", "http://evil.example")],
        &body,
    )
    .await
    .unwrap();
    assert_eq!(r.status, 403, "{}", r.body);
    let session = login(addr, "alice", "alice-password").await.unwrap();
    let cookie = format!("__Host-pp_session={session}");
    // A form post (no JSON) riding on the cookie is refused.
    let r = http(
        addr,
        "POST",
        "/api/auth/logout",
        &[
            ("cookie", &cookie),
            ("content-type", "application/x-www-form-urlencoded"),
        ],
        "",
    )
    .await
    .unwrap();
    assert_eq!(r.status, 400, "{}", r.body);
    let r = http(
        addr,
        "POST",
        "/api/device/approve",
        &[("cookie", &cookie), ("sec-fetch-site", "cross-site")],
        &json!({"user_code": "ABCD-EFGH", "node_name": "n"}).to_string(),
    )
    .await
    .unwrap();
    assert_eq!(r.status, 403);
    // Not an admin: every admin endpoint says 403.
    for path in [
        "/api/admin/live",
        "/api/admin/directory",
        "/api/admin/invitations",
    ] {
        assert_eq!(get(addr, path, Some(&session)).await.status, 403, "{path}");
    }
    let r = post(
        addr,
        "/api/admin/sessions/kick",
        Some(&session),
        json!({"session_id": "x"}),
    )
    .await;
    assert_eq!(r.status, 403);
    let r = post(
        addr,
        "/api/admin/invitations",
        Some(&session),
        json!({"admin": true}),
    )
    .await;
    assert_eq!(r.status, 403);
    // Logged out, nothing works.
    assert_eq!(get(addr, "/api/admin/live", None).await.status, 401);
}

/// The admin on gateway B kicks a terminal held by gateway A; the browser hears it within 2 s.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn kick_from_the_dashboard_ends_a_terminal_on_another_gateway() {
    let users = [("alice", "alice-password"), ("root", "root-password")];
    let cluster = Cluster::start_with(Backend::Real, 2, &users, |_| {}).await;
    cluster
        .authz()
        .set_user_admin(SetUserAdminRequest {
            username: "root".into(),
            admin: true,
        })
        .await
        .expect("make root an admin");
    let (a, b) = (&cluster.gateways[0].addr, &cluster.gateways[1].addr);
    let sshd = TestSshd::start().await.expect("sshd");
    let (token, _) = cluster.node_token("alice", NODE).await;
    let _agent = start_agent(a, &token, sshd.addr);
    let alice = login(a, "alice", "alice-password").await.unwrap();
    assert!(wait_node_listed(a, &alice, NODE, true, T).await);
    let mut browser = Browser::connect(a, &alice).await.unwrap();
    browser.control(T).await.unwrap();
    let opened = browser
        .open_tunnel(NODE, TEST_USER, Some(TEST_PASSWORD))
        .await
        .unwrap();
    let WebControl::Ok {
        session_id: Some(session_id),
        ..
    } = opened
    else {
        panic!("terminal did not open: {opened:?}");
    };
    browser.type_text("echo $((6*7))\r").await.unwrap();
    browser.read_until("42\r\n", T).await.unwrap();

    let root = login(b, "root", "root-password").await.unwrap();
    let live = json_of(&get(b, "/api/admin/live", Some(&root)).await);
    let row = live["sessions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["session_id"] == session_id.as_str())
        .unwrap_or_else(|| panic!("session not on the dashboard: {live}"))
        .clone();
    assert_eq!(row["username"], "alice");
    assert_eq!(row["target_name"], NODE);
    assert_eq!(row["edge_kind"], "web");
    assert_eq!(row["client_ip"], "127.0.0.1");
    assert!(
        live["nodes"]
            .as_array()
            .unwrap()
            .iter()
            .any(|n| n["name"] == NODE && n["owner"] == "alice")
    );

    let started = Instant::now();
    let r = post(
        b,
        "/api/admin/sessions/kick",
        Some(&root),
        json!({"session_id": session_id}),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.body);
    let (reason, _) = browser
        .wait_closed(Duration::from_secs(2))
        .await
        .expect("kicked within 2 s");
    let elapsed = started.elapsed();
    assert_eq!(reason.as_deref(), Some("ended by an administrator"));
    eprintln!("kick across gateways took {elapsed:?}");
    // The registry forgets it: the dashboard no longer lists the session.
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let live = json_of(&get(b, "/api/admin/live", Some(&root)).await);
        if !live["sessions"]
            .as_array()
            .unwrap()
            .iter()
            .any(|s| s["session_id"] == session_id.as_str())
        {
            break;
        }
        assert!(Instant::now() < deadline, "kicked session still listed");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn device_flow_over_http() {
    let cluster =
        Cluster::start_with(Backend::Embedded, 1, &[("alice", "alice-password")], |_| {}).await;
    let addr = &cluster.gateways[0].addr;
    let start = post(
        addr,
        "/api/device/start",
        None,
        json!({"kind": "agent", "hostname": "box"}),
    )
    .await;
    assert_eq!(start.status, 200, "{}", start.body);
    let start = json_of(&start);
    let device_code = start["device_code"].as_str().unwrap().to_string();
    let user_code = start["user_code"].as_str().unwrap().to_string();
    assert_eq!(start["verification_uri"], format!("http://{addr}/activate"));
    let poll = || {
        post(
            addr,
            "/api/device/poll",
            None,
            json!({"device_code": device_code}),
        )
    };
    assert_eq!(json_of(&poll().await)["state"], "pending");
    // Approving needs a session.
    let r = post(
        addr,
        "/api/device/approve",
        None,
        json!({"user_code": user_code, "node_name": "n1"}),
    )
    .await;
    assert_eq!(r.status, 401);
    let alice = login(addr, "alice", "alice-password").await.unwrap();
    // The page looks the code up first and approves the request it showed (issue #9 finding 5).
    let r = post(
        addr,
        "/api/device/inspect",
        Some(&alice),
        json!({"user_code": user_code}),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.body);
    let device_id = json_of(&r)["device_id"].as_str().unwrap().to_string();
    let r = post(
        addr,
        "/api/device/approve",
        Some(&alice),
        json!({"user_code": user_code.to_lowercase(), "node_name": "n1", "device_id": device_id}),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(json_of(&r)["node"]["name"], "n1");
    let got = json_of(&poll().await);
    assert_eq!(got["state"], "approved");
    assert!(got["token"].as_str().unwrap().starts_with("pp_node_"));
    // The token is handed out once.
    let again = poll().await;
    assert!(
        again.status != 200 || json_of(&again)["token"].is_null(),
        "{}",
        again.body
    );
    // The code is used up.
    let r = post(
        addr,
        "/api/device/approve",
        Some(&alice),
        json!({"user_code": user_code, "node_name": "n2", "device_id": device_id}),
    )
    .await;
    assert_eq!(r.status, 404, "{}", r.body);
}
