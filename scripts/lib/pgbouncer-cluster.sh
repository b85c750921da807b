# Sourced by scripts/pgbouncer-tests.sh and scripts/compare-pgbouncer.sh: makes a private
# PostgreSQL cluster in a temporary directory and puts PgBouncer (pool_mode = transaction) before
# it, both on free loopback ports, and removes both on exit. Sets pg_port, bouncer_port and
# pgbouncer (the binary). Needs PostgreSQL's server binaries and pgbouncer.

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

