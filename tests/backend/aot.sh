#!/bin/bash
# AOT end to end: compile examples with cli_cmd_compile, build examples/aot/main.c
# with plain cc (-lm -lmvec -lopenblas only), compare with the interpreter.
# Graphs with functions, conditionals and loops too: the object holds their
# branches and loops (a scan of zero steps at n=0).
set -euo pipefail
tool=$1; src=$2
work=$(mktemp -d); trap 'rm -rf "$work"' EXIT
fail=0
# a while loop (doubling until the sum reaches 10), the same with a
# post-condition, and one whose :max is too small (a run-time error)
mkdir -p "$work/ctl"
cat >"$work/ctl/doubling.tg" <<'G'
(func go (in x f64 [n]) (out c (lt (sum x) 10)))
(func until10 (in x f64 [n]) (out c (ge (sum x) 10)))
(func dbl (in x f64 [n]) (out y (mul x 2)))
(graph doubling
  (in x f64 [n])
  (in y f64 [3])
  (out a (loop (abs y) :cond go :body dbl :max 60))
  (out b (loop (add (abs y) 1) :cond go :body dbl :until until10 :max unbounded))
  (out c (call x :fn dbl)))
G
sed 's/:max 60/:max 1/' "$work/ctl/doubling.tg" >"$work/ctl/short.tg"
# derived dims (sizes computed from n), in the graph and in a function
# whose derived dims become the caller's; the header computes them
cat >"$work/ctl/derived.tg" <<'G'
(func thirds (in x f64 [k]) (out y (concat x (slice x :step 3))))
(graph derived
  (in x f64 [n])
  (in w f64 [n 3])
  (out a (concat x (slice x :step -2) :axis 0))
  (out b (mul (reshape w :shape [-1]) 2))
  (out c (call (exp x) :fn thirds))
  (out d (mul (sum x) (cast (dim w :axis 0) :dtype f64))))
G
for ex in layer_norm gelu logsumexp attention xent logreg_step control/cumsum_scan control/piecewise ctl derived; do
  case $ex in ctl) ex=doubling; exdir=$work/ctl ;; derived) exdir=$work/ctl ;; *) exdir=$src/examples ;; esac
  "$tool" compile "$exdir/$ex.tg" -o "$work/model.o" --header "$work/model.h" --name model
  cc -O2 -I"$work" "$src/examples/aot/main.c" "$work/model.o" -lm -lmvec -lopenblas -o "$work/prog"
  # the same program as C++, calling the outputs-into-buffers entry
  g++ -O2 -I"$work" -x c++ "$src/examples/aot/main.c" -x none "$work/model.o" -lm -lmvec -lopenblas -o "$work/prog++"
  for n in 4 0; do
    "$work/prog++" $n into > "$work/got++.txt"
    "$work/prog" $n > "$work/got.txt"
    cmp -s "$work/got.txt" "$work/got++.txt" || { echo "FAIL aot $ex n=$n: C++ into the caller's buffers differs from C"; fail=1; }
    "$tool" ref "$exdir/$ex.tg" $n > "$work/ref.txt"
    if ! paste "$work/got.txt" "$work/ref.txt" | awk '
        { a=$1; b=$2; if (a != b) { d=a-b; if (d<0) d=-d; m=(a<0?-a:a); if ((b<0?-b:b)>m) m=(b<0?-b:b);
          if (!(d <= 1e-4*m + 1e-5)) { print "mismatch line " NR ": " a " vs " b; bad=1 } } }
        END { exit bad }' || [ "$(wc -l < "$work/got.txt")" != "$(wc -l < "$work/ref.txt")" ]; then
      echo "FAIL aot $ex n=$n"; fail=1
    else
      echo "ok aot $ex n=$n ($(wc -l < "$work/got.txt") values)"
    fi
  done
done
# the loop past its :max: the object returns the loop's error code
# ((node << 4) | 4), as the interpreter refuses it
"$tool" compile "$work/ctl/short.tg" -o "$work/model.o" --header "$work/model.h" --name model
cc -O2 -I"$work" "$src/examples/aot/main.c" "$work/model.o" -lm -lmvec -lopenblas -o "$work/prog"
if "$work/prog" 4 >/dev/null 2>"$work/err.txt"; then
  echo "FAIL aot: a loop past its :max ran to the end"; fail=1
else
  code=$(sed -n 's/^model failed: \([0-9][0-9]*\)$/\1/p' "$work/err.txt")
  if [ -n "$code" ] && [ $((code & 15)) = 4 ]; then
    echo "ok aot: a loop past its :max returns its error (code $code)"
  else
    echo "FAIL aot: a loop past its :max: $(cat "$work/err.txt")"; fail=1
  fi
fi

# --cpu LEVEL: objects for older CPUs hold no wider registers than the
# level has (x86-64 and -v2: SSE only; -v3: AVX2, no AVX-512) and compute
# the same values; an unknown level is refused
# (and softmax over rows of 2-4 vectors: SSE's 4 f32 or 2 f64 lanes take
# other code there, the row images stored instead of permuted)
echo '(graph s (in x f32 [37 24]) (out y (log_softmax (mul x 3.0) :axis 1)))' > "$work/wide24.tg"
echo '(graph s (in x f32 [37 12]) (out y (log_softmax (mul x 3.0) :axis 1)))' > "$work/wide12.tg"
echo '(graph s (in x f64 [29 6]) (out y (softmax (mul x 3.0) :axis 1)))' > "$work/wide6.tg"
for ex in gelu layer_norm logreg_step wide24 wide12 wide6; do
  exf="$src/examples/$ex.tg"
  [ -f "$exf" ] || exf="$work/$ex.tg"
  for level in x86-64 x86-64-v2 x86-64-v3 x86-64-v4; do
    "$tool" compile "$exf" -o "$work/lv.o" --header "$work/model.h" --name model --cpu $level
    wide=$(objdump -d "$work/lv.o" | grep -cE 'ymm|zmm' || true)
    z=$(objdump -d "$work/lv.o" | grep -c zmm || true)
    case $level in
      x86-64|x86-64-v2) [ "$wide" = 0 ] || { echo "FAIL aot --cpu $level: $wide ymm/zmm instructions"; fail=1; } ;;
      x86-64-v3) [ "$z" = 0 ] || { echo "FAIL aot --cpu $level: $z zmm instructions"; fail=1; } ;;
    esac
    if [ $level = x86-64-v4 ] && ! grep -q avx512f /proc/cpuinfo; then continue; fi # cannot run here
    cc -O2 -I"$work" "$src/examples/aot/main.c" "$work/lv.o" -lm -lmvec -lopenblas -o "$work/lvprog"
    "$work/lvprog" 4 > "$work/got.txt"
    "$tool" ref "$exf" 4 > "$work/ref.txt"
    if paste "$work/got.txt" "$work/ref.txt" | awk '
        { a=$1; b=$2; d=a-b; if (d<0) d=-d; m=(a<0?-a:a); if ((b<0?-b:b)>m) m=(b<0?-b:b);
          if (!(d <= 1e-4*m + 1e-5)) bad=1 } END { exit bad }'; then
      echo "ok aot $ex --cpu $level"
    else
      echo "FAIL aot $ex --cpu $level: values differ from the interpreter"; fail=1
    fi
  done
done
if "$tool" compile "$src/examples/gelu.tg" -o "$work/lv.o" --cpu pentium 2>"$work/err.txt"; then
  echo "FAIL aot: --cpu pentium accepted"; fail=1
elif ! grep -q "expected x86-64, x86-64-v2" "$work/err.txt"; then
  echo "FAIL aot: --cpu pentium: $(cat "$work/err.txt")"; fail=1
fi

# TLALOC_NO_AVX512=1: no 512-bit register anywhere in the object (on a host
# with AVX-512, where the default code uses zmm registers)
if grep -q avx512f /proc/cpuinfo 2>/dev/null && command -v objdump >/dev/null; then
  "$tool" compile "$src/examples/gelu.tg" -o "$work/wide.o"
  TLALOC_NO_AVX512=1 "$tool" compile "$src/examples/gelu.tg" -o "$work/narrow.o"
  # disassembly to files: `objdump | grep -q` fails under pipefail when grep
  # stops reading early (objdump gets SIGPIPE)
  objdump -d "$work/wide.o" >"$work/wide.s"
  objdump -d "$work/narrow.o" >"$work/narrow.s"
  if ! grep -q zmm "$work/wide.s"; then
    echo "FAIL aot: the default object has no zmm code on an AVX-512 host (the check would prove nothing)"; fail=1
  elif grep -q zmm "$work/narrow.s"; then
    echo "FAIL aot: TLALOC_NO_AVX512=1 still emits zmm code"; fail=1
  else
    echo "ok aot: TLALOC_NO_AVX512=1 emits no zmm code"
  fi
else
  echo "skipped: the TLALOC_NO_AVX512 check (no AVX-512 on this host, or no objdump)"
fi
exit $fail
