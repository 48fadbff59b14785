#!/bin/bash
# Sets up a fresh Debian 12 machine, builds tlaloc and runs the main job on
# a bundled example: the softmax cross-entropy graph on random inputs.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/setup-debian.sh
if [ -d build ]; then
  meson setup --reconfigure build --native-file scripts/native.ini >/dev/null
else
  meson setup build --native-file scripts/native.ini >/dev/null
fi
ninja -C build >/dev/null
echo "\$ build/tlaloc infer examples/xent.tg"
build/tlaloc infer examples/xent.tg
echo "\$ build/tlaloc run examples/xent.tg --dim n=4 --random 1"
build/tlaloc run examples/xent.tg --dim n=4 --random 1
