#!/bin/bash
# smoke.sh HARNESS NAME SOURCE_DIR [SECONDS]: a short run of one fuzz
# harness, as a test. First every input of fuzz/regress/NAME (the crashes
# found so far) runs once; then the harness fuzzes for SECONDS (default
# $TL_FUZZ_SMOKE_SECONDS, else 5) from the seeds of fuzz/seeds.sh, in a
# temporary folder. Exit status 0 iff nothing crashed; a crashing input is
# kept as fuzz-artifacts/NAME-crash-* under the current folder.
set -euo pipefail
exe=$1
name=$2
src=$3
secs=${4:-${TL_FUZZ_SMOKE_SECONDS:-5}}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-halt_on_error=1:print_stacktrace=1}
export TLALOC_CACHE_DIR="$tmp/cache"

bash "$src/fuzz/seeds.sh" "$tmp/seeds"
mkdir -p "$tmp/corpus" fuzz-artifacts
# -error_exitcode: libFuzzer's default, 77, is meson's "skipped", which
# would report a crash as a skip
opts=(-artifact_prefix="fuzz-artifacts/$name-" -timeout=60 -rss_limit_mb=4096 -seed=1 -error_exitcode=1)

shopt -s nullglob
regress=("$src/fuzz/regress/$name"/*)
if [ ${#regress[@]} -gt 0 ]; then
  echo "== $name: ${#regress[@]} regression inputs"
  "$exe" "${opts[@]}" "${regress[@]}"
fi
echo "== $name: fuzzing for $secs s"
"$exe" "${opts[@]}" -dict="$tmp/seeds/$name.dict" -max_total_time="$secs" -print_final_stats=1 \
  "$tmp/corpus" "$tmp/seeds/$name"
