//! One gRPC server bootstrap for every Phirepass service: mutual TLS (clients may come without
//! a certificate, e.g. the admin CLI with an API token), the service's [`Policy`] in front of
//! its routes, plus health and reflection, served until `shutdown` resolves and then drained by
//! tonic's graceful shutdown.

use std::future::Future;

use phirepass_pki::{ClientAuth, Identity};
use tokio::net::TcpListener;
use tonic::service::Routes;
use tonic::transport::Server;

use super::policy::{Policy, PolicyLayer};
use super::{GrpcError, tls};

/// What a service hands to [`serve`]: its name (for health and reflection), its routes, e.g.
/// `Routes::new(MyServer::with_interceptor(..))`, and who may call which of its methods.
pub struct GrpcService {
    /// The fully qualified gRPC service name, e.g. `phirepass.authz.v1.Authz`.
    pub name: &'static str,
    pub routes: Routes,
    pub policy: Policy,
}

/// Serves `service`, `grpc.health.v1.Health` (reporting `SERVING` for the server and for
/// `service.name`) and reflection over the Phirepass file descriptor set on `listener`, TLS 1.3
/// with `identity`, until `shutdown` resolves.
pub async fn serve(
    service: GrpcService,
    descriptors: &[u8],
    listener: TcpListener,
    identity: &Identity,
    shutdown: impl Future<Output = ()>,
) -> Result<(), GrpcError> {
    let config = tls::server_config(identity.server_config(ClientAuth::Optional)?);
    let (_reporter, health) = crate::health::reporter_for(service.name).await;
    let reflection = tonic_reflection::server::Builder::configure()
        .register_encoded_file_descriptor_set(descriptors)
        .with_service_name(service.name)
        .build_v1()?;
    let routes = service.routes.add_service(health).add_service(reflection);
    tracing::info!(service = service.name, addr = ?listener.local_addr().ok(), "grpc serving (mutual tls)");
    Server::builder()
        .layer(PolicyLayer::new(service.policy))
        .add_routes(routes)
        .serve_with_incoming_shutdown(tls::incoming(listener, config), shutdown)
        .await?;
    tracing::info!(service = service.name, "grpc stopped");
    Ok(())
}
