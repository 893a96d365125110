//! Logging: one `tracing` subscriber on stderr for every binary, set from `--log` / `IPHOTO_LOG` (the filter)
//! and `--log-json` / `IPHOTO_LOG_JSON` (one JSON object per line, for journald, launchd and log shippers).
//!
//! Text has ANSI colour only when stderr is a terminal: under systemd, launchd or a pipe the escape codes would
//! land in the journal and break greps. Warnings queued before the subscriber existed (renamed environment
//! variables, found while parsing the command line) are logged right after it is installed.

use std::io::IsTerminal as _;
use std::sync::Mutex;

/// `--log` and `--log-json`, global to every subcommand.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct LogArgs {
    /// Log filter: a level (`warn`, `info`, `debug`) or directives per module (`info,sqlx=warn`). Default:
    /// the binary's own (`info`, or what `--help` names).
    #[arg(long, env = "IPHOTO_LOG", global = true, help_heading = "Logging")]
    pub log: Option<String>,

    /// Log one JSON object per line (for journald, launchd and log shippers) instead of text.
    #[arg(long, env = "IPHOTO_LOG_JSON", global = true, help_heading = "Logging")]
    pub log_json: bool,
}

/// How text lines look (JSON lines are always complete).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    /// Time, level, spans with their fields, target, message and fields.
    Full,
    /// Shorter lines: span fields after the message (the agent, whose lines interleave with progress bars).
    Compact,
}

/// A filter `--log` / `IPHOTO_LOG` cannot parse.
#[derive(Debug)]
pub struct FilterError {
    filter: String,
    reason: String,
}

impl std::fmt::Display for FilterError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "--log / IPHOTO_LOG: {:?} is not a log filter ({}); use a level like `info` or `info,sqlx=warn`",
            self.filter, self.reason
        )
    }
}

impl std::error::Error for FilterError {}

/// Installs the process's subscriber on stderr: `args.log`, else `default_filter`; JSON lines with
/// `args.log_json`, else text in `format`, coloured only on a terminal. A second call (tests running two
/// commands in one process) keeps the first subscriber. Then logs the warnings [`queue_warning`] held.
pub fn init(args: &LogArgs, default_filter: &str, format: LogFormat) -> Result<(), FilterError> {
    let filter = args.log.as_deref().unwrap_or(default_filter);
    let filter = tracing_subscriber::EnvFilter::try_new(filter).map_err(|error| FilterError {
        filter: filter.to_owned(),
        reason: error.to_string(),
    })?;
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(!args.log_json && std::io::stderr().is_terminal());
    let _already_set = match (args.log_json, format) {
        (true, _) => builder.json().try_init(),
        (false, LogFormat::Full) => builder.try_init(),
        (false, LogFormat::Compact) => builder.compact().try_init(),
    };
    for warning in take_warnings() {
        tracing::warn!("{warning}");
    }
    Ok(())
}

/// Warnings found before logging is set up; [`init`] logs them.
static QUEUED: Mutex<Vec<String>> = Mutex::new(Vec::new());

/// Holds a warning until [`init`] installs the subscriber and logs it.
pub fn queue_warning(warning: String) {
    if let Ok(mut queued) = QUEUED.lock() {
        queued.push(warning);
    }
}

fn take_warnings() -> Vec<String> {
    QUEUED
        .lock()
        .map(|mut queued| std::mem::take(&mut *queued))
        .unwrap_or_default()
}
