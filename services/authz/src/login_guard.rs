//! Who may spend an Argon2 verification, decided before hashing.
//!
//! In the spirit of OpenSSH's `PerSourcePenalties`, a wrong password costs
//! its *source* (an IPv4 address or an IPv6 /64), never its target:
//!
//! - per source: every attempt from a source for a username it is not known
//!   for is counted before hashing; past [`LoginLimits::max_failures_per_ip`]
//!   in the window the source is refused without hashing, whatever name it
//!   tries.
//! - per (username, source): past [`LoginLimits::max_failures`] attempts that
//!   source waits for that username (the window is [`UserLimits::window`]
//!   while the source is not known for it, so one stranger feeds the
//!   per-username counter below only a few times per window). A correct
//!   password clears it.
//! - per username, from sources it is not known for, summed: past
//!   [`UserLimits::max_failures`] such sources wait until the window ends;
//!   this bounds guessing spread over many addresses.
//!
//! A source becomes known for a username when a correct password comes from
//! it, for [`UserLimits::known_source_ttl`]. A known source is never held
//! back by other sources' failures, so a stranger cannot lock a user out of
//! the places she logs in from; at worst she waits one per-username window
//! on an address she never used. Nothing here ends or refuses a session, an
//! API token or an access decision.
//!
//! Known and unknown usernames go through the same presence calls, so the
//! answer time says nothing about which names exist.

use crate::limiter::{LoginLimiter, LoginLimits, UserLimits, source_of};
use crate::validate;

/// Why an attempt was refused before hashing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Refusal {
    /// The source is over its limit for every username.
    Source,
    /// This source is over its limit for this username.
    Pair,
    /// Too many attempts for this username from unknown sources.
    User,
}

impl Refusal {
    pub(crate) fn why(self) -> &'static str {
        match self {
            Refusal::Source => "too many attempts from this source",
            Refusal::Pair => "too many failures for this username from this source",
            Refusal::User => "too many failures for this username from unknown sources",
        }
    }
}

/// An attempt allowed to hash; report its outcome with
/// [`LoginLimiter::password_ok`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Admission {
    name: String,
    source: String,
    pub(crate) known: bool,
}

/// Presence keys use the username only when it is well formed (an
/// attacker's arbitrary string never becomes a key); malformed names never
/// exist, so they share one bucket.
fn key_name(username: &str) -> &str {
    if validate::username(username).is_ok() {
        username
    } else {
        "-"
    }
}

fn source_key(source: &str) -> String {
    format!("authz:login:src:{source}")
}

fn pair_key(name: &str, source: &str) -> String {
    format!("authz:login:pair:{name}:{source}")
}

fn user_key(name: &str) -> String {
    format!("authz:login:user:{name}")
}

fn known_key(name: &str, source: &str) -> String {
    format!("authz:login:known:{name}:{source}")
}

impl LoginLimiter {
    async fn is_known(&self, name: &str, source: &str) -> bool {
        match self.presence.get(&known_key(name, source)).await {
            Ok(value) => value.is_some(),
            Err(error) => {
                tracing::warn!(%error, "attempt limiter unavailable");
                false
            }
        }
    }

    /// Counts a password attempt for `username` from `ip` and decides,
    /// before any hashing, whether it may be checked. A known source reads
    /// the per-source and per-username counters instead of bumping them, so
    /// both paths cost the same presence round trips.
    pub(crate) async fn admit_password(
        &self,
        username: &str,
        ip: Option<&str>,
    ) -> Result<Admission, Refusal> {
        let (limits, users): (LoginLimits, UserLimits) = (self.limits(), self.user_limits());
        let name = key_name(username).to_owned();
        let source = source_of(ip);
        let known = self.is_known(&name, &source).await;

        let per_source = if known {
            self.count(&source_key(&source)).await
        } else {
            self.bump(&source_key(&source), limits.window).await
        };
        if !known && per_source > limits.max_failures_per_ip {
            return Err(Refusal::Source);
        }
        let pair_window = if known { limits.window } else { users.window };
        if self.bump(&pair_key(&name, &source), pair_window).await > limits.max_failures {
            return Err(Refusal::Pair);
        }
        let per_user = if known {
            self.count(&user_key(&name)).await
        } else {
            self.bump(&user_key(&name), users.window).await
        };
        if !known && per_user > users.max_failures {
            return Err(Refusal::User);
        }
        Ok(Admission {
            name,
            source,
            known,
        })
    }

    /// The password was right (and the user enabled): the source's failures
    /// for the username are forgotten and the source is known for it. The
    /// per-source count is not lowered: an attacker logging in to her own
    /// account between guesses gains nothing.
    pub(crate) async fn password_ok(&self, admission: &Admission) {
        let Admission { name, source, .. } = admission;
        if let Err(error) = self.presence.delete(&pair_key(name, source)).await {
            tracing::warn!(%error, "attempt limiter unavailable");
        }
        let ttl = self.user_limits().known_source_ttl;
        if let Err(error) = self.presence.put(&known_key(name, source), "1", ttl).await {
            tracing::warn!(%error, "attempt limiter unavailable");
        }
    }

    /// For key logins, which are never counted (clients offer several keys):
    /// `true` while the source has used up its per-source allowance and is
    /// not known for `username`.
    pub(crate) async fn source_refused(&self, username: &str, ip: Option<&str>) -> bool {
        let source = source_of(ip);
        if self.is_known(key_name(username), &source).await {
            return false;
        }
        // Refused once the next password attempt from there would be.
        self.reached(&source_key(&source), self.limits().max_failures_per_ip)
            .await
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use std::sync::Arc;
    use std::time::Duration;

    use phirepass_presence::MemoryPresence;

    use super::*;

    fn limiter(per_pair: u64, per_source: u64, per_user: u64) -> LoginLimiter {
        let limits = LoginLimits {
            max_failures: per_pair,
            max_failures_per_ip: per_source,
            window: Duration::from_secs(60),
        };
        let users = UserLimits {
            max_failures: per_user,
            ..UserLimits::default()
        };
        LoginLimiter::new(Arc::new(MemoryPresence::new()), limits, users)
    }

    #[tokio::test]
    async fn a_stranger_locks_only_his_own_source() {
        let l = limiter(5, 50, 20);
        let home = l.admit_password("alice", Some("192.0.2.1")).await.unwrap();
        l.password_ok(&home).await;
        for _ in 0..5 {
            l.admit_password("alice", Some("203.0.113.9"))
                .await
                .unwrap();
        }
        for _ in 5..50 {
            let refused = l.admit_password("alice", Some("203.0.113.9")).await;
            assert_eq!(refused, Err(Refusal::Pair));
        }
        // Over the per-source limit: refused for every name now.
        let refused = l.admit_password("bob", Some("203.0.113.9")).await;
        assert_eq!(refused, Err(Refusal::Source));
        assert!(l.source_refused("bob", Some("203.0.113.9")).await);
        // Alice, at home and elsewhere, is not held back.
        let again = l.admit_password("alice", Some("192.0.2.1")).await.unwrap();
        assert!(again.known);
        assert!(
            l.admit_password("alice", Some("198.51.100.1"))
                .await
                .is_ok()
        );
        assert!(!l.source_refused("alice", Some("192.0.2.1")).await);
    }

    #[tokio::test]
    async fn many_sources_hold_back_only_unknown_sources() {
        let l = limiter(5, 50, 3);
        let home = l.admit_password("alice", Some("192.0.2.1")).await.unwrap();
        l.password_ok(&home).await;
        // Alice's own first login counted once; two strangers reach three.
        for i in 0..2 {
            let ip = format!("203.0.113.{i}");
            l.admit_password("alice", Some(&ip)).await.unwrap();
        }
        let refused = l.admit_password("alice", Some("198.51.100.1")).await;
        assert_eq!(refused, Err(Refusal::User));
        assert!(l.admit_password("alice", Some("192.0.2.1")).await.is_ok());
        // Other names are unaffected.
        assert!(l.admit_password("bob", Some("198.51.100.1")).await.is_ok());
    }

    #[tokio::test]
    async fn malformed_names_share_one_bucket() {
        let l = limiter(2, 50, 20);
        l.admit_password("Not A Name", None).await.unwrap();
        l.admit_password(&"x".repeat(5000), None).await.unwrap();
        let refused = l.admit_password("another BAD one", None).await;
        assert_eq!(refused, Err(Refusal::Pair));
    }
}
