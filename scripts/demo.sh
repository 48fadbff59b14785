#!/bin/bash
# Sets up a fresh Debian 12 machine, builds tlaloc and runs the main job on
# a bundled example, the softmax cross-entropy graph: optimise it with the
# shipped rules (log(softmax) becomes log_softmax), then compile it with the
# LLVM backend and run it on random inputs, next to the reference
# interpreter's answer for the original graph.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/setup-debian.sh
if [ -d build ]; then
  meson setup --reconfigure build --native-file scripts/native.ini >/dev/null
else
  meson setup build --native-file scripts/native.ini >/dev/null
fi
ninja -C build >/dev/null
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
echo "\$ build/tlaloc infer examples/xent.tg"
build/tlaloc infer examples/xent.tg
echo "\$ build/tlaloc opt examples/xent.tg --stats -o $out/xent.opt.tg"
build/tlaloc opt examples/xent.tg --stats -o "$out/xent.opt.tg" 2>&1 | tail -4
cat "$out/xent.opt.tg"
echo "\$ build/tlaloc run $out/xent.opt.tg --dim n=4 --random 1 --stats    # compiled"
build/tlaloc run "$out/xent.opt.tg" --dim n=4 --random 1 --stats
echo "\$ build/tlaloc run examples/xent.tg --dim n=4 --random 1 --interp   # the oracle, original graph"
build/tlaloc run examples/xent.tg --dim n=4 --random 1 --interp
