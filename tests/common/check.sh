# check.sh - what the shell tests share; sourced after TL and SRC are set.
# Counters, a temporary folder removed on exit (with the compile cache in
# it, not in ~/.cache), and the basic checks:
#   ok / bad MESSAGE           count a pass / a failure
#   expect_status WANT DESC CMD...
#                              run CMD with stdout and stderr in $tmp/out
#                              and $tmp/err; count whether it exits WANT
#   check_summary [LABEL]      print the counts; status 0 when nothing failed
pass=0
fail=0
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
export TLALOC_CACHE_DIR="$tmp/cache"

ok() { pass=$((pass + 1)); }
bad() { fail=$((fail + 1)); echo "FAIL: $*"; }

expect_status() {
  local want=$1 what=$2
  shift 2
  "$@" >"$tmp/out" 2>"$tmp/err"
  local rc=$?
  if [ "$rc" = "$want" ]; then ok; else bad "$what: exit $rc, want $want"; cat "$tmp/err"; fi
}

check_summary() {
  echo "${1:+$1: }$pass passed, $fail failed"
  [ "$fail" = 0 ]
}
