#!/usr/bin/env bash
# Runs every test of the repository on a fresh machine: installs and starts the throwaway PostgreSQL, builds, runs
# the .NET tests, and prints one line `Tests: N passed, N failed, N skipped` counted from the real results.
# Exits non-zero on any failure. CI (.ci/run) calls exactly this.
set -uo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
RESULTS="$ROOT/artifacts/test-results"
rm -rf "$RESULTS"
mkdir -p "$RESULTS"

export DOTNET_CLI_TELEMETRY_OPTOUT=1 DOTNET_NOLOGO=1 DOTNET_SKIP_FIRST_TIME_EXPERIENCE=1

# The test clusters listen on fixed ports (scripts/pg.sh's 54329; 54342, 54344 and 54345 of the replication tests),
# which lie in Linux's ephemeral range (32768-60999): an outgoing connection of another test could be given one of them
# as its local port just before a cluster starts there ("could not bind ... Address already in use"). Reserve them
# from the ephemeral range when we may (root; the setting lasts until reboot and only keeps the kernel from choosing
# them for outgoing connections).
reserved=/proc/sys/net/ipv4/ip_local_reserved_ports
if [ -w "$reserved" ] && ! grep -q '54329-54349' "$reserved"; then
  current="$(cat "$reserved")"
  echo "${current:+$current,}54329-54349" >"$reserved" 2>/dev/null || echo "test.sh: could not reserve ports 54329-54349 (fixed test cluster ports may collide with ephemeral ones)" >&2
fi

PG_CONNECTION="$(bash scripts/pg.sh start)" || { echo "Tests: 0 passed, 1 failed, 0 skipped"; echo "could not start PostgreSQL" >&2; exit 1; }
export PGNOTIFY_TEST_CONNECTION="${PGNOTIFY_TEST_CONNECTION:-$PG_CONNECTION}"
export PGNOTIFY_TEST_STOP_COMMAND="${PGNOTIFY_TEST_STOP_COMMAND:-bash '$ROOT/scripts/pg.sh' stop}"
export PGNOTIFY_TEST_START_COMMAND="${PGNOTIFY_TEST_START_COMMAND:-bash '$ROOT/scripts/pg.sh' start}"

# pgbouncer, for the test that PgNotify refuses transaction pooling (Debian's package; it runs as `postgres`).
if [ ! -x /usr/sbin/pgbouncer ] && [ "$(id -u)" -eq 0 ]; then
  echo "test.sh: installing Debian's pgbouncer" >&2
  (DEBIAN_FRONTEND=noninteractive apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq pgbouncer) >/dev/null 2>&1 \
    || echo "test.sh: could not install pgbouncer; its test will be reported as skipped" >&2
fi

status=0
# Build once, then run the test projects one after the other (-m:1): PgNotify.Tests stops and starts PostgreSQL, which
# would break PgNotify.Client.Tests' connections if both ran at once. Each project writes its own .trx file. The Blazor
# WebAssembly test needs its page published first: scripts/test.d/blazor.sh runs and counts it, so it is left out here.
dotnet build "$ROOT/PgNotify.sln" -c Release -nologo -v q || status=$?
dotnet test "$ROOT/PgNotify.sln" -c Release --no-build -m:1 --filter "FullyQualifiedName!~BlazorWebAssemblyTests" --logger "trx" --logger "console;verbosity=normal" --results-directory "$RESULTS/dotnet" || status=$?

# Count from the result files, not from console output.
passed=0; failed=0; skipped=0
for trx in "$RESULTS"/dotnet/*.trx; do
  [ -f "$trx" ] || continue
  counters="$(grep -o -m 1 '<Counters [^>]*>' "$trx")"
  attr() { printf '%s' "$counters" | grep -o " $1=\"[0-9]*\"" | grep -o '[0-9]*' || echo 0; }
  passed=$((passed + $(attr passed)))
  failed=$((failed + $(attr failed) + $(attr error) + $(attr timeout) + $(attr aborted)))
  # A skipped test is counted in total but not in executed (its Counters leave notExecuted at 0).
  skipped=$((skipped + $(attr total) - $(attr executed)))
done

for extra in "$ROOT"/scripts/test.d/*.sh; do
  [ -f "$extra" ] || continue
  # Each extra suite prints its own `N passed, N failed, N skipped` as its last line.
  # (Not `tee /dev/stderr`: when stderr is a file, tee reopens it at offset 0 and overwrites the log with NULs.)
  suite_log="$RESULTS/$(basename "$extra" .sh).log"
  bash "$extra" >"$suite_log" 2>&1 || status=1
  cat "$suite_log" >&2
  out="$(tail -n 1 "$suite_log")"
  read -r p f s < <(printf '%s' "$out" | sed -E 's/^[^0-9]*([0-9]+) passed, ([0-9]+) failed, ([0-9]+) skipped.*/\1 \2 \3/')
  if [[ "$p" =~ ^[0-9]+$ && "$f" =~ ^[0-9]+$ && "$s" =~ ^[0-9]+$ ]]; then
    passed=$((passed + p)); failed=$((failed + f)); skipped=$((skipped + s))
  else
    echo "test.sh: $extra did not report its counts" >&2; failed=$((failed + 1))
  fi
done

echo "Tests: ${passed} passed, ${failed} failed, ${skipped} skipped"
if [ "$status" -ne 0 ] || [ "$failed" -ne 0 ] || [ "$passed" -eq 0 ]; then
  exit 1
fi
