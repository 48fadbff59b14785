#!/bin/bash
# The GPU machine's check, up to the device: scripts/gpu-prepare.sh makes the
# folder (launchers, inputs, the interpreter's outputs; everything built with
# cc once), scripts/gpu-check.sh (the copy in the folder) builds every
# program there with cc alone and runs them: here without a GPU it must
# report "no GPU" and exit 0; on a GPU machine every check must pass.
set -euo pipefail
build=$1; src=$2
work=$(mktemp -d); trap 'rm -rf "$work"' EXIT
cd "$src"
GPU_PREPARE_QUICK=1 scripts/gpu-prepare.sh "$build" "$work/carry" | tail -3
if ! "$work/carry/gpu-check.sh" "$work/carry" "$work/report.txt" > "$work/out.txt" 2>&1; then
  cat "$work/out.txt"; echo "FAIL gpu-check"; exit 1
fi
grep -E "^built|^no GPU|^differential|^BENCH|^TORCH|^== gpu-check" "$work/report.txt"
