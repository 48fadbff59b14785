#!/bin/bash
# gpu-jit.sh - tlaloc itself on a GPU machine that has the NVIDIA driver,
# the CUDA toolkit and python3 (numpy) but no LLVM and no package registry:
# the JIT engine `gpu`, `auto`, `tlaloc calibrate`'s GPU figures and
# `cost-report`'s predicted-against-measured GPU times, which the AOT
# launchers of gpu-check.sh do not reach.
#
#   scripts/gpu-jit.sh pack [BUILD_DIR] [DIR]     here (build, gpu-jit)
#   bash scripts/gpu-jit.sh check [DIR] [REPORT]  there, from the repository
#                                                 root (gpu-jit, DIR/report.txt)
#
# pack puts the programs (tlaloc, libtlaloc.so, the test programs gpu-test,
# test-ops and test-grad; LLVM is linked into each) and every shared
# library they load except the C and C++ runtimes (OpenBLAS, ...) into
# DIR/pack.tar.xz without debug information, checked to stay under the 60
# MiB that can travel beside the working tree (about 4 minutes of xz here).
# check unpacks it, points LD_LIBRARY_PATH at it, and runs, each step with
# its own timeout and its output in REPORT:
#   1. tlaloc engines, and a run of an example on `gpu`;
#   2. gpu-test gpu: the examples, tests/gpu/graphs and 300 random graphs
#      through the JIT engine against the interpreter (test level 3);
#   3. test-ops (every op on every engine, gpu included) and test-grad
#      (the examples' gradients on every engine);
#   4. gpu-test placement, and tlaloc calibrate --quick with the GPU
#      (its profile goes beside REPORT), then cost-report of the bench/gpu
#      graphs with that profile: predicted against measured GPU time;
#   5. tests/python/test_gpu.py (pytest) when pytest is there.
# Exit 0 when every step passed, 1 otherwise; no GPU: every step that needs
# one says so.
set -uo pipefail
mode=${1:-}
case $mode in
pack)
  cd "$(dirname "$0")/.."
  build=${2:-build}
  dir=${3:-gpu-jit}
  progs=("$build/tlaloc" "$build/libtlaloc.so" "$build/tests/gpu/gpu-test" "$build/tests/ops/test-ops"
         "$build/tests/grad/test-grad")
  for p in "${progs[@]}"; do [ -e "$p" ] || { echo "gpu-jit: no $p (build tlaloc and its tests first)" >&2; exit 2; }; done
  rm -rf "$dir"
  mkdir -p "$dir/stage/bin" "$dir/stage/lib"
  cp "${progs[@]}" "$dir/stage/bin/"
  # every library the programs load, but the C/C++ runtimes the GPU
  # machine's own compiler brings (newer there, and compatible)
  ldd "${progs[@]}" | awk '$2 == "=>" && $3 ~ /^\// { print $3 }' | sort -u |
    grep -v -E '/(libc|libm|libpthread|libdl|librt|libgcc_s|libstdc\+\+|ld-linux[^/]*)\.so' |
    while read -r l; do cp -L "$l" "$dir/stage/lib/"; done
  # without their debug info (the programs are 60 MB each with it), and
  # with a dictionary that spans every file: each program and libtlaloc.so
  # carries its own static copy of LLVM, which xz's default 8 MiB window
  # would compress five times over (80 MB instead of ~30). One thread: a
  # block spans the whole stream anyway (xz needs ~2.7 GiB for it here)
  strip --strip-debug "$dir/stage/bin/"* "$dir/stage/lib/"* ||
    echo "gpu-jit: strip failed on some files; they are packed as they are" >&2
  if ! tar -C "$dir/stage" -cf - . | xz -T1 --lzma2=preset=6,dict=256MiB > "$dir/pack.tar.xz"; then
    echo "gpu-jit: packing failed (tar or xz; xz needs ~2.7 GiB of memory)" >&2
    rm -rf "$dir"
    exit 1
  fi
  rm -rf "$dir/stage"
  size=$(stat -c %s "$dir/pack.tar.xz")
  if [ "$size" -gt $((60 * 1024 * 1024)) ]; then
    echo "gpu-jit: $dir/pack.tar.xz is $size bytes, more than 60 MiB" >&2
    exit 1
  fi
  echo "packed $(date -u '+%Y-%m-%d %H:%M UTC') from $(git rev-parse --short HEAD 2>/dev/null || echo '?')$(git diff --quiet 2>/dev/null || echo ' (with local changes)')" > "$dir/manifest.txt"
  pwd -P > "$dir/source_root.txt" # test-grad reads the sources from where it was built
  cat "$dir/manifest.txt"
  echo "gpu-jit: $dir/pack.tar.xz holds $((size / 1024)) KiB; on the GPU machine: bash scripts/gpu-jit.sh check $dir"
  ;;
check)
  dir=${2:-gpu-jit}
  report=${3:-$dir/report.txt}
  [ -f "$dir/pack.tar.xz" ] || { echo "gpu-jit: no $dir/pack.tar.xz (scripts/gpu-jit.sh pack)" >&2; exit 2; }
  fail=0
  step() { # name timeout command...: one step, its status in the report
    local name=$1 limit=$2 t0 rc
    shift 2
    echo "== $name"
    t0=$(date +%s)
    timeout "$limit" "$@" 2>&1
    rc=$?
    case $rc in
      0) echo "-- $name: ok ($(( $(date +%s) - t0 )) s)" ;;
      77) echo "-- $name: skipped" ;;
      *) echo "-- $name: FAILED (exit $rc, $(( $(date +%s) - t0 )) s)"; fail=1 ;;
    esac
  }
  run_all() {
    echo "== tlaloc gpu-jit check, $(date -u '+%Y-%m-%d %H:%M UTC') on $(hostname)"
    cat "$dir/manifest.txt"
    nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader 2>&1 | sed 's/^/nvidia-smi: /'
    local root
    root=$(mktemp -d)
    xz -dc "$dir/pack.tar.xz" | tar -C "$root" -xf - || { echo "FAIL unpacking"; return 1; }
    export CUDA_HOME=${CUDA_HOME:-/usr/local/cuda}
    export LD_LIBRARY_PATH="$root/lib:$root/bin:$CUDA_HOME/lib64${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
    export TLALOC_CACHE_DIR="$root/cache" XDG_CACHE_HOME="$root/xdg"
    local tl=$root/bin/tlaloc out
    out=$(dirname "$report")
    # test-grad reads the sources from where it was built: the same tree
    local src
    src=$(cat "$dir/source_root.txt")
    if [ ! -e "$src/rules" ]; then
      mkdir -p "$(dirname "$src")" && ln -sfn "$PWD" "$src" || echo "cannot link $src to $PWD: test-grad will fail"
    fi
    step "engines" 30 "$tl" engines
    step "an example on gpu" 60 bash -c "out=\$('$tl' run examples/softplus_naive.tg --device gpu --dim n=6 --random 3 2>&1)
      rc=\$?; echo \"\$out\"; case \$out in *'gpu: no '*) exit 77 ;; esac; exit \$rc"
    step "gpu-test gpu (JIT engine against the interpreter)" 240 "$root/bin/gpu-test" gpu . --random 300
    step "test-ops (every op on every engine)" 240 "$root/bin/test-ops"
    step "test-grad (gradients on every engine)" 240 "$root/bin/test-grad" --jobs 8
    step "gpu-test placement" 60 "$root/bin/gpu-test" placement
    step "calibrate --quick" 240 "$tl" calibrate --quick -o "$out/profile.txt"
    for g in chain softmax log_softmax attention; do
      local dims=()
      [ "$g" != chain ] || dims=(--dim n=100000000)
      if [ -f "$out/profile.txt" ]; then
        step "cost-report bench/gpu/$g.tg" 120 env TLALOC_PROFILE="$out/profile.txt" "$tl" cost-report "bench/gpu/$g.tg" \
          "${dims[@]}" --runs 5 --time-limit 20
      fi
    done
    export TLALOC_LIBRARY="$root/bin/libtlaloc.so" PYTHONPATH=python
    if python3 -c "import pytest, numpy" 2> /dev/null; then
      step "tests/python/test_gpu.py" 120 python3 -m pytest -q -p no:cacheprovider tests/python/test_gpu.py
    elif python3 -c "import numpy" 2> /dev/null; then # no pytest there: the same check by hand
      step "python: tl.function(device=\"gpu\") against the interpreter" 120 python3 -c '
import numpy as np, tlaloc as tl
x = tl.tensor("x", "f32", ("n", 37))
ins, outs = [x], [tl.softmax(tl.exp(x) * 0.5, axis=1), tl.sum(x, axis=0)]
a = np.random.default_rng(3).standard_normal((5000, 37)).astype(np.float32)
want = tl.function(ins, outs, engine="interp")(a)
try:
    f = tl.function(ins, outs, device="gpu")
except tl.TlalocError as e:
    print("skipped:", e); raise SystemExit(77 if "gpu: no " in str(e) else 1)
for got, ref in zip(f(a), want):
    np.testing.assert_allclose(got, ref, rtol=1e-4, atol=1e-6)
print("device=gpu agrees with the interpreter on", [o.shape for o in want], "engine", f.stats["engine"])'
    else
      echo "== python: skipped (no numpy)"
    fi
    rm -rf "$root"
    echo "== gpu-jit check: $([ $fail = 0 ] && echo passed || echo FAILED)"
    return $fail
  }
  run_all 2>&1 | tee "$report"
  exit "${PIPESTATUS[0]}"
  ;;
*)
  echo "usage: scripts/gpu-jit.sh pack [BUILD_DIR] [DIR] | check [DIR] [REPORT]" >&2
  exit 2
  ;;
esac
