//! The bus's integration tests, one binary: the shared Bus and EventLog
//! suites on memory and on NATS (`NATS_URL`, default nats://127.0.0.1:4222).

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod conformance;
mod events;
mod nats_tls;

fn nats_url() -> String {
    std::env::var("NATS_URL").unwrap_or_else(|_| "nats://127.0.0.1:4222".to_owned())
}
