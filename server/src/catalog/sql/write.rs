//! The writes of one sync batch. `photos.rs` decides, item by item, what the batch changes and gathers it in
//! a [`BatchWrite`]; the adapter's [`super::Driver::write_batch`] then applies all of it with the version
//! bump. This module holds the shapes and the portable way to apply them, a few multi-row statements, which
//! the SQLite adapter uses. The PostgreSQL adapter applies the same [`BatchWrite`] in one statement of its
//! own (`catalog/postgres/write.rs`, built from the same column lists and conflict clauses), because there
//! the version bump takes a row lock that concurrent batches of the user wait on until commit: the fewer
//! round trips after it, the more batches go through.

use std::collections::HashMap;

use super::jobs::queue_jobs;
use super::resources::{ResourceRow, upsert_resources};
use super::{CHUNK, Conn, Db, bump_version, placeholders, to_i64};
use crate::catalog::{LibraryId, PhotoUpsert, ResourceType, Result, UserId, search};

/// A photo row to write: its id (a fresh one for a new photo), the validated item and its metadata hash.
pub(crate) struct PhotoRow<'a> {
    pub(crate) id: &'a str,
    pub(crate) item: &'a PhotoUpsert,
    pub(crate) hash: &'a str,
}

/// A resource row to write for the photo `local_identifier`.
pub(crate) struct ResourceWrite<'a> {
    #[allow(
        dead_code,
        reason = "read by the PostgreSQL adapter's write; SQLite writes the decided ids"
    )]
    pub(crate) local_identifier: &'a str,
    /// The photo's id as decided; on PostgreSQL a photo row written in the same batch may come back with
    /// another one (a concurrent batch inserted the same identity first), and then that one is used.
    pub(crate) photo_id: &'a str,
    pub(crate) row: &'a ResourceRow,
}

/// Everything one sync batch writes, decided before the first write.
#[derive(Default)]
pub(crate) struct BatchWrite<'a> {
    /// Photos to soft-delete (their ids).
    pub(crate) deleted: Vec<&'a str>,
    /// Photos whose row stays but whose resources change: their version moves.
    pub(crate) touched: Vec<&'a str>,
    /// Photo rows to insert or overwrite whole.
    pub(crate) photos: Vec<PhotoRow<'a>>,
    /// Resource rows the Mac no longer declares: (photo id, type).
    pub(crate) stale: Vec<(&'a str, ResourceType)>,
    /// Resource rows to insert or overwrite whole.
    pub(crate) resources: Vec<ResourceWrite<'a>>,
    /// Originals this batch links to content the user already stores: their enrichment jobs are queued
    /// (or re-queued for new content) in the same write.
    pub(crate) linked: Vec<Linked<'a>>,
}

/// An original stored by this batch (linked by SHA-256), whose jobs are to be queued.
pub(crate) struct Linked<'a> {
    #[allow(
        dead_code,
        reason = "read by the PostgreSQL adapter's write; SQLite writes the decided ids"
    )]
    pub(crate) local_identifier: &'a str,
    /// As [`ResourceWrite::photo_id`].
    pub(crate) photo_id: &'a str,
    pub(crate) sha256: &'a str,
}

impl BatchWrite<'_> {
    /// Whether the batch changes anything (and so bumps the version).
    pub(crate) fn is_empty(&self) -> bool {
        self.deleted.is_empty()
            && self.touched.is_empty()
            && self.photos.is_empty()
            && self.stale.is_empty()
            && self.resources.is_empty()
            && self.linked.is_empty()
    }
}

/// What applying a [`BatchWrite`] answers.
pub(crate) struct Written {
    /// The user's version after the batch (bumped once).
    pub(crate) version: i64,
    /// The id each written photo row has, by `localIdentifier`, where it may differ from the decided one
    /// (PostgreSQL, whose batch reads without a lock); empty on SQLite, where every row has its decided id.
    pub(crate) ids: HashMap<String, String>,
}

/// Photo rows per statement: 34 parameters each, well under SQLite's 32,766 and PostgreSQL's 65,535.
#[allow(
    dead_code,
    reason = "compiled for PostgreSQL too, whose adapter writes with one statement of its own"
)]
const PHOTO_ROWS_PER_STATEMENT: usize = 250;

/// Applies `batch` with a few multi-row statements: the version bump, the version of deleted and touched
/// photos, the photo rows, stale resources, the resource rows, the jobs of linked originals. Inside the
/// caller's write transaction.
#[allow(
    dead_code,
    reason = "compiled for PostgreSQL too, whose adapter writes with one statement of its own"
)]
pub(crate) async fn write_portable(
    conn: &mut Conn,
    user_id: &UserId,
    library_id: &LibraryId,
    batch: &BatchWrite<'_>,
    now: i64,
) -> Result<Written> {
    let version = bump_version(conn, user_id).await?;
    set_photo_versions(conn, user_id, &batch.deleted, version, now, true).await?;
    set_photo_versions(conn, user_id, &batch.touched, version, now, false).await?;
    upsert_photos(conn, user_id, library_id, &batch.photos, version, now).await?;
    for (photo_id, resource_type) in &batch.stale {
        sqlx::query(
            "DELETE FROM icloud.resources WHERE photo_id = $1 AND resource_type = $2 AND user_id = $3",
        )
        .bind(*photo_id)
        .bind(resource_type.as_str())
        .bind(user_id.as_str())
        .execute(&mut *conn)
        .await?;
    }
    // The batch was read and decided under this write transaction (SQLite's one writer), so every photo row
    // has the id decided for it: nothing is read back (a RETURNING of 100 rows cost a row-by-row hand-over
    // from the database thread while the writer's lock was held), and no id differs from the plan.
    let rows: Vec<(&str, &ResourceRow)> = batch.resources.iter().map(|r| (r.photo_id, r.row)).collect();
    upsert_resources(conn, user_id, &rows).await?;
    let linked: Vec<(String, String)> = batch
        .linked
        .iter()
        .map(|l| (l.photo_id.to_owned(), l.sha256.to_owned()))
        .collect();
    queue_jobs(conn, user_id, &linked, now).await?;
    Ok(Written {
        version,
        ids: HashMap::new(),
    })
}

/// Sets `version` (and `deleted_at` when `delete`) on the given photos, in a few statements.
#[allow(
    dead_code,
    reason = "compiled for PostgreSQL too, whose adapter writes with one statement of its own"
)]
async fn set_photo_versions(
    conn: &mut Conn,
    user_id: &UserId,
    photo_ids: &[&str],
    version: i64,
    now: i64,
    delete: bool,
) -> Result<()> {
    let deleted_at = if delete { "deleted_at = $1, " } else { "" };
    for chunk in photo_ids.chunks(CHUNK) {
        let sql = format!(
            "UPDATE icloud.photos SET {deleted_at}updated_at = $1, version = $2 \
             WHERE user_id = $3 AND id IN ({})",
            placeholders(4, chunk.len())
        );
        let mut query = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(now)
            .bind(version)
            .bind(user_id.as_str());
        for id in chunk {
            query = query.bind(*id);
        }
        query.execute(&mut *conn).await?;
    }
    Ok(())
}

/// The `kind` column's value.
pub(crate) fn kind_name(kind: api::AssetKind) -> &'static str {
    match kind {
        api::AssetKind::Photo => "photo",
        api::AssetKind::Video => "video",
    }
}

/// The `keywords` or `people` column's value: a JSON array.
pub(crate) fn json_list(list: &[String]) -> String {
    serde_json::to_string(list).unwrap_or_else(|_| "[]".to_owned())
}

/// The `ON CONFLICT` clause that overwrites a whole photo row (both ways of writing photos use it).
pub(crate) const PHOTO_OVERWRITE: &str = " ON CONFLICT (library_id, local_identifier) DO UPDATE SET \
     cloud_guid = excluded.cloud_guid, fingerprint = excluded.fingerprint, kind = excluded.kind, \
     subtype = excluded.subtype, live_photo = excluded.live_photo, width = excluded.width, \
     height = excluded.height, duration_ms = excluded.duration_ms, taken_at = excluded.taken_at, \
     taken_at_offset_s = excluded.taken_at_offset_s, time_zone = excluded.time_zone, \
     modified_at = excluded.modified_at, favorite = excluded.favorite, hidden = excluded.hidden, \
     trashed = excluded.trashed, latitude = excluded.latitude, longitude = excluded.longitude, \
     original_filename = excluded.original_filename, uti = excluded.uti, edited = excluded.edited, \
     title = excluded.title, caption = excluded.caption, keywords = excluded.keywords, \
     people = excluded.people, metadata_sha256 = excluded.metadata_sha256, \
     version = excluded.version, updated_at = excluded.updated_at, deleted_at = NULL, \
     search_text = excluded.search_text";

/// The photo columns, in the order both ways of writing photos list their values.
pub(crate) const PHOTO_COLUMNS: &str = "id, user_id, library_id, local_identifier, cloud_guid, fingerprint, \
     kind, subtype, live_photo, width, height, duration_ms, taken_at, taken_at_offset_s, time_zone, \
     modified_at, favorite, hidden, trashed, latitude, longitude, original_filename, uti, edited, \
     title, caption, keywords, people, metadata_sha256, version, created_at, updated_at, deleted_at, \
     search_text";

/// Inserts or overwrites whole photo rows, many per statement, with the ids they were given.
#[allow(
    dead_code,
    reason = "compiled for PostgreSQL too, whose adapter writes with one statement of its own"
)]
async fn upsert_photos(
    conn: &mut Conn,
    user_id: &UserId,
    library_id: &LibraryId,
    rows: &[PhotoRow<'_>],
    version: i64,
    now: i64,
) -> Result<()> {
    for chunk in rows.chunks(PHOTO_ROWS_PER_STATEMENT) {
        let mut values = Vec::with_capacity(chunk.len());
        for row in chunk {
            let item = row.item;
            values.push((
                row,
                json_list(&item.keywords),
                json_list(&item.people),
                item.duration_ms.map(|d| to_i64("durationMs", d)).transpose()?,
                search::of_item(item),
            ));
        }
        let mut qb = sqlx::QueryBuilder::<Db>::new(format!("INSERT INTO icloud.photos ({PHOTO_COLUMNS}) "));
        qb.push_values(values, |mut b, (row, keywords, people, duration, search_text)| {
            let item = row.item;
            b.push_bind(row.id)
                .push_bind(user_id.as_str())
                .push_bind(library_id.as_str())
                .push_bind(item.local_identifier.as_str())
                .push_bind(item.cloud_guid.as_deref())
                .push_bind(item.fingerprint.as_deref())
                .push_bind(kind_name(item.kind))
                .push_bind(item.subtype.as_deref())
                .push_bind(item.live_photo)
                .push_bind(i64::from(item.width))
                .push_bind(i64::from(item.height))
                .push_bind(duration)
                .push_bind(item.taken_at.timestamp_millis())
                .push_bind(i64::from(item.taken_at.offset().local_minus_utc()))
                .push_bind(item.time_zone.as_deref())
                .push_bind(item.modified_at.timestamp_millis())
                .push_bind(item.favorite)
                .push_bind(item.hidden)
                .push_bind(item.trashed)
                .push_bind(item.latitude)
                .push_bind(item.longitude)
                .push_bind(item.original_filename.as_str())
                .push_bind(item.uti.as_str())
                .push_bind(item.edited)
                .push_bind(item.title.as_deref())
                .push_bind(item.caption.as_deref())
                .push_bind(keywords)
                .push_bind(people)
                .push_bind(row.hash)
                .push_bind(version)
                .push_bind(now)
                .push_bind(now)
                .push_bind(None::<i64>)
                .push_bind(search_text);
        });
        qb.push(PHOTO_OVERWRITE);
        qb.build().execute(&mut *conn).await?;
    }
    Ok(())
}
