#!/usr/bin/env bash
# Side-by-side comparison of `leads` binaries on one list request: each serves the same seeded
# SQLite file on a port of its own, and wrk loads them in turn, round after round, so that a
# shared, noisy machine slows them alike. Prints per binary the median requests per second, p99
# latency, and the server's CPU time per request (from /proc, less noisy than throughput).
# For deciding whether a change to the list path is faster; `leads-bench` is the full benchmark.
# Needs wrk (apt-get install wrk). Not a test: numbers depend on the machine.
#
#   git stash; cargo build --release -p leads; cp target/release/leads /tmp/leads-before
#   git stash pop; cargo build --release -p leads
#   scripts/compare.sh /tmp/leads-before target/release/leads
#
#   LEADS=1000000 ROUNDS=6 DURATION=5 QUERY='first=20' scripts/compare.sh A B [C ...]
#   DB=/path/seeded.db COMPANY=biz_... KEY=leads_ck_... scripts/compare.sh A B   # reuse a database
#   DATABASES="postgres://... postgres://...?pgbouncer=true" COMPANY=... KEY=... \
#     scripts/compare.sh B B     # one binary against the same data reached two ways, one URL each
set -euo pipefail

if [ "$#" -lt 2 ]; then
  echo "usage: $0 LEADS_BINARY LEADS_BINARY [...]" >&2
  exit 2
fi
command -v wrk >/dev/null || { echo "wrk is missing: apt-get install wrk" >&2; exit 2; }

LEADS="${LEADS:-1000000}"
ROUNDS="${ROUNDS:-6}"
DURATION="${DURATION:-5}"
CONNECTIONS="${CONNECTIONS:-32}"
QUERY="${QUERY:-first=20}"
BASE_PORT="${BASE_PORT:-18180}"

dir="$(mktemp -d)"
servers=()
cleanup() {
  for pid in "${servers[@]}"; do kill "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$dir"
}
trap cleanup EXIT

read -r -a databases <<<"${DATABASES:-}"
if [ "${#databases[@]}" -gt 0 ] && [ "${#databases[@]}" -ne "$#" ]; then
  echo "DATABASES must name one database URL per binary" >&2
  exit 2
fi
if [ -z "${DB:-}" ] && [ "${#databases[@]}" -eq 0 ]; then
  DB="$dir/compare.db"
  echo "seeding $LEADS leads with $1" >&2
  seeded="$("$1" seed --database "sqlite://$DB" --companies 1 --leads-per-company "$LEADS" --json)"
  COMPANY="$(python3 -c 'import json,sys; print(json.load(sys.stdin)["companies"][0]["id"])' <<<"$seeded")"
  KEY="$(python3 -c 'import json,sys; print(json.load(sys.stdin)["companies"][0]["key"])' <<<"$seeded")"
fi
: "${COMPANY:?set COMPANY with DB}" "${KEY:?set KEY with DB}"
path="/api/v1/leads?company_id=$COMPANY&$QUERY"

ports=()
n=0
for binary in "$@"; do
  port=$((BASE_PORT + n))
  database="${databases[$n]:-sqlite://${DB:-}}"
  RUST_LOG=warn "$binary" serve --database "$database" --addr "127.0.0.1:$port" \
    --rate-limit 0 >"$dir/server-$n.log" 2>&1 &
  servers+=("$!")
  ports+=("$port")
  n=$((n + 1))
done
for port in "${ports[@]}"; do
  for _ in $(seq 200); do
    curl -fs "http://127.0.0.1:$port/healthz" >/dev/null && break
    sleep 0.1
  done
  status="$(curl -s -o /dev/null -w '%{http_code}' -H "Authorization: Bearer $KEY" "http://127.0.0.1:$port$path")"
  [ "$status" = 200 ] || { echo "port $port answered $status to $path" >&2; exit 1; }
done

cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
load() { wrk -t1 -c"$CONNECTIONS" -d"$2s" --latency -H "Authorization: Bearer $KEY" "http://127.0.0.1:$1$path"; }

echo "$# binaries, $ROUNDS rounds of ${DURATION}s each in turn, $CONNECTIONS connections, GET $path" >&2
for i in "${!ports[@]}"; do load "${ports[$i]}" 2 >/dev/null; done
: >"$dir/rounds"
for round in $(seq "$ROUNDS"); do
  for i in "${!ports[@]}"; do
    before="$(cpu_ticks "${servers[$i]}")"
    out="$(load "${ports[$i]}" "$DURATION")"
    after="$(cpu_ticks "${servers[$i]}")"
    requests="$(awk '/requests in/ {print $1}' <<<"$out")"
    errors="$(awk '/Non-2xx/ {print $4}' <<<"$out")"
    echo "$i $(awk '/Requests\/sec/ {print $2}' <<<"$out") $(awk '/ 99%/ {print $2}' <<<"$out") $(((after - before) * 1000000 / $(getconf CLK_TCK) / requests)) ${errors:-0}" >>"$dir/rounds"
  done
done

for i in "${!servers[@]}"; do
  awk '/VmHWM/ {print $2}' "/proc/${servers[$i]}/status" >"$dir/peak-$i"
done

python3 - "$dir" "$@" <<'EOF'
import os, statistics, sys
databases = os.environ.get("DATABASES", "").split()
rows = [line.split() for line in open(sys.argv[1] + "/rounds")]
print("| binary (database) | req/s (median) | each round | p99 (median) | server CPU µs/request | peak RSS | non-2xx |")
print("|---|--:|---|--:|--:|--:|--:|")
for i, binary in enumerate(sys.argv[2:]):
    mine = [r for r in rows if int(r[0]) == i]
    rates = [float(r[1]) for r in mine]
    def ms(text):
        return float(text[:-2]) if text.endswith("ms") else float(text[:-2]) / 1000 if text.endswith("us") else float(text[:-1]) * 1000
    p99 = statistics.median(ms(r[2]) for r in mine)
    cpu = statistics.median(int(r[3]) for r in mine)
    errors = sum(int(r[4]) for r in mine)
    peak = int(open(f"{sys.argv[1]}/peak-{i}").read()) / 1024
    label = f"{binary} ({databases[i]})" if databases else binary
    print(f"| {label} | {statistics.median(rates):,.0f} | {', '.join(f'{x:,.0f}' for x in rates)} | {p99:.2f} ms | {cpu} | {peak:.1f} MiB | {errors} |")
EOF
