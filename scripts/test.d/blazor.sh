#!/usr/bin/env bash
# PgNotify.Client in Blazor WebAssembly: publishes the tiny standalone page of tests/blazor (interpreted .NET on
# WebAssembly, runtime packs from NuGet, no workload, no AOT), then runs BlazorWebAssemblyTests (tests/PgNotify.Client.Tests),
# which serves it from a real PgNotify host and opens it in Debian's headless Chromium (playwright-core from
# tests/browser): rows written with psql must appear. Uses the PostgreSQL of scripts/pg.sh (PGNOTIFY_PG_PORT).
# Installs Debian's chromium with apt when missing (as root). Last line: `N passed, N failed, N skipped` (skipped when
# there is no Chromium and it cannot be installed), counted from the .trx.
set -uo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$ROOT"
export DOTNET_CLI_TELEMETRY_OPTOUT=1 DOTNET_NOLOGO=1 DOTNET_SKIP_FIRST_TIME_EXPERIENCE=1
export PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1
WORK="$(mktemp -d /tmp/pgnotify-blazor.XXXXXX)"
trap 'rm -rf "$WORK"' EXIT
log() { echo "blazor.sh: $*" >&2; }
fail() { log "$*"; echo "0 passed, 1 failed, 0 skipped"; exit 1; }

# Debian's Chromium, installed here when missing (as browser.sh does; this script runs before it on a fresh machine).
if [ -z "${PGNOTIFY_CHROMIUM:-}" ] && [ ! -x /usr/bin/chromium ] && [ "$(id -u)" -eq 0 ]; then
  log "installing chromium with apt"
  DEBIAN_FRONTEND=noninteractive apt-get update -qq >/dev/null \
    && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >"$WORK/apt.log" 2>&1 \
    || { tail -n 30 "$WORK/apt.log" >&2; fail "could not install chromium"; }
fi
if [ ! -x "${PGNOTIFY_CHROMIUM:-/usr/bin/chromium}" ]; then
  log "no Chromium: skipped (not root, so it cannot be installed: sudo apt-get install -y chromium)"
  echo "0 passed, 0 failed, 1 skipped"
  exit 0
fi
command -v node >/dev/null 2>&1 && command -v npm >/dev/null 2>&1 || fail "node and npm are needed"
[ -d tests/browser/node_modules/playwright-core ] || (cd tests/browser && npm ci --no-audit --no-fund --loglevel=error) >&2 \
  || fail "npm ci failed in tests/browser"

dotnet publish tests/blazor/BlazorLiveRows.csproj -c Release -o "$WORK/publish" -nologo -v q >"$WORK/publish.log" 2>&1 \
  || { cat "$WORK/publish.log" >&2; fail "the Blazor WebAssembly page did not publish"; }
[ -f "$WORK/publish/wwwroot/_framework/blazor.webassembly.js" ] || fail "the published page has no _framework/blazor.webassembly.js"

export PGNOTIFY_TEST_CONNECTION="${PGNOTIFY_TEST_CONNECTION:-$(bash scripts/pg.sh start)}" || fail "PostgreSQL did not start"
PGNOTIFY_BLAZOR_WWWROOT="$WORK/publish/wwwroot" dotnet test tests/PgNotify.Client.Tests -c Release -nologo \
  --filter "FullyQualifiedName~BlazorWebAssemblyTests" --logger "trx;LogFileName=blazor.trx" --results-directory "$WORK/results" >&2
counters="$(grep -o -m 1 '<Counters [^>]*>' "$WORK/results/blazor.trx" 2>/dev/null)" || fail "no test results"
attr() { printf '%s' "$counters" | grep -o " $1=\"[0-9]*\"" | grep -o '[0-9]*' || echo 0; }
passed="$(attr passed)"; failed=$(( $(attr failed) + $(attr error) + $(attr timeout) + $(attr aborted) )); skipped="$(attr notExecuted)"
[ "$passed" -eq 1 ] || failed=$((failed > 0 ? failed : 1))
log "the Blazor WebAssembly page: $passed passed, $failed failed"
echo "$passed passed, $failed failed, $skipped skipped"
[ "$failed" -eq 0 ]
