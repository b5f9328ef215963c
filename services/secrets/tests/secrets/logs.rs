//! No secret ever reaches the logs: every tracing event (TRACE and up, all
//! crates: tonic, h2, sqlx included) is captured into a buffer while every
//! RPC runs, errors included, then searched for the plaintexts.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::io::Write;
use std::sync::{Arc, Mutex};

use common::{Harness, raw};
use phirepass_proto::secrets as pb;
use phirepass_secrets::MasterKey;

#[derive(Clone, Default)]
struct Buffer(Arc<Mutex<Vec<u8>>>);

impl Write for Buffer {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
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
    let buffer = Buffer::default();
    let writer = buffer.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_ansi(false)
        .with_writer(move || writer.clone())
        .finish();
    // nextest runs each test in its own process, so a global default is ours.
    tracing::subscriber::set_global_default(subscriber).unwrap();

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

    let logs = String::from_utf8(buffer.0.lock().unwrap().clone()).unwrap();
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
