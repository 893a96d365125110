//! Albums, folders and shared albums from `ZGENERICALBUM`, with members in the order Photos displays them.
//!
//! Photos stores the manual order in the join table's `Z_FOK_…` column and, for sorted albums, only the setting
//! (`ZCUSTOMSORTKEY`, `ZCUSTOMSORTASCENDING`): the displayed order of a sorted album is computed here from the
//! assets' dates or titles. Built-in, smart and import-session albums are not read: they are views, not user data.

use std::cmp::Ordering;
use std::collections::{HashMap, HashSet};
use std::path::Path;

use rusqlite::{Connection, Row};

use super::error::Result;
use super::open::query_error;
use super::schema::Schema;
use super::value;

/// What sort of container an album is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AlbumKind {
    /// A user album (`ZKIND = 2`).
    Album,
    /// A user folder (`ZKIND = 4000`): holds albums and folders, never assets.
    Folder,
    /// An iCloud shared album (`ZKIND = 1505`, or an album with a cloud owner).
    Shared,
}

/// Which order Photos shows an album's members in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SortKey {
    /// The user's drag-and-drop order (`ZCUSTOMSORTKEY = 0`).
    Manual,
    /// By date taken (`ZCUSTOMSORTKEY = 1`).
    Date,
    /// By title (`ZCUSTOMSORTKEY = 5`), case-insensitively, then by date. An untitled asset sorts as an empty
    /// title, the way Photos shows it: first when ascending, last when descending.
    Title,
}

/// An album's sort setting.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct AlbumSort {
    /// What is sorted on.
    pub key: SortKey,
    /// Oldest/A first when true; ignored for [`SortKey::Manual`].
    pub ascending: bool,
}

/// An album, folder or shared album as read from the library. Plain data, so it converts easily to a wire type.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReadAlbum {
    /// Photos' album UUID.
    pub id: String,
    /// The title shown in Photos (empty when none is set), in Unicode NFC.
    pub title: String,
    /// Album, folder or shared album.
    pub kind: AlbumKind,
    /// The enclosing folder's UUID; `None` at the top level.
    pub parent_id: Option<String>,
    /// iCloud's GUID of the album (`ZCLOUDGUID`), the same on every Mac of one iCloud library; `None` for a
    /// library without iCloud.
    pub cloud_guid: Option<String>,
    /// The sort setting.
    pub sort: AlbumSort,
    /// Members' `localIdentifier`s (`<UUID>/L0/001`) in display order; trashed assets and unpicked burst frames
    /// are left out, as Photos does. Always empty for folders.
    pub members: Vec<String>,
}

const KIND_ALBUM: i64 = 2;
const KIND_SHARED: i64 = 1505;
const KIND_FOLDER: i64 = 4000;

/// Reads the user-visible albums in `Z_PK` order.
pub(crate) fn read(connection: &Connection, schema: &Schema, path: &Path) -> Result<Vec<ReadAlbum>> {
    if !schema.has("ZGENERICALBUM", "ZKIND") || !schema.has("ZGENERICALBUM", "ZUUID") {
        tracing::warn!(path = %path.display(), "no usable ZGENERICALBUM table; no albums");
        return Ok(Vec::new());
    }
    let g = |column: &str| schema.column("ZGENERICALBUM", "g", column);
    let sql = format!(
        "SELECT g.Z_PK AS pk, g.ZUUID AS uuid, {title} AS title, g.ZKIND AS kind, {parent} AS parent, \
           {trashed} AS trashed, {sort_key} AS sort_key, {ascending} AS ascending, {owner} AS owner, \
           {cloud_guid} AS cloud_guid \
         FROM ZGENERICALBUM g ORDER BY g.Z_PK",
        title = g("ZTITLE"),
        parent = g("ZPARENTFOLDER"),
        trashed = g("ZTRASHEDSTATE"),
        sort_key = g("ZCUSTOMSORTKEY"),
        ascending = g("ZCUSTOMSORTASCENDING"),
        owner = g("ZCLOUDOWNERHASHEDPERSONID"),
        cloud_guid = g("ZCLOUDGUID"),
    );
    let read = || -> rusqlite::Result<Vec<AlbumRow>> {
        let mut statement = connection.prepare(&sql)?;
        let rows = statement.query_map([], AlbumRow::decode)?;
        rows.collect()
    };
    let rows = read().map_err(|e| query_error(path, e))?;
    let by_pk: HashMap<i64, &AlbumRow> = rows.iter().map(|row| (row.pk, row)).collect();
    let mut members = members(connection, schema, path)?;

    let mut albums = Vec::new();
    for row in &rows {
        let kind = match (row.kind, row.owner.is_some()) {
            (Some(KIND_ALBUM), false) => AlbumKind::Album,
            (Some(KIND_ALBUM), true) | (Some(KIND_SHARED), _) => AlbumKind::Shared,
            (Some(KIND_FOLDER), _) => AlbumKind::Folder,
            _ => continue,
        };
        let Some(uuid) = row.uuid.clone().filter(|u| !u.is_empty()) else {
            tracing::warn!(row = row.pk, "skipping album without UUID");
            continue;
        };
        if in_trash(row, &by_pk) {
            tracing::debug!(row = row.pk, %uuid, "skipping trashed album");
            continue;
        }
        let parent_id = row
            .parent
            .and_then(|pk| by_pk.get(&pk))
            .filter(|parent| parent.kind == Some(KIND_FOLDER))
            .and_then(|parent| parent.uuid.clone());
        let sort = sort_setting(row);
        let members = match kind {
            AlbumKind::Folder => Vec::new(),
            _ => {
                let mut list = members.remove(&row.pk).unwrap_or_default();
                order(&mut list, sort);
                list.into_iter().map(|m| format!("{}/L0/001", m.uuid)).collect()
            }
        };
        albums.push(ReadAlbum {
            id: uuid,
            title: row.title.as_deref().map(value::nfc).unwrap_or_default(),
            kind,
            parent_id,
            cloud_guid: row.cloud_guid.clone().filter(|g| !g.is_empty()),
            sort,
            members,
        });
    }
    Ok(albums)
}

#[derive(Debug)]
struct AlbumRow {
    pk: i64,
    uuid: Option<String>,
    title: Option<String>,
    kind: Option<i64>,
    parent: Option<i64>,
    trashed: Option<i64>,
    sort_key: Option<i64>,
    ascending: Option<i64>,
    owner: Option<String>,
    cloud_guid: Option<String>,
}

impl AlbumRow {
    /// Decodes the columns of [`read`]'s query, in its order.
    fn decode(row: &Row<'_>) -> rusqlite::Result<AlbumRow> {
        Ok(AlbumRow {
            pk: value::int(row, 0)?.unwrap_or_default(),
            uuid: value::string(row, 1)?,
            title: value::string(row, 2)?,
            kind: value::int(row, 3)?,
            parent: value::int(row, 4)?,
            trashed: value::int(row, 5)?,
            sort_key: value::int(row, 6)?,
            ascending: value::int(row, 7)?,
            owner: value::string(row, 8)?,
            cloud_guid: value::string(row, 9)?,
        })
    }
}

/// Trashed itself, or inside a trashed folder (bounded walk: a corrupt parent cycle must not hang us).
fn in_trash(row: &AlbumRow, by_pk: &HashMap<i64, &AlbumRow>) -> bool {
    let mut current = Some(row);
    for _ in 0..64 {
        match current {
            Some(album) if album.trashed == Some(1) => return true,
            Some(album) => current = album.parent.and_then(|pk| by_pk.get(&pk).copied()),
            None => return false,
        }
    }
    false
}

fn sort_setting(row: &AlbumRow) -> AlbumSort {
    let key = match row.sort_key {
        Some(1) => SortKey::Date,
        Some(5) => SortKey::Title,
        Some(0) | None => SortKey::Manual,
        Some(other) => {
            tracing::debug!(
                row = row.pk,
                sort_key = other,
                "unknown album sort key; using the manual order"
            );
            SortKey::Manual
        }
    };
    AlbumSort {
        key,
        ascending: row.ascending != Some(0),
    }
}

/// One membership row with what sorting needs.
#[derive(Debug, Clone)]
struct Member {
    asset_pk: i64,
    uuid: String,
    position: Option<i64>,
    created: f64,
    /// Lower-cased NFC title, `None` when untitled.
    title: Option<String>,
}

impl Member {
    /// What a title sort compares: the lower-cased title, or the empty string for an untitled asset.
    fn sort_title(&self) -> &str {
        self.title.as_deref().unwrap_or_default()
    }
}

/// Membership rows by album `Z_PK`, filtered like the asset reader (no trashed assets, no unpicked bursts).
fn members(connection: &Connection, schema: &Schema, path: &Path) -> Result<HashMap<i64, Vec<Member>>> {
    let Some(join) = &schema.album_join else {
        return Ok(HashMap::new());
    };
    let x = |column: &str| schema.column(schema.asset_table, "x", column);
    let position = join
        .order_column
        .as_ref()
        .map_or_else(|| "NULL".to_owned(), |c| format!("j.{c}"));
    let sql = format!(
        "SELECT j.{album} AS album, x.Z_PK AS asset_pk, x.ZUUID AS uuid, {position} AS position, \
           x.ZDATECREATED AS created, {title} AS title \
         FROM {table} j JOIN {assets} x ON x.Z_PK = j.{asset} \
         LEFT JOIN ZADDITIONALASSETATTRIBUTES aa ON aa.ZASSET = x.Z_PK \
         WHERE COALESCE({trashed}, 0) != 1 AND COALESCE({visibility}, 0) != 2",
        album = join.album_column,
        asset = join.asset_column,
        table = join.table,
        assets = schema.asset_table,
        title = schema.column("ZADDITIONALASSETATTRIBUTES", "aa", "ZTITLE"),
        trashed = x("ZTRASHEDSTATE"),
        visibility = x("ZVISIBILITYSTATE"),
    );
    let read = || -> rusqlite::Result<HashMap<i64, Vec<Member>>> {
        let mut statement = connection.prepare(&sql)?;
        let mut rows = statement.query([])?;
        let mut seen = HashSet::new();
        let mut map: HashMap<i64, Vec<Member>> = HashMap::new();
        while let Some(row) = rows.next()? {
            let (Some(album), Some(asset_pk)) = (value::int(row, 0)?, value::int(row, 1)?) else {
                continue;
            };
            // Members the asset reader skips (no UUID, no date) are left out here too, so every member is an item.
            let uuid = value::text(row, 2)?.filter(|u| !u.trim().is_empty());
            let (Some(uuid), Some(created)) = (uuid, value::real(row, 4)?) else {
                continue;
            };
            if !created.is_finite() || !seen.insert((album, asset_pk)) {
                continue;
            }
            // Compared lower-cased and composed: the order must not depend on how Photos encoded an accent.
            let title = value::text(row, 5)?
                .map(|t| value::nfc(t.trim()).to_lowercase())
                .filter(|t| !t.is_empty());
            map.entry(album).or_default().push(Member {
                asset_pk,
                uuid: uuid.into_owned(),
                position: value::int(row, 3)?,
                created,
                title,
            });
        }
        Ok(map)
    };
    read().map_err(|e| query_error(path, e))
}

/// Puts members in display order. Ties fall back to the manual position, then the row, so the order is total.
fn order(members: &mut [Member], sort: AlbumSort) {
    let manual = |a: &Member, b: &Member| {
        // Rows without a position go last.
        match (a.position, b.position) {
            (Some(x), Some(y)) => x.cmp(&y),
            (Some(_), None) => Ordering::Less,
            (None, Some(_)) => Ordering::Greater,
            (None, None) => Ordering::Equal,
        }
        .then(a.asset_pk.cmp(&b.asset_pk))
    };
    let directed = |ordering: Ordering| {
        if sort.ascending {
            ordering
        } else {
            ordering.reverse()
        }
    };
    match sort.key {
        SortKey::Manual => members.sort_by(manual),
        SortKey::Date => members.sort_by(|a, b| directed(a.created.total_cmp(&b.created)).then(manual(a, b))),
        SortKey::Title => members.sort_by(|a, b| {
            directed(
                a.sort_title()
                    .cmp(b.sort_title())
                    .then(a.created.total_cmp(&b.created)),
            )
            .then(manual(a, b))
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn member(pk: i64, position: Option<i64>, created: f64, title: Option<&str>) -> Member {
        Member {
            asset_pk: pk,
            uuid: pk.to_string(),
            position,
            created,
            title: title.map(str::to_lowercase),
        }
    }

    fn ordered(sort: AlbumSort) -> Vec<i64> {
        let mut list = vec![
            member(1, Some(3072), 30.0, Some("banana")),
            member(2, Some(1024), 10.0, None),
            member(3, None, 20.0, Some("Apple")),
            member(4, Some(2048), 40.0, Some("cherry")),
        ];
        order(&mut list, sort);
        list.iter().map(|m| m.asset_pk).collect()
    }

    #[test]
    fn each_sort_setting_orders_members() {
        assert_eq!(
            ordered(AlbumSort {
                key: SortKey::Manual,
                ascending: false
            }),
            [2, 4, 1, 3]
        );
        assert_eq!(
            ordered(AlbumSort {
                key: SortKey::Date,
                ascending: true
            }),
            [2, 3, 1, 4]
        );
        assert_eq!(
            ordered(AlbumSort {
                key: SortKey::Date,
                ascending: false
            }),
            [4, 1, 3, 2]
        );
        // Untitled (2) sorts as an empty title: first when ascending, last when descending.
        assert_eq!(
            ordered(AlbumSort {
                key: SortKey::Title,
                ascending: true
            }),
            [2, 3, 1, 4]
        );
        assert_eq!(
            ordered(AlbumSort {
                key: SortKey::Title,
                ascending: false
            }),
            [4, 1, 3, 2]
        );
    }
}
