#!/bin/bash
# gpu-prepare.sh - makes the folder scripts/gpu-check.sh runs on a GPU
# machine that has the NVIDIA driver, a C compiler and python3 (numpy,
# PyTorch) but neither LLVM nor a package registry. Runs here, where
# tlaloc is built; everything the check needs goes into one folder, at most
# 64 MiB (checked):
#
#   scripts/gpu-prepare.sh [BUILD_DIR] [CARRY_DIR]     (build, gpu-carry)
#
#   diff/NAME/    model.ptx, model.h, model_launch.c (tlaloc compile --target
#                 ptx --name model), in/*.npy and expected/*.npy (the
#                 reference interpreter's outputs on those inputs), or
#                 expect_error where the interpreter refuses the run: every
#                 example at symbol sizes 1000 and 37, every graph of
#                 tests/gpu/graphs at 700, the first GPU_PREPARE_RANDOM
#                 (150; 0 with GPU_PREPARE_QUICK) random graphs of
#                 tests/gpu, the graphs of tests/gpu/graphs/fail at 0
#   bench/        chain, loss, colsum, softmax, log_softmax, attention: launchers of
#                 bench/gpu/*.tg (their inputs are made on the GPU machine)
#   driver.c launch_bench.c torch_bench.py gpu-check.sh   the programs
#   compile_times.txt   bench-gpu compile: PTX compile time per program, here
#   manifest.txt        what was prepared, from which commit
#   refused.txt         only without libdevice: the cases left out (their
#                       math needs the CUDA toolkit's libdevice)
#
# The folder is in .gitignore. Every PTX module is also run through ptxas
# here when the CUDA toolkit is (CUDA_HOME, /usr/local/cuda).
# GPU_PREPARE_QUICK=1 (tests/gpu's check of the scripts, whose gpu-check
# builds everything again): no compile times, no strict build here.
set -euo pipefail
cd "$(dirname "$0")/.."
build=${1:-build}
carry=${2:-gpu-carry}
tl=$build/tlaloc
[ -x "$tl" ] || { echo "gpu-prepare: no $tl (build tlaloc first)" >&2; exit 2; }
rm -rf "$carry"
mkdir -p "$carry/diff" "$carry/bench"
cp scripts/gpu-check.sh scripts/gpu-check/driver.c bench/gpu/launch_bench.c bench/gpu/torch_bench.py "$carry/"
ptxas="${CUDA_HOME:-/usr/local/cuda}/bin/ptxas"
[ -x "$ptxas" ] || ptxas=""
nptx=0

check_ptx() { # a PTX file through ptxas, when there is one
  if [ -n "$ptxas" ]; then
    "$ptxas" -arch=sm_90 "$1" -o /dev/null
    nptx=$((nptx + 1))
  fi
}

symbols() { # the symbolic dims of a graph, from its inferred types
  "$tl" infer "$1" | grep -o '\[[^]]*\]' | tr -d '[]' | tr ' ' '\n' | grep -v -E '^-?[0-9]*$' | sort -u || true
}

nrefused=0
add_case() { # name graph size
  local name=$1 graph=$2 size=$3 d=$carry/diff/$1 dims=() s
  mkdir -p "$d"
  for s in $(symbols "$graph"); do dims+=(--dim "$s=$size"); done
  if ! "$tl" compile "$graph" --target ptx --name model -o "$d/model.ptx" --header "$d/model.h" 2> "$d/compile.txt"; then
    # without the CUDA toolkit's libdevice (CUDA_HOME, /usr/local/cuda) a
    # program calling math other than f32 exp, log, log1p, tanh is refused:
    # the case is left out and the manifest says so; anything else stops
    if grep -q "needs libdevice" "$d/compile.txt"; then
      echo "$name: $(head -c 200 "$d/compile.txt")" >> "$carry/refused.txt"
      rm -rf "$d"
      nrefused=$((nrefused + 1))
      return 0
    fi
    cat "$d/compile.txt" >&2
    exit 1
  fi
  rm -f "$d/compile.txt"
  check_ptx "$d/model.ptx"
  if ! "$tl" run "$graph" --interp --random 7 "${dims[@]}" --save-inputs "$d/in" --out "$d/expected" \
      > /dev/null 2> "$d/interp.txt"; then
    mv "$d/interp.txt" "$d/expect_error"
    rm -rf "$d/expected"
  fi
  rm -f "$d/interp.txt"
  echo "$graph ${dims[*]}" > "$d/what.txt"
  cp "$graph" "$d/graph.tg" # to reproduce a failure here
}

ncase=0
for g in examples/*.tg; do
  b=$(basename "$g" .tg)
  add_case "$b-1000" "$g" 1000
  add_case "$b-37" "$g" 37
  ncase=$((ncase + 2))
done
for g in tests/gpu/graphs/*.tg; do
  add_case "graph-$(basename "$g" .tg)" "$g" 700
  ncase=$((ncase + 1))
done
# the random graphs of tests/gpu (gpu-test write-random: tests/backend's
# generator, the sequence gpu-sim and gpu-real use)
nrandom=${GPU_PREPARE_RANDOM:-150}
[ "${GPU_PREPARE_QUICK:-0}" != 1 ] || nrandom=${GPU_PREPARE_RANDOM:-0}
if [ "$nrandom" -gt 0 ]; then
  gt=$build/tests/gpu/gpu-test
  [ -x "$gt" ] || { echo "gpu-prepare: no $gt for the random graphs (GPU_PREPARE_RANDOM=0 leaves them out)" >&2; exit 2; }
  rdir=$(mktemp -d)
  "$gt" write-random "$rdir" "$nrandom"
  for g in "$rdir"/*.tg; do
    add_case "$(basename "$g" .tg)" "$g" 700
    ncase=$((ncase + 1))
  done
  rm -rf "$rdir"
fi
for g in tests/gpu/graphs/fail/*.tg; do
  add_case "fail-$(basename "$g" .tg)" "$g" 0
  ncase=$((ncase + 1))
done
for b in chain loss colsum softmax log_softmax attention; do
  "$tl" compile "bench/gpu/$b.tg" --target ptx --name "$b" -o "$carry/bench/$b.ptx" --header "$carry/bench/$b.h"
  check_ptx "$carry/bench/$b.ptx"
done
# the launchers and the programs must build with a plain C compiler before
# they travel (the GPU machine has no way to fix them)
cc=${CC:-cc}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
for d in "$carry"/diff/*/; do
  [ "${GPU_PREPARE_QUICK:-0}" != 1 ] || break
  "$cc" -std=c11 -O1 -Wall -Werror -I"$d" -c "$d/model_launch.c" -o "$tmp/l.o"
  "$cc" -std=c11 -O1 -Wall -Werror -I"$d" -c "$carry/driver.c" -o "$tmp/d.o"
done
"$cc" -std=c11 -O1 -Wall -Werror -I"$carry/bench" "$carry/launch_bench.c" "$carry"/bench/*_launch.c \
  -ldl -lpthread -lm -o "$tmp/bench"
if [ -x "$build/bench/gpu/bench-gpu" ] && [ "${GPU_PREPARE_QUICK:-0}" != 1 ]; then
  "$build/bench/gpu/bench-gpu" . compile > "$carry/compile_times.txt"
fi
{
  echo "prepared $(date -u '+%Y-%m-%d %H:%M UTC') from $(git rev-parse --short HEAD 2>/dev/null || echo '?')$(git diff --quiet 2>/dev/null || echo ' (with local changes)')"
  echo "cases: $((ncase - nrefused)) differential (examples at 1000 and 37, tests/gpu/graphs at 700, $nrandom random graphs, failing runs at 0); benchmarks: chain loss colsum softmax log_softmax attention"
  if [ -n "$ptxas" ]; then echo "ptxas -arch=sm_90 accepted all $nptx PTX modules here ($("$ptxas" --version | tail -1))"
  else echo "no ptxas here: the PTX was not assembled before travelling"; fi
  if [ "$nrefused" -gt 0 ]; then
    echo "$nrefused cases left out: no libdevice here (prepare where the CUDA toolkit is for all of them; refused.txt)"
  fi
} > "$carry/manifest.txt"
size=$(du -sb "$carry" | cut -f1)
if [ "$size" -gt $((64 * 1024 * 1024)) ]; then
  echo "gpu-prepare: $carry is $size bytes, more than the 64 MiB that can be carried" >&2
  exit 1
fi
cat "$carry/manifest.txt"
echo "gpu-prepare: $carry holds $((size / 1024)) KiB; on the GPU machine: $carry/gpu-check.sh $carry"
