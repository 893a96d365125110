#!/usr/bin/env bash
# Installs iphoto-server as a systemd service on Linux, idempotently: a system user `iphoto`, the binary in
# /usr/local/bin, the data directory /var/lib/iphoto (0750), the settings file /etc/iphoto/iphoto-server.env
# (0600, created once with every variable commented out and never overwritten), the unit
# /etc/systemd/system/iphoto-server.service, then `systemctl enable --now`. Running it again upgrades the
# binary and the unit and keeps the data and the settings.
#
#   deploy/install.sh [--binary PATH] [--root DIR]       install or upgrade
#   deploy/install.sh --uninstall [--purge] [--root DIR] stop and remove the service and the binary; --purge
#                                                          also removes the data, the settings and the user
#
# --root DIR installs under DIR instead of / (a package staging tree, or a test): no user is created, nothing
# is chowned and systemctl is not called.
set -euo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
root=/
binary=""
mode=install
purge=0
while [ $# -gt 0 ]; do
  case "$1" in
    --binary) binary="${2:?--binary needs a path}"; shift 2 ;;
    --root) root="${2:?--root needs a directory}"; shift 2 ;;
    --uninstall) mode=uninstall; shift ;;
    --purge) purge=1; shift ;;
    -h|--help) sed -n '2,14p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "install.sh: unknown argument $1 (see --help)" >&2; exit 2 ;;
  esac
done

user=iphoto
bin_path="${root%/}/usr/local/bin/iphoto-server"
data_dir="${root%/}/var/lib/iphoto"
env_dir="${root%/}/etc/iphoto"
env_file="$env_dir/iphoto-server.env"
unit_path="${root%/}/etc/systemd/system/iphoto-server.service"
live=0
if [ "$root" = "/" ]; then
  live=1
  if [ "$(id -u)" -ne 0 ]; then
    echo "install.sh: run as root (or use --root DIR to stage the files)" >&2
    exit 1
  fi
fi
have_systemctl() { [ "$live" = 1 ] && command -v systemctl >/dev/null 2>&1; }

if [ "$mode" = uninstall ]; then
  if have_systemctl; then
    systemctl disable --now iphoto-server.service 2>/dev/null || true
  fi
  rm -f "$unit_path" "$bin_path"
  if have_systemctl; then systemctl daemon-reload; fi
  if [ "$purge" = 1 ]; then
    rm -rf "$data_dir" "$env_file"
    rmdir "$env_dir" 2>/dev/null || true
    if [ "$live" = 1 ] && id "$user" >/dev/null 2>&1; then userdel "$user"; fi
    echo "iphoto-server removed, with its data and settings"
  else
    echo "iphoto-server removed; data kept in $data_dir, settings in $env_file (--purge removes them)"
  fi
  exit 0
fi

if [ -z "$binary" ]; then
  for candidate in "$here/../target/release/iphoto-server" "$(command -v iphoto-server || true)"; do
    if [ -n "$candidate" ] && [ -x "$candidate" ]; then binary="$candidate"; break; fi
  done
fi
if [ -z "$binary" ] || [ ! -x "$binary" ]; then
  echo "install.sh: no iphoto-server binary: build it (cargo build --release -p iphoto-server) or pass --binary PATH" >&2
  exit 1
fi

if [ "$live" = 1 ] && ! id "$user" >/dev/null 2>&1; then
  useradd --system --home-dir /var/lib/iphoto --no-create-home --shell /usr/sbin/nologin \
    --comment "iPhoto sync server" "$user"
fi

install -d -m 0755 "$(dirname "$bin_path")" "$(dirname "$unit_path")"
# Replace the binary atomically, so a running server keeps its old inode until the restart below.
install -m 0755 "$binary" "$bin_path.new"
mv -f "$bin_path.new" "$bin_path"

install -d -m 0750 "$data_dir"
install -d -m 0750 "$env_dir"
if [ ! -e "$env_file" ]; then
  umask 077
  cat >"$env_file" <<'ENV'
# iphoto-server settings (read by systemd as root; mode 0600). Every variable is described in the README's
# "Configuration" section; the defaults need no setting at all (SQLite and blobs under /var/lib/iphoto).
#IPHOTO_LISTEN=127.0.0.1:8080
#IPHOTO_PUBLIC_URL=https://photos.example.org
#IPHOTO_DATABASE_URL=postgres://iphoto:password@localhost/iphoto
#IPHOTO_MAX_SYNC_BATCH=500
#IPHOTO_MAX_UPLOAD_BYTES=68719476736
#IPHOTO_HTTP_HEADER_TIMEOUT_SECS=10
#IPHOTO_HTTP_BODY_IDLE_SECS=60
#IPHOTO_HTTP_REQUEST_TIMEOUT_SECS=60
#IPHOTO_HTTP_MAX_CONNECTIONS=1024
#IPHOTO_UPLOAD_PART_SIZE=8388608
#IPHOTO_UPLOAD_MAX_AGE=24h
#IPHOTO_JOB_LEASE_SECS=300
#IPHOTO_JOB_MAX_FAILURES=5
#IPHOTO_JOB_RETRY_SECS=30
#IPHOTO_TRASH_DAYS=30
#IPHOTO_SESSION_MAX_AGE=30d
#IPHOTO_WORKERS=thumbnail
#IPHOTO_WORKER_CONCURRENCY=4
#IPHOTO_THUMBNAIL_MAX_EDGE=512
#IPHOTO_THUMBNAIL_QUALITY=82
#IPHOTO_PREVIEW_MAX_EDGE=2048
#IPHOTO_PREVIEW_QUALITY=85
#IPHOTO_GC_INTERVAL=6h
#IPHOTO_GC_GRACE=24h
#IPHOTO_GC_SETTLE=30s
#IPHOTO_LOG_JSON=true
#IPHOTO_LOG=info,sqlx=warn
#IPHOTO_STORAGE_BACKEND=local
#IPHOTO_STORAGE_LOCAL_PATH=/var/lib/iphoto/blobs
#IPHOTO_S3_ENDPOINT=https://fra1.digitaloceanspaces.com
#IPHOTO_S3_REGION=us-east-1
#IPHOTO_S3_BUCKET=
#IPHOTO_S3_ACCESS_KEY_ID=
#IPHOTO_S3_SECRET_ACCESS_KEY=
#IPHOTO_S3_SECRET_ACCESS_KEY_FILE=/etc/iphoto/s3.secret
#IPHOTO_S3_PREFIX=
#IPHOTO_S3_PATH_STYLE=
#IPHOTO_PRESIGN_SECRET=
#IPHOTO_PRESIGN_SECRET_FILE=/var/lib/iphoto/presign.secret
#IPHOTO_PRESIGN_TTL_SECS=300
#IPHOTO_PRESIGN_MAX_TTL_SECS=3600
ENV
fi
chmod 0600 "$env_file"
install -m 0644 "$here/iphoto-server.service" "$unit_path"

if [ "$live" = 1 ]; then
  chown "$user:$user" "$data_dir"
  chown root:root "$env_file"
  chown "root:$user" "$env_dir"
fi
if have_systemctl; then
  systemctl daemon-reload
  systemctl enable iphoto-server.service
  systemctl restart iphoto-server.service
  echo "iphoto-server installed and running: systemctl status iphoto-server; first-start tokens in $data_dir"
else
  echo "iphoto-server installed under $root (systemd not started)"
fi
