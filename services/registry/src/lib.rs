//! `phirepass-registry`: presence of nodes, sessions and `ssh -R` tunnels
//! over gRPC.
//!
//! Entries live in the presence store (Redis, or memory in `phirepass dev`)
//! with TTLs that heartbeats refresh. Every RPC requires the service token;
//! health and reflection do not.

#![forbid(unsafe_code)]

mod error;
mod records;
mod service;
mod tunnels;

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use phirepass_bus::Bus;
use phirepass_presence::Presence;
use phirepass_runtime::grpc::ServiceToken;
use tokio::net::TcpListener;
use tonic::transport::Server;

pub use error::RegistryError;
pub use service::{AuthedRegistryServer, RegistryService};

/// Name reported by the health service (the gRPC service name).
pub const SERVICE_NAME: &str = "phirepass.registry.v1.Registry";

#[derive(Debug, Clone)]
pub struct RegistryConfig {
    pub service_token: ServiceToken,
    /// A node disappears this long after its last heartbeat (default 45 s).
    pub node_ttl: Duration,
    /// A session disappears this long after its last heartbeat (default 60 s).
    pub session_ttl: Duration,
    /// A tunnel disappears this long after its last heartbeat (default 60 s).
    pub tunnel_ttl: Duration,
    /// Bus subject prefix, for the kick subject (default `pp`).
    pub subject_prefix: String,
}

impl RegistryConfig {
    pub fn new(service_token: ServiceToken) -> Self {
        Self {
            service_token,
            node_ttl: Duration::from_secs(45),
            session_ttl: Duration::from_secs(60),
            tunnel_ttl: Duration::from_secs(60),
            subject_prefix: "pp".to_owned(),
        }
    }
}

#[derive(Clone)]
pub struct RegistryDeps {
    pub presence: Arc<dyn Presence>,
    /// Carries KickTunnel's kicks; without it KickTunnel fails with
    /// FAILED_PRECONDITION.
    pub bus: Option<Arc<dyn Bus>>,
}

/// Serves Registry (authenticated), health and reflection on `listener`
/// until `shutdown` resolves.
#[tracing::instrument(name = "registry.serve", skip_all, fields(addr = ?listener.local_addr().ok()))]
pub async fn serve(
    config: RegistryConfig,
    listener: TcpListener,
    deps: RegistryDeps,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), RegistryError> {
    let service = RegistryService::new(&config, deps);
    let (_health_reporter, health) = phirepass_runtime::health::reporter_for(SERVICE_NAME).await;
    let reflection = tonic_reflection::server::Builder::configure()
        .register_encoded_file_descriptor_set(phirepass_proto::FILE_DESCRIPTOR_SET)
        .with_service_name(SERVICE_NAME)
        .build_v1()?;
    tracing::info!("registry serving");
    Server::builder()
        .add_service(health)
        .add_service(reflection)
        .add_service(service.into_server(config.service_token))
        .serve_with_incoming_shutdown(phirepass_runtime::grpc::incoming(listener), shutdown)
        .await?;
    tracing::info!("registry stopped");
    Ok(())
}
