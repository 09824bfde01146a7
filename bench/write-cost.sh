#!/usr/bin/env bash
# What PgNotify's trigger costs each write, measured with pgbench against the local cluster of scripts/pg.sh:
# single-row INSERT transactions into a table with no trigger, with the live trigger (payload in NOTIFY) and with the
# lossless trigger (payload in pgnotify.change_log, NOTIFY as a wake-up). Nobody listens, so only the writer side is
# measured. Usage: bash bench/write-cost.sh [seconds per mode, default 10] [clients, default 4]
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
SECONDS_PER_MODE="${1:-10}"
CLIENTS="${2:-4}"
DB=pgnotify_write_cost
bash "$ROOT/scripts/pg.sh" start >/dev/null
BIN="$(pg_config --bindir 2>/dev/null || ls -d /usr/lib/postgresql/*/bin | sort -V | tail -n 1)"
psql() { bash "$ROOT/scripts/pg.sh" psql -v ON_ERROR_STOP=1 -q "$@"; }
psql -c "DROP DATABASE IF EXISTS $DB WITH (FORCE)" -c "CREATE DATABASE $DB"
psql -d "$DB" -f "$ROOT/sql/install.sql" >/dev/null
for mode in plain live lossless; do
  psql -d "$DB" -c "CREATE TABLE t_$mode (id bigserial PRIMARY KEY, user_id int, body text, at timestamptz DEFAULT now())"
done
psql -d "$DB" -c "SELECT pgnotify.enable_table('public', 't_live', 'bench', '{}', false)" >/dev/null
psql -d "$DB" -c "SELECT pgnotify.enable_table('public', 't_lossless', 'bench', '{}', true)" >/dev/null
WORK="$(mktemp -d)"
trap 'rm -rf "$WORK"' EXIT
printf '%s\n' "mode       | transactions/s | µs per write (mean latency)"
printf '%s\n' "---------- | -------------- | ---------------------------"
for mode in plain live lossless; do
  echo "INSERT INTO t_$mode (user_id, body) VALUES (42, repeat('x', 100));" >"$WORK/$mode.sql"
  out="$("$BIN/pgbench" -h 127.0.0.1 -p "${PGNOTIFY_PG_PORT:-54329}" -U postgres -n -c "$CLIENTS" -j 2 -T "$SECONDS_PER_MODE" -f "$WORK/$mode.sql" "$DB" 2>/dev/null)"
  tps="$(printf '%s' "$out" | grep -oE 'tps = [0-9.]+' | head -n 1 | grep -oE '[0-9.]+')"
  latency="$(printf '%s' "$out" | grep -oE 'latency average = [0-9.]+ ms' | grep -oE '[0-9.]+')"
  printf '%-10s | %14.0f | %s\n' "$mode" "$tps" "$(awk -v l="$latency" 'BEGIN { printf "%.0f", l * 1000 }')"
done
echo "change_log rows written: $(psql -d "$DB" -Atc 'SELECT count(*) FROM pgnotify.change_log')"
echo "(cluster settings: $(psql -Atc "SELECT string_agg(name || '=' || setting, ', ') FROM pg_settings WHERE name IN ('fsync', 'synchronous_commit', 'full_page_writes')"); $CLIENTS clients; $(nproc) cores)"
psql -c "DROP DATABASE IF EXISTS $DB WITH (FORCE)"
