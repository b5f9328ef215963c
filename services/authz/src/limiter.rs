//! Attempt counters in presence (fixed windows, shared by every replica).
//!
//! Password logins are counted so that a stranger cannot turn them against
//! someone else (see [`crate::login_guard`]): per source address, per
//! (username, source), and per username from sources it never logged in
//! from. No counter ever touches a user's sessions, API tokens or access
//! decisions. Setup, invitation and device codes use [`attempt_key`].

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use phirepass_presence::Presence;

/// Per-source and per-(username, source) thresholds (see `AuthzConfig`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LoginLimits {
    /// Failed password attempts for one username from one source within
    /// `window` (within [`UserLimits::window`] while that source is not
    /// known for the username) before that source must wait for the
    /// username. Other sources are unaffected.
    pub max_failures: u64,
    /// Password attempts from one source (an IPv4 address or an IPv6 /64),
    /// for usernames the source is not known for, within `window` before
    /// the source must wait. Checked and counted before any hashing.
    pub max_failures_per_ip: u64,
    /// The counting window; a wait lasts until the window of its first
    /// attempt ends.
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

/// The per-username ceiling against guessing spread over many sources.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UserLimits {
    /// Password attempts for one username from sources not known for it,
    /// summed over all of them, within `window`; beyond it such sources
    /// wait until the window ends. Known sources never wait for it.
    pub max_failures: u64,
    pub window: Duration,
    /// How long a source stays known for a username after a correct
    /// password from it (renewed by each one).
    pub known_source_ttl: Duration,
}

impl Default for UserLimits {
    fn default() -> Self {
        Self {
            max_failures: 20,
            window: Duration::from_secs(15 * 60),
            known_source_ttl: Duration::from_secs(30 * 24 * 3600),
        }
    }
}

/// The bucket a client address counts in: an IPv4 address (IPv4-mapped
/// IPv6 included), or the /64 of an IPv6 address, since one host usually
/// holds a whole /64. Anything else, a missing address included, shares
/// the one bucket `-`: leaving the address out does not lift a limit.
pub(crate) fn source_of(ip: Option<&str>) -> String {
    match ip.map(str::trim).and_then(|ip| ip.parse::<IpAddr>().ok()) {
        Some(IpAddr::V4(v4)) => v4.to_string(),
        Some(IpAddr::V6(v6)) => match v6.to_ipv4_mapped() {
            Some(v4) => v4.to_string(),
            None => {
                let s = v6.segments();
                format!("{:x}:{:x}:{:x}:{:x}::/64", s[0], s[1], s[2], s[3])
            }
        },
        None => "-".to_owned(),
    }
}

/// The presence key counting `what` (e.g. "setup-fail") for `who` (an IP or
/// a user id). An IP counts in its [`source_of`] bucket; a missing or
/// oversized `who` shares one bucket, so leaving it out does not lift the
/// limit.
pub(crate) fn attempt_key(what: &str, who: Option<&str>) -> String {
    let who = match who.filter(|w| !w.is_empty() && w.len() <= 64) {
        Some(w) if w.parse::<IpAddr>().is_ok() => source_of(Some(w)),
        Some(w) => w.to_owned(),
        None => "-".to_owned(),
    };
    format!("authz:{what}:{who}")
}

#[derive(Clone)]
pub(crate) struct LoginLimiter {
    pub(crate) presence: Arc<dyn Presence>,
    limits: LoginLimits,
    user_limits: UserLimits,
}

impl LoginLimiter {
    pub(crate) fn new(
        presence: Arc<dyn Presence>,
        limits: LoginLimits,
        user_limits: UserLimits,
    ) -> Self {
        Self {
            presence,
            limits,
            user_limits,
        }
    }

    pub(crate) fn limits(&self) -> LoginLimits {
        self.limits
    }

    pub(crate) fn user_limits(&self) -> UserLimits {
        self.user_limits
    }

    /// The count under `key` (0 when absent). Fails open (with a warning)
    /// when presence is unavailable: the hashing pool still bounds the
    /// work, and logins keep working while Redis is down.
    pub(crate) async fn count(&self, key: &str) -> u64 {
        match self.presence.get(key).await {
            Ok(value) => value.and_then(|v| v.parse().ok()).unwrap_or(0),
            Err(error) => {
                tracing::warn!(%error, "attempt limiter unavailable");
                0
            }
        }
    }

    /// `true` while `key` (e.g. [`attempt_key`]) has counted `max` events or
    /// more in its window. Fails open like [`Self::count`].
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
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn sources_group_ipv6_by_64_and_unmap_ipv4() {
        assert_eq!(source_of(Some("198.51.100.7")), "198.51.100.7");
        assert_eq!(source_of(Some("::ffff:198.51.100.7")), "198.51.100.7");
        assert_eq!(
            source_of(Some("2001:db8:1:2:aaaa::1")),
            source_of(Some("2001:db8:1:2:ffff:1:2:3"))
        );
        assert_eq!(source_of(Some("2001:db8:1:2::9")), "2001:db8:1:2::/64");
        assert_ne!(
            source_of(Some("2001:db8:1:2::1")),
            source_of(Some("2001:db8:1:3::1"))
        );
        for missing in [None, Some(""), Some("not an address"), Some("a:b:c")] {
            assert_eq!(source_of(missing), "-", "{missing:?}");
        }
    }

    #[test]
    fn attempt_keys_bucket_addresses_only() {
        assert_eq!(
            attempt_key("setup-fail", Some("2001:db8::1")),
            attempt_key("setup-fail", Some("2001:db8::2"))
        );
        assert_eq!(
            attempt_key("device-fail", Some("u1")),
            "authz:device-fail:u1"
        );
        assert_eq!(
            attempt_key("x", None),
            attempt_key("x", Some(&"y".repeat(65)))
        );
    }
}
