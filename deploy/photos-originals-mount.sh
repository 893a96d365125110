#!/usr/bin/env bash
# Runs the read-only mount of a Photos library's originals in the foreground (for launchd/systemd or by hand).
# Settings: lib/spaces-env.sh's env file for the store; IPHOTO_MOUNTPOINT (required), IPHOTO_ORIGINALS_PREFIX
# (the key prefix, e.g. "Photos Library.photoslibrary/originals"), IPHOTO_MOUNT_CACHE_DIR and
# IPHOTO_MOUNT_CACHE_MAX_SIZE (default 10GiB). Extra arguments go to `iphoto-mount mount`.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
. "$here/lib/spaces-env.sh"
spaces_env_load
: "${IPHOTO_MOUNTPOINT:?set IPHOTO_MOUNTPOINT}"
: "${IPHOTO_ORIGINALS_PREFIX:?set IPHOTO_ORIGINALS_PREFIX}"
cache_dir="${IPHOTO_MOUNT_CACHE_DIR:-${HOME}/.cache/iphoto-mount/originals}"
mkdir -p "$IPHOTO_MOUNTPOINT" "$cache_dir"
bin="$(iphoto_mount_bin)"
exec "$bin" mount "$IPHOTO_MOUNTPOINT" --prefix "$IPHOTO_ORIGINALS_PREFIX" --profile photos-originals \
    --cache-dir "$cache_dir" --cache-max-size "${IPHOTO_MOUNT_CACHE_MAX_SIZE:-10GiB}" --foreground "$@"
