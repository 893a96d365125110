#!/usr/bin/env bash
# Every benchmark in its small mode, as CI runs them: they must keep working, and their figures are printed
# (not gated: CI machines are shared and noisy). The full runs are documented in bench/README.md.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build -q -p iphoto-bench --bins
cargo build -q -p iphoto-server --bin iphoto-server
for bin in storage ingest upload; do
  echo "== bench $bin --small"
  "${CARGO_TARGET_DIR:-target}/debug/$bin" --small
done
