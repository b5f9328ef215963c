//! Cross-service tests of operating Phirepass: `phirepass admin` as an operator drives it,
//! onboarding, tunnel administration, `phirepass login` and `phirepass dev` end to end.
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "../common/mod.rs"]
mod common;

mod admin_cli;
mod admin_onboarding;
mod admin_tunnels;
mod cli_login;
mod dev_data_dir;
mod dev_flow;
