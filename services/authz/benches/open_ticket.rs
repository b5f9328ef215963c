//! What signed opens (issue #8) add to an open, for docs/benchmarks.md. Run with
//! `cargo bench -p phirepass-authz --bench open_ticket` (optionally `-- production` or
//! `-- embedded`). Per stack, 8 concurrent callers, decision cache on (5 s, the default):
//! `Authorize` alone (what an edge asked before tickets), `IssueOpenTicket` alone, and the two in
//! a row (what an edge now does per open); then signing and verifying in process.

#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "../tests/authz/common/mod.rs"]
mod common;

use std::time::{Duration, Instant};

use common::{Harness, Options, Stack};
use phirepass_proto::authz as pb;
use phirepass_ticket::{
    Audience, KeySet, Scope, TICKET_TTL_MS, TicketSigner, TicketTarget, TicketVerifier,
};

const CONCURRENCY: usize = 8;
const PER_TASK: usize = 500;

fn main() {
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
            rpcs(Stack::Production, "postgresql + redis + nats").await;
        }
        if runs("embedded") {
            rpcs(Stack::Embedded, "sqlite + memory").await;
        }
    });
    in_process();
}

#[derive(Clone, Copy, PartialEq)]
enum Call {
    Authorize,
    Ticket,
    Both,
}

async fn rpcs(stack: Stack, label: &str) {
    let options = Options {
        decision_cache_ttl: Duration::from_secs(5),
        ..Options::default()
    };
    let h = Harness::on(stack, options).await;
    h.create_user("alice").await;
    let node_id = h
        .client()
        .create_node_token(pb::CreateNodeTokenRequest {
            username: "alice".into(),
            node_name: "web-1".into(),
            expires_in_secs: None,
            rotate: false,
        })
        .await
        .unwrap()
        .into_inner()
        .node_id;
    for call in [Call::Authorize, Call::Ticket, Call::Both] {
        let start = Instant::now();
        let tasks: Vec<_> = (0..CONCURRENCY)
            .map(|task| {
                let mut c = h.client();
                let node_id = node_id.clone();
                tokio::spawn(async move {
                    let mut latencies = Vec::with_capacity(PER_TASK);
                    for i in 0..PER_TASK {
                        let t = Instant::now();
                        if call != Call::Ticket {
                            let d = c
                                .authorize(pb::AuthorizeRequest {
                                    user_id: String::new(),
                                    username: "alice".into(),
                                    target: node_id.clone(),
                                    action: "tcp".into(),
                                    client_ip: Some("127.0.0.1".into()),
                                    ..Default::default()
                                })
                                .await
                                .unwrap()
                                .into_inner();
                            assert!(d.allowed, "{}", d.reason);
                        }
                        if call != Call::Authorize {
                            let ticket = c
                                .issue_open_ticket(pb::IssueOpenTicketRequest {
                                    username: "alice".into(),
                                    target: node_id.clone(),
                                    node_id: node_id.clone(),
                                    port: 5432,
                                    edge_id: "gw-bench".into(),
                                    stream_id: (task * PER_TASK + i + 1) as u64,
                                    ..Default::default()
                                })
                                .await
                                .unwrap()
                                .into_inner();
                            assert!(!ticket.ticket.is_empty());
                        }
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
        let what = match call {
            Call::Authorize => "Authorize (no ticket)",
            Call::Ticket => "IssueOpenTicket",
            Call::Both => "Authorize + IssueOpenTicket",
        };
        println!(
            "{what} over grpc ({label}, {CONCURRENCY} concurrent, decision cache 5 s): {:.0}/s, p50 {:.2} ms, p99 {:.2} ms",
            all.len() as f64 / secs,
            pct(50),
            pct(99)
        );
    }
    h.stop().await;
}

/// Ed25519 signing (authz) and verifying (holder, agent) in one thread.
fn in_process() {
    const N: u64 = 20_000;
    let signer = TicketSigner::generate().unwrap();
    let keys = KeySet::new(vec![signer.public_key().clone()]).unwrap();
    let verifier = TicketVerifier::new(keys, Audience::Agent);
    let scope = |stream| Scope {
        node: "node-1".into(),
        target: TicketTarget::Port { port: 5432 },
        edge: "gw-1".into(),
        stream,
    };
    let now = u64::try_from(phirepass_runtime::clock::now_millis()).unwrap();
    let t = Instant::now();
    let tickets: Vec<String> = (1..=N)
        .map(|i| signer.sign("u-1", &scope(i), now, TICKET_TTL_MS).unwrap())
        .collect();
    let sign_us = t.elapsed().as_secs_f64() * 1e6 / N as f64;
    let t = Instant::now();
    for (i, ticket) in tickets.iter().enumerate() {
        verifier
            .verify(Some(ticket), &scope(i as u64 + 1), now)
            .unwrap();
    }
    let verify_us = t.elapsed().as_secs_f64() * 1e6 / N as f64;
    println!(
        "ticket in process: sign {sign_us:.1} us, verify (signature, scope, replay cache) {verify_us:.1} us, {} bytes",
        tickets[0].len()
    );
}
