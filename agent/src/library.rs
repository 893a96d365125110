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
pub mod error;
mod folder;
mod open;
mod resources;
mod schema;
mod time;

use std::path::{Path, PathBuf};

use sqlx::sqlite::SqlitePool;
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
    pool: SqlitePool,
    schema: Schema,
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
        let opened = open::open(&paths.database).await?;
        let schema = Schema::discover(&opened.pool, &paths.database).await?;
        tracing::info!(
            path = %paths.database.display(),
            version = %schema.version,
            copy = opened.copy.is_some(),
            "opened Photos library"
        );
        Ok(PhotosLibrary {
            pool: opened.pool,
            schema,
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
        assets::scan(&self.pool, &self.schema, &self.database, &self.root).await
    }

    /// User albums, folders and shared albums, with members in the order Photos displays them.
    pub async fn albums(&self) -> Result<Vec<ReadAlbum>> {
        albums::read(&self.pool, &self.schema, &self.database).await
    }
}
