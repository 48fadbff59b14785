#!/bin/bash
# The control-flow rules (rules/control.rw) on small programs: each case
# says what the optimizer should do to it (`; expect-absent: TEXT` not in
# the optimized program, `; expect-present: TEXT` in it, `; expect-graph:
# TEXT` computed by the graph itself, outside every function), and the
# optimized program, compiled, must compute what the original does under
# the interpreter, on random inputs. Then malformed control rules.
# usage: control.sh TLALOC SOURCE_DIR
set -u
TL=$1
SRC=$2
. "$SRC/tests/common/check.sh"
# the sizes of the graph's symbolic dims: n=5 d=4 t=3
dims_of() {
  local sy out=""
  for sy in n=5 d=4 t=3; do
    sed -n '/^(graph/,$p' "$1" | grep -qE "\(in [A-Za-z0-9_]+ [a-z0-9]+ \[[^]]*\b${sy%=*}\b" && out="$out --dim $sy"
  done
  echo "$out"
}

same_values() { # DIR_A DIR_B CASE
  /usr/bin/python3 - "$1" "$2" "$3" <<'PY'
import sys, os, numpy as np
a, b, name = sys.argv[1:]
for f in sorted(os.listdir(a)):
    x, y = np.load(os.path.join(a, f)), np.load(os.path.join(b, f))
    # rounding: f32 sums in another order (a batched product, a fused
    # kernel) differ by a few ulps of the output's scale
    scale = float(np.max(np.abs(x[np.isfinite(x)]))) if np.isfinite(x).any() else 1.0
    if x.shape != y.shape or not np.allclose(x, y, rtol=1e-5, atol=1e-5 * max(1.0, scale), equal_nan=True):
        sys.exit(f"{name}: output {f} differs:\n{x}\n{y}")
PY
}

for f in "$SRC"/tests/opt/control/*.tg; do
  name=$(basename "$f" .tg)
  o="$tmp/$name.opt.tg"
  if ! "$TL" opt "$f" >"$o" 2>"$tmp/err"; then
    bad "$name: tlaloc opt failed"
    cat "$tmp/err"
    continue
  fi
  sed -n '/^(graph/,$p' "$o" >"$tmp/graph"
  while IFS= read -r line; do
    case "$line" in
    "; expect-absent: "*)
      w=${line#; expect-absent: }
      if grep -qF "$w" "$o"; then bad "$name: '$w' is still in the optimized program"; else ok; fi ;;
    "; expect-present: "*)
      w=${line#; expect-present: }
      if grep -qF "$w" "$o"; then ok; else bad "$name: '$w' is not in the optimized program"; fi ;;
    "; expect-graph: "*)
      w=${line#; expect-graph: }
      if grep -qF "$w" "$tmp/graph"; then ok; else bad "$name: the graph does not compute '$w' itself"; cat "$o"; fi ;;
    esac
  done <"$f"
  dims=$(dims_of "$f")
  for seed in 1 2 3; do
    rm -rf "$tmp/in" "$tmp/a" "$tmp/b"
    # shellcheck disable=SC2086
    if ! "$TL" run "$f" --interp --random $seed $dims --save-inputs "$tmp/in" --out "$tmp/a" >/dev/null 2>"$tmp/err"; then
      bad "$name: the interpreter failed"
      cat "$tmp/err"
      continue
    fi
    ins=""
    for i in "$tmp"/in/*.npy; do ins="$ins --in $(basename "$i" .npy)=$i"; done
    # shellcheck disable=SC2086
    if ! "$TL" run "$o" $ins $dims --out "$tmp/b" >/dev/null 2>"$tmp/err"; then
      bad "$name: the optimized program failed"
      cat "$tmp/err"
      continue
    fi
    if same_values "$tmp/a" "$tmp/b" "$name"; then ok; else bad "$name: seed $seed"; fi
  done
done

# Malformed control rules: exit 2, file:line:col and what is wrong.
bad_rule() { # RULE-TEXT EXPECTED-MESSAGE
  printf '(ruleset c\n  %s)\n' "$1" >"$tmp/bad.rw"
  expect_status 2 "bad control rule: $1" "$TL" opt "$SRC/tests/opt/control/small3.tg" --rules "$tmp/bad.rw"
  if grep -qF "$2" "$tmp/err"; then ok; else bad "'$1': stderr lacks '$2'"; cat "$tmp/err"; fi
}
bad_rule '(control a (add :fn ?f) => (inline ?f))' "bad.rw:2:15: error: 'add' is not a control op"
bad_rule '(control a (call :then ?f) => (inline ?f))' "bad.rw:2:20: error: op 'call' has no function under ':then'"
bad_rule '(control a (call :fn ?f) => (unroll ?f))' "bad.rw:2:32: error: 'unroll' is not a control op or a transformation (inline, hoist-invariant, hoist-common, hoist-sequence, sum-after)"
bad_rule '(control a (call :fn ?f) => (inline ?g))' "bad.rw:2:39: error: unbound variable '?g' on the right side"
bad_rule '(control a (cond ?p :then ?f :else ?g) => (call :fn ?f) :if (same-fn ?p ?f))' "does not take '?p' as argument 1"
bad_rule '(control a (cond ?p :then ?f :else ?g) => (call :fn ?f) :if (nonzero ?f))' "does not take '?f' as argument 1"
bad_rule '(control a (cond ?p :then ?f :else ?g) => (call ?f :fn ?f))' "'?f' is a function variable, used as an operand"

check_summary control-rules
