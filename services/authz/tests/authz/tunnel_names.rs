//! Tunnel names (`ssh -R`): claims, the naming policy, the operator's
//! reserved list, one namespace with nodes and hosts, races, grants on a
//! reserved name, release, and audit events. On PostgreSQL + Redis + NATS
//! and on SQLite + memory.

use crate::common::{Harness, Options, Stack};
use phirepass_authz::TunnelNamePolicy;
use phirepass_proto::authz as pb;
use tonic::Code;

on_both_stacks!(
    claims_free_owned_taken_and_reserved,
    user_prefix_policy,
    concurrent_claims_have_one_winner,
    reserved_names_are_targets_with_grants,
    release_frees_the_name_and_drops_grants,
);

async fn claim(h: &Harness, user_id: &str, name: &str, reserve: bool) -> (bool, String) {
    let r = h
        .client()
        .claim_tunnel_name(pb::ClaimTunnelNameRequest {
            user_id: user_id.into(),
            name: name.into(),
            reserve,
        })
        .await
        .unwrap()
        .into_inner();
    (r.allowed, r.reason)
}

async fn claims_free_owned_taken_and_reserved(stack: Stack) {
    let options = Options {
        tunnel_reserved_names: vec!["billing".into()],
        ..Options::default()
    };
    let h = Harness::on(stack, options).await;
    let alice = h.create_user("alice").await;
    let bob = h.create_user("bob").await;

    assert_eq!(
        claim(&h, &alice.id, "myapp", false).await,
        (true, "free".into())
    );
    assert!(
        h.store.tunnel_name("myapp").await.unwrap().is_none(),
        "reserve=false stores nothing"
    );
    assert_eq!(
        claim(&h, &alice.id, "myapp", true).await,
        (true, "reserved".into())
    );
    assert_eq!(
        claim(&h, &alice.id, "myapp", true).await,
        (true, "owner".into())
    );
    assert_eq!(
        claim(&h, &alice.id, "myapp", false).await,
        (true, "owner".into())
    );
    // Taken by alice whether or not her tunnel is online (nothing here is online).
    assert_eq!(
        claim(&h, &bob.id, "myapp", false).await,
        (false, "taken".into())
    );
    assert_eq!(
        claim(&h, &bob.id, "myapp", true).await,
        (false, "taken".into())
    );

    // Operator-reserved: built in and configured.
    for name in ["www", "api", "status", "billing"] {
        assert_eq!(
            claim(&h, &alice.id, name, true).await,
            (false, "reserved by the operator".into()),
            "{name}"
        );
    }
    // Nodes and hosts share the namespace.
    h.node_token("bob", "web-1", None).await.unwrap();
    assert_eq!(
        claim(&h, &alice.id, "web-1", true).await,
        (false, "taken".into())
    );
    assert_eq!(
        claim(&h, &bob.id, "web-1", true).await,
        (false, "taken".into())
    );
    // ... and a node cannot take a reserved tunnel name.
    assert_eq!(
        h.node_token("bob", "myapp", None).await.unwrap_err().code(),
        Code::AlreadyExists
    );

    for bad in ["-x", "x-", "My", "a_b", "a.b", ""] {
        let (allowed, reason) = claim(&h, &alice.id, bad, true).await;
        assert!(!allowed, "{bad}");
        assert!(reason.starts_with("invalid name: "), "{bad}: {reason}");
    }
    assert_eq!(
        claim(&h, "no-such-user", "free-one", true).await,
        (false, "unknown user".into())
    );

    let names = h
        .client()
        .list_tunnel_names(pb::ListTunnelNamesRequest { user_id: None })
        .await
        .unwrap()
        .into_inner()
        .names;
    assert_eq!(names.len(), 1);
    assert_eq!(
        (names[0].name.as_str(), names[0].username.as_str()),
        ("myapp", "alice")
    );
    let bobs = h
        .client()
        .list_tunnel_names(pb::ListTunnelNamesRequest {
            user_id: Some(bob.id.clone()),
        })
        .await
        .unwrap()
        .into_inner()
        .names;
    assert!(bobs.is_empty());

    // Audited: the reservation and a refusal.
    let events = h.audit_events().await;
    let reserve = events
        .iter()
        .find(|e| e["action"] == "tunnel_name.reserve")
        .expect("reserve audited");
    assert_eq!(reserve["details"]["name"], "myapp");
    assert_eq!(reserve["details"]["username"], "alice");
    assert!(events.iter().any(|e| e["action"] == "tunnel_name.claim"
        && e["details"]["reason"] == "taken"
        && e["details"]["username"] == "bob"));
    h.stop().await;
}

async fn user_prefix_policy(stack: Stack) {
    let options = Options {
        tunnel_name_policy: TunnelNamePolicy::UserPrefix,
        ..Options::default()
    };
    let h = Harness::on(stack, options).await;
    let alice = h.create_user("alice").await;
    assert_eq!(
        claim(&h, &alice.id, "alice", true).await,
        (true, "reserved".into())
    );
    assert_eq!(
        claim(&h, &alice.id, "alice-api", true).await,
        (true, "reserved".into())
    );
    for name in ["web", "alicex", "bob-alice"] {
        let (allowed, reason) = claim(&h, &alice.id, name, true).await;
        assert!(!allowed, "{name}");
        assert!(
            reason.starts_with("not allowed by the naming policy: "),
            "{name}: {reason}"
        );
    }
    h.stop().await;
}

async fn concurrent_claims_have_one_winner(stack: Stack) {
    let h = Harness::on(stack, Options::default()).await;
    let mut users = Vec::new();
    for i in 0..8 {
        users.push(h.create_user(&format!("user{i}")).await.id);
    }
    let tasks: Vec<_> = users
        .iter()
        .map(|id| {
            let mut c = h.client();
            let id = id.clone();
            tokio::spawn(async move {
                c.claim_tunnel_name(pb::ClaimTunnelNameRequest {
                    user_id: id,
                    name: "contested".into(),
                    reserve: true,
                })
                .await
                .unwrap()
                .into_inner()
            })
        })
        .collect();
    let mut winners = 0;
    for t in tasks {
        let r = t.await.unwrap();
        if r.allowed {
            assert_eq!(r.reason, "reserved");
            winners += 1;
        } else {
            assert_eq!(r.reason, "taken");
        }
    }
    assert_eq!(winners, 1);
    h.stop().await;
}

async fn authorize(h: &Harness, user: &str, target: &str) -> pb::AuthorizeResponse {
    h.client()
        .authorize(pb::AuthorizeRequest {
            username: user.into(),
            target: target.into(),
            action: "tcp".into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
}

async fn reserved_names_are_targets_with_grants(stack: Stack) {
    let h = Harness::on(stack, Options::default()).await;
    let alice = h.create_user("alice").await;
    h.create_user("bob").await;
    h.create_user("carol").await;
    // Ask first, so a cached "unknown target" would be around if the
    // reservation did not invalidate the cache.
    assert_eq!(authorize(&h, "alice", "pg").await.reason, "unknown target");
    assert!(claim(&h, &alice.id, "pg", true).await.0);

    let d = authorize(&h, "alice", "pg").await;
    assert!(d.allowed);
    assert_eq!(d.reason, "owner");
    assert_eq!(d.target_kind(), pb::TargetKind::Tunnel);
    assert!(!authorize(&h, "bob", "pg").await.allowed);

    let mut c = h.client();
    let g = c
        .grant(pb::GrantRequest {
            principal_kind: pb::PrincipalKind::User.into(),
            principal: "bob".into(),
            target: "pg".into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(g.target_kind(), pb::TargetKind::Tunnel);
    assert_eq!(authorize(&h, "bob", "pg").await.reason, "user grant");
    c.create_group(pb::CreateGroupRequest { name: "ops".into() })
        .await
        .unwrap();
    c.add_group_member(pb::AddGroupMemberRequest {
        group: "ops".into(),
        username: "carol".into(),
    })
    .await
    .unwrap();
    c.grant(pb::GrantRequest {
        principal_kind: pb::PrincipalKind::Group.into(),
        principal: "ops".into(),
        target: "pg".into(),
        ..Default::default()
    })
    .await
    .unwrap();
    assert_eq!(
        authorize(&h, "carol", "pg").await.reason,
        "group grant: ops"
    );

    let grants = c
        .list_grants(pb::ListGrantsRequest {
            target: Some("pg".into()),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .grants;
    assert_eq!(grants.len(), 2);

    let accessible = |user: &'static str| {
        let mut c = h.client();
        async move {
            c.list_accessible_targets(pb::ListAccessibleTargetsRequest {
                username: user.into(),
            })
            .await
            .unwrap()
            .into_inner()
            .targets
        }
    };
    let a = accessible("alice").await;
    assert_eq!(a.len(), 1);
    assert_eq!(a[0].reason, "owner");
    let t = a[0].target.as_ref().unwrap();
    assert_eq!((t.name.as_str(), t.kind()), ("pg", pb::TargetKind::Tunnel));
    assert_eq!(t.owner_username, "alice");
    assert_eq!(accessible("bob").await[0].reason, "user grant");

    c.revoke(pb::RevokeRequest {
        principal_kind: pb::PrincipalKind::User.into(),
        principal: "bob".into(),
        target: "pg".into(),
        ..Default::default()
    })
    .await
    .unwrap();
    assert_eq!(authorize(&h, "bob", "pg").await.reason, "no grant");

    let targets = c
        .list_targets(pb::ListTargetsRequest {
            kind: Some(pb::TargetKind::Tunnel.into()),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .targets;
    assert_eq!(targets.len(), 1);
    assert_eq!(targets[0].name, "pg");
    h.stop().await;
}

async fn release_frees_the_name_and_drops_grants(stack: Stack) {
    let h = Harness::on(stack, Options::default()).await;
    let alice = h.create_user("alice").await;
    let bob = h.create_user("bob").await;
    assert!(claim(&h, &alice.id, "shop", true).await.0);
    let mut c = h.client();
    c.grant(pb::GrantRequest {
        principal_kind: pb::PrincipalKind::User.into(),
        principal: "bob".into(),
        target: "shop".into(),
        ..Default::default()
    })
    .await
    .unwrap();
    assert!(authorize(&h, "alice", "shop").await.allowed);

    c.release_tunnel_name(pb::ReleaseTunnelNameRequest {
        name: "shop".into(),
    })
    .await
    .unwrap();
    assert_eq!(
        c.release_tunnel_name(pb::ReleaseTunnelNameRequest {
            name: "shop".into()
        })
        .await
        .unwrap_err()
        .code(),
        Code::NotFound
    );
    // Applies at once (the release invalidated the decision cache).
    assert_eq!(
        authorize(&h, "alice", "shop").await.reason,
        "unknown target"
    );
    let grants = c
        .list_grants(pb::ListGrantsRequest::default())
        .await
        .unwrap()
        .into_inner()
        .grants;
    assert!(grants.is_empty());
    assert_eq!(
        claim(&h, &bob.id, "shop", true).await,
        (true, "reserved".into())
    );
    assert!(
        h.audit_events()
            .await
            .iter()
            .any(|e| e["action"] == "tunnel_name.release" && e["details"]["name"] == "shop")
    );

    // Removing a user frees their names.
    c.remove_user(pb::RemoveUserRequest {
        username: "bob".into(),
    })
    .await
    .unwrap();
    assert_eq!(
        claim(&h, &alice.id, "shop", true).await,
        (true, "reserved".into())
    );
    h.stop().await;
}
