//! First run: the setup code, SetupStatus and CompleteSetup (one admin,
//! once), on PostgreSQL + Redis + NATS and embedded.

use std::time::Duration;

use crate::common::{Harness, Options, PASSWORD, Stack};
use phirepass_authz::LoginLimits;
use phirepass_proto::authz as pb;
use sha2::{Digest, Sha256};
use sqlx::Row;
use tonic::Code;

on_both_stacks!(
    setup_creates_one_admin_with_the_code,
    wrong_codes_are_limited_per_ip,
    expired_codes_are_refused,
    concurrent_setups_create_one_user,
    only_the_newest_code_is_valid,
    no_code_once_a_user_exists,
);

fn setup(code: &str, username: &str, ip: &str) -> pb::CompleteSetupRequest {
    pb::CompleteSetupRequest {
        setup_code: code.into(),
        username: username.into(),
        password: PASSWORD.into(),
        client_ip: Some(ip.into()),
    }
}

async fn needs_setup(h: &Harness) -> bool {
    h.client()
        .setup_status(pb::SetupStatusRequest {})
        .await
        .unwrap()
        .into_inner()
        .needs_setup
}

async fn setup_creates_one_admin_with_the_code(stack: Stack) {
    let h = Harness::on(stack, Options::default()).await;
    let code = h
        .setup_code
        .clone()
        .expect("a setup code on an empty store");
    // XXXX-XXXX-XXXX from Crockford's base32.
    let groups: Vec<&str> = code.split('-').collect();
    assert_eq!(groups.len(), 3, "{code}");
    assert!(groups.iter().all(|g| {
        g.len() == 4
            && g.bytes()
                .all(|b| b"0123456789ABCDEFGHJKMNPQRSTVWXYZ".contains(&b))
    }));
    assert!(needs_setup(&h).await);

    // Only its hash is stored.
    let rows = sqlx::query("SELECT code_hash FROM setup_codes")
        .fetch_all(h.store.pool())
        .await
        .unwrap();
    assert_eq!(rows.len(), 1);
    let stored: String = rows[0].get("code_hash");
    assert!(!stored.contains(&code) && !stored.contains(&code.replace('-', "")));

    let mut c = h.client();
    let err = c
        .complete_setup(setup("AAAA-BBBB-CCCC", "root", "192.0.2.1"))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::PermissionDenied);
    let err = c
        .complete_setup(setup("garbage", "root", "192.0.2.1"))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::PermissionDenied);
    // Right code, bad username: refused without using the code up.
    let err = c
        .complete_setup(setup(&code, "Root!", "192.0.2.1"))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument);

    // Typed in lower case with spaces: still the code.
    let typed = code.to_lowercase().replace('-', " ");
    let done = c
        .complete_setup(setup(&typed, "root", "192.0.2.1"))
        .await
        .unwrap()
        .into_inner();
    let root = done.user.unwrap();
    assert_eq!(root.username, "root");
    assert!(root.admin);
    let me = c
        .verify_session(pb::VerifySessionRequest {
            session_token: done.session_token,
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(me.id, root.id);
    assert!(!needs_setup(&h).await);
    h.login("root", PASSWORD).await.unwrap();

    // Once a user exists: FAILED_PRECONDITION, whatever the code.
    for attempt in [code.as_str(), "AAAA-BBBB-CCCC"] {
        let err = c
            .complete_setup(setup(attempt, "second", "192.0.2.1"))
            .await
            .unwrap_err();
        assert_eq!(err.code(), Code::FailedPrecondition);
    }
    let users = c
        .list_users(pb::ListUsersRequest {})
        .await
        .unwrap()
        .into_inner()
        .users;
    assert_eq!(users.len(), 1);

    // An API token cannot call it (services only: no certificate, unauthenticated).
    let token = h.api_token("root", &["admin"]).await;
    let err = h
        .as_token(&token)
        .setup_status(pb::SetupStatusRequest {})
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::Unauthenticated);
    let events = h.audit_events().await;
    assert!(
        events
            .iter()
            .any(|e| e["action"] == "setup.complete" && e["details"]["username"] == "root")
    );
    h.stop().await;
}

async fn wrong_codes_are_limited_per_ip(stack: Stack) {
    let options = Options {
        limits: LoginLimits {
            max_failures: 5,
            max_failures_per_ip: 3,
            window: Duration::from_secs(60),
        },
        ..Options::default()
    };
    let h = Harness::on(stack, options).await;
    let code = h.setup_code.clone().unwrap();
    let mut c = h.client();
    for _ in 0..3 {
        let err = c
            .complete_setup(setup("AAAA-BBBB-CCCC", "root", "203.0.113.9"))
            .await
            .unwrap_err();
        assert_eq!(err.code(), Code::PermissionDenied);
    }
    // That address is locked out, even with the right code.
    let err = c
        .complete_setup(setup(&code, "root", "203.0.113.9"))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::ResourceExhausted);
    assert!(needs_setup(&h).await);
    // Another address is not.
    c.complete_setup(setup(&code, "root", "203.0.113.10"))
        .await
        .unwrap();
    h.stop().await;
}

async fn expired_codes_are_refused(stack: Stack) {
    let h = Harness::on(stack, Options::default()).await;
    // A code whose 24 hours are over, stored the way authz stores codes.
    let old = "ABCD-EFGH-JKMN";
    let hash = hex::encode(Sha256::digest(format!("setup:{old}").as_bytes()));
    let now = phirepass_store::now_millis();
    h.store
        .insert_setup_code(&hash, now - 25 * 3_600_000, now - 3_600_000)
        .await
        .unwrap();
    let err = h
        .client()
        .complete_setup(setup(old, "root", "192.0.2.1"))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::PermissionDenied);
    // A fresh one works, and a new authz start issues another valid code.
    let again = phirepass_authz::issue_setup_code(&h.store)
        .await
        .unwrap()
        .unwrap();
    assert_ne!(Some(&again), h.setup_code.as_ref());
    h.client()
        .complete_setup(setup(&again, "root", "192.0.2.1"))
        .await
        .unwrap();
    h.stop().await;
}

async fn concurrent_setups_create_one_user(stack: Stack) {
    let h = Harness::on(stack, Options::default()).await;
    // Two people with the code at once: one admin, the other is told setup is done.
    let code = h.setup_code.clone().unwrap();
    let (mut a, mut b) = (h.client(), h.client());
    let (ra, rb) = tokio::join!(
        a.complete_setup(setup(&code, "alice", "192.0.2.1")),
        b.complete_setup(setup(&code, "bob", "192.0.2.2")),
    );
    let oks = [ra.is_ok(), rb.is_ok()].iter().filter(|ok| **ok).count();
    assert_eq!(oks, 1, "{ra:?} {rb:?}");
    for r in [ra, rb] {
        if let Err(e) = r {
            assert_eq!(e.code(), Code::FailedPrecondition, "{e:?}");
        }
    }
    let users = h
        .client()
        .list_users(pb::ListUsersRequest {})
        .await
        .unwrap()
        .into_inner()
        .users;
    assert_eq!(users.len(), 1);
    assert!(users[0].admin);
    h.stop().await;
}

async fn only_the_newest_code_is_valid(stack: Stack) {
    let h = Harness::on(stack, Options::default()).await;
    // A restart issues a new code: the one printed before it is refused from then on.
    let first = h.setup_code.clone().unwrap();
    let newest = phirepass_authz::issue_setup_code(&h.store)
        .await
        .unwrap()
        .unwrap();
    assert_ne!(first, newest);
    let err = h
        .client()
        .complete_setup(setup(&first, "root", "192.0.2.1"))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::PermissionDenied, "{err:?}");
    assert!(needs_setup(&h).await);
    h.client()
        .complete_setup(setup(&newest, "root", "192.0.2.1"))
        .await
        .unwrap();
    h.stop().await;
}

async fn no_code_once_a_user_exists(stack: Stack) {
    let h = Harness::on(stack, Options::default()).await;
    h.create_user("alice").await;
    assert!(!needs_setup(&h).await);
    assert_eq!(
        phirepass_authz::issue_setup_code(&h.store).await.unwrap(),
        None
    );
    // The code issued while the store was empty no longer helps.
    let err = h
        .client()
        .complete_setup(setup(
            h.setup_code.as_ref().unwrap(),
            "mallory",
            "192.0.2.1",
        ))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::FailedPrecondition);
    h.stop().await;
}
