//! TunnelStream: an ordered, flow-controlled byte stream over a lossy
//! message transport (the bus, or the agent WebSocket via a relay).
//!
//! The endpoint is transport-agnostic: outgoing frames go to a
//! [`FrameSink`], incoming frames are pushed in through [`FrameInput`]. A
//! per-stream driver task runs the timers (delayed acks, retransmission,
//! credit probes, keepalive, idle timeout). The protocol is described in
//! [`crate::frame`].
//!
//! I/O errors the application can see:
//!
//! | kind                | message                                  |
//! |---------------------|------------------------------------------|
//! | `ConnectionReset`   | `reset by peer: <reason>`                |
//! | `TimedOut`          | `peer vanished: nothing received for ..` |
//! | `ConnectionAborted` | `stream gap could not be recovered`      |
//! | `ConnectionAborted` | `transport closed: <reason>`             |
//! | `InvalidData`       | `protocol violation: <what>`             |
//! | `BrokenPipe`        | `write after shutdown`, `transport closed` |
//!
//! Reads return buffered in-order bytes before reporting an error.

use std::io;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::sync::{Notify, watch};
use tokio::time::Instant;

pub use crate::endpoint::{FrameSink, SinkClosed, StreamConfig, StreamStats};
use crate::frame;
use crate::state::State;
use crate::subjects::StreamId;

pub(crate) struct Shared {
    state: Mutex<State>,
    notify: Notify,
    max_payload: usize,
}

impl Shared {
    /// Runs `f` under the lock, then fires the wakeups it recorded.
    fn with<R>(&self, f: impl FnOnce(&mut State, Instant) -> R) -> R {
        let (r, wakes) = {
            let mut st = self.state.lock().unwrap_or_else(|e| e.into_inner());
            let r = f(&mut st, Instant::now());
            (r, st.take_wakes())
        };
        if let Some(w) = wakes.reader {
            w.wake();
        }
        if let Some(w) = wakes.writer {
            w.wake();
        }
        if wakes.driver {
            self.notify.notify_one();
        }
        r
    }
}

/// One end of a tunnel: `AsyncRead + AsyncWrite`; `poll_shutdown` sends
/// `Fin` (half-close); dropping it before both sides sent `Fin` resets.
pub struct TunnelStream {
    id: StreamId,
    shared: Arc<Shared>,
}

/// The transport's handle for pushing received frames into a stream.
#[derive(Clone)]
pub struct FrameInput {
    shared: Arc<Shared>,
    closed: watch::Receiver<bool>,
}

impl TunnelStream {
    /// Creates an endpoint and spawns its driver (needs a Tokio runtime).
    /// It immediately sends its initial credit to the peer through `sink`.
    pub fn new(
        id: StreamId,
        sink: Arc<dyn FrameSink>,
        cfg: StreamConfig,
    ) -> (TunnelStream, FrameInput) {
        let mut cfg = cfg;
        cfg.window = cfg.window.max(1);
        cfg.max_payload = cfg.max_payload.max(1);
        cfg.retransmit_after = cfg.retransmit_after.max(Duration::from_millis(1));
        let shared = Arc::new(Shared {
            max_payload: cfg.max_payload,
            state: Mutex::new(State::new(cfg, sink, Instant::now())),
            notify: Notify::new(),
        });
        let (closed_tx, closed) = watch::channel(false);
        tokio::spawn(drive(shared.clone(), closed_tx));
        let input = FrameInput {
            shared: shared.clone(),
            closed,
        };
        (TunnelStream { id, shared }, input)
    }

    pub fn id(&self) -> StreamId {
        self.id
    }

    pub fn stats(&self) -> StreamStats {
        self.shared.with(|st, _| st.stats())
    }
}

impl std::fmt::Debug for TunnelStream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TunnelStream")
            .field("id", &self.id)
            .finish_non_exhaustive()
    }
}

impl FrameInput {
    /// Hands one received frame to the stream; never blocks.
    pub fn deliver(&self, frame: Bytes) {
        self.shared.with(|st, now| st.on_frame(now, frame));
    }

    /// The transport died: the application gets an error with `reason`.
    pub fn reset(&self, reason: &str) {
        self.shared.with(|st, _| st.transport_reset(reason));
    }

    /// Resolves once the endpoint is finished (cleanly or not) and needs no
    /// more frames, so the transport can forget it.
    pub async fn closed(&self) {
        let mut rx = self.closed.clone();
        // An error means the driver is gone, which is closed too.
        let _ = rx.wait_for(|c| *c).await;
    }

    pub fn is_closed(&self) -> bool {
        *self.closed.borrow()
    }

    pub fn stats(&self) -> StreamStats {
        self.shared.with(|st, _| st.stats())
    }
}

async fn drive(shared: Arc<Shared>, closed: watch::Sender<bool>) {
    while let Some(at) = shared.with(|st, now| st.on_timer(now)) {
        tokio::select! {
            _ = tokio::time::sleep_until(at) => {}
            _ = shared.notify.notified() => {}
        }
    }
    shared.with(|st, _| st.close_sink());
    closed.send_replace(true);
}

impl AsyncRead for TunnelStream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        if buf.remaining() == 0 {
            return Poll::Ready(Ok(()));
        }
        match self.shared.with(|st, _| st.read(buf, cx.waker())) {
            Ok(true) => Poll::Ready(Ok(())),
            Ok(false) => Poll::Pending,
            Err(e) => Poll::Ready(Err(e)),
        }
    }
}

impl AsyncWrite for TunnelStream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        if buf.is_empty() {
            return Poll::Ready(Ok(0));
        }
        let allowed = match self
            .shared
            .with(|st, now| st.write_allowance(now, buf.len(), cx.waker()))
        {
            Ok(0) => return Poll::Pending,
            Ok(n) => n,
            Err(e) => return Poll::Ready(Err(e)),
        };
        // Copy outside the lock; only numbering and sending happen under it.
        let frames = buf[..allowed]
            .chunks(self.shared.max_payload)
            .map(frame::data_unsequenced)
            .collect();
        Poll::Ready(
            self.shared
                .with(|st, now| st.commit(now, frames))
                .map(|()| allowed),
        )
    }

    fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        // Frames go to the sink as they are written: nothing is held back.
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(self.shared.with(|st, now| st.shutdown(now)))
    }
}

impl Drop for TunnelStream {
    fn drop(&mut self) {
        self.shared.with(|st, _| st.app_drop());
    }
}
