//! The host's `agent.toml`: what this host allows (declared commands, built-ins, limits) and,
//! optionally, the settings the environment also names (the environment wins). Read once at
//! start; every error names the file, the entry and the fix.

use std::collections::{BTreeMap, BTreeSet};
use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

use super::limits::{DEFAULT_MAX_CONCURRENT, Rate};
use phirepass_tunnel::command::valid_name;

use super::params::{DEFAULT_MAX_LEN, Kind, Param, Pattern};
use super::users::{self, RunAs};
use super::{Declared, HostConfig, template};

/// `--config PATH` / this variable: the host config file (a missing named file is an error).
pub const CONFIG_VAR: &str = "PHIREPASS_AGENT_CONFIG";
/// Read when nothing names a file; its absence means "no declared commands".
pub const DEFAULT_PATH: &str = "/etc/phirepass/agent.toml";

pub const DEFAULT_TIMEOUT_SECS: u64 = 30;
pub const MAX_TIMEOUT_SECS: u64 = 3600;
pub const DEFAULT_OUTPUT_LIMIT: u64 = 1 << 20;
/// Most output one command may keep, whatever the file says.
pub const MAX_OUTPUT_LIMIT: u64 = 64 << 20;

/// Why the host config cannot be used: the agent does not start.
#[derive(Debug, thiserror::Error)]
pub enum HostConfigError {
    #[error(
        "cannot read the agent config {path}: {source}; create it, fix its permissions, or point {CONFIG_VAR} / --config elsewhere"
    )]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path}: {entry}: {problem}")]
    Invalid {
        path: PathBuf,
        entry: String,
        problem: String,
    },
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct FileSchema {
    #[serde(default)]
    agent: AgentSettings,
    #[serde(default)]
    limits: LimitsSchema,
    #[serde(default)]
    builtin: crate::builtin::BuiltinConfig,
    #[serde(default)]
    command: Vec<CommandSchema>,
}

/// The settings the environment also names; each is used only when its variable is unset.
#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct AgentSettings {
    server_url: Option<String>,
    app_mode: Option<String>,
    http_addr: Option<String>,
    gateway_ca: Option<String>,
    ticket_keys_file: Option<String>,
    ssh_host: Option<String>,
    ssh_port: Option<u16>,
    allowed_ports: Option<Vec<u16>>,
    stats_refresh_interval: Option<u64>,
    ping_interval: Option<u64>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct LimitsSchema {
    max_concurrent: Option<usize>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CommandSchema {
    name: String,
    #[serde(default)]
    description: String,
    program: PathBuf,
    #[serde(default)]
    args: Vec<String>,
    #[serde(default)]
    params: Vec<ParamSchema>,
    timeout: Option<u64>,
    user: Option<String>,
    output_limit: Option<u64>,
    rate: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ParamSchema {
    name: String,
    #[serde(rename = "type")]
    kind: ParamType,
    pattern: Option<String>,
    max_len: Option<usize>,
    values: Option<Vec<String>>,
    min: Option<i64>,
    max: Option<i64>,
    root: Option<PathBuf>,
    #[serde(default)]
    required: bool,
    #[serde(default)]
    secret: bool,
    default: Option<DefaultValue>,
    #[serde(default)]
    description: String,
}

#[derive(Deserialize, Clone, Copy, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
enum ParamType {
    String,
    Enum,
    Integer,
    Path,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum DefaultValue {
    Integer(i64),
    Text(String),
}

impl HostConfig {
    /// Reads `explicit` (an error when missing), else [`DEFAULT_PATH`] when it exists.
    pub fn load(explicit: Option<&Path>) -> Result<Self, HostConfigError> {
        let path = explicit.unwrap_or(Path::new(DEFAULT_PATH));
        match std::fs::read_to_string(path) {
            Ok(text) => Self::parse(path, &text),
            Err(e) if explicit.is_none() && e.kind() == std::io::ErrorKind::NotFound => {
                Ok(Self::default())
            }
            Err(source) => Err(HostConfigError::Read {
                path: path.to_owned(),
                source,
            }),
        }
    }

    /// Parses and checks the text of the file at `path` (programs, users and roots are
    /// checked on this host).
    pub fn parse(path: &Path, text: &str) -> Result<Self, HostConfigError> {
        let invalid = |entry: &str, problem: String| HostConfigError::Invalid {
            path: path.to_owned(),
            entry: entry.to_owned(),
            problem,
        };
        let file: FileSchema = toml::from_str(text)
            .map_err(|e| invalid("not valid agent config TOML", e.to_string()))?;
        let max_concurrent = file.limits.max_concurrent.unwrap_or(DEFAULT_MAX_CONCURRENT);
        if max_concurrent == 0 {
            return Err(invalid(
                "[limits] max_concurrent",
                "0 would refuse every command: use at least 1".to_owned(),
            ));
        }
        file.builtin
            .validate()
            .map_err(|problem| invalid("[builtin]", problem))?;
        let builtin_names: BTreeSet<String> = crate::builtin::manifest(&file.builtin)
            .into_iter()
            .map(|c| c.name)
            .collect();
        let mut commands: Vec<Declared> = Vec::with_capacity(file.command.len());
        for entry in file.command {
            let label = format!("[[command]] {:?}", entry.name);
            let name = entry.name.clone();
            if builtin_names.contains(&name) {
                return Err(invalid(
                    &label,
                    format!("{name:?} is the name of a built-in command: choose another name"),
                ));
            }
            if commands.iter().any(|c| c.name == name) {
                return Err(invalid(
                    &label,
                    "declared twice: keep one entry per name".to_owned(),
                ));
            }
            commands.push(declare(entry).map_err(|problem| invalid(&label, problem))?);
        }
        Ok(Self {
            path: Some(path.to_owned()),
            settings: settings(file.agent),
            max_concurrent,
            builtin: file.builtin,
            commands,
        })
    }
}

/// `[agent]` as the environment variables it stands in for.
fn settings(agent: AgentSettings) -> BTreeMap<&'static str, String> {
    let join = |ports: Vec<u16>| {
        ports
            .iter()
            .map(u16::to_string)
            .collect::<Vec<_>>()
            .join(",")
    };
    [
        ("SERVER_URL", agent.server_url),
        ("APP_MODE", agent.app_mode),
        (crate::config::HTTP_ADDR_VAR, agent.http_addr),
        (crate::tls::CA_VAR, agent.gateway_ca),
        (crate::pins::PINS_FILE_VAR, agent.ticket_keys_file),
        ("SSH_HOST", agent.ssh_host),
        ("SSH_PORT", agent.ssh_port.map(|p| p.to_string())),
        ("ALLOWED_PORTS", agent.allowed_ports.map(join)),
        (
            "STATS_REFRESH_INTERVAL",
            agent.stats_refresh_interval.map(|s| s.to_string()),
        ),
        ("PING_INTERVAL", agent.ping_interval.map(|s| s.to_string())),
    ]
    .into_iter()
    .filter_map(|(var, value)| value.map(|v| (var, v)))
    .collect()
}

fn declare(entry: CommandSchema) -> Result<Declared, String> {
    if !valid_name(&entry.name) {
        return Err("a command name is lowercase letters, digits, _ and -, starting with a letter (at most 64)".to_owned());
    }
    check_program(&entry.program)?;
    let params = entry
        .params
        .into_iter()
        .map(|p| {
            let name = p.name.clone();
            param(p).map_err(|problem| format!("param {name:?}: {problem}"))
        })
        .collect::<Result<Vec<_>, _>>()?;
    let mut names = BTreeSet::new();
    for p in &params {
        if !names.insert(p.name.as_str()) {
            return Err(format!("param {:?} is declared twice", p.name));
        }
    }
    let args = template::parse(&entry.args, &names)?;
    let timeout = entry.timeout.unwrap_or(DEFAULT_TIMEOUT_SECS);
    if timeout == 0 || timeout > MAX_TIMEOUT_SECS {
        return Err(format!(
            "timeout = {timeout}: use 1 to {MAX_TIMEOUT_SECS} seconds"
        ));
    }
    let output_limit = entry.output_limit.unwrap_or(DEFAULT_OUTPUT_LIMIT);
    if output_limit > MAX_OUTPUT_LIMIT {
        return Err(format!(
            "output_limit = {output_limit}: at most {MAX_OUTPUT_LIMIT} bytes"
        ));
    }
    let run_as: Option<RunAs> = match &entry.user {
        Some(user) => {
            let run_as = users::lookup(Path::new(users::PASSWD), user)?;
            users::check_can_switch(&run_as)?;
            Some(run_as)
        }
        None => None,
    };
    let rate = entry.rate.as_deref().map(Rate::parse).transpose()?;
    Ok(Declared {
        name: entry.name,
        description: entry.description,
        program: entry.program,
        args,
        params,
        timeout: Duration::from_secs(timeout),
        run_as,
        output_limit,
        rate,
    })
}

/// The program must be an absolute path to an executable regular file now.
fn check_program(program: &Path) -> Result<(), String> {
    let shown = program.display();
    if !program.is_absolute() {
        return Err(format!(
            "program {shown:?} must be an absolute path (no PATH lookup): write e.g. \"/usr/bin/{shown}\""
        ));
    }
    let meta = std::fs::metadata(program)
        .map_err(|e| format!("program {shown} cannot be used ({e}): install it or fix the path"))?;
    if !meta.is_file() {
        return Err(format!(
            "program {shown} is not a regular file: name the executable itself"
        ));
    }
    if meta.permissions().mode() & 0o111 == 0 {
        return Err(format!(
            "program {shown} is not executable: chmod +x it or name the right file"
        ));
    }
    Ok(())
}

fn param(p: ParamSchema) -> Result<Param, String> {
    if !valid_name(&p.name) {
        return Err(
            "a parameter name is lowercase letters, digits, _ and -, starting with a letter"
                .to_owned(),
        );
    }
    let only = |allowed: &[&str]| {
        let given = [
            ("pattern", p.pattern.is_some()),
            ("max_len", p.max_len.is_some()),
            ("values", p.values.is_some()),
            ("min", p.min.is_some()),
            ("max", p.max.is_some()),
            ("root", p.root.is_some()),
        ];
        match given
            .iter()
            .find(|(key, set)| *set && !allowed.contains(key))
        {
            Some((key, _)) => Err(format!(
                "`{key}` does not apply to this type (it takes: {})",
                allowed.join(", ")
            )),
            None => Ok(()),
        }
    };
    let kind = match p.kind {
        ParamType::String => {
            only(&["pattern", "max_len"])?;
            let max_len = p.max_len.unwrap_or(DEFAULT_MAX_LEN);
            if max_len == 0 || max_len > 4096 {
                return Err(format!("max_len = {max_len}: use 1 to 4096"));
            }
            let pattern = p.pattern.as_deref().map(Pattern::new).transpose()?;
            Kind::String { pattern, max_len }
        }
        ParamType::Enum => {
            only(&["values"])?;
            let values = p.values.unwrap_or_default();
            if values.is_empty() {
                return Err("an enum needs `values = [\"...\", ...]`".to_owned());
            }
            Kind::Enum { values }
        }
        ParamType::Integer => {
            only(&["min", "max"])?;
            if let (Some(min), Some(max)) = (p.min, p.max)
                && min > max
            {
                return Err(format!("min {min} is above max {max}"));
            }
            Kind::Integer {
                min: p.min,
                max: p.max,
            }
        }
        ParamType::Path => {
            only(&["root"])?;
            let root = p
                .root
                .ok_or("a path needs `root = \"/some/dir\"`: values must stay under it")?;
            if !root.is_absolute() {
                return Err(format!("root {:?} must be absolute", root.display()));
            }
            let root = root.canonicalize().map_err(|e| {
                format!(
                    "root {} cannot be used ({e}): create it or fix the path",
                    root.display()
                )
            })?;
            Kind::Path { root }
        }
    };
    let default = match p.default {
        None => None,
        Some(DefaultValue::Integer(n)) => Some(n.to_string()),
        Some(DefaultValue::Text(s)) => Some(s),
    };
    if let Some(default) = &default {
        if p.required {
            return Err(
                "a required parameter has no use for a default: remove one of them".to_owned(),
            );
        }
        super::params::check_value(&kind, default).map_err(|why| format!("default {why}"))?;
    }
    Ok(Param {
        name: p.name,
        kind,
        required: p.required,
        secret: p.secret,
        default,
        description: p.description,
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
#[path = "file_tests.rs"]
mod tests;
