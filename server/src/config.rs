//! The `iphoto-server` command line: one clap parser, every flag with an environment variable named by the
//! `IPHOTO_` scheme (`cli_support::env`), listed in the README's table (a test compares the two).

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};
use cli_support::env::Renamed;
pub use worker::cli::{ThumbnailOptions, ThumbnailWorkerArgs};

/// Keeps a Photos library's metadata and originals in a catalog and an object store.
#[derive(Debug, Parser)]
#[command(name = "iphoto-server", version = cli_support::version!(), about)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,

    /// `--log` (default `info,sqlx=warn`) and `--log-json`, for every subcommand.
    #[command(flatten)]
    pub log: cli_support::LogArgs,
}

/// The log filter when `--log` / `IPHOTO_LOG` is not given.
pub const DEFAULT_LOG_FILTER: &str = "info,sqlx=warn";

/// The server's variables from before the `IPHOTO_` scheme (the storage ones are [`storage::RENAMED_ENV`]).
/// `DATABASE_URL` is in DESIGN.md and still read; the others are only reported.
pub const RENAMED_ENV: &[Renamed] = &[
    Renamed::deprecated("DATABASE_URL", "IPHOTO_DATABASE_URL"),
    Renamed::retired("LISTEN", "IPHOTO_LISTEN"),
    Renamed::retired("MAX_SYNC_BATCH", "IPHOTO_MAX_SYNC_BATCH"),
    Renamed::retired("MAX_UPLOAD_BYTES", "IPHOTO_MAX_UPLOAD_BYTES"),
    Renamed::retired("HTTP_HEADER_TIMEOUT_SECS", "IPHOTO_HTTP_HEADER_TIMEOUT_SECS"),
    Renamed::retired("HTTP_BODY_IDLE_SECS", "IPHOTO_HTTP_BODY_IDLE_SECS"),
    Renamed::retired("HTTP_REQUEST_TIMEOUT_SECS", "IPHOTO_HTTP_REQUEST_TIMEOUT_SECS"),
    Renamed::retired("HTTP_MAX_CONNECTIONS", "IPHOTO_HTTP_MAX_CONNECTIONS"),
    Renamed::retired("JOB_LEASE_SECS", "IPHOTO_JOB_LEASE_SECS"),
    Renamed::retired("JOB_MAX_FAILURES", "IPHOTO_JOB_MAX_FAILURES"),
    Renamed::retired("JOB_RETRY_SECS", "IPHOTO_JOB_RETRY_SECS"),
    Renamed::retired("LOG_JSON", "IPHOTO_LOG_JSON"),
    Renamed::retired("RUST_LOG", "IPHOTO_LOG"),
    Renamed::retired("TRASH_DAYS", "IPHOTO_TRASH_DAYS"),
    Renamed::retired("WORKERS", "IPHOTO_WORKERS"),
    Renamed::retired("WORKER_CONCURRENCY", "IPHOTO_WORKER_CONCURRENCY"),
    Renamed::retired("THUMBNAIL_MAX_EDGE", "IPHOTO_THUMBNAIL_MAX_EDGE"),
    Renamed::retired("THUMBNAIL_QUALITY", "IPHOTO_THUMBNAIL_QUALITY"),
    Renamed::retired("GC_INTERVAL", "IPHOTO_GC_INTERVAL"),
    Renamed::retired("GC_GRACE", "IPHOTO_GC_GRACE"),
    Renamed::retired("GC_SETTLE", "IPHOTO_GC_SETTLE"),
    Renamed::retired("GC_DRY_RUN", "IPHOTO_GC_DRY_RUN"),
    Renamed::retired("IPHOTO_SERVER_URL", "IPHOTO_WORKER_SERVER"),
];

impl Cli {
    /// The process's command line, the renamed variables of the server and the store applied
    /// ([`cli_support::env::parse`]).
    pub fn from_env_and_args() -> Self {
        let renamed: Vec<Renamed> = RENAMED_ENV.iter().chain(storage::RENAMED_ENV).copied().collect();
        cli_support::env::parse(&renamed)
    }
}

/// Subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Serve the HTTP API (the embedded defaults need no configuration).
    Serve(Box<ServeArgs>),
    /// Bring the catalog schema up to date and exit.
    Migrate(CatalogArgs),
    /// Manage users.
    #[command(subcommand)]
    User(UserCommand),
    /// Manage API tokens.
    #[command(subcommand)]
    Token(TokenCommand),
    /// Run an enrichment worker against a server.
    #[command(subcommand)]
    Worker(WorkerCommand),
    /// Restore a user's photo, album or library as it was at a time (the Mac's next sync wins again).
    Restore(RestoreArgs),
    /// Collect garbage once: delete unreferenced objects and interrupted writes' staging past the grace
    /// period (under the replicas' shared lease), printing per user what was freed; `--dry-run` only counts.
    Gc(Box<GcArgs>),
}

/// `restore` settings: the user, exactly one of `--photo`, `--album` or `--library`, and the time.
#[derive(Debug, Clone, Args)]
#[command(group(clap::ArgGroup::new("target").required(true).args(["photo", "album", "library"])))]
pub struct RestoreArgs {
    /// The user (name) whose catalog is restored.
    #[arg(long, env = "IPHOTO_RESTORE_USER")]
    pub user: String,
    /// One photo (catalog id).
    #[arg(long, env = "IPHOTO_RESTORE_PHOTO")]
    pub photo: Option<String>,
    /// One album (catalog id): title, order, membership and its member photos.
    #[arg(long, env = "IPHOTO_RESTORE_ALBUM")]
    pub album: Option<String>,
    /// Every photo and album of one library (catalog id).
    #[arg(long, env = "IPHOTO_RESTORE_LIBRARY")]
    pub library: Option<String>,
    /// The time to restore to, RFC 3339 (`2026-11-30T12:00:00Z`); not in the future, and not before the
    /// retention (`--trash-days`), whose older history is gone.
    #[arg(long, env = "IPHOTO_RESTORE_AS_OF")]
    pub as_of: String,
    #[command(flatten)]
    pub catalog: CatalogArgs,
}

/// `gc` settings: the catalog and the store as for `serve`.
#[derive(Debug, Clone, Args)]
pub struct GcArgs {
    /// Print what would be freed; take no lease and delete nothing.
    #[arg(long, env = "IPHOTO_GC_DRY_RUN")]
    pub dry_run: bool,

    /// Objects and staging written more recently than this are kept (`30s`, `15m`, `24h`, `7d`).
    #[arg(long, env = "IPHOTO_GC_GRACE", default_value = "24h", value_parser = parse_duration)]
    pub grace: std::time::Duration,

    /// Pause between releasing garbage in the catalog and deleting it, after which references are checked
    /// again (a sync batch that read a blob row just before it was released links it meanwhile).
    #[arg(long, env = "IPHOTO_GC_SETTLE", default_value = "30s", value_parser = parse_duration)]
    pub settle: std::time::Duration,

    /// Resumable uploads idle this long are aborted: their parts and staging removed (the server's
    /// `--upload-max-age`).
    #[arg(long, env = "IPHOTO_UPLOAD_MAX_AGE", default_value = "24h", value_parser = parse_duration)]
    pub upload_max_age: std::time::Duration,

    #[command(flatten)]
    pub catalog: CatalogArgs,

    #[command(flatten)]
    pub storage: storage::StorageArgs,
}

/// A duration as a whole number and a unit: `s`, `m`, `h` or `d` (`24h`); a bare number is seconds.
pub fn parse_duration(text: &str) -> Result<std::time::Duration, String> {
    let text = text.trim();
    let split = text.find(|c: char| !c.is_ascii_digit()).unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let n: u64 = number
        .parse()
        .map_err(|_| format!("{text:?}: expected a number and a unit, like 30s, 15m, 24h or 7d"))?;
    let seconds = match unit {
        "" | "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86_400,
        _ => return Err(format!("{text:?}: the unit must be s, m, h or d")),
    };
    n.checked_mul(seconds)
        .map(std::time::Duration::from_secs)
        .ok_or_else(|| format!("{text:?}: too long"))
}

/// A session lifetime: a [`parse_duration`] from one minute to one year.
fn parse_session_max_age(text: &str) -> Result<std::time::Duration, String> {
    let duration = parse_duration(text)?;
    if !(60..=366 * 86_400).contains(&duration.as_secs()) {
        return Err(format!("{text:?}: must be from 1m to 366d"));
    }
    Ok(duration)
}

/// `worker …`
#[derive(Debug, Subcommand)]
pub enum WorkerCommand {
    /// Lease thumbnail jobs, write the derivatives to the store, post the results; stops on SIGTERM (as
    /// `iphoto-worker thumbnail` does).
    Thumbnail(Box<ThumbnailWorkerArgs>),
}

/// An in-process worker `serve --workers` can run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum WorkerKind {
    /// The thumbnail worker.
    Thumbnail,
}

/// `user …`
#[derive(Debug, Subcommand)]
pub enum UserCommand {
    /// Create a user.
    Add {
        /// Login name.
        name: String,
        #[command(flatten)]
        catalog: CatalogArgs,
    },
    /// Set a user's web password (Argon2id) and sign out their browser sessions. The password is read from
    /// standard input (one line; asked twice without echo on a terminal) or from `--password-file`, never
    /// from the command line, where other users and shell history would see it.
    Passwd {
        /// Login name of an existing user.
        name: String,
        /// Read the password from the first line of this file instead of standard input.
        #[arg(long, env = "IPHOTO_PASSWORD_FILE")]
        password_file: Option<PathBuf>,
        #[command(flatten)]
        catalog: CatalogArgs,
    },
}

/// `token …`
#[derive(Debug, Subcommand)]
pub enum TokenCommand {
    /// Issue a token and print it once.
    Create {
        /// Owner's user name.
        #[arg(long, env = "IPHOTO_TOKEN_USER")]
        user: String,
        /// What the token may do: client, web, worker or admin.
        #[arg(long, env = "IPHOTO_TOKEN_SCOPE")]
        scope: String,
        /// A label for listings.
        #[arg(long, env = "IPHOTO_TOKEN_NAME", default_value = "cli")]
        name: String,
        #[command(flatten)]
        catalog: CatalogArgs,
    },
    /// Revoke a token by id.
    Revoke {
        /// Token id (from `token list`).
        id: String,
        #[command(flatten)]
        catalog: CatalogArgs,
    },
    /// List tokens (never their secrets).
    List {
        /// Only this user's.
        #[arg(long, env = "IPHOTO_TOKEN_USER")]
        user: Option<String>,
        #[command(flatten)]
        catalog: CatalogArgs,
    },
}

/// Where the catalog is.
#[derive(Debug, Clone, Args)]
#[command(next_help_heading = "Catalog")]
pub struct CatalogArgs {
    /// Data directory: the SQLite catalog, local blobs, generated secrets and first-start tokens.
    #[arg(long, env = "IPHOTO_DATA_DIR", default_value = "./data")]
    pub data_dir: PathBuf,

    /// `postgres://…` for PostgreSQL, or a SQLite file. Default: SQLite under the data directory.
    #[arg(long, env = "IPHOTO_DATABASE_URL", hide_env_values = true)]
    pub database_url: Option<String>,
}

/// `serve` settings.
#[derive(Debug, Clone, Args)]
pub struct ServeArgs {
    /// Address to listen on.
    #[arg(
        long,
        env = "IPHOTO_LISTEN",
        default_value = "127.0.0.1:8080",
        help_heading = "Server"
    )]
    pub listen: SocketAddr,

    /// Most photos one sync batch may carry (the agent sends 100).
    #[arg(
        long,
        env = "IPHOTO_MAX_SYNC_BATCH",
        default_value_t = 500,
        help_heading = "Server"
    )]
    pub max_sync_batch: usize,

    /// Largest upload body, bytes.
    #[arg(long, env = "IPHOTO_MAX_UPLOAD_BYTES", default_value_t = 64 * 1024 * 1024 * 1024, help_heading = "Server")]
    pub max_upload_bytes: u64,

    /// Part size of resumable uploads, bytes: on S3 each part is one part of the multipart upload (AWS takes
    /// 5 MiB at least), and clients are told it as `Upload-Limit: min-append-size`. The bytes of an append
    /// after its last whole part are kept as a tail object until the next append.
    #[arg(long, env = "IPHOTO_UPLOAD_PART_SIZE", default_value_t = 8 * 1024 * 1024, value_parser = clap::value_parser!(u64).range(65_536..=5 * 1024 * 1024 * 1024), help_heading = "Server")]
    pub upload_part_size: u64,

    /// How long a resumable upload may sit idle before the collector aborts it and removes its parts and
    /// staging (`Upload-Limit: max-age`).
    #[arg(long, env = "IPHOTO_UPLOAD_MAX_AGE", default_value = "24h", value_parser = parse_duration, help_heading = "Server")]
    pub upload_max_age: std::time::Duration,

    /// Seconds a connection may take to send a request's headers, and may sit idle between requests
    /// (keep-alive) or before its first; then it is closed.
    #[arg(long, env = "IPHOTO_HTTP_HEADER_TIMEOUT_SECS", default_value_t = 10, value_parser = clap::value_parser!(u64).range(1..=3600), help_heading = "Server")]
    pub http_header_timeout_secs: u64,

    /// Seconds a request body (uploads included) may go without a byte before the request fails with 408
    /// and nothing is stored.
    #[arg(long, env = "IPHOTO_HTTP_BODY_IDLE_SECS", default_value_t = 60, value_parser = clap::value_parser!(u64).range(1..=3600), help_heading = "Server")]
    pub http_body_idle_secs: u64,

    /// Seconds a request may take from its headers to its answer's headers (uploads are exempt: they are
    /// bounded by the body idle timeout instead); then 408.
    #[arg(long, env = "IPHOTO_HTTP_REQUEST_TIMEOUT_SECS", default_value_t = 60, value_parser = clap::value_parser!(u64).range(1..=86400), help_heading = "Server")]
    pub http_request_timeout_secs: u64,

    /// Most connections served at once; more wait in the listen backlog until one closes. Keep it under
    /// the open-file limit (`ulimit -n`).
    #[arg(long, env = "IPHOTO_HTTP_MAX_CONNECTIONS", default_value_t = 1024, value_parser = clap::value_parser!(u32).range(1..=1_000_000), help_heading = "Server")]
    pub http_max_connections: u32,

    /// How long a web session lasts after signing in (`12h`, `30d`): the session cookie's `Max-Age` and its
    /// expiry in the catalog. Signing out, or `user passwd`, ends it sooner.
    #[arg(long, env = "IPHOTO_SESSION_MAX_AGE", default_value = "30d", value_parser = parse_session_max_age, help_heading = "Web")]
    pub session_max_age: std::time::Duration,

    /// How long an enrichment job lease holds when the worker names no duration, seconds.
    #[arg(
        long,
        env = "IPHOTO_JOB_LEASE_SECS",
        default_value_t = 300,
        help_heading = "Workers"
    )]
    pub job_lease_secs: u64,

    /// Failures after which an enrichment job is parked with its last error (no more retries).
    #[arg(
        long,
        env = "IPHOTO_JOB_MAX_FAILURES",
        default_value_t = 5,
        help_heading = "Workers"
    )]
    pub job_max_failures: u32,

    /// Pause before a failed enrichment job is offered again, seconds.
    #[arg(
        long,
        env = "IPHOTO_JOB_RETRY_SECS",
        default_value_t = 30,
        help_heading = "Workers"
    )]
    pub job_retry_secs: u64,

    /// Days a photo removed on the Mac stays as a tombstone, and a replaced version (metadata or stored
    /// object) stays in the history, before the hourly purge removes it. Restores reach back this far.
    #[arg(long, env = "IPHOTO_TRASH_DAYS", default_value_t = 30, value_parser = clap::value_parser!(u32).range(1..=36500), help_heading = "Catalog")]
    pub trash_days: u32,

    /// Enrichment workers to run inside the server (comma-separated; `thumbnail`). They lease jobs over
    /// HTTP from this server with a `worker` token kept in the data directory.
    #[arg(
        long,
        env = "IPHOTO_WORKERS",
        value_enum,
        value_delimiter = ',',
        help_heading = "Server"
    )]
    pub workers: Vec<WorkerKind>,

    #[command(flatten)]
    pub thumbnails: ThumbnailOptions,

    /// Time between garbage-collection passes (`6h`; `0` turns the collector off). Replicas share one
    /// lease, so only one of them collects at a time.
    #[arg(long, env = "IPHOTO_GC_INTERVAL", default_value = "6h", value_parser = parse_duration, help_heading = "Garbage collection")]
    pub gc_interval: std::time::Duration,

    /// Objects and staging written more recently than this are never collected.
    #[arg(long, env = "IPHOTO_GC_GRACE", default_value = "24h", value_parser = parse_duration, help_heading = "Garbage collection")]
    pub gc_grace: std::time::Duration,

    /// Pause between releasing garbage in the catalog and deleting it (see `gc --settle`).
    #[arg(long, env = "IPHOTO_GC_SETTLE", default_value = "30s", value_parser = parse_duration, help_heading = "Garbage collection")]
    pub gc_settle: std::time::Duration,

    #[command(flatten)]
    pub catalog: CatalogArgs,

    #[command(flatten)]
    pub storage: storage::StorageArgs,
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::parse_duration;

    #[test]
    fn durations_take_a_unit() {
        for (text, expected) in [
            ("30", Some(30)),
            ("30s", Some(30)),
            ("15m", Some(900)),
            ("24h", Some(86_400)),
            ("7d", Some(604_800)),
            ("0", Some(0)),
            ("h", None),
            ("5w", None),
            ("-1s", None),
            ("99999999999999999999d", None),
        ] {
            assert_eq!(
                parse_duration(text).ok(),
                expected.map(Duration::from_secs),
                "{text}"
            );
        }
    }
}
