//! Finding the services, the CA to verify them against and the API token to present: flags,
//! then environment, then the running `phirepass dev` (its `dev.json`, `pki/trust.crt` and
//! `operator.token`, in the data dir that `dev` chose by the same rule: see `dev::data_dir`).
//! Every connection is TLS 1.3; the CLI presents no certificate, only the API token.

use std::path::{Path, PathBuf};

use clap::Args;
use phirepass_pki::ServiceKind;
use phirepass_proto::authz::authz_client::AuthzClient;
use phirepass_proto::commands::commands_client::CommandsClient;
use phirepass_proto::registry::registry_client::RegistryClient;
use phirepass_runtime::grpc::{AuthedChannel, admin_channel};
use rustls::pki_types::CertificateDer;
use serde::Deserialize;

use super::output::{Exit, fail, usage};
use crate::dev::data_dir::DataDir;
use crate::dev::{ENDPOINTS_FILE, OPERATOR_TOKEN_FILE, PKI_DIR};

/// An API token as given; `Debug` never shows it.
struct ApiToken(String);

impl ApiToken {
    fn new(token: &str) -> Self {
        Self(token.trim().to_owned())
    }
}

// Flags every `phirepass admin` subcommand accepts (global: they may follow the subcommand).
#[derive(Args, Clone)]
pub struct Global {
    /// Print one JSON document on stdout instead of a table.
    #[arg(long, global = true)]
    pub json: bool,
    /// authz gRPC endpoint [default: `authz_url` of the running `phirepass dev`].
    #[arg(long, env = "AUTHZ_URL", global = true, value_name = "URL")]
    pub authz_url: Option<String>,
    /// secrets (vault) gRPC endpoint [default: `secrets_url` of the running `phirepass dev`].
    #[arg(long, env = "SECRETS_URL", global = true, value_name = "URL")]
    pub secrets_url: Option<String>,
    /// registry gRPC endpoint (live tunnels) [default: `registry_url` of the running
    /// `phirepass dev`].
    #[arg(long, env = "REGISTRY_URL", global = true, value_name = "URL")]
    pub registry_url: Option<String>,
    /// A gateway's internal `Commands` gRPC endpoint (its GATEWAY_GRPC_ADDR; commands on nodes)
    /// [default: `commands_url` of the running `phirepass dev`].
    #[arg(long, env = "COMMANDS_URL", global = true, value_name = "URL")]
    pub commands_url: Option<String>,
    /// API token on the command line: discouraged, every local user can read a process's
    /// arguments. Prefer PHIREPASS_TOKEN or --token-file.
    #[arg(long, global = true, value_name = "TOKEN")]
    pub token: Option<String>,
    /// File holding the API token (`phirepass admin tokens api create`); else PHIREPASS_TOKEN,
    /// else the token `phirepass login --device` stored (in $PHIREPASS_TOKEN_FILE or its
    /// default place), else the dev data dir's operator.token.
    #[arg(long, global = true, value_name = "PATH")]
    pub token_file: Option<PathBuf>,
    /// The CA certificate(s) to verify authz, registry and secrets against (PEM) [default: the
    /// dev data dir's pki/trust.crt].
    #[arg(long, env = "PHIREPASS_CA", global = true, value_name = "FILE")]
    pub ca: Option<PathBuf>,
    /// Data directory of `phirepass dev` (dev.json, pki/, operator.token) [default: as dev chooses
    /// it: ./.phirepass if it exists, else $XDG_DATA_HOME/phirepass, else
    /// ~/.local/share/phirepass].
    #[arg(long, env = "PHIREPASS_DATA_DIR", global = true, value_name = "DIR")]
    pub data_dir: Option<PathBuf>,
}

/// The subset of `dev.json` the CLI reads; unknown keys are ignored.
#[derive(Deserialize)]
struct DevFile {
    authz_url: Option<String>,
    secrets_url: Option<String>,
    registry_url: Option<String>,
    commands_url: Option<String>,
}

impl Global {
    /// A client for authz.
    pub fn authz(&self) -> anyhow::Result<AuthzClient<AuthedChannel>> {
        let url = match &self.authz_url {
            Some(u) => u.clone(),
            None => self.dev_file("authz_url")?.authz_url.ok_or_else(|| {
                fail(Exit::Failure, "dev.json has no authz_url; pass --authz-url")
            })?,
        };
        Ok(AuthzClient::new(self.channel(&url, ServiceKind::Authz)?))
    }

    /// A client for the registry (live tunnels and sessions).
    pub fn registry(&self) -> anyhow::Result<RegistryClient<AuthedChannel>> {
        let url = match &self.registry_url {
            Some(u) => u.clone(),
            None => self.dev_file("registry_url")?.registry_url.ok_or_else(|| {
                fail(
                    Exit::Failure,
                    "dev.json has no registry_url; pass --registry-url",
                )
            })?,
        };
        Ok(RegistryClient::new(
            self.channel(&url, ServiceKind::Registry)?,
        ))
    }

    /// A client for a gateway's `Commands` service (commands on nodes, their status).
    pub fn commands(&self) -> anyhow::Result<CommandsClient<AuthedChannel>> {
        let url = match &self.commands_url {
            Some(u) => u.clone(),
            None => self
                .dev_file("commands_url")?
                .commands_url
                .filter(|u| !u.is_empty())
                .ok_or_else(|| {
                    fail(
                        Exit::Failure,
                        "dev.json has no commands_url (restart `phirepass dev`); pass \
                         --commands-url or set COMMANDS_URL to a gateway's GATEWAY_GRPC_ADDR",
                    )
                })?,
        };
        Ok(CommandsClient::new(
            self.channel(&url, ServiceKind::GatewayWs)?,
        ))
    }

    /// A channel to the secrets service (the vault).
    pub fn secrets_channel(&self) -> anyhow::Result<AuthedChannel> {
        let url = match &self.secrets_url {
            Some(u) => u.clone(),
            None => {
                let endpoints = self.dev_path(ENDPOINTS_FILE)?;
                self.dev_file("secrets_url")?.secrets_url.ok_or_else(|| {
                    fail(
                        Exit::Failure,
                        format!(
                            "no secrets endpoint: pass --secrets-url or set SECRETS_URL \
                             ({} has no secrets_url)",
                            endpoints.display()
                        ),
                    )
                })?
            }
        };
        self.channel(&url, ServiceKind::Secrets)
    }

    fn channel(&self, url: &str, server: ServiceKind) -> anyhow::Result<AuthedChannel> {
        let token = self.credential()?;
        admin_channel(url, &self.trust()?, server, &token.0).map_err(|e| usage(e.to_string()))
    }

    /// `--ca` / PHIREPASS_CA, else the running dev's trust bundle.
    fn trust(&self) -> anyhow::Result<Vec<CertificateDer<'static>>> {
        let (path, given) = match &self.ca {
            Some(path) => (path.clone(), true),
            None => (self.dev_path(PKI_DIR)?.join("trust.crt"), false),
        };
        phirepass_pki::read_certs(&path).map_err(|e| {
            let hint = if given {
                String::new()
            } else {
                " (pass --ca FILE or set PHIREPASS_CA to the deployment's CA certificate, or run \
                 `phirepass dev` with the same data dir)"
                    .to_owned()
            };
            fail(
                Exit::Failure,
                format!("no CA to verify the services: {e}{hint}"),
            )
        })
    }

    /// A file in the running dev's data dir.
    fn dev_path(&self, file: &str) -> anyhow::Result<PathBuf> {
        let dir = DataDir::from_env(self.data_dir.as_deref()).map_err(usage)?;
        Ok(dir.path.join(file))
    }

    fn dev_file(&self, key: &str) -> anyhow::Result<DevFile> {
        let path = self.dev_path(ENDPOINTS_FILE)?;
        let raw = std::fs::read(&path).map_err(|_| {
            fail(
                Exit::Unavailable,
                format!(
                    "no {key} given (--{} flag or env) and no running `phirepass dev` found \
                     ({} missing; if dev runs with another data dir, pass the same --data-dir \
                     or PHIREPASS_DATA_DIR)",
                    key.replace('_', "-"),
                    path.display()
                ),
            )
        })?;
        serde_json::from_slice(&raw)
            .map_err(|e| fail(Exit::Failure, format!("reading {}: {e}", path.display())))
    }

    /// `--token` (with a warning), `--token-file`, PHIREPASS_TOKEN, the API token that
    /// `phirepass login --device` stored, then `<data dir>/operator.token`.
    fn credential(&self) -> anyhow::Result<ApiToken> {
        if let Some(t) = self.token.as_deref().filter(|t| !t.trim().is_empty()) {
            static WARNED: std::sync::Once = std::sync::Once::new();
            WARNED.call_once(|| {
                eprintln!(
                    "warning: --token puts the token in this process's arguments, which every \
                     local user can read (ps, /proc); use PHIREPASS_TOKEN or --token-file PATH"
                );
            });
            return Ok(ApiToken::new(t));
        }
        if let Some(path) = &self.token_file {
            return read_given_token_file(path);
        }
        if let Some(t) = phirepass_runtime::config::env_opt("PHIREPASS_TOKEN") {
            return Ok(ApiToken::new(&t));
        }
        if let Some(login) = crate::login::default_token_file(|n| std::env::var(n).ok())
            && login.is_file()
        {
            return read_token_file(&login);
        }
        read_token_file(&self.dev_path(OPERATOR_TOKEN_FILE)?)
    }
}

/// The file named by `--token-file`: an unreadable or empty one is an error, not a fallback
/// to some other credential.
fn read_given_token_file(path: &Path) -> anyhow::Result<ApiToken> {
    match std::fs::read_to_string(path) {
        Ok(s) if !s.trim().is_empty() => Ok(ApiToken::new(&s)),
        Ok(_) => Err(fail(
            Exit::Denied,
            format!(
                "--token-file {} is empty: write the API token into it",
                path.display()
            ),
        )),
        Err(e) => Err(fail(
            Exit::Denied,
            format!("--token-file {}: {e}", path.display()),
        )),
    }
}

fn read_token_file(path: &Path) -> anyhow::Result<ApiToken> {
    match std::fs::read_to_string(path) {
        Ok(s) if !s.trim().is_empty() => Ok(ApiToken::new(&s)),
        _ => Err(fail(
            Exit::Denied,
            format!(
                "no credential: set PHIREPASS_TOKEN, pass --token-file PATH, log in with \
                 `phirepass login --device`, or run `phirepass dev` with the same data dir ({} not readable)",
                path.display()
            ),
        )),
    }
}
