//! [`EventLog`] on a NATS JetStream stream (file storage, so events survive
//! server restarts).

use std::time::Duration;

use async_nats::jetstream::{self, consumer, stream};
use bytes::Bytes;
use futures_util::StreamExt as _;

use crate::events::{EventLog, MAX_READ};
use crate::subject::{check_pattern, check_subject};
use crate::{BusError, NatsBus};

/// The production stream name.
pub const EVENTS_STREAM: &str = "PP_EVENTS";
// Keeps the stream bounded; old events age out first.
const MAX_EVENTS: i64 = 10_000_000;
const MAX_AGE: Duration = Duration::from_secs(90 * 24 * 3600);
// How long a read waits for the server to hand over what it has.
const READ_WAIT: Duration = Duration::from_millis(500);

/// A JetStream stream named `stream` over `<prefix>.events.>`.
#[derive(Clone, Debug)]
pub struct JetStreamEventLog {
    js: jetstream::Context,
    stream: stream::Stream,
}

impl JetStreamEventLog {
    /// Production: stream [`EVENTS_STREAM`] on `pp.events.>`.
    pub async fn connect(bus: &NatsBus) -> Result<Self, BusError> {
        Self::with_stream(bus, "pp", EVENTS_STREAM).await
    }

    /// Creates the stream `stream_name` on `<prefix>.events.>` if missing
    /// (tests use their own prefix and name).
    pub async fn with_stream(
        bus: &NatsBus,
        prefix: &str,
        stream_name: &str,
    ) -> Result<Self, BusError> {
        let subjects = format!("{prefix}.events.>");
        check_pattern(&subjects)?;
        let js = jetstream::new(bus.client().clone());
        let stream = js
            .get_or_create_stream(stream::Config {
                name: stream_name.to_owned(),
                subjects: vec![subjects.clone()],
                storage: stream::StorageType::File,
                max_messages: MAX_EVENTS,
                max_age: MAX_AGE,
                discard: stream::DiscardPolicy::Old,
                ..Default::default()
            })
            .await
            .map_err(|e| BusError::Other(format!("creating event stream: {e}")))?;
        tracing::info!(stream = stream_name, subjects, "event stream ready");
        Ok(Self { js, stream })
    }
}

#[async_trait::async_trait]
impl EventLog for JetStreamEventLog {
    async fn append(&self, subject: &str, payload: Bytes) -> Result<(), BusError> {
        check_subject(subject)?;
        let ack = self
            .js
            .publish(subject.to_owned(), payload)
            .await
            .map_err(|e| BusError::Other(format!("publishing event: {e}")))?;
        ack.await
            .map_err(|e| BusError::Other(format!("event not stored: {e}")))?;
        Ok(())
    }

    async fn read(
        &self,
        subject_filter: &str,
        from_seq: u64,
        max: usize,
    ) -> Result<Vec<(u64, Bytes)>, BusError> {
        check_pattern(subject_filter)?;
        let max = max.min(MAX_READ);
        if max == 0 {
            return Ok(Vec::new());
        }
        let deliver_policy = if from_seq <= 1 {
            consumer::DeliverPolicy::All
        } else {
            consumer::DeliverPolicy::ByStartSequence {
                start_sequence: from_seq,
            }
        };
        // A throwaway consumer per read: no acks, gone once idle.
        let reader = self
            .stream
            .create_consumer(consumer::pull::Config {
                deliver_policy,
                filter_subject: subject_filter.to_owned(),
                ack_policy: consumer::AckPolicy::None,
                inactive_threshold: Duration::from_secs(30),
                ..Default::default()
            })
            .await
            .map_err(|e| BusError::Other(format!("reading events: {e}")))?;
        let mut batch = reader
            .fetch()
            .max_messages(max)
            .expires(READ_WAIT)
            .messages()
            .await
            .map_err(|e| BusError::Other(format!("reading events: {e}")))?;
        let mut events = Vec::new();
        while let Some(message) = batch.next().await {
            let message = message.map_err(|e| BusError::Other(format!("reading events: {e}")))?;
            let seq = message
                .info()
                .map_err(|e| BusError::Other(format!("reading events: {e}")))?
                .stream_sequence;
            events.push((seq, message.message.payload.clone()));
            if events.len() >= max {
                break;
            }
        }
        // Best effort: the inactive threshold removes it anyway.
        let name = reader.cached_info().name.clone();
        let _ = self.stream.delete_consumer(&name).await;
        Ok(events)
    }
}
