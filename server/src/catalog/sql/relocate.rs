//! Moving stored objects to their bundle path: the resources whose bytes are stored somewhere other than the
//! key their bundle path gives (uploaded before the agent sent bundle paths, or linked to another photo's
//! object with the same content), and repointing one once its object was copied and verified.
//!
//! A resource's bundle path lies under the library that holds its declaration (`resources.library_id`, the
//! photo's home when NULL): a photo synced from two Macs has one row per resource type, so one object, at
//! the bundle path of the Mac that declared it (`sources.rs`), never a copy per Mac.
//!
//! A maintenance pass, not a request: it reads across users, and every row it changes is named by user.

use sqlx::Row as _;

use super::{Adapter, Driver as _, to_u64};
use crate::catalog::{LibraryId, Misplaced, PhotoId, ResourceType, Result, UserId};

/// Largest page of [`misplaced`].
const MAX_PAGE: u32 = 1000;

pub(super) async fn misplaced(
    catalog: &Adapter,
    after: Option<(&PhotoId, ResourceType)>,
    limit: u32,
) -> Result<Vec<Misplaced>> {
    let (after_photo, after_type) = after.map_or((String::new(), ""), |(p, t)| (p.to_string(), t.as_str()));
    let rows = sqlx::query(
        "SELECT r.user_id, r.photo_id, r.resource_type, COALESCE(r.library_id, p.library_id) AS library_id, \
                r.bundle_path, r.stored_key, r.stored_sha256, r.stored_size \
         FROM icloud.resources r JOIN icloud.photos p ON p.id = r.photo_id \
         WHERE r.state = 'stored' AND r.bundle_path IS NOT NULL AND r.stored_key IS NOT NULL \
           AND r.stored_sha256 IS NOT NULL \
           AND r.stored_key <> 'users/' || r.user_id || '/libraries/' || COALESCE(r.library_id, p.library_id) \
                || '/' || r.bundle_path \
           AND (r.photo_id, r.resource_type) > ($1, $2) \
         ORDER BY r.photo_id, r.resource_type \
         LIMIT $3",
    )
    .bind(&after_photo)
    .bind(after_type)
    .bind(i64::from(limit.clamp(1, MAX_PAGE)))
    .fetch_all(catalog.pool())
    .await?;
    let mut found = Vec::with_capacity(rows.len());
    for row in &rows {
        let type_name: String = row.try_get("resource_type")?;
        let Some(resource) = ResourceType::parse(&type_name) else {
            continue;
        };
        found.push(Misplaced {
            user_id: UserId::new(row.try_get::<String, _>("user_id")?),
            photo_id: PhotoId::new(row.try_get::<String, _>("photo_id")?),
            resource,
            library_id: LibraryId::new(row.try_get::<String, _>("library_id")?),
            bundle_path: row.try_get("bundle_path")?,
            key: row.try_get("stored_key")?,
            sha256: row.try_get("stored_sha256")?,
            size: to_u64(row.try_get("stored_size")?),
        });
    }
    Ok(found)
}

pub(super) async fn repoint(catalog: &Adapter, moved: &Misplaced, to_key: &str) -> Result<bool> {
    let mut tx = catalog.begin_write().await?;
    // Only while the row still names the object that was copied and verified.
    let done = sqlx::query(
        "UPDATE icloud.resources SET stored_key = $1 \
         WHERE user_id = $2 AND photo_id = $3 AND resource_type = $4 AND state = 'stored' \
           AND stored_key = $5 AND stored_sha256 = $6",
    )
    .bind(to_key)
    .bind(moved.user_id.as_str())
    .bind(moved.photo_id.as_str())
    .bind(moved.resource.as_str())
    .bind(&moved.key)
    .bind(&moved.sha256)
    .execute(&mut *tx)
    .await?
    .rows_affected();
    if done == 1 {
        // New links of this content go to the bundle-path copy; the old object stays while anything
        // (another photo, a retained history row) still names it, and the garbage collector decides after.
        sqlx::query(
            "UPDATE icloud.blobs SET storage_key = $1 WHERE user_id = $2 AND sha256 = $3 AND storage_key = $4",
        )
        .bind(to_key)
        .bind(moved.user_id.as_str())
        .bind(&moved.sha256)
        .bind(&moved.key)
        .execute(&mut *tx)
        .await?;
    }
    tx.commit().await?;
    Ok(done == 1)
}
