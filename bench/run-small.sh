#!/usr/bin/env bash
# Every benchmark in its small mode, as CI runs them: they must keep working, and their figures are printed
# (not gated: CI machines are shared and noisy). The full runs are documented in bench/README.md.
set -euo pipefail
cd "$(dirname "$0")/.."
# One build of every binary: the server's is run by `ingest`, `upload`, `agent` and the `web_*` ones, the agent's by
# `agent`, the mount's by `mount` and `video`. Building them together keeps one feature resolution, so the crates the tests
# just built are not rebuilt once per package.
cargo build -q --workspace --bins
for bin in storage ingest upload resumable agent mount video web_list web_search web_pages thumbnails slow_clients; do
  echo "== bench $bin --small"
  "${CARGO_TARGET_DIR:-target}/debug/$bin" --small
done
# The video benchmark's other clip (ProRes 422 Proxy, intra-only), so its path cannot rot either.
echo "== bench video --small --codec prores --only scrub"
"${CARGO_TARGET_DIR:-target}/debug/video" --small --codec prores --only scrub
