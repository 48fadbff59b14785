#!/usr/bin/env python3
"""Sanity checks on the prose pages: every file in docs/ and README.md.

1. Size. No file may exceed MAX_BYTES (200 KB). The largest real page is
   about 27 KB (docs/backend.md, some 440 lines); a page a newcomer can read
   stays well under 100 KB, so 200 KB leaves room to grow while a runaway
   edit (a paste repeated thousands of times, a generated dump committed by
   mistake) fails at once. One such edit once grew docs/calibrate.md from
   14 KB to 9.8 MB.
2. Repetition. No run of consecutive non-blank lines of at least MIN_CHARS
   (80) characters may occur twice in one file. A run starts at every line
   and takes lines of the same paragraph until it holds MIN_CHARS
   characters, so a paragraph pasted twice is caught, and so is a
   paragraph pasted into the middle of other text (the garbled page above
   had one paragraph between every two characters of the real page).

Usage: check_docs.py ROOT [--max-bytes N] [--min-chars N]
       check_docs.py --self-test
Exit status 0 when every file passes, 1 with one line per failure.
--self-test runs the checks on pages it writes to a temporary folder (a
clean page, a paragraph pasted twice, the garbling above) and exits 0 when
each gets the verdict it should.
"""
import argparse
import os
import sys
import tempfile

MAX_BYTES = 200 * 1000
MIN_CHARS = 80


def files_to_check(root):
    out = []
    readme = os.path.join(root, "README.md")
    if os.path.isfile(readme):
        out.append(readme)
    docs = os.path.join(root, "docs")
    for dirpath, dirnames, filenames in os.walk(docs):
        dirnames.sort()
        for f in sorted(filenames):
            out.append(os.path.join(dirpath, f))
    return out


def repeated_runs(text, min_chars):
    """Yields (first line, second line, run text) for each run of
    consecutive non-blank lines of >= min_chars characters (leading and
    trailing space of each line ignored) seen twice without overlap."""
    lines = [l.strip() for l in text.split("\n")]
    seen = {}  # run text -> (first line index, last line index)
    for i in range(len(lines)):
        if not lines[i]:
            continue
        n, j = 0, i
        while j < len(lines) and lines[j] and n < min_chars:
            n += len(lines[j])
            j += 1
        if n < min_chars:
            continue
        key = "\n".join(lines[i:j])
        if key in seen:
            first, last = seen[key]
            if i > last:  # the same lines, not an overlap of one run
                yield first + 1, i + 1, key
        else:
            seen[key] = (i, j - 1)


def check_file(path, rel, max_bytes, min_chars, problems):
    size = os.path.getsize(path)
    if size > max_bytes:
        problems.append(f"{rel}: {size} bytes, more than the {max_bytes} allowed")
    with open(path, "rb") as f:
        data = f.read(max_bytes * 4)  # enough to find a repetition
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        return  # a binary file (an image): the size bound only
    count, first_report = 0, None
    for a, b, key in repeated_runs(text, min_chars):
        count += 1
        if first_report is None:
            first_report = (a, b, key)
    if count:
        a, b, key = first_report
        snippet = key.split("\n")[0][:70]
        problems.append(f"{rel}:{b}: repeats the text of line {a} ('{snippet}...'); "
                        f"{count} repeated run(s) of >= {min_chars} characters in all")


def check_tree(root, max_bytes, min_chars):
    problems = []
    for p in files_to_check(root):
        check_file(p, os.path.relpath(p, root), max_bytes, min_chars, problems)
    return problems


def self_test():
    page = "# A page\n\n" + "\n\n".join(
        "\n".join(f"Paragraph {p}, line {l}: the graph is planned as the "
                  f"backend plans it." for l in range(4)) for p in range(12)) + "\n"
    para = ("* **A pasted paragraph** of a few lines, long enough to count:\n"
            "  it says one thing, and it should be said once in a page.\n")
    cases = [
        ("clean", page, []),
        ("paragraph twice", page + "\n" + para + "\n" + para, ["repeats"]),
        ("paragraph once", page + "\n" + para, []),
        ("paragraph after every character", "".join(para + c for c in page),
         ["bytes", "repeats"]),
    ]
    failed = 0
    for name, text, expect in cases:
        with tempfile.TemporaryDirectory() as d:
            os.mkdir(os.path.join(d, "docs"))
            with open(os.path.join(d, "docs", "page.md"), "w") as f:
                f.write(text)
            # a bound the clean page meets and the garbled one does not
            problems = check_tree(d, 20 * len(page), MIN_CHARS)
        got = sorted({k for k in ("bytes", "repeats") for p in problems if k in p})
        if got != sorted(expect):
            failed += 1
            print(f"self-test '{name}': expected {expect or 'no problem'}, got {problems}")
    print(f"check_docs self-test: {len(cases)} cases, {failed} failed")
    return 1 if failed else 0


def main():
    if sys.argv[1:] == ["--self-test"]:
        return self_test()
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("root")
    ap.add_argument("--max-bytes", type=int, default=MAX_BYTES)
    ap.add_argument("--min-chars", type=int, default=MIN_CHARS)
    a = ap.parse_args()
    if not files_to_check(a.root):
        print(f"check_docs: no README.md or docs/ under {a.root}", file=sys.stderr)
        return 1
    problems = check_tree(a.root, a.max_bytes, a.min_chars)
    for p in problems:
        print(p)
    print(f"check_docs: {len(files_to_check(a.root))} files, {len(problems)} problem(s)")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
