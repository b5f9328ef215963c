//! `phirepass`: `phirepass dev` runs every service in one process; `phirepass admin` manages
//! users, nodes and tokens over gRPC; `phirepass login` stores an API token for it.

mod admin;
mod commands;
mod dev;
mod login;
mod pki;

fn main() -> std::process::ExitCode {
    commands::run()
}
