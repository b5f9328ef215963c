//! In-process agents for the cross-service tests: the real `phirepass_agent::run`, stopped
//! when its handle drops.

use phirepass_runtime::shutdown::{self, Trigger};

/// An in-process agent; dropping the handle stops it.
pub struct AgentHandle {
    pub task: tokio::task::JoinHandle<Result<(), phirepass_agent::AgentError>>,
    /// Fires (stopping the agent) when the handle drops.
    _stop: Trigger,
}

impl AgentHandle {
    /// Stops the agent and waits until it has exited (its link to the gateway is closed).
    pub async fn stop(self) {
        let AgentHandle { task, _stop } = self;
        drop(_stop);
        let _ = task.await;
    }
}

pub fn agent_config(gateway_addr: &str, ssh: std::net::SocketAddr) -> phirepass_agent::AgentConfig {
    agent_config_with_ports(gateway_addr, ssh, &[])
}

/// [`agent_config`] that also exposes `ports` (`ALLOWED_PORTS`).
pub fn agent_config_with_ports(
    gateway_addr: &str,
    ssh: std::net::SocketAddr,
    ports: &[u16],
) -> phirepass_agent::AgentConfig {
    let url = format!("ws://{gateway_addr}/api/nodes/ws");
    let pins = super::tickets::pins_file();
    let ports = ports
        .iter()
        .map(|p| p.to_string())
        .collect::<Vec<_>>()
        .join(",");
    phirepass_agent::AgentConfig::from_lookup(|key| match key {
        "SERVER_URL" => Some(url.clone()),
        "SSH_HOST" => Some(ssh.ip().to_string()),
        "SSH_PORT" => Some(ssh.port().to_string()),
        "ALLOWED_PORTS" if !ports.is_empty() => Some(ports.clone()),
        // The deployment's ticket key, as `login` would have pinned it.
        phirepass_agent::pins::PINS_FILE_VAR => Some(pins.to_string_lossy().into_owned()),
        _ => None,
    })
    .expect("agent config")
}

pub fn start_agent(gateway_addr: &str, token: &str, ssh: std::net::SocketAddr) -> AgentHandle {
    start_agent_with(agent_config(gateway_addr, ssh), token)
}

/// Runs an agent with `config` and its node `token` until the handle drops.
pub fn start_agent_with(config: phirepass_agent::AgentConfig, token: &str) -> AgentHandle {
    let (stop, stopped) = shutdown::channel();
    let task = tokio::spawn(phirepass_agent::run(
        config,
        token.to_string(),
        stopped.wait(),
    ));
    AgentHandle { task, _stop: stop }
}
