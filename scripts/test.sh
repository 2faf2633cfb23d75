#!/usr/bin/env bash
# Runs the whole test suite: installs what the tests need (Debian packages, Python
# client libraries), then runs every unit and integration test of the workspace. The
# integration tests start their own mariadbd in a temp dir on a free loopback port.
#
# The suite takes about a minute once built. It runs under a time limit so a test that
# hangs fails the run (with cargo's "has been running for over 60 seconds" naming it)
# instead of eating CI's whole budget; DPM_TEST_TIMEOUT (seconds) overrides the limit.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh
cargo test --workspace --all-targets --no-run
limit="${DPM_TEST_TIMEOUT:-900}"
status=0
timeout --kill-after=30 "$limit" cargo test --workspace --all-targets || status=$?
if [ "$status" -eq 124 ] || [ "$status" -eq 137 ]; then
    echo "scripts/test.sh: the suite did not finish within ${limit}s; the test(s) still running above hang" >&2
fi
exit "$status"
