//! `phirepass admin tokens`: node tokens (agents) and API tokens (admin clients). A token is
//! printed once, at creation, alone on stdout so scripts can capture it.

use clap::{Args, Subcommand, ValueEnum};
use phirepass_proto::authz::{
    CreateApiTokenRequest, CreateNodeTokenRequest, ListTokensRequest, RevokeTokenRequest, Token,
};
use serde_json::json;

use super::connect::Global;
use super::output::{Out, status, time};

#[derive(Subcommand)]
pub enum TokensCommand {
    /// List node and API tokens (never the tokens themselves).
    #[command(after_help = "Examples:\n  phirepass admin tokens list\n  \
        phirepass admin tokens list --user alice --kind api")]
    List {
        #[arg(long)]
        user: Option<String>,
        #[arg(long, value_enum)]
        kind: Option<KindFilter>,
    },
    /// Revoke a token by id; an agent using it is dropped within seconds.
    #[command(after_help = "Example:\n  phirepass admin tokens revoke 3f2a9c1d")]
    Revoke { token_id: String },
    /// Node tokens: register an agent node.
    #[command(
        subcommand,
        after_help = "Example:\n  phirepass admin tokens node create --user alice --name web-1"
    )]
    Node(NodeTokenCommand),
    /// API tokens for `phirepass admin --token` and other gRPC clients.
    #[command(
        subcommand,
        after_help = "Example:\n  phirepass admin tokens api create --user alice --name ci --scope read"
    )]
    Api(ApiTokenCommand),
}

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum KindFilter {
    Node,
    Api,
}

#[derive(Subcommand)]
pub enum NodeCommand {
    /// Node tokens (same as `tokens node`).
    #[command(subcommand)]
    Token(NodeTokenCommand),
    /// Node groups: named groups of nodes, for grants and runs on many nodes at once.
    #[command(
        subcommand,
        after_help = "Examples:\n  phirepass admin node group add web web-1 web-2\n  phirepass admin node group list"
    )]
    Group(super::node_groups::NodeGroupCommand),
    /// Run a command the node's agent declares (its agent.toml, or a built-in) on one node,
    /// a node group (--group) or every node you can see (--all).
    #[command(after_help = super::node_commands::RUN_EXAMPLES)]
    Run(super::node_commands::RunArgs),
    /// Whether the node is online, and its agent's self-report: version, uptime, last
    /// heartbeat, the commands it declares.
    #[command(after_help = "Example:\n  phirepass admin nodes status web-1")]
    Status(super::node_status::StatusArgs),
}

#[derive(Subcommand)]
pub enum NodeTokenCommand {
    /// Register node NAME for USER and print its token (shown once). An existing node is
    /// refused unless --rotate: rotation replaces its token, and the agent connected with the
    /// old one is disconnected and must log in with the new one.
    #[command(
        after_help = "Examples:\n  phirepass admin node token create --user alice --name web-1\n  \
        phirepass admin node token create --user alice --name web-1 --rotate   # new token, old agent dropped"
    )]
    Create(NodeTokenArgs),
}

#[derive(Args)]
pub struct NodeTokenArgs {
    #[arg(long)]
    user: String,
    #[arg(long)]
    name: String,
    /// Lifetime in seconds; no expiry when absent.
    #[arg(long, value_name = "SECONDS")]
    expires_in: Option<u64>,
    /// Replace the token of existing node NAME: the old token stops working, and the agent
    /// connected with it is disconnected until it logs in with the new one.
    #[arg(long)]
    rotate: bool,
}

#[derive(Subcommand)]
pub enum ApiTokenCommand {
    /// Create an API token for USER and print it (shown once).
    #[command(after_help = "Examples:\n  \
        phirepass admin tokens api create --user alice --name ci --scope read\n  \
        PHIREPASS_TOKEN=$(phirepass admin tokens api create --user alice --name ops --scope admin)")]
    Create {
        #[arg(long)]
        user: String,
        /// A label shown by `tokens list`.
        #[arg(long)]
        name: String,
        /// admin: every call; read: list calls only. Repeatable.
        #[arg(long, value_enum, required = true)]
        scope: Vec<Scope>,
        #[arg(long, value_name = "SECONDS")]
        expires_in: Option<u64>,
    },
}

#[derive(Clone, Copy, ValueEnum)]
pub enum Scope {
    Admin,
    Read,
}

pub async fn run_node(cmd: NodeCommand, g: &Global, out: Out) -> anyhow::Result<()> {
    match cmd {
        NodeCommand::Token(NodeTokenCommand::Create(a)) => create_node_token(a, g, out).await,
        NodeCommand::Group(c) => super::node_groups::run(c, g, out).await,
        NodeCommand::Run(a) => super::node_commands::run(a, g, out).await,
        NodeCommand::Status(a) => super::node_status::run(a, g, out).await,
    }
}

pub async fn run(cmd: TokensCommand, g: &Global, out: Out) -> anyhow::Result<()> {
    let mut authz = g.authz()?;
    let st = |s| status("authz", s);
    match cmd {
        TokensCommand::Node(NodeTokenCommand::Create(a)) => create_node_token(a, g, out).await?,
        TokensCommand::Api(ApiTokenCommand::Create {
            user,
            name,
            scope,
            expires_in,
        }) => {
            let scopes: Vec<String> = scope
                .iter()
                .map(|s| match s {
                    Scope::Admin => "admin".to_string(),
                    Scope::Read => "read".to_string(),
                })
                .collect();
            let r = authz
                .create_api_token(CreateApiTokenRequest {
                    username: user.clone(),
                    name: name.clone(),
                    scopes,
                    expires_in_secs: expires_in,
                })
                .await
                .map_err(st)?
                .into_inner();
            if out.json {
                out.done(
                    "",
                    json!({"token": r.token, "token_id": r.token_id, "username": user,
                           "name": name, "scopes": r.scopes, "expires_at": r.expires_at}),
                );
            } else {
                eprintln!(
                    "API token {name} for {user} (id {}, scopes {}); it is shown once:",
                    r.token_id,
                    r.scopes.join(",")
                );
                println!("{}", r.token);
            }
        }
        TokensCommand::List { user, kind } => {
            let tokens: Vec<Token> = authz
                .list_tokens(ListTokensRequest { username: user })
                .await
                .map_err(st)?
                .into_inner()
                .tokens
                .into_iter()
                .filter(|t| match kind {
                    Some(KindFilter::Node) => t.kind == "node",
                    Some(KindFilter::Api) => t.kind == "api",
                    None => true,
                })
                .collect();
            let rows = tokens
                .iter()
                .map(|t| {
                    vec![
                        t.token_id.clone(),
                        t.kind.clone(),
                        t.username.clone(),
                        label(t).to_string(),
                        t.scopes.join(","),
                        t.expires_at.map(time).unwrap_or_else(|| "never".into()),
                        if t.revoked { "revoked" } else { "active" }.into(),
                    ]
                })
                .collect();
            let items = tokens.iter().map(token_json).collect();
            out.list(
                &[
                    "TOKEN ID", "KIND", "USER", "NAME", "SCOPES", "EXPIRES", "STATUS",
                ],
                rows,
                items,
            );
        }
        TokensCommand::Revoke { token_id } => {
            authz
                .revoke_token(RevokeTokenRequest {
                    token_id: token_id.clone(),
                })
                .await
                .map_err(st)?;
            out.done(
                &format!("token {token_id} revoked"),
                json!({"revoked": token_id}),
            );
        }
    }
    Ok(())
}

async fn create_node_token(a: NodeTokenArgs, g: &Global, out: Out) -> anyhow::Result<()> {
    let r = g
        .authz()?
        .create_node_token(CreateNodeTokenRequest {
            username: a.user.clone(),
            node_name: a.name.clone(),
            expires_in_secs: a.expires_in,
            rotate: a.rotate,
        })
        .await
        .map_err(|s| status("authz", s))?
        .into_inner();
    if out.json {
        out.done(
            "",
            json!({"token": r.token, "token_id": r.token_id, "node_id": r.node_id,
                   "node": a.name, "username": a.user, "expires_at": r.expires_at,
                   "rotated": a.rotate}),
        );
    } else if a.rotate {
        eprintln!(
            "node {}'s token rotated (token id {}): the old token no longer works, and an agent \
             connected with it is disconnected within seconds; log it in with the new token \
             (phirepass-agent login). The token is shown once:",
            a.name, r.token_id
        );
        println!("{}", r.token);
    } else {
        eprintln!(
            "node {} registered (id {}, token id {}); the token is shown once:",
            a.name, r.node_id, r.token_id
        );
        println!("{}", r.token);
    }
    Ok(())
}

/// Node name for node tokens, the label for API tokens (older servers: node_name only).
fn label(t: &Token) -> &str {
    if t.name.is_empty() {
        &t.node_name
    } else {
        &t.name
    }
}

fn token_json(t: &Token) -> serde_json::Value {
    json!({
        "token_id": t.token_id,
        "kind": t.kind,
        "username": t.username,
        "name": label(t),
        "node_id": t.node_id,
        "scopes": t.scopes,
        "created_at": t.created_at,
        "expires_at": t.expires_at,
        "revoked": t.revoked,
    })
}
