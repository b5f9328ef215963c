//! Finding the services and the credential to present: flags, then environment, then the
//! running `phirepass dev` (its `dev.json` and `service.token`, in the data dir that `dev`
//! chose by the same rule: see `dev::data_dir`).

use std::path::{Path, PathBuf};

use clap::Args;
use phirepass_proto::authz::authz_client::AuthzClient;
use phirepass_proto::registry::registry_client::RegistryClient;
use phirepass_runtime::grpc::{AuthedChannel, ServiceToken, channel};
use serde::Deserialize;

use super::output::{Exit, fail, usage};
use crate::dev::data_dir::DataDir;
use crate::dev::{ENDPOINTS_FILE, SERVICE_TOKEN_FILE};

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
    /// `phirepass dev`]. The registry accepts the service token only.
    #[arg(long, env = "REGISTRY_URL", global = true, value_name = "URL")]
    pub registry_url: Option<String>,
    /// API token on the command line: discouraged, every local user can read a process's
    /// arguments. Prefer PHIREPASS_TOKEN or --token-file.
    #[arg(long, global = true, value_name = "TOKEN")]
    pub token: Option<String>,
    /// File holding the API token (`phirepass admin tokens api create`); else PHIREPASS_TOKEN,
    /// else PHIREPASS_SERVICE_TOKEN, else the token `phirepass login --device` stored (in
    /// $PHIREPASS_TOKEN_FILE or its default place), else the dev data dir's service.token.
    #[arg(long, global = true, value_name = "PATH")]
    pub token_file: Option<PathBuf>,
    /// Data directory of `phirepass dev` (dev.json and service.token) [default: as dev chooses
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
        Ok(AuthzClient::new(self.channel(&url)?))
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
        Ok(RegistryClient::new(self.channel(&url)?))
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
        self.channel(&url)
    }

    fn channel(&self, url: &str) -> anyhow::Result<AuthedChannel> {
        channel(url, self.credential()?).map_err(|e| usage(e.to_string()))
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

    /// `--token` (with a warning), `--token-file`, PHIREPASS_TOKEN, PHIREPASS_SERVICE_TOKEN,
    /// the API token that `phirepass login --device` stored, then `<data dir>/service.token`.
    fn credential(&self) -> anyhow::Result<ServiceToken> {
        if let Some(t) = self.token.as_deref().filter(|t| !t.trim().is_empty()) {
            static WARNED: std::sync::Once = std::sync::Once::new();
            WARNED.call_once(|| {
                eprintln!(
                    "warning: --token puts the token in this process's arguments, which every \
                     local user can read (ps, /proc); use PHIREPASS_TOKEN or --token-file PATH"
                );
            });
            return Ok(ServiceToken::new(t.trim().to_string()));
        }
        if let Some(path) = &self.token_file {
            return read_given_token_file(path);
        }
        for name in ["PHIREPASS_TOKEN", "PHIREPASS_SERVICE_TOKEN"] {
            if let Some(t) = phirepass_runtime::config::env_opt(name) {
                return Ok(ServiceToken::new(t.trim().to_string()));
            }
        }
        if let Some(login) = crate::login::default_token_file(|n| std::env::var(n).ok())
            && login.is_file()
        {
            return read_token_file(&login);
        }
        read_token_file(&self.dev_path(SERVICE_TOKEN_FILE)?)
    }
}

/// The file named by `--token-file`: an unreadable or empty one is an error, not a fallback
/// to some other credential.
fn read_given_token_file(path: &Path) -> anyhow::Result<ServiceToken> {
    match std::fs::read_to_string(path) {
        Ok(s) if !s.trim().is_empty() => Ok(ServiceToken::new(s.trim().to_string())),
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

fn read_token_file(path: &Path) -> anyhow::Result<ServiceToken> {
    match std::fs::read_to_string(path) {
        Ok(s) if !s.trim().is_empty() => Ok(ServiceToken::new(s.trim().to_string())),
        _ => Err(fail(
            Exit::Denied,
            format!(
                "no credential: set PHIREPASS_TOKEN, pass --token-file PATH, set \
                 PHIREPASS_SERVICE_TOKEN, or run `phirepass dev` with the same data dir ({} not readable)",
                path.display()
            ),
        )),
    }
}
