//! The `iphoto-agent` command line: `sync`, `status`, `scan` and `seed-originals`. One clap parser; every flag also reads an
//! environment variable, so launchd and systemd units configure the agent without a wrapper script.

mod progress;

use std::io::IsTerminal as _;
use std::path::{Path, PathBuf};
use std::time::Duration;

use indicatif::{HumanBytes, HumanDuration};
use sha2::{Digest as _, Sha256};

use crate::client::{Retry, Server};
use crate::error::{Error, Result};
use crate::seed::{SeedTarget, seed_originals};
use crate::state::StateDb;
use crate::sync::source::{Source, wire_album};
use crate::sync::{NoProgress, PassOptions, Progress, run_pass};

pub use progress::TerminalProgress;

/// `iphoto-agent`: reads a Photos library without PhotoKit and syncs it to an iPhoto sync server.
#[derive(Debug, clap::Parser)]
#[command(name = "iphoto-agent", version = cli_support::version!(), about)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
    /// Log filter (`info`, `warn`, `iphoto_agent=debug`…). Default: `info`, or `warn` when progress bars show.
    #[arg(long, env = "IPHOTO_LOG", global = true, help_heading = "Logging")]
    pub log: Option<String>,
    /// Log one JSON object per line (with the pass's and each batch's span fields), for launchd and systemd
    /// log collectors; the default is compact text.
    #[arg(long, env = "IPHOTO_LOG_JSON", global = true, help_heading = "Logging")]
    pub log_json: bool,
}

/// The subcommands.
#[derive(Debug, clap::Subcommand)]
pub enum Command {
    /// Sync the library to the server: once, or every `--interval`.
    Sync(SyncArgs),
    /// What the last pass did, what is pending, upload rate, bytes uploaded and ETA (from the state DB).
    Status(StatusArgs),
    /// What the reader sees, without network: every sync item and album as sent on the wire.
    Scan(ScanArgs),
    /// Copy the library's originals into the object store in the Photos bundle layout, so the prefix can be
    /// mounted as the library's `originals/` folder. Resumable: what is already there is skipped.
    SeedOriginals(Box<SeedArgs>),
}

/// `sync` flags.
#[derive(Debug, clap::Args)]
pub struct SyncArgs {
    /// Server base URL, e.g. `https://photos.example.org`.
    #[arg(long, env = "IPHOTO_SERVER", help_heading = "Server")]
    pub server: String,
    /// File holding a client token (`<data-dir>/client.token` on a fresh server). Never the token itself, so it
    /// stays out of process lists.
    #[arg(long, env = "IPHOTO_TOKEN_FILE", help_heading = "Server")]
    pub token_file: PathBuf,
    /// The `.photoslibrary` bundle (or its `Photos.sqlite`), or a plain folder of photos and videos.
    #[arg(long, env = "IPHOTO_LIBRARY", help_heading = "Library")]
    pub library: PathBuf,
    /// Run one pass and exit (non-zero when it failed).
    #[arg(long, env = "IPHOTO_ONCE", help_heading = "Schedule")]
    pub once: bool,
    /// Time between passes: `300s`, `5m`, `1h` or plain seconds.
    #[arg(long, env = "IPHOTO_INTERVAL", default_value = "300s", value_parser = parse_interval, help_heading = "Schedule")]
    pub interval: Duration,
    /// Items per metadata batch (1..=500).
    #[arg(long, env = "IPHOTO_BATCH", default_value_t = 100, value_parser = clap::value_parser!(u16).range(1..=500), help_heading = "Transfer")]
    pub batch: u16,
    /// Uploads in flight at once (1..=64).
    #[arg(long, env = "IPHOTO_UPLOADS", default_value_t = 4, value_parser = clap::value_parser!(u8).range(1..=64), help_heading = "Transfer")]
    pub uploads: u8,
    /// Files of at least this many bytes are uploaded resumably (draft-ietf-httpbis-resumable-upload):
    /// after a dropped connection the upload goes on where the server stopped, also across restarts.
    #[arg(long, env = "IPHOTO_RESUMABLE_THRESHOLD", default_value_t = 16 * 1024 * 1024, help_heading = "Transfer")]
    pub resumable_threshold: u64,
    /// Where the state DB lives. Default: `~/Library/Application Support/iphoto-agent` on macOS,
    /// `~/.local/state/iphoto-agent` elsewhere.
    #[arg(long, env = "IPHOTO_STATE_DIR", help_heading = "Library")]
    pub state_dir: Option<PathBuf>,
}

/// `status` flags.
#[derive(Debug, clap::Args)]
pub struct StatusArgs {
    /// The state directory `sync` used (same default).
    #[arg(long, env = "IPHOTO_STATE_DIR")]
    pub state_dir: Option<PathBuf>,
    /// Print JSON instead of text.
    #[arg(long, env = "IPHOTO_JSON")]
    pub json: bool,
}

/// `scan` flags.
#[derive(Debug, clap::Args)]
pub struct ScanArgs {
    /// The `.photoslibrary` bundle (or its `Photos.sqlite`), or a plain folder.
    #[arg(long, env = "IPHOTO_LIBRARY")]
    pub library: PathBuf,
    /// Print `{ items, albums, skipped }` as JSON (the wire types) instead of a summary.
    #[arg(long, env = "IPHOTO_JSON")]
    pub json: bool,
}

/// `seed-originals` flags.
#[derive(Debug, clap::Args)]
pub struct SeedArgs {
    /// The `.photoslibrary` bundle whose `originals/` folder is copied.
    #[arg(long, env = "IPHOTO_LIBRARY", help_heading = "Library")]
    pub library: PathBuf,
    /// Key prefix to write under, e.g. `Photos Library.photoslibrary/originals`. Default: `<bundle
    /// name>/originals`, as the mount scripts expect.
    #[arg(
        long,
        env = "IPHOTO_SEED_PREFIX",
        conflicts_with = "user",
        help_heading = "Target"
    )]
    pub prefix: Option<String>,
    /// Write under the server's layout of this user's library (`users/<user>/libraries/<library-id>/originals`)
    /// instead of a prefix; needs `--library-id`.
    #[arg(
        long,
        env = "IPHOTO_SEED_USER",
        requires = "library_id",
        help_heading = "Target"
    )]
    pub user: Option<String>,
    /// The library id of `--user`'s layout (the one `sync` reports).
    #[arg(
        long,
        env = "IPHOTO_SEED_LIBRARY_ID",
        requires = "user",
        help_heading = "Target"
    )]
    pub library_id: Option<String>,
    /// Files copied at once (1..=64).
    #[arg(long, env = "IPHOTO_SEED_JOBS", default_value_t = 4, value_parser = clap::value_parser!(u8).range(1..=64), help_heading = "Transfer")]
    pub jobs: u8,
    /// Print the report as JSON.
    #[arg(long, env = "IPHOTO_JSON")]
    pub json: bool,
    /// Where to write: the storage flags of the server (`IPHOTO_STORAGE_BACKEND`, `IPHOTO_S3_*`…). The local backend needs no
    /// presign secret here (nothing is presigned).
    #[command(flatten)]
    pub storage: storage::StorageArgs,
}

/// Parses `300s`, `5m`, `1h` or `300`.
pub fn parse_interval(text: &str) -> std::result::Result<Duration, String> {
    let text = text.trim();
    let (number, unit) = match text.find(|c: char| !c.is_ascii_digit()) {
        Some(at) => text.split_at(at),
        None => (text, "s"),
    };
    let value: u64 = number
        .parse()
        .map_err(|_| format!("{text:?}: expected a number with s, m or h"))?;
    let seconds = match unit {
        "s" => value,
        "m" => value * 60,
        "h" => value * 3600,
        _ => return Err(format!("{text:?}: unit must be s, m or h")),
    };
    if seconds == 0 {
        return Err("the interval must be at least 1s".into());
    }
    Ok(Duration::from_secs(seconds))
}

/// The default state directory under a home directory.
pub fn default_state_dir(home: Option<&Path>) -> Result<PathBuf> {
    let home = home.ok_or_else(|| Error::Config {
        name: "--state-dir (IPHOTO_STATE_DIR)",
        reason: "not set and HOME is unknown".into(),
    })?;
    Ok(if cfg!(target_os = "macos") {
        home.join("Library/Application Support/iphoto-agent")
    } else {
        home.join(".local/state/iphoto-agent")
    })
}

/// Whether progress bars are drawn: only when a person watches stderr.
pub fn interactive() -> bool {
    std::io::stderr().is_terminal()
}

/// Runs a parsed command; `home` resolves the default state directory.
pub async fn run(cli: Cli, home: Option<&Path>) -> Result<()> {
    match cli.command {
        Command::Sync(args) => sync(args, home).await,
        Command::Status(args) => {
            let dir = match args.state_dir {
                Some(dir) => dir,
                None => default_state_dir(home)?,
            };
            status(&dir, args.json).await
        }
        Command::Scan(args) => scan(&args.library, args.json).await,
        Command::SeedOriginals(args) => seed(*args).await,
    }
}

async fn seed(args: SeedArgs) -> Result<()> {
    let target = match (args.prefix, args.user, args.library_id) {
        (Some(prefix), _, _) => {
            SeedTarget::Prefix(storage::StorageKey::parse(prefix.trim_matches('/')).map_err(|e| {
                Error::Config {
                    name: "--prefix (IPHOTO_SEED_PREFIX)",
                    reason: e.to_string(),
                }
            })?)
        }
        (None, Some(user), Some(library)) => SeedTarget::Layout { user, library },
        _ => SeedTarget::default_for(&args.library)?,
    };
    let mut storage_args = args.storage;
    if storage_args.storage_backend == storage::Backend::Local
        && storage_args.presign_secret.is_none()
        && storage_args.presign_secret_file.is_none()
    {
        // The local adapter insists on an HMAC key for the URLs it signs; a seed signs none, so any key does.
        storage_args.presign_secret = Some(storage::Secret::new(hex::encode(Sha256::digest(
            format!("{:?}{}", std::time::SystemTime::now(), std::process::id()).as_bytes(),
        ))));
    }
    crate::seed::originals_dir(&args.library)?;
    let store = storage::create_object_store(&storage_args.into_config()?)?;
    let report = seed_originals(&store, &args.library, &target, usize::from(args.jobs)).await?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report).unwrap_or_default());
    } else {
        for failure in &report.failed {
            eprintln!("not copied: {}: {}", failure.path.display(), failure.reason);
        }
        println!(
            "seed: {} copied ({} bytes), {} already there, {} failed, under {}",
            report.copied,
            report.bytes_copied,
            report.already_there,
            report.failed.len(),
            report.prefix
        );
    }
    if report.failed.is_empty() {
        Ok(())
    } else {
        Err(Error::Incomplete {
            what: "seed-originals",
            failed: report.failed.len() as u64,
        })
    }
}

async fn sync(args: SyncArgs, home: Option<&Path>) -> Result<()> {
    let token = std::fs::read_to_string(&args.token_file).map_err(|source| Error::Io {
        path: args.token_file.clone(),
        action: "reading the token file",
        source,
    })?;
    let server = Server::new(&args.server, &token, Retry::default())?;
    let state_dir = match args.state_dir {
        Some(dir) => dir,
        None => default_state_dir(home)?,
    };
    let options = PassOptions {
        library: args.library,
        state_dir,
        batch: usize::from(args.batch),
        uploads: usize::from(args.uploads),
        resumable_threshold: args.resumable_threshold,
    };
    loop {
        let bars = interactive().then(TerminalProgress::new);
        let progress: &dyn Progress = match &bars {
            Some(bars) => bars,
            None => &NoProgress,
        };
        let result = run_pass(&server, &options, progress).await;
        match result {
            Ok(report) => {
                if bars.is_some() {
                    eprintln!(
                        "sent {} items, uploaded {} resources ({}), {} pending without a file here",
                        report.items_sent,
                        report.uploaded,
                        HumanBytes(report.bytes_uploaded),
                        report.not_on_disk
                    );
                }
                // One pass for a script or a check: it failed if anything of the library did not get through.
                let failed = report.unreadable + report.upload_failures + report.rejected;
                if args.once && failed > 0 {
                    print_failures(&options.state_dir).await?;
                    return Err(Error::Incomplete { what: "sync", failed });
                }
            }
            Err(error) if args.once => return Err(error),
            Err(error) => tracing::error!(%error, "pass failed; retried next interval"),
        }
        if args.once {
            return Ok(());
        }
        tokio::select! {
            () = tokio::time::sleep(args.interval) => {}
            _ = tokio::signal::ctrl_c() => return Ok(()),
        }
    }
}

async fn status(dir: &Path, json: bool) -> Result<()> {
    let Some(state) = StateDb::open_existing(dir).await? else {
        println!("no state in {}: no pass has run yet", dir.display());
        return Ok(());
    };
    let last_pass = state.last_pass().await?;
    let figures = state.figures().await?;
    let failures = state.failures().await?;
    if json {
        let value = serde_json::json!({
            "lastPass": last_pass,
            "figures": figures,
            "failures": failures,
        });
        println!("{}", serde_json::to_string_pretty(&value).unwrap_or_default());
        return Ok(());
    }
    match &last_pass {
        Some(pass) => {
            println!(
                "last pass: {} → {}{}",
                pass.started_at,
                pass.finished_at.as_deref().unwrap_or("running"),
                pass.error
                    .as_deref()
                    .map(|e| format!(" (failed: {e})"))
                    .unwrap_or_default()
            );
            println!(
                "  {} assets, {} items sent ({} deleted), {} rejected, {} uploaded ({} deduplicated), {} refused",
                pass.assets,
                pass.items_sent,
                pass.deleted_sent,
                pass.rejected,
                pass.uploaded,
                pass.deduplicated,
                pass.upload_failures
            );
            println!(
                "  {} resources unavailable ({} only in iCloud, {} unreadable here), {} pending without a file here",
                pass.unavailable, pass.icloud_only, pass.unreadable, pass.not_on_disk
            );
            println!(
                "  time: read {} ms, hash {} ms ({} files), metadata {} ms ({} batches), albums {} ms, uploads {} ms",
                pass.read_ms,
                pass.hash_ms,
                pass.files_hashed,
                pass.metadata_ms,
                pass.batches,
                pass.albums_ms,
                pass.upload_ms
            );
        }
        None => println!("last pass: none"),
    }
    println!(
        "pending: {} uploads, {}",
        figures.pending_uploads,
        HumanBytes(figures.pending_bytes)
    );
    println!(
        "upload rate: {}/s",
        HumanBytes(figures.upload_rate.max(0.0) as u64)
    );
    println!(
        "resumed uploads: {} not sent again, {} re-sent",
        HumanBytes(figures.bytes_resumed),
        HumanBytes(figures.bytes_resent)
    );
    println!("bytes uploaded: {}", HumanBytes(figures.bytes_uploaded));
    match figures.eta {
        Some(eta) => println!("eta: {}", HumanDuration(Duration::from_secs(eta))),
        None => println!("eta: unknown"),
    }
    for failure in &failures {
        println!(
            "{}: {} {}: {} ({})",
            failure.status.as_str(),
            failure.local_identifier,
            failure.resource,
            failure.reason,
            failure.at
        );
    }
    Ok(())
}

/// Lists every recorded failure on stderr, with its status (what `--once` shows before exiting non-zero).
async fn print_failures(state_dir: &Path) -> Result<()> {
    let state = StateDb::open(state_dir).await?;
    for failure in state.failures().await? {
        eprintln!(
            "{}: {} {}: {}",
            failure.status.as_str(),
            failure.local_identifier,
            failure.resource,
            failure.reason
        );
    }
    Ok(())
}

/// What `scan --json` prints: the wire types, as they would be sent.
#[derive(serde::Serialize)]
struct ScanOutput<'a> {
    items: Vec<&'a api::SyncItem>,
    albums: Vec<api::Album>,
    skipped: Vec<SkippedRow<'a>>,
}

/// An asset row the reader skipped, and why.
#[derive(serde::Serialize)]
struct SkippedRow<'a> {
    row: i64,
    uuid: Option<&'a str>,
    reason: String,
}

async fn scan(library: &Path, json: bool) -> Result<()> {
    let source = Source::open(library).await?;
    let scan = source.scan().await?;
    let albums: Vec<api::Album> = source.albums().await?.iter().map(wire_album).collect();
    let items: Vec<&api::SyncItem> = scan.assets.iter().map(|a| &a.item).collect();
    if json {
        let skipped = scan
            .skipped
            .iter()
            .map(|s| SkippedRow {
                row: s.row,
                uuid: s.uuid.as_deref(),
                reason: format!("{:?}", s.reason),
            })
            .collect();
        let output = ScanOutput {
            items,
            albums,
            skipped,
        };
        // Streamed into a buffered stdout: 100,000 items are tens of megabytes, never built as one string.
        let mut out = std::io::BufWriter::new(std::io::stdout().lock());
        let written = serde_json::to_writer_pretty(&mut out, &output)
            .map_err(std::io::Error::from)
            .and_then(|()| std::io::Write::write_all(&mut out, b"\n"))
            .and_then(|()| std::io::Write::flush(&mut out));
        return written.map_err(|source| Error::Io {
            path: PathBuf::from("<stdout>"),
            action: "writing the scan",
            source,
        });
    }
    for item in &items {
        let resources: Vec<String> = item
            .resources
            .iter()
            .map(|r| {
                let state = if r.available { "on disk" } else { "unavailable" };
                format!("{} {} B {state}", r.resource_type.as_str(), r.size)
            })
            .collect();
        println!(
            "{} {} {:?} {} [{}]",
            item.local_identifier,
            item.taken_at.to_rfc3339(),
            item.kind,
            item.original_filename,
            resources.join(", ")
        );
    }
    for album in &albums {
        println!(
            "album {} {:?} {:?}: {} members",
            album.id,
            album.kind,
            album.title,
            album.members.len()
        );
    }
    println!(
        "{} items, {} albums, {} rows skipped",
        items.len(),
        albums.len(),
        scan.skipped.len()
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn intervals_parse_with_units() {
        assert_eq!(parse_interval("300s"), Ok(Duration::from_secs(300)));
        assert_eq!(parse_interval("5m"), Ok(Duration::from_secs(300)));
        assert_eq!(parse_interval("2h"), Ok(Duration::from_secs(7200)));
        assert_eq!(parse_interval("45"), Ok(Duration::from_secs(45)));
        assert!(parse_interval("0s").is_err());
        assert!(parse_interval("5d").is_err());
        assert!(parse_interval("soon").is_err());
    }

    #[test]
    fn every_flag_has_an_environment_variable() {
        use clap::CommandFactory as _;
        let command = Cli::command();
        for sub in command.get_subcommands() {
            for arg in sub.get_arguments() {
                if matches!(arg.get_id().as_str(), "help" | "version") {
                    continue;
                }
                assert!(
                    arg.get_env().is_some(),
                    "{} --{} has no env",
                    sub.get_name(),
                    arg.get_id()
                );
            }
        }
    }
}
