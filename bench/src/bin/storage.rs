//! Storage port benchmark: a streamed put then get of one large file through `storage::Store`, next to `cp`
//! (local adapter) and `rclone copyto` (S3 adapter, the same SeaweedFS), alternating, plus presign throughput.
//!
//! `storage` runs the full benchmark (2 GiB, 6 runs); `storage --small` the CI mode (64 MiB, 2 runs). Our side
//! runs in a child process built from the environment by `storage::default_store()`, so its peak RSS is
//! measured alone.
//!
//! Every get writes a destination that does not exist yet, and its bytes are compared with the source after
//! the run: `rclone copyto` onto an existing file of the same size and content only hashes the local file and
//! touches its modification time ("Transferred: 0 B"), which once passed here for a download. Every timed step
//! starts after a `sync`, so the write-back of one side's bytes is not charged to the next side, with its
//! local input file just read, so neither side pays a disk read the other did not, and the side that goes
//! first alternates from run to run (an even number of runs gives each side the first place as often).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result, bail};
use bench::{ChildReport, Row, Sample, report, time_child, time_command};
use clap::{Parser, Subcommand};
use storage::{PutOptions, StorageKey};

#[derive(Parser)]
struct Cli {
    #[command(subcommand)]
    child: Option<Child>,
    /// CI mode: a small file and two runs, so the benchmark cannot rot.
    #[arg(long)]
    small: bool,
    /// Size of the file moved (e.g. 2GiB).
    #[arg(long)]
    size: Option<String>,
    /// Runs of each side (even, so each side goes first as often).
    #[arg(long)]
    runs: Option<usize>,
}

#[derive(Subcommand)]
enum Child {
    /// Streams a file into the store configured by the environment.
    Put { src: PathBuf, key: String },
    /// Streams an object from the store configured by the environment into a file, in ranged parts
    /// (`Store::download_to_file`).
    Get {
        key: String,
        dst: PathBuf,
        /// Ranged streams at once.
        #[arg(long, default_value_t = 4)]
        streams: usize,
    },
    /// Reads an object with one plain `Store::get` and writes the stream, in order, into a file: what a
    /// consumer of the streamed get (the server's blob route, a worker) does.
    Stream { key: String, dst: PathBuf },
}

fn main() -> Result<()> {
    let cli = Cli::parse();
    if let Some(child) = cli.child {
        return run_child(child);
    }
    let (work, src, size) = bench::source_file("storage", cli.size.as_deref(), cli.small)?;
    let runs = cli.runs.unwrap_or(if cli.small { 2 } else { 6 });

    let mut rows = Vec::new();
    rows.extend(local(work.path(), &src, size, runs)?);
    rows.extend(s3(work.path(), &src, size, runs)?);
    rows.extend(presign(if cli.small { 2_000 } else { 50_000 })?);
    report("storage: streamed put/get and presign", &rows);
    Ok(())
}

fn run_child(child: Child) -> Result<()> {
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    runtime.block_on(async {
        let store = storage::default_store()?;
        match child {
            Child::Put { src, key } => {
                let key = StorageKey::parse(key)?;
                let file = std::fs::File::open(&src)?;
                let len = file.metadata()?.len();
                let body = file_stream(file);
                let options = PutOptions {
                    size_hint: Some(len),
                    ..Default::default()
                };
                let receipt = store.put_stream(&key, body, &options).await?;
                if receipt.size != len {
                    bail!("stored {} bytes of {len}", receipt.size);
                }
            }
            Child::Get { key, dst, streams } => {
                // Four ranged streams, each writing its part of the file, as rclone's multi-thread
                // download does.
                let key = StorageKey::parse(key)?;
                store.download_to_file(&key, &dst, streams).await?;
            }
            Child::Stream { key, dst } => {
                let key = StorageKey::parse(key)?;
                let object = store.get(&key, None).await?;
                let expected = object.range.end - object.range.start;
                let written = write_stream(object.body, &dst).await?;
                if written != expected {
                    bail!("wrote {written} bytes of {expected}");
                }
            }
        }
        anyhow::Ok(())
    })?;
    ChildReport::print_own();
    Ok(())
}

/// The file as a stream of 128 KiB chunks (`cp`'s buffer size), read ahead on a blocking thread: each byte is
/// copied once, from the page cache into the chunk that `put_stream` hashes and writes. (`tokio::fs::File`
/// behind a `ReaderStream` copies twice and reads only when polled, so reading would not overlap hashing.)
fn file_stream(file: std::fs::File) -> impl futures::Stream<Item = std::io::Result<bytes::Bytes>> + Send {
    use std::io::Read as _;
    const CHUNK: usize = 128 * 1024;
    let (sender, mut receiver) = tokio::sync::mpsc::channel(8);
    tokio::task::spawn_blocking(move || {
        let mut file = file;
        loop {
            let mut chunk = Vec::with_capacity(CHUNK);
            let item = match (&mut file).take(CHUNK as u64).read_to_end(&mut chunk) {
                Ok(0) => return,
                Ok(_) => Ok(bytes::Bytes::from(chunk)),
                Err(e) => Err(e),
            };
            let failed = item.is_err();
            if sender.blocking_send(item).is_err() || failed {
                return;
            }
        }
    });
    futures::stream::poll_fn(move |cx| receiver.poll_recv(cx))
}

/// Writes a stream of chunks into a new file on a thread of its own (a `std::fs::File`, one `write` per chunk),
/// so writing overlaps receiving. Returns the bytes written.
async fn write_stream(
    mut body: futures::stream::BoxStream<'static, storage::Result<bytes::Bytes>>,
    dst: &Path,
) -> Result<u64> {
    use futures::StreamExt as _;
    use std::io::Write as _;
    let (sender, mut receiver) = tokio::sync::mpsc::channel::<bytes::Bytes>(16);
    let mut file = std::fs::File::create(dst)?;
    let writer = tokio::task::spawn_blocking(move || {
        let mut written = 0u64;
        while let Some(chunk) = receiver.blocking_recv() {
            file.write_all(&chunk)?;
            written += chunk.len() as u64;
        }
        std::io::Result::Ok(written)
    });
    while let Some(chunk) = body.next().await {
        if sender.send(chunk?).await.is_err() {
            break;
        }
    }
    drop(sender);
    Ok(writer.await??)
}

fn local(work: &Path, src: &Path, size: u64, runs: usize) -> Result<Vec<Row>> {
    let root = work.join("local-store");
    let envs = vec![
        ("IPHOTO_STORAGE_BACKEND".to_owned(), "local".to_owned()),
        ("IPHOTO_STORAGE_LOCAL_PATH".to_owned(), root.display().to_string()),
        (
            "IPHOTO_PRESIGN_SECRET".to_owned(),
            "benchmark-secret-benchmark-secret-0123".to_owned(),
        ),
    ];
    let copy_dst = work.join("cp-copy.bin");
    let got = work.join("got.bin");
    let (mut put_ours, mut put_cp, mut get_ours, mut get_cp) = (vec![], vec![], vec![], vec![]);
    let mut hash_only = vec![];
    let got_arg = got.display().to_string();
    for run in 0..runs {
        let key = format!("bench/run{run}/original.bin");
        let stored = root.join(&key);
        let (ours, peer) = both(
            run,
            || {
                settle()?;
                warm(src)?;
                let sample = time_child(&args(&["put", &src.display().to_string(), &key]), &envs)?;
                same_content(&stored, src)?;
                Ok(sample)
            },
            || {
                settle()?;
                warm(src)?;
                let sample = time_command(Command::new("cp").arg(src).arg(&copy_dst))?;
                same_content(&copy_dst, src)?;
                Ok(sample)
            },
        )?;
        put_ours.push(ours);
        put_cp.push(peer);
        // The floor of any put that hashes: reading the file and hashing it, nothing written, with
        // OpenSSL's SHA-NI code (as fast as the `sha2` crate's here). Skipped where openssl is missing.
        settle()?;
        warm(src)?;
        if let Ok(sample) = time_command(Command::new("openssl").args(["dgst", "-sha256"]).arg(src)) {
            hash_only.push(sample);
        }
        let (ours, peer) = both(
            run,
            || {
                fresh(&got)?;
                warm(&stored)?;
                let sample = time_child(&args(&["get", &key, &got_arg]), &envs)?;
                same_content(&got, src)?;
                Ok(sample)
            },
            || {
                fresh(&got)?;
                warm(&stored)?;
                let sample = time_command(Command::new("cp").arg(&stored).arg(&got))?;
                same_content(&got, src)?;
                Ok(sample)
            },
        )?;
        get_ours.push(ours);
        get_cp.push(peer);
        std::fs::remove_file(&stored)?;
        std::fs::remove_file(&copy_dst)?;
        std::fs::remove_file(&got)?;
    }
    let mut rows = vec![
        Row::new(
            "put local",
            "Store::put_stream",
            "cp",
            size,
            &put_ours,
            &put_cp,
            0.8,
        ),
        Row::new(
            "get local",
            "Store::download_to_file",
            "cp",
            size,
            &get_ours,
            &get_cp,
            0.8,
        ),
    ];
    if hash_only.len() == runs {
        // Not ours: the best "put local" ratio any put that hashes its bytes could reach on this machine.
        rows.push(Row::new(
            "put local bound: SHA-256 alone",
            "openssl dgst -sha256",
            "cp",
            size,
            &hash_only,
            &put_cp,
            0.0,
        ));
    }
    Ok(rows)
}

fn s3(work: &Path, src: &Path, size: u64, runs: usize) -> Result<Vec<Row>> {
    let server = harness::S3Server::start()?;
    let envs = vec![
        ("IPHOTO_STORAGE_BACKEND".to_owned(), "s3".to_owned()),
        ("IPHOTO_S3_ENDPOINT".to_owned(), server.endpoint.clone()),
        ("IPHOTO_S3_BUCKET".to_owned(), server.bucket.clone()),
        ("IPHOTO_S3_REGION".to_owned(), server.region.clone()),
        ("IPHOTO_S3_ACCESS_KEY_ID".to_owned(), server.access_key_id.clone()),
        (
            "IPHOTO_S3_SECRET_ACCESS_KEY".to_owned(),
            server.secret_access_key.clone(),
        ),
    ];
    let rclone_env = [
        ("RCLONE_CONFIG_BENCH_TYPE", "s3".to_owned()),
        ("RCLONE_CONFIG_BENCH_PROVIDER", "SeaweedFS".to_owned()),
        ("RCLONE_CONFIG_BENCH_ENDPOINT", server.endpoint.clone()),
        ("RCLONE_CONFIG_BENCH_REGION", server.region.clone()),
        ("RCLONE_CONFIG_BENCH_ACCESS_KEY_ID", server.access_key_id.clone()),
        (
            "RCLONE_CONFIG_BENCH_SECRET_ACCESS_KEY",
            server.secret_access_key.clone(),
        ),
        ("RCLONE_CONFIG_BENCH_FORCE_PATH_STYLE", "true".to_owned()),
    ];
    let rclone = |a: &str, b: &str| {
        let mut c = Command::new("rclone");
        // The environment's AWS_CA_BUNDLE makes rclone's S3 backend fail (reference/real-parts.md).
        c.env_remove("AWS_CA_BUNDLE")
            .envs(rclone_env.iter().map(|(k, v)| (*k, v.as_str())));
        c.args(["copyto", "--s3-no-check-bucket", a, b]);
        c
    };
    let got = work.join("got-s3.bin");
    let got_arg = got.display().to_string();
    let raw = server.object_store();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    // The single-stream peer: curl fetching a presigned URL (the server's own limit for one stream).
    let curl = Command::new("curl")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    let (mut put_ours, mut put_rc, mut get_ours, mut get_rc) = (vec![], vec![], vec![], vec![]);
    let (mut stream_ours, mut stream_curl) = (vec![], vec![]);
    for run in 0..runs {
        let ours_key = format!("bench/run{run}/ours.bin");
        let peer_key = format!("bench/run{run}/rclone.bin");
        let (ours, peer) = both(
            run,
            || {
                settle()?;
                warm(src)?;
                time_child(&args(&["put", &src.display().to_string(), &ours_key]), &envs)
            },
            || {
                settle()?;
                warm(src)?;
                time_command(&mut rclone(
                    &src.display().to_string(),
                    &format!("bench:{}/{peer_key}", server.bucket),
                ))
            },
        )?;
        put_ours.push(ours);
        put_rc.push(peer);
        // Both gets read the same object, the one rclone wrote; the one-stream gets below read ours, so both
        // puts' bytes are checked too.
        let (ours, peer) = both(
            run,
            || {
                fresh(&got)?;
                let sample = time_child(&args(&["get", &peer_key, &got_arg]), &envs)?;
                same_content(&got, src)?;
                Ok(sample)
            },
            || {
                fresh(&got)?;
                let sample = time_command(&mut rclone(
                    &format!("bench:{}/{peer_key}", server.bucket),
                    &got_arg,
                ))?;
                same_content(&got, src)?;
                Ok(sample)
            },
        )?;
        get_ours.push(ours);
        get_rc.push(peer);
        if curl {
            let url = runtime.block_on(async {
                use object_store::signer::Signer as _;
                let location = object_store::path::Path::from(ours_key.as_str());
                raw.signed_url(
                    object_store::signer::Method::GET,
                    &location,
                    Duration::from_secs(3600),
                )
                .await
            })?;
            let (ours, peer) = both(
                run,
                || {
                    fresh(&got)?;
                    let sample = time_child(&args(&["stream", &ours_key, &got_arg]), &envs)?;
                    same_content(&got, src)?;
                    Ok(sample)
                },
                || {
                    fresh(&got)?;
                    let sample =
                        time_command(Command::new("curl").args(["-sSf", "-o", &got_arg, url.as_str()]))?;
                    same_content(&got, src)?;
                    Ok(sample)
                },
            )?;
            stream_ours.push(ours);
            stream_curl.push(peer);
        }
        std::fs::remove_file(&got)?;
        runtime.block_on(async {
            use object_store::ObjectStoreExt as _;
            for k in [&ours_key, &peer_key] {
                raw.delete(&object_store::path::Path::from(k.as_str())).await?;
            }
            // Give the deleted 4 GiB back to the disk now, or five runs fill a shared machine's disk and
            // SeaweedFS answers 500.
            reqwest::get(format!(
                "{}/vol/vacuum?garbageThreshold=0.0001",
                server.master_url
            ))
            .await?
            .error_for_status()?;
            anyhow::Ok(())
        })?;
    }
    let mut rows = vec![
        Row::new(
            "put s3 (SeaweedFS)",
            "Store::put_stream",
            "rclone copyto",
            size,
            &put_ours,
            &put_rc,
            1.0,
        ),
        Row::new(
            "get s3 (SeaweedFS)",
            "Store::download_to_file",
            "rclone copyto",
            size,
            &get_ours,
            &get_rc,
            1.0,
        ),
    ];
    if curl {
        // No goal: it shows what one stream from this server gives, to read the rows above against.
        rows.push(Row::new(
            "get s3, one stream, into a file",
            "Store::get",
            "curl (presigned URL)",
            size,
            &stream_ours,
            &stream_curl,
            0.0,
        ));
    }
    Ok(rows)
}

/// Signatures per second: ours through `Store::presign_get` against `object_store`'s own SigV4 signer (the
/// floor for S3), and the local HMAC signer against the same floor.
fn presign(n: usize) -> Result<Vec<Row>> {
    use object_store::signer::Signer as _;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let server_less_s3 = storage::S3Config {
        endpoint: Some("http://127.0.0.1:9".parse()?),
        region: "us-east-1".into(),
        bucket: "bench".into(),
        access_key_id: "AKIDBENCH".into(),
        secret_access_key: storage::Secret::new("bench-secret".into()),
        prefix: None,
        path_style: true,
    };
    let ours_s3 = storage::create_s3_store(&server_less_s3, Default::default())?;
    let raw = object_store::aws::AmazonS3Builder::new()
        .with_endpoint("http://127.0.0.1:9")
        .with_allow_http(true)
        .with_region("us-east-1")
        .with_bucket_name("bench")
        .with_access_key_id("AKIDBENCH")
        .with_secret_access_key("bench-secret")
        .with_virtual_hosted_style_request(false)
        .build()?;
    let local_root = tempfile::tempdir()?;
    let local = storage::create_object_store(&storage::StorageConfig {
        backend: storage::BackendConfig::Local(storage::LocalConfig {
            root: local_root.path().to_path_buf(),
            presign_secret: storage::Secret::new("benchmark-secret-benchmark-secret-0123".into()),
            public_url: "http://127.0.0.1:8080".parse()?,
        }),
        presign: Default::default(),
    })?;
    let key = StorageKey::parse("users/u/libraries/l/originals/A/ABCDEF.heic")?;
    let mut rows = Vec::new();
    runtime.block_on(async {
        let mut ours_s3_samples = vec![];
        let mut ours_local_samples = vec![];
        let mut raw_samples = vec![];
        for _ in 0..5 {
            let t = Instant::now();
            for _ in 0..n {
                ours_s3.presign_get(&key, None).await?;
            }
            ours_s3_samples.push(sample(t.elapsed()));
            let t = Instant::now();
            for _ in 0..n {
                local.presign_get(&key, None).await?;
            }
            ours_local_samples.push(sample(t.elapsed()));
            let t = Instant::now();
            for _ in 0..n {
                raw.signed_url(object_store::signer::Method::GET, &object_store::path::Path::from(key.as_str()), Duration::from_secs(300))
                    .await?;
            }
            raw_samples.push(sample(t.elapsed()));
        }
        let per_second = |samples: &[Sample]| n as f64 / bench::median(&samples.iter().map(|s| s.elapsed).collect::<Vec<_>>()).as_secs_f64();
        println!(
            "presign: {n} signatures per run; s3 ours {:.0}/s, raw object_store SigV4 {:.0}/s, local HMAC {:.0}/s",
            per_second(&ours_s3_samples),
            per_second(&raw_samples),
            per_second(&ours_local_samples)
        );
        rows.push(Row::new("presign s3 (n signatures)", "Store::presign_get", "object_store Signer", 0, &ours_s3_samples, &raw_samples, 0.8));
        rows.push(Row::new("presign local (n signatures)", "Store::presign_get (HMAC)", "object_store Signer", 0, &ours_local_samples, &raw_samples, 1.0));
        anyhow::Ok(())
    })?;
    Ok(rows)
}

fn sample(elapsed: Duration) -> Sample {
    Sample {
        elapsed,
        peak_rss_kib: 0,
    }
}

fn args(a: &[&str]) -> Vec<String> {
    a.iter().map(|s| (*s).to_owned()).collect()
}

/// Runs both sides of one comparison, ours first on even runs and the peer first on odd ones, and returns
/// (ours, peer). On this shared VM the first big write after the puts can pay for page reclaim (measured: `cp`
/// of 2 GiB took 4–11 s there and 0.6–1 s right after; so did ours), and a fixed order would charge it to
/// one side.
fn both(
    run: usize,
    ours: impl FnOnce() -> Result<Sample>,
    peer: impl FnOnce() -> Result<Sample>,
) -> Result<(Sample, Sample)> {
    if run.is_multiple_of(2) {
        let ours = ours()?;
        Ok((ours, peer()?))
    } else {
        let peer = peer()?;
        Ok((ours()?, peer))
    }
}

/// Flushes every dirty page to disk (not timed), so a step does not pay for the write-back of the one before.
fn settle() -> Result<()> {
    time_command(&mut Command::new("sync"))?;
    Ok(())
}

/// Reads a step's input file once (not timed), so each side finds it in the page cache. On a machine whose
/// RAM is full, an input can be evicted between steps and the first reader pays a disk read: the full run
/// of 2026-11-26 showed the first local get of every run at 7.4–11.4 s for 2 GiB, the second at 0.8–3.8 s,
/// whichever side went first.
fn warm(path: &Path) -> Result<()> {
    let file = std::fs::File::open(path).with_context(|| format!("reading {}", path.display()))?;
    std::io::copy(
        &mut std::io::BufReader::with_capacity(1 << 20, file),
        &mut std::io::sink(),
    )?;
    Ok(())
}

/// Removes a get's destination and settles: each side writes a new file, and no tool can skip the transfer
/// because an equal file is already there.
fn fresh(path: &Path) -> Result<()> {
    match std::fs::remove_file(path) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(e).with_context(|| format!("removing {}", path.display())),
    }
    settle()
}

/// The bytes of `path` are those of `expected` (not timed): a side that wrote nothing, or the wrong bytes,
/// fails the benchmark rather than passing for a fast one.
fn same_content(path: &Path, expected: &Path) -> Result<()> {
    let status = Command::new("cmp")
        .arg("--silent")
        .arg(path)
        .arg(expected)
        .status()
        .context("running cmp")?;
    if !status.success() {
        bail!("{} differs from {}", path.display(), expected.display());
    }
    Ok(())
}
