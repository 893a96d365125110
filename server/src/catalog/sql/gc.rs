//! What the garbage collector (`crate::gc`) asks of the catalog: its lease, which keys are referenced, and
//! releasing unreferenced blobs in a transaction serialised with the user's uploads.
//!
//! Referenced (never collected): every resource's `stored_key` (live photos and tombstones alike), every
//! enrichment result's `key` (thumbnails and other derivatives) and `preview.key` (a thumbnail job's
//! preview) and, once the history table exists, every
//! retained version's `stored_key`. A blob row is not a reference: it is the dedup index, and a blob row
//! whose key nothing else names goes with its object.
//!
//! Why a lock for the release: a dedup link (an upload finding the user's blob for its SHA-256) reads the
//! blob row and then, in `record_upload`, writes a reference to its key. Had the collector deleted that row
//! and its object in between, the reference would name a deleted object. So the release takes the user's
//! write lock (`pg_advisory_xact_lock` on PostgreSQL, taken by `record_upload` too; on SQLite every write
//! transaction is `BEGIN IMMEDIATE` already), re-checks the references under it, and deletes the blob rows;
//! `record_upload` of a link checks under the same lock that its blob row still exists.

use std::collections::HashSet;

use chrono::{DateTime, Utc};
use futures::TryStreamExt as _;

use super::{Adapter, CHUNK, Conn, Driver as _, ms, placeholders};
use crate::catalog::{Result, UserId};

/// The references held by retained history rows (`icloud.resource_history`, migration 0008): an object
/// superseded at time S stays referenced until the purge removes its row, S + `--trash-days`.
pub(crate) const HISTORY_REFERENCES: &str = "UNION SELECT h.stored_key AS k FROM icloud.resource_history h \
     WHERE h.user_id = $1 AND h.stored_key IS NOT NULL";

/// Every key user `$1`'s catalog references, as rows of one column `k` (NULLs possible).
fn references() -> String {
    format!(
        "SELECT r.stored_key AS k FROM icloud.resources r WHERE r.user_id = $1 AND r.stored_key IS NOT NULL \
         UNION SELECT {} AS k FROM icloud.enrichments e WHERE e.user_id = $1 \
         UNION SELECT {} AS k FROM icloud.enrichments e WHERE e.user_id = $1 \
         {HISTORY_REFERENCES}",
        Adapter::RESULT_KEY,
        Adapter::RESULT_PREVIEW_KEY
    )
}

/// Takes the user's write lock for the rest of the transaction: the collector's release and
/// `record_upload` of the same user never interleave. Nothing to do on SQLite, whose write transactions
/// (`BEGIN IMMEDIATE`) are serialised anyway.
pub(super) async fn lock_user_writes(conn: &mut Conn, user_id: &UserId) -> Result<()> {
    let lock = Adapter::USER_WRITE_LOCK;
    if !lock.is_empty() {
        sqlx::query(lock)
            .bind(format!("iphoto-user-writes:{user_id}"))
            .execute(&mut *conn)
            .await?;
    }
    Ok(())
}

pub(super) async fn take_lease(
    catalog: &Adapter,
    name: &str,
    holder: &str,
    now: DateTime<Utc>,
    until: DateTime<Utc>,
) -> Result<bool> {
    let mut tx = catalog.begin_write().await?;
    let taken: Option<String> = sqlx::query_scalar(
        "INSERT INTO icloud.gc_leases AS l (name, holder, expires_at) VALUES ($1, $2, $3) \
         ON CONFLICT (name) DO UPDATE SET holder = excluded.holder, expires_at = excluded.expires_at \
         WHERE l.holder = excluded.holder OR l.expires_at <= $4 \
         RETURNING holder",
    )
    .bind(name)
    .bind(holder)
    .bind(ms(until))
    .bind(ms(now))
    .fetch_optional(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(taken.is_some())
}

pub(super) async fn release_lease(catalog: &Adapter, name: &str, holder: &str) -> Result<()> {
    let mut tx = catalog.begin_write().await?;
    sqlx::query("UPDATE icloud.gc_leases SET expires_at = 0 WHERE name = $1 AND holder = $2")
        .bind(name)
        .bind(holder)
        .execute(&mut *tx)
        .await?;
    tx.commit().await?;
    Ok(())
}

pub(super) async fn users(catalog: &Adapter) -> Result<Vec<UserId>> {
    let ids: Vec<String> = sqlx::query_scalar("SELECT id FROM users ORDER BY created_at, id")
        .fetch_all(catalog.pool())
        .await?;
    Ok(ids.into_iter().map(UserId::new).collect())
}

pub(super) async fn referenced_keys(catalog: &Adapter, user_id: &UserId) -> Result<HashSet<String>> {
    let sql = format!("SELECT k FROM ({}) refs WHERE k IS NOT NULL", references());
    let mut rows = sqlx::query_scalar::<_, String>(sqlx::AssertSqlSafe(sql))
        .bind(user_id.as_str())
        .fetch(catalog.pool());
    let mut keys = HashSet::new();
    while let Some(key) = rows.try_next().await? {
        keys.insert(key);
    }
    Ok(keys)
}

pub(super) async fn referenced_among(
    conn: &mut Conn,
    user_id: &UserId,
    keys: &[String],
) -> Result<HashSet<String>> {
    let mut referenced = HashSet::new();
    for chunk in keys.chunks(CHUNK) {
        let sql = format!(
            "SELECT k FROM ({}) refs WHERE k IN ({})",
            references(),
            placeholders(2, chunk.len())
        );
        let mut query = sqlx::query_scalar::<_, String>(sqlx::AssertSqlSafe(sql)).bind(user_id.as_str());
        for key in chunk {
            query = query.bind(key);
        }
        referenced.extend(query.fetch_all(&mut *conn).await?);
    }
    Ok(referenced)
}

pub(super) async fn recorded_among(
    catalog: &Adapter,
    user_id: &UserId,
    keys: &[String],
) -> Result<HashSet<String>> {
    let mut recorded = HashSet::new();
    for chunk in keys.chunks(CHUNK) {
        let sql = format!(
            "SELECT storage_key FROM icloud.blobs WHERE user_id = $1 AND storage_key IN ({})",
            placeholders(2, chunk.len())
        );
        let mut query = sqlx::query_scalar::<_, String>(sqlx::AssertSqlSafe(sql)).bind(user_id.as_str());
        for key in chunk {
            query = query.bind(key);
        }
        recorded.extend(query.fetch_all(catalog.pool()).await?);
    }
    Ok(recorded)
}

pub(super) async fn release_unreferenced(
    catalog: &Adapter,
    user_id: &UserId,
    keys: &[String],
) -> Result<Vec<String>> {
    let mut tx = catalog.begin_write().await?;
    lock_user_writes(&mut tx, user_id).await?;
    let referenced = referenced_among(&mut tx, user_id, keys).await?;
    let free: Vec<String> = keys
        .iter()
        .filter(|k| !referenced.contains(*k))
        .cloned()
        .collect();
    for chunk in free.chunks(CHUNK) {
        let sql = format!(
            "DELETE FROM icloud.blobs WHERE user_id = $1 AND storage_key IN ({})",
            placeholders(2, chunk.len())
        );
        let mut query = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(user_id.as_str());
        for key in chunk {
            query = query.bind(key);
        }
        query.execute(&mut *tx).await?;
    }
    tx.commit().await?;
    Ok(free)
}
