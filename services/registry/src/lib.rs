//! `phirepass-registry`: presence of nodes, sessions and `ssh -R` tunnels
//! over gRPC.
//!
//! Entries live in the presence store (Redis, or memory in `phirepass dev`)
//! with TTLs that heartbeats refresh. Every RPC requires the service token;
//! health and reflection do not.

#![forbid(unsafe_code)]

mod config;
mod error;
mod nodes;
mod records;
mod service;
mod state;
mod tunnels;

use std::future::Future;

use phirepass_runtime::grpc::server::{GrpcService, serve as serve_grpc};
use tokio::net::TcpListener;
use tonic::service::Routes;

pub use config::{ADDR_VAR, RegistryConfig, RegistryDeps};
pub use error::RegistryError;
pub use service::{AuthedRegistryServer, RegistryService};

/// Name reported by the health service (the gRPC service name).
pub const SERVICE_NAME: &str = "phirepass.registry.v1.Registry";

/// Serves Registry (authenticated), health and reflection on `listener`
/// until `shutdown` resolves.
#[tracing::instrument(name = "registry.serve", skip_all, fields(addr = ?listener.local_addr().ok()))]
pub async fn serve(
    config: RegistryConfig,
    listener: TcpListener,
    deps: RegistryDeps,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), RegistryError> {
    let registry = RegistryService::new(&config, deps).into_server(config.service_token);
    let service = GrpcService {
        name: SERVICE_NAME,
        routes: Routes::new(registry),
    };
    serve_grpc(
        service,
        phirepass_proto::FILE_DESCRIPTOR_SET,
        listener,
        shutdown,
    )
    .await?;
    Ok(())
}
