//! Finding and opening `Photos.sqlite` without ever writing to it.
//!
//! The database is opened read-only. Photos keeps it in WAL mode and may hold locks while it runs; SQLite then
//! refuses a read-only opener that cannot create or map the `-shm` file, or answers "busy". In those cases we copy
//! the database with its `-wal` and `-shm` into a private temporary directory and read the copy: a snapshot a few
//! seconds old is fine for a sync pass, and Photos is never disturbed. `immutable=1` is deliberately not used on
//! the live file: it tells SQLite to skip the WAL, which would hide Photos' most recent changes.

use std::path::{Path, PathBuf};
use std::time::Duration;

use sqlx::sqlite::{SqliteConnectOptions, SqlitePool, SqlitePoolOptions};
use tempfile::TempDir;

use super::error::{Error, Result};

/// SQLite primary result codes we react to (the low byte of the extended code sqlx reports).
const SQLITE_BUSY: i64 = 5;
const SQLITE_LOCKED: i64 = 6;
const SQLITE_READONLY: i64 = 8;
const SQLITE_IOERR: i64 = 10;
const SQLITE_CORRUPT: i64 = 11;
const SQLITE_CANTOPEN: i64 = 14;
const SQLITE_NOTADB: i64 = 26;

/// Where a library's pieces are on disk.
#[derive(Debug, Clone)]
pub(crate) struct LibraryPaths {
    /// The `Photos.sqlite` file named by the caller (or found inside the bundle).
    pub database: PathBuf,
    /// The library root: `originals/` and `resources/` are resolved against it.
    pub root: PathBuf,
}

/// An open, read-only connection pool, plus the temporary copy it reads when the original was locked.
#[derive(Debug)]
pub(crate) struct OpenDatabase {
    /// The pool; at most a couple of connections, all read-only.
    pub pool: SqlitePool,
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
        _ => Error::Io {
            path: path.to_path_buf(),
            action: "reading file metadata",
            source,
        },
    })?;
    if metadata.is_dir() {
        let database = path.join("database").join("Photos.sqlite");
        if !database.is_file() {
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
pub(crate) async fn open(database: &Path) -> Result<OpenDatabase> {
    match connect(database).await {
        Ok(pool) => Ok(OpenDatabase { pool, copy: None }),
        Err(source) => match primary_code(&source) {
            Some(SQLITE_NOTADB | SQLITE_CORRUPT) => Err(Error::NotSqlite {
                path: database.to_path_buf(),
                source,
            }),
            Some(SQLITE_BUSY | SQLITE_LOCKED | SQLITE_READONLY | SQLITE_IOERR | SQLITE_CANTOPEN) => {
                tracing::info!(path = %database.display(), error = %source, "database locked; reading a copy");
                open_copy(database).await
            }
            _ => Err(Error::Database {
                path: database.to_path_buf(),
                source,
            }),
        },
    }
}

/// The SQLite primary result code of a database error.
pub(crate) fn primary_code(error: &sqlx::Error) -> Option<i64> {
    match error {
        sqlx::Error::Database(db) => db.code()?.parse::<i64>().ok().map(|code| code & 0xff),
        _ => None,
    }
}

/// Maps a failed query to `NotSqlite` when SQLite says the file is not (or no longer) a database.
pub(crate) fn query_error(path: &Path, source: sqlx::Error) -> Error {
    match primary_code(&source) {
        Some(SQLITE_NOTADB | SQLITE_CORRUPT) => Error::NotSqlite {
            path: path.to_path_buf(),
            source,
        },
        _ => Error::Database {
            path: path.to_path_buf(),
            source,
        },
    }
}

async fn connect(database: &Path) -> std::result::Result<SqlitePool, sqlx::Error> {
    let options = SqliteConnectOptions::new()
        .filename(database)
        .read_only(true)
        .create_if_missing(false)
        // Photos writes in short transactions; waiting longer than this means it holds the lock for good.
        .busy_timeout(Duration::from_secs(1));
    let pool = SqlitePoolOptions::new()
        .max_connections(2)
        .min_connections(0)
        .connect_with(options)
        .await?;
    // Opening is lazy in SQLite: only reading a page tells a database from random bytes.
    sqlx::query("SELECT count(*) FROM sqlite_master")
        .fetch_one(&pool)
        .await?;
    Ok(pool)
}

async fn open_copy(database: &Path) -> Result<OpenDatabase> {
    let source = database.to_path_buf();
    let dir = tokio::task::spawn_blocking(move || copy_with_sidecars(&source))
        .await
        .map_err(|join| Error::Io {
            path: database.to_path_buf(),
            action: "copying the locked database",
            source: std::io::Error::other(join),
        })??;
    let copy = dir.path().join("Photos.sqlite");
    match connect(&copy).await {
        Ok(pool) => Ok(OpenDatabase {
            pool,
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
    std::fs::copy(database, &target).map_err(|source| Error::Io {
        path: database.to_path_buf(),
        action: "copying the locked database",
        source,
    })?;
    for suffix in ["-wal", "-shm"] {
        let mut side = database.as_os_str().to_owned();
        side.push(suffix);
        let side = PathBuf::from(side);
        if side.is_file() {
            let mut to = target.as_os_str().to_owned();
            to.push(suffix);
            std::fs::copy(&side, PathBuf::from(to)).map_err(|source| Error::Io {
                path: side.clone(),
                action: "copying the database journal",
                source,
            })?;
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
