//! `iphoto-agent`: parses the command line, sets up logging and hands over to [`iphoto_agent::cli::run`].

use iphoto_agent::cli::{Cli, interactive, run};

/// mimalloc instead of glibc's allocator: a pass over a 100,000-asset library makes and frees a few million
/// small allocations (sync items, paths, SQLite's page cache), and glibc spent a fifth of an unchanged pass in
/// `malloc_consolidate` and its free lists (perf, 2026-11-25).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> std::process::ExitCode {
    match start().await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(error) => {
            // The message and its causes on one line, without a backtrace: this is for the user, not a bug.
            eprintln!("iphoto-agent: {error:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

async fn start() -> anyhow::Result<()> {
    // The storage flags (seed-originals) still read DESIGN.md's names when the new ones are unset.
    let cli: Cli = cli_support::env::parse(storage::RENAMED_ENV);
    // With bars on a terminal, only warnings interleave with them; under launchd/systemd, quiet info lines.
    let default = if interactive() { "warn" } else { "info" };
    let log = cli_support::LogArgs {
        log: cli.log.clone(),
        log_json: cli.log_json,
    };
    cli_support::logging::init(&log, default, cli_support::LogFormat::Compact)?;
    let home = std::env::var_os("HOME").map(std::path::PathBuf::from);
    run(cli, home.as_deref()).await?;
    Ok(())
}
