//! Gateway configuration, read from the environment names of design note 000.

use std::net::IpAddr;
use std::time::Duration;

use phirepass_pki::{Identity, ServiceKind};
use phirepass_runtime::config::{ConfigError, env_opt, env_or, parse};
use phirepass_runtime::grpc::identity_from_env;

pub use crate::http::trusted_proxies::{Cidr, TrustedProxies};
pub use crate::tls::TlsSettings;
pub use phirepass_ssh_target::UnknownHostKey;

/// `development` drops cookie `Secure` and defaults the public scheme to `http`; `production`
/// requires both, and a first user. Browser Origin checks are the same in both. Unset, it is
/// `development` only when the gateway listens on loopback (`HOST`), else `production`.
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

/// Where the client's address comes from: the socket, or a header set by a trusted proxy
/// (believed only as far as `TRUSTED_PROXIES` or `TRUSTED_PROXY_COUNT` say).
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
    /// The proxies whose `IP_SOURCE` header entries are believed; none by default.
    pub trusted_proxies: TrustedProxies,
    /// Unique per instance: names this edge's NATS subjects and its registry entries.
    pub gateway_id: String,
    /// How often the gateway logs its own stats; never zero (see [`stats_interval`]).
    pub stats_refresh_interval: Duration,
    /// Origins allowed to open browser WebSockets and to call the API with credentials.
    pub allowed_origins: Vec<String>,
    pub authz_url: String,
    pub registry_url: String,
    /// The vault (`SECRETS_URL`), where the browser terminal reads and writes node host-key
    /// pins (the same records as ssh-edge). `None`: terminals are refused, never unverified.
    pub secrets_url: Option<String>,
    /// What the browser terminal does with a node host key nothing is pinned for
    /// (`GATEWAY_UNKNOWN_HOSTKEY`: accept-once, the default, reject or prompt). `prompt` refuses
    /// it here like ssh-edge does where it cannot ask: confirm it once through ssh-edge.
    pub unknown_host_key: UnknownHostKey,
    /// gateway-ws's certificate (`PHIREPASS_TLS_DIR`): how it proves itself to authz, registry
    /// and secrets over mutual TLS.
    pub identity: Identity,
    /// NATS subject prefix ("pp"); tests use their own to run in parallel.
    pub subject_prefix: String,
    /// How often held node tokens are re-checked with authz (revocation latency).
    pub token_check_interval: Duration,
    /// How often live browser sockets, terminals and app WebSockets are re-checked against
    /// their session and grants (`ACCESS_RECHECK_SECS`, default 5; a logout is announced and
    /// acted on at once).
    pub access_recheck_interval: Duration,
    /// Time an agent or browser gets to authenticate after the WebSocket opens.
    pub auth_deadline: Duration,
    /// Lets a production gateway start with no users, to serve `/setup` (which needs the
    /// one-time code authz logs). Off by default: an unclaimed instance stays closed.
    pub first_run_setup: bool,
    /// The HTTP proxy (tunnels and app ports); see [`ProxyConfig`].
    pub proxy: ProxyConfig,
    /// `GATEWAY_TLS_CERT`/`GATEWAY_TLS_KEY`: serve HTTPS on the public listener; `None` serves
    /// plain HTTP (development, or behind a TLS proxy).
    pub tls: Option<TlsSettings>,
    /// `HSTS_INCLUDE_SUBDOMAINS`: whether the dashboard's host sends `includeSubDomains`; unset,
    /// it does when a tunnel or app domain lies below it (`http::hsts`).
    pub hsts_include_subdomains: Option<bool>,
}

/// The HTTP proxy by Host: `ssh -R` tunnels at `<name>.<tunnel_domain>`, agent ports at
/// `<port>-<node>.<apps_domain>`.
#[derive(Clone, Debug)]
pub struct ProxyConfig {
    /// `TUNNEL_DOMAIN`; `None` turns the tunnel proxy off.
    pub tunnel_domain: Option<String>,
    /// `APPS_DOMAIN`; `None` turns the app proxy off.
    pub apps_domain: Option<String>,
    /// `PROXY_PUBLIC_SCHEME`: `http` or `https`, for URLs the gateway builds, cookies'
    /// `Secure` and `X-Forwarded-Proto`.
    pub public_scheme: String,
    /// `PROXY_PUBLIC_PORT`: appended to URLs the gateway builds (none for 80/443 behind TLS).
    pub public_port: Option<u16>,
    /// `PROXY_MAIN_ORIGIN`: the dashboard's origin (`https://phirepass.example.com`), linked from
    /// app hosts' login pages and allowed to frame apps. Default: the first allowed origin.
    pub main_origin: Option<String>,
    /// `PROXY_FRAME_ANCESTORS`: the CSP `frame-ancestors` value on app hosts. Default: `'self'`
    /// plus the main origin when known.
    pub frame_ancestors: Option<String>,
    /// `PROXY_RESPONSE_TIMEOUT` (seconds): how long an upstream may take to answer a head.
    pub response_timeout: Duration,
    /// `SSH_EDGE_PUBLIC_ADDR`: how users reach ssh-edge (`edge.example.com:2222`), so the
    /// dashboard shows commands to copy as they are; `phirepass dev` sets its own.
    pub ssh_edge_addr: Option<String>,
}

impl ProxyConfig {
    fn from_env(mode: AppMode, origins: &[String], tls: bool) -> Result<Self, ConfigError> {
        // A gateway terminating TLS itself is reached over https whatever its mode.
        let default_scheme = match mode {
            AppMode::Development if !tls => "http",
            _ => "https",
        };
        let public_scheme = env_or("PROXY_PUBLIC_SCHEME", default_scheme.to_string())?;
        if public_scheme != "http" && public_scheme != "https" {
            return Err(ConfigError::invalid(
                "PROXY_PUBLIC_SCHEME",
                format!("expected http or https, got {public_scheme:?}"),
            ));
        }
        let port: u16 = env_or("PROXY_PUBLIC_PORT", 0)?;
        Ok(Self {
            tunnel_domain: env_opt("TUNNEL_DOMAIN").and_then(|d| normalize_domain(&d)),
            apps_domain: env_opt("APPS_DOMAIN").and_then(|d| normalize_domain(&d)),
            public_scheme,
            public_port: (port != 0).then_some(port),
            main_origin: env_opt("PROXY_MAIN_ORIGIN")
                .map(|o| o.trim().trim_end_matches('/').to_string())
                .filter(|o| !o.is_empty())
                .or_else(|| origins.first().cloned()),
            frame_ancestors: env_opt("PROXY_FRAME_ANCESTORS").filter(|v| !v.trim().is_empty()),
            response_timeout: Duration::from_secs(env_or("PROXY_RESPONSE_TIMEOUT", 60u64)?),
            ssh_edge_addr: env_opt("SSH_EDGE_PUBLIC_ADDR")
                .map(|a| a.trim().to_string())
                .filter(|a| !a.is_empty()),
        })
    }

    /// Development defaults: `tunnel.localhost` and `apps.localhost` (browsers resolve
    /// `*.localhost` to loopback by themselves).
    pub fn local() -> Self {
        Self {
            tunnel_domain: Some("tunnel.localhost".into()),
            apps_domain: Some("apps.localhost".into()),
            public_scheme: "http".into(),
            public_port: None,
            main_origin: None,
            frame_ancestors: None,
            response_timeout: Duration::from_secs(60),
            ssh_edge_addr: None,
        }
    }

    pub fn secure(&self) -> bool {
        self.public_scheme == "https"
    }

    /// The CSP `frame-ancestors` value sent by app hosts.
    pub fn frame_ancestors(&self) -> String {
        match (&self.frame_ancestors, &self.main_origin) {
            (Some(v), _) => v.trim().to_string(),
            (None, Some(origin)) => format!("'self' {origin}"),
            (None, None) => "'self'".to_string(),
        }
    }
}

/// Lower case, no dots at either end; empty means unset.
pub fn normalize_domain(raw: &str) -> Option<String> {
    let d = raw.trim().trim_matches('.').to_ascii_lowercase();
    (!d.is_empty()).then_some(d)
}

impl GatewayConfig {
    /// Reads the gateway's variables; `PHIREPASS_TLS_DIR` (its certificate) is required.
    pub fn from_env() -> Result<Self, ConfigError> {
        let origins = env_opt("ACCESS_CONTROL_ALLOW_ORIGIN").unwrap_or_default();
        // main.rs binds HOST with the same default.
        let host = env_or("HOST", "0.0.0.0".to_string())?;
        let mode = match env_opt("APP_MODE") {
            Some(raw) => raw
                .trim()
                .parse()
                .map_err(|e| ConfigError::invalid("APP_MODE", e))?,
            None => default_mode(&host),
        };
        let allowed_origins = split_origins(&origins);
        let ip_source = env_or("IP_SOURCE", IpSource::ConnectInfo)?;
        let trusted_proxies = trusted_proxies(
            ip_source,
            env_opt("TRUSTED_PROXIES").as_deref(),
            env_or("TRUSTED_PROXY_COUNT", 0usize)?,
        )?;
        let tls = TlsSettings::from_env()?;
        Ok(Self {
            proxy: ProxyConfig::from_env(mode, &allowed_origins, tls.is_some())?,
            tls,
            hsts_include_subdomains: env_opt("HSTS_INCLUDE_SUBDOMAINS")
                .map(|raw| parse("HSTS_INCLUDE_SUBDOMAINS", raw.trim()))
                .transpose()?,
            mode,
            ip_source,
            trusted_proxies,
            gateway_id: env_opt("GATEWAY_ID").unwrap_or_else(random_gateway_id),
            stats_refresh_interval: stats_interval(env_or("STATS_REFRESH_INTERVAL", 15u64)?)?,
            allowed_origins,
            authz_url: env_or("AUTHZ_URL", "http://127.0.0.1:50051".to_string())?,
            registry_url: env_or("REGISTRY_URL", "http://127.0.0.1:50052".to_string())?,
            secrets_url: Some(env_or("SECRETS_URL", "http://127.0.0.1:50053".to_string())?),
            unknown_host_key: env_or("GATEWAY_UNKNOWN_HOSTKEY", UnknownHostKey::AcceptOnce)?,
            identity: identity_from_env(ServiceKind::GatewayWs)?,
            subject_prefix: env_or("PHIREPASS_SUBJECT_PREFIX", "pp".to_string())?,
            token_check_interval: Duration::from_secs(2),
            access_recheck_interval: recheck_interval(env_or("ACCESS_RECHECK_SECS", 5u64)?)?,
            auth_deadline: Duration::from_secs(10),
            first_run_setup: env_or("GATEWAY_FIRST_RUN_SETUP", false)?,
        })
    }

    /// Defaults for in-process use (`phirepass dev`, tests); callers fill URLs and identity.
    pub fn local(authz_url: String, registry_url: String, identity: Identity) -> Self {
        Self {
            mode: AppMode::Development,
            ip_source: IpSource::ConnectInfo,
            trusted_proxies: TrustedProxies::None,
            gateway_id: random_gateway_id(),
            stats_refresh_interval: Duration::from_secs(15),
            allowed_origins: Vec::new(),
            authz_url,
            registry_url,
            secrets_url: None,
            unknown_host_key: UnknownHostKey::AcceptOnce,
            identity,
            subject_prefix: "pp".to_string(),
            token_check_interval: Duration::from_secs(2),
            access_recheck_interval: Duration::from_secs(DEFAULT_ACCESS_RECHECK_SECS),
            auth_deadline: Duration::from_secs(10),
            first_run_setup: false,
            proxy: ProxyConfig::local(),
            tls: None,
            hsts_include_subdomains: None,
        }
    }
}

/// Default of `ACCESS_RECHECK_SECS`.
pub const DEFAULT_ACCESS_RECHECK_SECS: u64 = 5;

/// `ACCESS_RECHECK_SECS`: 1 to 300 seconds (zero would spin, more would leave revoked access
/// open for too long).
fn recheck_interval(secs: u64) -> Result<Duration, ConfigError> {
    if !(1..=300).contains(&secs) {
        return Err(ConfigError::invalid(
            "ACCESS_RECHECK_SECS",
            format!("expected 1 to 300 seconds, got {secs}"),
        ));
    }
    Ok(Duration::from_secs(secs))
}

/// `APP_MODE` when unset: development only on a loopback listener (`127.0.0.1`, `::1`,
/// `localhost`); anything reachable from elsewhere gets production's Secure cookies and checks.
pub fn default_mode(host: &str) -> AppMode {
    let host = host.trim().trim_start_matches('[').trim_end_matches(']');
    let loopback = host.eq_ignore_ascii_case("localhost")
        || host.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback());
    if loopback {
        AppMode::Development
    } else {
        AppMode::Production
    }
}

/// `STATS_REFRESH_INTERVAL` in seconds: zero would make the stats timer panic.
pub fn stats_interval(secs: u64) -> Result<Duration, ConfigError> {
    if secs == 0 {
        return Err(ConfigError::invalid(
            "STATS_REFRESH_INTERVAL",
            "must be at least 1 (seconds between stats lines); unset it for the default 15",
        ));
    }
    Ok(Duration::from_secs(secs))
}

/// `TRUSTED_PROXIES` / `TRUSTED_PROXY_COUNT`: at most one, and only with a header to read, and
/// a header only with one of them (a header nobody vouches for is the client's own text).
pub fn trusted_proxies(
    source: IpSource,
    list: Option<&str>,
    count: usize,
) -> Result<TrustedProxies, ConfigError> {
    let trusted = match (list, count) {
        (Some(_), 1..) => {
            return Err(ConfigError::invalid(
                "TRUSTED_PROXIES",
                "set TRUSTED_PROXIES or TRUSTED_PROXY_COUNT, not both",
            ));
        }
        (Some(list), 0) => {
            TrustedProxies::ranges(list).map_err(|e| ConfigError::invalid("TRUSTED_PROXIES", e))?
        }
        (None, 0) => TrustedProxies::None,
        (None, n) => TrustedProxies::Count(n),
    };
    match (source, trusted.is_none()) {
        (IpSource::ConnectInfo, false) => Err(ConfigError::invalid(
            "IP_SOURCE",
            "TRUSTED_PROXIES or TRUSTED_PROXY_COUNT is set but IP_SOURCE=ConnectInfo reads no \
             header; set IP_SOURCE=XForwardedFor or Forwarded",
        )),
        (IpSource::XForwardedFor | IpSource::Forwarded, true) => Err(ConfigError::invalid(
            "IP_SOURCE",
            format!(
                "IP_SOURCE={source:?} needs TRUSTED_PROXIES (the proxies' addresses or CIDR \
                 ranges) or TRUSTED_PROXY_COUNT (how many proxies stand in front), else any \
                 client could name its own address"
            ),
        )),
        _ => Ok(trusted),
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

#[cfg(test)]
#[path = "config_tests.rs"]
mod tests;

/// A gateway-ws identity from a throwaway CA, for unit tests that never dial anything.
#[cfg(test)]
#[allow(clippy::expect_used)]
pub(crate) fn test_identity() -> Identity {
    phirepass_pki::LocalPki::generate()
        .and_then(|pki| pki.identity(ServiceKind::GatewayWs))
        .expect("test identity")
}
