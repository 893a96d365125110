//! Agent benchmark: the real `iphoto-agent` binary against the real `iphoto-server`, two scenarios.
//!
//! 1. **Library pass.** A synthesized Photos library of 100,000 assets: the database built from
//!    `reference/fixture_photos11.sql`, its on-disk assets cloned (photo, edited photo with its render, video,
//!    Live Photo with its `_3.mov`) with fresh UUIDs, dates, fingerprints and iCloud GUIDs, the album join
//!    pointing at the clones; `--on-disk-percent` of them have small original files on disk, the others are
//!    iCloud-only (as with "Optimize Mac Storage"). Measured: `scan --json` (the reader alone, every asset printed
//!    as wire JSON) next to `sqlite3 -json` dumping the same rows (the floor of reading them); then per run, on a
//!    fresh server and state directory, the first `sync --once` with its phases (read, hash, metadata, albums,
//!    uploads) from `status --json`, the unchanged second pass, a pass after one favourite was toggled, and the
//!    server ingesting the same items from a bare client (batches of 100, 4 in flight: the first pass's bound).
//!    Goals: the unchanged pass < 1 s; the first pass limited by the server's ingest, not by the reader.
//! 2. **Uploads.** A plain folder of 1,000 originals of 2–8 MB: `sync --once --uploads 4` on a fresh server,
//!    its upload phase timed (from `status`), next to `curl --parallel --parallel-max 4` posting the same files
//!    with the same `X-Content-SHA256` to the same route of another fresh server whose catalog was given the same
//!    items first. Goal ≥ 0.9× curl.
//!
//! Every run checks what the server ended with (items created, everything uploaded, nothing pending), so a
//! failing run cannot pass for a fast one. `agent --small` is the CI mode (5,000 assets, 40 files of
//! 0.25–1 MiB, 2 runs).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result, bail};
use bench::server::Server;
use bench::{Row, Sample, median, report, time_command};
use clap::Parser;
use sqlx::Connection as _;

#[derive(Parser)]
struct Cli {
    /// CI mode: a small library and few files, two runs.
    #[arg(long)]
    small: bool,
    /// Assets in the synthesized library (default 100,000; 5,000 with --small).
    #[arg(long)]
    assets: Option<u64>,
    /// Share of assets whose originals are on disk, percent (the rest are iCloud-only).
    #[arg(long, default_value_t = 10)]
    on_disk_percent: u64,
    /// Files of the upload scenario (default 1,000; 40 with --small).
    #[arg(long)]
    files: Option<usize>,
    /// Runs of each side (default 3; 2 with --small).
    #[arg(long)]
    runs: Option<usize>,
    /// Only one scenario: `library` or `uploads`.
    #[arg(long)]
    only: Option<String>,
}

fn main() -> Result<()> {
    let cli = Cli::parse();
    let runs = cli.runs.unwrap_or(if cli.small { 2 } else { 3 });
    let work = tempfile::Builder::new().prefix("iphoto-bench-agent-").tempdir()?;
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    let agent = sibling("iphoto-agent")?;
    sibling("iphoto-server")?;
    println!(
        "cores {}, load average {}",
        bench::cores(),
        std::fs::read_to_string("/proc/loadavg")
            .unwrap_or_default()
            .trim()
    );

    if cli.only.as_deref() != Some("uploads") {
        let assets = cli.assets.unwrap_or(if cli.small { 5_000 } else { 100_000 });
        library_scenario(&runtime, &agent, work.path(), assets, cli.on_disk_percent, runs)?;
    }
    if cli.only.as_deref() != Some("library") {
        let files = cli.files.unwrap_or(if cli.small { 40 } else { 1_000 });
        let sizes = if cli.small {
            (256 << 10, 1 << 20)
        } else {
            (2 << 20, 8 << 20)
        };
        uploads_scenario(&runtime, &agent, work.path(), files, sizes, runs)?;
    }
    Ok(())
}

/// A binary built next to this one.
fn sibling(name: &str) -> Result<PathBuf> {
    let path = std::env::current_exe()?
        .parent()
        .context("benchmark has no directory")?
        .join(name);
    if !path.exists() {
        bail!(
            "{} is missing: build it first (cargo build [--release] -p iphoto-server -p iphoto-agent --bins)",
            path.display()
        );
    }
    Ok(path)
}

// ---------------------------------------------------------------------------------------------------------------
// Scenario 1: a 100,000-asset library.

/// Fixture assets cloned, each on disk with its files: 1 plain JPEG, 2 edited HEIC (+ render), 3 video,
/// 4 Live Photo (+ `_3.mov`).
const TEMPLATES: [i64; 4] = [1, 2, 3, 4];
/// Clones get Z_PK = BASE + i, so they never collide with the fixture rows (deleted afterwards).
const BASE: i64 = 1000;

fn library_scenario(
    runtime: &tokio::runtime::Runtime,
    agent: &Path,
    work: &Path,
    assets: u64,
    on_disk_percent: u64,
    runs: usize,
) -> Result<()> {
    let bundle = work.join("Bench.photoslibrary");
    let started = Instant::now();
    let on_disk = runtime.block_on(build_library(&bundle, assets, on_disk_percent))?;
    println!(
        "library: {assets} assets, {on_disk} files on disk, built in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    let database = bundle.join("database/Photos.sqlite");

    // The reader alone, next to a plain dump of the same rows.
    let (mut scan, mut dump) = (vec![], vec![]);
    for _ in 0..runs {
        scan.push(time_to_null(
            Command::new(agent)
                .args(["scan", "--json", "--library"])
                .arg(&bundle),
        )?);
        dump.push(time_to_null(
            Command::new("sqlite3").arg("-json").arg(&database).arg(DUMP_SQL),
        )?);
    }

    // The items the agent sends, for the server's ingest alone (the first pass's bound).
    let scanned = Command::new(agent)
        .args(["scan", "--json", "--library"])
        .arg(&bundle)
        .output()?;
    if !scanned.status.success() {
        bail!("scan failed: {}", String::from_utf8_lossy(&scanned.stderr));
    }
    let items = serde_json::from_slice::<serde_json::Value>(&scanned.stdout)?["items"]
        .as_array()
        .cloned()
        .context("scan --json has items")?;

    // Per run, each on a fresh server and state directory: the first pass, the unchanged pass, a pass after one
    // favourite was toggled (the per-asset diff), then the server ingesting the same items from a bare client.
    let mut passes: Vec<Passes> = vec![];
    let mut ingest = vec![];
    for run in 0..runs {
        let data = work.join(format!("library-server-{run}"));
        let state = work.join(format!("library-state-{run}"));
        let run_passes = runtime.block_on(async {
            let server = Server::start(&data, &[]).await?;
            let first = agent_pass(agent, &server, &data, &bundle, &state)?;
            let unchanged = agent_pass(agent, &server, &data, &bundle, &state)?;
            toggle_favorite(&database).await?;
            let toggled = agent_pass(agent, &server, &data, &bundle, &state);
            toggle_favorite(&database).await?;
            let toggled = toggled?;
            let stats = stats(&server).await?;
            server.stop()?;
            if stats["photos"] != assets || stats["pending"] != 0 {
                bail!("the server ended with {stats}, expected {assets} photos and nothing pending");
            }
            anyhow::Ok(Passes {
                first,
                unchanged,
                toggled,
            })
        })?;
        let Passes {
            first,
            unchanged,
            toggled,
        } = &run_passes;
        if first.1.items_sent != assets || first.1.uploaded != on_disk {
            bail!(
                "first pass: {:?}, expected {assets} items and {on_disk} uploads",
                first.1
            );
        }
        if first.1.icloud_only != first.1.unavailable || first.1.unavailable == 0 {
            bail!(
                "first pass: {:?}, expected every unavailable resource iCloud-only",
                first.1
            );
        }
        if unchanged.1.items_sent != 0 || unchanged.1.uploaded != 0 || unchanged.1.files_hashed != 0 {
            bail!("the unchanged pass sent or hashed something: {:?}", unchanged.1);
        }
        if toggled.1.items_sent != 1 || toggled.1.uploaded != 0 || toggled.1.files_hashed != 0 {
            bail!("the pass after one toggled favourite: {:?}", toggled.1);
        }
        passes.push(run_passes);
        std::fs::remove_dir_all(&data)?;
        std::fs::remove_dir_all(&state)?;

        let data = work.join(format!("ingest-server-{run}"));
        ingest.push(runtime.block_on(server_ingest(&data, &items))?);
        std::fs::remove_dir_all(&data)?;
    }

    report(
        &format!("agent: reading a {assets}-asset Photos library"),
        &[Row::new(
            "read library",
            "iphoto-agent scan --json",
            "sqlite3 -json (same rows)",
            0,
            &scan,
            &dump,
            // No goal in the issue: the dump is the floor (no decoding, no wire types); shown for scale.
            0.0,
        )],
    );
    let pick = |f: &dyn Fn(&Passes) -> Duration| median(&passes.iter().map(f).collect::<Vec<_>>());
    let ms = |v: u64| Duration::from_millis(v);
    let rate = |d: Duration| assets as f64 / d.as_secs_f64().max(1e-9);
    let first_wall = pick(&|p| p.first.0);
    let read = pick(&|p| ms(p.first.1.read_ms));
    let metadata = pick(&|p| ms(p.first.1.metadata_ms));
    let unchanged_wall = pick(&|p| p.unchanged.0);
    let toggled_wall = pick(&|p| p.toggled.0);
    let ingest_alone = median(&ingest);
    println!(
        "\n## agent: sync passes over the {assets}-asset library ({} cores, medians of {runs})",
        bench::cores()
    );
    println!("| pass | wall s | read s | hash + diff s | metadata s | albums s | uploads s |");
    println!("|---|---|---|---|---|---|---|");
    let row = |name: &str, wall: Duration, which: &dyn Fn(&Passes) -> &PassFigures| {
        println!(
            "| {name} | {:.2} | {:.2} | {:.2} | {:.2} | {:.2} | {:.2} |",
            wall.as_secs_f64(),
            pick(&|p| ms(which(p).read_ms)).as_secs_f64(),
            pick(&|p| ms(which(p).hash_ms)).as_secs_f64(),
            pick(&|p| ms(which(p).metadata_ms)).as_secs_f64(),
            pick(&|p| ms(which(p).albums_ms)).as_secs_f64(),
            pick(&|p| ms(which(p).upload_ms)).as_secs_f64(),
        );
    };
    row(
        &format!("first (fresh server, {assets} items, {on_disk} uploads)"),
        first_wall,
        &|p| &p.first.1,
    );
    row("unchanged", unchanged_wall, &|p| &p.unchanged.1);
    row("one favourite toggled", toggled_wall, &|p| &p.toggled.1);
    println!(
        "| server ingest alone (same items, batches of 100, 4 in flight, bare client) | {:.2} | | | {:.2} | | |",
        ingest_alone.as_secs_f64(),
        ingest_alone.as_secs_f64()
    );
    let unchanged_goal = unchanged_wall < Duration::from_secs(1);
    // The reader is not the limit when reading takes a small part of the metadata phase, and that phase runs
    // at the pace of the server ingesting the same items with nothing else to do.
    let server_bound = read * 4 < metadata;
    println!(
        "goal: unchanged pass < 1 s: {} ({:.2} s); first pass: read {:.2} s, metadata {:.2} s ({:.0} assets/s) next to \
         the server's ingest alone {:.2} s ({:.0} assets/s, {:.2}x the agent's phase): limited by the server, not the \
         reader: {}",
        if unchanged_goal { "met" } else { "NOT met" },
        unchanged_wall.as_secs_f64(),
        read.as_secs_f64(),
        metadata.as_secs_f64(),
        rate(metadata),
        ingest_alone.as_secs_f64(),
        rate(ingest_alone),
        ingest_alone.as_secs_f64() / metadata.as_secs_f64().max(1e-9),
        if server_bound { "met" } else { "NOT met" }
    );
    println!(
        "json: {}",
        serde_json::json!({
            "scenario": "agent passes", "assets": assets, "filesOnDisk": on_disk, "runs": runs,
            "firstWallS": first_wall.as_secs_f64(), "firstAssetsPerS": rate(first_wall),
            "readS": read.as_secs_f64(), "hashS": pick(&|p| ms(p.first.1.hash_ms)).as_secs_f64(),
            "metadataS": metadata.as_secs_f64(), "metadataAssetsPerS": rate(metadata),
            "uploadS": pick(&|p| ms(p.first.1.upload_ms)).as_secs_f64(),
            "serverIngestAloneS": ingest_alone.as_secs_f64(),
            "unchangedWallS": unchanged_wall.as_secs_f64(), "unchangedGoalMet": unchanged_goal,
            "toggledWallS": toggled_wall.as_secs_f64(), "serverBound": server_bound, "cores": bench::cores(),
        })
    );
    Ok(())
}

/// One run's passes, each with its wall time and its own report.
struct Passes {
    first: (Duration, PassFigures),
    unchanged: (Duration, PassFigures),
    toggled: (Duration, PassFigures),
}

/// Flips the favourite flag of the first clone, as a user clicking the heart in Photos.
async fn toggle_favorite(database: &Path) -> Result<()> {
    let options = sqlx::sqlite::SqliteConnectOptions::new().filename(database);
    let mut db = sqlx::SqliteConnection::connect_with(&options).await?;
    let done = sqlx::query("UPDATE ZASSET SET ZFAVORITE = 1 - ZFAVORITE WHERE Z_PK = ?")
        .bind(BASE + 1)
        .execute(&mut db)
        .await?;
    db.close().await?;
    if done.rows_affected() != 1 {
        bail!("toggling a favourite changed {} rows", done.rows_affected());
    }
    Ok(())
}

/// The server ingesting `items` (as `scan --json` prints them) from a bare client: batches of 100, 4 in flight,
/// on a fresh server, every item checked `created`. The bound of an agent's first metadata phase.
async fn server_ingest(data: &Path, items: &[serde_json::Value]) -> Result<Duration> {
    use futures::StreamExt as _;
    let server = Server::start(data, &[]).await?;
    let url = format!("{}/client/iphoto/sync", server.url);
    let started = Instant::now();
    let answers: Vec<Result<usize>> = futures::stream::iter(items.chunks(100))
        .map(|chunk| {
            let request = server
                .http
                .post(&url)
                .bearer_auth(&server.token)
                .json(&serde_json::json!({ "libraryId": "ingest-peer", "items": chunk }));
            async move {
                let response = request.send().await?;
                if !response.status().is_success() {
                    bail!("sync answered {}", response.status());
                }
                let answer: serde_json::Value = response.json().await?;
                let created = answer["results"]
                    .as_array()
                    .map_or(0, |r| r.iter().filter(|r| r["outcome"] == "created").count());
                anyhow::Ok(created)
            }
        })
        .buffer_unordered(4)
        .collect()
        .await;
    let elapsed = started.elapsed();
    server.stop()?;
    let created: usize = answers.into_iter().collect::<Result<Vec<_>>>()?.iter().sum();
    if created != items.len() {
        bail!("the server created {created} of {} items", items.len());
    }
    Ok(elapsed)
}

/// The rows the reader reads, dumped as JSON by the sqlite3 shell: assets with their attributes, and resources.
const DUMP_SQL: &str = "SELECT a.*, aa.* FROM ZASSET a LEFT JOIN ZADDITIONALASSETATTRIBUTES aa ON aa.ZASSET = a.Z_PK \
     ORDER BY a.Z_PK; SELECT * FROM ZINTERNALRESOURCE ORDER BY Z_PK;";

/// Builds the bundle: fixture database, on-disk assets cloned `assets` times, files written for the
/// `on_disk_percent` share (others made iCloud-only). Returns the number of files on disk.
async fn build_library(bundle: &Path, assets: u64, on_disk_percent: u64) -> Result<u64> {
    std::fs::create_dir_all(bundle.join("database"))?;
    // `shared/` sits beside the repository checkout, as for the agent's tests.
    let fixture = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/reference/fixture_photos11.sql");
    let sql = std::fs::read_to_string(&fixture).with_context(|| format!("reading {}", fixture.display()))?;
    let options = sqlx::sqlite::SqliteConnectOptions::new()
        .filename(bundle.join("database/Photos.sqlite"))
        .create_if_missing(true);
    let mut db = sqlx::SqliteConnection::connect_with(&options).await?;
    sqlx::raw_sql(sqlx::AssertSqlSafe(sql)).execute(&mut db).await?;

    let mut script = String::from("BEGIN;\n");
    let numbers =
        format!("WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < {assets})");
    let k = TEMPLATES.len();
    for (slot, template) in TEMPLATES.iter().enumerate() {
        let filter = format!("n.i % {k} = {slot}");
        for (table, link, substitutions) in [
            ("ZASSET", "Z_PK", ASSET_SUBSTITUTIONS),
            ("ZADDITIONALASSETATTRIBUTES", "ZASSET", ATTRIBUTE_SUBSTITUTIONS),
            ("ZINTERNALRESOURCE", "ZASSET", RESOURCE_SUBSTITUTIONS),
        ] {
            let columns = table_columns(&mut db, table).await?;
            let values: Vec<String> = columns
                .iter()
                .map(|c| {
                    substitutions.iter().find(|(name, _)| name == c).map_or_else(
                        || format!("a.{c}"),
                        |(_, expr)| expr.replace("{BASE}", &BASE.to_string()),
                    )
                })
                .collect();
            writeln!(
                script,
                "{numbers} INSERT INTO {table} ({}) SELECT {} FROM n JOIN {table} a ON a.{link} = {template} \
                 WHERE {filter} ORDER BY n.i, a.Z_PK;",
                columns.join(", "),
                values.join(", ")
            )?;
        }
    }
    // The fixture's own rows go; the album join points at the first clones, in order.
    for table in ["ZASSET", "ZADDITIONALASSETATTRIBUTES"] {
        writeln!(script, "DELETE FROM {table} WHERE Z_PK < {BASE};")?;
    }
    writeln!(script, "DELETE FROM ZINTERNALRESOURCE WHERE ZASSET < {BASE};")?;
    writeln!(script, "DELETE FROM Z_33ASSETS;")?;
    writeln!(
        script,
        "INSERT INTO Z_33ASSETS SELECT 3, Z_PK, (Z_PK - {BASE}) * 1024 FROM ZASSET ORDER BY Z_PK LIMIT 500;"
    )?;
    // Past the on-disk share, originals are only in iCloud: not available locally, no file written.
    writeln!(
        script,
        "UPDATE ZINTERNALRESOURCE SET ZLOCALAVAILABILITY = -1, ZREMOTEAVAILABILITY = 1 \
         WHERE (ZASSET - {BASE}) % 100 >= {on_disk_percent};"
    )?;
    writeln!(
        script,
        "UPDATE Z_PRIMARYKEY SET Z_MAX = (SELECT MAX(Z_PK) FROM ZASSET) WHERE Z_NAME = 'Asset';\nCOMMIT;"
    )?;
    sqlx::raw_sql(sqlx::AssertSqlSafe(script))
        .execute(&mut db)
        .await?;
    db.close().await?;

    // Files at the paths the reader resolves, for assets on disk: small, distinct contents.
    let library = iphoto_agent::library::PhotosLibrary::open(bundle).await?;
    let read = library.assets().await?;
    if read.len() as u64 != assets {
        bail!("the reader sees {} assets, expected {assets}", read.len());
    }
    let mut written = 0u64;
    for asset in &read {
        // The clone number is the UUID's first field; the on-disk share was chosen from it above.
        let clone = u64::from_str_radix(asset.uuid.get(..8).unwrap_or_default(), 16)?;
        if clone % 100 >= on_disk_percent {
            continue;
        }
        for file in &asset.files {
            if let Some(dir) = file.path.parent() {
                std::fs::create_dir_all(dir)?;
            }
            let mut bytes = format!("{} {:?}\n", asset.uuid, file.resource_type).into_bytes();
            bytes.resize(2048 + (written as usize % 7) * 512, b'.');
            std::fs::write(&file.path, &bytes)?;
            written += 1;
        }
    }
    Ok(written)
}

/// `printf` of a UUID for clone `n.i`.
const UUID: &str = "printf('%08X-BE00-4000-8000-%012X', n.i, n.i)";

const ASSET_SUBSTITUTIONS: &[(&str, &str)] = &[
    ("Z_PK", "{BASE} + n.i"),
    ("ZUUID", UUID),
    ("ZDIRECTORY", "substr(printf('%08X', n.i), 1, 1)"),
    (
        "ZFILENAME",
        "printf('%08X-BE00-4000-8000-%012X', n.i, n.i) || substr(a.ZFILENAME, 37)",
    ),
    ("ZADDITIONALATTRIBUTES", "{BASE} + n.i"),
    ("ZDATECREATED", "a.ZDATECREATED - n.i * 3600"),
    (
        "ZMEDIAGROUPUUID",
        "CASE WHEN a.ZMEDIAGROUPUUID IS NULL THEN NULL ELSE printf('%08X-BE01-4000-8000-%012X', n.i, n.i) END",
    ),
    ("ZFAVORITE", "n.i % 17 = 0"),
    // Every clone is in iCloud, so those without files on disk are iCloud-only (as with "Optimize Mac Storage").
    ("ZCLOUDASSETGUID", "printf('bench-cloud-guid-%010d', n.i)"),
];

const ATTRIBUTE_SUBSTITUTIONS: &[(&str, &str)] = &[
    ("Z_PK", "{BASE} + n.i"),
    ("ZASSET", "{BASE} + n.i"),
    (
        "ZORIGINALFILENAME",
        "printf('IMG_%06d', n.i) || substr(a.ZORIGINALFILENAME, 9)",
    ),
    ("ZORIGINALSTABLEHASH", "printf('Abench%010d', n.i)"),
];

const RESOURCE_SUBSTITUTIONS: &[(&str, &str)] = &[
    ("Z_PK", "NULL"),
    ("ZASSET", "{BASE} + n.i"),
    (
        "ZFINGERPRINT",
        "CASE WHEN a.ZFINGERPRINT IS NULL THEN NULL ELSE printf('Abench%010d', n.i) END",
    ),
];

async fn table_columns(db: &mut sqlx::SqliteConnection, table: &str) -> Result<Vec<String>> {
    let rows: Vec<(String,)> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT name FROM pragma_table_info('{table}') ORDER BY cid"
    )))
    .fetch_all(db)
    .await?;
    Ok(rows.into_iter().map(|(name,)| name).collect())
}

/// Times a command with its stdout thrown away (it is only produced, as a user piping it would).
fn time_to_null(command: &mut Command) -> Result<Sample> {
    time_command(command.stdout(Stdio::null()))
}

/// The figures of a pass, from `status --json`.
#[derive(Debug, Clone, Default, serde::Deserialize)]
#[serde(rename_all = "camelCase", default)]
struct PassFigures {
    items_sent: u64,
    uploaded: u64,
    files_hashed: u64,
    unavailable: u64,
    icloud_only: u64,
    read_ms: u64,
    hash_ms: u64,
    metadata_ms: u64,
    albums_ms: u64,
    upload_ms: u64,
    bytes_uploaded: u64,
}

/// One `iphoto-agent sync --once`, timed from outside; its own report read back with `status --json`.
fn agent_pass(
    agent: &Path,
    server: &Server,
    data: &Path,
    library: &Path,
    state: &Path,
) -> Result<(Duration, PassFigures)> {
    let sample = time_command(
        Command::new(agent)
            .args(["sync", "--once", "--uploads", "4", "--server", &server.url])
            .arg("--token-file")
            .arg(data.join("client.token"))
            .arg("--library")
            .arg(library)
            .arg("--state-dir")
            .arg(state)
            .env("IPHOTO_LOG", "warn")
            .stdout(Stdio::null()),
    )?;
    let output = Command::new(agent)
        .args(["status", "--json", "--state-dir"])
        .arg(state)
        .output()?;
    if !output.status.success() {
        bail!("status failed: {}", String::from_utf8_lossy(&output.stderr));
    }
    let status: serde_json::Value = serde_json::from_slice(&output.stdout).context("status --json")?;
    let figures: PassFigures = serde_json::from_value(status["lastPass"].clone())?;
    Ok((sample.elapsed, figures))
}

async fn stats(server: &Server) -> Result<serde_json::Value> {
    let response = server
        .http
        .get(format!("{}/client/iphoto/stats", server.url))
        .bearer_auth(&server.token)
        .send()
        .await?;
    if !response.status().is_success() {
        bail!("stats answered {}", response.status());
    }
    Ok(response.json().await?)
}

// ---------------------------------------------------------------------------------------------------------------
// Scenario 2: 1,000 originals of 2–8 MB, the agent next to curl.

fn uploads_scenario(
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
        write_distinct(&path, size, n as u64)?;
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

/// `len` bytes, distinct per `seed` (so the server stores every file), cheap to generate.
fn write_distinct(path: &Path, len: u64, seed: u64) -> Result<()> {
    use std::io::Write as _;
    let mut file = std::io::BufWriter::new(std::fs::File::create(path)?);
    let mut x: u64 = 0x9E37_79B9_7F4A_7C15 ^ (seed.wrapping_mul(0xBF58_476D_1CE4_E5B9) | 1);
    let mut block = vec![0u8; 1 << 20];
    let mut left = len;
    while left > 0 {
        for chunk in block.chunks_exact_mut(8) {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            chunk.copy_from_slice(&x.to_le_bytes());
        }
        let n = usize::try_from(left.min(block.len() as u64))?;
        file.write_all(&block[..n])?;
        left -= n as u64;
    }
    file.flush()?;
    Ok(())
}

fn file_sha256(path: &Path) -> Result<String> {
    use std::io::Read as _;
    let mut file = std::fs::File::open(path)?;
    let mut hasher = storage::Sha256Hasher::new();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = file.read(&mut buf)?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
    }
    Ok(hasher.finish().to_hex())
}
