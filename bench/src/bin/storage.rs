//! Storage port benchmark: a streamed put then get of one large file through `storage::Store`, next to `cp`
//! (local adapter) and `rclone copyto` (S3 adapter, the same SeaweedFS), alternating, plus presign throughput.
//!
//! `storage` runs the full benchmark (2 GiB, 5 runs); `storage --small` the CI mode (64 MiB, 2 runs). Our side
//! runs in a child process built from the environment by `storage::default_store()`, so its peak RSS is
//! measured alone.

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
    /// Runs of each side.
    #[arg(long)]
    runs: Option<usize>,
}

#[derive(Subcommand)]
enum Child {
    /// Streams a file into the store configured by the environment.
    Put { src: PathBuf, key: String },
    /// Streams an object from the store configured by the environment into a file.
    Get {
        key: String,
        dst: PathBuf,
        /// Ranged streams at once.
        #[arg(long, default_value_t = 4)]
        streams: usize,
    },
}

fn main() -> Result<()> {
    let cli = Cli::parse();
    if let Some(child) = cli.child {
        return run_child(child);
    }
    let (work, src, size) = bench::source_file("storage", cli.size.as_deref(), cli.small)?;
    let runs = cli.runs.unwrap_or(if cli.small { 2 } else { 5 });

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

fn local(work: &Path, src: &Path, size: u64, runs: usize) -> Result<Vec<Row>> {
    let root = work.join("local-store");
    let envs = vec![
        ("STORAGE_BACKEND".to_owned(), "local".to_owned()),
        ("STORAGE_LOCAL_PATH".to_owned(), root.display().to_string()),
        (
            "PRESIGN_SECRET".to_owned(),
            "benchmark-secret-benchmark-secret-0123".to_owned(),
        ),
    ];
    let copy_dst = work.join("cp-copy.bin");
    let got = work.join("got.bin");
    let (mut put_ours, mut put_cp, mut get_ours, mut get_cp) = (vec![], vec![], vec![], vec![]);
    let mut hash_only = vec![];
    for run in 0..runs {
        let key = format!("bench/run{run}/original.bin");
        put_ours.push(time_child(
            &args(&["put", &src.display().to_string(), &key]),
            &envs,
        )?);
        put_cp.push(time_command(Command::new("cp").arg(src).arg(&copy_dst))?);
        // The floor of any put that hashes: reading the file and hashing it, nothing written, with
        // OpenSSL's SHA-NI code (as fast as the `sha2` crate's here). Skipped where openssl is missing.
        if let Ok(sample) = time_command(Command::new("openssl").args(["dgst", "-sha256"]).arg(src)) {
            hash_only.push(sample);
        }
        get_ours.push(time_child(
            &args(&["get", &key, &got.display().to_string()]),
            &envs,
        )?);
        same_size(&got, size)?;
        get_cp.push(time_command(Command::new("cp").arg(root.join(&key)).arg(&got))?);
        std::fs::remove_file(root.join(&key))?;
        std::fs::remove_file(&copy_dst)?;
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
        ("STORAGE_BACKEND".to_owned(), "s3".to_owned()),
        ("S3_ENDPOINT".to_owned(), server.endpoint.clone()),
        ("S3_BUCKET".to_owned(), server.bucket.clone()),
        ("S3_REGION".to_owned(), server.region.clone()),
        ("S3_ACCESS_KEY_ID".to_owned(), server.access_key_id.clone()),
        (
            "S3_SECRET_ACCESS_KEY".to_owned(),
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
    let raw = server.object_store();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let (mut put_ours, mut put_rc, mut get_ours, mut get_rc) = (vec![], vec![], vec![], vec![]);
    for run in 0..runs {
        let ours_key = format!("bench/run{run}/ours.bin");
        let peer_key = format!("bench/run{run}/rclone.bin");
        put_ours.push(time_child(
            &args(&["put", &src.display().to_string(), &ours_key]),
            &envs,
        )?);
        put_rc.push(time_command(&mut rclone(
            &src.display().to_string(),
            &format!("bench:{}/{peer_key}", server.bucket),
        ))?);
        get_ours.push(time_child(
            &args(&["get", &ours_key, &got.display().to_string()]),
            &envs,
        )?);
        same_size(&got, size)?;
        get_rc.push(time_command(&mut rclone(
            &format!("bench:{}/{peer_key}", server.bucket),
            &got.display().to_string(),
        ))?);
        same_size(&got, size)?;
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
    Ok(vec![
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
    ])
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

fn same_size(path: &Path, size: u64) -> Result<()> {
    let got = std::fs::metadata(path).context("reading back")?.len();
    if got != size {
        bail!("{} has {got} bytes, expected {size}", path.display());
    }
    Ok(())
}
