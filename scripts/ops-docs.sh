#!/bin/bash
# Rewrites docs/ops.md's op table from `tlaloc ops --markdown` (the op table
# of ir/ops.def); run it after changing ops.def. Usage: scripts/ops-docs.sh [TLALOC]
set -euo pipefail
cd "$(dirname "$0")/.."
TL=${1:-build/tlaloc}
begin='<!-- begin: tlaloc ops --markdown -->'
end='<!-- end: tlaloc ops --markdown -->'
table=$("$TL" ops --markdown)
awk -v b="$begin" -v e="$end" -v t="$table" '
  $0 == b { print; print t; skip = 1; next }
  $0 == e { skip = 0 }
  !skip { print }' docs/ops.md >docs/ops.md.new
mv docs/ops.md.new docs/ops.md
echo "docs/ops.md: op table updated ($(printf '%s\n' "$table" | grep -c '^| `') ops)"
