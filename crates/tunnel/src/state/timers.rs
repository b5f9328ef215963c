//! The endpoint's timers: delayed acks, retransmission, credit probes,
//! keepalive pings, the idle timeout and the linger after a clean finish.

use std::io;

use tokio::time::Instant;

use super::{MAX_RETRIES, State};

impl State {
    /// Runs due timers; returns when to run again, or `None` when the
    /// endpoint is finished (the driver then stops).
    pub(crate) fn on_timer(&mut self, now: Instant) -> Option<Instant> {
        if self.error.is_some() || self.finished || self.linger_until.is_some_and(|t| now >= t) {
            self.finished = true;
            return None;
        }
        let idle_at = self.last_recv + self.cfg.idle_timeout;
        if now >= idle_at {
            if !self.app_dropped {
                let msg = format!(
                    "peer vanished: nothing received for {:?}",
                    self.cfg.idle_timeout
                );
                self.fail(io::ErrorKind::TimedOut, msg, Some("idle timeout"));
            }
            self.finished = true;
            return None;
        }
        if self.ack_due.is_some_and(|t| now >= t) {
            self.send_ack();
        }
        if self.rto_due.is_some_and(|t| now >= t) {
            self.on_rto(now);
            if self.error.is_some() {
                self.finished = true;
                return None;
            }
        }
        if self.probe_due.is_some_and(|t| now >= t) {
            if self.writer.is_some() && self.peer_limit <= self.bytes_sent {
                self.send_ping();
                self.probe_retries += 1;
                self.probe_due =
                    Some(now + self.cfg.retransmit_after * (1 << self.probe_retries.min(5)));
            } else {
                self.probe_due = None;
            }
        }
        let quiet_since = self
            .last_ping
            .map_or(self.last_recv, |p| p.max(self.last_recv));
        if now >= quiet_since + self.cfg.keepalive {
            self.send_ping();
            self.last_ping = Some(now);
        }
        let quiet_since = self
            .last_ping
            .map_or(self.last_recv, |p| p.max(self.last_recv));
        let next = [
            self.ack_due,
            self.rto_due,
            self.probe_due,
            self.linger_until,
        ]
        .into_iter()
        .flatten()
        .chain([idle_at, quiet_since + self.cfg.keepalive])
        .min()
        .unwrap_or(idle_at);
        self.driver_at = Some(next);
        Some(next)
    }

    fn on_rto(&mut self, now: Instant) {
        if self.replay.is_empty() {
            self.rto_due = None;
            return;
        }
        // A peer we keep hearing from but that never acknowledges cannot
        // recover; a silent one is left to the idle timeout.
        if self.rto_retries >= MAX_RETRIES
            && now.duration_since(self.last_recv) < self.cfg.keepalive
        {
            let msg = "stream gap could not be recovered";
            return self.fail(io::ErrorKind::ConnectionAborted, msg.into(), Some(msg));
        }
        self.rto_retries += 1;
        self.stats.timeouts += 1;
        self.last_resend = None;
        self.rto_due = Some(now + self.rto());
        let base = self.snd_base;
        self.resend_from(now, base);
    }
}
