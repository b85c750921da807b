#!/usr/bin/env bash
# Measures acknowledged, durable lead creates per second: a release `leads serve` on a fresh
# SQLite file (synchronous=FULL, group commit), loaded by wrk with distinct bodies.
# Needs wrk (apt-get install wrk) and curl. Not a test: numbers depend on the machine.
#
#   scripts/bench-create.sh                      # 32 connections, 20 s
#   CONNECTIONS=64 DURATION=30s scripts/bench-create.sh
set -euo pipefail
cd "$(dirname "$0")/.."

CONNECTIONS="${CONNECTIONS:-32}"
DURATION="${DURATION:-20s}"
THREADS="${THREADS:-1}"
PORT="${PORT:-18080}"

cargo build --release -p leads --quiet
leads=target/release/leads
dir="$(mktemp -d)"
server=""
cleanup() {
  [ -n "$server" ] && kill "$server" 2>/dev/null && wait "$server" 2>/dev/null
  rm -rf "$dir"
}
trap cleanup EXIT

db="sqlite://$dir/bench.db"
company="$("$leads" admin company create --title Bench --database "$db")"
user="$("$leads" admin user create --username bench --email bench@example.com --database "$db")"
key="$("$leads" admin key create --company "$company" --database "$db")"

# One key at full speed: without --rate-limit 0 nearly every request would be a 429.
RUST_LOG=warn "$leads" serve --database "$db" --addr "127.0.0.1:$PORT" --rate-limit 0 &
server=$!
for _ in $(seq 100); do
  curl -fs "http://127.0.0.1:$PORT/healthz" >/dev/null && break
  sleep 0.1
done

echo "wrk: $THREADS thread(s), $CONNECTIONS connections, $DURATION, POST /api/v1/leads"
COMPANY="$company" USER_ID="$user" KEY="$key" \
  wrk -t"$THREADS" -c"$CONNECTIONS" -d"$DURATION" --latency \
  -s scripts/bench-create.lua "http://127.0.0.1:$PORT"

# Every 200 above was acknowledged only after its COMMIT: the database must hold at least as
# many leads as wrk counted requests (more if some were in flight when wrk stopped).
kill "$server" && wait "$server" 2>/dev/null || true
server=""
if command -v python3 >/dev/null; then
  python3 -c 'import sqlite3, sys; print("leads in the database:", sqlite3.connect(sys.argv[1]).execute("SELECT count(*) FROM leads").fetchone()[0])' "$dir/bench.db"
fi
