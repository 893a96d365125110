//! Resource rows: reading them for a set of photos and writing one whole row. Shared by the sync batch
//! (which reconciles declared resources with stored ones) and the upload paths (which mark them stored).

use std::collections::HashMap;

use sqlx::Row as _;

use super::{CHUNK, Conn, Db, placeholders};
use crate::catalog::{ResourceState, ResourceType, Result, UserId};

/// A stored resource row, as written (the photo id aside).
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct ResourceRow {
    pub(crate) resource_type: ResourceType,
    pub(crate) declared_size: i64,
    pub(crate) declared_sha256: Option<String>,
    pub(crate) available: bool,
    pub(crate) unavailable_reason: Option<String>,
    pub(crate) state: ResourceState,
    pub(crate) state_reason: Option<String>,
    pub(crate) stored_sha256: Option<String>,
    pub(crate) stored_key: Option<String>,
    pub(crate) stored_size: Option<i64>,
    pub(crate) uploaded_at: Option<i64>,
    pub(crate) deduplicated: bool,
    /// Where the Mac has the file inside its Photos bundle, and so where its bytes belong in the store.
    pub(crate) bundle_path: Option<String>,
    /// The library whose declaration this is (the only one asked to upload it; its bundle path lies under
    /// that library's prefix); `None` reads as the photo's home library.
    pub(crate) library_id: Option<String>,
}

/// `state_reason` of a pending resource whose stored content the Mac no longer declares.
pub(super) const CONTENT_CHANGED: &str = "content_changed";

/// Resource rows of the given photos, by photo id.
pub(super) async fn fetch_resources(
    conn: &mut Conn,
    user_id: &UserId,
    photo_ids: &[&str],
) -> Result<HashMap<String, Vec<ResourceRow>>> {
    let mut found: HashMap<String, Vec<ResourceRow>> = HashMap::new();
    for chunk in photo_ids.chunks(CHUNK) {
        let sql = format!(
            "SELECT photo_id, resource_type, declared_size, declared_sha256, available, unavailable_reason, \
                    state, state_reason, stored_sha256, stored_key, stored_size, uploaded_at, deduplicated, \
                    bundle_path, library_id \
             FROM icloud.resources WHERE user_id = $1 AND photo_id IN ({})",
            placeholders(2, chunk.len())
        );
        let mut query = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(user_id.as_str());
        for id in chunk {
            query = query.bind(*id);
        }
        for row in query.fetch_all(&mut *conn).await? {
            let type_name: String = row.try_get("resource_type")?;
            let state_name: String = row.try_get("state")?;
            let (Some(resource_type), Some(state)) =
                (ResourceType::parse(&type_name), ResourceState::parse(&state_name))
            else {
                // The CHECK constraints make this unreachable; a row we cannot read is treated as absent.
                continue;
            };
            found
                .entry(row.try_get("photo_id")?)
                .or_default()
                .push(ResourceRow {
                    resource_type,
                    declared_size: row.try_get("declared_size")?,
                    declared_sha256: row.try_get("declared_sha256")?,
                    available: row.try_get("available")?,
                    unavailable_reason: row.try_get("unavailable_reason")?,
                    state,
                    state_reason: row.try_get("state_reason")?,
                    stored_sha256: row.try_get("stored_sha256")?,
                    stored_key: row.try_get("stored_key")?,
                    stored_size: row.try_get("stored_size")?,
                    uploaded_at: row.try_get("uploaded_at")?,
                    deduplicated: row.try_get("deduplicated")?,
                    bundle_path: row.try_get("bundle_path")?,
                    library_id: row.try_get("library_id")?,
                });
        }
    }
    Ok(found)
}

/// Resource rows per statement: 16 parameters each.
const RESOURCE_ROWS_PER_STATEMENT: usize = 500;

/// The resource columns, in the order both ways of writing resources list their values.
pub(crate) const RESOURCE_COLUMNS: &str = "photo_id, resource_type, user_id, declared_size, declared_sha256, \
     available, unavailable_reason, state, state_reason, stored_sha256, stored_key, stored_size, \
     uploaded_at, deduplicated, bundle_path, library_id";

/// The `ON CONFLICT` clause that overwrites a whole resource row (both ways of writing resources use it).
pub(crate) const RESOURCE_OVERWRITE: &str = " ON CONFLICT (photo_id, resource_type) DO UPDATE SET \
     declared_size = excluded.declared_size, declared_sha256 = excluded.declared_sha256, \
     available = excluded.available, unavailable_reason = excluded.unavailable_reason, \
     state = excluded.state, state_reason = excluded.state_reason, \
     stored_sha256 = excluded.stored_sha256, stored_key = excluded.stored_key, \
     stored_size = excluded.stored_size, uploaded_at = excluded.uploaded_at, \
     deduplicated = excluded.deduplicated, bundle_path = excluded.bundle_path, \
     library_id = excluded.library_id";

/// Writes one resource row (insert or full overwrite).
pub(super) async fn upsert_resource(
    conn: &mut Conn,
    user_id: &UserId,
    photo_id: &str,
    row: &ResourceRow,
) -> Result<()> {
    upsert_resources(conn, user_id, &[(photo_id, row)]).await
}

/// Writes resource rows (insert or full overwrite), many per statement.
pub(super) async fn upsert_resources(
    conn: &mut Conn,
    user_id: &UserId,
    rows: &[(&str, &ResourceRow)],
) -> Result<()> {
    for chunk in rows.chunks(RESOURCE_ROWS_PER_STATEMENT) {
        let mut qb =
            sqlx::QueryBuilder::<Db>::new(format!("INSERT INTO icloud.resources ({RESOURCE_COLUMNS}) "));
        qb.push_values(chunk, |mut b, (photo_id, row)| {
            b.push_bind(*photo_id)
                .push_bind(row.resource_type.as_str())
                .push_bind(user_id.as_str())
                .push_bind(row.declared_size)
                .push_bind(row.declared_sha256.as_deref())
                .push_bind(row.available)
                .push_bind(row.unavailable_reason.as_deref())
                .push_bind(row.state.as_str())
                .push_bind(row.state_reason.as_deref())
                .push_bind(row.stored_sha256.as_deref())
                .push_bind(row.stored_key.as_deref())
                .push_bind(row.stored_size)
                .push_bind(row.uploaded_at)
                .push_bind(row.deduplicated)
                .push_bind(row.bundle_path.as_deref())
                .push_bind(row.library_id.as_deref());
        });
        qb.push(RESOURCE_OVERWRITE);
        qb.build().execute(&mut *conn).await?;
    }
    Ok(())
}
