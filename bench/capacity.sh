#!/usr/bin/env bash
# The measurements behind docs/capacity.md, in rounds (default 3) so each figure has a spread; each round runs every
# step once, so a change in the machine's load touches every figure alike. Each step is one bench/run.sh or
# bench/write-cost.sh command, printed before it runs; run.sh writes its bench/results/bench-<UTC time>.json (with the
# load average) as usual.
#
#   bash bench/capacity.sh [rounds, default 3] [seconds per scenario, default 10]
#   PGNOTIFY_PG_PORT=54339 BENCH_PORT=5290 bash bench/capacity.sh   another PostgreSQL and host ports (the hosts of
#                                                                   --instances 2 take BENCH_PORT and BENCH_PORT + 1)
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
ROUNDS="${1:-3}"
SECONDS_EACH="${2:-10}"

step() {
  echo "### round $round, $(date -u +%H:%M:%S), load $(cut -d' ' -f1-3 /proc/loadavg): $*"
  "$@"
}

for round in $(seq 1 "$ROUNDS"); do
  # Per instance: CPU per delivery (L F S I20k), per change (I20kx1: 200-row transactions; Sx1, S5kx1: single-row
  # ones at 2,000 and 5,000 rows/s), busy and idle memory (M5k, D5k, D20k); the trigger source's ceiling with batched
  # writers (unthrottled I).
  step bash "$ROOT/bench/run.sh" --modes pgnotify --seconds "$SECONDS_EACH" --scenarios L,F,S,I,I20kx1,Sx1,S5kx1,M,D
  # Two instances on one database: the check of the model, and what a second LISTEN costs PostgreSQL.
  step bash "$ROOT/bench/run.sh" --modes pgnotify --seconds "$SECONDS_EACH" --scenarios I20k,M --instances 2
  # The replication source: one slot, then two (each instance its own slot and walsender).
  step bash "$ROOT/bench/run.sh" --modes pgnotify --seconds "$SECONDS_EACH" --scenarios I20k,I20kx1,Sx1,S5kx1,M --sources Replication
  step bash "$ROOT/bench/run.sh" --modes pgnotify --seconds "$SECONDS_EACH" --scenarios I20k,M --sources Replication --instances 2
  # The writer's side: single-row transactions with and without the triggers, and with a slot.
  step bash "$ROOT/bench/write-cost.sh" "$SECONDS_EACH" 4
done
