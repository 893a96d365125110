//! The library the album, people and keywords pages are tested on: photos with keywords and people (one
//! hidden, one never uploaded), nested folders and albums whose order in Photos is neither by date nor by
//! name, synced into the real binary by `admin`'s first-start client token. `admin` signs in with
//! [`PASSWORD`]; `alice`, another user with the same password, has nothing.

#![allow(clippy::unwrap_used, clippy::expect_used, dead_code)]

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use image::ImageEncoder as _;
use serde_json::{Value, json};

use crate::browser::{Browser, Db, Site};

pub const PASSWORD: &str = "correct horse battery staple";
pub const OWNER: &str = "admin";

/// One synced photo.
struct Shot {
    uuid: &'static str,
    taken_at: &'static str,
    keywords: &'static [&'static str],
    people: &'static [&'static str],
    hidden: bool,
    /// Its original is uploaded (so the worker makes its thumbnail).
    uploaded: bool,
}

const fn shot(
    uuid: &'static str,
    taken_at: &'static str,
    keywords: &'static [&'static str],
    people: &'static [&'static str],
) -> Shot {
    Shot {
        uuid,
        taken_at,
        keywords,
        people,
        hidden: false,
        uploaded: true,
    }
}

/// Visible counts: beach 3, "sea & sun" 2, city 1, Bob 3, Zoë 2 (H1, hidden, counts for none). P4 is never
/// uploaded, so it never has a thumbnail.
const PHOTOS: [Shot; 9] = [
    shot("P1", "2021-01-10T10:00:00+01:00", &["beach"], &["Zoë"]),
    shot(
        "P2",
        "2021-06-10T10:00:00+01:00",
        &["beach", "sea & sun"],
        &["Zoë", "Bob"],
    ),
    shot("P3", "2022-02-01T10:00:00+01:00", &["sea & sun"], &["Bob"]),
    Shot {
        uploaded: false,
        ..shot("P4", "2022-08-01T10:00:00+01:00", &["beach"], &[])
    },
    shot("P5", "2023-03-01T10:00:00+01:00", &[], &["Bob"]),
    shot("P6", "2023-09-01T10:00:00+01:00", &["city"], &[]),
    shot("P7", "2024-01-01T10:00:00+01:00", &[], &[]),
    shot("P8", "2024-05-01T10:00:00+01:00", &[], &[]),
    Shot {
        hidden: true,
        ..shot("H1", "2024-06-01T10:00:00+01:00", &["beach"], &["Zoë"])
    },
];

/// Lisbon's members as Photos orders them (H1 hidden): neither by date nor by id.
pub const LISBON: [&str; 4] = ["P5", "P2", "P7", "P1"];

/// A synced library on a served catalog.
pub struct Library {
    pub site: Site,
    /// `admin`'s web token, to ask the JSON routes what the pages should show.
    pub web: String,
    /// uuid → catalog id.
    ids: BTreeMap<String, String>,
    /// title → catalog id.
    albums: BTreeMap<String, String>,
}

impl Library {
    /// The library synced; with `thumbnails`, the server's in-process worker makes every uploaded photo's
    /// thumbnail before this returns.
    pub async fn start(db: Db, thumbnails: bool) -> Library {
        let envs: &[(&str, &str)] = if thumbnails {
            &[("IPHOTO_WORKERS", "thumbnail")]
        } else {
            &[]
        };
        let site = Site::start_with(db, PASSWORD, envs).await;
        let set = site.passwd(OWNER, PASSWORD);
        assert!(set.status.success(), "{set:?}");
        let client = site.server.client_token().unwrap();
        let web = site.server.token("web").unwrap();
        let http = reqwest::Client::new();

        let mut items = Vec::new();
        let mut originals = Vec::new();
        for (n, shot) in PHOTOS.iter().enumerate() {
            let Shot {
                uuid,
                taken_at,
                keywords,
                people,
                hidden,
                uploaded,
            } = shot;
            let bytes = jpeg(320 + 16 * n as u32, 240);
            items.push(json!({
                "localIdentifier": format!("{uuid}/L0/001"),
                "kind": "photo", "livePhoto": false, "width": 320 + 16 * n, "height": 240,
                "takenAt": taken_at, "modifiedAt": "2024-07-01T10:00:00Z",
                "favorite": false, "hidden": hidden, "trashed": false,
                "originalFilename": format!("{uuid}.JPG"), "uti": "public.jpeg", "edited": false,
                "keywords": keywords, "people": people,
                "resources": [{ "type": "original", "size": bytes.len(), "sha256": sha256_hex(&bytes),
                                "available": true }]
            }));
            if *uploaded {
                originals.push((*uuid, bytes));
            }
        }
        post(
            &http,
            &site.url,
            &client,
            "/client/iphoto/sync",
            &json!({ "libraryId": "L", "items": items }),
        )
        .await;
        for (uuid, bytes) in &originals {
            let answer = http
                .post(format!(
                    "{}/client/iphoto/upload/{uuid}%2FL0%2F001?resource=original",
                    site.url
                ))
                .bearer_auth(&client)
                .header("x-content-sha256", sha256_hex(bytes))
                .body(bytes.clone())
                .send()
                .await
                .unwrap();
            assert_eq!(answer.status(), 200, "{}", answer.text().await.unwrap());
        }
        let members = |uuids: &[&str]| uuids.iter().map(|u| format!("{u}/L0/001")).collect::<Vec<_>>();
        let albums = json!({ "libraryId": "L", "albums": [
            { "id": "FZ", "title": "Travel", "kind": "folder" },
            { "id": "FY", "title": "Portugal", "kind": "folder", "parentId": "FZ" },
            { "id": "AP", "title": "Porto", "kind": "album", "parentId": "FY", "members": members(&["P3"]) },
            { "id": "AX", "title": "Lisbon", "kind": "album", "parentId": "FY",
              "members": members(&["P5", "P2", "H1", "P7", "P1"]) },
            { "id": "AR", "title": "Road trip", "kind": "album", "parentId": "FZ", "members": members(&["P4", "P6"]) },
            { "id": "AB", "title": "Best of", "kind": "album", "members": members(&["P8", "P1"]) },
            { "id": "FE", "title": "Empty", "kind": "folder" },
            { "id": "AN", "title": "Nothing yet", "kind": "album" },
        ]});
        post(&http, &site.url, &client, "/client/iphoto/albums", &albums).await;

        let listed = site
            .get_json("/my/photos/?limit=500&includeHidden=true", &web)
            .await;
        let ids = listed["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|item| {
                let uuid = item["localIdentifier"]
                    .as_str()
                    .unwrap()
                    .trim_end_matches("/L0/001");
                (uuid.to_owned(), item["id"].as_str().unwrap().to_owned())
            })
            .collect::<BTreeMap<_, _>>();
        assert_eq!(ids.len(), PHOTOS.len(), "{listed}");
        let albums = site.get_json("/my/photos/albums", &web).await["albums"]
            .as_array()
            .unwrap()
            .iter()
            .map(|a| {
                (
                    a["title"].as_str().unwrap().to_owned(),
                    a["id"].as_str().unwrap().to_owned(),
                )
            })
            .collect::<BTreeMap<_, _>>();
        assert_eq!(albums.len(), 8);
        let library = Library {
            site,
            web,
            ids,
            albums,
        };
        if thumbnails {
            library.wait_for_thumbnails(originals.len()).await;
        }
        library
    }

    /// The catalog id of photo `uuid`.
    pub fn id(&self, uuid: &str) -> String {
        self.ids[uuid].clone()
    }

    /// The catalog ids of these photos, in this order.
    pub fn ids(&self, uuids: &[&str]) -> Vec<String> {
        uuids.iter().map(|u| self.id(u)).collect()
    }

    /// The uuid of a catalog id.
    pub fn uuid(&self, id: &str) -> String {
        self.ids
            .iter()
            .find(|(_, v)| *v == id)
            .map(|(k, _)| k.clone())
            .unwrap_or_else(|| panic!("no photo {id}"))
    }

    /// The catalog id of the album (or folder) titled `title`.
    pub fn album(&self, title: &str) -> String {
        self.albums[title].clone()
    }

    /// `GET path` of the JSON routes as `admin`.
    pub async fn json(&self, path: &str) -> Value {
        self.site.get_json(path, &self.web).await
    }

    /// An HTTP-level browser signed in as `user`.
    pub async fn signed_in(&self, user: &str) -> Browser {
        let mut browser = self.site.browser();
        let answer = browser.sign_in(user, PASSWORD, &[]).await;
        assert_eq!(answer.status, 303, "{}", answer.body);
        browser
    }

    async fn wait_for_thumbnails(&self, expected: usize) {
        let deadline = Instant::now() + Duration::from_secs(120);
        loop {
            let listed = self.json("/my/photos/?limit=500&includeHidden=true").await;
            let made = listed["items"]
                .as_array()
                .unwrap()
                .iter()
                .filter(|item| item["thumbnailUrl"].is_string())
                .count();
            if made == expected {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "{made} of {expected} thumbnails after 120 s"
            );
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    }
}

async fn post(http: &reqwest::Client, base: &str, token: &str, path: &str, body: &Value) {
    let answer = http
        .post(format!("{base}{path}"))
        .bearer_auth(token)
        .json(body)
        .send()
        .await
        .unwrap();
    let status = answer.status();
    let text = answer.text().await.unwrap();
    assert_eq!(status, 200, "{path}: {text}");
    assert!(!text.contains("\"rejected\""), "{path}: {text}");
}

/// A real JPEG of this size (a gradient: the thumbnail worker decodes it like a camera's).
fn jpeg(width: u32, height: u32) -> Vec<u8> {
    let image = image::RgbImage::from_fn(width, height, |x, y| {
        image::Rgb([(x % 256) as u8, (y % 256) as u8, ((x + y) % 256) as u8])
    });
    let mut out = Vec::new();
    image::codecs::jpeg::JpegEncoder::new_with_quality(&mut out, 85)
        .write_image(image.as_raw(), width, height, image::ExtendedColorType::Rgb8)
        .unwrap();
    out
}

fn sha256_hex(bytes: &[u8]) -> String {
    storage::Sha256Digest::of(bytes).to_hex()
}
