//! Router-level tests: `app(state)` driven with `tower::ServiceExt::oneshot`, against real
//! in-process authz and registry services on their embedded defaults (SQLite in memory,
//! in-memory presence and bus). WebSocket upgrades need a real connection, so those tests
//! serve the same router on a loopback port.

// Test helpers outside #[test] functions: a failed setup step should panic the test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod apps_open;
mod client_ip_limits;
mod commands;
mod common;
mod cors;
mod csrf;
mod device_flow;
mod forwarded_headers;
mod hosts;
mod refusals_at_start;
mod sessions;
mod shutdown;
mod websocket;
