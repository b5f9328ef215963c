//! One real endpoint against a hand-driven peer: exact frames on the wire,
//! protocol violations and unrecoverable gaps.

use std::io::ErrorKind;
use std::sync::Arc;
use std::time::Duration;

use crate::common::fast_cfg;
use bytes::Bytes;
use phirepass_tunnel::{Frame, FrameInput, SinkClosed, StreamConfig, StreamId, TunnelStream};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::mpsc;

/// The hand-driven side: what the endpoint sent, and its input.
struct Peer {
    input: FrameInput,
    out: mpsc::UnboundedReceiver<Bytes>,
}

fn raw(cfg: StreamConfig) -> (TunnelStream, Peer) {
    let (tx, out) = mpsc::unbounded_channel();
    let sink = Arc::new(move |f: Bytes| tx.send(f).map_err(|_| SinkClosed));
    let (stream, input) = TunnelStream::new(StreamId::random(), sink, cfg);
    (stream, Peer { input, out })
}

impl Peer {
    async fn next_frame(&mut self) -> Frame {
        let raw = tokio::time::timeout(Duration::from_secs(3), self.out.recv())
            .await
            .unwrap()
            .unwrap();
        Frame::decode(raw).unwrap()
    }

    /// The next frame that is not a keepalive or an ack.
    async fn next_interesting(&mut self) -> Frame {
        loop {
            match self.next_frame().await {
                Frame::Ack { .. } | Frame::Ping { .. } | Frame::Pong { .. } => {}
                f => return f,
            }
        }
    }

    fn send(&self, f: Frame) {
        self.input.deliver(f.encode());
    }
}

fn data(seq: u64, payload: &'static [u8]) -> Frame {
    Frame::Data {
        seq,
        payload: Bytes::from_static(payload),
    }
}

#[tokio::test(start_paused = true)]
async fn initial_credit_probe_and_limit() {
    let cfg = fast_cfg();
    let (mut stream, mut p) = raw(cfg.clone());
    assert_eq!(
        p.next_frame().await,
        Frame::Ack {
            next: 0,
            limit: u64::from(cfg.window)
        }
    );
    // No credit from the peer yet: the write waits and a probe goes out.
    let writer = tokio::spawn(async move {
        stream.write_all(b"0123456789").await.unwrap();
        stream
    });
    assert!(matches!(p.next_frame().await, Frame::Ping { .. }));
    // Grant 4 bytes: exactly 4 are sent.
    p.send(Frame::Ack { next: 0, limit: 4 });
    assert_eq!(p.next_frame().await, data(0, b"0123"));
    p.send(Frame::Ack {
        next: 1,
        limit: 100,
    });
    assert_eq!(p.next_frame().await, data(1, b"456789"));
    let stream = writer.await.unwrap();
    assert_eq!(stream.stats().bytes_written, 10);
}

#[tokio::test(start_paused = true)]
async fn gap_is_nacked_and_never_delivered_out_of_order() {
    let (mut stream, mut p) = raw(fast_cfg());
    p.next_frame().await; // initial ack
    p.send(data(0, b"ab"));
    p.send(Frame::Fin { seq: 2 });
    p.send(data(3, b"zz"));
    assert_eq!(
        p.next_interesting().await,
        Frame::Nack {
            next: 1,
            limit: 65536
        }
    );
    p.send(data(1, b"cd"));
    p.send(Frame::Fin { seq: 2 });
    p.send(Frame::Fin { seq: 2 }); // duplicate
    let mut got = Vec::new();
    stream.read_to_end(&mut got).await.unwrap();
    assert_eq!(got, b"abcd");
    let s = stream.stats();
    assert_eq!((s.gaps, s.gaps_recovered, s.duplicates), (1, 1, 1));
}

#[tokio::test(start_paused = true)]
async fn nack_replays_from_the_requested_frame() {
    let (mut stream, mut p) = raw(fast_cfg());
    p.next_frame().await;
    p.send(Frame::Ack {
        next: 0,
        limit: 1000,
    });
    for chunk in [&b"one"[..], b"two", b"three"] {
        stream.write_all(chunk).await.unwrap();
    }
    assert_eq!(p.next_interesting().await, data(0, b"one"));
    assert_eq!(p.next_interesting().await, data(1, b"two"));
    assert_eq!(p.next_interesting().await, data(2, b"three"));
    p.send(Frame::Nack {
        next: 1,
        limit: 1000,
    });
    assert_eq!(p.next_interesting().await, data(1, b"two"));
    assert_eq!(p.next_interesting().await, data(2, b"three"));
    // Unacknowledged frames come back on the retransmission timer too.
    assert_eq!(p.next_interesting().await, data(1, b"two"));
    p.send(Frame::Ack {
        next: 3,
        limit: 1000,
    });
    assert_eq!(stream.stats().replay_bytes, 0);
}

async fn expect_violation(mut stream: TunnelStream, mut p: Peer, what: &str) {
    // Valid data received before the violation is still readable.
    let mut valid = Vec::new();
    let err = loop {
        let mut buf = [0u8; 64];
        match stream.read(&mut buf).await {
            Ok(n) => valid.extend_from_slice(&buf[..n]),
            Err(e) => break e,
        }
    };
    assert!(valid.len() <= 8);
    assert_eq!(err.kind(), ErrorKind::InvalidData);
    assert!(err.to_string().contains(what), "{err}");
    match p.next_interesting().await {
        Frame::Reset { reason } => assert!(reason.contains(what), "{reason}"),
        f => panic!("expected reset, got {f:?}"),
    }
}

#[tokio::test(start_paused = true)]
async fn exceeding_credit_resets() {
    let cfg = StreamConfig {
        window: 8,
        ..fast_cfg()
    };
    let (stream, p) = raw(cfg);
    p.send(data(0, b"12345678"));
    p.send(data(1, b"9"));
    expect_violation(stream, p, "protocol violation: peer exceeded its credit").await;
}

#[tokio::test(start_paused = true)]
async fn garbage_frame_resets() {
    let (stream, p) = raw(fast_cfg());
    p.input.deliver(Bytes::from_static(b"\x42garbage"));
    expect_violation(stream, p, "invalid frame: unknown frame type 0x42").await;
}

#[tokio::test(start_paused = true)]
async fn ack_of_unsent_data_resets() {
    let (stream, p) = raw(fast_cfg());
    p.send(Frame::Ack { next: 5, limit: 10 });
    expect_violation(stream, p, "acknowledgement of unsent data").await;
}

#[tokio::test(start_paused = true)]
async fn data_after_fin_resets() {
    let (mut stream, mut p) = raw(fast_cfg());
    p.send(Frame::Fin { seq: 0 });
    p.send(data(1, b"late"));
    assert_eq!(stream.read(&mut [0u8; 8]).await.unwrap(), 0);
    match p.next_interesting().await {
        Frame::Reset { reason } => assert!(reason.contains("data after fin"), "{reason}"),
        f => panic!("expected reset, got {f:?}"),
    }
}

#[tokio::test(start_paused = true)]
async fn unrecoverable_gap_fails_the_stream() {
    let cfg = fast_cfg();
    let (mut stream, mut p) = raw(cfg.clone());
    p.send(data(0, b"a"));
    // The peer keeps talking but never fills the hole at seq 1.
    let input = p.input.clone();
    let feeder = tokio::spawn(async move {
        for seq in 2.. {
            input.deliver(data(seq, b"x").encode());
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    });
    let mut buf = [0u8; 1];
    stream.read_exact(&mut buf).await.unwrap();
    let err = tokio::time::timeout(Duration::from_secs(10), stream.read(&mut buf))
        .await
        .unwrap()
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::ConnectionAborted);
    assert_eq!(err.to_string(), "stream gap could not be recovered");
    feeder.abort();
    loop {
        if let Frame::Reset { reason } = p.next_interesting().await {
            assert_eq!(reason, "stream gap could not be recovered");
            break;
        }
    }
}

#[tokio::test(start_paused = true)]
async fn reset_by_peer_fails_reads_and_writes() {
    let (mut stream, mut p) = raw(fast_cfg());
    p.send(Frame::Reset {
        reason: "target refused connection".into(),
    });
    let err = stream.read(&mut [0u8; 1]).await.unwrap_err();
    assert_eq!(err.to_string(), "reset by peer: target refused connection");
    assert_eq!(
        stream.write(b"x").await.unwrap_err().kind(),
        ErrorKind::ConnectionReset
    );
    // No Reset is sent back for a peer's Reset.
    drop(stream);
    tokio::time::timeout(Duration::from_secs(1), p.input.closed())
        .await
        .unwrap();
    while let Ok(f) = p.out.try_recv() {
        assert!(!phirepass_tunnel::frame::is_reset(&f));
    }
}
