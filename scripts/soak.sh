#!/usr/bin/env bash
# The chaos soak for longer than CI runs it: three instances behind HAProxy on a private
# PostgreSQL cluster, instances SIGKILLed and the database restarted under load
# (crates/leads/tests/soak.rs; docs/postgresql.md, "Behind a load balancer").
# Usage: scripts/soak.sh [MINUTES]   (default 10). Needs PostgreSQL's server binaries and haproxy.
set -euo pipefail
cd "$(dirname "$0")/.."
minutes="${1:-10}"
case "$minutes" in
  ''|*[!0-9]*) echo "usage: scripts/soak.sh [MINUTES] (a whole number)" >&2; exit 2 ;;
esac
LEADS_SOAK_SECONDS=$((minutes * 60)) LEADS_REQUIRE_PG_FAULT_TESTS=1 \
  cargo test --release -p leads --test soak -- --nocapture
