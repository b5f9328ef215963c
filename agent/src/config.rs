//! Agent settings, read from the environment (and, for what it leaves unset, from the host
//! config file's `[agent]` section).

use std::collections::BTreeSet;
use std::fmt;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use phirepass_runtime::config::{ConfigError, parse};
use phirepass_tunnel::StreamConfig;

use crate::commands::HostConfig;
use crate::tls;

/// The gateway's agent endpoint path.
pub const NODE_WS_PATH: &str = "/api/nodes/ws";

/// `AGENT_HTTP_ADDR`: where the optional local `/version` server listens (off when unset).
pub const HTTP_ADDR_VAR: &str = "AGENT_HTTP_ADDR";

/// Variables older agents read for the `/version` server. They are generic names other
/// programs set too (a `PORT` exported for `phirepass dev` made the agent bind it), so they
/// are no longer read; `start` says so when one is set.
pub const RETIRED_HTTP_VARS: [&str; 2] = ["HOST", "PORT"];

/// `APP_MODE`: development or production.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum AppMode {
    #[default]
    Development,
    Production,
}

impl FromStr for AppMode {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.to_ascii_lowercase().as_str() {
            "development" | "dev" => Ok(Self::Development),
            "production" | "prod" => Ok(Self::Production),
            _ => Err("expected development or production".to_owned()),
        }
    }
}

/// `SSH_AUTH_METHOD`: how users authenticate to this node's sshd. Only
/// `credentials_prompt` exists today (the user types them at the edge).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SshAuthMethod {
    #[default]
    CredentialsPrompt,
}

impl FromStr for SshAuthMethod {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "credentials_prompt" => Ok(Self::CredentialsPrompt),
            _ => Err("expected credentials_prompt".to_owned()),
        }
    }
}

impl fmt::Display for SshAuthMethod {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::CredentialsPrompt => f.write_str("credentials_prompt"),
        }
    }
}

/// Everything `phirepass-agent start` needs besides the token.
#[derive(Debug, Clone)]
pub struct AgentConfig {
    pub mode: AppMode,
    /// `AGENT_HTTP_ADDR`: the local `/version` server's address; `None` (the default)
    /// turns it off.
    pub http_addr: Option<SocketAddr>,
    /// Retired variables (`HOST`, `PORT`) that are set while `AGENT_HTTP_ADDR` is not:
    /// `start` warns that they no longer turn the server on.
    pub retired_http_vars: Vec<&'static str>,
    /// `STATS_REFRESH_INTERVAL` (seconds): how often a heartbeat is sent.
    pub stats_refresh_interval: Duration,
    /// `PING_INTERVAL` (seconds); 3 intervals of silence = dead link.
    pub ping_interval: Duration,
    /// `ws://` or `wss://` URL of the gateway's node endpoint; `ws://` only to loopback unless
    /// `allow_insecure_gateway` (see [`crate::tls`]).
    pub server_url: String,
    /// `PHIREPASS_GATEWAY_CA` (`--ca`): the gateway's certificate must chain to this PEM CA
    /// only; `None` uses the webpki roots.
    pub gateway_ca: Option<PathBuf>,
    /// `PHIREPASS_INSECURE_GATEWAY=true`: plain `ws://` to a remote gateway (development only).
    pub allow_insecure_gateway: bool,
    /// `PHIREPASS_AGENT_TICKET_KEYS_FILE`: authz's ticket keys pinned at enrolment (default:
    /// beside the token file, set by `start`); `None`: no pins, every open refused.
    pub ticket_keys_file: Option<PathBuf>,
    /// `SSH_HOST`/`SSH_PORT`: the only target of `Target::Ssh`.
    pub ssh_host: String,
    pub ssh_port: u16,
    pub ssh_auth_method: SshAuthMethod,
    /// `ALLOWED_PORTS`: local ports (on 127.0.0.1) `Target::Port` may reach.
    pub allowed_ports: BTreeSet<u16>,
    /// TunnelStream tuning (not from the environment).
    pub stream: StreamConfig,
    /// The host's agent.toml: declared commands, built-ins, limits (empty when none).
    pub host: Arc<HostConfig>,
}

impl AgentConfig {
    /// Reads the process environment.
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    /// Reads settings through `lookup` (raw values: `Some("")` means set
    /// but empty), so tests need not touch the process environment.
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        // Unset and empty both mean "default".
        let get = |name: &str| lookup(name).filter(|v| !v.trim().is_empty());
        let parsed = |name: &str| get(name).map(|v| (name.to_owned(), v));
        fn or<T: FromStr>(v: Option<(String, String)>, default: T) -> Result<T, ConfigError>
        where
            T::Err: fmt::Display,
        {
            match v {
                Some((name, raw)) => parse(&name, raw.trim()),
                None => Ok(default),
            }
        }

        let mode = or(parsed("APP_MODE"), AppMode::Development)?;
        let http_addr = match get(HTTP_ADDR_VAR) {
            None => None,
            Some(raw) => Some(raw.trim().parse::<SocketAddr>().map_err(|_| {
                ConfigError::invalid(
                    HTTP_ADDR_VAR,
                    format!("{raw:?} is not IP:PORT (e.g. 127.0.0.1:8081); unset it to turn the /version server off"),
                )
            })?),
        };
        let retired_http_vars = if http_addr.is_none() {
            RETIRED_HTTP_VARS
                .into_iter()
                .filter(|name| get(name).is_some())
                .collect()
        } else {
            Vec::new()
        };
        let stats_refresh_interval = seconds(
            "STATS_REFRESH_INTERVAL",
            or(parsed("STATS_REFRESH_INTERVAL"), 15)?,
        )?;
        let ping_interval = seconds("PING_INTERVAL", or(parsed("PING_INTERVAL"), 30)?)?;
        let allow_insecure_gateway =
            tls::insecure_flag(get(tls::INSECURE_VAR), mode == AppMode::Production)?;
        let server_url = match get("SERVER_URL") {
            Some(url) => node_ws_url(url.trim())?,
            None => {
                let host = get("SERVER_HOST").unwrap_or_else(|| "127.0.0.1".to_owned());
                let port: u16 = or(parsed("SERVER_PORT"), 8080)?;
                // A gateway elsewhere is reached over TLS unless told otherwise.
                let scheme = if tls::is_loopback(host.trim()) || allow_insecure_gateway {
                    "ws"
                } else {
                    "wss"
                };
                node_ws_url(&format!("{scheme}://{}:{port}", bracket_v6(host.trim())))?
            }
        };
        check_transport(&server_url, allow_insecure_gateway)?;
        let ssh_host =
            get("SSH_HOST").map_or_else(|| "127.0.0.1".to_owned(), |h| h.trim().to_owned());
        let ssh_port = or(parsed("SSH_PORT"), 22u16)?;
        let ssh_auth_method = or(parsed("SSH_AUTH_METHOD"), SshAuthMethod::CredentialsPrompt)?;
        let allowed_ports = match get("ALLOWED_PORTS") {
            Some(raw) => parse_ports(&raw)?,
            None => BTreeSet::new(),
        };
        Ok(Self {
            mode,
            http_addr,
            retired_http_vars,
            stats_refresh_interval,
            ping_interval,
            server_url,
            gateway_ca: tls::ca_path(get(tls::CA_VAR)),
            allow_insecure_gateway,
            ticket_keys_file: get(crate::pins::PINS_FILE_VAR).map(PathBuf::from),
            ssh_host,
            ssh_port,
            ssh_auth_method,
            allowed_ports,
            stream: StreamConfig::bulk(),
            host: Arc::new(HostConfig::default()),
        })
    }

    /// Settings from `lookup` (the environment) and, for the variables it leaves unset, from
    /// the host config file's `[agent]` section; the file's commands come along.
    pub fn from_lookup_and_host(
        lookup: impl Fn(&str) -> Option<String>,
        host: HostConfig,
    ) -> Result<Self, ConfigError> {
        let mut config = Self::from_lookup(|name| {
            lookup(name)
                .filter(|v| !v.trim().is_empty())
                .or_else(|| host.settings.get(name).cloned())
        })?;
        config.host = Arc::new(host);
        Ok(config)
    }
}

fn seconds(name: &str, secs: u64) -> Result<Duration, ConfigError> {
    if secs == 0 {
        return Err(ConfigError::invalid(name, "must be at least 1 second"));
    }
    Ok(Duration::from_secs(secs))
}

fn bracket_v6(host: &str) -> String {
    if host.contains(':') && !host.starts_with('[') {
        format!("[{host}]")
    } else {
        host.to_owned()
    }
}

/// Checks a `ws://`/`wss://` URL and adds the node path when it has none.
pub fn node_ws_url(raw: &str) -> Result<String, ConfigError> {
    let uri: http::Uri = raw
        .parse()
        .map_err(|e| ConfigError::invalid("SERVER_URL", format!("{raw:?} is not a URL: {e}")))?;
    match uri.scheme_str() {
        Some("ws" | "wss") => {}
        _ => {
            return Err(ConfigError::invalid(
                "SERVER_URL",
                format!("{raw:?} must start with ws:// or wss://"),
            ));
        }
    }
    if uri.host().is_none_or(str::is_empty) {
        return Err(ConfigError::invalid(
            "SERVER_URL",
            format!("{raw:?} has no host"),
        ));
    }
    let has_path = uri
        .path_and_query()
        .is_some_and(|pq| pq.as_str() != "/" && !pq.as_str().is_empty());
    if has_path {
        Ok(raw.to_owned())
    } else {
        Ok(format!("{}{NODE_WS_PATH}", raw.trim_end_matches('/')))
    }
}

/// Refuses `ws://` to a host that is not loopback unless `allow_insecure` (the node token
/// is the first message on the link).
pub fn check_transport(url: &str, allow_insecure: bool) -> Result<(), ConfigError> {
    let uri: http::Uri = url
        .parse()
        .map_err(|e| ConfigError::invalid("SERVER_URL", format!("{url:?} is not a URL: {e}")))?;
    let secure = uri.scheme_str() == Some("wss");
    let host = uri.host().unwrap_or_default();
    tls::check_plaintext(url, secure, host, allow_insecure, "wss")
        .map_err(|e| ConfigError::invalid("SERVER_URL", e))
}

/// Parses `ALLOWED_PORTS`: a comma-separated list of ports 1-65535.
pub fn parse_ports(raw: &str) -> Result<BTreeSet<u16>, ConfigError> {
    raw.split(',')
        .map(str::trim)
        .filter(|p| !p.is_empty())
        .map(|p| match p.parse::<u16>() {
            Ok(0) | Err(_) => Err(ConfigError::invalid(
                "ALLOWED_PORTS",
                format!("{p:?} is not a port (1-65535)"),
            )),
            Ok(port) => Ok(port),
        })
        .collect()
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
#[path = "config_tests.rs"]
mod tests;
