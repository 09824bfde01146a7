#!/usr/bin/env bash
# What PgNotify's trigger costs each write, measured with pgbench against the local cluster of scripts/pg.sh:
# single-row INSERT transactions into a table with no trigger, with the live trigger (payload in NOTIFY) and with the
# lossless trigger (payload in pgnotify.change_log, NOTIFY as a wake-up), and with logical replication (no trigger: the
# table is in a publication with REPLICA IDENTITY FULL, and pg_recvlogical streams a pgoutput slot of it meanwhile, so
# the walsender decodes on the same cores), and once more with the slot left unread (what the writer's own path costs:
# on a server with a spare core the decoding runs beside the writers, not in their way). Nobody listens to NOTIFY, so for the triggers only the writer side is
# measured. Usage: bash bench/write-cost.sh [seconds per mode, default 10] [clients, default 4]
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
SECONDS_PER_MODE="${1:-10}"
CLIENTS="${2:-4}"
DB=pgnotify_write_cost
PORT="${PGNOTIFY_PG_PORT:-54329}"
bash "$ROOT/scripts/pg.sh" start >/dev/null
BIN="$(pg_config --bindir 2>/dev/null || ls -d /usr/lib/postgresql/*/bin | sort -V | tail -n 1)"
psql() { bash "$ROOT/scripts/pg.sh" psql -v ON_ERROR_STOP=1 -q "$@"; }
psql -c "SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots WHERE slot_name = 'pgnotify_write_cost'" >/dev/null
psql -c "DROP DATABASE IF EXISTS $DB WITH (FORCE)" -c "CREATE DATABASE $DB"
psql -d "$DB" -f "$ROOT/sql/install.sql" >/dev/null
for mode in plain live lossless replication; do
  psql -d "$DB" -c "CREATE TABLE t_$mode (id bigserial PRIMARY KEY, user_id int, body text, at timestamptz DEFAULT now())"
done
psql -d "$DB" -c "SELECT pgnotify.enable_table('public', 't_live', 'bench', '{}', false)" >/dev/null
psql -d "$DB" -c "SELECT pgnotify.enable_table('public', 't_lossless', 'bench', '{}', true)" >/dev/null
psql -d "$DB" -c "ALTER TABLE t_replication REPLICA IDENTITY FULL" -c "CREATE PUBLICATION pgnotify_write_cost FOR TABLE t_replication"
psql -d "$DB" -c "SELECT pg_create_logical_replication_slot('pgnotify_write_cost', 'pgoutput')" >/dev/null
WORK="$(mktemp -d)"
RECEIVER=""
trap '[ -n "$RECEIVER" ] && kill "$RECEIVER" 2>/dev/null; rm -rf "$WORK"' EXIT
printf '%s\n' "mode       | transactions/s | µs per write (mean latency)"
printf '%s\n' "---------- | -------------- | ---------------------------"
for mode in plain live lossless replication unread; do
  if [ "$mode" = replication ]; then
    "$BIN/pg_recvlogical" -h 127.0.0.1 -p "$PORT" -U postgres -d "$DB" -S pgnotify_write_cost --start \
      -o proto_version=1 -o publication_names=pgnotify_write_cost -f /dev/null -s 1 &
    RECEIVER=$!
  fi
  if [ "$mode" = unread ]; then
    lag="$(psql -d "$DB" -Atc "SELECT pg_wal_lsn_diff(pg_current_wal_lsn(), confirmed_flush_lsn) FROM pg_replication_slots WHERE slot_name = 'pgnotify_write_cost'")"
    kill "$RECEIVER" 2>/dev/null || true
    wait "$RECEIVER" 2>/dev/null || true
    RECEIVER=""
    table=t_replication # the same published table; its slot is now read by nobody
  else
    table="t_$mode"
  fi
  echo "INSERT INTO $table (user_id, body) VALUES (42, repeat('x', 100));" >"$WORK/$mode.sql"
  out="$("$BIN/pgbench" -h 127.0.0.1 -p "$PORT" -U postgres -n -c "$CLIENTS" -j 2 -T "$SECONDS_PER_MODE" -f "$WORK/$mode.sql" "$DB" 2>/dev/null)"
  tps="$(printf '%s' "$out" | grep -oE 'tps = [0-9.]+' | head -n 1 | grep -oE '[0-9.]+')"
  latency="$(printf '%s' "$out" | grep -oE 'latency average = [0-9.]+ ms' | grep -oE '[0-9.]+')"
  printf '%-11s | %14.0f | %s\n' "$mode" "$tps" "$(awk -v l="$latency" 'BEGIN { printf "%.0f", l * 1000 }')"
done
echo "replication: the slot's consumer was ${lag} bytes of WAL behind when the writers stopped"
psql -c "SELECT pg_drop_replication_slot('pgnotify_write_cost')" >/dev/null
echo "change_log rows written: $(psql -d "$DB" -Atc 'SELECT count(*) FROM pgnotify.change_log')"
echo "(cluster settings: $(psql -Atc "SELECT string_agg(name || '=' || setting, ', ') FROM pg_settings WHERE name IN ('fsync', 'synchronous_commit', 'full_page_writes')"); $CLIENTS clients; $(nproc) cores)"
psql -c "DROP DATABASE IF EXISTS $DB WITH (FORCE)"
