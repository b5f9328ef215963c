//! Server-level behaviour: mutual TLS and the allowlist at the door, health, reflection,
//! login lockout, clean shutdown.

use crate::common;
use crate::common::{Harness, PASSWORD};
use phirepass_pki::{Ca, IssueOptions, LocalPki, ServiceKind};
use phirepass_proto::authz as pb;
use phirepass_proto::authz::authz_client::AuthzClient;
use phirepass_runtime::grpc::{AuthedChannel, channel};
use tonic::Code;
use tonic::transport::Endpoint;

async fn count(client: AuthzClient<AuthedChannel>) -> Result<u64, tonic::Status> {
    let mut client = client;
    Ok(client
        .count_users(pb::CountUsersRequest {})
        .await?
        .into_inner()
        .count)
}

#[tokio::test]
async fn plaintext_other_ca_and_expired_certificates_are_refused() {
    let h = Harness::start(common::sqlite().await).await;

    // Plaintext h2: the TLS layer never gets a ClientHello, so no call completes.
    let plain = h.url.replacen("https://", "http://", 1);
    let raw = Endpoint::from_shared(plain).unwrap().connect().await;
    if let Ok(raw) = raw {
        let err = AuthzClient::new(raw)
            .count_users(pb::CountUsersRequest {})
            .await
            .unwrap_err();
        // A transport failure (h2 reads a TLS alert), never an answer from the service.
        assert!(std::error::Error::source(&err).is_some(), "{err:?}");
    }

    // A client certificate from another CA (the client trusts ours): the server refuses it.
    let stranger = LocalPki::generate().unwrap();
    let issued = stranger
        .ca()
        .issue(ServiceKind::GatewayWs, &IssueOptions::default())
        .unwrap();
    let stranger = phirepass_pki::Identity::from_pem(
        ServiceKind::GatewayWs,
        &issued.cert_pem,
        &issued.key_pem,
        h.pki.trust_pem(),
    )
    .unwrap();
    let other = channel(&h.url, &stranger, ServiceKind::Authz).unwrap();
    let err = count(AuthzClient::new(other)).await.unwrap_err();
    refused_by_tls(&err);

    // Our CA, but expired.
    let expired = expired_identity(h.pki.ca(), h.pki.trust_pem(), ServiceKind::GatewayWs);
    let err = count(AuthzClient::new(
        channel(&h.url, &expired, ServiceKind::Authz).unwrap(),
    ))
    .await
    .unwrap_err();
    refused_by_tls(&err);
    assert!(format!("{err:?}").contains("CertificateExpired"), "{err:?}");

    // The same kind, valid: the allowlist lets gateway-ws count users.
    assert!(count(h.as_service(ServiceKind::GatewayWs)).await.is_ok());
    h.stop().await;
}

/// The server ended the handshake with an alert: a transport error, no gRPC answer.
fn refused_by_tls(err: &tonic::Status) {
    assert!(std::error::Error::source(err).is_some(), "{err:?}");
    assert!(format!("{err:?}").contains("alert"), "{err:?}");
}

fn expired_identity(ca: &Ca, trust: &str, kind: ServiceKind) -> phirepass_pki::Identity {
    let now = time::OffsetDateTime::now_utc();
    let issued = ca
        .issue(
            kind,
            &IssueOptions {
                not_before: Some(now - time::Duration::days(2)),
                not_after: Some(now - time::Duration::days(1)),
                ..IssueOptions::default()
            },
        )
        .unwrap();
    phirepass_pki::Identity::from_pem(kind, &issued.cert_pem, &issued.key_pem, trust).unwrap()
}

#[tokio::test]
async fn the_allowlist_refuses_kinds_and_anonymous_callers() {
    let h = Harness::start(common::sqlite().await).await;
    // ssh-edge never counts users: PERMISSION_DENIED naming the kind and method.
    let err = count(h.as_service(ServiceKind::SshEdge)).await.unwrap_err();
    assert_eq!(err.code(), Code::PermissionDenied);
    assert_eq!(err.message(), "ssh-edge may not call CountUsers");
    // gateway-ws may not create users, even though it may list them.
    let err = h
        .as_service(ServiceKind::GatewayWs)
        .create_user(pb::CreateUserRequest {
            username: "mallory".into(),
            password: PASSWORD.into(),
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::PermissionDenied, "{err:?}");
    // A well-formed but unknown API token without a certificate: past the allowlist (admin
    // methods take tokens), refused by authz itself.
    let err = count(h.as_token("pp_api_0000000000000000_nope"))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::Unauthenticated);
    // A service method with a token and no certificate: the token does not open it.
    let err = h
        .as_token("pp_api_0000000000000000_nope")
        .authorize(pb::AuthorizeRequest::default())
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::Unauthenticated);
    assert!(err.message().contains("client certificate"), "{err:?}");
    h.stop().await;
}

#[tokio::test]
async fn health_and_reflection_need_only_tls() {
    use tonic_reflection::pb::v1::ServerReflectionRequest;
    use tonic_reflection::pb::v1::server_reflection_client::ServerReflectionClient;
    use tonic_reflection::pb::v1::server_reflection_request::MessageRequest;
    use tonic_reflection::pb::v1::server_reflection_response::MessageResponse;

    let h = Harness::start(common::sqlite().await).await;
    // ssh-edge may call no method that reflection or health serves, and still gets both.
    let id = h.pki.identity(ServiceKind::SshEdge).unwrap();
    let tls = || channel(&h.url, &id, ServiceKind::Authz).unwrap();
    let status = phirepass_runtime::health::check_over(tls(), phirepass_authz::SERVICE_NAME)
        .await
        .unwrap();
    assert_eq!(status, phirepass_runtime::health::HealthStatus::Serving);

    let request = ServerReflectionRequest {
        host: String::new(),
        message_request: Some(MessageRequest::ListServices(String::new())),
    };
    let mut responses = ServerReflectionClient::new(tls())
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

/// Every row of the real allowlist: each allowed (kind, method) gets past it, every other
/// kind gets PERMISSION_DENIED, a token without a certificate reaches admin methods only.
#[tokio::test]
async fn every_row_of_the_allowlist_is_enforced() {
    use phirepass_runtime::grpc::{admin_channel, probe, trust_certs};
    let pki = LocalPki::generate().unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("https://{}", listener.local_addr().unwrap());
    let store = common::sqlite().await;
    let config = phirepass_authz::AuthzConfig {
        issue_setup_code: false,
        ..phirepass_authz::AuthzConfig::new(pki.identity(ServiceKind::Authz).unwrap())
    };
    let deps = phirepass_authz::AuthzDeps::new(
        store,
        std::sync::Arc::new(phirepass_presence::MemoryPresence::new()),
    );
    tokio::spawn(phirepass_authz::serve(
        config,
        listener,
        deps,
        std::future::pending(),
    ));
    let trust = trust_certs(pki.trust_pem()).unwrap();
    let token = admin_channel(&url, &trust, ServiceKind::Authz, "pp_api_0_nope").unwrap();
    let ids: Vec<_> = ServiceKind::SERVICES
        .iter()
        .map(|k| (*k, pki.identity(*k).unwrap()))
        .collect();
    let as_kind = |kind: ServiceKind| {
        let (_, id) = ids.iter().find(|(k, _)| *k == kind).unwrap();
        channel(&url, id, ServiceKind::Authz).unwrap()
    };
    let policy = phirepass_authz::policy::POLICY;
    let checked = probe::exercise(&policy, as_kind, token).await.unwrap();
    assert_eq!(checked, policy.rules.len() * 6);
}

/// Authorize latency over mutual TLS (gateway-ws's certificate, a warm channel), p50/p99 of
/// 2000 calls: `cargo nextest run -p phirepass-authz -E 'test(authorize_latency)' --run-ignored
/// only --no-capture`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "a measurement, not a check"]
async fn authorize_latency_over_mtls() {
    let h = Harness::start(common::sqlite().await).await;
    h.create_user("alice").await;
    let mut client = h.as_service(ServiceKind::GatewayWs);
    let request = || pb::AuthorizeRequest {
        username: "alice".into(),
        target: "web".into(),
        action: "ssh".into(),
        ..Default::default()
    };
    for _ in 0..200 {
        let _ = client.authorize(request()).await;
    }
    let mut took = Vec::with_capacity(2000);
    for _ in 0..2000 {
        let start = std::time::Instant::now();
        let _ = client.authorize(request()).await;
        took.push(start.elapsed());
    }
    took.sort();
    println!(
        "authorize over mtls: p50 {:?} p99 {:?}",
        took[took.len() / 2],
        took[took.len() * 99 / 100]
    );
    h.stop().await;
}
