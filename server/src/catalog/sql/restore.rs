//! Restore of a photo, an album or a whole library as of a time, from the history the triggers of migrations
//! 0008 and 0012 keep. A photo gets the state it was in at that time (`before_images.rs` derives it from the
//! before-images: the row after the change that began it, or the photo's current row; created later: a
//! tombstone), each resource the stored object it had then, an album its row and membership then. The
//! restore is itself a change: one new version, history rows marked `restored`, so the changes feed and the
//! history show it. The objects the restore replaces are recorded by the same triggers, so they stay
//! referenced for the retention. The Mac is still the source: its next sync overwrites whatever differs from
//! it (one-way sync).

use std::collections::HashSet;

use chrono::{DateTime, Utc};
use sqlx::Row as _;

use super::{Adapter, Conn, Driver as _, before_images, bump_version, library_key, ms};
use crate::catalog::{Error, LibraryId, RestoreReport, RestoreTarget, Result, UserId, search};

/// A photo's metadata as a history snapshot holds it (the catalog's column names).
#[derive(Debug, serde::Deserialize)]
struct PhotoSnapshot {
    cloud_guid: Option<String>,
    fingerprint: Option<String>,
    kind: String,
    subtype: Option<String>,
    live_photo: bool,
    width: i64,
    height: i64,
    duration_ms: Option<i64>,
    taken_at: i64,
    taken_at_offset_s: i64,
    time_zone: Option<String>,
    modified_at: i64,
    favorite: bool,
    hidden: bool,
    trashed: bool,
    latitude: Option<f64>,
    longitude: Option<f64>,
    original_filename: String,
    uti: String,
    edited: bool,
    title: Option<String>,
    caption: Option<String>,
    keywords: serde_json::Value,
    people: serde_json::Value,
    metadata_sha256: String,
    deleted_at: Option<i64>,
}

/// An album row as a history snapshot holds it.
#[derive(Debug, serde::Deserialize)]
struct AlbumSnapshot {
    title: String,
    kind: String,
    parent_key: Option<String>,
    sort_index: i64,
    content_sha256: String,
    deleted_at: Option<i64>,
}

/// Where a restore writes: the transaction, the user, the time restored to and the restore's own stamp.
struct Restore<'a> {
    user_id: &'a UserId,
    as_of: i64,
    now: i64,
    version: i64,
}

pub(super) async fn restore(
    catalog: &Adapter,
    user_id: &UserId,
    target: &RestoreTarget,
    as_of: DateTime<Utc>,
    now: DateTime<Utc>,
) -> Result<RestoreReport> {
    if as_of > now {
        return Err(Error::invalid("asOf", "is in the future"));
    }
    let mut tx = catalog.begin_write().await?;
    let (as_of, now) = (ms(as_of), ms(now));
    let (photos, albums) = match target {
        RestoreTarget::Photo(photo_id) => {
            let found: Option<String> =
                sqlx::query_scalar("SELECT id FROM icloud.photos WHERE id = $1 AND user_id = $2")
                    .bind(photo_id.as_str())
                    .bind(user_id.as_str())
                    .fetch_optional(&mut *tx)
                    .await?;
            let id = found.ok_or(Error::NotFound { what: "photo" })?;
            (vec![id], Vec::new())
        }
        RestoreTarget::Album(album_id) => {
            let found: Option<String> =
                sqlx::query_scalar("SELECT id FROM icloud.albums WHERE id = $1 AND user_id = $2")
                    .bind(album_id)
                    .bind(user_id.as_str())
                    .fetch_optional(&mut *tx)
                    .await?;
            let id = found.ok_or(Error::NotFound { what: "album" })?;
            let members = members_at(&mut tx, user_id, &id, as_of).await?;
            (members.into_iter().map(|(photo, _)| photo).collect(), vec![id])
        }
        RestoreTarget::Library(library_id) => library_contents(&mut tx, user_id, library_id).await?,
    };
    let version = bump_version(&mut tx, user_id).await?;
    let at = Restore {
        user_id,
        as_of,
        now,
        version,
    };
    let mut report = RestoreReport {
        version,
        ..RestoreReport::default()
    };
    for photo in &photos {
        match restore_photo(&mut tx, &at, photo).await? {
            PhotoOutcome::Unchanged => {}
            PhotoOutcome::Restored => report.photos += 1,
            PhotoOutcome::Tombstoned => {
                report.photos += 1;
                report.tombstoned += 1;
            }
        }
    }
    for album in &albums {
        if restore_album(&mut tx, &at, album).await? {
            report.albums += 1;
        }
    }
    if report.photos == 0 && report.albums == 0 {
        // Nothing differed: the transaction (and its version bump) is rolled back when dropped.
        report.version = version - 1;
        return Ok(report);
    }
    sqlx::query("UPDATE icloud.photo_history SET change = 'restored' WHERE user_id = $1 AND version = $2")
        .bind(user_id.as_str())
        .bind(version)
        .execute(&mut *tx)
        .await?;
    tx.commit().await?;
    Ok(report)
}

/// Every photo (tombstones included) of the library, as home or as another source of it, and its albums.
async fn library_contents(
    conn: &mut Conn,
    user_id: &UserId,
    library_id: &LibraryId,
) -> Result<(Vec<String>, Vec<String>)> {
    library_key(conn, user_id, library_id).await?;
    let photos = sqlx::query_scalar(
        "SELECT id FROM icloud.photos WHERE library_id = $1 AND user_id = $2 \
             UNION SELECT photo_id FROM icloud.photo_aliases WHERE library_id = $1 AND user_id = $2 \
             ORDER BY 1",
    )
    .bind(library_id.as_str())
    .bind(user_id.as_str())
    .fetch_all(&mut *conn)
    .await?;
    let albums =
        sqlx::query_scalar("SELECT id FROM icloud.albums WHERE library_id = $1 AND user_id = $2 ORDER BY id")
            .bind(library_id.as_str())
            .bind(user_id.as_str())
            .fetch_all(&mut *conn)
            .await?;
    Ok((photos, albums))
}

enum PhotoOutcome {
    Unchanged,
    Restored,
    Tombstoned,
}

async fn restore_photo(conn: &mut Conn, at: &Restore<'_>, photo_id: &str) -> Result<PhotoOutcome> {
    let Some((rows, current)) = before_images::load(conn, at.user_id.as_str(), photo_id).await? else {
        return Ok(PhotoOutcome::Unchanged);
    };
    let states = before_images::states(&rows, &current);
    let Some(state) = before_images::state_at(&states, at.as_of) else {
        // Created after that time: it becomes a tombstone (its resources stay, referenced until the purge).
        // A photo created before it whose history the purge already removed is left as it is: what it was
        // then is no longer known.
        let done = sqlx::query(
            "UPDATE icloud.photos SET deleted_at = $1, updated_at = $1, version = $2 \
             WHERE id = $3 AND user_id = $4 AND deleted_at IS NULL AND created_at > $5",
        )
        .bind(at.now)
        .bind(at.version)
        .bind(photo_id)
        .bind(at.user_id.as_str())
        .bind(at.as_of)
        .execute(&mut *conn)
        .await?;
        return Ok(if done.rows_affected() > 0 {
            PhotoOutcome::Tombstoned
        } else {
            PhotoOutcome::Unchanged
        });
    };
    let Some(then) = state.snapshot.map(str::to_owned) else {
        // Only a marker between two rows (clocks that went back) leaves a state unknown: left as it is.
        return Ok(PhotoOutcome::Unchanged);
    };
    let resources_changed = restore_resources(conn, at, photo_id).await?;
    if current.snapshot == then && !resources_changed {
        return Ok(PhotoOutcome::Unchanged);
    }
    let s: PhotoSnapshot = serde_json::from_str(&then).map_err(|e| Error::Conflict {
        what: "history",
        reason: format!("a snapshot of photo {photo_id} is unreadable: {e}"),
    })?;
    let names = |list: &serde_json::Value| -> Vec<String> {
        serde_json::from_value(list.clone()).unwrap_or_default()
    };
    let search_text = search::document(
        s.title.as_deref(),
        s.caption.as_deref(),
        &names(&s.keywords),
        &names(&s.people),
        &s.original_filename,
    );
    sqlx::query(
        "UPDATE icloud.photos SET cloud_guid = $1, fingerprint = $2, kind = $3, subtype = $4, live_photo = $5, \
             width = $6, height = $7, duration_ms = $8, taken_at = $9, taken_at_offset_s = $10, \
             time_zone = $11, modified_at = $12, favorite = $13, hidden = $14, trashed = $15, latitude = $16, \
             longitude = $17, original_filename = $18, uti = $19, edited = $20, title = $21, caption = $22, \
             keywords = $23, people = $24, metadata_sha256 = $25, deleted_at = $26, updated_at = $27, \
             version = $28, search_text = $31 \
         WHERE id = $29 AND user_id = $30",
    )
    .bind(s.cloud_guid)
    .bind(s.fingerprint)
    .bind(s.kind)
    .bind(s.subtype)
    .bind(s.live_photo)
    .bind(s.width)
    .bind(s.height)
    .bind(s.duration_ms)
    .bind(s.taken_at)
    .bind(s.taken_at_offset_s)
    .bind(s.time_zone)
    .bind(s.modified_at)
    .bind(s.favorite)
    .bind(s.hidden)
    .bind(s.trashed)
    .bind(s.latitude)
    .bind(s.longitude)
    .bind(s.original_filename)
    .bind(s.uti)
    .bind(s.edited)
    .bind(s.title)
    .bind(s.caption)
    .bind(s.keywords.to_string())
    .bind(s.people.to_string())
    .bind(s.metadata_sha256)
    .bind(s.deleted_at)
    .bind(at.now)
    .bind(at.version)
    .bind(photo_id)
    .bind(at.user_id.as_str())
    .bind(search_text)
    .execute(&mut *conn)
    .await?;
    Ok(PhotoOutcome::Restored)
}

/// Points each resource back at what it stored at the restore's time. A `resource_history` row holds the
/// values a change replaced, so the first row after that time has them (`created`: the row did not exist);
/// a resource with no later row is as it was. Whether anything was written.
async fn restore_resources(conn: &mut Conn, at: &Restore<'_>, photo_id: &str) -> Result<bool> {
    let rows = sqlx::query(
        "SELECT resource_type, change, stored_key, stored_sha256, stored_size, declared_sha256, declared_size, \
             state \
         FROM icloud.resource_history WHERE user_id = $1 AND photo_id = $2 AND changed_at > $3 ORDER BY id",
    )
    .bind(at.user_id.as_str())
    .bind(photo_id)
    .bind(at.as_of)
    .fetch_all(&mut *conn)
    .await?;
    let mut seen = HashSet::new();
    let mut changed = false;
    for row in rows {
        let resource_type: String = row.try_get("resource_type")?;
        if !seen.insert(resource_type.clone()) {
            continue;
        }
        let change: String = row.try_get("change")?;
        let current: Option<(Option<String>, Option<String>)> = sqlx::query_as(
            "SELECT stored_key, stored_sha256 FROM icloud.resources \
             WHERE photo_id = $1 AND resource_type = $2 AND user_id = $3",
        )
        .bind(photo_id)
        .bind(&resource_type)
        .bind(at.user_id.as_str())
        .fetch_optional(&mut *conn)
        .await?;
        if change == "created" {
            if current.is_some() {
                sqlx::query(
                    "DELETE FROM icloud.resources WHERE photo_id = $1 AND resource_type = $2 AND user_id = $3",
                )
                .bind(photo_id)
                .bind(&resource_type)
                .bind(at.user_id.as_str())
                .execute(&mut *conn)
                .await?;
                changed = true;
            }
            continue;
        }
        let stored_key: Option<String> = row.try_get("stored_key")?;
        let stored_sha256: Option<String> = row.try_get("stored_sha256")?;
        if current == Some((stored_key.clone(), stored_sha256.clone())) {
            continue;
        }
        let state: Option<String> = row.try_get("state")?;
        let state = match (&stored_key, state) {
            (Some(_), _) => "stored".to_owned(),
            (None, Some(state)) if state != "stored" => state,
            (None, _) => "pending".to_owned(),
        };
        let declared_size: Option<i64> = row.try_get("declared_size")?;
        let stored_size: Option<i64> = row.try_get("stored_size")?;
        sqlx::query(
            "INSERT INTO icloud.resources (photo_id, resource_type, user_id, declared_size, declared_sha256, \
                 available, unavailable_reason, state, state_reason, stored_sha256, stored_key, stored_size, \
                 uploaded_at, deduplicated) \
             VALUES ($1, $2, $3, $4, $5, $6, NULL, $7, NULL, $8, $9, $10, NULL, $11) \
             ON CONFLICT (photo_id, resource_type) DO UPDATE SET declared_sha256 = excluded.declared_sha256, \
                 declared_size = excluded.declared_size, state = excluded.state, state_reason = NULL, \
                 stored_sha256 = excluded.stored_sha256, stored_key = excluded.stored_key, \
                 stored_size = excluded.stored_size",
        )
        .bind(photo_id)
        .bind(&resource_type)
        .bind(at.user_id.as_str())
        .bind(declared_size.or(stored_size).unwrap_or(0))
        .bind(row.try_get::<Option<String>, _>("declared_sha256")?)
        .bind(state != "unavailable")
        .bind(&state)
        .bind(&stored_sha256)
        .bind(&stored_key)
        .bind(stored_size)
        .bind(false)
        .execute(&mut *conn)
        .await?;
        changed = true;
    }
    Ok(changed)
}

/// The album's members at `as_of` in album order: for each photo, the last membership change at or before
/// it was an addition. Photos purged since are left out.
async fn members_at(
    conn: &mut Conn,
    user_id: &UserId,
    album_id: &str,
    as_of: i64,
) -> Result<Vec<(String, i64)>> {
    let rows: Vec<(String, i64)> = sqlx::query_as(
        "SELECT h.photo_id, h.position FROM icloud.album_member_history h \
         WHERE h.user_id = $1 AND h.album_id = $2 AND h.changed_at <= $3 AND h.change = 'added' \
           AND NOT EXISTS (SELECT 1 FROM icloud.album_member_history n \
               WHERE n.user_id = h.user_id AND n.album_id = h.album_id AND n.photo_id = h.photo_id \
               AND n.changed_at <= $3 \
               AND (n.changed_at > h.changed_at OR (n.changed_at = h.changed_at AND n.id > h.id))) \
           AND h.photo_id IN (SELECT p.id FROM icloud.photos p WHERE p.user_id = $1) \
         ORDER BY h.position, h.photo_id",
    )
    .bind(user_id.as_str())
    .bind(album_id)
    .bind(as_of)
    .fetch_all(&mut *conn)
    .await?;
    Ok(rows)
}

/// Whether anything was written.
async fn restore_album(conn: &mut Conn, at: &Restore<'_>, album_id: &str) -> Result<bool> {
    let user = at.user_id.as_str();
    let then: Option<String> = sqlx::query_scalar(
        "SELECT snapshot FROM icloud.album_history WHERE user_id = $1 AND album_id = $2 AND changed_at <= $3 \
         ORDER BY changed_at DESC, id DESC LIMIT 1",
    )
    .bind(user)
    .bind(album_id)
    .bind(at.as_of)
    .fetch_optional(&mut *conn)
    .await?;
    let clear = "DELETE FROM icloud.album_members WHERE album_id = $1 AND user_id = $2";
    let Some(then) = then else {
        // Created after that time: soft-deleted, as when the Mac drops an album (and, as for photos, left
        // alone when it is older and only its history is gone).
        let done = sqlx::query(
            "UPDATE icloud.albums SET deleted_at = $1, updated_at = $1, version = $2 \
             WHERE id = $3 AND user_id = $4 AND deleted_at IS NULL AND created_at > $5",
        )
        .bind(at.now)
        .bind(at.version)
        .bind(album_id)
        .bind(user)
        .bind(at.as_of)
        .execute(&mut *conn)
        .await?;
        if done.rows_affected() == 0 {
            return Ok(false);
        }
        sqlx::query(clear)
            .bind(album_id)
            .bind(user)
            .execute(&mut *conn)
            .await?;
        return Ok(true);
    };
    let members = members_at(conn, at.user_id, album_id, at.as_of).await?;
    let current_members: Vec<(String, i64)> = sqlx::query_as(
        "SELECT photo_id, position FROM icloud.album_members WHERE album_id = $1 AND user_id = $2 \
         ORDER BY position, photo_id",
    )
    .bind(album_id)
    .bind(user)
    .fetch_all(&mut *conn)
    .await?;
    let current: Option<String> = sqlx::query_scalar(
        "SELECT snapshot FROM icloud.album_history WHERE user_id = $1 AND album_id = $2 ORDER BY id DESC LIMIT 1",
    )
    .bind(user)
    .bind(album_id)
    .fetch_optional(&mut *conn)
    .await?;
    if current.as_deref() == Some(then.as_str()) && current_members == members {
        return Ok(false);
    }
    let s: AlbumSnapshot = serde_json::from_str(&then).map_err(|e| Error::Conflict {
        what: "history",
        reason: format!("a snapshot of album {album_id} is unreadable: {e}"),
    })?;
    sqlx::query(
        "UPDATE icloud.albums SET title = $1, kind = $2, parent_key = $3, sort_index = $4, n_members = $5, \
             content_sha256 = $6, deleted_at = $7, updated_at = $8, version = $9 \
         WHERE id = $10 AND user_id = $11",
    )
    .bind(s.title)
    .bind(s.kind)
    .bind(s.parent_key)
    .bind(s.sort_index)
    .bind(i64::try_from(members.len()).unwrap_or(i64::MAX))
    .bind(s.content_sha256)
    .bind(s.deleted_at)
    .bind(at.now)
    .bind(at.version)
    .bind(album_id)
    .bind(user)
    .execute(&mut *conn)
    .await?;
    sqlx::query(clear)
        .bind(album_id)
        .bind(user)
        .execute(&mut *conn)
        .await?;
    for (photo_id, position) in &members {
        sqlx::query(
            "INSERT INTO icloud.album_members (album_id, photo_id, user_id, position) VALUES ($1, $2, $3, $4)",
        )
        .bind(album_id)
        .bind(photo_id)
        .bind(user)
        .bind(position)
        .execute(&mut *conn)
        .await?;
    }
    Ok(true)
}
