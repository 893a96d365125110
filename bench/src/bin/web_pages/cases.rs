//! What `web_pages` measures: each page's path, the bare SQL the catalog runs for it (as
//! `server/src/catalog/sql/web.rs` and `search.rs` build it for the default view), and what its answer must
//! show, found once before the timing so that every timed answer is checked against it.

use anyhow::{Context as _, Result, bail};
use bench::catalog::Conn;
use sqlx::Row as _;

use super::{Db, GOAL_PAGE_P99_MS, GOAL_SCRUB_MS};

/// The columns and joins of a timeline page (`LIST_COLUMNS`, `LIST_JOINS`).
const COLUMNS: &str = "p.id, p.local_identifier, p.taken_at, p.taken_at_offset_s, p.kind, p.favorite, \
    p.width, p.height, p.title, p.original_filename, p.live_photo, r.stored_sha256, r.stored_key, \
    e.result AS thumbnail";
const JOINS: &str = "LEFT JOIN icloud.resources r \
        ON r.photo_id = p.id AND r.resource_type = 'original' AND r.state = 'stored' \
    LEFT JOIN icloud.enrichments e ON e.photo_id = p.id AND e.kind = 'thumbnail'";
/// The default view's conditions (`push_conditions` with no filter).
const VISIBLE: &str = "p.user_id = $1 AND p.deleted_at IS NULL AND p.hidden = FALSE AND p.trashed = FALSE";
/// A photo's local time can be this far from UTC: the index bound around the exact one.
const DAY_MS: i64 = 86_400_000;
/// Photos per page (the pages' `DEFAULT_LIMIT`).
const PAGE: usize = 100;

/// A bound value of a bare query (after `$1`, the user).
#[derive(Debug, Clone)]
pub enum Arg {
    Int(i64),
    Text(String),
}

/// One measured request.
#[derive(Debug)]
pub struct Case {
    pub name: String,
    pub path: String,
    pub sql: String,
    pub args: Vec<Arg>,
    pub goal_ms: f64,
    /// Reads the whole library (the month counts): fewer requests.
    pub heavy: bool,
    /// Every answer must contain this (the page's first photo, or the scrubbed month).
    pub marker: String,
    /// Tiles every answer must have (0: not a grid).
    pub tiles: usize,
    /// Rows the bare query must return.
    pub rows: usize,
}

/// `GET base+path` with the session cookie; the body of a 200, else an error.
pub async fn get(http: &reqwest::Client, base: &str, cookie: &str, path: &str) -> Result<String> {
    let response = http
        .get(format!("{base}{path}"))
        .header("cookie", format!("iphoto_session={cookie}"))
        .header("accept", "text/html")
        .send()
        .await?;
    let status = response.status();
    let body = response.text().await?;
    if status != reqwest::StatusCode::OK {
        bail!("{path}: {status}: {body}");
    }
    Ok(body)
}

/// Whether `body` is what `case` must answer.
pub fn check(case: &Case, body: &str) -> Result<()> {
    let tiles = body.matches("class=\"tile\"").count();
    if !body.contains(&case.marker) || tiles != case.tiles {
        bail!(
            "{}: {tiles} tiles (expected {}), marker {:?} {}",
            case.name,
            case.tiles,
            case.marker,
            if body.contains(&case.marker) {
                "found"
            } else {
                "missing"
            }
        );
    }
    Ok(())
}

macro_rules! bound {
    ($sql:expr, $user:expr, $args:expr) => {{
        let mut q = sqlx::query(sqlx::AssertSqlSafe($sql.to_owned())).bind($user.to_owned());
        for arg in $args {
            q = match arg {
                Arg::Int(v) => q.bind(*v),
                Arg::Text(v) => q.bind(v.clone()),
            };
        }
        q
    }};
}

/// Runs a bare query; the rows it returned.
pub async fn bare(conn: &mut Conn, user: &str, sql: &str, args: &[Arg]) -> Result<usize> {
    Ok(match conn {
        Conn::Sqlite(c) => bound!(sql, user, args).fetch_all(&mut *c).await?.len(),
        Conn::Postgres(c) => bound!(sql, user, args).fetch_all(&mut *c).await?.len(),
    })
}

/// A bare page query's `(taken_at, id)` keys, in order.
async fn keys(conn: &mut Conn, user: &str, sql: &str, args: &[Arg]) -> Result<Vec<(i64, String)>> {
    let mut keys = Vec::new();
    match conn {
        Conn::Sqlite(c) => {
            for row in bound!(sql, user, args).fetch_all(&mut *c).await? {
                keys.push((row.try_get("taken_at")?, row.try_get("id")?));
            }
        }
        Conn::Postgres(c) => {
            for row in bound!(sql, user, args).fetch_all(&mut *c).await? {
                keys.push((row.try_get("taken_at")?, row.try_get("id")?));
            }
        }
    }
    Ok(keys)
}

/// A page's SQL: after a keyset position, or before a local time, or the first page.
fn page_sql(extra: &str) -> String {
    format!(
        "SELECT {COLUMNS} FROM icloud.photos p {JOINS} WHERE {VISIBLE}{extra} \
         ORDER BY p.taken_at DESC, p.id DESC LIMIT {}",
        PAGE + 1
    )
}

/// The cursor of the page that starts at the middle of the library, found by walking the JSON list (500 a
/// page, checked in order) with the web token; with the keyset position it seals.
pub async fn deep_cursor(
    http: &reqwest::Client,
    base: &str,
    web: &str,
    photos: usize,
) -> Result<(String, i64, String)> {
    let (mut cursor, mut last, mut walked) = (String::new(), (i64::MAX, String::new()), 0);
    while walked < photos {
        let query = if cursor.is_empty() {
            String::new()
        } else {
            format!("&cursor={cursor}")
        };
        let response = http
            .get(format!("{base}/my/photos/?limit=500{query}"))
            .bearer_auth(web)
            .send()
            .await?;
        if !response.status().is_success() {
            bail!("walking the list: {}", response.status());
        }
        let page: serde_json::Value = response.json().await?;
        for item in page["items"].as_array().context("items")? {
            let taken = chrono::DateTime::parse_from_rfc3339(item["takenAt"].as_str().context("takenAt")?)?
                .timestamp_millis();
            let key = (taken, item["id"].as_str().context("id")?.to_owned());
            if key >= last {
                bail!("the list is out of order at {key:?}");
            }
            last = key;
            walked += 1;
        }
        cursor = page["nextCursor"]
            .as_str()
            .context("the list ended early")?
            .to_owned();
    }
    Ok((cursor, last.0, last.1))
}

/// The measured requests, each checked once here.
#[allow(clippy::too_many_arguments)]
pub async fn cases(
    db: Db,
    http: &reqwest::Client,
    base: &str,
    cookie: &str,
    conn: &mut Conn,
    user: &str,
    deep: (String, i64, String),
    scrub: &(String, i64, &str),
) -> Result<Vec<Case>> {
    let keyset = " AND (p.taken_at, p.id) < ($2, $3)";
    let first = page_sql("");
    let first_keys = keys(conn, user, &first, &[]).await?;
    if first_keys.len() != PAGE + 1 {
        bail!("the first page's bare query found {} rows", first_keys.len());
    }
    // Page 2 is the first page's "Older photos" link, as the reader (or the script) follows it.
    let html = get(http, base, cookie, "/").await?;
    let next = html
        .split("rel=\"next\" href=\"")
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .context("the first page has no next link")?
        .replace("&amp;", "&");
    let after_first = &first_keys[PAGE - 1];
    let deep_cursor: String = url::form_urlencoded::byte_serialize(deep.0.as_bytes()).collect();
    let deep_args = vec![Arg::Int(deep.1), Arg::Text(deep.2.clone())];
    let deep_keys = keys(conn, user, &page_sql(keyset), &deep_args).await?;
    let (month, end, which) = scrub;
    let before = " AND p.taken_at < $2 AND (p.taken_at + p.taken_at_offset_s * 1000) < $3";
    let month_expr = match db {
        Db::Sqlite => "strftime('%Y-%m', (p.taken_at + p.taken_at_offset_s * 1000) / 1000.0, 'unixepoch')",
        Db::Postgres => {
            "to_char(to_timestamp((p.taken_at + p.taken_at_offset_s * 1000)::float8 / 1000) AT TIME ZONE 'UTC', \
             'YYYY-MM')"
        }
    };
    let months_sql = format!(
        "SELECT {month_expr} AS month, COUNT(*) AS n FROM icloud.photos p WHERE {VISIBLE} GROUP BY 1"
    );
    let months = bare(conn, user, &months_sql, &[]).await?;
    let marker = |id: &str| format!("data-id=\"{id}\"");
    let page = |name: &str, path: String, sql: String, args: Vec<Arg>, marker: String| Case {
        name: name.to_owned(),
        path,
        sql,
        args,
        goal_ms: GOAL_PAGE_P99_MS,
        heavy: false,
        marker,
        tiles: PAGE,
        rows: PAGE + 1,
    };
    let mut cases = vec![
        page(
            "timeline, first page",
            "/".into(),
            first.clone(),
            vec![],
            marker(&first_keys[0].1),
        ),
        page(
            "timeline, page 2 (its cursor)",
            next,
            page_sql(keyset),
            vec![Arg::Int(after_first.0), Arg::Text(after_first.1.clone())],
            marker(&first_keys[PAGE].1),
        ),
        page(
            "timeline, deep page (middle, cursor)",
            format!("/?cursor={deep_cursor}"),
            page_sql(keyset),
            deep_args.clone(),
            marker(&deep_keys[0].1),
        ),
        page(
            "timeline, deep page as endless scroll fetches it (partial)",
            format!("/?cursor={deep_cursor}&partial=true"),
            page_sql(keyset),
            deep_args,
            marker(&deep_keys[0].1),
        ),
        Case {
            goal_ms: GOAL_SCRUB_MS,
            ..page(
                &format!("scrub to {month} ({which})"),
                format!("/?month={month}"),
                page_sql(before),
                vec![Arg::Int(end + DAY_MS), Arg::Int(*end)],
                format!("data-month=\"{month}\""),
            )
        },
        Case {
            name: format!("scrubber month counts (/months, {months} months)"),
            path: "/months".into(),
            sql: months_sql,
            args: vec![],
            goal_ms: GOAL_SCRUB_MS,
            heavy: true,
            marker: format!("month={month}"),
            tiles: 0,
            rows: months,
        },
    ];
    for case in &mut cases {
        let body = get(http, base, cookie, &case.path).await?;
        check(case, &body)?;
        let rows = bare(conn, user, &case.sql, &case.args).await?;
        if rows != case.rows {
            bail!(
                "{}: the bare query returned {rows} rows, {} expected",
                case.name,
                case.rows
            );
        }
    }
    Ok(cases)
}
