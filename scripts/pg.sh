#!/usr/bin/env bash
# A throwaway local PostgreSQL for the tests, the sample and the benchmarks.
#
#   bash scripts/pg.sh start     initialise (first time) and start; prints the connection string
#   bash scripts/pg.sh stop      stop it
#   bash scripts/pg.sh restart   restart whatever cluster listens on the port (used by the restart tests)
#   bash scripts/pg.sh status    say whether it is running
#   bash scripts/pg.sh url       print the connection string
#   bash scripts/pg.sh psql ...  run psql against it
#
# Debian's server binaries are used (installed with apt when missing). initdb refuses to run as root, so as root
# the cluster belongs to the `postgres` user. Its data lives in the git-ignored .pg/ folder when that user can reach
# it, otherwise under /var/tmp (a clone under a root-only folder). It listens on 127.0.0.1 only, with trust
# authentication: it is for local development, never for anything reachable from outside.
#
# The cluster is configured for logical replication (PgNotify:Source = Replication): wal_level = logical, room for
# replication slots and WAL senders, and replication connections allowed from 127.0.0.1. `start` applies this to a
# cluster made by an older pg.sh too (restarting it once if it runs with other settings).
# PGNOTIFY_PG_WAL_LEVEL=replica makes a cluster without logical decoding (the tests of the startup errors use one, on
# a port of their own). A port other than the first cluster's gets its own data folder (.pg/<port>/).
# PGNOTIFY_PG_RESETWAL_FILE=<WAL file name> (e.g. 000000010000004000000000, LSN 40/0 = 256 GiB) moves a cluster's WAL
# forward with `pg_resetwal -l` right after initdb, before its first start: the tests of positions above 2^53 use one,
# on a port of their own, to get such positions without writing 128 GiB. It only acts on a new cluster.
# PGNOTIFY_PG_RESETWAL_EPOCH=<n> likewise sets the transaction id epoch with `pg_resetwal -e`, so 64-bit transaction ids
# (pg_current_xact_id()) start at n × 2^32: the tests of the replication source's 64-bit xids use one.
set -euo pipefail

PORT="${PGNOTIFY_PG_PORT:-54329}"
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
CONNECTION="Host=127.0.0.1;Port=${PORT};Username=postgres;Database=postgres"

WAL_LEVEL="${PGNOTIFY_PG_WAL_LEVEL:-logical}"
STATE="/tmp/pgnotify-pg-${PORT}.datadir"   # which cluster `stop` stopped, so `start` brings back the same one

log() { printf 'pg.sh: %s\n' "$*" >&2; }

find_bindir() {
  local dir
  if command -v pg_config >/dev/null 2>&1; then
    dir="$(pg_config --bindir 2>/dev/null || true)"
    if [ -x "$dir/initdb" ]; then echo "$dir"; return 0; fi
  fi
  for dir in $(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V -r); do
    if [ -x "$dir/initdb" ]; then echo "$dir"; return 0; fi
  done
  return 1
}

ensure_server_binaries() {
  if BIN="$(find_bindir)"; then return 0; fi
  if [ "$(id -u)" -ne 0 ]; then
    log "PostgreSQL server binaries not found. Install Debian's 'postgresql' package (sudo apt-get install -y postgresql)."
    exit 1
  fi
  log "installing Debian's postgresql package"
  DEBIAN_FRONTEND=noninteractive apt-get update -qq >/dev/null
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null
  # The package may start its own cluster on 5432; we do not use it.
  BIN="$(find_bindir)" || { log "postgresql installed but initdb not found"; exit 1; }
}

# Run a command as the cluster's owner: `postgres` when we are root, ourselves otherwise.
as_owner() {
  if [ "$(id -u)" -eq 0 ]; then
    runuser -u postgres -- "$@"
  else
    "$@"
  fi
}

# The first cluster of a checkout lives in .pg/ (as it always has); a cluster on another port in .pg/<port>/.
choose_base() {
  local base="$ROOT/.pg"
  if [ -f "$base/data/PG_VERSION" ] && ! grep -q "^port = ${PORT}\$" "$base/data/postgresql.conf" 2>/dev/null; then
    base="$ROOT/.pg/$PORT"
  fi
  mkdir -p "$base"
  if [ "$(id -u)" -eq 0 ]; then
    chown postgres:postgres "$base"
    if runuser -u postgres -- test -w "$base" 2>/dev/null; then echo "$base"; return; fi
    base="/var/tmp/pgnotify-pg-${PORT}"
    mkdir -p "$base"
    chown postgres:postgres "$base"
    chmod 700 "$base"
  fi
  echo "$base"
}

# Logical replication settings, kept in a file of their own that postgresql.conf includes: written for new clusters
# and added to existing ones. Returns 0 when the file changed (a running server then needs a restart).
configure_replication() {
  local data="$1" conf="$1/pgnotify-replication.conf" wanted
  wanted="# Written by scripts/pg.sh: logical replication for PgNotify:Source = Replication.
wal_level = ${WAL_LEVEL}
max_replication_slots = 32
max_wal_senders = 32
max_slot_wal_keep_size = 1GB"
  if ! grep -q "^include_if_exists = 'pgnotify-replication.conf'" "$data/postgresql.conf" 2>/dev/null; then
    as_owner sh -c "printf '%s\\n' \"include_if_exists = 'pgnotify-replication.conf'\" >>'$data/postgresql.conf'"
  fi
  if ! grep -q '^host *replication *all *127.0.0.1/32' "$data/pg_hba.conf" 2>/dev/null; then
    as_owner sh -c "printf '%s\\n' 'host    replication     all             127.0.0.1/32            trust' >>'$data/pg_hba.conf'"
  fi
  if [ -f "$conf" ] && [ "$(cat "$conf")" = "$wanted" ]; then return 1; fi
  as_owner sh -c "cat >'$conf'" <<<"$wanted"
  return 0
}

is_ready() { "$BIN/pg_isready" -q -h 127.0.0.1 -p "$PORT" >/dev/null 2>&1; }

start() {
  ensure_server_binaries
  if is_ready; then
    local running; running="$(running_data_dir || true)"
    if [ -n "$running" ] && [ -w "$running" -o "$(id -u)" -eq 0 ] && configure_replication "$running"; then
      # A cluster made before pg.sh configured logical replication: wal_level needs a restart.
      as_owner "$BIN/pg_ctl" -D "$running" -m fast -w -t 60 restart -l "$(dirname "$running")/server.log" >/dev/null
      log "restarted on 127.0.0.1:${PORT} with logical replication settings"
    else
      log "already running on 127.0.0.1:${PORT}"
    fi
    echo "$CONNECTION"
    return 0
  fi
  local base data
  if [ -f "$STATE" ] && [ -f "$(cat "$STATE")/PG_VERSION" ]; then
    # Started again after `stop` (the restart tests do this): the same cluster, even from another checkout.
    data="$(cat "$STATE")"
    base="$(dirname "$data")"
  else
    base="$(choose_base)"
    data="$base/data"
  fi
  if [ ! -f "$data/PG_VERSION" ]; then
    log "initialising a cluster in $data"
    as_owner "$BIN/initdb" -D "$data" -U postgres -A trust -E UTF8 --locale=C.UTF-8 >"$base/initdb.log" 2>&1 \
      || { cat "$base/initdb.log" >&2; exit 1; }
    cat >>"$data/postgresql.conf" <<CONF
# PgNotify's throwaway cluster: loopback only, tuned for tests rather than durability.
listen_addresses = '127.0.0.1'
port = ${PORT}
unix_socket_directories = '${base}'
max_connections = 400
fsync = off
synchronous_commit = off
full_page_writes = off
CONF
    if [ -n "${PGNOTIFY_PG_RESETWAL_FILE:-}" ]; then
      as_owner "$BIN/pg_resetwal" -l "$PGNOTIFY_PG_RESETWAL_FILE" -D "$data" >>"$base/initdb.log" 2>&1 \
        || { cat "$base/initdb.log" >&2; exit 1; }
      log "moved the WAL of $data forward to file $PGNOTIFY_PG_RESETWAL_FILE"
    fi
    if [ -n "${PGNOTIFY_PG_RESETWAL_EPOCH:-}" ]; then
      as_owner "$BIN/pg_resetwal" -e "$PGNOTIFY_PG_RESETWAL_EPOCH" -D "$data" >>"$base/initdb.log" 2>&1 \
        || { cat "$base/initdb.log" >&2; exit 1; }
      log "set the transaction id epoch of $data to $PGNOTIFY_PG_RESETWAL_EPOCH"
    fi
  fi
  configure_replication "$data" || true
  as_owner "$BIN/pg_ctl" -D "$data" -l "$base/server.log" -w -t 60 start >/dev/null \
    || { tail -n 50 "$base/server.log" >&2; exit 1; }
  rm -f "$STATE"
  log "running on 127.0.0.1:${PORT} (data: $data)"
  echo "$CONNECTION"
}

running_data_dir() {
  "$BIN/psql" -h 127.0.0.1 -p "$PORT" -U postgres -d postgres -Atqc 'show data_directory' 2>/dev/null
}

stop() {
  ensure_server_binaries
  if ! is_ready; then log "not running"; return 0; fi
  local data; data="$(running_data_dir)"
  # -t 180: a logical walsender sends its consumer all pending WAL before it exits, which takes a while under load.
  as_owner "$BIN/pg_ctl" -D "$data" -m fast -w -t 180 stop >/dev/null
  echo "$data" >"$STATE"
  log "stopped"
}

restart() {
  ensure_server_binaries
  if ! is_ready; then start >/dev/null; return 0; fi
  local data; data="$(running_data_dir)"
  as_owner "$BIN/pg_ctl" -D "$data" -m fast -w -t 60 restart -l "$(dirname "$data")/server.log" >/dev/null
  log "restarted"
}

case "${1:-}" in
  start) start ;;
  stop) stop ;;
  restart) restart ;;
  status) ensure_server_binaries; if is_ready; then echo "running on 127.0.0.1:${PORT}"; else echo "not running"; exit 3; fi ;;
  url) echo "$CONNECTION" ;;
  psql) shift; ensure_server_binaries; exec "$BIN/psql" -h 127.0.0.1 -p "$PORT" -U postgres -d postgres "$@" ;;
  *) echo "usage: bash scripts/pg.sh start|stop|restart|status|url|psql [args]" >&2; exit 2 ;;
esac
