//! A catalog filled straight with SQL, for the benchmarks of the web routes (`web_list`, `web_search`): a
//! million photos cannot be synced in a benchmark's time, so they are written the way the schema stores
//! them, and the bare SQL of a route is timed beside the route itself.

use std::time::Duration;

use anyhow::Result;

/// Which catalog a benchmark runs against.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Db {
    Sqlite,
    Postgres,
}

impl Db {
    /// As the tables print it.
    pub fn name(self) -> &'static str {
        match self {
            Db::Sqlite => "SQLite",
            Db::Postgres => "PostgreSQL",
        }
    }
}

/// A connection to the catalog the server uses, for the bulk load and the bare queries.
#[derive(Debug)]
pub enum Conn {
    Sqlite(sqlx::SqliteConnection),
    Postgres(sqlx::PgConnection),
}

/// The one library the loaded photos are in.
pub const LIBRARY: &str = "bench0000000000000000000000000000";

/// The thumbnail key the loader's `thumbnail` enrichment names for photo number `i` (1-based; photo `n` is
/// the newest) of `user`: a benchmark that wants real thumbnails writes its objects there.
pub fn thumbnail_key(user: &str, i: usize) -> String {
    format!("users/{user}/libraries/{LIBRARY}/derivatives/thumbnail/U/U{i}.jpg")
}

/// The catalog id of photo number `i`, as the loader writes it.
pub fn photo_id(i: usize) -> String {
    format!("{i:032x}")
}

impl Conn {
    /// A connection to the catalog of the server on `data_dir`: PostgreSQL at `url`, else its SQLite files
    /// (the catalog with the `icloud` schema's file attached, as the server has them).
    pub async fn open(data_dir: &std::path::Path, url: Option<&str>) -> Result<Conn> {
        use sqlx::Connection as _;
        Ok(match url {
            Some(url) => Conn::Postgres(sqlx::PgConnection::connect(url).await?),
            None => {
                let catalog = data_dir.join("catalog.sqlite3");
                let mut c = sqlx::SqliteConnection::connect(&format!("sqlite:{}", catalog.display())).await?;
                sqlx::query("ATTACH DATABASE $1 AS icloud")
                    .bind(data_dir.join("icloud.sqlite3").display().to_string())
                    .execute(&mut c)
                    .await?;
                Conn::Sqlite(c)
            }
        })
    }
}

/// How the loaded photos look.
#[derive(Debug, Clone, Copy)]
pub struct Shape {
    /// `taken_at` of the first two photos, milliseconds since the epoch.
    pub first_ms: i64,
    /// Milliseconds between two timestamps (two photos share each: ties).
    pub step_ms: i64,
    /// Every photo's UTC offset, seconds.
    pub offset_s: i64,
    /// Whether each photo gets the searchable words a sync would fold for it: `img`, `heic`, a keyword of 50
    /// (`k0`…`k49`, also its keyword), a word of 1,000 (`w0`…`w999`) and its own (`r<i>`). Without, no
    /// keyword and no words.
    pub words: bool,
}

/// Bulk-loads `n` photos of the first-start `admin` user: one in ten a video, one in fifty a favourite, 1 %
/// hidden, 1 % trashed, two photos per timestamp, each with a stored original and a thumbnail. Returns the
/// user's id.
pub async fn load(conn: &mut Conn, n: usize, shape: Shape) -> Result<String> {
    let id_expr = match conn {
        Conn::Sqlite(_) => "printf('%032x', i)",
        Conn::Postgres(_) => "lpad(to_hex(i), 32, '0')",
    };
    let Shape {
        first_ms,
        step_ms,
        offset_s,
        words,
    } = shape;
    let (keywords, search_text) = if words {
        (
            "'[\"k' || (i % 50) || '\"]'",
            "'heic img k' || (i % 50) || ' r' || i || ' w' || (i % 1000)",
        )
    } else {
        ("'[]'", "NULL")
    };
    // Loaded in chunks of 100,000 rows a statement: one statement of a million rows grows SQLite's WAL by
    // gigabytes before the first checkpoint.
    let series =
        "WITH RECURSIVE s(i) AS (SELECT CAST($3 AS BIGINT) UNION ALL SELECT i + 1 FROM s WHERE i < $4)";
    let photos = format!(
        "{series} INSERT INTO icloud.photos (id, user_id, library_id, local_identifier, kind, live_photo, \
             width, height, taken_at, taken_at_offset_s, modified_at, favorite, hidden, trashed, \
             original_filename, uti, edited, keywords, people, metadata_sha256, version, created_at, updated_at, \
             search_text) \
         SELECT {id_expr}, $1, $2, 'U' || i || '/L0/001', CASE WHEN i % 10 = 0 THEN 'video' ELSE 'photo' END, \
             FALSE, 4032, 3024, {first_ms} + (i / 2) * {step_ms}, {offset_s}, 0, i % 50 = 0, i % 100 = 1, \
             i % 100 = 2, 'IMG.HEIC', 'public.heic', FALSE, {keywords}, '[]', '', 1, 0, 0, {search_text} FROM s"
    );
    let resources = format!(
        "{series} INSERT INTO icloud.resources (photo_id, resource_type, user_id, declared_size, available, \
             state, stored_sha256, stored_key, stored_size, uploaded_at, deduplicated) \
         SELECT {id_expr}, 'original', $1, 2000000, TRUE, 'stored', {id_expr} || {id_expr}, \
             'users/' || $1 || '/libraries/' || $2 || '/originals/U/U' || i || '.heic', 2000000, 0, FALSE FROM s"
    );
    let thumbnails = format!(
        "{series} INSERT INTO icloud.enrichments (photo_id, user_id, kind, result, created_at, updated_at) \
         SELECT {id_expr}, $1, 'thumbnail', '{{\"key\":\"users/' || $1 || '/libraries/' || $2 || \
             '/derivatives/thumbnail/U/U' || i || '.jpg\",\"contentType\":\"image/jpeg\",\"width\":256,\
             \"height\":192,\"size\":20000}}', 0, 0 FROM s"
    );
    let library = LIBRARY.to_owned();
    let user_sql = "SELECT id FROM users WHERE name = 'admin'";
    let library_sql =
        "INSERT INTO icloud.libraries (id, user_id, library_key, created_at) VALUES ($1, $2, 'bench', 0)";
    macro_rules! fill {
        ($c:expr) => {{
            let user: String = sqlx::query_scalar(user_sql).fetch_one(&mut *$c).await?;
            sqlx::query(library_sql)
                .bind(&library)
                .bind(&user)
                .execute(&mut *$c)
                .await?;
            for sql in [&photos, &resources, &thumbnails] {
                for (first, last) in chunks(n) {
                    sqlx::query(sqlx::AssertSqlSafe(sql.clone()))
                        .bind(&user)
                        .bind(&library)
                        .bind(first)
                        .bind(last)
                        .execute(&mut *$c)
                        .await?;
                }
            }
            user
        }};
    }
    let user = match conn {
        Conn::Sqlite(c) => fill!(c),
        Conn::Postgres(c) => {
            let user = fill!(c);
            // VACUUM as well as ANALYZE: an index-only scan (the month counts) needs the visibility map.
            sqlx::query("VACUUM ANALYZE").execute(&mut *c).await?;
            user
        }
    };
    Ok(user)
}

/// `(first, last)` row numbers of each load statement, 1-based and inclusive.
fn chunks(n: usize) -> Vec<(i64, i64)> {
    (0..n.div_ceil(100_000) as i64)
        .map(|k| (k * 100_000 + 1, ((k + 1) * 100_000).min(n as i64)))
        .collect()
}

/// The `q` quantile of `samples`, in milliseconds.
pub fn percentile(samples: &mut [Duration], q: f64) -> f64 {
    samples.sort();
    let index = ((samples.len() as f64 - 1.0) * q).round() as usize;
    samples.get(index).map_or(0.0, |d| d.as_secs_f64() * 1000.0)
}
