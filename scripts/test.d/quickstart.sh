#!/usr/bin/env bash
# The quick start as a newcomer follows it: builds a fresh ASP.NET Core app outside the repository from the snippets of
# docs/quickstart.md itself (the fenced blocks after `<!-- quickstart:NAME -->` markers: new-app, program,
# appsettings, client, page), referencing PgNotify.Core and PgNotify.WebSockets packed into a local folder feed. Then
# serves the page, opens it in headless Chromium (tests/quickstart/page.mjs, puppeteer-core from clients/js) and checks
# that rows inserted with psql appear. Uses the PostgreSQL of scripts/pg.sh (PGNOTIFY_PG_PORT). Last line:
# `N passed, N failed, N skipped` (skipped when there is no Chromium).
set -uo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
export DOTNET_CLI_TELEMETRY_OPTOUT=1 DOTNET_NOLOGO=1 DOTNET_SKIP_FIRST_TIME_EXPERIENCE=1
DOC="$ROOT/docs/quickstart.md"
CHROMIUM="${PGNOTIFY_CHROMIUM:-/usr/bin/chromium}"
WORK="$(mktemp -d /tmp/pgnotify-quickstart.XXXXXX)"
DB="pgnotify_quickstart_$$"
APP_PID=""
cleanup() {
  if [ -n "$APP_PID" ]; then kill "$APP_PID" 2>/dev/null; wait "$APP_PID" 2>/dev/null; fi
  bash "$ROOT/scripts/pg.sh" psql -q -c "DROP DATABASE IF EXISTS $DB WITH (FORCE)" >/dev/null 2>&1
  rm -rf "$WORK"
}
trap cleanup EXIT
log() { echo "quickstart.sh: $*" >&2; }
fail() { log "$*"; echo "0 passed, 1 failed, 0 skipped"; exit 1; }
snippet() { node "$ROOT/tests/quickstart/snippet.mjs" "$DOC" "$1" || fail "docs/quickstart.md has no '$1' snippet"; }

command -v node >/dev/null 2>&1 || fail "node is not installed"
if [ ! -x "$CHROMIUM" ]; then
  log "no Chromium at $CHROMIUM: skipped"
  echo "0 passed, 0 failed, 1 skipped"
  exit 0
fi
[ -d "$ROOT/clients/js/node_modules/puppeteer-core" ] || (cd "$ROOT/clients/js" && npm ci --no-audit --no-fund --loglevel=error >&2) \
  || fail "npm ci failed in clients/js (puppeteer-core drives Chromium)"

# The packages, from this checkout, in a folder feed. A version no cache has seen, so the app restores exactly these.
VERSION="0.1.0-quickstart.$(date +%s).$$"
for project in PgNotify.Core PgNotify.WebSockets; do
  dotnet pack "$ROOT/src/$project" -c Release -o "$WORK/feed" -p:Version="$VERSION" -v q -nologo >>"$WORK/pack.log" 2>&1 \
    || { cat "$WORK/pack.log" >&2; fail "dotnet pack $project failed"; }
done
cat >"$WORK/NuGet.config" <<CONFIG
<?xml version="1.0" encoding="utf-8"?>
<configuration>
  <packageSources>
    <add key="pgnotify-local" value="$WORK/feed" />
  </packageSources>
</configuration>
CONFIG

# Step 1, as written; the package is pinned to the version just packed (the doc's line takes the latest from your feed).
new_app="$(snippet new-app)" || exit 1
grep -qx 'dotnet add package PgNotify.WebSockets *\(#.*\)\?' <<<"$new_app" || fail "the new-app snippet no longer adds PgNotify.WebSockets"
new_app="$(sed -E "s/^(dotnet add package PgNotify.WebSockets)( |$)/\\1 --version $VERSION\\2/" <<<"$new_app")"
(cd "$WORK" && bash -euo pipefail -c "$new_app" >"$WORK/new-app.log" 2>&1) || { cat "$WORK/new-app.log" >&2; fail "step 1 (new-app) failed"; }
APP="$WORK/MyApp"
[ -f "$APP/MyApp.csproj" ] || fail "step 1 made no MyApp project"

# Steps 2, 3 and 5: Program.cs, appsettings.json, the client copied into wwwroot, and the page.
snippet program >"$APP/Program.cs" || exit 1
snippet appsettings >"$APP/appsettings.json" || exit 1
client="$(snippet client)" || exit 1
(cd "$APP" && bash -euo pipefail -c "${client//path\/to\/PgNotify/$ROOT}") || fail "step 5 (client) failed"
mkdir -p "$APP/wwwroot"
snippet page >"$APP/wwwroot/index.html" || exit 1

(cd "$APP" && dotnet build -c Release -v q -nologo >"$WORK/build.log" 2>&1) || { cat "$WORK/build.log" >&2; fail "the quickstart app does not build"; }
grep -qi "pgnotify.websockets/$VERSION" "$APP/obj/project.assets.json" || fail "the app did not restore PgNotify.WebSockets $VERSION from the feed"

# The user's database: the tables the doc's appsettings.json names (profiles, with the excluded password_hash column,
# and sales.orders), and one row that exists before the page opens.
CONNECTION="$(bash "$ROOT/scripts/pg.sh" start)" || fail "PostgreSQL did not start (scripts/pg.sh start)"
bash "$ROOT/scripts/pg.sh" psql -q -c "CREATE DATABASE $DB" >/dev/null || fail "could not create $DB"
bash "$ROOT/scripts/pg.sh" psql -q -d "$DB" -v ON_ERROR_STOP=1 -c "
  CREATE TABLE profiles (id serial PRIMARY KEY, name text NOT NULL, password_hash text);
  CREATE SCHEMA sales;
  CREATE TABLE sales.orders (id serial PRIMARY KEY, total numeric);
  INSERT INTO profiles (name, password_hash) VALUES ('already there', 'secret');" >/dev/null || fail "could not create the tables"

PORT="$(node -e "const s=require('net').createServer().listen(0,'127.0.0.1',()=>{console.log(s.address().port);s.close()})")"
(cd "$APP" && ConnectionStrings__Postgres="${CONNECTION/Database=postgres/Database=$DB}" \
  exec dotnet bin/Release/net10.0/MyApp.dll --urls "http://127.0.0.1:$PORT") >"$WORK/app.log" 2>&1 &
APP_PID=$!
for _ in $(seq 1 150); do
  [ "$(curl -fsS "http://127.0.0.1:$PORT/health" 2>/dev/null)" = Healthy ] && break
  kill -0 "$APP_PID" 2>/dev/null || { cat "$WORK/app.log" >&2; fail "the quickstart app exited"; }
  sleep 0.2
done
[ "$(curl -fsS "http://127.0.0.1:$PORT/health")" = Healthy ] || { cat "$WORK/app.log" >&2; fail "the quickstart app never became healthy"; }

node "$ROOT/tests/quickstart/page.mjs" "http://127.0.0.1:$PORT/" "$ROOT" "$DB" \
  || { tail -n 40 "$WORK/app.log" >&2; fail "the quickstart page did not show the rows inserted with psql"; }
log "a fresh app built from docs/quickstart.md on PgNotify $VERSION showed rows inserted with psql in Chromium"
echo "1 passed, 0 failed, 0 skipped"
