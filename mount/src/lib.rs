//! `iphoto-mount`: any object-store prefix as local files, with a bounded block cache on disk.
//!
//! Layers, each knowing only the one below: [`fuse`] (the `fuser` shim, the only code that knows FUSE) →
//! [`fs`] (inodes, listings, handles, reads; no FUSE types) → [`cache`] (the block cache port and its disk
//! adapter) and the `storage` crate's [`storage::Store`]. Errors become errno in one place, [`Error::errno`].
//!
//! [`Mount::start`] mounts and returns at once (for tests and benchmarks); [`run`] mounts and waits for
//! SIGINT/SIGTERM (for the binary). Writes are staged in a journal in the cache directory and uploaded in
//! the background (`fs/journal.rs`); a read-only mount answers every change with EROFS.

pub mod cache;
pub mod error;
pub mod fs;
pub mod fuse;
mod status;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use storage::Store;

use crate::cache::disk::DiskCache;
pub use crate::error::{Error, Result};
use crate::fs::{Fs, FsConfig};
pub use crate::status::{Status, now_ms};

/// What a mount is for; decides the defaults.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Profile {
    /// A Photos library's originals: read-only (EROFS on every change).
    PhotosOriginals,
    /// Video sources and renders: read-write.
    VideoProjects,
}

impl Profile {
    /// Whether the profile mounts read-only unless told otherwise.
    pub fn read_only_by_default(self) -> bool {
        matches!(self, Profile::PhotosOriginals)
    }
}

/// Everything a mount needs besides the store.
#[derive(Debug, Clone)]
pub struct MountConfig {
    /// Where the files appear.
    pub mountpoint: PathBuf,
    /// The core's settings (prefix, TTL, block size, memory budget, timeouts).
    pub fs: FsConfig,
    /// The cache directory (blocks, index, status); one mount at a time (a lock file says so).
    pub cache_dir: PathBuf,
    /// Hard bound of the cache directory, bytes.
    pub cache_max_size: u64,
    /// FUSE session threads reading requests (work itself runs on the runtime).
    pub fuse_threads: usize,
    /// Let other users see the mount (`allow_other`; needs `user_allow_other` in /etc/fuse.conf unless root).
    pub allow_other: bool,
    /// The kernel's read-ahead for the mount, bytes (0: leave the kernel's 128 KiB). The kernel reads ahead
    /// of a sequential reader in requests of up to 1 MiB, sent in parallel: a larger window means fewer,
    /// larger requests and the reader never waiting on one. Set through sysfs (Linux, root); without the
    /// right to, the mount still works with the kernel's default.
    pub kernel_read_ahead: u64,
}

/// A live mount. Unmount with [`Mount::unmount`]; dropping it unmounts too.
#[derive(Debug)]
pub struct Mount {
    session: Option<fuser::BackgroundSession>,
    fs: Arc<Fs>,
    runtime: Option<tokio::runtime::Runtime>,
    mountpoint: PathBuf,
    cache_dir: PathBuf,
    _lock: std::fs::File,
}

impl Mount {
    /// Opens the cache, mounts, and returns while the mount serves requests on threads of its own.
    pub fn start(config: MountConfig, store: Store) -> Result<Mount> {
        check_mountpoint(&config.mountpoint)?;
        std::fs::create_dir_all(&config.cache_dir)?;
        let lock = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(config.cache_dir.join("lock"))?;
        lock_cache_dir(&lock, &config.cache_dir)?;
        // Dirty data has its own share of the bound and is never evicted: the block cache gets the rest.
        let clean_bound = config
            .cache_max_size
            .checked_sub(config.fs.dirty_budget)
            .ok_or_else(|| {
                Error::Config(format!(
                    "the dirty budget ({}) must be below the cache bound ({})",
                    config.fs.dirty_budget, config.cache_max_size
                ))
            })?;
        let cache = Arc::new(DiskCache::open(&config.cache_dir, clean_bound)?);
        let fs = Arc::new(Fs::new(store, cache, config.fs.clone())?);
        fs.load_listings(&config.cache_dir);
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(4)
            .thread_name("iphoto-mount")
            .enable_all()
            .build()?;
        let options = vec![
            fuser::MountOption::FSName("iphoto-mount".into()),
            fuser::MountOption::Subtype("iphoto".into()),
            fuser::MountOption::NoAtime,
            fuser::MountOption::NoDev,
            fuser::MountOption::NoSuid,
        ];
        // A read-only mount is not mounted `ro` in the kernel: the core answers every change with EROFS
        // itself, and the kernel would also refuse the pin attribute (`iphoto-mount pin`), which changes
        // nothing in the store.
        let mut fuse_config = fuser::Config::default();
        fuse_config.mount_options = options;
        fuse_config.n_threads = Some(config.fuse_threads.max(1));
        fuse_config.clone_fd = true;
        if config.allow_other {
            fuse_config.acl = fuser::SessionACL::All;
        }
        {
            let _entered = runtime.enter();
            fs.start_journal(&config.cache_dir)?;
            fs.start_renames(&config.cache_dir)?;
            fs.start_pinner(&config.cache_dir);
        }
        let front = fuse::FuseFs::new(fs.clone(), runtime.handle().clone(), config.cache_dir.clone());
        let session =
            fuser::spawn_mount(front, &config.mountpoint, &fuse_config).map_err(|source| Error::Mount {
                mountpoint: config.mountpoint.display().to_string(),
                source,
            })?;
        if config.kernel_read_ahead > 0 {
            set_kernel_read_ahead(&config.mountpoint, config.kernel_read_ahead);
        }
        status::spawn_writer(&runtime, fs.clone(), config.cache_dir.clone());
        spawn_listing_saver(&runtime, fs.clone(), config.cache_dir.clone());
        tracing::info!(mountpoint = %config.mountpoint.display(), "mounted");
        Ok(Mount {
            session: Some(session),
            fs,
            runtime: Some(runtime),
            mountpoint: config.mountpoint,
            cache_dir: config.cache_dir,
            _lock: lock,
        })
    }

    /// The core, for status and tests.
    pub fn fs(&self) -> &Arc<Fs> {
        &self.fs
    }

    /// Whether the kernel side ended (someone ran `fusermount3 -u`).
    pub fn is_finished(&self) -> bool {
        self.session.as_ref().is_none_or(|s| s.guard.is_finished())
    }

    /// Unmounts, waits for the session to end and writes the cache index.
    pub fn unmount(mut self) -> Result<()> {
        self.shutdown()
    }

    fn shutdown(&mut self) -> Result<()> {
        let mut result = Ok(());
        if let Some(session) = self.session.take() {
            // Only while our session still runs: after an external unmount, the mountpoint may hold another
            // file system by now.
            let unmounted = !session.guard.is_finished() && unmount_when_idle(&self.mountpoint);
            if unmounted {
                // The kernel ends the session's reads once the unmount completes: wait for its threads.
                let deadline = std::time::Instant::now() + UNMOUNT_BUSY_WAIT;
                while !session.guard.is_finished() && std::time::Instant::now() < deadline {
                    std::thread::sleep(Duration::from_millis(5));
                }
            }
            let external = !unmounted && session.guard.is_finished();
            match session.umount_and_join() {
                Ok(()) => {}
                // Someone else unmounted (`umount`, `fusermount3 -u`, Finder's eject): the mount is gone, as
                // asked. That is a clean end, not an error that makes a service manager restart us.
                Err(e) if external => {
                    tracing::debug!(error = %e, "the mount was unmounted from outside");
                }
                // Ours came first: fuser's own unmount finds nothing mounted (EINVAL).
                Err(e) if unmounted && e.raw_os_error() == Some(libc::EINVAL) => {}
                Err(source) => {
                    result = Err(Error::Mount {
                        mountpoint: self.mountpoint.display().to_string(),
                        source,
                    });
                }
            }
        }
        if let Err(e) = self.fs.persist() {
            tracing::warn!(error = %e, "writing the cache index at unmount failed");
        }
        if let Err(e) = self.fs.save_listings(&self.cache_dir, true) {
            tracing::warn!(error = %e, "writing the listing cache at unmount failed");
        }
        status::write(&self.fs, &self.cache_dir);
        if let Some(runtime) = self.runtime.take() {
            // Not `drop`: dropping a runtime inside another runtime's task panics.
            runtime.shutdown_background();
        }
        result
    }
}

impl Drop for Mount {
    fn drop(&mut self) {
        if let Err(e) = self.shutdown() {
            tracing::warn!(error = %e, "unmount on drop failed");
        }
    }
}

/// Refuses a mountpoint that is missing, not a directory, already a mount (its device differs from its
/// parent's: another mount, or a FUSE mount whose process died) or not empty: mounting over files would hide
/// them, and stacking a second mount over a first one hides the first.
fn check_mountpoint(mountpoint: &std::path::Path) -> Result<()> {
    use std::os::unix::fs::MetadataExt as _;
    let refuse = |why: String| {
        Err(Error::Config(format!(
            "the mountpoint {} {why}",
            mountpoint.display()
        )))
    };
    let meta = match std::fs::metadata(mountpoint) {
        Ok(meta) => meta,
        Err(e) if e.raw_os_error() == Some(libc::ENOTCONN) => {
            return refuse(format!(
                "is a mount whose process has ended; unmount it first (fusermount3 -u {0}, or umount {0})",
                mountpoint.display()
            ));
        }
        Err(e) => return refuse(format!("cannot be used: {e}")),
    };
    if !meta.is_dir() {
        return refuse("is not a directory".into());
    }
    let parent = mountpoint
        .canonicalize()
        .ok()
        .and_then(|p| p.parent().map(std::path::Path::to_path_buf));
    if let Some(parent) = parent
        && let Ok(parent_meta) = std::fs::metadata(&parent)
        && parent_meta.dev() != meta.dev()
    {
        return refuse(format!(
            "is already a mount point; unmount it first (umount {})",
            mountpoint.display()
        ));
    }
    let mut entries = std::fs::read_dir(mountpoint)?;
    if let Some(entry) = entries.next() {
        let name = entry?.file_name();
        return refuse(format!(
            "is not empty (it holds {name:?}); mount on an empty directory"
        ));
    }
    Ok(())
}

/// How long a mount waits for the cache directory's lock before it says another mount holds it.
const CACHE_LOCK_WAIT: Duration = Duration::from_secs(1);

/// Takes the cache directory's lock, waiting up to [`CACHE_LOCK_WAIT`]. A `flock` lives as long as any
/// descriptor of the lock file: a child process forked by another thread just before the previous mount
/// closed it (a `Command` about to `exec`) holds it for a moment more, so a remount in the same process
/// would be refused by a race, not by another mount. A live mount still holds it after the wait.
fn lock_cache_dir(lock: &std::fs::File, cache_dir: &std::path::Path) -> Result<()> {
    let deadline = std::time::Instant::now() + CACHE_LOCK_WAIT;
    loop {
        match lock.try_lock() {
            Ok(()) => return Ok(()),
            Err(std::fs::TryLockError::WouldBlock) if std::time::Instant::now() < deadline => {
                std::thread::sleep(Duration::from_millis(10));
            }
            Err(std::fs::TryLockError::WouldBlock) => {
                return Err(Error::Config(format!(
                    "the cache directory {} is in use by another mount",
                    cache_dir.display()
                )));
            }
            Err(std::fs::TryLockError::Error(e)) => return Err(e.into()),
        }
    }
}

/// How long an unmount retries while the mountpoint is busy.
const UNMOUNT_BUSY_WAIT: Duration = Duration::from_secs(2);

/// Unmounts `mountpoint`, retrying for up to [`UNMOUNT_BUSY_WAIT`] while it is busy (EBUSY): a file closed
/// a moment ago can still be held by a child process that another thread forked just before the close (until
/// it execs), or by a reader finishing its close. Any other outcome (nothing mounted, not root, still busy
/// after the wait) is left to fuser's own unmount, which comes next and reports it. Returns whether it
/// unmounted.
#[cfg(target_os = "linux")]
fn unmount_when_idle(mountpoint: &std::path::Path) -> bool {
    let deadline = std::time::Instant::now() + UNMOUNT_BUSY_WAIT;
    loop {
        match nix::mount::umount2(mountpoint, nix::mount::MntFlags::empty()) {
            Ok(()) => return true,
            Err(nix::errno::Errno::EBUSY) if std::time::Instant::now() < deadline => {
                std::thread::sleep(Duration::from_millis(20));
            }
            Err(_) => return false,
        }
    }
}

#[cfg(not(target_os = "linux"))]
fn unmount_when_idle(_mountpoint: &std::path::Path) -> bool {
    false
}

/// Sets the read-ahead of the mount's backing device (`/sys/class/bdi/<major>:<minor>/read_ahead_kb`). FUSE
/// lets a file system only lower the kernel's offer at INIT, so a larger window is set here, after the mount.
#[cfg(target_os = "linux")]
fn set_kernel_read_ahead(mountpoint: &std::path::Path, bytes: u64) {
    use std::os::unix::fs::MetadataExt as _;
    let device = match std::fs::metadata(mountpoint) {
        Ok(meta) => meta.dev(),
        Err(e) => {
            tracing::warn!(error = %e, "cannot stat the mountpoint to set its read-ahead");
            return;
        }
    };
    let path = format!(
        "/sys/class/bdi/{}:{}/read_ahead_kb",
        libc::major(device),
        libc::minor(device)
    );
    match std::fs::write(&path, (bytes / 1024).max(1).to_string()) {
        Ok(()) => tracing::debug!(%path, bytes, "kernel read-ahead set"),
        Err(e) => tracing::info!(%path, error = %e, "kernel read-ahead left at its default (needs root)"),
    }
}

#[cfg(not(target_os = "linux"))]
fn set_kernel_read_ahead(_mountpoint: &std::path::Path, _bytes: u64) {}

/// How often the listing cache is written while mounted (when a listing changed).
const LISTING_SAVE_INTERVAL: Duration = Duration::from_secs(5);

fn spawn_listing_saver(runtime: &tokio::runtime::Runtime, fs: Arc<Fs>, cache_dir: PathBuf) {
    runtime.spawn(async move {
        let mut ticker = tokio::time::interval(LISTING_SAVE_INTERVAL);
        ticker.tick().await;
        loop {
            ticker.tick().await;
            let (fs, cache_dir) = (fs.clone(), cache_dir.clone());
            let saved = tokio::task::spawn_blocking(move || fs.save_listings(&cache_dir, false)).await;
            if let Ok(Err(e)) = saved {
                tracing::warn!(error = %e, "writing the listing cache failed");
            }
        }
    });
}

/// How long a signalled mount waits for uploads under way before it unmounts (they are journaled anyway).
const SHUTDOWN_UPLOAD_WAIT: Duration = Duration::from_secs(30);

/// Mounts and serves until SIGINT or SIGTERM (or an external unmount), then unmounts cleanly.
pub fn run(config: MountConfig, store: Store) -> Result<()> {
    let mount = Mount::start(config, store)?;
    let signals = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    signals.block_on(async {
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
        let mut ticker = tokio::time::interval(Duration::from_millis(200));
        loop {
            tokio::select! {
                _ = tokio::signal::ctrl_c() => break,
                _ = term.recv() => break,
                _ = ticker.tick() => if mount.is_finished() { break },
            }
        }
        Ok::<(), Error>(())
    })?;
    // Finish the uploads under way if they finish soon; what is left stays in the journal for the next start.
    let fs = mount.fs().clone();
    if let Some(runtime) = &mount.runtime {
        let (dirty, files) = fs.dirty();
        if files > 0 {
            tracing::info!(dirty, files, "waiting for uploads before unmounting");
            if let Err(e) = runtime.block_on(fs.flush_all(SHUTDOWN_UPLOAD_WAIT)) {
                tracing::warn!(error = %e, "unmounting with uploads left in the journal; the next start resumes them");
            }
        }
    }
    tracing::info!("unmounting");
    mount.unmount()
}
