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
mod command_grants;
mod devices;
mod error;
mod invitations;
mod keys;
mod migrate;
mod node_groups;
mod nodes;
pub mod roles;
mod sessions;
mod setup_codes;
mod targets;
#[cfg(feature = "testing")]
mod testing;
mod tls;
mod tunnel_names;
mod users;
mod vault;

use std::time::Duration;

use sqlx::AnyPool;
use sqlx::any::AnyPoolOptions;

pub use access::{GrantLogins, GrantRow, GrantVia, GroupRow, PrincipalKind};
pub use api_tokens::NewApiToken;
pub use command_grants::CommandGrant;
pub use devices::{DeviceApproval, DeviceAuthRow};
pub use error::StoreError;
pub use invitations::{AcceptOutcome, InvitationRow};
pub use keys::UserKeyRow;
pub use migrate::Migrations;
pub use node_groups::NodeGroupRow;
pub use nodes::{
    NewNodeToken, NodeRow, SCOPE_NODE_CONNECT, TOKEN_KIND_API, TOKEN_KIND_NODE, TokenInfo,
};
pub use sessions::SessionRow;
pub use setup_codes::SetupOutcome;
pub use targets::{HostRow, TargetKind, TargetRef};
pub use tls::PgTls;
pub use tunnel_names::TunnelNameRow;
pub use users::SERVICE_ACCOUNT;
pub use users::UserRow;
pub use vault::{RelayCredentialRow, RelayOptionRow, VaultKeyRow};

/// Which database a [`Store`] talks to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Postgres,
    Sqlite,
}

/// How [`Store::connect_with`] connects beyond the URL.
#[derive(Debug, Clone, Default)]
pub struct ConnectOptions {
    /// TLS toward PostgreSQL (`sslmode=verify-full` against its trust bundle); ignored for
    /// SQLite.
    pub tls: Option<PgTls>,
    pub migrations: Migrations,
}

/// `DATABASE_MIGRATIONS=require` makes a service check the schema instead of migrating.
pub const MIGRATIONS_VAR: &str = "DATABASE_MIGRATIONS";

impl ConnectOptions {
    /// The service's identity (`phirepass_pki::TlsFiles::from_env(kind)`) as client
    /// certificate, and `DATABASE_MIGRATIONS` (`apply`, the default, or `require`).
    pub fn from_env(kind: phirepass_pki::ServiceKind) -> Result<Self, StoreError> {
        let tls = phirepass_pki::TlsFiles::from_env(kind)
            .map_err(|_| StoreError::Tls("invalid PHIREPASS_TLS_* settings"))?
            .map(PgTls::from);
        let migrations = match std::env::var(MIGRATIONS_VAR).ok().as_deref() {
            None | Some("" | "apply") => Migrations::Apply,
            Some("require") => Migrations::Require,
            Some(_) => return Err(StoreError::Tls("DATABASE_MIGRATIONS is apply or require")),
        };
        Ok(Self { tls, migrations })
    }
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
    pub async fn connect(url: &str) -> Result<Self, StoreError> {
        Self::connect_with(url, &ConnectOptions::default()).await
    }

    /// [`Store::connect`] with TLS and a migration mode (see [`ConnectOptions::from_env`]).
    #[tracing::instrument(skip_all, fields(backend))]
    pub async fn connect_with(url: &str, options: &ConnectOptions) -> Result<Self, StoreError> {
        sqlx::any::install_default_drivers();
        let backend = backend_of(url)?;
        tracing::Span::current().record("backend", tracing::field::debug(backend));
        let tls_url;
        let url = match (&options.tls, backend) {
            (Some(tls), Backend::Postgres) => {
                tls_url = tls::apply(url, tls)?;
                tls_url.as_str()
            }
            _ => url,
        };

        let pool_options = if is_sqlite_memory(url) {
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
        let pool = pool_options
            .connect(url)
            .await
            .map_err(StoreError::Connect)?;
        let store = Self { pool, backend };
        migrate::run(&store, options.migrations).await?;
        Ok(store)
    }

    /// The one-shot migrate step, as the owner role: applies pending migrations, then (on
    /// PostgreSQL) gives each service role that exists exactly its tables
    /// ([`roles::grants_sql`]). Returns the roles granted.
    pub async fn migrate(url: &str, tls: Option<PgTls>) -> Result<Vec<&'static str>, StoreError> {
        let options = ConnectOptions {
            tls,
            migrations: Migrations::Apply,
        };
        let store = Self::connect_with(url, &options).await?;
        let granted = match store.backend {
            Backend::Postgres => store.apply_grants().await?,
            Backend::Sqlite => Vec::new(),
        };
        store.close().await;
        Ok(granted)
    }

    async fn apply_grants(&self) -> Result<Vec<&'static str>, StoreError> {
        let mut granted = Vec::new();
        let mut tx = self.pool.begin().await?;
        for role in roles::ROLES {
            // GRANT to a missing role fails: grant only the roles created so far.
            let exists = sqlx::query("SELECT 1 FROM pg_roles WHERE rolname = $1")
                .bind(role.name())
                .fetch_optional(&mut *tx)
                .await?
                .is_some();
            if !exists {
                continue;
            }
            for statement in roles::role_grants(role) {
                sqlx::query(&statement).execute(&mut *tx).await?;
            }
            granted.push(role.name());
        }
        tx.commit().await?;
        Ok(granted)
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
