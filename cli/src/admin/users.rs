//! `phirepass admin users`: accounts, passwords and SSH public keys.

use std::path::PathBuf;

use clap::Subcommand;
use phirepass_proto::authz::{
    AddUserKeyRequest, CreateUserRequest, ListUserKeysRequest, ListUsersRequest,
    RemoveUserKeyRequest, RemoveUserRequest, SetPasswordRequest, SetUserAdminRequest,
    SetUserDisabledRequest, User,
};
use serde_json::json;

use super::connect::Global;
use super::output::{Out, status, time, usage};
use super::prompt;

#[derive(Subcommand)]
pub enum UsersCommand {
    /// Create a user. Prompts twice for the password (no echo) unless --password-stdin.
    #[command(after_help = "Examples:\n  phirepass admin users add alice\n  \
        printf '%s' \"$PW\" | phirepass admin users add alice --password-stdin")]
    Add {
        /// The username.
        #[arg(required_unless_present = "user_flag")]
        user: Option<String>,
        /// The username (older spelling of the positional argument).
        #[arg(long = "user", conflicts_with = "user", hide = true)]
        user_flag: Option<String>,
        /// Read the password from stdin (for scripts).
        #[arg(long, conflicts_with = "password")]
        password_stdin: bool,
        /// The password on the command line (visible in `ps` and shell history: avoid).
        #[arg(long)]
        password: Option<String>,
        /// Make the user an admin (dashboard, invitations).
        #[arg(long)]
        admin: bool,
    },
    /// Delete a user with their keys, memberships, grants, tokens and nodes.
    #[command(after_help = "Example:\n  phirepass admin users remove alice")]
    Remove { user: String },
    /// List users.
    #[command(after_help = "Examples:\n  phirepass admin users list\n  \
        phirepass admin --json users list")]
    List,
    /// Set a new password (prompts twice, or --password-stdin); ends the user's sessions.
    #[command(after_help = "Example:\n  phirepass admin users passwd alice")]
    Passwd {
        user: String,
        #[arg(long)]
        password_stdin: bool,
    },
    /// Disable a user: no logins, their tokens stop working.
    Disable { user: String },
    /// Enable a disabled user.
    Enable { user: String },
    /// Grant (default) or take away (--off) the admin role: the dashboard and invitations.
    #[command(after_help = "Examples:\n  phirepass admin users set-admin alice\n  \
        phirepass admin users set-admin alice --off")]
    SetAdmin {
        user: String,
        /// Take the admin role away instead.
        #[arg(long)]
        off: bool,
    },
    /// SSH public keys a user logs in to the SSH edge with.
    #[command(
        subcommand,
        after_help = "Examples:\n  phirepass admin users keys add alice ~/.ssh/id_ed25519.pub\n  \
        phirepass admin users keys list alice"
    )]
    Keys(KeysCommand),
}

#[derive(Subcommand)]
pub enum KeysCommand {
    /// Add an OpenSSH public key from FILE (e.g. ~/.ssh/id_ed25519.pub) or --key LINE.
    #[command(
        after_help = "Examples:\n  phirepass admin users keys add alice ~/.ssh/id_ed25519.pub\n  \
        phirepass admin users keys add alice --key 'ssh-ed25519 AAAA... alice@laptop'"
    )]
    Add {
        user: String,
        /// A `.pub` file: one key per line (blank lines and # comments skipped).
        #[arg(required_unless_present = "key", conflicts_with = "key")]
        file: Option<PathBuf>,
        /// One authorized_keys line.
        #[arg(long, value_name = "LINE")]
        key: Option<String>,
    },
    /// List a user's keys with their SHA256 fingerprints.
    #[command(after_help = "Example:\n  phirepass admin users keys list alice")]
    List { user: String },
    /// Remove a key by fingerprint (`SHA256:...`, as `keys list` shows it).
    #[command(after_help = "Example:\n  phirepass admin users keys remove alice SHA256:abc...")]
    Remove { user: String, fingerprint: String },
}

pub async fn run(cmd: UsersCommand, g: &Global, out: Out) -> anyhow::Result<()> {
    let mut authz = g.authz()?;
    let st = |s| status("authz", s);
    match cmd {
        UsersCommand::Add {
            user,
            user_flag,
            password_stdin,
            password,
            admin,
        } => {
            let username = user
                .or(user_flag)
                .ok_or_else(|| usage("a username is needed"))?;
            let password = new_password(&username, password, password_stdin)?;
            let mut u = authz
                .create_user(CreateUserRequest { username, password })
                .await
                .map_err(st)?
                .into_inner();
            if admin {
                u = authz
                    .set_user_admin(SetUserAdminRequest {
                        username: u.username.clone(),
                        admin: true,
                    })
                    .await
                    .map_err(st)?
                    .into_inner();
            }
            let role = if u.admin { ", admin" } else { "" };
            out.done(
                &format!("user {} created (id {}{role})", u.username, u.id),
                user_json(&u),
            );
        }
        UsersCommand::Remove { user } => {
            authz
                .remove_user(RemoveUserRequest {
                    username: user.clone(),
                })
                .await
                .map_err(|s| about(&user, s))?;
            out.done(&format!("user {user} removed"), json!({"removed": user}));
        }
        UsersCommand::List => {
            let users = authz
                .list_users(ListUsersRequest {})
                .await
                .map_err(st)?
                .into_inner()
                .users;
            let rows = users
                .iter()
                .map(|u| {
                    vec![
                        u.username.clone(),
                        u.id.clone(),
                        state(u).into(),
                        if u.admin { "admin" } else { "user" }.into(),
                        time(u.created_at),
                    ]
                })
                .collect();
            let items = users.iter().map(user_json).collect();
            out.list(
                &["USERNAME", "ID", "STATUS", "ROLE", "CREATED"],
                rows,
                items,
            );
        }
        UsersCommand::Passwd {
            user,
            password_stdin,
        } => {
            let password = new_password(&user, None, password_stdin)?;
            let u = authz
                .set_password(SetPasswordRequest {
                    username: user.clone(),
                    password,
                })
                .await
                .map_err(|s| about(&user, s))?
                .into_inner();
            out.done(
                &format!("password of {} changed", u.username),
                user_json(&u),
            );
        }
        UsersCommand::Disable { user } => set_disabled(g, out, user, true).await?,
        UsersCommand::Enable { user } => set_disabled(g, out, user, false).await?,
        UsersCommand::SetAdmin { user, off } => {
            let u = authz
                .set_user_admin(SetUserAdminRequest {
                    username: user.clone(),
                    admin: !off,
                })
                .await
                .map_err(|s| about(&user, s))?
                .into_inner();
            let what = if u.admin {
                "is now an admin"
            } else {
                "is no longer an admin"
            };
            out.done(&format!("user {} {what}", u.username), user_json(&u));
        }
        UsersCommand::Keys(KeysCommand::Add { user, file, key }) => {
            let lines = match (key, file) {
                (Some(line), _) => vec![line],
                (None, Some(path)) => prompt::file(&path)?
                    .lines()
                    .map(str::trim)
                    .filter(|l| !l.is_empty() && !l.starts_with('#'))
                    .map(String::from)
                    .collect(),
                (None, None) => return Err(usage("give a FILE or --key LINE")),
            };
            if lines.is_empty() {
                return Err(usage("no public key found"));
            }
            let mut added = Vec::new();
            for public_key in lines {
                let k = authz
                    .add_user_key(AddUserKeyRequest {
                        username: user.clone(),
                        public_key,
                    })
                    .await
                    .map_err(|s| about(&user, s))?
                    .into_inner();
                if !out.json {
                    println!("key {} ({}) added to {}", k.fingerprint, k.algorithm, user);
                }
                added.push(key_json(&k));
            }
            if out.json {
                out.done("", serde_json::Value::Array(added));
            }
        }
        UsersCommand::Keys(KeysCommand::List { user }) => {
            let keys = authz
                .list_user_keys(ListUserKeysRequest {
                    username: user.clone(),
                })
                .await
                .map_err(|s| about(&user, s))?
                .into_inner()
                .keys;
            let rows = keys
                .iter()
                .map(|k| {
                    vec![
                        k.fingerprint.clone(),
                        k.algorithm.clone(),
                        k.comment.clone(),
                        time(k.created_at),
                    ]
                })
                .collect();
            let items = keys.iter().map(key_json).collect();
            out.list(
                &["FINGERPRINT", "ALGORITHM", "COMMENT", "ADDED"],
                rows,
                items,
            );
        }
        UsersCommand::Keys(KeysCommand::Remove { user, fingerprint }) => {
            authz
                .remove_user_key(RemoveUserKeyRequest {
                    username: user.clone(),
                    fingerprint: fingerprint.clone(),
                })
                .await
                .map_err(|s| about(&user, s))?;
            out.done(
                &format!("key {fingerprint} removed from {user}"),
                json!({"username": user, "removed": fingerprint}),
            );
        }
    }
    Ok(())
}

async fn set_disabled(
    g: &Global,
    out: Out,
    username: String,
    disabled: bool,
) -> anyhow::Result<()> {
    let u = g
        .authz()?
        .set_user_disabled(SetUserDisabledRequest {
            username: username.clone(),
            disabled,
        })
        .await
        .map_err(|s| about(&username, s))?
        .into_inner();
    out.done(&format!("user {} {}", u.username, state(&u)), user_json(&u));
    Ok(())
}

/// The server's password rule (authz `validate::password`), checked here too so a short
/// password is refused before it is typed a second time.
const PASSWORD_MIN: usize = 8;
const PASSWORD_MAX: usize = 1024;

fn password_rule(password: &str) -> Result<(), String> {
    let n = password.chars().count();
    if (PASSWORD_MIN..=PASSWORD_MAX).contains(&n) {
        Ok(())
    } else {
        Err(format!(
            "the password must be {PASSWORD_MIN}-{PASSWORD_MAX} characters (this one has {n})"
        ))
    }
}

/// The password from --password, stdin, or a double no-echo prompt.
fn new_password(user: &str, given: Option<String>, from_stdin: bool) -> anyhow::Result<String> {
    let password = match given {
        Some(p) => p,
        None if from_stdin => prompt::stdin_secret()?,
        None => return prompt::new_secret_checked(&format!("password for {user}"), password_rule),
    };
    password_rule(&password).map_err(usage)?;
    Ok(password)
}

/// A gRPC failure of a call about `user`: "user not found" names the user and the fix.
fn about(user: &str, s: tonic::Status) -> anyhow::Error {
    if s.code() == tonic::Code::NotFound && s.message() == "user not found" {
        return super::output::fail(
            super::output::Exit::NotFound,
            format!("user {user} not found (`phirepass admin users list` shows who exists)"),
        );
    }
    status("authz", s)
}

fn state(u: &User) -> &'static str {
    if u.disabled { "disabled" } else { "active" }
}

fn user_json(u: &User) -> serde_json::Value {
    json!({
        "id": u.id,
        "username": u.username,
        "disabled": u.disabled,
        "admin": u.admin,
        "created_at": u.created_at,
    })
}

fn key_json(k: &phirepass_proto::authz::UserKey) -> serde_json::Value {
    json!({
        "username": k.username,
        "fingerprint": k.fingerprint,
        "algorithm": k.algorithm,
        "comment": k.comment,
        "public_key": k.public_key,
        "created_at": k.created_at,
    })
}
