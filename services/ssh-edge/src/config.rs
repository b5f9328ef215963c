//! ssh-edge settings, from the environment like the other services.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use phirepass_pki::{Identity, ServiceKind};
use phirepass_runtime::config::{ConfigError, env_opt, env_or};
use phirepass_runtime::grpc::identity_from_env;

use crate::per_source::parse_penalties;
pub use crate::per_source::{Penalties, PerSourceLimits};

/// What to do with a target host key when none is pinned (`SSH_EDGE_UNKNOWN_HOSTKEY`): the
/// browser terminal reads the same setting (`GATEWAY_UNKNOWN_HOSTKEY`).
pub use phirepass_ssh_target::UnknownHostKey;

/// Where the edge's own host key comes from.
#[derive(Clone)]
pub enum HostKeySource {
    /// Loaded from this file, generated there (0600) on first start.
    File(PathBuf),
    /// An OpenSSH private key given directly, so every instance presents the same key.
    Openssh(String),
}

impl std::fmt::Debug for HostKeySource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            HostKeySource::File(p) => write!(f, "File({})", p.display()),
            HostKeySource::Openssh(_) => f.write_str("Openssh(<redacted>)"),
        }
    }
}

#[derive(Clone, Debug)]
pub struct SshEdgeConfig {
    /// gRPC health (`SSH_EDGE_HEALTH_ADDR`).
    pub health_addr: SocketAddr,
    /// The SSH listener (`SSH_EDGE_ADDR`, default 127.0.0.1:2222).
    pub ssh_addr: SocketAddr,
    /// Unique per instance: its bus subjects and registry entries (`SSH_EDGE_ID`).
    pub edge_id: String,
    pub authz_url: String,
    pub secrets_url: String,
    pub registry_url: String,
    /// ssh-edge's certificate (`PHIREPASS_TLS_DIR`), presented to authz, registry and secrets.
    pub identity: Identity,
    pub subject_prefix: String,
    /// `SSH_EDGE_HOST_KEY` (key text) wins over `SSH_EDGE_HOST_KEY_FILE`.
    pub host_key: HostKeySource,
    pub unknown_host_key: UnknownHostKey,
    /// Time a client gets to authenticate (`SSH_EDGE_AUTH_DEADLINE_SECS`, default 10).
    pub auth_deadline: Duration,
    /// Unauthenticated connections held at once (`SSH_EDGE_MAX_UNAUTHENTICATED`, default 512);
    /// more are closed at once.
    pub max_unauthenticated: usize,
    /// Bound for reaching and logging in to a target (`SSH_EDGE_TARGET_TIMEOUT_SECS`, 15).
    pub target_timeout: Duration,
    /// Where audit events of the edge go (authz records its own decisions).
    pub audit_subject: String,
    /// How often open sessions are refreshed in the registry.
    pub heartbeat_interval: Duration,
    /// The public URL of an HTTP tunnel, `{name}` replaced by its name (`SSH_EDGE_TUNNEL_URL`,
    /// default `http://{name}.tunnel.localhost`).
    pub tunnel_url: String,
    /// How the edge is reached, for the hints printed to tunnel users (`SSH_EDGE_PUBLIC_HOST`,
    /// e.g. `edge.example.com:2222`; default the SSH listener address).
    pub public_host: Option<String>,
    /// How often published tunnels are refreshed in the registry (their TTL is longer).
    pub tunnel_heartbeat_interval: Duration,
    /// `ssh -R` forwards one SSH session may hold (`SSH_EDGE_MAX_FORWARDS`, default 16).
    pub max_forwards: usize,
    /// How often live connections are re-checked against their user's access
    /// (`SSH_EDGE_ACCESS_RECHECK_SECS`, default 5, 1 to 300): a revoked grant ends a relay, a
    /// disabled or deleted user every connection (and her tunnels), within this.
    pub access_recheck_interval: Duration,
    /// Per-source cap and penalties before authentication (see [`PerSourceLimits`]); on by
    /// default in [`Self::from_env`], off in [`Self::local`].
    pub per_source: PerSourceLimits,
    /// Offer only `mlkem768x25519-sha256` (`SSH_EDGE_KEX_POST_QUANTUM_ONLY`, default false):
    /// every client needs OpenSSH 9.9 or newer (or another implementation of the hybrid).
    pub kex_post_quantum_only: bool,
}

/// Environment variable for the health listener address.
pub const HEALTH_ADDR_VAR: &str = "SSH_EDGE_HEALTH_ADDR";
/// Default health listener address.
pub const DEFAULT_HEALTH_ADDR: &str = "127.0.0.1:50054";
pub const DEFAULT_SSH_ADDR: &str = "127.0.0.1:2222";
pub const DEFAULT_HOST_KEY_FILE: &str = "ssh_edge_host_ed25519";
pub const DEFAULT_TUNNEL_URL: &str = "http://{name}.tunnel.localhost";

impl SshEdgeConfig {
    /// Defaults for in-process use (`phirepass dev`, tests); callers fill URLs and token.
    pub fn local(
        authz_url: String,
        secrets_url: String,
        registry_url: String,
        identity: Identity,
        host_key: HostKeySource,
    ) -> Self {
        Self {
            health_addr: SocketAddr::from(([127, 0, 0, 1], 50054)),
            ssh_addr: SocketAddr::from(([127, 0, 0, 1], 2222)),
            edge_id: random_edge_id(),
            authz_url,
            secrets_url,
            registry_url,
            identity,
            subject_prefix: "pp".into(),
            host_key,
            unknown_host_key: UnknownHostKey::AcceptOnce,
            auth_deadline: Duration::from_secs(10),
            max_unauthenticated: 512,
            target_timeout: Duration::from_secs(15),
            audit_subject: "pp.events.audit".into(),
            heartbeat_interval: Duration::from_secs(10),
            tunnel_url: DEFAULT_TUNNEL_URL.into(),
            public_host: None,
            tunnel_heartbeat_interval: Duration::from_secs(20),
            max_forwards: 16,
            access_recheck_interval: Duration::from_secs(5),
            // In-process deployments serve loopback, where every client is one source.
            per_source: PerSourceLimits::off(),
            kex_post_quantum_only: false,
        }
    }

    /// Reads the variables documented on each field; `PHIREPASS_TLS_DIR` (its certificate) is required.
    pub fn from_env() -> Result<Self, ConfigError> {
        let host_key = match env_opt("SSH_EDGE_HOST_KEY") {
            Some(text) => HostKeySource::Openssh(text),
            None => HostKeySource::File(PathBuf::from(
                env_opt("SSH_EDGE_HOST_KEY_FILE").unwrap_or_else(|| DEFAULT_HOST_KEY_FILE.into()),
            )),
        };
        let prefix: String = env_or("PHIREPASS_SUBJECT_PREFIX", "pp".to_string())?;
        let mut c = Self::local(
            env_or("AUTHZ_URL", "http://127.0.0.1:50051".to_string())?,
            env_or("SECRETS_URL", "http://127.0.0.1:50053".to_string())?,
            env_or("REGISTRY_URL", "http://127.0.0.1:50052".to_string())?,
            identity_from_env(ServiceKind::SshEdge)?,
            host_key,
        );
        c.health_addr = env_or(HEALTH_ADDR_VAR, c.health_addr)?;
        c.ssh_addr = env_or("SSH_EDGE_ADDR", c.ssh_addr)?;
        c.edge_id = env_opt("SSH_EDGE_ID").unwrap_or(c.edge_id);
        c.audit_subject = format!("{prefix}.events.audit");
        c.subject_prefix = prefix;
        c.unknown_host_key = env_or("SSH_EDGE_UNKNOWN_HOSTKEY", c.unknown_host_key)?;
        c.auth_deadline = Duration::from_secs(env_or("SSH_EDGE_AUTH_DEADLINE_SECS", 10u64)?);
        c.max_unauthenticated = env_or("SSH_EDGE_MAX_UNAUTHENTICATED", 512usize)?;
        c.target_timeout = Duration::from_secs(env_or("SSH_EDGE_TARGET_TIMEOUT_SECS", 15u64)?);
        c.tunnel_url = env_opt("SSH_EDGE_TUNNEL_URL").unwrap_or(c.tunnel_url);
        if !c.tunnel_url.contains("{name}") {
            return Err(ConfigError::invalid(
                "SSH_EDGE_TUNNEL_URL",
                "must contain {name}",
            ));
        }
        c.public_host = env_opt("SSH_EDGE_PUBLIC_HOST");
        c.max_forwards = env_or("SSH_EDGE_MAX_FORWARDS", c.max_forwards)?;
        let recheck: u64 = env_or("SSH_EDGE_ACCESS_RECHECK_SECS", 5u64)?;
        if !(1..=300).contains(&recheck) {
            return Err(ConfigError::invalid(
                "SSH_EDGE_ACCESS_RECHECK_SECS",
                format!("expected 1 to 300 seconds, got {recheck}"),
            ));
        }
        c.access_recheck_interval = Duration::from_secs(recheck);
        c.per_source = per_source_from_env()?;
        c.kex_post_quantum_only = env_or("SSH_EDGE_KEX_POST_QUANTUM_ONLY", false)?;
        if !phirepass_tunnel::valid_token(&c.edge_id) {
            return Err(ConfigError::invalid(
                "SSH_EDGE_ID",
                "must be one subject token",
            ));
        }
        Ok(c)
    }
}

fn per_source_from_env() -> Result<PerSourceLimits, ConfigError> {
    let defaults = PerSourceLimits::default();
    let penalties = match env_opt(PENALTIES_VAR) {
        Some(raw) => parse_penalties(&raw).map_err(|e| ConfigError::invalid(PENALTIES_VAR, e))?,
        None => defaults.penalties,
    };
    let limits = PerSourceLimits {
        max_unauthenticated: env_or(
            "SSH_EDGE_PER_SOURCE_MAX_UNAUTHENTICATED",
            defaults.max_unauthenticated,
        )?,
        penalties,
        max_sources: env_or("SSH_EDGE_PER_SOURCE_MAX_SOURCES", defaults.max_sources)?,
    };
    if limits.max_sources == 0 {
        return Err(ConfigError::invalid(
            "SSH_EDGE_PER_SOURCE_MAX_SOURCES",
            "must be at least 1",
        ));
    }
    Ok(limits)
}

const PENALTIES_VAR: &str = "SSH_EDGE_PER_SOURCE_PENALTIES";

fn random_edge_id() -> String {
    format!("ssh-{:08x}", rand::random::<u32>())
}
