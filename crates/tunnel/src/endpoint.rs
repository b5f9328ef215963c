//! What a [`TunnelStream`](crate::TunnelStream) endpoint is configured
//! with ([`StreamConfig`]), what it counts ([`StreamStats`]) and where its
//! outgoing frames go ([`FrameSink`]). Both the endpoint and its protocol
//! state use these, so they live apart from either.

use std::time::Duration;

use bytes::Bytes;

#[derive(Clone, Debug)]
pub struct StreamConfig {
    /// Bytes the peer may have in flight toward us (our receive buffer).
    pub window: u32,
    /// Largest payload of one `Data` frame.
    pub max_payload: usize,
    /// First retransmission timeout; also paces Nacks and credit probes.
    pub retransmit_after: Duration,
    /// Ping after this long without hearing from the peer.
    pub keepalive: Duration,
    /// Fail with "peer vanished" after this long without hearing from it.
    pub idle_timeout: Duration,
    /// How long [`crate::open()`] waits for the node's answer.
    pub open_timeout: Duration,
}

impl Default for StreamConfig {
    fn default() -> Self {
        StreamConfig {
            window: 256 * 1024,
            max_payload: 32 * 1024,
            retransmit_after: Duration::from_millis(200),
            keepalive: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(30),
            open_timeout: Duration::from_secs(10),
        }
    }
}

impl StreamConfig {
    /// For bulk byte streams (HTTP and TCP tunnels): a 1 MiB window and 128 KiB frames, so a
    /// large transfer costs a quarter of the bus messages of the default 32 KiB frames.
    /// Both stay well under NATS's default 1 MiB message limit and the agent link's.
    pub fn bulk() -> Self {
        StreamConfig {
            window: 1 << 20,
            max_payload: 128 * 1024,
            ..StreamConfig::default()
        }
    }
}

/// Counters of one endpoint, for tests and diagnostics.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct StreamStats {
    /// Payload bytes written by the application (first transmissions).
    pub bytes_written: u64,
    /// In-order payload bytes received from the peer.
    pub bytes_received: u64,
    /// Payload bytes the application has read.
    pub bytes_read: u64,
    pub frames_sent: u64,
    pub frames_received: u64,
    /// Frames sent again (after a Nack or a retransmission timeout).
    pub retransmits: u64,
    /// Retransmission timer expirations.
    pub timeouts: u64,
    pub nacks_sent: u64,
    pub nacks_received: u64,
    /// Frames received twice and dropped.
    pub duplicates: u64,
    /// Frames received ahead of a gap and dropped.
    pub out_of_order: u64,
    /// Gaps detected in the peer's sequence, and how many were filled.
    pub gaps: u64,
    pub gaps_recovered: u64,
    /// Times a write waited for credit.
    pub credit_stalls: u64,
    /// Bytes received but not read yet (never above the window).
    pub recv_buffered: u64,
    /// Bytes sent but not acknowledged yet (never above the peer's window).
    pub replay_bytes: u64,
}

/// Where an endpoint's outgoing frames go. `send` must not block or call
/// back into the stream: queue the frame (e.g. an unbounded channel drained
/// by a task). Memory stays bounded because credit bounds what is in flight.
pub trait FrameSink: Send + Sync + 'static {
    fn send(&self, frame: Bytes) -> Result<(), SinkClosed>;
}

/// The transport behind a [`FrameSink`] is gone.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("frame sink closed")]
pub struct SinkClosed;

impl<F> FrameSink for F
where
    F: Fn(Bytes) -> Result<(), SinkClosed> + Send + Sync + 'static,
{
    fn send(&self, frame: Bytes) -> Result<(), SinkClosed> {
        self(frame)
    }
}
