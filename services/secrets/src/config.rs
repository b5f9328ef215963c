//! What [`crate::serve`] is configured with, and how the binary reads it
//! from the environment.
//!
//! Environment: `PHIREPASS_TLS_DIR` (required: trust.crt, secrets.crt, secrets.key; or
//! `PHIREPASS_TLS_CERT`/`_KEY`/`_TRUST`), `SECRETS_ADDR`
//! (default 127.0.0.1:50053), `DATABASE_URL` (default
//! `sqlite://phirepass.db?mode=rwc`), `PHIREPASS_SECRETS_KEY` (base64 of 32
//! bytes) or `PHIREPASS_SECRETS_PASSPHRASE` (required, one of them),
//! `PHIREPASS_SECRETS_OLD_KEY` / `_OLD_PASSPHRASE` (during a rotation),
//! `PHIREPASS_SECRETS_ADMIN_TOKEN` (optional admin bearer, no decrypt rights),
//! `AUTHZ_URL` (optional: accept authz API tokens on the admin surface),
//! `NATS_URL` (optional: vault changes go to the JetStream audit stream,
//! in memory without it).

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use phirepass_bus::EventLog;
use phirepass_pki::{Identity, ServiceKind};
use phirepass_runtime::config::{env_opt, env_or};
use phirepass_runtime::grpc::identity_from_env;
use phirepass_store::Store;

use crate::error::SecretsError;
use crate::keys::{self, KeySource};

/// Environment variable for the gRPC listener address.
pub const ADDR_VAR: &str = "SECRETS_ADDR";
/// Default gRPC listener address.
pub const DEFAULT_ADDR: &str = "127.0.0.1:50053";
/// Optional bearer token for admin clients (no decrypt rights).
pub const ADMIN_TOKEN_VAR: &str = "PHIREPASS_SECRETS_ADMIN_TOKEN";
/// Authz's gRPC URL: when set, authz API tokens (`pp_api_...`) are accepted
/// on the admin surface (scope admin: changes; read: lists).
pub const AUTHZ_URL_VAR: &str = "AUTHZ_URL";
/// Where the vault lives.
pub const DATABASE_URL_VAR: &str = "DATABASE_URL";
/// The vault's database when `DATABASE_URL` is unset.
pub const DEFAULT_DATABASE_URL: &str = "sqlite://phirepass.db?mode=rwc";
/// NATS, for the audit stream; in memory without it.
pub const NATS_URL_VAR: &str = "NATS_URL";
/// Where vault changes are published (the same subject as authz's).
pub const AUDIT_SUBJECT: &str = "pp.events.audit";

/// secrets settings. Debug never shows tokens or key material.
#[derive(Debug, Clone)]
pub struct SecretsConfig {
    /// Where the gRPC server listens (`SECRETS_ADDR`).
    pub addr: SocketAddr,
    /// The secrets service's certificate and trust bundle (gRPC server and authz client).
    pub identity: Identity,
    /// Who may call which RPC: [`crate::policy::POLICY`]; test harnesses widen it.
    pub policy: phirepass_runtime::grpc::Policy,
    /// An admin token (may manage, never decrypt); `None` disables it. Debug hides it.
    pub admin_token: Option<AdminToken>,
    /// The current master key; `None` makes `serve` refuse to start.
    pub key: Option<KeySource>,
    /// The previous master key, during a rotation.
    pub old_key: Option<KeySource>,
    /// Authz's URL, to verify API tokens (`AUTHZ_URL`); `None`: API tokens
    /// are refused like any unknown bearer.
    pub authz_url: Option<String>,
    /// How long a verified API token is trusted without asking authz again
    /// (default 5 s).
    pub api_token_cache: Duration,
    /// Where vault changes are published (default [`AUDIT_SUBJECT`]).
    pub audit_subject: String,
}

impl SecretsConfig {
    pub fn new(identity: Identity, key: KeySource) -> Self {
        Self {
            addr: SocketAddr::from(([127, 0, 0, 1], 50053)),
            identity,
            policy: crate::policy::POLICY,
            admin_token: None,
            key: Some(key),
            old_key: None,
            authz_url: None,
            api_token_cache: Duration::from_secs(5),
            audit_subject: AUDIT_SUBJECT.to_owned(),
        }
    }

    /// Reads the variables listed in the module docs (all but
    /// `DATABASE_URL` and `NATS_URL`, see [`SecretsDeps::from_env`]). A
    /// missing current key is reported by [`crate::serve`], so the error
    /// says why the service does not start.
    pub fn from_env() -> Result<Self, SecretsError> {
        Ok(Self {
            addr: env_or(ADDR_VAR, SocketAddr::from(([127, 0, 0, 1], 50053)))?,
            identity: identity_from_env(ServiceKind::Secrets)?,
            policy: crate::policy::POLICY,
            admin_token: env_opt(ADMIN_TOKEN_VAR).map(AdminToken),
            key: KeySource::from_env(keys::KEY_VAR, keys::PASSPHRASE_VAR)?,
            old_key: KeySource::from_env(keys::OLD_KEY_VAR, keys::OLD_PASSPHRASE_VAR)?,
            authz_url: env_opt(AUTHZ_URL_VAR),
            api_token_cache: Duration::from_secs(5),
            audit_subject: AUDIT_SUBJECT.to_owned(),
        })
    }
}

/// The optional admin bearer. Debug never shows it.
#[derive(Clone)]
pub struct AdminToken(pub String);

impl std::fmt::Debug for AdminToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("AdminToken(<redacted>)")
    }
}

/// What secrets needs from the rest of the system.
#[derive(Clone)]
#[non_exhaustive]
pub struct SecretsDeps {
    pub store: Store,
    /// Audit events of vault changes: a JetStream log in production
    /// (`phirepass_bus::connect_events`), in memory by default.
    pub events: Arc<dyn EventLog>,
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
            events: Arc::new(phirepass_bus::MemoryEventLog::new()),
        }
    }

    /// Publishes vault changes to `events` instead.
    pub fn with_events(mut self, events: Arc<dyn EventLog>) -> Self {
        self.events = events;
        self
    }

    /// Connects `DATABASE_URL` (default [`DEFAULT_DATABASE_URL`]) and, when
    /// set, `NATS_URL` for the audit stream.
    pub async fn from_env() -> Result<Self, SecretsError> {
        let database_url =
            env_opt(DATABASE_URL_VAR).unwrap_or_else(|| DEFAULT_DATABASE_URL.to_owned());
        let kind = ServiceKind::Secrets;
        let options = phirepass_store::ConnectOptions::from_env(kind)?;
        let store = Store::connect_with(&database_url, &options).await?;
        let identity = phirepass_runtime::data_tls::nats_identity(kind)?;
        let nats = env_opt(NATS_URL_VAR);
        let events =
            phirepass_bus::connect_events_with(nats.as_deref(), kind, identity.as_ref()).await?;
        Ok(Self::new(store).with_events(events))
    }
}
