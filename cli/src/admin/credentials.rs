//! `phirepass admin credentials`: shared relay credentials in the vault. Create, list
//! (metadata only), delete, assign to and unassign from hosts; a secret is never read back.

use std::io::IsTerminal;
use std::path::PathBuf;

use clap::{Subcommand, ValueEnum};
use phirepass_proto::secrets::secrets_client::SecretsClient;
use phirepass_proto::secrets::{
    AssignCredentialRequest, CreateCredentialRequest, Credential, CredentialKind,
    DeleteCredentialRequest, ListCredentialsRequest, UnassignCredentialRequest,
};
use serde_json::json;

use super::connect::Global;
use super::output::{Out, status, time, usage};
use super::prompt;

#[derive(Clone, Copy, ValueEnum)]
pub enum Kind {
    Password,
    SshKey,
}

#[derive(Subcommand)]
pub enum CredentialsCommand {
    /// Store a credential. The secret comes from --from-file, or a no-echo prompt (a password:
    /// twice), or stdin when piped (an SSH key).
    #[command(after_help = "Examples:\n  \
        phirepass admin credentials create --name root-pw --type password --username root\n  \
        phirepass admin credentials create --name deploy --type ssh-key --username deploy \\\n      \
        --from-file ~/.ssh/deploy_ed25519 --passphrase")]
    Create {
        #[arg(long)]
        name: String,
        #[arg(long = "type", value_enum)]
        kind: Kind,
        /// Login name on the hosts it is assigned to (stored as non-secret metadata).
        #[arg(long)]
        username: Option<String>,
        /// Read the password or private key from this file.
        #[arg(long, value_name = "PATH")]
        from_file: Option<PathBuf>,
        /// Ask for the SSH key's passphrase (asked anyway when the key is encrypted).
        #[arg(long)]
        passphrase: bool,
    },
    /// List credentials (name, type, username, assigned hosts); never a secret.
    #[command(after_help = "Example:\n  phirepass admin credentials list")]
    List,
    /// Delete a credential; refused while assigned to a host unless --force.
    #[command(
        after_help = "Examples:\n  phirepass admin credentials delete old-pw\n  \
        phirepass admin credentials delete old-pw --force"
    )]
    Delete {
        name: String,
        /// Unassign it from its hosts first.
        #[arg(long)]
        force: bool,
    },
    /// Make a host log in with this credential (overrides its inline auth options).
    #[command(
        after_help = "Example:\n  phirepass admin credentials assign --host db-1 --name deploy"
    )]
    Assign {
        #[arg(long, visible_alias = "hostname")]
        host: String,
        #[arg(long)]
        name: String,
    },
    /// Stop using a credential for a host (it falls back to its inline options).
    #[command(after_help = "Example:\n  phirepass admin credentials unassign --host db-1")]
    Unassign {
        #[arg(long, visible_alias = "hostname")]
        host: String,
    },
}

pub async fn run(cmd: CredentialsCommand, g: &Global, out: Out) -> anyhow::Result<()> {
    let mut vault = SecretsClient::new(g.secrets_channel()?);
    let st = |s| status("secrets", s);
    match cmd {
        CredentialsCommand::Create {
            name,
            kind,
            username,
            from_file,
            passphrase,
        } => {
            let (kind, secret, passphrase) = read_secret(kind, from_file, passphrase)?;
            let meta = match username {
                Some(u) => json!({ "username": u }),
                None => json!({}),
            };
            let c = vault
                .create_credential(CreateCredentialRequest {
                    name,
                    kind: kind as i32,
                    secret,
                    passphrase,
                    meta_json: meta.to_string(),
                })
                .await
                .map_err(st)?
                .into_inner();
            out.done(
                &format!("credential {} ({}) created", c.name, kind_name(c.kind())),
                credential_json(&c),
            );
        }
        CredentialsCommand::List => {
            let list = vault
                .list_credentials(ListCredentialsRequest {})
                .await
                .map_err(st)?
                .into_inner()
                .credentials;
            let rows = list
                .iter()
                .map(|c| {
                    vec![
                        c.name.clone(),
                        kind_name(c.kind()).into(),
                        username(c).unwrap_or_default(),
                        if c.has_passphrase { "yes" } else { "no" }.into(),
                        c.assigned_hosts.join(","),
                        time(c.created_at),
                    ]
                })
                .collect();
            let items = list.iter().map(credential_json).collect();
            out.list(
                &["NAME", "TYPE", "USERNAME", "PASSPHRASE", "HOSTS", "CREATED"],
                rows,
                items,
            );
        }
        CredentialsCommand::Delete { name, force } => {
            let hosts = vault
                .delete_credential(DeleteCredentialRequest {
                    name: name.clone(),
                    force,
                })
                .await
                .map_err(st)?
                .into_inner()
                .unassigned_hosts;
            let mut sentence = format!("credential {name} deleted");
            if !hosts.is_empty() {
                sentence.push_str(&format!(" (unassigned from {})", hosts.join(", ")));
            }
            out.done(
                &sentence,
                json!({"deleted": name, "unassigned_hosts": hosts}),
            );
        }
        CredentialsCommand::Assign { host, name } => {
            vault
                .assign_credential(AssignCredentialRequest {
                    host: host.clone(),
                    name: name.clone(),
                })
                .await
                .map_err(st)?;
            out.done(
                &format!("{host} now logs in with credential {name}"),
                json!({"host": host, "credential": name}),
            );
        }
        CredentialsCommand::Unassign { host } => {
            let was = vault
                .unassign_credential(UnassignCredentialRequest { host: host.clone() })
                .await
                .map_err(st)?
                .into_inner()
                .was_assigned;
            let sentence = if was {
                format!("{host} no longer uses a credential")
            } else {
                format!("{host} had no credential assigned")
            };
            out.done(&sentence, json!({"host": host, "was_assigned": was}));
        }
    }
    Ok(())
}

type Secret = (CredentialKind, String, Option<String>);

/// The secret (and an SSH key's passphrase) from the file, a prompt or stdin.
fn read_secret(kind: Kind, from_file: Option<PathBuf>, ask_pass: bool) -> anyhow::Result<Secret> {
    match kind {
        Kind::Password => {
            if ask_pass {
                return Err(usage("--passphrase is for ssh-key credentials"));
            }
            let pw = match from_file {
                Some(p) => prompt::file(&p)?.trim_end_matches(['\r', '\n']).to_string(),
                None => prompt::new_secret("password")?,
            };
            Ok((CredentialKind::Password, pw, None))
        }
        Kind::SshKey => {
            let key = match from_file {
                Some(p) => prompt::file(&p)?,
                None if !std::io::stdin().is_terminal() && !ask_pass => {
                    format!("{}\n", prompt::stdin_secret()?)
                }
                None => {
                    return Err(usage(
                        "an SSH key is read with --from-file PATH (or piped on stdin)",
                    ));
                }
            };
            // An encrypted key is useless without its passphrase: ask even without the flag.
            let encrypted = russh::keys::PrivateKey::from_openssh(key.as_bytes())
                .map(|k| k.is_encrypted())
                .unwrap_or(false);
            let passphrase = if ask_pass || encrypted {
                Some(prompt::secret("key passphrase: ")?)
            } else {
                None
            };
            Ok((CredentialKind::SshKey, key, passphrase))
        }
    }
}

fn kind_name(k: CredentialKind) -> &'static str {
    match k {
        CredentialKind::Password => "password",
        CredentialKind::SshKey => "ssh-key",
        CredentialKind::Unspecified => "?",
    }
}

fn username(c: &Credential) -> Option<String> {
    serde_json::from_str::<serde_json::Value>(&c.meta_json)
        .ok()?
        .get("username")?
        .as_str()
        .map(String::from)
}

fn credential_json(c: &Credential) -> serde_json::Value {
    let meta: serde_json::Value = serde_json::from_str(&c.meta_json).unwrap_or(json!({}));
    json!({
        "id": c.id,
        "name": c.name,
        "type": kind_name(c.kind()),
        "meta": meta,
        "has_passphrase": c.has_passphrase,
        "assigned_hosts": c.assigned_hosts,
        "created_at": c.created_at,
        "updated_at": c.updated_at,
    })
}
