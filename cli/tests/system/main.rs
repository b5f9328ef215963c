//! Cross-service tests of the data plane and the public surface: the SSH edge (logins,
//! relays, host keys, hostile peers), `ssh -R` tunnels, the HTTP proxy and app ports, the
//! browser terminal across gateways, and refusals of bad input. One binary: every module
//! links the five services once.
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "../common/mod.rs"]
mod common;

mod access_revocation;
mod app_access;
mod app_origin;
mod bad_input;
mod commands;
mod cookie_tossing;
mod cross_edge_terminal;
mod forged_opens;
mod gateway_tls;
mod http_proxy;
mod login_strangers;
mod node_presence;
mod random_tunnel_names;
mod refusals;
mod relay_account_revocation;
mod request_smuggling;
mod ssh_edge_accounts;
mod ssh_edge_algorithms;
mod ssh_edge_denials;
mod ssh_edge_hostile;
mod ssh_edge_hostkeys;
mod ssh_edge_login;
mod ssh_edge_menu_picks;
mod ssh_edge_passthrough;
mod ssh_edge_per_source;
mod ssh_edge_relay;
mod ssh_tunnels;
mod terminal_hostkeys;
mod tunnel_revocation;
