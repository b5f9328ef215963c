//! The store's conformance suite, one binary: every test runs on a fresh
//! PostgreSQL database and on in-memory SQLite (`on_both_stores!`).

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod access;
mod node_groups;
mod suite;
mod tls;
mod vault;
