//! The FUSE front end: a thin shim from `fuser` requests to [`Fs`] calls.
//!
//! Every request that may touch the network is spawned onto the tokio runtime and answered from there, so
//! the session loop only decodes and dispatches: a slow GET never holds up a `getattr` of another file.
//! Errors become replies through [`Error::errno`], the one mapping.
//!
//! Why `fuser` and not the async `fuse3` crate: `fuser`'s reply objects are owned and can be moved into a
//! task, so requests are already answered asynchronously from tokio (several session threads read requests,
//! none waits on the store); `fuse3`'s async trait would give the same concurrency, not more. `fuser` is the
//! more widely used of the two and runs over macFUSE as well as Linux's fuse3, which the photos-originals
//! profile needs on a Mac. A write that needs no waiting is answered on the session thread itself (see
//! [`Fs::try_write`]): one wake-up per request instead of two.

use std::ffi::OsStr;
use std::sync::Arc;
use std::time::Duration;

use fuser::{
    Errno, FileAttr, FileHandle, FileType, Filesystem, FopenFlags, Generation, INodeNo, LockOwner,
    OpenAccMode, OpenFlags, ReplyAttr, ReplyData, ReplyDirectory, ReplyEmpty, ReplyEntry, ReplyOpen,
    ReplyStatfs, Request,
};

use tracing::Instrument as _;

use crate::error::Error;
use crate::fs::{Attr, Fs, Kind};

/// `fuser::Filesystem` over the core.
#[derive(Debug)]
pub struct FuseFs {
    fs: Arc<Fs>,
    runtime: tokio::runtime::Handle,
    /// How long the kernel may keep attributes and entries: the core's metadata TTL.
    ttl: Duration,
    /// The mount's cache directory, answered as the `user.iphoto.cache_dir` attribute of every entry, so
    /// `iphoto-mount flush MOUNTPOINT` finds the status of the mount serving a path.
    cache_dir: std::path::PathBuf,
}

impl FuseFs {
    /// A front end for `fs`, running its work on `runtime`; `cache_dir` is the mount's cache directory.
    pub fn new(fs: Arc<Fs>, runtime: tokio::runtime::Handle, cache_dir: std::path::PathBuf) -> Self {
        let ttl = fs.config().metadata_ttl;
        Self {
            fs,
            runtime,
            ttl,
            cache_dir,
        }
    }
}

fn errno(error: &Error) -> Errno {
    let errno = error.errno();
    if errno == libc::EIO {
        tracing::warn!(%error, "answering EIO");
    } else {
        tracing::debug!(%error, errno, "answering an error");
    }
    Errno::from_i32(errno)
}

fn file_attr(attr: &Attr) -> FileAttr {
    let kind = match attr.kind {
        Kind::File => FileType::RegularFile,
        Kind::Directory => FileType::Directory,
    };
    FileAttr {
        ino: INodeNo(attr.ino),
        size: attr.size,
        blocks: attr.size.div_ceil(512),
        atime: attr.mtime,
        mtime: attr.mtime,
        ctime: attr.mtime,
        crtime: attr.mtime,
        kind,
        perm: attr.perm,
        nlink: if attr.kind == Kind::Directory { 2 } else { 1 },
        uid: attr.uid,
        gid: attr.gid,
        rdev: 0,
        blksize: 128 * 1024,
        flags: 0,
    }
}

/// Answers an operation that returns nothing: `ok`, or the error's errno.
fn reply_empty(reply: ReplyEmpty, result: Result<(), Error>) {
    match result {
        Ok(()) => reply.ok(),
        Err(e) => reply.error(errno(&e)),
    }
}

fn name_of(name: &OsStr) -> Result<String, Error> {
    name.to_str()
        .map(str::to_owned)
        .ok_or_else(|| Error::InvalidName {
            name: name.to_string_lossy().into(),
        })
}

impl FuseFs {
    /// Runs a request's work on the runtime inside a span naming the operation and the kernel's request id,
    /// so every log line of one request can be found together. At `trace` level (`IPHOTO_LOG=
    /// iphoto_mount::fuse=trace`) each request's time from dispatch to reply is logged: how a reader's wait
    /// splits between the mount and the rest is then measured, not guessed.
    fn spawn(&self, request: &Request, op: &'static str, work: impl Future<Output = ()> + Send + 'static) {
        let span = tracing::debug_span!("fuse", op, request = request.unique().0);
        if tracing::enabled!(tracing::Level::TRACE) {
            let started = std::time::Instant::now();
            self.runtime.spawn(
                async move {
                    work.await;
                    let micros = u64::try_from(started.elapsed().as_micros()).unwrap_or(u64::MAX);
                    tracing::trace!(micros, "answered");
                }
                .instrument(span),
            );
        } else {
            self.runtime.spawn(work.instrument(span));
        }
    }
}

/// Requests the kernel may have in flight in the background (read-ahead above all). fuser's default of 16
/// leaves a sequential reader's larger read-ahead window (see `MountConfig::kernel_read_ahead`) waiting in the
/// kernel while the runtime could be answering it.
const MAX_BACKGROUND: u16 = 64;

mod xattr;

/// The attribute naming the mount's cache directory (read-only, on every entry, not listed).
pub const CACHE_DIR_XATTR: &str = "user.iphoto.cache_dir";

impl Filesystem for FuseFs {
    fn init(&mut self, _req: &Request, config: &mut fuser::KernelConfig) -> std::io::Result<()> {
        if let Err(nearest) = config.set_max_background(MAX_BACKGROUND) {
            let _ = config.set_max_background(nearest);
        }
        let _ = config.set_congestion_threshold(MAX_BACKGROUND * 3 / 4);
        // Lookups and listings of one directory may run at once (they are answered on the runtime).
        let _ = config.add_capabilities(fuser::InitFlags::FUSE_PARALLEL_DIROPS);
        Ok(())
    }

    fn lookup(&self, req: &Request, parent: INodeNo, name: &OsStr, reply: ReplyEntry) {
        let fs = self.fs.clone();
        let ttl = self.ttl;
        let name = name_of(name);
        self.spawn(req, "lookup", async move {
            let result = match name {
                Ok(name) => fs.lookup(parent.0, &name).await,
                Err(e) => Err(e),
            };
            match result {
                Ok(attr) => reply.entry(&ttl, &file_attr(&attr), Generation(0)),
                Err(e) => {
                    tracing::debug!(error = %e, "lookup");
                    reply.error(errno(&e));
                }
            }
        });
    }

    fn getattr(&self, req: &Request, ino: INodeNo, _fh: Option<FileHandle>, reply: ReplyAttr) {
        let fs = self.fs.clone();
        let ttl = self.ttl;
        self.spawn(req, "getattr", async move {
            match fs.getattr(ino.0).await {
                Ok(attr) => reply.attr(&ttl, &file_attr(&attr)),
                Err(e) => reply.error(errno(&e)),
            }
        });
    }

    fn open(&self, req: &Request, ino: INodeNo, flags: OpenFlags, reply: ReplyOpen) {
        let fs = self.fs.clone();
        let write = flags.acc_mode() != OpenAccMode::O_RDONLY;
        let truncate = flags.0 & libc::O_TRUNC != 0;
        self.spawn(req, "open", async move {
            match fs.open(ino.0, write, truncate).await {
                Ok(opened) => {
                    let flags = if opened.keep_cache {
                        FopenFlags::FOPEN_KEEP_CACHE
                    } else {
                        FopenFlags::empty()
                    };
                    reply.opened(FileHandle(opened.handle), flags)
                }
                Err(e) => reply.error(errno(&e)),
            }
        });
    }

    fn read(
        &self,
        req: &Request,
        _ino: INodeNo,
        fh: FileHandle,
        offset: u64,
        size: u32,
        _flags: OpenFlags,
        _lock_owner: Option<LockOwner>,
        reply: ReplyData,
    ) {
        let fs = self.fs.clone();
        self.spawn(req, "read", async move {
            tracing::trace!(offset, size, "read asked");
            match fs.read(fh.0, offset, size).await {
                Ok(bytes) => reply.data(&bytes),
                Err(e) => {
                    tracing::warn!(error = %e, "read");
                    reply.error(errno(&e));
                }
            }
        });
    }

    fn release(
        &self,
        req: &Request,
        _ino: INodeNo,
        fh: FileHandle,
        _flags: OpenFlags,
        _lock_owner: Option<LockOwner>,
        _flush: bool,
        reply: ReplyEmpty,
    ) {
        let fs = self.fs.clone();
        self.spawn(req, "release", async move {
            reply_empty(reply, fs.release(fh.0).await)
        });
    }

    fn flush(&self, req: &Request, _ino: INodeNo, fh: FileHandle, _lock_owner: LockOwner, reply: ReplyEmpty) {
        let fs = self.fs.clone();
        self.spawn(
            req,
            "flush",
            async move { reply_empty(reply, fs.flush(fh.0).await) },
        );
    }

    fn fsync(&self, req: &Request, _ino: INodeNo, fh: FileHandle, _datasync: bool, reply: ReplyEmpty) {
        let fs = self.fs.clone();
        self.spawn(
            req,
            "fsync",
            async move { reply_empty(reply, fs.flush(fh.0).await) },
        );
    }

    fn write(
        &self,
        req: &Request,
        _ino: INodeNo,
        fh: FileHandle,
        offset: u64,
        data: &[u8],
        _write_flags: fuser::WriteFlags,
        _flags: OpenFlags,
        _lock_owner: Option<LockOwner>,
        reply: fuser::ReplyWrite,
    ) {
        if let Some(result) = self.fs.try_write(fh.0, offset, data) {
            match result {
                Ok(n) => reply.written(n),
                Err(e) => reply.error(errno(&e)),
            }
            return;
        }
        let fs = self.fs.clone();
        let data = data.to_vec();
        self.spawn(req, "write", async move {
            match fs.write(fh.0, offset, &data).await {
                Ok(n) => reply.written(n),
                Err(e) => reply.error(errno(&e)),
            }
        });
    }

    fn opendir(&self, req: &Request, ino: INodeNo, _flags: OpenFlags, reply: ReplyOpen) {
        let fs = self.fs.clone();
        self.spawn(req, "opendir", async move {
            match fs.opendir(ino.0).await {
                Ok(handle) => reply.opened(FileHandle(handle), FopenFlags::empty()),
                Err(e) => reply.error(errno(&e)),
            }
        });
    }

    fn readdir(&self, _req: &Request, _ino: INodeNo, fh: FileHandle, offset: u64, mut reply: ReplyDirectory) {
        match self.fs.readdir(fh.0, offset) {
            Ok(entries) => {
                for (next, entry) in entries {
                    let kind = match entry.kind {
                        Kind::File => FileType::RegularFile,
                        Kind::Directory => FileType::Directory,
                    };
                    if reply.add(INodeNo(entry.ino), next, kind, &entry.name) {
                        break;
                    }
                }
                reply.ok();
            }
            Err(e) => reply.error(errno(&e)),
        }
    }

    fn releasedir(
        &self,
        _req: &Request,
        _ino: INodeNo,
        fh: FileHandle,
        _flags: OpenFlags,
        reply: ReplyEmpty,
    ) {
        self.fs.releasedir(fh.0);
        reply.ok();
    }

    fn statfs(&self, _req: &Request, _ino: INodeNo, reply: ReplyStatfs) {
        let usage = self.fs.cache_usage();
        let block = 4096u64;
        let total = usage.max_bytes / block;
        let free = usage.max_bytes.saturating_sub(usage.used_bytes) / block;
        reply.statfs(total, free, free, 0, 0, block as u32, 255, block as u32);
    }

    fn setattr(
        &self,
        req: &Request,
        ino: INodeNo,
        mode: Option<u32>,
        uid: Option<u32>,
        gid: Option<u32>,
        size: Option<u64>,
        atime: Option<fuser::TimeOrNow>,
        mtime: Option<fuser::TimeOrNow>,
        _ctime: Option<std::time::SystemTime>,
        _fh: Option<FileHandle>,
        _crtime: Option<std::time::SystemTime>,
        _chgtime: Option<std::time::SystemTime>,
        _bkuptime: Option<std::time::SystemTime>,
        _flags: Option<fuser::BsdFileFlags>,
        reply: ReplyAttr,
    ) {
        let changes = mode.is_some()
            || uid.is_some()
            || gid.is_some()
            || size.is_some()
            || atime.is_some()
            || mtime.is_some();
        if changes && let Err(e) = self.fs.check_writable("setattr") {
            return reply.error(errno(&e));
        }
        let fs = self.fs.clone();
        let ttl = self.ttl;
        self.spawn(req, "setattr", async move {
            // The size and the mtime are kept (the mtime as object metadata); mode, owner and atime are not
            // stored (objects have none).
            let mut result = match size {
                Some(size) => fs.set_size(ino.0, size).await,
                None => fs.getattr(ino.0).await,
            };
            if let (Ok(_), Some(mtime)) = (&result, mtime) {
                let mtime = match mtime {
                    fuser::TimeOrNow::SpecificTime(time) => time,
                    fuser::TimeOrNow::Now => std::time::SystemTime::now(),
                };
                result = fs.set_mtime(ino.0, mtime).await;
            }
            match result {
                Ok(attr) => reply.attr(&ttl, &file_attr(&attr)),
                Err(e) => reply.error(errno(&e)),
            }
        });
    }

    fn mkdir(
        &self,
        req: &Request,
        parent: INodeNo,
        name: &OsStr,
        _mode: u32,
        _umask: u32,
        reply: ReplyEntry,
    ) {
        let fs = self.fs.clone();
        let ttl = self.ttl;
        let name = name_of(name);
        self.spawn(req, "mkdir", async move {
            let result = match name {
                Ok(name) => fs.mkdir(parent.0, &name).await,
                Err(e) => Err(e),
            };
            match result {
                Ok(attr) => reply.entry(&ttl, &file_attr(&attr), Generation(0)),
                Err(e) => reply.error(errno(&e)),
            }
        });
    }

    fn unlink(&self, req: &Request, parent: INodeNo, name: &OsStr, reply: ReplyEmpty) {
        let fs = self.fs.clone();
        let name = name_of(name);
        self.spawn(req, "unlink", async move {
            let result = match name {
                Ok(name) => fs.unlink(parent.0, &name).await,
                Err(e) => Err(e),
            };
            reply_empty(reply, result)
        });
    }

    fn rmdir(&self, req: &Request, parent: INodeNo, name: &OsStr, reply: ReplyEmpty) {
        let fs = self.fs.clone();
        let name = name_of(name);
        self.spawn(req, "rmdir", async move {
            let result = match name {
                Ok(name) => fs.rmdir(parent.0, &name).await,
                Err(e) => Err(e),
            };
            reply_empty(reply, result)
        });
    }

    fn rename(
        &self,
        req: &Request,
        parent: INodeNo,
        name: &OsStr,
        newparent: INodeNo,
        newname: &OsStr,
        _flags: fuser::RenameFlags,
        reply: ReplyEmpty,
    ) {
        let fs = self.fs.clone();
        let names = name_of(name).and_then(|a| name_of(newname).map(|b| (a, b)));
        self.spawn(req, "rename", async move {
            let result = match names {
                Ok((name, newname)) => fs.rename(parent.0, &name, newparent.0, &newname).await,
                Err(e) => Err(e),
            };
            match result {
                Ok(()) => reply.ok(),
                Err(e) => {
                    tracing::warn!(error = %e, "rename");
                    reply.error(errno(&e));
                }
            }
        });
    }

    fn create(
        &self,
        req: &Request,
        parent: INodeNo,
        name: &OsStr,
        _mode: u32,
        _umask: u32,
        flags: i32,
        reply: fuser::ReplyCreate,
    ) {
        let fs = self.fs.clone();
        let ttl = self.ttl;
        let name = name_of(name);
        let exclusive = flags & libc::O_EXCL != 0;
        self.spawn(req, "create", async move {
            let result = match name {
                Ok(name) => fs.create(parent.0, &name, exclusive).await,
                Err(e) => Err(e),
            };
            match result {
                Ok((attr, handle)) => reply.created(
                    &ttl,
                    &file_attr(&attr),
                    Generation(0),
                    FileHandle(handle),
                    FopenFlags::empty(),
                ),
                Err(e) => reply.error(errno(&e)),
            }
        });
    }

    fn getxattr(&self, req: &Request, ino: INodeNo, name: &OsStr, size: u32, reply: fuser::ReplyXattr) {
        xattr::getxattr(self, req, ino.0, name, size, reply);
    }

    fn listxattr(&self, req: &Request, ino: INodeNo, size: u32, reply: fuser::ReplyXattr) {
        xattr::listxattr(self, req, ino.0, size, reply);
    }

    fn setxattr(
        &self,
        req: &Request,
        ino: INodeNo,
        name: &OsStr,
        value: &[u8],
        flags: i32,
        _position: u32,
        reply: ReplyEmpty,
    ) {
        xattr::setxattr(self, req, ino.0, name, value, flags, reply);
    }

    fn removexattr(&self, req: &Request, ino: INodeNo, name: &OsStr, reply: ReplyEmpty) {
        xattr::removexattr(self, req, ino.0, name, reply);
    }

    fn mknod(
        &self,
        _req: &Request,
        _parent: INodeNo,
        _name: &OsStr,
        _mode: u32,
        _umask: u32,
        _rdev: u32,
        reply: ReplyEntry,
    ) {
        refuse(&self.fs, "mknod", |e| reply.error(e));
    }
}

/// Answers a change with the core's verdict (EROFS on a read-only mount).
fn refuse(fs: &Fs, what: &'static str, reply: impl FnOnce(Errno)) {
    match fs.check_writable(what) {
        Err(e) => reply(errno(&e)),
        Ok(()) => reply(Errno::from_i32(libc::ENOTSUP)),
    }
}
