# shellcheck shell=bash
# Loads the object-store settings of every deploy script from ONE env file, so no script holds an endpoint,
# a bucket or a secret. Source it; it exports the variables `iphoto-mount` reads (IPHOTO_STORAGE_BACKEND, IPHOTO_S3_*).
#
# The env file (default ~/.config/iphoto/spaces.env, or $IPHOTO_SPACES_ENV) holds, one per line:
#   SPACES_ENDPOINT=https://fra1.digitaloceanspaces.com
#   SPACES_REGION=fra1
#   SPACES_BUCKET=my-photos
#   SPACES_ACCESS_KEY_ID=...
#   SPACES_SECRET_ACCESS_KEY=...        (or SPACES_SECRET_ACCESS_KEY_FILE=/path/to/secret)
#   SPACES_PREFIX=optional/namespace    (optional: every key of the bucket below it)
#   SPACES_PATH_STYLE=true              (optional: for S3 servers without virtual-hosted buckets)
# It must not be readable by group or others.

spaces_env_die() {
    echo "spaces-env: $*" >&2
    return 1
}

spaces_env_load() {
    local file="${IPHOTO_SPACES_ENV:-${HOME}/.config/iphoto/spaces.env}"
    [ -f "$file" ] || { spaces_env_die "no env file at $file (set IPHOTO_SPACES_ENV)"; return 1; }
    local mode
    mode=$(stat -c '%a' "$file" 2>/dev/null || stat -f '%Lp' "$file")
    case "$mode" in
        *00) ;;
        *) spaces_env_die "$file is readable by others (mode $mode); chmod 600 it"; return 1 ;;
    esac
    set -a
    # shellcheck disable=SC1090
    . "$file"
    set +a
    local missing=""
    for variable in SPACES_ENDPOINT SPACES_REGION SPACES_BUCKET SPACES_ACCESS_KEY_ID; do
        [ -n "${!variable:-}" ] || missing="$missing $variable"
    done
    if [ -z "${SPACES_SECRET_ACCESS_KEY:-}" ] && [ -z "${SPACES_SECRET_ACCESS_KEY_FILE:-}" ]; then
        missing="$missing SPACES_SECRET_ACCESS_KEY"
    fi
    [ -z "$missing" ] || { spaces_env_die "$file lacks:$missing"; return 1; }
    export IPHOTO_STORAGE_BACKEND=s3
    export IPHOTO_S3_ENDPOINT="$SPACES_ENDPOINT" IPHOTO_S3_REGION="$SPACES_REGION" IPHOTO_S3_BUCKET="$SPACES_BUCKET"
    export IPHOTO_S3_ACCESS_KEY_ID="$SPACES_ACCESS_KEY_ID"
    if [ -n "${SPACES_SECRET_ACCESS_KEY_FILE:-}" ]; then
        export IPHOTO_S3_SECRET_ACCESS_KEY_FILE="$SPACES_SECRET_ACCESS_KEY_FILE"
    else
        export IPHOTO_S3_SECRET_ACCESS_KEY="$SPACES_SECRET_ACCESS_KEY"
    fi
    [ -z "${SPACES_PREFIX:-}" ] || export IPHOTO_S3_PREFIX="$SPACES_PREFIX"
    [ -z "${SPACES_PATH_STYLE:-}" ] || export IPHOTO_S3_PATH_STYLE="$SPACES_PATH_STYLE"
    unset SPACES_SECRET_ACCESS_KEY
}

# The iphoto-mount binary: $IPHOTO_MOUNT_BIN, else from PATH.
iphoto_mount_bin() {
    if [ -n "${IPHOTO_MOUNT_BIN:-}" ]; then
        echo "$IPHOTO_MOUNT_BIN"
    else
        command -v iphoto-mount || { spaces_env_die "iphoto-mount not found (set IPHOTO_MOUNT_BIN)"; return 1; }
    fi
}

# Portable size and SHA-256 (Linux coreutils or macOS).
file_size() { stat -c '%s' "$1" 2>/dev/null || stat -f '%z' "$1"; }
file_sha256() {
    if command -v sha256sum >/dev/null; then sha256sum "$1" | cut -d' ' -f1; else shasum -a 256 "$1" | cut -d' ' -f1; fi
}

# Whether something is mounted at $1.
is_mounted() {
    if [ -r /proc/self/mountinfo ]; then
        grep -qF " $(cd "$1" 2>/dev/null && pwd -P || echo "$1") " /proc/self/mountinfo
    else
        mount | grep -qF " on $1 "
    fi
}

# Unmounts $1 (FUSE on Linux or macOS); quiet when nothing is mounted.
unmount_path() {
    is_mounted "$1" || return 0
    fusermount3 -u "$1" 2>/dev/null || umount "$1" 2>/dev/null || fusermount3 -u -z "$1" 2>/dev/null || umount -l "$1"
}
