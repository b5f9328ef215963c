//! 1 GiB through real NATS with a small window and a slow reader.

use std::time::{Duration, Instant};

use crate::common::*;
use phirepass_tunnel::{StreamConfig, Target, listen, open};
use sha2::{Digest, Sha256};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const TOTAL: usize = 1 << 30;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tunnel_integrity_1gib() {
    let (edge_bus, node_bus) = nats_pair().await;
    let subjects = random_subjects();
    let cfg = StreamConfig {
        window: 64 * 1024,
        ..StreamConfig::default()
    };
    let mut listener = listen(node_bus.clone(), subjects.clone(), "node-1gib", cfg.clone())
        .await
        .unwrap();
    node_bus.flush().await.unwrap();

    let reader = tokio::spawn(async move {
        let mut s = listener.next().await.unwrap().accept().await.unwrap();
        let mut hasher = Sha256::new();
        let mut buf = vec![0u8; 64 * 1024];
        let (mut total, mut next_nap) = (0usize, 0usize);
        loop {
            let n = s.read(&mut buf).await.unwrap();
            if n == 0 {
                break;
            }
            hasher.update(&buf[..n]);
            total += n;
            // A slow reader: the sender must wait for credit again and again.
            if total >= next_nap {
                next_nap += 4 << 20;
                tokio::time::sleep(Duration::from_millis(2)).await;
            }
        }
        s.shutdown().await.unwrap();
        (total, hex::encode(hasher.finalize()), s.stats())
    });

    let mut s = open(
        &edge_bus,
        &subjects,
        "edge-1gib",
        "node-1gib",
        Target::Ssh,
        Vec::new(),
        &cfg,
    )
    .await
    .unwrap();
    let started = Instant::now();
    let sent_hash = send_all(&mut s, 0x5eed, TOTAL, 64 * 1024).await;
    let (got, got_hash, node_stats) = reader.await.unwrap();
    let elapsed = started.elapsed();
    // The node's Fin arrives after all it sent (nothing): EOF, clean finish.
    assert_eq!(s.read(&mut [0u8; 1]).await.unwrap(), 0);
    let edge_stats = s.stats();

    let mib_s = TOTAL as f64 / (1 << 20) as f64 / elapsed.as_secs_f64();
    println!("1 GiB in {elapsed:.2?} = {mib_s:.0} MiB/s");
    println!("edge: {edge_stats:?}");
    println!("node: {node_stats:?}");
    assert_eq!(got, TOTAL);
    assert_eq!(got_hash, sent_hash, "SHA-256 mismatch");
    assert_eq!(node_stats.bytes_received, TOTAL as u64);
    assert_eq!(
        node_stats.gaps, node_stats.gaps_recovered,
        "a gap went unrecovered"
    );
    assert_eq!(edge_stats.bytes_written, TOTAL as u64);
    assert!(
        edge_stats.credit_stalls > 0,
        "the slow reader never throttled the sender"
    );
    assert!(edge_stats.replay_bytes <= u64::from(cfg.window));
}
