//! The routing table of one agent connection: which edge each stream answers to, the open
//! replies still pending, and when a finished stream's route may go.

use std::collections::{HashMap, VecDeque};
use std::time::{Duration, Instant};

use phirepass_tunnel::StreamId;
use phirepass_tunnel::frame;

/// Per-connection routing: which edge each stream answers to, and pending open replies.
///
/// A route is dropped when either side resets the stream, or a grace period after both sides
/// sent Fin (late acks and retransmits of the last frames still need the route).
#[derive(Default)]
pub(super) struct Routes {
    /// The subject frames toward each stream's edge go to, built once at open.
    pub(super) edges: HashMap<StreamId, String>,
    pub(super) pending_opens: HashMap<StreamId, String>,
    /// authz key endorsements already sent down this link (crate::tickets).
    pub(super) endorsements_sent: usize,
    fins: HashMap<StreamId, u8>,
    finished: VecDeque<(Instant, StreamId)>,
}

pub(super) const FIN_FROM_AGENT: u8 = 1;
pub(super) const FIN_FROM_EDGE: u8 = 2;
const ROUTE_GRACE: Duration = Duration::from_secs(30);

impl Routes {
    /// Watches the frame type byte only; the payload stays opaque to the relay.
    pub(super) fn observe(&mut self, stream_id: StreamId, frame: &[u8], direction: u8) {
        match frame.first().copied() {
            Some(frame::RESET) => self.forget(stream_id),
            Some(frame::FIN) => {
                let seen = self.fins.entry(stream_id).or_default();
                *seen |= direction;
                if *seen == FIN_FROM_AGENT | FIN_FROM_EDGE {
                    self.fins.remove(&stream_id);
                    self.finished.push_back((Instant::now(), stream_id));
                }
            }
            _ => {}
        }
        while let Some((at, id)) = self.finished.front().copied() {
            if at.elapsed() < ROUTE_GRACE {
                break;
            }
            self.finished.pop_front();
            self.forget(id);
        }
    }

    pub(super) fn forget(&mut self, stream_id: StreamId) {
        self.edges.remove(&stream_id);
        self.fins.remove(&stream_id);
    }
}
