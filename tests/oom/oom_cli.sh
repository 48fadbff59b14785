#!/bin/bash
# oom_cli.sh TLALOC SRC STRIDE: the out-of-memory loop through the CLI.
# For k = 1, 1+STRIDE, ... TLALOC_FAIL_ALLOC=k fails the k-th allocation of
# a command; each run must exit 3 saying "out of memory" (or succeed once k
# is past its last allocation) and print nothing on stdout when it fails.
# The sanitizer build makes a leak or a bad access exit with another code.
set -u
tl=$1 src=$2 stride=$3
export TLALOC_CACHE_DIR=$(mktemp -d) ASAN_OPTIONS=${ASAN_OPTIONS:-}:detect_leaks=1:exitcode=99
trap 'rm -rf "$TLALOC_CACHE_DIR"' EXIT
bad=0
loop() { # name, then the command's arguments
  local name=$1; shift
  local k=1 clean=0 passes=0
  while :; do
    out=$(TLALOC_FAIL_ALLOC=$k "$tl" "$@" 2>/tmp/oom_cli_err.$$); rc=$?
    passes=$((passes + 1))
    if [ $rc -eq 3 ]; then
      if ! grep -q "out of memory" /tmp/oom_cli_err.$$ || [ -n "$out" ]; then
        echo "FAIL $name k=$k: exit 3 without the message, or with output"; bad=1
      fi
      clean=$((clean + 1))
    elif [ $rc -eq 0 ]; then
      break
    else
      echo "FAIL $name k=$k: exit $rc"; tail -5 /tmp/oom_cli_err.$$; bad=1; break
    fi
    k=$((k + stride))
    [ $k -gt 200000 ] && { echo "FAIL $name: no success by k=$k"; bad=1; break; }
  done
  echo "$name: $passes passes (stride $stride), $clean failed cleanly, success at k=$k"
}
loop "run xent (cold cache)" run "$src/examples/xent.tg" --random 1 --dim n=8
loop "run xent (warm cache)" run "$src/examples/xent.tg" --random 1 --dim n=8
loop "run attention --interp" run "$src/examples/attention.tg" --random 1 --interp --dim t=4
# functions, a cond and a scan compiled into one program (plan, emit, link)
loop "run piecewise (control flow)" run "$src/examples/control/piecewise.tg" --random 1 --dim n=3 --dim k=2
loop "opt logsumexp" opt "$src/examples/logsumexp.tg" --rules "$src/rules"
loop "infer gelu" infer "$src/examples/gelu.tg"
rm -f /tmp/oom_cli_err.$$
exit $bad
