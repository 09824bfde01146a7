#!/usr/bin/env bash
# The shape measures of issue 11 (docs/architecture.md, "Measures"): largest files in src/, lock fields and lock() targets
# per file (one type per file in src/), InternalsVisibleTo between the two packages. Usage: bash scripts/shape.sh
cd "$(dirname "${BASH_SOURCE[0]}")/.."
echo "largest files in src/ (lines):"
find src -name '*.cs' -not -path '*/obj/*' -not -path '*/bin/*' -print0 | xargs -0 wc -l | sort -n | grep -v total | tail -3
echo "files over 300 lines: $(find src -name '*.cs' -not -path '*/obj/*' -not -path '*/bin/*' -print0 | xargs -0 wc -l | grep -v total | awk '$1 > 300' | wc -l)"
echo "lock fields (Lock, SemaphoreSlim, ReaderWriterLockSlim, Mutex) and distinct lock() targets, per file:"
find src -name '*.cs' -not -path '*/obj/*' -not -path '*/bin/*' | sort | while read -r f; do
  n=$(grep -cE "^\s*(private|internal|public|protected)?\s*(static\s+)?(readonly\s+)?(Lock|SemaphoreSlim|ReaderWriterLockSlim|Mutex)\??\s+_?\w+\s*(=[^>]|;)" "$f")
  t=$(grep -oE "lock \(([^)]*)\)" "$f" | sort -u | wc -l)
  if [ "$n" -gt 0 ] || [ "$t" -gt 0 ]; then echo "  $n field(s), $t lock() target(s)  $f"; fi
done
echo "InternalsVisibleTo between the packages: $(grep -rn 'InternalsVisibleTo' src --include=*.csproj --include=*.cs | grep -v '/obj/' | grep -c 'PgNotify.WebSockets\"\|PgNotify.Core\"')"
