//! Resumable upload rows (`icloud.resumable_uploads`, migration 0011): created by an upload creation, held by
//! one append at a time (a conditional update, so two replicas never both write one upload), checkpointed as
//! parts land, and removed by cancellation or by the collector once idle past the max-age.

use chrono::{DateTime, Utc};
use sqlx::Row as _;

use super::{Adapter, Driver as _, ms, time, to_i64, to_u64};
use crate::catalog::{
    Error, LibraryId, PhotoId, ResourceType, Result, ResumableSave, ResumableUpload, UserId,
};

const COLUMNS: &str = "id, user_id, library_id, photo_id, local_identifier, resource, target_key, staging_key, expected_sha256, \
     upload_length, upload_offset, progress, answer, created_at, updated_at";

fn from_row(row: &<super::Db as sqlx::Database>::Row) -> Result<ResumableUpload> {
    let resource: String = row.try_get("resource")?;
    Ok(ResumableUpload {
        id: row.try_get("id")?,
        user_id: UserId::new(row.try_get::<String, _>("user_id")?),
        library_id: LibraryId::new(row.try_get::<String, _>("library_id")?),
        photo_id: PhotoId::new(row.try_get::<String, _>("photo_id")?),
        local_identifier: row.try_get("local_identifier")?,
        resource: ResourceType::parse(&resource)
            .ok_or_else(|| Error::invalid("resource", format!("unknown resource type {resource:?}")))?,
        target_key: row.try_get("target_key")?,
        staging_key: row.try_get("staging_key")?,
        expected_sha256: row.try_get("expected_sha256")?,
        length: row.try_get::<Option<i64>, _>("upload_length")?.map(to_u64),
        offset: to_u64(row.try_get("upload_offset")?),
        progress: row.try_get("progress")?,
        answer: row.try_get("answer")?,
        created_at: time(row.try_get("created_at")?),
        updated_at: time(row.try_get("updated_at")?),
    })
}

pub(super) async fn insert(catalog: &Adapter, upload: &ResumableUpload) -> Result<()> {
    let mut tx = catalog.begin_write().await?;
    sqlx::query(
        "INSERT INTO icloud.resumable_uploads (id, user_id, library_id, photo_id, local_identifier, resource, \
         target_key, staging_key, expected_sha256, upload_length, upload_offset, progress, answer, created_at, \
         updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15)",
    )
    .bind(&upload.id)
    .bind(upload.user_id.as_str())
    .bind(upload.library_id.as_str())
    .bind(upload.photo_id.as_str())
    .bind(&upload.local_identifier)
    .bind(upload.resource.as_str())
    .bind(&upload.target_key)
    .bind(&upload.staging_key)
    .bind(&upload.expected_sha256)
    .bind(upload.length.map(|l| to_i64("uploadLength", l)).transpose()?)
    .bind(to_i64("uploadOffset", upload.offset)?)
    .bind(&upload.progress)
    .bind(&upload.answer)
    .bind(ms(upload.created_at))
    .bind(ms(upload.updated_at))
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(())
}

pub(super) async fn get(catalog: &Adapter, user_id: &UserId, id: &str) -> Result<Option<ResumableUpload>> {
    let row = sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM icloud.resumable_uploads WHERE id = $1 AND user_id = $2"
    )))
    .bind(id)
    .bind(user_id.as_str())
    .fetch_optional(catalog.pool())
    .await?;
    row.as_ref().map(from_row).transpose()
}

pub(super) async fn hold(
    catalog: &Adapter,
    user_id: &UserId,
    id: &str,
    holder: &str,
    now: DateTime<Utc>,
    until: DateTime<Utc>,
) -> Result<Option<ResumableUpload>> {
    let mut tx = catalog.begin_write().await?;
    let row = sqlx::query(sqlx::AssertSqlSafe(format!(
        "UPDATE icloud.resumable_uploads SET holder = $3, held_until = $4 \
         WHERE id = $1 AND user_id = $2 AND (holder IS NULL OR holder = $3 OR held_until <= $5) \
         RETURNING {COLUMNS}"
    )))
    .bind(id)
    .bind(user_id.as_str())
    .bind(holder)
    .bind(ms(until))
    .bind(ms(now))
    .fetch_optional(&mut *tx)
    .await?;
    tx.commit().await?;
    row.as_ref().map(from_row).transpose()
}

pub(super) async fn save(catalog: &Adapter, save: &ResumableSave<'_>) -> Result<bool> {
    let mut tx = catalog.begin_write().await?;
    let done = sqlx::query(
        "UPDATE icloud.resumable_uploads SET upload_offset = $3, progress = $4, \
         upload_length = COALESCE($5, upload_length), answer = COALESCE($6, answer), updated_at = $7, \
         holder = CASE WHEN $8 > 0 THEN holder ELSE NULL END, held_until = $8 \
         WHERE id = $1 AND holder = $2",
    )
    .bind(save.id)
    .bind(save.holder)
    .bind(to_i64("uploadOffset", save.offset)?)
    .bind(save.progress)
    .bind(save.length.map(|l| to_i64("uploadLength", l)).transpose()?)
    .bind(save.answer)
    .bind(ms(save.at))
    .bind(save.hold_until.map_or(0, ms))
    .execute(&mut *tx)
    .await?
    .rows_affected();
    tx.commit().await?;
    Ok(done == 1)
}

pub(super) async fn release(catalog: &Adapter, id: &str, holder: &str) -> Result<()> {
    let mut tx = catalog.begin_write().await?;
    sqlx::query(
        "UPDATE icloud.resumable_uploads SET holder = NULL, held_until = 0 WHERE id = $1 AND holder = $2",
    )
    .bind(id)
    .bind(holder)
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(())
}

pub(super) async fn delete(catalog: &Adapter, id: &str) -> Result<()> {
    let mut tx = catalog.begin_write().await?;
    sqlx::query("DELETE FROM icloud.resumable_uploads WHERE id = $1")
        .bind(id)
        .execute(&mut *tx)
        .await?;
    tx.commit().await?;
    Ok(())
}

pub(super) async fn idle(
    catalog: &Adapter,
    before: DateTime<Utc>,
    now: DateTime<Utc>,
    limit: u32,
) -> Result<Vec<ResumableUpload>> {
    let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM icloud.resumable_uploads WHERE updated_at < $1 AND held_until <= $2 \
         ORDER BY updated_at LIMIT $3"
    )))
    .bind(ms(before))
    .bind(ms(now))
    .bind(i64::from(limit))
    .fetch_all(catalog.pool())
    .await?;
    rows.iter().map(from_row).collect()
}
