#!/usr/bin/env bash
# Both sources side by side (kept for its name): the same scenarios (default L,F,S,I) with PgNotify:Source = Notify,
# then Replication. The same as `bash bench/run.sh --modes pgnotify --sources Notify,Replication`. See docs/deployment.md.
#
#   bash bench/sources.sh [--scenarios L,F,S,I] [--seconds 12]
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
ARGS=("$@")
[ ${#ARGS[@]} -eq 0 ] && ARGS=(--scenarios L,F,S,I)
exec bash "$ROOT/bench/run.sh" --modes pgnotify --sources Notify,Replication "${ARGS[@]}"
