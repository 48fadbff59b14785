#!/usr/bin/env python3
"""lint-alloc.py [--root DIR]: fails on a raw allocation call in tlaloc's
own C code.

Every block of the library and the tlaloc program comes from util/alloc.h
(tl_x*, tl_try_*) and goes back through tl_free, so that running out of
memory unwinds cleanly and the out-of-memory tests can fail any allocation
(docs/design.md, "Errors and memory"). This checks the modules of
scripts/modules.txt and cli/ for calls of malloc, calloc, realloc, strdup,
strndup, aligned_alloc, posix_memalign and free outside comments and string
literals (the C that aot.c writes for other programs is a string).

Allowed: util/alloc.c (the hook itself) and lines marked
`/* libc: why */` (a block that libc allocates or frees, e.g. the GPU
runtime compiled into an AOT launcher). Prints file:line: call for each
offence; exit 1 if any."""
import argparse
import os
import re
import sys

CALL = re.compile(r"(?<![\w.>])(malloc|calloc|realloc|strdup|strndup|aligned_alloc|posix_memalign|free)\s*\(")


def code_only(text):
    """text with comments and string/char literals blanked, lines kept."""
    out, i, n = [], 0, len(text)
    while i < n:
        c = text[i]
        if text.startswith("/*", i):
            j = text.find("*/", i + 2)
            j = n if j < 0 else j + 2
            out.append(re.sub(r"[^\n]", " ", text[i:j]))
            i = j
        elif text.startswith("//", i):
            j = text.find("\n", i)
            j = n if j < 0 else j
            out.append(" " * (j - i))
            i = j
        elif c in "\"'":
            j = i + 1
            while j < n and text[j] != c:
                j += 2 if text[j] == "\\" else 1
            j = min(j + 1, n)
            out.append(re.sub(r"[^\n]", " ", text[i:j]))
            i = j
        else:
            out.append(c)
            i += 1
    return "".join(out)


def modules(root):
    mods = []
    for line in open(os.path.join(root, "scripts", "modules.txt")):
        line = line.split("#")[0].strip()
        if not line:
            continue
        name = line.split(":")[0].split()[-1]
        mods.append(name)
    return mods


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--root", default=os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    root = ap.parse_args().root
    bad = 0
    checked = 0
    for mod in modules(root):
        d = os.path.join(root, mod)
        for name in sorted(os.listdir(d)):
            if not name.endswith((".c", ".h")) or (mod, name) == ("util", "alloc.c"):
                continue
            path = os.path.join(d, name)
            text = open(path, encoding="utf-8").read()
            raw = text.split("\n")
            checked += 1
            for k, line in enumerate(code_only(text).split("\n")):
                if "/* libc:" in raw[k]:
                    continue
                for m in CALL.finditer(line):
                    print("%s/%s:%d: raw %s() (use util/alloc.h)" % (mod, name, k + 1, m.group(1)))
                    bad += 1
    if checked == 0:
        print("lint-alloc: no sources found under", root)
        return 1
    print("lint-alloc: %d files, %d raw allocation calls" % (checked, bad))
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
