//! Vault throughput, for docs/benchmarks.md: envelope opens per second, and
//! ResolveHostAuth over gRPC on SQLite and PostgreSQL. Run with
//! `cargo bench -p phirepass-secrets --bench vault`.

#![allow(clippy::unwrap_used, clippy::expect_used)]

// The integration tests' server harness and fixtures.
#[allow(dead_code)]
#[path = "../tests/secrets/common.rs"]
mod common;

use std::time::Instant;

use common::{Harness, raw};
use phirepass_secrets::MasterKey;
use phirepass_secrets::envelope::{Aad, open, seal};

fn main() {
    // `cargo test --benches` runs this without `--bench`: only check it starts.
    if !std::env::args().any(|arg| arg == "--bench") {
        return;
    }
    bench_envelope_open();
    let runtime = || {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap()
    };
    runtime().block_on(async { bench_resolve(common::sqlite().await, "sqlite").await });
    runtime().block_on(async { bench_resolve(common::postgres().await, "postgres").await });
}

fn bench_envelope_open() {
    let key = MasterKey::generate();
    let aad = Aad {
        table: "relay_credentials",
        row: "0123456789abcdef",
        field: "secret",
    };
    let sealed = seal(&key, aad, &[7u8; 400]).unwrap();
    let n = 50_000;
    let start = Instant::now();
    for _ in 0..n {
        assert_eq!(open(&[&key], aad, &sealed).unwrap().len(), 400);
    }
    let secs = start.elapsed().as_secs_f64();
    println!(
        "envelope open (400 B, HKDF + XChaCha20-Poly1305): {:.0}/s",
        f64::from(n) / secs
    );
}

async fn bench_resolve(store: phirepass_store::Store, backend: &str) {
    let h = Harness::start(store, raw(&MasterKey::generate()), None).await;
    common::populate(&h).await;
    common::check_all(&h).await;
    let (n, tasks) = (2_000u32, 8u32);
    let start = Instant::now();
    let mut joins = Vec::new();
    for _ in 0..tasks {
        let mut client = h.internal.clone();
        joins.push(tokio::spawn(async move {
            let mut latencies = Vec::new();
            for i in 0..n / tasks {
                let host = ["web1", "web2", "web3", "web4"][(i % 4) as usize];
                let t = Instant::now();
                client
                    .resolve_host_auth(phirepass_proto::secrets::ResolveHostAuthRequest {
                        host: host.into(),
                    })
                    .await
                    .unwrap();
                latencies.push(t.elapsed());
            }
            latencies
        }));
    }
    let mut all = Vec::new();
    for j in joins {
        all.extend(j.await.unwrap());
    }
    let secs = start.elapsed().as_secs_f64();
    all.sort();
    let p99 = all[all.len() * 99 / 100];
    println!(
        "ResolveHostAuth over gRPC ({backend}, {tasks} concurrent): {:.0}/s, p99 {p99:?}",
        f64::from(n) / secs
    );
}
