//! gRPC health serving shared by services.

use std::future::Future;

use tokio::net::TcpListener;
use tonic::transport::Server;
use tonic_health::ServingStatus;
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_client::HealthClient;
use tonic_health::server::HealthReporter;

/// The status a health check reports.
pub use tonic_health::pb::health_check_response::ServingStatus as HealthStatus;

use crate::grpc::GrpcError;

/// A health service reporting `SERVING` for `""` (the whole server) and for
/// `service_name`. Add the returned server to a tonic router; keep the
/// reporter to flip the status later.
pub async fn reporter_for(
    service_name: &str,
) -> (
    HealthReporter,
    tonic_health::pb::health_server::HealthServer<impl tonic_health::pb::health_server::Health>,
) {
    let (reporter, server) = tonic_health::server::health_reporter();
    reporter
        .set_service_status("", ServingStatus::Serving)
        .await;
    reporter
        .set_service_status(service_name, ServingStatus::Serving)
        .await;
    (reporter, server)
}

/// Serves only `grpc.health.v1.Health` (and reflection describing it) on
/// `listener` until `shutdown` resolves. Health checks are unauthenticated so
/// probes need no token.
pub async fn serve_health_only(
    service_name: &str,
    listener: TcpListener,
    shutdown: impl Future<Output = ()>,
) -> Result<(), GrpcError> {
    let (_reporter, health) = reporter_for(service_name).await;
    let reflection = tonic_reflection::server::Builder::configure()
        .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
        .build_v1()?;
    let addr = listener.local_addr().ok();
    tracing::info!(service = service_name, addr = ?addr, "serving grpc health");
    Server::builder()
        .add_service(health)
        .add_service(reflection)
        .serve_with_incoming_shutdown(crate::grpc::incoming(listener), shutdown)
        .await?;
    Ok(())
}

/// Asks the health service behind `channel` (a TLS channel to a service, see
/// [`crate::grpc::channel`]) for the status of `service_name`.
pub async fn check_over(
    channel: crate::grpc::AuthedChannel,
    service_name: &str,
) -> Result<HealthStatus, GrpcError> {
    let reply = HealthClient::new(channel)
        .check(HealthCheckRequest {
            service: service_name.to_owned(),
        })
        .await?;
    Ok(reply.into_inner().status())
}

/// Asks the plaintext health service at `url` (e.g. `http://127.0.0.1:50053`) for the
/// status of `service_name` (`""` for the whole server). For probes and tests.
pub async fn check(url: &str, service_name: &str) -> Result<HealthStatus, GrpcError> {
    let endpoint = tonic::transport::Endpoint::from_shared(url.to_owned()).map_err(|e| {
        GrpcError::InvalidUrl {
            url: url.to_owned(),
            reason: e.to_string(),
        }
    })?;
    let mut client = HealthClient::new(endpoint.connect().await?);
    let reply = client
        .check(HealthCheckRequest {
            service: service_name.to_owned(),
        })
        .await?;
    Ok(reply.into_inner().status())
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn answers_serving_for_its_name_and_unknown_for_others() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
        let server = tokio::spawn(serve_health_only("phirepass-test", listener, async {
            let _ = stop_rx.await;
        }));

        let url = format!("http://{addr}");
        assert_eq!(
            check(&url, "phirepass-test").await.unwrap(),
            HealthStatus::Serving
        );
        assert_eq!(check(&url, "").await.unwrap(), HealthStatus::Serving);
        let err = check(&url, "other").await.unwrap_err();
        assert!(matches!(err, GrpcError::Status(s) if s.code() == tonic::Code::NotFound));

        let _ = stop_tx.send(());
        server.await.unwrap().unwrap();
    }
}
