//! Helpers shared by the tunnel integration tests.
#![allow(dead_code)]

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use bytes::Bytes;
use phirepass_bus::{Bus, MemoryBus, NatsBus};
use phirepass_tunnel::{FrameInput, SinkClosed, StreamConfig, StreamId, Subjects, TunnelStream};
use sha2::{Digest, Sha256};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::mpsc;

pub fn nats_url() -> String {
    std::env::var("NATS_URL").unwrap_or_else(|_| "nats://127.0.0.1:4222".to_owned())
}

pub async fn memory_bus() -> Arc<dyn Bus> {
    Arc::new(MemoryBus::new())
}

pub async fn nats_bus() -> Arc<dyn Bus> {
    Arc::new(
        NatsBus::connect(&nats_url())
            .await
            .expect("nats at NATS_URL or 127.0.0.1:4222"),
    )
}

pub fn random_subjects() -> Subjects {
    Subjects::new(format!("t{:016x}", rand::random::<u64>()))
}

/// Short timers so failure paths finish quickly.
pub fn fast_cfg() -> StreamConfig {
    StreamConfig {
        window: 64 * 1024,
        max_payload: 8 * 1024,
        retransmit_after: Duration::from_millis(30),
        keepalive: Duration::from_millis(200),
        idle_timeout: Duration::from_millis(800),
        open_timeout: Duration::from_secs(2),
    }
}

/// Deterministic faults for one direction of a [`pair`]: every n-th frame
/// is dropped / duplicated / swapped with the following one (0 = never).
#[derive(Clone, Copy, Default, Debug)]
pub struct Faults {
    pub drop_every: u64,
    pub dup_every: u64,
    pub swap_every: u64,
}

/// Controls for one direction of a [`pair`].
#[derive(Clone, Default)]
pub struct Wire {
    /// While set, every frame in this direction is lost.
    pub cut: Arc<AtomicBool>,
    /// Frames that went into this direction.
    pub frames: Arc<AtomicU64>,
    /// Frames delivered so far.
    pub delivered: Arc<AtomicU64>,
    /// Frames dropped by faults or cuts.
    pub dropped: Arc<AtomicU64>,
    /// Reset frames that went into this direction.
    pub resets: Arc<AtomicU64>,
}

fn hits(n: u64, every: u64) -> bool {
    every > 0 && n.is_multiple_of(every)
}

fn spawn_wire(mut rx: mpsc::UnboundedReceiver<Bytes>, to: FrameInput, faults: Faults, wire: Wire) {
    tokio::spawn(async move {
        let mut held: Option<Bytes> = None;
        let mut n = 0u64;
        while let Some(frame) = rx.recv().await {
            n += 1;
            if wire.cut.load(Ordering::SeqCst) || hits(n, faults.drop_every) {
                wire.dropped.fetch_add(1, Ordering::Relaxed);
                continue;
            }
            if hits(n, faults.swap_every) && held.is_none() {
                held = Some(frame);
                continue;
            }
            to.deliver(frame.clone());
            wire.delivered.fetch_add(1, Ordering::Relaxed);
            if hits(n, faults.dup_every) {
                to.deliver(frame);
            }
            if let Some(h) = held.take() {
                to.deliver(h);
                wire.delivered.fetch_add(1, Ordering::Relaxed);
            }
        }
    });
}

fn channel_sink(
    wire: &Wire,
) -> (
    Arc<dyn phirepass_tunnel::FrameSink>,
    mpsc::UnboundedReceiver<Bytes>,
) {
    let (tx, rx) = mpsc::unbounded_channel::<Bytes>();
    let (frames, resets) = (wire.frames.clone(), wire.resets.clone());
    let sink = move |f: Bytes| {
        frames.fetch_add(1, Ordering::Relaxed);
        if phirepass_tunnel::frame::is_reset(&f) {
            resets.fetch_add(1, Ordering::Relaxed);
        }
        tx.send(f).map_err(|_| SinkClosed)
    };
    (Arc::new(sink), rx)
}

pub struct Pair {
    pub a: TunnelStream,
    pub b: TunnelStream,
    pub a_input: FrameInput,
    pub b_input: FrameInput,
    /// Frames from a to b.
    pub ab: Wire,
    /// Frames from b to a.
    pub ba: Wire,
}

/// Two endpoints connected in-process, with faults on each direction.
pub fn pair(
    cfg_a: StreamConfig,
    cfg_b: StreamConfig,
    ab_faults: Faults,
    ba_faults: Faults,
) -> Pair {
    let (ab, ba) = (Wire::default(), Wire::default());
    let id = StreamId::random();
    let (sink_a, rx_ab) = channel_sink(&ab);
    let (sink_b, rx_ba) = channel_sink(&ba);
    let (a, a_input) = TunnelStream::new(id, sink_a, cfg_a);
    let (b, b_input) = TunnelStream::new(id, sink_b, cfg_b);
    spawn_wire(rx_ab, b_input.clone(), ab_faults, ab.clone());
    spawn_wire(rx_ba, a_input.clone(), ba_faults, ba.clone());
    Pair {
        a,
        b,
        a_input,
        b_input,
        ab,
        ba,
    }
}

/// Deterministic pseudo-random bytes (xorshift), cheap to generate.
pub fn pattern(seed: u64, len: usize) -> Vec<u8> {
    let mut x = seed | 1;
    let mut out = Vec::with_capacity(len + 8);
    while out.len() < len {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        out.extend_from_slice(&x.to_le_bytes());
    }
    out.truncate(len);
    out
}

/// Writes `total` bytes of a pattern in `chunk`-sized writes, then shuts
/// down; returns the SHA-256 of what was written.
pub async fn send_all<W: AsyncWriteExt + Unpin>(
    w: &mut W,
    seed: u64,
    total: usize,
    chunk: usize,
) -> String {
    let block = pattern(seed, 1 << 20);
    let mut hasher = Sha256::new();
    let mut sent = 0usize;
    while sent < total {
        let off = sent % block.len();
        let n = chunk.min(total - sent).min(block.len() - off);
        let piece = &block[off..off + n];
        w.write_all(piece).await.unwrap();
        hasher.update(piece);
        sent += n;
    }
    w.shutdown().await.unwrap();
    hex::encode(hasher.finalize())
}

/// Reads to EOF; returns (bytes, SHA-256).
pub async fn recv_all<R: AsyncReadExt + Unpin>(r: &mut R) -> (u64, String) {
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 64 * 1024];
    let mut total = 0u64;
    loop {
        let n = r.read(&mut buf).await.unwrap();
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
        total += n as u64;
    }
    (total, hex::encode(hasher.finalize()))
}

pub fn sha_hex(data: &[u8]) -> String {
    hex::encode(Sha256::digest(data))
}

/// Buses for the edge and the node side: one shared in-process bus, or two
/// separate NATS connections (as two processes would have).
pub async fn memory_pair() -> (Arc<dyn Bus>, Arc<dyn Bus>) {
    let bus = memory_bus().await;
    (bus.clone(), bus)
}

pub async fn nats_pair() -> (Arc<dyn Bus>, Arc<dyn Bus>) {
    (nats_bus().await, nats_bus().await)
}
