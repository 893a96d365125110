//! Failures the state DB keeps for `status`: per resource (or `metadata` for an item), what went wrong and why.
//! An unreadable file's row is rewritten by every pass, so it leaves the list once the file can be read (or has
//! left the library); a refusal is cleared when the upload or the metadata is later accepted.

use super::{Result, StateDb};

/// What went wrong with a resource (or an item's metadata), as `status` shows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FailureStatus {
    /// The file is here but this Mac would not let the agent read it (permissions, privacy protection, an I/O
    /// error); the reason keeps the OS error.
    Unreadable,
    /// The server refused the upload (4xx); retried when the server lists it again.
    Refused,
    /// The server rejected the item's metadata.
    Rejected,
}

impl FailureStatus {
    /// The stored (and printed) name.
    pub fn as_str(self) -> &'static str {
        match self {
            FailureStatus::Unreadable => "unreadable",
            FailureStatus::Refused => "refused",
            FailureStatus::Rejected => "rejected",
        }
    }

    fn parse(name: &str) -> FailureStatus {
        match name {
            "unreadable" => FailureStatus::Unreadable,
            "rejected" => FailureStatus::Rejected,
            _ => FailureStatus::Refused,
        }
    }
}

/// One failure recorded for a resource (or `metadata` for a rejected item).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Failure {
    /// The asset.
    pub local_identifier: String,
    /// `original`, `live_video`, `render`, `raw` or `metadata`.
    pub resource: String,
    /// Unreadable here, refused by the server, or rejected metadata.
    pub status: FailureStatus,
    /// Why: the OS error of an unreadable file (with its path), or the server's reason.
    pub reason: String,
    /// When (RFC 3339).
    pub at: String,
}

impl StateDb {
    /// Records a failure of one resource (or of an item's metadata, as resource `metadata`).
    pub async fn record_failure(
        &self,
        local_identifier: &str,
        resource: &str,
        status: FailureStatus,
        reason: &str,
    ) -> Result<()> {
        let row = [
            local_identifier.to_owned(),
            resource.to_owned(),
            reason.to_owned(),
            chrono::Utc::now().to_rfc3339(),
            status.as_str().to_owned(),
        ];
        self.with("recording a failure", move |db| {
            db.prepare_cached(
                "INSERT OR REPLACE INTO failures (local_identifier, resource, reason, at, status) \
                 VALUES (?1, ?2, ?3, ?4, ?5)",
            )?
            .execute(row)
            .map(drop)
        })
        .await
    }

    /// Replaces every `unreadable` failure with this pass's `(local identifier, resource, reason)` list, in one
    /// transaction.
    pub async fn set_unreadable(&self, unreadable: Vec<(String, String, String)>) -> Result<()> {
        let at = chrono::Utc::now().to_rfc3339();
        self.with("recording unreadable files", move |db| {
            let tx = db.transaction()?;
            tx.execute("DELETE FROM failures WHERE status = 'unreadable'", [])?;
            {
                let mut insert = tx.prepare_cached(
                    "INSERT OR REPLACE INTO failures (local_identifier, resource, reason, at, status) \
                     VALUES (?1, ?2, ?3, ?4, 'unreadable')",
                )?;
                for (local_identifier, resource, reason) in &unreadable {
                    insert.execute([local_identifier, resource, reason, &at])?;
                }
            }
            tx.commit()
        })
        .await
    }

    /// Every recorded failure, by asset and resource.
    pub async fn failures(&self) -> Result<Vec<Failure>> {
        self.with("reading failures", |db| {
            let mut statement = db.prepare(
                "SELECT local_identifier, resource, status, reason, at FROM failures \
                 ORDER BY local_identifier, resource",
            )?;
            let rows = statement.query_map([], |row| {
                Ok(Failure {
                    local_identifier: row.get(0)?,
                    resource: row.get(1)?,
                    status: FailureStatus::parse(&row.get::<_, String>(2)?),
                    reason: row.get(3)?,
                    at: row.get(4)?,
                })
            })?;
            rows.collect()
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A state DB from before failures had a status gains the column; its metadata rows read as rejections.
    #[tokio::test]
    async fn an_older_state_db_gains_failure_statuses() {
        let dir = tempfile::tempdir().unwrap();
        let old = rusqlite::Connection::open(dir.path().join(super::super::FILE_NAME)).unwrap();
        old.execute_batch(
            "CREATE TABLE failures (local_identifier TEXT NOT NULL, resource TEXT NOT NULL, reason TEXT NOT NULL, \
             at TEXT NOT NULL, PRIMARY KEY (local_identifier, resource)); \
             INSERT INTO failures VALUES ('A/L0/001', 'metadata', 'bad title', 't'), \
             ('B/L0/001', 'original', 'digest_mismatch', 't');",
        )
        .unwrap();
        drop(old);
        let db = StateDb::open(dir.path()).await.unwrap();
        let statuses: Vec<_> = db.failures().await.unwrap().iter().map(|f| f.status).collect();
        assert_eq!(statuses, [FailureStatus::Rejected, FailureStatus::Refused]);

        // Each pass's unreadable list replaces the last one and leaves other failures alone.
        let row = |id: &str| {
            (
                id.to_owned(),
                "original".to_owned(),
                "Permission denied (os error 13)".to_owned(),
            )
        };
        db.set_unreadable(vec![row("C/L0/001")]).await.unwrap();
        db.set_unreadable(vec![row("D/L0/001")]).await.unwrap();
        let failures = db.failures().await.unwrap();
        let listed: Vec<_> = failures
            .iter()
            .map(|f| (f.local_identifier.as_str(), f.status))
            .collect();
        assert_eq!(
            listed,
            [
                ("A/L0/001", FailureStatus::Rejected),
                ("B/L0/001", FailureStatus::Refused),
                ("D/L0/001", FailureStatus::Unreadable)
            ]
        );
    }
}
