//! `iphoto-worker`: parses the command line and hands over to [`worker::cli::run`].

use clap::Parser as _;
use worker::cli::{Cli, Command};

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let Cli { command, log } = Cli::parse();
    if let Err(error) = cli_support::logging::init(&log, "info", cli_support::LogFormat::Full) {
        eprintln!("iphoto-worker: {error}");
        return std::process::ExitCode::FAILURE;
    }
    let result = match command {
        Command::Thumbnail(args) => worker::cli::run(*args).await,
    };
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("iphoto-worker: {error:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
