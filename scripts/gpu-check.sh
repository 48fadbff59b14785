#!/bin/bash
# gpu-check.sh - tlaloc's GPU kernels on a GPU machine that has the NVIDIA
# driver, the CUDA 13 toolkit, gcc and python3 (numpy, PyTorch), but no
# LLVM and no package registry: it builds what it needs from the folder
# scripts/gpu-prepare.sh made (at most 64 MiB), runs the differential
# checks and the benchmarks, and writes one report, within 5 minutes.
#
#   scripts/gpu-check.sh [CARRY_DIR] [REPORT]     (gpu-carry, CARRY_DIR/report.txt)
#
# 1. builds every launcher (the GPU runtime, the program's tables and PTX, in
#    one C file) with its driver, and the benchmark program, with gcc alone;
# 2. runs each differential case: the program on the carried inputs against
#    the reference interpreter's outputs computed where it was prepared (or
#    the interpreter's refusal); the driver compiles the PTX for the GPU it
#    finds (CUDA's JIT), and cuBLAS computes f32/f64 matmul where libcublas
#    loads (CUDA_HOME/lib64 is searched too);
# 3. bench/gpu: the fused chain and a loss (n = 10^8), a column sum, softmax / log_softmax over
#    4096 x 32768 against the device-to-device copy bandwidth measured in
#    the same run, attention at t = 4096, d = 64; then PyTorch on the same
#    shapes (and attention's output compared with PyTorch's), and a table
#    of tlaloc's time against PyTorch's per benchmark ("VS" lines);
# 4. the PTX compile times measured where the folder was prepared.
#
# Without a driver or a GPU every build step still runs and the report says
# "no GPU" with the reason (exit 0); a failed check or build exits 1.
set -uo pipefail
carry=${1:-gpu-carry}
report=${2:-$carry/report.txt}
[ -d "$carry/diff" ] || { echo "gpu-check: $carry is not a folder of scripts/gpu-prepare.sh" >&2; exit 2; }
CC=${CC:-gcc}
t0=$(date +%s)
fail=0

check() {
echo "== tlaloc gpu-check, $(date -u '+%Y-%m-%d %H:%M UTC') on $(hostname)"
cat "$carry/manifest.txt"
if command -v nvidia-smi > /dev/null; then
  nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader 2>&1 | sed 's/^/nvidia-smi: /'
else
  echo "nvidia-smi: not found"
fi
echo "compiler: $($CC --version | head -1)"

echo "== 1. build (gcc, no LLVM, no CUDA header)"
jobs=$(nproc 2> /dev/null || echo 4)
build_one() { # a case's driver and launcher, in the background
  "$CC" -std=c11 -O2 -I"$1" "$carry/driver.c" "$1/model_launch.c" -ldl -lpthread -lm -o "$1/run" 2> "$1/build.txt"
}
pids=()
for d in "$carry"/diff/*/; do
  build_one "${d%/}" &
  pids+=($!)
  if [ ${#pids[@]} -ge "$jobs" ]; then wait "${pids[@]}"; pids=(); fi
done
[ ${#pids[@]} = 0 ] || wait "${pids[@]}"
nbuilt=0
for d in "$carry"/diff/*/; do
  d=${d%/}
  if [ -x "$d/run" ] && [ ! -s "$d/build.txt" ]; then nbuilt=$((nbuilt + 1))
  elif [ ! -x "$d/run" ]; then echo "FAIL build $d:"; cat "$d/build.txt"; fail=1; fi
done
bench_ok=1
if ! "$CC" -std=c11 -O2 -I"$carry/bench" "$carry/launch_bench.c" "$carry"/bench/*_launch.c -ldl -lpthread -lm \
    -o "$carry/bench/run"; then
  echo "FAIL build of the benchmarks"; fail=1; bench_ok=0
fi
echo "built $nbuilt differential programs and the benchmark program in $(( $(date +%s) - t0 )) s"

echo "== 2. differential checks against the interpreter"
export CUDA_HOME=${CUDA_HOME:-/usr/local/cuda}
export LD_LIBRARY_PATH="${LD_LIBRARY_PATH:+$LD_LIBRARY_PATH:}$CUDA_HOME/lib64"
nok=0 nfail=0 nogpu=""
for d in "$carry"/diff/*/; do
  d=${d%/}
  [ -x "$d/run" ] || continue
  line=$(timeout 60 "$d/run" "$d")
  rc=$?
  case $rc in
    0) nok=$((nok + 1)) ;;
    3) nogpu=${line#*: }; break ;;
    *) echo "${line:-FAIL $d: exit $rc}"; nfail=$((nfail + 1)); fail=1 ;;
  esac
done
if [ -n "$nogpu" ]; then
  echo "no GPU: $nogpu"
  echo "(everything above ran; the differential checks, the benchmarks and PyTorch need a GPU)"
  echo "== gpu-check: no GPU, builds ok=$([ $fail = 0 ] && echo yes || echo no), $(( $(date +%s) - t0 )) s"
  return $fail
fi
echo "differential: $nok ok, $nfail failed (of $(ls -d "$carry"/diff/*/ | wc -l))"

echo "== 3. benchmarks (CUDA events; bandwidth: the bytes a kernel must move)"
bout="$carry/bench/out.txt"
: > "$bout"
if [ $bench_ok = 1 ]; then
  timeout 150 "$carry/bench/run" "$carry/bench" | tee -a "$bout"
  rc=${PIPESTATUS[0]}
  [ "$rc" = 0 ] || { echo "FAIL the benchmark program (exit $rc)"; fail=1; }
fi
if command -v python3 > /dev/null; then
  timeout 150 python3 "$carry/torch_bench.py" "$carry/bench" | tee -a "$bout"
  rc=${PIPESTATUS[0]}
  [ "$rc" = 0 ] || { echo "FAIL torch_bench (exit $rc)"; fail=1; }
else
  echo "TORCH unavailable reason=\"no python3\"" | tee -a "$bout"
fi
echo "== 3b. tlaloc against PyTorch (ms per call, lower is better; ratio = tlaloc / PyTorch)"
awk '
  function ms(line) { if (match(line, /ms=[0-9.eE+-]+/)) return substr(line, RSTART + 3, RLENGTH - 3); return "" }
  $1 == "BENCH" && (ms($0) != "") { t[$2] = ms($0) }
  $1 == "TORCH" && (ms($0) != "") { m = "eager"; if (match($0, /mode=[a-z-]+/)) m = substr($0, RSTART + 5, RLENGTH - 5)
                                    p[$2 " (" m ")"] = ms($0); pn[$2 " (" m ")"] = $2 }
  END {
    n = 0
    for (k in p) if (pn[k] in t) { printf "VS %-36s tlaloc %10.4f  torch %10.4f  ratio %.2f\n", k, t[pn[k]], p[k], t[pn[k]] / p[k]; n++ }
    if (!n) print "VS none: no benchmark had both a tlaloc and a PyTorch time"
  }' "$bout" | sort

echo "== 4. PTX compile time per program (measured where the folder was prepared; no GPU needed)"
[ -f "$carry/compile_times.txt" ] && cat "$carry/compile_times.txt" || echo "(not measured)"

echo "== gpu-check: $([ $fail = 0 ] && echo passed || echo FAILED) in $(( $(date +%s) - t0 )) s; report $report"
return $fail
}

check 2>&1 | tee "$report"
exit "${PIPESTATUS[0]}"
