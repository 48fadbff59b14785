#!/bin/bash
# The whole test suite: installs what it needs (Debian 12), builds tlaloc
# twice (a -Werror release-ish build and an ASan+UBSan build) and runs every
# test in both, then builds the libFuzzer harnesses with clang-19 (ASan +
# UBSan, build-fuzz) and runs each for a few seconds ($TL_FUZZ_SMOKE_SECONDS,
# default 5) after its regression inputs; without clang-19 and libFuzzer
# that step is skipped with a message. Prints "N passed, M failed" last;
# exit status 0 iff all pass.
set -euo pipefail
cd "$(dirname "$0")/.."

if [ "${TLALOC_SKIP_SETUP:-0}" != 1 ]; then
  ./scripts/setup-debian.sh
fi

NATIVE=scripts/native.ini
setup() { # dir, extra meson options...
  local dir=$1
  shift
  if [ -d "$dir" ]; then
    meson setup --reconfigure "$dir" --native-file "$NATIVE" "$@" >/dev/null
  else
    meson setup "$dir" --native-file "$NATIVE" "$@" >/dev/null
  fi
}

setup build --werror
setup build-asan --werror -Db_sanitize=address,undefined -Db_lundef=false -Dbuildtype=debug
dirs=(build build-asan)
if command -v clang-19 >/dev/null &&
  echo 'int LLVMFuzzerTestOneInput(const char *d, long n) { return 0; }' |
  clang-19 -x c -fsanitize=fuzzer -o /dev/null - 2>/dev/null; then
  # no --werror: clang warns about CBC's own header
  CC=clang-19 CXX=clang++-19 setup build-fuzz -Dfuzz=true -Db_sanitize=address,undefined -Db_lundef=false
  dirs+=(build-fuzz)
else
  echo "== build-fuzz skipped: no clang-19 with libFuzzer (scripts/setup-debian.sh installs them)"
fi

export ASAN_OPTIONS=detect_leaks=1:abort_on_error=1
export UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1

total_pass=0
total_fail=0
for dir in "${dirs[@]}"; do
  echo "== $dir"
  ninja -C "$dir"
  set +e
  meson test -C "$dir" --print-errorlogs --num-processes 2
  rc=$?
  set -e
  log="$dir/meson-logs/testlog.json"
  p=$(grep -c '"result": "OK"' "$log" || true)
  f=$(grep -c -E '"result": "(FAIL|TIMEOUT|ERROR|UNEXPECTEDPASS)"' "$log" || true)
  total_pass=$((total_pass + p))
  total_fail=$((total_fail + f))
  if [ "$rc" != 0 ] && [ "$f" = 0 ]; then total_fail=$((total_fail + 1)); fi
done

echo "tests: $total_pass passed, $total_fail failed"
[ "$total_fail" = 0 ]
