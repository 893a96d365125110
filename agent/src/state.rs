//! The agent's local state database (`<state-dir>/state.sqlite`): what the last passes sent and learned, so the
//! next pass only sends what changed and a cold start keeps its figures.
//!
//! It remembers, per asset, the hash of the metadata last accepted by the server (and the item itself, so a
//! deletion can be reported with the last known metadata); per resource file, `(path, size, mtime) → sha256`, so
//! an unchanged file is never hashed twice; uploads the server confirmed; per-resource refusals with their
//! reason; and the upload figures (`bytesUploaded`, `uploadRate`, `eta`) plus the last pass's report. It is a
//! cache, never the source of truth for what the server still needs: that is the server's pending list.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use sqlx::Row as _;
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};

use crate::error::{Error, Result};
use crate::sync::PassReport;

/// The state database file name inside the state directory.
pub const FILE_NAME: &str = "state.sqlite";

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS assets (
    local_identifier TEXT PRIMARY KEY,
    metadata_hash TEXT NOT NULL,
    item TEXT NOT NULL,
    deleted INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS files (
    path TEXT PRIMARY KEY,
    size INTEGER NOT NULL,
    mtime_ns INTEGER NOT NULL,
    sha256 TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS uploads (
    local_identifier TEXT NOT NULL,
    resource TEXT NOT NULL,
    sha256 TEXT NOT NULL,
    size INTEGER NOT NULL,
    deduplicated INTEGER NOT NULL,
    at TEXT NOT NULL,
    PRIMARY KEY (local_identifier, resource, sha256)
);
CREATE TABLE IF NOT EXISTS failures (
    local_identifier TEXT NOT NULL,
    resource TEXT NOT NULL,
    reason TEXT NOT NULL,
    at TEXT NOT NULL,
    PRIMARY KEY (local_identifier, resource)
);
";

/// What the state DB remembers about one asset.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SentAsset {
    /// Hash of the metadata the server last accepted.
    pub metadata_hash: String,
    /// That metadata, as JSON.
    pub item: String,
    /// Reported deleted already.
    pub deleted: bool,
}

/// A file's identity as the cache sees it: an unchanged `(size, mtime)` means unchanged bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FileStamp {
    /// Size in bytes.
    pub size: u64,
    /// Modification time, nanoseconds since the Unix epoch.
    pub mtime_ns: i64,
}

/// One refusal recorded for a resource (or `metadata` for a rejected item).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Failure {
    /// The asset.
    pub local_identifier: String,
    /// `original`, `live_video`, `render`, `raw` or `metadata`.
    pub resource: String,
    /// The server's reason.
    pub reason: String,
    /// When (RFC 3339).
    pub at: String,
}

/// Upload figures that survive restarts.
#[derive(Debug, Clone, Copy, Default, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct UploadFigures {
    /// Bytes this agent has sent over the wire, ever (deduplicated uploads count nothing).
    pub bytes_uploaded: u64,
    /// Bytes per second over the last pass that uploaded anything.
    pub upload_rate: f64,
    /// Seconds until the pending bytes are sent at that rate; `None` without a rate.
    pub eta: Option<u64>,
    /// Resources the server still needed at the end of the last pass.
    pub pending_uploads: u64,
    /// Their bytes.
    pub pending_bytes: u64,
}

/// The open state database.
#[derive(Debug, Clone)]
pub struct StateDb {
    pool: SqlitePool,
    path: PathBuf,
}

impl StateDb {
    /// Opens (creating it and its directory when needed) `<dir>/state.sqlite`.
    pub async fn open(dir: &Path) -> Result<StateDb> {
        std::fs::create_dir_all(dir).map_err(|source| Error::Io {
            path: dir.to_path_buf(),
            action: "creating the state directory",
            source,
        })?;
        let path = dir.join(FILE_NAME);
        let options = SqliteConnectOptions::new()
            .filename(&path)
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Normal)
            .busy_timeout(Duration::from_secs(10));
        // One connection: writes from concurrent uploads queue instead of fighting over the lock.
        let pool = SqlitePoolOptions::new()
            .max_connections(1)
            .connect_with(options)
            .await
            .map_err(|source| Error::State {
                path: path.clone(),
                action: "opening",
                source,
            })?;
        let db = StateDb { pool, path };
        sqlx::raw_sql(SCHEMA)
            .execute(&db.pool)
            .await
            .map_err(|e| db.error("creating tables", e))?;
        Ok(db)
    }

    /// Opens the state database only if it exists (for `status`, which must not create one).
    pub async fn open_existing(dir: &Path) -> Result<Option<StateDb>> {
        if !dir.join(FILE_NAME).is_file() {
            return Ok(None);
        }
        Ok(Some(StateDb::open(dir).await?))
    }

    /// The state database file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn error(&self, action: &'static str, source: sqlx::Error) -> Error {
        Error::State {
            path: self.path.clone(),
            action,
            source,
        }
    }

    /// A value of the `meta` table.
    pub async fn meta(&self, key: &str) -> Result<Option<String>> {
        sqlx::query_scalar::<_, String>("SELECT value FROM meta WHERE key = ?")
            .bind(key)
            .fetch_optional(&self.pool)
            .await
            .map_err(|e| self.error("reading meta", e))
    }

    /// Sets a value of the `meta` table.
    pub async fn set_meta(&self, key: &str, value: &str) -> Result<()> {
        sqlx::query("INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT(key) DO UPDATE SET value = excluded.value")
            .bind(key)
            .bind(value)
            .execute(&self.pool)
            .await
            .map_err(|e| self.error("writing meta", e))?;
        Ok(())
    }

    /// Every asset the server has accepted, by local identifier.
    pub async fn sent_assets(&self) -> Result<HashMap<String, SentAsset>> {
        let rows = sqlx::query("SELECT local_identifier, metadata_hash, item, deleted FROM assets")
            .fetch_all(&self.pool)
            .await
            .map_err(|e| self.error("reading assets", e))?;
        rows.iter()
            .map(|row| {
                Ok((
                    row.try_get::<String, _>(0)?,
                    SentAsset {
                        metadata_hash: row.try_get(1)?,
                        item: row.try_get(2)?,
                        deleted: row.try_get::<i64, _>(3)? != 0,
                    },
                ))
            })
            .collect::<Result<_, sqlx::Error>>()
            .map_err(|e| self.error("reading assets", e))
    }

    /// Records metadata the server accepted (one transaction for a whole batch).
    pub async fn record_sent(&self, accepted: &[(String, SentAsset)]) -> Result<()> {
        let mut tx = self
            .pool
            .begin()
            .await
            .map_err(|e| self.error("recording sent metadata", e))?;
        for (local_identifier, sent) in accepted {
            sqlx::query(
                "INSERT INTO assets (local_identifier, metadata_hash, item, deleted) VALUES (?, ?, ?, ?) \
                 ON CONFLICT(local_identifier) DO UPDATE SET metadata_hash = excluded.metadata_hash, \
                 item = excluded.item, deleted = excluded.deleted",
            )
            .bind(local_identifier)
            .bind(&sent.metadata_hash)
            .bind(&sent.item)
            .bind(i64::from(sent.deleted))
            .execute(&mut *tx)
            .await
            .map_err(|e| self.error("recording sent metadata", e))?;
            sqlx::query("DELETE FROM failures WHERE local_identifier = ? AND resource = 'metadata'")
                .bind(local_identifier)
                .execute(&mut *tx)
                .await
                .map_err(|e| self.error("recording sent metadata", e))?;
        }
        tx.commit()
            .await
            .map_err(|e| self.error("recording sent metadata", e))
    }

    /// The whole hash cache, by path.
    pub async fn file_hashes(&self) -> Result<HashMap<String, (FileStamp, String)>> {
        let rows = sqlx::query("SELECT path, size, mtime_ns, sha256 FROM files")
            .fetch_all(&self.pool)
            .await
            .map_err(|e| self.error("reading the hash cache", e))?;
        rows.iter()
            .map(|row| {
                let size: i64 = row.try_get(1)?;
                Ok((
                    row.try_get::<String, _>(0)?,
                    (
                        FileStamp {
                            size: u64::try_from(size).unwrap_or(0),
                            mtime_ns: row.try_get(2)?,
                        },
                        row.try_get::<String, _>(3)?,
                    ),
                ))
            })
            .collect::<Result<_, sqlx::Error>>()
            .map_err(|e| self.error("reading the hash cache", e))
    }

    /// Caches a file's digest under its path and stamp.
    pub async fn record_hash(&self, path: &str, stamp: FileStamp, sha256: &str) -> Result<()> {
        sqlx::query(
            "INSERT INTO files (path, size, mtime_ns, sha256) VALUES (?, ?, ?, ?) ON CONFLICT(path) DO UPDATE \
             SET size = excluded.size, mtime_ns = excluded.mtime_ns, sha256 = excluded.sha256",
        )
        .bind(path)
        .bind(i64::try_from(stamp.size).unwrap_or(i64::MAX))
        .bind(stamp.mtime_ns)
        .bind(sha256)
        .execute(&self.pool)
        .await
        .map_err(|e| self.error("caching a digest", e))?;
        Ok(())
    }

    /// Records an upload the server confirmed, adds its bytes to the lifetime total (unless deduplicated) and
    /// clears an earlier refusal of the resource; one transaction, so a kill never counts bytes twice.
    pub async fn record_upload(&self, answer: &api::UploadAnswer, sent_bytes: u64) -> Result<()> {
        let action = "recording an upload";
        let mut tx = self.pool.begin().await.map_err(|e| self.error(action, e))?;
        sqlx::query(
            "INSERT OR REPLACE INTO uploads (local_identifier, resource, sha256, size, deduplicated, at) \
             VALUES (?, ?, ?, ?, ?, ?)",
        )
        .bind(&answer.local_identifier)
        .bind(answer.resource.as_str())
        .bind(&answer.sha256)
        .bind(i64::try_from(answer.size).unwrap_or(i64::MAX))
        .bind(i64::from(answer.deduplicated))
        .bind(chrono::Utc::now().to_rfc3339())
        .execute(&mut *tx)
        .await
        .map_err(|e| self.error(action, e))?;
        sqlx::query(
            "INSERT INTO meta (key, value) VALUES ('bytes_uploaded', ?) ON CONFLICT(key) DO UPDATE \
             SET value = CAST(CAST(value AS INTEGER) + CAST(excluded.value AS INTEGER) AS TEXT)",
        )
        .bind(sent_bytes.to_string())
        .execute(&mut *tx)
        .await
        .map_err(|e| self.error(action, e))?;
        sqlx::query("DELETE FROM failures WHERE local_identifier = ? AND resource = ?")
            .bind(&answer.local_identifier)
            .bind(answer.resource.as_str())
            .execute(&mut *tx)
            .await
            .map_err(|e| self.error(action, e))?;
        tx.commit().await.map_err(|e| self.error(action, e))
    }

    /// How many uploads the server has confirmed to this agent, ever.
    pub async fn upload_count(&self) -> Result<u64> {
        let n: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM uploads")
            .fetch_one(&self.pool)
            .await
            .map_err(|e| self.error("counting uploads", e))?;
        Ok(u64::try_from(n).unwrap_or(0))
    }

    /// Records a refusal of one resource (or of an item's metadata, as resource `metadata`).
    pub async fn record_failure(&self, local_identifier: &str, resource: &str, reason: &str) -> Result<()> {
        sqlx::query(
            "INSERT OR REPLACE INTO failures (local_identifier, resource, reason, at) VALUES (?, ?, ?, ?)",
        )
        .bind(local_identifier)
        .bind(resource)
        .bind(reason)
        .bind(chrono::Utc::now().to_rfc3339())
        .execute(&self.pool)
        .await
        .map_err(|e| self.error("recording a failure", e))?;
        Ok(())
    }

    /// Every recorded refusal.
    pub async fn failures(&self) -> Result<Vec<Failure>> {
        let rows = sqlx::query(
            "SELECT local_identifier, resource, reason, at FROM failures ORDER BY local_identifier, resource",
        )
        .fetch_all(&self.pool)
        .await
        .map_err(|e| self.error("reading failures", e))?;
        rows.iter()
            .map(|row| {
                Ok(Failure {
                    local_identifier: row.try_get(0)?,
                    resource: row.try_get(1)?,
                    reason: row.try_get(2)?,
                    at: row.try_get(3)?,
                })
            })
            .collect::<Result<_, sqlx::Error>>()
            .map_err(|e| self.error("reading failures", e))
    }

    /// The persisted upload figures.
    pub async fn figures(&self) -> Result<UploadFigures> {
        let number = |value: Option<String>| value.and_then(|v| v.parse::<u64>().ok());
        Ok(UploadFigures {
            bytes_uploaded: number(self.meta("bytes_uploaded").await?).unwrap_or(0),
            upload_rate: self
                .meta("upload_rate")
                .await?
                .and_then(|v| v.parse::<f64>().ok())
                .unwrap_or(0.0),
            eta: number(self.meta("eta").await?),
            pending_uploads: number(self.meta("pending_uploads").await?).unwrap_or(0),
            pending_bytes: number(self.meta("pending_bytes").await?).unwrap_or(0),
        })
    }

    /// Persists the rate, ETA and pending figures (`bytesUploaded` moves with each upload instead).
    pub async fn set_figures(&self, figures: &UploadFigures) -> Result<()> {
        self.set_meta("upload_rate", &figures.upload_rate.to_string())
            .await?;
        match figures.eta {
            Some(eta) => self.set_meta("eta", &eta.to_string()).await?,
            None => {
                sqlx::query("DELETE FROM meta WHERE key = 'eta'")
                    .execute(&self.pool)
                    .await
                    .map_err(|e| self.error("writing meta", e))?;
            }
        }
        self.set_meta("pending_uploads", &figures.pending_uploads.to_string())
            .await?;
        self.set_meta("pending_bytes", &figures.pending_bytes.to_string())
            .await
    }

    /// The report of the last pass that finished (or stopped on an error).
    pub async fn last_pass(&self) -> Result<Option<PassReport>> {
        Ok(self
            .meta("last_pass")
            .await?
            .and_then(|json| serde_json::from_str(&json).ok()))
    }

    /// Stores a pass's report.
    pub async fn set_last_pass(&self, report: &PassReport) -> Result<()> {
        let json = serde_json::to_string(report).map_err(|e| Error::Config {
            name: "state",
            reason: format!("report not serialisable: {e}"),
        })?;
        self.set_meta("last_pass", &json).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn figures_and_uploads_survive_a_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let db = StateDb::open(dir.path()).await.unwrap();
        let answer = api::UploadAnswer {
            local_identifier: "A/L0/001".into(),
            resource: api::ResourceType::Original,
            sha256: "ab".repeat(32),
            size: 10,
            key: "k".into(),
            deduplicated: false,
        };
        db.record_upload(&answer, 10).await.unwrap();
        db.record_upload(&answer, 5).await.unwrap();
        db.set_figures(&UploadFigures {
            upload_rate: 2.5,
            eta: Some(7),
            pending_uploads: 1,
            pending_bytes: 3,
            ..Default::default()
        })
        .await
        .unwrap();
        drop(db);
        let db = StateDb::open(dir.path()).await.unwrap();
        let figures = db.figures().await.unwrap();
        assert_eq!(figures.bytes_uploaded, 15);
        assert_eq!(figures.upload_rate, 2.5);
        assert_eq!(figures.eta, Some(7));
        assert_eq!(db.upload_count().await.unwrap(), 1);
    }
}
