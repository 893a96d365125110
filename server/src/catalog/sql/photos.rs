//! Libraries and the sync batch. A batch is validated first (bad items become `Rejected` without touching
//! the database), then read, decided and written: the existing rows of the batch are fetched with a few
//! `IN (…)` queries, each item is compared with its stored metadata hash and resource rows, and only rows
//! that differ are written, all at once by the adapter's `write_batch` (`sql/write.rs`), atomically. The
//! version is bumped once, and only when something is written, so a re-sync of an unchanged library writes
//! nothing.

use std::collections::{HashMap, HashSet};

use chrono::Utc;
use sqlx::Row as _;

use super::resources::{CONTENT_CHANGED, ResourceRow, fetch_resources};
use super::sources::{self, SourcePlan, Sources};
use super::write::{BatchWrite, Linked, PhotoRow, ResourceWrite, Written};
use super::{
    Adapter, CHUNK, Conn, Driver as _, IN_USER_LIBRARY, current_version, library_key, ms, new_id,
    placeholders,
};
use crate::catalog::validate;
use crate::catalog::{
    Blob, Error, ItemOutcome, ItemResult, Library, LibraryId, PhotoId, PhotoUpsert, ResourceType, Result,
    SyncBatchResult, UserId,
};
use crate::catalog::{DeclaredResource, ResourceState};

pub(super) async fn ensure_library(
    catalog: &Adapter,
    user_id: &UserId,
    library_key: &str,
) -> Result<Library> {
    validate::key("libraryId", library_key)?;
    let select = "SELECT id FROM icloud.libraries WHERE user_id = $1 AND library_key = $2";
    let found: Option<String> = sqlx::query_scalar(select)
        .bind(user_id.as_str())
        .bind(library_key)
        .fetch_optional(catalog.pool())
        .await?;
    let id = match found {
        Some(id) => id,
        None => {
            let user: Option<String> = sqlx::query_scalar("SELECT id FROM users WHERE id = $1")
                .bind(user_id.as_str())
                .fetch_optional(catalog.pool())
                .await?;
            if user.is_none() {
                return Err(Error::NotFound { what: "user" });
            }
            sqlx::query(
                "INSERT INTO icloud.libraries (id, user_id, library_key, created_at) VALUES ($1, $2, $3, $4) \
                 ON CONFLICT (user_id, library_key) DO NOTHING",
            )
            .bind(new_id())
            .bind(user_id.as_str())
            .bind(library_key)
            .bind(ms(Utc::now()))
            .execute(catalog.pool())
            .await?;
            sqlx::query_scalar(select)
                .bind(user_id.as_str())
                .bind(library_key)
                .fetch_one(catalog.pool())
                .await?
        }
    };
    Ok(Library {
        id: LibraryId::new(id),
        user_id: user_id.clone(),
        key: library_key.to_owned(),
    })
}

pub(super) async fn library(
    catalog: &Adapter,
    user_id: &UserId,
    library_key: &str,
) -> Result<Option<Library>> {
    let id: Option<String> =
        sqlx::query_scalar("SELECT id FROM icloud.libraries WHERE user_id = $1 AND library_key = $2")
            .bind(user_id.as_str())
            .bind(library_key)
            .fetch_optional(&catalog.pool)
            .await?;
    Ok(id.map(|id| Library {
        id: LibraryId::new(id),
        user_id: user_id.clone(),
        key: library_key.to_owned(),
    }))
}

struct Existing {
    id: String,
    metadata_sha256: String,
    deleted: bool,
}

enum Plan {
    Reject(String),
    /// Nothing to write.
    Keep {
        photo_id: Option<String>,
        needs: Vec<ResourceType>,
    },
    /// Soft-delete the stored photo.
    Delete {
        photo_id: String,
    },
    /// A photo with several sources: see `sources.rs`.
    Source(Box<SourcePlan>),
    /// Write the photo row (when `metadata`), the differing resource rows, drop undeclared ones.
    Write {
        item: Box<PhotoUpsert>,
        hash: String,
        photo_id: String,
        created: bool,
        metadata: bool,
        resources: Vec<ResourceRow>,
        stale: Vec<ResourceType>,
        needs: Vec<ResourceType>,
    },
}

pub(super) async fn sync_photos(
    catalog: &Adapter,
    user_id: &UserId,
    library_id: &LibraryId,
    items: Vec<PhotoUpsert>,
) -> Result<SyncBatchResult> {
    let now = ms(Utc::now());
    let mut seen = HashSet::new();
    // A rejected item keeps its identifier (as sent) for the answer.
    let checked: Vec<std::result::Result<PhotoUpsert, (String, String)>> = items
        .into_iter()
        .map(|mut item| {
            if let Err(reason) = validate::photo(&mut item) {
                return Err((item.local_identifier, reason));
            }
            if !seen.insert(item.local_identifier.clone()) {
                let reason = "localIdentifier: listed twice in the batch".to_owned();
                return Err((item.local_identifier, reason));
            }
            Ok(item)
        })
        .collect();

    // One write transaction on SQLite; on PostgreSQL plain reads and then one statement (see `begin_sync`),
    // or, for a user with several libraries, one transaction under the user's sync lock (`sources.rs`).
    let several = sources::several_libraries(catalog, user_id).await?;
    let mut conn = catalog.begin_sync(several).await?;
    if several {
        sources::lock_user_sync(&mut conn, user_id).await?;
    }
    library_key(&mut conn, user_id, library_id).await?;
    let identifiers: Vec<&str> = checked
        .iter()
        .flatten()
        .map(|i| i.local_identifier.as_str())
        .collect();
    let existing = fetch_existing(&mut conn, user_id, library_id, &identifiers).await?;
    let sources = if several {
        let valid: Vec<&PhotoUpsert> = checked.iter().flatten().collect();
        let home: HashMap<&str, &str> = existing
            .iter()
            .map(|(id, e)| (id.as_str(), e.id.as_str()))
            .collect();
        sources::resolve(&mut conn, user_id, library_id, &valid, &home).await?
    } else {
        Sources::default()
    };
    let mut photo_ids: HashSet<&str> = existing.values().map(|e| e.id.as_str()).collect();
    photo_ids.extend(sources.photo_ids());
    let photo_ids: Vec<&str> = photo_ids.into_iter().collect();
    let mut stored = fetch_resources(&mut conn, user_id, &photo_ids).await?;
    let shas: Vec<&str> = checked
        .iter()
        .flatten()
        .flat_map(|i| i.resources.iter().filter_map(|r| r.sha256.as_deref()))
        .collect();
    let blobs = fetch_blobs(&mut conn, user_id, &shas).await?;

    let mut plans: Vec<(String, Plan)> = Vec::with_capacity(checked.len());
    for checked in checked {
        let (local_identifier, plan) = match checked {
            Err((local_identifier, reason)) => (local_identifier, Plan::Reject(reason)),
            Ok(item) => {
                let id = item.local_identifier.clone();
                let plan = if let Some((identity, photo)) = sources.get(&id) {
                    let rows = stored.remove(&photo.id).unwrap_or_default();
                    let plan = sources::plan(item, library_id, identity, photo, rows, &blobs, now)?;
                    Plan::Source(Box::new(plan))
                } else {
                    let old = existing.get(&item.local_identifier);
                    let old_resources = old.and_then(|o| stored.remove(&o.id)).unwrap_or_default();
                    plan(item, old, old_resources, &blobs, now, library_id)
                };
                (id, plan)
            }
        };
        plans.push((local_identifier, plan));
    }

    // Gather the writes of the whole batch; the adapter applies them with a few set-based statements (one
    // statement per row made a batch of 100 photos cost some 200 round trips into the database).
    let mut batch = BatchWrite::default();
    let mut shared: Vec<(&str, &SourcePlan)> = Vec::new();
    for (local_identifier, plan) in &plans {
        match plan {
            Plan::Delete { photo_id } => batch.deleted.push(photo_id),
            Plan::Write {
                item,
                hash,
                photo_id,
                metadata,
                resources,
                stale,
                ..
            } => {
                if *metadata {
                    batch.photos.push(PhotoRow {
                        id: photo_id,
                        item,
                        hash,
                    });
                } else {
                    batch.touched.push(photo_id);
                }
                gather_resources(&mut batch, local_identifier, photo_id, resources, stale);
            }
            Plan::Source(source) => {
                if source.delete {
                    batch.deleted.push(&source.photo_id);
                } else if !source.writes_photo() && source.writes_resources() {
                    batch.touched.push(&source.photo_id);
                }
                // Not a photo row of this batch: the rows name the photo by id (no identifier to join on).
                gather_resources(&mut batch, "", &source.photo_id, &source.resources, &source.stale);
                if source.changed() {
                    shared.push((local_identifier, source));
                }
            }
            Plan::Reject(_) | Plan::Keep { .. } => {}
        }
    }
    let n_resources = batch.resources.len();
    let written = if batch.is_empty() && shared.is_empty() {
        Written {
            version: current_version(&mut conn, user_id).await?,
            ids: HashMap::new(),
        }
    } else {
        let written = Adapter::write_batch(&mut conn, user_id, library_id, &batch, now).await?;
        sources::apply(&mut conn, user_id, library_id, &shared, written.version, now).await?;
        written
    };
    drop(shared);
    drop(batch);

    let mut results = Vec::with_capacity(plans.len());
    for (local_identifier, plan) in plans {
        let result = match plan {
            Plan::Reject(reason) => ItemResult {
                local_identifier,
                photo_id: None,
                outcome: ItemOutcome::Rejected { reason },
                needs_upload: Vec::new(),
            },
            Plan::Keep { photo_id, needs } => ItemResult {
                local_identifier,
                photo_id: photo_id.map(PhotoId::new),
                outcome: ItemOutcome::Unchanged,
                needs_upload: needs,
            },
            Plan::Delete { photo_id } => ItemResult {
                local_identifier,
                photo_id: Some(PhotoId::new(photo_id)),
                outcome: ItemOutcome::Updated,
                needs_upload: Vec::new(),
            },
            Plan::Write {
                photo_id,
                created,
                needs,
                ..
            } => {
                let photo_id = written.ids.get(&local_identifier).cloned().unwrap_or(photo_id);
                ItemResult {
                    local_identifier,
                    photo_id: Some(PhotoId::new(photo_id)),
                    outcome: if created {
                        ItemOutcome::Created
                    } else {
                        ItemOutcome::Updated
                    },
                    needs_upload: needs,
                }
            }
            // A photo another library synced first: this library's identifier became one of its names.
            Plan::Source(source) => ItemResult {
                local_identifier,
                outcome: if source.changed() {
                    ItemOutcome::Updated
                } else {
                    ItemOutcome::Unchanged
                },
                photo_id: Some(PhotoId::new(source.photo_id)),
                needs_upload: source.needs,
            },
        };
        results.push(result);
    }
    catalog.end_sync(conn).await?;
    let created = results
        .iter()
        .filter(|r| matches!(r.outcome, ItemOutcome::Created))
        .count();
    catalog.rows_created(u64::try_from(created + n_resources).unwrap_or(u64::MAX));
    Ok(SyncBatchResult {
        results,
        version: written.version,
    })
}

/// Adds a planned photo's resource writes, and the jobs of the originals it links to stored content, to the
/// batch. `local_identifier` names a photo row of this batch (on PostgreSQL, the row's real id is joined by
/// it); empty for a photo the batch does not write a row of.
fn gather_resources<'a>(
    batch: &mut BatchWrite<'a>,
    local_identifier: &'a str,
    photo_id: &'a str,
    resources: &'a [ResourceRow],
    stale: &'a [ResourceType],
) {
    batch.stale.extend(stale.iter().map(|t| (photo_id, *t)));
    batch.resources.extend(resources.iter().map(|row| ResourceWrite {
        local_identifier,
        photo_id,
        row,
    }));
    // An original linked to content the user already stores is stored now: enrich it.
    batch.linked.extend(
        resources
            .iter()
            .filter(|r| r.resource_type == ResourceType::Original && r.state == ResourceState::Stored)
            .filter_map(|r| r.stored_sha256.as_deref())
            .map(|sha256| Linked {
                local_identifier,
                photo_id,
                sha256,
            }),
    );
}

/// Decides what one valid item needs.
fn plan(
    item: PhotoUpsert,
    old: Option<&Existing>,
    old_resources: Vec<ResourceRow>,
    blobs: &HashMap<String, Blob>,
    now: i64,
    library_id: &LibraryId,
) -> Plan {
    if item.deleted {
        return match old {
            Some(old) if !old.deleted => Plan::Delete {
                photo_id: old.id.clone(),
            },
            Some(old) => Plan::Keep {
                photo_id: Some(old.id.clone()),
                needs: Vec::new(),
            },
            None => Plan::Keep {
                photo_id: None,
                needs: Vec::new(),
            },
        };
    }
    let hash = validate::metadata_hash(&item);
    let metadata = old.is_none_or(|o| o.deleted || o.metadata_sha256 != hash);
    let mut old_by_type: HashMap<ResourceType, ResourceRow> =
        old_resources.into_iter().map(|r| (r.resource_type, r)).collect();
    let mut resources = Vec::new();
    let mut needs = Vec::new();
    for declared in &item.resources {
        let before = old_by_type.remove(&declared.resource_type);
        let row = reconcile(declared, before.as_ref(), blobs, now, library_id.as_str());
        if matches!(row.state, ResourceState::Pending | ResourceState::Failed) {
            needs.push(row.resource_type);
        }
        if before.as_ref() != Some(&row) {
            resources.push(row);
        }
    }
    let stale: Vec<ResourceType> = old_by_type.into_keys().collect();
    match old {
        Some(old) if !metadata && resources.is_empty() && stale.is_empty() => Plan::Keep {
            photo_id: Some(old.id.clone()),
            needs,
        },
        _ => Plan::Write {
            photo_id: old.map_or_else(new_id, |o| o.id.clone()),
            created: old.is_none(),
            item: Box::new(item),
            hash,
            metadata,
            resources,
            stale,
            needs,
        },
    }
}

/// The row `library`'s declared resource should have, given what is stored and the user's blobs.
pub(super) fn reconcile(
    declared: &DeclaredResource,
    before: Option<&ResourceRow>,
    blobs: &HashMap<String, Blob>,
    now: i64,
    library: &str,
) -> ResourceRow {
    let mut row = ResourceRow {
        resource_type: declared.resource_type,
        declared_size: i64::try_from(declared.size).unwrap_or(i64::MAX),
        declared_sha256: declared.sha256.clone(),
        available: declared.available,
        unavailable_reason: declared.unavailable_reason.map(|r| {
            serde_json::to_value(r)
                .ok()
                .and_then(|v| v.as_str().map(str::to_owned))
                .unwrap_or_default()
        }),
        state: ResourceState::Pending,
        state_reason: None,
        stored_sha256: None,
        stored_key: None,
        stored_size: None,
        uploaded_at: None,
        deduplicated: false,
        bundle_path: declared.bundle_path.clone(),
        library_id: Some(library.to_owned()),
    };
    let still_stored = before.is_some_and(|b| {
        b.state == ResourceState::Stored && (declared.sha256.is_none() || declared.sha256 == b.stored_sha256)
    });
    if let (true, Some(b)) = (still_stored, before) {
        // The bytes stay valid even when the Mac has since offloaded the file to iCloud.
        row.state = ResourceState::Stored;
        row.stored_sha256.clone_from(&b.stored_sha256);
        row.stored_key.clone_from(&b.stored_key);
        row.stored_size = b.stored_size;
        row.uploaded_at = b.uploaded_at;
        row.deduplicated = b.deduplicated;
    } else if let Some(blob) = declared.sha256.as_ref().and_then(|s| blobs.get(s)) {
        row.state = ResourceState::Stored;
        row.stored_sha256 = Some(blob.sha256.clone());
        row.stored_key = Some(blob.key.clone());
        row.stored_size = Some(i64::try_from(blob.size).unwrap_or(i64::MAX));
        row.uploaded_at = Some(now);
        row.deduplicated = true;
    } else if !declared.available {
        row.state = ResourceState::Unavailable;
        row.state_reason.clone_from(&row.unavailable_reason);
    } else if let Some(b) = before {
        let same_declaration = b.declared_sha256 == declared.sha256 && b.declared_size == row.declared_size;
        if matches!(b.state, ResourceState::Pending | ResourceState::Failed) && same_declaration {
            row.state = b.state;
            row.state_reason.clone_from(&b.state_reason);
        } else if b.state == ResourceState::Stored {
            row.state_reason = Some(CONTENT_CHANGED.to_owned());
        }
    }
    row
}

async fn fetch_existing(
    conn: &mut Conn,
    user_id: &UserId,
    library_id: &LibraryId,
    identifiers: &[&str],
) -> Result<HashMap<String, Existing>> {
    let mut found = HashMap::new();
    for chunk in identifiers.chunks(CHUNK) {
        let sql = format!(
            "SELECT id, local_identifier, metadata_sha256, deleted_at FROM icloud.photos \
             WHERE {IN_USER_LIBRARY} AND local_identifier IN ({})",
            placeholders(3, chunk.len())
        );
        let mut query = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(library_id.as_str())
            .bind(user_id.as_str());
        for id in chunk {
            query = query.bind(*id);
        }
        for row in query.fetch_all(&mut *conn).await? {
            let deleted_at: Option<i64> = row.try_get("deleted_at")?;
            found.insert(
                row.try_get("local_identifier")?,
                Existing {
                    id: row.try_get("id")?,
                    metadata_sha256: row.try_get("metadata_sha256")?,
                    deleted: deleted_at.is_some(),
                },
            );
        }
    }
    Ok(found)
}

async fn fetch_blobs(conn: &mut Conn, user_id: &UserId, shas: &[&str]) -> Result<HashMap<String, Blob>> {
    let mut found = HashMap::new();
    for chunk in shas.chunks(CHUNK) {
        let sql = format!(
            "SELECT sha256, storage_key, size FROM icloud.blobs WHERE user_id = $1 AND sha256 IN ({})",
            placeholders(2, chunk.len())
        );
        let mut query = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(user_id.as_str());
        for sha in chunk {
            query = query.bind(*sha);
        }
        for row in query.fetch_all(&mut *conn).await? {
            let sha256: String = row.try_get("sha256")?;
            let size: i64 = row.try_get("size")?;
            found.insert(
                sha256.clone(),
                Blob {
                    sha256,
                    key: row.try_get("storage_key")?,
                    size: super::to_u64(size),
                },
            );
        }
    }
    Ok(found)
}
