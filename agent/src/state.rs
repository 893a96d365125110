//! The agent's local state database (`<state-dir>/state.sqlite`): what the last passes sent and learned, so the
//! next pass only sends what changed and a cold start keeps its figures.
//!
//! It remembers, per asset, the hash of the metadata last accepted by the server (and the item itself, so a
//! deletion can be reported with the last known metadata); per resource file, `(path, size, mtime) → sha256`, so
//! an unchanged file is never hashed twice; uploads the server confirmed; per-resource failures with their
//! status (unreadable here, refused by the server, rejected metadata) and reason (an unreadable file keeps the
//! OS error); the digest of the whole library the server last accepted (`meta.library_digest`, see
//! `sync::prepare`); and the upload figures (`bytesUploaded`, `uploadRate`, `eta`) plus the last pass's report.
//! It is a cache, never the source of truth for what the server still needs: that is the server's pending list.
//!
//! SQLite calls block, so each method runs its statements on a blocking thread (`spawn_blocking`), bulk reads
//! in one query and bulk writes in one transaction.

mod failures;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use rusqlite::{Connection, OptionalExtension as _, params};

use crate::error::{Error, Result};
use crate::sync::PassReport;

pub use crate::library::FileStamp;
pub use failures::{Failure, FailureStatus};

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
CREATE TABLE IF NOT EXISTS resumable (
    local_identifier TEXT NOT NULL,
    resource TEXT NOT NULL,
    sha256 TEXT NOT NULL,
    url TEXT NOT NULL,
    PRIMARY KEY (local_identifier, resource)
);
CREATE TABLE IF NOT EXISTS failures (
    local_identifier TEXT NOT NULL,
    resource TEXT NOT NULL,
    reason TEXT NOT NULL,
    at TEXT NOT NULL,
    status TEXT NOT NULL DEFAULT 'refused',
    PRIMARY KEY (local_identifier, resource)
);
";

/// State DBs written before failures had a status: add it, and mark the metadata rows as rejections.
const ADD_FAILURE_STATUS: &str = "
ALTER TABLE failures ADD COLUMN status TEXT NOT NULL DEFAULT 'refused';
UPDATE failures SET status = 'rejected' WHERE resource = 'metadata';
";

/// What the state DB remembers about one asset it sent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SentAsset {
    /// Hash of the metadata the server last accepted.
    pub metadata_hash: String,
    /// That metadata, as JSON.
    pub item: String,
    /// Reported deleted already.
    pub deleted: bool,
}

/// The part of [`SentAsset`] a diff compares, without the item itself (read only for deletions).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SentDigest {
    /// Hash of the metadata the server last accepted.
    pub metadata_hash: String,
    /// Reported deleted already.
    pub deleted: bool,
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
    /// Bytes a resumed upload did not send again because the server had kept them, ever.
    #[serde(default)]
    pub bytes_resumed: u64,
    /// Bytes sent in appends the server did not keep (cut off in flight), ever.
    #[serde(default)]
    pub bytes_resent: u64,
}

/// The open state database. Clones share one connection.
#[derive(Debug, Clone)]
pub struct StateDb {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    /// One connection: writes from concurrent uploads queue instead of fighting over the lock. Used on blocking
    /// threads only (SQLite calls block).
    connection: Mutex<Connection>,
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
        let opened = {
            let path = path.clone();
            tokio::task::spawn_blocking(move || -> rusqlite::Result<Connection> {
                let connection = Connection::open(&path)?;
                connection.busy_timeout(Duration::from_secs(10))?;
                // WAL with NORMAL sync: a commit is durable against a crash of the agent (what matters for "killed
                // at any point"), and costs no fsync; a power cut may lose the last commits, which the server's
                // pending list and the next diff make good.
                connection.pragma_update(None, "journal_mode", "WAL")?;
                connection.pragma_update(None, "synchronous", "NORMAL")?;
                connection.execute_batch(SCHEMA)?;
                let has_status: bool = connection.query_row(
                    "SELECT count(*) > 0 FROM pragma_table_info('failures') WHERE name = 'status'",
                    [],
                    |row| row.get(0),
                )?;
                if !has_status {
                    connection.execute_batch(ADD_FAILURE_STATUS)?;
                }
                Ok(connection)
            })
            .await
        };
        let connection = match opened {
            Ok(Ok(connection)) => connection,
            Ok(Err(source)) => {
                return Err(Error::State {
                    path,
                    action: "opening",
                    source,
                });
            }
            Err(join) => return Err(join_error(&path, join)),
        };
        Ok(StateDb {
            inner: Arc::new(Inner {
                connection: Mutex::new(connection),
                path,
            }),
        })
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
        &self.inner.path
    }

    /// Runs `work` with the connection on a blocking thread; its error is reported as `action` failing.
    async fn with<T, F>(&self, action: &'static str, work: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&mut Connection) -> rusqlite::Result<T> + Send + 'static,
    {
        let inner = Arc::clone(&self.inner);
        let joined = tokio::task::spawn_blocking(move || {
            // A panic inside an earlier closure rolled its transaction back (rusqlite does on drop): go on.
            let mut connection = inner.connection.lock().unwrap_or_else(PoisonError::into_inner);
            work(&mut connection)
        })
        .await;
        match joined {
            Ok(result) => result.map_err(|source| Error::State {
                path: self.inner.path.clone(),
                action,
                source,
            }),
            Err(join) => Err(join_error(&self.inner.path, join)),
        }
    }

    /// A value of the `meta` table.
    pub async fn meta(&self, key: &str) -> Result<Option<String>> {
        let key = key.to_owned();
        self.with("reading meta", move |db| {
            db.prepare_cached("SELECT value FROM meta WHERE key = ?1")?
                .query_row([key], |row| row.get(0))
                .optional()
        })
        .await
    }

    /// Sets a value of the `meta` table.
    pub async fn set_meta(&self, key: &str, value: &str) -> Result<()> {
        let (key, value) = (key.to_owned(), value.to_owned());
        self.with("writing meta", move |db| set_meta(db, &key, &value))
            .await
    }

    /// Removes a value of the `meta` table.
    pub async fn delete_meta(&self, key: &str) -> Result<()> {
        let key = key.to_owned();
        self.with("writing meta", move |db| {
            db.prepare_cached("DELETE FROM meta WHERE key = ?1")?
                .execute([key])
                .map(drop)
        })
        .await
    }

    /// Every asset the server has accepted, by local identifier: what a diff compares (not the items).
    pub async fn sent_digests(&self) -> Result<HashMap<String, SentDigest>> {
        self.with("reading assets", |db| {
            let mut statement = db.prepare("SELECT local_identifier, metadata_hash, deleted FROM assets")?;
            let mut rows = statement.query([])?;
            let mut sent = HashMap::new();
            while let Some(row) = rows.next()? {
                sent.insert(
                    row.get::<_, String>(0)?,
                    SentDigest {
                        metadata_hash: row.get(1)?,
                        deleted: row.get::<_, i64>(2)? != 0,
                    },
                );
            }
            Ok(sent)
        })
        .await
    }

    /// The last accepted item (JSON) of each of `local_identifiers` that has one (for reporting deletions).
    pub async fn sent_items(&self, local_identifiers: Vec<String>) -> Result<HashMap<String, String>> {
        self.with("reading assets", move |db| {
            let mut statement = db.prepare_cached("SELECT item FROM assets WHERE local_identifier = ?1")?;
            let mut items = HashMap::new();
            for id in local_identifiers {
                if let Some(item) = statement.query_row([&id], |row| row.get(0)).optional()? {
                    items.insert(id, item);
                }
            }
            Ok(items)
        })
        .await
    }

    /// Records metadata the server accepted (one transaction for a whole batch).
    pub async fn record_sent(&self, accepted: Vec<(String, SentAsset)>) -> Result<()> {
        self.with("recording sent metadata", move |db| {
            let tx = db.transaction()?;
            {
                let mut upsert = tx.prepare_cached(
                    "INSERT INTO assets (local_identifier, metadata_hash, item, deleted) VALUES (?1, ?2, ?3, ?4) \
                     ON CONFLICT(local_identifier) DO UPDATE SET metadata_hash = excluded.metadata_hash, \
                     item = excluded.item, deleted = excluded.deleted",
                )?;
                let mut clear =
                    tx.prepare_cached("DELETE FROM failures WHERE local_identifier = ?1 AND resource = 'metadata'")?;
                for (local_identifier, sent) in &accepted {
                    upsert.execute(params![
                        local_identifier,
                        sent.metadata_hash,
                        sent.item,
                        i64::from(sent.deleted)
                    ])?;
                    clear.execute([local_identifier])?;
                }
            }
            tx.commit()
        })
        .await
    }

    /// The whole hash cache, by path.
    pub async fn file_hashes(&self) -> Result<HashMap<String, (FileStamp, String)>> {
        self.with("reading the hash cache", |db| {
            let mut statement = db.prepare("SELECT path, size, mtime_ns, sha256 FROM files")?;
            let mut rows = statement.query([])?;
            let mut cache = HashMap::new();
            while let Some(row) = rows.next()? {
                let stamp = FileStamp {
                    size: u64::try_from(row.get::<_, i64>(1)?).unwrap_or(0),
                    mtime_ns: row.get(2)?,
                };
                cache.insert(row.get::<_, String>(0)?, (stamp, row.get::<_, String>(3)?));
            }
            Ok(cache)
        })
        .await
    }

    /// Caches files' digests under their paths and stamps, in one transaction.
    pub async fn record_hashes(&self, entries: Vec<(String, FileStamp, String)>) -> Result<()> {
        self.with("caching digests", move |db| {
            let tx = db.transaction()?;
            {
                let mut upsert = tx.prepare_cached(
                    "INSERT INTO files (path, size, mtime_ns, sha256) VALUES (?1, ?2, ?3, ?4) ON CONFLICT(path) \
                     DO UPDATE SET size = excluded.size, mtime_ns = excluded.mtime_ns, sha256 = excluded.sha256",
                )?;
                for (path, stamp, sha256) in &entries {
                    upsert.execute(params![
                        path,
                        i64::try_from(stamp.size).unwrap_or(i64::MAX),
                        stamp.mtime_ns,
                        sha256
                    ])?;
                }
            }
            tx.commit()
        })
        .await
    }

    /// Records an upload the server confirmed, adds its bytes to the lifetime total (unless deduplicated) and
    /// clears an earlier refusal of the resource; one transaction, so a kill never counts bytes twice.
    pub async fn record_upload(&self, answer: &api::UploadAnswer, sent_bytes: u64) -> Result<()> {
        let answer = answer.clone();
        self.with("recording an upload", move |db| {
            let tx = db.transaction()?;
            tx.prepare_cached(
                "INSERT OR REPLACE INTO uploads (local_identifier, resource, sha256, size, deduplicated, at) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            )?
            .execute(params![
                answer.local_identifier,
                answer.resource.as_str(),
                answer.sha256,
                i64::try_from(answer.size).unwrap_or(i64::MAX),
                i64::from(answer.deduplicated),
                chrono::Utc::now().to_rfc3339()
            ])?;
            tx.prepare_cached(
                "INSERT INTO meta (key, value) VALUES ('bytes_uploaded', ?1) ON CONFLICT(key) DO UPDATE \
                 SET value = CAST(CAST(value AS INTEGER) + CAST(excluded.value AS INTEGER) AS TEXT)",
            )?
            .execute([sent_bytes.to_string()])?;
            tx.prepare_cached("DELETE FROM failures WHERE local_identifier = ?1 AND resource = ?2")?
                .execute([answer.local_identifier.as_str(), answer.resource.as_str()])?;
            tx.commit()
        })
        .await
    }

    /// The URL of the resumable upload of this resource's bytes `sha256`, if one was started.
    pub async fn resumable_url(
        &self,
        local_identifier: &str,
        resource: &str,
        sha256: &str,
    ) -> Result<Option<String>> {
        let (id, resource, sha256) = (
            local_identifier.to_owned(),
            resource.to_owned(),
            sha256.to_owned(),
        );
        self.with("reading a resumable upload", move |db| {
            db.query_row(
                "SELECT url FROM resumable WHERE local_identifier = ?1 AND resource = ?2 AND sha256 = ?3",
                [&id, &resource, &sha256],
                |row| row.get(0),
            )
            .optional()
        })
        .await
    }

    /// Keeps the URL of a resumable upload, so a restarted agent resumes it (one per resource: newer bytes
    /// replace an older upload's URL).
    pub async fn set_resumable_url(
        &self,
        local_identifier: &str,
        resource: &str,
        sha256: &str,
        url: &str,
    ) -> Result<()> {
        let values = [local_identifier, resource, sha256, url].map(str::to_owned);
        self.with("keeping a resumable upload", move |db| {
            db.execute(
                "INSERT OR REPLACE INTO resumable (local_identifier, resource, sha256, url) VALUES (?1, ?2, ?3, ?4)",
                params![values[0], values[1], values[2], values[3]],
            )
            .map(|_| ())
        })
        .await
    }

    /// Forgets a resource's resumable upload (done, or unknown to the server).
    pub async fn forget_resumable_url(&self, local_identifier: &str, resource: &str) -> Result<()> {
        let (id, resource) = (local_identifier.to_owned(), resource.to_owned());
        self.with("forgetting a resumable upload", move |db| {
            db.execute(
                "DELETE FROM resumable WHERE local_identifier = ?1 AND resource = ?2",
                [&id, &resource],
            )
            .map(|_| ())
        })
        .await
    }

    /// Adds to the resumption figures: bytes not sent again thanks to a resume, bytes sent again.
    pub async fn add_resumption(&self, resumed: u64, resent: u64) -> Result<()> {
        self.with("recording resumption figures", move |db| {
            let tx = db.transaction()?;
            for (key, value) in [("bytes_resumed", resumed), ("bytes_resent", resent)] {
                tx.execute(
                    "INSERT INTO meta (key, value) VALUES (?1, ?2) ON CONFLICT(key) DO UPDATE \
                     SET value = CAST(CAST(value AS INTEGER) + CAST(excluded.value AS INTEGER) AS TEXT)",
                    [key.to_owned(), value.to_string()],
                )?;
            }
            tx.commit()
        })
        .await
    }

    /// How many uploads the server has confirmed to this agent, ever.
    pub async fn upload_count(&self) -> Result<u64> {
        let n: i64 = self
            .with("counting uploads", |db| {
                db.query_row("SELECT COUNT(*) FROM uploads", [], |row| row.get(0))
            })
            .await?;
        Ok(u64::try_from(n).unwrap_or(0))
    }

    /// The persisted upload figures.
    pub async fn figures(&self) -> Result<UploadFigures> {
        let values = self
            .with("reading meta", |db| {
                let mut statement = db.prepare(
                    "SELECT key, value FROM meta WHERE key IN \
                     ('bytes_uploaded', 'upload_rate', 'eta', 'pending_uploads', 'pending_bytes', \
                     'bytes_resumed', 'bytes_resent')",
                )?;
                let rows = statement
                    .query_map([], |row| Ok((row.get::<_, String>(0)?, row.get::<_, String>(1)?)))?;
                rows.collect::<rusqlite::Result<HashMap<String, String>>>()
            })
            .await?;
        let number = |key: &str| values.get(key).and_then(|v| v.parse::<u64>().ok());
        Ok(UploadFigures {
            bytes_uploaded: number("bytes_uploaded").unwrap_or(0),
            upload_rate: values
                .get("upload_rate")
                .and_then(|v| v.parse::<f64>().ok())
                .unwrap_or(0.0),
            eta: number("eta"),
            pending_uploads: number("pending_uploads").unwrap_or(0),
            pending_bytes: number("pending_bytes").unwrap_or(0),
            bytes_resumed: number("bytes_resumed").unwrap_or(0),
            bytes_resent: number("bytes_resent").unwrap_or(0),
        })
    }

    /// Persists the rate, ETA and pending figures in one transaction (`bytesUploaded` moves with each upload).
    pub async fn set_figures(&self, figures: &UploadFigures) -> Result<()> {
        let figures = *figures;
        self.with("writing meta", move |db| {
            let tx = db.transaction()?;
            set_meta(&tx, "upload_rate", &figures.upload_rate.to_string())?;
            match figures.eta {
                Some(eta) => set_meta(&tx, "eta", &eta.to_string())?,
                None => {
                    tx.execute("DELETE FROM meta WHERE key = 'eta'", [])?;
                }
            }
            set_meta(&tx, "pending_uploads", &figures.pending_uploads.to_string())?;
            set_meta(&tx, "pending_bytes", &figures.pending_bytes.to_string())?;
            tx.commit()
        })
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

/// Upserts one `meta` value on a connection or inside a transaction.
fn set_meta(db: &Connection, key: &str, value: &str) -> rusqlite::Result<()> {
    db.prepare_cached(
        "INSERT INTO meta (key, value) VALUES (?1, ?2) ON CONFLICT(key) DO UPDATE SET value = excluded.value",
    )?
    .execute([key, value])
    .map(drop)
}

/// A blocking task that panicked or was cancelled.
fn join_error(path: &Path, join: tokio::task::JoinError) -> Error {
    Error::Io {
        path: path.to_path_buf(),
        action: "using the state database",
        source: std::io::Error::other(join),
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
