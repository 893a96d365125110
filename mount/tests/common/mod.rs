//! Helpers of the mount tests: a store per backend (local directory or a real SeaweedFS), a mount that is
//! always unmounted (also when the test panics), hashing and cache-directory sampling.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::time::Duration;

use bytes::Bytes;
use harness::{S3Server, unique_name};
use mount::fs::FsConfig;
use mount::{Mount, MountConfig};
use sha2::{Digest as _, Sha256};
use storage::{BackendConfig, LocalConfig, PutOptions, S3Config, Secret, StorageConfig, StorageKey, Store};

mod process;
#[allow(unused_imports)]
pub use process::{ProcessMount, StoreAt};

pub const MIB: u64 = 1024 * 1024;

/// Which adapter a test runs over.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Local,
    S3,
}

/// A store for one test, with what keeps it alive.
pub struct TestStore {
    pub store: Store,
    _root: Option<tempfile::TempDir>,
}

impl TestStore {
    /// The local backend's root directory (`None` on S3).
    pub fn local_root(&self) -> Option<PathBuf> {
        self._root.as_ref().map(|r| r.path().join("blobs"))
    }
}

pub fn store(backend: Backend) -> TestStore {
    match backend {
        Backend::Local => {
            let root = tempfile::tempdir().unwrap();
            let config = StorageConfig {
                backend: BackendConfig::Local(LocalConfig {
                    root: root.path().join("blobs"),
                    presign_secret: Secret::new("mount-test-secret-0123456789abcdef".into()),
                    public_url: "http://127.0.0.1:1".parse().unwrap(),
                }),
                presign: Default::default(),
            };
            TestStore {
                store: storage::create_object_store(&config).unwrap(),
                _root: Some(root),
            }
        }
        Backend::S3 => TestStore {
            store: s3_store(S3Server::shared()),
            _root: None,
        },
    }
}

/// A store over `server`, in a namespace of its own.
pub fn s3_store(server: &S3Server) -> Store {
    s3_store_at(server, &unique_name("mount"))
}

/// A store over `server` under `prefix`.
pub fn s3_store_at(server: &S3Server, prefix: &str) -> Store {
    s3_store_via(server, &server.endpoint, prefix)
}

/// A store over `server` under `prefix`, reached at `endpoint` (a [`CountingProxy`] in front of it).
pub fn s3_store_via(server: &S3Server, endpoint: &str, prefix: &str) -> Store {
    let config = S3Config {
        endpoint: Some(endpoint.parse().unwrap()),
        region: server.region.clone(),
        bucket: server.bucket.clone(),
        access_key_id: server.access_key_id.clone(),
        secret_access_key: Secret::new(server.secret_access_key.clone()),
        prefix: Some(StorageKey::parse(prefix).unwrap()),
        path_style: true,
    };
    storage::create_s3_store(&config, Default::default()).unwrap()
}

/// Runs store calls from a synchronous test.
pub fn block_on<F: std::future::Future>(future: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(future)
}

/// The object's bytes, or `None` when there is none.
pub fn get(store: &Store, key: &str) -> Option<Vec<u8>> {
    let key = StorageKey::parse(key).unwrap();
    match block_on(store.get_bytes(&key)) {
        Ok(bytes) => Some(bytes.to_vec()),
        Err(storage::Error::NotFound { .. }) => None,
        Err(e) => panic!("get {key}: {e}"),
    }
}

/// Keys under `prefix`, sorted.
pub fn keys(store: &Store, prefix: &str) -> Vec<String> {
    use futures::TryStreamExt as _;
    let prefix = StorageKey::parse(prefix).unwrap();
    let mut keys: Vec<String> = block_on(
        store
            .list(Some(&prefix))
            .map_ok(|m| m.key.to_string())
            .try_collect(),
    )
    .unwrap();
    keys.sort();
    keys
}

impl TestMount {
    /// Waits until every write of the mount is in the store.
    pub fn flush(&self) {
        let fs = self.mount.as_ref().unwrap().fs().clone();
        block_on(fs.flush_all(Duration::from_secs(60))).unwrap();
    }
}

pub fn put(store: &Store, key: &str, bytes: &[u8]) {
    let key = StorageKey::parse(key).unwrap();
    block_on(store.put(&key, Bytes::copy_from_slice(bytes), &PutOptions::default())).unwrap();
}

/// Deterministic pseudo-random bytes (xorshift), different per seed.
pub fn bytes(len: u64, seed: u64) -> Vec<u8> {
    let mut state = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    let mut out = Vec::with_capacity(len as usize);
    while (out.len() as u64) < len {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        out.extend_from_slice(&state.to_le_bytes());
    }
    out.truncate(len as usize);
    out
}

pub fn sha256(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// SHA-256 of a file, read in a stream (for files too large to hold twice).
pub fn file_sha256(path: &Path) -> String {
    let mut hasher = Sha256::new();
    std::io::copy(&mut std::fs::File::open(path).unwrap(), &mut hasher).unwrap();
    hex::encode(hasher.finalize())
}

/// SHA-256 of an object, read in a stream; `None` when there is none.
pub fn object_sha256(store: &Store, key: &str) -> Option<String> {
    use futures::StreamExt as _;
    let key = StorageKey::parse(key).unwrap();
    block_on(async {
        let object = match store.get(&key, None).await {
            Ok(object) => object,
            Err(storage::Error::NotFound { .. }) => return None,
            Err(e) => panic!("get {key}: {e}"),
        };
        let mut hasher = Sha256::new();
        let mut body = object.body;
        while let Some(chunk) = body.next().await {
            hasher.update(chunk.unwrap());
        }
        Some(hex::encode(hasher.finalize()))
    })
}

/// Settings of a test mount.
#[derive(Debug, Clone)]
pub struct Options {
    pub prefix: Option<&'static str>,
    pub read_only: bool,
    pub cache_max_size: u64,
    pub block_size: u64,
    pub memory_budget: u64,
    pub metadata_ttl: Duration,
    pub request_timeout: Duration,
    pub dirty_budget: u64,
    pub upload_delay: Duration,
    pub rename_dir_limit: u64,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            prefix: Some("library"),
            read_only: true,
            cache_max_size: 512 * MIB,
            block_size: 4 * MIB,
            memory_budget: 64 * MIB,
            metadata_ttl: Duration::from_secs(60),
            request_timeout: Duration::from_secs(10),
            dirty_budget: 128 * MIB,
            upload_delay: Duration::ZERO,
            rename_dir_limit: 1000,
        }
    }
}

/// The mount configuration the tests use: `options` over a mountpoint and a cache directory.
pub fn mount_config(options: &Options, mountpoint: PathBuf, cache_dir: PathBuf) -> MountConfig {
    MountConfig {
        mountpoint,
        fs: FsConfig {
            prefix: options.prefix.map(|p| StorageKey::parse(p).unwrap()),
            read_only: options.read_only,
            metadata_ttl: options.metadata_ttl,
            block_size: options.block_size,
            memory_budget: options.memory_budget,
            request_timeout: options.request_timeout,
            dirty_budget: options.dirty_budget,
            upload_delay: options.upload_delay,
            rename_dir_limit: options.rename_dir_limit,
            uid: 0,
            gid: 0,
        },
        cache_dir,
        cache_max_size: options.cache_max_size,
        fuse_threads: 2,
        allow_other: false,
        // The default: the kernel's own read-ahead.
        kernel_read_ahead: 0,
    }
}

/// A mount that is unmounted on drop, with `fusermount3 -u -z` / `umount -l` as a last resort.
pub struct TestMount {
    pub mount: Option<Mount>,
    pub mountpoint: PathBuf,
    pub cache_dir: PathBuf,
    _dirs: tempfile::TempDir,
}

impl TestMount {
    pub fn start(store: &Store, options: &Options) -> TestMount {
        let dirs = tempfile::tempdir().unwrap();
        let cache_dir = dirs.path().join("cache");
        Self::start_with_cache(store, options, dirs, cache_dir)
    }

    pub fn start_with_cache(
        store: &Store,
        options: &Options,
        dirs: tempfile::TempDir,
        cache_dir: PathBuf,
    ) -> TestMount {
        let mountpoint = dirs.path().join("mnt");
        std::fs::create_dir_all(&mountpoint).unwrap();
        let mount = Mount::start(
            mount_config(options, mountpoint.clone(), cache_dir.clone()),
            store.clone(),
        )
        .unwrap();
        TestMount {
            mount: Some(mount),
            mountpoint,
            cache_dir,
            _dirs: dirs,
        }
    }

    pub fn path(&self, relative: &str) -> PathBuf {
        self.mountpoint.join(relative)
    }

    /// Unmounts and hands back the directories (to mount again over the same cache).
    pub fn unmount(mut self) -> (tempfile::TempDir, PathBuf) {
        if let Some(mount) = self.mount.take() {
            mount.unmount().unwrap();
        }
        let dirs = std::mem::replace(&mut self._dirs, tempfile::tempdir().unwrap());
        (dirs, self.cache_dir.clone())
    }
}

impl Drop for TestMount {
    fn drop(&mut self) {
        if let Some(mount) = self.mount.take() {
            drop(mount);
        }
        force_unmount(&self.mountpoint);
    }
}

/// Detaches whatever is still mounted at `path`; errors ignored (nothing mounted is the usual case).
pub fn force_unmount(path: &Path) {
    let mounted = std::fs::read_to_string("/proc/self/mountinfo")
        .map(|m| m.contains(&path.display().to_string()))
        .unwrap_or(false);
    if mounted {
        let _ = std::process::Command::new("fusermount3")
            .arg("-u")
            .arg("-z")
            .arg(path)
            .status();
        let _ = std::process::Command::new("umount").arg("-l").arg(path).status();
    }
}

/// A tmpfs of its own, so the bytes used in it can be read at one instant (`statfs` via `df`), which a
/// directory walk cannot do while blocks are evicted and written. Unmounted on drop.
pub struct Tmpfs {
    pub path: PathBuf,
    _dir: tempfile::TempDir,
}

impl Tmpfs {
    pub fn mount(size: u64) -> Tmpfs {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("tmpfs");
        std::fs::create_dir_all(&path).unwrap();
        let status = std::process::Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(&path)
            .status()
            .unwrap();
        assert!(status.success(), "mounting a tmpfs (tests run as root)");
        Tmpfs { path, _dir: dir }
    }

    /// Bytes in use right now, from one `statfs`.
    pub fn used(&self) -> u64 {
        let output = std::process::Command::new("df")
            .args(["-B1", "--output=used"])
            .arg(&self.path)
            .output()
            .unwrap();
        String::from_utf8_lossy(&output.stdout)
            .lines()
            .nth(1)
            .unwrap()
            .trim()
            .parse()
            .unwrap()
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount")
            .arg("-l")
            .arg(&self.path)
            .status();
    }
}

/// The errno of an I/O error.
pub fn errno(error: &std::io::Error) -> i32 {
    error.raw_os_error().unwrap_or(-1)
}

/// Store requests seen by a [`CountingProxy`], by kind.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Requests {
    /// GET with `list-type` (a LIST page).
    pub list: u64,
    pub head: u64,
    /// GET of an object (whole or ranged).
    pub get: u64,
    /// PUT, POST, DELETE.
    pub other: u64,
}

impl Requests {
    pub fn total(&self) -> u64 {
        self.list + self.head + self.get + self.other
    }
}

/// A TCP proxy in front of the S3 endpoint that counts the HTTP requests going through it, so a test can
/// say how many requests the mount made (counted on the wire, independently of the mount's code). Request
/// lines are recognised as lines ending in ` HTTP/1.1`, also right after a body; the bodies the tests send
/// (random bytes) contain no such line.
pub struct CountingProxy {
    pub endpoint: String,
    seen: std::sync::Arc<std::sync::Mutex<Seen>>,
}

/// What a [`CountingProxy`] has seen: the counts, and the `Range` header of every ranged GET, in order.
#[derive(Debug, Default)]
struct Seen {
    counts: Requests,
    ranges: Vec<std::ops::Range<u64>>,
}

impl CountingProxy {
    pub fn start(upstream: &str) -> CountingProxy {
        use std::io::{Read as _, Write as _};
        use std::net::{TcpListener, TcpStream};
        use std::sync::{Arc, Mutex};
        let upstream = upstream
            .trim_start_matches("http://")
            .trim_end_matches('/')
            .to_owned();
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let endpoint = format!("http://{}", listener.local_addr().unwrap());
        let seen = Arc::new(Mutex::new(Seen::default()));
        let shared = Arc::clone(&seen);
        std::thread::spawn(move || {
            for client in listener.incoming() {
                let Ok(mut client) = client else { continue };
                let Ok(mut server) = TcpStream::connect(&upstream) else {
                    continue;
                };
                let (mut client_back, mut server_back) =
                    (client.try_clone().unwrap(), server.try_clone().unwrap());
                std::thread::spawn(move || {
                    let _ = std::io::copy(&mut server_back, &mut client_back);
                    let _ = client_back.shutdown(std::net::Shutdown::Both);
                });
                let seen = Arc::clone(&shared);
                std::thread::spawn(move || {
                    let mut line = Vec::new();
                    let mut buffer = vec![0u8; 64 * 1024];
                    loop {
                        let n = match client.read(&mut buffer) {
                            Ok(0) | Err(_) => break,
                            Ok(n) => n,
                        };
                        for &byte in &buffer[..n] {
                            if byte == b'\n' {
                                count_request_line(&line, &seen);
                                line.clear();
                            } else {
                                // The tail of a line: a request line follows a body with no newline.
                                if line.len() >= 8192 {
                                    line.drain(..4096);
                                }
                                line.push(byte);
                            }
                        }
                        if server.write_all(&buffer[..n]).is_err() {
                            break;
                        }
                    }
                    let _ = server.shutdown(std::net::Shutdown::Both);
                });
            }
        });
        CountingProxy { endpoint, seen }
    }

    /// The requests so far.
    pub fn requests(&self) -> Requests {
        self.seen.lock().unwrap().counts
    }

    /// The byte ranges of the ranged GETs so far, in the order they were sent.
    pub fn ranges(&self) -> Vec<std::ops::Range<u64>> {
        self.seen.lock().unwrap().ranges.clone()
    }
}

fn count_request_line(line: &[u8], seen: &std::sync::Mutex<Seen>) {
    let line = String::from_utf8_lossy(line);
    let line = line.trim_end_matches('\r');
    if let Some(range) = line.to_ascii_lowercase().strip_prefix("range: bytes=") {
        if let Some((start, end)) = range.split_once('-')
            && let (Ok(start), Ok(end)) = (start.parse::<u64>(), end.parse::<u64>())
        {
            seen.lock().unwrap().ranges.push(start..end + 1);
        }
        return;
    }
    if !line.ends_with(" HTTP/1.1") {
        return;
    }
    // A request line can follow the end of the previous request's body (which has no newline of its own):
    // the method is the last one before the path.
    let start = ["GET /", "HEAD /", "PUT /", "POST /", "DELETE /"]
        .iter()
        .filter_map(|m| line.rfind(m))
        .max()
        .unwrap_or(0);
    let line = &line[start..];
    let counts = &mut seen.lock().unwrap().counts;
    match line.split(' ').next() {
        Some("GET") if line.contains("list-type=") => counts.list += 1,
        Some("GET") => counts.get += 1,
        Some("HEAD") => counts.head += 1,
        Some("PUT" | "POST" | "DELETE") => counts.other += 1,
        _ => {}
    }
}
