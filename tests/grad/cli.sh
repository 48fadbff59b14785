#!/bin/bash
# `tlaloc grad` end to end: the derivative graph of every example parses
# back, runs, and the grad of grad does too; output names; --vjp and --jvp;
# --rules overrides; exit statuses and messages.
# usage: cli.sh TLALOC SOURCE_DIR
set -u
TL=$1
SRC=$2
. "$SRC/tests/common/check.sh"

dims_of() {
  grep -oE '\(in [A-Za-z_][A-Za-z0-9_]* [a-z0-9]+ \[[^]]*\]' "$1" | sed 's/.*\[//; s/\]//' |
    tr ' ' '\n' | grep -E '^[A-Za-z_]' | sort -u | sed 's/^/--dim /; s/$/=3/' | tr '\n' ' '
}

for f in "$SRC"/examples/*.tg; do
  b=$(basename "$f" .tg)
  expect_status 0 "vjp $b" "$TL" grad "$f" --vjp -o "$tmp/$b.vjp.tg"
  # shellcheck disable=SC2046
  expect_status 0 "run vjp $b" "$TL" run "$tmp/$b.vjp.tg" --random 1 $(dims_of "$tmp/$b.vjp.tg")
  expect_status 0 "jvp $b" "$TL" grad "$f" --jvp -o "$tmp/$b.jvp.tg"
  # shellcheck disable=SC2046
  expect_status 0 "run jvp $b" "$TL" run "$tmp/$b.jvp.tg" --random 1 $(dims_of "$tmp/$b.jvp.tg")
  grep -q "(in ct_" "$tmp/$b.jvp.tg" && bad "jvp $b kept a cotangent input" || ok
  # the VJP of the VJP (grad of grad)
  expect_status 0 "vjp of vjp $b" "$TL" grad "$tmp/$b.vjp.tg" --vjp -o "$tmp/$b.vjp2.tg"
done

L="$SRC/examples/logreg_nll.tg"
expect_status 0 "grad logreg" "$TL" grad "$L" --wrt w,b --with-outputs
grep -q "(out nll " "$tmp/out" && grep -q "(out dnll_dw " "$tmp/out" && grep -q "(out dnll_db " "$tmp/out" && ok ||
  bad "grad names: $(cat "$tmp/out")"
expect_status 0 "vjp names" "$TL" grad "$L" --wrt w --vjp
grep -q "(in ct_nll f64 \[\])" "$tmp/out" && grep -q "(out vjp_w " "$tmp/out" && ok || bad "vjp names"
expect_status 0 "jvp names" "$TL" grad "$L" --wrt w --jvp
grep -q "(in t_w f64 \[5\])" "$tmp/out" && grep -q "(out jvp_nll " "$tmp/out" && ok || bad "jvp names"

# a rule of one's own replaces the shipped one for its (op, operand)
cat >"$tmp/mine.rw" <<'R'
(ruleset mine (grad sigmoid-off (sigmoid ?x) :wrt ?x => (mul ?g 0)))
R
expect_status 0 "override" "$TL" grad "$L" --wrt b --rules "$SRC/rules" --rules "$tmp/mine.rw"
grep -q "(mul .* 0)" "$tmp/out" && ok || bad "the override was not used: $(cat "$tmp/out")"

# errors: exit 2 with a message
X="$SRC/examples/xent.tg"
expect_status 2 "non-scalar" "$TL" grad "$SRC/examples/attention.tg"
grep -q "not a scalar" "$tmp/err" && ok || bad "non-scalar message"
expect_status 2 "unknown input" "$TL" grad "$X" --wrt nope
grep -q "no input 'nope'" "$tmp/err" && ok || bad "unknown input message"
expect_status 2 "bad option" "$TL" grad "$X" --frob
cat >"$tmp/bad.rw" <<'R'
(ruleset bad (grad b (exp ?x) :wrt ?y => ?g))
R
expect_status 2 "bad rule file" "$TL" grad "$X" --rules "$tmp/bad.rw"
grep -q "bad.rw:1:36: error: expected ':wrt ?x'" "$tmp/err" && ok || bad "bad rule message: $(cat "$tmp/err")"
expect_status 2 "no rule" "$TL" grad "$X" --rules "$tmp/mine.rw"
grep -q "no derivative rule for" "$tmp/err" && ok || bad "missing rule message"

check_summary grad-cli
