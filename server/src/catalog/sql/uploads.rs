//! What the upload routes need: the pending list, the lookup before a body is read, the dedup table and
//! recording an upload's outcome.

use sqlx::Row as _;

use super::jobs::queue_jobs;
use super::resources::{CONTENT_CHANGED, ResourceRow, fetch_resources, upsert_resource};
use super::{Adapter, CHUNK, Conn, Db, Driver as _, bump_version, placeholders, time, to_i64, to_u64};
use crate::catalog::validate::{self, MAX_RESOURCE_SIZE};
use crate::catalog::{
    Blob, Error, LibraryId, Page, PendingQuery, PendingReason, PendingUpload, PhotoId, RecordedUpload,
    ResourceType, Result, UnavailableReason, UploadLookup, UploadRecord, UploadTarget, UserId,
};
use crate::catalog::{DeclaredResource, ResourceState, StoredObject};

/// Largest page of the pending list.
const MAX_PAGE: u32 = 1000;

pub(super) async fn pending_uploads(
    catalog: &Adapter,
    user_id: &UserId,
    query: &PendingQuery,
) -> Result<Page<PendingUpload>> {
    if query.limit == 0 || query.limit > MAX_PAGE {
        return Err(Error::invalid("limit", format!("must be 1 to {MAX_PAGE}")));
    }
    let (after_photo, after_type) = match &query.cursor {
        None => (String::new(), String::new()),
        Some(cursor) => parse_cursor(cursor)?,
    };
    // The partial index `resources_pending` matches `state IN ('pending', 'failed')` literally. A resource is
    // listed for the library holding its declaration (`resources.library_id`, the photo's home when NULL),
    // under that library's identifier of the photo, and only while that library still has the photo: a
    // photo synced from two Macs is uploaded by one of them (`sources.rs`).
    let rows = sqlx::query(
        "SELECT r.photo_id, r.resource_type, r.state, r.state_reason, r.declared_size, r.declared_sha256, \
                l.id AS library_id, l.library_key, \
                CASE WHEN l.id = p.library_id THEN p.local_identifier ELSE \
                  (SELECT a.local_identifier FROM icloud.photo_aliases a WHERE a.photo_id = p.id \
                     AND a.library_id = l.id AND a.deleted_at IS NULL LIMIT 1) \
                END AS local_identifier \
         FROM icloud.resources r \
         JOIN icloud.photos p ON p.id = r.photo_id \
         JOIN icloud.libraries l ON l.id = COALESCE(r.library_id, p.library_id) \
         WHERE r.user_id = $1 AND r.state IN ('pending', 'failed') AND p.deleted_at IS NULL \
           AND ($2 IS NULL OR l.id = $2) \
           AND (l.id = p.library_id OR EXISTS (SELECT 1 FROM icloud.photo_aliases a WHERE a.photo_id = p.id \
                AND a.library_id = l.id AND a.deleted_at IS NULL)) \
           AND (r.photo_id, r.resource_type) > ($3, $4) \
         ORDER BY r.photo_id, r.resource_type \
         LIMIT $5",
    )
    .bind(user_id.as_str())
    .bind(query.library_id.as_ref().map(LibraryId::as_str))
    .bind(&after_photo)
    .bind(&after_type)
    .bind(i64::from(query.limit) + 1)
    .fetch_all(catalog.pool())
    .await?;
    let mut items = Vec::with_capacity(rows.len());
    for row in &rows {
        let type_name: String = row.try_get("resource_type")?;
        let Some(resource) = ResourceType::parse(&type_name) else {
            continue;
        };
        let state: String = row.try_get("state")?;
        let state_reason: Option<String> = row.try_get("state_reason")?;
        let reason = match (state.as_str(), state_reason) {
            ("failed", detail) => PendingReason::Failed {
                detail: detail.unwrap_or_default(),
            },
            (_, Some(reason)) if reason == CONTENT_CHANGED => PendingReason::ContentChanged,
            _ => PendingReason::NotUploaded,
        };
        items.push(PendingUpload {
            photo_id: PhotoId::new(row.try_get::<String, _>("photo_id")?),
            library_id: LibraryId::new(row.try_get::<String, _>("library_id")?),
            library_key: row.try_get("library_key")?,
            local_identifier: row.try_get("local_identifier")?,
            resource,
            reason,
            declared_size: to_u64(row.try_get("declared_size")?),
            declared_sha256: row.try_get("declared_sha256")?,
        });
    }
    let limit = usize::try_from(query.limit).unwrap_or(usize::MAX);
    let next_cursor = if items.len() > limit {
        items.truncate(limit);
        items
            .last()
            .map(|last| format!("{}/{}", last.photo_id, last.resource.as_str()))
    } else {
        None
    };
    Ok(Page { items, next_cursor })
}

fn parse_cursor(cursor: &str) -> Result<(String, String)> {
    let bad = || Error::invalid("cursor", "not a cursor this server handed out");
    let (photo, resource) = cursor.split_once('/').ok_or_else(bad)?;
    let hex_id = photo.len() == 32 && photo.bytes().all(|b| b.is_ascii_hexdigit());
    if !hex_id || ResourceType::parse(resource).is_none() {
        return Err(bad());
    }
    Ok((photo.to_owned(), resource.to_owned()))
}

pub(super) async fn resource_for_upload(
    catalog: &Adapter,
    user_id: &UserId,
    lookup: &UploadLookup,
) -> Result<Option<UploadTarget>> {
    // Through the user's libraries (a handful) into the (library, identifier) keys of the photos' homes and
    // of their other sources' aliases, so photos need no index of their own by (user, identifier); CROSS
    // JOIN keeps SQLite from starting at the photos.
    let rows = sqlx::query(
        "SELECT p.id, l.id AS library_id, l.library_key, p.local_identifier, p.original_filename, p.uti, \
                p.deleted_at, p.library_id AS home_library_id \
         FROM icloud.libraries l CROSS JOIN icloud.photos p \
         WHERE l.user_id = $1 AND ($3 IS NULL OR l.id = $3) \
           AND p.library_id = l.id AND p.local_identifier = $2 AND p.user_id = $1 \
         UNION ALL \
         SELECT p.id, l.id AS library_id, l.library_key, a.local_identifier, p.original_filename, p.uti, \
                COALESCE(a.deleted_at, p.deleted_at) AS deleted_at, p.library_id AS home_library_id \
         FROM icloud.libraries l CROSS JOIN icloud.photo_aliases a JOIN icloud.photos p ON p.id = a.photo_id \
         WHERE l.user_id = $1 AND ($3 IS NULL OR l.id = $3) \
           AND a.library_id = l.id AND a.local_identifier = $2 AND a.user_id = $1 \
         LIMIT 3",
    )
    .bind(user_id.as_str())
    .bind(&lookup.local_identifier)
    .bind(lookup.library_id.as_ref().map(LibraryId::as_str))
    .fetch_all(catalog.pool())
    .await?;
    // The same photo under this identifier in two libraries (two copies of one library) is one photo.
    let mut photos: Vec<String> = rows
        .iter()
        .map(|row| row.try_get::<String, _>("id"))
        .collect::<std::result::Result<_, _>>()?;
    photos.sort();
    photos.dedup();
    let live = rows.iter().find(|row| {
        row.try_get::<Option<i64>, _>("deleted_at")
            .is_ok_and(|deleted| deleted.is_none())
    });
    let row = match (live.or(rows.first()), photos.len()) {
        (None, _) => return Ok(None),
        (Some(row), 1) => row,
        _ => {
            return Err(Error::Conflict {
                what: "localIdentifier",
                reason: "the identifier exists in several of your libraries; name the library".into(),
            });
        }
    };
    let photo_id: String = row.try_get("id")?;
    let home_library: String = row.try_get("home_library_id")?;
    let mut conn = catalog.pool().acquire().await?;
    let resources = fetch_resources(&mut conn, user_id, &[photo_id.as_str()]).await?;
    let resource = resources
        .get(&photo_id)
        .and_then(|rows| rows.iter().find(|r| r.resource_type == lookup.resource));
    let deleted_at: Option<i64> = row.try_get("deleted_at")?;
    let library_id: String = row.try_get("library_id")?;
    let resource_library = resource
        .map(|r| r.library_id.clone().unwrap_or_else(|| home_library.clone()))
        .unwrap_or_else(|| library_id.clone());
    Ok(Some(UploadTarget {
        photo_id: PhotoId::new(photo_id.clone()),
        library_id: LibraryId::new(library_id),
        resource_library_id: LibraryId::new(resource_library),
        library_key: row.try_get("library_key")?,
        local_identifier: row.try_get("local_identifier")?,
        original_filename: row.try_get("original_filename")?,
        uti: row.try_get("uti")?,
        resource: lookup.resource,
        declared: resource.map(|r| DeclaredResource {
            resource_type: r.resource_type,
            size: to_u64(r.declared_size),
            sha256: r.declared_sha256.clone(),
            available: r.available,
            unavailable_reason: r.unavailable_reason.as_deref().and_then(unavailable_reason),
            bundle_path: r.bundle_path.clone(),
        }),
        state: resource.map(|r| r.state),
        stored: resource.and_then(stored_object),
        deleted: deleted_at.is_some(),
    }))
}

pub(super) async fn blob_by_sha(catalog: &Adapter, user_id: &UserId, sha256: &str) -> Result<Option<Blob>> {
    if !validate::is_sha256_hex(sha256) {
        return Err(Error::invalid("sha256", "not 64 lower-case hex characters"));
    }
    let mut conn = catalog.pool().acquire().await?;
    blob(&mut conn, user_id, sha256).await
}

pub(super) async fn blob_by_key(catalog: &Adapter, user_id: &UserId, key: &str) -> Result<Option<Blob>> {
    let row = sqlx::query(
        "SELECT sha256, storage_key, size FROM icloud.blobs WHERE user_id = $1 AND storage_key = $2 LIMIT 1",
    )
    .bind(user_id.as_str())
    .bind(key)
    .fetch_optional(catalog.pool())
    .await?;
    row.map(|row| blob_from_row(&row)).transpose()
}

pub(super) async fn record_upload(
    catalog: &Adapter,
    user_id: &UserId,
    upload: &UploadRecord,
) -> Result<RecordedUpload> {
    if !validate::is_sha256_hex(&upload.sha256) {
        return Err(Error::invalid("sha256", "not 64 lower-case hex characters"));
    }
    if upload.size > MAX_RESOURCE_SIZE {
        return Err(Error::invalid("size", "more than 1 TiB"));
    }
    validate::label("key", &upload.key, 1024)?;
    let size = to_i64("size", upload.size)?;
    let at = super::ms(upload.at);

    let mut tx = catalog.begin_write().await?;
    // Serialised with the garbage collector's release of this user's blobs (see `sql/gc.rs`): a link to a
    // blob it released meanwhile must store the bytes again, not name a deleted object.
    super::gc::lock_user_writes(&mut tx, user_id).await?;
    if upload.deduplicated
        && blob(&mut tx, user_id, &upload.sha256)
            .await?
            .is_none_or(|b| b.key != upload.key)
    {
        return Err(Error::Conflict {
            what: "blob",
            reason: "the stored copy was garbage-collected meanwhile; upload the bytes".into(),
        });
    }
    let photo = upload.photo_id.as_str();
    let mut existing = fetch_resources(&mut tx, user_id, &[photo]).await?;
    let owned: Option<String> =
        sqlx::query_scalar("SELECT id FROM icloud.photos WHERE id = $1 AND user_id = $2")
            .bind(photo)
            .bind(user_id.as_str())
            .fetch_optional(&mut *tx)
            .await?;
    if owned.is_none() {
        return Err(Error::NotFound { what: "photo" });
    }
    let version = bump_version(&mut tx, user_id).await?;
    let before = existing
        .remove(photo)
        .and_then(|rows| rows.into_iter().find(|r| r.resource_type == upload.resource));
    let row = ResourceRow {
        state: ResourceState::Stored,
        state_reason: None,
        stored_sha256: Some(upload.sha256.clone()),
        stored_key: Some(upload.key.clone()),
        stored_size: Some(size),
        uploaded_at: Some(at),
        deduplicated: upload.deduplicated,
        ..before.unwrap_or_else(|| ResourceRow {
            // An upload of a type the Mac never declared: record what arrived as the declaration.
            resource_type: upload.resource,
            declared_size: size,
            declared_sha256: Some(upload.sha256.clone()),
            available: true,
            unavailable_reason: None,
            state: ResourceState::Pending,
            state_reason: None,
            stored_sha256: None,
            stored_key: None,
            stored_size: None,
            uploaded_at: None,
            deduplicated: false,
            bundle_path: None,
            // Keyed by content, under no bundle path: the photo's home library names it.
            library_id: None,
        })
    };
    upsert_resource(&mut tx, user_id, photo, &row).await?;
    sqlx::query(
        "INSERT INTO icloud.blobs (user_id, sha256, storage_key, size, created_at) VALUES ($1, $2, $3, $4, $5) \
         ON CONFLICT (user_id, sha256) DO NOTHING",
    )
    .bind(user_id.as_str())
    .bind(&upload.sha256)
    .bind(&upload.key)
    .bind(size)
    .bind(at)
    .execute(&mut *tx)
    .await?;
    // Link the first stored copy, so every resource with this content names the same object.
    let canonical = blob(&mut tx, user_id, &upload.sha256)
        .await?
        .ok_or(Error::NotFound { what: "blob" })?;
    let linked_rows = sqlx::query(
        "UPDATE icloud.resources SET state = 'stored', state_reason = NULL, stored_sha256 = $1, \
             stored_key = $2, stored_size = $3, uploaded_at = $4, deduplicated = $5 \
         WHERE user_id = $6 AND declared_sha256 = $1 AND state IN ('pending', 'failed', 'unavailable') \
         RETURNING photo_id, resource_type",
    )
    .bind(&canonical.sha256)
    .bind(&canonical.key)
    .bind(to_i64("size", canonical.size)?)
    .bind(at)
    .bind(true)
    .bind(user_id.as_str())
    .fetch_all(&mut *tx)
    .await?;
    let mut linked = Vec::with_capacity(linked_rows.len());
    let mut originals = Vec::new();
    if upload.resource == ResourceType::Original {
        originals.push((photo.to_owned(), upload.sha256.clone()));
    }
    for row in &linked_rows {
        let photo_id: String = row.try_get("photo_id")?;
        let resource_type: String = row.try_get("resource_type")?;
        if resource_type == ResourceType::Original.as_str() {
            originals.push((photo_id.clone(), canonical.sha256.clone()));
        }
        linked.push(photo_id);
    }
    // A stored original is what the enrichment workers start from.
    queue_jobs(&mut tx, user_id, &originals, at).await?;
    let mut touched: Vec<&str> = linked.iter().map(String::as_str).collect();
    touched.push(photo);
    set_photo_versions(&mut tx, user_id, &touched, version).await?;
    tx.commit().await?;
    Ok(RecordedUpload {
        version,
        linked: u64::try_from(linked.len()).unwrap_or(u64::MAX),
    })
}

pub(super) async fn record_upload_failure(
    catalog: &Adapter,
    user_id: &UserId,
    photo_id: &PhotoId,
    resource: ResourceType,
    reason: &str,
) -> Result<()> {
    let mut reason: String = reason.chars().filter(|c| *c != '\0').take(1024).collect();
    if reason.is_empty() {
        reason = "upload failed".into();
    }
    let mut tx = catalog.begin_write().await?;
    let rows = fetch_resources(&mut tx, user_id, &[photo_id.as_str()]).await?;
    let Some(before) = rows
        .get(photo_id.as_str())
        .and_then(|rows| rows.iter().find(|r| r.resource_type == resource))
    else {
        return Err(Error::NotFound { what: "resource" });
    };
    let unchanged = before.state == ResourceState::Failed && before.state_reason.as_deref() == Some(&reason);
    if !matches!(before.state, ResourceState::Pending | ResourceState::Failed) || unchanged {
        // Stored or unavailable resources are not waiting for an upload; a failure changes nothing.
        return Ok(());
    }
    let version = bump_version(&mut tx, user_id).await?;
    let row = ResourceRow {
        state: ResourceState::Failed,
        state_reason: Some(reason),
        ..before.clone()
    };
    upsert_resource(&mut tx, user_id, photo_id.as_str(), &row).await?;
    set_photo_versions(&mut tx, user_id, &[photo_id.as_str()], version).await?;
    tx.commit().await?;
    Ok(())
}

async fn blob(conn: &mut Conn, user_id: &UserId, sha256: &str) -> Result<Option<Blob>> {
    let row =
        sqlx::query("SELECT sha256, storage_key, size FROM icloud.blobs WHERE user_id = $1 AND sha256 = $2")
            .bind(user_id.as_str())
            .bind(sha256)
            .fetch_optional(&mut *conn)
            .await?;
    row.map(|row| blob_from_row(&row)).transpose()
}

fn blob_from_row(row: &<Db as sqlx::Database>::Row) -> Result<Blob> {
    Ok(Blob {
        sha256: row.try_get("sha256")?,
        key: row.try_get("storage_key")?,
        size: to_u64(row.try_get("size")?),
    })
}

async fn set_photo_versions(
    conn: &mut Conn,
    user_id: &UserId,
    photo_ids: &[&str],
    version: i64,
) -> Result<()> {
    for chunk in photo_ids.chunks(CHUNK) {
        let sql = format!(
            "UPDATE icloud.photos SET version = $1 WHERE user_id = $2 AND id IN ({})",
            placeholders(3, chunk.len())
        );
        let mut query = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(version)
            .bind(user_id.as_str());
        for id in chunk {
            query = query.bind(*id);
        }
        query.execute(&mut *conn).await?;
    }
    Ok(())
}

fn stored_object(row: &ResourceRow) -> Option<StoredObject> {
    if row.state != ResourceState::Stored {
        return None;
    }
    Some(StoredObject {
        sha256: row.stored_sha256.clone()?,
        key: row.stored_key.clone()?,
        size: to_u64(row.stored_size?),
        uploaded_at: time(row.uploaded_at?),
    })
}

fn unavailable_reason(name: &str) -> Option<UnavailableReason> {
    serde_json::from_value(serde_json::Value::String(name.to_owned())).ok()
}
