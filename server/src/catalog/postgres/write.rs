//! A sync batch's writes on PostgreSQL: one statement, run outside a transaction block, so it is atomic on
//! its own and commits when it ends. Its first step bumps the user's version, which row-locks the user's
//! `icloud.versions` row until commit, so concurrent batches of the same user wait from there on (that wait
//! keeps versions in commit order). With the photo rows, the resource rows, the version updates and the
//! jobs of linked originals in the same statement, as arrays that `UNNEST` turns into rows, the lock is
//! held for one statement's execution and released by the server itself, instead of across five or six
//! statements with a client round trip each (and a multi-row `VALUES` of some 3,300 parameters for
//! PostgreSQL to parse and plan every time).

use std::collections::HashMap;

use sqlx::Row as _;

use super::sql::jobs::{QUEUE_COLUMNS, REQUEUE};
use super::sql::resources::{RESOURCE_COLUMNS, RESOURCE_OVERWRITE, ResourceRow};
use super::sql::write::{BatchWrite, Linked, PHOTO_COLUMNS, PHOTO_OVERWRITE, Written, json_list, kind_name};
use super::sql::{BUMP_VERSION, new_id};
use crate::catalog::{Error, LibraryId, Result, UserId, search};

/// Bumps the version, soft-deletes and re-versions photos, upserts photo rows, drops stale resource rows and
/// upserts resource rows (attached to the id each photo row really has, joined by `localIdentifier`).
const WRITE_BATCH: &str = "WITH v AS ({BUMP_VERSION}), \
    gone AS ( \
        UPDATE icloud.photos SET deleted_at = $3, updated_at = $3, version = (SELECT version FROM v) \
        WHERE user_id = $1 AND id = ANY($4)), \
    touched AS ( \
        UPDATE icloud.photos SET updated_at = $3, version = (SELECT version FROM v) \
        WHERE user_id = $1 AND id = ANY($5)), \
    p AS ( \
        INSERT INTO icloud.photos ({PHOTO_COLUMNS}) \
        SELECT u.id, $1, $2, u.local_identifier, u.cloud_guid, u.fingerprint, u.kind, u.subtype, u.live_photo, \
            u.width, u.height, u.duration_ms, u.taken_at, u.taken_at_offset_s, u.time_zone, u.modified_at, \
            u.favorite, u.hidden, u.trashed, u.latitude, u.longitude, u.original_filename, u.uti, u.edited, \
            u.title, u.caption, u.keywords, u.people, u.metadata_sha256, (SELECT version FROM v), $3, $3, NULL, \
            u.search_text \
        FROM UNNEST($6::text[], $7::text[], $8::text[], $9::text[], $10::text[], $11::text[], $12::bool[], \
            $13::int8[], $14::int8[], $15::int8[], $16::int8[], $17::int8[], $18::text[], $19::int8[], \
            $20::bool[], $21::bool[], $22::bool[], $23::float8[], $24::float8[], $25::text[], $26::text[], \
            $27::bool[], $28::text[], $29::text[], $30::text[], $31::text[], $32::text[], $56::text[]) \
            AS u(id, local_identifier, cloud_guid, fingerprint, kind, subtype, live_photo, width, height, \
            duration_ms, taken_at, taken_at_offset_s, time_zone, modified_at, favorite, hidden, trashed, \
            latitude, longitude, original_filename, uti, edited, title, caption, keywords, people, \
            metadata_sha256, search_text) \
        {PHOTO_OVERWRITE} \
        RETURNING id, local_identifier), \
    stale AS ( \
        DELETE FROM icloud.resources r USING UNNEST($33::text[], $34::text[]) AS s(photo_id, resource_type) \
        WHERE r.user_id = $1 AND r.photo_id = s.photo_id AND r.resource_type = s.resource_type), \
    res AS ( \
        INSERT INTO icloud.resources ({RESOURCE_COLUMNS}) \
        SELECT COALESCE(p.id, x.photo_id), x.resource_type, $1, x.declared_size, x.declared_sha256, \
            x.available, x.unavailable_reason, x.state, x.state_reason, x.stored_sha256, x.stored_key, \
            x.stored_size, x.uploaded_at, x.deduplicated, x.bundle_path, x.library_id \
        FROM UNNEST($35::text[], $36::text[], $37::text[], $38::int8[], $39::text[], $40::bool[], \
            $41::text[], $42::text[], $43::text[], $44::text[], $45::text[], $46::int8[], $47::int8[], \
            $48::bool[], $54::text[], $55::text[]) \
            AS x(local_identifier, photo_id, resource_type, declared_size, declared_sha256, available, \
            unavailable_reason, state, state_reason, stored_sha256, stored_key, stored_size, uploaded_at, \
            deduplicated, bundle_path, library_id) \
        LEFT JOIN p ON p.local_identifier = x.local_identifier \
        {RESOURCE_OVERWRITE}), \
    jobs AS ( \
        INSERT INTO icloud.jobs AS j ({QUEUE_COLUMNS}) \
        SELECT x.id, $1, COALESCE(p.id, x.photo_id), x.kind, x.sha256, 'queued', 0, 0, NULL, $3, NULL, $3, $3 \
        FROM UNNEST($49::text[], $50::text[], $51::text[], $52::text[], $53::text[]) \
            AS x(id, local_identifier, photo_id, kind, sha256) \
        LEFT JOIN p ON p.local_identifier = x.local_identifier \
        {REQUEUE}) \
    SELECT v.version, p.id, p.local_identifier FROM v LEFT JOIN p ON TRUE";

/// [`WRITE_BATCH`] with the fragments it shares with the portable statements filled in, built once.
static SQL: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| {
    WRITE_BATCH
        .replace("{BUMP_VERSION}", BUMP_VERSION)
        .replace("{PHOTO_COLUMNS}", PHOTO_COLUMNS)
        .replace("{PHOTO_OVERWRITE}", PHOTO_OVERWRITE)
        .replace("{RESOURCE_COLUMNS}", RESOURCE_COLUMNS)
        .replace("{RESOURCE_OVERWRITE}", RESOURCE_OVERWRITE)
        .replace("{QUEUE_COLUMNS}", QUEUE_COLUMNS)
        .replace("{REQUEUE}", REQUEUE)
});

/// Applies `batch` in one statement; see the module doc.
pub(super) async fn write_batch(
    conn: &mut sqlx::PgConnection,
    user_id: &UserId,
    library_id: &LibraryId,
    batch: &BatchWrite<'_>,
    now: i64,
) -> Result<Written> {
    let photos = &batch.photos;
    let mut durations = Vec::with_capacity(photos.len());
    for row in photos {
        let duration = row.item.duration_ms.map(i64::try_from).transpose();
        durations.push(duration.map_err(|_| Error::invalid("durationMs", "too large"))?);
    }
    let resources: Vec<&ResourceRow> = batch.resources.iter().map(|r| r.row).collect();
    // A job per linked original and kind, as `sql/jobs.rs` queues them.
    let jobs: Vec<(&Linked<'_>, api::JobKind)> = batch
        .linked
        .iter()
        .flat_map(|l| api::JobKind::ALL.map(|kind| (l, kind)))
        .collect();
    let rows = sqlx::query(sqlx::AssertSqlSafe(SQL.as_str()))
        .bind(user_id.as_str())
        .bind(library_id.as_str())
        .bind(now)
        .bind(batch.deleted.as_slice())
        .bind(batch.touched.as_slice())
        .bind(photos.iter().map(|r| r.id).collect::<Vec<_>>())
        .bind(
            photos
                .iter()
                .map(|r| r.item.local_identifier.as_str())
                .collect::<Vec<_>>(),
        )
        .bind(
            photos
                .iter()
                .map(|r| r.item.cloud_guid.as_deref())
                .collect::<Vec<_>>(),
        )
        .bind(
            photos
                .iter()
                .map(|r| r.item.fingerprint.as_deref())
                .collect::<Vec<_>>(),
        )
        .bind(photos.iter().map(|r| kind_name(r.item.kind)).collect::<Vec<_>>())
        .bind(
            photos
                .iter()
                .map(|r| r.item.subtype.as_deref())
                .collect::<Vec<_>>(),
        )
        .bind(photos.iter().map(|r| r.item.live_photo).collect::<Vec<_>>())
        .bind(photos.iter().map(|r| i64::from(r.item.width)).collect::<Vec<_>>())
        .bind(
            photos
                .iter()
                .map(|r| i64::from(r.item.height))
                .collect::<Vec<_>>(),
        )
        .bind(durations)
        .bind(
            photos
                .iter()
                .map(|r| r.item.taken_at.timestamp_millis())
                .collect::<Vec<_>>(),
        )
        .bind(
            photos
                .iter()
                .map(|r| i64::from(r.item.taken_at.offset().local_minus_utc()))
                .collect::<Vec<_>>(),
        )
        .bind(
            photos
                .iter()
                .map(|r| r.item.time_zone.as_deref())
                .collect::<Vec<_>>(),
        )
        .bind(
            photos
                .iter()
                .map(|r| r.item.modified_at.timestamp_millis())
                .collect::<Vec<_>>(),
        )
        .bind(photos.iter().map(|r| r.item.favorite).collect::<Vec<_>>())
        .bind(photos.iter().map(|r| r.item.hidden).collect::<Vec<_>>())
        .bind(photos.iter().map(|r| r.item.trashed).collect::<Vec<_>>())
        .bind(photos.iter().map(|r| r.item.latitude).collect::<Vec<_>>())
        .bind(photos.iter().map(|r| r.item.longitude).collect::<Vec<_>>())
        .bind(
            photos
                .iter()
                .map(|r| r.item.original_filename.as_str())
                .collect::<Vec<_>>(),
        )
        .bind(photos.iter().map(|r| r.item.uti.as_str()).collect::<Vec<_>>())
        .bind(photos.iter().map(|r| r.item.edited).collect::<Vec<_>>())
        .bind(photos.iter().map(|r| r.item.title.as_deref()).collect::<Vec<_>>())
        .bind(
            photos
                .iter()
                .map(|r| r.item.caption.as_deref())
                .collect::<Vec<_>>(),
        )
        .bind(
            photos
                .iter()
                .map(|r| json_list(&r.item.keywords))
                .collect::<Vec<_>>(),
        )
        .bind(
            photos
                .iter()
                .map(|r| json_list(&r.item.people))
                .collect::<Vec<_>>(),
        )
        .bind(photos.iter().map(|r| r.hash).collect::<Vec<_>>())
        .bind(batch.stale.iter().map(|(id, _)| *id).collect::<Vec<_>>())
        .bind(batch.stale.iter().map(|(_, t)| t.as_str()).collect::<Vec<_>>())
        .bind(
            batch
                .resources
                .iter()
                .map(|r| r.local_identifier)
                .collect::<Vec<_>>(),
        )
        .bind(batch.resources.iter().map(|r| r.photo_id).collect::<Vec<_>>())
        .bind(
            resources
                .iter()
                .map(|r| r.resource_type.as_str())
                .collect::<Vec<_>>(),
        )
        .bind(resources.iter().map(|r| r.declared_size).collect::<Vec<_>>())
        .bind(
            resources
                .iter()
                .map(|r| r.declared_sha256.as_deref())
                .collect::<Vec<_>>(),
        )
        .bind(resources.iter().map(|r| r.available).collect::<Vec<_>>())
        .bind(
            resources
                .iter()
                .map(|r| r.unavailable_reason.as_deref())
                .collect::<Vec<_>>(),
        )
        .bind(resources.iter().map(|r| r.state.as_str()).collect::<Vec<_>>())
        .bind(
            resources
                .iter()
                .map(|r| r.state_reason.as_deref())
                .collect::<Vec<_>>(),
        )
        .bind(
            resources
                .iter()
                .map(|r| r.stored_sha256.as_deref())
                .collect::<Vec<_>>(),
        )
        .bind(
            resources
                .iter()
                .map(|r| r.stored_key.as_deref())
                .collect::<Vec<_>>(),
        )
        .bind(resources.iter().map(|r| r.stored_size).collect::<Vec<_>>())
        .bind(resources.iter().map(|r| r.uploaded_at).collect::<Vec<_>>())
        .bind(resources.iter().map(|r| r.deduplicated).collect::<Vec<_>>())
        .bind(jobs.iter().map(|_| new_id()).collect::<Vec<_>>())
        .bind(jobs.iter().map(|(l, _)| l.local_identifier).collect::<Vec<_>>())
        .bind(jobs.iter().map(|(l, _)| l.photo_id).collect::<Vec<_>>())
        .bind(jobs.iter().map(|(_, kind)| kind.as_str()).collect::<Vec<_>>())
        .bind(jobs.iter().map(|(l, _)| l.sha256).collect::<Vec<_>>())
        .bind(
            resources
                .iter()
                .map(|r| r.bundle_path.as_deref())
                .collect::<Vec<_>>(),
        )
        .bind(
            resources
                .iter()
                .map(|r| r.library_id.as_deref())
                .collect::<Vec<_>>(),
        )
        .bind(photos.iter().map(|r| search::of_item(r.item)).collect::<Vec<_>>())
        .fetch_all(&mut *conn)
        .await?;
    let mut version = 0;
    let mut ids = HashMap::with_capacity(photos.len());
    for row in rows {
        version = row.try_get("version")?;
        let id: Option<String> = row.try_get("id")?;
        let local_identifier: Option<String> = row.try_get("local_identifier")?;
        if let (Some(id), Some(local_identifier)) = (id, local_identifier) {
            ids.insert(local_identifier, id);
        }
    }
    Ok(Written { version, ids })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_batch_statement_is_built_from_the_shared_fragments() {
        assert!(
            !SQL.contains('{') && !SQL.contains('}'),
            "a fragment was not filled in: {}",
            *SQL
        );
        for fragment in [
            BUMP_VERSION,
            PHOTO_COLUMNS,
            PHOTO_OVERWRITE,
            RESOURCE_COLUMNS,
            RESOURCE_OVERWRITE,
            QUEUE_COLUMNS,
            REQUEUE,
        ] {
            assert!(SQL.contains(fragment), "{fragment}");
        }
    }
}
