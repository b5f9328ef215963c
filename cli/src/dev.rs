//! `phirepass dev`: authz, registry, secrets, ssh-edge and gateway-ws in one process.

pub mod data_dir;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use anyhow::Context;
use clap::Args;
use phirepass::stack::{Stack, loopback};
use phirepass_pki::{IssueOptions, LocalPki, ServiceKind};
use phirepass_runtime::config::{env_opt, env_or};
use serde::{Deserialize, Serialize};
use tokio::net::TcpListener;

use data_dir::{DataDir, Origin};

/// authz's open-ticket signing key in the data directory (PKCS#8 PEM, 0600).
const TICKET_KEY: &str = "ticket-key.pem";

#[derive(Args)]
pub struct DevArgs {
    /// Data directory: SQLite database, CA and service certificates (pki/), operator API token,
    /// vault key, endpoints file [default:
    /// ./.phirepass if it exists, else $XDG_DATA_HOME/phirepass, else
    /// ~/.local/share/phirepass].
    #[arg(long, env = "PHIREPASS_DATA_DIR", value_name = "DIR")]
    data_dir: Option<PathBuf>,
    /// Address the gateway (browser and agent WebSockets) listens on.
    #[arg(long, env = "HOST", default_value = "127.0.0.1")]
    host: String,
    /// Gateway port; 0 picks a free one (printed).
    #[arg(long, env = "PORT", default_value_t = 8080)]
    port: u16,
}

/// Written to `<data-dir>/dev.json` so `phirepass admin` finds the running instance.
#[derive(Serialize, Deserialize)]
pub struct DevEndpoints {
    pub authz_url: String,
    pub registry_url: String,
    pub secrets_url: String,
    pub gateway_url: String,
    /// The gateway's `Commands` gRPC service (`phirepass admin nodes run|status`).
    #[serde(default)]
    pub commands_url: String,
}

pub const ENDPOINTS_FILE: &str = "dev.json";
/// The deployment's CA and every service's certificate (`phirepass pki init` layout); the
/// admin CLI verifies the services against `pki/trust.crt`.
pub const PKI_DIR: &str = "pki";
/// An admin-scope API token of the `dev-operator` account (0600): the admin CLI's credential
/// when it is given none (see `phirepass_authz::dev_operator_token`).
pub const OPERATOR_TOKEN_FILE: &str = "operator.token";
/// The vault's master key in dev mode (base64, 0600); production passes PHIREPASS_SECRETS_KEY.
pub const SECRETS_KEY_FILE: &str = "secrets.key";
/// The ssh-edge host key in dev mode (OpenSSH private key, 0600), kept across restarts.
pub const SSH_HOST_KEY_FILE: &str = "ssh_host_ed25519";

pub async fn run(args: DevArgs) -> anyhow::Result<()> {
    let _telemetry = phirepass_runtime::telemetry::init("phirepass-dev");
    let data = DataDir::from_env(args.data_dir.as_deref()).map_err(anyhow::Error::msg)?;
    let data_dir = data.path.as_path();
    create_private_dir(data_dir)?;
    // Every internal gRPC hop is mutual TLS, on loopback too: the same code paths as production.
    let pki = LocalPki::load_or_init(&data_dir.join(PKI_DIR), &IssueOptions::default())
        .context("creating or loading the dev CA and certificates")?;

    let database_url = env_opt("DATABASE_URL").unwrap_or_else(|| {
        format!(
            "sqlite://{}?mode=rwc",
            data_dir.join("phirepass.db").display()
        )
    });
    let store = phirepass_store::Store::connect(&database_url)
        .await
        .context("opening the database")?;
    let presence = phirepass_presence::connect(env_opt("REDIS_URL").as_deref(), "pp:")
        .await
        .context("connecting to presence (Redis)")?;
    let bus = phirepass_bus::connect(env_opt("NATS_URL").as_deref())
        .await
        .context("connecting to the bus (NATS)")?;

    let ssh_edge_listener = bind_ssh_edge().await?;
    let ssh_addr = ssh_edge_listener.local_addr()?;
    let gateway_listener = TcpListener::bind((args.host.as_str(), args.port))
        .await
        .with_context(|| format!("binding the gateway on {}:{}", args.host, args.port))?;
    let gateway_addr = gateway_listener.local_addr()?;

    // Audit events: JetStream when NATS is configured (they survive restarts), else in memory.
    let events = phirepass_bus::connect_events(env_opt("NATS_URL").as_deref())
        .await
        .context("connecting the audit event log")?;
    let mut stack = Stack::new(pki, "pp");
    ensure_operator_token(&store, events.clone(), stack.audit_subject(), data_dir).await?;
    // dev prints the first-run code in its own banner instead of authz's log line. The
    // operator account does not count as a user: a fresh dev still offers /setup.
    let setup_code = phirepass_authz::issue_setup_code(&store)
        .await
        .context("issuing the first-run setup code")?;

    // Open tickets (issue #8): the key persists, so enrolled agents' pins stay valid.
    let ticket_key = phirepass_authz::TicketKeyring::load_or_create(&data_dir.join(TICKET_KEY))
        .context("loading the ticket signing key")?;
    let authz_config = phirepass_authz::AuthzConfig {
        issue_setup_code: false,
        tickets: std::sync::Arc::new(phirepass_authz::TicketKeyring::new(ticket_key)),
        ..phirepass_authz::AuthzConfig::new(stack.identity(ServiceKind::Authz)?)
    };
    let authz_deps = phirepass_authz::AuthzDeps {
        store: store.clone(),
        presence: presence.clone(),
        events: events.clone(),
    };
    let authz_url = stack.start_authz(authz_config, authz_deps).await?;
    let registry_deps = phirepass_registry::RegistryDeps {
        presence,
        bus: Some(bus.clone()),
    };
    let registry_url = stack
        .start_registry(
            phirepass_registry::RegistryConfig::new(stack.identity(ServiceKind::Registry)?),
            registry_deps,
        )
        .await?;
    let secrets_config = phirepass_secrets::SecretsConfig {
        old_key: phirepass_secrets::KeySource::from_env(
            phirepass_secrets::keys::OLD_KEY_VAR,
            phirepass_secrets::keys::OLD_PASSPHRASE_VAR,
        )?,
        // API tokens from `phirepass admin tokens api create` work on the vault too.
        authz_url: Some(authz_url.clone()),
        ..phirepass_secrets::SecretsConfig::new(
            stack.identity(ServiceKind::Secrets)?,
            load_or_create_secrets_key(&data_dir.join(SECRETS_KEY_FILE))?,
        )
    };
    let secrets_deps = phirepass_secrets::SecretsDeps::new(store).with_events(events.clone());
    let secrets_url = stack.start_secrets(secrets_config, secrets_deps).await?;

    let host_key = match env_opt("SSH_EDGE_HOST_KEY") {
        Some(text) => phirepass_ssh_edge::HostKeySource::Openssh(text),
        None => phirepass_ssh_edge::HostKeySource::File(data_dir.join(SSH_HOST_KEY_FILE)),
    };
    let mut ssh_edge_config = stack.ssh_edge_config(host_key)?;
    // `*.localhost` resolves to loopback in browsers and curl, so dev tunnels work without DNS.
    ssh_edge_config.tunnel_url = env_opt("SSH_EDGE_TUNNEL_URL")
        .unwrap_or_else(|| format!("http://{{name}}.tunnel.localhost:{}", gateway_addr.port()));
    if let Some(policy) = env_opt("SSH_EDGE_UNKNOWN_HOSTKEY") {
        ssh_edge_config.unknown_host_key = policy
            .parse()
            .map_err(|e: String| anyhow::anyhow!("SSH_EDGE_UNKNOWN_HOSTKEY: {e}"))?;
    }
    let ssh_edge_deps = phirepass_ssh_edge::SshEdgeDeps {
        bus: bus.clone(),
        events: events.clone(),
    };
    stack
        .start_ssh_edge(ssh_edge_listener, ssh_edge_config, ssh_edge_deps)
        .await?;
    let mut gateway_config = stack.gateway_config()?;
    // App and tunnel URLs the gateway builds carry the dev port; the dashboard frames apps.
    gateway_config.proxy.public_port = Some(gateway_addr.port());
    gateway_config.proxy.main_origin = Some(format!("http://{gateway_addr}"));
    // As the gateway binary reads it; a stats line is INFO only when the counts changed.
    let stats_secs = env_or("STATS_REFRESH_INTERVAL", 15u64)?;
    gateway_config.stats_refresh_interval = std::time::Duration::from_secs(stats_secs.max(1));
    // The gateway's internal gRPC service (`Commands`) on a free loopback port.
    let commands_listener = loopback().await?;
    let commands_url = format!("https://{}", commands_listener.local_addr()?);
    let gateway_deps = phirepass_gateway_ws::GatewayDeps::new(bus)
        .with_events(events)
        .with_commands_listener(commands_listener);
    stack.start_gateway(gateway_listener, gateway_config, gateway_deps)?;

    let gateway_url = format!("http://{gateway_addr}");
    let endpoints = DevEndpoints {
        authz_url,
        registry_url,
        secrets_url,
        gateway_url: gateway_url.clone(),
        commands_url,
    };
    write_private(
        &data_dir.join(ENDPOINTS_FILE),
        &serde_json::to_vec_pretty(&endpoints)?,
    )?;
    print_next_steps(
        &data,
        &gateway_url,
        gateway_addr,
        ssh_addr,
        setup_code.as_deref(),
    );
    stack.run_until(phirepass_runtime::shutdown::signal()).await
}

/// The ssh-edge listener: `SSH_EDGE_ADDR`, else 127.0.0.1:2222, else any free loopback port.
async fn bind_ssh_edge() -> anyhow::Result<TcpListener> {
    if let Some(addr) = env_opt("SSH_EDGE_ADDR") {
        return TcpListener::bind(addr.as_str())
            .await
            .with_context(|| format!("binding the ssh-edge on {addr}"));
    }
    match TcpListener::bind(phirepass_ssh_edge::config::DEFAULT_SSH_ADDR).await {
        Ok(listener) => Ok(listener),
        Err(_) => loopback().await,
    }
}

fn print_next_steps(
    data: &DataDir,
    gateway_url: &str,
    addr: SocketAddr,
    ssh: SocketAddr,
    setup_code: Option<&str>,
) {
    println!("phirepass dev is running");
    println!(
        "  gateway: {gateway_url} (agents: ws://{addr}/api/nodes/ws, browsers: ws://{addr}/api/web/ws)"
    );
    println!(
        "  ssh:     ssh -p {} USER@{} (menu), ssh -p {} USER:TARGET@{} (relay)",
        ssh.port(),
        ssh.ip(),
        ssh.port(),
        ssh.ip()
    );
    println!(
        "  publish: ssh -p {} -R myapp:80:localhost:3000 USER@{} -> http://myapp.tunnel.localhost:{}/",
        ssh.port(),
        ssh.ip(),
        addr.port()
    );
    println!(
        "  apps:    http://PORT-NODE.apps.localhost:{}/ (agent ALLOWED_PORTS, opened from {gateway_url}/api/apps/open?node=NODE&port=PORT)",
        addr.port()
    );
    println!("  data:    {data}");
    println!(
        "  grpc:    mutual TLS (CA in {}); the admin CLI uses {}",
        data.path.join(PKI_DIR).display(),
        data.path.join(OPERATOR_TOKEN_FILE).display()
    );
    println!();
    if let Some(code) = setup_code {
        // Shown to whoever runs `phirepass dev`, and nowhere else: it claims the instance.
        println!("first run: open {gateway_url}/setup and enter the setup code {code}");
        println!("  (or skip the browser: phirepass admin users add alice --admin)");
        println!();
    }
    match data.origin {
        Origin::PerUser => println!("next steps (in another terminal, any directory):"),
        Origin::Given => println!(
            "next steps (in another terminal, with {}={}):",
            data_dir::DATA_DIR_VAR,
            data.path.display()
        ),
        Origin::Legacy => println!("next steps (in another terminal, this directory):"),
    }
    if setup_code.is_none() {
        println!("  phirepass admin users add alice               # unless alice exists");
    }
    println!("  phirepass admin node token create --user alice --name web-1");
    println!("  phirepass-agent login                            # paste the token it printed");
    println!("  SERVER_URL=ws://{addr}/api/nodes/ws phirepass-agent start");
    println!(
        "then log in at {gateway_url}/ and open a terminal on web-1 (it asks the account there),"
    );
    println!(
        "or: ssh -p {} alice:web-1:ACCOUNT@{} (README.md: the first hour, step by step)",
        ssh.port(),
        ssh.ip()
    );
    // Two lines: tools that read `ready: gateway=<url>` to the end of the line keep working.
    println!("ready: ssh={ssh}");
    println!("ready: gateway={gateway_url}");
}

fn create_private_dir(dir: &Path) -> anyhow::Result<()> {
    // Parents (~/.local/share) keep their usual mode; only the data dir itself is private.
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))?;
    }
    Ok(())
}

/// Writes a file only its owner can read (it may hold a credential).
pub fn write_private(path: &Path, contents: &[u8]) -> anyhow::Result<()> {
    use std::io::Write;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut file = options
        .open(path)
        .with_context(|| format!("writing {}", path.display()))?;
    file.write_all(contents)?;
    Ok(())
}

/// Keeps `<data dir>/operator.token` a working admin API token (see [`OPERATOR_TOKEN_FILE`]).
async fn ensure_operator_token(
    store: &phirepass_store::Store,
    events: std::sync::Arc<dyn phirepass_bus::EventLog>,
    audit_subject: String,
    data_dir: &Path,
) -> anyhow::Result<()> {
    let path = data_dir.join(OPERATOR_TOKEN_FILE);
    let kept = std::fs::read_to_string(&path).ok();
    let kept = kept.as_deref().map(str::trim).filter(|t| !t.is_empty());
    let fresh = phirepass_authz::dev_operator_token(store, events, audit_subject, kept)
        .await
        .context("creating the dev operator's API token")?;
    if let Some(token) = fresh {
        write_private(&path, token.as_bytes())?;
    }
    Ok(())
}

/// The dev vault key: from the environment, else the data directory's key file, else a new one
/// written there (never regenerated over an existing file: that would orphan every secret).
fn load_or_create_secrets_key(path: &Path) -> anyhow::Result<phirepass_secrets::KeySource> {
    use phirepass_secrets::{KeySource, MasterKey, keys};
    if let Some(source) = KeySource::from_env(keys::KEY_VAR, keys::PASSPHRASE_VAR)? {
        return Ok(source);
    }
    match std::fs::read_to_string(path) {
        Ok(s) => Ok(KeySource::from_base64(keys::KEY_VAR, s.trim())?),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let key = MasterKey::generate();
            write_private(path, key.to_base64().as_bytes())?;
            Ok(KeySource::Raw(key))
        }
        Err(e) => Err(e).with_context(|| format!("reading {}", path.display())),
    }
}
