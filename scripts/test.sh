#!/usr/bin/env bash
# Runs the whole test suite: installs the official SDKs the compatibility tests drive, then
# every Rust test in the workspace. PostgreSQL tests run when LEADS_TEST_DATABASE_URL is set.
set -euo pipefail
cd "$(dirname "$0")/.."

bash tests/sdk/install.sh
export LEADS_REQUIRE_SDK_TESTS=1
if [ -z "${LEADS_TEST_DATABASE_URL:-}" ]; then
  echo "*** LEADS_TEST_DATABASE_URL is not set: the PostgreSQL half of the suite will be SKIPPED ***" >&2
fi
cargo test --workspace --locked "$@"
