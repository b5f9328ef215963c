//! Online rotation over real gRPC, on PostgreSQL and SQLite: killed after
//! every entry and resumed, every entry stays readable and ends under the
//! new key; the old key is retired only once nothing references it.

use crate::common::{self, ENTRIES, Harness, raw};
use phirepass_proto::secrets as pb;
use phirepass_secrets::{MasterKey, SecretsError};
use phirepass_store::Store;
use tonic::Code;

phirepass_store::on_both_stores!(
    rotation_killed_after_every_entry_resumes,
    rotation_refuses_the_wrong_new_key,
);

async fn rotate(h: &Harness, new_key_id: &str, max: Option<u32>) -> pb::RotationStatus {
    h.admin
        .clone()
        .rotate(pb::RotateRequest {
            new_key_id: new_key_id.into(),
            max_entries: max,
        })
        .await
        .unwrap()
        .into_inner()
}

fn usage<'a>(s: &'a pb::RotationStatus, id: &str) -> &'a pb::KeyUsage {
    s.keys.iter().find(|k| k.key_id == id).unwrap()
}

async fn rotation_killed_after_every_entry_resumes(store: Store) {
    let (a, b) = (MasterKey::generate(), MasterKey::generate());
    let h = Harness::start(store.clone(), raw(&a), None).await;
    common::populate(&h).await;
    let before = h.status().await;
    assert_eq!(before.current_key_id, a.id());
    assert_eq!(usage(&before, a.id()).entries, ENTRIES);
    assert_eq!(before.pending, 0);

    // Restart with the new key current and the old one to read with.
    let mut h = h.restart(raw(&b), Some(raw(&a))).await;
    common::check_all(&h).await;
    assert_eq!(h.status().await.pending, ENTRIES);

    let mut written_during = 0;
    for step in 1..=ENTRIES {
        // One entry per run, then the service is "killed" and restarted.
        let s = rotate(&h, b.id(), Some(1)).await;
        assert_eq!(s.rotated, 1, "step {step}");
        assert_eq!(s.pending, ENTRIES - step, "step {step}");
        assert_eq!(usage(&s, b.id()).entries, step + written_during);
        h = h.restart(raw(&b), Some(raw(&a))).await;
        common::check_all(&h).await;
        if step == ENTRIES / 2 {
            // Writes during a rotation land under the new key directly.
            h.set("web1", "insecure", "false").await;
            h.set("web1", "insecure", "true").await;
            written_during = 1;
        }
        if step < ENTRIES {
            assert!(usage(&h.status().await, a.id()).retired_at.is_none());
        }
    }

    // Nothing left: running it again is a no-op, and the old key is retired.
    let done = rotate(&h, b.id(), None).await;
    assert_eq!(done.rotated, 0);
    assert_eq!(done.pending, 0);
    assert_eq!(usage(&done, a.id()).entries, 0);
    assert!(usage(&done, a.id()).retired_at.is_some());
    assert!(usage(&done, b.id()).current);
    assert_eq!(usage(&done, b.id()).entries, ENTRIES + 1);

    // The new key alone now opens everything; the old key alone does not start.
    let mut h = h.restart(raw(&b), None).await;
    common::check_all(&h).await;
    h.shutdown().await;
    let pki = phirepass_pki::LocalPki::generate().unwrap();
    let (_url, _stop, task) = common::spawn(store, common::config(&pki, raw(&a))).await;
    assert!(matches!(
        task.await.unwrap().unwrap_err(),
        SecretsError::UnknownKeys(ids) if ids == vec![b.id().to_owned()]
    ));
}

async fn rotation_refuses_the_wrong_new_key(store: Store) {
    let (a, b) = (MasterKey::generate(), MasterKey::generate());
    let h = Harness::start(store, raw(&a), None).await;
    common::populate(&h).await;
    let h = h.restart(raw(&b), Some(raw(&a))).await;
    let err = h
        .admin
        .clone()
        .rotate(pb::RotateRequest {
            new_key_id: a.id().into(),
            max_entries: None,
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::FailedPrecondition);
    assert!(err.message().contains(b.id()), "{err:?}");
    assert_eq!(h.status().await.pending, ENTRIES);

    // A full run in one call, resumed after nothing: still fine.
    let s = rotate(&h, b.id(), None).await;
    assert_eq!((s.rotated, s.pending), (ENTRIES, 0));
    common::check_all(&h).await;
}
