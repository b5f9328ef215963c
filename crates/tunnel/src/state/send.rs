//! The sending half: credit, numbering, replay.

use std::io;
use std::task::Waker;

use bytes::BytesMut;
use tokio::time::Instant;

use super::{Sent, State};
use crate::frame::{self, Frame};

impl State {
    /// Returns false if the ack was invalid (and the stream failed).
    pub(super) fn on_ack(&mut self, now: Instant, next: u64, limit: u64) -> bool {
        if next > self.next_seq {
            self.violation("acknowledgement of unsent data");
            return false;
        }
        if next > self.snd_base {
            while self.replay.front().is_some_and(|f| f.seq < next) {
                if let Some(f) = self.replay.pop_front() {
                    self.replay_bytes -= f.len;
                }
            }
            self.snd_base = next;
            self.rto_retries = 0;
            self.rto_due = if self.replay.is_empty() {
                None
            } else {
                Some(now + self.rto())
            };
            if self.fin_seq.is_some_and(|f| next > f) {
                self.fin_acked = true;
                self.check_complete(now);
            }
        }
        if limit > self.peer_limit {
            self.peer_limit = limit;
            self.wake_writer = true;
            self.probe_due = None;
            self.probe_retries = 0;
        }
        true
    }

    /// Go-back-N: sends every unacknowledged frame from `from` on again.
    pub(super) fn resend_from(&mut self, now: Instant, from: u64) {
        if from < self.snd_base || from >= self.next_seq {
            return; // stale, or nothing to resend
        }
        // Duplicate Nacks for the same gap (e.g. reordered) resend once.
        if self.last_resend.is_some_and(|(s, at)| {
            s == from && now.duration_since(at) < self.cfg.retransmit_after / 2
        }) {
            return;
        }
        self.last_resend = Some((from, now));
        let Some(sink) = self.sink.clone() else {
            return;
        };
        let skip = usize::try_from(from - self.snd_base).unwrap_or(usize::MAX);
        let mut sent = 0u64;
        let mut broken = false;
        for f in self.replay.iter().skip(skip) {
            if sink.send(f.frame.clone()).is_err() {
                broken = true;
                break;
            }
            sent += 1;
        }
        self.stats.retransmits += sent;
        self.stats.frames_sent += sent;
        if broken {
            self.sink = None;
            self.fail(io::ErrorKind::BrokenPipe, "transport closed".into(), None);
            return;
        }
        let at = now + self.rto();
        self.rto_due = Some(at);
        self.arm(at);
    }

    /// How many of `want` bytes may be sent now; `Ok(0)` means "wait for
    /// credit" (the waker is registered and a probe scheduled).
    pub(crate) fn write_allowance(
        &mut self,
        now: Instant,
        want: usize,
        waker: &Waker,
    ) -> io::Result<usize> {
        if let Some(e) = &self.error {
            return Err(io::Error::new(e.kind, e.msg.clone()));
        }
        if self.fin_seq.is_some() || self.finished {
            return Err(io::Error::new(
                io::ErrorKind::BrokenPipe,
                "write after shutdown",
            ));
        }
        let avail = self.peer_limit.saturating_sub(self.bytes_sent);
        if avail == 0 {
            self.writer = Some(waker.clone());
            self.stats.credit_stalls += 1;
            if self.probe_due.is_none() {
                let at = now + self.cfg.retransmit_after;
                self.probe_due = Some(at);
                self.arm(at);
            }
            return Ok(0);
        }
        Ok(usize::try_from(avail).unwrap_or(usize::MAX).min(want))
    }

    /// Numbers and sends `Data` frames built by [`frame::data_unsequenced`]
    /// within an allowance from [`State::write_allowance`].
    pub(crate) fn commit(&mut self, now: Instant, frames: Vec<BytesMut>) -> io::Result<()> {
        if let Some(e) = &self.error {
            return Err(io::Error::new(e.kind, e.msg.clone()));
        }
        for mut f in frames {
            let seq = self.next_seq;
            f[1..frame::DATA_HEADER].copy_from_slice(&seq.to_be_bytes());
            let frame = f.freeze();
            let len = (frame.len() - frame::DATA_HEADER) as u64;
            self.next_seq += 1;
            self.bytes_sent += len;
            self.replay_bytes += len;
            self.stats.bytes_written += len;
            self.replay.push_back(Sent {
                seq,
                frame: frame.clone(),
                len,
            });
            self.emit(frame);
        }
        if self.rto_due.is_none() {
            let at = now + self.rto();
            self.rto_due = Some(at);
            self.arm(at);
        }
        Ok(())
    }

    /// Half-close: queues `Fin` after all data written so far.
    pub(crate) fn shutdown(&mut self, now: Instant) -> io::Result<()> {
        if let Some(e) = &self.error {
            return Err(io::Error::new(e.kind, e.msg.clone()));
        }
        if self.fin_seq.is_some() || self.finished {
            return Ok(());
        }
        let seq = self.next_seq;
        self.next_seq += 1;
        self.fin_seq = Some(seq);
        let frame = Frame::Fin { seq }.encode();
        self.replay.push_back(Sent {
            seq,
            frame: frame.clone(),
            len: 0,
        });
        self.emit(frame);
        if self.rto_due.is_none() {
            let at = now + self.rto();
            self.rto_due = Some(at);
            self.arm(at);
        }
        Ok(())
    }
}
