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
