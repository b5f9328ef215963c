//! What `serve` is configured with, and how the binary reads it from the
//! environment.
//!
//! Environment: `PHIREPASS_TLS_DIR` (required: trust.crt, authz.crt, authz.key; or
//! `PHIREPASS_TLS_CERT`/`_KEY`/`_TRUST`), `AUTHZ_ADDR` (default
//! 127.0.0.1:50051), `DATABASE_URL` (default `sqlite://phirepass.db?mode=rwc`),
//! `REDIS_URL` (optional; in-memory presence without it),
//! `AUTHZ_SESSION_TTL_SECS` (default 43200), `NATS_URL` (optional; audit
//! events go to the JetStream stream `PP_EVENTS`, in memory without it),
//! `AUTHZ_LOGIN_MAX_FAILURES` (default 5, per username and source),
//! `AUTHZ_LOGIN_MAX_FAILURES_PER_IP` (default 50), `AUTHZ_LOGIN_WINDOW_SECS`
//! (default 60), `AUTHZ_LOGIN_MAX_FAILURES_PER_USER` (default 20, from
//! unknown sources), `AUTHZ_LOGIN_USER_WINDOW_SECS` (default 900),
//! `AUTHZ_LOGIN_KNOWN_SOURCE_DAYS` (default 30), `AUTHZ_HASH_CONCURRENCY`
//! (default: the number of CPUs), `AUTHZ_HASH_QUEUE` (default 64),
//! `AUTHZ_HASH_QUEUE_WAIT_MS` (default 2000),
//! `AUTHZ_DEVICE_STARTS_PER_MINUTE` (default 10, per client IP),
//! `AUTHZ_DECISION_CACHE_MS` (default 5000; 0 turns the Authorize cache off),
//! `AUTHZ_TUNNEL_NAME_POLICY` (`any`, the default, or `user-prefix`),
//! `AUTHZ_TUNNEL_RESERVED_NAMES` (comma list, added to the built-in list),
//! `AUTHZ_APP_TOKEN_TTL_SECS` (default 900), `AUTHZ_TICKET_KEY_FILE` (the Ed25519 PKCS#8 PEM
//! that signs open tickets, created when missing; without it a key lives in memory only and
//! agents pinned to it must re-enrol after a restart), `AUTHZ_TICKET_PREVIOUS_KEY_FILES`
//! (comma list, oldest first: keys rotated away from, still trusted and endorsing the next).

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use phirepass_bus::{EventLog, MemoryEventLog};
use phirepass_pki::{Identity, ServiceKind};
use phirepass_presence::Presence;
use phirepass_runtime::config::{ConfigError, env_opt, env_or};
use phirepass_runtime::grpc::identity_from_env;
use phirepass_store::Store;

use crate::devices::DEVICE_CODE_TTL;
use crate::error::AuthzError;
use crate::hash_pool::HashLimits;
use crate::limiter::{LoginLimits, UserLimits};
use crate::tickets::TicketKeyring;
use crate::tunnel_names::TunnelNamePolicy;

/// The subject of access-decision audit events.
pub const AUDIT_SUBJECT: &str = "pp.events.audit";

#[derive(Debug, Clone)]
pub struct AuthzConfig {
    /// authz's certificate and trust bundle: the gRPC server's TLS identity.
    pub identity: Identity,
    /// Who may call which RPC: [`crate::policy::POLICY`]; test harnesses widen it
    /// ([`phirepass_runtime::grpc::Policy::also_allowing`]).
    pub policy: phirepass_runtime::grpc::Policy,
    /// Lifetime of a login session (default 12 h).
    pub session_ttl: Duration,
    /// Per-source login limits (defaults: 5 failures per username and
    /// source, 50 attempts per source, in 60 s; env `AUTHZ_LOGIN_MAX_FAILURES`,
    /// `AUTHZ_LOGIN_MAX_FAILURES_PER_IP`, `AUTHZ_LOGIN_WINDOW_SECS`).
    pub login_limits: LoginLimits,
    /// The per-username ceiling for sources it never logged in from
    /// (defaults: 20 in 15 minutes; a source stays known 30 days; env
    /// `AUTHZ_LOGIN_MAX_FAILURES_PER_USER`, `AUTHZ_LOGIN_USER_WINDOW_SECS`,
    /// `AUTHZ_LOGIN_KNOWN_SOURCE_DAYS`).
    pub user_limits: UserLimits,
    /// The Argon2 pool (defaults: one per CPU, 64 waiting, 2 s wait; env
    /// `AUTHZ_HASH_CONCURRENCY`, `AUTHZ_HASH_QUEUE`, `AUTHZ_HASH_QUEUE_WAIT_MS`).
    pub hash_limits: HashLimits,
    /// Where audit events go (default [`AUDIT_SUBJECT`]).
    pub audit_subject: String,
    /// Whether [`crate::serve`] issues (and logs) a first-run setup code when
    /// no user exists (default on). `phirepass dev` turns it off and calls
    /// [`crate::issue_setup_code`] itself, to print the code in its banner.
    pub issue_setup_code: bool,
    /// Device authorizations one client IP may start per minute (default
    /// 10; env `AUTHZ_DEVICE_STARTS_PER_MINUTE`).
    pub device_starts_per_minute: u64,
    /// How long a device authorization can be approved (default
    /// [`DEVICE_CODE_TTL`], 10 minutes).
    pub device_code_ttl: Duration,
    /// How long Authorize decisions are cached in presence, shared by every
    /// replica and invalidated at once by any change (default 5 s; zero
    /// turns the cache off; env `AUTHZ_DECISION_CACHE_MS`).
    pub decision_cache_ttl: Duration,
    /// Which free tunnel names a user may reserve (default any; env
    /// `AUTHZ_TUNNEL_NAME_POLICY`: `any` or `user-prefix`).
    pub tunnel_name_policy: TunnelNamePolicy,
    /// Tunnel names no user may claim, besides
    /// [`crate::BUILTIN_RESERVED_TUNNEL_NAMES`] (env
    /// `AUTHZ_TUNNEL_RESERVED_NAMES`, comma separated).
    pub tunnel_reserved_names: Vec<String>,
    /// Lifetime of an app token (default 15 minutes; env
    /// `AUTHZ_APP_TOKEN_TTL_SECS`). Verify hands out a fresh one when less
    /// than 5 minutes or a third of this remain, whichever is smaller.
    pub app_token_ttl: Duration,
    /// The open-ticket signing keys (issue #8), shared so a test or an operator hook can
    /// rotate them while authz runs.
    pub tickets: Arc<TicketKeyring>,
}

impl AuthzConfig {
    /// The defaults, with a ticket key generated in memory.
    pub fn new(identity: Identity) -> Self {
        Self::with_tickets(identity, Arc::new(ephemeral_keyring()))
    }

    /// The defaults, signing open tickets with `tickets`.
    pub fn with_tickets(identity: Identity, tickets: Arc<TicketKeyring>) -> Self {
        Self {
            identity,
            policy: crate::policy::POLICY,
            session_ttl: Duration::from_secs(12 * 3600),
            login_limits: LoginLimits::default(),
            user_limits: UserLimits::default(),
            hash_limits: HashLimits::default(),
            audit_subject: AUDIT_SUBJECT.to_owned(),
            issue_setup_code: true,
            device_starts_per_minute: 10,
            device_code_ttl: DEVICE_CODE_TTL,
            decision_cache_ttl: Duration::from_secs(5),
            tunnel_name_policy: TunnelNamePolicy::Any,
            tunnel_reserved_names: Vec::new(),
            app_token_ttl: Duration::from_secs(15 * 60),
            tickets,
        }
    }

    /// The defaults of [`AuthzConfig::new`], overridden by the `AUTHZ_*`
    /// variables listed in the module docs; the identity from `PHIREPASS_TLS_DIR`.
    pub fn from_env() -> Result<Self, ConfigError> {
        let base = Self::new(identity_from_env(ServiceKind::Authz)?);
        let limits = base.login_limits;
        let login_limits = LoginLimits {
            max_failures: env_or("AUTHZ_LOGIN_MAX_FAILURES", limits.max_failures)?,
            max_failures_per_ip: env_or(
                "AUTHZ_LOGIN_MAX_FAILURES_PER_IP",
                limits.max_failures_per_ip,
            )?,
            window: secs_or("AUTHZ_LOGIN_WINDOW_SECS", limits.window)?,
        };
        let users = base.user_limits;
        let known_days = users.known_source_ttl.as_secs() / 86_400;
        let user_limits = UserLimits {
            max_failures: env_or("AUTHZ_LOGIN_MAX_FAILURES_PER_USER", users.max_failures)?,
            window: secs_or("AUTHZ_LOGIN_USER_WINDOW_SECS", users.window)?,
            known_source_ttl: Duration::from_secs(
                env_or("AUTHZ_LOGIN_KNOWN_SOURCE_DAYS", known_days)?.saturating_mul(86_400),
            ),
        };
        let hashes = base.hash_limits;
        let wait_ms = u64::try_from(hashes.queue_wait.as_millis()).unwrap_or(2000);
        let hash_limits = HashLimits {
            concurrency: env_or("AUTHZ_HASH_CONCURRENCY", hashes.concurrency)?.max(1),
            queue: env_or("AUTHZ_HASH_QUEUE", hashes.queue)?,
            queue_wait: Duration::from_millis(env_or("AUTHZ_HASH_QUEUE_WAIT_MS", wait_ms)?),
        };
        let cache_ms = u64::try_from(base.decision_cache_ttl.as_millis()).unwrap_or(5000);
        Ok(Self {
            session_ttl: secs_or("AUTHZ_SESSION_TTL_SECS", base.session_ttl)?,
            login_limits,
            user_limits,
            hash_limits,
            device_starts_per_minute: env_or(
                "AUTHZ_DEVICE_STARTS_PER_MINUTE",
                base.device_starts_per_minute,
            )?,
            decision_cache_ttl: Duration::from_millis(env_or("AUTHZ_DECISION_CACHE_MS", cache_ms)?),
            tunnel_name_policy: env_or("AUTHZ_TUNNEL_NAME_POLICY", base.tunnel_name_policy)?,
            tunnel_reserved_names: env_opt("AUTHZ_TUNNEL_RESERVED_NAMES")
                .map(|list| reserved_names(&list))
                .unwrap_or_default(),
            app_token_ttl: secs_or("AUTHZ_APP_TOKEN_TTL_SECS", base.app_token_ttl)?,
            tickets: match env_opt("AUTHZ_TICKET_KEY_FILE") {
                Some(file) => Arc::new(keyring_from_files(&file)?),
                None => {
                    tracing::warn!(
                        "AUTHZ_TICKET_KEY_FILE is not set: open tickets are signed by a key in memory; agents pinned to it must re-enrol after a restart"
                    );
                    base.tickets
                }
            },
            ..base
        })
    }
}

/// A generated ticket key; generation only fails without system randomness, and then
/// nothing else in authz works either.
fn ephemeral_keyring() -> TicketKeyring {
    match TicketKeyring::generate() {
        Ok(ring) => ring,
        Err(e) => panic!("no system randomness for a ticket key: {e}"),
    }
}

fn keyring_from_files(current: &str) -> Result<TicketKeyring, ConfigError> {
    let load = |name: &str, path: &str| {
        TicketKeyring::load_or_create(std::path::Path::new(path))
            .map_err(|e| ConfigError::invalid(name, e))
    };
    let signer = load("AUTHZ_TICKET_KEY_FILE", current)?;
    let previous = env_opt("AUTHZ_TICKET_PREVIOUS_KEY_FILES")
        .map(|list| {
            list.split(',')
                .map(str::trim)
                .filter(|p| !p.is_empty())
                .map(|p| load("AUTHZ_TICKET_PREVIOUS_KEY_FILES", p))
                .collect::<Result<Vec<_>, _>>()
        })
        .transpose()?
        .unwrap_or_default();
    Ok(TicketKeyring::with_previous(signer, previous))
}

fn secs_or(name: &str, default: Duration) -> Result<Duration, ConfigError> {
    env_or(name, default.as_secs()).map(Duration::from_secs)
}

/// A comma list of names, trimmed and lowercased, empty entries dropped.
fn reserved_names(list: &str) -> Vec<String> {
    list.split(',')
        .map(|n| n.trim().to_ascii_lowercase())
        .filter(|n| !n.is_empty())
        .collect()
}

#[derive(Clone)]
pub struct AuthzDeps {
    pub store: Store,
    pub presence: Arc<dyn Presence>,
    /// Audit events: a JetStream log in production
    /// (`phirepass_bus::JetStreamEventLog`), in memory otherwise.
    pub events: Arc<dyn EventLog>,
}

impl AuthzDeps {
    /// Deps with an in-memory event log (the embedded default).
    pub fn new(store: Store, presence: Arc<dyn Presence>) -> Self {
        Self {
            store,
            presence,
            events: Arc::new(MemoryEventLog::new()),
        }
    }
}

/// Where the binary listens and what it connects to.
#[derive(Debug, Clone)]
pub struct AuthzEndpoints {
    /// `AUTHZ_ADDR` (default 127.0.0.1:50051).
    pub addr: SocketAddr,
    /// `DATABASE_URL` (default `sqlite://phirepass.db?mode=rwc`).
    pub database_url: String,
    /// `REDIS_URL`; in-memory presence without it.
    pub redis_url: Option<String>,
    /// `NATS_URL`; an in-memory audit log without it.
    pub nats_url: Option<String>,
}

impl AuthzEndpoints {
    pub fn from_env() -> Result<Self, ConfigError> {
        Ok(Self {
            addr: env_or("AUTHZ_ADDR", SocketAddr::from(([127, 0, 0, 1], 50051)))?,
            database_url: env_opt("DATABASE_URL")
                .unwrap_or_else(|| "sqlite://phirepass.db?mode=rwc".to_owned()),
            redis_url: env_opt("REDIS_URL"),
            nats_url: env_opt("NATS_URL"),
        })
    }

    /// Connects the store, presence and the audit event log.
    pub async fn connect(&self) -> Result<AuthzDeps, AuthzError> {
        Ok(AuthzDeps {
            store: Store::connect_with(
                &self.database_url,
                &phirepass_store::ConnectOptions::from_env(ServiceKind::Authz)?,
            )
            .await?,
            presence: phirepass_presence::connect_with(
                self.redis_url.as_deref(),
                "pp:",
                &phirepass_presence::RedisAuth::from_env(ServiceKind::Authz)?,
            )
            .await?,
            events: phirepass_bus::connect_events_with(
                self.nats_url.as_deref(),
                ServiceKind::Authz,
                phirepass_runtime::data_tls::nats_identity(ServiceKind::Authz)?.as_ref(),
            )
            .await?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reserved_names_are_trimmed_and_lowercased() {
        assert_eq!(reserved_names(" Foo, ,bar ,"), vec!["foo", "bar"]);
    }
}
