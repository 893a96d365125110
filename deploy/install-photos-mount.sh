#!/usr/bin/env bash
# Serves a Photos library's originals from the bucket: checks FUSE, mounts, proves through the mount that
# EVERY original reads back with the right size and SHA-256, and only then repoints the library's `originals`
# to the mount (the local folder is kept as originals.local-backup). Phased and idempotent: a rerun skips
# what is done; a failed gate changes nothing (the mount it started is stopped). `--rollback` undoes it.
#
# Usage: install-photos-mount.sh LIBRARY.photoslibrary [--rollback]
# Settings: lib/spaces-env.sh's env file; IPHOTO_MOUNTPOINT (default ~/.iphoto/mounts/<library name>),
# IPHOTO_ORIGINALS_PREFIX (default <library name>/originals, as seed-originals-to-spaces.sh keys them),
# IPHOTO_MOUNT_CACHE_DIR, IPHOTO_MOUNT_CACHE_MAX_SIZE.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
. "$here/lib/spaces-env.sh"

library="${1:?usage: install-photos-mount.sh LIBRARY.photoslibrary [--rollback]}"
action="${2:-install}"
library="$(cd "$library" && pwd -P)"
name="$(basename "$library")"
originals="$library/originals"
backup="$library/originals.local-backup"
state_dir="$library/.iphoto-mount"
export IPHOTO_MOUNTPOINT="${IPHOTO_MOUNTPOINT:-$HOME/.iphoto/mounts/$name}"
export IPHOTO_ORIGINALS_PREFIX="${IPHOTO_ORIGINALS_PREFIX:-$name/originals}"
export IPHOTO_MOUNT_CACHE_DIR="${IPHOTO_MOUNT_CACHE_DIR:-$HOME/.cache/iphoto-mount/$name}"
log() { echo "install-photos-mount: $*" >&2; }

stop_mount() {
    if [ -f "$state_dir/mount.pid" ]; then
        kill -TERM "$(cat "$state_dir/mount.pid")" 2>/dev/null || true
        for _ in $(seq 1 100); do is_mounted "$IPHOTO_MOUNTPOINT" || break; sleep 0.1; done
        rm -f "$state_dir/mount.pid"
    fi
    unmount_path "$IPHOTO_MOUNTPOINT" || true
}

if [ "$action" = "--rollback" ]; then
    if [ -L "$originals" ] && [ -d "$backup" ]; then
        rm "$originals"
        mv "$backup" "$originals"
        log "phase rollback: originals is the local folder again"
    elif [ -d "$originals" ] && [ ! -L "$originals" ]; then
        log "phase rollback: nothing to undo (originals is already the local folder)"
    else
        log "phase rollback: originals is a link but no backup at $backup; leaving it" && exit 1
    fi
    stop_mount
    rm -rf "$state_dir"
    exit 0
fi
[ "$action" = "install" ] || { log "unknown argument $action"; exit 2; }

# Phase 1: prerequisites.
if [ "$(uname)" = "Darwin" ]; then
    [ -d /Library/Filesystems/macfuse.fs ] || { log "phase check: macFUSE is not installed"; exit 1; }
else
    [ -e /dev/fuse ] || { log "phase check: /dev/fuse is missing (install fuse3)"; exit 1; }
    command -v fusermount3 >/dev/null || { log "phase check: fusermount3 is missing (install fuse3)"; exit 1; }
fi
spaces_env_load
iphoto_mount_bin >/dev/null
if [ -L "$originals" ]; then
    [ "$(readlink "$originals")" = "$IPHOTO_MOUNTPOINT" ] || { log "originals links elsewhere: $(readlink "$originals")"; exit 1; }
    source_dir="$backup"
else
    [ -d "$originals" ] || { log "no originals folder in $library"; exit 1; }
    source_dir="$originals"
fi
log "phase check: ok"

# Phase 2: the mount (started here unless already up).
mkdir -p "$state_dir" "$IPHOTO_MOUNTPOINT"
started_here=false
if ! is_mounted "$IPHOTO_MOUNTPOINT"; then
    # The gate must see the bucket as it is now, not a listing an earlier mount saved (a restarted mount
    # trusts one younger than its TTL): an original fixed or removed since would pass or fail wrongly.
    rm -f "$IPHOTO_MOUNT_CACHE_DIR/listings.json"
    nohup "$here/photos-originals-mount.sh" >"$state_dir/mount.log" 2>&1 &
    echo $! >"$state_dir/mount.pid"
    started_here=true
    for _ in $(seq 1 200); do is_mounted "$IPHOTO_MOUNTPOINT" && break; sleep 0.1; done
    is_mounted "$IPHOTO_MOUNTPOINT" || { log "phase mount: the mount did not come up (see $state_dir/mount.log)"; exit 1; }
fi
log "phase mount: $IPHOTO_MOUNTPOINT is mounted"

# Phase 3: the gate. Every original must read through the mount with its size and SHA-256.
checked=0 failed=0
while IFS= read -r -d '' source; do
    relative="${source#"$source_dir"/}"
    target="$IPHOTO_MOUNTPOINT/$relative"
    if [ ! -f "$target" ]; then
        log "gate: missing through the mount: $relative"
        failed=$((failed + 1))
    elif [ "$(file_size "$target")" != "$(file_size "$source")" ]; then
        log "gate: size differs: $relative"
        failed=$((failed + 1))
    elif [ "$(file_sha256 "$target")" != "$(file_sha256 "$source")" ]; then
        log "gate: content differs: $relative"
        failed=$((failed + 1))
    fi
    checked=$((checked + 1))
done < <(find "$source_dir" -type f ! -name '.*' -print0)
if [ "$failed" -ne 0 ]; then
    log "phase gate: $failed of $checked originals do not read back; originals left as they were"
    if [ "$started_here" = true ] && [ ! -L "$originals" ]; then stop_mount; fi
    exit 1
fi
log "phase gate: all $checked originals read back with the right size and hash"

# Phase 4: repoint (atomic rename of a temporary link over nothing: the folder moves aside first).
if [ -L "$originals" ]; then
    log "phase repoint: already done"
else
    mv "$originals" "$backup"
    ln -s "$IPHOTO_MOUNTPOINT" "$originals.tmp-link"
    mv "$originals.tmp-link" "$originals"
    log "phase repoint: originals -> $IPHOTO_MOUNTPOINT (local folder kept at $backup)"
fi
