//! In-process bus for `phirepass dev` and tests.
//!
//! Each subscription owns a bounded queue of [`QUEUE_CAPACITY`] messages
//! (the same default as async-nats). When a subscriber's queue is full the
//! message is dropped for that subscriber and a warning is logged once per
//! subscription: publishers never wait on slow subscribers, exactly like a
//! NATS slow consumer. Publishing never blocks or awaits.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, RwLock, RwLockReadGuard, RwLockWriteGuard};
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use tokio::sync::mpsc;
use tracing::{debug, warn};

use crate::subject::{check_headers, check_pattern, check_subject, subject_matches};
use crate::{Bus, BusError, Headers, Message, SubInner, Subscription};

/// Messages a subscription may hold before new ones are dropped.
pub const QUEUE_CAPACITY: usize = 65_536;

/// The in-process bus. Cloning shares the same subject space.
#[derive(Clone, Default)]
pub struct MemoryBus {
    inner: Arc<Inner>,
}

#[derive(Default)]
struct Inner {
    registry: RwLock<Registry>,
    next_id: AtomicU64,
}

#[derive(Default)]
struct Registry {
    // Literal subjects are looked up directly; only patterns are scanned.
    literal: HashMap<String, Vec<Slot>>,
    patterns: Vec<(String, Slot)>,
}

struct Slot {
    id: u64,
    tx: mpsc::Sender<Message>,
    warned: Arc<AtomicBool>,
}

impl Slot {
    fn offer(&self, subject: &str, msg: Message) {
        match self.tx.try_send(msg) {
            Ok(()) => {}
            Err(mpsc::error::TrySendError::Full(_)) => {
                if !self.warned.swap(true, Ordering::Relaxed) {
                    warn!(
                        subject,
                        "memory bus subscriber is too slow, dropping messages"
                    );
                }
            }
            // The subscription is being dropped; its guard removes the slot.
            Err(mpsc::error::TrySendError::Closed(_)) => {}
        }
    }
}

impl Inner {
    fn read(&self) -> RwLockReadGuard<'_, Registry> {
        self.registry.read().unwrap_or_else(|e| e.into_inner())
    }

    fn write(&self) -> RwLockWriteGuard<'_, Registry> {
        self.registry.write().unwrap_or_else(|e| e.into_inner())
    }

    /// Delivers to every matching subscriber; returns how many matched.
    fn deliver(&self, msg: Message) -> usize {
        let reg = self.read();
        let mut matched = 0;
        if let Some(slots) = reg.literal.get(&msg.subject) {
            for slot in slots {
                matched += 1;
                slot.offer(&msg.subject, msg.clone());
            }
        }
        for (pattern, slot) in &reg.patterns {
            if subject_matches(pattern, &msg.subject) {
                matched += 1;
                slot.offer(&msg.subject, msg.clone());
            }
        }
        matched
    }

    fn remove(&self, id: u64, pattern: &str) {
        let mut reg = self.write();
        if is_literal(pattern) {
            if let Some(slots) = reg.literal.get_mut(pattern) {
                slots.retain(|s| s.id != id);
                if slots.is_empty() {
                    reg.literal.remove(pattern);
                }
            }
        } else {
            reg.patterns.retain(|(_, s)| s.id != id);
        }
    }
}

fn is_literal(pattern: &str) -> bool {
    !pattern.split('.').any(|t| t == "*" || t == ">")
}

/// The receiving half of a memory subscription; unregisters on drop.
pub(crate) struct MemorySubscription {
    rx: mpsc::Receiver<Message>,
    inner: Arc<Inner>,
    id: u64,
    pattern: String,
}

impl MemorySubscription {
    pub(crate) fn poll_recv(&mut self, cx: &mut Context<'_>) -> Poll<Option<Message>> {
        self.rx.poll_recv(cx)
    }
}

impl Drop for MemorySubscription {
    fn drop(&mut self) {
        self.inner.remove(self.id, &self.pattern);
    }
}

impl MemoryBus {
    pub fn new() -> Self {
        Self::default()
    }

    fn subscribe_now(&self, pattern: &str) -> Result<MemorySubscription, BusError> {
        check_pattern(pattern)?;
        let id = self.inner.next_id.fetch_add(1, Ordering::Relaxed);
        let (tx, rx) = mpsc::channel(QUEUE_CAPACITY);
        let slot = Slot {
            id,
            tx,
            warned: Arc::new(AtomicBool::new(false)),
        };
        {
            let mut reg = self.inner.write();
            if is_literal(pattern) {
                reg.literal
                    .entry(pattern.to_owned())
                    .or_default()
                    .push(slot);
            } else {
                reg.patterns.push((pattern.to_owned(), slot));
            }
        }
        Ok(MemorySubscription {
            rx,
            inner: self.inner.clone(),
            id,
            pattern: pattern.to_owned(),
        })
    }

    fn publish_now(
        &self,
        subject: &str,
        reply: Option<String>,
        headers: Headers,
        payload: Bytes,
    ) -> Result<usize, BusError> {
        check_subject(subject)?;
        check_headers(&headers)?;
        Ok(self.inner.deliver(Message {
            subject: subject.to_owned(),
            reply,
            headers,
            payload,
        }))
    }
}

#[async_trait::async_trait]
impl Bus for MemoryBus {
    async fn publish(
        &self,
        subject: &str,
        headers: Headers,
        payload: Bytes,
    ) -> Result<(), BusError> {
        self.publish_now(subject, None, headers, payload)
            .map(|_| ())
    }

    async fn subscribe(&self, subject: &str) -> Result<Subscription, BusError> {
        Ok(Subscription {
            inner: SubInner::Memory(self.subscribe_now(subject)?),
        })
    }

    async fn request(
        &self,
        subject: &str,
        headers: Headers,
        payload: Bytes,
        timeout: Duration,
    ) -> Result<Message, BusError> {
        let inbox = format!(
            "_INBOX.{:016x}{:016x}",
            rand::random::<u64>(),
            rand::random::<u64>()
        );
        let mut sub = self.subscribe_now(&inbox)?;
        let matched = self.publish_now(subject, Some(inbox), headers, payload)?;
        if matched == 0 {
            debug!(subject, "memory bus request without responders");
            return Err(BusError::NoResponders);
        }
        match tokio::time::timeout(timeout, sub.rx.recv()).await {
            Ok(Some(msg)) => Ok(msg),
            Ok(None) => Err(BusError::Closed),
            Err(_) => Err(BusError::Timeout),
        }
    }

    async fn flush(&self) -> Result<(), BusError> {
        // Delivery into subscriber queues is synchronous: nothing to flush.
        Ok(())
    }
}

impl std::fmt::Debug for MemoryBus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MemoryBus").finish_non_exhaustive()
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use futures_util::StreamExt;

    #[tokio::test]
    async fn full_queue_drops_instead_of_blocking() {
        let bus = MemoryBus::new();
        let mut sub = bus.subscribe("q.x").await.unwrap();
        // Twice the capacity: publish must return every time without waiting.
        for i in 0..(2 * QUEUE_CAPACITY) as u64 {
            bus.publish("q.x", Vec::new(), Bytes::copy_from_slice(&i.to_be_bytes()))
                .await
                .unwrap();
        }
        let mut got = 0;
        while let Ok(Some(_)) = tokio::time::timeout(Duration::from_millis(50), sub.next()).await {
            got += 1;
        }
        assert_eq!(got, QUEUE_CAPACITY);
    }

    #[tokio::test]
    async fn drop_unregisters() {
        let bus = MemoryBus::new();
        let a = bus.subscribe("q.a").await.unwrap();
        let b = bus.subscribe("q.*").await.unwrap();
        assert_eq!(
            bus.publish_now("q.a", None, Vec::new(), Bytes::new())
                .unwrap(),
            2
        );
        drop(a);
        drop(b);
        assert_eq!(
            bus.publish_now("q.a", None, Vec::new(), Bytes::new())
                .unwrap(),
            0
        );
        let reg = bus.inner.read();
        assert!(reg.literal.is_empty() && reg.patterns.is_empty());
    }
}
