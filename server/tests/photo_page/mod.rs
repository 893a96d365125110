//! A small synced library for the photo page's tests (issue 14), on the real binary: stills and videos made
//! with ffmpeg, synced and uploaded as the Mac agent would (the first start's `admin` user, whose jobs the
//! in-process thumbnail worker does), with the derivatives the worker makes. The browser signs in as
//! `admin`; `alice` (made by [`Site`]) is the other user.

#![allow(clippy::unwrap_used, clippy::expect_used, dead_code)]

use std::collections::HashMap;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use sha2::{Digest as _, Sha256};

use crate::browser::{Db, Site};

pub const PASSWORD: &str = "correct horse battery staple";

/// The library's photos, newest first as the timeline lists them (two share a time; their order is by id).
/// - `beach`: a JPEG with every field of the info panel, in an album;
/// - `tie-a`, `tie-b`: JPEGs taken at the same instant;
/// - `clip`: an H.264 video;
/// - `live`: a Live Photo (a JPEG and its H.264 motion);
/// - `bare`: a photo whose original never arrived: no derivative at all.
pub const NAMES: [&str; 6] = ["beach", "tie-a", "tie-b", "clip", "live", "bare"];

/// What the info panel must show of `beach`.
pub const BEACH_KEYWORDS: [&str; 2] = ["beach", "sun & sea"];
pub const BEACH_PEOPLE: [&str; 2] = ["Zoë", "Jo Smith"];

/// A served library.
pub struct Library {
    pub site: Site,
    /// Catalog id by name.
    pub ids: HashMap<&'static str, String>,
    /// The timeline's order of the ids, as the JSON list gives it.
    pub order: Vec<String>,
    /// The album `beach` is in.
    pub album_id: String,
}

impl Library {
    pub fn id(&self, name: &str) -> &str {
        &self.ids[name]
    }
}

/// Runs ffmpeg with `args`, writing `out`.
fn ffmpeg(args: &[&str], out: &Path) -> Vec<u8> {
    let output = Command::new("ffmpeg")
        .args(["-hide_banner", "-loglevel", "error", "-y"])
        .args(args)
        .arg(out)
        .output()
        .expect("ffmpeg (installed by scripts/install-test-deps.sh)");
    assert!(output.status.success(), "ffmpeg {args:?}: {output:?}");
    std::fs::read(out).unwrap()
}

/// A JPEG of ffmpeg's test pattern, `width`×`height`.
pub fn still(dir: &Path, name: &str, width: u32, height: u32) -> Vec<u8> {
    let source = format!("testsrc2=size={width}x{height}");
    ffmpeg(
        &["-f", "lavfi", "-i", &source, "-frames:v", "1", "-q:v", "5"],
        &dir.join(format!("{name}.jpg")),
    )
}

/// A 1.5-second H.264 MP4 (baseline, yuv420p, moov first): what every browser plays.
pub fn clip(dir: &Path, name: &str) -> Vec<u8> {
    ffmpeg(
        &[
            "-f",
            "lavfi",
            "-i",
            "testsrc2=size=320x240:rate=15",
            "-t",
            "1.5",
            "-c:v",
            "libx264",
            "-profile:v",
            "baseline",
            "-pix_fmt",
            "yuv420p",
            "-movflags",
            "+faststart",
        ],
        &dir.join(format!("{name}.mp4")),
    )
}

pub fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// A sync item: `fields` over a plain photo taken at `at`.
fn item(name: &str, at: &str, fields: Value) -> Value {
    let mut item = json!({
        "localIdentifier": format!("{name}/L0/001"), "kind": "photo", "livePhoto": false,
        "width": 640, "height": 480, "takenAt": at, "modifiedAt": "2024-08-01T10:00:00Z",
        "favorite": false, "hidden": false, "trashed": false, "originalFilename": format!("{name}.JPG"),
        "uti": "public.jpeg", "edited": false, "keywords": [], "people": [], "resources": [],
    });
    for (k, v) in fields.as_object().unwrap() {
        item[k] = v.clone();
    }
    item
}

fn resource(kind: &str, bytes: &[u8]) -> Value {
    json!({ "type": kind, "size": bytes.len(), "sha256": sha256_hex(bytes), "available": true })
}

/// The library on a server running the thumbnail worker, every derivative made.
pub async fn library() -> Library {
    let site = Site::start_with(Db::Sqlite, PASSWORD, &[("IPHOTO_WORKERS", "thumbnail")]).await;
    let set = site.passwd("admin", PASSWORD);
    assert!(set.status.success(), "{set:?}");
    let media = tempfile::tempdir().unwrap();
    let beach = still(media.path(), "beach", 1600, 1200);
    let tie_a = still(media.path(), "tie-a", 800, 600);
    let tie_b = still(media.path(), "tie-b", 600, 800);
    let live_still = still(media.path(), "live", 1200, 900);
    let live_motion = clip(media.path(), "live");
    let video = clip(media.path(), "clip");
    let tie = "2024-07-10T12:00:00Z";
    let items = vec![
        item(
            "beach",
            "2024-07-14T18:30:00+02:00",
            json!({
                "width": 1600, "height": 1200, "timeZone": "Europe/Paris", "latitude": 43.695_123_4,
                "longitude": 7.265_432_1, "title": "Evening swim", "caption": "The last light on the bay.",
                "keywords": BEACH_KEYWORDS, "people": BEACH_PEOPLE, "originalFilename": "IMG_0042.JPG",
                "resources": [resource("original", &beach)],
            }),
        ),
        item(
            "tie-a",
            tie,
            json!({ "width": 800, "height": 600, "resources": [resource("original", &tie_a)] }),
        ),
        item(
            "tie-b",
            tie,
            json!({ "width": 600, "height": 800, "resources": [resource("original", &tie_b)] }),
        ),
        item(
            "clip",
            "2024-06-01T09:15:00-04:00",
            json!({
                "kind": "video", "width": 320, "height": 240, "durationMs": 1500, "timeZone": "America/New_York",
                "originalFilename": "IMG_0100.MP4", "uti": "public.mpeg-4", "resources": [resource("original", &video)],
            }),
        ),
        item(
            "live",
            "2024-05-01T08:00:00+09:00",
            json!({
                "livePhoto": true, "width": 1200, "height": 900, "timeZone": "Asia/Tokyo",
                "resources": [resource("original", &live_still), resource("live_video", &live_motion)],
            }),
        ),
        item(
            "bare",
            "2024-04-01T07:00:00Z",
            json!({ "resources": [resource("original", &beach[..1000])] }),
        ),
    ];
    let client = site.server.client_token().unwrap();
    let http = reqwest::Client::new();
    let base = site.url.clone();
    let synced = http
        .post(format!("{base}/client/iphoto/sync"))
        .bearer_auth(&client)
        .json(&json!({ "libraryId": "L", "items": items }))
        .send()
        .await
        .unwrap();
    assert_eq!(synced.status(), 200, "{}", synced.text().await.unwrap());
    for (name, kind, bytes) in [
        ("beach", "original", &beach),
        ("tie-a", "original", &tie_a),
        ("tie-b", "original", &tie_b),
        ("clip", "original", &video),
        ("live", "original", &live_still),
        ("live", "live_video", &live_motion),
    ] {
        let answer = http
            .post(format!(
                "{base}/client/iphoto/upload/{name}%2FL0%2F001?resource={kind}"
            ))
            .bearer_auth(&client)
            .header("x-content-sha256", sha256_hex(bytes))
            .body(bytes.clone())
            .send()
            .await
            .unwrap();
        assert_eq!(
            answer.status(),
            200,
            "{name} {kind}: {}",
            answer.text().await.unwrap()
        );
    }
    let albums = json!({ "libraryId": "L", "albums": [
        { "id": "ALB-SUMMER", "title": "Summer & friends", "kind": "album", "members": ["beach/L0/001"] },
    ]});
    let answer = http
        .post(format!("{base}/client/iphoto/albums"))
        .bearer_auth(&client)
        .json(&albums)
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), 200);

    // The timeline as the JSON list gives it, once every still has its preview.
    let web = site.server.token("web").unwrap();
    let deadline = Instant::now() + Duration::from_secs(120);
    let list = loop {
        let list: Value = site
            .get_json("/my/photos/?limit=500&includeHidden=false", &web)
            .await;
        let items = list["items"].as_array().unwrap().clone();
        let ready = items.iter().all(|i| {
            let name = i["localIdentifier"].as_str().unwrap();
            !(name.starts_with("beach") || name.starts_with("tie") || name.starts_with("live"))
                || (i["previewUrl"].is_string() && i["previewPending"] == false)
        });
        if ready && items.len() == NAMES.len() {
            break items;
        }
        assert!(Instant::now() < deadline, "no previews after 120 s: {list:#}");
        tokio::time::sleep(Duration::from_millis(250)).await;
    };
    let name_of = |i: &Value| {
        i["localIdentifier"]
            .as_str()
            .unwrap()
            .trim_end_matches("/L0/001")
            .to_owned()
    };
    let ids: HashMap<&'static str, String> = NAMES
        .iter()
        .map(|n| {
            let found = list.iter().find(|i| name_of(i) == *n).unwrap();
            (*n, found["id"].as_str().unwrap().to_owned())
        })
        .collect();
    let order: Vec<String> = list
        .iter()
        .map(|i| i["id"].as_str().unwrap().to_owned())
        .collect();
    // The synced times give the order; the tie is broken by id, descending.
    let (a, b) = (&ids["tie-a"], &ids["tie-b"]);
    let ties = if a > b { [a, b] } else { [b, a] };
    let expected: Vec<&String> = vec![
        &ids["beach"],
        ties[0],
        ties[1],
        &ids["clip"],
        &ids["live"],
        &ids["bare"],
    ];
    assert_eq!(order.iter().collect::<Vec<_>>(), expected, "{list:#?}");
    let album_list: Value = site.get_json("/my/photos/albums", &web).await;
    let album_id = album_list["albums"][0]["id"].as_str().unwrap().to_owned();
    Library {
        site,
        ids,
        order,
        album_id,
    }
}

/// A server without the thumbnail worker and two photos of `admin`'s: `soon`, whose thumbnail is made but
/// not its preview (a worker from before previews: the job leased and completed by hand here), and `bare`,
/// whose original never arrived. Returns the site and their ids.
pub async fn unfinished() -> (Site, String, String) {
    let site = Site::start(Db::Sqlite, PASSWORD).await;
    let set = site.passwd("admin", PASSWORD);
    assert!(set.status.success(), "{set:?}");
    let media = tempfile::tempdir().unwrap();
    let original = still(media.path(), "soon", 1600, 1200);
    let thumbnail = still(media.path(), "soon-thumbnail", 512, 384);
    let items = vec![
        item(
            "soon",
            "2024-03-02T10:00:00Z",
            json!({ "resources": [resource("original", &original)] }),
        ),
        item(
            "bare",
            "2024-03-01T10:00:00Z",
            json!({ "resources": [resource("original", &original[..999])] }),
        ),
    ];
    let (client, worker, web) = (
        site.server.client_token().unwrap(),
        site.server.token("worker").unwrap(),
        site.server.token("web").unwrap(),
    );
    let http = reqwest::Client::new();
    let base = site.url.clone();
    let synced = http
        .post(format!("{base}/client/iphoto/sync"))
        .bearer_auth(&client)
        .json(&json!({ "libraryId": "L", "items": items }))
        .send()
        .await
        .unwrap();
    assert_eq!(synced.status(), 200);
    let uploaded = http
        .post(format!(
            "{base}/client/iphoto/upload/soon%2FL0%2F001?resource=original"
        ))
        .bearer_auth(&client)
        .header("x-content-sha256", sha256_hex(&original))
        .body(original.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(uploaded.status(), 200);
    let leased: Value = http
        .post(format!("{base}/worker/jobs/lease?kind=thumbnail&max=10"))
        .bearer_auth(&worker)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let jobs = leased["jobs"].as_array().unwrap();
    assert_eq!(jobs.len(), 1, "{leased}");
    let key = jobs[0]["derivativeKey"].as_str().unwrap();
    // The local store keeps an object at `blobs/<key>` under the data directory.
    let file = site.data().join("blobs").join(key);
    std::fs::create_dir_all(file.parent().unwrap()).unwrap();
    std::fs::write(&file, &thumbnail).unwrap();
    let result = json!({ "result": {
        "key": key, "contentType": "image/jpeg", "width": 512, "height": 384, "size": thumbnail.len(),
    }});
    let done = http
        .post(format!(
            "{base}/worker/jobs/{}/result",
            jobs[0]["id"].as_str().unwrap()
        ))
        .bearer_auth(&worker)
        .json(&result)
        .send()
        .await
        .unwrap();
    assert_eq!(done.status(), 200, "{}", done.text().await.unwrap());
    let list: Value = site.get_json("/my/photos/", &web).await;
    let items = list["items"].as_array().unwrap();
    assert_eq!(items.len(), 2, "{list:#}");
    assert_eq!(items[0]["previewPending"], true, "{list:#}");
    let id = |i: usize| items[i]["id"].as_str().unwrap().to_owned();
    (site, id(0), id(1))
}
