//! [`EventLog`]: an append-only, replayable log of events (audit decisions,
//! presence changes) that survives restarts on NATS JetStream, plus a
//! bounded in-memory log for `phirepass dev` and tests.

use std::collections::VecDeque;
use std::sync::Mutex;

use bytes::Bytes;

use crate::BusError;
use crate::subject::{check_pattern, check_subject, subject_matches};

/// Ring size of [`MemoryEventLog::new`].
pub const MEMORY_EVENTS: usize = 10_000;
/// The most events one [`EventLog::read`] returns.
pub const MAX_READ: usize = 10_000;

#[async_trait::async_trait]
pub trait EventLog: Send + Sync + 'static {
    /// Appends one event; returns once it is stored (on JetStream: acked,
    /// so it survives a server restart).
    async fn append(&self, subject: &str, payload: Bytes) -> Result<(), BusError>;

    /// Up to `max` (capped at [`MAX_READ`]) events whose subject matches
    /// `subject_filter` (wildcards allowed), with sequence `>= from_seq`,
    /// oldest first. Sequences start at 1 and only grow; they are shared by
    /// every subject of the log, so they have gaps for a filtered read.
    async fn read(
        &self,
        subject_filter: &str,
        from_seq: u64,
        max: usize,
    ) -> Result<Vec<(u64, Bytes)>, BusError>;
}

/// A bounded in-memory log: the oldest events fall off past its capacity.
#[derive(Debug)]
pub struct MemoryEventLog {
    inner: Mutex<Ring>,
}

#[derive(Debug)]
struct Ring {
    capacity: usize,
    next_seq: u64,
    events: VecDeque<(u64, String, Bytes)>,
}

impl MemoryEventLog {
    /// A log keeping the last [`MEMORY_EVENTS`] events.
    pub fn new() -> Self {
        Self::with_capacity(MEMORY_EVENTS)
    }

    pub fn with_capacity(capacity: usize) -> Self {
        Self {
            inner: Mutex::new(Ring {
                capacity: capacity.max(1),
                next_seq: 1,
                events: VecDeque::new(),
            }),
        }
    }

    fn ring(&self) -> std::sync::MutexGuard<'_, Ring> {
        // A panic while holding the lock cannot leave the ring inconsistent
        // (every mutation is a single push/pop), so keep using it.
        self.inner
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

impl Default for MemoryEventLog {
    fn default() -> Self {
        Self::new()
    }
}

#[async_trait::async_trait]
impl EventLog for MemoryEventLog {
    async fn append(&self, subject: &str, payload: Bytes) -> Result<(), BusError> {
        check_subject(subject)?;
        let mut ring = self.ring();
        let seq = ring.next_seq;
        ring.next_seq += 1;
        if ring.events.len() == ring.capacity {
            ring.events.pop_front();
        }
        ring.events.push_back((seq, subject.to_owned(), payload));
        Ok(())
    }

    async fn read(
        &self,
        subject_filter: &str,
        from_seq: u64,
        max: usize,
    ) -> Result<Vec<(u64, Bytes)>, BusError> {
        check_pattern(subject_filter)?;
        let ring = self.ring();
        Ok(ring
            .events
            .iter()
            .filter(|(seq, subject, _)| {
                *seq >= from_seq && subject_matches(subject_filter, subject)
            })
            .take(max.min(MAX_READ))
            .map(|(seq, _, payload)| (*seq, payload.clone()))
            .collect())
    }
}
