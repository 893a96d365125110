#!/usr/bin/env bash
# Runs the read-write mount of the video-projects prefix in the foreground (for launchd/systemd or by hand).
# Settings: lib/spaces-env.sh's env file for the store; IPHOTO_MOUNTPOINT (required), IPHOTO_VIDEO_PREFIX
# (default video-projects), IPHOTO_MOUNT_CACHE_DIR and IPHOTO_MOUNT_CACHE_MAX_SIZE (default 10GiB).
# On SIGTERM the mount journals what is not uploaded yet and unmounts; the next start resumes the uploads.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
. "$here/lib/spaces-env.sh"
spaces_env_load
: "${IPHOTO_MOUNTPOINT:?set IPHOTO_MOUNTPOINT}"
cache_dir="${IPHOTO_MOUNT_CACHE_DIR:-${HOME}/.cache/iphoto-mount/video-projects}"
mkdir -p "$IPHOTO_MOUNTPOINT" "$cache_dir"
bin="$(iphoto_mount_bin)"
exec "$bin" mount "$IPHOTO_MOUNTPOINT" --prefix "${IPHOTO_VIDEO_PREFIX:-video-projects}" --profile video-projects \
    --cache-dir "$cache_dir" --cache-max-size "${IPHOTO_MOUNT_CACHE_MAX_SIZE:-10GiB}" --foreground "$@"
