//! `phirepass admin`: the operator's client for the authz gRPC API.

use std::path::PathBuf;

use anyhow::{Context, bail};
use clap::{Args, Subcommand};
use phirepass_proto::authz::authz_client::AuthzClient;
use phirepass_proto::authz::{
    CreateNodeTokenRequest, CreateUserRequest, ListTokensRequest, ListUsersRequest,
    RevokeTokenRequest,
};
use phirepass_runtime::config::env_opt;
use phirepass_runtime::grpc::{AuthedChannel, ServiceToken, channel};

use crate::dev::{DevEndpoints, ENDPOINTS_FILE, SERVICE_TOKEN_FILE};

#[derive(Args)]
pub struct AdminArgs {
    /// authz gRPC endpoint; defaults to AUTHZ_URL, then the running `phirepass dev`.
    #[arg(long, env = "AUTHZ_URL")]
    authz_url: Option<String>,
    /// Data directory of `phirepass dev` (its endpoints and service token).
    #[arg(long, env = "PHIREPASS_DATA_DIR", default_value = ".phirepass")]
    data_dir: PathBuf,
    #[command(subcommand)]
    command: AdminCommand,
}

#[derive(Subcommand)]
enum AdminCommand {
    /// Users who log in to the browser terminal and own nodes.
    #[command(subcommand)]
    User(UserCommand),
    /// Nodes (agents).
    #[command(subcommand)]
    Node(NodeCommand),
    /// Node tokens.
    #[command(subcommand)]
    Token(TokenCommand),
}

#[derive(Subcommand)]
enum UserCommand {
    /// Create a user; prompts for the password (twice) unless --password is given.
    Add {
        #[arg(long)]
        user: String,
        #[arg(long)]
        password: Option<String>,
    },
    List,
}

#[derive(Subcommand)]
enum NodeCommand {
    #[command(subcommand)]
    Token(NodeTokenCommand),
}

#[derive(Subcommand)]
enum NodeTokenCommand {
    /// Register node NAME for USER and print its token (shown once).
    Create {
        #[arg(long)]
        user: String,
        #[arg(long)]
        name: String,
        /// Lifetime in seconds; no expiry when absent.
        #[arg(long)]
        expires_in: Option<u64>,
    },
}

#[derive(Subcommand)]
enum TokenCommand {
    List {
        #[arg(long)]
        user: Option<String>,
    },
    /// Revoke a token; a connected agent using it is dropped within seconds.
    Revoke { token_id: String },
}

pub async fn run(args: AdminArgs) -> anyhow::Result<()> {
    let mut authz = connect(&args)?;
    match args.command {
        AdminCommand::User(UserCommand::Add { user, password }) => {
            let password = match password {
                Some(p) => p,
                None => prompt_new_password(&user)?,
            };
            let created = authz
                .create_user(CreateUserRequest {
                    username: user,
                    password,
                })
                .await
                .map_err(status)?
                .into_inner();
            println!("user {} created (id {})", created.username, created.id);
        }
        AdminCommand::User(UserCommand::List) => {
            let users = authz
                .list_users(ListUsersRequest {})
                .await
                .map_err(status)?
                .into_inner()
                .users;
            println!("{:<24} {:<34} STATUS", "USERNAME", "ID");
            for u in users {
                let state = if u.disabled { "disabled" } else { "active" };
                println!("{:<24} {:<34} {}", u.username, u.id, state);
            }
        }
        AdminCommand::Node(NodeCommand::Token(NodeTokenCommand::Create {
            user,
            name,
            expires_in,
        })) => {
            let created = authz
                .create_node_token(CreateNodeTokenRequest {
                    username: user,
                    node_name: name.clone(),
                    expires_in_secs: expires_in,
                })
                .await
                .map_err(status)?
                .into_inner();
            eprintln!(
                "node {name} registered (id {}, token id {}); the token is shown once:",
                created.node_id, created.token_id
            );
            println!("{}", created.token);
        }
        AdminCommand::Token(TokenCommand::List { user }) => {
            let tokens = authz
                .list_tokens(ListTokensRequest { username: user })
                .await
                .map_err(status)?
                .into_inner()
                .tokens;
            println!("{:<18} {:<16} {:<20} STATUS", "TOKEN ID", "USER", "NODE");
            for t in tokens {
                let state = if t.revoked { "revoked" } else { "active" };
                println!(
                    "{:<18} {:<16} {:<20} {}",
                    t.token_id, t.username, t.node_name, state
                );
            }
        }
        AdminCommand::Token(TokenCommand::Revoke { token_id }) => {
            authz
                .revoke_token(RevokeTokenRequest {
                    token_id: token_id.clone(),
                })
                .await
                .map_err(status)?;
            println!("token {token_id} revoked");
        }
    }
    Ok(())
}

fn connect(args: &AdminArgs) -> anyhow::Result<AuthzClient<AuthedChannel>> {
    let url = match &args.authz_url {
        Some(url) => url.clone(),
        None => {
            let path = args.data_dir.join(ENDPOINTS_FILE);
            let raw = std::fs::read(&path).with_context(|| {
                format!(
                    "no --authz-url/AUTHZ_URL and no running `phirepass dev` found ({} missing)",
                    path.display()
                )
            })?;
            serde_json::from_slice::<DevEndpoints>(&raw)
                .with_context(|| format!("reading {}", path.display()))?
                .authz_url
        }
    };
    let token = match env_opt("PHIREPASS_SERVICE_TOKEN") {
        Some(t) => ServiceToken::new(t),
        None => {
            let path = args.data_dir.join(SERVICE_TOKEN_FILE);
            let raw = std::fs::read_to_string(&path).with_context(|| {
                format!(
                    "no PHIREPASS_SERVICE_TOKEN and cannot read {}",
                    path.display()
                )
            })?;
            ServiceToken::new(raw.trim().to_string())
        }
    };
    Ok(AuthzClient::new(channel(&url, token)?))
}

fn prompt_new_password(user: &str) -> anyhow::Result<String> {
    let first = rpassword::prompt_password(format!("password for {user}: "))
        .context("reading the password")?;
    let second = rpassword::prompt_password("again: ").context("reading the password")?;
    if first != second {
        bail!("the passwords do not match");
    }
    if first.is_empty() {
        bail!("the password must not be empty");
    }
    Ok(first)
}

/// gRPC errors in words: the code's meaning and the server's message, nothing internal.
fn status(s: tonic::Status) -> anyhow::Error {
    match s.code() {
        tonic::Code::Unavailable => anyhow::anyhow!("authz is unreachable: {}", s.message()),
        tonic::Code::Unauthenticated => anyhow::anyhow!(
            "not authorised: check PHIREPASS_SERVICE_TOKEN ({})",
            s.message()
        ),
        code => anyhow::anyhow!("{}: {}", format!("{code:?}").to_lowercase(), s.message()),
    }
}
