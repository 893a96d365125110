//! `GET /photo/{photoId}`: one photo (issue 14). A large preview (the thumbnail with a note while the
//! preview is being made, a placeholder when there is neither), a video or a Live Photo's motion played from
//! `/media/{id}/video`, the info panel, a link to the original, and the previous and next photo as plain links
//! (`rel=prev`/`rel=next`) that `static/photo.js` maps to the arrow keys.
//!
//! Previous and next follow the plain timeline at `/` (newest first, ties by id, every filter off), and
//! Escape goes back to `/`: tiles link to a photo without the list's filters, so the page has none to carry.
//! Everything shown comes from the catalog directly; images and videos load from the media route, so the
//! page asks nothing of another origin. Ids that are malformed, unknown or another user's all get the same
//! HTML 404.

use askama::Template;
use axum::extract::rejection::PathRejection;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::Response;
use chrono::{DateTime, FixedOffset};

use super::session::{Signed, SignedIn};
use super::templates::{Layout, Section};
use super::{error_page, render, signed_in_layout};
use crate::catalog::{
    AssetKind, PhotoDetail, PhotoFilter, PhotoId, ResourceState, ResourceType, TimelineKey,
};
use crate::http::AppState;
use crate::http::error::ApiError;

/// `photo.html`.
#[derive(Debug, Template)]
#[template(path = "photo.html")]
pub struct PhotoPage {
    pub layout: Layout,
    /// The photo's id, for the media URLs.
    pub id: String,
    /// Title, else the file name: the heading and the image's alt text.
    pub name: String,
    /// What the stage shows.
    pub stage: Stage,
    /// A Live Photo whose motion is stored: the play control and its muted video.
    pub live: bool,
    /// The newer neighbour (`rel=prev`).
    pub newer: Option<String>,
    /// The older neighbour (`rel=next`).
    pub older: Option<String>,
    /// The info panel.
    pub info: Info,
}

/// What the large area of the page shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stage {
    /// The preview (`/media/{id}/preview`).
    Preview,
    /// The preview is not made yet: `/media/{id}/preview` answers the thumbnail, shown with a note.
    ThumbnailOnly,
    /// No derivative at all yet: a placeholder says so (never a broken image).
    Nothing,
    /// A video, played from `/media/{id}/video`; `poster` when a derivative exists to show before it plays.
    Video { poster: bool },
}

/// The info panel's fields, formatted.
#[derive(Debug, Clone, Default)]
pub struct Info {
    /// `2024-05-01T10:00:00+02:00`, for `<time datetime>`.
    pub taken_iso: String,
    /// The photo's own clock: `Wednesday 1 May 2024, 10:00:00`.
    pub taken: String,
    /// `Europe/Paris (UTC+02:00)`, or the offset alone when the zone's name is unknown.
    pub zone: String,
    /// `4032 × 3024` (none when unknown).
    pub pixels: Option<String>,
    /// The original's size, `2.4 MB` (none when it declared none).
    pub file_size: Option<String>,
    /// The file name it was imported with.
    pub filename: String,
    /// `48.85837, 2.29448` (none when the photo has no location).
    pub place: Option<String>,
    /// The caption (none when empty); the title is the panel's heading.
    pub caption: Option<String>,
    /// (name, `/?keyword=…`).
    pub keywords: Vec<(String, String)>,
    /// (name, `/?person=…`).
    pub people: Vec<(String, String)>,
    /// (title, `/albums/{id}`).
    pub albums: Vec<(String, String)>,
    /// The original is stored: the download link.
    pub original: bool,
    /// `Video`, `Live Photo` or `Photo`, and the length of a video.
    pub kind: String,
}

/// `GET /photo/{photoId}`.
pub(super) async fn get_photo(
    State(state): State<AppState>,
    SignedIn(signed): SignedIn,
    photo_id: Result<Path<String>, PathRejection>,
) -> Response {
    // A segment that is not UTF-8 once decoded (`%FF`) names no photo either: the same 404 page.
    let photo_id = photo_id.map_or_else(|_| String::new(), |Path(id)| id);
    match page(&state, &signed, &photo_id).await {
        Ok(Some(page)) => render(StatusCode::OK, &page),
        Ok(None) => error_page(signed_in_layout(&state, &signed), &ApiError::not_found("photo")),
        Err(error) => error_page(signed_in_layout(&state, &signed), &error),
    }
}

/// The page, or `None` for an id that is malformed, unknown or another user's.
async fn page(state: &AppState, signed: &Signed, photo_id: &str) -> Result<Option<PhotoPage>, ApiError> {
    if !crate::http::web::is_catalog_id(photo_id) {
        return Ok(None);
    }
    let user_id = &signed.session.user.id;
    let catalog = state.catalog();
    let Some(photo) = catalog.photo(user_id, &PhotoId::new(photo_id)).await? else {
        return Ok(None);
    };
    let key = TimelineKey {
        taken_at_ms: photo.listed.taken_at_ms,
        photo_id: photo.listed.id.as_str().to_owned(),
    };
    let neighbours = catalog
        .timeline_neighbours(user_id, &PhotoFilter::default(), &key)
        .await?;
    let mut albums = Vec::with_capacity(photo.albums.len());
    for album_id in &photo.albums {
        for album in catalog.list_albums(user_id, Some(album_id)).await? {
            albums.push((album.title, format!("/albums/{}", encode(&album.id))));
        }
    }
    let derivative = photo.listed.preview_key.is_some() || photo.listed.thumbnail_key.is_some();
    let stage = match photo.listed.kind {
        AssetKind::Video => Stage::Video { poster: derivative },
        AssetKind::Photo if photo.listed.preview_key.is_some() => Stage::Preview,
        AssetKind::Photo if derivative => Stage::ThumbnailOnly,
        AssetKind::Photo => Stage::Nothing,
    };
    let live = photo.live_photo
        && photo.listed.kind == AssetKind::Photo
        && photo
            .resources
            .iter()
            .any(|r| r.resource_type == ResourceType::LiveVideo && r.state == ResourceState::Stored);
    let name = photo
        .title
        .clone()
        .filter(|t| !t.trim().is_empty())
        .unwrap_or_else(|| photo.original_filename.clone());
    Ok(Some(PhotoPage {
        layout: signed_in_layout(state, signed).at(Section::Photos),
        id: photo.listed.id.as_str().to_owned(),
        name,
        stage,
        live,
        newer: neighbours.newer.map(|id| id.as_str().to_owned()),
        older: neighbours.older.map(|id| id.as_str().to_owned()),
        info: info(&photo, albums),
    }))
}

fn info(photo: &PhotoDetail, albums: Vec<(String, String)>) -> Info {
    let listed = &photo.listed;
    let original = photo
        .resources
        .iter()
        .find(|r| r.resource_type == ResourceType::Original);
    let links = |names: &[String], parameter: &str| {
        names
            .iter()
            .filter(|n| !n.is_empty())
            .map(|n| (n.clone(), format!("/?{parameter}={}", encode(n))))
            .collect()
    };
    let kind = match (listed.kind, photo.live_photo, photo.duration_ms) {
        (AssetKind::Video, _, Some(ms)) => format!("Video, {}", duration(ms)),
        (AssetKind::Video, _, None) => "Video".to_owned(),
        (AssetKind::Photo, true, _) => "Live Photo".to_owned(),
        (AssetKind::Photo, false, _) => "Photo".to_owned(),
    };
    Info {
        taken_iso: listed.taken_at.to_rfc3339(),
        taken: listed.taken_at.format("%A %-d %B %Y, %H:%M:%S").to_string(),
        zone: zone(&listed.taken_at, photo.time_zone.as_deref()),
        pixels: (listed.width > 0 && listed.height > 0)
            .then(|| format!("{} × {}", listed.width, listed.height)),
        file_size: original
            .map(|r| r.declared_size)
            .filter(|size| *size > 0)
            .map(file_size),
        filename: photo.original_filename.clone(),
        place: photo
            .latitude
            .zip(photo.longitude)
            .map(|(lat, lon)| format!("{lat:.5}, {lon:.5}")),
        caption: photo.caption.clone().filter(|c| !c.trim().is_empty()),
        keywords: links(&photo.keywords, "keyword"),
        people: links(&photo.people, "person"),
        albums,
        original: original.is_some_and(|r| r.state == ResourceState::Stored),
        kind,
    }
}

/// `Europe/Paris (UTC+02:00)`: the zone's name as the Mac recorded it, with the offset the photo was taken at.
fn zone(taken_at: &DateTime<FixedOffset>, name: Option<&str>) -> String {
    let offset = format!("UTC{}", taken_at.format("%:z"));
    match name.filter(|n| !n.is_empty()) {
        Some(name) => format!("{name} ({offset})"),
        None => offset,
    }
}

/// Decimal units, one decimal from a kilobyte up: `812 bytes`, `2.4 MB`.
fn file_size(bytes: u64) -> String {
    const UNITS: [&str; 5] = ["kB", "MB", "GB", "TB", "PB"];
    if bytes < 1000 {
        return format!("{bytes} bytes");
    }
    // Precision past 2^53 bytes does not matter for one decimal.
    let mut value = bytes as f64 / 1000.0;
    let mut unit = 0;
    while value >= 999.95 && unit + 1 < UNITS.len() {
        value /= 1000.0;
        unit += 1;
    }
    format!("{value:.1} {}", UNITS[unit])
}

/// `0:07`, `1:02:03`.
fn duration(ms: u64) -> String {
    let seconds = ms.div_ceil(1000);
    let (h, m, s) = (seconds / 3600, seconds / 60 % 60, seconds % 60);
    if h > 0 {
        format!("{h}:{m:02}:{s:02}")
    } else {
        format!("{m}:{s:02}")
    }
}

/// One query-string value (or path segment), percent-encoded.
fn encode(value: &str) -> String {
    url::form_urlencoded::byte_serialize(value.as_bytes()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_checked_before_any_lookup() {
        assert!(crate::http::web::is_catalog_id(
            "019a2b3c4d5e6f708192a3b4c5d6e7f8"
        ));
        for bad in [
            "",
            "019A2B3C4D5E6F708192A3B4C5D6E7F8",
            "019a2b3c4d5e6f708192a3b4c5d6e7f",
            "019a2b3c4d5e6f708192a3b4c5d6e7f8a",
            "../../etc/passwd00000000000000000",
            "019a2b3c4d5e6f708192a3b4c5d6e7g8",
        ] {
            assert!(!crate::http::web::is_catalog_id(bad), "{bad}");
        }
    }

    #[test]
    fn sizes_durations_and_zones_read_as_people_write_them() {
        assert_eq!(file_size(812), "812 bytes");
        assert_eq!(file_size(2_412_345), "2.4 MB");
        assert_eq!(file_size(999_999), "1.0 MB");
        assert_eq!(file_size(3_000_000_000), "3.0 GB");
        assert_eq!(duration(7_000), "0:07");
        assert_eq!(duration(6_500), "0:07");
        assert_eq!(duration(3_723_000), "1:02:03");
        let taken = DateTime::parse_from_rfc3339("2024-05-01T10:00:00-04:30").unwrap();
        assert_eq!(
            zone(&taken, Some("America/Caracas")),
            "America/Caracas (UTC-04:30)"
        );
        assert_eq!(zone(&taken, None), "UTC-04:30");
        assert_eq!(encode("Zoë & Jo"), "Zo%C3%AB+%26+Jo");
    }
}
