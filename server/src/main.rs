//! `iphoto-server`: parses the command line and hands over to [`server::app::run`].

use clap::Parser as _;

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let cli = server::config::Cli::parse();
    match server::app::run(cli).await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("iphoto-server: {error:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
