//! Asset rows → [`ReadAsset`]s: one query over the asset table joined to its additional attributes, one over
//! `ZINTERNALRESOURCE`, and the keyword and people maps, stitched together in memory (a handful of full scans is
//! far cheaper than a query per asset on a 100,000-photo library). Rows are decoded in place, borrowing their
//! text, and resources are merged by a walk over both sorted lists rather than a map of small vectors, so the
//! only per-asset allocations are those of the sync item itself.
//!
//! Every row ends up either read or in [`AssetScan::skipped`] with a reason, so a caller can prove nothing was
//! silently dropped.

use std::borrow::Cow;
use std::collections::{BTreeSet, HashMap};
use std::path::Path;

use api::{AssetKind, SyncItem};
use rusqlite::{Connection, Row};

use super::disk::Disk;
use super::error::Result;
use super::open::query_error;
use super::resources::{self, AssetFiles, ResourceRow};
use super::schema::Schema;
use super::time::{from_core_data, utc};
use super::value::{int, nfc, real, text};
use super::{AssetScan, ReadAsset, SkipReason, SkippedAsset, annotations};

/// `ZVISIBILITYSTATE` of a burst frame the user did not pick.
const VISIBILITY_UNPICKED_BURST: i64 = 2;
/// Photos' "no location" sentinel for latitude and longitude.
const NO_LOCATION: f64 = -180.0;

/// Reads every asset row (blocking: SQLite and one `stat` per resource file).
pub(crate) fn scan(connection: &Connection, schema: &Schema, path: &Path, root: &Path) -> Result<AssetScan> {
    let resources = resource_rows(connection, schema, path)?;
    let keywords = annotations::keywords(connection, schema, path)?;
    let people = annotations::people(connection, schema, path)?;
    let lookups = Lookups {
        root,
        keywords: &keywords,
        people: &people,
    };

    let mut disk = Disk::new(root);
    let mut scan = AssetScan::default();
    let mut read = || -> rusqlite::Result<()> {
        // Sized up front: a 100,000-asset vector grown by doubling copies and faults in twice its size.
        let count: i64 = connection.query_row(
            &format!("SELECT count(*) FROM {}", schema.asset_table),
            [],
            |row| row.get(0),
        )?;
        scan.assets.reserve(usize::try_from(count).unwrap_or(0));
        let mut statement = connection.prepare(&asset_sql(schema))?;
        let mut rows = statement.query([])?;
        let mut last_pk = None;
        let mut cursor = 0usize;
        while let Some(row) = rows.next()? {
            let row = AssetRow::decode(row)?;
            // A second attributes row for the same asset would duplicate it; the first one wins.
            if last_pk == Some(row.pk) {
                continue;
            }
            last_pk = Some(row.pk);
            // Resources are sorted by asset and assets come in `Z_PK` order: advance to this asset's run.
            while resources.assets.get(cursor).is_some_and(|asset| *asset < row.pk) {
                cursor += 1;
            }
            let end = cursor + resources.assets[cursor..].partition_point(|asset| *asset == row.pk);
            match convert(&row, &lookups, &mut disk, &resources.rows[cursor..end]) {
                Ok(asset) => scan.assets.push(asset),
                Err(reason) => {
                    match reason {
                        SkipReason::UnpickedBurstFrame => {
                            tracing::debug!(row = row.pk, uuid = ?row.uuid, "skipping unpicked burst frame")
                        }
                        _ => tracing::warn!(row = row.pk, uuid = ?row.uuid, ?reason, "skipping asset row"),
                    }
                    scan.skipped.push(SkippedAsset {
                        row: row.pk,
                        uuid: row.uuid.as_deref().map(str::to_owned),
                        reason,
                    });
                }
            }
        }
        Ok(())
    };
    read().map_err(|e| query_error(path, e))?;
    tracing::debug!(
        read = scan.assets.len(),
        skipped = scan.skipped.len(),
        "read asset rows"
    );
    Ok(scan)
}

/// Resource rows sorted by asset, then by resource `Z_PK`: `rows[i]` belongs to the asset `assets[i]`, so an
/// asset's rows are one slice.
#[derive(Debug, Default)]
struct ResourceIndex {
    assets: Vec<i64>,
    rows: Vec<ResourceRow>,
}

/// What every row is converted with, besides its resource rows: the library root and the annotation maps.
struct Lookups<'a> {
    root: &'a Path,
    keywords: &'a HashMap<i64, BTreeSet<String>>,
    people: &'a HashMap<i64, BTreeSet<String>>,
}

/// The asset query for this schema; absent columns read as NULL.
fn asset_sql(schema: &Schema) -> String {
    let a = |column: &str| schema.column(schema.asset_table, "a", column);
    let aa = |column: &str| schema.column("ZADDITIONALASSETATTRIBUTES", "aa", column);
    let adjustments = if schema.has(schema.asset_table, "ZADJUSTMENTSSTATE") {
        a("ZADJUSTMENTSSTATE")
    } else {
        a("ZHASADJUSTMENTS")
    };
    let fingerprint = format!(
        "COALESCE({}, {})",
        aa("ZORIGINALSTABLEHASH"),
        aa("ZMASTERFINGERPRINT")
    );
    let caption = if schema.has("ZADDITIONALASSETATTRIBUTES", "ZASSETDESCRIPTION")
        && schema.has("ZASSETDESCRIPTION", "ZLONGDESCRIPTION")
    {
        "(SELECT d.ZLONGDESCRIPTION FROM ZASSETDESCRIPTION d WHERE d.Z_PK = aa.ZASSETDESCRIPTION)".to_owned()
    } else {
        "NULL".to_owned()
    };
    // Core Data keeps the one-to-one link on both sides. Following the asset's own foreign key is a primary-key
    // lookup, so the rows come out in the asset table's order with no sort; the attributes' `ZASSET` (indexed in
    // every real library, not in hand-made ones) is only looked at when that key is missing. Joining on `ZASSET`
    // alone needed a temporary index and a sort of every row (most of the query's time at 100,000 assets).
    let (join, then) = if schema.has(schema.asset_table, "ZADDITIONALATTRIBUTES") {
        (
            "aa.Z_PK = COALESCE(a.ZADDITIONALATTRIBUTES, (SELECT MIN(x.Z_PK) FROM ZADDITIONALASSETATTRIBUTES x \
             WHERE x.ZASSET = a.Z_PK))",
            "",
        )
    } else {
        ("aa.ZASSET = a.Z_PK", ", aa.Z_PK")
    };
    format!(
        "SELECT a.Z_PK AS pk, a.ZUUID AS uuid, {directory} AS directory, {filename} AS filename, \
           {original_filename} AS original_filename, {original_size} AS original_size, \
           a.ZDATECREATED AS created, {added} AS added, {modified} AS modified, {offset} AS tz_offset, {zone} AS tz_name, \
           {kind} AS kind, {subtype} AS subtype, {uti} AS uti, {width} AS width, {height} AS height, \
           {duration} AS duration, {favorite} AS favorite, {hidden} AS hidden, {trashed} AS trashed, \
           {latitude} AS latitude, {longitude} AS longitude, {cloud_guid} AS cloud_guid, \
           {adjustments} AS adjustments, {saved_type} AS saved_type, {visibility} AS visibility, \
           {fingerprint} AS fingerprint, {title} AS title, {caption} AS caption, aa.Z_PK AS attributes_pk \
         FROM {table} a LEFT JOIN ZADDITIONALASSETATTRIBUTES aa ON {join} \
         ORDER BY a.Z_PK{then}",
        directory = a("ZDIRECTORY"),
        filename = a("ZFILENAME"),
        original_filename = aa("ZORIGINALFILENAME"),
        original_size = aa("ZORIGINALFILESIZE"),
        added = a("ZADDEDDATE"),
        modified = a("ZMODIFICATIONDATE"),
        offset = aa("ZTIMEZONEOFFSET"),
        zone = aa("ZTIMEZONENAME"),
        kind = a("ZKIND"),
        subtype = a("ZKINDSUBTYPE"),
        uti = a("ZUNIFORMTYPEIDENTIFIER"),
        width = a("ZWIDTH"),
        height = a("ZHEIGHT"),
        duration = a("ZDURATION"),
        favorite = a("ZFAVORITE"),
        hidden = a("ZHIDDEN"),
        trashed = a("ZTRASHEDSTATE"),
        latitude = a("ZLATITUDE"),
        longitude = a("ZLONGITUDE"),
        cloud_guid = a("ZCLOUDASSETGUID"),
        saved_type = a("ZSAVEDASSETTYPE"),
        visibility = a("ZVISIBILITYSTATE"),
        title = aa("ZTITLE"),
        table = schema.asset_table,
    )
}

/// The `ZINTERNALRESOURCE` rows that can describe an original, a Live Photo video or a render (the only ones
/// [`resources::build`] looks at; a real library has several more per asset, for derivatives), as
/// a [`ResourceIndex`].
fn resource_rows(connection: &Connection, schema: &Schema, path: &Path) -> Result<ResourceIndex> {
    if !schema.has("ZINTERNALRESOURCE", "ZASSET") {
        return Ok(ResourceIndex::default());
    }
    let r = |column: &str| schema.column("ZINTERNALRESOURCE", "r", column);
    let (rtype, subtype, version) = (r("ZRESOURCETYPE"), r("ZDATASTORESUBTYPE"), r("ZVERSION"));
    let sql = format!(
        "SELECT r.ZASSET, r.Z_PK, {rtype}, {subtype}, {version}, {local}, {length}, {uti} \
         FROM ZINTERNALRESOURCE r WHERE r.ZASSET IS NOT NULL AND ( \
           ({version} = 0 AND {subtype} = 1 AND {rtype} IN (0, 1)) \
           OR ({rtype} = 3 AND ({subtype} = 18 OR {version} = 0)) \
           OR ({version} = 2 AND {rtype} IN (0, 1)))",
        local = r("ZLOCALAVAILABILITY"),
        length = r("ZDATALENGTH"),
        uti = r("ZCOMPACTUTI"),
    );
    let read = || -> rusqlite::Result<Vec<(i64, i64, ResourceRow)>> {
        let mut statement = connection.prepare(&sql)?;
        let mut rows = statement.query([])?;
        let mut out = Vec::new();
        while let Some(row) = rows.next()? {
            let (Some(asset), Some(pk)) = (int(row, 0)?, int(row, 1)?) else {
                continue;
            };
            out.push((
                asset,
                pk,
                ResourceRow {
                    resource_type: int(row, 2)?,
                    store_subtype: int(row, 3)?,
                    version: int(row, 4)?,
                    local_availability: int(row, 5)?,
                    data_length: int(row, 6)?,
                    compact_uti: int(row, 7)?,
                },
            ));
        }
        Ok(out)
    };
    let mut rows = read().map_err(|e| query_error(path, e))?;
    rows.sort_unstable_by_key(|(asset, pk, _)| (*asset, *pk));
    Ok(ResourceIndex {
        assets: rows.iter().map(|(asset, _, _)| *asset).collect(),
        rows: rows.into_iter().map(|(_, _, row)| row).collect(),
    })
}

/// One row of the asset query, its text borrowed from SQLite. Everything is optional: Core Data allows NULL
/// almost everywhere.
#[derive(Debug)]
struct AssetRow<'r> {
    pk: i64,
    uuid: Option<Cow<'r, str>>,
    directory: Option<Cow<'r, str>>,
    filename: Option<Cow<'r, str>>,
    original_filename: Option<Cow<'r, str>>,
    original_size: Option<i64>,
    created: Option<f64>,
    added: Option<f64>,
    modified: Option<f64>,
    tz_offset: Option<i64>,
    tz_name: Option<Cow<'r, str>>,
    kind: Option<i64>,
    subtype: Option<i64>,
    uti: Option<Cow<'r, str>>,
    width: Option<i64>,
    height: Option<i64>,
    duration: Option<f64>,
    favorite: Option<i64>,
    hidden: Option<i64>,
    trashed: Option<i64>,
    latitude: Option<f64>,
    longitude: Option<f64>,
    cloud_guid: Option<Cow<'r, str>>,
    adjustments: Option<i64>,
    saved_type: Option<i64>,
    visibility: Option<i64>,
    fingerprint: Option<Cow<'r, str>>,
    title: Option<Cow<'r, str>>,
    caption: Option<Cow<'r, str>>,
    attributes_pk: Option<i64>,
}

impl<'r> AssetRow<'r> {
    /// Decodes the columns of [`asset_sql`], by position, leniently (see [`super::value`]).
    fn decode(row: &'r Row<'_>) -> rusqlite::Result<AssetRow<'r>> {
        Ok(AssetRow {
            pk: int(row, 0)?.unwrap_or_default(),
            uuid: text(row, 1)?,
            directory: text(row, 2)?,
            filename: text(row, 3)?,
            original_filename: text(row, 4)?,
            original_size: int(row, 5)?,
            created: real(row, 6)?,
            added: real(row, 7)?,
            modified: real(row, 8)?,
            tz_offset: int(row, 9)?,
            tz_name: text(row, 10)?,
            kind: int(row, 11)?,
            subtype: int(row, 12)?,
            uti: text(row, 13)?,
            width: int(row, 14)?,
            height: int(row, 15)?,
            duration: real(row, 16)?,
            favorite: int(row, 17)?,
            hidden: int(row, 18)?,
            trashed: int(row, 19)?,
            latitude: real(row, 20)?,
            longitude: real(row, 21)?,
            cloud_guid: text(row, 22)?,
            adjustments: int(row, 23)?,
            saved_type: int(row, 24)?,
            visibility: int(row, 25)?,
            fingerprint: text(row, 26)?,
            title: text(row, 27)?,
            caption: text(row, 28)?,
            attributes_pk: int(row, 29)?,
        })
    }
}

/// Turns one row into a [`ReadAsset`], or says why it is skipped.
fn convert(
    row: &AssetRow<'_>,
    lookups: &Lookups<'_>,
    disk: &mut Disk,
    resource_rows: &[ResourceRow],
) -> std::result::Result<ReadAsset, SkipReason> {
    if row.visibility == Some(VISIBILITY_UNPICKED_BURST) {
        return Err(SkipReason::UnpickedBurstFrame);
    }
    let uuid = non_empty(&row.uuid).ok_or(SkipReason::NoUuid)?;
    let offset = row.tz_offset.unwrap_or(0);
    let taken_at = match row.created.and_then(|seconds| from_core_data(seconds, offset)) {
        Some(taken_at) => taken_at,
        None => {
            // Seen on a real library: a creation date millions of years out. Photos still shows the asset, so
            // we keep it, dated by its import.
            let added = row
                .added
                .and_then(|seconds| from_core_data(seconds, offset))
                .ok_or(SkipReason::NoDate)?;
            tracing::warn!(row = row.pk, uuid, created = ?row.created, "creation date out of range; using the import date");
            added
        }
    };
    let modified_at = row
        .modified
        .and_then(|seconds| from_core_data(seconds, 0))
        .unwrap_or_else(|| taken_at.with_timezone(&utc()));

    let kind = if row.kind == Some(1) {
        AssetKind::Video
    } else {
        AssetKind::Photo
    };
    let subtype = row.subtype.and_then(subtype_name);
    let live_photo = row.subtype == Some(2);
    let edited = row.adjustments.is_some_and(|state| state != 0);
    let (latitude, longitude) = match (row.latitude, row.longitude) {
        (Some(lat), Some(lon)) if !(lat == NO_LOCATION && lon == NO_LOCATION) => (Some(lat), Some(lon)),
        _ => (None, None),
    };
    let duration_ms = match kind {
        AssetKind::Video => row
            .duration
            .filter(|d| d.is_finite() && *d >= 0.0)
            .map(|d| (d * 1000.0).round() as u64),
        AssetKind::Photo => None,
    };
    let files = AssetFiles {
        uuid,
        directory: row.directory.as_deref(),
        filename: row.filename.as_deref(),
        saved_type: row.saved_type,
        video: kind == AssetKind::Video,
        live_photo,
        edited,
        cloud: row.cloud_guid.is_some(),
        original_size: row.original_size,
    };
    let (wire_resources, paths) = resources::build(lookups.root, disk, &files, resource_rows);
    let names = |map: &HashMap<i64, BTreeSet<String>>, key: Option<i64>| -> Vec<String> {
        key.and_then(|key| map.get(&key))
            .map(|set| set.iter().cloned().collect())
            .unwrap_or_default()
    };

    let item = SyncItem {
        local_identifier: format!("{uuid}/L0/001"),
        cloud_guid: non_empty(&row.cloud_guid).map(str::to_owned),
        fingerprint: non_empty(&row.fingerprint).map(str::to_owned),
        kind,
        subtype: subtype.map(str::to_owned),
        live_photo,
        width: dimension(row.width),
        height: dimension(row.height),
        duration_ms,
        taken_at,
        time_zone: non_empty(&row.tz_name).map(str::to_owned),
        modified_at,
        favorite: row.favorite == Some(1),
        hidden: row.hidden == Some(1),
        trashed: row.trashed == Some(1),
        latitude,
        longitude,
        original_filename: nfc(non_empty(&row.original_filename)
            .or(non_empty(&row.filename))
            .unwrap_or(uuid)),
        uti: non_empty(&row.uti).unwrap_or("public.data").to_owned(),
        edited,
        title: non_empty(&row.title).map(nfc),
        caption: non_empty(&row.caption).map(nfc),
        keywords: names(lookups.keywords, row.attributes_pk),
        people: names(lookups.people, Some(row.pk)),
        resources: wire_resources,
        deleted: false,
    };
    Ok(ReadAsset {
        uuid: uuid.to_owned(),
        item,
        files: paths,
    })
}

/// Photos' `ZKINDSUBTYPE` as the wire's subtype name; plain photos and videos (0) have none.
fn subtype_name(code: i64) -> Option<&'static str> {
    match code {
        1 => Some("panorama"),
        2 => Some("live_photo"),
        10 => Some("screenshot"),
        101 => Some("slomo"),
        102 => Some("timelapse"),
        103 => Some("screen_recording"),
        _ => None,
    }
}

fn dimension(value: Option<i64>) -> u32 {
    value.and_then(|v| u32::try_from(v).ok()).unwrap_or(0)
}

fn non_empty<'a>(value: &'a Option<Cow<'_, str>>) -> Option<&'a str> {
    value.as_deref().map(str::trim).filter(|v| !v.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subtypes_have_wire_names() {
        assert_eq!(subtype_name(1), Some("panorama"));
        assert_eq!(subtype_name(2), Some("live_photo"));
        assert_eq!(subtype_name(103), Some("screen_recording"));
        assert_eq!(subtype_name(0), None);
    }
}
