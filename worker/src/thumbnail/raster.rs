//! Rasters through the `image` crate: decoding within memory limits, shrinking, JPEG encoding.
//!
//! The limits are set explicitly and the decoded buffer is reserved against them *before* it is allocated:
//! `ImageReader::into_decoder` only checks the dimensions, and `DynamicImage::from_decoder` allocates
//! whatever the header declares, so a 20000×20000 JPEG of a few kilobytes would otherwise ask for 1.2 GB
//! per worker loop. Refused, it fails the job with reason `too_large`, like any other recorded failure.

use std::path::Path;

use image::{DynamicImage, ImageDecoder as _, ImageFormat, ImageReader, Limits};

use super::{Thumbnail, ThumbnailError};

/// The most memory one decoded original may take, bytes: 512 MiB holds a 100-MP photo in 8-bit RGB
/// (medium-format and stitched panoramas included) and is the `image` crate's own default budget; the
/// worker decodes one original per loop, so its peak is about this times the concurrency.
pub const DECODE_MAX_BYTES: u64 = 512 * 1024 * 1024;

/// The longest edge an original may declare, pixels, whatever its memory need.
pub const DECODE_MAX_EDGE: u32 = 32_768;

fn limits() -> Limits {
    let mut limits = Limits::default();
    limits.max_image_width = Some(DECODE_MAX_EDGE);
    limits.max_image_height = Some(DECODE_MAX_EDGE);
    limits.max_alloc = Some(DECODE_MAX_BYTES);
    limits
}

/// Whether an image of `width`×`height` with `bytes_per_pixel` fits the decode limits.
pub(super) fn check_declared(width: u64, height: u64, bytes_per_pixel: u64) -> Result<(), ThumbnailError> {
    let edge = u64::from(DECODE_MAX_EDGE);
    let bytes = width.saturating_mul(height).saturating_mul(bytes_per_pixel);
    if width > edge || height > edge || bytes > DECODE_MAX_BYTES {
        return Err(ThumbnailError::TooLarge(format!(
            "{width}×{height} pixels would take {} MiB to decode; the limit is {} MiB and {edge} px an edge",
            bytes >> 20,
            DECODE_MAX_BYTES >> 20
        )));
    }
    Ok(())
}

pub(super) fn image_error(error: image::ImageError) -> ThumbnailError {
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

/// Decodes with `image` within the limits, shrinks to `edge`, then applies the EXIF orientation to the
/// shrunk image (cheaper than turning the full one).
pub(super) fn decode(path: &Path, format: ImageFormat, edge: u32) -> Result<DynamicImage, ThumbnailError> {
    let file = std::io::BufReader::new(std::fs::File::open(path)?);
    let mut reader = ImageReader::with_format(file, format);
    reader.limits(limits());
    let mut decoder = reader.into_decoder().map_err(image_error)?;
    let (width, height) = decoder.dimensions();
    check_declared(
        u64::from(width),
        u64::from(height),
        u64::from(decoder.color_type().bytes_per_pixel()),
    )?;
    limits().reserve(decoder.total_bytes()).map_err(image_error)?;
    // A broken EXIF block is no reason to fail the derivative: it is shown unrotated.
    let orientation = decoder
        .orientation()
        .unwrap_or(image::metadata::Orientation::NoTransforms);
    let full = DynamicImage::from_decoder(decoder).map_err(image_error)?;
    let mut small = shrink_owned(full, edge);
    small.apply_orientation(orientation);
    Ok(small)
}

fn shrink_owned(image: DynamicImage, edge: u32) -> DynamicImage {
    let edge = edge.max(1);
    if image.width() <= edge && image.height() <= edge {
        return image;
    }
    image.thumbnail(edge, edge)
}

/// `image` bounded to `edge`, never upscaled. `thumbnail` is `image`'s fast area-averaging sampler: several
/// times quicker than a convolution filter on a 12-MP photo, without its aliasing, and at 512 or 2048 px the
/// difference in quality is not visible.
pub(super) fn shrink(image: &DynamicImage, edge: u32) -> std::borrow::Cow<'_, DynamicImage> {
    let edge = edge.max(1);
    if image.width() <= edge && image.height() <= edge {
        return std::borrow::Cow::Borrowed(image);
    }
    std::borrow::Cow::Owned(image.thumbnail(edge, edge))
}

pub(super) fn encode_jpeg(image: &DynamicImage, quality: u8) -> Result<Thumbnail, ThumbnailError> {
    // JPEG has no alpha: flatten to RGB (transparent PNG areas become black, as ImageMagick does).
    let rgb = match image {
        DynamicImage::ImageRgb8(_) | DynamicImage::ImageLuma8(_) => None,
        other => Some(DynamicImage::ImageRgb8(other.to_rgb8())),
    };
    let image = rgb.as_ref().unwrap_or(image);
    let mut bytes = Vec::with_capacity(64 * 1024);
    let encoder = image::codecs::jpeg::JpegEncoder::new_with_quality(&mut bytes, quality.clamp(1, 100));
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
