//! The upload scenario: a folder of originals synced by the agent, next to curl posting the same files with the
//! same concurrency, headers and route to a server given the same items.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use anyhow::{Context as _, Result, bail};
use bench::server::Server;
use bench::{Row, Sample, file_sha256, median, report, time_command, write_data_file};

use super::{agent_pass, stats};

/// 1,000 originals of 2–8 MB (by default): the agent's upload phase next to curl.
pub(crate) fn uploads_scenario(
    runtime: &tokio::runtime::Runtime,
    agent: &Path,
    work: &Path,
    files: usize,
    (min, max): (u64, u64),
    runs: usize,
) -> Result<()> {
    let folder = work.join("originals");
    std::fs::create_dir_all(&folder)?;
    let mut total = 0u64;
    for n in 0..files {
        // Sizes spread evenly over [min, max], in a fixed shuffled order; contents distinct per file.
        let size = min + (max - min) * ((n * 7919) % files.max(1)) as u64 / files.max(1) as u64;
        let path = folder.join(format!("IMG_{n:05}.JPG"));
        write_data_file(&path, size, n as u64)?;
        total += size;
    }
    // What the agent will send, and each file's digest, for the curl side.
    let read = runtime.block_on(iphoto_agent::library::FolderLibrary::open(&folder)?.assets())?;
    let mut items = Vec::with_capacity(read.len());
    let mut uploads = Vec::with_capacity(read.len());
    for asset in read {
        let path = asset
            .files
            .first()
            .context("a folder asset has its file")?
            .path
            .clone();
        let sha256 = file_sha256(&path)?;
        let mut item = asset.item;
        for resource in &mut item.resources {
            resource.sha256 = Some(sha256.clone());
        }
        uploads.push((item.local_identifier.clone(), path, sha256));
        items.push(item);
    }
    println!(
        "uploads: {files} files, {:.0} MiB in all",
        total as f64 / (1024.0 * 1024.0)
    );

    let (mut ours, mut ours_wall, mut peer) = (vec![], vec![], vec![]);
    for run in 0..runs {
        // Ours: the agent's pass on a fresh server; the sample is its upload phase.
        let data = work.join(format!("uploads-agent-{run}"));
        let state = work.join(format!("uploads-state-{run}"));
        let (wall, figures, rss) = runtime.block_on(async {
            let server = Server::start(&data, &[]).await?;
            let (wall, figures) = agent_pass(agent, &server, &data, &folder, &state)?;
            let stats = stats(&server).await?;
            let rss = server.peak_rss_kib();
            server.stop()?;
            if stats["uploaded"] != files as u64 || stats["pending"] != 0 {
                bail!("after the agent's pass the server has {stats}");
            }
            anyhow::Ok((wall, figures, rss))
        })?;
        if figures.uploaded != files as u64 || figures.bytes_uploaded != total {
            bail!("agent pass: {figures:?}, expected {files} uploads of {total} bytes");
        }
        ours.push(Sample {
            elapsed: Duration::from_millis(figures.upload_ms),
            peak_rss_kib: rss,
        });
        ours_wall.push(wall);
        std::fs::remove_dir_all(&data)?;
        std::fs::remove_dir_all(&state)?;

        // Peer: curl, 4 in parallel, same files, same route and headers, on a fresh server given the items.
        let data = work.join(format!("uploads-curl-{run}"));
        peer.push(runtime.block_on(async {
            let server = Server::start(&data, &[]).await?;
            for chunk in items.chunks(100) {
                let response = server
                    .http
                    .post(format!("{}/client/iphoto/sync", server.url))
                    .bearer_auth(&server.token)
                    .json(&serde_json::json!({ "libraryId": "curl-peer", "items": chunk }))
                    .send()
                    .await?;
                if !response.status().is_success() {
                    bail!("sync for curl answered {}", response.status());
                }
            }
            let config = work.join("curl.config");
            write_curl_config(&config, &server, &uploads)?;
            let output_codes = work.join("curl.codes");
            let sample = time_command(
                Command::new("curl")
                    .args([
                        "--parallel",
                        "--parallel-max",
                        "4",
                        "--silent",
                        "--show-error",
                        "-K",
                    ])
                    .arg(&config)
                    .stdout(std::fs::File::create(&output_codes)?),
            )?;
            let codes = std::fs::read_to_string(&output_codes)?;
            let ok = codes.lines().filter(|l| l.trim() == "200").count();
            let stats = stats(&server).await?;
            server.stop()?;
            if ok != files || stats["uploaded"] != files as u64 {
                bail!("curl: {ok} of {files} answered 200; the server has {stats}");
            }
            anyhow::Ok(sample)
        })?);
        std::fs::remove_dir_all(&data)?;
    }
    let rows = [Row::new(
        &format!("{files} uploads, 4 at once"),
        "iphoto-agent sync (upload phase)",
        "curl --parallel-max 4",
        total,
        &ours,
        &peer,
        0.9,
    )];
    println!(
        "agent pass wall time, median: {:.2} s (read + hash {} files + metadata + uploads); server peak RSS in the \
         table",
        median(&ours_wall).as_secs_f64(),
        files
    );
    report("agent: uploads to a local iphoto-server", &rows);
    Ok(())
}

/// One transfer per file: POST of the file's bytes with the digest header, answering the status code.
fn write_curl_config(path: &Path, server: &Server, uploads: &[(String, PathBuf, String)]) -> Result<()> {
    let mut config = String::new();
    for (n, (local_identifier, file, sha256)) in uploads.iter().enumerate() {
        if n > 0 {
            config.push_str("next\n");
        }
        // The identifier's `/` stay literal, as the agent sends them (the server's route takes the rest of the path).
        writeln!(
            config,
            "url = \"{}/client/iphoto/upload/{local_identifier}?resource=original&library=curl-peer\"",
            server.url
        )?;
        writeln!(config, "request = \"POST\"")?;
        writeln!(config, "upload-file = \"{}\"", file.display())?;
        writeln!(config, "header = \"Authorization: Bearer {}\"", server.token)?;
        writeln!(config, "header = \"X-Content-SHA256: {sha256}\"")?;
        writeln!(config, "header = \"Content-Type: application/octet-stream\"")?;
        writeln!(config, "header = \"Expect:\"")?;
        writeln!(config, "output = \"/dev/null\"")?;
        writeln!(config, "write-out = \"%{{http_code}}\\n\"")?;
    }
    std::fs::write(path, config)?;
    Ok(())
}
