//! The authz integration tests, one binary: a real server per test (see
//! `common`), on PostgreSQL + Redis + NATS and on the embedded stack.

#![allow(clippy::unwrap_used, clippy::expect_used)]

#[macro_use]
mod common;

mod access;
mod accounts;
mod admin;
mod admin_audit;
mod api_tokens;
mod app_tokens;
mod brute_force;
mod commands;
mod decision_cache;
mod device_review;
mod devices;
mod edge;
mod first_run;
mod hash_pool;
mod invitations;
mod login_sources;
mod logins;
mod nodes;
mod open_tickets;
mod server;
mod token_roles;
mod tunnel_names;
