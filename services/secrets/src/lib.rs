//! `phirepass-secrets`: the credential vault of Phirepass.
//!
//! Relay host options and shared credentials, sealed at rest with
//! XChaCha20-Poly1305 under a master key ([`envelope`]), served over gRPC
//! (`phirepass.secrets.v1.Secrets`) over mutual TLS with health and
//! reflection. Each RPC is allowed to the service kinds [`policy::POLICY`]
//! names (the edges) and, on the admin surface, to an API token or the
//! optional admin token. Only ssh-edge may decrypt (`ResolveHostAuth`); no
//! other RPC returns a secret. Keys
//! rotate online ([`rotate`]).
//!
//! Rotating the master key, with no downtime:
//! 1. restart every secrets replica with the new key as
//!    `PHIREPASS_SECRETS_KEY` and the old one as `PHIREPASS_SECRETS_OLD_KEY`
//!    (or the `_PASSPHRASE` variants): reads use whichever key an entry
//!    names, writes use the new one;
//! 2. call `Rotate(new_key_id)` (`phirepass admin secrets rotate`) until
//!    `pending` is 0; interrupted, just call it again;
//! 3. once `RotationStatus` shows the old key retired, drop the old key
//!    from the environment. A replica started without a key that some entry
//!    still needs refuses to start and names the missing key id.
#![forbid(unsafe_code)]

mod api_tokens;
mod audit;
mod auth;
mod config;
mod convert;
mod credentials;
pub mod envelope;
mod error;
pub mod keys;
mod options;
pub mod policy;
mod resolve;
pub mod rotate;
mod service;
mod vault;

use std::future::Future;

use phirepass_runtime::grpc::server::{GrpcService, serve as serve_grpc};
use tokio::net::TcpListener;
use tonic::service::Routes;

pub use auth::Caller;
pub use config::{
    ADDR_VAR, ADMIN_TOKEN_VAR, AUDIT_SUBJECT, AUTHZ_URL_VAR, AdminToken, DATABASE_URL_VAR,
    DEFAULT_ADDR, DEFAULT_DATABASE_URL, NATS_URL_VAR, SecretsConfig, SecretsDeps,
};
pub use credentials::{CredentialInfo, CredentialKind, NewCredential};
pub use error::SecretsError;
pub use keys::{KeyError, KeyRing, KeySource, MasterKey};
pub use options::{ListedOption, REDACTED, SECRET_KEYS};
pub use resolve::{AuthSource, HostAuth};
pub use service::{AuthedSecretsServer, SecretsService};
pub use vault::Vault;

/// The name the health service reports as `SERVING` (the gRPC service).
pub const SERVICE_NAME: &str = "phirepass.secrets.v1.Secrets";

/// Opens the vault (refusing to start without a key, or with a key that
/// does not match the stored entries), then serves Secrets (authenticated),
/// health and reflection on `listener` until `shutdown` resolves.
#[tracing::instrument(name = "secrets.serve", skip_all, fields(addr = ?listener.local_addr().ok()))]
pub async fn serve(
    config: SecretsConfig,
    listener: TcpListener,
    deps: SecretsDeps,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), SecretsError> {
    let key = config.key.as_ref().ok_or(KeyError::Missing)?;
    let vault = Vault::open(deps.store, key, config.old_key.as_ref()).await?;
    let api = match &config.authz_url {
        Some(url) => Some(std::sync::Arc::new(api_tokens::ApiTokens::new(
            url,
            &config.identity,
            config.api_token_cache,
        )?)),
        None => None,
    };
    let secrets = SecretsService::new(vault)
        .with_api_tokens(api)
        .with_audit(deps.events, config.audit_subject)
        .into_server(config.admin_token.map(|t| t.0));
    let service = GrpcService {
        name: SERVICE_NAME,
        routes: Routes::new(secrets),
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
