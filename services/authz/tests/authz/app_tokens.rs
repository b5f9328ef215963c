//! App tokens (one node's port through the HTTP proxy): scope checks,
//! expiry, forgery, a revoke applying to the next verify, and refresh near
//! expiry. On PostgreSQL + Redis + NATS and on SQLite + memory.

use std::time::Duration;

use crate::common::{Harness, Options, Stack};
use phirepass_proto::authz as pb;
use tonic::Code;

on_both_stacks!(
    tokens_are_scoped_to_one_node_and_port,
    create_checks_the_grant,
    revoked_grant_denies_the_next_verify,
    short_ttl_expires_and_refreshes,
);

async fn create(
    h: &Harness,
    user_id: &str,
    node: &str,
    port: u32,
) -> Result<pb::AppToken, tonic::Status> {
    h.client()
        .create_app_token(pb::CreateAppTokenRequest {
            user_id: user_id.into(),
            node: node.into(),
            port,
            client_ip: Some("192.0.2.7".into()),
        })
        .await
        .map(tonic::Response::into_inner)
}

async fn verify(
    h: &Harness,
    token: &str,
    node: &str,
    port: u32,
) -> Result<pb::VerifyAppTokenResponse, tonic::Status> {
    h.client()
        .verify_app_token(pb::VerifyAppTokenRequest {
            token: token.into(),
            node: node.into(),
            port,
            client_ip: None,
        })
        .await
        .map(tonic::Response::into_inner)
}

async fn tokens_are_scoped_to_one_node_and_port(stack: Stack) {
    let h = Harness::on(stack, Options::default()).await;
    let alice = h.create_user("alice").await;
    let web = h.node_token("alice", "web", None).await.unwrap();
    h.node_token("alice", "db", None).await.unwrap();

    let t = create(&h, &alice.id, "web", 8080).await.unwrap();
    assert!(t.token.starts_with("pp_app_"));
    assert_eq!(t.token.len(), "pp_app_".len() + 43);
    assert_eq!(
        (t.node_id.as_str(), t.node_name.as_str(), t.port),
        (web.node_id.as_str(), "web", 8080)
    );

    // By name or by id: the same node.
    let ok = verify(&h, &t.token, "web", 8080).await.unwrap();
    assert_eq!(
        (ok.user_id.as_str(), ok.username.as_str()),
        (alice.id.as_str(), "alice")
    );
    assert_eq!(ok.node_id, web.node_id);
    assert!(ok.refreshed.is_none(), "15 minutes left: no refresh");
    verify(&h, &t.token, &web.node_id, 8080).await.unwrap();

    // Port A's token on port B, another node, an unknown node, forged tokens.
    for (token, node, port) in [
        (t.token.as_str(), "web", 8081),
        (t.token.as_str(), "db", 8080),
        (t.token.as_str(), "nope", 8080),
        (t.token.as_str(), "", 8080),
        (
            "pp_app_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
            "web",
            8080,
        ),
        ("pp_app_short", "web", 8080),
        ("", "web", 8080),
    ] {
        let e = verify(&h, token, node, port).await.unwrap_err();
        assert_eq!(e.code(), Code::Unauthenticated, "{node}:{port}");
        assert_eq!(e.message(), "invalid credentials");
    }
    // Unknown node and bad port at creation.
    assert_eq!(
        create(&h, &alice.id, "nope", 80).await.unwrap_err().code(),
        Code::NotFound
    );
    assert_eq!(
        create(&h, &alice.id, "web", 0).await.unwrap_err().code(),
        Code::InvalidArgument
    );
    assert_eq!(
        create(&h, &alice.id, "web", 70_000)
            .await
            .unwrap_err()
            .code(),
        Code::InvalidArgument
    );
    h.stop().await;
}

async fn create_checks_the_grant(stack: Stack) {
    let h = Harness::on(stack, Options::default()).await;
    h.create_user("alice").await;
    let bob = h.create_user("bob").await;
    h.node_token("alice", "web", None).await.unwrap();
    assert_eq!(
        create(&h, &bob.id, "web", 80).await.unwrap_err().code(),
        Code::PermissionDenied
    );
    h.client()
        .grant(pb::GrantRequest {
            principal_kind: pb::PrincipalKind::User.into(),
            principal: "bob".into(),
            target: "web".into(),
            ..Default::default()
        })
        .await
        .unwrap();
    let t = create(&h, &bob.id, "web", 80).await.unwrap();
    assert_eq!(
        verify(&h, &t.token, "web", 80).await.unwrap().username,
        "bob"
    );
    // Audited as an "http" decision.
    assert!(
        h.audit_events()
            .await
            .iter()
            .any(|e| e["kind"] == "authorize"
                && e["action"] == "http"
                && e["username"] == "bob"
                && e["allowed"] == true)
    );
    h.stop().await;
}

async fn revoked_grant_denies_the_next_verify(stack: Stack) {
    let h = Harness::on(stack, Options::default()).await;
    h.create_user("alice").await;
    let bob = h.create_user("bob").await;
    h.node_token("alice", "web", None).await.unwrap();
    let mut c = h.client();
    let grant = pb::GrantRequest {
        principal_kind: pb::PrincipalKind::User.into(),
        principal: "bob".into(),
        target: "web".into(),
        ..Default::default()
    };
    c.grant(grant.clone()).await.unwrap();
    let t = create(&h, &bob.id, "web", 3000).await.unwrap();
    // Cached "allowed" from these verifies must not survive the revoke.
    verify(&h, &t.token, "web", 3000).await.unwrap();
    verify(&h, &t.token, "web", 3000).await.unwrap();
    c.revoke(pb::RevokeRequest {
        principal_kind: grant.principal_kind,
        principal: grant.principal,
        target: grant.target,
        ..Default::default()
    })
    .await
    .unwrap();
    assert_eq!(
        verify(&h, &t.token, "web", 3000).await.unwrap_err().code(),
        Code::PermissionDenied
    );
    h.stop().await;
}

async fn short_ttl_expires_and_refreshes(stack: Stack) {
    // A third of 3 s is under 5 minutes: tokens refresh in their last second.
    let options = Options {
        app_token_ttl: Duration::from_secs(3),
        ..Options::default()
    };
    let h = Harness::on(stack, options).await;
    let alice = h.create_user("alice").await;
    h.node_token("alice", "web", None).await.unwrap();
    let t = create(&h, &alice.id, "web", 80).await.unwrap();
    let fresh = verify(&h, &t.token, "web", 80).await.unwrap();
    assert!(fresh.refreshed.is_none());

    tokio::time::sleep(Duration::from_millis(2300)).await;
    let near = verify(&h, &t.token, "web", 80).await.unwrap();
    let r = near.refreshed.expect("refreshed near expiry");
    assert_ne!(r.token, t.token);
    assert_eq!((r.node_name.as_str(), r.port), ("web", 80));
    assert!(r.expires_at > t.expires_at);

    tokio::time::sleep(Duration::from_millis(1200)).await;
    assert_eq!(
        verify(&h, &t.token, "web", 80).await.unwrap_err().code(),
        Code::Unauthenticated
    );
    verify(&h, &r.token, "web", 80).await.unwrap();
    // The refreshed token keeps the scope.
    assert_eq!(
        verify(&h, &r.token, "web", 81).await.unwrap_err().code(),
        Code::Unauthenticated
    );
    h.stop().await;
}
