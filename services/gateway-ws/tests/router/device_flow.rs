//! Device activation as a stranger drives it: the link handed out names the configured
//! dashboard, whatever Host the request claims, and no code the flow issues reaches the logs.

use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, OnceLock};

use axum::body::Body;
use axum::http::{Request, StatusCode};
use serde_json::Value;
use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id, Record};
use tracing::{Event, Metadata, Subscriber};

use crate::common::{Gateway, HOST, json};

const DASHBOARD: &str = "https://phirepass.example.com";

/// `POST /api/device/start` as the agent sends it: JSON, no Origin, the Host it was given.
fn start(host: &str) -> Request<Body> {
    let body = serde_json::json!({ "kind": "agent", "hostname": "box-1" });
    Request::post("/api/device/start")
        .header("host", host)
        .header("content-type", "application/json")
        .body(Body::from(body.to_string()))
        .unwrap()
}

#[tokio::test]
async fn a_hostile_host_gets_the_configured_verification_uri() {
    let gateway = Gateway::start(|c| c.proxy.main_origin = Some(DASHBOARD.to_string())).await;
    let response = gateway.send(start("evil.example")).await;
    assert_eq!(response.status(), StatusCode::OK);
    let body = json(response).await;
    assert_eq!(body["verification_uri"], format!("{DASHBOARD}/activate"));
    let complete = body["verification_uri_complete"].as_str().unwrap();
    assert!(
        complete.starts_with(&format!("{DASHBOARD}/activate?code=")),
        "{complete}"
    );
}

#[tokio::test]
async fn without_a_configured_origin_a_foreign_host_is_not_echoed() {
    let gateway = Gateway::start(|_| {}).await;
    let response = gateway.send(start("evil.example")).await;
    assert_eq!(response.status(), StatusCode::CONFLICT);
    let body = json(response).await;
    let error = body["error"].as_str().unwrap();
    assert!(error.contains("PROXY_MAIN_ORIGIN"), "{error}");
    assert!(!body.to_string().contains("evil.example"), "{body}");

    // `phirepass dev` is reached on loopback: its own Host is used there.
    let response = gateway.send(start("127.0.0.1:8080")).await;
    let body = json(response).await;
    assert_eq!(body["verification_uri"], "http://127.0.0.1:8080/activate");
}

#[tokio::test]
async fn no_device_or_user_code_is_logged_at_any_level() {
    install_capture();
    let gateway = Gateway::start(|c| c.proxy.main_origin = Some(DASHBOARD.to_string())).await;
    let cookie = gateway.user("approver").await;
    let started = json(gateway.send(start(HOST)).await).await;
    let user_code = started["user_code"].as_str().unwrap().to_string();
    let device_code = started["device_code"].as_str().unwrap().to_string();
    let logged_in = |path: &str, body: Value| {
        Request::post(path)
            .header("host", HOST)
            .header("origin", format!("http://{HOST}"))
            .header("content-type", "application/json")
            .header("cookie", &cookie)
            .body(Body::from(body.to_string()))
            .unwrap()
    };
    let inspect = serde_json::json!({ "user_code": user_code });
    let details = json(
        gateway
            .send(logged_in("/api/device/inspect", inspect))
            .await,
    )
    .await;
    let approve = serde_json::json!({
        "user_code": user_code,
        "node_name": "box-1",
        "device_id": details["device_id"],
    });
    let approved = gateway
        .send(logged_in("/api/device/approve", approve))
        .await;
    assert_eq!(approved.status(), StatusCode::OK);
    let poll = serde_json::json!({ "device_code": device_code });
    let polled: Value = json(
        gateway
            .send(
                Request::post("/api/device/poll")
                    .header("host", HOST)
                    .header("content-type", "application/json")
                    .body(Body::from(poll.to_string()))
                    .unwrap(),
            )
            .await,
    )
    .await;
    assert_eq!(polled["state"], "approved", "{polled}");

    let logs = CAPTURED.lock().unwrap().clone();
    assert!(
        logs.contains("device authorization started"),
        "capture is live:\n{logs}"
    );
    // The user code is also checked without its dash: a field may hold the normalised form.
    for secret in [user_code.clone(), user_code.replace('-', ""), device_code] {
        assert!(!logs.contains(&secret), "{secret} logged:\n{logs}");
    }
}

/// Every event's and span's fields, from every thread (authz runs in this process).
static CAPTURED: Mutex<String> = Mutex::new(String::new());

/// A process-wide subscriber appending every field at every level to [`CAPTURED`].
struct Capture {
    next_id: AtomicU64,
}

struct Fields<'a>(&'a mut String);

impl Visit for Fields<'_> {
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        let _ = write!(self.0, " {}={:?}", field.name(), value);
    }
    fn record_str(&mut self, field: &Field, value: &str) {
        let _ = write!(self.0, " {}={}", field.name(), value);
    }
}

impl Capture {
    fn append(&self, target: &str, record: impl FnOnce(&mut Fields<'_>)) {
        let mut line = format!("{target}:");
        record(&mut Fields(&mut line));
        line.push('\n');
        CAPTURED.lock().unwrap().push_str(&line);
    }
}

impl Subscriber for Capture {
    fn enabled(&self, _: &Metadata<'_>) -> bool {
        true
    }
    fn new_span(&self, span: &Attributes<'_>) -> Id {
        self.append(span.metadata().target(), |f| span.record(f));
        Id::from_u64(self.next_id.fetch_add(1, Ordering::Relaxed))
    }
    fn record(&self, _: &Id, values: &Record<'_>) {
        self.append("span", |f| values.record(f));
    }
    fn record_follows_from(&self, _: &Id, _: &Id) {}
    fn event(&self, event: &Event<'_>) {
        self.append(event.metadata().target(), |f| event.record(f));
    }
    fn enter(&self, _: &Id) {}
    fn exit(&self, _: &Id) {}
}

fn install_capture() {
    static INSTALLED: OnceLock<()> = OnceLock::new();
    INSTALLED.get_or_init(|| {
        let capture = Capture {
            next_id: AtomicU64::new(1),
        };
        tracing::subscriber::set_global_default(capture).unwrap();
    });
}
