//! Login failure counters in presence: after too many failures in a window
//! a username (or client IP) is locked until the window ends.

use std::sync::Arc;
use std::time::Duration;

use phirepass_presence::Presence;

const WINDOW: Duration = Duration::from_secs(15 * 60);
const MAX_PER_USER: u64 = 10;
// Higher than per user: many people may share one NAT address.
const MAX_PER_IP: u64 = 50;

#[derive(Clone)]
pub(crate) struct LoginLimiter {
    presence: Arc<dyn Presence>,
}

impl LoginLimiter {
    pub(crate) fn new(presence: Arc<dyn Presence>) -> Self {
        Self { presence }
    }

    fn keys(username: &str, ip: Option<&str>) -> (String, Option<String>) {
        let user_key = format!("authz:login-fail:user:{username}");
        let ip_key = ip
            .filter(|ip| !ip.is_empty() && ip.len() <= 64)
            .map(|ip| format!("authz:login-fail:ip:{ip}"));
        (user_key, ip_key)
    }

    /// `true` if this username or IP is currently locked. Fails open (with a
    /// warning) when presence is unavailable: Argon2 still slows guessing and
    /// logins keep working while Redis is down.
    pub(crate) async fn is_locked(&self, username: &str, ip: Option<&str>) -> bool {
        let (user_key, ip_key) = Self::keys(username, ip);
        if self.count(&user_key).await >= MAX_PER_USER {
            return true;
        }
        match ip_key {
            Some(ip_key) => self.count(&ip_key).await >= MAX_PER_IP,
            None => false,
        }
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

    pub(crate) async fn record_failure(&self, username: &str, ip: Option<&str>) {
        let (user_key, ip_key) = Self::keys(username, ip);
        if let Err(error) = self.presence.incr(&user_key, WINDOW).await {
            tracing::warn!(%error, "login limiter unavailable");
        }
        if let Some(ip_key) = ip_key
            && let Err(error) = self.presence.incr(&ip_key, WINDOW).await
        {
            tracing::warn!(%error, "login limiter unavailable");
        }
    }

    /// A successful login clears the username's counter (not the IP's).
    pub(crate) async fn record_success(&self, username: &str) {
        let (user_key, _) = Self::keys(username, None);
        if let Err(error) = self.presence.delete(&user_key).await {
            tracing::warn!(%error, "login limiter unavailable");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use phirepass_presence::MemoryPresence;

    #[tokio::test]
    async fn locks_after_max_failures() {
        let limiter = LoginLimiter::new(Arc::new(MemoryPresence::new()));
        for _ in 0..MAX_PER_USER - 1 {
            limiter.record_failure("alice", None).await;
        }
        assert!(!limiter.is_locked("alice", None).await);
        limiter.record_failure("alice", None).await;
        assert!(limiter.is_locked("alice", None).await);
        assert!(!limiter.is_locked("bob", None).await);
        limiter.record_success("alice").await;
        assert!(!limiter.is_locked("alice", None).await);
    }

    #[tokio::test]
    async fn locks_ip_across_usernames() {
        let limiter = LoginLimiter::new(Arc::new(MemoryPresence::new()));
        for i in 0..MAX_PER_IP {
            limiter
                .record_failure(&format!("u{i}"), Some("10.0.0.1"))
                .await;
        }
        assert!(limiter.is_locked("fresh", Some("10.0.0.1")).await);
        assert!(!limiter.is_locked("fresh", Some("10.0.0.2")).await);
        assert!(!limiter.is_locked("fresh", None).await);
    }
}
