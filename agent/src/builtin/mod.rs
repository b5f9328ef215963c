//! Built-in read-only commands every agent has (issue #10): `health`, `services` (declared
//! systemd units) and `containers` (Docker, over its socket). Operators turn each off in
//! agent.toml's `[builtin]` section.
//!
//! Interface used by the command executor (agent/src/commands): [`manifest`] lists the enabled
//! built-ins for the agent's `AgentStatus`, [`run`] runs one and returns its JSON output.
//! None takes a parameter: a caller cannot point one at another unit or socket.

pub mod containers;
pub mod health;
pub mod services;

use std::collections::BTreeMap;
use std::path::PathBuf;

use phirepass_tunnel::command::CommandInfo;
use serde::Deserialize;

use containers::DockerApi;
use services::Systemctl;

pub const HEALTH: &str = "health";
pub const SERVICES: &str = "services";
pub const CONTAINERS: &str = "containers";

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
            docker_socket: PathBuf::from(containers::DOCKER_SOCKET),
        }
    }
}

impl BuiltinConfig {
    /// What is wrong with `[builtin]`, for the config loader to refuse the file with.
    pub fn validate(&self) -> Result<(), String> {
        if self.services.len() > services::MAX_UNITS {
            return Err(format!(
                "services lists {} units: at most {} are allowed",
                self.services.len(),
                services::MAX_UNITS
            ));
        }
        match self.services.iter().find(|u| !services::valid_unit_name(u)) {
            Some(unit) => Err(format!(
                "services: {unit:?} is not a systemd unit name (letters, digits and :-_.\\@, \
                 e.g. \"nginx.service\")"
            )),
            None => Ok(()),
        }
    }

    fn docker(&self) -> DockerApi {
        DockerApi::new(&self.docker_socket)
    }
}

fn info(name: &str, description: &str, timeout_secs: u64, output_limit_bytes: u64) -> CommandInfo {
    CommandInfo {
        name: name.to_owned(),
        description: description.to_owned(),
        builtin: true,
        params: Vec::new(),
        timeout_secs,
        output_limit_bytes,
    }
}

/// The enabled built-ins, as callers see them. `containers` is listed only while a socket
/// exists at `docker_socket`.
pub fn manifest(config: &BuiltinConfig) -> Vec<CommandInfo> {
    let mut all = Vec::new();
    if config.health {
        all.push(info(
            HEALTH,
            "CPU, memory, swap, disk per mount, load, uptime and the agent's own version and RSS (JSON)",
            10,
            256 * 1024,
        ));
    }
    if !config.services.is_empty() {
        all.push(info(
            SERVICES,
            "State of the systemd units this host's agent.toml declares (JSON)",
            services::SYSTEMCTL_TIMEOUT.as_secs() + 5,
            256 * 1024,
        ));
    }
    if config.containers && config.docker().present() {
        all.push(info(
            CONTAINERS,
            "Containers of the local Docker engine, running or not (JSON)",
            containers::DOCKER_TIMEOUT.as_secs() + 5,
            containers::MAX_RESPONSE as u64,
        ));
    }
    all
}

/// Runs built-in `name`: `None` when no enabled built-in has that name, else its JSON output
/// or the reason it failed.
pub async fn run(
    name: &str,
    params: &BTreeMap<String, String>,
    config: &BuiltinConfig,
) -> Option<Result<Vec<u8>, String>> {
    let enabled = match name {
        HEALTH => config.health,
        SERVICES => !config.services.is_empty(),
        CONTAINERS => config.containers,
        _ => false,
    };
    if !enabled {
        return None;
    }
    if let Some(param) = params.keys().next() {
        return Some(Err(format!(
            "built-in {name:?} takes no parameters (got {param:?})"
        )));
    }
    let output = match name {
        HEALTH => Ok(health::report().await),
        SERVICES => Ok(Systemctl::default().report(&config.services).await),
        _ => config.docker().report().await,
    };
    Some(output.map(|value| {
        let mut bytes = value.to_string().into_bytes();
        bytes.push(b'\n');
        bytes
    }))
}
