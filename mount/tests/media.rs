//! Real media through a real FUSE mount (video-projects profile), over the local adapter and SeaweedFS:
//! ffmpeg makes short clips (ProRes proxy and long-GOP H.264), transcodes each clip read through the mount
//! into a render written through the mount, and the render's bytes in the store equal those of the same
//! transcode done on local files (deterministic flags: `-bitexact`, one thread).

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::path::Path;
use std::process::Command;

use common::{Backend, Options, TestMount, get, put, store};

/// Runs ffmpeg with `args`, quietly, and checks it succeeded.
fn ffmpeg(args: &[&str]) {
    let output = Command::new("ffmpeg")
        .args(["-hide_banner", "-nostdin", "-v", "error", "-y"])
        .args(args)
        .output()
        .expect("ffmpeg is installed (scripts/install-test-deps.sh)");
    assert!(
        output.status.success(),
        "ffmpeg {args:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
}

/// A 2-second 640x360 test clip: `codec` arguments decide its kind.
fn make_clip(path: &Path, codec: &[&str]) {
    let path = path.to_str().unwrap();
    let mut args = vec![
        "-f",
        "lavfi",
        "-i",
        "testsrc2=size=640x360:rate=25:duration=2",
        "-threads",
        "1",
    ];
    args.extend_from_slice(codec);
    args.extend_from_slice(&["-bitexact", "-fflags", "+bitexact", path]);
    ffmpeg(&args);
}

/// Transcodes `input` into `output` with `codec`, deterministically.
fn transcode(input: &Path, output: &Path, codec: &[&str]) {
    let mut args = vec!["-threads", "1", "-i", input.to_str().unwrap(), "-threads", "1"];
    args.extend_from_slice(codec);
    args.extend_from_slice(&[
        "-flags",
        "+bitexact",
        "-fflags",
        "+bitexact",
        "-map_metadata",
        "-1",
        output.to_str().unwrap(),
    ]);
    ffmpeg(&args);
}

const PRORES_PROXY: &[&str] = &["-c:v", "prores_ks", "-profile:v", "0"];
const H264_LONG_GOP: &[&str] = &[
    "-c:v", "libx264", "-preset", "veryfast", "-g", "50", "-bf", "2", "-pix_fmt", "yuv420p",
];

fn a_transcode_through_the_mount_equals_a_local_one(backend: Backend) {
    let local = tempfile::tempdir().unwrap();
    let prores = local.path().join("clip-proxy.mov");
    let h264 = local.path().join("clip-h264.mp4");
    make_clip(&prores, PRORES_PROXY);
    make_clip(&h264, H264_LONG_GOP);
    let test_store = store(backend);
    let s = &test_store.store;
    put(
        s,
        "library/clips/clip-proxy.mov",
        &std::fs::read(&prores).unwrap(),
    );
    put(s, "library/clips/clip-h264.mp4", &std::fs::read(&h264).unwrap());
    let mount = TestMount::start(
        s,
        &Options {
            read_only: false,
            ..Options::default()
        },
    );
    std::fs::create_dir(mount.path("renders")).unwrap();
    // ProRes proxy → H.264 (an MP4, whose header is patched at the end), H.264 → ProRes proxy.
    let jobs = [
        ("clip-proxy.mov", "render-h264.mp4", H264_LONG_GOP),
        ("clip-h264.mp4", "render-proxy.mov", PRORES_PROXY),
    ];
    for (clip, render, codec) in jobs {
        transcode(&local.path().join(clip), &local.path().join(render), codec);
        transcode(
            &mount.path(&format!("clips/{clip}")),
            &mount.path(&format!("renders/{render}")),
            codec,
        );
    }
    mount.flush();
    for (_, render, _) in jobs {
        let expected = std::fs::read(local.path().join(render)).unwrap();
        assert!(expected.len() > 10_000, "{render}: {} bytes", expected.len());
        let stored = get(s, &format!("library/renders/{render}")).unwrap();
        assert!(
            stored == expected,
            "{render}: the stored render differs from the local transcode"
        );
    }
}

mod local_adapter {
    #[test]
    fn a_transcode_through_the_mount_equals_a_local_one() {
        super::a_transcode_through_the_mount_equals_a_local_one(super::Backend::Local)
    }
}

mod s3_adapter {
    #[test]
    fn a_transcode_through_the_mount_equals_a_local_one() {
        super::a_transcode_through_the_mount_equals_a_local_one(super::Backend::S3)
    }
}
