#!/bin/bash
# Hostile inputs to the tlaloc program: endless files, folders. Each must
# end in a clear message and exit 2, quickly and in bounded memory, never a
# crash or a hang.
# usage: inputs.sh TLALOC SOURCE_DIR
set -u
TL=$1
SRC=$2
# shared counters, $tmp, the compile cache in $tmp, ok/bad/expect_status
. "$SRC/tests/common/check.sh"

expect_err() { if grep -qF -- "$1" "$tmp/err"; then ok; else bad "$2: stderr lacks '$1'"; head -c 2000 "$tmp/err"; fi; }
X="$SRC/examples/xent.tg"

# Endless or unbounded inputs: refused at the size limit, not read forever.
expect_status 2 "fmt /dev/zero" timeout 60 "$TL" fmt /dev/zero
expect_err "/dev/zero: not a regular file and longer than the input limit of 64 MiB" "fmt /dev/zero"
expect_status 2 "check-rules /dev/zero" timeout 60 "$TL" check-rules /dev/zero
expect_err "/dev/zero: error: not a regular file and longer than the input limit of 64 MiB" "check-rules /dev/zero"
expect_status 2 "extract /dev/zero" timeout 60 "$TL" extract /dev/zero
expect_err "/dev/zero: error: not a regular file and longer than the input limit of 64 MiB" "extract /dev/zero"
expect_status 2 "fmt of a folder" "$TL" fmt "$SRC/examples"
expect_err "examples: is a folder, not a file" "fmt of a folder"
# a pipe is read like a file, within the limit
expect_status 0 "fmt from a pipe" bash -c "cat '$X' | '$TL' fmt /dev/stdin"

check_summary
