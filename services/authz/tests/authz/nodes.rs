//! Node tokens and nodes over real gRPC, on a fresh PostgreSQL database
//! and on SQLite.

use crate::common;
use crate::common::Harness;
use phirepass_proto::authz as pb;
use tonic::Code;

phirepass_store::on_both_stores!(
    node_token_lifecycle,
    node_token_expiry,
    check_tokens_reports_invalid,
    rotation_and_name_conflicts,
);

use phirepass_store::Store;

async fn node_token_lifecycle(store: Store) {
    let h = Harness::start(store).await;
    let alice = h.create_user("alice").await;
    let created = h.node_token("alice", "web-1", None).await.unwrap();
    assert!(
        created
            .token
            .starts_with(&format!("pp_node_{}_", created.token_id))
    );
    assert_eq!(created.token_id.len(), 16);
    assert_eq!(created.expires_at, None);

    let node = h.verify_node(&created.token).await.unwrap();
    assert_eq!(node.node_id, created.node_id);
    assert_eq!(
        (node.name.as_str(), node.username.as_str()),
        ("web-1", "alice")
    );
    assert_eq!(
        (node.user_id.as_str(), node.token_id.as_str()),
        (alice.id.as_str(), created.token_id.as_str())
    );

    // A wrong secret with a real token id, garbage, and empty all look alike.
    let mut forged = created.token.clone();
    let last = if forged.ends_with('0') { "1" } else { "0" };
    forged.replace_range(forged.len() - 1.., last);
    let e_forged = h.verify_node(&forged).await.unwrap_err();
    let e_garbage = h.verify_node("pp_node_nope").await.unwrap_err();
    let e_empty = h.verify_node("").await.unwrap_err();
    for e in [&e_forged, &e_garbage, &e_empty] {
        assert_eq!(e.code(), Code::Unauthenticated);
        assert_eq!(e.message(), e_forged.message());
    }

    let mut c = h.client();
    let tokens = c
        .list_tokens(pb::ListTokensRequest {
            username: Some("alice".into()),
        })
        .await
        .unwrap()
        .into_inner()
        .tokens;
    assert_eq!(tokens.len(), 1);
    let t = &tokens[0];
    assert_eq!(
        (
            t.token_id.as_str(),
            t.node_id.as_str(),
            t.node_name.as_str()
        ),
        (created.token_id.as_str(), created.node_id.as_str(), "web-1")
    );
    assert_eq!(t.scopes, ["node:connect"]);
    assert!(!t.revoked);
    let unknown_user = c
        .list_tokens(pb::ListTokensRequest {
            username: Some("ghost".into()),
        })
        .await
        .unwrap_err();
    assert_eq!(unknown_user.code(), Code::NotFound);

    c.revoke_token(pb::RevokeTokenRequest {
        token_id: created.token_id.clone(),
    })
    .await
    .unwrap();
    let e_revoked = h.verify_node(&created.token).await.unwrap_err();
    assert_eq!(e_revoked.code(), Code::Unauthenticated);
    assert_eq!(e_revoked.message(), e_forged.message());
    let all = c
        .list_tokens(pb::ListTokensRequest { username: None })
        .await
        .unwrap()
        .into_inner()
        .tokens;
    assert!(all[0].revoked);
    let missing = c
        .revoke_token(pb::RevokeTokenRequest {
            token_id: "ffffffffffffffff".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(missing.code(), Code::NotFound);

    let nodes = c
        .list_nodes(pb::ListNodesRequest {
            user_id: Some(alice.id.clone()),
        })
        .await
        .unwrap()
        .into_inner()
        .nodes;
    assert_eq!(nodes.len(), 1);
    assert_eq!(nodes[0].node_id, created.node_id);
    let none = c
        .list_nodes(pb::ListNodesRequest {
            user_id: Some("other".into()),
        })
        .await
        .unwrap()
        .into_inner()
        .nodes;
    assert!(none.is_empty());
    h.stop().await;
}

async fn node_token_expiry(store: Store) {
    let h = Harness::start(store).await;
    h.create_user("alice").await;
    let t = h.node_token("alice", "short-lived", Some(2)).await.unwrap();
    assert!(t.expires_at.is_some());
    assert!(h.verify_node(&t.token).await.is_ok());
    assert!(h.invalid_tokens(&[&t.token_id]).await.is_empty());
    tokio::time::sleep(common::until(t.expires_at.unwrap())).await;
    assert_eq!(
        h.verify_node(&t.token).await.unwrap_err().code(),
        Code::Unauthenticated
    );
    assert_eq!(
        h.invalid_tokens(&[&t.token_id]).await,
        std::slice::from_ref(&t.token_id)
    );

    let zero = h.node_token("alice", "zero", Some(0)).await.unwrap_err();
    assert_eq!(zero.code(), Code::InvalidArgument);
    h.stop().await;
}

async fn check_tokens_reports_invalid(store: Store) {
    let h = Harness::start(store).await;
    h.create_user("alice").await;
    let a = h.node_token("alice", "a", None).await.unwrap();
    let b = h.node_token("alice", "b", None).await.unwrap();
    assert!(
        h.invalid_tokens(&[&a.token_id, &b.token_id])
            .await
            .is_empty()
    );
    h.client()
        .revoke_token(pb::RevokeTokenRequest {
            token_id: b.token_id.clone(),
        })
        .await
        .unwrap();
    let invalid = h
        .invalid_tokens(&[&a.token_id, &b.token_id, "0000000000000000", &b.token_id])
        .await;
    assert_eq!(invalid, [b.token_id.clone(), "0000000000000000".to_owned()]);
    assert!(h.invalid_tokens(&[]).await.is_empty());
    h.stop().await;
}

async fn rotation_and_name_conflicts(store: Store) {
    let h = Harness::start(store).await;
    h.create_user("alice").await;
    h.create_user("bob").await;
    let first = h.node_token("alice", "web", None).await.unwrap();
    // Creating it again is refused: it would silently replace the token of a running agent.
    let again = h.node_token("alice", "web", None).await.unwrap_err();
    assert_eq!(again.code(), Code::AlreadyExists);
    for needle in ["node web already exists", "--rotate", "disconnected"] {
        assert!(
            again.message().contains(needle),
            "{needle}: {}",
            again.message()
        );
    }
    assert!(
        h.verify_node(&first.token).await.is_ok(),
        "the old token still works"
    );
    let missing = h.rotate_node_token("alice", "nope").await.unwrap_err();
    assert_eq!(missing.code(), Code::NotFound);
    assert!(
        missing.message().contains("without --rotate"),
        "{}",
        missing.message()
    );
    // Rotation, asked for, keeps the node and retires the old token.
    let second = h.rotate_node_token("alice", "web").await.unwrap();
    assert_eq!(first.node_id, second.node_id);
    assert_ne!(first.token_id, second.token_id);
    assert_eq!(
        h.verify_node(&first.token).await.unwrap_err().code(),
        Code::Unauthenticated
    );
    assert_eq!(
        h.verify_node(&second.token).await.unwrap().token_id,
        second.token_id
    );
    assert_eq!(
        h.invalid_tokens(&[&first.token_id, &second.token_id]).await,
        std::slice::from_ref(&first.token_id)
    );

    let taken = h.node_token("bob", "web", None).await.unwrap_err();
    assert_eq!(taken.code(), Code::AlreadyExists);
    let taken = h.rotate_node_token("bob", "web").await.unwrap_err();
    assert_eq!(taken.code(), Code::AlreadyExists);
    let unknown = h.node_token("ghost", "ghost-node", None).await.unwrap_err();
    assert_eq!(unknown.code(), Code::NotFound);
    assert!(unknown.message().contains("ghost"), "{}", unknown.message());
    let bad = h.node_token("alice", "Bad Name", None).await.unwrap_err();
    assert_eq!(bad.code(), Code::InvalidArgument);
    h.stop().await;
}
