//! Directory rename: every object under the directory is copied server-side to the new name, then the
//! sources are deleted. Object stores have no rename, so this is as many copies and deletes as the directory
//! holds entries: up to `--rename-dir-max-entries` (past it, EXDEV, which `mv` answers by copying entry by
//! entry, as before).
//!
//! The rename is journaled: before the first copy, `renames/<n>.json` in the cache directory records the two
//! names and every key to move (atomically, fsynced). A crash in the middle leaves the record, and the next
//! start finishes the rename (copies what is still at the old name, then deletes the old names) before it
//! drops the record. Copying is idempotent (a source still there is copied again, replacing the copy), so
//! a crash at any point ends with the whole tree at the new name and nothing at the old one.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use futures::TryStreamExt as _;
use serde::{Deserialize, Serialize};
use storage::StorageKey;

use crate::error::{Error, Result};
use crate::fs::{Fs, Kind};

/// A directory rename under way, as saved in `renames/<n>.json`.
#[derive(Debug, Serialize, Deserialize)]
struct RenameRecord {
    from: String,
    to: String,
    /// The keys to move, relative to `from`.
    keys: Vec<String>,
}

impl Fs {
    /// Finishes the directory renames a crash interrupted (records in `cache_dir/renames`), in the
    /// background. Call inside the runtime, after the journal has started.
    pub fn start_renames(self: &Arc<Self>, cache_dir: &std::path::Path) -> Result<()> {
        let dir = cache_dir.join("renames");
        std::fs::create_dir_all(&dir)?;
        let _ = self.renames_dir.set(dir.clone());
        let mut records: Vec<PathBuf> = std::fs::read_dir(&dir)?
            .flatten()
            .map(|e| e.path())
            .filter(|p| p.extension().is_some_and(|x| x == "json"))
            .collect();
        records.sort();
        if records.is_empty() {
            return Ok(());
        }
        let fs = Arc::clone(self);
        tokio::spawn(async move {
            for path in records {
                let record = std::fs::read(&path)
                    .ok()
                    .and_then(|text| serde_json::from_slice::<RenameRecord>(&text).ok());
                let Some(record) = record else {
                    tracing::warn!(path = %path.display(), "skipping an unreadable rename record");
                    continue;
                };
                tracing::info!(from = %record.from, to = %record.to, entries = record.keys.len(), "finishing an interrupted directory rename");
                loop {
                    match fs.move_objects(&record).await {
                        Ok(()) => break,
                        Err(e) => {
                            tracing::warn!(error = %e, from = %record.from, "finishing a directory rename failed; retrying");
                            tokio::time::sleep(Duration::from_secs(1)).await;
                        }
                    }
                }
                let _ = std::fs::remove_file(&path);
                fs.table().forget_listings();
            }
        });
        Ok(())
    }

    /// Renames directory `ino` (`name` in `parent`, key `from`) to `new_name` in `new_parent` (key `to`).
    pub(super) async fn rename_dir(
        &self,
        ino: u64,
        (parent, name): (u64, &str),
        (new_parent, new_name): (u64, &str),
        (from, to): (StorageKey, StorageKey),
    ) -> Result<()> {
        let _ = parent;
        if to.as_str().starts_with(&format!("{from}/")) {
            // Into itself.
            return Err(Error::InvalidName {
                name: new_name.to_owned(),
            });
        }
        match self.lookup(new_parent, new_name).await {
            Ok(target) if target.kind != Kind::Directory => {
                return Err(Error::NotDirectory {
                    name: new_name.to_owned(),
                });
            }
            Ok(target) => {
                self.ensure_listing(target.ino).await?;
                if self
                    .table()
                    .listing(target.ino)
                    .is_some_and(|l| !l.children.is_empty())
                {
                    return Err(Error::NotEmpty {
                        name: new_name.to_owned(),
                    });
                }
                // An empty directory is replaced: its marker goes, the source's tree takes its name.
                self.rmdir(new_parent, new_name).await?;
            }
            Err(Error::NotFound { .. }) => {}
            Err(e) => return Err(e),
        }
        // What waits for its upload under the directory is uploaded first, so the store holds the whole tree.
        let journal = self.journal()?;
        let inside = format!("{from}/");
        for key in journal.keys() {
            if key.as_str().starts_with(&inside) {
                journal
                    .flush(
                        Some(&key),
                        self.config.request_timeout.max(Duration::from_secs(60)),
                    )
                    .await?;
            }
        }
        let keys: Vec<String> = self
            .timed("a LIST", async {
                self.store
                    .list(Some(&from))
                    .map_ok(|meta| meta.key.as_str()[inside.len()..].to_owned())
                    .try_collect()
                    .await
            })
            .await?;
        let limit = self.config.rename_dir_limit;
        if keys.len() as u64 > limit {
            tracing::warn!(
                directory = %from,
                entries = keys.len(),
                limit,
                "not renaming a directory of more entries than --rename-dir-max-entries ({limit}); answering EXDEV, so mv copies it entry by entry"
            );
            return Err(Error::CrossDevice {
                name: name.to_owned(),
            });
        }
        let record = RenameRecord {
            from: from.to_string(),
            to: to.to_string(),
            keys,
        };
        let dir = self.renames_dir.get().ok_or(Error::ReadOnly)?;
        let path = next_record_path(dir);
        let text = serde_json::to_vec(&record).map_err(|e| Error::CacheIo(std::io::Error::other(e)))?;
        write_synced(&path, &text)?;
        let moved = self.move_objects(&record).await;
        if moved.is_ok() {
            std::fs::remove_file(&path)?;
        }
        // A failure leaves the record: the next start finishes the rename.
        moved?;
        let mut table = self.table();
        table.rename(ino, new_parent, new_name, to.clone());
        table.rekey_tree(&from, &to);
        Ok(())
    }

    /// Copies every recorded key still at the old name to the new one, then deletes the old ones.
    async fn move_objects(&self, record: &RenameRecord) -> Result<()> {
        let from = StorageKey::parse(&record.from)?;
        let to = StorageKey::parse(&record.to)?;
        for relative in &record.keys {
            // The pause crash tests ask for (`IPHOTO_MOUNT_UPLOAD_DELAY_MS`), so a kill lands mid-rename.
            tokio::time::sleep(self.config.upload_delay).await;
            let (source, target) = (from.join(relative)?, to.join(relative)?);
            match self.timed("a COPY", self.store.copy(&source, &target)).await {
                // Moved before a crash.
                Ok(()) | Err(Error::Store(storage::Error::NotFound { .. })) => {}
                Err(e) => return Err(e),
            }
        }
        for relative in &record.keys {
            let source = from.join(relative)?;
            self.timed("a DELETE", self.store.delete(&source)).await?;
        }
        Ok(())
    }
}

/// `renames/<n>.json` with `n` above every record there.
fn next_record_path(dir: &std::path::Path) -> PathBuf {
    let n = std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| {
            e.path()
                .file_stem()
                .and_then(|s| s.to_str())
                .and_then(|s| s.parse::<u64>().ok())
        })
        .max()
        .map_or(0, |n| n + 1);
    dir.join(format!("{n:020}.json"))
}

/// Writes `path` durably: a temporary file, fsync, rename, directory fsync.
fn write_synced(path: &std::path::Path, bytes: &[u8]) -> std::io::Result<()> {
    let temporary = path.with_extension("tmp");
    let mut file = std::fs::File::create(&temporary)?;
    std::io::Write::write_all(&mut file, bytes)?;
    file.sync_all()?;
    std::fs::rename(&temporary, path)?;
    if let Some(dir) = path.parent() {
        std::fs::File::open(dir)?.sync_all()?;
    }
    Ok(())
}
