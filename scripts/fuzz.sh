#!/bin/bash
# Long fuzzing runs of the libFuzzer harnesses in fuzz/ (see fuzz/README.md).
#
#   scripts/fuzz.sh [-t SECONDS] [-d DIR] [-k] [HARNESS...]
#
# HARNESS: tg, rw, npy, json, pipeline (default: all, one after another).
# -t  seconds of fuzzing per harness (default 600)
# -d  where corpora and crashes are kept (default $TLALOC_FUZZ_DIR, else
#     .fuzz/ in the repository, which git ignores): DIR/corpus/NAME grows
#     from run to run, DIR/crashes/NAME-crash-* (also leak-, timeout-,
#     oom-) are the inputs that failed, DIR/logs/NAME.log the last run's log
# -k  keep going after a crash (restart the harness until the time is up)
#     instead of stopping that harness at its first one
#
# Builds build-fuzz with clang-19 first if it is missing. Prints, per
# harness, the seconds run, the executions and the crashes; exit status 1
# when anything crashed. Reproduce a crash with
#   build-fuzz/fuzz/fuzz-NAME DIR/crashes/NAME-crash-...
# then fix it and add the input to fuzz/regress/NAME/ (the smoke test runs
# every file there).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)

secs=600
dir=${TLALOC_FUZZ_DIR:-$ROOT/.fuzz}
keep=0
while getopts "t:d:k" o; do
  case $o in
    t) secs=$OPTARG ;;
    d) dir=$OPTARG ;;
    k) keep=1 ;;
    *) sed -n '2,/^set /p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 2 ;;
  esac
done
shift $((OPTIND - 1))
names=("$@")
[ ${#names[@]} -gt 0 ] || names=(tg rw npy json pipeline)

if [ ! -d build-fuzz ]; then
  CC=clang-19 CXX=clang++-19 meson setup build-fuzz --native-file scripts/native.ini \
    -Dfuzz=true -Db_sanitize=address,undefined -Db_lundef=false
fi
ninja -C build-fuzz >/dev/null

export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-halt_on_error=1:print_stacktrace=1}
mkdir -p "$dir"/{corpus,crashes,logs,cache}
export TLALOC_CACHE_DIR="$dir/cache"
seeds=$(mktemp -d)
trap 'rm -rf "$seeds"' EXIT
bash fuzz/seeds.sh "$seeds"

status=0
printf '%-9s %8s %12s %8s\n' harness seconds executions crashes
for name in "${names[@]}"; do
  exe=build-fuzz/fuzz/fuzz-$name
  [ -x "$exe" ] || { echo "no harness $exe" >&2; exit 2; }
  mkdir -p "$dir/corpus/$name"
  extra=()
  [ "$name" = pipeline ] && extra=(-max_len=2048)
  start=$(date +%s)
  execs=0
  crashes=0
  : >"$dir/logs/$name.log"
  while :; do
    left=$((secs - ($(date +%s) - start)))
    [ "$left" -gt 0 ] || break
    set +e
    "$exe" -max_total_time="$left" -timeout=30 -rss_limit_mb=4096 -print_final_stats=1 \
      -dict="$seeds/$name.dict" -artifact_prefix="$dir/crashes/$name-" "${extra[@]}" \
      "$dir/corpus/$name" "$seeds/$name" >"$dir/logs/$name.run" 2>&1
    rc=$?
    set -e
    cat "$dir/logs/$name.run" >>"$dir/logs/$name.log"
    # the last count: a harness that exits through libFuzzer's own exit
    # handler prints the final stats twice
    n=$(grep 'stat::number_of_executed_units' "$dir/logs/$name.run" | awk '{n = $2} END {print n}')
    # a crashed run prints no final stats: count its last progress line
    [ -n "$n" ] || n=$(grep -oE '^#[0-9]+' "$dir/logs/$name.run" | tail -1 | tr -d '#')
    execs=$((execs + ${n:-0}))
    [ "$rc" = 0 ] && break
    crashes=$((crashes + 1))
    status=1
    grep -E 'ERROR: |SUMMARY|^fuzz: |Test unit written' "$dir/logs/$name.run" | tail -4 >&2
    [ "$keep" = 1 ] || break
  done
  rm -f "$dir/logs/$name.run"
  printf '%-9s %8d %12d %8d\n' "$name" $(($(date +%s) - start)) "$execs" "$crashes"
done
exit $status
