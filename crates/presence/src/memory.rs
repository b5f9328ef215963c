//! In-process implementation for single-process deployments and tests.
//!
//! TTLs are honoured lazily on read, and expired entries are swept at most
//! once per [`SWEEP_EVERY`] on write, so memory stays bounded without a
//! background task (and without needing a runtime at construction).

use std::collections::HashMap;
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use tokio::time::Instant;

use crate::{Presence, PresenceError, ttl_millis};

const SWEEP_EVERY: Duration = Duration::from_secs(1);

#[derive(Debug)]
struct Entry {
    value: String,
    expires_at: Instant,
}

#[derive(Debug)]
struct Inner {
    map: HashMap<String, Entry>,
    last_sweep: Instant,
}

/// Presence held in this process's memory.
#[derive(Debug)]
pub struct MemoryPresence {
    inner: Mutex<Inner>,
}

impl Default for MemoryPresence {
    fn default() -> Self {
        Self::new()
    }
}

impl MemoryPresence {
    pub fn new() -> Self {
        Self {
            inner: Mutex::new(Inner {
                map: HashMap::new(),
                last_sweep: Instant::now(),
            }),
        }
    }

    /// Number of entries held, expired or not (for tests of the sweep).
    pub fn raw_len(&self) -> usize {
        self.lock().map.len()
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        // A panic while holding the lock cannot leave the map inconsistent
        // (every update is a single insert/remove), so recover from poison.
        self.inner
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Lock for a write, sweeping expired entries if one is due.
    fn lock_for_write(&self, now: Instant) -> MutexGuard<'_, Inner> {
        let mut inner = self.lock();
        if now.duration_since(inner.last_sweep) >= SWEEP_EVERY {
            inner.map.retain(|_, e| e.expires_at > now);
            inner.last_sweep = now;
        }
        inner
    }
}

fn deadline(now: Instant, ttl: Duration) -> Instant {
    now + Duration::from_millis(ttl_millis(ttl))
}

#[async_trait::async_trait]
impl Presence for MemoryPresence {
    async fn put(&self, key: &str, value: &str, ttl: Duration) -> Result<(), PresenceError> {
        let now = Instant::now();
        let entry = Entry {
            value: value.to_owned(),
            expires_at: deadline(now, ttl),
        };
        self.lock_for_write(now).map.insert(key.to_owned(), entry);
        Ok(())
    }

    async fn get(&self, key: &str) -> Result<Option<String>, PresenceError> {
        let now = Instant::now();
        let inner = self.lock();
        Ok(inner
            .map
            .get(key)
            .filter(|e| e.expires_at > now)
            .map(|e| e.value.clone()))
    }

    async fn delete(&self, key: &str) -> Result<bool, PresenceError> {
        let now = Instant::now();
        let removed = self.lock_for_write(now).map.remove(key);
        Ok(removed.is_some_and(|e| e.expires_at > now))
    }

    async fn put_if_absent(
        &self,
        key: &str,
        value: &str,
        ttl: Duration,
    ) -> Result<bool, PresenceError> {
        let now = Instant::now();
        let mut inner = self.lock_for_write(now);
        if inner.map.get(key).is_some_and(|e| e.expires_at > now) {
            return Ok(false);
        }
        let entry = Entry {
            value: value.to_owned(),
            expires_at: deadline(now, ttl),
        };
        inner.map.insert(key.to_owned(), entry);
        Ok(true)
    }

    async fn replace_if(
        &self,
        key: &str,
        expected: &str,
        value: &str,
        ttl: Duration,
    ) -> Result<bool, PresenceError> {
        let now = Instant::now();
        let mut inner = self.lock_for_write(now);
        let Some(entry) = inner
            .map
            .get_mut(key)
            .filter(|e| e.expires_at > now && e.value == expected)
        else {
            return Ok(false);
        };
        entry.value = value.to_owned();
        entry.expires_at = deadline(now, ttl);
        Ok(true)
    }

    async fn delete_if(&self, key: &str, expected: &str) -> Result<bool, PresenceError> {
        let now = Instant::now();
        let mut inner = self.lock_for_write(now);
        let matches = inner
            .map
            .get(key)
            .is_some_and(|e| e.expires_at > now && e.value == expected);
        if matches {
            inner.map.remove(key);
        }
        Ok(matches)
    }

    async fn list(&self, prefix: &str) -> Result<Vec<(String, String)>, PresenceError> {
        let now = Instant::now();
        let inner = self.lock();
        let mut out: Vec<(String, String)> = inner
            .map
            .iter()
            .filter(|(k, e)| k.starts_with(prefix) && e.expires_at > now)
            .map(|(k, e)| (k.clone(), e.value.clone()))
            .collect();
        out.sort();
        Ok(out)
    }

    async fn incr(&self, key: &str, ttl: Duration) -> Result<u64, PresenceError> {
        let now = Instant::now();
        let mut inner = self.lock_for_write(now);
        let entry = inner
            .map
            .entry(key.to_owned())
            .and_modify(|e| {
                if e.expires_at <= now {
                    // Expired but not yet swept: start a new window.
                    e.value = "0".to_owned();
                    e.expires_at = deadline(now, ttl);
                }
            })
            .or_insert_with(|| Entry {
                value: "0".to_owned(),
                expires_at: deadline(now, ttl),
            });
        let n = entry.value.parse::<u64>().unwrap_or(0).saturating_add(1);
        entry.value = n.to_string();
        Ok(n)
    }
}
