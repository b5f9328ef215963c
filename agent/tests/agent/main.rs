//! The agent's integration tests, one binary: the `phirepass-agent` command
//! line (`login`, `start`) and the library's `run` against a stand-in
//! gateway on loopback.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod builtins;
mod command_injection;
mod command_limits;
mod commands;
mod gateway;
mod http_server;
mod link;
mod login;
mod session;
mod ssh_check;
mod tickets;

/// A well-formed node token (`pp_node_<16 hex>_<64 hex>`).
const TOKEN: &str =
    "pp_node_0123456789abcdef_0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";
