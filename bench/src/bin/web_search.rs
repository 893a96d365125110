//! Gallery search and scrubber benchmark: the real `iphoto-server` over HTTP at 1,000,000 photos spread over
//! 20 years, on SQLite and then on PostgreSQL, measuring what the gallery asks besides the timeline page:
//! a search for a common word (2 % of the photos), for a rare prefix (about ten photos), for two words,
//! the jump to a month 20 years back (`GET /my/photos/months/{month}`) and the scrubber's month counts
//! (`GET /my/photos/months`). Beside each, in the same run on the same database, the bare SQL the catalog
//! runs for it through sqlx (no auth, no presigning, no JSON, no HTTP), alternating. p50 and p99 of each.
//! Goals from issue 14: a scrub (the jump) under 200 ms; a search page under the timeline page's 20 ms p99.
//!
//! The catalog is bulk-loaded by SQL into the server's tables once the server created them, as `web_list`
//! does (its loader is repeated here rather than shared, so each benchmark reads on its own), with each
//! photo's folded searchable words in `search_text` (the FTS5 triggers and the GIN index take them as a
//! sync would write them). `web_search --small` is the CI mode (20,000 photos).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;
use std::time::Instant;

use anyhow::{Context as _, Result, bail};
use bench::catalog::{Conn, Db, Shape, load, percentile};
use bench::server::Server;
use clap::Parser;
use serde::Serialize;
use sqlx::Connection as _;

/// The first photo's time (2004-11-09) and the step between two timestamps (two photos share each): a
/// million photos span 20 years.
const FIRST_MS: i64 = 1_100_000_000_000;
const STEP_MS: i64 = 1_260_000;
/// The month 20 years back (the oldest of a full run's library).
const OLD_MONTH: &str = "2005-01";
/// Goals, milliseconds, over HTTP.
const GOAL_SCRUB_MS: f64 = 200.0;
const GOAL_PAGE_P99_MS: f64 = 20.0;

#[derive(Parser)]
struct Cli {
    /// CI mode: 20,000 photos, 30 requests per measurement.
    #[arg(long)]
    small: bool,
    /// Photos in the catalog.
    #[arg(long)]
    photos: Option<usize>,
    /// Requests per measurement (each side).
    #[arg(long)]
    requests: Option<usize>,
}

#[derive(Debug, Serialize)]
struct Line {
    db: &'static str,
    request: &'static str,
    photos: usize,
    requests: usize,
    items: usize,
    http_p50_ms: f64,
    http_p99_ms: f64,
    sql_p50_ms: f64,
    sql_p99_ms: f64,
    goal_ms: f64,
    goal_met: bool,
    cores: usize,
}

fn main() -> Result<()> {
    let cli = Cli::parse();
    let n = cli.photos.unwrap_or(if cli.small { 20_000 } else { 1_000_000 });
    let requests = cli.requests.unwrap_or(if cli.small { 30 } else { 300 });
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    let work = tempfile::Builder::new()
        .prefix("iphoto-bench-search-")
        .tempdir()?;
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
        "\n## web_search: search and scrubber over HTTP vs the bare SQL ({} cores)",
        bench::cores()
    );
    println!(
        "| database | request | photos | items | requests | HTTP p50 ms | HTTP p99 ms | SQL p50 ms | SQL p99 ms | goal |"
    );
    println!("|---|---|---|---|---|---|---|---|---|---|");
    for l in &lines {
        println!(
            "| {} | {} | {} | {} | {} | {:.2} | {:.2} | {:.2} | {:.2} | p99 < {} ms: {} |",
            l.db,
            l.request,
            l.photos,
            l.items,
            l.requests,
            l.http_p50_ms,
            l.http_p99_ms,
            l.sql_p50_ms,
            l.sql_p99_ms,
            l.goal_ms,
            if l.goal_met { "met" } else { "NOT met" }
        );
    }
    for l in &lines {
        println!("json: {}", serde_json::to_string(l)?);
    }
    Ok(())
}

/// One measured request: the route, the bare SQL (`$1` the user, then `binds`) and its goal.
struct Case {
    name: &'static str,
    path: String,
    sql: String,
    binds: Vec<String>,
    goal_ms: f64,
}

fn cases(db: Db) -> Vec<Case> {
    let columns = "p.id, p.local_identifier, p.taken_at, p.taken_at_offset_s, p.kind, p.favorite, p.width, \
         p.height, r.stored_sha256, r.stored_key, e.result AS thumbnail";
    let joins = "LEFT JOIN icloud.resources r ON r.photo_id = p.id AND r.resource_type = 'original' \
             AND r.state = 'stored' \
         LEFT JOIN icloud.enrichments e ON e.photo_id = p.id AND e.kind = 'thumbnail'";
    let visible = "p.user_id = $1 AND p.deleted_at IS NULL AND p.hidden = FALSE AND p.trashed = FALSE";
    let matches = match db {
        Db::Sqlite => "p.rowid IN (SELECT rowid FROM icloud.photo_search WHERE photo_search MATCH $2)",
        Db::Postgres => "array_to_tsvector(string_to_array(p.search_text, ' ')) @@ CAST($2 AS tsquery)",
    };
    let search_sql = format!(
        "SELECT {columns} FROM icloud.photos p {joins} WHERE {visible} AND {matches} \
         ORDER BY p.taken_at DESC, p.id DESC LIMIT 101"
    );
    let query = |words: &[&str]| match db {
        Db::Sqlite => words
            .iter()
            .map(|w| format!("\"{w}\"*"))
            .collect::<Vec<_>>()
            .join(" "),
        Db::Postgres => words
            .iter()
            .map(|w| format!("'{w}':*"))
            .collect::<Vec<_>>()
            .join(" & "),
    };
    let month = match db {
        Db::Sqlite => "strftime('%Y-%m', (p.taken_at + p.taken_at_offset_s * 1000) / 1000.0, 'unixepoch')",
        Db::Postgres => {
            "to_char(to_timestamp((p.taken_at + p.taken_at_offset_s * 1000)::float8 / 1000) AT TIME ZONE 'UTC', 'YYYY-MM')"
        }
    };
    // The first moment of the month after OLD_MONTH, on the photos' clocks.
    let before = chrono::NaiveDate::from_ymd_opt(2005, 2, 1)
        .and_then(|d| d.and_hms_opt(0, 0, 0))
        .map(|t| t.and_utc().timestamp_millis())
        .unwrap_or_default();
    vec![
        Case {
            name: "search, common word (2 %)",
            path: "/my/photos/?q=k7".into(),
            sql: search_sql.clone(),
            binds: vec![query(&["k7"])],
            goal_ms: GOAL_PAGE_P99_MS,
        },
        Case {
            name: "search, rare prefix",
            path: "/my/photos/?q=r1234".into(),
            sql: search_sql.clone(),
            binds: vec![query(&["r1234"])],
            goal_ms: GOAL_PAGE_P99_MS,
        },
        Case {
            name: "search, two words",
            path: "/my/photos/?q=k7%20w10".into(),
            sql: search_sql,
            binds: vec![query(&["k7", "w10"])],
            goal_ms: GOAL_PAGE_P99_MS,
        },
        Case {
            name: "jump to a month 20 years back",
            path: format!("/my/photos/months/{OLD_MONTH}"),
            sql: format!(
                "SELECT {columns} FROM icloud.photos p {joins} WHERE {visible} \
                 AND p.taken_at < $2 AND (p.taken_at + p.taken_at_offset_s * 1000) < $3 \
                 ORDER BY p.taken_at DESC, p.id DESC LIMIT 101"
            ),
            binds: vec![(before + 86_400_000).to_string(), before.to_string()],
            goal_ms: GOAL_SCRUB_MS,
        },
        Case {
            name: "month counts (scrubber)",
            path: "/my/photos/months".into(),
            sql: format!(
                "SELECT {month} AS month, COUNT(*) AS n FROM icloud.photos p WHERE {visible} GROUP BY 1"
            ),
            binds: vec![],
            goal_ms: GOAL_SCRUB_MS,
        },
    ]
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
            first_ms: FIRST_MS,
            step_ms: STEP_MS,
            offset_s: 3600,
            words: true,
        },
    )
    .await?;
    eprintln!(
        "{}: loaded {n} photos in {:.1} s",
        db.name(),
        loaded.elapsed().as_secs_f64()
    );

    let client = reqwest::Client::new();
    let get = |path: String| {
        let client = client.clone();
        let url = format!("{}{path}", server.url);
        let web = web.clone();
        async move {
            let response = client.get(url).bearer_auth(web).send().await?;
            if !response.status().is_success() {
                bail!("{path}: {}: {}", response.status(), response.text().await?);
            }
            Ok::<serde_json::Value, anyhow::Error>(response.json().await?)
        }
    };
    let mut lines = Vec::new();
    for case in cases(db) {
        let (mut http, mut sql) = (Vec::with_capacity(requests), Vec::with_capacity(requests));
        let answer = get(case.path.clone()).await?;
        let items = answer["items"]
            .as_array()
            .map(Vec::len)
            .or_else(|| answer["years"].as_array().map(Vec::len))
            .unwrap_or(0);
        let rows = bare(&mut conn, &case, &user).await?;
        if items == 0 || rows == 0 {
            bail!(
                "{}: nothing found ({items} items, {rows} rows): {answer}",
                case.name
            );
        }
        for _ in 0..3 {
            get(case.path.clone()).await?;
            bare(&mut conn, &case, &user).await?;
        }
        for _ in 0..requests {
            let started = Instant::now();
            get(case.path.clone()).await?;
            http.push(started.elapsed());
            let started = Instant::now();
            bare(&mut conn, &case, &user).await?;
            sql.push(started.elapsed());
        }
        let hp99 = percentile(&mut http, 0.99);
        lines.push(Line {
            db: db.name(),
            request: case.name,
            photos: n,
            requests,
            items,
            http_p50_ms: percentile(&mut http, 0.50),
            http_p99_ms: hp99,
            sql_p50_ms: percentile(&mut sql, 0.50),
            sql_p99_ms: percentile(&mut sql, 0.99),
            goal_ms: case.goal_ms,
            goal_met: hp99 < case.goal_ms,
            cores: bench::cores(),
        });
    }
    server.stop()?;
    Ok(lines)
}

/// The bare query of `case`; the rows it returns.
async fn bare(conn: &mut Conn, case: &Case, user: &str) -> Result<usize> {
    let rows = match conn {
        Conn::Sqlite(c) => {
            let mut q = sqlx::query(sqlx::AssertSqlSafe(case.sql.clone())).bind(user);
            for b in &case.binds {
                q = match b.parse::<i64>() {
                    Ok(v) => q.bind(v),
                    Err(_) => q.bind(b.clone()),
                };
            }
            q.fetch_all(&mut *c).await?.len()
        }
        Conn::Postgres(c) => {
            let mut q = sqlx::query(sqlx::AssertSqlSafe(case.sql.clone())).bind(user);
            for b in &case.binds {
                q = match b.parse::<i64>() {
                    Ok(v) => q.bind(v),
                    Err(_) => q.bind(b.clone()),
                };
            }
            q.fetch_all(&mut *c).await?.len()
        }
    };
    Ok(rows)
}
