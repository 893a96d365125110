//! Enrichment jobs: queued when an original is stored, leased atomically, completed or failed.
//!
//! A lease is one `UPDATE … WHERE id IN (SELECT … LIMIT n)` in a write transaction. On PostgreSQL the inner
//! select takes `FOR UPDATE SKIP LOCKED`, so concurrent workers (on any number of server replicas) take
//! disjoint sets of jobs without waiting on each other; on SQLite the transaction starts with `BEGIN
//! IMMEDIATE`, which serialises writers, so two leases never see the same queued row either.

use chrono::Utc;
use sqlx::Row as _;

use super::{Adapter, CHUNK, Conn, Driver as _, ms, new_id, placeholders, time, to_u64};
use crate::catalog::{
    Error, JobInfo, JobQueue, JobState, JobStatus, LeaseRequest, LibraryId, PhotoId, Result, StoredRef,
    UserId,
};

/// The columns a job is queued with, in the order both ways of queueing jobs list their values.
pub(crate) const QUEUE_COLUMNS: &str = "id, user_id, photo_id, kind, sha256, state, attempts, failures, \
     last_error, available_at, lease_expires_at, created_at, updated_at";

/// The `ON CONFLICT` clause of queueing into `icloud.jobs AS j` (both ways of queueing jobs use it): a job
/// of an older original is reset to queued; one for the same original is left alone (done stays done).
pub(crate) const REQUEUE: &str = " ON CONFLICT (photo_id, kind) DO UPDATE SET sha256 = excluded.sha256, \
     state = 'queued', attempts = 0, failures = 0, last_error = NULL, \
     available_at = excluded.available_at, lease_expires_at = NULL, created_at = excluded.created_at, \
     updated_at = excluded.updated_at WHERE j.sha256 <> excluded.sha256";

/// Queues a job of every kind for each (photo, original SHA-256): a new job, or a job of an older original
/// reset to queued. A job already queued for the same original is left alone (done stays done). A job's
/// `created_at` is when it was queued for its current original, so the queue's age (`/metrics`) counts from
/// there, not from the first original's.
pub(super) async fn queue_jobs(
    conn: &mut Conn,
    user_id: &UserId,
    photos: &[(String, String)],
    now: i64,
) -> Result<()> {
    let sql = format!(
        "INSERT INTO icloud.jobs AS j ({QUEUE_COLUMNS}) \
         VALUES ($1, $2, $3, $4, $5, 'queued', 0, 0, NULL, $6, NULL, $6, $6){REQUEUE}"
    );
    for (photo_id, sha256) in photos {
        for kind in api::JobKind::ALL {
            sqlx::query(sqlx::AssertSqlSafe(sql.as_str()))
                .bind(new_id())
                .bind(user_id.as_str())
                .bind(photo_id)
                .bind(kind.as_str())
                .bind(sha256)
                .bind(now)
                .execute(&mut *conn)
                .await?;
        }
    }
    Ok(())
}

/// The columns `job_info` reads, over `j` (jobs), `p` (photos) and `r` (the stored original).
const JOB_COLUMNS: &str = "j.id, j.kind, j.state, j.photo_id, j.attempts, j.failures, j.lease_expires_at, \
    j.last_error, p.library_id, p.local_identifier, p.kind AS photo_kind, p.uti, p.deleted_at, \
    r.stored_key, r.stored_size, r.stored_sha256";
const JOB_JOINS: &str = "JOIN icloud.photos p ON p.id = j.photo_id \
    LEFT JOIN icloud.resources r ON r.photo_id = j.photo_id AND r.resource_type = 'original' \
        AND r.state = 'stored'";

pub(super) async fn lease_jobs(
    catalog: &Adapter,
    user_id: &UserId,
    request: &LeaseRequest,
) -> Result<Vec<JobInfo>> {
    let now = ms(Utc::now());
    let until = now.saturating_add(request.lease_ms);
    let mut tx = catalog.begin_write().await?;
    let sql = format!(
        "UPDATE icloud.jobs SET state = 'leased', attempts = attempts + 1, available_at = $1, \
             lease_expires_at = $1, updated_at = $2 \
         WHERE id IN (SELECT id FROM icloud.jobs WHERE user_id = $3 AND kind = $4 \
             AND state IN ('queued', 'leased') AND available_at <= $2 \
             ORDER BY available_at LIMIT $5 {}) \
         RETURNING id",
        Adapter::SKIP_LOCKED
    );
    let ids: Vec<String> = sqlx::query_scalar(sqlx::AssertSqlSafe(sql))
        .bind(until)
        .bind(now)
        .bind(user_id.as_str())
        .bind(request.kind.as_str())
        .bind(i64::from(request.max))
        .fetch_all(&mut *tx)
        .await?;
    let mut jobs = Vec::with_capacity(ids.len());
    for chunk in ids.chunks(CHUNK) {
        let sql = format!(
            "SELECT {JOB_COLUMNS} FROM icloud.jobs j {JOB_JOINS} WHERE j.user_id = $1 AND j.id IN ({}) \
             ORDER BY j.id",
            placeholders(2, chunk.len())
        );
        let mut query = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(user_id.as_str());
        for id in chunk {
            query = query.bind(id);
        }
        for row in query.fetch_all(&mut *tx).await? {
            jobs.push(job_info(&row)?);
        }
    }
    // A job whose photo was deleted or whose original is no longer stored cannot be done: park it.
    let (gone, ready): (Vec<JobInfo>, Vec<JobInfo>) = jobs.into_iter().partition(|j| j.original.is_none());
    for job in gone {
        sqlx::query(
            "UPDATE icloud.jobs SET state = 'parked', last_error = $1, lease_expires_at = NULL, updated_at = $2 \
             WHERE id = $3 AND user_id = $4",
        )
        .bind("original_gone: the photo was deleted or its original is no longer stored")
        .bind(now)
        .bind(&job.id)
        .bind(user_id.as_str())
        .execute(&mut *tx)
        .await?;
    }
    tx.commit().await?;
    Ok(ready)
}

/// Depth and oldest queue time of the unfinished jobs, per kind. The `WHERE` is the `jobs_ready` partial
/// index's predicate: only unfinished jobs are read, never the done ones that make up most of the table.
pub(super) async fn job_queues(catalog: &Adapter) -> Result<Vec<JobQueue>> {
    let rows = sqlx::query(
        "SELECT kind, COUNT(*) AS depth, MIN(created_at) AS oldest FROM icloud.jobs \
         WHERE state IN ('queued', 'leased') GROUP BY kind",
    )
    .fetch_all(&catalog.pool)
    .await?;
    let mut queues: Vec<JobQueue> = api::JobKind::ALL
        .into_iter()
        .map(|kind| JobQueue {
            kind,
            depth: 0,
            oldest_queued_at: None,
        })
        .collect();
    for row in rows {
        let kind: String = row.try_get("kind")?;
        let depth: i64 = row.try_get("depth")?;
        let oldest: Option<i64> = row.try_get("oldest")?;
        if let Some(queue) = queues.iter_mut().find(|queue| queue.kind.as_str() == kind) {
            queue.depth = to_u64(depth);
            queue.oldest_queued_at = oldest.map(time);
        }
    }
    Ok(queues)
}

pub(super) async fn job(catalog: &Adapter, user_id: &UserId, job_id: &str) -> Result<Option<JobInfo>> {
    let sql =
        format!("SELECT {JOB_COLUMNS} FROM icloud.jobs j {JOB_JOINS} WHERE j.user_id = $1 AND j.id = $2");
    let row = sqlx::query(sqlx::AssertSqlSafe(sql))
        .bind(user_id.as_str())
        .bind(job_id)
        .fetch_optional(catalog.pool())
        .await?;
    row.as_ref().map(job_info).transpose()
}

pub(super) async fn complete_job(
    catalog: &Adapter,
    user_id: &UserId,
    job_id: &str,
    result: &serde_json::Value,
) -> Result<JobStatus> {
    let now = ms(Utc::now());
    let mut tx = catalog.begin_write().await?;
    let row = sqlx::query(
        "UPDATE icloud.jobs SET state = 'done', lease_expires_at = NULL, updated_at = $1 \
         WHERE id = $2 AND user_id = $3 AND state <> 'done' RETURNING photo_id, kind, failures",
    )
    .bind(now)
    .bind(job_id)
    .bind(user_id.as_str())
    .fetch_optional(&mut *tx)
    .await?;
    let Some(row) = row else {
        // Done already (a second result changes nothing), or not this user's job.
        drop(tx);
        return status(catalog, user_id, job_id).await;
    };
    let photo_id: String = row.try_get("photo_id")?;
    let kind: String = row.try_get("kind")?;
    let text = serde_json::to_string(result).map_err(|e| Error::invalid("result", e.to_string()))?;
    sqlx::query(
        "INSERT INTO icloud.enrichments (photo_id, user_id, kind, result, created_at, updated_at) \
         VALUES ($1, $2, $3, $4, $5, $5) \
         ON CONFLICT (photo_id, kind) DO UPDATE SET result = excluded.result, updated_at = excluded.updated_at",
    )
    .bind(&photo_id)
    .bind(user_id.as_str())
    .bind(&kind)
    .bind(text)
    .bind(now)
    .execute(&mut *tx)
    .await?;
    let version = super::bump_version(&mut tx, user_id).await?;
    sqlx::query("UPDATE icloud.photos SET version = $1 WHERE id = $2 AND user_id = $3")
        .bind(version)
        .bind(&photo_id)
        .bind(user_id.as_str())
        .execute(&mut *tx)
        .await?;
    tx.commit().await?;
    let failures: i64 = row.try_get("failures")?;
    Ok(JobStatus {
        id: job_id.to_owned(),
        state: JobState::Done,
        failures: u32::try_from(failures).unwrap_or(u32::MAX),
    })
}

pub(super) async fn fail_job(
    catalog: &Adapter,
    user_id: &UserId,
    job_id: &str,
    error: &str,
    max_failures: u32,
    retry_after_ms: i64,
) -> Result<JobStatus> {
    let now = ms(Utc::now());
    let error: String = error.chars().filter(|c| *c != '\0').take(1024).collect();
    let mut tx = catalog.begin_write().await?;
    // Only a leased job's failure counts: a failure reported for a job that is done, parked or queued again
    // (its lease ran out and someone else may hold it) changes nothing.
    let row = sqlx::query(
        "UPDATE icloud.jobs SET failures = failures + 1, last_error = $1, lease_expires_at = NULL, \
             state = CASE WHEN failures + 1 >= $2 THEN 'parked' ELSE 'queued' END, \
             available_at = $3, updated_at = $4 \
         WHERE id = $5 AND user_id = $6 AND state = 'leased' RETURNING state, failures",
    )
    .bind(&error)
    .bind(i64::from(max_failures))
    .bind(now.saturating_add(retry_after_ms))
    .bind(now)
    .bind(job_id)
    .bind(user_id.as_str())
    .fetch_optional(&mut *tx)
    .await?;
    tx.commit().await?;
    match row {
        Some(row) => {
            let state: String = row.try_get("state")?;
            let failures: i64 = row.try_get("failures")?;
            Ok(JobStatus {
                id: job_id.to_owned(),
                state: JobState::parse(&state).unwrap_or(JobState::Queued),
                failures: u32::try_from(failures).unwrap_or(u32::MAX),
            })
        }
        None => status(catalog, user_id, job_id).await,
    }
}

async fn status(catalog: &Adapter, user_id: &UserId, job_id: &str) -> Result<JobStatus> {
    let row = sqlx::query("SELECT state, failures FROM icloud.jobs WHERE id = $1 AND user_id = $2")
        .bind(job_id)
        .bind(user_id.as_str())
        .fetch_optional(catalog.pool())
        .await?
        .ok_or(Error::NotFound { what: "job" })?;
    let state: String = row.try_get("state")?;
    let failures: i64 = row.try_get("failures")?;
    Ok(JobStatus {
        id: job_id.to_owned(),
        state: JobState::parse(&state).unwrap_or(JobState::Queued),
        failures: u32::try_from(failures).unwrap_or(u32::MAX),
    })
}

fn job_info(row: &<super::Db as sqlx::Database>::Row) -> Result<JobInfo> {
    let kind: String = row.try_get("kind")?;
    let state: String = row.try_get("state")?;
    let photo_kind: String = row.try_get("photo_kind")?;
    let deleted_at: Option<i64> = row.try_get("deleted_at")?;
    let key: Option<String> = row.try_get("stored_key")?;
    let sha256: Option<String> = row.try_get("stored_sha256")?;
    let size: Option<i64> = row.try_get("stored_size")?;
    let attempts: i64 = row.try_get("attempts")?;
    let failures: i64 = row.try_get("failures")?;
    let lease: Option<i64> = row.try_get("lease_expires_at")?;
    Ok(JobInfo {
        id: row.try_get("id")?,
        kind: api::JobKind::ALL
            .into_iter()
            .find(|k| k.as_str() == kind)
            .unwrap_or(api::JobKind::Thumbnail),
        state: JobState::parse(&state).unwrap_or(JobState::Queued),
        photo_id: PhotoId::new(row.try_get::<String, _>("photo_id")?),
        library_id: LibraryId::new(row.try_get::<String, _>("library_id")?),
        local_identifier: row.try_get("local_identifier")?,
        photo_kind: if photo_kind == "video" {
            api::AssetKind::Video
        } else {
            api::AssetKind::Photo
        },
        uti: row.try_get("uti")?,
        original: match (deleted_at, sha256, key) {
            (None, Some(sha256), Some(key)) => Some(StoredRef { sha256, key }),
            _ => None,
        },
        size: size.map_or(0, to_u64),
        // The lease just handed out is not counted.
        attempts: u32::try_from(attempts.saturating_sub(1).max(0)).unwrap_or(u32::MAX),
        failures: u32::try_from(failures).unwrap_or(u32::MAX),
        lease_expires_at: lease.map(time),
        last_error: row.try_get("last_error")?,
    })
}
