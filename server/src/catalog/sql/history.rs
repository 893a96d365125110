//! A photo's versions, the changes feed and the purge of old history and tombstones. The rows are written by
//! the triggers of migration 0008; this module only reads them, and deletes them once they are older than the
//! retention.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use sqlx::Row as _;

use super::web::{LIST_COLUMNS, LIST_JOINS, listed};
use super::{Adapter, CHUNK, Driver as _, placeholders, time};
use crate::catalog::{
    Change, ChangesSince, LibraryId, PhotoChange, PhotoId, PhotoVersion, PurgeReport, ResourceType, Result,
    Retention, UserId,
};

/// Each resource's stored SHA-256 at one version.
type VersionResources = Vec<(ResourceType, Option<String>)>;

/// A resource's change as `resource_history` recorded it.
struct ResourceChange {
    resource_type: ResourceType,
    version: i64,
    created: bool,
    stored_sha256: Option<String>,
}

pub(super) async fn photo_history(
    catalog: &Adapter,
    user_id: &UserId,
    photo_id: &PhotoId,
) -> Result<Option<Vec<PhotoVersion>>> {
    let mut conn = catalog.pool().acquire().await?;
    let exists: Option<String> =
        sqlx::query_scalar("SELECT id FROM icloud.photos WHERE id = $1 AND user_id = $2")
            .bind(photo_id.as_str())
            .bind(user_id.as_str())
            .fetch_optional(&mut *conn)
            .await?;
    if exists.is_none() {
        return Ok(None);
    }
    let rows = sqlx::query(
        "SELECT version, changed_at, change, library_id, snapshot FROM icloud.photo_history \
         WHERE user_id = $1 AND photo_id = $2 ORDER BY version, id",
    )
    .bind(user_id.as_str())
    .bind(photo_id.as_str())
    .fetch_all(&mut *conn)
    .await?;
    let changes = resource_changes(&mut conn, user_id, photo_id).await?;
    let current: Vec<(String, Option<String>)> = sqlx::query_as(
        "SELECT resource_type, stored_sha256 FROM icloud.resources WHERE user_id = $1 AND photo_id = $2",
    )
    .bind(user_id.as_str())
    .bind(photo_id.as_str())
    .fetch_all(&mut *conn)
    .await?;
    let current: BTreeMap<&str, Option<String>> =
        current.iter().map(|(t, sha)| (t.as_str(), sha.clone())).collect();

    let mut versions: Vec<PhotoVersion> = Vec::with_capacity(rows.len());
    let mut previous: Option<(serde_json::Value, VersionResources)> = None;
    for row in rows {
        let version: i64 = row.try_get("version")?;
        let text: String = row.try_get("snapshot")?;
        let snapshot: serde_json::Value = serde_json::from_str(&text).unwrap_or(serde_json::Value::Null);
        let resources = resources_at(version, &changes, &current);
        let changed_fields = match &previous {
            None => fields(&snapshot).map(|(k, _)| k.clone()).collect(),
            Some((before, before_resources)) => {
                let mut changed: Vec<String> = fields(&snapshot)
                    .filter(|(k, v)| before.get(k.as_str()) != Some(*v))
                    .map(|(k, _)| k.clone())
                    .collect();
                if *before_resources != resources {
                    changed.push("resources".to_owned());
                }
                changed
            }
        };
        let change: String = row.try_get("change")?;
        previous = Some((snapshot.clone(), resources.clone()));
        versions.push(PhotoVersion {
            version,
            changed_at: time(row.try_get("changed_at")?),
            change: Change::parse(&change),
            library_id: LibraryId::new(row.try_get::<String, _>("library_id")?),
            snapshot,
            changed_fields,
            resources,
        });
    }
    versions.reverse();
    Ok(Some(versions))
}

/// The fields of a snapshot, minus the metadata hash (it changes with any field, so it says nothing).
fn fields(snapshot: &serde_json::Value) -> impl Iterator<Item = (&String, &serde_json::Value)> {
    snapshot
        .as_object()
        .into_iter()
        .flatten()
        .filter(|(k, _)| k.as_str() != "metadata_sha256")
}

async fn resource_changes(
    conn: &mut super::Conn,
    user_id: &UserId,
    photo_id: &PhotoId,
) -> Result<Vec<ResourceChange>> {
    let rows = sqlx::query(
        "SELECT resource_type, version, change, stored_sha256 FROM icloud.resource_history \
         WHERE user_id = $1 AND photo_id = $2 ORDER BY id",
    )
    .bind(user_id.as_str())
    .bind(photo_id.as_str())
    .fetch_all(&mut *conn)
    .await?;
    let mut changes = Vec::with_capacity(rows.len());
    for row in rows {
        let name: String = row.try_get("resource_type")?;
        let Some(resource_type) = ResourceType::parse(&name) else {
            continue;
        };
        let change: String = row.try_get("change")?;
        changes.push(ResourceChange {
            resource_type,
            version: row.try_get("version")?,
            created: change == "created",
            stored_sha256: row.try_get("stored_sha256")?,
        });
    }
    Ok(changes)
}

/// Each resource's stored SHA-256 as of `version`: a history row holds the values a later version replaced,
/// so the first row after `version` has them; with none, the resource is as it is now.
fn resources_at(
    version: i64,
    changes: &[ResourceChange],
    current: &BTreeMap<&str, Option<String>>,
) -> VersionResources {
    let mut found = Vec::new();
    for resource_type in ResourceType::ALL {
        let later = changes
            .iter()
            .find(|c| c.resource_type == resource_type && c.version > version);
        match later {
            Some(change) if change.created => {}
            Some(change) => found.push((resource_type, change.stored_sha256.clone())),
            None => {
                if let Some(sha) = current.get(resource_type.as_str()) {
                    found.push((resource_type, sha.clone()));
                }
            }
        }
    }
    found
}

pub(super) async fn photo_changes(
    catalog: &Adapter,
    user_id: &UserId,
    since: &ChangesSince,
    limit: u32,
) -> Result<Vec<PhotoChange>> {
    let after = match since.photo_id {
        Some(_) => "(p.version > $2 OR (p.version = $2 AND p.id > $3))",
        None => "p.version > $2 AND $3 = $3",
    };
    let sql = format!(
        "SELECT p.version, p.deleted_at, {LIST_COLUMNS} FROM icloud.photos p {LIST_JOINS} \
         WHERE p.user_id = $1 AND {after} ORDER BY p.version, p.id LIMIT $4"
    );
    let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
        .bind(user_id.as_str())
        .bind(since.version)
        .bind(since.photo_id.as_deref().unwrap_or(""))
        .bind(i64::from(limit) + 1)
        .fetch_all(catalog.pool())
        .await?;
    let mut changes = Vec::with_capacity(rows.len());
    for row in rows {
        let deleted_at: Option<i64> = row.try_get("deleted_at")?;
        let photo = listed(&row)?;
        changes.push(PhotoChange {
            version: row.try_get("version")?,
            photo_id: photo.id.clone(),
            photo: deleted_at.is_none().then_some(photo),
        });
    }
    Ok(changes)
}

/// Removes, for every user, tombstones deleted before the retention's cutoff (with their resources,
/// memberships, jobs, enrichments and history) and history rows older than the cutoff, except, for each
/// photo, album and membership, the last row at or before the cutoff: the state a restore as of the oldest
/// kept time starts from (for a live photo, its latest snapshot). `resource_history` rows hold objects that
/// were replaced at `changed_at`, so those older than the cutoff all go: their retention is over.
pub(super) async fn purge(
    catalog: &Adapter,
    retention: Retention,
    now: DateTime<Utc>,
) -> Result<PurgeReport> {
    let cutoff = retention.cutoff_ms(now);
    let mut report = PurgeReport::default();
    let mut tx = catalog.begin_write().await?;
    let gone: Vec<String> =
        sqlx::query_scalar("SELECT id FROM icloud.photos WHERE deleted_at IS NOT NULL AND deleted_at < $1")
            .bind(cutoff)
            .fetch_all(&mut *tx)
            .await?;
    for chunk in gone.chunks(CHUNK) {
        let ids = placeholders(1, chunk.len());
        // The photo first: deleting it cascades to its resources and memberships, whose triggers record
        // them; those records are removed right after, with the photo's older history.
        for table in [
            "photos",
            "photo_history",
            "resource_history",
            "album_member_history",
        ] {
            let column = if table == "photos" { "id" } else { "photo_id" };
            let sql = format!("DELETE FROM icloud.{table} WHERE {column} IN ({ids})");
            let mut query = sqlx::query(sqlx::AssertSqlSafe(sql));
            for id in chunk {
                query = query.bind(id);
            }
            let done = query.execute(&mut *tx).await?.rows_affected();
            if table == "photos" {
                report.photos += done;
            } else {
                report.history_rows += done;
            }
        }
    }
    let deletes = [
        "DELETE FROM icloud.resource_history WHERE changed_at < $1",
        "DELETE FROM icloud.photo_history AS h WHERE h.changed_at < $1 AND EXISTS (\
             SELECT 1 FROM icloud.photo_history n WHERE n.user_id = h.user_id AND n.photo_id = h.photo_id \
             AND n.changed_at <= $1 AND (n.changed_at > h.changed_at OR (n.changed_at = h.changed_at AND n.id > h.id)))",
        "DELETE FROM icloud.album_history AS h WHERE h.changed_at < $1 AND EXISTS (\
             SELECT 1 FROM icloud.album_history n WHERE n.user_id = h.user_id AND n.album_id = h.album_id \
             AND n.changed_at <= $1 AND (n.changed_at > h.changed_at OR (n.changed_at = h.changed_at AND n.id > h.id)))",
        // A membership whose last change before the cutoff removed it needs no row at all: no row means
        // "not a member".
        "DELETE FROM icloud.album_member_history AS h WHERE h.changed_at < $1 AND (h.change = 'removed' OR EXISTS (\
             SELECT 1 FROM icloud.album_member_history n WHERE n.user_id = h.user_id AND n.album_id = h.album_id \
             AND n.photo_id = h.photo_id \
             AND n.changed_at <= $1 AND (n.changed_at > h.changed_at OR (n.changed_at = h.changed_at AND n.id > h.id))))",
    ];
    for sql in deletes {
        report.history_rows += sqlx::query(sql)
            .bind(cutoff)
            .execute(&mut *tx)
            .await?
            .rows_affected();
    }
    tx.commit().await?;
    Ok(report)
}
