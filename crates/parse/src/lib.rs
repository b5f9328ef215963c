//! The decoders Phirepass runs on bytes a stranger chose, before anyone is authenticated:
//!
//! * [`ssh_login`]: the SSH username grammar (`alice`, `alice:web-1:root`, `alice+strict`).
//! * [`host`]: the request's Host (or absolute-form authority), normalised, and which site it
//!   names.
//! * [`cookie`]: one cookie from the request's `Cookie` headers; a name sent twice is refused.
//! * [`forwarded`]: the entries of `X-Forwarded-For` and `Forwarded` chains.
//!
//! Pure functions without I/O, so `fuzz/` can run them millions of times; the services keep
//! what depends on their configuration.
#![forbid(unsafe_code)]

pub mod cookie;
pub mod forwarded;
pub mod host;
pub mod ssh_login;
