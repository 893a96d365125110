//! The codecs run as programs of their own: libheif's `heif-thumbnailer` for HEIC/HEIF and `ffmpeg` for video
//! poster frames. Each writes a small PNG into a temporary directory, which is then read like any other
//! raster; a missing program is a typed error, never a build failure.

use std::path::Path;
use std::process::Command;

use image::{DynamicImage, ImageFormat};

use super::ThumbnailError;
use super::heif_size::declared_size;
use super::raster::{self, check_declared};

/// The libheif tool that decodes a HEIC/HEIF and shrinks it to a PNG, applying the file's rotation and mirror
/// boxes.
const HEIF_THUMBNAILER: &str = "heif-thumbnailer";

pub(super) fn decode_heif(path: &Path, edge: u32) -> Result<DynamicImage, ThumbnailError> {
    decode_heif_with(HEIF_THUMBNAILER.as_ref(), path, edge)
}

/// Runs `program` (a `heif-thumbnailer`) on the original: `-p` renders from the primary image (the embedded
/// thumbnail of an iPhone HEIC is smaller than a 512-px derivative), `-s` bounds the longer edge to `edge`
/// (it never upscales). The PNG it writes is then read like any other raster. An original whose declared
/// size (its `ispe` boxes) is over the decode limits is refused before the tool runs: libheif would decode
/// it whole, in RGBA.
pub(super) fn decode_heif_with(
    program: &std::ffi::OsStr,
    path: &Path,
    edge: u32,
) -> Result<DynamicImage, ThumbnailError> {
    if let Some((width, height)) = declared_size(path)? {
        check_declared(u64::from(width), u64::from(height), 4)?;
    }
    let dir = tempfile::tempdir()?;
    let out = dir.path().join("heif.png");
    let output = match Command::new(program)
        .args(["-p", "-s", &edge.max(1).to_string()])
        .arg(path)
        .arg(&out)
        .stdin(std::process::Stdio::null())
        .output()
    {
        Ok(output) => output,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Err(ThumbnailError::HeifUnavailable),
        Err(e) => return Err(ThumbnailError::Io(e)),
    };
    if !output.status.success() || !std::fs::metadata(&out).is_ok_and(|m| m.len() > 0) {
        return Err(ThumbnailError::Corrupt(format!(
            "libheif could not read the HEIF: {}",
            last_line(&output.stderr)
                .or_else(|| last_line(&output.stdout))
                .unwrap_or("no message")
        )));
    }
    raster::decode(&out, ImageFormat::Png, edge)
}

fn last_line(bytes: &[u8]) -> Option<&str> {
    std::str::from_utf8(bytes).ok()?.trim().lines().last()
}

/// True when libheif's `heif-thumbnailer` is on the `PATH` (it has no version flag: its usage text, printed
/// with a failing status, is the answer).
pub fn heif_available() -> bool {
    Command::new(HEIF_THUMBNAILER)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status()
        .is_ok()
}

/// True when an `ffmpeg` binary answers on the `PATH`.
pub fn ffmpeg_available() -> bool {
    Command::new("ffmpeg")
        .arg("-version")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// A poster frame: the frame at one second (the first frame of a shorter clip), via `ffmpeg` (which applies
/// the rotation metadata), bounded to `edge`; its derivatives are then made like a photo's.
pub(super) fn poster_frame(path: &Path, edge: u32) -> Result<DynamicImage, ThumbnailError> {
    let dir = tempfile::tempdir()?;
    let frame = dir.path().join("frame.png");
    for seek in ["1", "0"] {
        let output = match Command::new("ffmpeg")
            .args([
                "-nostdin",
                "-hide_banner",
                "-loglevel",
                "error",
                "-y",
                "-ss",
                seek,
                "-i",
            ])
            .arg(path)
            .args(["-frames:v", "1", "-an"])
            .arg(&frame)
            .stdin(std::process::Stdio::null())
            .output()
        {
            Ok(output) => output,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(ThumbnailError::Unsupported(
                    "video poster frames need ffmpeg, which is not installed".into(),
                ));
            }
            Err(e) => return Err(ThumbnailError::Io(e)),
        };
        if !output.status.success() {
            return Err(ThumbnailError::Corrupt(format!(
                "ffmpeg could not read the video: {}",
                last_line(&output.stderr).unwrap_or("no message")
            )));
        }
        if std::fs::metadata(&frame).is_ok_and(|m| m.len() > 0) {
            return raster::decode(&frame, ImageFormat::Png, edge);
        }
    }
    Err(ThumbnailError::Corrupt("the video has no frame".into()))
}
