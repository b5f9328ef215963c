//! Cross-service tests of the web UI: its JSON API and, in a real Chromium, its pages.
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "../common/mod.rs"]
mod common;

mod commands_e2e;
mod cross_site;
mod device_confirmation;
mod tunnels_api;
mod web_ui_api;
mod web_ui_e2e;
