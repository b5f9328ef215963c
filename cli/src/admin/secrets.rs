//! `phirepass admin secrets`: the vault's master keys. Rotation is online: restart the secrets
//! service with the new key as current and the old one as PHIREPASS_SECRETS_OLD_KEY, then run
//! `secrets rotate` (again after any interruption: it resumes).

use clap::Subcommand;
use phirepass_proto::secrets::secrets_client::SecretsClient;
use phirepass_proto::secrets::{RotateRequest, RotationStatus, RotationStatusRequest};
use serde_json::json;

use super::connect::Global;
use super::output::{Exit, Out, fail, status, time};
use super::prompt;

#[derive(Subcommand)]
pub enum SecretsCommand {
    /// Which master keys exist and how many entries each still seals.
    #[command(after_help = "Example:\n  phirepass admin secrets status")]
    Status,
    /// Re-encrypt every entry under the service's current master key (resumable).
    #[command(
        after_help = "Examples:\n  phirepass admin secrets rotate            # asks to confirm the key id\n  \
        phirepass admin secrets rotate --new-key-id 1a2b3c4d\n\n\
        Before: restart secrets with PHIREPASS_SECRETS_KEY=<new> and PHIREPASS_SECRETS_OLD_KEY=<old>."
    )]
    Rotate {
        /// The key id you expect to be current (first 8 hex of SHA-256 of the new key); without
        /// it, the service's current key id is shown and confirmed.
        #[arg(long, value_name = "ID")]
        new_key_id: Option<String>,
        /// Re-encrypt at most N entries in this call.
        #[arg(long, value_name = "N")]
        max_entries: Option<u32>,
        /// Do not ask for confirmation.
        #[arg(long, short = 'y')]
        yes: bool,
    },
}

pub async fn run(cmd: SecretsCommand, g: &Global, out: Out) -> anyhow::Result<()> {
    let mut vault = SecretsClient::new(g.secrets_channel()?);
    let st = |s| status("secrets", s);
    match cmd {
        SecretsCommand::Status => {
            let s = vault
                .rotation_status(RotationStatusRequest {})
                .await
                .map_err(st)?
                .into_inner();
            show(out, &s, &format!("{} entries pending", s.pending));
        }
        SecretsCommand::Rotate {
            new_key_id,
            max_entries,
            yes,
        } => {
            let new_key_id = match new_key_id {
                Some(id) => id,
                None => {
                    let s = vault
                        .rotation_status(RotationStatusRequest {})
                        .await
                        .map_err(st)?
                        .into_inner();
                    let q = format!(
                        "re-encrypt {} entries under the current key {}?",
                        s.pending, s.current_key_id
                    );
                    if !prompt::confirm(&q, yes)? {
                        return Err(fail(Exit::Failure, "rotation cancelled"));
                    }
                    s.current_key_id
                }
            };
            let s = vault
                .rotate(RotateRequest {
                    new_key_id,
                    max_entries,
                })
                .await
                .map_err(st)?
                .into_inner();
            let sentence = format!(
                "{} entries re-encrypted under {}; {} pending",
                s.rotated, s.current_key_id, s.pending
            );
            show(out, &s, &sentence);
        }
    }
    Ok(())
}

fn show(out: Out, s: &RotationStatus, sentence: &str) {
    if out.json {
        let keys: Vec<_> = s
            .keys
            .iter()
            .map(|k| {
                json!({"key_id": k.key_id, "entries": k.entries, "current": k.current,
                       "created_at": k.created_at, "retired_at": k.retired_at})
            })
            .collect();
        out.done(
            "",
            json!({"current_key_id": s.current_key_id, "pending": s.pending,
                   "rotated": s.rotated, "keys": keys}),
        );
        return;
    }
    let rows = s
        .keys
        .iter()
        .map(|k| {
            vec![
                k.key_id.clone(),
                k.entries.to_string(),
                if k.current { "current" } else { "" }.into(),
                time(k.created_at),
                k.retired_at.map(time).unwrap_or_default(),
            ]
        })
        .collect();
    out.list(
        &["KEY ID", "ENTRIES", "STATE", "CREATED", "RETIRED"],
        rows,
        vec![],
    );
    println!("{sentence}");
}
