//! What the sources of a photo share (see `sources.rs`): the photo row as a batch reads it, with its
//! identities, and the metadata a source may write over it.

use std::collections::HashMap;

use sqlx::Row as _;

use super::super::write::{json_list, kind_name};
use super::super::{CHUNK, Conn, placeholders, to_i64};
use crate::catalog::{PhotoUpsert, Result, UserId};

/// An identity of a photo other than its home.
#[derive(Debug, Clone)]
pub(super) struct Alias {
    pub(super) library_id: String,
    pub(super) local_identifier: String,
    pub(super) deleted: bool,
}

/// A photo with several sources (or gaining its second in this batch), as the batch read it.
pub(in super::super) struct SharedPhoto {
    pub(in super::super) id: String,
    pub(super) home_library: String,
    pub(super) home_identifier: String,
    pub(super) deleted: bool,
    /// Oldest first.
    pub(super) aliases: Vec<Alias>,
    pub(super) metadata: Shared,
}

impl SharedPhoto {
    /// Whether `library` still has the photo.
    pub(super) fn live_in(&self, library: &str) -> bool {
        (self.home_library == library && !self.deleted)
            || self.aliases.iter().any(|a| a.library_id == library && !a.deleted)
    }
}

/// The shared metadata columns of a photo row.
const SHARED_COLUMNS: &str = "cloud_guid, fingerprint, kind, subtype, live_photo, width, height, duration_ms, \
     taken_at, taken_at_offset_s, time_zone, favorite, hidden, trashed, latitude, longitude, original_filename, \
     uti, edited, title, caption, keywords, people";

pub(super) async fn shared_photos(
    conn: &mut Conn,
    user_id: &UserId,
    ids: &[&str],
) -> Result<HashMap<String, SharedPhoto>> {
    let mut found = HashMap::new();
    for chunk in ids.chunks(CHUNK) {
        let sql = format!(
            "SELECT id, library_id, local_identifier, deleted_at, {SHARED_COLUMNS} FROM icloud.photos \
             WHERE user_id = $1 AND id IN ({})",
            placeholders(2, chunk.len())
        );
        let mut query = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(user_id.as_str());
        for id in chunk {
            query = query.bind(*id);
        }
        for row in query.fetch_all(&mut *conn).await? {
            let deleted_at: Option<i64> = row.try_get("deleted_at")?;
            let photo = SharedPhoto {
                id: row.try_get("id")?,
                home_library: row.try_get("library_id")?,
                home_identifier: row.try_get("local_identifier")?,
                deleted: deleted_at.is_some(),
                aliases: Vec::new(),
                metadata: Shared {
                    cloud_guid: row.try_get("cloud_guid")?,
                    fingerprint: row.try_get("fingerprint")?,
                    kind: row.try_get("kind")?,
                    subtype: row.try_get("subtype")?,
                    live_photo: row.try_get("live_photo")?,
                    width: row.try_get("width")?,
                    height: row.try_get("height")?,
                    duration_ms: row.try_get("duration_ms")?,
                    taken_at: row.try_get("taken_at")?,
                    taken_at_offset_s: row.try_get("taken_at_offset_s")?,
                    time_zone: row.try_get("time_zone")?,
                    favorite: row.try_get("favorite")?,
                    hidden: row.try_get("hidden")?,
                    trashed: row.try_get("trashed")?,
                    latitude: row.try_get("latitude")?,
                    longitude: row.try_get("longitude")?,
                    original_filename: row.try_get("original_filename")?,
                    uti: row.try_get("uti")?,
                    edited: row.try_get("edited")?,
                    title: row.try_get("title")?,
                    caption: row.try_get("caption")?,
                    keywords: row.try_get("keywords")?,
                    people: row.try_get("people")?,
                },
            };
            found.insert(photo.id.clone(), photo);
        }
    }
    Ok(found)
}

/// What every source of a photo shares: the row's metadata but its identity and `modified_at` (each Mac
/// stamps its own record), in the form the row stores it.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct Shared {
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
    keywords: String,
    people: String,
}

impl Shared {
    /// The item's metadata as the row would store it; a GUID or fingerprint the item lacks stays `stored`'s.
    pub(super) fn of(item: &PhotoUpsert, stored: &Shared) -> Result<Shared> {
        Ok(Shared {
            cloud_guid: item.cloud_guid.clone().or_else(|| stored.cloud_guid.clone()),
            fingerprint: item.fingerprint.clone().or_else(|| stored.fingerprint.clone()),
            kind: kind_name(item.kind).to_owned(),
            subtype: item.subtype.clone(),
            live_photo: item.live_photo,
            width: i64::from(item.width),
            height: i64::from(item.height),
            duration_ms: item.duration_ms.map(|d| to_i64("durationMs", d)).transpose()?,
            taken_at: item.taken_at.timestamp_millis(),
            taken_at_offset_s: i64::from(item.taken_at.offset().local_minus_utc()),
            time_zone: item.time_zone.clone(),
            favorite: item.favorite,
            hidden: item.hidden,
            trashed: item.trashed,
            latitude: item.latitude,
            longitude: item.longitude,
            original_filename: item.original_filename.clone(),
            uti: item.uti.clone(),
            edited: item.edited,
            title: item.title.clone(),
            caption: item.caption.clone(),
            keywords: json_list(&item.keywords),
            people: json_list(&item.people),
        })
    }
}
