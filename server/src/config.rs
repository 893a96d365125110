//! The `iphoto-server` command line: one clap parser, every flag with an environment variable.

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

/// Keeps a Photos library's metadata and originals in a catalog and an object store.
#[derive(Debug, Parser)]
#[command(name = "iphoto-server", version, about)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
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
}

/// `token …`
#[derive(Debug, Subcommand)]
pub enum TokenCommand {
    /// Issue a token and print it once.
    Create {
        /// Owner's user name.
        #[arg(long)]
        user: String,
        /// What the token may do: client, web, worker or admin.
        #[arg(long)]
        scope: String,
        /// A label for listings.
        #[arg(long, default_value = "cli")]
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
        #[arg(long)]
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
    #[arg(long, env = "DATABASE_URL", hide_env_values = true)]
    pub database_url: Option<String>,
}

/// `serve` settings.
#[derive(Debug, Clone, Args)]
pub struct ServeArgs {
    /// Address to listen on.
    #[arg(
        long,
        env = "LISTEN",
        default_value = "127.0.0.1:8080",
        help_heading = "Server"
    )]
    pub listen: SocketAddr,

    /// Most photos one sync batch may carry (the agent sends 100).
    #[arg(long, env = "MAX_SYNC_BATCH", default_value_t = 500, help_heading = "Server")]
    pub max_sync_batch: usize,

    /// Largest upload body, bytes.
    #[arg(long, env = "MAX_UPLOAD_BYTES", default_value_t = 64 * 1024 * 1024 * 1024, help_heading = "Server")]
    pub max_upload_bytes: u64,

    /// How long an enrichment job lease holds when the worker names no duration, seconds.
    #[arg(long, env = "JOB_LEASE_SECS", default_value_t = 300, help_heading = "Workers")]
    pub job_lease_secs: u64,

    /// Failures after which an enrichment job is parked with its last error (no more retries).
    #[arg(long, env = "JOB_MAX_FAILURES", default_value_t = 5, help_heading = "Workers")]
    pub job_max_failures: u32,

    /// Pause before a failed enrichment job is offered again, seconds.
    #[arg(long, env = "JOB_RETRY_SECS", default_value_t = 30, help_heading = "Workers")]
    pub job_retry_secs: u64,

    /// Log as JSON lines (for journald and log shippers) instead of text.
    #[arg(long, env = "LOG_JSON", help_heading = "Server")]
    pub log_json: bool,

    #[command(flatten)]
    pub catalog: CatalogArgs,

    #[command(flatten)]
    pub storage: storage::StorageArgs,
}
