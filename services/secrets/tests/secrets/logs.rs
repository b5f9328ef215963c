//! No secret ever reaches the logs: every tracing event (TRACE and up, all
//! crates and threads: tonic, h2, sqlx's SQLite worker included) is captured
//! into a buffer while every RPC runs, errors included, then searched for
//! the plaintexts.
//!
//! One process-wide subscriber is installed once and writes only while a
//! capture is active, so this holds whether each test has its own process
//! (nextest) or shares one with every other test (`cargo test`). Captures
//! run one at a time; events of tests running alongside land in the buffer
//! too, and must not leak a secret either.

use std::io::Write;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, OnceLock};

use phirepass_proto::secrets as pb;
use phirepass_secrets::MasterKey;
use tracing_subscriber::layer::SubscriberExt as _;
use tracing_subscriber::{Layer as _, filter};

use crate::common::{self, Harness, raw};

#[derive(Clone, Default)]
struct Buffer(Arc<Mutex<Vec<u8>>>);

/// The buffer of the active capture, if any.
static ACTIVE: Mutex<Option<Buffer>> = Mutex::new(None);
/// Mirrors `ACTIVE.is_some()` for the per-event filter (no lock per event).
static CAPTURING: AtomicBool = AtomicBool::new(false);
/// Serialises the captures of this file's tests.
static ONE_CAPTURE: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// The writer of the process-wide subscriber: the active capture's buffer.
struct ActiveBuffer;

impl Write for ActiveBuffer {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        if let Some(buffer) = ACTIVE.lock().unwrap().as_ref() {
            buffer.0.lock().unwrap().extend_from_slice(buf);
        }
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

fn install_subscriber_once() {
    static INSTALLED: OnceLock<()> = OnceLock::new();
    INSTALLED.get_or_init(|| {
        // A dynamic filter is asked per event, so callsites stay live while
        // no capture runs instead of being cached as disabled.
        let layer = tracing_subscriber::fmt::layer()
            .with_ansi(false)
            .with_writer(|| ActiveBuffer)
            .with_filter(filter::dynamic_filter_fn(|_, _| {
                CAPTURING.load(Ordering::SeqCst)
            }));
        let subscriber = tracing_subscriber::registry().with(layer);
        tracing::subscriber::set_global_default(subscriber).unwrap();
    });
}

/// Captures every event until dropped.
struct Capture(Buffer);

impl Capture {
    fn start() -> Self {
        install_subscriber_once();
        let buffer = Buffer::default();
        *ACTIVE.lock().unwrap() = Some(buffer.clone());
        CAPTURING.store(true, Ordering::SeqCst);
        Self(buffer)
    }

    fn text(&self) -> String {
        String::from_utf8(self.0.0.lock().unwrap().clone()).unwrap()
    }
}

impl Drop for Capture {
    fn drop(&mut self) {
        CAPTURING.store(false, Ordering::SeqCst);
        if let Ok(mut active) = ACTIVE.lock() {
            *active = None;
        }
    }
}

#[tokio::test]
async fn no_secret_appears_in_logs_pg() {
    no_secret_appears_in_logs(common::postgres).await;
}

#[tokio::test]
async fn no_secret_appears_in_logs_sqlite() {
    no_secret_appears_in_logs(common::sqlite).await;
}

async fn no_secret_appears_in_logs<F, Fut>(store: F)
where
    F: FnOnce() -> Fut,
    Fut: std::future::Future<Output = phirepass_store::Store>,
{
    let _one = ONE_CAPTURE.lock().await;
    let capture = Capture::start();

    let (a, b) = (MasterKey::generate(), MasterKey::generate());
    let h = Harness::start(store().await, raw(&a), None).await;
    common::populate(&h).await;
    common::check_all(&h).await;
    // Error paths too: refused decrypt, moved ciphertext, duplicate, rotation.
    let _ = h
        .admin
        .clone()
        .resolve_host_auth(pb::ResolveHostAuthRequest {
            host: "web1".into(),
        })
        .await;
    let _ = h
        .admin
        .clone()
        .create_credential(pb::CreateCredentialRequest {
            name: "db-pass".into(),
            kind: pb::CredentialKind::Password as i32,
            secret: common::PW_CRED.into(),
            passphrase: None,
            meta_json: String::new(),
        })
        .await;
    let h = h.restart(raw(&b), Some(raw(&a))).await;
    h.admin
        .clone()
        .rotate(pb::RotateRequest {
            new_key_id: b.id().into(),
            max_entries: None,
        })
        .await
        .unwrap();
    common::check_all(&h).await;
    sqlx::query(
        "UPDATE relay_credentials SET secret_envelope = \
         (SELECT secret_envelope FROM relay_credentials WHERE name = 'deploy-key') \
         WHERE name = 'db-pass'",
    )
    .execute(h.store.pool())
    .await
    .unwrap();
    assert!(h.resolve("web4").await.is_err());

    let logs = capture.text();
    assert!(logs.contains("secrets.resolve_host_auth"), "capture works");
    assert!(
        logs.contains("vault entry cannot be opened"),
        "errors captured"
    );
    for secret in common::SECRETS {
        assert!(!logs.contains(secret), "log leaked {secret}");
    }
    for key in [&a, &b] {
        assert!(
            !logs.contains(key.to_base64().as_str()),
            "log leaked a master key"
        );
    }
}
