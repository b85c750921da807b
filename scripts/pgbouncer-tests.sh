#!/usr/bin/env bash
# The PostgreSQL conformance tests through PgBouncer in transaction mode: a private cluster made
# here, PgBouncer (pool_mode = transaction) in front of it, and the list, write, credential and
# statistics tests' postgres:: halves run with the server told `?pgbouncer=true`
# (docs/postgresql.md, "Transaction poolers"). Extra arguments go to cargo test.
# Needs PostgreSQL's server binaries and pgbouncer (apt-get install pgbouncer).
set -euo pipefail
cd "$(dirname "$0")/.."

bin="$(pg_config --bindir 2>/dev/null || true)"
if [ ! -x "$bin/initdb" ]; then
  bin="$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1)"
fi
[ -x "$bin/initdb" ] || { echo "PostgreSQL's server binaries (initdb) were not found" >&2; exit 1; }
pgbouncer="$(command -v pgbouncer || echo /usr/sbin/pgbouncer)"
[ -x "$pgbouncer" ] || { echo "pgbouncer was not found (apt-get install pgbouncer)" >&2; exit 1; }

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
dir="$(mktemp -d /tmp/leads-pgbouncer-XXXXXX)"
# Neither PostgreSQL nor PgBouncer runs as root.
as=()
if [ "$(id -u)" = 0 ]; then
  user=postgres; id -u postgres >/dev/null 2>&1 || user=nobody
  chown "$user:" "$dir"
  as=(runuser -u "$user" --)
fi
pg_port="$(free_port)"
bouncer_port="$(free_port)"
cleanup() {
  [ -f "$dir/pgbouncer.pid" ] && kill "$(cat "$dir/pgbouncer.pid")" 2>/dev/null || true
  (cd "$dir" && "${as[@]}" "$bin/pg_ctl" -D "$dir/data" -m immediate -w stop >/dev/null 2>&1) || true
  rm -rf "$dir"
}
trap cleanup EXIT

cd "$dir"
"${as[@]}" "$bin/initdb" -D "$dir/data" -U postgres -A trust --no-sync -E UTF8 >/dev/null
"${as[@]}" "$bin/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w \
  -o "-p $pg_port -c listen_addresses=127.0.0.1 -c unix_socket_directories=$dir -c max_connections=100" start >/dev/null
cat > "$dir/pgbouncer.ini" <<INI
[databases]
* = host=127.0.0.1 port=$pg_port user=postgres

[pgbouncer]
listen_addr = 127.0.0.1
listen_port = $bouncer_port
unix_socket_dir =
auth_type = any
pool_mode = transaction
max_client_conn = 1000
default_pool_size = 20
max_db_connections = 40
logfile = $dir/pgbouncer.log
pidfile = $dir/pgbouncer.pid
INI
chown "${user:-root}:" "$dir/pgbouncer.ini" 2>/dev/null || true
"${as[@]}" "$pgbouncer" -d "$dir/pgbouncer.ini"
for _ in $(seq 1 50); do
  (exec 3<>"/dev/tcp/127.0.0.1/$bouncer_port") 2>/dev/null && break
  sleep 0.1
done
cd - >/dev/null

echo "[pgbouncer-tests] PgBouncer $("$pgbouncer" --version | head -1 | awk '{print $2}') in transaction mode on 127.0.0.1:$bouncer_port, before PostgreSQL on $pg_port"
LEADS_TEST_DATABASE_URL="postgres://postgres@127.0.0.1:$bouncer_port/postgres?pgbouncer=true" \
  cargo test --locked -p leads-server \
    --test list_leads --test write_leads --test credentials --test stats --test search_leads \
    "$@" -- postgres::
