//! API tokens as credentials for the admin surface: scopes, revocation,
//! expiry, and the calls reserved for the service token.

use crate::common;

use std::time::Duration;

use crate::common::{Harness, Options, Stack};
use phirepass_proto::authz as pb;
use phirepass_proto::authz::authz_client::AuthzClient;
use phirepass_runtime::grpc::AuthedChannel;
use tonic::Code;

on_both_stacks!(
    scopes_gate_the_admin_surface,
    revoked_expired_and_disabled_tokens_fail
);

async fn api_token(
    h: &Harness,
    user: &str,
    scopes: &[&str],
    expires_in_secs: Option<u64>,
) -> pb::CreateApiTokenResponse {
    h.client()
        .create_api_token(pb::CreateApiTokenRequest {
            username: user.into(),
            name: "ci".into(),
            scopes: scopes.iter().map(|s| (*s).to_owned()).collect(),
            expires_in_secs,
        })
        .await
        .unwrap()
        .into_inner()
}

/// A client that sends `authorization: Bearer <api token>`.
fn as_token(h: &Harness, token: &str) -> AuthzClient<AuthedChannel> {
    h.as_token(token)
}

fn new_user(name: &str) -> pb::CreateUserRequest {
    pb::CreateUserRequest {
        username: name.into(),
        password: common::PASSWORD.into(),
    }
}

async fn scopes_gate_the_admin_surface(stack: Stack) {
    let h = Harness::on(stack, Options::default()).await;
    h.create_user("root").await;
    // Scopes are capped by the role: an admin's tokens (see token_roles).
    h.set_admin("root", true).await;
    let read = api_token(&h, "root", &["read"], None).await;
    let admin = api_token(&h, "root", &["admin"], Some(3600)).await;
    assert!(read.token.starts_with("pp_api_"));
    assert!(admin.expires_at.is_some());

    let mut r = as_token(&h, &read.token);
    assert!(r.list_users(pb::ListUsersRequest {}).await.is_ok());
    assert!(
        r.list_targets(pb::ListTargetsRequest {
            kind: None,
            ..Default::default()
        })
        .await
        .is_ok()
    );
    assert!(
        r.list_grants(pb::ListGrantsRequest::default())
            .await
            .is_ok()
    );
    let err = r.create_user(new_user("eve")).await.unwrap_err();
    assert_eq!(err.code(), Code::PermissionDenied);

    let mut a = as_token(&h, &admin.token);
    a.create_user(new_user("bob")).await.unwrap();
    a.create_group(pb::CreateGroupRequest { name: "ops".into() })
        .await
        .unwrap();
    assert_eq!(
        a.count_users(pb::CountUsersRequest {})
            .await
            .unwrap()
            .into_inner()
            .count,
        2
    );
    // Edge-facing calls stay with services: a token without a certificate is unauthenticated.
    for err in [
        a.login(pb::LoginRequest {
            username: "bob".into(),
            password: common::PASSWORD.into(),
            client_ip: None,
        })
        .await
        .unwrap_err(),
        a.authorize(pb::AuthorizeRequest {
            username: "bob".into(),
            target: "x".into(),
            action: "ssh".into(),
            ..Default::default()
        })
        .await
        .unwrap_err(),
    ] {
        assert_eq!(err.code(), Code::Unauthenticated);
    }

    // The service verifies a token for other services.
    let v = h
        .client()
        .verify_api_token(pb::VerifyApiTokenRequest {
            token: read.token.clone(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(v.user.unwrap().username, "root");
    assert_eq!(v.scopes, vec!["read".to_owned()]);

    // Listed beside node tokens, with their kind.
    h.node_token("root", "web", None).await.unwrap();
    let tokens = r
        .list_tokens(pb::ListTokensRequest { username: None })
        .await
        .unwrap()
        .into_inner()
        .tokens;
    let mut kinds: Vec<_> = tokens
        .iter()
        .map(|t| (t.kind.as_str(), t.name.as_str()))
        .collect();
    kinds.sort_unstable();
    assert_eq!(kinds, vec![("api", "ci"), ("api", "ci"), ("node", "web")]);

    for scopes in [vec![], vec!["root".to_owned()]] {
        let err = h
            .client()
            .create_api_token(pb::CreateApiTokenRequest {
                username: "root".into(),
                name: "x".into(),
                scopes,
                expires_in_secs: None,
            })
            .await
            .unwrap_err();
        assert_eq!(err.code(), Code::InvalidArgument);
    }
    // Garbage shaped like an API token, and a node token, are refused.
    let fake = format!("pp_api_{}_{}", "0".repeat(16), "0".repeat(64));
    let err = as_token(&h, &fake)
        .list_users(pb::ListUsersRequest {})
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::Unauthenticated);
    h.stop().await;
}

async fn revoked_expired_and_disabled_tokens_fail(stack: Stack) {
    let h = Harness::on(stack, Options::default()).await;
    h.create_user("root").await;
    h.create_user("temp").await;
    h.set_admin("root", true).await;
    h.set_admin("temp", true).await;
    let revoked = api_token(&h, "root", &["admin"], None).await;
    let expiring = api_token(&h, "root", &["read"], Some(1)).await;
    let disabled = api_token(&h, "temp", &["read"], None).await;

    let mut c = as_token(&h, &revoked.token);
    assert!(c.list_users(pb::ListUsersRequest {}).await.is_ok());
    h.client()
        .revoke_token(pb::RevokeTokenRequest {
            token_id: revoked.token_id.clone(),
        })
        .await
        .unwrap();
    let err = c.list_users(pb::ListUsersRequest {}).await.unwrap_err();
    assert_eq!(err.code(), Code::Unauthenticated);

    let mut c = as_token(&h, &disabled.token);
    assert!(c.list_users(pb::ListUsersRequest {}).await.is_ok());
    h.client()
        .set_user_disabled(pb::SetUserDisabledRequest {
            username: "temp".into(),
            disabled: true,
        })
        .await
        .unwrap();
    let err = c.list_users(pb::ListUsersRequest {}).await.unwrap_err();
    assert_eq!(err.code(), Code::Unauthenticated);

    tokio::time::sleep(common::until(expiring.expires_at.unwrap()) + Duration::from_millis(100))
        .await;
    let err = as_token(&h, &expiring.token)
        .list_users(pb::ListUsersRequest {})
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::Unauthenticated);
    h.stop().await;
}
