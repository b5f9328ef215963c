//! `phirepass`: `phirepass dev` runs every service in one process; `phirepass admin` manages
//! users, nodes and tokens over gRPC.

mod admin;
mod dev;
mod login;

use std::path::PathBuf;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(
    name = "phirepass",
    version,
    about = "Phirepass: a self-hosted access plane"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run every service in one process. Embedded defaults (SQLite, in-process bus, in-memory
    /// presence) unless DATABASE_URL, NATS_URL or REDIS_URL are set.
    Dev(dev::DevArgs),
    /// Manage users, groups, hosts, grants, credentials and tokens over gRPC (authz, secrets).
    Admin(admin::AdminArgs),
    /// Log this command line in through the browser (`--device`): stores an API token that
    /// `phirepass admin` presents.
    Login(login::LoginArgs),
}

/// Where `phirepass dev` keeps its database, service token and endpoints file.
pub fn default_data_dir() -> PathBuf {
    std::env::var_os("PHIREPASS_DATA_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(".phirepass"))
}

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    match cli.command {
        Command::Dev(args) => match runtime.block_on(dev::run(args)) {
            Ok(()) => std::process::ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("error: {e:#}");
                std::process::ExitCode::FAILURE
            }
        },
        Command::Login(args) => match runtime.block_on(login::run(args)) {
            Ok(()) => std::process::ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("error: {e:#}");
                std::process::ExitCode::FAILURE
            }
        },
        // admin errors carry their exit code (see admin::output::Exit) and a message meant for
        // the operator; their chain holds nothing more to show.
        Command::Admin(args) => match runtime.block_on(admin::run(args)) {
            Ok(()) => std::process::ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("error: {e:#}");
                std::process::ExitCode::from(admin::exit_code(&e))
            }
        },
    }
}
