#!/bin/bash
# docs/ops.md's op table is `tlaloc ops --markdown` (the op table of
# ir/ops.def): fails when the page is out of date, or an op is missing.
# Usage: op_table_docs.sh TLALOC SRCDIR
set -u
TL=$1 SRC=$2
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
"$TL" ops --markdown >"$tmp/want" || { echo "FAIL: tlaloc ops --markdown"; exit 1; }
sed -n '/^<!-- begin: tlaloc ops --markdown -->$/,/^<!-- end: tlaloc ops --markdown -->$/p' "$SRC/docs/ops.md" |
  sed '1d;$d' >"$tmp/have"
if ! diff -u "$tmp/have" "$tmp/want"; then
  echo "FAIL: docs/ops.md's op table is not the output of 'tlaloc ops --markdown' (diff above; scripts/ops-docs.sh rewrites it)"
  exit 1
fi
n=$(grep -c '^| `' "$tmp/have")
echo "ok: docs/ops.md lists the op table's $n ops"
