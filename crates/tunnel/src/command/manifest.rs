//! What an agent tells its gateway about itself: the commands its host declares (so a form
//! can be built from their parameter types) and its self-report, and the audit events it
//! produces for every command request it sees.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// A parameter's type, as declared in the host's `agent.toml`.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ParamKind {
    /// Any string matching `pattern` (a regular expression matched against the whole value).
    String {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pattern: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        max_len: Option<u32>,
    },
    /// One of `values`.
    Enum { values: Vec<String> },
    /// A decimal integer in `min..=max`.
    Integer {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        min: Option<i64>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        max: Option<i64>,
    },
    /// A path that, once normalised (no `..` escapes, symlinks resolved), stays under `root`.
    Path { root: String },
}

/// One declared parameter.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct ParamInfo {
    pub name: String,
    #[serde(flatten)]
    pub kind: ParamKind,
    #[serde(default)]
    pub required: bool,
    /// Its value is never recorded (audit, logs).
    #[serde(default)]
    pub secret: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub default: Option<String>,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub description: String,
}

/// One command a host allows, as shown to callers. The program, its arguments and the user it
/// runs as stay on the host.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct CommandInfo {
    pub name: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub description: String,
    /// Built into the agent (health, services, containers) rather than declared by the host.
    #[serde(default)]
    pub builtin: bool,
    #[serde(default)]
    pub params: Vec<ParamInfo>,
    pub timeout_secs: u64,
    pub output_limit_bytes: u64,
}

impl CommandInfo {
    /// The parameters a record may show: secret ones become `"<redacted>"`; unknown ones are
    /// kept (the agent refuses them anyway).
    pub fn redact(&self, params: &BTreeMap<String, String>) -> BTreeMap<String, String> {
        params
            .iter()
            .map(|(k, v)| {
                let secret = self.params.iter().any(|p| p.name == *k && p.secret);
                (
                    k.clone(),
                    if secret {
                        "<redacted>".to_owned()
                    } else {
                        v.clone()
                    },
                )
            })
            .collect()
    }
}

/// The agent's self-report: sent on the link after `auth_ok` and whenever it changes, kept by
/// the registry with the node's presence, and served on the agent's local `/status`.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq)]
pub struct AgentStatus {
    pub version: String,
    /// When this agent process started, unix epoch milliseconds.
    pub started_at: u64,
    pub commands: Vec<CommandInfo>,
    /// Where the host's allowlist came from (`/etc/phirepass/agent.toml`), or empty.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub config_path: String,
}

/// An audit event the agent raises about a command (refusals included); its gateway publishes
/// it on the audit subject with the node it holds. Values of secret parameters are already
/// redacted by the agent.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct AgentAudit {
    /// `command.refused`, `command.started`, `command.finished`.
    pub action: String,
    pub correlation_id: String,
    pub command: String,
    #[serde(default)]
    pub params: BTreeMap<String, String>,
    /// The ticket's user (empty when the open carried no valid ticket).
    #[serde(default)]
    pub user: String,
    /// Why it was refused or failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exit_code: Option<i32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub duration_ms: Option<u64>,
    /// Unix epoch milliseconds on the agent's clock.
    pub ts: u64,
}
