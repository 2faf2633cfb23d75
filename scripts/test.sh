#!/usr/bin/env bash
# Runs the whole test suite: installs what the tests need (Debian packages, Python
# client libraries), then runs every unit and integration test of the workspace. The
# integration tests start their own mariadbd in a temp dir on a free loopback port.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh
cargo test --workspace --all-targets
