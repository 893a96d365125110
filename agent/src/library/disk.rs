//! What is on disk inside the library, looked at one directory at a time.
//!
//! A pass needs, for every resource of every asset, whether its file is there and, when it is, its size and
//! modification time (the hash cache's key). One `stat` per resource walks the whole path each time and, in a
//! library whose originals are mostly in iCloud, mostly finds nothing. Instead each directory under the library
//! root is listed once when first needed (`readdir` gives names and types in bulk) and only the files that are
//! there are `stat`ed, relative to the open directory. A file outside the root (a referenced original) is
//! `stat`ed on its own. The listing is a snapshot taken during the pass, as the single `stat`s were.

use std::collections::HashMap;
use std::ffi::{OsStr, OsString};
use std::os::unix::ffi::OsStrExt as _;
use std::path::{Path, PathBuf};

use super::FileStamp;

/// Lazily listed directories of one library.
#[derive(Debug)]
pub(crate) struct Disk {
    root: PathBuf,
    /// Keyed by the directory's bytes: hashing a `Path` parses its components, on every one of 100,000 calls.
    directories: HashMap<OsString, Listing>,
}

/// One directory as listed.
#[derive(Debug)]
enum Listing {
    /// Its regular files (symbolic links followed), by name.
    Files(HashMap<OsString, FileStamp>),
    /// It does not exist (or is not a directory): nothing in it is on disk.
    Missing,
    /// It exists but cannot be listed (no read permission): its files are `stat`ed one by one.
    Unlistable,
}

impl Disk {
    /// Nothing listed yet; directories under `root` are listed on first use.
    pub(crate) fn new(root: &Path) -> Disk {
        Disk {
            root: root.to_path_buf(),
            directories: HashMap::new(),
        }
    }

    /// The stamp of the regular file at `path`, `None` when there is none.
    pub(crate) fn stamp(&mut self, path: &Path) -> Option<FileStamp> {
        let (Some(directory), Some(name)) = (path.parent(), path.file_name()) else {
            return FileStamp::of(path);
        };
        if !inside(directory.as_os_str(), self.root.as_os_str()) {
            return FileStamp::of(path);
        }
        if !self.directories.contains_key(directory.as_os_str()) {
            self.directories
                .insert(directory.as_os_str().to_owned(), list(directory));
        }
        match self.directories.get(directory.as_os_str()) {
            Some(Listing::Files(files)) => files.get(name).copied(),
            Some(Listing::Missing) => None,
            Some(Listing::Unlistable) | None => FileStamp::of(path),
        }
    }

    /// Whether a regular file is at `path`.
    pub(crate) fn is_file(&mut self, path: &Path) -> bool {
        self.stamp(path).is_some()
    }
}

/// Whether `directory` is `root` or below it, comparing bytes (the paths were built by joining onto `root`).
fn inside(directory: &OsStr, root: &OsStr) -> bool {
    let (directory, root) = (directory.as_bytes(), root.as_bytes());
    directory.starts_with(root)
        && (directory.len() == root.len() || root.ends_with(b"/") || directory.get(root.len()) == Some(&b'/'))
}

fn list(directory: &Path) -> Listing {
    let entries = match std::fs::read_dir(directory) {
        Ok(entries) => entries,
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Listing::Missing,
        Err(error) if error.kind() == std::io::ErrorKind::NotADirectory => return Listing::Missing,
        Err(error) => {
            tracing::debug!(directory = %directory.display(), %error, "directory not listable; stat per file");
            return Listing::Unlistable;
        }
    };
    let mut files = HashMap::new();
    for entry in entries {
        let Ok(entry) = entry else {
            // A listing cut short could hide files: fall back to asking for each one.
            return Listing::Unlistable;
        };
        let Ok(file_type) = entry.file_type() else {
            return Listing::Unlistable;
        };
        let stamp = if file_type.is_file() {
            // `stat` relative to the open directory: no walk of the full path.
            entry.metadata().ok().map(|m| FileStamp::from_metadata(&m))
        } else if file_type.is_symlink() {
            FileStamp::of(&entry.path())
        } else {
            None
        };
        if let Some(stamp) = stamp {
            files.insert(entry.file_name(), stamp);
        }
    }
    Listing::Files(files)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn listed_files_answer_like_a_stat() {
        let root = tempfile::tempdir().unwrap();
        let dir = root.path().join("originals/A");
        std::fs::create_dir_all(dir.join("sub")).unwrap();
        std::fs::write(dir.join("a.jpeg"), b"12345").unwrap();
        std::os::unix::fs::symlink(dir.join("a.jpeg"), dir.join("link.jpeg")).unwrap();
        std::os::unix::fs::symlink(dir.join("gone"), dir.join("dangling.jpeg")).unwrap();
        let outside = tempfile::NamedTempFile::new().unwrap();

        let mut disk = Disk::new(root.path());
        for path in [
            dir.join("a.jpeg"),
            dir.join("link.jpeg"),
            dir.join("dangling.jpeg"),
            dir.join("sub"),
            dir.join("none.jpeg"),
            root.path().join("originals/B/b.jpeg"),
            root.path().join("originals/A/a.jpeg/x"),
            outside.path().to_path_buf(),
        ] {
            assert_eq!(disk.stamp(&path), FileStamp::of(&path), "{}", path.display());
        }
        assert_eq!(disk.stamp(&dir.join("a.jpeg")).map(|s| s.size), Some(5));
        assert!(disk.is_file(outside.path()));
        assert!(inside(OsStr::new("/l/o"), OsStr::new("/l")));
        assert!(inside(OsStr::new("/l/o"), OsStr::new("/")));
        assert!(!inside(OsStr::new("/lib/o"), OsStr::new("/l")));
    }
}
