//! The registry's integration tests, one binary: a real server on
//! 127.0.0.1:0 over Redis presence (and NATS) and over in-memory presence.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;
mod grpc;
mod tunnels;
