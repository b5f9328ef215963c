//! Login failure counters in presence: after too many failures in a window
//! a username (or client IP) is locked until the window ends. While a user
//! is locked, their sessions and API tokens are refused too.

use std::sync::Arc;
use std::time::Duration;

use phirepass_presence::Presence;

/// Lockout thresholds (see `AuthzConfig`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LoginLimits {
    /// Failures per username within `window` before it is locked.
    pub max_failures: u64,
    /// Failures per client IP within `window` before it is locked. Higher
    /// than per user by default: many people may share one NAT address.
    pub max_failures_per_ip: u64,
    /// The counting window; a lock lasts until the window of its first
    /// failure ends.
    pub window: Duration,
}

impl Default for LoginLimits {
    fn default() -> Self {
        Self {
            max_failures: 5,
            max_failures_per_ip: 50,
            window: Duration::from_secs(60),
        }
    }
}

/// The presence key counting `what` (e.g. "setup-fail") for `who` (an IP or
/// a user id). A missing or oversized IP shares one bucket, so leaving the
/// client address out does not lift the limit.
pub(crate) fn attempt_key(what: &str, who: Option<&str>) -> String {
    let who = who
        .filter(|w| !w.is_empty() && w.len() <= 64)
        .unwrap_or("-");
    format!("authz:{what}:{who}")
}

#[derive(Clone)]
pub(crate) struct LoginLimiter {
    presence: Arc<dyn Presence>,
    limits: LoginLimits,
}

impl LoginLimiter {
    pub(crate) fn new(presence: Arc<dyn Presence>, limits: LoginLimits) -> Self {
        Self { presence, limits }
    }

    fn user_key(username: &str) -> String {
        format!("authz:login-fail:user:{username}")
    }

    fn ip_key(ip: Option<&str>) -> Option<String> {
        ip.filter(|ip| !ip.is_empty() && ip.len() <= 64)
            .map(|ip| format!("authz:login-fail:ip:{ip}"))
    }

    /// `true` if this username or IP is currently locked. Fails open (with a
    /// warning) when presence is unavailable: Argon2 still slows guessing and
    /// logins keep working while Redis is down.
    pub(crate) async fn is_locked(&self, username: &str, ip: Option<&str>) -> bool {
        if self.is_user_locked(username).await {
            return true;
        }
        match Self::ip_key(ip) {
            Some(ip_key) => self.count(&ip_key).await >= self.limits.max_failures_per_ip,
            None => false,
        }
    }

    /// `true` while the username has reached its failure limit.
    pub(crate) async fn is_user_locked(&self, username: &str) -> bool {
        self.count(&Self::user_key(username)).await >= self.limits.max_failures
    }

    async fn count(&self, key: &str) -> u64 {
        match self.presence.get(key).await {
            Ok(value) => value.and_then(|v| v.parse().ok()).unwrap_or(0),
            Err(error) => {
                tracing::warn!(%error, "login limiter unavailable");
                0
            }
        }
    }

    pub(crate) fn limits(&self) -> LoginLimits {
        self.limits
    }

    /// `true` while `key` (e.g. [`attempt_key`]) has counted `max` events or
    /// more in its window. Fails open like logins.
    pub(crate) async fn reached(&self, key: &str, max: u64) -> bool {
        self.count(key).await >= max
    }

    /// Counts one event under `key` for `window`; the new count (0 when
    /// presence is unavailable).
    pub(crate) async fn bump(&self, key: &str, window: Duration) -> u64 {
        match self.presence.incr(key, window).await {
            Ok(n) => n,
            Err(error) => {
                tracing::warn!(%error, "attempt limiter unavailable");
                0
            }
        }
    }

    /// Counts a failure for the username (known or not) and the IP.
    pub(crate) async fn record_failure(&self, username: &str, ip: Option<&str>) {
        let window = self.limits.window;
        match self.presence.incr(&Self::user_key(username), window).await {
            // The user is locked from now on: cached "allowed" decisions
            // for them must go.
            Ok(n) if n == self.limits.max_failures => {
                crate::decision_cache::invalidate(self.presence.as_ref()).await;
            }
            Ok(_) => {}
            Err(error) => tracing::warn!(%error, "login limiter unavailable"),
        }
        if let Some(ip_key) = Self::ip_key(ip)
            && let Err(error) = self.presence.incr(&ip_key, window).await
        {
            tracing::warn!(%error, "login limiter unavailable");
        }
    }

    /// A successful login clears the username's counter (not the IP's).
    pub(crate) async fn record_success(&self, username: &str) {
        if let Err(error) = self.presence.delete(&Self::user_key(username)).await {
            tracing::warn!(%error, "login limiter unavailable");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use phirepass_presence::MemoryPresence;

    fn limiter() -> LoginLimiter {
        LoginLimiter::new(Arc::new(MemoryPresence::new()), LoginLimits::default())
    }

    #[tokio::test]
    async fn locks_after_max_failures() {
        let limiter = limiter();
        for _ in 0..4 {
            limiter.record_failure("alice", None).await;
        }
        assert!(!limiter.is_locked("alice", None).await);
        limiter.record_failure("alice", None).await;
        assert!(limiter.is_locked("alice", None).await);
        assert!(limiter.is_user_locked("alice").await);
        assert!(!limiter.is_locked("bob", None).await);
        limiter.record_success("alice").await;
        assert!(!limiter.is_locked("alice", None).await);
    }

    #[tokio::test]
    async fn locks_ip_across_usernames() {
        let limiter = limiter();
        for i in 0..50 {
            limiter
                .record_failure(&format!("u{i}"), Some("10.0.0.1"))
                .await;
        }
        assert!(limiter.is_locked("fresh", Some("10.0.0.1")).await);
        assert!(!limiter.is_locked("fresh", Some("10.0.0.2")).await);
        assert!(!limiter.is_locked("fresh", None).await);
    }
}
