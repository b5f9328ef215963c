//! Allowlisted commands (issue #10): what this host declares in `agent.toml`, the checks a
//! request passes before anything runs, and the execution itself (no shell). The link side
//! (opens, records, audit) is in [`link`].

pub mod exec;
pub mod file;
pub mod limits;
pub(crate) mod link;
pub mod params;
pub mod template;
pub mod users;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use phirepass_tunnel::command::{CommandInfo, CommandRequest, ParamInfo, ParamKind};
use tokio::sync::OwnedSemaphorePermit;

pub use file::{CONFIG_VAR, DEFAULT_PATH, HostConfigError};
use limits::{Concurrency, DEFAULT_MAX_CONCURRENT, Rate, RateWindow};
use params::{Kind, Param};
use template::Arg;
use users::RunAs;

use crate::builtin::{self, BuiltinConfig};

/// Refusal of a name this host does not declare (and no enabled built-in has).
pub const NOT_DECLARED: &str = "not declared on this host";

/// The host's `agent.toml`, checked.
#[derive(Debug)]
pub struct HostConfig {
    /// The file it came from; `None` when there was none.
    pub path: Option<PathBuf>,
    /// `[agent]`: values for environment variables that are not set.
    pub settings: BTreeMap<&'static str, String>,
    pub max_concurrent: usize,
    pub builtin: BuiltinConfig,
    pub commands: Vec<Declared>,
}

impl Default for HostConfig {
    fn default() -> Self {
        Self {
            path: None,
            settings: BTreeMap::new(),
            max_concurrent: DEFAULT_MAX_CONCURRENT,
            builtin: BuiltinConfig::default(),
            commands: Vec::new(),
        }
    }
}

/// One `[[command]]`.
#[derive(Debug)]
pub struct Declared {
    pub name: String,
    pub description: String,
    pub program: PathBuf,
    pub args: Vec<Arg>,
    pub params: Vec<Param>,
    pub timeout: Duration,
    pub run_as: Option<RunAs>,
    pub output_limit: u64,
    pub rate: Option<Rate>,
}

impl Declared {
    /// What callers see: never the program, its arguments or the user.
    pub fn info(&self) -> CommandInfo {
        CommandInfo {
            name: self.name.clone(),
            description: self.description.clone(),
            builtin: false,
            params: self.params.iter().map(param_info).collect(),
            timeout_secs: self.timeout.as_secs(),
            output_limit_bytes: self.output_limit,
        }
    }
}

fn param_info(p: &Param) -> ParamInfo {
    let kind = match &p.kind {
        Kind::String { pattern, max_len } => ParamKind::String {
            pattern: pattern.as_ref().map(|p| p.source.clone()),
            max_len: u32::try_from(*max_len).ok(),
        },
        Kind::Enum { values } => ParamKind::Enum {
            values: values.clone(),
        },
        Kind::Integer { min, max } => ParamKind::Integer {
            min: *min,
            max: *max,
        },
        Kind::Path { root } => ParamKind::Path {
            root: root.display().to_string(),
        },
    };
    ParamInfo {
        name: p.name.clone(),
        kind,
        required: p.required,
        secret: p.secret,
        default: p.default.clone(),
        description: p.description.clone(),
    }
}

/// A declared command ready to run: program, argv, limits.
#[derive(Debug, Clone)]
pub struct Prepared {
    pub program: PathBuf,
    pub argv: Vec<String>,
    pub timeout: Duration,
    pub run_as: Option<RunAs>,
    pub output_limit: u64,
}

/// What runs once a request is admitted.
#[derive(Debug)]
pub enum Job {
    Declared(Prepared),
    Builtin {
        name: String,
        params: BTreeMap<String, String>,
    },
}

/// An admitted request: its job and its concurrency slot (released when dropped).
#[derive(Debug)]
pub struct Admitted {
    pub job: Job,
    pub(crate) slot: OwnedSemaphorePermit,
}

/// The host's commands with their limits, shared by every link of this agent run (so a
/// reconnect resets no rate window).
pub struct Commands {
    host: Arc<HostConfig>,
    concurrency: Concurrency,
    rates: BTreeMap<String, RateWindow>,
}

impl Commands {
    pub fn new(host: Arc<HostConfig>) -> Self {
        let rates = host
            .commands
            .iter()
            .filter_map(|c| c.rate.map(|rate| (c.name.clone(), RateWindow::new(rate))))
            .collect();
        Self {
            concurrency: Concurrency::new(host.max_concurrent),
            host,
            rates,
        }
    }

    pub fn host(&self) -> &HostConfig {
        &self.host
    }

    /// Every command callers may ask for: declared ones, then the enabled built-ins.
    pub fn manifest(&self) -> Vec<CommandInfo> {
        let mut all: Vec<CommandInfo> = self.host.commands.iter().map(Declared::info).collect();
        all.extend(builtin::manifest(&self.host.builtin));
        all
    }

    /// What callers see of `name` (for redacting its parameters), if it exists.
    pub fn info(&self, name: &str) -> Option<CommandInfo> {
        self.manifest().into_iter().find(|c| c.name == name)
    }

    /// Checks `request` against the host's declarations and limits: the job to run, or the
    /// reason it is refused (sent to the caller; it never echoes a parameter value).
    pub fn admit(&self, request: &CommandRequest) -> Result<Admitted, String> {
        let job = match self.host.commands.iter().find(|c| c.name == request.name) {
            Some(declared) => {
                let values = params::check(&declared.params, &request.params)?;
                Job::Declared(Prepared {
                    program: declared.program.clone(),
                    argv: template::render(&declared.args, &values),
                    timeout: declared.timeout,
                    run_as: declared.run_as.clone(),
                    output_limit: declared.output_limit,
                })
            }
            None if builtin::manifest(&self.host.builtin)
                .iter()
                .any(|c| c.name == request.name) =>
            {
                if let Some(unknown) = request.params.keys().next() {
                    return Err(format!(
                        "unknown parameter {unknown:?} (built-in {:?} takes no parameters)",
                        request.name
                    ));
                }
                Job::Builtin {
                    name: request.name.clone(),
                    params: request.params.clone(),
                }
            }
            None => {
                return Err(format!(
                    "command {:?} is {NOT_DECLARED}: the host's agent.toml must declare it",
                    request.name
                ));
            }
        };
        let slot = self.concurrency.try_start()?;
        // Counted last: a refused request uses up no start of its command.
        if let Some(window) = self.rates.get(&request.name) {
            window.try_start(&request.name)?;
        }
        Ok(Admitted { job, slot })
    }
}
