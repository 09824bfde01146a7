#!/usr/bin/env bash
# Consumer test: pack PgNotify.Core, PgNotify.WebSockets and PgNotify.Client, build a fresh ASP.NET Core app outside
# the solution that references the .nupkg files from a local folder feed (tests/consumer), start it against PostgreSQL
# and check that a WebSocket client receives a change; then a fresh console app on the PgNotify.Client package
# (tests/consumer/dotnet-client) receives a change and holds the row in LiveRows. Last line:
# `N passed, N failed, N skipped`.
set -uo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
WORK="$(mktemp -d /tmp/pgnotify-consumer.XXXXXX)"
DB="pgnotify_consumer_$$"
APP_PID=""
cleanup() {
  [ -n "$APP_PID" ] && kill "$APP_PID" 2>/dev/null && wait "$APP_PID" 2>/dev/null
  bash "$ROOT/scripts/pg.sh" psql -q -c "DROP DATABASE IF EXISTS $DB WITH (FORCE)" >/dev/null 2>&1
  rm -rf "$WORK"
}
trap cleanup EXIT
fail() { echo "consumer.sh: $*" >&2; echo "0 passed, 1 failed, 0 skipped"; exit 1; }

# A version no cache has seen, so the app restores exactly what was just packed.
VERSION="0.1.0-ci.$(date +%s).$$"
dotnet pack "$ROOT/PgNotify.sln" -c Release -o "$WORK/feed" -p:Version="$VERSION" -v q -nologo >"$WORK/pack.log" 2>&1 \
  || { cat "$WORK/pack.log" >&2; fail "dotnet pack failed"; }
for package in PgNotify.Core PgNotify.WebSockets PgNotify.Client; do
  [ -f "$WORK/feed/$package.$VERSION.nupkg" ] || fail "$package.$VERSION.nupkg was not produced"
  [ -f "$WORK/feed/$package.$VERSION.snupkg" ] || fail "$package.$VERSION.snupkg (symbols) was not produced"
done
# Read each listing whole before matching: `unzip ... | grep -q` under pipefail fails at random when grep exits at its
# first match and unzip, still writing, dies of SIGPIPE.
listing="$(unzip -l "$WORK/feed/PgNotify.WebSockets.$VERSION.nupkg")" || fail "cannot list PgNotify.WebSockets.$VERSION.nupkg"
grep -q 'README.md' <<<"$listing" || fail "the package has no README"
grep -q 'PgNotify.WebSockets.xml' <<<"$listing" || fail "the package has no XML docs"
nuspec="$(unzip -p "$WORK/feed/PgNotify.Core.$VERSION.nupkg" PgNotify.Core.nuspec)" || fail "PgNotify.Core.nupkg has no nuspec"
grep -q '<license type="expression">MIT</license>' <<<"$nuspec" || fail "no MIT license expression"

mkdir -p "$WORK/app"
cp "$ROOT/tests/consumer/Consumer.csproj" "$ROOT/tests/consumer/Program.cs" "$WORK/app/"
cat >"$WORK/app/NuGet.config" <<CONFIG
<?xml version="1.0" encoding="utf-8"?>
<configuration>
  <packageSources>
    <add key="pgnotify-local" value="$WORK/feed" />
  </packageSources>
</configuration>
CONFIG
(cd "$WORK/app" && dotnet build -c Release -p:PgNotifyVersion="$VERSION" -v q -nologo >"$WORK/build.log" 2>&1) \
  || { cat "$WORK/build.log" >&2; fail "the consumer app did not build against the packages"; }
grep -q "PgNotify.WebSockets/$VERSION\|pgnotify.websockets/$VERSION" "$WORK/app/obj/project.assets.json" \
  || fail "the app did not restore PgNotify.WebSockets $VERSION from the feed"
listing="$(unzip -l "$WORK/feed/PgNotify.Client.$VERSION.nupkg")" || fail "cannot list PgNotify.Client.$VERSION.nupkg"
grep -q 'PgNotify.Client.xml' <<<"$listing" || fail "PgNotify.Client has no XML docs"
nuspec="$(unzip -p "$WORK/feed/PgNotify.Client.$VERSION.nupkg" PgNotify.Client.nuspec)" || fail "PgNotify.Client.nupkg has no nuspec"
grep -q 'Microsoft.AspNetCore' <<<"$nuspec" && fail "PgNotify.Client depends on ASP.NET Core"
mkdir -p "$WORK/dotnet-client"
cp "$ROOT/tests/consumer/dotnet-client/DotnetClient.csproj" "$ROOT/tests/consumer/dotnet-client/Program.cs" "$WORK/dotnet-client/"
cp "$WORK/app/NuGet.config" "$WORK/dotnet-client/"
(cd "$WORK/dotnet-client" && dotnet build -c Release -p:PgNotifyVersion="$VERSION" -v q -nologo >"$WORK/client-build.log" 2>&1) \
  || { cat "$WORK/client-build.log" >&2; fail "the .NET client app did not build against PgNotify.Client"; }
grep -q "PgNotify.Client/$VERSION" "$WORK/dotnet-client/obj/project.assets.json" \
  || fail "the client app did not restore PgNotify.Client $VERSION from the feed"

CONNECTION="$(bash "$ROOT/scripts/pg.sh" start)" || fail "PostgreSQL did not start"   # honours PGNOTIFY_PG_PORT
bash "$ROOT/scripts/pg.sh" psql -q -c "CREATE DATABASE $DB" >/dev/null || fail "could not create $DB"
bash "$ROOT/scripts/pg.sh" psql -q -d "$DB" -c "CREATE TABLE items (id serial PRIMARY KEY, name text NOT NULL)" >/dev/null \
  || fail "could not create the items table"

PORT="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])' 2>/dev/null || echo 50731)"
ConnectionStrings__Postgres="${CONNECTION/Database=postgres/Database=$DB}" PgNotify__Tables__0=items \
  dotnet "$WORK/app/bin/Release/net10.0/Consumer.dll" --urls "http://127.0.0.1:$PORT" >"$WORK/app.log" 2>&1 &
APP_PID=$!
for _ in $(seq 1 150); do
  [ "$(curl -fsS "http://127.0.0.1:$PORT/health" 2>/dev/null)" = Healthy ] && break
  kill -0 "$APP_PID" 2>/dev/null || { cat "$WORK/app.log" >&2; fail "the consumer app exited"; }
  sleep 0.2
done
[ "$(curl -fsS "http://127.0.0.1:$PORT/health")" = Healthy ] || { cat "$WORK/app.log" >&2; fail "the consumer app never became healthy"; }

node --experimental-websocket --no-warnings "$ROOT/tests/consumer/client.mjs" "ws://127.0.0.1:$PORT/ws/changes/?tables=items" "$DB" "$ROOT" \
  || { cat "$WORK/app.log" >&2; fail "no change reached the WebSocket client"; }
echo "consumer.sh: a fresh app on PgNotify $VERSION from the local feed delivered a change" >&2

dotnet "$WORK/dotnet-client/bin/Release/net10.0/DotnetClient.dll" "ws://127.0.0.1:$PORT/ws/changes/" "$DB" "$ROOT" \
  || { cat "$WORK/app.log" >&2; echo "consumer.sh: the .NET client app did not receive the change" >&2; echo "1 passed, 1 failed, 0 skipped"; exit 1; }
echo "consumer.sh: a console app on PgNotify.Client $VERSION from the local feed received a change and held it in LiveRows" >&2
echo "2 passed, 0 failed, 0 skipped"
