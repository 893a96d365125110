//! Finding and opening `Photos.sqlite` without ever writing to it.
//!
//! The database is opened read-only. Photos keeps it in WAL mode and may hold locks while it runs; SQLite then
//! refuses a read-only opener that cannot create or map the `-shm` file, or answers "busy". In those cases we copy
//! the database with its `-wal` and `-shm` into a private temporary directory and read the copy: a snapshot a few
//! seconds old is fine for a sync pass, and Photos is never disturbed. `immutable=1` is deliberately not used on
//! the live file: it tells SQLite to skip the WAL, which would hide Photos' most recent changes.

use std::path::{Path, PathBuf};
use std::time::Duration;

use rusqlite::{Connection, ErrorCode, OpenFlags};
use tempfile::TempDir;

use super::error::{Error, Result};

/// Where a library's pieces are on disk.
#[derive(Debug, Clone)]
pub(crate) struct LibraryPaths {
    /// The `Photos.sqlite` file named by the caller (or found inside the bundle).
    pub database: PathBuf,
    /// The library root: `originals/` and `resources/` are resolved against it.
    pub root: PathBuf,
}

/// An open, read-only connection, plus the temporary copy it reads when the original was locked.
#[derive(Debug)]
pub(crate) struct OpenDatabase {
    /// One read-only connection: a pass reads the tables one after the other, so more would only cost memory.
    pub connection: Connection,
    /// Keeps the copied database alive as long as the pool reads it.
    pub copy: Option<TempDir>,
}

/// Accepts a `.photoslibrary` bundle (reads `database/Photos.sqlite`) or the database file itself.
pub(crate) fn resolve(path: &Path) -> Result<LibraryPaths> {
    let metadata = std::fs::metadata(path).map_err(|source| match source.kind() {
        std::io::ErrorKind::NotFound => Error::NotFound {
            path: path.to_path_buf(),
            reason: "no Photos library or database at this path",
        },
        _ => Error::io(path, "reading file metadata", source),
    })?;
    if metadata.is_dir() {
        let database = path.join("database").join("Photos.sqlite");
        // A refused `stat` is not a missing database: macOS privacy protection answers EPERM inside the bundle.
        let found = std::fs::metadata(&database).map_err(|source| match source.kind() {
            std::io::ErrorKind::PermissionDenied => Error::io(&database, "reading file metadata", source),
            _ => Error::NotFound {
                path: database.clone(),
                reason: "a Photos 5+ library keeps its database here (older libraries are not supported)",
            },
        })?;
        if !found.is_file() {
            return Err(Error::NotFound {
                path: database,
                reason: "a Photos 5+ library keeps its database here (older libraries are not supported)",
            });
        }
        return Ok(LibraryPaths {
            database,
            root: path.to_path_buf(),
        });
    }
    // A bare database: inside a bundle its parent is `database/`, and the bundle is one level up.
    let parent = path.parent().unwrap_or(Path::new("."));
    let root = match parent.file_name() {
        Some(name) if name == "database" => parent.parent().unwrap_or(parent),
        _ => parent,
    };
    Ok(LibraryPaths {
        database: path.to_path_buf(),
        root: root.to_path_buf(),
    })
}

/// Opens the database read-only, falling back to a private copy when the live file is locked or unmappable.
/// Blocking: call it from a blocking thread.
pub(crate) fn open(database: &Path) -> Result<OpenDatabase> {
    // SQLite reports a refused open as a bare "unable to open database file", and the copy would then fail the
    // same way: ask the OS first, so a missing Full Disk Access is named as such.
    if let Err(source) = std::fs::File::open(database) {
        return Err(Error::io(database, "opening the database", source));
    }
    match connect(database) {
        Ok(connection) => Ok(OpenDatabase {
            connection,
            copy: None,
        }),
        Err(source) => match source.sqlite_error_code() {
            Some(ErrorCode::NotADatabase | ErrorCode::DatabaseCorrupt) => Err(Error::NotSqlite {
                path: database.to_path_buf(),
                source,
            }),
            Some(
                ErrorCode::DatabaseBusy
                | ErrorCode::DatabaseLocked
                | ErrorCode::ReadOnly
                | ErrorCode::SystemIoFailure
                | ErrorCode::CannotOpen,
            ) => {
                tracing::info!(path = %database.display(), error = %source, "database locked; reading a copy");
                open_copy(database)
            }
            _ => Err(Error::Database {
                path: database.to_path_buf(),
                source,
            }),
        },
    }
}

/// Maps a failed query to `NotSqlite` when SQLite says the file is not (or no longer) a database.
pub(crate) fn query_error(path: &Path, source: rusqlite::Error) -> Error {
    match source.sqlite_error_code() {
        Some(ErrorCode::NotADatabase | ErrorCode::DatabaseCorrupt) => Error::NotSqlite {
            path: path.to_path_buf(),
            source,
        },
        _ => Error::Database {
            path: path.to_path_buf(),
            source,
        },
    }
}

fn connect(database: &Path) -> rusqlite::Result<Connection> {
    // Read-only, and never created: a wrong path must fail here, not leave an empty database behind.
    let flags = OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX;
    let connection = Connection::open_with_flags(database, flags)?;
    // Photos writes in short transactions; waiting longer than this means it holds the lock for good.
    connection.busy_timeout(Duration::from_secs(1))?;
    // Opening is lazy in SQLite: only reading a page tells a database from random bytes.
    connection.query_row("SELECT count(*) FROM sqlite_master", [], |row| {
        row.get::<_, i64>(0)
    })?;
    Ok(connection)
}

fn open_copy(database: &Path) -> Result<OpenDatabase> {
    let dir = copy_with_sidecars(database)?;
    let copy = dir.path().join("Photos.sqlite");
    match connect(&copy) {
        Ok(connection) => Ok(OpenDatabase {
            connection,
            copy: Some(dir),
        }),
        Err(source) => Err(query_error(database, source)),
    }
}

/// Copies `Photos.sqlite` and its `-wal`/`-shm` (when present) into a fresh temporary directory, keeping the
/// names so SQLite pairs them again.
fn copy_with_sidecars(database: &Path) -> Result<TempDir> {
    let dir = tempfile::Builder::new()
        .prefix("iphoto-photos-db")
        .tempdir()
        .map_err(|source| Error::Io {
            path: std::env::temp_dir(),
            action: "creating a temporary directory",
            source,
        })?;
    let target = dir.path().join("Photos.sqlite");
    std::fs::copy(database, &target)
        .map_err(|source| Error::io(database, "copying the locked database", source))?;
    for suffix in ["-wal", "-shm"] {
        let mut side = database.as_os_str().to_owned();
        side.push(suffix);
        let side = PathBuf::from(side);
        if side.is_file() {
            let mut to = target.as_os_str().to_owned();
            to.push(suffix);
            std::fs::copy(&side, PathBuf::from(to))
                .map_err(|source| Error::io(&side, "copying the database journal", source))?;
        }
    }
    Ok(dir)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bundle_and_bare_database_resolve_to_the_same_root() {
        let dir = tempfile::tempdir().unwrap();
        let bundle = dir.path().join("Lib.photoslibrary");
        std::fs::create_dir_all(bundle.join("database")).unwrap();
        std::fs::write(bundle.join("database/Photos.sqlite"), b"").unwrap();

        let from_bundle = resolve(&bundle).unwrap();
        assert_eq!(from_bundle.database, bundle.join("database/Photos.sqlite"));
        assert_eq!(from_bundle.root, bundle);

        let from_file = resolve(&bundle.join("database/Photos.sqlite")).unwrap();
        assert_eq!(from_file.root, bundle);
    }

    #[test]
    fn a_bundle_without_database_names_the_expected_file() {
        let dir = tempfile::tempdir().unwrap();
        match resolve(dir.path()) {
            Err(Error::NotFound { path, .. }) => assert!(path.ends_with("database/Photos.sqlite")),
            other => panic!("expected NotFound, got {other:?}"),
        }
    }

    #[test]
    fn copy_keeps_the_wal_beside_the_database() {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("Photos.sqlite");
        std::fs::write(&db, b"db").unwrap();
        std::fs::write(dir.path().join("Photos.sqlite-wal"), b"wal").unwrap();
        let copy = copy_with_sidecars(&db).unwrap();
        assert_eq!(std::fs::read(copy.path().join("Photos.sqlite")).unwrap(), b"db");
        assert_eq!(
            std::fs::read(copy.path().join("Photos.sqlite-wal")).unwrap(),
            b"wal"
        );
        assert!(!copy.path().join("Photos.sqlite-shm").exists());
    }
}
