//! Presence and rate-limit store: short-lived keys with TTLs.
//!
//! Two implementations behind one trait: [`RedisPresence`] (shared by every
//! replica) and [`MemoryPresence`] (single process, `phirepass dev`). One
//! conformance suite (`tests/conformance.rs`) runs against both.

#![forbid(unsafe_code)]

pub mod acl;
mod memory;
mod redis_impl;
mod tls;

use std::sync::Arc;
use std::time::Duration;

pub use memory::MemoryPresence;
pub use redis_impl::RedisPresence;
pub use tls::{PASSWORD_FILE_VAR, RedisAuth, USERNAME_VAR, read_password};

/// Errors from a presence backend. Never carries connection URLs.
#[derive(Debug, thiserror::Error)]
pub enum PresenceError {
    #[error("invalid presence store url")]
    InvalidUrl(#[source] redis::RedisError),
    #[error("presence store unavailable")]
    Backend(#[source] redis::RedisError),
    /// Also what a refused TLS handshake or login looks like (the client retries them).
    #[error(
        "presence store did not accept the connection in time (address, tls, user or password)"
    )]
    ConnectTimeout,
    /// TLS or ACL settings that cannot work (never carries a password).
    #[error("presence store tls: {0}")]
    Tls(String),
    #[error("reading {path}")]
    Io {
        path: std::path::PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// A TTL key-value store. Keys are plain strings; implementations namespace
/// them under their own key prefix.
#[async_trait::async_trait]
pub trait Presence: Send + Sync + 'static {
    /// Sets `key` to `value`, expiring after `ttl` (at least 1 ms).
    async fn put(&self, key: &str, value: &str, ttl: Duration) -> Result<(), PresenceError>;
    async fn get(&self, key: &str) -> Result<Option<String>, PresenceError>;
    /// `true` if the key existed.
    async fn delete(&self, key: &str) -> Result<bool, PresenceError>;
    /// Atomically sets `key` only if it holds no live value; `true` if this
    /// call set it. The race-free way to claim a key among replicas.
    async fn put_if_absent(
        &self,
        key: &str,
        value: &str,
        ttl: Duration,
    ) -> Result<bool, PresenceError>;
    /// Atomically replaces `key`'s value (and TTL) only if it equals
    /// `expected`; `true` if replaced. Lets a holder refresh what it holds
    /// without overwriting a record someone else claimed in between.
    async fn replace_if(
        &self,
        key: &str,
        expected: &str,
        value: &str,
        ttl: Duration,
    ) -> Result<bool, PresenceError>;
    /// Atomically deletes `key` only if its value equals `expected`.
    async fn delete_if(&self, key: &str, expected: &str) -> Result<bool, PresenceError>;
    /// Every live `(key, value)` whose key starts with `prefix`, sorted by key.
    async fn list(&self, prefix: &str) -> Result<Vec<(String, String)>, PresenceError>;
    /// Increments a counter and returns the new value; the TTL is set when
    /// the counter is created, so it counts over a fixed window.
    async fn incr(&self, key: &str, ttl: Duration) -> Result<u64, PresenceError>;
}

/// Redis when a URL is given, otherwise in-memory.
pub async fn connect(
    redis_url: Option<&str>,
    key_prefix: &str,
) -> Result<Arc<dyn Presence>, PresenceError> {
    connect_with(redis_url, key_prefix, &RedisAuth::default()).await
}

/// [`connect`] with the service's TLS files and ACL user (see [`RedisAuth::from_env`]):
/// `rediss://` URLs connect over TLS with the client certificate.
#[tracing::instrument(skip_all, fields(backend = if redis_url.is_some() { "redis" } else { "memory" }))]
pub async fn connect_with(
    redis_url: Option<&str>,
    key_prefix: &str,
    auth: &RedisAuth,
) -> Result<Arc<dyn Presence>, PresenceError> {
    match redis_url {
        Some(url) => Ok(Arc::new(
            RedisPresence::connect_with(url, key_prefix, auth).await?,
        )),
        None => Ok(Arc::new(MemoryPresence::new())),
    }
}

/// TTL in whole milliseconds, never zero (Redis rejects `PX 0`).
pub(crate) fn ttl_millis(ttl: Duration) -> u64 {
    u64::try_from(ttl.as_millis()).unwrap_or(u64::MAX).max(1)
}
