//! Relational storage for Phirepass: one `sqlx::AnyPool` over PostgreSQL
//! (production) or SQLite (embedded default), with embedded migrations and
//! typed queries for users, SSH keys, groups, targets (nodes and hosts),
//! grants, node and API tokens, login sessions and the credential vault's
//! sealed rows.
//!
//! SQL is written once for both backends: `$N` placeholders (the SQLite
//! driver accepts them), TEXT ids, BIGINT unix-millis timestamps.

#![forbid(unsafe_code)]

mod access;
mod api_tokens;
mod devices;
mod error;
mod invitations;
mod keys;
mod migrate;
mod nodes;
mod sessions;
mod setup_codes;
mod targets;
#[cfg(feature = "testing")]
mod testing;
mod tunnel_names;
mod users;
mod vault;

use std::time::Duration;

use sqlx::AnyPool;
use sqlx::any::AnyPoolOptions;

pub use access::{GrantLogins, GrantRow, GrantVia, GroupRow, PrincipalKind};
pub use api_tokens::NewApiToken;
pub use devices::{DeviceApproval, DeviceAuthRow};
pub use error::StoreError;
pub use invitations::{AcceptOutcome, InvitationRow};
pub use keys::UserKeyRow;
pub use nodes::{
    NewNodeToken, NodeRow, SCOPE_NODE_CONNECT, TOKEN_KIND_API, TOKEN_KIND_NODE, TokenInfo,
};
pub use sessions::SessionRow;
pub use setup_codes::SetupOutcome;
pub use targets::{HostRow, TargetKind, TargetRef};
pub use tunnel_names::TunnelNameRow;
pub use users::UserRow;
pub use vault::{RelayCredentialRow, RelayOptionRow, VaultKeyRow};

/// Which database a [`Store`] talks to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Postgres,
    Sqlite,
}

/// Handle to the database; cheap to clone (the pool is shared).
#[derive(Clone, Debug)]
pub struct Store {
    pool: AnyPool,
    backend: Backend,
}

impl Store {
    /// Connects to `postgres://...`, `sqlite://path?mode=rwc` or
    /// `sqlite::memory:` and applies pending migrations.
    #[tracing::instrument(skip(url), fields(backend))]
    pub async fn connect(url: &str) -> Result<Self, StoreError> {
        sqlx::any::install_default_drivers();
        let backend = backend_of(url)?;
        tracing::Span::current().record("backend", tracing::field::debug(backend));

        let options = if is_sqlite_memory(url) {
            // Every SQLite connection to `:memory:` is its own database: keep
            // exactly one connection alive forever so the data persists.
            AnyPoolOptions::new()
                .max_connections(1)
                .min_connections(1)
                .idle_timeout(None)
                .max_lifetime(None)
        } else {
            AnyPoolOptions::new()
                .max_connections(10)
                .acquire_timeout(Duration::from_secs(10))
        };
        let pool = options.connect(url).await.map_err(StoreError::Connect)?;
        let store = Self { pool, backend };
        migrate::run(&store).await?;
        Ok(store)
    }

    /// A private, migrated in-memory SQLite database.
    pub async fn memory_sqlite() -> Result<Self, StoreError> {
        Self::connect("sqlite::memory:").await
    }

    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// The underlying pool, for crates that own their own tables.
    pub fn pool(&self) -> &AnyPool {
        &self.pool
    }

    /// Closes every pooled connection.
    pub async fn close(&self) {
        self.pool.close().await;
    }
}

fn backend_of(url: &str) -> Result<Backend, StoreError> {
    if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        Ok(Backend::Postgres)
    } else if url.starts_with("sqlite:") {
        Ok(Backend::Sqlite)
    } else {
        // Never echo the URL: it may carry a password.
        Err(StoreError::UnsupportedUrl)
    }
}

fn is_sqlite_memory(url: &str) -> bool {
    url.starts_with("sqlite:") && (url.contains(":memory:") || url.contains("mode=memory"))
}

/// A random 128-bit id, hex encoded (32 chars).
pub fn new_id() -> String {
    hex::encode(rand::random::<[u8; 16]>())
}

/// Milliseconds since the unix epoch: the one clock every service stores.
pub use phirepass_runtime::clock::now_millis;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backend_detection() {
        assert_eq!(
            backend_of("postgres://u@h/db").ok(),
            Some(Backend::Postgres)
        );
        assert_eq!(backend_of("sqlite::memory:").ok(), Some(Backend::Sqlite));
        assert!(backend_of("mysql://x").is_err());
        assert!(is_sqlite_memory("sqlite::memory:"));
        assert!(!is_sqlite_memory("sqlite:///tmp/x.db?mode=rwc"));
    }

    #[test]
    fn ids_are_128_bit_hex() {
        let id = new_id();
        assert_eq!(id.len(), 32);
        assert!(id.chars().all(|c| c.is_ascii_hexdigit()));
        assert_ne!(id, new_id());
    }
}
