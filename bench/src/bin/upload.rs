//! Upload benchmark: one big file posted over loopback to the real `iphoto-server`
//! (`POST /client/iphoto/upload/{localIdentifier}`, body streamed from the file, `X-Content-SHA256` sent),
//! into the local store next to `cp` of the same file, and into SeaweedFS next to `rclone copyto` to the same
//! bucket, alternating.
//!
//! `upload` runs the full benchmark (2 GiB, 5 runs); `upload --small` the CI mode (64 MiB, 2 runs). Each run
//! starts a fresh server on a fresh catalog (so nothing is deduplicated against an earlier run, and the peak
//! RSS is that run's own), syncs one item declaring the file's size and SHA-256, then times the upload alone.
//! Our peak RSS is the server's `VmHWM` read from `/proc/<pid>/status` after the upload; the answer's SHA-256,
//! size and `deduplicated: false` are checked.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;
use std::process::Command;
use std::time::Instant;

use anyhow::{Context as _, Result, bail};
use bench::server::Server;
use bench::{Row, Sample, file_sha256, report, time_command};
use clap::Parser;

#[derive(Parser)]
struct Cli {
    /// CI mode: a small file and two runs, so the benchmark cannot rot.
    #[arg(long)]
    small: bool,
    /// Size of the file uploaded (e.g. 2GiB).
    #[arg(long)]
    size: Option<String>,
    /// Runs of each side.
    #[arg(long)]
    runs: Option<usize>,
}

fn main() -> Result<()> {
    let cli = Cli::parse();
    let (work, src, size) = bench::source_file("upload", cli.size.as_deref(), cli.small)?;
    let runs = cli.runs.unwrap_or(if cli.small { 2 } else { 5 });
    let sha256 = file_sha256(&src)?;
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;

    let rows = vec![
        local(&runtime, work.path(), &src, &sha256, size, runs)?,
        s3(&runtime, work.path(), &src, &sha256, size, runs)?,
    ];
    for r in &rows {
        let rss = if r.ours_peak_rss_mib < 100.0 {
            "met"
        } else {
            "NOT met"
        };
        println!(
            "{}: server peak RSS {:.1} MiB (goal < 100 MB: {rss})",
            r.scenario, r.ours_peak_rss_mib
        );
    }
    report("upload: one file over loopback to iphoto-server", &rows);
    Ok(())
}

fn local(
    runtime: &tokio::runtime::Runtime,
    work: &Path,
    src: &Path,
    sha256: &str,
    size: u64,
    runs: usize,
) -> Result<Row> {
    let copy = work.join("cp-copy.bin");
    let (mut ours, mut peer) = (vec![], vec![]);
    for run in 0..runs {
        let data_dir = work.join(format!("local-{run}"));
        ours.push(runtime.block_on(async {
            let server = Server::start(&data_dir, &[]).await?;
            let (sample, key) = upload_once(&server, src, sha256, size, run).await?;
            let stored = data_dir.join("blobs").join(&key);
            let on_disk = std::fs::metadata(&stored)
                .with_context(|| format!("stored file {}", stored.display()))?
                .len();
            if on_disk != size {
                bail!("{} has {on_disk} bytes, expected {size}", stored.display());
            }
            server.stop()?;
            anyhow::Ok(sample)
        })?);
        peer.push(time_command(Command::new("cp").arg(src).arg(&copy))?);
        std::fs::remove_dir_all(&data_dir)?;
        std::fs::remove_file(&copy)?;
    }
    Ok(Row::new(
        "upload local",
        "POST /client/iphoto/upload",
        "cp",
        size,
        &ours,
        &peer,
        0.7,
    ))
}

fn s3(
    runtime: &tokio::runtime::Runtime,
    work: &Path,
    src: &Path,
    sha256: &str,
    size: u64,
    runs: usize,
) -> Result<Row> {
    let s3 = harness::S3Server::start()?;
    let envs = vec![
        ("IPHOTO_STORAGE_BACKEND".to_owned(), "s3".to_owned()),
        ("IPHOTO_S3_ENDPOINT".to_owned(), s3.endpoint.clone()),
        ("IPHOTO_S3_BUCKET".to_owned(), s3.bucket.clone()),
        ("IPHOTO_S3_REGION".to_owned(), s3.region.clone()),
        ("IPHOTO_S3_ACCESS_KEY_ID".to_owned(), s3.access_key_id.clone()),
        (
            "IPHOTO_S3_SECRET_ACCESS_KEY".to_owned(),
            s3.secret_access_key.clone(),
        ),
        ("IPHOTO_S3_PATH_STYLE".to_owned(), "true".to_owned()),
    ];
    let rclone_env = [
        ("RCLONE_CONFIG_BENCH_TYPE", "s3".to_owned()),
        ("RCLONE_CONFIG_BENCH_PROVIDER", "SeaweedFS".to_owned()),
        ("RCLONE_CONFIG_BENCH_ENDPOINT", s3.endpoint.clone()),
        ("RCLONE_CONFIG_BENCH_REGION", s3.region.clone()),
        ("RCLONE_CONFIG_BENCH_ACCESS_KEY_ID", s3.access_key_id.clone()),
        (
            "RCLONE_CONFIG_BENCH_SECRET_ACCESS_KEY",
            s3.secret_access_key.clone(),
        ),
        ("RCLONE_CONFIG_BENCH_FORCE_PATH_STYLE", "true".to_owned()),
    ];
    let raw = s3.object_store();
    let (mut ours, mut peer) = (vec![], vec![]);
    for run in 0..runs {
        let data_dir = work.join(format!("s3-{run}"));
        let peer_key = format!("bench/run{run}/rclone.bin");
        let (sample, ours_key) = runtime.block_on(async {
            let server = Server::start(&data_dir, &envs).await?;
            let done = upload_once(&server, src, sha256, size, run).await?;
            server.stop()?;
            anyhow::Ok(done)
        })?;
        ours.push(sample);
        let mut rclone = Command::new("rclone");
        // The environment's AWS_CA_BUNDLE makes rclone's S3 backend fail (reference/real-parts.md).
        rclone
            .env_remove("AWS_CA_BUNDLE")
            .envs(rclone_env.iter().map(|(k, v)| (*k, v.as_str())))
            .args(["copyto", "--s3-no-check-bucket"])
            .arg(src)
            .arg(format!("bench:{}/{peer_key}", s3.bucket));
        peer.push(time_command(&mut rclone)?);
        runtime.block_on(async {
            use object_store::ObjectStoreExt as _;
            for key in [&ours_key, &peer_key] {
                let path = object_store::path::Path::from(key.as_str());
                let meta = raw.head(&path).await.with_context(|| format!("head {key}"))?;
                if meta.size != size {
                    bail!("{key} has {} bytes in SeaweedFS, expected {size}", meta.size);
                }
                raw.delete(&path).await?;
            }
            anyhow::Ok(())
        })?;
        std::fs::remove_dir_all(&data_dir)?;
    }
    Ok(Row::new(
        "upload s3 (SeaweedFS)",
        "POST /client/iphoto/upload",
        "rclone copyto",
        size,
        &ours,
        &peer,
        // The issue sets no ratio for S3; the local goal (the server's HTTP hop costs at most 30 %) applies.
        0.7,
    ))
}

#[derive(serde::Deserialize)]
#[serde(rename_all = "camelCase")]
struct UploadAnswer {
    sha256: String,
    size: u64,
    key: String,
    deduplicated: bool,
}

/// Syncs one new item declaring the file, then times its upload; returns the sample (with the server's
/// peak RSS) and the stored key.
async fn upload_once(
    server: &Server,
    src: &Path,
    sha256: &str,
    size: u64,
    run: usize,
) -> Result<(Sample, String)> {
    let local_identifier = format!("BE0C{run:04X}-0000-4000-8000-000000000001/L0/001");
    let item = serde_json::json!({
        "localIdentifier": local_identifier,
        "kind": "photo", "livePhoto": false, "width": 4032, "height": 3024,
        "takenAt": "2024-05-01T10:00:00+02:00", "modifiedAt": "2024-05-02T10:00:00Z",
        "favorite": false, "hidden": false, "trashed": false,
        "originalFilename": "BIG.MOV", "uti": "com.apple.quicktime-movie", "edited": false,
        "resources": [{ "type": "original", "size": size, "sha256": sha256, "available": true }]
    });
    let response = server
        .http
        .post(format!("{}/client/iphoto/sync", server.url))
        .bearer_auth(&server.token)
        .json(&serde_json::json!({ "libraryId": "bench-library", "items": [item] }))
        .send()
        .await?;
    let status = response.status();
    let answer: serde_json::Value = response.json().await.context("sync answer")?;
    if !status.is_success()
        || answer["results"][0]["outcome"] != "created"
        || answer["results"][0]["needsUpload"] != serde_json::json!(["original"])
    {
        bail!("sync answered {status}: {answer}");
    }

    let file = tokio::fs::File::open(src).await?;
    let body = reqwest::Body::wrap_stream(tokio_util::io::ReaderStream::with_capacity(file, 1 << 20));
    let started = Instant::now();
    let response = server
        .http
        .post(format!(
            "{}/client/iphoto/upload/{local_identifier}?resource=original",
            server.url
        ))
        .bearer_auth(&server.token)
        .header("X-Content-SHA256", sha256)
        .header(reqwest::header::CONTENT_LENGTH, size)
        .header(reqwest::header::CONTENT_TYPE, "application/octet-stream")
        .body(body)
        .send()
        .await?;
    let status = response.status();
    let text = response.bytes().await?;
    let elapsed = started.elapsed();
    if !status.is_success() {
        bail!("upload answered {status}: {}", String::from_utf8_lossy(&text));
    }
    let answer: UploadAnswer = serde_json::from_slice(&text).context("upload answer")?;
    if answer.sha256 != sha256 || answer.size != size || answer.deduplicated {
        bail!(
            "upload stored sha256 {} size {} deduplicated {}, expected {sha256} {size} false",
            answer.sha256,
            answer.size,
            answer.deduplicated
        );
    }
    Ok((
        Sample {
            elapsed,
            peak_rss_kib: server.peak_rss_kib(),
        },
        answer.key,
    ))
}
