#!/bin/bash
# Formats C with clang-format-19 and the project's .clang-format.
#
#   scripts/format.sh [--check] [FILE...]
#
# Without FILEs: the .c and .h files that differ from HEAD (staged,
# unstaged or new), i.e. what a change touches, as `git clang-format`
# would; existing code is reformatted when it is next edited rather than
# all at once. --check changes nothing and exits 1 when a file would
# change. The always-on part of the layout (attached braces, no tabs, no
# trailing blanks) is checked by scripts/check-style.py in the tests.
# clang-format-19 comes from Debian: apt-get install clang-format-19.
set -euo pipefail
cd "$(dirname "$0")/.."
check=0
if [ "${1:-}" = --check ]; then check=1; shift; fi
cf=$(command -v clang-format-19 || true)
[ -n "$cf" ] || { echo "format.sh: clang-format-19 not found (apt-get install clang-format-19)" >&2; exit 2; }
if [ $# -gt 0 ]; then
  files=("$@")
else
  mapfile -t files < <({ git diff --name-only HEAD; git ls-files --others --exclude-standard; } |
    grep -E '\.(c|h)$' | sort -u | while read -r f; do [ -f "$f" ] && echo "$f"; done)
fi
[ ${#files[@]} -gt 0 ] || { echo "format.sh: nothing to format"; exit 0; }
if [ $check = 1 ]; then
  bad=0
  for f in "${files[@]}"; do
    if ! "$cf" --style=file "$f" | cmp -s - "$f"; then echo "$f: not formatted"; bad=1; fi
  done
  exit $bad
fi
"$cf" --style=file -i "${files[@]}"
echo "format.sh: formatted ${#files[@]} files"
