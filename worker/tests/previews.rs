//! Previews end to end against the real `iphoto-server` binary and the real worker: originals uploaded by
//! the client surface, a worker from before previews leaving only a thumbnail (the web then shows it with
//! `previewPending`), then today's worker making each photo's 2048-px preview from the same decode —
//! keeping a thumbnail already stored — under the user's own key; an undecodable original recorded as a
//! failure; another user seeing none of it.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::process::Command;

use common::{corrupt, heic, item, jpeg, photo, photo_id, read, serve, server_binary, sha256_hex, upload};
use image::ImageEncoder as _;
use serde_json::Value;
use worker::{Outcome, WorkerSettings, run_once};

/// A JPEG stored landscape with its top 100 rows red and EXIF orientation 6 (turn 90° clockwise to show):
/// shown, it is portrait with the red on the right.
fn rotated_jpeg(width: u32, height: u32) -> Vec<u8> {
    let image = image::RgbImage::from_fn(width, height, |x, y| {
        if y < 100 {
            image::Rgb([255, 0, 0])
        } else {
            image::Rgb([(x % 200) as u8, 40 + (y % 100) as u8, 200])
        }
    });
    // A little-endian TIFF block with one IFD entry: Orientation (0x0112), SHORT, 1 value, 6.
    let mut exif = b"II*\0".to_vec();
    exif.extend_from_slice(&8u32.to_le_bytes());
    exif.extend_from_slice(&1u16.to_le_bytes());
    exif.extend_from_slice(&0x0112u16.to_le_bytes());
    exif.extend_from_slice(&3u16.to_le_bytes());
    exif.extend_from_slice(&1u32.to_le_bytes());
    exif.extend_from_slice(&6u16.to_le_bytes());
    exif.extend_from_slice(&[0, 0, 0, 0, 0, 0]);
    let mut out = Vec::new();
    let mut encoder = image::codecs::jpeg::JpegEncoder::new_with_quality(&mut out, 90);
    encoder.set_exif_metadata(exif).unwrap();
    encoder
        .write_image(image.as_raw(), width, height, image::ExtendedColorType::Rgb8)
        .unwrap();
    out
}

fn decode_jpeg(bytes: &[u8]) -> image::RgbImage {
    image::load_from_memory_with_format(bytes, image::ImageFormat::Jpeg)
        .unwrap()
        .to_rgb8()
}

async fn fetch(url: &str) -> Vec<u8> {
    let response = reqwest::get(url).await.unwrap();
    assert_eq!(response.status(), 200, "{url}");
    response.bytes().await.unwrap().to_vec()
}

/// `GET /my/photos/{id}`, which must answer 200.
async fn shown(base: &str, web: &str, id: &str) -> Value {
    let (status, body) = photo(base, web, id).await;
    assert_eq!(status, 200, "{body}");
    body
}

/// Runs `iphoto-server ARGS --data-dir DATA` (the admin commands beside the running server); its stdout.
fn admin(data: &std::path::Path, args: &[&str]) -> String {
    let output = Command::new(server_binary())
        .args(args)
        .arg("--data-dir")
        .arg(data)
        .env_remove("IPHOTO_DATABASE_URL")
        .output()
        .unwrap();
    assert!(output.status.success(), "{args:?}: {output:?}");
    String::from_utf8(output.stdout).unwrap().trim().to_owned()
}

#[tokio::test(flavor = "multi_thread")]
async fn previews_are_made_from_one_decode_and_shown_once_made() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let server = serve(&data, &[]).await;
    let base = server.url();
    let (client, web) = (server.token("client").unwrap(), server.token("web").unwrap());
    let worker_token = server.token("worker").unwrap();
    let store = storage::create_object_store(&storage::StorageConfig {
        backend: storage::BackendConfig::Local(storage::LocalConfig {
            root: data.join("blobs"),
            presign_secret: storage::Secret::new("the-worker-never-signs-0123456789ab".into()),
            public_url: base.parse().unwrap(),
        }),
        presign: Default::default(),
    })
    .unwrap();
    let originals = [
        ("PPPP0001", "public.jpeg", jpeg(1600, 1200)),
        ("PPPP0002", "public.jpeg", jpeg(4000, 3000)),
        ("PPPP0003", "public.jpeg", jpeg(1200, 900)),
        ("PPPP0004", "public.jpeg", rotated_jpeg(3000, 1500)),
        ("PPPP0005", "public.heic", heic(2400, 1600)),
        ("PPPP0006", "public.jpeg", corrupt()),
    ];
    let http = reqwest::Client::new();
    let send = |i: usize| {
        let (http, base, client) = (http.clone(), base.clone(), client.clone());
        let (uuid, uti, bytes) = originals[i].clone();
        async move {
            upload(
                &http,
                &base,
                &client,
                &item(uuid, uti, &format!("{uuid}.X"), &bytes),
                &bytes,
            )
            .await;
        }
    };
    // The first photo alone, so the worker from before previews takes its job.
    send(0).await;
    let mut ids = vec![photo_id(&base, &web, "PPPP0001/L0/001").await];

    // Nothing made: no URL, the preview pending.
    let before = shown(&base, &web, &ids[0]).await;
    assert_eq!(before["previewPending"], true, "{before}");
    assert!(before.get("previewUrl").is_none(), "{before}");

    // A worker from before previews takes the first job: a thumbnail only. The web shows it in the
    // preview's place, with previewPending.
    let settings = WorkerSettings::new(base.parse().unwrap(), worker_token);
    let legacy = WorkerSettings {
        preview: None,
        ..settings.clone()
    };
    let worked = run_once(legacy, store.clone(), 1).await.unwrap();
    assert_eq!(worked.len(), 1);
    let Outcome::Done(result) = &worked[0].outcome else {
        panic!("{worked:?}")
    };
    assert!(result.preview.is_none());
    let pending = shown(&base, &web, &ids[0]).await;
    assert_eq!(pending["previewPending"], true, "{pending}");
    assert_eq!(pending["previewUrl"], pending["thumbnailUrl"], "{pending}");
    assert_eq!(
        decode_jpeg(&fetch(pending["previewUrl"].as_str().unwrap()).await).width(),
        512
    );

    for (i, (uuid, _, _)) in originals.iter().enumerate().skip(1) {
        send(i).await;
        ids.push(photo_id(&base, &web, &format!("{uuid}/L0/001")).await);
    }

    // A thumbnail already stored for the 12-MP photo (as after a lease whose result was lost) is kept.
    let legacy_key = pending["enrichments"][0]["result"]["key"].as_str().unwrap();
    let sha = sha256_hex(&originals[1].2);
    let (dir_part, _) = legacy_key.rsplit_once("/thumbnail/").unwrap();
    let kept_key = format!(
        "{dir_part}/thumbnail/{}/{sha}.jpg",
        sha.chars().next().unwrap().to_ascii_uppercase()
    );
    let kept = jpeg(300, 200);
    let kept_key = storage::StorageKey::parse(kept_key).unwrap();
    store
        .put(&kept_key, kept.clone().into(), &Default::default())
        .await
        .unwrap();

    let worked = run_once(settings.clone(), store.clone(), 10).await.unwrap();
    assert_eq!(worked.len(), originals.len() - 1, "{worked:#?}");
    let user_prefix = format!("users/{}/", legacy_key.split('/').nth(1).unwrap());
    let mut previews = Vec::new();
    for w in &worked {
        let i = ids.iter().position(|id| *id == w.job.photo_id).unwrap();
        let shown = shown(&base, &web, &ids[i]).await;
        let result = match &w.outcome {
            Outcome::Done(result) => result,
            Outcome::Failed(failure) => {
                assert_eq!(i, 5, "only the corrupt original fails: {w:?}");
                assert_eq!(failure.reason, "corrupt", "{w:?}");
                assert!(matches!(w.answer.state.as_str(), "queued" | "parked"), "{w:?}");
                assert_eq!(shown["previewPending"], true, "{shown}");
                assert!(shown.get("previewUrl").is_none(), "{shown}");
                continue;
            }
        };
        let preview = result.preview.as_ref().expect("a preview");
        assert_eq!(Some(&preview.key), w.job.preview_key.as_ref());
        assert!(
            preview.key.starts_with(&user_prefix) && preview.key.contains("/derivatives/preview/"),
            "{}",
            preview.key
        );
        assert_eq!(preview.content_type, "image/jpeg");
        let stored = store
            .get_bytes(&storage::StorageKey::parse(preview.key.as_str()).unwrap())
            .await
            .unwrap();
        assert_eq!(stored.len() as u64, preview.size);
        // The web gives the preview once made, and its URL serves exactly it.
        assert_eq!(shown["previewPending"], false, "{shown}");
        let url = shown["previewUrl"].as_str().unwrap();
        assert_eq!(fetch(url).await, stored.to_vec());
        let image = decode_jpeg(&stored);
        assert_eq!((image.width(), image.height()), (preview.width, preview.height));
        previews.push((i, image, result.clone()));
    }
    let size_of = |i: usize| {
        previews
            .iter()
            .find(|(j, _, _)| *j == i)
            .map(|(_, image, r)| ((image.width(), image.height()), (r.width, r.height)))
            .unwrap()
    };
    // Long edge 2048, or the original's when smaller; the thumbnail from the same decode.
    assert_eq!(
        size_of(1),
        ((2048, 1536), (300, 200)),
        "the stored thumbnail is kept"
    );
    assert_eq!(size_of(2), ((1200, 900), (512, 384)));
    assert_eq!(size_of(3), ((1024, 2048), (256, 512)), "orientation applied");
    assert_eq!(size_of(4), ((2048, 1365), (512, 341)), "the HEIC");
    assert_eq!(store.get_bytes(&kept_key).await.unwrap().to_vec(), kept);
    let (_, rotated, _) = previews.iter().find(|(i, _, _)| *i == 3).unwrap();
    let right = rotated.get_pixel(1020, 1024);
    assert!(
        right[0] > 200 && right[1] < 60,
        "the red rows end up on the right: {right:?}"
    );

    // Another user sees neither the photo nor its preview.
    admin(&data, &["user", "add", "bob"]);
    let bob = admin(&data, &["token", "create", "--user", "bob", "--scope", "web"]);
    let bob = bob.lines().last().unwrap().trim().to_owned();
    let (status, body) = photo(&base, &bob, &ids[1]).await;
    assert_eq!(status, 404, "{body}");
    let response = http
        .get(format!("{base}/my/photos/"))
        .bearer_auth(&bob)
        .send()
        .await
        .unwrap();
    let (status, page): (u16, Value) = read(response).await;
    assert_eq!((status, &page["items"]), (200, &serde_json::json!([])), "{page}");
}
