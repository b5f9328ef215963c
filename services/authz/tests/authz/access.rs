//! The access model through the RPC the edges use (Authorize), on PostgreSQL + Redis + NATS and on the embedded stack:
//! the ACL matrix, the shared target namespace, and audit events.

use crate::common::{Harness, Options, Stack};
use phirepass_proto::authz as pb;
use tonic::Code;

on_both_stacks!(
    acl_matrix,
    hosts_and_nodes_share_one_namespace,
    authorize_by_user_id_allows_owners_and_granted_users,
    decisions_are_audit_events,
);

async fn authorize(h: &Harness, username: &str, target: &str) -> pb::AuthorizeResponse {
    h.client()
        .authorize(pb::AuthorizeRequest {
            username: username.into(),
            target: target.into(),
            action: "ssh".into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
}

async fn grant(h: &Harness, kind: pb::PrincipalKind, principal: &str, target: &str) {
    h.client()
        .grant(pb::GrantRequest {
            principal_kind: kind.into(),
            principal: principal.into(),
            target: target.into(),
            ..Default::default()
        })
        .await
        .unwrap();
}

async fn add_host(h: &Harness, name: &str) -> Result<pb::Target, tonic::Status> {
    h.client()
        .add_host(pb::AddHostRequest {
            name: name.into(),
            ip: "10.1.2.3".into(),
            port: 2222,
        })
        .await
        .map(tonic::Response::into_inner)
}

async fn group_with(h: &Harness, group: &str, members: &[&str]) {
    let mut c = h.client();
    c.create_group(pb::CreateGroupRequest { name: group.into() })
        .await
        .unwrap();
    for m in members {
        c.add_group_member(pb::AddGroupMemberRequest {
            group: group.into(),
            username: (*m).into(),
        })
        .await
        .unwrap();
    }
}

/// Users × targets, every cell through Authorize.
async fn acl_matrix(stack: Stack) {
    use pb::PrincipalKind::{Group, User};
    let h = Harness::on(stack, Options::default()).await;
    for u in [
        "owner", "direct", "member", "outsider", "revoked", "disabled", "exmember",
    ] {
        h.create_user(u).await;
    }
    h.node_token("owner", "web", None).await.unwrap();
    add_host(&h, "db").await.unwrap();
    group_with(&h, "ops", &["member", "exmember", "disabled"]).await;

    grant(&h, User, "direct", "db").await;
    grant(&h, User, "direct", "web").await;
    grant(&h, Group, "ops", "db").await;
    grant(&h, User, "revoked", "db").await;
    grant(&h, User, "disabled", "web").await;
    let mut c = h.client();
    c.revoke(pb::RevokeRequest {
        principal_kind: User.into(),
        principal: "revoked".into(),
        target: "db".into(),
        ..Default::default()
    })
    .await
    .unwrap();
    c.remove_group_member(pb::RemoveGroupMemberRequest {
        group: "ops".into(),
        username: "exmember".into(),
    })
    .await
    .unwrap();
    c.set_user_disabled(pb::SetUserDisabledRequest {
        username: "disabled".into(),
        disabled: true,
    })
    .await
    .unwrap();

    // (user, target, allowed, reason)
    let matrix = [
        ("owner", "web", true, "owner"),
        ("owner", "db", false, "no grant"),
        ("direct", "web", true, "user grant"),
        ("direct", "db", true, "user grant"),
        ("member", "db", true, "group grant: ops"),
        ("member", "web", false, "no grant"),
        ("outsider", "web", false, "no grant"),
        ("outsider", "db", false, "no grant"),
        ("revoked", "db", false, "no grant"),
        ("exmember", "db", false, "no grant"),
        ("disabled", "web", false, "user disabled"),
        ("disabled", "db", false, "user disabled"),
        ("nobody", "db", false, "unknown user"),
        ("direct", "nowhere", false, "unknown target"),
    ];
    for (user, target, allowed, reason) in matrix {
        let d = authorize(&h, user, target).await;
        assert_eq!(
            (d.allowed, d.reason.as_str()),
            (allowed, reason),
            "{user} -> {target}"
        );
    }

    // An allowed host decision carries where to connect.
    let d = authorize(&h, "direct", "db").await;
    assert_eq!(d.target_kind(), pb::TargetKind::Host);
    assert_eq!(d.address, "10.1.2.3:2222");
    assert_eq!(d.username, "direct");
    let d = authorize(&h, "owner", "web").await;
    assert_eq!(d.target_kind(), pb::TargetKind::Node);
    assert!(d.address.is_empty());

    // By user id too; exactly one of id and name.
    let d = c
        .authorize(pb::AuthorizeRequest {
            user_id: d.user_id.clone(),
            target: "web".into(),
            action: "http".into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert!(d.allowed);
    for bad in [
        pb::AuthorizeRequest {
            target: "web".into(),
            action: "ssh".into(),
            ..Default::default()
        },
        pb::AuthorizeRequest {
            username: "owner".into(),
            target: "web".into(),
            action: "NOT AN ACTION".into(),
            ..Default::default()
        },
    ] {
        let err = c.authorize(bad).await.unwrap_err();
        assert_eq!(err.code(), Code::InvalidArgument);
    }

    // Removing the group takes its grant with it.
    c.remove_group(pb::RemoveGroupRequest { name: "ops".into() })
        .await
        .unwrap();
    assert!(!authorize(&h, "member", "db").await.allowed);
    let grants = c
        .list_grants(pb::ListGrantsRequest {
            target: Some("db".into()),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .grants;
    let principals: Vec<_> = grants.iter().map(|g| g.principal.as_str()).collect();
    assert_eq!(principals, vec!["direct"]);
    h.stop().await;
}

async fn hosts_and_nodes_share_one_namespace(stack: Stack) {
    let h = Harness::on(stack, Options::default()).await;
    h.create_user("alice").await;
    h.node_token("alice", "web", None).await.unwrap();
    let err = add_host(&h, "web").await.unwrap_err();
    assert_eq!(err.code(), Code::AlreadyExists);
    add_host(&h, "db").await.unwrap();
    let err = h.node_token("alice", "db", None).await.unwrap_err();
    assert_eq!(err.code(), Code::AlreadyExists);
    let err = add_host(&h, "db").await.unwrap_err();
    assert_eq!(err.code(), Code::AlreadyExists);

    let mut c = h.client();
    let targets = c
        .list_targets(pb::ListTargetsRequest {
            kind: None,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .targets;
    let listed: Vec<_> = targets
        .iter()
        .map(|t| (t.name.as_str(), t.kind()))
        .collect();
    assert_eq!(
        listed,
        vec![("db", pb::TargetKind::Host), ("web", pb::TargetKind::Node)]
    );
    assert_eq!(targets[1].owner_username, "alice");
    let hosts = c
        .list_targets(pb::ListTargetsRequest {
            kind: Some(pb::TargetKind::Host.into()),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .targets;
    assert_eq!(hosts.len(), 1);
    assert_eq!((hosts[0].ip.as_str(), hosts[0].port), ("10.1.2.3", 2222));

    let err = c
        .remove_host(pb::RemoveHostRequest { name: "web".into() })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::NotFound, "a node is not a host");
    c.remove_host(pb::RemoveHostRequest { name: "db".into() })
        .await
        .unwrap();
    h.node_token("alice", "db", None).await.unwrap();
    for (ip, port) in [("not an ip!", 22), ("10.0.0.1", 0), ("10.0.0.1", 70000)] {
        let err = c
            .add_host(pb::AddHostRequest {
                name: "x".into(),
                ip: ip.into(),
                port,
            })
            .await
            .unwrap_err();
        assert_eq!(err.code(), Code::InvalidArgument, "{ip}:{port}");
    }
    h.stop().await;
}

async fn authorize_by_user_id_allows_owners_and_granted_users(stack: Stack) {
    let h = Harness::on(stack, Options::default()).await;
    let owner = h.create_user("owner").await;
    let friend = h.create_user("friend").await;
    let other = h.create_user("other").await;
    let node = h.node_token("owner", "web", None).await.unwrap();
    add_host(&h, "db").await.unwrap();
    grant(&h, pb::PrincipalKind::User, "friend", "web").await;
    let decide = |user_id: String, target: &'static str| {
        let mut c = h.client();
        async move {
            c.authorize(pb::AuthorizeRequest {
                user_id,
                target: target.into(),
                action: "connect".into(),
                ..Default::default()
            })
            .await
            .unwrap()
            .into_inner()
        }
    };
    let d = decide(owner.id.clone(), "web").await;
    assert!(d.allowed);
    assert_eq!(d.target_id, node.node_id);
    assert_eq!((d.reason.as_str(), d.username.as_str()), ("owner", "owner"));
    let d = decide(friend.id.clone(), "web").await;
    assert!(d.allowed);
    assert_eq!(d.target_name, "web");
    let d = decide(other.id.clone(), "web").await;
    assert_eq!((d.allowed, d.reason.as_str()), (false, "no grant"));
    let d = decide(owner.id.clone(), "nope").await;
    assert_eq!((d.allowed, d.reason.as_str()), (false, "unknown target"));
    let d = decide(owner.id.clone(), "db").await;
    assert_eq!(
        d.target_kind(),
        pb::TargetKind::Host,
        "a host is not a node"
    );
    assert!(!d.allowed);
    h.stop().await;
}

async fn decisions_are_audit_events(stack: Stack) {
    let h = Harness::on(stack, Options::default()).await;
    h.create_user("alice").await;
    add_host(&h, "db").await.unwrap();
    assert!(!authorize(&h, "alice", "db").await.allowed);
    grant(&h, pb::PrincipalKind::User, "alice", "db").await;
    let mut c = h.client();
    let d = c
        .authorize(pb::AuthorizeRequest {
            username: "alice".into(),
            target: "db".into(),
            action: "sftp".into(),
            client_ip: Some("192.0.2.7".into()),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert!(d.allowed);

    let events: Vec<serde_json::Value> = h
        .audit_events()
        .await
        .into_iter()
        .filter(|e| e["kind"] == "authorize")
        .collect();
    assert_eq!(events.len(), 2, "{events:?}");
    assert_eq!(events[0]["allowed"], false);
    assert_eq!(events[0]["reason"], "no grant");
    assert_eq!(events[0]["username"], "alice");
    assert_eq!(events[0]["target"], "db");
    assert_eq!(events[0]["target_kind"], "host");
    assert_eq!(events[1]["allowed"], true);
    assert_eq!(events[1]["reason"], "user grant");
    assert_eq!(events[1]["action"], "sftp");
    assert_eq!(events[1]["client_ip"], "192.0.2.7");
    h.stop().await;
}
