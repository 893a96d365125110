//! The plain-folder source reads what each file says about itself (issue 13, item 8): capture date and zone,
//! pixel size, a video's duration and its location, from EXIF and QuickTime/MP4 metadata; the modification time
//! stands in for the date only when a file records none. The files are made here: JPEGs by the `image` crate
//! with an EXIF block written byte by byte, videos by `ffmpeg` with their metadata moved to where an iPhone
//! (`moov/meta`) or an Android phone (`moov/udta/©xyz`) puts it.

// Helpers outside #[test] fns are not covered by allow-unwrap-in-tests (rust-clippy #13981).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, SystemTime};

use chrono::{DateTime, Local, NaiveDateTime, TimeZone as _, Utc};
use iphoto_agent::library::{FolderLibrary, ReadAsset};

/// Sets a file's modification time far from every date the files record, so a date taken from it shows.
fn set_mtime(path: &Path, unix_seconds: u64) -> DateTime<Utc> {
    let at = SystemTime::UNIX_EPOCH + Duration::from_secs(unix_seconds);
    std::fs::File::options()
        .write(true)
        .open(path)
        .unwrap()
        .set_modified(at)
        .unwrap();
    DateTime::<Utc>::from(at)
}

async fn read_one(dir: &Path) -> ReadAsset {
    let mut assets = FolderLibrary::open(dir).unwrap().assets().await.unwrap();
    assert_eq!(assets.len(), 1, "{assets:?}");
    assets.remove(0)
}

fn close(actual: Option<f64>, expected: f64) {
    let actual = actual.unwrap_or_else(|| panic!("no coordinate, expected {expected}"));
    assert!((actual - expected).abs() < 1e-6, "{actual} != {expected}");
}

// ---------------------------------------------------------------------------------------------------------
// EXIF, written by hand: a little-endian TIFF block with IFD0, the Exif sub-IFD and the GPS sub-IFD.

const ASCII: u16 = 2;
const SHORT: u16 = 3;
const LONG: u16 = 4;
const RATIONAL: u16 = 5;

struct Field {
    tag: u16,
    kind: u16,
    count: u32,
    data: Vec<u8>,
}

fn ascii(tag: u16, text: &str) -> Field {
    let mut data = text.as_bytes().to_vec();
    data.push(0);
    Field {
        tag,
        kind: ASCII,
        count: data.len() as u32,
        data,
    }
}

fn short(tag: u16, value: u16) -> Field {
    Field {
        tag,
        kind: SHORT,
        count: 1,
        data: value.to_le_bytes().to_vec(),
    }
}

fn long(tag: u16, value: u32) -> Field {
    Field {
        tag,
        kind: LONG,
        count: 1,
        data: value.to_le_bytes().to_vec(),
    }
}

/// Degrees, minutes, seconds as three rationals.
fn dms(tag: u16, degrees: u32, minutes: u32, seconds_hundredths: u32) -> Field {
    let mut data = Vec::new();
    for (numerator, denominator) in [(degrees, 1u32), (minutes, 1), (seconds_hundredths, 100)] {
        data.extend_from_slice(&numerator.to_le_bytes());
        data.extend_from_slice(&denominator.to_le_bytes());
    }
    Field {
        tag,
        kind: RATIONAL,
        count: 3,
        data,
    }
}

/// Bytes an IFD takes, its out-of-line values included.
fn ifd_len(fields: &[Field]) -> usize {
    let out_of_line: usize = fields
        .iter()
        .filter(|f| f.data.len() > 4)
        .map(|f| f.data.len().next_multiple_of(2))
        .sum();
    2 + 12 * fields.len() + 4 + out_of_line
}

/// Appends an IFD at `out.len()` (its offset in the TIFF block), values longer than 4 bytes after it.
fn write_ifd(out: &mut Vec<u8>, fields: &[Field]) {
    let start = out.len();
    let mut data_at = start + 2 + 12 * fields.len() + 4;
    let mut data = Vec::new();
    out.extend_from_slice(&(fields.len() as u16).to_le_bytes());
    for field in fields {
        out.extend_from_slice(&field.tag.to_le_bytes());
        out.extend_from_slice(&field.kind.to_le_bytes());
        out.extend_from_slice(&field.count.to_le_bytes());
        if field.data.len() <= 4 {
            let mut inline = field.data.clone();
            inline.resize(4, 0);
            out.extend_from_slice(&inline);
        } else {
            out.extend_from_slice(&(data_at as u32).to_le_bytes());
            let mut value = field.data.clone();
            value.resize(field.data.len().next_multiple_of(2), 0);
            data_at += value.len();
            data.extend_from_slice(&value);
        }
    }
    out.extend_from_slice(&0u32.to_le_bytes());
    out.extend_from_slice(&data);
}

/// A TIFF block: IFD0 (orientation, links to the sub-IFDs), the Exif IFD, and the GPS IFD when given.
fn exif_block(orientation: u16, exif: Vec<Field>, gps: Vec<Field>) -> Vec<u8> {
    let ifd0_len = ifd_len(&[short(0, 0), long(0, 0), long(0, 0)]);
    let exif_at = 8 + ifd0_len;
    let gps_at = exif_at + ifd_len(&exif);
    let mut ifd0 = vec![short(0x0112, orientation), long(0x8769, exif_at as u32)];
    if !gps.is_empty() {
        ifd0.push(long(0x8825, gps_at as u32));
    }
    let mut out = b"II*\0".to_vec();
    out.extend_from_slice(&8u32.to_le_bytes());
    write_ifd(&mut out, &ifd0);
    out.resize(exif_at, 0);
    write_ifd(&mut out, &exif);
    if !gps.is_empty() {
        write_ifd(&mut out, &gps);
    }
    out
}

/// A small real JPEG (64×48 pixels) carrying `exif`.
fn write_jpeg(path: &Path, exif: Option<Vec<u8>>) {
    use image::ImageEncoder as _;
    let pixels = image::RgbImage::from_fn(64, 48, |x, y| image::Rgb([x as u8 * 4, y as u8 * 5, 90]));
    let mut out = Vec::new();
    let mut encoder = image::codecs::jpeg::JpegEncoder::new_with_quality(&mut out, 90);
    if let Some(exif) = exif {
        encoder.set_exif_metadata(exif).unwrap();
    }
    encoder
        .write_image(pixels.as_raw(), 64, 48, image::ExtendedColorType::Rgb8)
        .unwrap();
    std::fs::write(path, out).unwrap();
}

#[tokio::test]
async fn a_jpeg_gives_its_exif_date_zone_size_and_location() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("IMG_0001.JPG");
    // A portrait shot: 4032×3024 stored, orientation 6 (turn a quarter to show).
    let exif = exif_block(
        6,
        vec![
            ascii(0x9003, "2024:07:04 14:05:06"),
            ascii(0x9011, "+02:00"),
            long(0xa002, 4032),
            long(0xa003, 3024),
        ],
        vec![
            ascii(0x0001, "S"),
            dms(0x0002, 33, 51, 3_540),
            ascii(0x0003, "E"),
            dms(0x0004, 151, 12, 3_060),
        ],
    );
    write_jpeg(&path, Some(exif));
    set_mtime(&path, 1_000_000_000);

    let asset = read_one(dir.path()).await;
    let item = &asset.item;
    assert_eq!(item.taken_at.to_rfc3339(), "2024-07-04T14:05:06+02:00");
    assert_eq!((item.width, item.height), (3024, 4032));
    close(item.latitude, -(33.0 + 51.0 / 60.0 + 35.40 / 3600.0));
    close(item.longitude, 151.0 + 12.0 / 60.0 + 30.60 / 3600.0);
    assert_eq!(item.duration_ms, None);
    // The record's own change time is still the file's.
    assert_eq!(item.modified_at.timestamp(), 1_000_000_000);
}

/// Reading a file's metadata adds nothing to the agent's logs at its default level (the parser logs each GPS
/// tag at INFO: seven lines per photo under launchd, where the default is `info`).
#[tokio::test]
async fn reading_metadata_adds_no_log_lines() {
    let dir = tempfile::tempdir().unwrap();
    let exif = exif_block(
        1,
        vec![ascii(0x9003, "2024:07:04 14:05:06")],
        vec![
            ascii(0x0001, "N"),
            dms(0x0002, 48, 51, 2_400),
            ascii(0x0003, "E"),
            dms(0x0004, 2, 17, 4_020),
        ],
    );
    write_jpeg(&dir.path().join("a.jpg"), Some(exif));
    let output = Command::new(env!("CARGO_BIN_EXE_iphoto-agent"))
        .args(["scan", "--json", "--library"])
        .arg(dir.path())
        .env("IPHOTO_LOG", "info")
        .output()
        .unwrap();
    assert!(output.status.success());
    let scan: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    close(
        scan["items"][0]["latitude"].as_f64(),
        48.0 + 51.0 / 60.0 + 24.0 / 3600.0,
    );
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!stderr.contains("nom_exif"), "{stderr}");
}

/// libheif stores a HEIC's Exif item as a zero offset and the TIFF block; an iPhone as offset 6, `Exif\0\0`, then
/// the TIFF block, which is the layout `nom-exif` reads. Rewrites the item the iPhone's way: it is the file's
/// last bytes (inside the last box, `mdat`), so only its `iloc` length and the `mdat` size change.
fn apple_exif_header(path: &Path) {
    let mut bytes = std::fs::read(path).unwrap();
    let (kind, mdat) = boxes(&bytes).last().unwrap().clone();
    assert_eq!(&kind, b"mdat");
    let tiff = bytes
        .windows(8)
        .rposition(|w| w == b"\0\0\0\0II*\0")
        .expect("libheif's Exif item");
    let length = (bytes.len() - tiff) as u32;
    // The item's `iloc` entry: base offset, one extent at offset 0, its length (4-byte fields, as libheif writes).
    let mut entry = (tiff as u32).to_be_bytes().to_vec();
    entry.extend_from_slice(&[0, 1, 0, 0, 0, 0]);
    entry.extend_from_slice(&length.to_be_bytes());
    let at = bytes
        .windows(entry.len())
        .position(|w| w == entry)
        .expect("the Exif item's iloc entry");
    bytes[at + 10..at + 14].copy_from_slice(&(length + 6).to_be_bytes());
    let mdat_size = u32::from_be_bytes(bytes[mdat.start..mdat.start + 4].try_into().unwrap()) + 6;
    bytes[mdat.start..mdat.start + 4].copy_from_slice(&mdat_size.to_be_bytes());
    bytes.splice(tiff..tiff + 4, [0, 0, 0, 6, b'E', b'x', b'i', b'f', 0, 0]);
    std::fs::write(path, bytes).unwrap();
}

/// An iPhone's HEIC: the same EXIF inside the HEIF container (`heif-enc` keeps the JPEG's EXIF block).
#[tokio::test]
async fn a_heic_gives_its_exif_date_zone_size_and_location() {
    let dir = tempfile::tempdir().unwrap();
    let source = tempfile::tempdir().unwrap();
    let jpeg = source.path().join("source.jpg");
    let exif = exif_block(
        1,
        vec![
            ascii(0x9003, "2023:01:02 03:04:05"),
            ascii(0x9011, "-05:00"),
            long(0xa002, 4032),
            long(0xa003, 3024),
        ],
        vec![
            ascii(0x0001, "N"),
            dms(0x0002, 40, 41, 2_150),
            ascii(0x0003, "W"),
            dms(0x0004, 74, 2, 4_050),
        ],
    );
    write_jpeg(&jpeg, Some(exif));
    let heic = dir.path().join("IMG_0003.HEIC");
    let status = Command::new("heif-enc")
        .arg("--quiet")
        .arg(&jpeg)
        .arg("-o")
        .arg(&heic)
        .status()
        .expect("heif-enc is installed (scripts/install-test-deps.sh)");
    assert!(status.success());
    apple_exif_header(&heic);
    set_mtime(&heic, 1_000_000_000);

    let item = read_one(dir.path()).await.item;
    assert_eq!(item.taken_at.to_rfc3339(), "2023-01-02T03:04:05-05:00");
    assert_eq!((item.width, item.height), (4032, 3024));
    close(item.latitude, 40.0 + 41.0 / 60.0 + 21.50 / 3600.0);
    close(item.longitude, -(74.0 + 2.0 / 60.0 + 40.50 / 3600.0));
}

#[tokio::test]
async fn a_jpeg_without_a_zone_is_dated_on_the_macs_clock() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("scan.jpg");
    let exif = exif_block(1, vec![ascii(0x9003, "2019:12:24 18:30:00")], vec![]);
    write_jpeg(&path, Some(exif));
    set_mtime(&path, 1_000_000_000);

    let item = read_one(dir.path()).await.item;
    let naive = NaiveDateTime::parse_from_str("2019-12-24 18:30:00", "%Y-%m-%d %H:%M:%S").unwrap();
    let expected = Local.from_local_datetime(&naive).earliest().unwrap();
    assert_eq!(item.taken_at.naive_local(), naive);
    assert_eq!(item.taken_at.timestamp(), expected.timestamp());
    // No EXIF size: the JPEG's own header gives it; no GPS, no location.
    assert_eq!((item.width, item.height), (64, 48));
    assert_eq!((item.latitude, item.longitude), (None, None));
}

#[tokio::test]
async fn a_file_without_metadata_is_dated_by_its_mtime_and_sized_by_its_header() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("Screenshot.png");
    image::RgbImage::from_pixel(40, 30, image::Rgb([1, 2, 3]))
        .save(&path)
        .unwrap();
    let mtime = set_mtime(&path, 1_600_000_000);

    let item = read_one(dir.path()).await.item;
    assert_eq!(item.taken_at, mtime.fixed_offset());
    assert_eq!((item.width, item.height), (40, 30));
}

#[tokio::test]
async fn a_decomposed_file_name_is_sent_composed_and_read_from_its_own_path() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("Fri\u{301}test.jpg");
    write_jpeg(&path, None);

    let asset = read_one(dir.path()).await;
    assert_eq!(asset.item.original_filename, "Fr\u{ed}test.jpg");
    assert_eq!(asset.files[0].path, path);
}

// ---------------------------------------------------------------------------------------------------------
// Videos: ffmpeg makes them; the boxes it puts its metadata in are moved to where phones put them.

/// A 320×240 MPEG-4 clip of `seconds` with the given extra ffmpeg arguments (metadata).
fn ffmpeg(path: &Path, seconds: u32, extra: &[&str]) {
    let status = Command::new("ffmpeg")
        .args(["-v", "error", "-y", "-f", "lavfi", "-i"])
        .arg(format!("testsrc=size=320x240:rate=10:duration={seconds}"))
        .args(["-c:v", "mpeg4"])
        .args(extra)
        .arg(path)
        .status()
        .expect("ffmpeg is installed (scripts/install-test-deps.sh)");
    assert!(status.success());
}

/// The boxes directly inside `bytes`: type and byte range (header included).
fn boxes(bytes: &[u8]) -> Vec<([u8; 4], std::ops::Range<usize>)> {
    let mut out = Vec::new();
    let mut at = 0;
    while at + 8 <= bytes.len() {
        let size = u32::from_be_bytes(bytes[at..at + 4].try_into().unwrap()) as usize;
        assert!(
            size >= 8 && at + size <= bytes.len(),
            "a box this test cannot walk"
        );
        out.push((bytes[at + 4..at + 8].try_into().unwrap(), at..at + size));
        at += size;
    }
    out
}

fn make_box(kind: &[u8; 4], body: &[u8]) -> Vec<u8> {
    let mut out = ((body.len() + 8) as u32).to_be_bytes().to_vec();
    out.extend_from_slice(kind);
    out.extend_from_slice(body);
    out
}

/// Rewrites `moov` (the file's last box, after `mdat`, so no chunk offset moves) with `edit` applied to its
/// children.
fn edit_moov(path: &Path, edit: impl FnOnce(Vec<Vec<u8>>) -> Vec<Vec<u8>>) {
    let bytes = std::fs::read(path).unwrap();
    let top = boxes(&bytes);
    let (kind, range) = top.last().unwrap().clone();
    assert_eq!(&kind, b"moov", "moov last, as ffmpeg writes without +faststart");
    let moov = &bytes[range.start + 8..range.end];
    let children = boxes(moov).into_iter().map(|(_, r)| moov[r].to_vec()).collect();
    let mut out = bytes[..range.start].to_vec();
    out.extend_from_slice(&make_box(b"moov", &edit(children).concat()));
    std::fs::write(path, out).unwrap();
}

/// ffmpeg writes QuickTime keys as `moov/udta/meta` (a full box); an iPhone writes them as `moov/meta` (a plain
/// box), which is where Photos reads them. Moves them there.
fn move_keys_to_moov_meta(path: &Path) {
    edit_moov(path, |children| {
        children
            .into_iter()
            .map(|child| {
                if &child[4..8] != b"udta" {
                    return child;
                }
                let udta = &child[8..];
                let (_, meta) = boxes(udta)
                    .into_iter()
                    .find(|(kind, _)| kind == b"meta")
                    .expect("udta/meta");
                // Past the box header and the full box's version and flags.
                make_box(b"meta", &udta[meta.start + 12..meta.end])
            })
            .collect()
    });
}

/// Adds an Android-style `moov/udta/©xyz` location.
fn add_udta_location(path: &Path, iso6709: &str) {
    edit_moov(path, |children| {
        children
            .into_iter()
            .map(|child| {
                if &child[4..8] != b"udta" {
                    return child;
                }
                let mut body = child[8..].to_vec();
                let mut xyz = (iso6709.len() as u16).to_be_bytes().to_vec();
                xyz.extend_from_slice(&0x15c7u16.to_be_bytes()); // language
                xyz.extend_from_slice(iso6709.as_bytes());
                body.extend_from_slice(&make_box(b"\xa9xyz", &xyz));
                make_box(b"udta", &body)
            })
            .collect()
    });
}

#[tokio::test]
async fn an_iphone_style_movie_gives_its_creation_date_zone_duration_size_and_location() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("IMG_0002.MOV");
    ffmpeg(
        &path,
        3,
        &[
            "-movflags",
            "use_metadata_tags",
            "-metadata",
            // As an iPhone writes it: the offset without a colon.
            "com.apple.quicktime.creationdate=2024-07-04T14:05:06+0200",
            "-metadata",
            "com.apple.quicktime.location.ISO6709=+48.8584+002.2945+035.000/",
        ],
    );
    move_keys_to_moov_meta(&path);
    set_mtime(&path, 1_000_000_000);

    let item = read_one(dir.path()).await.item;
    assert_eq!(item.kind, api::AssetKind::Video);
    assert_eq!(item.taken_at.to_rfc3339(), "2024-07-04T14:05:06+02:00");
    assert_eq!(item.duration_ms, Some(3000));
    assert_eq!((item.width, item.height), (320, 240));
    close(item.latitude, 48.8584);
    close(item.longitude, 2.2945);
}

#[tokio::test]
async fn an_mp4_gives_its_creation_time_duration_size_and_location() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("VID_20240704.mp4");
    ffmpeg(&path, 2, &["-metadata", "creation_time=2024-07-04T12:05:06Z"]);
    add_udta_location(&path, "-33.8568+151.2153/");
    set_mtime(&path, 1_000_000_000);

    let item = read_one(dir.path()).await.item;
    assert_eq!(item.taken_at.to_rfc3339(), "2024-07-04T12:05:06+00:00");
    assert_eq!(item.duration_ms, Some(2000));
    assert_eq!((item.width, item.height), (320, 240));
    close(item.latitude, -33.8568);
    close(item.longitude, 151.2153);
}

#[tokio::test]
async fn a_movie_without_a_creation_time_is_dated_by_its_mtime() {
    let dir = tempfile::tempdir().unwrap();
    let path: PathBuf = dir.path().join("screen.mp4");
    // ffmpeg writes a zero `mvhd` creation time (1904) when none is given.
    ffmpeg(&path, 1, &[]);
    let mtime = set_mtime(&path, 1_600_000_000);

    let item = read_one(dir.path()).await.item;
    assert_eq!(item.taken_at, mtime.fixed_offset());
    assert_eq!(item.duration_ms, Some(1000));
    assert_eq!((item.width, item.height), (320, 240));
}
