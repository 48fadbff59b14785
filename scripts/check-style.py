#!/usr/bin/env python3
"""check-style.py [--root DIR]: the parts of .clang-format's layout that a
reader notices, checked without clang-format (so that the test command
needs nothing more than python3).

Checked in every tracked .c and .h file: braces attach to the line that
opens them (no `{` alone on a line after a function's or a statement's
header: the one brace style), no tab characters, no trailing blanks.
scripts/format.sh runs clang-format-19 with .clang-format itself on the
files a change touches. Prints file:line: what; exit 1 on any."""
import argparse
import os
import re
import subprocess
import sys


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--root", default=os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    root = ap.parse_args().root
    try:
        files = subprocess.run(["git", "-C", root, "ls-files", "*.c", "*.h"], capture_output=True, text=True,
                               check=True).stdout.split()
    except (OSError, subprocess.CalledProcessError):
        files = [os.path.relpath(os.path.join(d, f), root) for d, _, fs in os.walk(root)
                 for f in fs if f.endswith((".c", ".h")) and "/build" not in d and "/." not in d]
    bad = 0
    for rel in sorted(files):
        try:
            lines = open(os.path.join(root, rel), encoding="utf-8").read().split("\n")
        except OSError:
            continue
        prev = ""
        for k, line in enumerate(lines):
            where = "%s:%d:" % (rel, k + 1)
            if "\t" in line:
                print(where, "a tab (indent with spaces)")
                bad += 1
            if line != line.rstrip():
                print(where, "trailing blanks")
                bad += 1
            if re.fullmatch(r"\s*\{\s*", line) and re.search(r"\)\s*$|\belse\s*$|\bdo\s*$", prev):
                print(where, "'{' on a line of its own (attach it to the line above)")
                bad += 1
            if line.strip():
                prev = line
    print("check-style: %d files, %d problems" % (len(files), bad))
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
