//! Users, login and sessions over real gRPC, on a fresh PostgreSQL
//! database and on SQLite.

use crate::common;

use std::time::Duration;

use crate::common::{Harness, PASSWORD};
use phirepass_proto::authz as pb;
use tonic::Code;

phirepass_store::on_both_stores!(
    users_create_list_count,
    login_success_and_uniform_failures,
    sessions_verify_logout_and_expire,
    disabled_user_loses_access,
);

use phirepass_store::Store;

async fn users_create_list_count(store: Store) {
    let h = Harness::start(store).await;
    let mut c = h.client();
    assert_eq!(
        c.count_users(pb::CountUsersRequest {})
            .await
            .unwrap()
            .into_inner()
            .count,
        0
    );
    let alice = h.create_user("alice").await;
    assert_eq!(alice.username, "alice");
    assert_eq!(alice.id.len(), 32);
    assert!(!alice.disabled);
    h.create_user("bob").await;

    let dup = c
        .create_user(pb::CreateUserRequest {
            username: "alice".into(),
            password: PASSWORD.into(),
        })
        .await
        .unwrap_err();
    assert_eq!(dup.code(), Code::AlreadyExists);
    let bad = c
        .create_user(pb::CreateUserRequest {
            username: "Alice!".into(),
            password: PASSWORD.into(),
        })
        .await
        .unwrap_err();
    assert_eq!(bad.code(), Code::InvalidArgument);
    let short = c
        .create_user(pb::CreateUserRequest {
            username: "carol".into(),
            password: "short".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(short.code(), Code::InvalidArgument);

    let users = c
        .list_users(pb::ListUsersRequest {})
        .await
        .unwrap()
        .into_inner()
        .users;
    let names: Vec<_> = users.iter().map(|u| u.username.as_str()).collect();
    assert_eq!(names, ["alice", "bob"]);
    assert_eq!(
        c.count_users(pb::CountUsersRequest {})
            .await
            .unwrap()
            .into_inner()
            .count,
        2
    );
    h.stop().await;
}

async fn login_success_and_uniform_failures(store: Store) {
    let h = Harness::start(store).await;
    let alice = h.create_user("alice").await;

    let ok = h.login("alice", PASSWORD).await.unwrap();
    assert!(ok.session_token.starts_with("pp_sess_"));
    assert_eq!(ok.user.as_ref().unwrap().id, alice.id);
    assert!(ok.expires_at > phirepass_store::now_millis());

    let wrong = h.login("alice", "wrong password").await.unwrap_err();
    let unknown = h.login("nobody", PASSWORD).await.unwrap_err();
    let malformed = h.login("NOT VALID", PASSWORD).await.unwrap_err();
    for err in [&wrong, &unknown, &malformed] {
        assert_eq!(err.code(), Code::Unauthenticated);
        assert_eq!(
            err.message(),
            wrong.message(),
            "one message for every failure"
        );
    }
    h.stop().await;
}

async fn sessions_verify_logout_and_expire(store: Store) {
    let h = Harness::start_with_ttl(store, Duration::from_secs(3)).await;
    let alice = h.create_user("alice").await;
    let mut c = h.client();
    let verify = |token: String| {
        let mut c = h.client();
        async move {
            c.verify_session(pb::VerifySessionRequest {
                session_token: token,
            })
            .await
        }
    };

    let s1 = h.login("alice", PASSWORD).await.unwrap().session_token;
    let s2 = h.login("alice", PASSWORD).await.unwrap();
    let (s2, s2_expires_at) = (s2.session_token, s2.expires_at);
    assert_eq!(verify(s1.clone()).await.unwrap().into_inner().id, alice.id);
    assert_eq!(
        verify("pp_sess_bogus".into()).await.unwrap_err().code(),
        Code::Unauthenticated
    );
    assert_eq!(
        verify(String::new()).await.unwrap_err().code(),
        Code::Unauthenticated
    );

    c.logout(pb::LogoutRequest {
        session_token: s1.clone(),
    })
    .await
    .unwrap();
    assert_eq!(
        verify(s1.clone()).await.unwrap_err().code(),
        Code::Unauthenticated
    );
    // Logging out twice is fine.
    c.logout(pb::LogoutRequest { session_token: s1 })
        .await
        .unwrap();

    assert!(verify(s2.clone()).await.is_ok());
    tokio::time::sleep(common::until(s2_expires_at)).await;
    assert_eq!(verify(s2).await.unwrap_err().code(), Code::Unauthenticated);
    h.stop().await;
}

async fn disabled_user_loses_access(store: Store) {
    let h = Harness::start(store).await;
    h.create_user("mallory").await;
    let session = h.login("mallory", PASSWORD).await.unwrap().session_token;
    let t = h.node_token("mallory", "box", None).await.unwrap();
    let mut c = h.client();
    let user = c
        .set_user_disabled(pb::SetUserDisabledRequest {
            username: "mallory".into(),
            disabled: true,
        })
        .await
        .unwrap()
        .into_inner();
    assert!(user.disabled);

    let login = h.login("mallory", PASSWORD).await.unwrap_err();
    assert_eq!(login.code(), Code::Unauthenticated);
    assert_eq!(
        login.message(),
        h.login("nobody", PASSWORD).await.unwrap_err().message()
    );
    let verify = c
        .verify_session(pb::VerifySessionRequest {
            session_token: session.clone(),
        })
        .await
        .unwrap_err();
    assert_eq!(verify.code(), Code::Unauthenticated);
    assert_eq!(
        h.verify_node(&t.token).await.unwrap_err().code(),
        Code::Unauthenticated
    );
    assert_eq!(
        h.invalid_tokens(&[&t.token_id]).await,
        std::slice::from_ref(&t.token_id)
    );
    let new_token = h.node_token("mallory", "box2", None).await.unwrap_err();
    assert_eq!(new_token.code(), Code::FailedPrecondition);

    c.set_user_disabled(pb::SetUserDisabledRequest {
        username: "mallory".into(),
        disabled: false,
    })
    .await
    .unwrap();
    assert!(h.verify_node(&t.token).await.is_ok());
    assert!(h.login("mallory", PASSWORD).await.is_ok());
    let ghost = c
        .set_user_disabled(pb::SetUserDisabledRequest {
            username: "ghost".into(),
            disabled: true,
        })
        .await
        .unwrap_err();
    assert_eq!(ghost.code(), Code::NotFound);
    h.stop().await;
}
