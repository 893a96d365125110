//! A plain folder of photos and videos as a library source, for people who do not use Photos.
//!
//! Deliberately simple: files are recognised by extension, and there are no albums, edits or Live Photos. What
//! Photos would read on import is read from the file itself ([`super::media`]): the capture date and its zone,
//! pixel size, a video's duration and the location; the file's modification time stands in for the date only
//! when the file records none. The identity of a file is its path relative to the folder, hashed into a
//! UUID-shaped id, so it is stable across runs and machines and shaped like a Photos `localIdentifier`.

use std::path::{Path, PathBuf};
use std::time::SystemTime;

use api::{AssetKind, Resource, ResourceType, SyncItem};
use chrono::{DateTime, Utc};
use sha2::{Digest, Sha256};

use super::error::{Error, Result};
use super::media::MediaReader;
use super::time::utc;
use super::value::nfc;
use super::{FileStamp, ReadAsset, ResourceFile};

/// A folder read as a library: every photo or video file below it (hidden files and directories skipped).
#[derive(Debug, Clone)]
pub struct FolderLibrary {
    root: PathBuf,
}

impl FolderLibrary {
    /// Opens a folder; fails with [`Error::NotFound`] when it does not exist or is not a directory.
    pub fn open(dir: &Path) -> Result<FolderLibrary> {
        if !dir.is_dir() {
            return Err(Error::NotFound {
                path: dir.to_path_buf(),
                reason: "no folder at this path",
            });
        }
        Ok(FolderLibrary {
            root: dir.to_path_buf(),
        })
    }

    /// The folder.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Every photo and video below the folder, sorted by relative path. Walks on a blocking thread.
    pub async fn assets(&self) -> Result<Vec<ReadAsset>> {
        let root = self.root.clone();
        tokio::task::spawn_blocking(move || walk(&root))
            .await
            .map_err(|join| Error::Io {
                path: self.root.clone(),
                action: "walking the folder",
                source: std::io::Error::other(join),
            })?
    }
}

/// Photo extensions (lower case) and their UTIs.
const PHOTOS: &[(&str, &str)] = &[
    ("jpg", "public.jpeg"),
    ("jpeg", "public.jpeg"),
    ("heic", "public.heic"),
    ("heif", "public.heif"),
    ("png", "public.png"),
    ("gif", "com.compuserve.gif"),
    ("tif", "public.tiff"),
    ("tiff", "public.tiff"),
    ("webp", "org.webmproject.webp"),
    ("avif", "public.avif"),
    ("dng", "com.adobe.raw-image"),
    ("cr2", "com.canon.cr2-raw-image"),
    ("cr3", "com.canon.cr3-raw-image"),
    ("nef", "com.nikon.raw-image"),
    ("arw", "com.sony.arw-raw-image"),
    ("raf", "com.fuji.raw-image"),
];

/// Video extensions (lower case) and their UTIs.
const VIDEOS: &[(&str, &str)] = &[
    ("mov", "com.apple.quicktime-movie"),
    ("mp4", "public.mpeg-4"),
    ("m4v", "com.apple.m4v-video"),
    ("avi", "public.avi"),
    ("mkv", "org.matroska.mkv"),
    ("3gp", "public.3gpp"),
    ("mts", "public.avchd-mpeg-2-transport-stream"),
];

/// Kind and UTI for a file name, by extension; `None` for anything that is not a photo or video.
pub(crate) fn classify(path: &Path) -> Option<(AssetKind, &'static str)> {
    let extension = path.extension()?.to_str()?.to_ascii_lowercase();
    let find = |table: &[(&str, &'static str)]| {
        table
            .iter()
            .find(|(ext, _)| *ext == extension)
            .map(|(_, uti)| *uti)
    };
    find(PHOTOS)
        .map(|uti| (AssetKind::Photo, uti))
        .or_else(|| find(VIDEOS).map(|uti| (AssetKind::Video, uti)))
}

/// A UUID-shaped id from the relative path (`/`-separated), upper case like Photos' UUIDs.
pub(crate) fn stable_id(relative: &str) -> String {
    let digest = Sha256::digest(relative.as_bytes());
    let hex: String = digest.iter().take(16).map(|b| format!("{b:02X}")).collect();
    format!(
        "{}-{}-{}-{}-{}",
        &hex[0..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..32]
    )
}

fn walk(root: &Path) -> Result<Vec<ReadAsset>> {
    let mut assets = Vec::new();
    let mut media = MediaReader::new();
    let entries = walkdir::WalkDir::new(root)
        .follow_links(false)
        .sort_by_file_name()
        .into_iter()
        .filter_entry(|entry| entry.depth() == 0 || !entry.file_name().to_string_lossy().starts_with('.'));
    for entry in entries {
        let entry = match entry {
            Ok(entry) => entry,
            Err(error) => {
                // One unreadable subdirectory must not hide the rest of the folder.
                tracing::warn!(%error, "skipping unreadable entry");
                continue;
            }
        };
        if !entry.file_type().is_file() {
            continue;
        }
        let Some((kind, uti)) = classify(entry.path()) else {
            tracing::debug!(path = %entry.path().display(), "skipping file that is not a photo or video");
            continue;
        };
        let metadata = entry.metadata().map_err(|error| Error::Io {
            path: entry.path().to_path_buf(),
            action: "reading file metadata",
            source: error.into(),
        })?;
        let relative = entry.path().strip_prefix(root).unwrap_or(entry.path());
        let relative = relative
            .components()
            .map(|c| c.as_os_str().to_string_lossy())
            .collect::<Vec<_>>()
            .join("/");
        let modified = metadata.modified().unwrap_or(SystemTime::UNIX_EPOCH);
        let modified = DateTime::<Utc>::from(modified).with_timezone(&utc());
        let facts = media.read(entry.path());
        let uuid = stable_id(&relative);
        let item = SyncItem {
            local_identifier: format!("{uuid}/L0/001"),
            cloud_guid: None,
            fingerprint: None,
            kind,
            subtype: None,
            live_photo: false,
            width: facts.width,
            height: facts.height,
            duration_ms: facts.duration_ms.filter(|_| kind == AssetKind::Video),
            taken_at: facts.taken_at.unwrap_or(modified),
            time_zone: None,
            modified_at: modified,
            favorite: false,
            hidden: false,
            trashed: false,
            latitude: facts.latitude,
            longitude: facts.longitude,
            // In NFC like every name the reader gives (HFS+ stored names decomposed); the path stays as it is.
            original_filename: nfc(&entry.file_name().to_string_lossy()),
            uti: uti.to_owned(),
            edited: false,
            title: None,
            caption: None,
            keywords: Vec::new(),
            people: Vec::new(),
            resources: vec![Resource {
                resource_type: ResourceType::Original,
                size: metadata.len(),
                sha256: None,
                available: true,
                unavailable_reason: None,
                // Not a Photos bundle: the server keys the bytes by their content.
                bundle_path: None,
            }],
            deleted: false,
        };
        let files = vec![ResourceFile {
            resource_type: ResourceType::Original,
            path: entry.path().to_path_buf(),
            stamp: Some(FileStamp::from_metadata(&metadata)),
        }];
        assets.push(ReadAsset { uuid, item, files });
    }
    Ok(assets)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn extensions_decide_kind() {
        assert_eq!(
            classify(Path::new("a/IMG_1.HEIC")),
            Some((AssetKind::Photo, "public.heic"))
        );
        assert_eq!(
            classify(Path::new("clip.MOV")),
            Some((AssetKind::Video, "com.apple.quicktime-movie"))
        );
        assert_eq!(classify(Path::new("notes.txt")), None);
        assert_eq!(classify(Path::new("README")), None);
    }

    #[test]
    fn ids_are_stable_and_uuid_shaped() {
        let id = stable_id("2024/IMG_1.jpg");
        assert_eq!(id, stable_id("2024/IMG_1.jpg"));
        assert_ne!(id, stable_id("2024/IMG_2.jpg"));
        assert_eq!(id.len(), 36);
        assert_eq!(id.matches('-').count(), 4);
        assert_eq!(id, id.to_uppercase());
    }
}
