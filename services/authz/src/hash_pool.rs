//! A bounded pool for Argon2: each hash or verification takes about 19 MiB
//! and tens of milliseconds of CPU, so at most `concurrency` run at once (on
//! the blocking pool), at most `queue` more wait, each for at most
//! `queue_wait`. Anything beyond that is refused at once with
//! [`AuthzError::Busy`] instead of piling up memory and latency.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::crypto;
use crate::error::{AuthzError, Result};

/// How much Argon2 work runs and waits at once (see `AuthzConfig`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HashLimits {
    /// Hashes running at once (default: the number of CPUs).
    pub concurrency: usize,
    /// Requests waiting for a slot beyond those; more are refused at once.
    pub queue: usize,
    /// How long a request waits for a slot before it is refused.
    pub queue_wait: Duration,
}

impl Default for HashLimits {
    fn default() -> Self {
        let cpus = std::thread::available_parallelism().map_or(2, std::num::NonZeroUsize::get);
        Self {
            concurrency: cpus,
            queue: 64,
            queue_wait: Duration::from_secs(2),
        }
    }
}

#[derive(Clone)]
pub(crate) struct HashPool {
    inner: Arc<Inner>,
}

struct Inner {
    slots: Arc<Semaphore>,
    limits: HashLimits,
    waiting: AtomicUsize,
    running: AtomicUsize,
    /// The most hashes ever seen running at once (tests check the bound).
    peak: AtomicUsize,
}

/// Decrements the waiting count however the wait ends (a dropped request too).
struct Waiting<'a>(&'a AtomicUsize);

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

impl HashPool {
    pub(crate) fn new(limits: HashLimits) -> Self {
        let limits = HashLimits {
            concurrency: limits.concurrency.max(1),
            ..limits
        };
        Self {
            inner: Arc::new(Inner {
                slots: Arc::new(Semaphore::new(limits.concurrency)),
                limits,
                waiting: AtomicUsize::new(0),
                running: AtomicUsize::new(0),
                peak: AtomicUsize::new(0),
            }),
        }
    }

    /// Hashes a new password (Argon2id, a random salt).
    pub(crate) async fn hash(&self, password: String) -> Result<String> {
        self.run(move || crypto::hash_password_blocking(&password))
            .await?
    }

    /// `true` if `password` matches the PHC `hash`; malformed hashes never match.
    pub(crate) async fn verify(&self, password: String, hash: String) -> Result<bool> {
        self.run(move || crypto::verify_password_blocking(&password, &hash))
            .await
    }

    async fn slot(&self) -> Result<OwnedSemaphorePermit> {
        let inner = &self.inner;
        if let Ok(permit) = inner.slots.clone().try_acquire_owned() {
            return Ok(permit);
        }
        let queued = inner.waiting.fetch_add(1, Ordering::SeqCst);
        let _waiting = Waiting(&inner.waiting);
        if queued >= inner.limits.queue {
            tracing::warn!(
                queued,
                running = inner.running.load(Ordering::SeqCst),
                "password hashing saturated: request refused"
            );
            return Err(AuthzError::Busy);
        }
        match tokio::time::timeout(inner.limits.queue_wait, inner.slots.clone().acquire_owned())
            .await
        {
            Ok(Ok(permit)) => Ok(permit),
            // The semaphore is never closed; treat it like a timeout anyway.
            Ok(Err(_)) | Err(_) => {
                tracing::warn!(
                    wait_ms = inner.limits.queue_wait.as_millis(),
                    "password hashing saturated: no slot in time"
                );
                Err(AuthzError::Busy)
            }
        }
    }

    /// Runs `job` on the blocking pool holding a slot. The slot is released
    /// when the job ends, not when the caller stops waiting: a cancelled
    /// request cannot free room for more Argon2 than the bound.
    async fn run<T: Send + 'static>(&self, job: impl FnOnce() -> T + Send + 'static) -> Result<T> {
        let permit = self.slot().await?;
        let inner = self.inner.clone();
        tokio::task::spawn_blocking(move || {
            let now = inner.running.fetch_add(1, Ordering::SeqCst) + 1;
            inner.peak.fetch_max(now, Ordering::SeqCst);
            let out = job();
            inner.running.fetch_sub(1, Ordering::SeqCst);
            drop(permit);
            out
        })
        .await
        .map_err(|e| AuthzError::Hash(e.to_string()))
    }

    #[cfg(test)]
    fn peak(&self) -> usize {
        self.inner.peak.load(Ordering::SeqCst)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    fn pool(concurrency: usize, queue: usize, wait_ms: u64) -> HashPool {
        HashPool::new(HashLimits {
            concurrency,
            queue,
            queue_wait: Duration::from_millis(wait_ms),
        })
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn never_more_than_the_bound_run_at_once() {
        let pool = pool(2, 100, 60_000);
        let hash = pool.hash("correct horse".into()).await.unwrap();
        let checks: Vec<_> = (0..12)
            .map(|i| {
                let (pool, hash) = (pool.clone(), hash.clone());
                tokio::spawn(async move { pool.verify(format!("guess {i}"), hash).await })
            })
            .collect();
        for check in checks {
            assert!(!check.await.unwrap().unwrap());
        }
        assert_eq!(pool.peak(), 2);
        assert!(pool.verify("correct horse".into(), hash).await.unwrap());
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn excess_is_refused_at_once_when_the_queue_is_full() {
        // One slot, one waiter: of many at once, most are refused.
        let pool = pool(1, 1, 60_000);
        let hash = pool.hash("correct horse".into()).await.unwrap();
        let checks: Vec<_> = (0..10)
            .map(|_| {
                let (pool, hash) = (pool.clone(), hash.clone());
                tokio::spawn(async move { pool.verify("wrong".into(), hash).await })
            })
            .collect();
        let mut busy = 0;
        for check in checks {
            match check.await.unwrap() {
                Err(AuthzError::Busy) => busy += 1,
                other => assert!(!other.unwrap()),
            }
        }
        assert!(busy >= 7, "{busy} refused");
        assert_eq!(pool.peak(), 1);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn a_waiter_gives_up_after_the_queue_wait() {
        let pool = pool(1, 10, 1);
        let hash = pool.hash("correct horse".into()).await.unwrap();
        let first = {
            let (pool, hash) = (pool.clone(), hash.clone());
            tokio::spawn(async move { pool.verify("wrong".into(), hash).await })
        };
        tokio::time::sleep(Duration::from_millis(5)).await;
        let second = pool.verify("wrong".into(), hash).await;
        assert!(matches!(second, Err(AuthzError::Busy)), "{second:?}");
        assert!(!first.await.unwrap().unwrap());
    }
}
