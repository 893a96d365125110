//! `iphoto-mount`: parses the command line and calls the library (`mount::run`, `mount::Status`).

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context as _, Result, bail};
use clap::{Args, Parser, Subcommand};
use cli_support::env::Renamed;
use mount::fs::FsConfig;
use mount::{MountConfig, Profile, Status};
use storage::{StorageArgs, StorageKey};

#[derive(Parser)]
#[command(
    name = "iphoto-mount",
    version = cli_support::version!(),
    about = "An object-store prefix as local files, with a bounded disk cache"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
    #[command(flatten)]
    log: cli_support::LogArgs,
}

/// The mount's variables from before one scheme for all binaries (the storage ones are
/// [`storage::RENAMED_ENV`]).
const RENAMED_ENV: &[Renamed] = &[Renamed::retired("IPHOTO_MOUNT_LOG", "IPHOTO_LOG")];

#[derive(Subcommand)]
enum Command {
    /// Mounts a prefix and serves it until SIGINT/SIGTERM or an unmount.
    Mount(Box<MountArgs>),
    /// Prints the cache use, dirty bytes, pending uploads and pins of a mount; with paths, their pin state.
    Status {
        /// Paths in a mount: print each one's pin state (pinning, pinned, cannot finish + why, not pinned).
        paths: Vec<PathBuf>,
        /// The mount's cache directory (without paths).
        #[arg(long, env = "IPHOTO_MOUNT_CACHE_DIR")]
        cache_dir: Option<PathBuf>,
        /// Print JSON instead of text.
        #[arg(long, env = "IPHOTO_MOUNT_JSON")]
        json: bool,
    },
    /// Pins files or folders of a running mount: fetched in the background, never evicted.
    Pin {
        /// Paths in the mount.
        #[arg(required = true)]
        paths: Vec<PathBuf>,
    },
    /// Unpins files or folders: their blocks are evicted like any others again.
    Unpin {
        /// Paths in the mount.
        #[arg(required = true)]
        paths: Vec<PathBuf>,
    },
    /// Waits until every write of the mount is in the store, then says what it waited for.
    Flush {
        /// The mountpoint (or any path in the mount), or the mount's cache directory.
        target: Option<PathBuf>,
        /// The mount's cache directory (when no target is given).
        #[arg(long, env = "IPHOTO_MOUNT_CACHE_DIR")]
        cache_dir: Option<PathBuf>,
        /// Give up after this many seconds.
        #[arg(long, env = "IPHOTO_MOUNT_FLUSH_TIMEOUT_SECS", default_value_t = 3600)]
        timeout_secs: u64,
    },
}

#[derive(Args)]
struct MountArgs {
    /// Where the files appear.
    mountpoint: PathBuf,
    /// The key prefix shown as the root (empty: the whole store).
    #[arg(long, env = "IPHOTO_MOUNT_PREFIX", default_value = "", help_heading = "Mount")]
    prefix: String,
    /// What the mount is for: photos-originals is read-only, video-projects read-write.
    #[arg(
        long,
        env = "IPHOTO_MOUNT_PROFILE",
        value_enum,
        default_value = "photos-originals",
        help_heading = "Mount"
    )]
    profile: Profile,
    /// Refuse every change (EROFS), whatever the profile.
    #[arg(long, env = "IPHOTO_MOUNT_READ_ONLY", help_heading = "Mount")]
    read_only: bool,
    /// Stay in the foreground (the default under launchd/systemd; the binary never daemonizes itself).
    #[arg(long, env = "IPHOTO_MOUNT_FOREGROUND", help_heading = "Mount")]
    foreground: bool,
    /// Let other users see the mount (needs user_allow_other in /etc/fuse.conf unless root).
    #[arg(long, env = "IPHOTO_MOUNT_ALLOW_OTHER", help_heading = "Mount")]
    allow_other: bool,
    /// The cache directory (blocks, index, status).
    #[arg(long, env = "IPHOTO_MOUNT_CACHE_DIR", help_heading = "Cache")]
    cache_dir: PathBuf,
    /// Hard bound of the cache directory (e.g. 10GiB, 500MiB).
    #[arg(long, env = "IPHOTO_MOUNT_CACHE_MAX_SIZE", default_value = "10GiB", value_parser = parse_size, help_heading = "Cache")]
    cache_max_size: u64,
    /// Size of a cached block.
    #[arg(long, env = "IPHOTO_MOUNT_BLOCK_SIZE", default_value = "4MiB", value_parser = parse_size, help_heading = "Cache")]
    block_size: u64,
    /// Bytes of blocks in memory at once (fetches and prefetch), for the whole mount. Sequential readers
    /// share three quarters of it: 128 MiB holds one reader's whole window (16 blocks of 4 MiB) and six
    /// blocks each for four; the process's peak RSS is about this plus 70 MB.
    #[arg(long, env = "IPHOTO_MOUNT_MEMORY_BUDGET", default_value = "128MiB", value_parser = parse_size, help_heading = "Cache")]
    memory_budget: u64,
    /// Bytes written and not yet uploaded, at most (a share of the cache bound, never evicted).
    #[arg(long, env = "IPHOTO_MOUNT_DIRTY_BUDGET", default_value = "2GiB", value_parser = parse_size, help_heading = "Cache")]
    dirty_budget: u64,
    /// The kernel's read-ahead for the mount (0, the default: the kernel's 128 KiB, and the mount's own
    /// prefetch does the rest; larger: fewer, larger parallel reads, but each seek into a clip then brings the
    /// whole window over the link). Needs root (it is set through sysfs); otherwise the kernel's default stays.
    #[arg(long, env = "IPHOTO_MOUNT_KERNEL_READ_AHEAD", default_value = "0", value_parser = parse_size, help_heading = "Cache")]
    kernel_read_ahead: u64,
    /// The most entries (objects, at any depth) a directory rename moves: each is copied in the store, then
    /// deleted. A larger directory answers EXDEV, and `mv` copies it entry by entry.
    #[arg(long, env = "IPHOTO_MOUNT_RENAME_DIR_MAX_ENTRIES", default_value_t = 10_000)]
    rename_dir_max_entries: u64,
    /// Milliseconds to wait before each upload and each copy of a directory rename (for crash tests).
    #[arg(long, env = "IPHOTO_MOUNT_UPLOAD_DELAY_MS", default_value_t = 0, hide = true)]
    upload_delay_ms: u64,
    /// Seconds a listing or a file's attributes are trusted before asking the store again.
    #[arg(
        long,
        env = "IPHOTO_MOUNT_METADATA_TTL_SECS",
        default_value_t = 60,
        help_heading = "Cache"
    )]
    metadata_ttl_secs: u64,
    /// Seconds after which a store request fails with EIO.
    #[arg(
        long,
        env = "IPHOTO_MOUNT_REQUEST_TIMEOUT_SECS",
        default_value_t = 30,
        help_heading = "Store"
    )]
    request_timeout_secs: u64,
    #[command(flatten)]
    storage: StorageArgs,
}

/// `10GiB`, `500MiB`, `4M`, `1024`: binary units.
fn parse_size(text: &str) -> Result<u64, String> {
    let text = text.trim();
    let split = text.find(|c: char| !c.is_ascii_digit()).unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let number: u64 = number
        .parse()
        .map_err(|_| format!("{text:?} is not a size like 10GiB"))?;
    let shift = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 0,
        "k" | "kib" | "kb" => 10,
        "m" | "mib" | "mb" => 20,
        "g" | "gib" | "gb" => 30,
        "t" | "tib" | "tb" => 40,
        other => return Err(format!("unknown size unit {other:?} (use KiB, MiB, GiB, TiB)")),
    };
    number
        .checked_mul(1 << shift)
        .ok_or_else(|| format!("{text:?} is too large"))
}

fn main() -> Result<()> {
    let renamed: Vec<Renamed> = RENAMED_ENV.iter().chain(storage::RENAMED_ENV).copied().collect();
    let cli: Cli = cli_support::env::parse(&renamed);
    cli_support::logging::init(&cli.log, "info", cli_support::LogFormat::Full)?;
    match cli.command {
        Command::Mount(args) => mount_command(*args),
        Command::Status {
            paths,
            cache_dir,
            json,
        } => status_command(&paths, cache_dir, json),
        Command::Pin { paths } => pin_command(&paths, true),
        Command::Unpin { paths } => pin_command(&paths, false),
        Command::Flush {
            target,
            cache_dir,
            timeout_secs,
        } => {
            let (cache_dir, mountpoint) = mount_state_dir(target, cache_dir)?;
            let deadline = std::time::Instant::now() + Duration::from_secs(timeout_secs);
            let started = mount::now_ms();
            // The most that was waiting, by the statuses written since this command started.
            let (mut files, mut bytes) = (0, 0);
            loop {
                let status = Status::read(&cache_dir)
                    .with_context(|| format!("no status in {}", cache_dir.display()))?;
                if status.written_at_ms > started {
                    files = files.max(status.pending_uploads);
                    bytes = bytes.max(status.dirty_bytes);
                }
                // Only a status written after this command started speaks for the writes before it.
                if status.written_at_ms > started && status.pending_uploads == 0 && status.dirty_bytes == 0 {
                    let which = match &mountpoint {
                        Some(mountpoint) => format!(
                            "the mount at {} (cache {})",
                            mountpoint.display(),
                            cache_dir.display()
                        ),
                        None => format!("the mount using the cache {}", cache_dir.display()),
                    };
                    if files == 0 && bytes == 0 {
                        println!("flushed {which}: nothing was waiting; every write is in the store");
                    } else {
                        println!(
                            "flushed {which}: {files} file(s), {bytes} bytes uploaded; every write is in the store"
                        );
                    }
                    return Ok(());
                }
                if std::time::Instant::now() > deadline {
                    bail!(
                        "{} bytes still not uploaded after {timeout_secs} s",
                        status.dirty_bytes
                    );
                }
                std::thread::sleep(Duration::from_millis(100));
            }
        }
    }
}

/// The cache directory of the mount `target` names (a mountpoint or any path in a mount, or a cache
/// directory), or `--cache-dir`; with the mountpoint when one was named.
fn mount_state_dir(
    target: Option<PathBuf>,
    cache_dir: Option<PathBuf>,
) -> Result<(PathBuf, Option<PathBuf>)> {
    let Some(target) = target else {
        let cache_dir = cache_dir.context("name a mountpoint or a cache directory (or set --cache-dir)")?;
        return Ok((cache_dir, None));
    };
    if target.join("status.json").is_file() {
        return Ok((target, None));
    }
    let mut value = vec![0u8; 4096];
    match rustix::fs::getxattr(&target, mount::fuse::CACHE_DIR_XATTR, &mut value[..]) {
        Ok(len) => {
            value.truncate(len);
            let cache_dir = PathBuf::from(String::from_utf8(value).context("the cache directory's name")?);
            Ok((cache_dir, Some(target)))
        }
        Err(_) => bail!(
            "{} is neither in an iphoto-mount mount nor a mount's cache directory (no status.json there)",
            target.display()
        ),
    }
}

/// The pin attribute's value of `path`: its pin state.
fn pin_state(path: &std::path::Path) -> Result<String> {
    let mut value = vec![0u8; 4096];
    let len = rustix::fs::getxattr(path, mount::fs::pin::PIN_XATTR, &mut value[..])
        .with_context(|| format!("{} is not in an iphoto-mount mount", path.display()))?;
    value.truncate(len);
    Ok(String::from_utf8_lossy(&value).into_owned())
}

fn pin_command(paths: &[PathBuf], pin: bool) -> Result<()> {
    let mut failed = false;
    for path in paths {
        let value: &[u8] = if pin { b"1" } else { b"0" };
        match rustix::fs::setxattr(
            path,
            mount::fs::pin::PIN_XATTR,
            value,
            rustix::fs::XattrFlags::empty(),
        ) {
            Ok(()) => println!("{}: {}", path.display(), pin_state(path)?),
            Err(e) => {
                failed = true;
                let why = match pin_state(path) {
                    Ok(state) if state.starts_with("not pinned: ") => {
                        state["not pinned: ".len()..].to_owned()
                    }
                    _ => std::io::Error::from(e).to_string(),
                };
                eprintln!(
                    "cannot {} {}: {why}",
                    if pin { "pin" } else { "unpin" },
                    path.display()
                );
            }
        }
    }
    if failed {
        bail!("some paths were not {}", if pin { "pinned" } else { "unpinned" });
    }
    Ok(())
}

fn status_command(paths: &[PathBuf], cache_dir: Option<PathBuf>, json: bool) -> Result<()> {
    if !paths.is_empty() {
        let mut states = Vec::new();
        for path in paths {
            states.push((path.display().to_string(), pin_state(path)?));
        }
        if json {
            let list: Vec<serde_json::Value> = states
                .iter()
                .map(|(path, state)| serde_json::json!({"path": path, "pin": state}))
                .collect();
            println!("{}", serde_json::Value::Array(list));
        } else {
            for (path, state) in states {
                println!("{path}: {state}");
            }
        }
        return Ok(());
    }
    let (cache_dir, _) = mount_state_dir(None, cache_dir)?;
    let status = Status::read(&cache_dir).with_context(|| format!("no status in {}", cache_dir.display()))?;
    let pins: mount::fs::pin::PinsFile = std::fs::read(cache_dir.join("pins.json"))
        .ok()
        .and_then(|bytes| serde_json::from_slice(&bytes).ok())
        .unwrap_or_default();
    if json {
        let value = serde_json::json!({
            "cache_used_bytes": status.cache_used_bytes,
            "cache_max_bytes": status.cache_max_bytes,
            "cache_blocks": status.cache_blocks,
            "dirty_bytes": status.dirty_bytes,
            "pending_uploads": status.pending_uploads,
            "pin_cap_bytes": pins.cap_bytes,
            "pins": pins.pins,
        });
        println!("{value}");
        return Ok(());
    }
    println!("cache_used_bytes {}", status.cache_used_bytes);
    println!("cache_max_bytes {}", status.cache_max_bytes);
    println!("cache_blocks {}", status.cache_blocks);
    println!("dirty_bytes {}", status.dirty_bytes);
    println!("pending_uploads {}", status.pending_uploads);
    for pin in pins.pins {
        let reason = pin.reason.map(|r| format!(" ({r})")).unwrap_or_default();
        println!(
            "pin {} {} {}/{} bytes{reason}",
            pin.path, pin.state, pin.cached_bytes, pin.bytes
        );
    }
    Ok(())
}

/// A random HMAC key for a local-backend mount run without one: the mount never presigns a URL, so the
/// key only satisfies the storage factory and is never shown or kept.
fn throwaway_presign_secret() -> Result<storage::Secret> {
    let mut key = [0u8; 32];
    std::io::Read::read_exact(&mut std::fs::File::open("/dev/urandom")?, &mut key)?;
    Ok(storage::Secret::new(hex::encode(key)))
}

fn mount_command(mut args: MountArgs) -> Result<()> {
    let prefix = match args.prefix.trim_matches('/') {
        "" => None,
        p => Some(StorageKey::parse(p).context("--prefix / IPHOTO_MOUNT_PREFIX")?),
    };
    if args.storage.storage_backend == storage::Backend::Local
        && args.storage.presign_secret.is_none()
        && args.storage.presign_secret_file.is_none()
    {
        args.storage.presign_secret = Some(throwaway_presign_secret()?);
    }
    let store = storage::create_object_store(&args.storage.into_config()?)?;
    // SAFETY-free uid lookup: the mount shows every entry as owned by whoever runs it.
    let (uid, gid) = owner();
    let config = MountConfig {
        mountpoint: args.mountpoint,
        fs: FsConfig {
            prefix,
            read_only: args.read_only || args.profile.read_only_by_default(),
            metadata_ttl: Duration::from_secs(args.metadata_ttl_secs),
            block_size: args.block_size,
            memory_budget: args.memory_budget,
            request_timeout: Duration::from_secs(args.request_timeout_secs),
            dirty_budget: args.dirty_budget.min(args.cache_max_size / 2),
            upload_delay: Duration::from_millis(args.upload_delay_ms),
            rename_dir_limit: args.rename_dir_max_entries,
            uid,
            gid,
        },
        cache_dir: args.cache_dir,
        cache_max_size: args.cache_max_size,
        fuse_threads: 2,
        allow_other: args.allow_other,
        kernel_read_ahead: args.kernel_read_ahead,
    };
    let _ = args.foreground;
    mount::run(config, store)?;
    Ok(())
}

/// The uid and gid of this process, read from /proc (no unsafe libc call); root when unknown.
fn owner() -> (u32, u32) {
    use std::os::unix::fs::MetadataExt as _;
    match std::fs::metadata("/proc/self") {
        Ok(meta) => (meta.uid(), meta.gid()),
        Err(_) => (0, 0),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_flag_reads_an_iphoto_variable() {
        use clap::CommandFactory as _;
        assert_eq!(
            cli_support::env::violations(&Cli::command()),
            Vec::<String>::new()
        );
    }

    #[test]
    fn the_readme_documents_every_variable() {
        use clap::CommandFactory as _;
        let readme = include_str!("../../README.md");
        let found = cli_support::env::readme_mismatches(&Cli::command(), "iphoto-mount", readme);
        assert_eq!(
            found,
            Vec::<String>::new(),
            "the README's table of variables and the flags disagree"
        );
    }

    #[test]
    fn sizes_parse() {
        assert_eq!(parse_size("10GiB"), Ok(10 << 30));
        assert_eq!(parse_size("4MiB"), Ok(4 << 20));
        assert_eq!(parse_size("512"), Ok(512));
        assert!(parse_size("ten").is_err());
        assert!(parse_size("1PB").is_err());
    }
}
