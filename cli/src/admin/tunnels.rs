//! `phirepass admin tunnels`: live `ssh -R` tunnels (registry) and reserved tunnel names
//! (authz).

use clap::Subcommand;
use phirepass_proto::authz::{ListTunnelNamesRequest, ReleaseTunnelNameRequest};
use phirepass_proto::registry::{KickTunnelRequest, ListTunnelsRequest, TunnelPresence};
use serde_json::json;

use super::connect::Global;
use super::output::{Out, status, time};

#[derive(Subcommand)]
pub enum TunnelsCommand {
    /// Live tunnels, from the registry (needs the service token).
    #[command(after_help = "Example:\n  phirepass admin tunnels list")]
    List,
    /// End the SSH session that publishes tunnel NAME (every port of it).
    #[command(after_help = "Example:\n  phirepass admin tunnels kick myapp")]
    Kick { name: String },
    /// Reserved tunnel names, optionally one user's.
    #[command(after_help = "Examples:\n  phirepass admin tunnels names\n  \
        phirepass admin tunnels names --user alice")]
    Names {
        /// Only this user's names.
        #[arg(long)]
        user: Option<String>,
    },
    /// Free a reserved name (and drop the grants on it).
    #[command(after_help = "Example:\n  phirepass admin tunnels release myapp")]
    Release { name: String },
}

pub async fn run(cmd: TunnelsCommand, g: &Global, out: Out) -> anyhow::Result<()> {
    match cmd {
        TunnelsCommand::List => {
            let tunnels = g
                .registry()?
                .list_tunnels(ListTunnelsRequest { user_id: None })
                .await
                .map_err(|s| status("registry", s))?
                .into_inner()
                .tunnels;
            let rows = tunnels
                .iter()
                .map(|t| {
                    vec![
                        t.name.clone(),
                        t.port.to_string(),
                        t.kind.clone(),
                        t.username.clone(),
                        t.edge_id.clone(),
                        time(t.started_at),
                        format!("{}/{}", t.bytes_in, t.bytes_out),
                    ]
                })
                .collect();
            let items = tunnels.iter().map(tunnel_json).collect();
            out.list(
                &[
                    "NAME",
                    "PORT",
                    "KIND",
                    "USER",
                    "EDGE",
                    "SINCE",
                    "BYTES IN/OUT",
                ],
                rows,
                items,
            );
        }
        TunnelsCommand::Kick { name } => {
            let kicked = g
                .registry()?
                .kick_tunnel(KickTunnelRequest { name: name.clone() })
                .await
                .map_err(|s| status("registry", s))?
                .into_inner()
                .session_ids;
            out.done(
                &format!("tunnel {name}: asked {} session(s) to end", kicked.len()),
                json!({"kicked": name, "session_ids": kicked}),
            );
        }
        TunnelsCommand::Names { user } => {
            let names = g
                .authz()?
                .list_tunnel_names(ListTunnelNamesRequest { user_id: None })
                .await
                .map_err(|s| status("authz", s))?
                .into_inner()
                .names;
            // Filtered here: the RPC filters by user id, the operator knows the username.
            let names: Vec<_> = names
                .into_iter()
                .filter(|n| user.as_ref().is_none_or(|u| *u == n.username))
                .collect();
            let rows = names
                .iter()
                .map(|n| vec![n.name.clone(), n.username.clone(), time(n.created_at)])
                .collect();
            let items = names
                .iter()
                .map(|n| {
                    json!({
                        "name": n.name,
                        "user_id": n.user_id,
                        "username": n.username,
                        "created_at": n.created_at,
                    })
                })
                .collect();
            out.list(&["NAME", "USER", "RESERVED"], rows, items);
        }
        TunnelsCommand::Release { name } => {
            g.authz()?
                .release_tunnel_name(ReleaseTunnelNameRequest { name: name.clone() })
                .await
                .map_err(|s| status("authz", s))?;
            out.done(
                &format!("tunnel name {name} released"),
                json!({"released": name}),
            );
        }
    }
    Ok(())
}

fn tunnel_json(t: &TunnelPresence) -> serde_json::Value {
    json!({
        "name": t.name,
        "port": t.port,
        "kind": t.kind,
        "node_id": t.node_id,
        "edge_id": t.edge_id,
        "session_id": t.session_id,
        "user_id": t.user_id,
        "username": t.username,
        "client_ip": t.client_ip,
        "started_at": t.started_at,
        "last_seen": t.last_seen,
        "bytes_in": t.bytes_in,
        "bytes_out": t.bytes_out,
        "connections": t.connections,
    })
}
