//! What a photo or video file says about itself, for the plain-folder source: capture date with its zone, pixel
//! size, duration and location, from EXIF (JPEG, HEIC, TIFF, RAW) or QuickTime/MP4 metadata (`mvhd`, Apple's
//! `com.apple.quicktime.*` keys, `udta/©xyz`) through `nom-exif`.
//!
//! Photos reads the same tags on import; a folder has no database, so this is the only place the facts come
//! from. A file without them (a screenshot PNG, a stripped JPEG) gives what it has, and the caller falls back
//! to the file's modification time for the date only then. Broken or unknown metadata is never an error: a
//! photo with a bad EXIF block is still a photo.

use std::path::Path;

use chrono::{DateTime, FixedOffset, Local, Offset as _, TimeZone as _, Utc};
use nom_exif::{
    EntryValue, Exif, ExifTag, GPSInfo, MediaKind, MediaParser, MediaSource, TrackInfo, TrackInfoTag,
};

/// The facts read from one file; `None` (or 0 for a dimension) where the file does not say.
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct FileFacts {
    /// When it was taken, at the offset the camera recorded (or the Mac's own offset when it recorded none).
    pub taken_at: Option<DateTime<FixedOffset>>,
    /// Display width in pixels (EXIF orientation applied).
    pub width: u32,
    /// Display height in pixels.
    pub height: u32,
    /// A video's length.
    pub duration_ms: Option<u64>,
    /// Degrees north.
    pub latitude: Option<f64>,
    /// Degrees east.
    pub longitude: Option<f64>,
}

/// Reads files one after the other, reusing one parse buffer.
pub(crate) struct MediaReader {
    parser: MediaParser,
}

impl std::fmt::Debug for MediaReader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MediaReader").finish_non_exhaustive()
    }
}

impl MediaReader {
    /// A reader with an empty buffer.
    pub(crate) fn new() -> MediaReader {
        MediaReader {
            parser: MediaParser::new(),
        }
    }

    /// What `path` says about itself. Blocking (reads the file's headers).
    pub(crate) fn read(&mut self, path: &Path) -> FileFacts {
        // One hostile file must not end the pass: a panic in the parser is taken as "no metadata", and the
        // parser, whose buffer may be half-filled, is replaced.
        // nom-exif logs each GPS tag it finds at INFO: under the agent's default `info` filter that is seven
        // lines per photo. Its events are muted here, for the parse only; what matters is logged below.
        let parsed = tracing::subscriber::with_default(tracing::subscriber::NoSubscriber::default(), || {
            std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| self.parse(path)))
        });
        let mut facts = match parsed {
            Ok(Ok(facts)) => facts,
            Ok(Err(error)) => {
                tracing::debug!(path = %path.display(), %error, "no readable metadata");
                FileFacts::default()
            }
            Err(_) => {
                tracing::warn!(path = %path.display(), "metadata parser panicked; file read without metadata");
                self.parser = MediaParser::new();
                FileFacts::default()
            }
        };
        if facts.width == 0 || facts.height == 0 {
            // A photo without EXIF dimensions: its header has them (JPEG, PNG, WebP, TIFF).
            if let Ok((width, height)) = image::ImageReader::open(path)
                .and_then(|reader| reader.with_guessed_format())
                .map_err(image::ImageError::IoError)
                .and_then(|reader| reader.into_dimensions())
            {
                (facts.width, facts.height) = (width, height);
            }
        }
        facts
    }

    fn parse(&mut self, path: &Path) -> nom_exif::Result<FileFacts> {
        let source = MediaSource::open(path)?;
        match source.kind() {
            MediaKind::Image => Ok(from_exif(&Exif::from(self.parser.parse_exif(source)?))),
            MediaKind::Track => Ok(from_track(&self.parser.parse_track(source)?)),
        }
    }
}

fn from_exif(exif: &Exif) -> FileFacts {
    let taken_at = [
        ExifTag::DateTimeOriginal,
        ExifTag::CreateDate,
        ExifTag::ModifyDate,
    ]
    .into_iter()
    .find_map(|tag| exif.get(tag).and_then(date));
    let dimension = |tags: [ExifTag; 2]| tags.into_iter().find_map(|tag| exif.get(tag).and_then(integer));
    let mut width = dimension([ExifTag::ExifImageWidth, ExifTag::ImageWidth]).unwrap_or(0);
    let mut height = dimension([ExifTag::ExifImageHeight, ExifTag::ImageHeight]).unwrap_or(0);
    // Orientations 5 to 8 turn the stored pixels a quarter: shown, width and height swap.
    if exif
        .get(ExifTag::Orientation)
        .and_then(integer)
        .is_some_and(|o| (5..=8).contains(&o))
    {
        std::mem::swap(&mut width, &mut height);
    }
    let (latitude, longitude) = exif.gps_info().and_then(degrees).unzip();
    FileFacts {
        taken_at,
        width,
        height,
        duration_ms: None,
        latitude,
        longitude,
    }
}

/// 1904-01-01T00:00:00Z, QuickTime's epoch, in Unix seconds.
const MVHD_EPOCH: i64 = -2_082_844_800;

fn from_track(track: &TrackInfo) -> FileFacts {
    // `mvhd` counts from 1904: a zero there (ffmpeg without `creation_time`, many screen recorders) means unset.
    let taken_at = track
        .get(TrackInfoTag::CreateDate)
        .and_then(date)
        .filter(|date| date.timestamp() != MVHD_EPOCH);
    let dimension = |tag| track.get(tag).and_then(integer).unwrap_or(0);
    // A zero time scale makes the crate's division infinite (saturated); a day-long clip is already absurd.
    let duration_ms = track
        .get(TrackInfoTag::DurationMs)
        .and_then(|v| match v {
            EntryValue::U64(ms) => Some(*ms),
            other => integer(other).map(u64::from),
        })
        .filter(|ms| (1..=86_400_000 * 7).contains(ms));
    let (latitude, longitude) = track.gps_info().and_then(degrees).unzip();
    FileFacts {
        taken_at,
        width: dimension(TrackInfoTag::Width),
        height: dimension(TrackInfoTag::Height),
        duration_ms,
        latitude,
        longitude,
    }
}

/// A date as recorded: with its offset when the file has one, else on the Mac's clock (what Photos does with a
/// camera that records no zone).
fn date(value: &EntryValue) -> Option<DateTime<FixedOffset>> {
    match value {
        EntryValue::DateTime(date) => Some(*date),
        EntryValue::NaiveDateTime(naive) => {
            let offset = Local
                .offset_from_local_datetime(naive)
                .earliest()
                .map_or_else(|| Utc.fix(), |offset| offset.fix());
            naive.and_local_timezone(offset).single()
        }
        _ => None,
    }
}

fn integer(value: &EntryValue) -> Option<u32> {
    match value {
        EntryValue::U8(v) => Some(u32::from(*v)),
        EntryValue::U16(v) => Some(u32::from(*v)),
        EntryValue::U32(v) => Some(*v),
        EntryValue::U64(v) => u32::try_from(*v).ok(),
        EntryValue::U16Array(v) => v.first().copied().map(u32::from),
        EntryValue::U32Array(v) => v.first().copied(),
        _ => None,
    }
}

/// Signed decimal degrees, when both are there and on the globe.
fn degrees(gps: &GPSInfo) -> Option<(f64, f64)> {
    let latitude = gps.latitude.to_decimal_degrees()? * gps.latitude_ref.sign();
    let longitude = gps.longitude.to_decimal_degrees()? * gps.longitude_ref.sign();
    ((-90.0..=90.0).contains(&latitude) && (-180.0..=180.0).contains(&longitude))
        .then_some((latitude, longitude))
}
