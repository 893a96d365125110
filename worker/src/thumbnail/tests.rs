//! The codec's unit tests: originals made on the fly (and by libheif's `heif-enc`, ffmpeg), checked by
//! decoding what comes out.

use std::process::Command;

use super::tools::decode_heif_with;
use super::*;
use image::{DynamicImage, ImageEncoder as _, Rgb, RgbImage};

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
    let error = decode_heif_with(missing.as_os_str(), &path, 512).unwrap_err();
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
    let error = make_thumbnail(&path, "com.apple.quicktime-movie", &ThumbnailSpec::default()).unwrap_err();
    assert_eq!(error.reason(), "corrupt", "{error}");
}

fn both() -> DerivativeSpecs {
    DerivativeSpecs {
        thumbnail: Some(ThumbnailSpec::default()),
        preview: Some(PREVIEW_SPEC),
    }
}

fn made(derivatives: &Derivatives) -> (&Thumbnail, &Thumbnail) {
    (
        derivatives.thumbnail.as_ref().expect("a thumbnail"),
        derivatives.preview.as_ref().expect("a preview"),
    )
}

#[test]
fn one_decode_makes_a_2048_preview_and_a_512_thumbnail() {
    let dir = tempfile::tempdir().unwrap();
    let path = write(&dir, "big.jpg", &jpeg_bytes(&noise(4000, 3000), None));
    let out = make_derivatives(&path, "public.jpeg", &both()).unwrap();
    let (thumb, preview) = made(&out);
    assert_eq!((preview.width, preview.height), (2048, 1536));
    assert_eq!((thumb.width, thumb.height), (512, 384));
    decode(preview);
    decode(thumb);
    assert!(
        preview.bytes.len() > thumb.bytes.len() * 4,
        "the preview carries the detail"
    );

    // Only what is wanted is made.
    let preview_only = DerivativeSpecs {
        thumbnail: None,
        preview: Some(PREVIEW_SPEC),
    };
    let out = make_derivatives(&path, "public.jpeg", &preview_only).unwrap();
    assert!(out.thumbnail.is_none());
    assert_eq!(out.preview.unwrap().width, 2048);
    // Nothing wanted: the file is not even opened.
    let nothing = make_derivatives(
        Path::new("/nonexistent/x.jpg"),
        "public.jpeg",
        &DerivativeSpecs::default(),
    );
    assert_eq!(nothing.unwrap(), Derivatives::default());
}

#[test]
fn a_smaller_original_keeps_its_size_as_preview() {
    let dir = tempfile::tempdir().unwrap();
    let path = write(&dir, "small.jpg", &jpeg_bytes(&noise(1000, 800), None));
    let out = make_derivatives(&path, "public.jpeg", &both()).unwrap();
    let (thumb, preview) = made(&out);
    assert_eq!((preview.width, preview.height), (1000, 800));
    assert_eq!((thumb.width, thumb.height), (512, 410));
}

#[test]
fn exif_orientation_turns_the_preview_too() {
    let dir = tempfile::tempdir().unwrap();
    // Stored landscape with its top rows red; orientation 6 shows it portrait with the red on the right.
    let mut stored = noise(3000, 1500);
    for x in 0..3000 {
        for y in 0..100 {
            stored.put_pixel(x, y, Rgb([255, 0, 0]));
        }
    }
    let path = write(&dir, "rot.jpg", &jpeg_bytes(&stored, Some(exif_orientation(6))));
    let out = make_derivatives(&path, "public.jpeg", &both()).unwrap();
    let (thumb, preview) = made(&out);
    assert_eq!((preview.width, preview.height), (1024, 2048));
    assert_eq!((thumb.width, thumb.height), (256, 512));
    for derivative in [preview, thumb] {
        let shown = decode(derivative).to_rgb8();
        let right = shown.get_pixel(derivative.width - 3, derivative.height / 2);
        let left = shown.get_pixel(3, derivative.height / 2);
        assert!(
            right[0] > 200 && right[1] < 60,
            "right edge should be red, is {right:?}"
        );
        assert!(
            left[0] < 200 || left[1] > 60,
            "left edge should not be red, is {left:?}"
        );
    }
}

/// A JPEG whose frame header (SOF0) declares `width`×`height`, over a small image's data.
fn jpeg_declaring(width: u16, height: u16) -> Vec<u8> {
    let mut bytes = jpeg_bytes(&noise(64, 64), None);
    let sof = bytes
        .windows(2)
        .position(|w| w == [0xFF, 0xC0])
        .expect("a baseline frame header");
    // FF C0, length (2), precision (1), height (2), width (2).
    bytes[sof + 5..sof + 7].copy_from_slice(&height.to_be_bytes());
    bytes[sof + 7..sof + 9].copy_from_slice(&width.to_be_bytes());
    bytes
}

#[test]
fn a_huge_declared_image_is_refused_before_it_is_allocated() {
    let dir = tempfile::tempdir().unwrap();
    // 20000×20000 RGB would be 1.2 GB; the file is a few kilobytes.
    let path = write(&dir, "huge.jpg", &jpeg_declaring(20_000, 20_000));
    let error = make_derivatives(&path, "public.jpeg", &both()).unwrap_err();
    assert_eq!(error.reason(), "too_large", "{error}");
    assert!(error.to_string().contains("20000"), "{error}");
    // An edge over the limit, whatever the area.
    let path = write(&dir, "long.jpg", &jpeg_declaring(40_000, 10));
    let error = make_derivatives(&path, "public.jpeg", &both()).unwrap_err();
    assert_eq!(error.reason(), "too_large", "{error}");
    // Within the limits, the same trick is only a corrupt file.
    let path = write(&dir, "lying.jpg", &jpeg_declaring(3000, 2000));
    match make_derivatives(&path, "public.jpeg", &both()) {
        Err(error) => assert_eq!(error.reason(), "corrupt", "{error}"),
        // zune-jpeg may decode what is there and grey out the rest: bounded derivatives are fine too.
        Ok(out) => assert_eq!(made(&out).1.width, 2048),
    }
}

#[test]
fn heic_gets_a_preview_and_a_huge_one_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let mut source = noise(2400, 1600);
    for x in 0..1200 {
        for y in 0..1600 {
            source.put_pixel(x, y, Rgb([20, 200, 20]));
        }
    }
    let bytes = heic_bytes(&dir, &source);
    let path = write(&dir, "a.heic", &bytes);
    assert_eq!(
        super::heif_size::declared_size(&path).unwrap(),
        Some((2400, 1600))
    );
    let out = make_derivatives(&path, "public.heic", &both()).unwrap();
    let (thumb, preview) = made(&out);
    assert_eq!((preview.width, preview.height), (2048, 1365));
    assert_eq!((thumb.width, thumb.height), (512, 341));
    let shown = decode(preview).to_rgb8();
    let left = shown.get_pixel(200, 700);
    assert!(
        left[1] > 150 && left[0] < 80,
        "left half should be green, is {left:?}"
    );

    // The same file declaring 20000×20000 in its `ispe` is refused before libheif decodes it.
    let mut huge = bytes.clone();
    let at = huge.windows(4).position(|w| w == b"ispe").expect("an ispe box");
    huge[at + 8..at + 12].copy_from_slice(&20_000u32.to_be_bytes());
    huge[at + 12..at + 16].copy_from_slice(&20_000u32.to_be_bytes());
    let path = write(&dir, "huge.heic", &huge);
    let error = make_derivatives(&path, "public.heic", &both()).unwrap_err();
    assert_eq!(error.reason(), "too_large", "{error}");
}
