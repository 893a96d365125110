//! Metadata ingest benchmark: the real `iphoto-server` takes `POST /client/iphoto/sync` batches of 100 photos,
//! several requests in flight, on SQLite and then on PostgreSQL; next to it, in the same run and on the same
//! database kind, the same number of rows goes into a bare table with the columns of `icloud.photos` by a plain
//! multi-row `INSERT` (100 rows a statement, a transaction each) through sqlx. Then the same batches are sent
//! again, unchanged, next to a plain `SELECT` of the same rows by their natural key.
//!
//! `ingest` runs the full benchmark (100,000 photos, 3 runs); `ingest --small` the CI mode (5,000 photos, 1 run).
//! Every run starts a fresh server on a fresh catalog (and the peer a fresh table), so runs do not grow the
//! database of the next one; our peak RSS is the server's own `VmHWM`. Every answer is checked (each item
//! `created` on the first pass, `unchanged` on the second), so an error cannot pass for a fast run.
//!
//! Photos are sent in order of capture, as the agent sends them (`--order date`, the default); `--order
//! scattered` sends them as the generator makes them, each batch spread over a year of dates (a client that
//! does not sort), which costs the catalog's date-ordered indexes a page per photo.
//!
//! The peer is a floor, not an equal: it does no validation, no metadata hashing, no catalog version, no
//! resource rows and no HTTP/JSON; its table has only the primary key and the `(library_id, local_identifier)`
//! unique key, not the server's secondary indexes.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result, bail};
use bench::server::Server;
use bench::{Row, Sample, report};
use bytes::Bytes;
use clap::Parser;
use futures::{StreamExt as _, TryStreamExt as _};
use sqlx::Connection as _;

/// Photos per sync request and per peer statement, as the agent sends them.
const BATCH: usize = 100;
/// The absolute goal for ours, photos per second.
const GOAL_PHOTOS_PER_S: f64 = 20_000.0;
/// The agent's library id used by every run.
const LIBRARY: &str = "bench-library";

#[derive(Parser)]
struct Cli {
    /// CI mode: 5,000 photos and one run, so the benchmark cannot rot.
    #[arg(long)]
    small: bool,
    /// Photos per run.
    #[arg(long)]
    photos: Option<usize>,
    /// Runs of each side.
    #[arg(long)]
    runs: Option<usize>,
    /// Sync requests (and peer statements on PostgreSQL) in flight.
    #[arg(long, default_value_t = 4)]
    in_flight: usize,
    /// Only this database (`sqlite` or `postgres`); both when absent.
    #[arg(long, value_enum)]
    db: Option<Db>,
    /// The order photos are sent in: by capture date, as the agent sends them, or scattered over the year.
    #[arg(long, value_enum, default_value_t = Order::Date)]
    order: Order,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum Order {
    Date,
    Scattered,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum Db {
    Sqlite,
    Postgres,
}

impl Db {
    fn name(self) -> &'static str {
        match self {
            Db::Sqlite => "SQLite",
            Db::Postgres => "PostgreSQL",
        }
    }
}

/// One photo, the source of both the sync item and the peer's row.
struct Photo {
    local_identifier: String,
    taken_at: String,
    taken_at_ms: i64,
    width: i64,
    height: i64,
    favorite: bool,
    latitude: f64,
    longitude: f64,
    original_filename: String,
    keywords: Vec<String>,
    people: Vec<String>,
    size: u64,
}

fn photos(n: usize) -> Vec<Photo> {
    (0..n)
        .map(|i| {
            let month = 1 + i % 12;
            let day = 1 + (i / 12) % 28;
            let (h, m, s) = ((i / 336) % 24, (i / 8064) % 60, i % 60);
            Photo {
                local_identifier: format!(
                    "{:08X}-{:04X}-4000-8000-{:012X}/L0/001",
                    i / 65_536,
                    i % 65_536,
                    i * 7919
                ),
                taken_at: format!("2024-{month:02}-{day:02}T{h:02}:{m:02}:{s:02}+02:00"),
                taken_at_ms: 1_704_067_200_000 + i as i64 * 1_000,
                width: if i % 3 == 0 { 3024 } else { 4032 },
                height: if i % 3 == 0 { 4032 } else { 3024 },
                favorite: i % 17 == 0,
                latitude: 48.0 + (i % 1000) as f64 / 1000.0,
                longitude: 2.0 + (i % 777) as f64 / 1000.0,
                original_filename: format!("IMG_{:04}.HEIC", i % 10_000),
                keywords: vec!["beach".into(), format!("trip{}", i % 50)],
                people: if i % 4 == 0 { vec!["Ann".into()] } else { vec![] },
                size: 1_500_000 + (i as u64 % 100_000) * 37,
            }
        })
        .collect()
}

fn item(p: &Photo) -> serde_json::Value {
    serde_json::json!({
        "localIdentifier": p.local_identifier,
        "kind": "photo", "livePhoto": false, "width": p.width, "height": p.height,
        "takenAt": p.taken_at, "timeZone": "Europe/Paris", "modifiedAt": "2024-06-02T10:00:00Z",
        "favorite": p.favorite, "hidden": false, "trashed": false,
        "latitude": p.latitude, "longitude": p.longitude,
        "originalFilename": p.original_filename, "uti": "public.heic", "edited": false,
        "keywords": p.keywords, "people": p.people,
        "resources": [{ "type": "original", "size": p.size, "available": true }]
    })
}

fn main() -> Result<()> {
    let cli = Cli::parse();
    let n = cli.photos.unwrap_or(if cli.small { 5_000 } else { 100_000 });
    let runs = cli.runs.unwrap_or(if cli.small { 1 } else { 3 });
    let in_flight = cli.in_flight.max(1);
    let mut photos = photos(n);
    if cli.order == Order::Date {
        // One offset for all, so the strings sort as the instants do.
        photos.sort_by(|a, b| a.taken_at.cmp(&b.taken_at));
    }
    // Request bodies are serialised before the clock starts: the benchmark measures the server.
    let bodies: Vec<Bytes> = photos
        .chunks(BATCH)
        .map(|chunk| {
            let items: Vec<_> = chunk.iter().map(item).collect();
            serde_json::to_vec(&serde_json::json!({ "libraryId": LIBRARY, "items": items })).map(Bytes::from)
        })
        .collect::<Result<_, _>>()?;
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    let work = tempfile::Builder::new()
        .prefix("iphoto-bench-ingest-")
        .tempdir()?;
    let postgres = harness::Postgres::start().context("starting PostgreSQL")?;

    let mut rows = Vec::new();
    let mut rates = Vec::new();
    let dbs = cli
        .db
        .map_or_else(|| vec![Db::Sqlite, Db::Postgres], |db| vec![db]);
    for db in dbs {
        let (mut ours_new, mut peer_new, mut ours_same, mut peer_same) = (vec![], vec![], vec![], vec![]);
        for run in 0..runs {
            let run_dir = work.path().join(format!("{}-{run}", db.name()));
            std::fs::create_dir_all(&run_dir)?;
            let (ours_url, peer_url) = match db {
                Db::Sqlite => (None, None),
                Db::Postgres => (Some(postgres.fresh_database()?), Some(postgres.fresh_database()?)),
            };
            // Ours: a fresh server on a fresh catalog.
            let (new, same) = runtime.block_on(ours(
                &run_dir.join("server"),
                ours_url.as_deref(),
                &bodies,
                in_flight,
            ))?;
            ours_new.push(new);
            ours_same.push(same);
            // The peer: a fresh bare table on the same kind of database.
            let (new, same) = runtime.block_on(async {
                match db {
                    Db::Sqlite => peer_sqlite(&run_dir.join("peer.sqlite"), &photos).await,
                    Db::Postgres => {
                        peer_postgres(peer_url.as_deref().unwrap_or_default(), &photos, in_flight).await
                    }
                }
            })?;
            peer_new.push(new);
            peer_same.push(same);
            std::fs::remove_dir_all(&run_dir)?;
        }
        let rate = |s: &[Sample]| {
            n as f64 / bench::median(&s.iter().map(|s| s.elapsed).collect::<Vec<_>>()).as_secs_f64()
        };
        let (new_rate, peer_rate, same_rate, peer_same_rate) = (
            rate(&ours_new),
            rate(&peer_new),
            rate(&ours_same),
            rate(&peer_same),
        );
        let met = if new_rate >= GOAL_PHOTOS_PER_S {
            "met"
        } else {
            "NOT met"
        };
        rates.push(format!(
            "ingest {} ({n} photos, {in_flight} in flight): new {new_rate:.0} photos/s (goal ≥ {GOAL_PHOTOS_PER_S:.0}: {met}) vs plain INSERT {peer_rate:.0} rows/s; unchanged re-sync {same_rate:.0} photos/s vs plain SELECT {peer_same_rate:.0} rows/s",
            db.name()
        ));
        rows.push(Row::new(
            &format!(
                "sync {n} new, {}, {:?} order ({new_rate:.0} photos/s, goal ≥ {GOAL_PHOTOS_PER_S:.0}/s {met})",
                db.name(),
                cli.order
            ),
            "POST /client/iphoto/sync ×100",
            "multi-row INSERT ×100",
            0,
            &ours_new,
            &peer_new,
            // The absolute goal as a ratio to this run's peer: ours ≥ GOAL photos/s ⇔ peer/ours ≥ peer rate/GOAL.
            peer_rate / GOAL_PHOTOS_PER_S,
        ));
        rows.push(Row::new(
            &format!("re-sync {n} unchanged, {} ({same_rate:.0} photos/s)", db.name()),
            "POST /client/iphoto/sync ×100",
            "SELECT … IN (100 keys)",
            0,
            &ours_same,
            &peer_same,
            0.0,
        ));
    }
    for line in &rates {
        println!("{line}");
    }
    report("ingest: metadata sync over HTTP vs plain SQL", &rows);
    Ok(())
}

/// Starts a server, sends every batch (all must come back `created`), then every batch again (all
/// `unchanged`); the samples carry the server's peak RSS.
async fn ours(
    data_dir: &Path,
    database_url: Option<&str>,
    bodies: &[Bytes],
    in_flight: usize,
) -> Result<(Sample, Sample)> {
    let mut envs = vec![];
    if let Some(url) = database_url {
        envs.push(("IPHOTO_DATABASE_URL".to_owned(), url.to_owned()));
    }
    let server = Server::start(data_dir, &envs).await?;
    let new = sync_all(&server, bodies, "created", in_flight).await?;
    let new = Sample {
        elapsed: new,
        peak_rss_kib: server.peak_rss_kib(),
    };
    let same = sync_all(&server, bodies, "unchanged", in_flight).await?;
    let same = Sample {
        elapsed: same,
        peak_rss_kib: server.peak_rss_kib(),
    };
    server.stop()?;
    Ok((new, same))
}

#[derive(serde::Deserialize)]
struct SyncAnswer {
    results: Vec<SyncResult>,
}

#[derive(serde::Deserialize)]
#[serde(rename_all = "camelCase")]
struct SyncResult {
    local_identifier: String,
    outcome: String,
    reason: Option<String>,
}

/// Posts every body, `in_flight` at a time, and checks every item came back as `expected`.
async fn sync_all(server: &Server, bodies: &[Bytes], expected: &str, in_flight: usize) -> Result<Duration> {
    let url = format!("{}/client/iphoto/sync", server.url);
    let started = Instant::now();
    futures::stream::iter(bodies.iter().cloned())
        .map(|body| {
            let request = server
                .http
                .post(&url)
                .bearer_auth(&server.token)
                .header(reqwest::header::CONTENT_TYPE, "application/json")
                .body(body);
            async move {
                let response = request.send().await?;
                let status = response.status();
                let text = response.bytes().await?;
                if !status.is_success() {
                    bail!("sync answered {status}: {}", String::from_utf8_lossy(&text));
                }
                let answer: SyncAnswer = serde_json::from_slice(&text).context("sync answer")?;
                if answer.results.len() != BATCH {
                    bail!("{} results for a batch of {BATCH}", answer.results.len());
                }
                if let Some(bad) = answer.results.iter().find(|r| r.outcome != expected) {
                    bail!(
                        "{} came back {} ({}), expected {expected}",
                        bad.local_identifier,
                        bad.outcome,
                        bad.reason.as_deref().unwrap_or("no reason")
                    );
                }
                anyhow::Ok(())
            }
        })
        .buffer_unordered(in_flight)
        .try_collect::<Vec<()>>()
        .await?;
    Ok(started.elapsed())
}

/// The columns of `icloud.photos`, in both migrations' order.
const COLUMNS: &str = "id, user_id, library_id, local_identifier, cloud_guid, fingerprint, kind, subtype, \
    live_photo, width, height, duration_ms, taken_at, taken_at_offset_s, time_zone, modified_at, favorite, \
    hidden, trashed, latitude, longitude, original_filename, uti, edited, title, caption, keywords, people, \
    metadata_sha256, version, created_at, updated_at, deleted_at";

/// A bare table with the columns of `icloud.photos` (migrations/sqlite/0001_catalog.sql): primary key and the
/// natural key only.
const SQLITE_TABLE: &str = "CREATE TABLE photos (
    id TEXT PRIMARY KEY, user_id TEXT NOT NULL, library_id TEXT NOT NULL, local_identifier TEXT NOT NULL,
    cloud_guid TEXT, fingerprint TEXT, kind TEXT NOT NULL, subtype TEXT, live_photo INTEGER NOT NULL,
    width INTEGER NOT NULL, height INTEGER NOT NULL, duration_ms INTEGER, taken_at INTEGER NOT NULL,
    taken_at_offset_s INTEGER NOT NULL, time_zone TEXT, modified_at INTEGER NOT NULL, favorite INTEGER NOT NULL,
    hidden INTEGER NOT NULL, trashed INTEGER NOT NULL, latitude REAL, longitude REAL,
    original_filename TEXT NOT NULL, uti TEXT NOT NULL, edited INTEGER NOT NULL, title TEXT, caption TEXT,
    keywords TEXT NOT NULL, people TEXT NOT NULL, metadata_sha256 TEXT NOT NULL, version INTEGER NOT NULL,
    created_at INTEGER NOT NULL, updated_at INTEGER NOT NULL, deleted_at INTEGER,
    UNIQUE (library_id, local_identifier))";

/// The same on PostgreSQL (migrations/postgres/0001_catalog.sql).
const POSTGRES_TABLE: &str = "CREATE TABLE photos (
    id TEXT PRIMARY KEY, user_id TEXT NOT NULL, library_id TEXT NOT NULL, local_identifier TEXT NOT NULL,
    cloud_guid TEXT, fingerprint TEXT, kind TEXT NOT NULL, subtype TEXT, live_photo BOOLEAN NOT NULL,
    width BIGINT NOT NULL, height BIGINT NOT NULL, duration_ms BIGINT, taken_at BIGINT NOT NULL,
    taken_at_offset_s BIGINT NOT NULL, time_zone TEXT, modified_at BIGINT NOT NULL, favorite BOOLEAN NOT NULL,
    hidden BOOLEAN NOT NULL, trashed BOOLEAN NOT NULL, latitude DOUBLE PRECISION, longitude DOUBLE PRECISION,
    original_filename TEXT NOT NULL, uti TEXT NOT NULL, edited BOOLEAN NOT NULL, title TEXT, caption TEXT,
    keywords TEXT NOT NULL, people TEXT NOT NULL, metadata_sha256 TEXT NOT NULL, version BIGINT NOT NULL,
    created_at BIGINT NOT NULL, updated_at BIGINT NOT NULL, deleted_at BIGINT,
    UNIQUE (library_id, local_identifier))";

/// One multi-row INSERT of `chunk`; the values are what the catalog would store (ids, JSON lists, a hash).
macro_rules! insert_rows {
    ($db:ty, $chunk:expr, $start:expr) => {{
        let mut qb = sqlx::QueryBuilder::<$db>::new(format!("INSERT INTO photos ({COLUMNS}) "));
        qb.push_values($chunk.iter().enumerate(), |mut b, (i, p): (usize, &Photo)| {
            let n = $start + i;
            b.push_bind(format!("ph_{n:016x}"))
                .push_bind("user-bench".to_owned())
                .push_bind(LIBRARY.to_owned())
                .push_bind(p.local_identifier.clone())
                .push_bind(None::<String>)
                .push_bind(None::<String>)
                .push_bind("photo".to_owned())
                .push_bind(None::<String>)
                .push_bind(false)
                .push_bind(p.width)
                .push_bind(p.height)
                .push_bind(None::<i64>)
                .push_bind(p.taken_at_ms)
                .push_bind(7_200_i64)
                .push_bind(Some("Europe/Paris".to_owned()))
                .push_bind(1_717_322_400_000_i64)
                .push_bind(p.favorite)
                .push_bind(false)
                .push_bind(false)
                .push_bind(Some(p.latitude))
                .push_bind(Some(p.longitude))
                .push_bind(p.original_filename.clone())
                .push_bind("public.heic".to_owned())
                .push_bind(false)
                .push_bind(None::<String>)
                .push_bind(None::<String>)
                .push_bind(serde_json::to_string(&p.keywords).unwrap_or_default())
                .push_bind(serde_json::to_string(&p.people).unwrap_or_default())
                .push_bind(format!("{n:064x}"))
                .push_bind(1_i64)
                .push_bind(1_717_322_400_000_i64)
                .push_bind(1_717_322_400_000_i64)
                .push_bind(None::<i64>);
        });
        qb
    }};
}

/// One `SELECT id, metadata_sha256 … WHERE library_id = ? AND local_identifier IN (…)` of `chunk`.
macro_rules! select_rows {
    ($db:ty, $chunk:expr) => {{
        let mut qb =
            sqlx::QueryBuilder::<$db>::new("SELECT id, metadata_sha256 FROM photos WHERE library_id = ");
        qb.push_bind(LIBRARY.to_owned())
            .push(" AND local_identifier IN (");
        let mut list = qb.separated(", ");
        for p in $chunk {
            list.push_bind(p.local_identifier.clone());
        }
        list.push_unseparated(")");
        qb
    }};
}

/// The peer on SQLite: one connection (SQLite has one writer), WAL and `synchronous = NORMAL` as the catalog.
async fn peer_sqlite(path: &Path, photos: &[Photo]) -> Result<(Sample, Sample)> {
    use sqlx::sqlite::{SqliteConnectOptions, SqliteConnection, SqliteJournalMode, SqliteSynchronous};
    let options = SqliteConnectOptions::new()
        .filename(path)
        .create_if_missing(true)
        .journal_mode(SqliteJournalMode::Wal)
        .synchronous(SqliteSynchronous::Normal)
        .busy_timeout(Duration::from_secs(10));
    let mut conn = SqliteConnection::connect_with(&options).await?;
    sqlx::query(SQLITE_TABLE).execute(&mut conn).await?;
    let started = Instant::now();
    for (k, chunk) in photos.chunks(BATCH).enumerate() {
        let mut tx = conn.begin().await?;
        let done = insert_rows!(sqlx::Sqlite, chunk, k * BATCH)
            .build()
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        check_count(done.rows_affected(), chunk.len())?;
    }
    let new = started.elapsed();
    let started = Instant::now();
    for chunk in photos.chunks(BATCH) {
        let found = select_rows!(sqlx::Sqlite, chunk)
            .build()
            .fetch_all(&mut conn)
            .await?;
        check_count(found.len() as u64, chunk.len())?;
    }
    let same = started.elapsed();
    conn.close().await?;
    Ok((peer_sample(new), peer_sample(same)))
}

/// The peer on PostgreSQL: a pool with `in_flight` statements at a time, as many as our sync requests.
async fn peer_postgres(url: &str, photos: &[Photo], in_flight: usize) -> Result<(Sample, Sample)> {
    let pool = sqlx::postgres::PgPoolOptions::new()
        .max_connections(u32::try_from(in_flight)?)
        .min_connections(u32::try_from(in_flight)?)
        .connect(url)
        .await?;
    sqlx::query(POSTGRES_TABLE).execute(&pool).await?;
    // Open every connection before the clock starts, as the server's pool is open before its first request.
    let warm: Vec<_> = futures::future::try_join_all((0..in_flight).map(|_| pool.acquire())).await?;
    drop(warm);
    let started = Instant::now();
    futures::stream::iter(photos.chunks(BATCH).enumerate())
        .map(|(k, chunk)| {
            let pool = &pool;
            async move {
                let mut tx = pool.begin().await?;
                let done = insert_rows!(sqlx::Postgres, chunk, k * BATCH)
                    .build()
                    .execute(&mut *tx)
                    .await?;
                tx.commit().await?;
                check_count(done.rows_affected(), chunk.len())
            }
        })
        .buffer_unordered(in_flight)
        .try_collect::<Vec<()>>()
        .await?;
    let new = started.elapsed();
    // Statistics for the lookups, untimed: without them PostgreSQL planned the peer's `IN (100 keys)` as a
    // scan of the whole table, slower than the server's own lookups (the server analyzes as it grows).
    sqlx::query("ANALYZE photos").execute(&pool).await?;
    let started = Instant::now();
    futures::stream::iter(photos.chunks(BATCH))
        .map(|chunk| {
            let pool = &pool;
            async move {
                let found = select_rows!(sqlx::Postgres, chunk)
                    .build()
                    .fetch_all(pool)
                    .await?;
                check_count(found.len() as u64, chunk.len())
            }
        })
        .buffer_unordered(in_flight)
        .try_collect::<Vec<()>>()
        .await?;
    let same = started.elapsed();
    pool.close().await;
    Ok((peer_sample(new), peer_sample(same)))
}

fn check_count(got: u64, expected: usize) -> Result<()> {
    if got != expected as u64 {
        bail!("peer statement touched {got} rows, expected {expected}");
    }
    Ok(())
}

fn peer_sample(elapsed: Duration) -> Sample {
    Sample {
        elapsed,
        peak_rss_kib: 0,
    }
}
