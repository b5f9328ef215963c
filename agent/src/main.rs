//! `phirepass-agent` binary: parses the command line and runs it (see
//! [`phirepass_agent::cli`]).
#![forbid(unsafe_code)]

use std::process::ExitCode;

use clap::Parser as _;
use phirepass_agent::cli::{self, Cli};

#[tokio::main]
async fn main() -> ExitCode {
    match cli::run(Cli::parse()).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("phirepass-agent: {e:#}");
            ExitCode::FAILURE
        }
    }
}
