#!/bin/sh
# Installs every Debian 12 package tlaloc needs to build, test and benchmark.
# Idempotent; run as root (or through sudo) on a fresh Debian 12 machine.
set -eu

# zlib1g-dev, libzstd-dev: LLVM's static libraries (linked in by default, meson_options.txt)
# need -lz and -lzstd
PACKAGES="
  build-essential pkg-config meson ninja-build
  llvm-19-dev clang-19 libclang-rt-19-dev
  libxxhash-dev uthash-dev libcriterion-dev
  libopenblas-dev libmpfr-dev
  zlib1g-dev libzstd-dev
  libcjson-dev coinor-libcbc-dev
  python3 python3-numpy python3-pytest python3-sympy python3-onnx libonnx-testdata
  python3-torch python3-dask python3-distributed
"

SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi

export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
# shellcheck disable=SC2086
$SUDO apt-get install -y -qq --no-install-recommends $PACKAGES >/dev/null
echo "setup: Debian packages installed"
