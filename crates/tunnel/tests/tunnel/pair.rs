//! TunnelStream endpoints wired together in-process, with injected loss,
//! duplication, reordering and silence.

use std::io::ErrorKind;
use std::sync::atomic::Ordering;
use std::time::Duration;

use tokio::time::Instant;

use crate::common::*;
use phirepass_tunnel::StreamConfig;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

struct Outcome {
    a: phirepass_tunnel::StreamStats,
    b: phirepass_tunnel::StreamStats,
    ab: Wire,
    ba: Wire,
}

/// Sends `size` bytes each way at once and checks both SHA-256 digests.
async fn transfer_both_ways(p: Pair, size: usize) -> Outcome {
    let Pair {
        a,
        b,
        a_input,
        b_input,
        ab,
        ba,
    } = p;
    let (mut ar, mut aw) = tokio::io::split(a);
    let (mut br, mut bw) = tokio::io::split(b);
    let sa = tokio::spawn(async move { send_all(&mut aw, 1, size, 10_000).await });
    let sb = tokio::spawn(async move { send_all(&mut bw, 2, size, 3_000).await });
    let ra = tokio::spawn(async move { recv_all(&mut br).await });
    let rb = tokio::spawn(async move { recv_all(&mut ar).await });
    let (sent_a, sent_b) = (sa.await.unwrap(), sb.await.unwrap());
    let ((got_b, hash_b), (got_a, hash_a)) = (ra.await.unwrap(), rb.await.unwrap());
    assert_eq!((got_b, got_a), (size as u64, size as u64));
    assert_eq!(hash_b, sent_a, "a -> b corrupted");
    assert_eq!(hash_a, sent_b, "b -> a corrupted");
    let out = Outcome {
        a: a_input.stats(),
        b: b_input.stats(),
        ab,
        ba,
    };
    eprintln!("a: {:?}\nb: {:?}", out.a, out.b);
    out
}

#[tokio::test(start_paused = true)]
async fn clean_transfer_both_ways() {
    let p = pair(fast_cfg(), fast_cfg(), Faults::default(), Faults::default());
    let Outcome { a, b, .. } = transfer_both_ways(p, 2 << 20).await;
    assert_eq!(a.retransmits + b.retransmits, 0, "{a:?} {b:?}");
    assert_eq!(a.gaps + b.gaps, 0);
}

#[tokio::test(start_paused = true)]
async fn lossy_transfer_recovers_every_byte() {
    // Every frame kind is affected, acks and credit included.
    let ab = Faults {
        drop_every: 7,
        dup_every: 11,
        swap_every: 13,
    };
    let ba = Faults {
        drop_every: 5,
        dup_every: 3,
        swap_every: 17,
    };
    let p = pair(fast_cfg(), fast_cfg(), ab, ba);
    let Outcome { a, b, ab, ba } = transfer_both_ways(p, 2 << 20).await;
    assert!(ab.dropped.load(Ordering::Relaxed) > 0 && ba.dropped.load(Ordering::Relaxed) > 0);
    assert!(a.retransmits > 0 && b.retransmits > 0, "{a:?} {b:?}");
    assert!(a.gaps > 0 && b.gaps > 0);
    assert_eq!(a.gaps, a.gaps_recovered, "a: every gap recovered");
    assert_eq!(b.gaps, b.gaps_recovered, "b: every gap recovered");
    assert!(a.duplicates > 0 && b.duplicates > 0);
}

#[tokio::test(start_paused = true)]
async fn heavy_loss_still_delivers() {
    let f = Faults {
        drop_every: 3,
        dup_every: 0,
        swap_every: 5,
    };
    let p = pair(fast_cfg(), fast_cfg(), f, f);
    let Outcome { a, b, .. } = transfer_both_ways(p, 512 << 10).await;
    assert_eq!(a.gaps, a.gaps_recovered);
    assert_eq!(b.gaps, b.gaps_recovered);
}

#[tokio::test(start_paused = true)]
async fn half_close_both_directions() {
    let p = pair(fast_cfg(), fast_cfg(), Faults::default(), Faults::default());
    let (mut a, mut b) = (p.a, p.b);
    a.write_all(b"request").await.unwrap();
    a.shutdown().await.unwrap();
    let err = a.write_all(b"more").await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::BrokenPipe);
    let mut got = Vec::new();
    b.read_to_end(&mut got).await.unwrap();
    assert_eq!(got, b"request");
    // The other direction is still open after a's Fin.
    b.write_all(b"response").await.unwrap();
    b.shutdown().await.unwrap();
    let mut got = Vec::new();
    a.read_to_end(&mut got).await.unwrap();
    assert_eq!(got, b"response");
    assert_eq!(a.read(&mut [0u8; 4]).await.unwrap(), 0, "EOF stays EOF");
    // Both finished cleanly: dropping does not reset, and the endpoints close.
    drop(a);
    drop(b);
    tokio::time::timeout(Duration::from_secs(2), p.a_input.closed())
        .await
        .unwrap();
    tokio::time::timeout(Duration::from_secs(2), p.b_input.closed())
        .await
        .unwrap();
    assert_eq!(
        p.ab.resets.load(Ordering::Relaxed) + p.ba.resets.load(Ordering::Relaxed),
        0
    );
}

#[tokio::test(start_paused = true)]
async fn drop_resets_peer() {
    let p = pair(fast_cfg(), fast_cfg(), Faults::default(), Faults::default());
    let (mut a, b) = (p.a, p.b);
    drop(b);
    let err = a.read(&mut [0u8; 16]).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::ConnectionReset);
    assert_eq!(err.to_string(), "reset by peer: stream dropped");
    assert_eq!(
        a.write(b"x").await.unwrap_err().kind(),
        ErrorKind::ConnectionReset
    );
}

#[tokio::test(start_paused = true)]
async fn buffered_data_is_read_before_reset() {
    let p = pair(fast_cfg(), fast_cfg(), Faults::default(), Faults::default());
    let (mut a, mut b) = (p.a, p.b);
    b.write_all(b"last words").await.unwrap();
    drop(b);
    tokio::time::sleep(Duration::from_millis(50)).await;
    let mut buf = [0u8; 64];
    let n = a.read(&mut buf).await.unwrap();
    assert_eq!(&buf[..n], b"last words");
    assert!(a.read(&mut buf).await.is_err());
}

#[tokio::test(start_paused = true)]
async fn transport_reset_reports_reason() {
    let p = pair(fast_cfg(), fast_cfg(), Faults::default(), Faults::default());
    let mut b = p.b;
    p.b_input.reset("agent websocket dropped");
    let err = b.read(&mut [0u8; 16]).await.unwrap_err();
    assert!(err.to_string().contains("agent websocket dropped"), "{err}");
    tokio::time::timeout(Duration::from_secs(1), p.b_input.closed())
        .await
        .unwrap();
}

#[tokio::test(start_paused = true)]
async fn silent_peer_vanishes_within_idle_timeout() {
    let cfg = fast_cfg();
    let p = pair(
        cfg.clone(),
        cfg.clone(),
        Faults::default(),
        Faults::default(),
    );
    let (mut a, mut b) = (p.a, p.b);
    a.write_all(b"ping").await.unwrap();
    let mut buf = [0u8; 4];
    b.read_exact(&mut buf).await.unwrap();
    // The peer's process freezes: nothing in either direction, no Reset.
    p.ab.cut.store(true, Ordering::SeqCst);
    p.ba.cut.store(true, Ordering::SeqCst);
    let started = Instant::now();
    let err = a.read(&mut buf).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::TimedOut);
    assert!(err.to_string().starts_with("peer vanished"), "{err}");
    assert!(
        started.elapsed() < cfg.idle_timeout + Duration::from_millis(500),
        "{:?}",
        started.elapsed()
    );
    // A blocked writer finds out too.
    let err = b.write_all(&vec![0u8; 1 << 20]).await.unwrap_err();
    assert!(err.to_string().starts_with("peer vanished"), "{err}");
}

#[tokio::test(start_paused = true)]
async fn idle_stream_stays_alive_on_keepalives() {
    let cfg = fast_cfg();
    let p = pair(
        cfg.clone(),
        cfg.clone(),
        Faults::default(),
        Faults::default(),
    );
    let (mut a, mut b) = (p.a, p.b);
    tokio::time::sleep(cfg.idle_timeout * 3).await;
    a.write_all(b"still here").await.unwrap();
    let mut buf = [0u8; 10];
    b.read_exact(&mut buf).await.unwrap();
    assert_eq!(&buf, b"still here");
}

#[tokio::test(start_paused = true)]
async fn keystrokes_cause_no_retransmits() {
    // Default timers: received bytes are acknowledged well before the
    // retransmission timer, even when the test machine is busy.
    let cfg = StreamConfig {
        retransmit_after: Duration::from_millis(200),
        ..fast_cfg()
    };
    let p = pair(cfg.clone(), cfg, Faults::default(), Faults::default());
    let (mut a, mut b) = (p.a, p.b);
    for i in 0..40u8 {
        a.write_all(&[i]).await.unwrap();
        let mut k = [0u8; 1];
        b.read_exact(&mut k).await.unwrap();
        assert_eq!(k[0], i);
        b.write_all(&k).await.unwrap();
        a.read_exact(&mut k).await.unwrap();
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let (sa, sb) = (a.stats(), b.stats());
    assert_eq!(sa.retransmits + sb.retransmits, 0, "{sa:?} {sb:?}");
}

#[tokio::test(start_paused = true)]
async fn writer_without_reader_stays_bounded() {
    let cfg = StreamConfig {
        window: 64 * 1024,
        ..fast_cfg()
    };
    let p = pair(
        cfg.clone(),
        cfg.clone(),
        Faults::default(),
        Faults::default(),
    );
    let (mut a, b) = (p.a, p.b);
    let writer = tokio::spawn(async move {
        let chunk = vec![0u8; 1 << 20];
        for _ in 0..64 {
            a.write_all(&chunk).await.unwrap();
        }
    });
    tokio::time::sleep(Duration::from_millis(500)).await;
    let frames_then = p.ab.frames.load(Ordering::Relaxed);
    tokio::time::sleep(Duration::from_millis(1000)).await;
    assert!(!writer.is_finished(), "writer must be waiting for credit");
    let (sa, sb) = (p.a_input.stats(), b.stats());
    let window = u64::from(cfg.window);
    assert!(sa.bytes_written <= window, "{sa:?}");
    assert!(sb.recv_buffered <= window && sb.recv_buffered > 0, "{sb:?}");
    assert!(sa.replay_bytes <= window, "{sa:?}");
    // Only probes and keepalives flow while blocked: no data growth.
    let extra = p.ab.frames.load(Ordering::Relaxed) - frames_then;
    assert!(extra < 40, "{extra} frames sent while blocked");
    assert_eq!(
        sa.retransmits, 0,
        "received data is acknowledged even if unread"
    );
    writer.abort();
}

#[tokio::test(start_paused = true)]
async fn lost_credit_update_is_probed() {
    let cfg = StreamConfig {
        window: 16 * 1024,
        max_payload: 4 * 1024,
        ..fast_cfg()
    };
    // Drop every 2nd frame toward the writer: half the credit updates are lost.
    let p = pair(
        cfg.clone(),
        cfg.clone(),
        Faults::default(),
        Faults {
            drop_every: 2,
            ..Faults::default()
        },
    );
    let (mut a, mut b) = (p.a, p.b);
    let writer = tokio::spawn(async move { send_all(&mut a, 9, 2 << 20, 4096).await });
    let (n, hash) = recv_all(&mut b).await;
    assert_eq!(n, 2 << 20);
    assert_eq!(hash, writer.await.unwrap());
}
