//! Gateway configuration, read from the environment names of design note 000.

use std::time::Duration;

use phirepass_runtime::config::{ConfigError, env_opt, env_or};
use phirepass_runtime::grpc::ServiceToken;

/// `development` relaxes browser Origin checks and cookie `Secure`; `production` enforces them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AppMode {
    Development,
    Production,
}

impl std::str::FromStr for AppMode {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.to_ascii_lowercase().as_str() {
            "development" | "dev" => Ok(Self::Development),
            "production" | "prod" => Ok(Self::Production),
            other => Err(format!("expected development or production, got {other:?}")),
        }
    }
}

/// Where the client's address comes from: the socket, or a header set by a trusted proxy.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum IpSource {
    ConnectInfo,
    XForwardedFor,
    Forwarded,
}

impl std::str::FromStr for IpSource {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "ConnectInfo" => Ok(Self::ConnectInfo),
            "XForwardedFor" => Ok(Self::XForwardedFor),
            "Forwarded" => Ok(Self::Forwarded),
            other => Err(format!(
                "expected ConnectInfo, XForwardedFor or Forwarded, got {other:?}"
            )),
        }
    }
}

#[derive(Clone, Debug)]
pub struct GatewayConfig {
    pub mode: AppMode,
    pub ip_source: IpSource,
    /// Unique per instance: names this edge's NATS subjects and its registry entries.
    pub gateway_id: String,
    /// How often the gateway logs its own stats.
    pub stats_refresh_interval: Duration,
    /// Origins allowed to open browser WebSockets and to call the API with credentials.
    pub allowed_origins: Vec<String>,
    pub authz_url: String,
    pub registry_url: String,
    pub service_token: ServiceToken,
    /// NATS subject prefix ("pp"); tests use their own to run in parallel.
    pub subject_prefix: String,
    /// How often held node tokens are re-checked with authz (revocation latency).
    pub token_check_interval: Duration,
    /// Time an agent or browser gets to authenticate after the WebSocket opens.
    pub auth_deadline: Duration,
    /// Lets a production gateway start with no users, to serve `/setup` (which needs the
    /// one-time code authz logs). Off by default: an unclaimed instance stays closed.
    pub first_run_setup: bool,
}

impl GatewayConfig {
    /// Reads the gateway's variables; `PHIREPASS_SERVICE_TOKEN` is required.
    pub fn from_env() -> Result<Self, ConfigError> {
        let origins = env_opt("ACCESS_CONTROL_ALLOW_ORIGIN").unwrap_or_default();
        Ok(Self {
            mode: env_or("APP_MODE", AppMode::Development)?,
            ip_source: env_or("IP_SOURCE", IpSource::ConnectInfo)?,
            gateway_id: env_opt("GATEWAY_ID").unwrap_or_else(random_gateway_id),
            stats_refresh_interval: Duration::from_secs(env_or("STATS_REFRESH_INTERVAL", 15u64)?),
            allowed_origins: split_origins(&origins),
            authz_url: env_or("AUTHZ_URL", "http://127.0.0.1:50051".to_string())?,
            registry_url: env_or("REGISTRY_URL", "http://127.0.0.1:50052".to_string())?,
            service_token: ServiceToken::from_env()?,
            subject_prefix: env_or("PHIREPASS_SUBJECT_PREFIX", "pp".to_string())?,
            token_check_interval: Duration::from_secs(2),
            auth_deadline: Duration::from_secs(10),
            first_run_setup: env_or("GATEWAY_FIRST_RUN_SETUP", false)?,
        })
    }

    /// Defaults for in-process use (`phirepass dev`, tests); callers fill URLs and token.
    pub fn local(authz_url: String, registry_url: String, service_token: ServiceToken) -> Self {
        Self {
            mode: AppMode::Development,
            ip_source: IpSource::ConnectInfo,
            gateway_id: random_gateway_id(),
            stats_refresh_interval: Duration::from_secs(15),
            allowed_origins: Vec::new(),
            authz_url,
            registry_url,
            service_token,
            subject_prefix: "pp".to_string(),
            token_check_interval: Duration::from_secs(2),
            auth_deadline: Duration::from_secs(10),
            first_run_setup: false,
        }
    }
}

pub fn split_origins(raw: &str) -> Vec<String> {
    raw.split(',')
        .map(|o| o.trim().trim_end_matches('/').to_string())
        .filter(|o| !o.is_empty())
        .collect()
}

fn random_gateway_id() -> String {
    format!("gw-{:08x}", rand::random::<u32>())
}
