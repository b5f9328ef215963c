//! The receiving half: in-order delivery, gaps, credit grants.

use std::io;
use std::task::Waker;

use bytes::Bytes;
use tokio::time::Instant;

use super::{Gap, MAX_RETRIES, State};

impl State {
    /// A `Data` frame (`payload: Some`) or a `Fin` (`None`).
    pub(super) fn on_data(&mut self, now: Instant, seq: u64, payload: Option<Bytes>) {
        if seq < self.next_expected {
            // A replay we already have: our ack was lost or is in flight.
            self.stats.duplicates += 1;
            if self.ack_due.is_none() {
                let at = now + self.ack_delay();
                self.ack_due = Some(at);
                self.arm(at);
            }
            return;
        }
        if self.fin_received {
            return self.violation("data after fin");
        }
        if seq > self.next_expected {
            self.stats.out_of_order += 1;
            return self.on_gap(now);
        }
        let len = payload.as_ref().map_or(0, |p| p.len() as u64);
        if self.bytes_received + len > self.granted {
            return self.violation("peer exceeded its credit");
        }
        self.next_expected += 1;
        if self.gap.take().is_some() {
            self.stats.gaps_recovered += 1;
        }
        self.wake_reader = true;
        match payload {
            Some(p) => {
                self.bytes_received += len;
                self.recv_bytes += len;
                self.stats.bytes_received += len;
                self.recv.push_back(p);
                if self.ack_due.is_none() {
                    let at = now + self.ack_delay();
                    self.ack_due = Some(at);
                    self.arm(at);
                }
            }
            None => {
                self.fin_received = true;
                self.send_ack();
                self.check_complete(now);
            }
        }
    }

    pub(super) fn on_gap(&mut self, now: Instant) {
        let retry_after = self.cfg.retransmit_after;
        match &mut self.gap {
            None => {
                self.gap = Some(Gap {
                    nacked_at: now,
                    tries: 0,
                });
                self.stats.gaps += 1;
            }
            // Re-nack only while frames keep arriving past the gap, backing off.
            Some(g) if now.duration_since(g.nacked_at) < retry_after * (1 << g.tries.min(3)) => {
                return;
            }
            Some(g) if g.tries >= MAX_RETRIES => {
                let msg = "stream gap could not be recovered";
                return self.fail(io::ErrorKind::ConnectionAborted, msg.into(), Some(msg));
            }
            Some(g) => {
                g.tries += 1;
                g.nacked_at = now;
            }
        }
        self.send_nack();
    }

    /// Copies buffered bytes into `buf`; `false` if nothing can be read yet
    /// (the waker is registered). EOF is `true` with nothing copied.
    pub(crate) fn read(
        &mut self,
        buf: &mut tokio::io::ReadBuf<'_>,
        waker: &Waker,
    ) -> io::Result<bool> {
        if self.recv_bytes > 0 {
            let mut n = 0u64;
            while buf.remaining() > 0 {
                let Some(front) = self.recv.front_mut() else {
                    break;
                };
                let k = front.len().min(buf.remaining());
                buf.put_slice(&front[..k]);
                if k == front.len() {
                    self.recv.pop_front();
                } else {
                    bytes::Buf::advance(front, k);
                }
                n += k as u64;
            }
            self.recv_bytes -= n;
            self.bytes_consumed += n;
            self.stats.bytes_read += n;
            self.maybe_grant();
            return Ok(true);
        }
        if self.fin_received {
            return Ok(true);
        }
        if let Some(e) = &self.error {
            return Err(io::Error::new(e.kind, e.msg.clone()));
        }
        if self.finished {
            return Ok(true);
        }
        self.reader = Some(waker.clone());
        Ok(false)
    }

    /// Grants more credit once a quarter of the window was consumed, so
    /// both keystrokes and bulk transfers get few, timely updates.
    pub(super) fn maybe_grant(&mut self) {
        if self.error.is_some() || self.fin_received {
            return;
        }
        let window = u64::from(self.cfg.window);
        let limit = self.bytes_consumed + window;
        if limit - self.granted >= (window / 4).max(1) {
            self.granted = limit;
            self.send_ack();
        }
    }
}
