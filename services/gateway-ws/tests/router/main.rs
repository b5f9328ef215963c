//! Router-level tests: `app(state)` driven with `tower::ServiceExt::oneshot`, against real
//! in-process authz and registry services on their embedded defaults (SQLite in memory,
//! in-memory presence and bus). WebSocket upgrades need a real connection, so those tests
//! serve the same router on a loopback port.

mod common;
mod cors;
mod csrf;
mod hosts;
mod sessions;
mod websocket;
