//! The `phirepass-agent` command line: `login` stores the node token (typed, from a file or
//! stdin, or by device activation), `start` reads the configuration from the environment and
//! runs until SIGINT/SIGTERM.

use std::io::{IsTerminal as _, Read as _};
use std::path::PathBuf;

use anyhow::Context as _;
use clap::{Args, Parser, Subcommand};
use phirepass_runtime::clock::now_millis;

use crate::tls;
use crate::token::{self, PAT_TOKEN_VAR};
use crate::{AgentConfig, AgentError};

const AFTER_HELP: &str = "\
Token file location (first match wins):
  --token-file PATH
  $PHIREPASS_AGENT_TOKEN_FILE
  $XDG_CONFIG_HOME/phirepass/agent.token
  ~/.config/phirepass/agent.token
The file is written with mode 0600 (new directories 0700).

Device activation (no token to copy around):
  phirepass-agent login --device --gateway https://phirepass.example.com
  prints a short code; a logged-in user enters it at /activate and names the node.

Container recipe (deploy/Dockerfile.agent's command; no shell needed):
  phirepass-agent start --login-from-stdin < agent.token
  same as: phirepass-agent login --from-stdin < agent.token && phirepass-agent start";

const START_HELP: &str = "\
Environment (defaults):
  PAT_TOKEN                 node token; overrides the token file when set
  APP_MODE=development      development | production
  AGENT_HTTP_ADDR           IP:PORT of a local server for GET /healthz, /status (JSON) and
                            /version (e.g. 127.0.0.1:8081); off when unset. HOST and PORT
                            are no longer read.
  STATS_REFRESH_INTERVAL=15 seconds between heartbeats with host stats
  PING_INTERVAL=30          seconds between pings; 3 silent intervals = reconnect
  SERVER_HOST=127.0.0.1, SERVER_PORT=8080
                            gateway to dial (ws://HOST:PORT/api/nodes/ws)
                            (wss:// when SERVER_HOST is not loopback)
  SERVER_URL                full ws:// or wss:// URL; overrides SERVER_HOST/PORT.
                            ws:// only to localhost/127.0.0.1/[::1]: the token is sent first
  PHIREPASS_GATEWAY_CA      PEM CA the gateway's certificate must chain to (--ca); default:
                            the public webpki roots
  PHIREPASS_INSECURE_GATEWAY=false
                            true allows ws:// to a remote gateway; development only
                            (refused with APP_MODE=production)
  SSH_HOST=127.0.0.1, SSH_PORT=22
                            the SSH server tunnels to this node reach
  SSH_AUTH_METHOD=credentials_prompt
  ALLOWED_PORTS             comma list of extra ports on 127.0.0.1 tunnels may reach
                            (logged at start and reported to the gateway)
  PHIREPASS_AGENT_CONFIG    the host config file (--config); default /etc/phirepass/agent.toml
                            when it exists: declared commands, [builtin], [limits], and an
                            [agent] section for the settings above (a set variable wins)
  RUST_LOG=info             log filter; OTEL_EXPORTER_OTLP_ENDPOINT enables trace export";

/// Phirepass node agent: connects this host to a Phirepass gateway.
#[derive(Parser, Debug)]
#[command(name = "phirepass-agent", version, after_help = AFTER_HELP)]
pub struct Cli {
    /// Token file to write (login) or read (start).
    #[arg(long, global = true, value_name = "PATH")]
    token_file: Option<PathBuf>,
    /// PEM file of the CA the gateway's certificate must chain to (instead of the public
    /// webpki roots), for `start` and `login --device`.
    #[arg(long = "ca", global = true, value_name = "FILE", env = tls::CA_VAR)]
    gateway_ca: Option<PathBuf>,
    /// The host config file (agent.toml: declared commands, built-ins, limits, settings) for
    /// `start`; default /etc/phirepass/agent.toml when it exists.
    #[arg(long = "config", global = true, value_name = "PATH", env = crate::commands::CONFIG_VAR)]
    config: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Store the node token (pp_node_...). Prompts without echo by default.
    Login(LoginArgs),
    /// Connect to the gateway and serve tunnels until SIGINT/SIGTERM.
    #[command(after_help = START_HELP)]
    Start(StartArgs),
}

#[derive(Args, Debug)]
struct StartArgs {
    /// First store the token piped to standard input, as `login --from-stdin` does, then start
    /// (a container's command, no shell). Empty input keeps the stored token (a restart).
    #[arg(long)]
    login_from_stdin: bool,
}

#[derive(Args, Debug)]
struct LoginArgs {
    /// Read the token from a file (e.g. a mounted secret).
    #[arg(long, value_name = "PATH", conflicts_with_all = ["from_stdin", "device"])]
    from_file: Option<PathBuf>,
    /// Read the token from standard input.
    #[arg(long, conflicts_with = "device")]
    from_stdin: bool,
    /// Get the token by device activation: print a short code and a URL, wait until a logged-in
    /// user enters the code on the gateway's /activate page and names this node.
    #[arg(long, requires = "gateway")]
    device: bool,
    /// The gateway for --device, e.g. https://phirepass.example.com
    #[arg(
        long,
        value_name = "URL",
        env = "PHIREPASS_GATEWAY_URL",
        requires = "device"
    )]
    gateway: Option<String>,
}

fn token_path(cli_path: Option<PathBuf>) -> Result<PathBuf, token::TokenError> {
    match cli_path {
        Some(path) => Ok(path),
        None => token::default_path(|name| std::env::var(name).ok()),
    }
}

/// Device activation: prints the code, waits for approval, stores the node token.
async fn login_device(gateway: &str, path: PathBuf, ca: Option<PathBuf>) -> anyhow::Result<()> {
    use crate::device;
    let _ = rustls::crypto::ring::default_provider().install_default();
    let url = device::GatewayUrl::parse_with(gateway, ca, tls::insecure_flag_from_env()?)?;
    let host = device::hostname();
    let started = device::start(&url, device::DeviceKind::Agent, &host).await?;
    let minutes = ((started.expires_at_ms - now_millis()) / 60_000).max(1);
    println!("To activate this node, open {}", started.verification_uri);
    println!("and enter the code: {}", started.user_code);
    println!("(or open {})", started.verification_uri_complete);
    // What the approver will see, so the person here can tell them what to expect.
    println!(
        "The page shows this request (hostname {host:?}, this machine's address) before anyone \
         approves it; the approver names the node there."
    );
    println!("Waiting for approval; the code expires in {minutes} min. Ctrl-C to give up.");
    let approved = tokio::select! {
        r = device::wait(&url, &started) => r?,
        () = phirepass_runtime::shutdown::signal() => anyhow::bail!("interrupted before approval"),
    };
    let token = token::normalize(&approved.token)?;
    token::store(&path, &token)?;
    // authz's ticket keys from the same answer: opens are checked against them from now on.
    let pins = crate::pins::path_for_token(&path);
    match &approved.ticket_keys {
        Some(keys) if !keys.is_empty() => {
            crate::pins::store(&pins, keys)?;
            println!("Ticket keys pinned in {}.", pins.display());
        }
        _ => println!(
            "The gateway sent no ticket keys: this agent will refuse every open until it has \
             some (see docs/operations.md, \"Signed opens\")."
        ),
    }
    println!(
        "Approved by {}: this host is node {:?}. Token saved to {}; run `phirepass-agent start`.",
        approved.username,
        approved.node_name,
        path.display()
    );
    Ok(())
}

fn login(args: LoginArgs, path: PathBuf) -> anyhow::Result<()> {
    let raw = if let Some(file) = &args.from_file {
        std::fs::read_to_string(file).with_context(|| format!("cannot read {}", file.display()))?
    } else if args.from_stdin {
        let mut raw = String::new();
        std::io::stdin()
            .read_to_string(&mut raw)
            .map_err(token::TokenError::Input)?;
        raw
    } else {
        if !std::io::stdin().is_terminal() {
            anyhow::bail!("no terminal to prompt on: use --from-stdin or --from-file");
        }
        rpassword::prompt_password("Node token: ").map_err(token::TokenError::Input)?
    };
    save(&raw, &path)
}

/// `start --login-from-stdin`: stores a piped token; nothing piped keeps the stored one.
fn login_before_start(path: PathBuf) -> anyhow::Result<()> {
    if std::io::stdin().is_terminal() {
        anyhow::bail!(
            "--login-from-stdin reads a piped token (e.g. `docker run -i ... < agent.token`); \
             on a terminal run `phirepass-agent login` first"
        );
    }
    let mut raw = String::new();
    std::io::stdin()
        .read_to_string(&mut raw)
        .map_err(token::TokenError::Input)?;
    if raw.trim().is_empty() {
        eprintln!("no token on stdin: starting with the stored one");
        return Ok(());
    }
    save(&raw, &path)
}

/// Validates and stores the token; says when no ticket keys are pinned beside it yet.
fn save(raw: &str, path: &std::path::Path) -> anyhow::Result<()> {
    let token = token::normalize(raw)?;
    token::store(path, &token)?;
    eprintln!("node token saved to {}", path.display());
    let pins = crate::pins::path_for_token(path);
    if !pins.exists() {
        eprintln!(
            "no ticket keys pinned at {}: the agent refuses every open until they are; enrol \
             with `login --device`, or write authz's keys there (docs/operations.md, \"Signed \
             opens\")",
            pins.display()
        );
    }
    Ok(())
}

async fn start(
    token_file: Option<PathBuf>,
    ca: Option<PathBuf>,
    host_config: Option<PathBuf>,
) -> anyhow::Result<()> {
    let _telemetry = phirepass_runtime::telemetry::init("phirepass-agent");
    let host = crate::commands::HostConfig::load(host_config.as_deref())?;
    let mut config = AgentConfig::from_lookup_and_host(|name| std::env::var(name).ok(), host)?;
    if ca.is_some() {
        config.gateway_ca = ca;
    }
    let from_env = phirepass_runtime::config::env_opt(PAT_TOKEN_VAR);
    let token = match &from_env {
        Some(token) => {
            token::normalize(token).with_context(|| format!("{PAT_TOKEN_VAR} is invalid"))?
        }
        None => token::load(&token_path(token_file.clone())?)?,
    };
    // The ticket keys pinned at enrolment live beside the token file. A token from the
    // environment on a host with no place for files: pins last for this run (first use).
    if config.ticket_keys_file.is_none() {
        config.ticket_keys_file = match token_path(token_file) {
            Ok(path) => Some(crate::pins::path_for_token(&path)),
            Err(error) if from_env.is_some() => {
                tracing::warn!(%error, "ticket keys are pinned in memory only: set {}", crate::pins::PINS_FILE_VAR);
                None
            }
            Err(error) => return Err(error.into()),
        };
    }
    tracing::info!(version = crate::VERSION, url = %config.server_url, "starting agent");
    match crate::run(config, token, phirepass_runtime::shutdown::signal()).await {
        Ok(()) => Ok(()),
        Err(AgentError::Rejected(reason)) => Err(anyhow::anyhow!(
            "the gateway rejected this node's token ({reason}); get a new token and run `phirepass-agent login` again"
        )),
        Err(e) => Err(e.into()),
    }
}

/// Runs the parsed command line; the binary prints the error and exits non-zero.
pub async fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Login(args) => {
            let path = token_path(cli.token_file)?;
            match (args.device, args.gateway.clone()) {
                (true, Some(gateway)) => login_device(&gateway, path, cli.gateway_ca).await,
                _ => login(args, path),
            }
        }
        Command::Start(args) => {
            if args.login_from_stdin {
                login_before_start(token_path(cli.token_file.clone())?)?;
            }
            start(cli.token_file, cli.gateway_ca, cli.config).await
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::token::TOKEN_FILE_VAR;
    use clap::CommandFactory as _;

    #[test]
    fn cli_is_well_formed() {
        Cli::command().debug_assert();
    }

    #[test]
    fn env_var_names_are_documented() {
        assert!(AFTER_HELP.contains(TOKEN_FILE_VAR));
        assert!(START_HELP.contains(PAT_TOKEN_VAR));
        assert!(START_HELP.contains(crate::config::HTTP_ADDR_VAR));
        assert!(START_HELP.contains(tls::CA_VAR) && START_HELP.contains(tls::INSECURE_VAR));
        assert!(START_HELP.contains(crate::commands::CONFIG_VAR));
    }
}
