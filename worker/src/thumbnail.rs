//! The codec: one original on disk in, its derivatives out — a thumbnail (512 px, for grids) and a preview
//! (2048 px, for the photo page: browsers cannot show HEIC, and a 12-MP original is needlessly heavy), both
//! JPEG, both from one decode. Pure and blocking (run it on `spawn_blocking`); the worker loop around it is
//! [`crate::run_thumbnail_worker`].
//!
//! - JPEG, PNG, WebP and TIFF are decoded with the `image` crate, within explicit memory limits
//!   ([`DECODE_MAX_BYTES`]): a file declaring more pixels than fit fails with reason `too_large` before
//!   anything is allocated. HEIC/HEIF is decoded and shrunk by libheif's own `heif-thumbnailer`
//!   (Debian/Ubuntu package `heif-thumbnailer`, Homebrew `libheif`), run like `ffmpeg` for videos: the server
//!   builds on any machine with nothing but Rust, and HEIC works wherever that tool is installed; without it
//!   HEIC jobs fail with reason `heif_unavailable`. (Linking libheif instead made the build itself fail on a
//!   machine without `libheif-dev`, quick start included.) A HEIF's declared size is checked against the
//!   same limits before the tool runs.
//! - The format is taken from the file's first bytes, not from the UTI alone: a `.heic` that is really a JPEG
//!   (an old iOS export) still gets derivatives. The UTI decides only when the bytes are not recognised: an
//!   image type then means the file is `corrupt`, anything else is `unsupported`.
//! - Decode once: the original is decoded bounded by the larger edge wanted, turned upright (EXIF orientation
//!   applied after that first shrink; libheif applies HEIF's own rotation/mirror boxes itself), and both
//!   derivatives are shrunk from that one image, never upscaled.
//! - Videos get a poster frame from `ffmpeg` when it is installed, else fail with reason `unsupported`.
//! - JPEG, not WebP: the `image` crate's WebP encoder is lossless only, and a lossless photo is several
//!   times the bytes of a lossy one; a lossy WebP encoder would mean linking libwebp (a C build), for a
//!   format every browser that shows WebP shows JPEG too.

mod heif_size;
mod raster;
mod tools;

use std::io::Read as _;
use std::path::Path;

use image::ImageFormat;

pub use raster::{DECODE_MAX_BYTES, DECODE_MAX_EDGE};
use tools::{decode_heif, poster_frame};
pub use tools::{ffmpeg_available, heif_available};

/// What a derivative looks like.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ThumbnailSpec {
    /// The longer edge of the thumbnail is at most this many pixels (never upscaled).
    pub max_edge: u32,
    /// JPEG quality, 1–100.
    pub quality: u8,
}

impl Default for ThumbnailSpec {
    fn default() -> Self {
        ThumbnailSpec {
            max_edge: 512,
            quality: 82,
        }
    }
}

/// The preview's defaults: a long edge of 2048 px is what a browser needs to fill a laptop's screen (a
/// 4K screen scales it up a little) at a fraction of the original's weight, and JPEG quality 85 keeps a
/// photo's fine texture without visible blocks (about 0.5–1 MB at 12 MP sources).
pub const PREVIEW_SPEC: ThumbnailSpec = ThumbnailSpec {
    max_edge: 2048,
    quality: 85,
};

/// Which derivatives one job makes; `None` leaves one out (a thumbnail already stored, a preview the server
/// asked for no key of).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct DerivativeSpecs {
    /// The small one, for grids.
    pub thumbnail: Option<ThumbnailSpec>,
    /// The large one, for the photo page.
    pub preview: Option<ThumbnailSpec>,
}

impl DerivativeSpecs {
    /// The longer edge the original is decoded to: the larger of the two wanted, `None` if neither is.
    fn decode_edge(&self) -> Option<u32> {
        [self.thumbnail, self.preview]
            .into_iter()
            .flatten()
            .map(|spec| spec.max_edge.max(1))
            .max()
    }
}

/// What [`make_derivatives`] made: one of each kind wanted.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Derivatives {
    /// The thumbnail, when wanted.
    pub thumbnail: Option<Thumbnail>,
    /// The preview, when wanted.
    pub preview: Option<Thumbnail>,
}

/// One encoded derivative (a thumbnail or a preview).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Thumbnail {
    /// The encoded image.
    pub bytes: Vec<u8>,
    /// Its media type (`image/jpeg`).
    pub content_type: &'static str,
    /// Width in pixels, orientation applied.
    pub width: u32,
    /// Height in pixels, orientation applied.
    pub height: u32,
}

/// Why no thumbnail could be made. [`ThumbnailError::reason`] is the snake_case word a job fails with.
#[derive(Debug, thiserror::Error)]
pub enum ThumbnailError {
    /// Not a kind of file this worker makes thumbnails of (or `ffmpeg` is missing for a video).
    #[error("unsupported: {0}")]
    Unsupported(String),
    /// The bytes do not decode as the image they claim to be.
    #[error("corrupt: {0}")]
    Corrupt(String),
    /// A HEIC/HEIF original, and libheif's `heif-thumbnailer` is not installed.
    #[error(
        "HEIC/HEIF thumbnails need libheif's heif-thumbnailer (Debian/Ubuntu package heif-thumbnailer, \
         Homebrew libheif), which is not installed"
    )]
    HeifUnavailable,
    /// Decoding would take more memory than the limits allow.
    #[error("too large: {0}")]
    TooLarge(String),
    /// Reading the original or a temporary file failed.
    #[error("i/o error: {0}")]
    Io(#[from] std::io::Error),
    /// Encoding the derivative failed.
    #[error("encoding the thumbnail failed: {0}")]
    Encode(String),
}

impl ThumbnailError {
    /// The snake_case reason sent in `JobFailure::reason`.
    pub fn reason(&self) -> &'static str {
        match self {
            ThumbnailError::Unsupported(_) => "unsupported",
            ThumbnailError::Corrupt(_) => "corrupt",
            ThumbnailError::HeifUnavailable => "heif_unavailable",
            ThumbnailError::TooLarge(_) => "too_large",
            ThumbnailError::Io(_) => "io",
            ThumbnailError::Encode(_) => "encode_failed",
        }
    }
}

/// What decoder an original needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Source {
    Raster(ImageFormat),
    Heif,
    Video,
}

const IMAGE_UTIS: &[&str] = &[
    "public.jpeg",
    "public.png",
    "org.webmproject.webp",
    "public.webp",
    "public.tiff",
    "public.heic",
    "public.heif",
    "public.heics",
];

const HEIF_BRANDS: &[&[u8; 4]] = &[
    b"heic", b"heix", b"heim", b"heis", b"hevc", b"hevx", b"mif1", b"msf1", b"avif",
];

/// True for the UTIs of movies (`com.apple.quicktime-movie`, `public.mpeg-4`, …).
pub fn is_video_uti(uti: &str) -> bool {
    matches!(
        uti,
        "com.apple.quicktime-movie"
            | "public.mpeg-4"
            | "public.movie"
            | "public.video"
            | "public.avi"
            | "public.3gpp"
            | "com.apple.m4v-video"
            | "public.mpeg"
    )
}

fn classify(head: &[u8], uti: &str) -> Result<Source, ThumbnailError> {
    if is_video_uti(uti) {
        return Ok(Source::Video);
    }
    if head.len() >= 12 && &head[4..8] == b"ftyp" && HEIF_BRANDS.iter().any(|b| &head[8..12] == *b) {
        return Ok(Source::Heif);
    }
    match image::guess_format(head) {
        Ok(format @ (ImageFormat::Jpeg | ImageFormat::Png | ImageFormat::WebP | ImageFormat::Tiff)) => {
            return Ok(Source::Raster(format));
        }
        Ok(other) => return Err(ThumbnailError::Unsupported(format!("{other:?} images"))),
        Err(_) => {}
    }
    if IMAGE_UTIS.contains(&uti) {
        Err(ThumbnailError::Corrupt(format!(
            "declared {uti}, but the bytes are not a known image format"
        )))
    } else {
        Err(ThumbnailError::Unsupported(format!("originals of type {uti:?}")))
    }
}

/// Makes the thumbnail of the original at `path`, declared as `uti` (and no preview).
pub fn make_thumbnail(path: &Path, uti: &str, spec: &ThumbnailSpec) -> Result<Thumbnail, ThumbnailError> {
    let wanted = DerivativeSpecs {
        thumbnail: Some(*spec),
        preview: None,
    };
    make_derivatives(path, uti, &wanted)?
        .thumbnail
        .ok_or_else(|| ThumbnailError::Encode("no thumbnail was made".into()))
}

/// Makes the derivatives `wanted` of the original at `path`, declared as `uti`, from one decode: the
/// original is decoded (or, for HEIC and video, rendered by the external tool) once, bounded by the larger
/// of the two edges, turned upright, and both derivatives are shrunk from that one image. Nothing wanted,
/// nothing read.
pub fn make_derivatives(
    path: &Path,
    uti: &str,
    wanted: &DerivativeSpecs,
) -> Result<Derivatives, ThumbnailError> {
    let Some(edge) = wanted.decode_edge() else {
        return Ok(Derivatives::default());
    };
    let mut head = [0u8; 32];
    let n = read_head(path, &mut head)?;
    let upright = match classify(&head[..n], uti)? {
        Source::Raster(format) => raster::decode(path, format, edge)?,
        Source::Heif => decode_heif(path, edge)?,
        Source::Video => poster_frame(path, edge)?,
    };
    let make =
        |spec: &ThumbnailSpec| raster::encode_jpeg(&raster::shrink(&upright, spec.max_edge), spec.quality);
    Ok(Derivatives {
        preview: wanted.preview.as_ref().map(make).transpose()?,
        thumbnail: wanted.thumbnail.as_ref().map(make).transpose()?,
    })
}

fn read_head(path: &Path, head: &mut [u8]) -> Result<usize, ThumbnailError> {
    let mut file = std::fs::File::open(path)?;
    let mut filled = 0;
    while filled < head.len() {
        match file.read(&mut head[filled..])? {
            0 => break,
            n => filled += n,
        }
    }
    Ok(filled)
}

#[cfg(test)]
mod tests;
