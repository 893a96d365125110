//! Staging left behind by writes that never finished.
//!
//! The local backend (`object_store`'s `LocalFileSystem`) writes every put and multipart upload to a staging
//! file `<key>#<n>` beside the key and renames it into place at the end. A process killed in between leaves
//! that file, and `LocalFileSystem`'s listing hides it (a name ending in `#<digits>` is not an object to it),
//! so nothing else would ever find it: this module walks the directory itself.
//!
//! On S3 the counterpart is an abandoned multipart upload. `object_store` 0.14 can abort an upload whose id
//! it knows but cannot list them (no `ListMultipartUploads`), and this project does not sign S3 requests by
//! hand: the bucket's lifecycle rule `AbortIncompleteMultipartUpload` removes them (`deploy/README.md`).

use std::path::Path;
use std::time::{Duration, SystemTime};

use crate::error::{Error, Result};
use crate::store::Store;

/// What a sweep of staging files removed (or, in a dry run, would remove).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct StagingSweep {
    /// Staging files.
    pub files: u64,
    /// Their bytes.
    pub bytes: u64,
}

impl Store {
    /// Removes the local backend's staging files (`<key>#<n>`) not written to for `older_than`: a write in
    /// progress touches its file all the time, so only the leftovers of a crash or a kill are that old. With
    /// `dry_run`, only counts them. Other backends have nothing to sweep here (see the module docs) and
    /// answer an empty sweep. A file that disappears meanwhile is not an error.
    pub async fn remove_staging(&self, older_than: Duration, dry_run: bool) -> Result<StagingSweep> {
        let Some(root) = self.inner.staging_root.clone() else {
            return Ok(StagingSweep::default());
        };
        let cutoff = SystemTime::now()
            .checked_sub(older_than)
            .unwrap_or(SystemTime::UNIX_EPOCH);
        let label = root.display().to_string();
        tokio::task::spawn_blocking(move || {
            let mut sweep = StagingSweep::default();
            sweep_dir(&root, cutoff, dry_run, &mut sweep)?;
            Ok::<_, std::io::Error>(sweep)
        })
        .await
        .map_err(|e| io_error(&label, std::io::Error::other(e)))?
        .map_err(|e| io_error(&label, e))
    }
}

/// Whether a file name is one `LocalFileSystem` stages under: the key's name, `#`, a decimal number.
pub(crate) fn is_staging_name(name: &str) -> bool {
    name.rsplit_once('#')
        .is_some_and(|(key, n)| !key.is_empty() && !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
}

/// Depth-first over `dir`, never following symbolic links (a link could lead out of the root).
fn sweep_dir(dir: &Path, cutoff: SystemTime, dry_run: bool, sweep: &mut StagingSweep) -> std::io::Result<()> {
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(e),
    };
    for entry in entries {
        let entry = entry?;
        let file_type = entry.file_type()?;
        if file_type.is_dir() {
            sweep_dir(&entry.path(), cutoff, dry_run, sweep)?;
            continue;
        }
        if !file_type.is_file() || !entry.file_name().to_str().is_some_and(is_staging_name) {
            continue;
        }
        let metadata = match entry.metadata() {
            Ok(metadata) => metadata,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(e) => return Err(e),
        };
        if metadata.modified()? >= cutoff {
            continue;
        }
        if !dry_run {
            match std::fs::remove_file(entry.path()) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
                Err(e) => return Err(e),
            }
        }
        sweep.files += 1;
        sweep.bytes += metadata.len();
    }
    Ok(())
}

fn io_error(root: &str, source: std::io::Error) -> Error {
    Error::Backend {
        key: root.to_owned(),
        source: object_store::Error::Generic {
            store: "LocalFileSystem",
            source: Box::new(source),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::is_staging_name;

    #[test]
    fn staging_names_are_a_key_then_a_number() {
        for (name, staging) in [
            ("IMG_0001.heic#1", true),
            ("IMG_0001.heic#42", true),
            ("a#b#7", true),
            ("IMG_0001.heic", false),
            ("IMG#0001.heic", false),
            ("photo#", false),
            ("#12", false),
            ("x#1a", false),
        ] {
            assert_eq!(is_staging_name(name), staging, "{name}");
        }
    }
}
