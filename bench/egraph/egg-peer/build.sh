#!/bin/sh
# build.sh - build egg-peer (egg 0.9.5 on the math suite) without a network.
#
#   bench/egraph/egg-peer/build.sh EGG SYMBOL_TABLE SEXP [OUT]
#
# EGG, SYMBOL_TABLE and SEXP are source trees of egg 0.9.5
# (github.com/egraphs-good/egg, tag v0.9.5), symbol_table 0.2.0
# (github.com/mwillsey/symbol_table, tag v0.2.0) and symbolic_expressions
# 5.0.3 (github.com/productize/symbolic-expressions): the three crates of
# egg's tree that Debian 12 does not package. The others come from Debian's
# librust-*-dev packages (apt-get install, listed below), which put crate
# sources under /usr/share/cargo/registry; cargo reads all of them as one
# offline "directory" source. Needs a cargo/rustc of 1.63 or newer.
# Builds egg-peer and egg-peer-deterministic (egg's "deterministic"
# feature) side by side and prints the path of the first; bench-egg-math
# --egg PATH runs both. OUT defaults to build-egg-peer.
set -eu
if [ $# -lt 3 ]; then
  echo "usage: $0 EGG SYMBOL_TABLE SEXP [OUT]" >&2
  exit 2
fi
here=$(cd "$(dirname "$0")" && pwd)
out=${4:-build-egg-peer}
mkdir -p "$out"
out=$(cd "$out" && pwd)
for d in "$1" "$2" "$3"; do
  [ -f "$d/Cargo.toml" ] || { echo "$0: $d has no Cargo.toml" >&2; exit 2; }
done
for c in env-logger fxhash hashbrown indexmap instant log smallvec thiserror ahash; do
  dpkg -s "librust-$c-dev" >/dev/null 2>&1 || {
    echo "$0: missing Debian package librust-$c-dev (apt-get install librust-{env-logger,fxhash,hashbrown,indexmap,instant,log,smallvec,thiserror,ahash}-dev)" >&2
    exit 2
  }
done
command -v cargo >/dev/null || { echo "$0: no cargo on PATH" >&2; exit 2; }
rm -rf "$out/vendor" "$out/src"
mkdir -p "$out/vendor" "$out/.cargo" "$out/src"
for d in /usr/share/cargo/registry/*/; do ln -s "$d" "$out/vendor/$(basename "$d")"; done
# A crate in a directory source needs a checksum file; an empty file list
# with no package hash makes cargo trust the tree as it is.
copy_crate() {
  cp -r "$1" "$out/vendor/$2"
  rm -rf "$out/vendor/$2/.git"
  echo '{"files":{}}' > "$out/vendor/$2/.cargo-checksum.json"
}
copy_crate "$1" egg-0.9.5
copy_crate "$2" symbol_table-0.2.0
copy_crate "$3" symbolic_expressions-5.0.3
cp "$here/Cargo.toml" "$out/Cargo.toml"
cp "$here/src/main.rs" "$out/src/main.rs"
cat > "$out/.cargo/config.toml" <<CFG
[source.crates-io]
replace-with = "debian-and-fetched"
[source.debian-and-fetched]
directory = "$out/vendor"
[net]
offline = true
CFG
(cd "$out" && cargo build --release --quiet)
# The same with egg's "deterministic" feature: insertion-ordered maps and
# sets instead of hash-ordered ones, so rules visit classes in the order
# they were made (the order tlaloc's index keeps) rather than hashbrown's.
# The e-graph after saturation is the same either way; the hash-cons count
# on the way there (egg's node limit reads it) depends on that order.
(cd "$out" && cargo build --release --quiet --features egg/deterministic --target-dir target-deterministic)
cp "$out/target-deterministic/release/egg-peer" "$out/target/release/egg-peer-deterministic"
echo "$out/target/release/egg-peer"
