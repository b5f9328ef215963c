//! The protocol state of one TunnelStream endpoint: sequencing, credit,
//! replay and timers (see [`crate::frame`] for the rules). Everything here
//! runs under the stream's mutex and never blocks; wakeups are recorded and
//! fired by the caller once the lock is released.

use std::collections::VecDeque;
use std::io;
use std::sync::Arc;
use std::task::Waker;
use std::time::Duration;

use bytes::Bytes;
use tokio::time::Instant;
use tracing::debug;

use crate::endpoint::{FrameSink, StreamConfig, StreamStats};
use crate::frame::{self, Frame};

mod recv;
mod send;
mod timers;

/// Retransmissions (or re-sent Nacks) of one gap before the stream fails.
const MAX_RETRIES: u32 = 12;

struct Sent {
    seq: u64,
    frame: Bytes,
    len: u64,
}

#[derive(Clone)]
struct Failure {
    kind: io::ErrorKind,
    msg: String,
}

struct Gap {
    nacked_at: Instant,
    tries: u32,
}

/// Wakeups to fire after unlocking.
#[derive(Default)]
pub(crate) struct Wakes {
    pub reader: Option<Waker>,
    pub writer: Option<Waker>,
    pub driver: bool,
}

pub(crate) struct State {
    cfg: StreamConfig,
    sink: Option<Arc<dyn FrameSink>>,
    // Sending half.
    next_seq: u64,
    snd_base: u64,
    replay: VecDeque<Sent>,
    replay_bytes: u64,
    bytes_sent: u64,
    peer_limit: u64,
    fin_seq: Option<u64>,
    fin_acked: bool,
    rto_due: Option<Instant>,
    rto_retries: u32,
    last_resend: Option<(u64, Instant)>,
    probe_due: Option<Instant>,
    probe_retries: u32,
    writer: Option<Waker>,
    // Receiving half.
    next_expected: u64,
    bytes_received: u64,
    bytes_consumed: u64,
    granted: u64,
    recv: VecDeque<Bytes>,
    recv_bytes: u64,
    fin_received: bool,
    ack_due: Option<Instant>,
    gap: Option<Gap>,
    reader: Option<Waker>,
    // Liveness and lifecycle.
    last_recv: Instant,
    last_ping: Option<Instant>,
    ping_nonce: u64,
    error: Option<Failure>,
    app_dropped: bool,
    linger_until: Option<Instant>,
    finished: bool,
    driver_at: Option<Instant>,
    wake_reader: bool,
    wake_writer: bool,
    kick_driver: bool,
    stats: StreamStats,
}

impl State {
    pub(crate) fn new(cfg: StreamConfig, sink: Arc<dyn FrameSink>, now: Instant) -> State {
        let mut st = State {
            cfg,
            sink: Some(sink),
            next_seq: 0,
            snd_base: 0,
            replay: VecDeque::new(),
            replay_bytes: 0,
            bytes_sent: 0,
            peer_limit: 0,
            fin_seq: None,
            fin_acked: false,
            rto_due: None,
            rto_retries: 0,
            last_resend: None,
            probe_due: None,
            probe_retries: 0,
            writer: None,
            next_expected: 0,
            bytes_received: 0,
            bytes_consumed: 0,
            granted: 0,
            recv: VecDeque::new(),
            recv_bytes: 0,
            fin_received: false,
            ack_due: None,
            gap: None,
            reader: None,
            last_recv: now,
            last_ping: None,
            ping_nonce: 0,
            error: None,
            app_dropped: false,
            linger_until: None,
            finished: false,
            driver_at: None,
            wake_reader: false,
            wake_writer: false,
            kick_driver: false,
            stats: StreamStats::default(),
        };
        // The initial grant: the peer may not send before it arrives.
        st.granted = u64::from(st.cfg.window);
        st.send_ack();
        st
    }

    pub(crate) fn take_wakes(&mut self) -> Wakes {
        Wakes {
            reader: if std::mem::take(&mut self.wake_reader) {
                self.reader.take()
            } else {
                None
            },
            writer: if std::mem::take(&mut self.wake_writer) {
                self.writer.take()
            } else {
                None
            },
            driver: std::mem::take(&mut self.kick_driver),
        }
    }

    pub(crate) fn stats(&self) -> StreamStats {
        StreamStats {
            recv_buffered: self.recv_bytes,
            replay_bytes: self.replay_bytes,
            ..self.stats.clone()
        }
    }

    fn rto(&self) -> Duration {
        self.cfg.retransmit_after * (1 << self.rto_retries.min(3))
    }

    fn ack_delay(&self) -> Duration {
        (self.cfg.retransmit_after / 8).max(Duration::from_millis(1))
    }

    /// Makes sure the driver wakes by `at`.
    fn arm(&mut self, at: Instant) {
        if self.driver_at.is_none_or(|d| at < d) {
            self.driver_at = Some(at);
            self.kick_driver = true;
        }
    }

    fn emit(&mut self, frame: Bytes) {
        let Some(sink) = &self.sink else { return };
        self.stats.frames_sent += 1;
        if sink.send(frame).is_err() {
            self.sink = None;
            self.fail(io::ErrorKind::BrokenPipe, "transport closed".into(), None);
        }
    }

    /// Ends the stream with an error for the application; `reset` is the
    /// reason sent to the peer, if it should be told.
    fn fail(&mut self, kind: io::ErrorKind, msg: String, reset: Option<&str>) {
        if self.error.is_some() || self.finished {
            return;
        }
        debug!(error = %msg, "tunnel stream failed");
        self.error = Some(Failure { kind, msg });
        if let Some(reason) = reset {
            self.emit(frame::reset_frame(reason));
        }
        self.replay.clear();
        self.replay_bytes = 0;
        self.wake_reader = true;
        self.wake_writer = true;
        self.kick_driver = true;
    }

    fn violation(&mut self, what: &str) {
        let msg = format!("protocol violation: {what}");
        self.fail(io::ErrorKind::InvalidData, msg.clone(), Some(&msg));
    }

    /// The transport under the stream died (e.g. the agent's WebSocket).
    pub(crate) fn transport_reset(&mut self, reason: &str) {
        self.fail(
            io::ErrorKind::ConnectionAborted,
            format!("transport closed: {reason}"),
            None,
        );
    }

    fn send_ack(&mut self) {
        self.ack_due = None;
        self.emit(
            Frame::Ack {
                next: self.next_expected,
                limit: self.granted,
            }
            .encode(),
        );
    }

    fn send_nack(&mut self) {
        self.ack_due = None;
        self.stats.nacks_sent += 1;
        self.emit(
            Frame::Nack {
                next: self.next_expected,
                limit: self.granted,
            }
            .encode(),
        );
    }

    fn send_ping(&mut self) {
        self.ping_nonce += 1;
        self.emit(
            Frame::Ping {
                nonce: self.ping_nonce,
            }
            .encode(),
        );
    }

    pub(crate) fn on_frame(&mut self, now: Instant, raw: Bytes) {
        if self.error.is_some() || self.finished {
            return;
        }
        let frame = match Frame::decode(raw) {
            Ok(f) => f,
            Err(e) => return self.violation(&format!("invalid frame: {e}")),
        };
        self.last_recv = now;
        self.stats.frames_received += 1;
        match frame {
            Frame::Data { seq, payload } => self.on_data(now, seq, Some(payload)),
            Frame::Fin { seq } => self.on_data(now, seq, None),
            Frame::Ack { next, limit } => {
                self.on_ack(now, next, limit);
            }
            Frame::Nack { next, limit } => {
                self.stats.nacks_received += 1;
                if self.on_ack(now, next, limit) {
                    self.resend_from(now, next);
                }
            }
            Frame::Reset { reason } => self.fail(
                io::ErrorKind::ConnectionReset,
                format!("reset by peer: {reason}"),
                None,
            ),
            Frame::Ping { nonce } => {
                // Re-advertise credit: this is how a blocked writer probes.
                self.send_ack();
                self.emit(Frame::Pong { nonce }.encode());
            }
            Frame::Pong { .. } => {}
        }
    }

    /// The application dropped its end: clean if both Fins were exchanged
    /// (then linger until ours is acknowledged), otherwise reset the peer.
    pub(crate) fn app_drop(&mut self) {
        self.app_dropped = true;
        self.reader = None;
        self.writer = None;
        self.kick_driver = true;
        if self.fin_seq.is_none() || !self.fin_received {
            self.fail(
                io::ErrorKind::ConnectionAborted,
                "stream dropped".into(),
                Some("stream dropped"),
            );
        }
    }

    fn check_complete(&mut self, now: Instant) {
        if self.fin_acked && self.fin_received && self.linger_until.is_none() {
            // Stay a little to re-acknowledge the peer's Fin if our ack is lost.
            let at = now + self.cfg.retransmit_after * 4;
            self.linger_until = Some(at);
            self.arm(at);
        }
    }

    /// Drops the sink so transport tasks end once queued frames are out.
    pub(crate) fn close_sink(&mut self) {
        self.finished = true;
        self.sink = None;
        self.replay.clear();
        self.replay_bytes = 0;
    }
}
