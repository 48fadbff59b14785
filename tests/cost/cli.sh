#!/bin/bash
# The cost options of `tlaloc opt`: --cost, --extract, --time-limit,
# --plugin, their errors (exit 2, a message naming the column or the
# property), and --stats' extraction lines.
# usage: cli.sh TLALOC SOURCE_DIR ENERGY_PLUGIN.so
set -u
TL=$1
SRC=$2
PLUGIN=$3
# shared counters, $tmp, the compile cache in $tmp, ok/bad/expect_status
. "$SRC/tests/common/check.sh"
export TLALOC_PROFILE="$tmp/no-profile.txt" # the built-in defaults, whatever is stored

# expect_err TEXT DESCRIPTION: the last command's stderr has TEXT
expect_err() { if grep -qF -- "$1" "$tmp/err"; then ok; else bad "$2: stderr lacks '$1'"; cat "$tmp/err"; fi; }
expect_out() { if grep -qF -- "$1" "$tmp/out"; then ok; else bad "$2: stdout lacks '$1'"; cat "$tmp/out"; fi; }

R=(--rules "$SRC/rules/algebraic.rw" --rules "$SRC/rules/stability.rw")
cat >"$tmp/wide.tg" <<'G'
(graph chain (in A f32 [10 1000]) (in B f32 [1000 10]) (in C f32 [10 1000])
  (out D (matmul A (matmul B C))))
G
cat >"$tmp/mem.tg" <<'G'
(graph m (in A f32 [400 90]) (in B f32 [90 25]) (in C f32 [25 90])
  (out D (matmul (matmul A B) C)))
G
cat >"$tmp/energy.tg" <<'G'
(graph e (in A f32 [512 40]) (in B f32 [40 10]) (in C f32 [10 25])
  (out D (matmul (matmul A B) C)))
G

# time picks the cheap order with every extractor
for k in tree dag exact; do
  expect_status 0 "--cost time --extract $k" "$TL" opt "$tmp/wide.tg" "${R[@]}" --cost time --extract $k
  expect_out "(matmul (matmul A B) C)" "time, $k"
done
# memory and time disagree; --stats reports the extraction and the peak
expect_status 0 "--cost time --stats" "$TL" opt "$tmp/mem.tg" "${R[@]}" --cost time --stats
expect_out "(matmul (matmul A B) C)" "time on mem.tg"
expect_err "extraction: dag over" "--stats extraction line"
expect_err "peak memory 184000 bytes" "--stats peak (time)"
expect_status 0 "--cost memory --stats" "$TL" opt "$tmp/mem.tg" "${R[@]}" --cost memory --stats
expect_out "(matmul A (matmul B C))" "memory on mem.tg"
expect_err "peak memory 176400 bytes" "--stats peak (memory)"
expect_status 0 "--cost 'time + 1e-9*memory'" "$TL" opt "$tmp/mem.tg" "${R[@]}" --cost "time + 1e-9*memory"
# the energy plugin
expect_status 0 "--plugin --cost energy" "$TL" opt "$tmp/energy.tg" "${R[@]}" --plugin "$PLUGIN" --cost energy
expect_out "(matmul A (matmul B C))" "energy"
expect_status 0 "--plugin --cost time" "$TL" opt "$tmp/energy.tg" "${R[@]}" --plugin "$PLUGIN" --cost time --stats
expect_out "(matmul (matmul A B) C)" "time with the plugin loaded"
expect_err "energy=" "--stats shows the plugin's property"
# the optimized output runs and equals the interpreter on the original
"$TL" opt "$tmp/energy.tg" "${R[@]}" --plugin "$PLUGIN" --cost energy -o "$tmp/e2.tg" 2>"$tmp/err" || bad "opt -o"
"$TL" run "$tmp/energy.tg" --random 3 --interp --out "$tmp/r1" >/dev/null 2>&1 || bad "run original"
"$TL" run "$tmp/e2.tg" --random 3 --interp --out "$tmp/r2" >/dev/null 2>&1 || bad "run optimized"
if /usr/bin/python3 -c 'import numpy' 2>/dev/null; then
  /usr/bin/python3 -c "
import numpy as np, sys
a, b = np.load('$tmp/r1/D.npy'), np.load('$tmp/r2/D.npy')
sys.exit(0 if np.allclose(a, b, rtol=1e-4, atol=1e-5) else 1)" && ok || bad "energy's program differs from the original"
fi
# the default objective still picks the stable forms
expect_status 0 "default cost" "$TL" opt "$SRC/examples/log_softmax_naive.tg" --rules "$SRC/rules"
expect_out "log_softmax x" "default cost keeps log_softmax"
expect_status 0 "--explain shows own costs" "$TL" opt "$SRC/examples/softplus_naive.tg" "${R[@]}" --explain
expect_err "candidates in its e-class under 'time + accuracy + 1e-8*code' (own cost, best tree cost" "--explain header"
expect_err "program (dag extraction): cost" "--explain program line"

# errors: exit 2 with the column or the name
X="$SRC/examples/xent.tg"
expect_status 2 "bad expression" "$TL" opt "$X" --cost "time +* 2"
expect_err "cost expression 'time +* 2': column 7: expected a property, a number or '(', not '*'" "parse error message"
expect_status 2 "unknown property" "$TL" opt "$X" --cost "time + energy"
expect_err "column 8: unknown property 'energy'" "unknown property message"
expect_status 2 "unbalanced" "$TL" opt "$X" --cost "(time"
expect_err "column 6: expected ')' to close the '(' of column 1" "paren message"
expect_status 2 "bad --extract" "$TL" opt "$X" --extract greedy
expect_err "--extract is tree, dag or exact, not 'greedy'" "--extract message"
expect_status 2 "bad --time-limit" "$TL" opt "$X" --time-limit -1
expect_status 2 "missing plugin" "$TL" opt "$X" --plugin "$tmp/none.so"
expect_err "plugin $tmp/none.so: cannot load it" "missing plugin message"
# a truncated plugin is refused before dlopen maps it (which died of SIGBUS)
for n in 100 3000 10000 $(($(stat -c %s "$PLUGIN") - 100)); do
  head -c "$n" "$PLUGIN" >"$tmp/trunc.so"
  expect_status 2 "plugin truncated to $n bytes" "$TL" opt "$X" --plugin "$tmp/trunc.so"
  expect_err "trunc.so: cannot load it:" "truncated plugin message"
done
echo "not an ELF file" >"$tmp/text.so"
expect_status 2 "plugin that is not ELF" "$TL" opt "$X" --plugin "$tmp/text.so"
expect_err "text.so: cannot load it: not an ELF file" "non-ELF plugin message"
expect_status 2 "plugin that is a folder" "$TL" opt "$X" --plugin "$tmp"
expect_err "is a folder, not a file" "folder plugin message"
expect_status 2 "not a plugin" "$TL" opt "$X" --plugin libm.so.6
expect_err "has no 'tlaloc_plugin_init'" "not-a-plugin message"
expect_status 2 "--cost on prove" "$TL" prove "$X" "$X" --cost time
expect_err "apply to opt only" "--cost on prove message"
expect_status 2 "NaN objective" "$TL" opt "$X" --cost "time / memory"
expect_err "is NaN on op" "NaN objective message"
echo "bad" >"$tmp/profile.txt"
TLALOC_PROFILE="$tmp/profile.txt" expect_status 2 "malformed profile" "$TL" opt "$X"
expect_err "machine profile:" "malformed profile message"

check_summary
