//! The photo grid every page of photos shares (`templates/grid.html`): one tile per photo, linking to its
//! page and showing its thumbnail through the media route, and the timeline's grouping of tiles by month
//! and day, on each photo's own clock (a photo taken at 23:30 in Tokyo is on that day in Tokyo).

use chrono::{Datelike as _, NaiveDate};

use crate::catalog::ListedPhoto;

/// One photo of a grid.
#[derive(Debug, Clone)]
pub struct Tile {
    /// Catalog id: the tile links to `/photo/{id}` and shows `/media/{id}/thumbnail`.
    pub id: String,
    /// Alt text: the title, else the camera's file name.
    pub alt: String,
    /// The thumbnail is made; until then the tile shows a placeholder, never a broken image.
    pub thumbnail: bool,
    pub video: bool,
    pub live: bool,
    pub favorite: bool,
}

impl Tile {
    pub fn new(photo: &ListedPhoto) -> Self {
        let alt = photo
            .title
            .as_deref()
            .map(str::trim)
            .filter(|t| !t.is_empty())
            .unwrap_or(&photo.original_filename)
            .to_owned();
        Self {
            id: photo.id.as_str().to_owned(),
            alt,
            thumbnail: photo.thumbnail_key.is_some(),
            video: photo.kind == api::AssetKind::Video,
            live: photo.live_photo,
            favorite: photo.favorite,
        }
    }
}

/// The tiles of a list, in its order.
pub fn tiles(photos: &[ListedPhoto]) -> Vec<Tile> {
    photos.iter().map(Tile::new).collect()
}

/// The photos of one day.
#[derive(Debug, Clone)]
pub struct Day {
    /// `YYYY-MM-DD`: a later page's first day joins this one when it is the same (`timeline.js`).
    pub key: String,
    /// `Friday 3 May`.
    pub heading: String,
    pub tiles: Vec<Tile>,
}

/// The days of one month.
#[derive(Debug, Clone)]
pub struct Month {
    /// `YYYY-MM`.
    pub key: String,
    /// `May 2024`.
    pub heading: String,
    pub days: Vec<Day>,
}

/// Groups a timeline page (newest first) into months and days.
pub fn months(photos: &[ListedPhoto]) -> Vec<Month> {
    let mut months: Vec<Month> = Vec::new();
    for photo in photos {
        let date: NaiveDate = photo.taken_at.date_naive();
        let month_key = format!("{:04}-{:02}", date.year(), date.month());
        let day_key = date.format("%Y-%m-%d").to_string();
        if months.last().is_none_or(|m| m.key != month_key) {
            months.push(Month {
                key: month_key,
                heading: date.format("%B %Y").to_string(),
                days: Vec::new(),
            });
        }
        let Some(month) = months.last_mut() else {
            continue;
        };
        if month.days.last().is_none_or(|d| d.key != day_key) {
            month.days.push(Day {
                key: day_key,
                heading: date.format("%A %-d %B").to_string(),
                tiles: Vec::new(),
            });
        }
        if let Some(day) = month.days.last_mut() {
            day.tiles.push(Tile::new(photo));
        }
    }
    months
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::catalog::PhotoId;
    use chrono::{DateTime, FixedOffset};

    fn photo(id: &str, taken: &str, title: Option<&str>) -> ListedPhoto {
        let taken_at: DateTime<FixedOffset> = DateTime::parse_from_rfc3339(taken).unwrap();
        ListedPhoto {
            id: PhotoId::new(id.to_owned()),
            local_identifier: id.to_owned(),
            taken_at_ms: taken_at.timestamp_millis(),
            taken_at,
            kind: api::AssetKind::Photo,
            favorite: false,
            width: 4032,
            height: 3024,
            title: title.map(str::to_owned),
            original_filename: format!("IMG_{id}.HEIC"),
            live_photo: false,
            original: None,
            thumbnail_key: None,
            preview_key: None,
            position: 0,
        }
    }

    #[test]
    fn days_and_months_are_the_photos_own() {
        // 23:30 in Tokyo on 31 March is 14:30 UTC: it belongs to 31 March and to March.
        let rows = [
            photo("a", "2024-04-01T08:00:00+02:00", None),
            photo("b", "2024-03-31T23:30:00+09:00", Some("Sakura")),
            photo("c", "2024-03-31T10:00:00+09:00", Some("  ")),
            photo("d", "2024-03-02T10:00:00Z", None),
        ];
        let months = months(&rows);
        let keys: Vec<_> = months.iter().map(|m| m.key.as_str()).collect();
        assert_eq!(keys, ["2024-04", "2024-03"]);
        assert_eq!(months[1].heading, "March 2024");
        let days: Vec<_> = months[1]
            .days
            .iter()
            .map(|d| (d.key.as_str(), d.tiles.len()))
            .collect();
        assert_eq!(days, [("2024-03-31", 2), ("2024-03-02", 1)]);
        assert_eq!(months[1].days[0].heading, "Sunday 31 March");
        // Alt text: the title, else (blank title too) the file name.
        assert_eq!(months[1].days[0].tiles[0].alt, "Sakura");
        assert_eq!(months[1].days[0].tiles[1].alt, "IMG_c.HEIC");
    }
}
