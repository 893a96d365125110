//! Resumable upload benchmark: one big file to the real `iphoto-server` on SeaweedFS through a TCP proxy
//! that cuts the connection 5 times (each connection carries a sixth of the file, then is cut), three ways:
//! uninterrupted (`POST` creation, one `PATCH`), cut 5 times and resumed (`HEAD` for the offset, `PATCH` the
//! rest), and cut 5 times restarting from zero with the plain upload route (what the agent did before resumable
//! uploads). Each is timed, and the bytes that crossed the proxy are counted: bytes re-sent = those minus the
//! file's size. Alternating, fresh server per run.
//!
//! `resumable` runs the full benchmark (2 GiB, 5 runs); `resumable --small` the CI mode (48 MiB, 1 run).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::{Duration, Instant};

use anyhow::{Context as _, Result, bail};
use bench::server::Server;
use bench::{file_sha256, median};
use clap::Parser;

#[derive(Parser)]
struct Cli {
    /// CI mode: a small file and one run, so the benchmark cannot rot.
    #[arg(long)]
    small: bool,
    /// Size of the file uploaded (e.g. 2GiB).
    #[arg(long)]
    size: Option<String>,
    /// Runs of each mode.
    #[arg(long)]
    runs: Option<usize>,
}

const CUTS: u64 = 5;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    Uninterrupted,
    Resumed,
    FromZero,
}

impl Mode {
    fn name(self) -> &'static str {
        match self {
            Mode::Uninterrupted => "uninterrupted (resumable)",
            Mode::Resumed => "cut 5x, resumed",
            Mode::FromZero => "cut 5x, restarted from zero",
        }
    }
}

fn main() -> Result<()> {
    let cli = Cli::parse();
    let size_text = cli.size.clone().or(cli.small.then(|| "48MiB".to_owned()));
    let (work, src, size) = bench::source_file("resumable", size_text.as_deref(), false)?;
    let runs = cli.runs.unwrap_or(if cli.small { 1 } else { 5 });
    let sha256 = file_sha256(&src)?;
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
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
    let modes = [Mode::Uninterrupted, Mode::Resumed, Mode::FromZero];
    let mut results: Vec<(Mode, Vec<Duration>, Vec<u64>)> =
        modes.iter().map(|m| (*m, vec![], vec![])).collect();
    for run in 0..runs {
        for (mode, times, sent) in &mut results {
            let data_dir = work.path().join(format!("{}-{run}", *mode as u8));
            let (elapsed, bytes) = runtime.block_on(async {
                let server = Server::start(&data_dir, &envs).await?;
                let measured = once(&server, *mode, &src, &sha256, size, run).await?;
                server.stop()?;
                anyhow::Ok(measured)
            })?;
            times.push(elapsed);
            sent.push(bytes);
            std::fs::remove_dir_all(&data_dir)?;
        }
    }
    let mib = size as f64 / (1024.0 * 1024.0);
    println!(
        "resumable upload of {mib:.0} MiB to SeaweedFS, {runs} run(s), {} cores",
        bench::cores()
    );
    println!(
        "{:<30} {:>10} {:>10} {:>14}",
        "mode", "median s", "MiB/s", "re-sent MiB"
    );
    let mut json = Vec::new();
    for (mode, times, sent) in &results {
        let t = median(times).as_secs_f64();
        let resent =
            sent.iter().map(|s| s.saturating_sub(size)).max().unwrap_or(0) as f64 / (1024.0 * 1024.0);
        println!(
            "{:<30} {t:>10.2} {:>10.1} {resent:>14.1}",
            mode.name(),
            mib / t.max(1e-9)
        );
        json.push(
            serde_json::json!({ "mode": mode.name(), "medianSeconds": t, "bytes": size,
            "maxBytesResent": sent.iter().map(|s| s.saturating_sub(size)).max(), "runs": times.len() }),
        );
    }
    println!("{}", serde_json::Value::Array(json));
    Ok(())
}

/// One upload in `mode` through a cutting proxy; returns the time and the bytes that crossed the proxy
/// (request heads included, a few hundred bytes each).
async fn once(
    server: &Server,
    mode: Mode,
    src: &std::path::Path,
    sha256: &str,
    size: u64,
    run: usize,
) -> Result<(Duration, u64)> {
    let local_identifier = format!("BE0D{run:04X}-0000-4000-8000-00000000000{}/L0/001", mode as u8);
    let item = serde_json::json!({
        "localIdentifier": local_identifier,
        "kind": "photo", "livePhoto": false, "width": 4032, "height": 3024,
        "takenAt": "2024-05-01T10:00:00+02:00", "modifiedAt": "2024-05-02T10:00:00Z",
        "favorite": false, "hidden": false, "trashed": false,
        "originalFilename": "BIG.MOV", "uti": "com.apple.quicktime-movie", "edited": false,
        "resources": [{ "type": "original", "size": size, "sha256": sha256, "available": true }]
    });
    let http = reqwest::Client::builder().pool_max_idle_per_host(0).build()?;
    let synced = http
        .post(format!("{}/client/iphoto/sync", server.url))
        .bearer_auth(&server.token)
        .json(&serde_json::json!({ "libraryId": "bench-library", "items": [item] }))
        .send()
        .await?;
    if !synced.status().is_success() {
        bail!("sync answered {}", synced.status());
    }
    let upstream = server.url.trim_start_matches("http://").parse()?;
    let proxy = harness::CutProxy::start(upstream).await?;
    let base = format!("http://{}", proxy.addr());
    let route = format!("{base}/client/iphoto/upload/{local_identifier}?resource=original");
    let budget = size / (CUTS + 1);
    let started = Instant::now();
    let mut cuts = 0;
    let answer = match mode {
        Mode::FromZero => loop {
            if cuts < CUTS {
                proxy.cut_next_after(budget);
                cuts += 1;
            }
            let response = http
                .post(&route)
                .bearer_auth(&server.token)
                .header("x-content-sha256", sha256)
                .header(reqwest::header::CONTENT_LENGTH, size)
                .body(file_body(src, 0).await?)
                .send()
                .await;
            if let Ok(response) = response
                && response.status().is_success()
            {
                break response.json::<serde_json::Value>().await?;
            }
            // The plain route keeps nothing of a cut body: wait for the server to see the cut, then again.
            tokio::time::sleep(Duration::from_millis(100)).await;
        },
        Mode::Uninterrupted | Mode::Resumed => {
            let created = http
                .post(&route)
                .bearer_auth(&server.token)
                .header("upload-complete", "?0")
                .header("upload-length", size)
                .body(Vec::new())
                .send()
                .await?;
            let location = created
                .headers()
                .get("location")
                .context("no Location")?
                .to_str()?
                .to_owned();
            let url = format!("{base}{location}");
            let mut offset = 0u64;
            loop {
                if mode == Mode::Resumed && cuts < CUTS {
                    proxy.cut_next_after(budget);
                    cuts += 1;
                }
                let response = http
                    .patch(&url)
                    .bearer_auth(&server.token)
                    .header("upload-offset", offset)
                    .header("upload-complete", "?1")
                    .header("content-type", "application/partial-upload")
                    .header(reqwest::header::CONTENT_LENGTH, size - offset)
                    .body(file_body(src, offset).await?)
                    .send()
                    .await;
                if let Ok(response) = response
                    && response.status().is_success()
                {
                    break response.json::<serde_json::Value>().await?;
                }
                let head = http.head(&url).bearer_auth(&server.token).send().await?;
                offset = head
                    .headers()
                    .get("upload-offset")
                    .context("no Upload-Offset")?
                    .to_str()?
                    .parse()?;
            }
        }
    };
    let elapsed = started.elapsed();
    if answer["sha256"] != sha256 || answer["size"] != size {
        bail!("{}: stored {answer}", mode.name());
    }
    Ok((elapsed, proxy.forwarded()))
}

/// The file from `offset`, streamed.
async fn file_body(src: &std::path::Path, offset: u64) -> Result<reqwest::Body> {
    use tokio::io::AsyncSeekExt as _;
    let mut file = tokio::fs::File::open(src).await?;
    file.seek(std::io::SeekFrom::Start(offset)).await?;
    Ok(reqwest::Body::wrap_stream(
        tokio_util::io::ReaderStream::with_capacity(file, 1 << 20),
    ))
}
