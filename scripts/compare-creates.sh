#!/usr/bin/env bash
# Side-by-side creates/s of `leads` binaries, for changes to the write path: each binary seeds a
# database of its own (so binaries of different schema versions can be compared), serves it on a
# port of its own, and wrk sends `POST /api/v1/leads` with distinct bodies (four in five with a
# product, as leads-bench does) to each in turn, round after round, so that a shared, noisy
# machine slows them alike. Prints per binary the median creates/s, the median over rounds of its
# creates/s against the first binary's in the same round, p99 and the server's CPU time per create. Needs wrk. Not a test: numbers depend on the machine.
#
#   scripts/compare-creates.sh /tmp/leads-before target/release/leads
#   PG=postgres://postgres@127.0.0.1:5432/postgres scripts/compare-creates.sh A B   # PostgreSQL
#   LEADS=100000 ROUNDS=4 DURATION=5 CONNECTIONS=32 scripts/compare-creates.sh A B
#   SETUP_SQL_1='DROP TRIGGER lead_referrer_indexed' scripts/compare-creates.sh A A
#
# SETUP_SQL_<n> (n counting binaries from 0) is run on the n-th database after seeding, with
# sqlite3 or psql: to weigh one part of a write path, run a binary beside itself without it.
set -euo pipefail

if [ "$#" -lt 2 ]; then
  echo "usage: $0 LEADS_BINARY LEADS_BINARY [...]" >&2
  exit 2
fi
command -v wrk >/dev/null || { echo "wrk is missing: apt-get install wrk" >&2; exit 2; }

LEADS="${LEADS:-100000}"
ROUNDS="${ROUNDS:-4}"
DURATION="${DURATION:-5}"
CONNECTIONS="${CONNECTIONS:-32}"
BASE_PORT="${BASE_PORT:-18280}"

dir="$(mktemp -d)"
servers=()
databases=()
cleanup() {
  for pid in "${servers[@]}"; do kill "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
  for name in "${databases[@]}"; do
    psql "$PG" -qc "DROP DATABASE IF EXISTS $name" >/dev/null 2>&1 || true
  done
  rm -rf "$dir"
}
trap cleanup EXIT

ports=()
n=0
for binary in "$@"; do
  if [ -n "${PG:-}" ]; then
    name="leads_compare_$$_$n"
    psql "$PG" -qc "CREATE DATABASE $name" >/dev/null
    databases+=("$name")
    url="${PG%/*}/$name"
  else
    url="sqlite://$dir/compare-$n.db"
  fi
  started="$(date +%s.%N)"
  seeded="$("$binary" seed --database "$url" --companies 1 --leads-per-company "$LEADS" --json)"
  echo "$binary seeded $LEADS leads in $(python3 -c "import sys; print(f'{float(sys.argv[2]) - float(sys.argv[1]):.1f}')" "$started" "$(date +%s.%N)") s" >&2
  user="$("$binary" admin user create --database "$url" --username "bench$n")"
  printf '%s' "$seeded" >"$dir/seeded-$n.json"
  setup="SETUP_SQL_$n"
  if [ -n "${!setup:-}" ]; then
    echo "$binary, database $n: ${!setup}" >&2
    if [ -n "${PG:-}" ]; then psql "$url" -qc "${!setup}"; else sqlite3 "${url#sqlite://}" "${!setup}"; fi
  fi
  # Start every database from rest: the seed's dead tuples vacuumed, its statistics gathered and
  # its pages written out, so that no autovacuum or checkpoint of one seed lands in another's rounds.
  if [ -n "${PG:-}" ]; then
    psql "$url" -qc "VACUUM (ANALYZE)" -c "CHECKPOINT"
  else
    sqlite3 "${url#sqlite://}" "PRAGMA wal_checkpoint(TRUNCATE)" >/dev/null
  fi
  python3 - "$dir/post-$n.lua" "$user" "$dir/seeded-$n.json" <<'EOF'
import json, sys
company = json.load(open(sys.argv[3]))["companies"][0]
open(sys.argv[1], "w").write(f"""
local company, user = "{company['id']}", "{sys.argv[2]}"
local products = {{ {", ".join(json.dumps(p) for p in company["products"])} }}
local n = 0
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer {company['key']}"
request = function()
  n = n + 1
  local product = ""
  if n % 5 ~= 0 and #products > 0 then
    product = string.format(',"product_id":"%s"', products[n % #products + 1])
  end
  local body = string.format('{{"company_id":"%s","user_id":"%s","referrer":"https://bench.example/%d"%s}}', company, user, n, product)
  return wrk.format(nil, "/api/v1/leads", nil, body)
end
""")
EOF
  port=$((BASE_PORT + n))
  RUST_LOG=warn "$binary" serve --database "$url" --addr "127.0.0.1:$port" \
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
done

cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
load() { wrk -t1 -c"$CONNECTIONS" -d"$2s" --latency -s "$dir/post-$3.lua" "http://127.0.0.1:$1"; }

echo "$# binaries, $ROUNDS rounds of ${DURATION}s each in turn, $CONNECTIONS connections" >&2
for i in "${!ports[@]}"; do load "${ports[$i]}" 2 "$i" >/dev/null; done
: >"$dir/rounds"
for round in $(seq "$ROUNDS"); do
  for i in "${!ports[@]}"; do
    before="$(cpu_ticks "${servers[$i]}")"
    out="$(load "${ports[$i]}" "$DURATION" "$i")"
    after="$(cpu_ticks "${servers[$i]}")"
    requests="$(awk '/requests in/ {print $1}' <<<"$out")"
    errors="$(awk '/Non-2xx/ {print $4}' <<<"$out")"
    echo "$i $(awk '/Requests\/sec/ {print $2}' <<<"$out") $(awk '/ 99%/ {print $2}' <<<"$out") $(((after - before) * 1000000 / $(getconf CLK_TCK) / requests)) ${errors:-0}" >>"$dir/rounds"
  done
done

python3 - "$dir" "$@" <<'EOF'
import statistics, sys
rows = [line.split() for line in open(sys.argv[1] + "/rounds")]
print("| binary | creates/s (median) | vs the first (median of rounds) | each round | p99 (median) | server CPU µs/create | non-2xx |")
print("|---|--:|--:|---|--:|--:|--:|")
first = [float(r[1]) for r in rows if int(r[0]) == 0]
for i, binary in enumerate(sys.argv[2:]):
    mine = [r for r in rows if int(r[0]) == i]
    rates = [float(r[1]) for r in mine]
    def ms(text):
        return float(text[:-2]) if text.endswith("ms") else float(text[:-2]) / 1000 if text.endswith("us") else float(text[:-1]) * 1000
    p99 = statistics.median(ms(r[2]) for r in mine)
    cpu = statistics.median(int(r[3]) for r in mine)
    errors = sum(int(r[4]) for r in mine)
    # Each round against the first binary's in the same round, so a drift of the machine over
    # the run cancels out.
    paired = statistics.median(r / f for r, f in zip(rates, first))
    print(f"| {binary} | {statistics.median(rates):,.0f} | {paired - 1:+.1%} | {', '.join(f'{x:,.0f}' for x in rates)} | {p99:.2f} ms | {cpu} | {errors} |")
EOF
