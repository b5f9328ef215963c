//! The message bus every Phirepass service talks through.
//!
//! [`Bus`] is a small NATS-shaped interface (subjects with `*` and `>`
//! wildcards, headers, request/reply with "no responders"), implemented by
//! [`NatsBus`] for production and [`MemoryBus`] for `phirepass dev` and tests.
//! Both implementations pass the same suite (`conformance`, behind the
//! `testing` feature).
//!
//! Delivery is at-most-once on both: a subscriber that falls behind loses
//! messages rather than slowing publishers down (NATS calls this a slow
//! consumer). Callers that need reliability add it on top, as TunnelStream
//! does with sequence numbers and replay.
//!
//! [`EventLog`] is the reliable side: an append-only log of events (audit
//! decisions) on a JetStream stream ([`JetStreamEventLog`]) or a bounded
//! ring in memory ([`MemoryEventLog`]), with its own shared suite
//! (`event_conformance`).

use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use futures_util::Stream;

#[cfg(feature = "testing")]
pub mod conformance;
#[cfg(feature = "testing")]
pub mod event_conformance;
mod events;
mod jetstream;
mod memory;
mod nats;
mod permissions;
mod subject;
#[cfg(feature = "testing")]
pub mod test_server;

pub use events::{EventLog, MAX_READ, MEMORY_EVENTS, MemoryEventLog};
pub use jetstream::{EVENTS_STREAM, JetStreamEventLog};
pub use memory::MemoryBus;
pub use nats::NatsBus;
pub use permissions::{
    KindPermissions, NatsServerConfig, inbox_prefix, nats_user, permissions, render_server_config,
};
pub use phirepass_pki::{Identity, ServiceKind};
pub use subject::{subject_matches, valid_pattern, valid_subject};

/// Message headers, in order. Names may repeat. NATS does not keep the order
/// between different names, only between values of the same name.
pub type Headers = Vec<(String, String)>;

/// One message as a subscriber sees it.
#[derive(Debug, Clone)]
pub struct Message {
    pub subject: String,
    /// Where a responder should publish its answer, for requests.
    pub reply: Option<String>,
    pub headers: Headers,
    pub payload: Bytes,
}

#[derive(Debug, thiserror::Error)]
pub enum BusError {
    #[error("no responders")]
    NoResponders,
    #[error("request timed out")]
    Timeout,
    #[error("bus connection closed")]
    Closed,
    #[error("bus error: {0}")]
    Other(String),
}

#[async_trait::async_trait]
pub trait Bus: Send + Sync + 'static {
    /// Publishes one message; returns once the bus accepted it (not once
    /// anybody received it).
    async fn publish(
        &self,
        subject: &str,
        headers: Headers,
        payload: Bytes,
    ) -> Result<(), BusError>;

    /// Subscribes to a subject or pattern (`*` = one token, `>` = one or more
    /// trailing tokens). Dropping the [`Subscription`] unsubscribes.
    async fn subscribe(&self, subject: &str) -> Result<Subscription, BusError>;

    /// Publishes with a fresh reply subject and waits for the first answer.
    /// Fails with [`BusError::NoResponders`] at once when nobody subscribes
    /// to `subject`, and [`BusError::Timeout`] after `timeout` otherwise.
    async fn request(
        &self,
        subject: &str,
        headers: Headers,
        payload: Bytes,
        timeout: Duration,
    ) -> Result<Message, BusError>;

    /// Waits until the server has processed everything sent so far
    /// (including subscriptions), as NATS clients' flush round trip does.
    async fn flush(&self) -> Result<(), BusError>;
}

/// A stream of messages for one subscription; dropping it unsubscribes.
pub struct Subscription {
    inner: SubInner,
}

enum SubInner {
    Memory(memory::MemorySubscription),
    Nats(async_nats::Subscriber),
}

impl Stream for Subscription {
    type Item = Message;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Message>> {
        match &mut self.inner {
            SubInner::Memory(sub) => sub.poll_recv(cx),
            SubInner::Nats(sub) => Pin::new(sub).poll_next(cx).map(|m| m.map(nats::from_nats)),
        }
    }
}

impl std::fmt::Debug for Subscription {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let kind = match self.inner {
            SubInner::Memory(_) => "memory",
            SubInner::Nats(_) => "nats",
        };
        f.debug_struct("Subscription").field("bus", &kind).finish()
    }
}

/// Connects to NATS at `nats_url`, or returns a fresh in-process bus when it
/// is `None` (the embedded default of `phirepass dev`).
pub async fn connect(nats_url: Option<&str>) -> Result<Arc<dyn Bus>, BusError> {
    match nats_url {
        Some(url) => Ok(Arc::new(NatsBus::connect(url).await?)),
        None => Ok(Arc::new(MemoryBus::new())),
    }
}

/// Connects service `kind` to NATS at `nats_url` with its identity (TLS with its client
/// certificate, mapped by the server to the kind's user: see [`permissions`]), or without
/// one (plaintext, anonymous: development only); a fresh in-process bus when `nats_url` is
/// `None`.
pub async fn connect_with(
    nats_url: Option<&str>,
    kind: ServiceKind,
    identity: Option<&Identity>,
) -> Result<Arc<dyn Bus>, BusError> {
    match nats_url {
        Some(url) => Ok(Arc::new(NatsBus::connect_as(url, kind, identity).await?)),
        None => Ok(Arc::new(MemoryBus::new())),
    }
}

/// [`connect_events`] as service `kind`, with its identity as in [`connect_with`].
pub async fn connect_events_with(
    nats_url: Option<&str>,
    kind: ServiceKind,
    identity: Option<&Identity>,
) -> Result<Arc<dyn EventLog>, BusError> {
    match nats_url {
        Some(url) => {
            let bus = NatsBus::connect_as(url, kind, identity).await?;
            Ok(Arc::new(JetStreamEventLog::connect(&bus).await?))
        }
        None => Ok(Arc::new(MemoryEventLog::new())),
    }
}

/// The event log for `nats_url`: the JetStream stream [`EVENTS_STREAM`] on
/// `pp.events.>` (created if missing), or a fresh in-memory ring when it is
/// `None` (the embedded default).
pub async fn connect_events(nats_url: Option<&str>) -> Result<Arc<dyn EventLog>, BusError> {
    match nats_url {
        Some(url) => {
            let bus = NatsBus::connect(url).await?;
            Ok(Arc::new(JetStreamEventLog::connect(&bus).await?))
        }
        None => Ok(Arc::new(MemoryEventLog::new())),
    }
}
