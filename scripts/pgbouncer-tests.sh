#!/usr/bin/env bash
# The PostgreSQL conformance tests through PgBouncer in transaction mode: a private cluster made
# here, PgBouncer (pool_mode = transaction) in front of it, and the list, write, credential,
# statistics, search, webhook and export tests' postgres:: halves run with the server told
# `?pgbouncer=true`
# (docs/postgresql.md, "Transaction poolers"). Extra arguments go to cargo test.
# Needs PostgreSQL's server binaries and pgbouncer (apt-get install pgbouncer).
set -euo pipefail
cd "$(dirname "$0")/.."

. scripts/lib/pgbouncer-cluster.sh

echo "[pgbouncer-tests] PgBouncer $("$pgbouncer" --version | head -1 | awk '{print $2}') in transaction mode on 127.0.0.1:$bouncer_port, before PostgreSQL on $pg_port"
LEADS_TEST_DATABASE_URL="postgres://postgres@127.0.0.1:$bouncer_port/postgres?pgbouncer=true" \
  cargo test --locked -p leads-server \
    --test list_leads --test write_leads --test credentials --test stats --test search_leads \
    --test webhooks --test exports \
    "$@" -- postgres::
