//! `phirepass admin`: the operator's client for the authz and secrets (vault) gRPC APIs.
//! One file per resource; each subcommand is a thin mapping from flags to one or two RPCs.

mod access;
mod connect;
mod credentials;
mod groups;
mod hostkey;
mod hosts;
mod invitations;
mod node_commands;
mod node_groups;
mod node_results;
mod node_status;
mod options;
mod output;
mod prompt;
mod secrets;
mod tokens;
mod tunnels;
mod users;

use clap::{Args, Subcommand};

pub use output::exit_code;

/// Examples shown under `phirepass admin --help`.
const EXAMPLES: &str = "\
Examples:
  phirepass admin users add alice                       # prompts twice for the password
  phirepass admin users add bob --admin                 # an admin (dashboard, invitations)
  phirepass admin invitations create --ttl 2d           # a /join/<code> link instead
  phirepass admin hosts add 10.0.0.5:22 --name db-1     # fetches and pins the host key
  phirepass admin access grant --group ops --host db-1
  phirepass admin credentials create --name deploy --type ssh-key --from-file id_ed25519
  phirepass admin credentials assign --host db-1 --name deploy
  phirepass admin tunnels list                          # live `ssh -R` tunnels (registry)
  phirepass admin --json users list

Exit codes: 0 ok, 1 failure, 2 usage, 3 not found, 4 unauthenticated/denied,
5 conflict (exists, still assigned), 6 service unavailable.";

#[derive(Args)]
#[command(after_help = EXAMPLES)]
pub struct AdminArgs {
    #[command(flatten)]
    global: connect::Global,
    #[command(subcommand)]
    command: AdminCommand,
}

#[derive(Subcommand)]
enum AdminCommand {
    /// Users: accounts, passwords and SSH public keys.
    #[command(
        subcommand,
        visible_alias = "user",
        after_help = "Examples:\n  phirepass admin users add alice\n  phirepass admin users keys add alice ~/.ssh/id_ed25519.pub\n  phirepass admin users list"
    )]
    Users(users::UsersCommand),
    /// Groups of users, for grants.
    #[command(
        subcommand,
        visible_alias = "group",
        after_help = "Examples:\n  phirepass admin groups add ops\n  phirepass admin groups members add ops alice"
    )]
    Groups(groups::GroupsCommand),
    /// Invitations: single-use sign-up codes for `/join/<code>` (no public sign-up).
    #[command(
        subcommand,
        visible_alias = "invitation",
        after_help = "Examples:\n  phirepass admin invitations create --ttl 2d\n  phirepass admin invitations list"
    )]
    Invitations(invitations::InvitationsCommand),
    /// Direct hosts (`IP:PORT`) the edges relay to, with their pinned host keys.
    #[command(
        subcommand,
        visible_alias = "host",
        after_help = "Examples:\n  phirepass admin hosts add 10.0.0.5:22 --name db-1\n  phirepass admin hosts refresh-hostkey db-1"
    )]
    Hosts(hosts::HostsCommand),
    /// Relay options of a host (auth method, username, password, identity, ...), in the vault.
    #[command(
        subcommand,
        visible_alias = "option",
        after_help = "Examples:\n  phirepass admin options set db-1 auth.username deploy\n  phirepass admin options list db-1"
    )]
    Options(options::OptionsCommand),
    /// Who may reach which target (host or node): grants to users and groups.
    #[command(
        subcommand,
        after_help = "Examples:\n  phirepass admin access grant --group ops --host db-1\n  phirepass admin access list --host db-1"
    )]
    Access(access::AccessCommand),
    /// Shared relay credentials (passwords, SSH keys) in the vault, assignable to hosts.
    #[command(
        subcommand,
        visible_alias = "credential",
        after_help = "Examples:\n  phirepass admin credentials create --name deploy --type ssh-key --from-file key\n  phirepass admin credentials assign --host db-1 --name deploy"
    )]
    Credentials(credentials::CredentialsCommand),
    /// Node tokens (agents) and API tokens (admin clients).
    #[command(
        subcommand,
        visible_alias = "token",
        after_help = "Examples:\n  phirepass admin tokens api create --user alice --name ci --scope read\n  phirepass admin tokens list"
    )]
    Tokens(tokens::TokensCommand),
    /// Nodes (agents): `node token create` registers one; `nodes run` runs a declared command,
    /// `nodes status` shows an agent's self-report.
    #[command(
        subcommand,
        visible_alias = "nodes",
        after_help = "Example:\n  phirepass admin node token create --user alice --name web-1"
    )]
    Node(tokens::NodeCommand),
    /// `ssh -R` tunnels: live ones (registry) and reserved names (authz).
    #[command(
        subcommand,
        visible_alias = "tunnel",
        after_help = "Examples:\n  phirepass admin tunnels list\n  phirepass admin tunnels kick myapp\n  \
        phirepass admin tunnels names --user alice\n  phirepass admin tunnels release myapp"
    )]
    Tunnels(tunnels::TunnelsCommand),
    /// The vault's master key: rotation status and online re-encryption.
    #[command(
        subcommand,
        after_help = "Examples:\n  phirepass admin secrets status\n  phirepass admin secrets rotate"
    )]
    Secrets(secrets::SecretsCommand),
}

pub async fn run(args: AdminArgs) -> anyhow::Result<()> {
    let g = &args.global;
    let out = output::Out { json: g.json };
    match args.command {
        AdminCommand::Users(c) => users::run(c, g, out).await,
        AdminCommand::Groups(c) => groups::run(c, g, out).await,
        AdminCommand::Hosts(c) => hosts::run(c, g, out).await,
        AdminCommand::Invitations(c) => invitations::run(c, g, out).await,
        AdminCommand::Options(c) => options::run(c, g, out).await,
        AdminCommand::Access(c) => access::run(c, g, out).await,
        AdminCommand::Credentials(c) => credentials::run(c, g, out).await,
        AdminCommand::Tokens(c) => tokens::run(c, g, out).await,
        AdminCommand::Node(c) => tokens::run_node(c, g, out).await,
        AdminCommand::Secrets(c) => secrets::run(c, g, out).await,
        AdminCommand::Tunnels(c) => tunnels::run(c, g, out).await,
    }
}
