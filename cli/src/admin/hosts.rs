//! `phirepass admin hosts`: direct hosts the edges relay to, and their pinned SSH host keys.

use clap::Subcommand;
use phirepass_proto::authz::{
    AddHostRequest, ListTargetsRequest, RemoveHostRequest, Target, TargetKind,
};
use phirepass_proto::secrets::secrets_client::SecretsClient;
use phirepass_proto::secrets::{DeleteHostOptionsRequest, ListOptionsRequest};
use serde_json::json;

use super::access::target_kind;
use super::connect::Global;
use super::hostkey;
use super::output::{Exit, Out, fail, status, time, usage};

#[derive(Subcommand)]
pub enum HostsCommand {
    /// Add a host, then fetch its SSH host key and ask whether to pin it.
    #[command(
        after_help = "Examples:\n  phirepass admin hosts add 10.0.0.5:22 --name db-1\n  \
        phirepass admin hosts add '[2001:db8::5]:22' --name db-2 --yes\n  \
        phirepass admin hosts add 10.0.0.6:22 --name db-3 --no-hostkey"
    )]
    Add {
        /// `IP:PORT` (or `NAME:PORT`; `[IPv6]:PORT`).
        address: String,
        /// The target name users connect to (`user:NAME@bastion`).
        #[arg(long, visible_alias = "hostname")]
        name: String,
        /// Store the fetched host key without asking.
        #[arg(long, short = 'y')]
        yes: bool,
        /// Do not contact the host; pin its key later with `hosts refresh-hostkey`.
        #[arg(long, conflicts_with = "yes")]
        no_hostkey: bool,
    },
    /// List direct hosts (`--all`: agent nodes too).
    #[command(
        after_help = "Examples:\n  phirepass admin hosts list\n  phirepass admin --json hosts list --all"
    )]
    List {
        #[arg(long)]
        all: bool,
    },
    /// Delete a host with its grants and vault options.
    #[command(after_help = "Example:\n  phirepass admin hosts remove db-1")]
    Remove {
        /// The host name.
        name: String,
    },
    /// Fetch the host's current SSH key again and ask whether to pin it (replacing the old one).
    #[command(after_help = "Example:\n  phirepass admin hosts refresh-hostkey db-1")]
    RefreshHostkey {
        /// The host name.
        name: String,
        /// Store the fetched key without asking.
        #[arg(long, short = 'y')]
        yes: bool,
    },
}

pub async fn run(cmd: HostsCommand, g: &Global, out: Out) -> anyhow::Result<()> {
    let mut authz = g.authz()?;
    let st = |s| status("authz", s);
    match cmd {
        HostsCommand::Add {
            address,
            name,
            yes,
            no_hostkey,
        } => {
            let (ip, port) = split_address(&address)?;
            let t = authz
                .add_host(AddHostRequest { name, ip, port })
                .await
                .map_err(st)?
                .into_inner();
            let addr = host_addr(&t);
            if !out.json {
                println!("host {} added ({addr})", t.name);
            }
            let mut doc = target_json(&t);
            if !no_hostkey {
                let pinned = pin(g, out, &t.name, &addr, yes, None).await;
                doc["hostkey"] = pinned.map_err(|e| {
                    e.context(format!(
                        "host {} added, but its key is not pinned (retry: phirepass admin \
                         hosts refresh-hostkey {})",
                        t.name, t.name
                    ))
                })?;
            }
            if out.json {
                out.done("", doc);
            }
        }
        HostsCommand::List { all } => {
            let kind = if all {
                None
            } else {
                Some(TargetKind::Host as i32)
            };
            let targets = authz
                .list_targets(ListTargetsRequest {
                    kind,
                    ..Default::default()
                })
                .await
                .map_err(st)?
                .into_inner()
                .targets;
            let rows = targets
                .iter()
                .map(|t| {
                    vec![
                        t.name.clone(),
                        target_kind(t.kind()).into(),
                        if t.kind() == TargetKind::Host {
                            host_addr(t)
                        } else {
                            format!("node of {}", t.owner_username)
                        },
                        time(t.created_at),
                    ]
                })
                .collect();
            let items = targets.iter().map(target_json).collect();
            out.list(&["NAME", "KIND", "ADDRESS", "CREATED"], rows, items);
        }
        HostsCommand::Remove { name } => {
            authz
                .remove_host(RemoveHostRequest { name: name.clone() })
                .await
                .map_err(st)?;
            // The vault keeps options by host name: drop them so a new host of that name
            // does not inherit a pinned key or credentials.
            let cleaned = match g.secrets_channel() {
                Ok(ch) => SecretsClient::new(ch)
                    .delete_host_options(DeleteHostOptionsRequest { host: name.clone() })
                    .await
                    .map_err(|s| status("secrets", s)),
                Err(e) => Err(e),
            };
            if let Err(e) = &cleaned {
                eprintln!("warning: host removed, but its vault options were not: {e}");
            }
            out.done(
                &format!("host {name} removed"),
                json!({"removed": name, "options_removed": cleaned.is_ok()}),
            );
        }
        HostsCommand::RefreshHostkey { name, yes } => {
            let targets = authz
                .list_targets(ListTargetsRequest {
                    kind: Some(TargetKind::Host as i32),
                    ..Default::default()
                })
                .await
                .map_err(st)?
                .into_inner()
                .targets;
            let t = targets
                .into_iter()
                .find(|t| t.name == name)
                .ok_or_else(|| fail(Exit::NotFound, format!("no host named {name}")))?;
            let addr = host_addr(&t);
            let current = pinned(g, &name).await?;
            // Wipe the old pin first (the design's refresh): a key that no
            // longer matches must not stay trusted while we fetch and ask,
            // and declining leaves the host unpinned, not pinned to the old key.
            if current.is_some() {
                unpin(g, &name).await?;
                eprintln!("the old pinned host key of {name} was removed");
            }
            let doc = pin(g, out, &name, &addr, yes, current.as_deref()).await?;
            if out.json {
                out.done("", json!({"host": name, "hostkey": doc}));
            }
        }
    }
    Ok(())
}

/// Fetches, shows, asks, stores; returns the JSON summary.
async fn pin(
    g: &Global,
    out: Out,
    name: &str,
    addr: &str,
    yes: bool,
    current: Option<&str>,
) -> anyhow::Result<serde_json::Value> {
    let key = hostkey::fetch(addr).await?;
    if let Some(current) = current {
        let same = same_key(current, &key.openssh);
        eprintln!(
            "{}",
            if same {
                "the pinned key is unchanged"
            } else {
                "the host key DIFFERS from the pinned one"
            }
        );
    }
    let stored = hostkey::ask(name, addr, &key, yes)?;
    if stored {
        hostkey::store(g, name, &key).await?;
    }
    if !out.json {
        println!(
            "host key {} {} {}",
            key.algorithm,
            key.fingerprint,
            if stored { "stored" } else { "not stored" }
        );
    }
    Ok(hostkey::json(&key, stored))
}

/// The pinned `hostkey.openssh`, if any (not a secret: ListOptions returns it).
async fn pinned(g: &Global, host: &str) -> anyhow::Result<Option<String>> {
    let options = SecretsClient::new(g.secrets_channel()?)
        .list_options(ListOptionsRequest { host: host.into() })
        .await;
    match options {
        Ok(r) => Ok(r
            .into_inner()
            .options
            .into_iter()
            .find(|o| o.key == "hostkey.openssh")
            .map(|o| o.value)),
        Err(s) if s.code() == tonic::Code::NotFound => Ok(None),
        Err(s) => Err(status("secrets", s)),
    }
}

/// Removes the host's `hostkey.openssh` pin.
async fn unpin(g: &Global, host: &str) -> anyhow::Result<()> {
    use phirepass_proto::secrets::UnsetOptionRequest;
    let removed = SecretsClient::new(g.secrets_channel()?)
        .unset_option(UnsetOptionRequest {
            host: host.into(),
            key: "hostkey.openssh".into(),
        })
        .await;
    match removed {
        Ok(_) => Ok(()),
        Err(s) if s.code() == tonic::Code::NotFound => Ok(()),
        Err(s) => Err(status("secrets", s)),
    }
}

/// Compares key type and blob, ignoring comments.
fn same_key(a: &str, b: &str) -> bool {
    let parts = |s: &str| {
        s.split_whitespace()
            .take(2)
            .map(String::from)
            .collect::<Vec<_>>()
    };
    parts(a) == parts(b)
}

/// `ip:port` for dialing, with brackets around an IPv6 address.
fn host_addr(t: &Target) -> String {
    if t.ip.contains(':') {
        format!("[{}]:{}", t.ip, t.port)
    } else {
        format!("{}:{}", t.ip, t.port)
    }
}

/// Splits `IP:PORT`, `[IPv6]:PORT` or `NAME:PORT`.
fn split_address(address: &str) -> anyhow::Result<(String, u32)> {
    let bad = || usage(format!("{address:?} is not IP:PORT (IPv6: [ADDR]:PORT)"));
    let (host, port) = if let Some(rest) = address.strip_prefix('[') {
        let (host, port) = rest.split_once("]:").ok_or_else(bad)?;
        (host, port)
    } else {
        let (host, port) = address.rsplit_once(':').ok_or_else(bad)?;
        if host.contains(':') {
            return Err(bad());
        }
        (host, port)
    };
    let port: u16 = port.parse().map_err(|_| bad())?;
    if host.is_empty() || port == 0 {
        return Err(bad());
    }
    Ok((host.to_string(), u32::from(port)))
}

fn target_json(t: &Target) -> serde_json::Value {
    json!({
        "id": t.id,
        "name": t.name,
        "kind": target_kind(t.kind()),
        "ip": t.ip,
        "port": t.port,
        "owner": t.owner_username,
        "created_at": t.created_at,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses() {
        assert_eq!(
            split_address("10.0.0.5:22").unwrap(),
            ("10.0.0.5".into(), 22)
        );
        assert_eq!(split_address("[::1]:2222").unwrap(), ("::1".into(), 2222));
        assert_eq!(
            split_address("db.local:22").unwrap(),
            ("db.local".into(), 22)
        );
        for bad in ["10.0.0.5", "::1:22", "x:0", ":22", "x:99999"] {
            assert!(split_address(bad).is_err(), "{bad}");
        }
    }
}
