//! The read side for the web: the timeline (keyset-paged, newest first), albums with counts and covers, an
//! album's photos in album order and one photo with everything known about it. Every query filters by user.
//!
//! The timeline's SQL is built from the filters that are set (`sql/search.rs` holds the conditions it
//! shares with search and the month counts), so each shape of query has a plan of its own:
//! the default view matches the partial index `photos_timeline` literally (`hidden = FALSE AND trashed =
//! FALSE`), and a page is an index range read of `limit + 1` entries however large the library is.

use std::collections::HashMap;

use sqlx::Row as _;

use super::search::{Bind, Built, push_conditions, push_local_before};
use super::{Adapter, CHUNK, Driver as _, placeholders, time, to_u64};
use crate::catalog::{
    AlbumKind, AlbumPageQuery, AlbumSummary, Enrichment, ListedPhoto, PhotoDetail, PhotoId, PhotoResource,
    ResourceState, ResourceType, Result, StoredRef, TimelineQuery, UserId,
};

/// The columns of a list item, over `p` (photos), `r` (the stored original) and `e` (the thumbnail job's
/// result, which names the preview too).
pub(super) const LIST_COLUMNS: &str = "p.id, p.local_identifier, p.taken_at, p.taken_at_offset_s, p.kind, p.favorite, \
    p.width, p.height, p.title, p.original_filename, p.live_photo, r.stored_sha256, r.stored_key, \
    e.result AS thumbnail";

/// The joins `LIST_COLUMNS` reads: primary-key lookups per row.
pub(super) const LIST_JOINS: &str = "LEFT JOIN icloud.resources r \
        ON r.photo_id = p.id AND r.resource_type = 'original' AND r.state = 'stored' \
    LEFT JOIN icloud.enrichments e ON e.photo_id = p.id AND e.kind = 'thumbnail'";

/// The SQL and binds of a timeline page (or search: the same list, filtered).
fn timeline_sql(user_id: &UserId, query: &TimelineQuery) -> Built {
    let mut built = Built::new(
        format!("SELECT {LIST_COLUMNS} FROM icloud.photos p {LIST_JOINS}"),
        user_id,
    );
    push_conditions(&mut built, &query.filter);
    if let Some(before) = query.before_local_ms {
        push_local_before(&mut built, before);
    }
    if let Some(after) = &query.after {
        built.push(
            " AND (p.taken_at, p.id) < (?, ?)",
            vec![Bind::Int(after.taken_at_ms), Bind::Text(after.photo_id.clone())],
        );
    }
    // The limit is written in, not bound: with it bound, PostgreSQL's generic plan for a search (made after
    // five runs of the prepared statement, blind to both the words and the limit) walked the timeline
    // testing every photo against the words, 80 times slower than the search index for a rare word.
    // It is a number the route checked (1 to 500, plus one).
    built.push(
        &format!(
            " ORDER BY p.taken_at DESC, p.id DESC LIMIT {}",
            i64::from(query.limit) + 1
        ),
        vec![],
    );
    built
}

pub(super) async fn list_photos(
    catalog: &Adapter,
    user_id: &UserId,
    query: &TimelineQuery,
) -> Result<Vec<ListedPhoto>> {
    timeline_sql(user_id, query)
        .query()
        .fetch_all(catalog.pool())
        .await?
        .iter()
        .map(listed)
        .collect()
}

/// The plan the database chooses for a timeline page, one line per plan node.
pub(super) async fn explain_timeline(
    catalog: &Adapter,
    user_id: &UserId,
    query: &TimelineQuery,
) -> Result<String> {
    explain(catalog, timeline_sql(user_id, query)).await
}

/// The plan of a built query, one line per plan node.
pub(super) async fn explain(catalog: &Adapter, built: Built) -> Result<String> {
    let Built { sql, binds } = built;
    let rows = Built {
        sql: format!("{} {sql}", Adapter::EXPLAIN),
        binds,
    }
    .query()
    .fetch_all(catalog.pool())
    .await?;
    let lines: Vec<String> = rows
        .iter()
        .filter_map(|row| {
            row.try_get::<String, _>("detail")
                .or_else(|_| row.try_get::<String, _>(0))
                .ok()
        })
        .collect();
    Ok(lines.join("\n"))
}

pub(super) async fn album_photos(
    catalog: &Adapter,
    user_id: &UserId,
    query: &AlbumPageQuery,
) -> Result<Vec<ListedPhoto>> {
    let (position, photo) = query.after.clone().unwrap_or((i64::MIN, String::new()));
    let sql = format!(
        "SELECT m.position, {LIST_COLUMNS} FROM icloud.album_members m \
         JOIN icloud.photos p ON p.id = m.photo_id {LIST_JOINS} \
         WHERE m.album_id = $1 AND m.user_id = $2 AND p.deleted_at IS NULL \
           AND p.hidden = FALSE AND p.trashed = FALSE AND (m.position, m.photo_id) > ($3, $4) \
         ORDER BY m.position, m.photo_id LIMIT $5"
    );
    let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
        .bind(&query.album_id)
        .bind(user_id.as_str())
        .bind(position)
        .bind(photo)
        .bind(i64::from(query.limit) + 1)
        .fetch_all(catalog.pool())
        .await?;
    rows.iter()
        .map(|row| {
            let mut photo = listed(row)?;
            photo.position = row.try_get("position")?;
            Ok(photo)
        })
        .collect()
}

pub(super) async fn list_albums(
    catalog: &Adapter,
    user_id: &UserId,
    album_id: Option<&str>,
) -> Result<Vec<AlbumSummary>> {
    let visible = "p.deleted_at IS NULL AND p.hidden = FALSE AND p.trashed = FALSE";
    // An album synced from several Macs (one iCloud GUID, a row per library) is listed once, as its oldest
    // live row; its members resolve to the same photos from every Mac. A parent folder is named the same way.
    // Asked for by id, a later row of the same album still answers.
    let first_of_guid = |row: &str| {
        format!(
            "SELECT c.id FROM icloud.albums c WHERE c.user_id = $1 AND c.cloud_guid = {row}.cloud_guid \
             AND c.deleted_at IS NULL ORDER BY c.created_at, c.id LIMIT 1"
        )
    };
    let (first_of_album, first_of_parent) = (first_of_guid("a"), first_of_guid("parent"));
    let sql = format!(
        "SELECT a.id, a.title, a.kind, COALESCE(({first_of_parent}), parent.id) AS parent_id, \
            (SELECT COUNT(*) FROM icloud.album_members m JOIN icloud.photos p ON p.id = m.photo_id \
             WHERE m.album_id = a.id AND {visible}) AS n, \
            (SELECT m.photo_id FROM icloud.album_members m JOIN icloud.photos p ON p.id = m.photo_id \
             WHERE m.album_id = a.id AND {visible} ORDER BY m.position, m.photo_id LIMIT 1) AS cover_id \
         FROM icloud.albums a \
         LEFT JOIN icloud.albums parent ON parent.library_id = a.library_id \
             AND parent.album_key = a.parent_key AND parent.deleted_at IS NULL \
         WHERE a.user_id = $1 AND a.deleted_at IS NULL \
           AND (a.id = $2 OR ($2 IS NULL AND (a.cloud_guid IS NULL OR a.id = ({first_of_album})))) \
         ORDER BY a.library_id, a.sort_index, a.id"
    );
    let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
        .bind(user_id.as_str())
        .bind(album_id)
        .fetch_all(catalog.pool())
        .await?;
    let cover_ids: Vec<String> = rows
        .iter()
        .filter_map(|r| r.try_get::<Option<String>, _>("cover_id").ok().flatten())
        .collect();
    let covers = photos_by_id(catalog, user_id, &cover_ids).await?;
    let mut albums = Vec::with_capacity(rows.len());
    for row in &rows {
        let kind: String = row.try_get("kind")?;
        let cover_id: Option<String> = row.try_get("cover_id")?;
        albums.push(AlbumSummary {
            id: row.try_get("id")?,
            title: row.try_get("title")?,
            kind: match kind.as_str() {
                "folder" => AlbumKind::Folder,
                "shared" => AlbumKind::Shared,
                _ => AlbumKind::Album,
            },
            parent_id: row.try_get("parent_id")?,
            count: to_u64(row.try_get("n")?),
            cover: cover_id.and_then(|id| covers.get(&id).cloned()),
        });
    }
    Ok(albums)
}

/// List items by id (covers), keyed by id.
async fn photos_by_id(
    catalog: &Adapter,
    user_id: &UserId,
    ids: &[String],
) -> Result<HashMap<String, ListedPhoto>> {
    let mut found = HashMap::new();
    for chunk in ids.chunks(CHUNK) {
        let sql = format!(
            "SELECT {LIST_COLUMNS} FROM icloud.photos p {LIST_JOINS} WHERE p.user_id = $1 AND p.id IN ({})",
            placeholders(2, chunk.len())
        );
        let mut query = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(user_id.as_str());
        for id in chunk {
            query = query.bind(id);
        }
        for row in query.fetch_all(catalog.pool()).await? {
            let photo = listed(&row)?;
            found.insert(photo.id.as_str().to_owned(), photo);
        }
    }
    Ok(found)
}

pub(super) async fn listed_photo(
    catalog: &Adapter,
    user_id: &UserId,
    photo_id: &PhotoId,
) -> Result<Option<ListedPhoto>> {
    let sql = format!(
        "SELECT {LIST_COLUMNS} FROM icloud.photos p {LIST_JOINS} \
         WHERE p.user_id = $1 AND p.id = $2 AND p.deleted_at IS NULL"
    );
    sqlx::query(sqlx::AssertSqlSafe(sql))
        .bind(user_id.as_str())
        .bind(photo_id.as_str())
        .fetch_optional(catalog.pool())
        .await?
        .as_ref()
        .map(listed)
        .transpose()
}

pub(super) async fn photo(
    catalog: &Adapter,
    user_id: &UserId,
    photo_id: &PhotoId,
) -> Result<Option<PhotoDetail>> {
    let sql = format!(
        "SELECT {LIST_COLUMNS}, p.cloud_guid, p.fingerprint, p.subtype, p.duration_ms, \
            p.time_zone, p.modified_at, p.hidden, p.trashed, p.latitude, p.longitude, \
            p.uti, p.edited, p.caption, p.keywords, p.people \
         FROM icloud.photos p {LIST_JOINS} \
         WHERE p.user_id = $1 AND p.id = $2 AND p.deleted_at IS NULL"
    );
    let Some(row) = sqlx::query(sqlx::AssertSqlSafe(sql))
        .bind(user_id.as_str())
        .bind(photo_id.as_str())
        .fetch_optional(catalog.pool())
        .await?
    else {
        return Ok(None);
    };
    let resources = sqlx::query(
        "SELECT resource_type, state, state_reason, declared_size, stored_sha256, stored_key \
         FROM icloud.resources WHERE user_id = $1 AND photo_id = $2 ORDER BY resource_type",
    )
    .bind(user_id.as_str())
    .bind(photo_id.as_str())
    .fetch_all(catalog.pool())
    .await?;
    // Through the photo's row (its user checked there): with `e.user_id = ?` SQLite, which plans without
    // statistics, read the user's every enrichment by `enrichments_by_user` instead of this photo's by the
    // primary key (seconds per photo at a million).
    let enrichments = sqlx::query(
        "SELECT e.kind, e.result, e.updated_at FROM icloud.photos p \
         JOIN icloud.enrichments e ON e.photo_id = p.id \
         WHERE p.user_id = $1 AND p.id = $2 ORDER BY e.kind",
    )
    .bind(user_id.as_str())
    .bind(photo_id.as_str())
    .fetch_all(catalog.pool())
    .await?;
    let albums: Vec<String> = sqlx::query_scalar(
        "SELECT m.album_id FROM icloud.album_members m JOIN icloud.albums a ON a.id = m.album_id \
         WHERE m.user_id = $1 AND m.photo_id = $2 AND a.deleted_at IS NULL ORDER BY a.sort_index, a.id",
    )
    .bind(user_id.as_str())
    .bind(photo_id.as_str())
    .fetch_all(catalog.pool())
    .await?;
    let list = |column: &str| -> Result<Vec<String>> {
        let text: String = row.try_get(column)?;
        Ok(serde_json::from_str(&text).unwrap_or_default())
    };
    let duration: Option<i64> = row.try_get("duration_ms")?;
    Ok(Some(PhotoDetail {
        listed: listed(&row)?,
        cloud_guid: row.try_get("cloud_guid")?,
        fingerprint: row.try_get("fingerprint")?,
        subtype: row.try_get("subtype")?,
        live_photo: row.try_get("live_photo")?,
        duration_ms: duration.map(to_u64),
        time_zone: row.try_get("time_zone")?,
        modified_at: time(row.try_get("modified_at")?),
        hidden: row.try_get("hidden")?,
        trashed: row.try_get("trashed")?,
        latitude: row.try_get("latitude")?,
        longitude: row.try_get("longitude")?,
        original_filename: row.try_get("original_filename")?,
        uti: row.try_get("uti")?,
        edited: row.try_get("edited")?,
        title: row.try_get("title")?,
        caption: row.try_get("caption")?,
        keywords: list("keywords")?,
        people: list("people")?,
        albums,
        resources: resources
            .iter()
            .filter_map(|r| resource(r).transpose())
            .collect::<Result<_>>()?,
        enrichments: enrichments
            .iter()
            .filter_map(|r| enrichment(r).transpose())
            .collect::<Result<_>>()?,
    }))
}

fn resource(row: &<super::Db as sqlx::Database>::Row) -> Result<Option<PhotoResource>> {
    let type_name: String = row.try_get("resource_type")?;
    let state_name: String = row.try_get("state")?;
    let (Some(resource_type), Some(state)) =
        (ResourceType::parse(&type_name), ResourceState::parse(&state_name))
    else {
        return Ok(None);
    };
    let sha256: Option<String> = row.try_get("stored_sha256")?;
    let key: Option<String> = row.try_get("stored_key")?;
    Ok(Some(PhotoResource {
        resource_type,
        state,
        reason: row.try_get("state_reason")?,
        declared_size: to_u64(row.try_get("declared_size")?),
        stored: match (state, sha256, key) {
            (ResourceState::Stored, Some(sha256), Some(key)) => Some(StoredRef { sha256, key }),
            _ => None,
        },
    }))
}

fn enrichment(row: &<super::Db as sqlx::Database>::Row) -> Result<Option<Enrichment>> {
    let kind: String = row.try_get("kind")?;
    let Some(kind) = api::JobKind::ALL.into_iter().find(|k| k.as_str() == kind) else {
        return Ok(None);
    };
    let text: String = row.try_get("result")?;
    Ok(Some(Enrichment {
        kind,
        result: serde_json::from_str(&text).unwrap_or(serde_json::Value::Null),
        updated_at: time(row.try_get("updated_at")?),
    }))
}

/// A list item from a row of `LIST_COLUMNS`.
pub(super) fn listed(row: &<super::Db as sqlx::Database>::Row) -> Result<ListedPhoto> {
    let taken_at_ms: i64 = row.try_get("taken_at")?;
    let offset: i64 = row.try_get("taken_at_offset_s")?;
    let offset = i32::try_from(offset)
        .ok()
        .and_then(chrono::FixedOffset::east_opt)
        .unwrap_or_else(|| chrono::Offset::fix(&chrono::Utc));
    let kind: String = row.try_get("kind")?;
    let width: i64 = row.try_get("width")?;
    let height: i64 = row.try_get("height")?;
    let sha256: Option<String> = row.try_get("stored_sha256")?;
    let key: Option<String> = row.try_get("stored_key")?;
    let thumbnail: Option<String> = row.try_get("thumbnail")?;
    Ok(ListedPhoto {
        id: PhotoId::new(row.try_get::<String, _>("id")?),
        local_identifier: row.try_get("local_identifier")?,
        taken_at_ms,
        taken_at: time(taken_at_ms).with_timezone(&offset),
        kind: if kind == "video" {
            api::AssetKind::Video
        } else {
            api::AssetKind::Photo
        },
        favorite: row.try_get("favorite")?,
        width: u32::try_from(width).unwrap_or(0),
        height: u32::try_from(height).unwrap_or(0),
        title: row.try_get("title")?,
        original_filename: row.try_get("original_filename")?,
        live_photo: row.try_get("live_photo")?,
        original: sha256.zip(key).map(|(sha256, key)| StoredRef { sha256, key }),
        thumbnail_key: thumbnail.as_deref().and_then(|t| result_key(t, &["key"])),
        preview_key: thumbnail
            .as_deref()
            .and_then(|t| result_key(t, &["preview", "key"])),
        position: 0,
    })
}

/// A key of a thumbnail result document (see `api::ThumbnailResult`): the thumbnail's at `["key"]`, the
/// preview's at `["preview", "key"]`.
fn result_key(result: &str, path: &[&str]) -> Option<String> {
    let value: serde_json::Value = serde_json::from_str(result).ok()?;
    path.iter()
        .try_fold(&value, |v, field| v.get(field))?
        .as_str()
        .map(str::to_owned)
}
