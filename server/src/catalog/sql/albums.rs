//! Albums and folders of one library, replaced as a whole in one write transaction. Each album's stored
//! content hash covers its title, kind, parent, position and resolved member ids, so an unchanged album is
//! not rewritten and a call that changes nothing leaves the version alone.

use std::collections::{HashMap, HashSet};

use chrono::Utc;
use sqlx::Row as _;

use super::{
    Adapter, CHUNK, Conn, Driver as _, IN_USER_LIBRARY, bump_version, current_version, library_key, ms,
    new_id, placeholders,
};
use crate::catalog::validate;
use crate::catalog::{AlbumUpsert, AlbumsResult, LibraryId, Result, UserId};

/// Member rows per multi-row INSERT (4 parameters each).
const MEMBER_ROWS: usize = 200;

struct StoredAlbum {
    id: String,
    content_sha256: String,
    deleted: bool,
}

pub(super) async fn replace_albums(
    catalog: &Adapter,
    user_id: &UserId,
    library_id: &LibraryId,
    albums: Vec<AlbumUpsert>,
) -> Result<AlbumsResult> {
    validate::albums(&albums)?;
    let now = ms(Utc::now());
    let mut tx = catalog.begin_write().await?;
    library_key(&mut tx, user_id, library_id).await?;

    let wanted: Vec<&str> = albums
        .iter()
        .flat_map(|a| a.members.iter().map(String::as_str))
        .collect::<HashSet<_>>()
        .into_iter()
        .collect();
    let photo_ids = resolve_members(&mut tx, user_id, library_id, &wanted).await?;
    let mut stored = stored_albums(&mut tx, user_id, library_id).await?;

    let mut result = AlbumsResult::default();
    let mut writes = Vec::new();
    for (index, album) in albums.iter().enumerate() {
        let sort_index = i64::try_from(index).unwrap_or(i64::MAX);
        let mut seen = HashSet::new();
        let mut members = Vec::with_capacity(album.members.len());
        for member in &album.members {
            match photo_ids.get(member.as_str()) {
                Some(id) if seen.insert(id.as_str()) => members.push(id.as_str()),
                Some(_) => {}
                None => result.unknown_members += 1,
            }
        }
        let hash = validate::album_hash(album, sort_index, &members);
        match stored.remove(&album.album_key) {
            Some(old) if !old.deleted && old.content_sha256 == hash => result.unchanged += 1,
            Some(old) => {
                result.updated += 1;
                writes.push((album, old.id, sort_index, hash, members));
            }
            None => {
                result.created += 1;
                writes.push((album, new_id(), sort_index, hash, members));
            }
        }
    }
    let removed: Vec<String> = stored
        .into_values()
        .filter(|a| !a.deleted)
        .map(|a| a.id)
        .collect();
    result.deleted = u64::try_from(removed.len()).unwrap_or(u64::MAX);

    if writes.is_empty() && removed.is_empty() {
        result.version = current_version(&mut tx, user_id).await?;
        return Ok(result);
    }
    let version = bump_version(&mut tx, user_id).await?;
    for (album, id, sort_index, hash, members) in writes {
        let id: String = sqlx::query_scalar(
            "INSERT INTO icloud.albums (id, user_id, library_id, album_key, title, kind, parent_key, sort_index, \
                 n_members, content_sha256, version, created_at, updated_at, deleted_at, cloud_guid) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $12, NULL, $13) \
             ON CONFLICT (library_id, album_key) DO UPDATE SET title = excluded.title, kind = excluded.kind, \
                 parent_key = excluded.parent_key, sort_index = excluded.sort_index, \
                 n_members = excluded.n_members, content_sha256 = excluded.content_sha256, \
                 version = excluded.version, updated_at = excluded.updated_at, deleted_at = NULL, \
                 cloud_guid = excluded.cloud_guid \
             RETURNING id",
        )
        .bind(&id)
        .bind(user_id.as_str())
        .bind(library_id.as_str())
        .bind(&album.album_key)
        .bind(&album.title)
        .bind(album.kind.as_str())
        .bind(&album.parent_key)
        .bind(sort_index)
        .bind(i64::try_from(members.len()).unwrap_or(i64::MAX))
        .bind(&hash)
        .bind(version)
        .bind(now)
        .bind(album.cloud_guid.as_deref())
        .fetch_one(&mut *tx)
        .await?;
        clear_members(&mut tx, user_id, &id).await?;
        for (chunk_index, chunk) in members.chunks(MEMBER_ROWS).enumerate() {
            let values: Vec<String> = (0..chunk.len())
                .map(|i| {
                    let base = 3 + i * 2;
                    format!("($1, ${base}, $2, ${})", base + 1)
                })
                .collect();
            let sql = format!(
                "INSERT INTO icloud.album_members (album_id, photo_id, user_id, position) VALUES {}",
                values.join(", ")
            );
            let mut query = sqlx::query(sqlx::AssertSqlSafe(sql))
                .bind(&id)
                .bind(user_id.as_str());
            for (offset, photo_id) in chunk.iter().enumerate() {
                let position = chunk_index * MEMBER_ROWS + offset;
                query = query
                    .bind(*photo_id)
                    .bind(i64::try_from(position).unwrap_or(i64::MAX));
            }
            query.execute(&mut *tx).await?;
        }
    }
    for id in &removed {
        sqlx::query(
            "UPDATE icloud.albums SET deleted_at = $1, updated_at = $1, version = $2 WHERE id = $3 AND user_id = $4",
        )
        .bind(now)
        .bind(version)
        .bind(id)
        .bind(user_id.as_str())
        .execute(&mut *tx)
        .await?;
        clear_members(&mut tx, user_id, id).await?;
    }
    tx.commit().await?;
    result.version = version;
    Ok(result)
}

async fn clear_members(conn: &mut Conn, user_id: &UserId, album_id: &str) -> Result<()> {
    sqlx::query("DELETE FROM icloud.album_members WHERE album_id = $1 AND user_id = $2")
        .bind(album_id)
        .bind(user_id.as_str())
        .execute(&mut *conn)
        .await?;
    Ok(())
}

/// Local identifier → photo id, for the library's photos that are not deleted: those it is the home of and
/// those it is another live source of (a photo another Mac synced first is a member under this Mac's id).
async fn resolve_members(
    conn: &mut Conn,
    user_id: &UserId,
    library_id: &LibraryId,
    identifiers: &[&str],
) -> Result<HashMap<String, String>> {
    let mut found = HashMap::new();
    for chunk in identifiers.chunks(CHUNK) {
        let list = placeholders(3, chunk.len());
        let sql = format!(
            "SELECT id, local_identifier FROM icloud.photos \
             WHERE {IN_USER_LIBRARY} AND deleted_at IS NULL AND local_identifier IN ({list}) \
             UNION ALL SELECT a.photo_id AS id, a.local_identifier FROM icloud.photo_aliases a \
             JOIN icloud.photos p ON p.id = a.photo_id \
             WHERE a.library_id = $1 AND a.user_id = $2 AND a.deleted_at IS NULL AND p.deleted_at IS NULL \
               AND a.local_identifier IN ({list})"
        );
        let mut query = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(library_id.as_str())
            .bind(user_id.as_str());
        for id in chunk {
            query = query.bind(*id);
        }
        for row in query.fetch_all(&mut *conn).await? {
            found.insert(row.try_get("local_identifier")?, row.try_get("id")?);
        }
    }
    Ok(found)
}

async fn stored_albums(
    conn: &mut Conn,
    user_id: &UserId,
    library_id: &LibraryId,
) -> Result<HashMap<String, StoredAlbum>> {
    let rows = sqlx::query(
        "SELECT id, album_key, content_sha256, deleted_at FROM icloud.albums WHERE library_id = $1 AND user_id = $2",
    )
    .bind(library_id.as_str())
    .bind(user_id.as_str())
    .fetch_all(&mut *conn)
    .await?;
    let mut found = HashMap::new();
    for row in rows {
        let deleted_at: Option<i64> = row.try_get("deleted_at")?;
        found.insert(
            row.try_get("album_key")?,
            StoredAlbum {
                id: row.try_get("id")?,
                content_sha256: row.try_get("content_sha256")?,
                deleted: deleted_at.is_some(),
            },
        );
    }
    Ok(found)
}
