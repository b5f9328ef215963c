//! `phirepass-secrets`: the credential vault of Phirepass.
//!
//! **Today this crate serves only gRPC health** (`grpc.health.v1.Health`,
//! `SERVING` for [`SERVICE_NAME`]) so deployments can wire and probe it. It
//! stores and returns no secrets yet. Later issues add the vault API on the
//! same listener: relay credentials and host options encrypted with
//! XChaCha20-Poly1305 under a master key, online key rotation, and
//! decryption only for callers presenting the service token.
#![forbid(unsafe_code)]

use std::future::Future;
use std::net::SocketAddr;

use phirepass_runtime::config::{ConfigError, env_or};
use phirepass_runtime::grpc::GrpcError;
use tokio::net::TcpListener;

/// The name the health service reports as `SERVING`.
pub const SERVICE_NAME: &str = "phirepass-secrets";
/// Environment variable for the gRPC listener address.
pub const ADDR_VAR: &str = "SECRETS_ADDR";
/// Default gRPC listener address.
pub const DEFAULT_ADDR: &str = "127.0.0.1:50053";

/// Errors of the secrets service.
#[derive(Debug, thiserror::Error)]
pub enum SecretsError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error(transparent)]
    Grpc(#[from] GrpcError),
}

/// secrets settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SecretsConfig {
    /// Where the gRPC server listens (`SECRETS_ADDR`).
    pub addr: SocketAddr,
}

impl Default for SecretsConfig {
    fn default() -> Self {
        Self {
            addr: SocketAddr::from(([127, 0, 0, 1], 50053)),
        }
    }
}

impl SecretsConfig {
    /// Reads the configuration from the environment.
    pub fn from_env() -> Result<Self, SecretsError> {
        Ok(Self {
            addr: env_or(ADDR_VAR, Self::default().addr)?,
        })
    }
}

/// What secrets needs from the rest of the system. Empty for now; later
/// issues add the store and the master key.
#[derive(Debug, Clone, Default)]
#[non_exhaustive]
pub struct SecretsDeps {}

/// Serves the secrets gRPC server on `listener` until `shutdown` resolves.
/// Currently only the health service (see the crate docs).
pub async fn serve(
    config: SecretsConfig,
    listener: TcpListener,
    deps: SecretsDeps,
    shutdown: impl Future<Output = ()>,
) -> Result<(), SecretsError> {
    let SecretsDeps {} = deps;
    tracing::debug!(addr = %config.addr, "secrets starting (health only)");
    phirepass_runtime::health::serve_health_only(SERVICE_NAME, listener, shutdown).await?;
    Ok(())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn default_addr_matches_the_documented_one() {
        let parsed: SocketAddr = DEFAULT_ADDR.parse().unwrap();
        assert_eq!(SecretsConfig::default().addr, parsed);
    }
}
