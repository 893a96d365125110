//! The read path through a real FUSE mount, over the local adapter and over SeaweedFS: bytes equal the
//! source at every block boundary and for a large file, random preads, concurrent readers under a cache bound
//! three times smaller than the data, a changed object read new after the TTL, EROFS on a read-only mount.
//!
//! The large file is the 300 MB (300,000,000 bytes: 72 blocks of 4 MiB, the last one partial).

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::os::unix::fs::FileExt as _;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use common::{
    Backend, CountingProxy, MIB, Options, TestMount, Tmpfs, bytes, errno, put, s3_store_at, s3_store_via,
    sha256, store,
};
use harness::{S3Server, dir_bytes, unique_name};

fn sizes_read_back(backend: Backend) {
    let test_store = store(backend);
    let block = Options::default().block_size;
    let sizes = [0, 1, block - 1, block, block + 1, 300_000_000];
    let mut expected = Vec::new();
    for (i, size) in sizes.iter().enumerate() {
        let data = bytes(*size, i as u64 + 1);
        put(
            &test_store.store,
            &format!("library/album/file-{size}.bin"),
            &data,
        );
        expected.push((format!("album/file-{size}.bin"), sha256(&data), *size));
    }
    let mount = TestMount::start(&test_store.store, &Options::default());
    let mut names: Vec<String> = std::fs::read_dir(mount.path("album"))
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    names.sort();
    let mut wanted: Vec<String> = expected
        .iter()
        .map(|(p, _, _)| p["album/".len()..].to_owned())
        .collect();
    wanted.sort();
    assert_eq!(names, wanted);
    for (path, hash, size) in &expected {
        assert_eq!(
            std::fs::metadata(mount.path(path)).unwrap().len(),
            *size,
            "{path}"
        );
        let started = Instant::now();
        let read = std::fs::read(mount.path(path)).unwrap();
        eprintln!(
            "{backend:?}: read {path} ({size} B) cold in {:?}",
            started.elapsed()
        );
        assert_eq!(&sha256(&read), hash, "{path}");
        // A second read comes from the cache and is still right.
        assert_eq!(
            &sha256(&std::fs::read(mount.path(path)).unwrap()),
            hash,
            "{path} warm"
        );
    }
    assert!(std::fs::metadata(mount.path("album")).unwrap().is_dir());
    assert_eq!(
        errno(&std::fs::metadata(mount.path("album/missing")).unwrap_err()),
        libc::ENOENT
    );
}

fn random_preads(backend: Backend) {
    let test_store = store(backend);
    let data = bytes(10 * MIB + 12345, 42);
    put(&test_store.store, "library/random.bin", &data);
    let options = Options {
        block_size: MIB,
        ..Options::default()
    };
    let mount = TestMount::start(&test_store.store, &options);
    let file = std::fs::File::open(mount.path("random.bin")).unwrap();
    let mut state = 0x1234_5678_u64;
    for _ in 0..300 {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        let offset = state % data.len() as u64;
        let len = (state >> 20) % (3 * MIB) + 1;
        let mut buffer = vec![0u8; len as usize];
        let n = file.read_at(&mut buffer, offset).unwrap();
        let end = (offset + len).min(data.len() as u64) as usize;
        assert_eq!(n, end - offset as usize, "short read at {offset}+{len}");
        assert_eq!(
            &buffer[..n],
            &data[offset as usize..end],
            "bytes at {offset}+{len}"
        );
    }
    // Past the end: nothing.
    let mut buffer = [0u8; 16];
    assert_eq!(file.read_at(&mut buffer, data.len() as u64 + 10).unwrap(), 0);
}

fn concurrent_readers_stay_under_the_bound(backend: Backend) {
    let test_store = store(backend);
    let bound = 24 * MIB;
    let mut files = Vec::new();
    for i in 0..8u64 {
        let data = bytes(9 * MIB, 100 + i);
        put(&test_store.store, &format!("library/big/{i}.bin"), &data);
        files.push((format!("big/{i}.bin"), sha256(&data)));
    }
    let options = Options {
        dirty_budget: 0,
        cache_max_size: bound,
        block_size: MIB,
        memory_budget: 32 * MIB,
        ..Options::default()
    };
    // The cache directory is a tmpfs of its own so its use can be sampled at one instant.
    let tmpfs = Arc::new(Tmpfs::mount(2 * bound));
    let dirs = tempfile::tempdir().unwrap();
    let mount = TestMount::start_with_cache(&test_store.store, &options, dirs, tmpfs.path.join("cache"));
    let done = Arc::new(AtomicBool::new(false));
    let peak = Arc::new(AtomicU64::new(0));
    let samples = Arc::new(AtomicU64::new(0));
    let sampler = {
        let (done, peak, samples, tmpfs) = (done.clone(), peak.clone(), samples.clone(), tmpfs.clone());
        std::thread::spawn(move || {
            while !done.load(Ordering::Relaxed) {
                peak.fetch_max(tmpfs.used(), Ordering::Relaxed);
                samples.fetch_add(1, Ordering::Relaxed);
                std::thread::sleep(Duration::from_millis(2));
            }
        })
    };
    let started = Instant::now();
    let readers: Vec<_> = files
        .iter()
        .cloned()
        .map(|(path, hash)| {
            let full = mount.path(&path);
            std::thread::spawn(move || {
                for round in 0..2 {
                    let read = std::fs::read(&full).unwrap();
                    assert_eq!(sha256(&read), hash, "{path} round {round}");
                }
            })
        })
        .collect();
    for reader in readers {
        reader.join().unwrap();
    }
    done.store(true, Ordering::Relaxed);
    sampler.join().unwrap();
    eprintln!(
        "{backend:?}: 8 readers x 2 x 9 MiB in {:?}; cache peak {} of {bound} bytes over {} samples",
        started.elapsed(),
        peak.load(Ordering::Relaxed),
        samples.load(Ordering::Relaxed)
    );
    assert!(
        peak.load(Ordering::Relaxed) <= bound,
        "cache dir peaked at {} > {bound}",
        peak.load(Ordering::Relaxed)
    );
    assert!(
        peak.load(Ordering::Relaxed) > bound / 2,
        "the cache was barely used: the test proves nothing"
    );
    assert!(
        samples.load(Ordering::Relaxed) >= 5,
        "too few samples to say anything"
    );
    assert!(dir_bytes(&mount.cache_dir) <= bound);
    drop(mount);
}

fn changed_object_is_read_new_after_the_ttl(backend: Backend) {
    let test_store = store(backend);
    put(&test_store.store, "library/doc.txt", b"version one");
    let options = Options {
        metadata_ttl: Duration::from_secs(1),
        ..Options::default()
    };
    let mount = TestMount::start(&test_store.store, &options);
    assert_eq!(std::fs::read(mount.path("doc.txt")).unwrap(), b"version one");
    put(&test_store.store, "library/doc.txt", b"version two, longer");
    std::thread::sleep(Duration::from_millis(1500));
    assert_eq!(
        std::fs::read(mount.path("doc.txt")).unwrap(),
        b"version two, longer"
    );
    // A new object appears in the listing after the TTL too.
    put(&test_store.store, "library/new.txt", b"new");
    std::thread::sleep(Duration::from_millis(1500));
    assert_eq!(std::fs::read(mount.path("new.txt")).unwrap(), b"new");
}

fn read_only_refuses_changes(backend: Backend) {
    let test_store = store(backend);
    put(&test_store.store, "library/keep.txt", b"keep");
    put(&test_store.store, "library/dir/inner.txt", b"inner");
    let mount = TestMount::start(
        &test_store.store,
        &Options {
            read_only: true,
            ..Options::default()
        },
    );
    let erofs = |result: std::io::Result<()>, what: &str| {
        assert_eq!(errno(&result.unwrap_err()), libc::EROFS, "{what}");
    };
    erofs(std::fs::write(mount.path("new.txt"), b"x"), "create");
    erofs(
        std::fs::OpenOptions::new()
            .write(true)
            .open(mount.path("keep.txt"))
            .map(drop),
        "open for write",
    );
    erofs(std::fs::create_dir(mount.path("newdir")), "mkdir");
    {
        use std::os::unix::fs::PermissionsExt as _;
        erofs(
            std::fs::set_permissions(mount.path("keep.txt"), std::fs::Permissions::from_mode(0o600)),
            "chmod",
        );
    }
    erofs(std::fs::remove_file(mount.path("keep.txt")), "unlink");
    erofs(std::fs::remove_dir(mount.path("dir")), "rmdir");
    erofs(
        std::fs::rename(mount.path("keep.txt"), mount.path("moved.txt")),
        "rename",
    );
    assert_eq!(std::fs::read(mount.path("keep.txt")).unwrap(), b"keep");
}

fn a_restart_keeps_the_cache(backend: Backend) {
    let test_store = store(backend);
    let data = bytes(6 * MIB, 7);
    put(&test_store.store, "library/kept.bin", &data);
    let mount = TestMount::start(&test_store.store, &Options::default());
    assert_eq!(
        sha256(&std::fs::read(mount.path("kept.bin")).unwrap()),
        sha256(&data)
    );
    let blocks = mount.mount.as_ref().unwrap().fs().cache_usage().blocks;
    assert_eq!(blocks, 2);
    let (dirs, cache_dir) = mount.unmount();
    let started = Instant::now();
    let mount = TestMount::start_with_cache(&test_store.store, &Options::default(), dirs, cache_dir);
    let ready = started.elapsed();
    assert_eq!(mount.mount.as_ref().unwrap().fs().cache_usage().blocks, blocks);
    assert!(ready < Duration::from_secs(2), "ready after {ready:?}");
    assert_eq!(
        sha256(&std::fs::read(mount.path("kept.bin")).unwrap()),
        sha256(&data)
    );
}

/// A second mount over a cache directory a live mount holds is refused with the reason, and the first
/// mount goes on serving; once the first one unmounts, the cache directory can be mounted again.
#[test]
fn a_cache_directory_in_use_is_refused() {
    let test_store = store(Backend::Local);
    put(&test_store.store, "library/a.txt", b"first");
    let first = TestMount::start(&test_store.store, &Options::default());
    let second_dirs = tempfile::tempdir().unwrap();
    let second_mountpoint = second_dirs.path().join("mnt");
    std::fs::create_dir_all(&second_mountpoint).unwrap();
    let refused = mount::Mount::start(
        common::mount_config(
            &Options::default(),
            second_mountpoint.clone(),
            first.cache_dir.clone(),
        ),
        test_store.store.clone(),
    );
    let message = refused.expect_err("a second mount on the same cache").to_string();
    assert!(
        message.contains("is in use by another mount")
            && message.contains(&first.cache_dir.display().to_string()),
        "{message}"
    );
    assert!(
        !std::fs::read_to_string("/proc/self/mountinfo")
            .unwrap()
            .contains(&second_mountpoint.display().to_string())
    );
    assert_eq!(std::fs::read(first.path("a.txt")).unwrap(), b"first");
    let (dirs, cache_dir) = first.unmount();
    let again = TestMount::start_with_cache(&test_store.store, &Options::default(), dirs, cache_dir);
    assert_eq!(std::fs::read(again.path("a.txt")).unwrap(), b"first");
}

/// An unmount while another process holds a file open for a moment more waits for it to close, instead of
/// failing with EBUSY (a child forked by any thread of a process holds its open files until it execs).
#[test]
fn unmount_waits_for_a_file_held_open_for_a_moment() {
    use std::io::BufRead as _;
    let test_store = store(Backend::Local);
    put(&test_store.store, "library/held.txt", b"held");
    let mount = TestMount::start(&test_store.store, &Options::default());
    let mountpoint = mount.mountpoint.clone();
    let mut holder = std::process::Command::new("sh")
        .args(["-c", "exec 3<\"$1\"; echo opened; sleep 0.5", "sh"])
        .arg(mount.path("held.txt"))
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    std::io::BufReader::new(holder.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    assert_eq!(line.trim(), "opened");
    let started = Instant::now();
    let _dirs = mount.unmount();
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "{:?}",
        started.elapsed()
    );
    assert!(holder.wait().unwrap().success());
    let mounts = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    assert!(
        !mounts.contains(&format!(" {} ", mountpoint.display())),
        "still mounted"
    );
}

/// A read landing 3 MiB into a 4 MiB block the cache does not have is answered from a GET that starts where
/// it landed; the block's first 3 MiB come after, with a GET of their own, and the block is then whole: read
/// back from its start, it costs no further GET of it. Ranges as seen on the wire (a proxy in front of SeaweedFS).
#[test]
fn a_read_landing_in_a_block_fetches_from_there_first() {
    let server = S3Server::shared();
    let namespace = unique_name("land");
    let data = bytes(8 * MIB, 7);
    put(&s3_store_at(server, &namespace), "library/clip.mov", &data);
    let proxy = CountingProxy::start(&server.endpoint);
    let mount = TestMount::start(
        &s3_store_via(server, &proxy.endpoint, &namespace),
        &Options::default(),
    );
    let file = std::fs::File::open(mount.path("clip.mov")).unwrap();

    let landed = 3 * MIB + 12_345;
    let mut buffer = vec![0u8; 64 << 10];
    assert_eq!(file.read_at(&mut buffer, landed).unwrap(), buffer.len());
    assert_eq!(
        &buffer[..],
        &data[landed as usize..landed as usize + buffer.len()]
    );
    let first = proxy.ranges().first().cloned().expect("no ranged GET");
    assert!(
        (3 * MIB..=landed).contains(&first.start) && first.end >= 4 * MIB,
        "the first GET was {first:?}, not from where the read landed"
    );

    // The head comes next, by itself, and then the block is whole.
    let deadline = Instant::now() + Duration::from_secs(10);
    while !proxy.ranges().contains(&(0..first.start)) {
        assert!(
            Instant::now() < deadline,
            "no GET of the head: {:?}",
            proxy.ranges()
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    let mut block = vec![0u8; 4 * MIB as usize];
    assert_eq!(file.read_at(&mut block, 0).unwrap(), block.len());
    assert_eq!(&block[..], &data[..4 * MIB as usize]);
    let of_the_block: Vec<_> = proxy.ranges().into_iter().filter(|r| r.start < 4 * MIB).collect();
    assert_eq!(
        of_the_block,
        [first.clone(), 0..first.start],
        "the block was fetched again"
    );
}

macro_rules! on_both_backends {
    ($($test:ident),* $(,)?) => {
        mod local_adapter { $( #[test] fn $test() { super::$test(super::Backend::Local) } )* }
        mod s3_adapter { $( #[test] fn $test() { super::$test(super::Backend::S3) } )* }
    };
}

on_both_backends!(
    sizes_read_back,
    random_preads,
    concurrent_readers_stay_under_the_bound,
    changed_object_is_read_new_after_the_ttl,
    read_only_refuses_changes,
    a_restart_keeps_the_cache,
);

/// A store that stops answering gives EIO within the request timeout, never a hang.
#[test]
fn store_stopped_gives_eio_within_the_timeout() {
    let mut server = harness::S3Server::start().unwrap();
    let store = common::s3_store(&server);
    put(&store, "library/a.bin", &bytes(MIB, 1));
    put(&store, "library/b.bin", &bytes(MIB, 2));
    let options = Options {
        metadata_ttl: Duration::from_secs(1),
        request_timeout: Duration::from_secs(5),
        ..Options::default()
    };
    let mount = TestMount::start(&store, &options);
    assert_eq!(std::fs::read(mount.path("a.bin")).unwrap().len() as u64, MIB);
    server.stop();
    std::thread::sleep(Duration::from_millis(1100));
    let started = Instant::now();
    let error = std::fs::read(mount.path("b.bin")).unwrap_err();
    let elapsed = started.elapsed();
    eprintln!("store down: {error} after {elapsed:?}");
    assert_eq!(errno(&error), libc::EIO, "{error}");
    assert!(elapsed < Duration::from_secs(20), "EIO only after {elapsed:?}");
}
