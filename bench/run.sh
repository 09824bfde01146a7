#!/usr/bin/env bash
# PgNotify benchmarks: starts the throwaway PostgreSQL (scripts/pg.sh: 127.0.0.1:54329, trust, fsync=off), builds
# the bench projects in Release and runs the scenarios. See docs/benchmarks.md.
#
#   bash bench/run.sh                       every scenario (L F S I B D), floor + baseline + pgnotify, ~4 minutes
#   bash bench/run.sh --scenarios L,S       some scenarios (any PgNotify.Bench option passes through)
#   bash bench/run.sh --sources Notify,Replication --modes pgnotify
#                                           both change sources side by side: each scenario with the triggers, then
#                                           with PgNotify:Source = Replication (docs/deployment.md, Choosing a source)
#   bash bench/run.sh --instances 2 --scenarios S --modes pgnotify
#                                           two bench hosts on one database (BENCH_PORT and BENCH_PORT + 1), the sockets
#                                           spread over them round-robin; per instance and summed figures (docs/capacity.md)
#   BENCH_MICRO=1 bash bench/run.sh         also the BenchmarkDotNet microbenchmarks (short job, ~2 minutes)
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

# Scenario D holds up to 20,000 sockets: one descriptor each on the client side and on the server side.
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
if [ "$(ulimit -n)" != unlimited ] && [ "$(ulimit -n)" -lt 20500 ]; then
  echo "run.sh: open-file limit is $(ulimit -n) (hard $(ulimit -Hn)); D20k will hold $(( $(ulimit -n) - 500 )) sockets" >&2
fi

bash scripts/pg.sh start >/dev/null
# Commits wait for their WAL flush (fsync is off, so that is cheap), as with PostgreSQL's default: a logical walsender
# decodes only flushed WAL, so under scripts/pg.sh's synchronous_commit = off the replication source would wait for the
# WAL writer (wal_writer_delay, 200 ms) and its latency would measure that setting instead (docs/replication.md).
CONNECTION="$(bash scripts/pg.sh url);Options=-c synchronous_commit=on"

dotnet build -c Release -nologo -v q bench/PgNotify.Bench.Host/PgNotify.Bench.Host.csproj
dotnet build -c Release -nologo -v q bench/PgNotify.Bench/PgNotify.Bench.csproj

# --sources is ours; every other option goes to PgNotify.Bench.
SOURCES=Notify
ARGS=()
while [ $# -gt 0 ]; do
  case "$1" in
    --sources) SOURCES="$2"; shift 2 ;;
    *) ARGS+=("$1"); shift ;;
  esac
done
psql() { bash scripts/pg.sh psql -v ON_ERROR_STOP=1 -qAt "$@"; }

status=0
for source in ${SOURCES//,/ }; do
  echo "== source: $source ==  machine: $(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg)"
  case "$source" in
    Notify) ;;
    Replication)
      # No trigger on the bench table, or writers would pay for both sources.
      psql -c "DO \$\$ BEGIN IF to_regclass('public.bench_rows') IS NOT NULL AND to_regprocedure('pgnotify.disable_table(text,text)') IS NOT NULL THEN PERFORM pgnotify.disable_table('public', 'bench_rows'); END IF; END \$\$" ;;
    *) echo "run.sh: --sources takes Notify and/or Replication, not '$source'" >&2; exit 2 ;;
  esac
  PgNotify__Source="$source" PgNotify__InstanceName=bench dotnet bench/PgNotify.Bench/bin/Release/net10.0/PgNotify.Bench.dll \
    --host bench/PgNotify.Bench.Host/bin/Release/net10.0/PgNotify.Bench.Host.dll \
    --connection "$CONNECTION" --out bench/results ${ARGS[@]+"${ARGS[@]}"} || status=$?
  if [ "$source" = Replication ]; then
    # pgnotify_bench, or with --instances N pgnotify_bench1 ... pgnotify_benchN
    psql -c "SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots WHERE slot_name ~ '^pgnotify_bench[0-9]*\$' AND NOT active" >/dev/null
    psql -c "DROP PUBLICATION IF EXISTS pgnotify" >/dev/null
  fi
done
[ "$status" -eq 0 ] || exit "$status"

if [ "${BENCH_MICRO:-0}" = 1 ]; then
  dotnet run -c Release --project bench/PgNotify.Bench.Micro -- --filter '*' --job short \
    --artifacts bench/BenchmarkDotNet.Artifacts
fi
