//! Per-source limits before authentication, so one address cannot fill the global cap of
//! unauthenticated connections and lock everybody out: a cap on each source's unauthenticated
//! connections, and penalties (OpenSSH's `PerSourcePenalties`) for sources that fail to log
//! in, leave before trying, overstay the deadline or keep knocking. A penalised source's
//! connections are closed before the banner, so a flood (DHEat) costs no key exchange.
//!
//! A source is an IPv4 address or an IPv6 /64. The table is bounded (`max_sources`); an entry
//! lives while its source holds unauthenticated connections or owes a penalty.

mod limits;

use std::collections::HashMap;
use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use tokio::time::Instant;
use tracing::{info, warn};

pub use limits::{Penalties, PerSourceLimits, parse_penalties};

/// How often a full table is swept for expired entries, at most.
const PRUNE_INTERVAL: Duration = Duration::from_secs(1);

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(crate) enum Source {
    V4(Ipv4Addr),
    /// The upper 64 bits.
    V6(u64),
}

impl Source {
    pub fn of(ip: IpAddr) -> Self {
        match ip.to_canonical() {
            IpAddr::V4(v4) => Source::V4(v4),
            IpAddr::V6(v6) => Source::V6((u128::from(v6) >> 64) as u64),
        }
    }
}

impl fmt::Display for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Source::V4(v4) => write!(f, "{v4}"),
            Source::V6(prefix) => write!(f, "{}/64", Ipv6Addr::from(u128::from(*prefix) << 64)),
        }
    }
}

/// Why a connection was not admitted.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Refusal {
    /// The source is penalised for this long still.
    Penalised(Duration),
    /// The source already holds its share of unauthenticated connections.
    TooMany,
}

/// How an unauthenticated connection ended, for its penalty.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Outcome {
    /// Logged in, or verified and answering a target's questions: no penalty.
    Verified,
    AuthFailed,
    NoAuth,
    GraceExceeded,
    /// The edge is stopping: not the client's doing.
    Shutdown,
}

#[derive(Default)]
struct Entry {
    unauthenticated: usize,
    /// When the outstanding penalty runs out.
    until: Option<Instant>,
    /// The outstanding penalty reached `min`: connections are refused until `until`.
    blocked: bool,
}

impl Entry {
    fn expire(&mut self, now: Instant) {
        if self.until.is_some_and(|u| u <= now) {
            self.until = None;
            self.blocked = false;
        }
    }

    fn idle(&self) -> bool {
        self.unauthenticated == 0 && self.until.is_none()
    }
}

#[derive(Default)]
struct Table {
    entries: HashMap<Source, Entry>,
    last_prune: Option<Instant>,
    overflowing: bool,
}

pub(crate) struct PerSource {
    limits: PerSourceLimits,
    table: Arc<Mutex<Table>>,
}

/// One admitted unauthenticated connection; counts against its source until dropped.
pub(crate) struct SourceSlot {
    tracked: Option<(Arc<Mutex<Table>>, Source)>,
}

impl Drop for SourceSlot {
    fn drop(&mut self) {
        if let Some((table, source)) = self.tracked.take() {
            let mut table = lock(&table);
            if let Some(entry) = table.entries.get_mut(&source) {
                entry.unauthenticated = entry.unauthenticated.saturating_sub(1);
                if entry.idle() {
                    table.entries.remove(&source);
                }
            }
        }
    }
}

fn lock(table: &Mutex<Table>) -> MutexGuard<'_, Table> {
    // Every update leaves the table consistent, so a panic elsewhere cannot poison its meaning.
    table
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl PerSource {
    pub fn new(limits: PerSourceLimits) -> Self {
        Self {
            limits,
            table: Arc::default(),
        }
    }

    fn enabled(&self) -> bool {
        self.limits.max_unauthenticated > 0 || self.limits.penalties.is_some()
    }

    /// Admits a new connection from `ip`, or says why not (a refusal adds its penalty).
    pub fn admit(&self, ip: IpAddr) -> Result<SourceSlot, Refusal> {
        if !self.enabled() {
            return Ok(SourceSlot { tracked: None });
        }
        let source = Source::of(ip);
        let now = Instant::now();
        let mut table = lock(&self.table);
        if !table.entries.contains_key(&source) && !self.room(&mut table, now) {
            return Ok(SourceSlot { tracked: None });
        }
        let entry = table.entries.entry(source).or_default();
        entry.expire(now);
        let refusal = if entry.blocked {
            entry
                .until
                .map(|until| Refusal::Penalised(until.saturating_duration_since(now)))
        } else if self.limits.max_unauthenticated > 0
            && entry.unauthenticated >= self.limits.max_unauthenticated
        {
            Some(Refusal::TooMany)
        } else {
            None
        };
        if let Some(refusal) = refusal {
            let reason = match refusal {
                Refusal::TooMany => "too many unauthenticated connections",
                Refusal::Penalised(_) => "connection while penalised",
            };
            self.penalise(entry, source, now, |p| p.refused, reason);
            if entry.idle() {
                table.entries.remove(&source);
            }
            return Err(refusal);
        }
        entry.unauthenticated += 1;
        Ok(SourceSlot {
            tracked: Some((self.table.clone(), source)),
        })
    }

    /// Records how an unauthenticated connection from `ip` ended.
    pub fn closed(&self, ip: IpAddr, outcome: Outcome) {
        let (amount, reason): (fn(&Penalties) -> Duration, &str) = match outcome {
            Outcome::Verified | Outcome::Shutdown => return,
            Outcome::AuthFailed => (|p| p.authfail, "authentication failed"),
            Outcome::NoAuth => (|p| p.noauth, "closed before authenticating"),
            Outcome::GraceExceeded => (|p| p.grace_exceeded, "authentication deadline exceeded"),
        };
        if self.limits.penalties.is_none() {
            return;
        }
        let source = Source::of(ip);
        let now = Instant::now();
        let mut table = lock(&self.table);
        if !table.entries.contains_key(&source) && !self.room(&mut table, now) {
            return;
        }
        let entry = table.entries.entry(source).or_default();
        entry.expire(now);
        self.penalise(entry, source, now, amount, reason);
    }

    fn penalise(
        &self,
        entry: &mut Entry,
        source: Source,
        now: Instant,
        amount: fn(&Penalties) -> Duration,
        reason: &str,
    ) {
        let Some(p) = &self.limits.penalties else {
            return;
        };
        let base = entry.until.filter(|u| *u > now).unwrap_or(now);
        let until = (base + amount(p)).min(now + p.max);
        entry.until = Some(until);
        let owed = until - now;
        if !entry.blocked && owed >= p.min {
            entry.blocked = true;
            info!(%source, reason, block_secs = owed.as_secs(), "ssh source penalised: its connections are refused until the penalty runs out");
        }
    }

    /// Whether a new source fits, sweeping expired entries (at most once per interval).
    fn room(&self, table: &mut Table, now: Instant) -> bool {
        if table.entries.len() < self.limits.max_sources {
            table.overflowing = false;
            return true;
        }
        if table
            .last_prune
            .is_none_or(|last| now.duration_since(last) >= PRUNE_INTERVAL)
        {
            table.last_prune = Some(now);
            table.entries.retain(|_, e| {
                e.expire(now);
                !e.idle()
            });
        }
        let room = table.entries.len() < self.limits.max_sources;
        if !room && !std::mem::replace(&mut table.overflowing, true) {
            warn!(
                max_sources = self.limits.max_sources,
                "per-source table full: new sources are not tracked until entries expire"
            );
        }
        room
    }

    #[cfg(test)]
    fn tracked(&self) -> usize {
        lock(&self.table).entries.len()
    }
}

#[cfg(test)]
mod tests;
