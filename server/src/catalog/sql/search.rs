//! The gallery's read side beyond the timeline page: the conditions every photo list shares (filters and
//! search, built once for the page, the month counts and their plans), the date scrubber's month counts, the
//! people and keywords with their counts, and folding the searchable text of rows that have none yet.
//!
//! Search itself is the database's prefix match over words folded in Rust (`catalog/search.rs`); each
//! adapter names its index in [`Driver::SEARCH_MATCH`] and renders the query with [`Driver::search_query`].

use sqlx::Row as _;

use super::{Adapter, Db, Driver as _, to_u64};
use crate::catalog::search;
use crate::catalog::{MonthCount, PhotoFilter, Result, TagCount, TagKind, UserId};

/// How far a photo's local time can be from its UTC time (offsets are under a day): a bound on `taken_at`
/// that the index can read, around the exact bound on the local time.
const DAY_MS: i64 = 86_400_000;

/// The photo's local time, epoch milliseconds as if its wall clock were UTC.
pub(super) const LOCAL_MS: &str = "(p.taken_at + p.taken_at_offset_s * 1000)";

/// Rows folded per transaction by [`fold_backlog`].
const FOLD_CHUNK: i64 = 500;

/// A value bound to a query built at run time.
pub(super) enum Bind {
    Text(String),
    Int(i64),
}

/// A query under construction: its text and binds, `?` in a clause standing for the next bind.
pub(super) struct Built {
    pub(super) sql: String,
    pub(super) binds: Vec<Bind>,
}

impl Built {
    /// Starts with `sql`, whose `$1` is the user.
    pub(super) fn new(sql: String, user_id: &UserId) -> Self {
        Self {
            sql,
            binds: vec![Bind::Text(user_id.as_str().to_owned())],
        }
    }

    /// Appends `clause`, its `?`s numbered in turn for `binds`.
    pub(super) fn push(&mut self, clause: &str, binds: Vec<Bind>) {
        let mut parts = clause.split('?');
        if let Some(first) = parts.next() {
            self.sql.push_str(first);
        }
        let mut binds = binds.into_iter();
        for part in parts {
            if let Some(bind) = binds.next() {
                self.binds.push(bind);
            }
            self.sql.push_str(&format!("${}", self.binds.len()));
            self.sql.push_str(part);
        }
    }

    /// The query, bound.
    pub(super) fn query(self) -> sqlx::query::Query<'static, Db, <Db as sqlx::Database>::Arguments> {
        let mut q = sqlx::query(sqlx::AssertSqlSafe(self.sql));
        for bind in self.binds {
            q = match bind {
                Bind::Text(v) => q.bind(v),
                Bind::Int(v) => q.bind(v),
            };
        }
        q
    }
}

/// Appends the `WHERE` clause of `filter` on `p`: the user's own photos, never deleted ones, then the filter.
/// Flags are literals, not binds: a partial index is used only when the query's terms match its predicate.
pub(super) fn push_conditions(built: &mut Built, filter: &PhotoFilter) {
    built.push(" WHERE p.user_id = $1 AND p.deleted_at IS NULL", vec![]);
    if !filter.include_hidden {
        built.push(" AND p.hidden = FALSE", vec![]);
    }
    if !filter.include_trashed {
        built.push(" AND p.trashed = FALSE", vec![]);
    }
    let flag =
        |column: &str, value: bool| format!(" AND p.{column} = {}", if value { "TRUE" } else { "FALSE" });
    if let Some(favorite) = filter.favorite {
        built.push(&flag("favorite", favorite), vec![]);
    }
    if let Some(live) = filter.live_photo {
        built.push(&flag("live_photo", live), vec![]);
    }
    if let Some(kind) = filter.kind {
        built.push(" AND p.kind = ?", vec![Bind::Text(kind_name(kind).to_owned())]);
    }
    if let Some(from) = filter.from_ms {
        built.push(" AND p.taken_at >= ?", vec![Bind::Int(from)]);
    }
    if let Some(to) = filter.to_ms {
        built.push(" AND p.taken_at < ?", vec![Bind::Int(to)]);
    }
    if let Some(from) = filter.from_local_ms {
        built.push(
            &format!(" AND p.taken_at >= ? AND {LOCAL_MS} >= ?"),
            vec![Bind::Int(from.saturating_sub(DAY_MS)), Bind::Int(from)],
        );
    }
    if let Some(to) = filter.to_local_ms {
        push_local_before(built, to);
    }
    if let Some(album) = &filter.album_id {
        built.push(
            " AND p.id IN (SELECT m.photo_id FROM icloud.album_members m WHERE m.album_id = ? AND m.user_id = $1)",
            vec![Bind::Text(album.clone())],
        );
    }
    for (column, name) in [("keywords", &filter.keyword), ("people", &filter.person)] {
        if let Some(name) = name {
            built.push(
                &format!(
                    " AND EXISTS (SELECT 1 FROM {} WHERE j.value = ?)",
                    Adapter::json_items(column)
                ),
                vec![Bind::Text(name.clone())],
            );
        }
    }
    match &filter.search {
        // A query of spaces or punctuation: nothing to match (and nothing the engines could parse).
        Some(terms) if terms.words().is_empty() => built.push(" AND 1 = 0", vec![]),
        Some(terms) => built.push(
            &format!(" AND {}", Adapter::SEARCH_MATCH),
            vec![Bind::Text(Adapter::search_query(terms))],
        ),
        None => {}
    }
}

/// Appends "taken before the local time `to`" (exclusive): the index bound, then the exact one.
pub(super) fn push_local_before(built: &mut Built, to: i64) {
    built.push(
        &format!(" AND p.taken_at < ? AND {LOCAL_MS} < ?"),
        vec![Bind::Int(to.saturating_add(DAY_MS)), Bind::Int(to)],
    );
}

/// The SQL and binds of the month counts.
fn months_sql(user_id: &UserId, filter: &PhotoFilter) -> Built {
    let mut built = Built::new(
        format!(
            "SELECT {} AS month, COUNT(*) AS n FROM icloud.photos p",
            Adapter::LOCAL_MONTH
        ),
        user_id,
    );
    push_conditions(&mut built, filter);
    built.push(" GROUP BY 1", vec![]);
    built
}

pub(super) async fn month_counts(
    catalog: &Adapter,
    user_id: &UserId,
    filter: &PhotoFilter,
) -> Result<Vec<MonthCount>> {
    let rows = months_sql(user_id, filter)
        .query()
        .fetch_all(catalog.pool())
        .await?;
    let mut months = Vec::with_capacity(rows.len());
    for row in rows {
        let month: String = row.try_get("month")?;
        let (Some(year), Some(number)) = (
            month.get(..4).and_then(|y| y.parse().ok()),
            month.get(5..7).and_then(|m| m.parse().ok()),
        ) else {
            continue;
        };
        months.push(MonthCount {
            year,
            month: number,
            count: to_u64(row.try_get("n")?),
        });
    }
    // Sorted here, not by the database: the two would order the text by their own collations.
    months.sort_by_key(|m| std::cmp::Reverse((m.year, m.month)));
    Ok(months)
}

pub(super) async fn explain_months(
    catalog: &Adapter,
    user_id: &UserId,
    filter: &PhotoFilter,
) -> Result<String> {
    let built = months_sql(user_id, filter);
    super::web::explain(catalog, built).await
}

pub(super) async fn tag_counts(catalog: &Adapter, user_id: &UserId, tag: TagKind) -> Result<Vec<TagCount>> {
    let column = match tag {
        TagKind::Keyword => "keywords",
        TagKind::Person => "people",
    };
    let sql = format!(
        "SELECT j.value AS name, COUNT(*) AS n FROM icloud.photos p, {} \
         WHERE p.user_id = $1 AND p.deleted_at IS NULL AND p.hidden = FALSE AND p.trashed = FALSE \
         GROUP BY j.value",
        Adapter::json_items(column)
    );
    let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
        .bind(user_id.as_str())
        .fetch_all(catalog.pool())
        .await?;
    let mut tags = Vec::with_capacity(rows.len());
    for row in rows {
        let name: Option<String> = row.try_get("name")?;
        if let Some(name) = name.filter(|n| !n.is_empty()) {
            tags.push(TagCount {
                name,
                count: to_u64(row.try_get("n")?),
            });
        }
    }
    // Most photos first, then by name byte by byte: the same order on both databases.
    tags.sort_by(|a, b| b.count.cmp(&a.count).then_with(|| a.name.cmp(&b.name)));
    Ok(tags)
}

/// Folds the searchable text of every row that has none (rows from before migration 0014, rows inserted by
/// bulk SQL), a chunk per write transaction. Run at start-up, after the migrations.
pub(super) async fn fold_backlog(catalog: &Adapter) -> Result<u64> {
    let mut folded = 0;
    loop {
        let mut tx = catalog.begin_write().await?;
        let rows = sqlx::query(
            "SELECT id, user_id, title, caption, keywords, people, original_filename FROM icloud.photos \
             WHERE search_text IS NULL LIMIT $1",
        )
        .bind(FOLD_CHUNK)
        .fetch_all(&mut *tx)
        .await?;
        if rows.is_empty() {
            tx.commit().await?;
            return Ok(folded);
        }
        for row in &rows {
            let list = |column: &str| -> Result<Vec<String>> {
                let text: String = row.try_get(column)?;
                Ok(serde_json::from_str(&text).unwrap_or_default())
            };
            let title: Option<String> = row.try_get("title")?;
            let caption: Option<String> = row.try_get("caption")?;
            let filename: String = row.try_get("original_filename")?;
            let text = search::document(
                title.as_deref(),
                caption.as_deref(),
                &list("keywords")?,
                &list("people")?,
                &filename,
            );
            sqlx::query("UPDATE icloud.photos SET search_text = $1 WHERE id = $2 AND user_id = $3")
                .bind(text)
                .bind(row.try_get::<String, _>("id")?)
                .bind(row.try_get::<String, _>("user_id")?)
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        folded += u64::try_from(rows.len()).unwrap_or(0);
    }
}

fn kind_name(kind: api::AssetKind) -> &'static str {
    match kind {
        api::AssetKind::Photo => "photo",
        api::AssetKind::Video => "video",
    }
}
