//! Reading a library: Apple Photos' `Photos.sqlite` (Photos 5 / macOS 10.15 to Photos 11.1 / macOS 26.1) or a
//! plain folder of photos and videos.
//!
//! This module owns turning what is on the Mac into `api::SyncItem`s plus the on-disk path of every resource,
//! and albums into [`ReadAlbum`]s. It never writes to the library and never talks to the server: diffing, batching
//! and uploading belong to the sync loop. The database is read directly (no PhotoKit), schema-driven, following
//! `shared/reference/photos-sqlite.md`.

mod albums;
mod annotations;
mod assets;
mod disk;
pub mod error;
mod folder;
mod media;
mod open;
mod resources;
mod schema;
mod time;
mod value;

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::UNIX_EPOCH;

use rusqlite::Connection;
use tempfile::TempDir;

pub use albums::{AlbumKind, AlbumSort, ReadAlbum, SortKey};
pub use error::{Error, Result};
pub use folder::FolderLibrary;
pub use schema::PhotosVersion;

use schema::Schema;

/// One asset as read from a library: the wire metadata plus where each resource's bytes are on disk.
#[derive(Debug, Clone, PartialEq)]
pub struct ReadAsset {
    /// Photos' UUID (`ZUUID`), or the folder source's derived id; the first part of the local identifier.
    pub uuid: String,
    /// The metadata the sync loop sends; `item.resources` lists the same resources as `files`, in the same order.
    pub item: api::SyncItem,
    /// Where the uploader would stream each resource from (whether or not the file exists now).
    pub files: Vec<ResourceFile>,
}

impl ReadAsset {
    /// The on-disk path of one resource, if the asset has it.
    pub fn path(&self, resource: api::ResourceType) -> Option<&Path> {
        self.files
            .iter()
            .find(|file| file.resource_type == resource)
            .map(|file| file.path.as_path())
    }
}

/// The file a resource's bytes live in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResourceFile {
    /// Which resource.
    pub resource_type: api::ResourceType,
    /// Absolute (or library-root-relative when the root was given relative) path.
    pub path: PathBuf,
    /// Size and modification time when the reader found a regular file there; `None` when it did not.
    pub stamp: Option<FileStamp>,
}

/// A file's identity as the hash cache sees it: an unchanged `(size, mtime)` means unchanged bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FileStamp {
    /// Size in bytes.
    pub size: u64,
    /// Modification time, nanoseconds since the Unix epoch (0 when the file system has none).
    pub mtime_ns: i64,
}

impl FileStamp {
    /// The stamp of a regular file at `path` (one `stat`), `None` when there is none or it cannot be read.
    pub fn of(path: &Path) -> Option<FileStamp> {
        std::fs::metadata(path)
            .ok()
            .filter(std::fs::Metadata::is_file)
            .map(|metadata| FileStamp::from_metadata(&metadata))
    }

    /// The stamp of metadata already read.
    pub fn from_metadata(metadata: &std::fs::Metadata) -> FileStamp {
        let mtime_ns = metadata
            .modified()
            .ok()
            .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
            .and_then(|d| i64::try_from(d.as_nanos()).ok())
            .unwrap_or(0);
        FileStamp {
            size: metadata.len(),
            mtime_ns,
        }
    }
}

/// Why an asset row was not turned into a [`ReadAsset`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SkipReason {
    /// An unpicked frame of a burst (`ZVISIBILITYSTATE = 2`): Photos shows only the pick, so do we.
    UnpickedBurstFrame,
    /// The row has no UUID, so it cannot have a stable identity.
    NoUuid,
    /// The row has no (or an out-of-range) creation date.
    NoDate,
}

/// An asset row that was deliberately not read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SkippedAsset {
    /// The row's `Z_PK`.
    pub row: i64,
    /// Its UUID, when it has one.
    pub uuid: Option<String>,
    /// Why it was skipped.
    pub reason: SkipReason,
}

/// The outcome of reading every asset row: each row is either read or skipped, never silently lost.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct AssetScan {
    /// The assets read, in `Z_PK` order.
    pub assets: Vec<ReadAsset>,
    /// The rows skipped, with their reasons.
    pub skipped: Vec<SkippedAsset>,
}

/// An open Photos library (read-only).
#[derive(Debug)]
pub struct PhotosLibrary {
    /// Read on blocking threads (SQLite calls block); the mutex only hands it from one read to the next.
    connection: Arc<Mutex<Connection>>,
    schema: Arc<Schema>,
    database: PathBuf,
    root: PathBuf,
    /// Holds the private copy alive when the live database was locked.
    copy: Option<TempDir>,
}

impl PhotosLibrary {
    /// Opens a `.photoslibrary` bundle or a `Photos.sqlite` file directly, read-only.
    ///
    /// Fails with [`Error::NotFound`], [`Error::NotSqlite`] or [`Error::NotPhotosLibrary`] when the path is not a
    /// Photos 5+ library; never panics on bad input.
    pub async fn open(path: &Path) -> Result<PhotosLibrary> {
        let paths = open::resolve(path)?;
        let database = paths.database.clone();
        let (opened, schema) = blocking(&paths.database, move || {
            let opened = open::open(&database)?;
            let schema = Schema::discover(&opened.connection, &database)?;
            Ok((opened, schema))
        })
        .await?;
        tracing::info!(
            path = %paths.database.display(),
            version = %schema.version,
            copy = opened.copy.is_some(),
            "opened Photos library"
        );
        Ok(PhotosLibrary {
            connection: Arc::new(Mutex::new(opened.connection)),
            schema: Arc::new(schema),
            database: paths.database,
            root: paths.root,
            copy: opened.copy,
        })
    }

    /// Whether a private copy is read because the live database was locked when it was opened.
    pub fn reads_copy(&self) -> bool {
        self.copy.is_some()
    }

    /// `PLModelVersion` from `Z_METADATA`, when readable.
    pub fn model_version(&self) -> Option<i64> {
        self.schema.version.model
    }

    /// The Photos release that wrote the database (for logs).
    pub fn version(&self) -> PhotosVersion {
        self.schema.version
    }

    /// The library root that resource paths are resolved against.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The database file that was opened (the live one, even when a copy is read).
    pub fn database_path(&self) -> &Path {
        &self.database
    }

    /// Every asset Photos shows (trashed ones included, flagged), in `Z_PK` order.
    pub async fn assets(&self) -> Result<Vec<ReadAsset>> {
        Ok(self.scan_assets().await?.assets)
    }

    /// Every asset row, read or skipped with its reason.
    pub async fn scan_assets(&self) -> Result<AssetScan> {
        let root = self.root.clone();
        self.read(move |connection, schema, database| assets::scan(connection, schema, database, &root))
            .await
    }

    /// The Core Data store's UUID (`Z_METADATA.Z_UUID`): made when the library's database was created, kept
    /// across Photos upgrades and by a copy, different for each Mac's own library of one iCloud library.
    /// `None` when the database has none.
    pub async fn store_uuid(&self) -> Result<Option<String>> {
        self.read(|connection, _schema, database| {
            let read = || -> rusqlite::Result<Option<String>> {
                let present = connection
                    .prepare("SELECT 1 FROM pragma_table_info('Z_METADATA') WHERE name = 'Z_UUID'")?
                    .exists([])?;
                if !present {
                    return Ok(None);
                }
                let mut statement =
                    connection.prepare("SELECT Z_UUID FROM Z_METADATA ORDER BY Z_VERSION DESC LIMIT 1")?;
                let mut rows = statement.query([])?;
                let uuid = match rows.next()? {
                    Some(row) => row.get::<_, Option<String>>(0)?,
                    None => None,
                };
                Ok(uuid.filter(|u| !u.is_empty()))
            };
            read().map_err(|e| open::query_error(database, e))
        })
        .await
    }

    /// User albums, folders and shared albums, with members in the order Photos displays them.
    pub async fn albums(&self) -> Result<Vec<ReadAlbum>> {
        self.read(albums::read).await
    }

    /// Runs a read on a blocking thread with the connection.
    async fn read<T, F>(&self, read: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&Connection, &Schema, &Path) -> Result<T> + Send + 'static,
    {
        let connection = Arc::clone(&self.connection);
        let schema = Arc::clone(&self.schema);
        let database = self.database.clone();
        blocking(&self.database, move || {
            // A panic in an earlier read cannot leave the read-only connection half-changed: go on with it.
            let connection = connection.lock().unwrap_or_else(PoisonError::into_inner);
            read(&connection, &schema, &database)
        })
        .await
    }
}

/// Runs blocking SQLite and file-system work off the async workers.
async fn blocking<T, F>(database: &Path, work: F) -> Result<T>
where
    T: Send + 'static,
    F: FnOnce() -> Result<T> + Send + 'static,
{
    tokio::task::spawn_blocking(work)
        .await
        .map_err(|join| Error::Io {
            path: database.to_path_buf(),
            action: "reading the library on a blocking thread",
            source: std::io::Error::other(join),
        })?
}
