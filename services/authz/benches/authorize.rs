//! Authorize throughput and latency over gRPC, for docs/benchmarks.md. Run with
//! `cargo bench -p phirepass-authz --bench authorize` (optionally followed by `-- production`
//! or `-- embedded` to run one stack).
//!
//! Each decision is a group grant (user -> group -> host: the longest path) and includes its
//! audit event append (JetStream on the production stack). Each stack runs twice: with the
//! decision cache (default 5 s TTL, in Redis on the production stack) and without it.

#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "../tests/authz/common/mod.rs"]
mod common;

use std::time::{Duration, Instant};

use common::{Harness, Options, Stack};
use phirepass_proto::authz as pb;

const CONCURRENCY: usize = 8;
const PER_TASK: usize = 500;

fn main() {
    // `cargo bench` passes `--bench`; anything else names the stacks to run.
    let wanted: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with("--"))
        .collect();
    let runs = |name: &str| wanted.is_empty() || wanted.iter().any(|w| w == name);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        if runs("production") {
            let label = "postgresql + redis + nats";
            bench(Stack::Production, label, Duration::ZERO).await;
            bench(Stack::Production, label, Duration::from_secs(5)).await;
        }
        if runs("embedded") {
            bench(Stack::Embedded, "sqlite + memory", Duration::ZERO).await;
            bench(Stack::Embedded, "sqlite + memory", Duration::from_secs(5)).await;
        }
    });
}

async fn bench(stack: Stack, label: &str, cache: Duration) {
    let options = Options {
        decision_cache_ttl: cache,
        ..Options::default()
    };
    let h = Harness::on(stack, options).await;
    h.create_user("alice").await;
    let mut c = h.client();
    c.add_host(pb::AddHostRequest {
        name: "db-1".into(),
        ip: "10.0.0.5".into(),
        port: 22,
    })
    .await
    .unwrap();
    c.create_group(pb::CreateGroupRequest { name: "ops".into() })
        .await
        .unwrap();
    c.add_group_member(pb::AddGroupMemberRequest {
        group: "ops".into(),
        username: "alice".into(),
    })
    .await
    .unwrap();
    c.grant(pb::GrantRequest {
        principal_kind: pb::PrincipalKind::Group as i32,
        principal: "ops".into(),
        target: "db-1".into(),
        ..Default::default()
    })
    .await
    .unwrap();
    let request = || pb::AuthorizeRequest {
        user_id: String::new(),
        username: "alice".into(),
        target: "db-1".into(),
        action: "shell".into(),
        client_ip: Some("127.0.0.1".into()),
        ..Default::default()
    };
    for _ in 0..100 {
        assert!(c.authorize(request()).await.unwrap().into_inner().allowed);
    }

    let start = Instant::now();
    let tasks: Vec<_> = (0..CONCURRENCY)
        .map(|_| {
            let mut c = h.client();
            tokio::spawn(async move {
                let mut latencies = Vec::with_capacity(PER_TASK);
                for _ in 0..PER_TASK {
                    let t = Instant::now();
                    let d = c.authorize(request()).await.unwrap().into_inner();
                    assert!(d.allowed, "{}", d.reason);
                    latencies.push(t.elapsed().as_secs_f64() * 1000.0);
                }
                latencies
            })
        })
        .collect();
    let mut all = Vec::new();
    for t in tasks {
        all.extend(t.await.unwrap());
    }
    let secs = start.elapsed().as_secs_f64();
    all.sort_by(|a, b| a.total_cmp(b));
    let pct = |p: usize| all[(all.len() * p / 100).min(all.len() - 1)];
    println!(
        "authorize over grpc ({label}, {CONCURRENCY} concurrent, group grant, audited, decision cache {}): {:.0} decisions/s, p50 {:.2} ms, p99 {:.2} ms",
        if cache.is_zero() {
            "off".to_owned()
        } else {
            format!("{} s", cache.as_secs())
        },
        all.len() as f64 / secs,
        pct(50),
        pct(99)
    );
    h.stop().await;
}
