#!/bin/bash
# GPU ahead of time, end to end: `tlaloc compile --target ptx` on examples;
# the launcher it writes compiles with plain cc under -std=c11 -Wall -Wextra
# -Werror -pedantic, with no CUDA header (the runtime declares the driver
# API itself); examples/aot/main.c, written for the CPU's AOT header, links
# it with -ldl -lpthread and nothing of CUDA or tlaloc. Without a GPU the
# program must fail saying why (no driver, no GPU); with one its outputs
# must match the interpreter's (be-tool ref, as tests/backend/aot.sh).
set -euo pipefail
tlaloc=$1; tool=$2; src=$3
work=$(mktemp -d); trap 'rm -rf "$work"' EXIT
cat > "$work/why.c" <<'C'
#include "model.h"
#include <stdio.h>
int main(void) {
  int rc = model_init();
  printf("%s\n", rc ? model_error() : "ready");
  return rc ? 1 : 0;
}
C
fail=0 ran=0 built=0
for ex in layer_norm gelu logsumexp attention xent matmul_chain logreg_nll; do
  if ! "$tlaloc" compile "$src/examples/$ex.tg" --target ptx -o "$work/model.ptx" --header "$work/model.h" \
      --name model 2> "$work/compile.txt"; then
    # without the CUDA toolkit's libdevice only f32 exp, log, log1p and tanh
    # have code of their own: the other math functions are refused
    if grep -q "needs libdevice" "$work/compile.txt"; then
      echo "skip aot $ex: $(grep -o 'the math function [a-z0-9]* on [a-z0-9]* needs libdevice' "$work/compile.txt") (no CUDA toolkit here)"
    else
      echo "FAIL aot $ex: $(cat "$work/compile.txt")"; fail=1
    fi
    continue
  fi
  built=$((built + 1))
  cc -std=c11 -O2 -Wall -Wextra -Werror -pedantic -I"$work" -c "$work/model_launch.c" -o "$work/launch.o"
  cc -O2 -I"$work" "$src/examples/aot/main.c" "$work/launch.o" -ldl -lpthread -lm -o "$work/prog"
  cc -O2 -I"$work" "$work/why.c" "$work/launch.o" -ldl -lpthread -o "$work/why"
  if nm -u "$work/prog" | grep -q -E ' (cu[A-Z]|cublas)'; then
    echo "FAIL aot $ex: the program links CUDA symbols"; fail=1; continue
  fi
  if ! why=$("$work/why"); then
    case "$why" in
      "gpu: no CUDA driver ("*|"gpu: no GPU ("*)
        echo "ok   aot $ex: launcher built (PTX $(wc -c < "$work/model.ptx") bytes); no GPU here: $why" ;;
      *) echo "FAIL aot $ex: init failed: $why"; fail=1 ;;
    esac
    continue
  fi
  ran=1
  for n in 4 0 37; do
    "$work/prog" $n > "$work/got.txt"
    "$tool" ref "$src/examples/$ex.tg" $n > "$work/ref.txt"
    if ! paste "$work/got.txt" "$work/ref.txt" | awk '
        { a=$1; b=$2; if (a != b) { d=a-b; if (d<0) d=-d; m=(a<0?-a:a); if ((b<0?-b:b)>m) m=(b<0?-b:b);
          if (!(d <= 1e-4*m + 1e-5)) { print "mismatch line " NR ": " a " vs " b; bad=1 } } }
        END { exit bad }' || [ "$(wc -l < "$work/got.txt")" != "$(wc -l < "$work/ref.txt")" ]; then
      echo "FAIL aot $ex n=$n on the GPU"; fail=1
    else
      echo "ok   aot $ex n=$n on the GPU ($(wc -l < "$work/got.txt") values)"
    fi
  done
done
[ $ran = 1 ] || echo "(the launchers were built and linked; running them needs a GPU)"
[ $built -gt 0 ] || { echo "FAIL aot: no example compiled"; fail=1; }
exit $fail
