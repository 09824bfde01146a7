#!/usr/bin/env bash
# Runs the sample host (samples/PgNotify.Sample): live tables in the browser, fed by PgNotify.
#
#   bash scripts/run-sample.sh                      http://127.0.0.1:5080/ (URLS=http://127.0.0.1:8080 to change)
#   bash scripts/run-sample.sh --PgNotify:Tables:3=orders      extra arguments go to the app
#
# Unless ConnectionStrings__Postgres is set, it starts the throwaway PostgreSQL of scripts/pg.sh (installing Debian's
# PostgreSQL when missing) and uses a `pgnotify_sample` database there, created when missing. It installs React for
# the sample's React page with npm (when npm is there), then `dotnet run`s the host until Ctrl+C.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
export DOTNET_CLI_TELEMETRY_OPTOUT=1 DOTNET_NOLOGO=1 DOTNET_SKIP_FIRST_TIME_EXPERIENCE=1

log() { printf 'run-sample.sh: %s\n' "$*" >&2; }

if [ -z "${ConnectionStrings__Postgres:-}" ]; then
  server="$(bash scripts/pg.sh start)"
  if [ "$(bash scripts/pg.sh psql -qAtX -c "SELECT 1 FROM pg_database WHERE datname = 'pgnotify_sample'")" != 1 ]; then
    bash scripts/pg.sh psql -qX -v ON_ERROR_STOP=1 -c 'CREATE DATABASE pgnotify_sample'
    log "created the database pgnotify_sample"
  fi
  export ConnectionStrings__Postgres="${server/Database=postgres/Database=pgnotify_sample}"
fi

# React for react.html, served as local files from ClientApp/node_modules (the main page needs none of it).
client_app="samples/PgNotify.Sample/ClientApp"
if [ ! -f "$client_app/node_modules/react/umd/react.production.min.js" ]; then
  if command -v npm >/dev/null 2>&1; then
    log "installing React for the React page (npm ci in $client_app)"
    (cd "$client_app" && npm ci --no-audit --no-fund --loglevel=error)
  else
    log "npm not found: the React page (react.html) will say what to install; the main page works without it"
  fi
fi

URLS="${URLS:-http://127.0.0.1:5080}"
log "starting the sample on ${URLS%%;*}/ (Ctrl+C stops it)"
exec dotnet run --project samples/PgNotify.Sample -c Release -- --urls "$URLS" "$@"
