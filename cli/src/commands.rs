//! The `phirepass` command line: `dev`, `admin` and `login`, each run to an exit code.

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
    Dev(crate::dev::DevArgs),
    /// Manage users, groups, hosts, grants, credentials and tokens over gRPC (authz, secrets).
    Admin(crate::admin::AdminArgs),
    /// Log this command line in through the browser (`--device`): stores an API token that
    /// `phirepass admin` presents.
    Login(crate::login::LoginArgs),
    /// The deployment's CA and service certificates: `init`, `issue`, `rotate-ca`, `retire-ca`.
    Pki(crate::pki::PkiArgs),
    /// Apply the database schema as its owner and grant each service role its tables (once
    /// per upgrade, before the services start with DATABASE_MIGRATIONS=require).
    Migrate(crate::pki::MigrateArgs),
}

/// Parses the command line and runs the command; the exit code says how it went.
pub fn run() -> std::process::ExitCode {
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
        Command::Dev(args) => match runtime.block_on(crate::dev::run(args)) {
            Ok(()) => std::process::ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("error: {e:#}");
                std::process::ExitCode::FAILURE
            }
        },
        Command::Login(args) => match runtime.block_on(crate::login::run(args)) {
            Ok(()) => std::process::ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("error: {e:#}");
                std::process::ExitCode::FAILURE
            }
        },
        Command::Migrate(args) => match runtime.block_on(crate::pki::migrate(args)) {
            Ok(()) => std::process::ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("error: {e:#}");
                std::process::ExitCode::FAILURE
            }
        },
        Command::Pki(args) => match crate::pki::run(args) {
            Ok(()) => std::process::ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("error: {e:#}");
                std::process::ExitCode::FAILURE
            }
        },
        // admin errors carry their exit code (see admin::output::Exit) and a message meant for
        // the operator; their chain holds nothing more to show.
        Command::Admin(args) => match runtime.block_on(crate::admin::run(args)) {
            Ok(()) => std::process::ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("error: {e:#}");
                std::process::ExitCode::from(crate::admin::exit_code(&e))
            }
        },
    }
}
