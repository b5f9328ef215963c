//! An API token's scope is capped by its user's role at every call: a
//! demoted admin's tokens lose admin rights at once (and regain them if
//! promoted again), a non-admin's token lists only her own tokens, nodes,
//! grants and tunnel names, and a disabled user's tokens stop working.

use crate::common::{Harness, Options, Stack};
use phirepass_proto::authz as pb;
use tonic::Code;

on_both_stacks!(
    demoted_admin_tokens_lose_admin_rights,
    non_admin_token_sees_only_her_own_data
);

fn new_user(name: &str) -> pb::CreateUserRequest {
    pb::CreateUserRequest {
        username: name.into(),
        password: crate::common::PASSWORD.into(),
    }
}

fn assert_refused_as_non_admin<T: std::fmt::Debug>(got: Result<T, tonic::Status>, what: &str) {
    let err = got.expect_err(what);
    assert_eq!(err.code(), Code::PermissionDenied, "{what}: {err:?}");
    assert!(
        err.message().contains("not an admin"),
        "{what}: the refusal says why: {}",
        err.message()
    );
}

async fn demoted_admin_tokens_lose_admin_rights(stack: Stack) {
    let h = Harness::on(stack, Options::default()).await;
    h.create_user("alice").await;
    h.set_admin("alice", true).await;
    let admin = h.as_token(&h.api_token("alice", &["admin"]).await);
    let read = h.as_token(&h.api_token("alice", &["read"]).await);
    admin.clone().create_user(new_user("bob")).await.unwrap();
    assert_eq!(
        read.clone()
            .list_users(pb::ListUsersRequest {})
            .await
            .unwrap()
            .into_inner()
            .users
            .len(),
        2
    );

    h.set_admin("alice", false).await;
    assert_refused_as_non_admin(
        admin.clone().create_user(new_user("carol")).await,
        "a demoted admin's admin token creating a user",
    );
    assert_refused_as_non_admin(
        admin
            .clone()
            .set_user_admin(pb::SetUserAdminRequest {
                username: "alice".into(),
                admin: true,
            })
            .await,
        "a demoted admin's admin token promoting herself back",
    );
    for c in [&admin, &read] {
        assert_refused_as_non_admin(
            c.clone().list_users(pb::ListUsersRequest {}).await,
            "a demoted admin's token listing every user",
        );
    }
    // Her own tokens she may still see.
    let mine = read
        .clone()
        .list_tokens(pb::ListTokensRequest { username: None })
        .await
        .unwrap()
        .into_inner()
        .tokens;
    assert_eq!(mine.len(), 2);
    assert!(mine.iter().all(|t| t.username == "alice"));

    // A cap, not a revocation: promoted again, the same token works.
    h.set_admin("alice", true).await;
    admin.clone().create_user(new_user("carol")).await.unwrap();

    // Disabled: every token of hers stops at once.
    h.client()
        .set_user_disabled(pb::SetUserDisabledRequest {
            username: "alice".into(),
            disabled: true,
        })
        .await
        .unwrap();
    for c in [&admin, &read] {
        let err = c
            .clone()
            .list_tokens(pb::ListTokensRequest { username: None })
            .await
            .unwrap_err();
        assert_eq!(err.code(), Code::Unauthenticated);
    }
    h.stop().await;
}

async fn non_admin_token_sees_only_her_own_data(stack: Stack) {
    let h = Harness::on(stack, Options::default()).await;
    let root = h.create_user("root").await;
    h.set_admin("root", true).await;
    let alice = h.create_user("alice").await;
    h.node_token("root", "prod", None).await.unwrap();
    h.node_token("alice", "laptop", None).await.unwrap();
    h.api_token("root", &["admin"]).await;
    let mut svc = h.client();
    svc.add_host(pb::AddHostRequest {
        name: "db".into(),
        ip: "10.1.2.3".into(),
        port: 22,
    })
    .await
    .unwrap();
    for who in ["root", "alice"] {
        svc.grant(pb::GrantRequest {
            principal_kind: pb::PrincipalKind::User.into(),
            principal: who.into(),
            target: "db".into(),
            ..Default::default()
        })
        .await
        .unwrap();
    }

    // Even an admin-scope token: alice is not an admin.
    for scope in ["read", "admin"] {
        let mut c = h.as_token(&h.api_token("alice", &[scope]).await);
        // The global lists are refused.
        assert_refused_as_non_admin(c.list_users(pb::ListUsersRequest {}).await, "users");
        assert_refused_as_non_admin(c.count_users(pb::CountUsersRequest {}).await, "count");
        assert_refused_as_non_admin(
            c.list_targets(pb::ListTargetsRequest {
                kind: None,
                ..Default::default()
            })
            .await,
            "hosts",
        );
        assert_refused_as_non_admin(c.list_groups(pb::ListGroupsRequest {}).await, "groups");
        assert_refused_as_non_admin(
            c.list_invitations(pb::ListInvitationsRequest {}).await,
            "invitations",
        );
        assert_refused_as_non_admin(
            c.list_user_keys(pb::ListUserKeysRequest {
                username: "root".into(),
            })
            .await,
            "another user's keys",
        );
        // Naming somebody else is refused, not silently narrowed.
        assert_refused_as_non_admin(
            c.list_tokens(pb::ListTokensRequest {
                username: Some("root".into()),
            })
            .await,
            "root's tokens",
        );
        assert_refused_as_non_admin(
            c.list_nodes(pb::ListNodesRequest {
                user_id: Some(root.id.clone()),
            })
            .await,
            "root's nodes",
        );
        assert_refused_as_non_admin(
            c.list_grants(pb::ListGrantsRequest {
                principal_kind: Some(pb::PrincipalKind::User.into()),
                principal: Some("root".into()),
                target: None,
                ..Default::default()
            })
            .await,
            "root's grants",
        );

        // Her own: nodes, tokens, grants, tunnel names.
        let nodes = c
            .list_nodes(pb::ListNodesRequest { user_id: None })
            .await
            .unwrap()
            .into_inner()
            .nodes;
        let names: Vec<_> = nodes.iter().map(|n| n.name.as_str()).collect();
        assert_eq!(names, ["laptop"]);
        let tokens = c
            .list_tokens(pb::ListTokensRequest { username: None })
            .await
            .unwrap()
            .into_inner()
            .tokens;
        assert!(!tokens.is_empty());
        assert!(tokens.iter().all(|t| t.user_id == alice.id), "{tokens:?}");
        let grants = c
            .list_grants(pb::ListGrantsRequest::default())
            .await
            .unwrap()
            .into_inner()
            .grants;
        let who: Vec<_> = grants.iter().map(|g| g.principal.as_str()).collect();
        assert_eq!(who, ["alice"]);
        c.list_tunnel_names(pb::ListTunnelNamesRequest { user_id: None })
            .await
            .unwrap();
    }

    // An admin's read token still sees everything.
    let mut r = h.as_token(&h.api_token("root", &["read"]).await);
    let nodes = r
        .list_nodes(pb::ListNodesRequest { user_id: None })
        .await
        .unwrap()
        .into_inner()
        .nodes;
    assert_eq!(nodes.len(), 2);
    r.list_users(pb::ListUsersRequest {}).await.unwrap();
    h.stop().await;
}
