//! Issue #9 finding 5, device-code phishing, over the gateway's HTTP API with reqwest against the
//! real stack (authz, registry, gateway on NATS, Redis and PostgreSQL): a stranger starts a
//! device code and gets someone to open `/activate?code=...`. Nothing is approved by the code
//! alone or by the page's GET; the approver first sees kind, hostname, source address and time;
//! an existing node is never re-keyed unless that is chosen; a command line approved by an admin
//! gets admin scope only when the admin ticks it.

use crate::common::{Backend, Cluster};
use phirepass_proto::authz::{SetUserAdminRequest, VerifyApiTokenRequest, VerifyNodeTokenRequest};
use reqwest::header::{CONTENT_TYPE, COOKIE, ORIGIN, SET_COOKIE};
use serde_json::{Value, json};

const ADMIN: (&str, &str) = ("root", "root-Password-1");
const USER: (&str, &str) = ("bob", "bob-Password-22");

/// The gateway as one browser (or one stranger's script) speaks to it.
struct Client {
    http: reqwest::Client,
    base: String,
    /// `name=value` of the session cookie, whatever the gateway calls it.
    cookie: Option<String>,
}

impl Client {
    fn new(addr: &str) -> Self {
        Self {
            http: reqwest::Client::new(),
            base: format!("http://{addr}"),
            cookie: None,
        }
    }

    async fn logged_in(addr: &str, (user, password): (&str, &str)) -> Self {
        let mut c = Self::new(addr);
        let r = c
            .http
            .post(format!("{}/api/auth/login", c.base))
            .header(ORIGIN, &c.base)
            .header(CONTENT_TYPE, "application/json")
            .body(json!({ "username": user, "password": password }).to_string())
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200, "login {user}");
        let set = r.headers().get(SET_COOKIE).expect("a session cookie");
        let pair = set.to_str().unwrap().split(';').next().unwrap().to_string();
        c.cookie = Some(pair);
        c
    }

    fn request(&self, method: reqwest::Method, path: &str) -> reqwest::RequestBuilder {
        let mut b = self
            .http
            .request(method, format!("{}{path}", self.base))
            .header(ORIGIN, &self.base);
        if let Some(c) = &self.cookie {
            b = b.header(COOKIE, c);
        }
        b
    }

    async fn post(&self, path: &str, body: Value) -> (u16, Value) {
        let r = self
            .request(reqwest::Method::POST, path)
            .header(CONTENT_TYPE, "application/json")
            .body(body.to_string())
            .send()
            .await
            .unwrap();
        let status = r.status().as_u16();
        let text = r.text().await.unwrap();
        (
            status,
            serde_json::from_str(&text).unwrap_or(Value::String(text)),
        )
    }
}

/// A device code as the stranger's agent or CLI starts it, claiming another address in
/// X-Forwarded-For (the cluster trusts no proxy, so the page must show the real peer).
async fn start(stranger: &Client, kind: &str, hostname: &str) -> (String, String) {
    let r = stranger
        .http
        .post(format!("{}/api/device/start", stranger.base))
        .header("x-forwarded-for", "203.0.113.77")
        .header(CONTENT_TYPE, "application/json")
        .body(json!({ "kind": kind, "hostname": hostname }).to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let v: Value = serde_json::from_str(&r.text().await.unwrap()).unwrap();
    (
        v["device_code"].as_str().unwrap().to_string(),
        v["user_code"].as_str().unwrap().to_string(),
    )
}

async fn poll(stranger: &Client, device_code: &str) -> Value {
    let (status, v) = stranger
        .post("/api/device/poll", json!({ "device_code": device_code }))
        .await;
    assert_eq!(status, 200, "{v}");
    v
}

async fn inspect(c: &Client, user_code: &str, node_name: &str) -> Value {
    let (status, v) = c
        .post(
            "/api/device/inspect",
            json!({ "user_code": user_code, "node_name": node_name }),
        )
        .await;
    assert_eq!(status, 200, "inspect: {v}");
    v
}

async fn approve_cli(
    approver: &Client,
    user_code: &str,
    d: &Value,
    admin_scope: bool,
) -> (u16, Value) {
    let body =
        json!({ "user_code": user_code, "device_id": d["device_id"], "admin_scope": admin_scope });
    approver.post("/api/device/approve", body).await
}

async fn cluster() -> Cluster {
    let cluster = Cluster::start_with(Backend::Real, 1, &[ADMIN, USER], |_| {}).await;
    cluster
        .authz()
        .set_user_admin(SetUserAdminRequest {
            username: ADMIN.0.into(),
            admin: true,
        })
        .await
        .unwrap();
    cluster
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_code_alone_approves_nothing_and_the_details_come_first() {
    let cluster = cluster().await;
    let addr = &cluster.gateways[0].addr;
    let stranger = Client::new(addr);
    let (device_code, user_code) = start(&stranger, "agent", "attackers-box").await;
    let admin = Client::logged_in(addr, ADMIN).await;

    // The old one-step approval (what a phishing link's page script or a hurried click sent):
    // refused, and saying why.
    let (status, v) = admin
        .post(
            "/api/device/approve",
            json!({ "user_code": user_code, "node_name": "box" }),
        )
        .await;
    assert_eq!(status, 409, "{v}");
    assert!(v["error"].as_str().unwrap().contains("review"), "{v}");
    // Opening the link approves nothing either.
    let page = admin
        .request(reqwest::Method::GET, &format!("/activate?code={user_code}"))
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), 200);
    assert_eq!(poll(&stranger, &device_code).await["state"], "pending");

    // What the page shows before the click.
    let d = inspect(&admin, &user_code.to_lowercase(), "").await;
    assert_eq!(d["kind"], "agent");
    assert_eq!(d["hostname"], "attackers-box");
    assert_eq!(d["client_ip"], "127.0.0.1", "the peer, not X-Forwarded-For");
    let (created, expires, now) = (
        d["created_at"].as_i64().unwrap(),
        d["expires_at"].as_i64().unwrap(),
        d["now"].as_i64().unwrap(),
    );
    assert!(created <= now && now - created < 60_000, "{d}");
    assert!(expires > now, "{d}");
    assert_eq!(d["node_name"], "attackers-box");
    assert!(d["existing_node"].is_null(), "{d}");
    assert_eq!(d["can_grant_admin"], false, "an agent gets no API scope");
    assert_eq!(poll(&stranger, &device_code).await["state"], "pending");

    // Another request's id does not approve this one; the reviewed one does.
    let (_, other_code) = start(&stranger, "cli", "elsewhere").await;
    let other = inspect(&admin, &other_code, "").await;
    let (status, v) = admin
        .post(
            "/api/device/approve",
            json!({ "user_code": user_code, "device_id": other["device_id"], "node_name": "box" }),
        )
        .await;
    assert_eq!(status, 404, "{v}");
    assert_eq!(poll(&stranger, &device_code).await["state"], "pending");
    let (status, v) = admin
        .post(
            "/api/device/approve",
            json!({ "user_code": user_code, "device_id": d["device_id"], "node_name": "box" }),
        )
        .await;
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["node"]["name"], "box");
    assert_eq!(v["replaced"], false);
    let got = poll(&stranger, &device_code).await;
    assert_eq!(got["state"], "approved");
    assert!(got["token"].as_str().unwrap().starts_with("pp_node_"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_existing_node_is_re_keyed_only_when_chosen() {
    let cluster = cluster().await;
    let addr = &cluster.gateways[0].addr;
    let (old_token, _) = cluster.node_token(USER.0, "web-1").await;
    let stranger = Client::new(addr);
    // The stranger names their agent after bob's node.
    let (device_code, user_code) = start(&stranger, "agent", "web-1").await;
    let bob = Client::logged_in(addr, USER).await;
    let d = inspect(&bob, &user_code, "").await;
    assert_eq!(d["node_name"], "web-1");
    assert_eq!(d["existing_node"]["name"], "web-1", "{d}");
    assert_eq!(d["existing_node"]["online"], false, "no agent runs: {d}");
    // A name that is not bob's node shows nothing to replace.
    assert!(inspect(&bob, &user_code, "web-2").await["existing_node"].is_null());

    let approve = |replace: bool| {
        bob.post(
            "/api/device/approve",
            json!({
                "user_code": user_code,
                "device_id": d["device_id"],
                "node_name": "web-1",
                "replace_node": replace,
            }),
        )
    };
    let (status, v) = approve(false).await;
    assert_eq!(status, 409, "{v}");
    let said = v["error"].as_str().unwrap();
    assert!(
        said.contains("already have a node named web-1") && said.contains("replace"),
        "{said}"
    );
    assert_eq!(poll(&stranger, &device_code).await["state"], "pending");
    let verify = |token: String| async {
        cluster
            .authz()
            .verify_node_token(VerifyNodeTokenRequest { token })
            .await
    };
    assert!(
        verify(old_token.clone()).await.is_ok(),
        "bob's node keeps its token"
    );

    // Chosen explicitly: the node is re-keyed and says so.
    let (status, v) = approve(true).await;
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["replaced"], true);
    let got = poll(&stranger, &device_code).await;
    let fresh = got["token"].as_str().unwrap().to_string();
    assert_eq!(verify(fresh).await.unwrap().into_inner().name, "web-1");
    assert!(verify(old_token).await.is_err());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_command_line_gets_admin_scope_only_when_an_admin_ticks_it() {
    let cluster = cluster().await;
    let addr = &cluster.gateways[0].addr;
    let stranger = Client::new(addr);
    let admin = Client::logged_in(addr, ADMIN).await;
    let bob = Client::logged_in(addr, USER).await;
    let scopes_of = |token: String| async {
        cluster
            .authz()
            .verify_api_token(VerifyApiTokenRequest { token })
            .await
            .unwrap()
            .into_inner()
            .scopes
    };
    // An admin's plain click: read only.
    let (device_code, user_code) = start(&stranger, "cli", "laptop").await;
    let d = inspect(&admin, &user_code, "").await;
    assert_eq!(d["kind"], "cli");
    assert_eq!(d["can_grant_admin"], true);
    let (status, v) = approve_cli(&admin, &user_code, &d, false).await;
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["scopes"], json!(["read"]));
    let token = poll(&stranger, &device_code).await["token"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(scopes_of(token).await, ["read"]);

    // Ticked by the admin: admin scope.
    let (device_code, user_code) = start(&stranger, "cli", "laptop").await;
    let d = inspect(&admin, &user_code, "").await;
    let (status, v) = approve_cli(&admin, &user_code, &d, true).await;
    assert_eq!(status, 200, "{v}");
    let token = poll(&stranger, &device_code).await["token"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(scopes_of(token).await, ["admin", "read"]);

    // A non-admin is not offered it and cannot ask for it.
    let (device_code, user_code) = start(&stranger, "cli", "laptop").await;
    let d = inspect(&bob, &user_code, "").await;
    assert_eq!(d["can_grant_admin"], false);
    let (status, v) = approve_cli(&bob, &user_code, &d, true).await;
    assert_eq!(status, 403, "{v}");
    assert_eq!(poll(&stranger, &device_code).await["state"], "pending");
    let (status, v) = approve_cli(&bob, &user_code, &d, false).await;
    assert_eq!(status, 200, "{v}");
    let token = poll(&stranger, &device_code).await["token"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(scopes_of(token).await, ["read"]);
}
