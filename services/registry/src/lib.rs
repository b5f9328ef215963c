//! `phirepass-registry`: presence of nodes, sessions and `ssh -R` tunnels
//! over gRPC.
//!
//! Entries live in the presence store (Redis, or memory in `phirepass dev`)
//! with TTLs that heartbeats refresh. Every RPC requires the service token;
//! health and reflection do not.

#![forbid(unsafe_code)]

pub mod admin;
mod config;
mod error;
mod nodes;
pub mod policy;
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
    let admin = match &config.authz_url {
        Some(url) => Some(admin::AdminTokens::new(url, &config.identity)?),
        None => None,
    };
    let registry = RegistryService::new(&config, deps)
        .with_admin_tokens(admin)
        .into_server();
    let service = GrpcService {
        name: SERVICE_NAME,
        routes: Routes::new(registry),
        policy: config.policy,
    };
    serve_grpc(
        service,
        phirepass_proto::FILE_DESCRIPTOR_SET,
        listener,
        &config.identity,
        shutdown,
    )
    .await?;
    Ok(())
}
