//! `phirepass-secrets`: the credential vault of Phirepass.
//!
//! Relay host options and shared credentials, sealed at rest with
//! XChaCha20-Poly1305 under a master key ([`envelope`]), served over gRPC
//! (`phirepass.secrets.v1.Secrets`) with health and reflection. Every RPC
//! needs a bearer token: the service token marks an internal caller (the
//! edges), the optional admin token an admin client. Only internal callers
//! may decrypt (`ResolveHostAuth`); no other RPC returns a secret. Keys
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
mod auth;
mod credentials;
pub mod envelope;
mod error;
pub mod keys;
mod options;
mod resolve;
pub mod rotate;
mod service;
mod vault;

use std::future::Future;
use std::net::SocketAddr;

use phirepass_runtime::config::env_or;
use phirepass_runtime::grpc::ServiceToken;
use phirepass_store::Store;
use tokio::net::TcpListener;
use tonic::transport::Server;

pub use auth::Caller;
pub use credentials::{CredentialInfo, CredentialKind, NewCredential};
pub use error::SecretsError;
pub use keys::{KeyError, KeyRing, KeySource, MasterKey};
pub use options::{ListedOption, REDACTED, SECRET_KEYS};
pub use resolve::{AuthSource, HostAuth};
pub use service::{AuthedSecretsServer, SecretsService};
pub use vault::Vault;

/// The name the health service reports as `SERVING` (the gRPC service).
pub const SERVICE_NAME: &str = "phirepass.secrets.v1.Secrets";
/// Environment variable for the gRPC listener address.
pub const ADDR_VAR: &str = "SECRETS_ADDR";
/// Default gRPC listener address.
pub const DEFAULT_ADDR: &str = "127.0.0.1:50053";
/// Optional bearer token for admin clients (no decrypt rights).
pub const ADMIN_TOKEN_VAR: &str = "PHIREPASS_SECRETS_ADMIN_TOKEN";
/// Authz's gRPC URL: when set, authz API tokens (`pp_api_...`) are accepted
/// on the admin surface (scope admin: changes; read: lists).
pub const AUTHZ_URL_VAR: &str = "AUTHZ_URL";
/// Where vault changes are published (the same subject as authz's).
pub const AUDIT_SUBJECT: &str = "pp.events.audit";

/// secrets settings. Debug never shows tokens or key material.
#[derive(Debug, Clone)]
pub struct SecretsConfig {
    /// Where the gRPC server listens (`SECRETS_ADDR`).
    pub addr: SocketAddr,
    /// The internal service token (edges; may decrypt).
    pub service_token: ServiceToken,
    /// An admin token (may manage, never decrypt); `None` disables it.
    pub admin_token: Option<ServiceToken>,
    /// The current master key; `None` makes `serve` refuse to start.
    pub key: Option<KeySource>,
    /// The previous master key, during a rotation.
    pub old_key: Option<KeySource>,
    /// Authz's URL, to verify API tokens (`AUTHZ_URL`); `None`: API tokens
    /// are refused like any unknown bearer.
    pub authz_url: Option<String>,
    /// How long a verified API token is trusted without asking authz again
    /// (default 5 s).
    pub api_token_cache: std::time::Duration,
    /// Where vault changes are published (default [`AUDIT_SUBJECT`]).
    pub audit_subject: String,
}

impl SecretsConfig {
    pub fn new(service_token: ServiceToken, key: KeySource) -> Self {
        Self {
            addr: SocketAddr::from(([127, 0, 0, 1], 50053)),
            service_token,
            admin_token: None,
            key: Some(key),
            old_key: None,
            authz_url: None,
            api_token_cache: std::time::Duration::from_secs(5),
            audit_subject: AUDIT_SUBJECT.to_owned(),
        }
    }

    /// Reads `SECRETS_ADDR`, `PHIREPASS_SECRETS_KEY` / `_PASSPHRASE`,
    /// `PHIREPASS_SECRETS_OLD_KEY` / `_OLD_PASSPHRASE` and
    /// `PHIREPASS_SECRETS_ADMIN_TOKEN`. A missing current key is reported by
    /// [`serve`], so the error says why the service does not start.
    pub fn from_env(service_token: ServiceToken) -> Result<Self, SecretsError> {
        Ok(Self {
            addr: env_or(ADDR_VAR, SocketAddr::from(([127, 0, 0, 1], 50053)))?,
            service_token,
            admin_token: phirepass_runtime::config::env_opt(ADMIN_TOKEN_VAR).map(ServiceToken::new),
            key: KeySource::from_env(keys::KEY_VAR, keys::PASSPHRASE_VAR)?,
            old_key: KeySource::from_env(keys::OLD_KEY_VAR, keys::OLD_PASSPHRASE_VAR)?,
            authz_url: phirepass_runtime::config::env_opt(AUTHZ_URL_VAR),
            api_token_cache: std::time::Duration::from_secs(5),
            audit_subject: AUDIT_SUBJECT.to_owned(),
        })
    }
}

/// What secrets needs from the rest of the system.
#[derive(Clone)]
#[non_exhaustive]
pub struct SecretsDeps {
    pub store: Store,
    /// Audit events of vault changes: a JetStream log in production
    /// (`phirepass_bus::connect_events`), in memory by default.
    pub events: std::sync::Arc<dyn phirepass_bus::EventLog>,
}

impl std::fmt::Debug for SecretsDeps {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SecretsDeps")
            .field("store", &self.store)
            .finish_non_exhaustive()
    }
}

impl SecretsDeps {
    /// Deps with an in-memory audit log.
    pub fn new(store: Store) -> Self {
        Self {
            store,
            events: std::sync::Arc::new(phirepass_bus::MemoryEventLog::new()),
        }
    }

    /// Publishes vault changes to `events` instead.
    pub fn with_events(mut self, events: std::sync::Arc<dyn phirepass_bus::EventLog>) -> Self {
        self.events = events;
        self
    }
}

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
            config.service_token.clone(),
            config.api_token_cache,
        )?)),
        None => None,
    };
    let (_health_reporter, health) = phirepass_runtime::health::reporter_for(SERVICE_NAME).await;
    let reflection = tonic_reflection::server::Builder::configure()
        .register_encoded_file_descriptor_set(phirepass_proto::FILE_DESCRIPTOR_SET)
        .with_service_name(SERVICE_NAME)
        .build_v1()?;
    tracing::info!("secrets serving");
    let served = Server::builder()
        .add_service(health)
        .add_service(reflection)
        .add_service(
            SecretsService::new(vault)
                .with_api_tokens(api)
                .with_audit(deps.events, config.audit_subject)
                .into_server(config.service_token, config.admin_token),
        )
        .serve_with_incoming_shutdown(phirepass_runtime::grpc::incoming(listener), shutdown)
        .await;
    tracing::info!("secrets stopped");
    Ok(served?)
}
