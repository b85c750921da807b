#!/usr/bin/env bash
# List throughput through PgBouncer (transaction mode, `?pgbouncer=true`) against a direct
# connection, side by side: one seeded private cluster, one `leads` binary serving it twice,
# loaded in turn by scripts/compare.sh. Not a test: numbers depend on the machine.
#
#   cargo build --release -p leads
#   scripts/compare-pgbouncer.sh [target/release/leads]       # LEADS=100000 ROUNDS=6 ...
set -euo pipefail
cd "$(dirname "$0")/.."
binary="$(realpath "${1:-target/release/leads}")"
[ -x "$binary" ] || { echo "no leads binary at $binary: cargo build --release -p leads" >&2; exit 2; }

. scripts/lib/pgbouncer-cluster.sh

direct="postgres://postgres@127.0.0.1:$pg_port/postgres"
pooled="postgres://postgres@127.0.0.1:$bouncer_port/postgres?pgbouncer=true"
echo "seeding ${LEADS:-100000} leads" >&2
seeded="$("$binary" seed --database "$direct" --companies 1 --leads-per-company "${LEADS:-100000}" --json)"
export COMPANY="$(python3 -c 'import json,sys; print(json.load(sys.stdin)["companies"][0]["id"])' <<<"$seeded")"
export KEY="$(python3 -c 'import json,sys; print(json.load(sys.stdin)["companies"][0]["key"])' <<<"$seeded")"
DATABASES="$direct $pooled" scripts/compare.sh "$binary" "$binary"
