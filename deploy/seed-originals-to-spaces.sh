#!/usr/bin/env bash
# Copies a Photos library's originals to the bucket, keyed by their real bundle path
# (<library bundle name>/originals/<path inside originals>), through a temporary read-write iphoto-mount.
# Resumable: an original already in the bucket with the same size and SHA-256 is skipped, so a rerun after an
# interruption copies only what is missing or wrong. Ends with `iphoto-mount flush`: when this script exits 0,
# every original is in the store.
#
# Usage: seed-originals-to-spaces.sh LIBRARY.photoslibrary
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
. "$here/lib/spaces-env.sh"
spaces_env_load

library="${1:?usage: seed-originals-to-spaces.sh LIBRARY.photoslibrary}"
library="$(cd "$library" && pwd -P)"
originals="$library/originals"
[ -d "$originals" ] && [ ! -L "$originals" ] || { echo "seed: $originals is not the library's own directory" >&2; exit 1; }
prefix="${IPHOTO_ORIGINALS_PREFIX:-$(basename "$library")/originals}"
bin="$(iphoto_mount_bin)"

work="$(mktemp -d)"
mountpoint="$work/mnt"
cache_dir="${IPHOTO_SEED_CACHE_DIR:-$work/cache}"
mkdir -p "$mountpoint"
"$bin" mount "$mountpoint" --prefix "$prefix" --profile video-projects --cache-dir "$cache_dir" \
    --cache-max-size "${IPHOTO_MOUNT_CACHE_MAX_SIZE:-4GiB}" --metadata-ttl-secs 1 &
mount_pid=$!
cleanup() {
    kill -TERM "$mount_pid" 2>/dev/null || true
    wait "$mount_pid" 2>/dev/null || true
    unmount_path "$mountpoint" || true
    rm -rf "$work"
}
trap cleanup EXIT
for _ in $(seq 1 200); do is_mounted "$mountpoint" && break; sleep 0.1; done
is_mounted "$mountpoint" || { echo "seed: the mount did not come up" >&2; exit 1; }

copied=0 skipped=0
while IFS= read -r -d '' source; do
    relative="${source#"$originals"/}"
    target="$mountpoint/$relative"
    if [ -f "$target" ] && [ "$(file_size "$target")" = "$(file_size "$source")" ] \
        && [ "$(file_sha256 "$target")" = "$(file_sha256 "$source")" ]; then
        skipped=$((skipped + 1))
        continue
    fi
    mkdir -p "$(dirname "$target")"
    cp "$source" "$target"
    copied=$((copied + 1))
done < <(find "$originals" -type f ! -name '.*' -print0)

"$bin" flush --cache-dir "$cache_dir" --timeout-secs "${IPHOTO_SEED_FLUSH_TIMEOUT_SECS:-86400}"
echo "seed: $copied copied, $skipped already there, under $prefix"
