#!/usr/bin/env bash
# The full-size chaos test of the replication source (issue #14): 4 writers make 50,000 single-row commits to 3 tables
# while the walsender is terminated 20 times and PostgreSQL restarts once. CI runs a scaled version of the same test.
#
#   PGNOTIFY_PG_PORT=54329 bash scripts/chaos-replication.sh [commits] [kills]
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
export PGNOTIFY_TEST_CONNECTION="$(bash "$ROOT/scripts/pg.sh" start)"
export PGNOTIFY_TEST_STOP_COMMAND="bash '$ROOT/scripts/pg.sh' stop"
export PGNOTIFY_TEST_START_COMMAND="bash '$ROOT/scripts/pg.sh' start"
export PGNOTIFY_REPLICATION_CHAOS_COMMITS="${1:-50000}"
export PGNOTIFY_REPLICATION_CHAOS_KILLS="${2:-20}"
start=$(date +%s)
dotnet test "$ROOT/tests/PgNotify.Tests" -c Release --filter "FullyQualifiedName~ReplicationChaosTests" \
  --logger "console;verbosity=detailed" 2>&1 | grep -E "commits, |Passed!|Failed!|Test Run|Total tests|Passed:|Failed:|\[FAIL\]|Error Message" -A3
echo "chaos-replication: ${PGNOTIFY_REPLICATION_CHAOS_COMMITS} commits, ${PGNOTIFY_REPLICATION_CHAOS_KILLS} kills, $(( $(date +%s) - start )) s"
