//! Photos with several sources (issue 13, item 9): one iCloud library synced from two Macs is one set of
//! photos. A photo belongs to the user; each library that has it is a source. The photo row keeps its home
//! identity, the (library, `localIdentifier`) that created it; every other source's identity is a row of
//! `icloud.photo_aliases`. Only a user with several libraries comes here: the sync batch of a one-library
//! user resolves identities at home and never reads or writes a source.
//!
//! - **Resolving** an item: its home identity, else its alias (live or deleted), else a **match** among the
//!   user's live photos that have no live identity in this library yet: the oldest with the item's cloud GUID,
//!   else the oldest without a GUID whose fingerprint (`ZORIGINALSTABLEHASH`/`ZMASTERFINGERPRINT`) is the
//!   item's, else none (a new photo). Two assets with different GUIDs are two iCloud assets even when their
//!   bytes are equal; an asset with no GUID yet is matched by fingerprint (the Mac that imported it syncs it
//!   before iCloud gives it one).
//! - **Metadata**: the last source to send an item whose shared metadata differs (everything but the
//!   identity, the resources and `modifiedAt`, which each Mac stamps on its own record) writes it; a source
//!   never clears a GUID or fingerprint another one gave.
//! - **Resources**: a photo has one row per resource type, holding one source's declaration
//!   (`resources.library_id`). Only that library is asked to upload it, at its own bundle path, so nothing
//!   is uploaded or stored twice. Another source takes a row over only when the holder cannot deliver: its
//!   row is unavailable (iCloud only) and this source has the file, or the holder no longer has the photo.
//! - **Deletes**: a source that deletes the photo marks its identity deleted; the photo becomes a tombstone
//!   only when its last live source deletes it. When the home deletes it first, the home moves to the oldest
//!   live alias (the old home stays as a deleted alias), so a live photo's home is always a live identity.
//!
//! Batches of such a user are serialised (the adapter's `begin_sync(true)` and the user's sync lock), so two
//! libraries' batches never both create the photo they share.

use std::collections::{HashMap, HashSet};

use sqlx::Row as _;

use super::photos::reconcile;
use super::resources::ResourceRow;
use super::{Adapter, CHUNK, Conn, placeholders};
use crate::catalog::{Blob, LibraryId, PhotoUpsert, ResourceState, ResourceType, Result, UserId};

#[allow(
    clippy::duplicate_mod,
    reason = "compiled once per driver on purpose: see catalog/sql.rs"
)]
#[path = "sources/shared.rs"]
mod shared;
#[allow(
    clippy::duplicate_mod,
    reason = "compiled once per driver on purpose: see catalog/sql.rs"
)]
#[path = "sources/write.rs"]
mod write;

pub(super) use shared::SharedPhoto;
use shared::{Alias, Shared, shared_photos};
pub(super) use write::apply;

/// Whether the user has several libraries, so their batches resolve identities across them.
pub(super) async fn several_libraries(catalog: &Adapter, user_id: &UserId) -> Result<bool> {
    let n: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM icloud.libraries WHERE user_id = $1")
        .bind(user_id.as_str())
        .fetch_one(&catalog.pool)
        .await?;
    Ok(n > 1)
}

/// Takes the user's sync lock for the rest of the transaction (PostgreSQL; SQLite's `BEGIN IMMEDIATE`
/// serialises every writer already): two batches of the user never match and create at the same time.
pub(super) async fn lock_user_sync(conn: &mut Conn, user_id: &UserId) -> Result<()> {
    let lock = <Adapter as super::Driver>::USER_WRITE_LOCK;
    if !lock.is_empty() {
        sqlx::query(lock)
            .bind(format!("iphoto-user-sync:{user_id}"))
            .execute(&mut *conn)
            .await?;
    }
    Ok(())
}

/// How an item's identity resolved to a shared photo.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Identity {
    /// The photo's own (library, identifier).
    Home,
    /// One of its aliases; `deleted` when this library had deleted it.
    Alias { deleted: bool },
    /// New in this library, matched by cloud GUID or fingerprint.
    Matched,
}

/// The shared photos of a batch and how its items resolved to them.
#[derive(Default)]
pub(super) struct Sources {
    items: HashMap<String, (Identity, String)>,
    photos: HashMap<String, SharedPhoto>,
}

impl Sources {
    /// The shared photos' ids.
    pub(super) fn photo_ids(&self) -> impl Iterator<Item = &str> {
        self.photos.keys().map(String::as_str)
    }

    /// The shared photo item `local_identifier` resolved to, if any.
    pub(super) fn get(&self, local_identifier: &str) -> Option<(Identity, &SharedPhoto)> {
        let (identity, photo_id) = self.items.get(local_identifier)?;
        Some((*identity, self.photos.get(photo_id)?))
    }
}

/// A candidate for a match.
struct Candidate {
    id: String,
    library_id: String,
    cloud_guid: Option<String>,
    fingerprint: Option<String>,
}

/// Resolves the batch's items in `library_id` against the user's other sources. `home` maps identifiers
/// found at home in this library to their photo ids.
pub(super) async fn resolve(
    conn: &mut Conn,
    user_id: &UserId,
    library_id: &LibraryId,
    items: &[&PhotoUpsert],
    home: &HashMap<&str, &str>,
) -> Result<Sources> {
    let library = library_id.as_str();
    let away: Vec<&str> = items
        .iter()
        .map(|i| i.local_identifier.as_str())
        .filter(|id| !home.contains_key(id))
        .collect();
    let aliased = aliases_in_library(conn, user_id, library, &away).await?;
    let to_match: Vec<&PhotoUpsert> = items
        .iter()
        .copied()
        .filter(|i| !i.deleted && !home.contains_key(i.local_identifier.as_str()))
        .filter(|i| !aliased.contains_key(&i.local_identifier))
        .filter(|i| i.cloud_guid.is_some() || i.fingerprint.is_some())
        .collect();
    let guids: Vec<&str> = to_match.iter().filter_map(|i| i.cloud_guid.as_deref()).collect();
    let fingerprints: Vec<&str> = to_match.iter().filter_map(|i| i.fingerprint.as_deref()).collect();
    let candidates = candidates(conn, user_id, &guids, &fingerprints).await?;

    let mut involved: HashSet<&str> = home.values().copied().collect();
    involved.extend(aliased.values().map(|(photo, _)| photo.as_str()));
    involved.extend(candidates.iter().map(|c| c.id.as_str()));
    let involved: Vec<&str> = involved.into_iter().collect();
    let mut aliases = aliases_of(conn, user_id, &involved).await?;

    // Matching, in item order; a photo resolved or matched in this batch is not matched again.
    let mut claimed: HashSet<&str> = home.values().copied().collect();
    claimed.extend(aliased.values().map(|(photo, _)| photo.as_str()));
    let blocked = |c: &Candidate| {
        c.library_id == library
            || aliases
                .get(&c.id)
                .is_some_and(|list| list.iter().any(|a| a.library_id == library && !a.deleted))
    };
    let mut matched: Vec<(&str, &str)> = Vec::new();
    for item in &to_match {
        let by_guid = item.cloud_guid.as_deref().and_then(|guid| {
            candidates.iter().find(|c| {
                c.cloud_guid.as_deref() == Some(guid) && !blocked(c) && !claimed.contains(c.id.as_str())
            })
        });
        let pick = by_guid.or_else(|| {
            let fingerprint = item.fingerprint.as_deref()?;
            candidates.iter().find(|c| {
                c.cloud_guid.is_none()
                    && c.fingerprint.as_deref() == Some(fingerprint)
                    && !blocked(c)
                    && !claimed.contains(c.id.as_str())
            })
        });
        if let Some(candidate) = pick {
            claimed.insert(candidate.id.as_str());
            matched.push((item.local_identifier.as_str(), candidate.id.as_str()));
        }
    }

    let mut resolved: HashMap<String, (Identity, String)> = HashMap::new();
    for (local_identifier, photo_id) in home {
        if aliases.get(*photo_id).is_some_and(|list| !list.is_empty()) {
            resolved.insert(
                (*local_identifier).to_owned(),
                (Identity::Home, (*photo_id).to_owned()),
            );
        }
    }
    for (local_identifier, (photo_id, deleted)) in &aliased {
        let identity = Identity::Alias { deleted: *deleted };
        resolved.insert(local_identifier.clone(), (identity, photo_id.clone()));
    }
    for (local_identifier, photo_id) in matched {
        resolved.insert(
            local_identifier.to_owned(),
            (Identity::Matched, photo_id.to_owned()),
        );
    }
    let shared: Vec<&str> = resolved
        .values()
        .map(|(_, photo)| photo.as_str())
        .collect::<HashSet<_>>()
        .into_iter()
        .collect();
    let mut photos = shared_photos(conn, user_id, &shared).await?;
    for photo in photos.values_mut() {
        photo.aliases = aliases.remove(&photo.id).unwrap_or_default();
    }
    resolved.retain(|_, (_, photo)| photos.contains_key(photo));
    Ok(Sources {
        items: resolved,
        photos,
    })
}

/// This library's alias rows among `identifiers`: identifier → (photo id, deleted).
async fn aliases_in_library(
    conn: &mut Conn,
    user_id: &UserId,
    library: &str,
    identifiers: &[&str],
) -> Result<HashMap<String, (String, bool)>> {
    let mut found = HashMap::new();
    for chunk in identifiers.chunks(CHUNK) {
        let sql = format!(
            "SELECT local_identifier, photo_id, deleted_at FROM icloud.photo_aliases \
             WHERE library_id = $1 AND user_id = $2 AND local_identifier IN ({})",
            placeholders(3, chunk.len())
        );
        let mut query = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(library)
            .bind(user_id.as_str());
        for id in chunk {
            query = query.bind(*id);
        }
        for row in query.fetch_all(&mut *conn).await? {
            let deleted_at: Option<i64> = row.try_get("deleted_at")?;
            found.insert(
                row.try_get("local_identifier")?,
                (row.try_get("photo_id")?, deleted_at.is_some()),
            );
        }
    }
    Ok(found)
}

/// The user's live photos with one of `guids`, or without a GUID and with one of `fingerprints`, oldest
/// first. The fingerprint lookup reads the `(user_id, cloud_guid)` index's NULL range: photos iCloud knows
/// are matched by their GUID alone, and no index of its own is written by every batch.
async fn candidates(
    conn: &mut Conn,
    user_id: &UserId,
    guids: &[&str],
    fingerprints: &[&str],
) -> Result<Vec<Candidate>> {
    let mut found = Vec::new();
    let lookups = [
        ("cloud_guid IN", guids),
        ("cloud_guid IS NULL AND fingerprint IN", fingerprints),
    ];
    for (condition, values) in lookups {
        for chunk in values.chunks(CHUNK) {
            let sql = format!(
                "SELECT id, library_id, cloud_guid, fingerprint FROM icloud.photos \
                 WHERE user_id = $1 AND deleted_at IS NULL AND {condition} ({}) ORDER BY created_at, id",
                placeholders(2, chunk.len())
            );
            let mut query = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(user_id.as_str());
            for value in chunk {
                query = query.bind(*value);
            }
            for row in query.fetch_all(&mut *conn).await? {
                found.push(Candidate {
                    id: row.try_get("id")?,
                    library_id: row.try_get("library_id")?,
                    cloud_guid: row.try_get("cloud_guid")?,
                    fingerprint: row.try_get("fingerprint")?,
                });
            }
        }
    }
    Ok(found)
}

/// The alias rows of `photo_ids`, oldest first per photo.
async fn aliases_of(
    conn: &mut Conn,
    user_id: &UserId,
    photo_ids: &[&str],
) -> Result<HashMap<String, Vec<Alias>>> {
    let mut found: HashMap<String, Vec<Alias>> = HashMap::new();
    for chunk in photo_ids.chunks(CHUNK) {
        let sql = format!(
            "SELECT photo_id, library_id, local_identifier, deleted_at FROM icloud.photo_aliases \
             WHERE user_id = $1 AND photo_id IN ({}) ORDER BY created_at, library_id, local_identifier",
            placeholders(2, chunk.len())
        );
        let mut query = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(user_id.as_str());
        for id in chunk {
            query = query.bind(*id);
        }
        for row in query.fetch_all(&mut *conn).await? {
            let deleted_at: Option<i64> = row.try_get("deleted_at")?;
            found.entry(row.try_get("photo_id")?).or_default().push(Alias {
                library_id: row.try_get("library_id")?,
                local_identifier: row.try_get("local_identifier")?,
                deleted: deleted_at.is_some(),
            });
        }
    }
    Ok(found)
}

/// How an item changes its photo's identities.
pub(super) enum IdentityWrite {
    /// A new alias: this library's identifier for the photo.
    Add,
    /// This library has the photo again.
    Revive,
    /// This library deleted it (other sources still have it).
    Remove,
    /// The photo's home moves to another of its identities; the old home stays as an alias, deleted when
    /// its library deleted the photo.
    Rehome(Rehome),
}

/// A move of a photo's home identity.
pub(super) struct Rehome {
    from: (String, String),
    to: (String, String),
    /// The old home's library deleted the photo.
    from_deleted: bool,
}

/// What one item of a shared photo writes.
pub(super) struct SourcePlan {
    pub(super) photo_id: String,
    pub(super) identity: Option<IdentityWrite>,
    /// The item's metadata and hash, written over the photo's by id (which undeletes it).
    pub(super) metadata: Option<(Box<PhotoUpsert>, String)>,
    /// The last source deleted the photo: it becomes a tombstone.
    pub(super) delete: bool,
    pub(super) resources: Vec<ResourceRow>,
    pub(super) stale: Vec<ResourceType>,
    pub(super) needs: Vec<ResourceType>,
}

impl SourcePlan {
    /// Whether the item changes anything.
    pub(super) fn changed(&self) -> bool {
        self.identity.is_some() || self.metadata.is_some() || self.delete || self.writes_resources()
    }

    /// Whether resource rows are written or removed.
    pub(super) fn writes_resources(&self) -> bool {
        !self.resources.is_empty() || !self.stale.is_empty()
    }

    /// Whether the photo row is written whole (metadata or home), which moves its version anyway.
    pub(super) fn writes_photo(&self) -> bool {
        self.metadata.is_some() || matches!(self.identity, Some(IdentityWrite::Rehome(_)))
    }

    fn keep(photo: &SharedPhoto) -> SourcePlan {
        SourcePlan {
            photo_id: photo.id.clone(),
            identity: None,
            metadata: None,
            delete: false,
            resources: Vec::new(),
            stale: Vec::new(),
            needs: Vec::new(),
        }
    }
}

/// Decides what `item`, from `library`, does to its shared `photo` whose resource rows are `rows`.
pub(super) fn plan(
    item: PhotoUpsert,
    library: &LibraryId,
    identity: Identity,
    photo: &SharedPhoto,
    rows: Vec<ResourceRow>,
    blobs: &HashMap<String, Blob>,
    now: i64,
) -> Result<SourcePlan> {
    let library = library.as_str();
    let mut plan = SourcePlan::keep(photo);
    if item.deleted {
        plan.identity = match identity {
            Identity::Alias { deleted: false } => Some(IdentityWrite::Remove),
            Identity::Home if !photo.deleted => match photo.aliases.iter().find(|a| !a.deleted) {
                Some(next) => Some(IdentityWrite::Rehome(Rehome {
                    from: (photo.home_library.clone(), photo.home_identifier.clone()),
                    to: (next.library_id.clone(), next.local_identifier.clone()),
                    from_deleted: true,
                })),
                None => {
                    plan.delete = true;
                    None
                }
            },
            Identity::Alias { deleted: true } | Identity::Home | Identity::Matched => None,
        };
        return Ok(plan);
    }
    plan.identity = match identity {
        Identity::Matched => Some(IdentityWrite::Add),
        // Every source had deleted it: this one becomes its home.
        Identity::Alias { .. } if photo.deleted => Some(IdentityWrite::Rehome(Rehome {
            from: (photo.home_library.clone(), photo.home_identifier.clone()),
            to: (library.to_owned(), item.local_identifier.clone()),
            from_deleted: true,
        })),
        Identity::Alias { deleted: true } => Some(IdentityWrite::Revive),
        Identity::Alias { deleted: false } | Identity::Home => None,
    };

    let mut rows: HashMap<ResourceType, ResourceRow> =
        rows.into_iter().map(|r| (r.resource_type, r)).collect();
    for declared in &item.resources {
        let before = rows.remove(&declared.resource_type);
        let row = match before {
            None => reconcile(declared, None, blobs, now, library),
            Some(before) => {
                let holder = before.library_id.as_deref().unwrap_or(&photo.home_library);
                if holder == library {
                    let row = reconcile(declared, Some(&before), blobs, now, library);
                    if matches!(row.state, ResourceState::Pending | ResourceState::Failed) {
                        plan.needs.push(row.resource_type);
                    }
                    if row != before {
                        plan.resources.push(row);
                    }
                    continue;
                }
                // Held by another source: taken over only when that one cannot deliver.
                let holder_live = photo.live_in(holder);
                let take = match before.state {
                    ResourceState::Stored => {
                        !holder_live && declared.sha256.is_some() && declared.sha256 != before.stored_sha256
                    }
                    ResourceState::Unavailable => declared.available || !holder_live,
                    ResourceState::Pending | ResourceState::Failed => !holder_live,
                };
                if !take {
                    continue;
                }
                let kept = (before.state == ResourceState::Stored).then_some(&before);
                reconcile(declared, kept, blobs, now, library)
            }
        };
        if matches!(row.state, ResourceState::Pending | ResourceState::Failed) {
            plan.needs.push(row.resource_type);
        }
        plan.resources.push(row);
    }
    plan.stale = rows
        .into_values()
        .filter(|r| r.library_id.as_deref().unwrap_or(&photo.home_library) == library)
        .map(|r| r.resource_type)
        .collect();
    plan.stale.sort();

    if photo.deleted || Shared::of(&item, &photo.metadata)? != photo.metadata {
        let hash = crate::catalog::validate::metadata_hash(&item);
        plan.metadata = Some((Box::new(item), hash));
    }
    Ok(plan)
}
