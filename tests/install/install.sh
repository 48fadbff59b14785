#!/bin/bash
# install.sh BUILD PREFIX LIBDIR PYDIR DATADIR (see meson.build here)
set -u
build=$1 prefix=$2 libdir=$3 pydir=$4 datadir=$5
# PYDIR may be given relative to the prefix
case $pydir in /*) ;; *) pydir=$prefix/$pydir ;; esac
d=$(mktemp -d)
trap 'rm -rf "$d"' EXIT
fail() { echo "FAIL: $*"; exit 1; }
meson install -C "$build" --no-rebuild --quiet --destdir "$d" >"$d.log" 2>&1 || { cat "$d.log"; rm -f "$d.log"; fail "meson install"; }
rm -f "$d.log"
for f in "$prefix/include/tlaloc.h" "$libdir/libtlaloc.so" "$prefix/bin/tlaloc" \
         "$datadir/tlaloc/rules/stability.rw" "$pydir/tlaloc/__init__.py" "$pydir/tlaloc/_paths.py" \
         "$pydir/tlaloc/onnx/__init__.py"; do
  [ -e "$d$f" ] || fail "$f is not installed"
done
! find "$d" -name __pycache__ | grep -q . || fail "__pycache__ installed"
echo "installed: header, library, program, rules, Python package"

# a C program against the installed header and library only
cat >"$d/main.c" <<'C'
#include <tlaloc.h>
#include <stdio.h>
#include <string.h>
int main(void) {
  const char *src = "(graph g (in x f32 [3]) (out y (mul x 2.0)))";
  tlaloc_graph *g; char *err = NULL;
  if (tlaloc_parse(src, strlen(src), "g.tg", &g, &err) != TLALOC_OK) { puts(err); return 1; }
  float x[3] = {1, 2, 3};
  tlaloc_tensor in = {TLALOC_F32, 1, {3}, x}, out = {0};
  if (tlaloc_run(g, &in, 1, &out, 1, &err) != TLALOC_OK) { puts(err); return 1; }
  const float *y = out.data;
  printf("%g %g %g\n", y[0], y[1], y[2]);
  tlaloc_free(out.data);
  tlaloc_graph_free(g);
  return 0;
}
C
cc -I"$d$prefix/include" "$d/main.c" -L"$d$libdir" -ltlaloc -o "$d/main" || fail "cannot build against the installed header and library"
out=$(LD_LIBRARY_PATH="$d$libdir" "$d/main") || fail "the C program failed: $out"
[ "$out" = "2 4 6" ] || fail "the C program printed '$out'"
echo "C: built and ran against the installed library"

# the installed Python package, as site-packages would have it: nothing of
# the source tree on the path, no TLALOC_LIBRARY
cd "$d"
out=$(env -u TLALOC_LIBRARY -u PYTHONPATH /usr/bin/python3 -c "
import sys
sys.path.insert(0, '$d$pydir')
import numpy as np, tlaloc as tl
assert tl.__file__.startswith('$d'), tl.__file__
x = tl.tensor('x', 'f32', (3,))
f = tl.function([x], tl.log(1 + tl.exp(x)))
print(f(np.array([0, 1, 100], np.float32))[2], f.stats['optimized'])
") || fail "the installed Python package: $out"
[ "$out" = "100.0 True" ] || fail "the installed Python package printed '$out'"
echo "Python: the installed package found its library and optimized by default"
