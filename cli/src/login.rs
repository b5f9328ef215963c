//! `phirepass login --device`: activates this command line through the gateway's device flow
//! (a logged-in person approves the printed code at `/activate`) and stores the API token it
//! receives, which `phirepass admin` then presents.

use std::path::{Path, PathBuf};

use anyhow::Context as _;
use clap::Args;
use phirepass_agent::device::{self, DeviceKind, GatewayUrl};

/// Where the token goes unless `--token-file` says otherwise.
pub const TOKEN_FILE_VAR: &str = "PHIREPASS_TOKEN_FILE";

#[derive(Args)]
#[command(
    after_help = "Example:\n  phirepass login --device --gateway https://phirepass.example.com"
)]
pub struct LoginArgs {
    /// Use the device flow: print a code, wait until someone approves it at /activate.
    #[arg(long, required = true)]
    device: bool,
    /// The gateway's URL (https://; http:// to loopback).
    #[arg(long, env = "PHIREPASS_GATEWAY_URL", value_name = "URL")]
    gateway: String,
    /// Where to store the API token (default: $PHIREPASS_TOKEN_FILE, else
    /// $XDG_CONFIG_HOME/phirepass/api.token, else ~/.config/phirepass/api.token).
    #[arg(long, value_name = "PATH")]
    token_file: Option<PathBuf>,
    /// PEM file of the CA the gateway's certificate must chain to (default: the public roots).
    /// Plain http:// is accepted to loopback only, or with PHIREPASS_INSECURE_GATEWAY=true.
    #[arg(long, value_name = "FILE", env = "PHIREPASS_GATEWAY_CA")]
    ca: Option<PathBuf>,
}

/// The stored login's path, from the environment (`None` when no home is known).
pub fn default_token_file(var: impl Fn(&str) -> Option<String>) -> Option<PathBuf> {
    let set = |name: &str| var(name).filter(|v| !v.is_empty());
    if let Some(path) = set(TOKEN_FILE_VAR) {
        return Some(PathBuf::from(path));
    }
    let config = set("XDG_CONFIG_HOME")
        .map(PathBuf::from)
        .or_else(|| set("HOME").map(|home| Path::new(&home).join(".config")))?;
    Some(config.join("phirepass").join("api.token"))
}

pub async fn run(args: LoginArgs) -> anyhow::Result<()> {
    debug_assert!(args.device, "clap requires --device");
    let path = match args.token_file {
        Some(path) => path,
        None => default_token_file(|n| std::env::var(n).ok())
            .context("no place for the token: set --token-file, PHIREPASS_TOKEN_FILE or HOME")?,
    };
    let _ = rustls::crypto::ring::default_provider().install_default();
    let insecure = phirepass_agent::tls::insecure_flag_from_env()?;
    let url = GatewayUrl::parse_with(&args.gateway, args.ca, insecure)?;
    let host = device::hostname();
    let started = device::start(&url, DeviceKind::Cli, &host).await?;
    println!("To log in, open {}", started.verification_uri);
    println!("and enter the code: {}", started.user_code);
    println!("(or open {})", started.verification_uri_complete);
    println!(
        "The page shows this request ({}, from your address) before anyone approves it. The login \
         gets read access; for `phirepass admin` changes, an admin ticks \"Also grant admin scope\".",
        host_label(&host)
    );
    println!("Waiting for approval. Ctrl-C to give up.");
    let approved = tokio::select! {
        r = device::wait(&url, &started) => r?,
        () = phirepass_runtime::shutdown::signal() => anyhow::bail!("interrupted before approval"),
    };
    if !approved.token.starts_with("pp_api_") {
        anyhow::bail!("the gateway handed out something that is not an API token");
    }
    phirepass_agent::token::write_private(&path, &approved.token)?;
    println!(
        "Logged in as {}. API token saved to {}; `phirepass admin` uses it.",
        approved.username,
        path.display()
    );
    Ok(())
}

/// How the approval page will name this machine.
fn host_label(host: &str) -> String {
    if host.is_empty() {
        "no hostname".to_owned()
    } else {
        format!("hostname {host}")
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn token_file_location() {
        let env = |pairs: &'static [(&'static str, &'static str)]| {
            move |name: &str| {
                pairs
                    .iter()
                    .find(|(k, _)| *k == name)
                    .map(|(_, v)| v.to_string())
            }
        };
        assert_eq!(
            default_token_file(env(&[("PHIREPASS_TOKEN_FILE", "/t"), ("HOME", "/h")])).unwrap(),
            PathBuf::from("/t")
        );
        assert_eq!(
            default_token_file(env(&[("XDG_CONFIG_HOME", "/x"), ("HOME", "/h")])).unwrap(),
            PathBuf::from("/x/phirepass/api.token")
        );
        assert_eq!(
            default_token_file(env(&[("HOME", "/h")])).unwrap(),
            PathBuf::from("/h/.config/phirepass/api.token")
        );
        assert_eq!(default_token_file(env(&[])), None);
    }
}
