//! Server-level behaviour: health and reflection answer any TLS client (here gateway-ws,
//! which may call little else), so probes and `grpcurl` can list and describe the vault API.

use crate::common::{self, Harness, raw};
use phirepass_secrets::MasterKey;
use tonic_reflection::pb::v1::ServerReflectionRequest;
use tonic_reflection::pb::v1::server_reflection_client::ServerReflectionClient;
use tonic_reflection::pb::v1::server_reflection_request::MessageRequest;
use tonic_reflection::pb::v1::server_reflection_response::MessageResponse;

#[tokio::test]
async fn health_and_reflection_need_no_token() {
    let mut h = Harness::start(common::sqlite().await, raw(&MasterKey::generate()), None).await;
    use phirepass_pki::ServiceKind;
    let id = h.pki.identity(ServiceKind::GatewayWs).unwrap();
    let channel = || phirepass_runtime::grpc::channel(&h.url, &id, ServiceKind::Secrets).unwrap();
    let status = phirepass_runtime::health::check_over(channel(), phirepass_secrets::SERVICE_NAME)
        .await
        .unwrap();
    assert_eq!(status, phirepass_runtime::health::HealthStatus::Serving);

    let request = ServerReflectionRequest {
        host: String::new(),
        message_request: Some(MessageRequest::ListServices(String::new())),
    };
    let mut responses = ServerReflectionClient::new(channel())
        .server_reflection_info(tokio_stream::once(request))
        .await
        .unwrap()
        .into_inner();
    let response = responses.message().await.unwrap().unwrap();
    let Some(MessageResponse::ListServicesResponse(list)) = response.message_response else {
        panic!("unexpected reflection response");
    };
    let names: Vec<_> = list.service.iter().map(|s| s.name.as_str()).collect();
    assert!(
        names.contains(&phirepass_secrets::SERVICE_NAME),
        "{names:?}"
    );
    h.shutdown().await;
}

/// Every row of the real allowlist: each allowed (kind, method) gets past it, every other
/// kind gets PERMISSION_DENIED (gateway-ws on ResolveHostAuth among them), a token without a
/// certificate reaches the admin surface only.
#[tokio::test]
async fn every_row_of_the_allowlist_is_enforced() {
    use phirepass_pki::{LocalPki, ServiceKind};
    use phirepass_runtime::grpc::{admin_channel, channel, probe, trust_certs};
    let pki = LocalPki::generate().unwrap();
    let config = phirepass_secrets::SecretsConfig::new(
        pki.identity(ServiceKind::Secrets).unwrap(),
        raw(&MasterKey::generate()),
    );
    let (url, _stop, _task) = common::spawn(common::sqlite().await, config).await;
    let trust = trust_certs(pki.trust_pem()).unwrap();
    let token = admin_channel(&url, &trust, ServiceKind::Secrets, "pp_api_0_nope").unwrap();
    let ids: Vec<_> = ServiceKind::SERVICES
        .iter()
        .map(|k| (*k, pki.identity(*k).unwrap()))
        .collect();
    let as_kind = |kind: ServiceKind| {
        let (_, id) = ids.iter().find(|(k, _)| *k == kind).unwrap();
        channel(&url, id, ServiceKind::Secrets).unwrap()
    };
    let policy = phirepass_secrets::policy::POLICY;
    let checked = probe::exercise(&policy, as_kind, token).await.unwrap();
    assert_eq!(checked, policy.rules.len() * 6);
}
