//! The thumbnail codec: one original on disk in, one bounded-size JPEG out. Pure and blocking (run it on
//! `spawn_blocking`); the worker loop around it is [`crate::run_thumbnail_worker`].
//!
//! - JPEG, PNG, WebP and TIFF are decoded with the `image` crate. HEIC/HEIF is decoded and shrunk by libheif's
//!   own `heif-thumbnailer` (Debian/Ubuntu package `heif-thumbnailer`, Homebrew `libheif`), run like `ffmpeg`
//!   for videos: the server builds on any machine with nothing but Rust, and HEIC works wherever that tool is
//!   installed; without it HEIC jobs fail with reason `heif_unavailable`. (Linking libheif instead made the
//!   build itself fail on a machine without `libheif-dev`, quick start included.)
//! - The format is taken from the file's first bytes, not from the UTI alone: a `.heic` that is really a JPEG
//!   (an old iOS export) still gets a thumbnail. The UTI decides only when the bytes are not recognised: an
//!   image type then means the file is `corrupt`, anything else is `unsupported`.
//! - EXIF orientation is applied (after the resize, on the small image); libheif applies HEIF's own
//!   rotation/mirror boxes itself.
//! - Videos get a poster frame from `ffmpeg` when it is installed, else fail with reason `unsupported`.

mod tools;

use std::io::Read as _;
use std::path::Path;

use image::{DynamicImage, ImageDecoder as _, ImageFormat, ImageReader};

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

/// One encoded thumbnail.
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

/// Makes the thumbnail of the original at `path`, declared as `uti`.
pub fn make_thumbnail(path: &Path, uti: &str, spec: &ThumbnailSpec) -> Result<Thumbnail, ThumbnailError> {
    let mut head = [0u8; 32];
    let n = read_head(path, &mut head)?;
    let image = match classify(&head[..n], uti)? {
        Source::Raster(format) => decode_raster(path, format, spec)?,
        Source::Heif => decode_heif(path, spec)?,
        Source::Video => return poster_frame(path, spec),
    };
    encode_jpeg(&image, spec)
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

fn image_error(error: image::ImageError) -> ThumbnailError {
    use image::ImageError as E;
    match error {
        E::Decoding(e) => ThumbnailError::Corrupt(e.to_string()),
        E::Unsupported(e) => ThumbnailError::Unsupported(e.to_string()),
        E::Limits(e) => ThumbnailError::TooLarge(e.to_string()),
        E::IoError(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => {
            ThumbnailError::Corrupt(format!("truncated: {e}"))
        }
        E::IoError(e) => ThumbnailError::Io(e),
        E::Encoding(e) => ThumbnailError::Encode(e.to_string()),
        E::Parameter(e) => ThumbnailError::Corrupt(e.to_string()),
    }
}

/// Decodes with `image`, shrinks to the bound, then applies the EXIF orientation to the small image.
fn decode_raster(
    path: &Path,
    format: ImageFormat,
    spec: &ThumbnailSpec,
) -> Result<DynamicImage, ThumbnailError> {
    let file = std::io::BufReader::new(std::fs::File::open(path)?);
    let mut decoder = ImageReader::with_format(file, format)
        .into_decoder()
        .map_err(image_error)?;
    // A broken EXIF block is no reason to fail the thumbnail: it is shown unrotated.
    let orientation = decoder
        .orientation()
        .unwrap_or(image::metadata::Orientation::NoTransforms);
    let full = DynamicImage::from_decoder(decoder).map_err(image_error)?;
    let mut small = shrink(full, spec);
    small.apply_orientation(orientation);
    Ok(small)
}

fn shrink(image: DynamicImage, spec: &ThumbnailSpec) -> DynamicImage {
    let edge = spec.max_edge.max(1);
    if image.width() <= edge && image.height() <= edge {
        return image;
    }
    // `thumbnail` is `image`'s fast area-averaging sampler: several times quicker than a convolution filter
    // on a 12-MP photo, and at a 512-px target the difference in quality is not visible.
    image.thumbnail(edge, edge)
}

fn encode_jpeg(image: &DynamicImage, spec: &ThumbnailSpec) -> Result<Thumbnail, ThumbnailError> {
    // JPEG has no alpha: flatten to RGB (transparent PNG areas become black, as ImageMagick does).
    let rgb = match image {
        DynamicImage::ImageRgb8(_) | DynamicImage::ImageLuma8(_) => None,
        other => Some(DynamicImage::ImageRgb8(other.to_rgb8())),
    };
    let image = rgb.as_ref().unwrap_or(image);
    let mut bytes = Vec::with_capacity(64 * 1024);
    let encoder = image::codecs::jpeg::JpegEncoder::new_with_quality(&mut bytes, spec.quality.clamp(1, 100));
    image
        .write_with_encoder(encoder)
        .map_err(|e| ThumbnailError::Encode(e.to_string()))?;
    Ok(Thumbnail {
        bytes,
        content_type: "image/jpeg",
        width: image.width(),
        height: image.height(),
    })
}

#[cfg(test)]
mod tests {
    use std::process::Command;

    use super::tools::decode_heif_with;
    use super::*;
    use image::{ImageEncoder as _, Rgb, RgbImage};

    fn noise(width: u32, height: u32) -> RgbImage {
        let mut state = 0x2545_f491_4f6c_dd1d_u64;
        RgbImage::from_fn(width, height, |x, y| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            let n = (state & 0x1f) as u8;
            Rgb([(x % 256) as u8 ^ n, (y % 256) as u8, 128 + n])
        })
    }

    fn write(dir: &tempfile::TempDir, name: &str, bytes: &[u8]) -> std::path::PathBuf {
        let path = dir.path().join(name);
        std::fs::write(&path, bytes).unwrap();
        path
    }

    fn jpeg_bytes(image: &RgbImage, exif: Option<Vec<u8>>) -> Vec<u8> {
        let mut out = Vec::new();
        let mut encoder = image::codecs::jpeg::JpegEncoder::new_with_quality(&mut out, 90);
        if let Some(exif) = exif {
            encoder.set_exif_metadata(exif).unwrap();
        }
        encoder
            .write_image(
                image.as_raw(),
                image.width(),
                image.height(),
                image::ExtendedColorType::Rgb8,
            )
            .unwrap();
        out
    }

    /// A little-endian TIFF block with one IFD entry: Orientation (0x0112) = `value`.
    fn exif_orientation(value: u16) -> Vec<u8> {
        let mut exif = b"II*\0".to_vec();
        exif.extend_from_slice(&8u32.to_le_bytes());
        exif.extend_from_slice(&1u16.to_le_bytes());
        exif.extend_from_slice(&0x0112u16.to_le_bytes());
        exif.extend_from_slice(&3u16.to_le_bytes());
        exif.extend_from_slice(&1u32.to_le_bytes());
        exif.extend_from_slice(&value.to_le_bytes());
        exif.extend_from_slice(&[0, 0]);
        exif.extend_from_slice(&0u32.to_le_bytes());
        exif
    }

    fn decode(thumb: &Thumbnail) -> DynamicImage {
        assert_eq!(thumb.content_type, "image/jpeg");
        let image = image::load_from_memory_with_format(&thumb.bytes, ImageFormat::Jpeg).unwrap();
        assert_eq!((image.width(), image.height()), (thumb.width, thumb.height));
        image
    }

    #[test]
    fn jpeg_is_bounded_and_keeps_its_aspect() {
        let dir = tempfile::tempdir().unwrap();
        let path = write(&dir, "a.jpg", &jpeg_bytes(&noise(1200, 800), None));
        let thumb = make_thumbnail(&path, "public.jpeg", &ThumbnailSpec::default()).unwrap();
        assert_eq!((thumb.width, thumb.height), (512, 341));
        decode(&thumb);
    }

    #[test]
    fn small_images_are_not_upscaled() {
        let dir = tempfile::tempdir().unwrap();
        let path = write(&dir, "a.jpg", &jpeg_bytes(&noise(100, 60), None));
        let thumb = make_thumbnail(&path, "public.jpeg", &ThumbnailSpec::default()).unwrap();
        assert_eq!((thumb.width, thumb.height), (100, 60));
    }

    #[test]
    fn png_with_alpha_becomes_a_jpeg() {
        let dir = tempfile::tempdir().unwrap();
        let image = image::RgbaImage::from_fn(900, 1800, |x, _| image::Rgba([x as u8, 10, 200, 128]));
        let mut png = Vec::new();
        image::codecs::png::PngEncoder::new(&mut png)
            .write_image(image.as_raw(), 900, 1800, image::ExtendedColorType::Rgba8)
            .unwrap();
        let path = write(&dir, "a.png", &png);
        let thumb = make_thumbnail(&path, "public.png", &ThumbnailSpec::default()).unwrap();
        assert_eq!((thumb.width, thumb.height), (256, 512));
        decode(&thumb);
    }

    #[test]
    fn the_bytes_decide_over_the_uti() {
        // A JPEG filed as HEIC (older iOS exports do this) still gets a thumbnail.
        let dir = tempfile::tempdir().unwrap();
        let path = write(&dir, "a.heic", &jpeg_bytes(&noise(600, 600), None));
        let thumb = make_thumbnail(&path, "public.heic", &ThumbnailSpec::default()).unwrap();
        assert_eq!((thumb.width, thumb.height), (512, 512));
    }

    #[test]
    fn exif_orientation_6_swaps_the_dimensions() {
        let dir = tempfile::tempdir().unwrap();
        // Stored landscape with its top row red; orientation 6 (rotate 90° clockwise) shows it portrait with
        // the red row on the right.
        let mut stored = noise(1000, 500);
        for x in 0..1000 {
            for y in 0..40 {
                stored.put_pixel(x, y, Rgb([255, 0, 0]));
            }
        }
        let path = write(&dir, "rot.jpg", &jpeg_bytes(&stored, Some(exif_orientation(6))));
        let thumb = make_thumbnail(&path, "public.jpeg", &ThumbnailSpec::default()).unwrap();
        assert_eq!((thumb.width, thumb.height), (256, 512));
        let shown = decode(&thumb).to_rgb8();
        let right = shown.get_pixel(thumb.width - 3, thumb.height / 2);
        assert!(
            right[0] > 200 && right[1] < 60,
            "right edge should be red, is {right:?}"
        );

        // Orientation 1 leaves it as stored.
        let path = write(&dir, "plain.jpg", &jpeg_bytes(&stored, Some(exif_orientation(1))));
        let thumb = make_thumbnail(&path, "public.jpeg", &ThumbnailSpec::default()).unwrap();
        assert_eq!((thumb.width, thumb.height), (512, 256));
    }

    #[test]
    fn corrupt_files_fail_with_reason_corrupt() {
        let dir = tempfile::tempdir().unwrap();
        // A JPEG header followed by garbage.
        let mut bytes = vec![0xFF, 0xD8, 0xFF, 0xE0];
        bytes.extend((0..5000u32).map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8));
        let path = write(&dir, "bad.jpg", &bytes);
        let error = make_thumbnail(&path, "public.jpeg", &ThumbnailSpec::default()).unwrap_err();
        assert_eq!(error.reason(), "corrupt", "{error}");

        // Bytes of no known format declared as an image.
        let path = write(&dir, "noise.jpg", b"this is not an image at all, just some text");
        let error = make_thumbnail(&path, "public.jpeg", &ThumbnailSpec::default()).unwrap_err();
        assert_eq!(error.reason(), "corrupt", "{error}");

        // A JPEG cut in half.
        let whole = jpeg_bytes(&noise(800, 800), None);
        let path = write(&dir, "cut.jpg", &whole[..whole.len() / 2]);
        match make_thumbnail(&path, "public.jpeg", &ThumbnailSpec::default()) {
            Err(error) => assert_eq!(error.reason(), "corrupt", "{error}"),
            // zune-jpeg may decode what is there and grey out the rest: a bounded thumbnail is fine too.
            Ok(thumb) => assert_eq!((thumb.width, thumb.height), (512, 512)),
        }

        // An empty file.
        let path = write(&dir, "empty.png", b"");
        let error = make_thumbnail(&path, "public.png", &ThumbnailSpec::default()).unwrap_err();
        assert_eq!(error.reason(), "corrupt", "{error}");
    }

    #[test]
    fn unknown_types_are_unsupported() {
        let dir = tempfile::tempdir().unwrap();
        let path = write(&dir, "a.pdf", b"%PDF-1.4 not an image");
        let error = make_thumbnail(&path, "com.adobe.pdf", &ThumbnailSpec::default()).unwrap_err();
        assert_eq!(error.reason(), "unsupported", "{error}");
    }

    #[test]
    fn a_missing_file_is_an_io_error() {
        let error = make_thumbnail(
            Path::new("/nonexistent/iphoto/x.jpg"),
            "public.jpeg",
            &ThumbnailSpec::default(),
        )
        .unwrap_err();
        assert_eq!(error.reason(), "io");
    }

    /// A HEIC of `image`, made by libheif's `heif-enc` (x265), as an iPhone would.
    fn heic_bytes(dir: &tempfile::TempDir, image: &RgbImage) -> Vec<u8> {
        let png = dir.path().join("source.png");
        image.save(&png).unwrap();
        let heic = dir.path().join("source.heic");
        let output = Command::new("heif-enc")
            .args(["-q", "60", "-o"])
            .arg(&heic)
            .arg(&png)
            .output()
            .expect("heif-enc (Debian libheif-examples, installed by scripts/install-test-deps.sh)");
        assert!(output.status.success(), "heif-enc: {output:?}");
        std::fs::read(&heic).unwrap()
    }

    #[test]
    fn heic_is_decoded_with_libheif() {
        let dir = tempfile::tempdir().unwrap();
        let mut source = noise(1024, 768);
        for x in 0..512 {
            for y in 0..768 {
                source.put_pixel(x, y, Rgb([20, 200, 20]));
            }
        }
        let bytes = heic_bytes(&dir, &source);
        assert_eq!(&bytes[4..8], b"ftyp");
        let path = write(&dir, "a.heic", &bytes);
        let thumb = make_thumbnail(&path, "public.heic", &ThumbnailSpec::default()).unwrap();
        assert_eq!((thumb.width, thumb.height), (512, 384));
        let shown = decode(&thumb).to_rgb8();
        let left = shown.get_pixel(100, 200);
        assert!(
            left[1] > 150 && left[0] < 80,
            "left half should be green, is {left:?}"
        );

        // A HEIC cut short is corrupt, not a crash.
        let path = write(&dir, "cut.heic", &bytes[..bytes.len() / 3]);
        let error = make_thumbnail(&path, "public.heic", &ThumbnailSpec::default()).unwrap_err();
        assert_eq!(error.reason(), "corrupt", "{error}");
        assert!(error.to_string().contains("libheif"), "{error}");
    }

    #[test]
    fn heic_without_libheif_fails_with_heif_unavailable() {
        let dir = tempfile::tempdir().unwrap();
        let mut bytes = b"\0\0\0\x18ftypheic\0\0\0\0mif1heic".to_vec();
        bytes.extend_from_slice(&[0; 64]);
        let path = write(&dir, "a.heic", &bytes);
        let missing = dir.path().join("no-heif-thumbnailer-here");
        let error = decode_heif_with(missing.as_os_str(), &path, &ThumbnailSpec::default()).unwrap_err();
        assert_eq!(error.reason(), "heif_unavailable");
        assert!(error.to_string().contains("heif-thumbnailer"), "{error}");
    }

    #[test]
    fn video_poster_frame_or_unsupported() {
        let dir = tempfile::tempdir().unwrap();
        let video = dir.path().join("clip.mp4");
        if !ffmpeg_available() {
            let path = write(&dir, "clip.mov", b"\0\0\0\x14ftypqt  \0\0\0\0qt  ");
            let error =
                make_thumbnail(&path, "com.apple.quicktime-movie", &ThumbnailSpec::default()).unwrap_err();
            assert_eq!(error.reason(), "unsupported", "{error}");
            return;
        }
        let status = Command::new("ffmpeg")
            .args(["-nostdin", "-loglevel", "error", "-f", "lavfi", "-i"])
            .arg("testsrc=size=640x360:rate=10")
            .args(["-t", "0.5", "-pix_fmt", "yuv420p"])
            .arg(&video)
            .status()
            .unwrap();
        assert!(status.success());
        // Half a second long: no frame at 1 s, so the first frame is taken.
        let thumb = make_thumbnail(&video, "public.mpeg-4", &ThumbnailSpec::default()).unwrap();
        assert_eq!((thumb.width, thumb.height), (512, 288));
        decode(&thumb);

        let path = write(&dir, "broken.mov", b"\0\0\0\x14ftypqt  \0\0\0\0qt  garbage");
        let error =
            make_thumbnail(&path, "com.apple.quicktime-movie", &ThumbnailSpec::default()).unwrap_err();
        assert_eq!(error.reason(), "corrupt", "{error}");
    }
}
