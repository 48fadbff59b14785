#!/bin/bash
# seeds.sh OUT: builds the fuzzers' seed corpora and dictionaries under OUT
# from the repository's own inputs:
#   OUT/tg, OUT/pipeline  examples/*.tg, tests/**/*.tg (the malformed ones
#                         too), and the harness's regression inputs
#   OUT/rw                rules/*.rw, tests/**/*.rw, bench/**/*.rw
#   OUT/npy               fuzz/seeds/npy (every dtype, rank 0 to 3, empty
#                         dims, format 2.0)
#   OUT/json              fuzz/seeds/json, plus the extraction-gym e-graphs
#                         under 16 KB when ../shared/data/extraction-gym (or
#                         $TL_EXTRACTION_GYM) exists
#   OUT/NAME.dict         tokens for libFuzzer's -dict (op names from
#                         ir/ops.def, keywords, attributes, conditions)
# Every corpus also gets fuzz/regress/NAME/*: the inputs of the crashes
# found so far.
set -euo pipefail
OUT=$1
SRC=$(cd "$(dirname "$0")/.." && pwd)
mkdir -p "$OUT"/{tg,pipeline,rw,npy,json}

# copy FILES... (under SRC) into DIR, named after their path (no clashes)
put() {
  local dir=$1 f
  shift
  local rels=()
  for f in "$@"; do [ -f "$f" ] && rels+=("${f#"$SRC"/}"); done
  [ ${#rels[@]} -gt 0 ] || return 0
  tar -C "$SRC" -cf - "${rels[@]}" | tar -C "$dir" -xf - --transform='s|/|_|g'
}

shopt -s nullglob globstar
put "$OUT/tg" "$SRC"/examples/*.tg "$SRC"/tests/**/*.tg "$SRC"/fuzz/regress/tg/*
put "$OUT/pipeline" "$SRC"/examples/*.tg "$SRC"/tests/backend/*.tg "$SRC"/fuzz/regress/pipeline/*
put "$OUT/rw" "$SRC"/rules/*.rw "$SRC"/tests/**/*.rw "$SRC"/bench/**/*.rw "$SRC"/fuzz/regress/rw/*
put "$OUT/npy" "$SRC"/fuzz/seeds/npy/* "$SRC"/fuzz/regress/npy/*
put "$OUT/json" "$SRC"/fuzz/seeds/json/* "$SRC"/fuzz/regress/json/*
# the graphs and rules written inline in the shell tests (<<'G' ... G)
awk -v out="$OUT" '
  function save(dir) { f = out "/" dir "/heredoc_" k; printf "%s", text > f; close(f) }
  /<<.G.$/ { on = 1; k++; text = ""; next }
  on && /^G$/ {
    on = 0
    if (text ~ /^\(graph/) { save("tg"); save("pipeline") }
    else if (text ~ /^\(ruleset/) save("rw")
    next
  }
  on { text = text $0 "\n" }' "$SRC"/tests/**/*.sh
gym=${TL_EXTRACTION_GYM:-$SRC/../shared/data/extraction-gym}
if [ -d "$gym" ]; then
  find "$gym" -name '*.json' -size -16k -exec cp --backup=numbered -t "$OUT/json" {} +
fi

# dictionaries: one quoted token a line
q() { local t; for t in "$@"; do printf '"%s"\n' "$t"; done; }
ops=$(sed -n 's/^OP([A-Z0-9_]*, *"\([^"]*\)".*/\1/p' "$SRC/ir/ops.def")
dtypes="bool i32 i64 f32 f64"
{
  # shellcheck disable=SC2086
  q $ops $dtypes graph in out let const fill true false
  q :axis :keepdims :dtype :shape :perm :start :stop :step "(" ")" "[" "]" ";" "-1" "1e-7" "inf" "nan"
} >"$OUT/tg.dict"
cp "$OUT/tg.dict" "$OUT/pipeline.dict"
{
  # shellcheck disable=SC2086
  q $ops $dtypes ruleset rule fuse inplace opclass "=>" "<=>" :if :into :destroys :rowwise
  q nonzero positive nonneg const scalar float strong same-shape same-type dtype rank value
  q lossless-cast numeric fits nonpos same-dtype improves-accuracy cheap single-use max-ops
  q output any "?a" "?b" "?x" "(" ")" "[" "]" :axis :keepdims :dtype :shape :perm
} >"$OUT/rw.dict"
{
  q "\x93NUMPY" "\x01\x00" "\x02\x00" "\x03\x00" "'descr'" "'fortran_order'" "'shape'"
  q "<f4" "<f8" "<i4" "<i8" "|b1" ">f4" "|O" "True" "False" "()" "(0,)" ": " ", " "}" "{"
} >"$OUT/npy.dict"
q '\"nodes\"' '\"root_eclasses\"' '\"eclass\"' '\"children\"' '\"cost\"' '\"op\"' '\"subsumed\"' \
  "true" "false" "null" "{" "}" "[" "]" ":" "," "1e308" "-0" >"$OUT/json.dict"
