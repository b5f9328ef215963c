//! The tunnel crate's integration tests, one binary: codecs, the protocol
//! against a hand-driven peer, endpoint pairs in-process, streams over the
//! bus (in-process and real NATS) and a 1 GiB integrity run over NATS.
//!
//! Tests that only use in-process transports and tokio timers run on paused
//! time (`start_paused`), so their timers are exact and never wait for real.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod bus;
mod codec;
mod common;
mod integrity;
mod nats_tls;
mod pair;
mod protocol;
