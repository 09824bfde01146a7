#!/usr/bin/env bash
# The JavaScript client's tests (clients/js), run by scripts/test.sh. They drive the client and its React hooks
# against the real sample host (samples/PgNotify.Sample, built here when needed) and the local PostgreSQL of
# scripts/pg.sh. Prints `N passed, N failed, N skipped` as its last line, counted from node's TAP output, and exits
# non-zero when anything failed or the run itself broke.
set -uo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
export DOTNET_CLI_TELEMETRY_OPTOUT=1 DOTNET_NOLOGO=1 DOTNET_SKIP_FIRST_TIME_EXPERIENCE=1

broke() {
  echo "js.sh: $*" >&2
  echo "0 passed, 1 failed, 0 skipped"
  exit 1
}

command -v node >/dev/null 2>&1 || broke "node is not installed (Node 20 or later is needed)"
command -v npm >/dev/null 2>&1 || broke "npm is not installed"

if [ -f "$ROOT/samples/PgNotify.Sample/PgNotify.Sample.csproj" ]; then
  echo "js.sh: building the sample host" >&2
  dotnet build "$ROOT/samples/PgNotify.Sample" -c Release -nologo -v quiet >&2 || broke "the sample host did not build"
fi

cd "$ROOT/clients/js" || broke "clients/js is missing"
npm ci --no-audit --no-fund --loglevel=error >&2 || broke "npm ci failed"

# Databases left by an interrupted earlier run (each test file makes its own, pgnotify_js_*, and drops it).
bash "$ROOT/scripts/pg.sh" start >/dev/null || broke "PostgreSQL did not start (scripts/pg.sh start)"
for db in $(bash "$ROOT/scripts/pg.sh" psql -Atqc "SELECT datname FROM pg_database WHERE datname LIKE 'pgnotify\_js\_%'"); do
  bash "$ROOT/scripts/pg.sh" psql -qc "DROP DATABASE IF EXISTS \"$db\" WITH (FORCE)" >&2 || true
done

tap="$(mktemp)"
trap 'rm -f "$tap"' EXIT
# Readable progress on stderr, TAP (whose summary is counted) into a file.
node --test \
  --test-reporter=spec --test-reporter-destination=stderr \
  --test-reporter=tap --test-reporter-destination="$tap" \
  test/*.test.js test/unit/*.test.js
status=$?

count() { sed -n -E "s/^# $1 ([0-9]+)\$/\\1/p" "$tap" | tail -n 1; }
pass="$(count pass)"; fail="$(count fail)"; cancelled="$(count cancelled)"; skipped="$(count skipped)"; todo="$(count todo)"
[[ "$pass" =~ ^[0-9]+$ && "$fail" =~ ^[0-9]+$ ]] || broke "node --test ended (exit code $status) without a summary"

failed=$((fail + ${cancelled:-0}))
if [ "$status" -ne 0 ] && [ "$failed" -eq 0 ]; then
  echo "js.sh: node --test exited with $status although no test failed" >&2
  failed=1
fi

echo "${pass} passed, ${failed} failed, $((${skipped:-0} + ${todo:-0})) skipped"
[ "$status" -eq 0 ] && [ "$failed" -eq 0 ]
