//! `phirepass-ssh-edge`: the SSH front door of Phirepass.
//!
//! **Today this crate serves only gRPC health** (`grpc.health.v1.Health`,
//! `SERVING` for [`SERVICE_NAME`]) so deployments can wire and probe it. It
//! accepts no SSH connections yet. Later issues add, on their own listener:
//! the russh server with the bastion relay (`user:target@`), the management
//! TUI (`user@`) and `ssh -R` tunnels, all carried over TunnelStreams.
#![forbid(unsafe_code)]

use std::future::Future;
use std::net::SocketAddr;

use phirepass_runtime::config::{ConfigError, env_or};
use phirepass_runtime::grpc::GrpcError;
use tokio::net::TcpListener;

/// The name the health service reports as `SERVING`.
pub const SERVICE_NAME: &str = "phirepass-ssh-edge";
/// Environment variable for the health listener address.
pub const HEALTH_ADDR_VAR: &str = "SSH_EDGE_HEALTH_ADDR";
/// Default health listener address.
pub const DEFAULT_HEALTH_ADDR: &str = "127.0.0.1:50054";

/// Errors of the ssh-edge service.
#[derive(Debug, thiserror::Error)]
pub enum SshEdgeError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error(transparent)]
    Grpc(#[from] GrpcError),
}

/// ssh-edge settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SshEdgeConfig {
    /// Where the gRPC health service listens (`SSH_EDGE_HEALTH_ADDR`).
    pub health_addr: SocketAddr,
}

impl Default for SshEdgeConfig {
    fn default() -> Self {
        Self {
            health_addr: SocketAddr::from(([127, 0, 0, 1], 50054)),
        }
    }
}

impl SshEdgeConfig {
    /// Reads the configuration from the environment.
    pub fn from_env() -> Result<Self, SshEdgeError> {
        Ok(Self {
            health_addr: env_or(HEALTH_ADDR_VAR, Self::default().health_addr)?,
        })
    }
}

/// What ssh-edge needs from the rest of the system. Empty for now; later
/// issues add the bus, the authz and secrets clients and the host key.
#[derive(Debug, Clone, Default)]
#[non_exhaustive]
pub struct SshEdgeDeps {}

/// Serves ssh-edge on the given listener until `shutdown` resolves.
/// Currently only the health service (see the crate docs).
pub async fn serve(
    config: SshEdgeConfig,
    health_listener: TcpListener,
    deps: SshEdgeDeps,
    shutdown: impl Future<Output = ()>,
) -> Result<(), SshEdgeError> {
    let SshEdgeDeps {} = deps;
    tracing::debug!(health_addr = %config.health_addr, "ssh-edge starting (health only)");
    phirepass_runtime::health::serve_health_only(SERVICE_NAME, health_listener, shutdown).await?;
    Ok(())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn default_health_addr_matches_the_documented_one() {
        let parsed: SocketAddr = DEFAULT_HEALTH_ADDR.parse().unwrap();
        assert_eq!(SshEdgeConfig::default().health_addr, parsed);
    }
}
