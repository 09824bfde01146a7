#!/usr/bin/env bash
# Both sources side by side: the same scenarios (default L,F,S,I) with PgNotify:Source = Notify, then Replication.
# The trigger is disabled before the replication run and the bench slot dropped after it. See docs/deployment.md.
#
#   PGNOTIFY_PG_PORT=54329 bash bench/sources.sh [--scenarios L,F,S,I] [--seconds 12]
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
psql() { bash "$ROOT/scripts/pg.sh" psql -v ON_ERROR_STOP=1 -qAt "$@"; }
ARGS=("$@")
[ ${#ARGS[@]} -eq 0 ] && ARGS=(--scenarios L,F,S,I)
echo "== source: Notify (triggers) ==  load: $(cut -d' ' -f1-3 /proc/loadavg)"
bash "$ROOT/bench/run.sh" --modes pgnotify "${ARGS[@]}"
psql -c "DO \$\$ BEGIN IF to_regclass('public.bench_rows') IS NOT NULL AND to_regprocedure('pgnotify.disable_table(text,text)') IS NOT NULL THEN PERFORM pgnotify.disable_table('public', 'bench_rows'); END IF; END \$\$"
echo "== source: Replication ==  load: $(cut -d' ' -f1-3 /proc/loadavg)"
PgNotify__Source=Replication PgNotify__InstanceName=bench bash "$ROOT/bench/run.sh" --modes pgnotify "${ARGS[@]}" || status=$?
psql -c "SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots WHERE slot_name = 'pgnotify_bench' AND NOT active" >/dev/null
psql -c "DROP PUBLICATION IF EXISTS pgnotify" >/dev/null
exit "${status:-0}"
