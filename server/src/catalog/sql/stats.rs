//! Counts and bytes per library, from the catalog alone: the upload times the rate and ETA are computed
//! from are resource rows, so they survive a restart of the server or the agent. A photo synced from several
//! libraries counts once, under its home library, and each resource under the library that holds it (the one
//! asked to upload it), so the totals count nothing twice.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use sqlx::Row as _;

use super::{Adapter, Driver as _, current_version, ms, time, to_u64};
use crate::catalog::{Counts, LibraryId, LibraryStats, Result, Stats, UserId};

pub(super) async fn stats(catalog: &Adapter, user_id: &UserId, recent_since: DateTime<Utc>) -> Result<Stats> {
    let mut conn = catalog.pool().acquire().await?;
    let libraries =
        sqlx::query("SELECT id, library_key FROM icloud.libraries WHERE user_id = $1 ORDER BY library_key")
            .bind(user_id.as_str())
            .fetch_all(&mut *conn)
            .await?;
    let photos = sqlx::query(
        "SELECT library_id, COUNT(*) AS n FROM icloud.photos \
         WHERE user_id = $1 AND deleted_at IS NULL GROUP BY library_id",
    )
    .bind(user_id.as_str())
    .fetch_all(&mut *conn)
    .await?;
    // "Transferred" = stored and not deduplicated: the bytes that crossed the wire, which is what a rate is.
    let resources = sqlx::query(
        "SELECT COALESCE(r.library_id, p.library_id) AS library_id, COUNT(*) AS resources, \
           CAST(COALESCE(SUM(CASE WHEN r.state = 'stored' THEN 1 ELSE 0 END), 0) AS BIGINT) AS uploaded, \
           CAST(COALESCE(SUM(CASE WHEN r.state IN ('pending', 'failed') THEN 1 ELSE 0 END), 0) AS BIGINT) AS pending, \
           CAST(COALESCE(SUM(CASE WHEN r.state = 'unavailable' THEN 1 ELSE 0 END), 0) AS BIGINT) AS unavailable, \
           CAST(COALESCE(SUM(CASE WHEN r.state = 'failed' THEN 1 ELSE 0 END), 0) AS BIGINT) AS failed, \
           CAST(COALESCE(SUM(CASE WHEN r.state = 'stored' THEN COALESCE(r.stored_size, r.declared_size) \
                                  ELSE r.declared_size END), 0) AS BIGINT) AS bytes_total, \
           CAST(COALESCE(SUM(CASE WHEN r.state = 'stored' THEN r.stored_size ELSE 0 END), 0) AS BIGINT) \
             AS bytes_uploaded, \
           CAST(COALESCE(SUM(CASE WHEN r.state IN ('pending', 'failed') THEN r.declared_size ELSE 0 END), 0) \
             AS BIGINT) AS bytes_pending, \
           CAST(COALESCE(SUM(CASE WHEN r.state = 'stored' AND NOT r.deduplicated THEN r.stored_size \
                                  ELSE 0 END), 0) AS BIGINT) AS bytes_transferred, \
           MIN(CASE WHEN r.state = 'stored' AND NOT r.deduplicated THEN r.uploaded_at END) AS first_upload_at, \
           MAX(CASE WHEN r.state = 'stored' AND NOT r.deduplicated THEN r.uploaded_at END) AS last_upload_at, \
           CAST(COALESCE(SUM(CASE WHEN r.state = 'stored' AND NOT r.deduplicated AND r.uploaded_at >= $2 \
                                  THEN 1 ELSE 0 END), 0) AS BIGINT) AS recent_uploads, \
           CAST(COALESCE(SUM(CASE WHEN r.state = 'stored' AND NOT r.deduplicated AND r.uploaded_at >= $2 \
                                  THEN r.stored_size ELSE 0 END), 0) AS BIGINT) AS recent_bytes \
         FROM icloud.resources r JOIN icloud.photos p ON p.id = r.photo_id \
         WHERE r.user_id = $1 AND p.deleted_at IS NULL \
         GROUP BY COALESCE(r.library_id, p.library_id)",
    )
    .bind(user_id.as_str())
    .bind(ms(recent_since))
    .fetch_all(&mut *conn)
    .await?;

    let mut by_library: HashMap<String, Counts> = HashMap::new();
    for row in &photos {
        by_library.entry(row.try_get("library_id")?).or_default().photos = to_u64(row.try_get("n")?);
    }
    for row in &resources {
        let counts = by_library.entry(row.try_get("library_id")?).or_default();
        let figure = |name: &str| row.try_get::<i64, _>(name).map(to_u64);
        counts.resources = figure("resources")?;
        counts.uploaded = figure("uploaded")?;
        counts.pending = figure("pending")?;
        counts.unavailable = figure("unavailable")?;
        counts.failed = figure("failed")?;
        counts.bytes_total = figure("bytes_total")?;
        counts.bytes_uploaded = figure("bytes_uploaded")?;
        counts.bytes_pending = figure("bytes_pending")?;
        counts.bytes_transferred = figure("bytes_transferred")?;
        counts.first_upload_at = row.try_get::<Option<i64>, _>("first_upload_at")?.map(time);
        counts.last_upload_at = row.try_get::<Option<i64>, _>("last_upload_at")?.map(time);
        counts.recent_uploads = figure("recent_uploads")?;
        counts.recent_bytes = figure("recent_bytes")?;
    }

    let mut totals = Counts::default();
    let mut per_library = Vec::with_capacity(libraries.len());
    for row in &libraries {
        let id: String = row.try_get("id")?;
        let counts = by_library.remove(&id).unwrap_or_default();
        add(&mut totals, &counts);
        per_library.push(LibraryStats {
            library_id: LibraryId::new(id),
            library_key: row.try_get("library_key")?,
            counts,
        });
    }
    Ok(Stats {
        version: current_version(&mut conn, user_id).await?,
        totals,
        libraries: per_library,
    })
}

fn add(totals: &mut Counts, c: &Counts) {
    totals.photos += c.photos;
    totals.resources += c.resources;
    totals.uploaded += c.uploaded;
    totals.pending += c.pending;
    totals.unavailable += c.unavailable;
    totals.failed += c.failed;
    totals.bytes_total += c.bytes_total;
    totals.bytes_uploaded += c.bytes_uploaded;
    totals.bytes_pending += c.bytes_pending;
    totals.bytes_transferred += c.bytes_transferred;
    totals.recent_uploads += c.recent_uploads;
    totals.recent_bytes += c.recent_bytes;
    totals.first_upload_at = match (totals.first_upload_at, c.first_upload_at) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    };
    totals.last_upload_at = totals.last_upload_at.max(c.last_upload_at);
}
