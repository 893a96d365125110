//! Asset rows → [`ReadAsset`]s: one query over the asset table joined to its additional attributes, one over
//! `ZINTERNALRESOURCE`, and the keyword and people maps, stitched together in memory (a handful of full scans is
//! far cheaper than a query per asset on a 100,000-photo library).
//!
//! Every row ends up either read or in [`AssetScan::skipped`] with a reason, so a caller can prove nothing was
//! silently dropped.

use std::collections::{BTreeSet, HashMap};
use std::path::Path;

use api::{AssetKind, SyncItem};
use sqlx::Row;
use sqlx::sqlite::{SqlitePool, SqliteRow};

use super::error::Result;
use super::open::query_error;
use super::resources::{self, AssetFiles, ResourceRow};
use super::schema::Schema;
use super::time::{from_core_data, utc};
use super::{AssetScan, ReadAsset, SkipReason, SkippedAsset, annotations};

/// `ZVISIBILITYSTATE` of a burst frame the user did not pick.
const VISIBILITY_UNPICKED_BURST: i64 = 2;
/// Photos' "no location" sentinel for latitude and longitude.
const NO_LOCATION: f64 = -180.0;

/// Reads every asset row.
pub(crate) async fn scan(pool: &SqlitePool, schema: &Schema, path: &Path, root: &Path) -> Result<AssetScan> {
    let rows = sqlx::query(sqlx::AssertSqlSafe(asset_sql(schema)))
        .fetch_all(pool)
        .await
        .map_err(|e| query_error(path, e))?;
    let resources = resource_rows(pool, schema, path).await?;
    let keywords = annotations::keywords(pool, schema, path).await?;
    let people = annotations::people(pool, schema, path).await?;

    let mut scan = AssetScan::default();
    let mut last_pk = None;
    for row in &rows {
        let row = AssetRow::decode(row).map_err(|e| query_error(path, e))?;
        // A second attributes row for the same asset would duplicate it; the first one wins.
        if last_pk == Some(row.pk) {
            continue;
        }
        last_pk = Some(row.pk);
        match convert(&row, root, &resources, &keywords, &people) {
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
                    uuid: row.uuid.clone(),
                    reason,
                });
            }
        }
    }
    tracing::debug!(
        read = scan.assets.len(),
        skipped = scan.skipped.len(),
        "read asset rows"
    );
    Ok(scan)
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
    format!(
        "SELECT a.Z_PK AS pk, a.ZUUID AS uuid, {directory} AS directory, {filename} AS filename, \
           {original_filename} AS original_filename, {original_size} AS original_size, \
           a.ZDATECREATED AS created, {added} AS added, {modified} AS modified, {offset} AS tz_offset, {zone} AS tz_name, \
           {kind} AS kind, {subtype} AS subtype, {uti} AS uti, {width} AS width, {height} AS height, \
           {duration} AS duration, {favorite} AS favorite, {hidden} AS hidden, {trashed} AS trashed, \
           {latitude} AS latitude, {longitude} AS longitude, {cloud_guid} AS cloud_guid, \
           {adjustments} AS adjustments, {saved_type} AS saved_type, {visibility} AS visibility, \
           {fingerprint} AS fingerprint, {title} AS title, {caption} AS caption, aa.Z_PK AS attributes_pk \
         FROM {table} a LEFT JOIN ZADDITIONALASSETATTRIBUTES aa ON aa.ZASSET = a.Z_PK \
         ORDER BY a.Z_PK, aa.Z_PK",
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

/// `ZINTERNALRESOURCE` rows by asset `Z_PK`, in `Z_PK` order.
async fn resource_rows(
    pool: &SqlitePool,
    schema: &Schema,
    path: &Path,
) -> Result<HashMap<i64, Vec<ResourceRow>>> {
    if !schema.has("ZINTERNALRESOURCE", "ZASSET") {
        return Ok(HashMap::new());
    }
    let r = |column: &str| schema.column("ZINTERNALRESOURCE", "r", column);
    let sql = format!(
        "SELECT r.ZASSET AS asset, {rtype} AS rtype, {subtype} AS subtype, {version} AS version, \
           {local} AS local, {length} AS length, {uti} AS uti \
         FROM ZINTERNALRESOURCE r WHERE r.ZASSET IS NOT NULL ORDER BY r.Z_PK",
        rtype = r("ZRESOURCETYPE"),
        subtype = r("ZDATASTORESUBTYPE"),
        version = r("ZVERSION"),
        local = r("ZLOCALAVAILABILITY"),
        length = r("ZDATALENGTH"),
        uti = r("ZCOMPACTUTI"),
    );
    let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
        .fetch_all(pool)
        .await
        .map_err(|e| query_error(path, e))?;
    let mut map: HashMap<i64, Vec<ResourceRow>> = HashMap::new();
    for row in rows {
        let decode = |row: &SqliteRow| -> std::result::Result<(i64, ResourceRow), sqlx::Error> {
            Ok((
                row.try_get_unchecked("asset")?,
                ResourceRow {
                    resource_type: row.try_get_unchecked("rtype")?,
                    store_subtype: row.try_get_unchecked("subtype")?,
                    version: row.try_get_unchecked("version")?,
                    local_availability: row.try_get_unchecked("local")?,
                    data_length: row.try_get_unchecked("length")?,
                    compact_uti: row.try_get_unchecked("uti")?,
                },
            ))
        };
        let (asset, resource) = decode(&row).map_err(|e| query_error(path, e))?;
        map.entry(asset).or_default().push(resource);
    }
    Ok(map)
}

/// One row of the asset query. Everything is optional: Core Data allows NULL almost everywhere.
#[derive(Debug)]
struct AssetRow {
    pk: i64,
    uuid: Option<String>,
    directory: Option<String>,
    filename: Option<String>,
    original_filename: Option<String>,
    original_size: Option<i64>,
    created: Option<f64>,
    added: Option<f64>,
    modified: Option<f64>,
    tz_offset: Option<i64>,
    tz_name: Option<String>,
    kind: Option<i64>,
    subtype: Option<i64>,
    uti: Option<String>,
    width: Option<i64>,
    height: Option<i64>,
    duration: Option<f64>,
    favorite: Option<i64>,
    hidden: Option<i64>,
    trashed: Option<i64>,
    latitude: Option<f64>,
    longitude: Option<f64>,
    cloud_guid: Option<String>,
    adjustments: Option<i64>,
    saved_type: Option<i64>,
    visibility: Option<i64>,
    fingerprint: Option<String>,
    title: Option<String>,
    caption: Option<String>,
    attributes_pk: Option<i64>,
}

impl AssetRow {
    /// Decodes without sqlx's declared-type check: Photos declares dates `TIMESTAMP`, and SQLite coerces.
    fn decode(row: &SqliteRow) -> std::result::Result<AssetRow, sqlx::Error> {
        Ok(AssetRow {
            pk: row.try_get_unchecked("pk")?,
            uuid: row.try_get_unchecked("uuid")?,
            directory: row.try_get_unchecked("directory")?,
            filename: row.try_get_unchecked("filename")?,
            original_filename: row.try_get_unchecked("original_filename")?,
            original_size: row.try_get_unchecked("original_size")?,
            created: row.try_get_unchecked("created")?,
            added: row.try_get_unchecked("added")?,
            modified: row.try_get_unchecked("modified")?,
            tz_offset: row.try_get_unchecked("tz_offset")?,
            tz_name: row.try_get_unchecked("tz_name")?,
            kind: row.try_get_unchecked("kind")?,
            subtype: row.try_get_unchecked("subtype")?,
            uti: row.try_get_unchecked("uti")?,
            width: row.try_get_unchecked("width")?,
            height: row.try_get_unchecked("height")?,
            duration: row.try_get_unchecked("duration")?,
            favorite: row.try_get_unchecked("favorite")?,
            hidden: row.try_get_unchecked("hidden")?,
            trashed: row.try_get_unchecked("trashed")?,
            latitude: row.try_get_unchecked("latitude")?,
            longitude: row.try_get_unchecked("longitude")?,
            cloud_guid: row.try_get_unchecked("cloud_guid")?,
            adjustments: row.try_get_unchecked("adjustments")?,
            saved_type: row.try_get_unchecked("saved_type")?,
            visibility: row.try_get_unchecked("visibility")?,
            fingerprint: row.try_get_unchecked("fingerprint")?,
            title: row.try_get_unchecked("title")?,
            caption: row.try_get_unchecked("caption")?,
            attributes_pk: row.try_get_unchecked("attributes_pk")?,
        })
    }
}

/// Turns one row into a [`ReadAsset`], or says why it is skipped.
fn convert(
    row: &AssetRow,
    root: &Path,
    resources: &HashMap<i64, Vec<ResourceRow>>,
    keywords: &HashMap<i64, BTreeSet<String>>,
    people: &HashMap<i64, BTreeSet<String>>,
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
    let resource_rows = resources.get(&row.pk).map(Vec::as_slice).unwrap_or_default();
    let (wire_resources, paths) = resources::build(root, &files, resource_rows);
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
        original_filename: non_empty(&row.original_filename)
            .or(non_empty(&row.filename))
            .unwrap_or(uuid)
            .to_owned(),
        uti: non_empty(&row.uti).unwrap_or("public.data").to_owned(),
        edited,
        title: non_empty(&row.title).map(str::to_owned),
        caption: non_empty(&row.caption).map(str::to_owned),
        keywords: names(keywords, row.attributes_pk),
        people: names(people, Some(row.pk)),
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

fn non_empty(value: &Option<String>) -> Option<&str> {
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
