//! The secrets service's integration tests, one binary: a real server on
//! 127.0.0.1:0 over a fresh PostgreSQL database and over SQLite.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod api_tokens;
mod common;
mod logs;
mod rotation;
mod server;
mod token_roles;
mod vault;
