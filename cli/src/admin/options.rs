//! `phirepass admin options`: a host's relay options in the vault. Secret values
//! (auth.password, auth.identity, auth.passphrase) come from a prompt, stdin or a file, never
//! from the command line, and are never shown back.

use std::io::IsTerminal;
use std::path::PathBuf;

use clap::Subcommand;
use phirepass_proto::secrets::secrets_client::SecretsClient;
use phirepass_proto::secrets::{ListOptionsRequest, SetOptionRequest, UnsetOptionRequest};
use serde_json::json;

use super::connect::Global;
use super::output::{Out, status, time, usage};
use super::prompt;

const KEYS_HELP: &str = "\
Keys:
  auth.method       password | publickey
  auth.username     login name on the host
  auth.password     (secret) prompted, or --from-file
  auth.identity     (secret) OpenSSH private key: --from-file, or piped on stdin
  auth.passphrase   (secret) the identity's passphrase, prompted
  compression       true | false
  insecure          true | false (legacy ciphers)
  hostkey.openssh   pinned host key (see `hosts refresh-hostkey`)

Examples:
  phirepass admin options set db-1 auth.method password
  phirepass admin options set db-1 auth.username deploy
  phirepass admin options set db-1 auth.password            # prompts twice
  phirepass admin options set db-1 auth.identity --from-file ~/.ssh/deploy_ed25519";

#[derive(Subcommand)]
pub enum OptionsCommand {
    /// Set one option of a host.
    #[command(after_help = KEYS_HELP)]
    Set {
        /// The host name (`hosts list`).
        host: String,
        /// The option key (see below).
        key: String,
        /// The value (refused for secret keys: they are prompted or read from --from-file).
        value: Option<String>,
        /// Read the value from a file.
        #[arg(long, value_name = "PATH", conflicts_with = "value")]
        from_file: Option<PathBuf>,
    },
    /// Remove one option of a host.
    #[command(after_help = "Example:\n  phirepass admin options unset db-1 compression")]
    Unset {
        /// The host name.
        host: String,
        /// The option key.
        key: String,
    },
    /// List a host's options; secret values show as <set>.
    #[command(after_help = "Example:\n  phirepass admin options list db-1")]
    List {
        /// The host name.
        host: String,
    },
}

/// Keys whose values are secrets.
pub fn is_secret(key: &str) -> bool {
    matches!(key, "auth.password" | "auth.identity" | "auth.passphrase")
}

pub async fn run(cmd: OptionsCommand, g: &Global, out: Out) -> anyhow::Result<()> {
    let mut vault = SecretsClient::new(g.secrets_channel()?);
    let st = |s| status("secrets", s);
    match cmd {
        OptionsCommand::Set {
            host,
            key,
            value,
            from_file,
        } => {
            let value = option_value(&key, value, from_file)?;
            vault
                .set_option(SetOptionRequest {
                    host: host.clone(),
                    key: key.clone(),
                    value,
                })
                .await
                .map_err(st)?;
            out.done(
                &format!("{host}: {key} set"),
                json!({"host": host, "key": key, "set": true}),
            );
        }
        OptionsCommand::Unset { host, key } => {
            let removed = vault
                .unset_option(UnsetOptionRequest {
                    host: host.clone(),
                    key: key.clone(),
                })
                .await
                .map_err(st)?
                .into_inner()
                .removed;
            let sentence = if removed {
                format!("{host}: {key} removed")
            } else {
                format!("{host}: {key} was not set")
            };
            out.done(
                &sentence,
                json!({"host": host, "key": key, "removed": removed}),
            );
        }
        OptionsCommand::List { host } => {
            let options = vault
                .list_options(ListOptionsRequest { host })
                .await
                .map_err(st)?
                .into_inner()
                .options;
            let rows = options
                .iter()
                .map(|o| vec![o.key.clone(), o.value.clone(), time(o.updated_at)])
                .collect();
            let items = options
                .iter()
                .map(|o| {
                    json!({
                        "key": o.key,
                        "value": o.value,
                        "secret": o.secret,
                        "updated_at": o.updated_at,
                    })
                })
                .collect();
            out.list(&["KEY", "VALUE", "UPDATED"], rows, items);
        }
    }
    Ok(())
}

/// Where the value comes from: the file, the command line (non-secret keys only), or for
/// secrets a no-echo prompt (a private key: stdin when piped).
fn option_value(
    key: &str,
    value: Option<String>,
    from_file: Option<PathBuf>,
) -> anyhow::Result<String> {
    if let Some(path) = from_file {
        let text = prompt::file(&path)?;
        // A key file keeps its layout; one-line values lose the trailing newline.
        return Ok(if key == "auth.identity" {
            text
        } else {
            text.trim_end_matches(['\r', '\n']).to_string()
        });
    }
    match (is_secret(key), value) {
        (false, Some(v)) => Ok(v),
        (false, None) => Err(usage(format!("a value for {key} is needed"))),
        (true, Some(_)) => Err(usage(format!(
            "{key} is a secret: leave the value out to be prompted, or use --from-file"
        ))),
        (true, None) if key == "auth.identity" => {
            if std::io::stdin().is_terminal() {
                return Err(usage(
                    "auth.identity is a private key: use --from-file PATH (or pipe it on stdin)",
                ));
            }
            prompt::stdin_secret().map(|k| format!("{k}\n"))
        }
        (true, None) => prompt::new_secret(key),
    }
}
