#!/usr/bin/env bash
# PgNotify benchmarks: starts the throwaway PostgreSQL (scripts/pg.sh: 127.0.0.1:54329, trust, fsync=off), builds
# the bench projects in Release and runs the scenarios. See docs/benchmarks.md.
#
#   bash bench/run.sh                       every scenario (L F S I B D), floor + baseline + pgnotify, ~4 minutes
#   bash bench/run.sh --scenarios L,S       some scenarios (any PgNotify.Bench option passes through)
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
CONNECTION="$(bash scripts/pg.sh url)"

dotnet build -c Release -nologo -v q bench/PgNotify.Bench.Host/PgNotify.Bench.Host.csproj
dotnet build -c Release -nologo -v q bench/PgNotify.Bench/PgNotify.Bench.csproj

echo "machine: $(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg)" >&2
dotnet bench/PgNotify.Bench/bin/Release/net10.0/PgNotify.Bench.dll \
  --host bench/PgNotify.Bench.Host/bin/Release/net10.0/PgNotify.Bench.Host.dll \
  --connection "$CONNECTION" --out bench/results "$@"

if [ "${BENCH_MICRO:-0}" = 1 ]; then
  dotnet run -c Release --project bench/PgNotify.Bench.Micro -- --filter '*' --job short \
    --artifacts bench/BenchmarkDotNet.Artifacts
fi
