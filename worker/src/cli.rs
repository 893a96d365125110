//! The worker's command line: `iphoto-worker thumbnail` (and the same arguments under
//! `iphoto-server worker thumbnail`), every flag with an environment variable.

use std::path::PathBuf;

use anyhow::{Context as _, Result};
use clap::{Args, Parser, Subcommand};
use tokio_util::sync::CancellationToken;

use crate::thumbnail::{PREVIEW_SPEC, ThumbnailSpec};
use crate::{WorkerSettings, read_token_file, run_thumbnail_worker};

/// Leases enrichment jobs from an iphoto-server and posts the results back.
#[derive(Debug, Parser)]
#[command(name = "iphoto-worker", version = cli_support::version!(), about)]
pub struct Cli {
    /// Which worker to run.
    #[command(subcommand)]
    pub command: Command,

    /// Logging: `--log`, `--log-json`.
    #[command(flatten)]
    pub log: cli_support::LogArgs,
}

/// Subcommands: one per kind of job.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Lease thumbnail jobs, write the derivatives to the store, post the results; stops on SIGTERM.
    Thumbnail(Box<ThumbnailWorkerArgs>),
}

/// How the thumbnail worker works, standalone or in-process (`iphoto-server serve --workers thumbnail`).
#[derive(Debug, Clone, Args)]
#[command(next_help_heading = "Thumbnail worker")]
pub struct ThumbnailOptions {
    /// Jobs worked on at once. Default: the number of cores.
    #[arg(long, env = "IPHOTO_WORKER_CONCURRENCY")]
    pub worker_concurrency: Option<usize>,

    /// Longest edge of a thumbnail, pixels.
    #[arg(long, env = "IPHOTO_THUMBNAIL_MAX_EDGE", default_value_t = 512, value_parser = clap::value_parser!(u32).range(16..=4096))]
    pub thumbnail_max_edge: u32,

    /// JPEG quality of a thumbnail, 1–100.
    #[arg(long, env = "IPHOTO_THUMBNAIL_QUALITY", default_value_t = 82, value_parser = clap::value_parser!(u8).range(1..=100))]
    pub thumbnail_quality: u8,

    /// Longest edge of a preview (the large JPEG the web shows), pixels; never upscaled.
    #[arg(long, env = "IPHOTO_PREVIEW_MAX_EDGE", default_value_t = PREVIEW_SPEC.max_edge, value_parser = clap::value_parser!(u32).range(256..=8192))]
    pub preview_max_edge: u32,

    /// JPEG quality of a preview, 1–100.
    #[arg(long, env = "IPHOTO_PREVIEW_QUALITY", default_value_t = PREVIEW_SPEC.quality, value_parser = clap::value_parser!(u8).range(1..=100))]
    pub preview_quality: u8,
}

impl ThumbnailOptions {
    /// The worker's settings for `server` with `token`, these options applied.
    pub fn settings(&self, server: url::Url, token: String) -> WorkerSettings {
        let mut settings = WorkerSettings::new(server, token);
        if let Some(n) = self.worker_concurrency {
            settings.concurrency = n.max(1);
        }
        settings.spec = ThumbnailSpec {
            max_edge: self.thumbnail_max_edge,
            quality: self.thumbnail_quality,
        };
        settings.preview = Some(ThumbnailSpec {
            max_edge: self.preview_max_edge,
            quality: self.preview_quality,
        });
        settings
    }
}

/// `thumbnail` settings.
#[derive(Debug, Clone, Args)]
pub struct ThumbnailWorkerArgs {
    /// The server's base URL.
    #[arg(long, env = "IPHOTO_WORKER_SERVER")]
    pub server: url::Url,

    /// A file holding a `worker`-scope token.
    #[arg(long, env = "IPHOTO_WORKER_TOKEN_FILE")]
    pub token_file: PathBuf,

    #[command(flatten)]
    pub options: ThumbnailOptions,

    /// The store the derivatives are written to: the same settings as the server's.
    #[command(flatten)]
    pub storage: storage::StorageArgs,
}

/// Runs the standalone thumbnail worker until SIGTERM or Ctrl-C, then finishes the jobs in hand. Logging is
/// the caller's to set up.
pub async fn run(mut args: ThumbnailWorkerArgs) -> Result<()> {
    let token = read_token_file(&args.token_file).context("IPHOTO_WORKER_TOKEN_FILE")?;
    // The worker only writes derivatives; it never signs URLs, so the local backend needs no presign key of
    // the server's. A throwaway one satisfies the store's configuration.
    if args.storage.storage_backend == storage::Backend::Local
        && args.storage.presign_secret.is_none()
        && args.storage.presign_secret_file.is_none()
    {
        let bytes: [u8; 32] = rand::random();
        args.storage.presign_secret = Some(storage::Secret::new(hex::encode(bytes)));
    }
    let store = storage::create_object_store(&args.storage.into_config()?)?;
    let settings = args.options.settings(args.server, token);
    let shutdown = CancellationToken::new();
    let signal = shutdown.clone();
    tokio::spawn(async move {
        shutdown_signal().await;
        signal.cancel();
    });
    run_thumbnail_worker(settings, store, shutdown).await
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    tokio::select! {
        () = ctrl_c => {},
        () = terminate => {},
    }
    tracing::info!("shutting down: finishing the jobs in hand");
}
