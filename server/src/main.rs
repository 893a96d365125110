//! `iphoto-server`: parses the command line and hands over to [`server::app::run`].

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let cli = server::config::Cli::from_env_and_args();
    match server::app::run(cli).await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("iphoto-server: {error:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
