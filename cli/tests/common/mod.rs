//! The harness of the cross-service tests (and of `cli/benches`): a whole deployment on the
//! shared [`phirepass::stack::Stack`] ([`cluster`]), in-process agents, the OpenSSH client as
//! a test user, a PTY driver, and fixtures for the SSH edge, tunnels and the HTTP proxy.
#![allow(dead_code)]

pub mod agent;
pub mod cluster;
pub mod commands;
pub mod edge;
pub mod http_proxy;
pub mod pty;
pub mod ssh_client;
pub mod tickets;
pub mod tunnels;

use std::sync::Arc;
use std::time::Duration;

use phirepass_testkit::browser::http;

// Not every binary that includes this harness uses every part of it.
#[allow(unused_imports)]
pub use agent::{
    AgentHandle, agent_config, agent_config_with_ports, start_agent, start_agent_with,
};
#[allow(unused_imports)]
pub use cluster::{Backend, Cluster, Gateway, Layout, SshEdge};
#[allow(unused_imports)]
pub use edge::{AGENT_NODE, ALICE, ALICE_PASSWORD, EdgeFixture, HOST};
#[allow(unused_imports)]
pub use pty::{PTY_DRIVER, drive_pty};
#[allow(unused_imports)]
pub use ssh_client::{SSH_TIMEOUT, SshClient, new_user_key, run, text};

pub const NODE: &str = "web-1";

pub type SharedBus = Arc<dyn phirepass_bus::Bus>;

pub fn nats_url() -> String {
    std::env::var("NATS_URL").unwrap_or_else(|_| "nats://127.0.0.1:4222".into())
}

pub fn redis_url() -> String {
    std::env::var("REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".into())
}

/// Polls `GET /api/nodes` on `addr` as the logged-in user until `node` is (or is no longer) listed.
pub async fn wait_node_listed(
    addr: &str,
    session: &str,
    node: &str,
    listed: bool,
    timeout: Duration,
) -> bool {
    let deadline = tokio::time::Instant::now() + timeout;
    let auth = format!("Bearer {session}");
    while tokio::time::Instant::now() < deadline {
        if let Ok(reply) = http(addr, "GET", "/api/nodes", &[("authorization", &auth)], "").await {
            let json: serde_json::Value = serde_json::from_str(&reply.body).unwrap_or_default();
            let present = json["nodes"]
                .as_array()
                .map(|a| a.iter().any(|n| n["name"] == node))
                .unwrap_or(false);
            if present == listed {
                return true;
            }
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    false
}

/// Path of a workspace binary next to the test executable (built by `cargo build --workspace --bins`).
pub fn workspace_bin(name: &str) -> std::path::PathBuf {
    let exe = std::env::current_exe().expect("current exe");
    let dir = exe.parent().and_then(|d| d.parent()).expect("target dir");
    dir.join(name)
}
