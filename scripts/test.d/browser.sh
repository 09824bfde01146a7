#!/usr/bin/env bash
# Browser and nginx tests of the sample host (tests/browser): Debian's Chromium, driven headless from Node with
# playwright-core, and Debian's nginx as a reverse proxy, against the throwaway PostgreSQL of scripts/pg.sh. Installs
# chromium and nginx with apt when missing. Ends with one line `N passed, N failed, N skipped` counted from the TAP
# output of node's test runner (scripts/test.sh adds it up); exits non-zero on any failure.
set -uo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$ROOT"
RESULTS="$ROOT/artifacts/test-results/browser"
mkdir -p "$RESULTS"
export DOTNET_CLI_TELEMETRY_OPTOUT=1 DOTNET_NOLOGO=1 DOTNET_SKIP_FIRST_TIME_EXPERIENCE=1
export PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 # never download a browser: Debian's chromium is the one

log() { printf 'browser.sh: %s\n' "$*" >&2; }
# A setup step failed: no test ran, and that is one failure.
setup_failed() { log "$*"; echo "0 passed, 1 failed, 0 skipped"; exit 1; }

missing=()
[ -x /usr/bin/chromium ] || missing+=(chromium)
[ -x /usr/sbin/nginx ] || missing+=(nginx)
if [ "${#missing[@]}" -gt 0 ]; then
  [ "$(id -u)" -eq 0 ] || setup_failed "missing ${missing[*]}: sudo apt-get install -y ${missing[*]}"
  log "installing ${missing[*]} with apt"
  DEBIAN_FRONTEND=noninteractive apt-get update -qq >/dev/null \
    && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >"$RESULTS/apt.log" 2>&1 \
    || { tail -n 30 "$RESULTS/apt.log" >&2; setup_failed "could not install ${missing[*]}"; }
fi
command -v node >/dev/null 2>&1 && command -v npm >/dev/null 2>&1 || setup_failed "node and npm are needed (Node 20 or later)"

bash scripts/pg.sh start >/dev/null || setup_failed "could not start PostgreSQL"

(cd samples/PgNotify.Sample/ClientApp && npm ci --no-audit --no-fund --loglevel=error) >&2 \
  || setup_failed "npm ci failed in samples/PgNotify.Sample/ClientApp"
(cd tests/browser && npm ci --no-audit --no-fund --loglevel=error) >&2 || setup_failed "npm ci failed in tests/browser"
dotnet build samples/PgNotify.Sample -c Release -nologo -v quiet >"$RESULTS/build.log" 2>&1 \
  || { tail -n 40 "$RESULTS/build.log" >&2; setup_failed "the sample host does not build"; }

(cd tests/browser && node --test --test-concurrency=1 --test-reporter=tap) >"$RESULTS/tap.txt" 2>&1
status=$?
cat "$RESULTS/tap.txt" >&2

# node's TAP summary: `# pass N`, `# fail N`, `# cancelled N`, `# skipped N`, `# todo N`.
count() { grep -E "^# $1 [0-9]+$" "$RESULTS/tap.txt" | tail -n 1 | grep -oE '[0-9]+$' || echo 0; }
passed=$(count pass)
failed=$(( $(count fail) + $(count cancelled) ))
skipped=$(( $(count skipped) + $(count todo) ))
if ! grep -qE '^# tests [0-9]+$' "$RESULTS/tap.txt"; then
  log "node's test runner ended without its summary"
  failed=$((failed + 1))
elif [ "$status" -ne 0 ] && [ "$failed" -eq 0 ]; then
  log "node's test runner exited with $status"
  failed=1
fi

echo "${passed} passed, ${failed} failed, ${skipped} skipped"
[ "$failed" -eq 0 ] && [ "$passed" -gt 0 ]
