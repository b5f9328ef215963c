//! The Authorize decision cache (presence: Redis on the production stack):
//! cached answers are the same answers, still audited, dropped at once by
//! any change on any replica, and expire after their TTL.

use std::time::Duration;

use crate::common::{Harness, Options, PASSWORD, Stack};
use phirepass_proto::authz as pb;

on_both_stacks!(
    cached_answers_are_audited_and_changes_apply_at_once,
    changes_on_one_replica_reach_the_other,
    ttl_bounds_changes_made_behind_authz,
    zero_ttl_disables_the_cache,
);

async fn authorize(h: &Harness, user: &str, target: &str) -> pb::AuthorizeResponse {
    h.client()
        .authorize(pb::AuthorizeRequest {
            username: user.into(),
            target: target.into(),
            action: "ssh".into(),
            client_ip: Some("192.0.2.30".into()),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
}

async fn decisions(h: &Harness) -> Vec<serde_json::Value> {
    h.audit_events()
        .await
        .into_iter()
        .filter(|e| e["kind"] == "authorize")
        .collect()
}

async fn world(h: &Harness) {
    let mut c = h.client();
    h.create_user("alice").await;
    c.add_host(pb::AddHostRequest {
        name: "db".into(),
        ip: "10.0.0.9".into(),
        port: 22,
    })
    .await
    .unwrap();
    c.grant(pb::GrantRequest {
        principal_kind: pb::PrincipalKind::User.into(),
        principal: "alice".into(),
        target: "db".into(),
        ..Default::default()
    })
    .await
    .unwrap();
}

fn revoke_alice() -> pb::RevokeRequest {
    pb::RevokeRequest {
        principal_kind: pb::PrincipalKind::User.into(),
        principal: "alice".into(),
        target: "db".into(),
        ..Default::default()
    }
}

async fn cached_answers_are_audited_and_changes_apply_at_once(stack: Stack) {
    let h = Harness::on(stack, Options::default()).await;
    world(&h).await;
    let first = authorize(&h, "alice", "db").await;
    let second = authorize(&h, "alice", "db").await;
    assert!(first.allowed);
    assert_eq!(first, second);
    assert_eq!(second.address, "10.0.0.9:22");
    let events = decisions(&h).await;
    assert_eq!(events.len(), 2);
    assert_eq!(events[0]["cached"], false);
    assert_eq!(events[1]["cached"], true);
    assert_eq!(events[1]["allowed"], true);
    assert_eq!(events[1]["username"], "alice");
    assert_eq!(events[1]["target_kind"], "host");
    assert_eq!(events[1]["client_ip"], "192.0.2.30");

    // Each change is seen by the very next decision.
    let mut c = h.client();
    c.revoke(revoke_alice()).await.unwrap();
    assert_eq!(authorize(&h, "alice", "db").await.reason, "no grant");
    c.create_group(pb::CreateGroupRequest { name: "ops".into() })
        .await
        .unwrap();
    c.grant(pb::GrantRequest {
        principal_kind: pb::PrincipalKind::Group.into(),
        principal: "ops".into(),
        target: "db".into(),
        ..Default::default()
    })
    .await
    .unwrap();
    assert_eq!(authorize(&h, "alice", "db").await.reason, "no grant");
    c.add_group_member(pb::AddGroupMemberRequest {
        group: "ops".into(),
        username: "alice".into(),
    })
    .await
    .unwrap();
    assert_eq!(
        authorize(&h, "alice", "db").await.reason,
        "group grant: ops"
    );
    authorize(&h, "alice", "db").await;
    c.set_user_disabled(pb::SetUserDisabledRequest {
        username: "alice".into(),
        disabled: true,
    })
    .await
    .unwrap();
    assert_eq!(authorize(&h, "alice", "db").await.reason, "user disabled");
    c.set_user_disabled(pb::SetUserDisabledRequest {
        username: "alice".into(),
        disabled: false,
    })
    .await
    .unwrap();
    assert!(authorize(&h, "alice", "db").await.allowed);
    // Failed logins (a stranger's, say) never change a decision.
    for _ in 0..6 {
        h.login("alice", "wrong password").await.unwrap_err();
    }
    assert!(authorize(&h, "alice", "db").await.allowed);
    // Unknown users and targets are cached and dropped the same way.
    assert_eq!(authorize(&h, "bob", "db").await.reason, "unknown user");
    h.create_user("bob").await;
    assert_eq!(authorize(&h, "bob", "db").await.reason, "no grant");
    h.login("bob", PASSWORD).await.unwrap();
    h.stop().await;
}

async fn changes_on_one_replica_reach_the_other(stack: Stack) {
    let prefix = phirepass_bus::conformance::random_prefix();
    let (store, presence, events) = Harness::deps(stack, &prefix).await;
    let a = Harness::start_with(
        store.clone(),
        presence.clone(),
        events.clone(),
        &prefix,
        Options::default(),
    )
    .await;
    let b = Harness::start_with(store, presence, events, &prefix, Options::default()).await;
    world(&a).await;
    assert!(authorize(&a, "alice", "db").await.allowed);
    assert!(authorize(&a, "alice", "db").await.allowed);
    assert!(authorize(&b, "alice", "db").await.allowed);
    b.client().revoke(revoke_alice()).await.unwrap();
    assert!(!authorize(&a, "alice", "db").await.allowed);
    assert!(!authorize(&b, "alice", "db").await.allowed);
    a.stop().await;
    b.stop().await;
}

async fn ttl_bounds_changes_made_behind_authz(stack: Stack) {
    let options = Options {
        decision_cache_ttl: Duration::from_millis(800),
        ..Options::default()
    };
    let h = Harness::on(stack, options).await;
    world(&h).await;
    assert!(authorize(&h, "alice", "db").await.allowed);
    // Straight in the database: authz cannot know, the TTL bounds it.
    sqlx::query("DELETE FROM grants")
        .execute(h.store.pool())
        .await
        .unwrap();
    assert!(
        authorize(&h, "alice", "db").await.allowed,
        "served from the cache"
    );
    tokio::time::sleep(Duration::from_millis(1000)).await;
    assert_eq!(authorize(&h, "alice", "db").await.reason, "no grant");
    h.stop().await;
}

async fn zero_ttl_disables_the_cache(stack: Stack) {
    let options = Options {
        decision_cache_ttl: Duration::ZERO,
        ..Options::default()
    };
    let h = Harness::on(stack, options).await;
    world(&h).await;
    for _ in 0..3 {
        assert!(authorize(&h, "alice", "db").await.allowed);
    }
    sqlx::query("DELETE FROM grants")
        .execute(h.store.pool())
        .await
        .unwrap();
    assert!(!authorize(&h, "alice", "db").await.allowed);
    assert!(decisions(&h).await.iter().all(|e| e["cached"] == false));
    h.stop().await;
}
