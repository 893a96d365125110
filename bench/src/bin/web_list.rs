//! Web list benchmark: `GET /my/photos/` of the real `iphoto-server` over HTTP at 1,000,000 photos, the first
//! page and a deep page (the middle of the library), on SQLite and then on PostgreSQL; next to it, in the same
//! run and on the same database, the bare SQL keyset query of the same page through sqlx (the floor: no auth,
//! no presigning, no JSON, no HTTP). p50 and p99 of each; the goal is p99 < 10 ms over HTTP. The anchor from
//! outside: Immich's timeline takes 1–2 s at 800,000 assets.
//!
//! The catalog is built fast by bulk SQL straight into the server's tables (photos, their stored originals
//! and thumbnail enrichments, so every item carries two presigned URLs), after the server created them. The
//! deep page's cursor is found by walking the list with the largest page size to the middle, which also
//! checks that the walk is in order. `web_list --small` is the CI mode (20,000 photos).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;
use std::time::Instant;

use anyhow::{Context as _, Result, bail};
use bench::catalog::{Conn, Db, Shape, load, percentile};
use bench::server::Server;
use clap::Parser;
use serde::Serialize;
use sqlx::Connection as _;

/// Items per measured page (the route's default).
const PAGE: usize = 100;
/// The goal: p99 over HTTP, milliseconds.
const GOAL_P99_MS: f64 = 10.0;

#[derive(Parser)]
struct Cli {
    /// CI mode: 20,000 photos, 200 requests per measurement.
    #[arg(long)]
    small: bool,
    /// Photos in the catalog.
    #[arg(long)]
    photos: Option<usize>,
    /// Requests per measurement (each side, each page).
    #[arg(long)]
    requests: Option<usize>,
}

#[derive(Debug, Serialize)]
struct Line {
    db: &'static str,
    page: &'static str,
    photos: usize,
    requests: usize,
    http_p50_ms: f64,
    http_p99_ms: f64,
    sql_p50_ms: f64,
    sql_p99_ms: f64,
    goal_p99_ms: f64,
    goal_met: bool,
    cores: usize,
}

fn main() -> Result<()> {
    let cli = Cli::parse();
    let n = cli.photos.unwrap_or(if cli.small { 20_000 } else { 1_000_000 });
    let requests = cli.requests.unwrap_or(if cli.small { 200 } else { 2_000 });
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    let work = tempfile::Builder::new().prefix("iphoto-bench-web-").tempdir()?;
    let postgres = harness::Postgres::start().context("starting PostgreSQL")?;
    let mut lines = Vec::new();
    for db in [Db::Sqlite, Db::Postgres] {
        let url = match db {
            Db::Sqlite => None,
            Db::Postgres => Some(postgres.fresh_database()?),
        };
        let dir = work.path().join(db.name());
        lines.extend(runtime.block_on(run(db, &dir, url.as_deref(), n, requests))?);
        std::fs::remove_dir_all(&dir)?;
    }
    println!(
        "\n## web_list: GET /my/photos/ over HTTP vs the bare SQL keyset query ({} cores)",
        bench::cores()
    );
    println!(
        "| database | page | photos | requests | HTTP p50 ms | HTTP p99 ms | SQL p50 ms | SQL p99 ms | goal p99 < {GOAL_P99_MS} ms |"
    );
    println!("|---|---|---|---|---|---|---|---|---|");
    for l in &lines {
        println!(
            "| {} | {} | {} | {} | {:.2} | {:.2} | {:.2} | {:.2} | {} |",
            l.db,
            l.page,
            l.photos,
            l.requests,
            l.http_p50_ms,
            l.http_p99_ms,
            l.sql_p50_ms,
            l.sql_p99_ms,
            if l.goal_met { "met" } else { "NOT met" }
        );
    }
    for l in &lines {
        println!("json: {}", serde_json::to_string(l)?);
    }
    Ok(())
}

async fn run(db: Db, dir: &Path, url: Option<&str>, n: usize, requests: usize) -> Result<Vec<Line>> {
    let mut envs = Vec::new();
    if let Some(url) = url {
        envs.push(("IPHOTO_DATABASE_URL".to_owned(), url.to_owned()));
    }
    let server = Server::start(dir, &envs).await?;
    let web = std::fs::read_to_string(dir.join("web.token"))?.trim().to_owned();
    let mut conn = match url {
        Some(url) => Conn::Postgres(sqlx::PgConnection::connect(url).await?),
        None => {
            let mut c =
                sqlx::SqliteConnection::connect(&format!("sqlite:{}", dir.join("catalog.sqlite3").display()))
                    .await?;
            sqlx::query("ATTACH DATABASE $1 AS icloud")
                .bind(dir.join("icloud.sqlite3").display().to_string())
                .execute(&mut c)
                .await?;
            Conn::Sqlite(c)
        }
    };
    let loaded = Instant::now();
    let user = load(
        &mut conn,
        n,
        Shape {
            first_ms: 1_300_000_000_000,
            step_ms: 300_000,
            offset_s: 7200,
            words: false,
        },
    )
    .await?;
    eprintln!(
        "{}: loaded {n} photos in {:.1} s",
        db.name(),
        loaded.elapsed().as_secs_f64()
    );

    // The deep page: walk with the largest pages to the middle of the list.
    let client = reqwest::Client::new();
    let get = |path: String| {
        let client = client.clone();
        let url = format!("{}{path}", server.url);
        let web = web.clone();
        async move {
            let response = client.get(url).bearer_auth(web).send().await?;
            if !response.status().is_success() {
                bail!("{}: {}", response.status(), response.text().await?);
            }
            Ok::<serde_json::Value, anyhow::Error>(response.json().await?)
        }
    };
    let mut cursor = String::new();
    let mut last = (i64::MAX, String::new());
    let mut walked = 0;
    while walked < n / 2 {
        let page = get(format!("/my/photos/?limit=500{cursor}")).await?;
        let items = page["items"].as_array().context("items")?;
        for item in items {
            let taken = chrono::DateTime::parse_from_rfc3339(item["takenAt"].as_str().context("takenAt")?)?
                .timestamp_millis();
            let key = (taken, item["id"].as_str().context("id")?.to_owned());
            if key >= last {
                bail!("the list is out of order at {key:?}");
            }
            last = key;
        }
        walked += items.len();
        cursor = format!(
            "&cursor={}",
            page["nextCursor"].as_str().context("the list ended early")?
        );
    }

    let mut lines = Vec::new();
    for (page, query, after) in [
        ("first", format!("/my/photos/?limit={PAGE}"), None),
        (
            "deep (middle)",
            format!("/my/photos/?limit={PAGE}{cursor}"),
            Some(last.clone()),
        ),
    ] {
        let (mut http, mut sql) = (Vec::with_capacity(requests), Vec::with_capacity(requests));
        // Warm both paths, then alternate.
        for _ in 0..10 {
            get(query.clone()).await?;
            bare(&mut conn, &user, after.as_ref()).await?;
        }
        for _ in 0..requests {
            let started = Instant::now();
            let answer = get(query.clone()).await?;
            http.push(started.elapsed());
            if answer["items"].as_array().map(Vec::len) != Some(PAGE) {
                bail!("a page of {PAGE} expected: {answer}");
            }
            let started = Instant::now();
            let rows = bare(&mut conn, &user, after.as_ref()).await?;
            sql.push(started.elapsed());
            if rows != PAGE + 1 {
                bail!("the bare query returned {rows} rows");
            }
        }
        let (hp50, hp99) = (percentile(&mut http, 0.50), percentile(&mut http, 0.99));
        lines.push(Line {
            db: db.name(),
            page,
            photos: n,
            requests,
            http_p50_ms: hp50,
            http_p99_ms: hp99,
            sql_p50_ms: percentile(&mut sql, 0.50),
            sql_p99_ms: percentile(&mut sql, 0.99),
            goal_p99_ms: GOAL_P99_MS,
            goal_met: hp99 < GOAL_P99_MS,
            cores: bench::cores(),
        });
    }
    server.stop()?;
    Ok(lines)
}

/// The route's keyset query of one page (default filters), as bare SQL: what the database costs alone.
async fn bare(conn: &mut Conn, user: &str, after: Option<&(i64, String)>) -> Result<usize> {
    let keyset = if after.is_some() {
        " AND (p.taken_at, p.id) < ($2, $3)"
    } else {
        ""
    };
    let sql = format!(
        "SELECT p.id, p.local_identifier, p.taken_at, p.taken_at_offset_s, p.kind, p.favorite, p.width, \
             p.height, r.stored_sha256, r.stored_key, e.result AS thumbnail \
         FROM icloud.photos p \
         LEFT JOIN icloud.resources r ON r.photo_id = p.id AND r.resource_type = 'original' AND r.state = 'stored' \
         LEFT JOIN icloud.enrichments e ON e.photo_id = p.id AND e.kind = 'thumbnail' \
         WHERE p.user_id = $1 AND p.deleted_at IS NULL AND p.hidden = FALSE AND p.trashed = FALSE{keyset} \
         ORDER BY p.taken_at DESC, p.id DESC LIMIT {}",
        PAGE + 1
    );
    let (taken, id) = after.cloned().unwrap_or_default();
    let rows = match conn {
        Conn::Sqlite(c) => {
            let mut q = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(user);
            if after.is_some() {
                q = q.bind(taken).bind(id);
            }
            q.fetch_all(&mut *c).await?.len()
        }
        Conn::Postgres(c) => {
            let mut q = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(user);
            if after.is_some() {
                q = q.bind(taken).bind(id);
            }
            q.fetch_all(&mut *c).await?.len()
        }
    };
    Ok(rows)
}
