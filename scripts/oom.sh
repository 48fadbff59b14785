#!/bin/bash
# The full out-of-memory loop (docs/design.md, "Errors and memory"): for
# k = 1, 2, 3, ... fail the k-th allocation of parse -> optimize -> compile
# -> run through the C API on each example, and of the CLI's run, opt and
# infer commands, until a run allocates fewer than k blocks. Every k must
# end in a clean out-of-memory status (exit 3, nothing on stdout, outputs
# of the final pass identical to a clean run's) and, in the sanitizer
# build, without a leak. The test command runs the same loops with a
# stride (tests/oom/meson.build); this runs every k.
#
#   scripts/oom.sh [-b BUILD] [-s STRIDE] [EXAMPLE...]
#
# -b  the build folder (default build-asan when it exists, else build)
# -s  stride (default 1: every k)
# EXAMPLE: names under examples/ (default: xent gelu attention)
# Prints each loop's count of passes and clean failures; exit 1 on any
# problem. Every k of the three default examples takes about 20 minutes
# in the sanitizer build on 2 cores.
set -uo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
build=build-asan
[ -d "$build" ] || build=build
stride=1
while getopts "b:s:" o; do
  case $o in
    b) build=$OPTARG ;;
    s) stride=$OPTARG ;;
    *) sed -n '2,18p' "$0"; exit 2 ;;
  esac
done
shift $((OPTIND - 1))
examples=("$@")
[ ${#examples[@]} -gt 0 ] || examples=(xent gelu attention)
ninja -C "$build" tlaloc tests/oom/oom-api >/dev/null || exit 1
bad=0
for ex in "${examples[@]}"; do
  "$build/tests/oom/oom-api" "$stride" "$ROOT/examples/$ex.tg" "$ROOT/rules" || bad=1
done
bash "$ROOT/tests/oom/oom_cli.sh" "$build/tlaloc" "$ROOT" "$stride" || bad=1
[ $bad = 0 ] && echo "oom: every k failed cleanly" || echo "oom: PROBLEMS above"
exit $bad
