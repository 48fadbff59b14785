#!/bin/bash
# Hostile inputs to the tlaloc program: malformed .npy headers, endless
# files, deep rule patterns, long lines. Each must end in a clear message
# and exit 2, quickly and in bounded memory, never a crash or a hang.
# usage: inputs.sh TLALOC SOURCE_DIR
set -u
TL=$1
SRC=$2
# shared counters, $tmp, the compile cache in $tmp, ok/bad/expect_status
. "$SRC/tests/common/check.sh"

expect_err() { if grep -qF -- "$1" "$tmp/err"; then ok; else bad "$2: stderr lacks '$1'"; head -c 2000 "$tmp/err"; fi; }
# npy HEADER [DATA]: a .npy 1.0 file with that header dict (no padding)
npy() {
  local n=${#1}
  printf '\x93NUMPY\x01\x00'"$(printf '\\x%02x\\x%02x' $((n & 255)) $((n >> 8)))"
  printf '%s' "$1"
  [ $# -gt 1 ] && printf '%s' "$2"
}
X="$SRC/examples/xent.tg"

# .npy headers whose scans used to run past the header's end
npy "{'descr':" >"$tmp/a.npy"
expect_status 2 "npy: header ends after 'descr':" "$TL" run "$X" --in x="$tmp/a.npy" --random 1 --interp
expect_err "a.npy: header has no 'descr' string" "npy: no descr value"
{ npy "{'descr':   " "'"; head -c 1048576 /dev/zero | tr '\0' A; } >"$tmp/b.npy"
expect_status 2 "npy: quote after the header" "$TL" run "$X" --in x="$tmp/b.npy" --random 1 --interp
expect_err "b.npy: header has no 'descr' string" "npy: quote after the header"
npy "{'descr': '<f4', 'fortran_order': False, 'shape': (1" 2345678 >"$tmp/c.npy"
expect_status 2 "npy: shape cut short" "$TL" run "$X" --in x="$tmp/c.npy" --random 1 --interp
expect_err "c.npy: malformed 'shape'" "npy: shape cut short"

# 136 bytes declaring a billion f8: refused before the 8 GB are allocated.
# Under a 2 GB address-space limit the allocation would fail first; the
# sanitizer build cannot start under such a limit, so it skips this.
h="{'descr': '<f8', 'fortran_order': False, 'shape': (1000000000,), }"
{ npy "$h$(printf '%*s' $((117 - ${#h})) '')"$'\n'; head -c 8 /dev/zero; } >"$tmp/big.npy"
[ "$(stat -c %s "$tmp/big.npy")" = 136 ] && ok || bad "big.npy is not 136 bytes"
if (ulimit -v 2000000 && "$TL" help) >/dev/null 2>&1; then
  (ulimit -v 2000000 && exec "$TL" run "$X" --in x="$tmp/big.npy" --random 1 --interp) >"$tmp/out" 2>"$tmp/err"
  [ $? = 2 ] && ok || bad "npy: billion f8 under a memory limit: exit not 2"
  expect_err "big.npy: data is truncated (8 bytes, shape needs 8000000000)" "npy: size checked before allocating"
fi

# Endless or unbounded inputs: refused at the size limit, not read forever.
expect_status 2 "fmt /dev/zero" timeout 60 "$TL" fmt /dev/zero
expect_err "/dev/zero: not a regular file and longer than the input limit of 64 MiB" "fmt /dev/zero"
expect_status 2 "check-rules /dev/zero" timeout 60 "$TL" check-rules /dev/zero
expect_err "/dev/zero: error: not a regular file and longer than the input limit of 64 MiB" "check-rules /dev/zero"
expect_status 2 "extract /dev/zero" timeout 60 "$TL" extract /dev/zero
expect_err "/dev/zero: error: not a regular file and longer than the input limit of 64 MiB" "extract /dev/zero"
expect_status 2 "run --in x=/dev/zero" timeout 60 "$TL" run "$X" --in x=/dev/zero --random 1 --dim n=2
expect_err "/dev/zero: not a .npy file (bad magic)" "run --in x=/dev/zero"
expect_status 2 "fmt of a folder" "$TL" fmt "$SRC/examples"
expect_err "examples: is a folder, not a file" "fmt of a folder"
# a pipe is read like a file, within the limit
expect_status 0 "fmt from a pipe" bash -c "cat '$X' | '$TL' fmt /dev/stdin"

# A rule pattern 5000 deep: a file:line:col error, not a stack overflow;
# the quoted line is a window around the column, not the whole line.
{
  printf '(ruleset deep\n  (rule deep '
  for _ in $(seq 5000); do printf '(neg '; done
  printf '?x'
  for _ in $(seq 5000); do printf ')'; done
  printf ' => ?x))\n'
} >"$tmp/deep.rw"
expect_status 2 "check-rules deep.rw" "$TL" check-rules "$tmp/deep.rw"
expect_err "deep.rw:2:5014: error: pattern nested more than 1000 deep" "check-rules deep.rw"
[ "$(wc -c <"$tmp/err")" -lt 1000 ] && ok || bad "check-rules deep.rw: $(wc -c <"$tmp/err") bytes of diagnostics"
expect_status 2 "opt --rules deep.rw" "$TL" opt "$X" --rules "$tmp/deep.rw"
expect_err "deep.rw:2:5014: error: pattern nested more than 1000 deep" "opt --rules deep.rw"

# Condition arguments of the wrong kind: refused when the rules are read
# (an atom where a variable belongs reached the condition as e-class
# EG_NONE and crashed opt; an attribute variable read another id's data).
cat >"$tmp/cond.tg" <<'G'
(graph g (in x f32 [3 4]) (out y (add (sum x :axis 1) 0)))
G
cat >"$tmp/cond1.rw" <<'G'
(ruleset r
  (rule add0 (add ?x 0) => ?x :if (numeric 111?x)))
G
cat >"$tmp/cond2.rw" <<'G'
(ruleset r
  (rule sumx (sum ?x :axis ?a) => (sum ?x :axis ?a) :if (numeric ?a)))
G
cat >"$tmp/cond3.rw" <<'G'
(ruleset r
  (rule add0 (add ?x 0) => ?x :if (dtype ?x ?x)))
G
expect_status 2 "condition with an atom for a variable" "$TL" opt "$tmp/cond.tg" --rules "$tmp/cond1.rw"
expect_err "cond1.rw:2:44: error: condition 'numeric' takes a ?variable of the pattern as argument 1, not '111?x'" "atom for a variable"
expect_status 2 "condition with an attribute variable" "$TL" opt "$tmp/cond.tg" --rules "$tmp/cond2.rw"
expect_err "cond2.rw:2:66: error: condition 'numeric' takes an operand as argument 1; '?a' is an attribute variable" "attribute variable"
expect_status 2 "condition with a variable for an atom" "$TL" check-rules "$tmp/cond3.rw"
expect_err "cond3.rw:2:45: error: condition 'dtype' takes an atom as argument 2, not the variable '?x'" "variable for an atom"

# 'in' and 'const' in a rule: their payload indexes the program's inputs
# and tensors, which a rule cannot name (the analysis read past its tables).
for rhs in "(const)" "const" "(in)" "in"; do
  printf '(ruleset r\n  (rule w (add ?x 0) => %s))\n' "$rhs" >"$tmp/leaf.rw"
  expect_status 2 "rule writing $rhs" "$TL" opt "$tmp/cond.tg" --rules "$tmp/leaf.rw"
  expect_err "leaf.rw:2:2" "rule writing $rhs: position"
  expect_err "cannot be written in a pattern" "rule writing $rhs: message"
done

# A deep .tg expression on one 600 KB line: the diagnostic quotes a window.
{
  printf '(graph g (in x f32 [3]) (out y '
  for _ in $(seq 60000); do printf '(exp '; done
  printf 'x'
  for _ in $(seq 60000); do printf ')'; done
  printf '))\n'
} >"$tmp/deep.tg"
expect_status 2 "fmt deep.tg" "$TL" fmt "$tmp/deep.tg"
expect_err "deep.tg:1:5022: error: expression nested more than 1000 deep" "fmt deep.tg"
[ "$(wc -c <"$tmp/err")" -lt 1000 ] && ok || bad "fmt deep.tg: $(wc -c <"$tmp/err") bytes of diagnostics"
grep -q '^  \.\.\.(exp (exp .*\.\.\.$' "$tmp/err" && ok || { bad "fmt deep.tg: no window"; head -c 1000 "$tmp/err"; }

check_summary
