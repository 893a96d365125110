//! Which kind of library a path is: a Photos bundle (or its `Photos.sqlite`) or a plain folder of files.

use std::path::Path;

use crate::library::{AssetScan, FolderLibrary, PhotosLibrary, ReadAlbum, Result};

/// An open library of either kind.
#[derive(Debug)]
pub enum Source {
    /// A `.photoslibrary` bundle or a `Photos.sqlite` file.
    Photos(Box<PhotosLibrary>),
    /// Any other directory: its photos and videos, no albums.
    Folder(FolderLibrary),
}

impl Source {
    /// A directory holding `database/Photos.sqlite`, a `.photoslibrary` path or a file is read as Photos;
    /// any other directory as a plain folder.
    pub async fn open(path: &Path) -> Result<Source> {
        // A database the OS will not even `stat` (macOS privacy protection) still marks a Photos library, so the
        // error says so instead of the bundle being walked as a plain folder.
        let database = std::fs::metadata(path.join("database").join("Photos.sqlite"));
        let photos = !path.is_dir()
            || database.as_ref().is_ok_and(std::fs::Metadata::is_file)
            || database.is_err_and(|e| e.kind() == std::io::ErrorKind::PermissionDenied)
            || path.extension().is_some_and(|ext| ext == "photoslibrary");
        if photos {
            Ok(Source::Photos(Box::new(PhotosLibrary::open(path).await?)))
        } else {
            Ok(Source::Folder(FolderLibrary::open(path)?))
        }
    }

    /// Every asset, read or skipped with a reason.
    pub async fn scan(&self) -> Result<AssetScan> {
        match self {
            Source::Photos(library) => library.scan_assets().await,
            Source::Folder(folder) => Ok(AssetScan {
                assets: folder.assets().await?,
                skipped: Vec::new(),
            }),
        }
    }

    /// Albums and folders (none for a plain folder).
    pub async fn albums(&self) -> Result<Vec<ReadAlbum>> {
        match self {
            Source::Photos(library) => library.albums().await,
            Source::Folder(_) => Ok(Vec::new()),
        }
    }
}

/// The wire form of an album.
pub fn wire_album(album: &ReadAlbum) -> api::Album {
    api::Album {
        id: album.id.clone(),
        title: album.title.clone(),
        kind: match album.kind {
            crate::library::AlbumKind::Album => api::AlbumKind::Album,
            crate::library::AlbumKind::Folder => api::AlbumKind::Folder,
            crate::library::AlbumKind::Shared => api::AlbumKind::Shared,
        },
        parent_id: album.parent_id.clone(),
        members: album.members.clone(),
        cloud_guid: album.cloud_guid.clone(),
    }
}
