#!/bin/bash
# Runs the benchmarks of bench/ from a release build (build-bench/,
# -Dbuildtype=release, separate from the test build) with the arguments
# their usage lines document; each prints its own tables, with its peers'
# figures measured in the same run where it has peers. The test command
# runs none of this: it runs each benchmark's --smoke mode from build/.
#
#   scripts/bench.sh [--smoke] [NAME...]
#
#   NAME     egg-math scaling extract backend accuracy cost grad control (default:
#            all, in that order). A full run of bench-extract alone can take
#            tens of minutes (the exact extractor, 10 s limit per file, on
#            every extraction-gym file); bench-scaling goes up to 10^6-node
#            graphs.
#   --smoke  passes --smoke to each: small sizes, one run (seconds each).
#
# Environment: BENCH_BUILD_DIR (default build-bench), TL_EXTRACTION_GYM (the
# extraction-gym data for bench-extract; default ../shared/data/extraction-gym
# beside the source tree, as the tests use), EGG_PEER (egg-peer built by
# bench/egraph/egg-peer/build.sh: bench-egg-math then runs egg beside tlaloc
# in 3 alternating rounds instead of quoting egg's recorded figures).
# bench-accuracy exists only when
# MPFR was found (libmpfr-dev); a benchmark that was not built is skipped
# with a message. Exit status: 0 when every benchmark that ran exited 0.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)

smoke=()
names=()
for a in "$@"; do
  case "$a" in
  --smoke) smoke=(--smoke) ;;
  -h|--help) sed -n '2,24p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
  egg-math|scaling|extract|backend|accuracy|cost|grad|control) names+=("$a") ;;
  *) echo "bench.sh: unknown benchmark or option '$a' (see --help)" >&2; exit 2 ;;
  esac
done
[ ${#names[@]} -gt 0 ] || names=(egg-math scaling extract backend accuracy cost grad control)

dir=${BENCH_BUILD_DIR:-build-bench}
if [ -d "$dir" ]; then
  meson setup --reconfigure "$dir" --native-file scripts/native.ini -Dbuildtype=release >/dev/null
else
  meson setup "$dir" --native-file scripts/native.ini -Dbuildtype=release >/dev/null
fi
ninja -C "$dir"

gym=${TL_EXTRACTION_GYM:-$root/../shared/data/extraction-gym}
failed=0
run() { # name, executable (relative to the build folder), arguments...
  local name=$1 exe=$dir/$2
  shift 2
  if [ ! -x "$exe" ]; then
    echo "== $name: skipped ($exe was not built)"
    return
  fi
  local cmd=("$exe" "$@" "${smoke[@]}")
  echo "== $name: ${cmd[*]}"
  if ! "${cmd[@]}"; then
    echo "== $name: FAILED"
    failed=$((failed + 1))
  fi
}

for n in "${names[@]}"; do
  case "$n" in
  egg-math)
    if [ -n "${EGG_PEER:-}" ] && [ ${#smoke[@]} -eq 0 ]; then
      run "$n" bench/egraph/bench-egg-math --egg "$EGG_PEER" --rounds 3
    else
      run "$n" bench/egraph/bench-egg-math
    fi
    ;;
  scaling) run "$n" bench/egraph/bench-scaling ;;
  extract)
    if [ -d "$gym" ]; then
      run "$n" bench/extract/bench-extract --data "$gym"
    else
      echo "== $n: skipped (no extraction-gym data at $gym; set TL_EXTRACTION_GYM)"
    fi
    ;;
  backend) run "$n" bench/backend/bench-backend "$root" ;;
  accuracy) run "$n" bench/accuracy/bench-accuracy ;;
  cost) run "$n" bench/cost/bench-cost "$root" ;;
  grad)
    run grad-deep bench/grad/bench-grad-deep
    # a training step against PyTorch eager: Debian's python3 with python3-torch
    cmd=(/usr/bin/python3 "$root/bench/grad/bench_grad.py" "${smoke[@]}")
    echo "== grad: TLALOC_LIBRARY=$dir/libtlaloc.so ${cmd[*]}"
    if ! TLALOC_LIBRARY="$root/$dir/libtlaloc.so" "${cmd[@]}"; then
      echo "== grad: FAILED"
      failed=$((failed + 1))
    fi
    ;;
  control)
    # scans and loops against PyTorch eager, a C loop over cblas and numpy
    cmd=(/usr/bin/python3 "$root/bench/control/bench_control.py" "${smoke[@]}")
    echo "== control: TLALOC_LIBRARY=$dir/libtlaloc.so ${cmd[*]}"
    if ! TLALOC_LIBRARY="$root/$dir/libtlaloc.so" "${cmd[@]}"; then
      echo "== control: FAILED"
      failed=$((failed + 1))
    fi
    ;;
  esac
done

[ "$failed" = 0 ]
