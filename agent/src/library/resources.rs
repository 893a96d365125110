//! Where an asset's files are on disk and whether they are there: the original, a Live Photo's paired video and
//! the edited render. Paths follow the bundle layout in `photos-sqlite.md`; availability is decided by the file
//! system first (the database can lag behind a download), then by `ZINTERNALRESOURCE.ZLOCALAVAILABILITY` to tell
//! an iCloud-only original from a file that should be there and is not.
//!
//! Each file is looked at once per pass, with one `stat`: whether it is there, and its size and modification
//! time, which the sync loop's hash cache compares without looking again.

use std::path::{Path, PathBuf};

use api::{Resource, ResourceType, UnavailableReason};

use super::ResourceFile;
use super::disk::Disk;

/// One `ZINTERNALRESOURCE` row, reduced to what decides paths, sizes and availability.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct ResourceRow {
    pub resource_type: Option<i64>,
    pub store_subtype: Option<i64>,
    pub version: Option<i64>,
    pub local_availability: Option<i64>,
    pub data_length: Option<i64>,
    pub compact_uti: Option<i64>,
}

/// The asset facts resources depend on.
#[derive(Debug, Clone, Copy)]
pub(crate) struct AssetFiles<'a> {
    pub uuid: &'a str,
    pub directory: Option<&'a str>,
    pub filename: Option<&'a str>,
    pub saved_type: Option<i64>,
    pub video: bool,
    pub live_photo: bool,
    pub edited: bool,
    /// `ZCLOUDASSETGUID` is set: a missing file may legitimately be only in iCloud.
    pub cloud: bool,
    /// `ZADDITIONALASSETATTRIBUTES.ZORIGINALFILESIZE`.
    pub original_size: Option<i64>,
}

/// `ZSAVEDASSETTYPE` of an asset received through an iCloud shared album.
const SAVED_TYPE_SHARED: i64 = 4;
/// `ZCOMPACTUTI` of a HEIC resource (seen on the fixtures; JPEG is 1).
const COMPACT_UTI_HEIC: i64 = 3;

/// Builds the wire resources and their paths, in the order original, live video, render.
pub(crate) fn build(
    root: &Path,
    disk: &mut Disk,
    asset: &AssetFiles<'_>,
    rows: &[ResourceRow],
) -> (Vec<Resource>, Vec<ResourceFile>) {
    let n = 1 + usize::from(asset.live_photo) + usize::from(asset.edited);
    let mut resources = Vec::with_capacity(n);
    let mut files = Vec::with_capacity(n);
    let mut push =
        |disk: &mut Disk, resource_type, path: PathBuf, row: Option<&ResourceRow>, declared: Option<i64>| {
            let stamp = disk.stamp(&path);
            let (available, unavailable_reason) = availability(
                stamp.is_some(),
                row.and_then(|r| r.local_availability),
                asset.cloud,
            );
            let size = declared
                .or_else(|| row.and_then(|r| r.data_length))
                .and_then(|size| u64::try_from(size).ok())
                .or_else(|| stamp.map(|s| s.size))
                .unwrap_or(0);
            resources.push(Resource {
                resource_type,
                size,
                sha256: None,
                available,
                unavailable_reason,
                bundle_path: bundle_path(root, &path),
            });
            files.push(ResourceFile {
                resource_type,
                path,
                stamp,
            });
        };

    let original = original_path(root, disk, asset);
    let original_row = rows.iter().find(|r| {
        r.version == Some(0) && r.store_subtype == Some(1) && matches!(r.resource_type, Some(0 | 1))
    });
    let declared = asset.original_size.filter(|size| *size > 0);
    push(
        disk,
        ResourceType::Original,
        original.clone(),
        original_row,
        declared,
    );

    if asset.live_photo {
        let path = original.with_file_name(format!("{}_3.mov", asset.uuid));
        let row = rows
            .iter()
            .find(|r| r.resource_type == Some(3) && r.store_subtype == Some(18))
            .or_else(|| {
                rows.iter()
                    .find(|r| r.resource_type == Some(3) && r.version == Some(0))
            });
        push(disk, ResourceType::LiveVideo, path, row, None);
    }

    if asset.edited {
        let row = rows
            .iter()
            .find(|r| r.version == Some(2) && matches!(r.resource_type, Some(0 | 1)));
        let path = render_path(root, disk, asset, row.and_then(|r| r.compact_uti));
        push(disk, ResourceType::Render, path, row, None);
    }
    (resources, files)
}

/// `originals/<dir>/<file>`; a referenced file's absolute directory; shared-album files under `cloudsharing`.
pub(crate) fn original_path(root: &Path, disk: &mut Disk, asset: &AssetFiles<'_>) -> PathBuf {
    let filename = asset.filename.filter(|f| !f.is_empty()).unwrap_or(asset.uuid);
    let directory = asset.directory.filter(|d| !d.is_empty());
    if let Some(absolute) = directory.filter(|d| d.starts_with('/')) {
        return Path::new(absolute).join(filename);
    }
    let directory = directory.unwrap_or_else(|| first_char(asset.uuid));
    if asset.saved_type == Some(SAVED_TYPE_SHARED) {
        // Photos 5 kept shared-album files under resources/, later releases under scopes/.
        let scopes = under(root, &["scopes/cloudsharing/data", directory, filename]);
        let resources = under(root, &["resources/cloudsharing/data", directory, filename]);
        return if !disk.is_file(&scopes) && disk.is_file(&resources) {
            resources
        } else {
            scopes
        };
    }
    under(root, &["originals", directory, filename])
}

/// `resources/renders/<X>/<UUID>_1_201_a.<jpeg|heic>`, or `<UUID>_2_0_a.mov` for an edited video.
fn render_path(root: &Path, disk: &mut Disk, asset: &AssetFiles<'_>, compact_uti: Option<i64>) -> PathBuf {
    let directory = asset
        .directory
        .filter(|d| !d.is_empty() && !d.starts_with('/'))
        .unwrap_or_else(|| first_char(asset.uuid));
    let uuid = asset.uuid;
    if asset.video {
        return under(
            root,
            &["resources/renders", directory, &format!("{uuid}_2_0_a.mov")],
        );
    }
    let heic = under(
        root,
        &["resources/renders", directory, &format!("{uuid}_1_201_a.heic")],
    );
    if compact_uti == Some(COMPACT_UTI_HEIC) || disk.is_file(&heic) {
        heic
    } else {
        heic.with_extension("jpeg")
    }
}

/// The file's path inside the bundle, `/`-separated (`originals/3/<UUID>.jpeg`): where the server stores it.
/// `None` for a file outside the bundle (a referenced original) or a name that is not UTF-8.
fn bundle_path(root: &Path, path: &Path) -> Option<String> {
    let relative = path.strip_prefix(root).ok()?;
    let mut out = String::with_capacity(relative.as_os_str().len());
    for part in relative.components() {
        let std::path::Component::Normal(part) = part else {
            return None;
        };
        if !out.is_empty() {
            out.push('/');
        }
        out.push_str(part.to_str()?);
    }
    (!out.is_empty()).then_some(out)
}

/// `root/a/b/c` in one allocation (a path is built for every resource of every asset).
fn under(root: &Path, parts: &[&str]) -> PathBuf {
    let length = root.as_os_str().len() + parts.iter().map(|p| p.len() + 1).sum::<usize>();
    let mut path = PathBuf::with_capacity(length);
    path.push(root);
    for part in parts {
        path.push(part);
    }
    path
}

/// On disk → available; else iCloud-only when the asset is in iCloud and Photos says the file is not local.
fn availability(on_disk: bool, local: Option<i64>, cloud: bool) -> (bool, Option<UnavailableReason>) {
    if on_disk {
        (true, None)
    } else if cloud && local != Some(1) {
        (false, Some(UnavailableReason::IcloudOnly))
    } else {
        (false, Some(UnavailableReason::Missing))
    }
}

/// The UUID's first character (Photos' directory for it), borrowed.
fn first_char(uuid: &str) -> &str {
    uuid.char_indices().nth(1).map_or(uuid, |(end, _)| &uuid[..end])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn asset(uuid: &str) -> AssetFiles<'_> {
        AssetFiles {
            uuid,
            directory: Some("A"),
            filename: Some("A1.heic"),
            saved_type: Some(3),
            video: false,
            live_photo: false,
            edited: false,
            cloud: false,
            original_size: Some(10),
        }
    }

    #[test]
    fn present_file_is_available_and_missing_one_says_why() {
        let root = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(root.path().join("originals/A")).unwrap();
        std::fs::write(root.path().join("originals/A/A1.heic"), b"0123456789").unwrap();
        let (resources, files) = build(root.path(), &mut Disk::new(root.path()), &asset("A1"), &[]);
        assert_eq!(files[0].path, root.path().join("originals/A/A1.heic"));
        assert!(resources[0].available);
        assert_eq!(resources[0].size, 10);

        let mut cloud = asset("A2");
        cloud.filename = Some("A2.heic");
        cloud.cloud = true;
        let row = ResourceRow {
            resource_type: Some(0),
            store_subtype: Some(1),
            version: Some(0),
            local_availability: Some(-1),
            ..ResourceRow::default()
        };
        let (resources, _) = build(root.path(), &mut Disk::new(root.path()), &cloud, &[row]);
        assert_eq!(
            resources[0].unavailable_reason,
            Some(UnavailableReason::IcloudOnly)
        );
        cloud.cloud = false;
        let (resources, _) = build(root.path(), &mut Disk::new(root.path()), &cloud, &[row]);
        assert_eq!(resources[0].unavailable_reason, Some(UnavailableReason::Missing));
    }

    #[test]
    fn referenced_live_and_edited_paths() {
        let root = Path::new("/lib");
        let mut a = asset("D4");
        a.directory = Some("/Users/me/Pictures");
        a.filename = Some("IMG_1.HEIC");
        assert_eq!(
            original_path(root, &mut Disk::new(root), &a),
            Path::new("/Users/me/Pictures/IMG_1.HEIC")
        );

        let mut live = asset("D4");
        live.directory = Some("D");
        live.filename = Some("D4.heic");
        live.live_photo = true;
        live.edited = true;
        let (resources, files) = build(root, &mut Disk::new(root), &live, &[]);
        let types: Vec<_> = resources.iter().map(|r| r.resource_type).collect();
        assert_eq!(
            types,
            [
                ResourceType::Original,
                ResourceType::LiveVideo,
                ResourceType::Render
            ]
        );
        assert_eq!(files[1].path, Path::new("/lib/originals/D/D4_3.mov"));
        // Each resource names its path inside the bundle: where the server stores it.
        let paths: Vec<_> = resources.iter().map(|r| r.bundle_path.as_deref()).collect();
        assert_eq!(
            paths,
            [
                Some("originals/D/D4.heic"),
                Some("originals/D/D4_3.mov"),
                Some("resources/renders/D/D4_1_201_a.jpeg")
            ]
        );
        // A referenced original is outside the bundle: no bundle path, so a content-addressed key.
        let mut referenced = asset("D5");
        referenced.directory = Some("/Users/me/Pictures");
        let (resources, _) = build(root, &mut Disk::new(root), &referenced, &[]);
        assert_eq!(resources[0].bundle_path, None);
        assert_eq!(
            files[2].path,
            Path::new("/lib/resources/renders/D/D4_1_201_a.jpeg")
        );

        live.video = true;
        let (_, files) = build(root, &mut Disk::new(root), &live, &[]);
        assert_eq!(files[2].path, Path::new("/lib/resources/renders/D/D4_2_0_a.mov"));
    }
}
