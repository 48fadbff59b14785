#!/bin/bash
# deep.sh - every subcommand on a long chain of lets, on the default stack:
#   (let v1 (add x 1)) (let v2 (add v1 1)) ... (let vN (add vN-1 1))
# with N = 10^6 (TLALOC_DEEP_N; the sanitizer build sets 10^5, its frames
# and memory are several times larger). Nothing here raises `ulimit -s`:
# a traversal that recursed once per link would overflow 8 MiB long before
# N. Each command must end cleanly with its result, within a memory budget
# per loaded node (a quadratic or leaking structure would pass it). Slow
# parts are bounded by their own options: saturation by --limit time=,
# cost-report's per-kernel measurements by --time-limit, and the compiled
# paths use -O0 (LLVM's passes are most of a 10^6-op compile; -O1 is
# covered at N/10). Two commands run at a time (the box has two cores); the
# table at the end gives each one's wall time and peak memory.
# usage: deep.sh TLALOC SOURCE_DIR DEEP_API
set -u
TL=$1
SRC=$2
API=$3
. "$SRC/tests/common/check.sh"
N=${TLALOC_DEEP_N:-1000000}
T0=$(date +%s)

# The chain (x: f64, so that x + N is exact), the same chain whose first
# link is (mul (add x 1) 1) for prove, and the rule that proves them equal.
python3 - "$N" "$tmp" <<'EOF'
import sys
n, d = int(sys.argv[1]), sys.argv[2]
def chain(path, first, m):
    with open(path, "w") as f:
        f.write("(graph chain\n  (in x f64 [4])\n  (let v1 %s)\n" % first)
        f.write("".join("  (let v%d (add v%d 1))\n" % (i, i - 1) for i in range(2, m + 1)))
        f.write("  (out y v%d))\n" % m)
chain(d + "/a.tg", "(add x 1)", n)
chain(d + "/b.tg", "(mul (add x 1) 1)", n)
chain(d + "/small.tg", "(add x 1)", max(n // 10, 1))
open(d + "/one.rw", "w").write("(ruleset one (rule mul-one (mul ?x 1) => ?x))\n")
EOF
A=$tmp/a.tg

# measured NAME CMD...: runs CMD with stdout in $tmp/NAME.out and stderr in
# $tmp/NAME.err; $tmp/NAME.res gets "exit-status seconds peak-MiB".
measured() {
  local name=$1
  shift
  python3 -c '
import resource, subprocess, sys, time
t = time.time()
with open(sys.argv[1] + ".out", "w") as o, open(sys.argv[1] + ".err", "w") as e:
    rc = subprocess.call(sys.argv[2:], stdout=o, stderr=e)
peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss // 1024
print(rc, "%.1f" % (time.time() - t), peak)
' "$tmp/$name" "$@" >"$tmp/$name.res"
}

NAMES=()
launch() { # NAME CMD...: in the background, two at a time
  NAMES+=("$1")
  while [ "$(jobs -rp | wc -l)" -ge 2 ]; do wait -n; done
  measured "$@" &
}

launch run "$TL" run "$A" -O0 --random 1
launch fmt "$TL" fmt "$A"
launch infer "$TL" infer "$A"
launch interp "$TL" run "$A" --interp --random 1
launch api "$API" "$A"
launch dot "$TL" dot "$A"
launch compile "$TL" compile "$A" -O0 -o "$tmp/a.o" --header "$tmp/a.h"
launch run-O1 "$TL" run "$tmp/small.tg" --random 1
launch opt "$TL" opt "$A" --stats --limit time=5
launch prove "$TL" prove "$A" "$tmp/b.tg" --rules "$tmp/one.rw" --limit time=20
launch cost-report "$TL" cost-report "$A" -O0 --time-limit 1
wait

# Each command: exit 0, and a peak within 200 MiB plus 1 KiB per node it
# loads (prove loads two graphs; the IR takes ~420 bytes a node).
for name in "${NAMES[@]}"; do
  read -r rc secs mib <"$tmp/$name.res"
  nodes=$N
  [ "$name" = prove ] && nodes=$((2 * N))
  [ "$name" = run-O1 ] && nodes=$((N / 10))
  budget=$((200 + nodes / 1024))
  [ "${TLALOC_DEEP_ASAN:-0}" = 1 ] && budget=$((budget * 4))
  if [ "$rc" = 0 ]; then ok; else bad "$name: exit $rc"; tail -5 "$tmp/$name.err"; fi
  if [ "$mib" -le "$budget" ]; then ok; else bad "$name: peak $mib MiB, budget $budget MiB"; fi
  printf '  %-12s %7s s %6s MiB\n' "$name" "$secs" "$mib"
done

has() { # NAME TEXT: stdout of NAME contains TEXT
  if grep -qF -- "$2" "$tmp/$1.out"; then ok; else bad "$1: output lacks '$2'"; head -c 600 "$tmp/$1.out"; fi
}

# fmt: every let, in order, and the output
[ "$(wc -l <"$tmp/fmt.out")" = $((N + 3)) ] && ok || bad "fmt: $(wc -l <"$tmp/fmt.out") lines, want $((N + 3))"
has fmt "  (let v$N (add v$((N - 1)) 1))"
has infer "out y: f64[4]"
# the interpreter and compiled code agree exactly (f64, the same order)
if cmp -s "$tmp/run.out" "$tmp/interp.out" && [ -s "$tmp/run.out" ]; then ok; else
  bad "run -O0 and run --interp differ"; head -3 "$tmp/run.out" "$tmp/interp.out"
fi
has api "y = $N $((N + 1)) $((N + 2)) $((N + 3))"
has run-O1 "y: f64[4]"
[ -s "$tmp/a.o" ] && [ -s "$tmp/a.h" ] && ok || bad "compile: no object or header"
has dot "digraph egraph"
[ "$(grep -c 'subgraph cluster' "$tmp/dot.out")" = $((N + 2)) ] && ok || bad "dot: not N + 2 e-classes"
has opt "  (out y "
grep -qE '^phase 0: stop (Saturated|TimeLimit|NodeLimit|IterLimit)' "$tmp/opt.err" && ok || bad "opt: no stop reason"
has prove "proved: y"
has prove "(Rewrite<= mul-one (mul (add x 1) 1))"
has cost-report "total: "
# a fused expression is cut once it passes 1024 ops (BE_FUSE_MAX_OPS), 2
# per link: at most 513 links per kernel
k=$(sed -n 's/^total: \([0-9]*\) kernels.*/\1/p' "$tmp/cost-report.out")
[ -n "$k" ] && [ "$k" -ge $((N / 513)) ] && ok || bad "cost-report: ${k:-no} kernels"

echo "N = $N, $(($(date +%s) - T0)) s in all"
check_summary "deep"
