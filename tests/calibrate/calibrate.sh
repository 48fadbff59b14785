#!/bin/bash
# End-to-end tests of `tlaloc calibrate` and `tlaloc cost-report`: the
# profile a quick calibration writes is loadable and plausible, the profile
# location can be overridden, cost-report prints one row per kernel and a
# total, and bad input exits 2 with the right message.
# usage: calibrate.sh TLALOC SOURCE_DIR
set -u
TL=$1
SRC=$2
# shared counters, $tmp, the compile cache in $tmp, ok/bad/expect_status
. "$SRC/tests/common/check.sh"
export TLALOC_PROFILE="$tmp/default-profile.txt"

# expect_err DESCRIPTION TEXT: the last command's stderr has TEXT
expect_err() { grep -qF -- "$2" "$tmp/err" && ok || { bad "$1: stderr lacks '$2'"; cat "$tmp/err"; }; }
expect_out() { grep -qF -- "$2" "$tmp/out" && ok || { bad "$1: stdout lacks '$2'"; cat "$tmp/out"; }; }

# value KEY FILE: the number stored under KEY
value() { awk -v k="$1" '$1 == k { print $2 }' "$2"; }

# ---- calibrate --quick -o PATH ------------------------------------------
P="$tmp/p.txt"
start=$(date +%s)
expect_status 0 "calibrate --quick" "$TL" calibrate --quick -o "$P"
took=$(($(date +%s) - start))
[ "$took" -le 20 ] && ok || bad "calibrate --quick took ${took}s"
expect_out "calibrate" "profile written to $P"
expect_out "calibrate" "MiB, 1 thread"
[ -s "$P" ] && ok || bad "no profile at $P"
[ ! -e "$TLALOC_PROFILE" ] && ok || bad "-o must not write the default location"

# every number positive; the multi-thread figures not below half the
# single-thread ones; magnitudes a real machine can have
while read -r key val; do
  case $key in '#'* | cpu | vmath.* | blas.core | '') continue ;; esac
  # a row may cost nothing measurable; everything else takes time
  if [ "$key" = row_ns ]; then min=">="; else min=">"; fi
  awk -v v="$val" "BEGIN { exit !(v + 0 $min 0) }" && ok || bad "profile: $key = $val is not positive"
done <"$P"
check() { # check DESCRIPTION AWK-CONDITION
  awk -v bw1="$(value bw_1 "$P")" -v bwa="$(value bw_all "$P")" -v f1="$(value flops_1 "$P")" \
      -v fa="$(value flops_all "$P")" -v g32="$(value gemm_f32 "$P")" -v g64="$(value gemm_f64 "$P")" \
      -v ko="$(value kernel_overhead "$P")" -v ro="$(value run_overhead "$P")" \
      -v th="$(value threads "$P")" -v exp_="$(value elem.exp "$P")" -v f64="$(value f64_factor "$P")" \
      "BEGIN { exit !($2) }" && ok || { bad "profile: $1"; cat "$P"; }
}
# all threads against one: the suite runs two tests at once, so on a
# 2-core machine the other test takes a core from the all-threads run (a
# loaded run measured bw_all = 0.30 bw_1): a floor, not a ratio to expect
check "bw_all >= 0.15 bw_1" "bwa >= 0.15 * bw1"
check "bandwidth between 100 MB/s and 10 TB/s" "bw1 > 1e8 && bw1 < 1e13"
check "flops_all >= 0.15 flops_1" "fa >= 0.15 * f1"
check "f32 rate between 100 MFLOP/s and 100 TFLOP/s" "f1 > 1e8 && f1 < 1e14"
check "GEMM rates between 100 MFLOP/s and 100 TFLOP/s" "g32 > 1e8 && g32 < 1e14 && g64 > 1e8 && g64 < 1e14"
check "overheads below a millisecond" "ko < 1e-3 && ro < 1e-3"
check "threads >= 1" "th >= 1"
check "exp between 0.001 and 100 ns per element" "exp_ > 0.001 && exp_ < 100"
check "f64 math factor in [0.5, 16]" "f64 >= 0.5 && f64 <= 16"
for op in exp log log1p expm1 sqrt sin cos tanh sigmoid softplus erf pow div logaddexp logsumexp softmax log_softmax; do
  [ -n "$(value "elem.$op" "$P")" ] && [ -n "$(value "elem64.$op" "$P")" ] && ok || bad "profile lacks elem.$op or elem64.$op"
done
# cache levels: two bandwidths each, in increasing sizes
levels=$(grep -c '^mem\.[0-9]* [0-9.e+]* [0-9.e+]*$' "$P")
[ "$levels" -ge 3 ] && ok || bad "profile has $levels mem. levels"
grep '^mem\.' "$P" | sed 's/^mem\.//' | awk '{ if ($1 <= last) exit 1; last = $1 }' && ok || bad "mem. levels not increasing"

# which f32 exp and tanh the backend calls: measured, own or libmvec
for fn in exp tanh; do
  grep -Eq "^vmath\.$fn (own|libmvec)$" "$P" && ok || { bad "profile lacks vmath.$fn own|libmvec"; cat "$P"; }
done
# ... and the llvm engine follows the profile's choice: f32 exp tlaloc's own
# (no libmvec call in the optimised module), tanh libmvec's (a call)
grep -v '^vmath\.' "$P" >"$tmp/vm.txt"
printf 'vmath.exp own\nvmath.tanh libmvec\n' >>"$tmp/vm.txt"
printf '(graph vm (in x f32 [4096]) (let s (add (exp x) (tanh x))) (out y (add (neg s) (mul s 2))))\n' >"$tmp/vm.tg"
TLALOC_PROFILE="$tmp/vm.txt" TLALOC_CACHE_DIR="$tmp/vmcache" TLALOC_BE_DUMP=2 "$TL" run "$tmp/vm.tg" --random 1 \
  >/dev/null 2>"$tmp/vm.ll"
grep -q 'call <.*_tanhf(' "$tmp/vm.ll" && ! grep -q 'call <.*_expf(' "$tmp/vm.ll" && ok ||
  bad "the engine did not follow vmath.exp own / vmath.tanh libmvec"
sed -i 's/^vmath\.exp own$/vmath.exp libmvec/' "$tmp/vm.txt"
TLALOC_PROFILE="$tmp/vm.txt" TLALOC_CACHE_DIR="$tmp/vmcache" TLALOC_BE_DUMP=2 "$TL" run "$tmp/vm.tg" --random 1 \
  >/dev/null 2>"$tmp/vm.ll"
grep -q 'call <.*_expf(' "$tmp/vm.ll" && ok || bad "vmath.exp libmvec: the engine calls no libmvec exp"

# which OpenBLAS kernel set runs the GEMMs: where OpenBLAS offers a choice,
# calibrate times each set, records the one it chose, and the tools run it
# (over OPENBLAS_CORETYPE, as measured here); TLALOC_BLAS_TUNE=0 keeps
# OpenBLAS's own choice. A BLAS with no choice: said plainly, then skipped.
if grep -q 'OpenBLAS kernel set chosen' "$tmp/out"; then
  chosen=$(sed -n 's/^ *OpenBLAS kernel set chosen *//p' "$tmp/out")
  [ "$(value blas.core "$P")" = "$chosen" ] && ok || bad "profile's blas.core is not the chosen set '$chosen'"
  first=$(sed -n 's/^ *OpenBLAS \([A-Za-z0-9]*\) (at start).*/\1/p' "$tmp/out")
  [ -n "$first" ] && ok || bad "calibrate did not time the kernel set running at start"
  for core in $(sed -n 's/^ *OpenBLAS \([A-Za-z0-9]*\)[ :(].*GEMM.*/\1/p' "$tmp/out"); do
    grep -v '^blas\.core' "$P" >"$tmp/bc.txt"
    echo "blas.core $core" >>"$tmp/bc.txt"
    OPENBLAS_CORETYPE=$first TLALOC_PROFILE="$tmp/bc.txt" "$TL" cost-report "$SRC/examples/mlp_layer.tg" \
      --dim n=64 --runs 1 >"$tmp/out" 2>"$tmp/err"
    expect_out "profile naming $core" "BLAS: OpenBLAS kernel set $core"
    # the GEMM on that set computes what the interpreter does
    printf '(graph mm (in a f32 [67 300]) (in b f32 [300 45]) (out c (matmul a b)))\n' >"$tmp/mm.tg"
    TLALOC_PROFILE="$tmp/bc.txt" "$TL" run "$tmp/mm.tg" --random 3 >"$tmp/mm_jit.txt" 2>&1 &&
      "$TL" run "$tmp/mm.tg" --random 3 --interp >"$tmp/mm_int.txt" 2>&1 && ok || bad "matmul on $core did not run"
    cmp -s "$tmp/mm_jit.txt" "$tmp/mm_int.txt" && ok || python3 - "$tmp/mm_jit.txt" "$tmp/mm_int.txt" <<'PY' && ok || bad "matmul on $core differs from the interpreter"
import re, sys
a, b = (re.findall(r"-?\d+\.\d*(?:e[-+]?\d+)?|nan|inf", open(f).read()) for f in sys.argv[1:])
sys.exit(not (len(a) == len(b) > 0 and all(abs(float(x) - float(y)) <= 1e-4 * (1 + abs(float(y))) for x, y in zip(a, b))))
PY
  done
  TLALOC_BLAS_TUNE=0 OPENBLAS_CORETYPE=$first TLALOC_PROFILE="$tmp/bc.txt" "$TL" cost-report \
    "$SRC/examples/mlp_layer.tg" --dim n=64 --runs 1 >"$tmp/out" 2>"$tmp/err"
  expect_out "TLALOC_BLAS_TUNE=0" "BLAS: OpenBLAS kernel set $first"
else
  echo "skip: the BLAS offers no kernel-set choice here ($(grep -i 'OpenBLAS kernel set' "$tmp/out"))"
fi

# ---- the stored profile's location ----------------------------------------
# TLALOC_PROFILE names where calibrate writes and where cost-report reads
TLALOC_PROFILE="$tmp/env/p2.txt" expect_status 0 "calibrate to TLALOC_PROFILE" "$TL" calibrate --quick
[ -s "$tmp/env/p2.txt" ] && ok || bad "calibrate did not write \$TLALOC_PROFILE"

X="$SRC/examples/xent.tg"
M="$SRC/examples/mlp_layer.tg"
# report_rows: kernel rows and the kernel count of the total line agree
report_rows() {
  local rows total
  rows=$(grep -cE '^ *[0-9]+  ' "$tmp/out")
  total=$(sed -n 's/^total: \([0-9]*\) kernels*, be_run end to end.*/\1/p' "$tmp/out")
  [ -n "$total" ] && [ "$rows" = "$total" ] && [ "$rows" -ge 1 ] && ok ||
    { bad "$1: $rows kernel rows, total line says '$total'"; cat "$tmp/out"; }
  # every kernel row has a predicted and a measured time and a ratio
  if grep -E '^ *[0-9]+  ' "$tmp/out" | grep -vqE '(us|ms) +[0-9.]+ (us|ms) +[0-9.]+( \*)?$'; then
    bad "$1: a row lacks times"
    cat "$tmp/out"
  else ok; fi
}

TLALOC_PROFILE="$tmp/env/p2.txt" expect_status 0 "cost-report xent" "$TL" cost-report "$X" --dim n=2000 --runs 2
expect_out "cost-report xent" "profile: measured, $tmp/env/p2.txt"
expect_out "cost-report xent" "cost-report $X  (n=2000)"
report_rows "cost-report xent"

TLALOC_PROFILE="$P" expect_status 0 "cost-report mlp" "$TL" cost-report "$M" --dim n=256 --runs 2
expect_out "cost-report mlp" "profile: measured, $P"
report_rows "cost-report mlp"
grep -qE '^ *[0-9]+  matmul ' "$tmp/out" && ok || bad "cost-report mlp: no matmul kernel row"

# no stored profile: the defaults, and the report says so
TLALOC_PROFILE="$tmp/none.txt" expect_status 0 "cost-report, no profile" "$TL" cost-report "$X" --dim n=100 --runs 1
expect_out "cost-report, no profile" "profile: defaults"
report_rows "cost-report, no profile"

# ---- bad input: exit 2 with a clear message ------------------------------
printf 'bw_1 10\nbw_2 3\n' >"$tmp/bad.txt"
TLALOC_PROFILE="$tmp/bad.txt" expect_status 2 "malformed profile" "$TL" cost-report "$X" --dim n=10
expect_err "malformed profile" "$tmp/bad.txt:2: unknown key 'bw_2'"

for f in "$SRC"/tests/ir/malformed/attr_bad_type.tg "$SRC"/tests/ir/malformed/bad_dtype.tg; do
  want=$(grep -m1 '^; expect: ' "$f" | sed 's/^; expect: //')
  expect_status 2 "cost-report $f" "$TL" cost-report "$f"
  expect_err "cost-report $f" "$want"
  [ -s "$tmp/out" ] && bad "cost-report $f wrote a report" || ok
done
expect_status 2 "cost-report, missing file" "$TL" cost-report "$tmp/nope.tg"
expect_err "cost-report, missing file" "nope.tg"
expect_status 2 "cost-report, unbound dim" "$TL" cost-report "$X"
expect_err "cost-report, unbound dim" "symbolic dim 'n' has no size (bind it with --dim n=SIZE)"
expect_status 2 "cost-report, unknown dim" "$TL" cost-report "$X" --dim q=3
expect_err "cost-report, unknown dim" "--dim q=3: the graph has no symbolic dim 'q'"
expect_status 2 "cost-report, bad dim" "$TL" cost-report "$X" --dim n=-3
expect_err "cost-report, bad dim" "--dim expects SYM=SIZE"
expect_status 2 "cost-report, bad runs" "$TL" cost-report "$X" --dim n=3 --runs 0
expect_err "cost-report, bad runs" "--runs expects a count in 1..100000"
expect_status 2 "cost-report, no graph" "$TL" cost-report
expect_err "cost-report, no graph" "usage: tlaloc cost-report"
expect_status 2 "calibrate, bad option" "$TL" calibrate --fast
expect_err "calibrate, bad option" "unknown or incomplete option '--fast'"
expect_status 2 "calibrate, unwritable path" "$TL" calibrate --quick -o /proc/nope/p.txt
expect_err "calibrate, unwritable path" "/proc/nope"

check_summary "calibrate tests"
