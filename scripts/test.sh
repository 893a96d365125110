#!/usr/bin/env bash
# The whole test suite: installs what is missing, runs every crate's tests against the real parts (SeaweedFS,
# PostgreSQL, FUSE, the real binaries), then each benchmark in its small mode so none can rot.
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/install-test-deps.sh

# Two test binaries at a time at most: each may start SeaweedFS, PostgreSQL or a FUSE mount, and the
# machines have 2 cores.
cargo test --workspace --no-fail-fast -- --test-threads=4

bash bench/run-small.sh
