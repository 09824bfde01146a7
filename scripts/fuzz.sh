#!/usr/bin/env bash
# The full-length fuzz of a real host (Kestrel + PgNotify + PostgreSQL): 1,000,000 generated and mutated client frames
# across 50 sockets, and 100,000 generated and mutated NOTIFY payloads, while a writer inserts rows and a bystander
# socket must receive every one of them (tests/PgNotify.Tests/Fuzz). CI runs the same tests at their short defaults
# (20,000 frames, 5,000 payloads); this script is not run by CI. It prints the figures docs/security.md reports.
#
#   bash scripts/fuzz.sh                           the full run, with a new seed
#   PGNOTIFY_FUZZ_SEED=123456 bash scripts/fuzz.sh replays a run
#   PGNOTIFY_FUZZ_FRAMES=200000 bash scripts/fuzz.sh    another scale (also _NOTIFIES, _SOCKETS, _MAX_HEAP_MB)
#
# Exits non-zero when a fuzz test fails; the failure names the seed and a file with the last inputs sent.
set -uo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
export DOTNET_CLI_TELEMETRY_OPTOUT=1 DOTNET_NOLOGO=1 DOTNET_SKIP_FIRST_TIME_EXPERIENCE=1

export PGNOTIFY_FUZZ_FRAMES="${PGNOTIFY_FUZZ_FRAMES:-1000000}"
export PGNOTIFY_FUZZ_NOTIFIES="${PGNOTIFY_FUZZ_NOTIFIES:-100000}"
export PGNOTIFY_FUZZ_SOCKETS="${PGNOTIFY_FUZZ_SOCKETS:-50}"
export PGNOTIFY_FUZZ_SEED="${PGNOTIFY_FUZZ_SEED:-$(( (RANDOM << 15) | RANDOM ))}"

OUT="$ROOT/artifacts/fuzz"
mkdir -p "$OUT"
export PGNOTIFY_FUZZ_REPORT="$OUT/report-$PGNOTIFY_FUZZ_SEED.txt"
rm -f "$PGNOTIFY_FUZZ_REPORT"

PG_CONNECTION="$(bash scripts/pg.sh start)" || { echo "fuzz.sh: could not start PostgreSQL" >&2; exit 1; }
export PGNOTIFY_TEST_CONNECTION="${PGNOTIFY_TEST_CONNECTION:-$PG_CONNECTION}"

echo "fuzz.sh: seed $PGNOTIFY_FUZZ_SEED, $PGNOTIFY_FUZZ_FRAMES frames across $PGNOTIFY_FUZZ_SOCKETS sockets, $PGNOTIFY_FUZZ_NOTIFIES NOTIFY payloads" >&2
dotnet build "$ROOT/tests/PgNotify.Tests" -c Release -v quiet -nologo >&2 || exit 1

start=$(date +%s)
status=0
dotnet test "$ROOT/tests/PgNotify.Tests" -c Release --no-build \
  --filter "FullyQualifiedName~PgNotify.Tests.Fuzz.HostFuzzTests" \
  --logger "console;verbosity=normal" --logger "trx" --results-directory "$OUT" >&2 || status=$?
end=$(date +%s)

echo "== PgNotify fuzz figures (seed $PGNOTIFY_FUZZ_SEED, $(( end - start )) s in all, $(nproc) cores) =="
if [ -f "$PGNOTIFY_FUZZ_REPORT" ]; then
  cat "$PGNOTIFY_FUZZ_REPORT"
else
  echo "(no report: the tests did not get to the end of a run)"
fi
if [ "$status" -eq 0 ]; then
  echo "result: passed"
else
  echo "result: FAILED (replay with PGNOTIFY_FUZZ_SEED=$PGNOTIFY_FUZZ_SEED bash scripts/fuzz.sh)"
fi
exit "$status"
