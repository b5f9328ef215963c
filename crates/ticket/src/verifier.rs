//! The holder's and the agent's side: checks a ticket against the pinned keys and the open in
//! front of it, and remembers nonces until their ticket expires so none is used twice.

use std::collections::{BTreeSet, HashMap};
use std::sync::{Mutex, MutexGuard, RwLock};

use crate::claims::{self, Claims, Scope};
use crate::error::TicketError;
use crate::keys::{KeyEndorsement, KeySet};

/// Clock difference allowed between authz and a verifier.
pub const CLOCK_SKEW_MS: u64 = 5_000;
/// Longest lifetime a verifier accepts, whatever the ticket says (authz issues 30 s ones).
pub const MAX_TTL_MS: u64 = 120_000;
/// Nonces remembered at most; past it, opens are refused until tickets expire (fail closed).
pub const REPLAY_CAPACITY: usize = 65_536;

/// Nonces of live tickets, bounded; expired entries are dropped as time passes.
#[derive(Default)]
pub struct ReplayCache {
    seen: HashMap<String, u64>,
    /// (expiry, nonce), to drop expired entries in order.
    order: BTreeSet<(u64, String)>,
    capacity: usize,
}

impl ReplayCache {
    pub fn new(capacity: usize) -> Self {
        Self {
            capacity,
            ..Self::default()
        }
    }

    pub fn len(&self) -> usize {
        self.seen.len()
    }

    pub fn is_empty(&self) -> bool {
        self.seen.is_empty()
    }

    /// Records `nonce` (kept until `until_ms`); refuses one already recorded.
    pub fn check(&mut self, nonce: &str, until_ms: u64, now_ms: u64) -> Result<(), TicketError> {
        while let Some((exp, _)) = self.order.first() {
            if *exp >= now_ms {
                break;
            }
            if let Some((_, old)) = self.order.pop_first() {
                self.seen.remove(&old);
            }
        }
        if self.seen.contains_key(nonce) {
            return Err(TicketError::Replayed);
        }
        if self.seen.len() >= self.capacity {
            return Err(TicketError::ReplayCacheFull);
        }
        self.seen.insert(nonce.to_owned(), until_ms);
        self.order.insert((until_ms, nonce.to_owned()));
        Ok(())
    }
}

/// What an open may carry besides a user's ticket.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Audience {
    /// An agent: every open is some user's.
    Agent,
    /// An `ssh -R` holder: public HTTP tunnels have no user.
    Tunnel,
}

pub struct TicketVerifier {
    keys: RwLock<KeySet>,
    replay: Mutex<ReplayCache>,
    audience: Audience,
}

impl TicketVerifier {
    pub fn new(keys: KeySet, audience: Audience) -> Self {
        Self {
            keys: RwLock::new(keys),
            replay: Mutex::new(ReplayCache::new(REPLAY_CAPACITY)),
            audience,
        }
    }

    pub fn keys(&self) -> KeySet {
        self.keys.read().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// Replaces the trusted keys (a holder refreshing from authz, which it trusts over TLS).
    pub fn set_keys(&self, keys: KeySet) {
        *self.keys.write().unwrap_or_else(|p| p.into_inner()) = keys;
    }

    /// Adds the endorsed keys a trusted key vouches for; returns the ids added.
    pub fn accept_endorsed(&self, endorsements: &[KeyEndorsement]) -> Vec<String> {
        self.keys
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .accept_all(endorsements)
    }

    fn replay(&self) -> MutexGuard<'_, ReplayCache> {
        // A poisoned lock only means a verifier panicked mid-insert; the cache is still sound.
        self.replay.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Verifies `ticket` for the open `scope` at `now_ms`: signature by a trusted key, within
    /// its lifetime (with [`CLOCK_SKEW_MS`]), for this node, target, edge and stream, and
    /// never seen before. Returns the claims (the user, for logs).
    pub fn verify(
        &self,
        ticket: Option<&str>,
        scope: &Scope,
        now_ms: u64,
    ) -> Result<Claims, TicketError> {
        let parsed = claims::parse(ticket.ok_or(TicketError::Missing)?)?;
        let claims = parsed.claims;
        {
            let keys = self.keys.read().unwrap_or_else(|p| p.into_inner());
            if keys.is_empty() {
                return Err(TicketError::NoKeys);
            }
            let key = keys
                .get(&claims.kid)
                .ok_or_else(|| TicketError::UnknownKey(claims.kid.clone()))?;
            key.verify(parsed.signed, &parsed.signature)?;
        }
        if claims.exp.saturating_add(CLOCK_SKEW_MS) < now_ms {
            return Err(TicketError::Expired);
        }
        if claims.iat > now_ms.saturating_add(CLOCK_SKEW_MS) {
            return Err(TicketError::NotYetValid);
        }
        if claims.exp < claims.iat || claims.exp - claims.iat > MAX_TTL_MS {
            return Err(TicketError::TooLong);
        }
        claims.scope_matches(scope)?;
        if claims.user.is_empty() && self.audience == Audience::Agent {
            return Err(TicketError::NoUser);
        }
        self.replay().check(
            &claims.nonce,
            claims.exp.saturating_add(CLOCK_SKEW_MS),
            now_ms,
        )?;
        Ok(claims)
    }
}
