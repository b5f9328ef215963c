//! Built-in read-only commands every agent has (issue #10): `health`, `services` (declared
//! systemd units) and `containers` (Docker, over its socket). Operators turn each off in
//! agent.toml's `[builtin]` section.
//!
//! Interface used by the command executor (agent/src/commands): [`manifest`] lists the enabled
//! built-ins for the agent's `AgentStatus`, [`run`] runs one and returns its JSON output.

use std::collections::BTreeMap;
use std::path::PathBuf;

use phirepass_tunnel::command::CommandInfo;
use serde::Deserialize;

/// `[builtin]` in agent.toml.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(default, deny_unknown_fields)]
pub struct BuiltinConfig {
    /// `health`: CPU, memory, disk per mount, load, uptime, the agent's version and RSS.
    pub health: bool,
    /// `services`: the status of these systemd units (none: the built-in is off).
    pub services: Vec<String>,
    /// `containers`: the Docker socket's containers, when the socket exists.
    pub containers: bool,
    pub docker_socket: PathBuf,
}

impl Default for BuiltinConfig {
    fn default() -> Self {
        Self {
            health: true,
            services: Vec::new(),
            containers: true,
            docker_socket: PathBuf::from("/var/run/docker.sock"),
        }
    }
}

/// The enabled built-ins, as callers see them.
pub fn manifest(_config: &BuiltinConfig) -> Vec<CommandInfo> {
    Vec::new()
}

/// Runs built-in `name`: `None` when no enabled built-in has that name, else its JSON output
/// or the reason it failed.
pub async fn run(
    _name: &str,
    _params: &BTreeMap<String, String>,
    _config: &BuiltinConfig,
) -> Option<Result<Vec<u8>, String>> {
    None
}
