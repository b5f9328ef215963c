//! One gRPC server bootstrap for every Phirepass service: the service's own
//! routes (already wrapped in its auth interceptor), plus unauthenticated
//! health and reflection, served until `shutdown` resolves and then drained
//! by tonic's graceful shutdown.

use std::future::Future;

use tokio::net::TcpListener;
use tonic::service::Routes;
use tonic::transport::Server;

use super::GrpcError;

/// What a service hands to [`serve`]: its name (for health and reflection)
/// and its routes, e.g. `Routes::new(MyServer::with_interceptor(..))`.
pub struct GrpcService {
    /// The fully qualified gRPC service name, e.g. `phirepass.authz.v1.Authz`.
    pub name: &'static str,
    pub routes: Routes,
}

/// Serves `service`, `grpc.health.v1.Health` (reporting `SERVING` for the
/// server and for `service.name`) and reflection over the Phirepass file
/// descriptor set on `listener` until `shutdown` resolves.
pub async fn serve(
    service: GrpcService,
    descriptors: &[u8],
    listener: TcpListener,
    shutdown: impl Future<Output = ()>,
) -> Result<(), GrpcError> {
    let (_reporter, health) = crate::health::reporter_for(service.name).await;
    let reflection = tonic_reflection::server::Builder::configure()
        .register_encoded_file_descriptor_set(descriptors)
        .with_service_name(service.name)
        .build_v1()?;
    let routes = service.routes.add_service(health).add_service(reflection);
    tracing::info!(service = service.name, addr = ?listener.local_addr().ok(), "grpc serving");
    Server::builder()
        .add_routes(routes)
        .serve_with_incoming_shutdown(super::incoming(listener), shutdown)
        .await?;
    tracing::info!(service = service.name, "grpc stopped");
    Ok(())
}
