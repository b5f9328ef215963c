//! Agents that declare commands (issue #10) for the cross-service and browser tests: one
//! agent.toml every such test uses.

use super::{AgentHandle, agent_config, start_agent_with};

/// A command that prints a line, waits a second (so a reader sees output before the end),
/// then its argument (upper-cased when `mode` is loud), then
/// exits with `code`; `token` is secret and only passed along. No shell parses a parameter:
/// each is one argv element (`$1`..`$4`) of a fixed script.
pub const AGENT_TOML: &str = r#"
[[command]]
name = "shout"
description = "Prints a message"
program = "/bin/sh"
args = ["-c", "echo working; sleep 1; if [ \"$2\" = loud ]; then printf '%s\\n' \"$1\" | tr a-z A-Z; else printf '%s\\n' \"$1\"; fi; exit \"$3\"", "sh", "{message}", "{mode}", "{code}", "{token}"]
timeout = 10

[[command.params]]
name = "message"
type = "string"
pattern = "[a-z0-9 -]{1,40}"
required = true

[[command.params]]
name = "mode"
type = "enum"
values = ["plain", "loud"]
default = "plain"

[[command.params]]
name = "code"
type = "integer"
min = 0
max = 3
default = 0

[[command.params]]
name = "token"
type = "string"
secret = true
"#;

/// An agent for `token` on `gateway` that declares [`AGENT_TOML`].
pub fn start_commands_agent(gateway: &str, token: &str, dir: &std::path::Path) -> AgentHandle {
    let path = dir.join("agent.toml");
    std::fs::write(&path, AGENT_TOML).expect("write agent.toml");
    let host = phirepass_agent::commands::HostConfig::parse(&path, AGENT_TOML).expect("agent.toml");
    // No sshd behind it: these tests only run commands.
    let mut config = agent_config(gateway, "127.0.0.1:1".parse().expect("addr"));
    config.host = std::sync::Arc::new(host);
    start_agent_with(config, token)
}
