//! Server-level behaviour: service-token enforcement, health, reflection,
//! login lockout, clean shutdown.

use crate::common;
use crate::common::{Harness, PASSWORD};
use phirepass_proto::authz as pb;
use phirepass_proto::authz::authz_client::AuthzClient;
use phirepass_runtime::grpc::{ServiceToken, channel};
use tonic::Code;
use tonic::transport::Endpoint;

#[tokio::test]
async fn calls_without_or_with_wrong_service_token_are_refused() {
    let h = Harness::start(common::sqlite().await).await;

    let raw = Endpoint::from_shared(h.url.clone())
        .unwrap()
        .connect()
        .await
        .unwrap();
    let err = AuthzClient::new(raw)
        .count_users(pb::CountUsersRequest {})
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::Unauthenticated);

    let wrong = channel(&h.url, ServiceToken::new("not-the-token".into())).unwrap();
    let err = AuthzClient::new(wrong)
        .count_users(pb::CountUsersRequest {})
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::Unauthenticated);

    // The right token works.
    assert!(
        h.client()
            .count_users(pb::CountUsersRequest {})
            .await
            .is_ok()
    );
    h.stop().await;
}

#[tokio::test]
async fn health_and_reflection_need_no_token() {
    use tonic_reflection::pb::v1::ServerReflectionRequest;
    use tonic_reflection::pb::v1::server_reflection_client::ServerReflectionClient;
    use tonic_reflection::pb::v1::server_reflection_request::MessageRequest;
    use tonic_reflection::pb::v1::server_reflection_response::MessageResponse;

    let h = Harness::start(common::sqlite().await).await;
    let status = phirepass_runtime::health::check(&h.url, phirepass_authz::SERVICE_NAME)
        .await
        .unwrap();
    assert_eq!(status, phirepass_runtime::health::HealthStatus::Serving);

    let raw = Endpoint::from_shared(h.url.clone())
        .unwrap()
        .connect()
        .await
        .unwrap();
    let request = ServerReflectionRequest {
        host: String::new(),
        message_request: Some(MessageRequest::ListServices(String::new())),
    };
    let mut responses = ServerReflectionClient::new(raw)
        .server_reflection_info(tokio_stream::once(request))
        .await
        .unwrap()
        .into_inner();
    let response = responses.message().await.unwrap().unwrap();
    let Some(MessageResponse::ListServicesResponse(list)) = response.message_response else {
        panic!("unexpected reflection response");
    };
    let names: Vec<_> = list.service.iter().map(|s| s.name.as_str()).collect();
    assert!(names.contains(&phirepass_authz::SERVICE_NAME), "{names:?}");
    assert!(!names.iter().any(|n| n.contains("registry")), "{names:?}");
    h.stop().await;
}

#[tokio::test]
async fn repeated_login_failures_lock_the_username() {
    let h = Harness::start(common::sqlite().await).await;
    h.create_user("alice").await;
    // The default limit: 5 failures in a minute.
    for _ in 0..5 {
        let err = h.login("alice", "wrong password").await.unwrap_err();
        assert_eq!(err.code(), Code::Unauthenticated);
    }
    // Locked: even the right password is refused for the window.
    let err = h.login("alice", PASSWORD).await.unwrap_err();
    assert_eq!(err.code(), Code::ResourceExhausted);
    // Other users are unaffected.
    h.create_user("bob").await;
    assert!(h.login("bob", PASSWORD).await.is_ok());
    h.stop().await;
}

#[tokio::test]
async fn unknown_user_login_costs_a_password_hash() {
    // The dummy-hash path must do real Argon2 work: compare with a known
    // user's wrong-password path, allowing generous scheduling noise.
    let h = Harness::start(common::sqlite().await).await;
    h.create_user("alice").await;
    let time = |user: &'static str| {
        let h = &h;
        async move {
            let start = std::time::Instant::now();
            let _ = h.login(user, "wrong password").await;
            start.elapsed()
        }
    };
    let _warm = time("alice").await;
    let known = time("alice").await;
    let unknown = time("nobody").await;
    assert!(
        unknown * 3 > known,
        "unknown {unknown:?} vs known {known:?}"
    );
    h.stop().await;
}

#[tokio::test]
async fn serve_works_on_a_sqlite_file() {
    let path = std::env::temp_dir().join(format!("pp-authz-{}.db", phirepass_store::new_id()));
    let url = format!("sqlite://{}?mode=rwc", path.display());
    let store = phirepass_store::Store::connect(&url).await.unwrap();
    let h = Harness::start(store).await;
    h.create_user("alice").await;
    let t = h.node_token("alice", "n1", None).await.unwrap();
    assert!(h.verify_node(&t.token).await.is_ok());
    h.stop().await;
    let _ = std::fs::remove_file(path);
}
