#!/usr/bin/python3
"""Differential test of tlaloc's reference interpreter against numpy.

Run with Debian's /usr/bin/python3 (numpy 1.24):

    /usr/bin/python3 tests/diff/numpy_diff.py --tlaloc build/tlaloc [-v] [-k FILTER] [--keep]

For every op and every dtype it admits (bool i32 i64 f32 f64), a .tg graph is
generated (several `out`s per graph to save process launches), inputs are
written with numpy.save, `tlaloc run G.tg --in NAME=F.npy ... --out DIR` is
run, and each output is compared with a numpy reference expression:

  * dtype and shape must be equal to the expected ones;
  * ints and bools exactly;
  * floats: NaN exactly where the reference has NaN, infinities with the same
    sign, finite values within |got - exp| <= atol + rtol*|exp| (+ rtol*scale
    for reductions and matmul, where scale bounds the cancellation), with
    rtol 1e-12 / atol 4 denormal ulps for f64 and rtol 1e-6 / atol 4 denormal
    ulps for f32; for elementwise ops the sign of a zero result must match too.

Inputs mix random values with the awkward ones: 0, -0.0, +-inf, NaN, huge
(1e30, 1e300 / 3e38) and tiny (1e-30, 1e-300, denormals) magnitudes, INT_MIN
and INT_MAX, broadcasting ([3 1] with [4], [] with [2 3]) and empty dims
([0], [2 0 3]).  The seed is fixed, so every run sees the same data.

A seeded fuzz round adds random shapes (rank 0-4 with 0 and 1 dims), dtypes,
broadcasts, reduction axes, permutations, slices and take indices; `--seed N`
runs the whole suite on other data (the default seed is fixed).

Also checked: bad input exits with status 2 (wrong dtype / Fortran order /
big-endian / object / wrongly shaped .npy, type errors, run-time index and
power errors, ...), .npy round trips are byte-identical, and .npy versions
1.0, 2.0 and 3.0 are read.

Where tlaloc's semantics differ from plain numpy 1.24, the reference follows
tlaloc's documented decision; each such place says "TLALOC:" in a comment.
The main ones:
  * TLALOC: float computations are done in double and rounded to the result
    dtype (f32 operands are first rounded to f32).  The reference therefore
    computes every f32 result in f64 from the f32 operands and rounds once;
    for + - * / sqrt that equals numpy's correctly rounded f32 result.
  * TLALOC: TL_DR_FLOAT ops (exp, log, ..., div, mean, softmax, reciprocal,
    floor, ceil) give f64 for bool and integer operands (numpy: f16 for bool,
    and floor/ceil keep the integer dtype).
  * TLALOC: weakly typed scalar literals follow NEP 50 (numpy 2); numpy 1.24
    is value-based, so the reference gives every literal an explicit dtype.
  * TLALOC: sum/prod of bool and i32 give i64, mean of ints gives f64.

A failing case whose cause is a known, reported interpreter bug is listed in
KNOWN_BUGS below with a "# KNOWN BUG:" comment: it then counts as an expected
failure (the suite stays green), and if it starts passing the suite fails so
that the marker gets removed.

The last line printed is "N passed, M failed"; the exit status is 1 on any
failure.
"""

import argparse
import math
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time

import numpy as np

SEED = 20240601

DTYPES = ['bool', 'i32', 'i64', 'f32', 'f64']
NP = {'bool': np.dtype(np.bool_), 'i32': np.dtype(np.int32), 'i64': np.dtype(np.int64),
      'f32': np.dtype(np.float32), 'f64': np.dtype(np.float64)}
TLNAME = {v: k for k, v in NP.items()}
F64 = np.dtype(np.float64)
I64 = np.dtype(np.int64)
BOOL = np.dtype(np.bool_)
I32_MIN, I32_MAX = -2**31, 2**31 - 1
I64_MIN, I64_MAX = -2**63, 2**63 - 1

# (rtol, atol) per float dtype; ints and bools are compared exactly.
TOL = {
    np.dtype(np.float64): (1e-12, 4 * 5e-324),
    np.dtype(np.float32): (1e-6, 4 * 1.401298464324817e-45),
}

# Expected failures: case label -> description of the interpreter bug.
# Every entry has a "# KNOWN BUG:" comment.  Remove the entry once fixed.
KNOWN_BUGS = {}


def kind(dt):
    dt = np.dtype(dt)
    return 0 if dt == BOOL else 1 if dt.kind in 'iu' else 2


def isfloat(dt):
    return np.dtype(dt).kind == 'f'


def promote(*dts):
    r = np.dtype(dts[0])
    for d in dts[1:]:
        r = np.promote_types(r, d)
    return r


def weak_dtype(strong, lit):
    """TLALOC (NEP 50): the dtype a weak literal takes next to `strong`."""
    lk = 2 if isinstance(lit, float) else 1
    if lk > kind(strong):
        return F64 if lk == 2 else I64
    return np.dtype(strong)


def fmt_num(v):
    if isinstance(v, (bool, np.bool_)):
        return '1' if v else '0'
    if isinstance(v, (int, np.integer)):
        return str(int(v))
    v = float(v)
    if math.isnan(v):
        return 'nan'
    if math.isinf(v):
        return 'inf' if v > 0 else '-inf'
    return repr(v)


def shape_str(shape):
    return '[' + ' '.join(str(d) for d in shape) + ']'


# ---------------------------------------------------------------------------
# data

def specials(dt, rng, nrand=12):
    """A 1-D array of awkward values of dtype dt plus some random ones."""
    dt = NP[dt] if isinstance(dt, str) else np.dtype(dt)
    if dt == BOOL:
        v = np.array([False, True, True, False] + list(rng.integers(0, 2, nrand).astype(bool)))
        return v
    if dt == np.int32:
        s = [0, 1, -1, 2, -3, 7, -8, I32_MIN, I32_MAX, I32_MIN + 1, 46341, -65536, 100000]
        return np.array(s + list(rng.integers(-30, 30, nrand)), dtype=np.int32)
    if dt == np.int64:
        s = [0, 1, -1, 2, -3, 7, -8, I64_MIN, I64_MAX, I64_MIN + 1, 2**60 + 2**36 + 1,
             2**53 + 1, 3037000500, -2**31, 2**32]
        return np.array(s + list(rng.integers(-30, 30, nrand)), dtype=np.int64)
    if dt == np.float32:
        s = [0.0, -0.0, np.inf, -np.inf, np.nan, 3e38, -3e38, 1e30, -1e-30, 1e-40, -1e-45,
             1.0, -1.0, 0.5, -2.5, 3.0, 88.5, -104.0, 1e-4, 0.6931, -0.6931, 2.0**24 + 2]
    else:
        s = [0.0, -0.0, np.inf, -np.inf, np.nan, 1e300, -1e300, 1e30, -1e-30, 1e-300,
             -5e-324, 2.2250738585072014e-308, 1.0, -1.0, 0.5, -2.5, 3.0, 709.5, -745.0,
             1e-8, 0.6931, -0.6931, 2.0**53 + 2]
    r = rng.standard_normal(nrand) * np.where(rng.random(nrand) < 0.5, 1.0, 10.0)
    return np.array(s + list(r), dtype=dt)


def random_array(dt, shape, rng, special_frac=0.0):
    dt = NP[dt] if isinstance(dt, str) else np.dtype(dt)
    n = int(np.prod(shape)) if len(shape) else 1
    if dt == BOOL:
        a = rng.integers(0, 2, n).astype(bool)
    elif dt.kind == 'i':
        a = rng.integers(-20, 20, n).astype(dt)
    else:
        a = (rng.standard_normal(n) * 3).astype(dt)
    if special_frac and n:
        sp = specials(dt, rng, 0)
        k = max(1, int(n * special_frac))
        pos = rng.choice(n, size=min(k, n), replace=False)
        a[pos] = rng.choice(sp, size=len(pos))
    return a.reshape(shape)


# ---------------------------------------------------------------------------
# comparison

def compare(got, exp, scale=None, zsign=False):
    """None when `got` matches `exp`, else a description of the mismatch."""
    if got.dtype != exp.dtype:
        return 'dtype %s, expected %s' % (TLNAME.get(got.dtype, got.dtype), TLNAME.get(exp.dtype, exp.dtype))
    if got.shape != exp.shape:
        return 'shape %s, expected %s' % (got.shape, exp.shape)
    if exp.dtype.kind in 'biu':
        bad = got != exp
    else:
        rtol, atol = TOL[exp.dtype]
        g = got.astype(F64)
        e = exp.astype(F64)
        with np.errstate(all='ignore'):
            bad = np.isnan(g) != np.isnan(e)
            bad |= np.isinf(g) != np.isinf(e)
            bad |= np.isinf(e) & (g != e)
            fin = np.isfinite(g) & np.isfinite(e)
            tol = atol + rtol * np.abs(e)
            if scale is not None:
                tol = tol + rtol * np.nan_to_num(np.asarray(scale, dtype=F64), nan=0.0, posinf=np.inf)
            bad |= fin & ~(np.abs(g - e) <= tol)
            if zsign:
                bad |= fin & (e == 0) & (g == 0) & (np.signbit(g) != np.signbit(e))
    bad = np.asarray(bad)
    if not bad.any():
        return None
    idx = np.argwhere(bad) if bad.ndim else [()]
    msg = ['%d of %d elements differ' % (int(bad.sum()), bad.size)]
    for ix in idx[:4]:
        ix = tuple(int(i) for i in ix)
        msg.append('at %s: got %r, expected %r' % (list(ix), got[ix].item(), exp[ix].item()))
    return '; '.join(msg)


# ---------------------------------------------------------------------------
# numpy references

ERR = np.errstate(all='ignore')

_verf = np.vectorize(math.erf, otypes=[F64])
_verfc = np.vectorize(math.erfc, otypes=[F64])


def _sigmoid(x):
    # TLALOC: the stable logistic
    return np.where(x >= 0, 1.0 / (1.0 + np.exp(-np.abs(x))), np.exp(-np.abs(x)) / (1.0 + np.exp(-np.abs(x))))


def _log1mexp(x):
    # TLALOC: log(1 - exp(x)), computed accurately (Maechler 2012); NaN for x > 0
    r = np.where(x > -math.log(2), np.log(-np.expm1(x)), np.log1p(-np.exp(x)))
    return np.where(x > 0, np.nan, r)


def _erf(x):
    return _verf(x) if x.size else x.astype(F64)


def _erfc(x):
    return _verfc(x) if x.size else x.astype(F64)


UNARY_FLOAT = {  # TL_DR_FLOAT: computed in f64, result f64 for bool/ints (TLALOC)
    'exp': np.exp, 'log': np.log, 'log1p': np.log1p, 'expm1': np.expm1, 'sqrt': np.sqrt,
    'sin': np.sin, 'cos': np.cos, 'tanh': np.tanh, 'sigmoid': _sigmoid,
    'softplus': lambda x: np.logaddexp(0.0, x),  # TLALOC: max(x,0)+log1p(exp(-|x|))
    'log1mexp': _log1mexp, 'erf': _erf, 'erfc': _erfc,
    'floor': np.floor, 'ceil': np.ceil,  # TLALOC: f64 for ints
    'reciprocal': lambda x: 1.0 / x,  # TLALOC: true division, f64 for ints
}
UNARY_NUMERIC = ['neg', 'sign', 'relu']  # refused for bool
UNARY_SAME = ['abs']


def ref_unary(op, x):
    dt = x.dtype
    with ERR:
        if op in UNARY_FLOAT:
            rt = dt if isfloat(dt) else F64
            return UNARY_FLOAT[op](x.astype(F64)).astype(rt)
        if op == 'not':
            return np.logical_not(x.astype(bool))  # NaN is true, so not NaN is false
        if op == 'abs':
            return np.abs(x)  # abs(INT_MIN) wraps to INT_MIN, as numpy
        if op == 'neg':
            return np.negative(x)
        if op == 'relu':
            return np.maximum(x, np.zeros((), x.dtype))  # NaN propagates
        if op == 'sign':
            if isfloat(dt):
                return np.sign(x.astype(F64)).astype(dt)
            return np.sign(x)
    raise KeyError(op)


BIN_SAME = ['add', 'mul', 'maximum', 'minimum']
BIN_NUMERIC = ['sub', 'floor_divide', 'remainder', 'pow']  # refused for bool+bool
BIN_FLOAT = ['div', 'logaddexp', 'xlogy']
BIN_CMP = ['eq', 'ne', 'lt', 'le', 'gt', 'ge']
BIN_BOOL = ['and', 'or']
BIN_INT = ['bitwise_xor']  # refused when an operand is a float
BIN_ALL = BIN_SAME + BIN_NUMERIC + BIN_FLOAT + BIN_CMP + BIN_BOOL + BIN_INT

_FBIN = {
    'add': np.add, 'sub': np.subtract, 'mul': np.multiply, 'div': np.true_divide,
    'floor_divide': np.floor_divide, 'remainder': np.remainder, 'pow': np.power,
    'maximum': np.maximum, 'minimum': np.minimum, 'logaddexp': np.logaddexp,
    # TLALOC (scipy.special.xlogy): 0 where x == 0 and y is not NaN
    'xlogy': lambda x, y: np.where((x == 0) & ~np.isnan(y), 0.0, x * np.log(y)),
}
_CMP = {'eq': np.equal, 'ne': np.not_equal, 'lt': np.less, 'le': np.less_equal,
        'gt': np.greater, 'ge': np.greater_equal}


def _ipow(a, b, dt):
    """Integer power modulo 2^bits (TLALOC: integers wrap), exact via Python ints."""
    bits = dt.itemsize * 8
    a, b = np.broadcast_arrays(a, b)
    out = np.empty(a.shape, dtype=dt)
    m = 1 << bits
    for ix in np.ndindex(a.shape):
        r = pow(int(a[ix]) % m, int(b[ix]), m)
        out[ix] = r - m if r >= m // 2 else r
    return out


def _ifloordiv(a, b):
    # TLALOC: x // 0 is 0 for ints; INT_MIN // -1 wraps to INT_MIN
    a, b = np.broadcast_arrays(a, b)
    safe = np.where((b == 0) | (b == -1), 1, b).astype(a.dtype)
    q = np.floor_divide(a, safe)
    q = np.where(b == -1, np.negative(a), q)
    return np.where(b == 0, 0, q).astype(a.dtype)


def _iremainder(a, b):
    # TLALOC: x % 0 is 0 for ints (numpy gives 0 too, with a warning)
    a, b = np.broadcast_arrays(a, b)
    safe = np.where((b == 0) | (b == -1), 1, b).astype(a.dtype)
    return np.where((b == 0) | (b == -1), 0, np.remainder(a, safe)).astype(a.dtype)


def ref_binary(op, x, y, xdt=None, ydt=None):
    """numpy reference for (op x y); x and y carry their tlaloc dtypes."""
    xdt = xdt or x.dtype
    ydt = ydt or y.dtype
    ct = promote(xdt, ydt)
    a = np.asarray(x).astype(ct)
    b = np.asarray(y).astype(ct)
    with ERR:
        if op in BIN_CMP:
            return _CMP[op](a, b)  # NaN compares false (ne true)
        if op in BIN_BOOL:
            f = np.logical_and if op == 'and' else np.logical_or
            return f(a.astype(bool), b.astype(bool))
        if op == 'bitwise_xor':
            return np.logical_xor(a, b) if ct == BOOL else np.bitwise_xor(a, b)
        if op in BIN_FLOAT:
            rt = ct if isfloat(ct) else F64
            return _FBIN[op](a.astype(F64), b.astype(F64)).astype(rt)
        if isfloat(ct):
            return _FBIN[op](a.astype(F64), b.astype(F64)).astype(ct)
        if ct == BOOL:
            # bool arithmetic is logic: add/maximum are or, mul/minimum are and
            f = np.logical_or if op in ('add', 'maximum') else np.logical_and
            return f(a, b)
        if op == 'floor_divide':
            return _ifloordiv(a, b)
        if op == 'remainder':
            return _iremainder(a, b)
        if op == 'pow':
            return _ipow(a, b, ct)
        return _FBIN[op](a, b).astype(ct)  # numpy's integer ops wrap


def ref_where(c, x, y):
    ct = promote(x.dtype, y.dtype)
    return np.where(c.astype(bool), x.astype(ct), y.astype(ct))


def ref_cast(x, dt):
    dt = np.dtype(dt)
    src = x.dtype
    if dt == BOOL:
        return x != 0 if not isfloat(src) else ((x != 0) | np.isnan(x))  # NaN is true
    if isfloat(src) and dt.kind == 'i':
        # TLALOC: NaN and out of range give INT_MIN of the target (x86)
        v = x.astype(F64)
        if dt == np.int32:
            ok = (v > -2147483649.0) & (v < 2147483648.0)
            lo = I32_MIN
        else:
            ok = (v >= -9223372036854775808.0) & (v < 9223372036854775808.0)
            lo = I64_MIN
        with ERR:
            t = np.where(ok, np.trunc(v), 0.0).astype(dt)
        return np.where(ok, t, np.array(lo, dtype=dt)).astype(dt)
    with ERR:
        return x.astype(dt)


def _axes(axis, rank):
    if axis is None:
        return tuple(range(rank))
    if isinstance(axis, int):
        axis = [axis]
    return tuple(a % rank for a in axis)


def ref_reduce(op, x, axis, keepdims):
    ax = _axes(axis, x.ndim)
    dt = x.dtype
    scale = None
    with ERR:
        if op in ('sum', 'prod'):
            rt = I64 if dt in (BOOL, np.dtype(np.int32)) else dt  # TLALOC: i64 for bool/i32
            f = np.sum if op == 'sum' else np.prod
            if isfloat(rt):
                r = f(x.astype(F64), axis=ax, keepdims=keepdims).astype(rt)
                if op == 'sum':
                    scale = np.sum(np.abs(x.astype(F64)), axis=ax, keepdims=keepdims)
            else:
                r = f(x.astype(I64), axis=ax, keepdims=keepdims).astype(rt)  # wraps
        elif op in ('max', 'min'):
            f = np.max if op == 'max' else np.min  # NaN propagates
            r = f(x, axis=ax, keepdims=keepdims)
            r = np.asarray(r, dtype=dt)
        elif op == 'mean':
            rt = dt if isfloat(dt) else F64  # TLALOC: f64 for ints and bool
            x64 = x.astype(F64)
            cnt = int(np.prod([x.shape[a] for a in ax])) if ax else 1
            s = np.sum(x64, axis=ax, keepdims=keepdims)
            r = (s / cnt if cnt else s * np.nan).astype(rt)
            scale = np.sum(np.abs(x64), axis=ax, keepdims=keepdims) / max(cnt, 1)
        elif op == 'logsumexp':
            # TLALOC: scipy.special.logsumexp: shift by the max where finite;
            # empty -> -inf; a +-inf max gives that inf; NaN propagates.
            rt = dt if isfloat(dt) else F64
            x64 = x.astype(F64)
            if x64.size == 0 or any(x.shape[a] == 0 for a in ax):
                oshape = [1 if i in ax else x.shape[i] for i in range(x.ndim)] if keepdims else \
                    [x.shape[i] for i in range(x.ndim) if i not in ax]
                r = np.full(oshape, -np.inf, dtype=F64).astype(rt)
            else:
                m = np.max(x64, axis=ax, keepdims=True)
                sh = np.where(np.isfinite(m), m, 0.0)
                s = np.sum(np.exp(x64 - sh), axis=ax, keepdims=True)
                r = np.log(s) + sh
                if len(ax) == 1:  # TLALOC: log1p of the non-max terms (see ref_softmax)
                    r = np.where(np.isfinite(m), np.log1p(_rest_of_max(x64 - sh, ax[0])) + sh, r)
                scale = np.abs(sh) + 1
                if not keepdims:
                    r = np.squeeze(r, axis=ax)
                    scale = np.squeeze(scale, axis=ax)
                r = r.astype(rt)
        else:
            raise KeyError(op)
    return np.asarray(r), scale


def ref_softmax(op, x, axis):
    # TLALOC (scipy.special): shift by the max along the axis, by 0 where the
    # max is not finite (NaN max: NaN); f64 for bool and ints.
    rt = x.dtype if isfloat(x.dtype) else F64
    x64 = x.astype(F64)
    with ERR:
        if x64.shape[axis] == 0:
            return x64.astype(rt), None
        m = np.max(x64, axis=axis, keepdims=True)
        sh = np.where(np.isfinite(m) | np.isnan(m), m, 0.0)
        v = x64 - sh
        s = np.sum(np.exp(v), axis=axis, keepdims=True)
        if op == 'softmax':
            return (np.exp(v) / s).astype(rt), None
        # TLALOC: log(s) as log1p of the terms other than the (first) max,
        # whose own term is exactly 1, so a dominant max keeps its digits
        logs = np.where(np.isfinite(m), np.log1p(_rest_of_max(v, axis)), np.log(s))
        return (v - logs).astype(rt), np.abs(v) + np.abs(logs)


def _rest_of_max(v, axis):
    """Sum of exp(v) along axis without the first maximal element."""
    e = np.exp(v)
    idx = np.argmax(np.where(np.isnan(v), -np.inf, v), axis=axis)
    np.put_along_axis(e, np.expand_dims(idx, axis), 0.0, axis=axis)
    return np.sum(e, axis=axis, keepdims=True)


# ---------------------------------------------------------------------------
# the runner

class Graph:
    """One .tg graph with its inputs and the checks on its outputs."""

    def __init__(self, name, dims=None, funcs='', engine=None):
        self.name = name
        self.funcs = funcs   # (func ...) forms written before the graph
        self.engine = engine # None: the interpreter; else --engine NAME
        self.ins = []        # (name, tl dtype, shape text, array)
        self.lets = []
        self.outs = []       # (label, outname, expr, expected, scale, zsign)
        self.dims = dims or {}

    def inp(self, name, arr, dt=None, shape=None):
        dt = dt or TLNAME[arr.dtype]
        self.ins.append((name, dt, shape if shape is not None else shape_str(arr.shape), arr))
        return name

    def let(self, name, expr):
        self.lets.append((name, expr))
        return name

    def out(self, label, expr, expected, scale=None, zsign=False):
        self.outs.append((label, 'o%d' % len(self.outs), expr, expected, scale, zsign))

    def text(self):
        lines = ([self.funcs] if self.funcs else []) + ['(graph %s' % self.name]
        for n, dt, sh, _ in self.ins:
            lines.append('  (in %s %s %s)' % (n, dt, sh))
        for n, e in self.lets:
            lines.append('  (let %s %s)' % (n, e))
        for _, o, e, _, _, _ in self.outs:
            lines.append('  (out %s %s)' % (o, e))
        return '\n'.join(lines) + ')\n'


def op_table(exe):
    """The op table as `tlaloc ops --markdown` prints it: {name: row}, each
    row a dict of the columns (op, arity, kind, dtype, ..., libm, ...)."""
    text = subprocess.run([exe, 'ops', '--markdown'], check=True, stdout=subprocess.PIPE).stdout.decode()
    lines = [ln for ln in text.splitlines() if ln.startswith('|')]
    head = [c.strip() for c in lines[0].strip('|').split('|')]
    rows = {}
    for ln in lines[2:]:
        cells = [c.strip().strip('`') for c in ln.strip('|').split('|')]
        rows[cells[0]] = dict(zip(head, cells))
    return rows


def derive_unary_refs(ops):
    """An elementwise float op that is libm's f (the op table's libm column)
    and has no reference here is numpy's f: a new such op is tested without
    an edit to this file."""
    for name, row in ops.items():
        f = NUMPY_NAME.get(row['libm'], row['libm'])
        if row['kind'] != 'elementwise' or not f or not hasattr(np, f):
            continue
        if row['arity'] == '1' and name not in UNARY_FLOAT:
            UNARY_FLOAT[name] = getattr(np, f)
        if row['arity'] == '2' and name not in _FBIN:
            # a two-operand libm function: float result, computed in f64
            _FBIN[name] = getattr(np, f)
            BIN_FLOAT.append(name)
            BIN_ALL.append(name)


# libm names that numpy (before 2.0) spells differently
NUMPY_NAME = {'asin': 'arcsin', 'acos': 'arccos', 'atan': 'arctan', 'asinh': 'arcsinh',
              'acosh': 'arccosh', 'atanh': 'arctanh', 'atan2': 'arctan2'}


OP_HEAD = re.compile(r'\(([a-z_0-9]+)')
NUMBER = re.compile(r'(?<![\w.])[-+]?(\d+\.?\d*(e[-+]?\d+)?|inf|nan)(?![\w.])')


class Runner:
    def __init__(self, exe, tmp, verbose, filt):
        self.exe = exe
        self.tmp = tmp
        self.verbose = verbose
        self.filt = filt
        self.passed = 0
        self.failed = 0
        self.xfailed = 0
        self.failures = []
        self.nrun = 0
        self.seen = set()
        self.ops_passed = set()  # ops that ran in a passing case

    def _dir(self, name):
        self.nrun += 1
        d = os.path.join(self.tmp, '%04d-%s' % (self.nrun, name))
        os.makedirs(d)
        return d

    def tlaloc(self, d, tg_text, inputs, dims=None, extra=None, npy_paths=None):
        """Writes graph and inputs under d, runs tlaloc; (rc, stderr, outdir)."""
        gpath = os.path.join(d, 'g.tg')
        with open(gpath, 'w') as f:
            f.write(tg_text)
        # the interpreter is what is tested here, unless a case names an engine
        args = [self.exe, 'run', gpath] + ([] if '--engine' in (extra or []) else ['--interp'])
        for name, arr in inputs:
            p = os.path.join(d, 'in-%s.npy' % name)
            np.save(p, arr)
            args += ['--in', '%s=%s' % (name, p)]
        for name, p in (npy_paths or {}).items():
            args += ['--in', '%s=%s' % (name, p)]
        for k, v in (dims or {}).items():
            args += ['--dim', '%s=%d' % (k, v)]
        outdir = os.path.join(d, 'out')
        args += ['--out', outdir] + list(extra or [])
        try:
            p = subprocess.run(args, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, timeout=60)
            return p.returncode, p.stderr.decode(errors='replace'), outdir
        except subprocess.TimeoutExpired:
            return 'timeout', '', outdir
        except OSError as e:
            return 'not run', str(e), outdir

    def record(self, label, err, where=''):
        assert label not in self.seen, 'duplicate case label ' + label
        self.seen.add(label)
        known = KNOWN_BUGS.get(label)
        if err is None and known is None:
            self.passed += 1
            if self.verbose:
                print('ok    ' + label)
        elif err is None:
            self.failed += 1
            self.failures.append(label)
            print('XPASS %s: passes now; remove its KNOWN BUG marker (%s)' % (label, known))
        elif known is not None:
            self.xfailed += 1
            if self.verbose:
                print('xfail %s: %s [KNOWN BUG: %s]' % (label, err, known))
        else:
            self.failed += 1
            self.failures.append(label)
            print('FAIL  %s: %s%s' % (label, err, ('  (' + where + ')') if where else ''))

    def wanted(self, labels):
        if not self.filt:
            return True
        return any(self.filt in lb for lb in labels)

    def run(self, g):
        labels = [o[0] for o in g.outs]
        if not self.wanted(labels + [g.name]):
            return
        d = self._dir(g.name)
        rc, err, outdir = self.tlaloc(d, g.text(), [(n, a) for n, _, _, a in g.ins], g.dims,
                                      ['--engine', g.engine] if g.engine else None)
        for label, oname, expr, exp, scale, zsign in g.outs:
            if rc != 0:
                self.record(label, 'tlaloc exited %s: %s' % (rc, err.strip()[-300:]), d)
                continue
            try:
                got = np.load(os.path.join(outdir, oname + '.npy'), allow_pickle=False)
            except Exception as e:  # noqa: BLE001
                self.record(label, 'cannot load output %s: %s' % (oname, e), d)
                continue
            msg = compare(got, np.asarray(exp), scale, zsign)
            self.record(label, msg and ('%s = %s: %s' % (oname, expr, msg)), d)
            if not msg:
                text = expr + ' ' + ' '.join(e for n, e in g.lets)
                self.ops_passed.update(OP_HEAD.findall(text))
                self.ops_passed.add('in')
                if NUMBER.search(text):
                    self.ops_passed.add('lit')

    def expect_rc(self, label, tg_text, inputs=(), rc_want=2, dims=None, npy_paths=None, extra=None):
        """A case that must exit with status rc_want and say why on stderr."""
        if not self.wanted([label]):
            return
        d = self._dir(label.replace('/', '_')[:40])
        rc, err, _ = self.tlaloc(d, tg_text, list(inputs), dims, extra, npy_paths)
        if rc != rc_want:
            self.record(label, 'exit status %s, expected %s (stderr: %s)' % (rc, rc_want, err.strip()[-200:]), d)
        elif rc_want != 0 and not err.strip():
            self.record(label, 'exit status %s but nothing on stderr' % rc, d)
        else:
            self.record(label, None)


# ---------------------------------------------------------------------------
# the cases

def t_unary(R, rng):
    for dt in DTYPES:
        x = specials(dt, rng)
        g = Graph('unary_' + dt)
        g.inp('x', x)
        ops = list(UNARY_FLOAT) + UNARY_SAME + ['not'] + ([] if dt == 'bool' else UNARY_NUMERIC)
        for op in ops:
            g.out('unary/%s/%s' % (op, dt), '(%s x)' % op, ref_unary(op, x), zsign=True)
        R.run(g)
        # the same ops on a scalar, an empty and a 2-D operand
        g = Graph('unary_shapes_' + dt)
        s = specials(dt, rng)[2:3].reshape(())
        e = random_array(dt, (2, 0, 3), rng)
        m = random_array(dt, (3, 4), rng, 0.3)
        g.inp('s', s)
        g.inp('e', e)
        g.inp('m', m)
        for op in ops:
            for nm, arr in (('s', s), ('e', e), ('m', m)):
                g.out('unary/%s/%s/%s' % (op, dt, {'s': '[]', 'e': '[2 0 3]', 'm': '[3 4]'}[nm]),
                      '(%s %s)' % (op, nm), ref_unary(op, arr), zsign=True)
        R.run(g)


def _bin_expr(op, xn, yn, ydt):
    if op == 'pow' and ydt in ('i32', 'i64'):
        # integer powers need a non-negative exponent (else a run-time error)
        return '(pow %s (maximum %s 0))' % (xn, yn)
    return '(%s %s %s)' % (op, xn, yn)


def _bin_ref(op, x, y):
    if op == 'pow' and y.dtype.kind == 'i':
        y = np.maximum(y, np.array(0, dtype=y.dtype))
    return ref_binary(op, x, y)


def t_binary(R, rng):
    """Every binary op on every dtype pair: x [K 1] against y [K], so every
    awkward value of x meets every awkward value of y."""
    for xd in DTYPES:
        for yd in DTYPES:
            x = specials(xd, rng, 6)
            y = specials(yd, rng, 6)
            x = x.reshape(-1, 1)
            g = Graph('binary_%s_%s' % (xd, yd))
            g.inp('x', x)
            g.inp('y', y)
            for op in BIN_ALL:
                if op in BIN_NUMERIC and xd == 'bool' and yd == 'bool':
                    continue
                if op in BIN_INT and (isfloat(NP[xd]) or isfloat(NP[yd])):
                    continue
                # which of 0.0 and -0.0 maximum/minimum return is not
                # specified (numpy's SIMD loops differ from its scalar ones)
                g.out('binary/%s/%s,%s' % (op, xd, yd), _bin_expr(op, 'x', 'y', yd),
                      _bin_ref(op, x, y), zsign=op not in ('maximum', 'minimum'))
            R.run(g)


def t_where(R, rng):
    for xd in DTYPES:
        for yd in DTYPES:
            g = Graph('where_%s_%s' % (xd, yd))
            c = rng.integers(0, 2, (4, 1)).astype(bool)
            x = np.resize(specials(xd, rng, 0), 8)
            y = np.resize(specials(yd, rng, 0)[::-1], 8)
            g.inp('c', c)
            g.inp('x', x)
            g.inp('y', y)
            g.out('where/%s,%s' % (xd, yd), '(where c x y)', ref_where(c, x, y), zsign=True)
            R.run(g)
    # conditions of every dtype (truthiness: NaN is true, -0.0 false)
    g = Graph('where_cond')
    x = np.arange(1, 17, dtype=np.float64).reshape(16)
    y = -x
    g.inp('x', x)
    g.inp('y', y)
    for cd in DTYPES:
        c = specials(cd, rng, 0)[:16]
        c = np.resize(c, 16)
        g.inp('c_' + cd, c)
        g.out('where/cond-%s' % cd, '(where c_%s x y)' % cd, np.where(c.astype(bool) | (np.isnan(c) if isfloat(c.dtype) else False), x, y))
        g.out('not/cond-%s' % cd, '(not c_%s)' % cd, ref_unary('not', c))
        g.out('and/cond-%s' % cd, '(and c_%s (lt x 9))' % cd, np.logical_and(c.astype(bool), x < 9))
    R.run(g)


def t_broadcast(R, rng):
    for dt in DTYPES:
        g = Graph('bcast_' + dt)
        a = random_array(dt, (3, 1), rng, 0.3)
        b = random_array(dt, (4,), rng, 0.3)
        s = random_array(dt, (), rng)
        m = random_array(dt, (2, 3), rng, 0.3)
        e = random_array(dt, (0,), rng)
        one = random_array(dt, (1,), rng)
        e3 = random_array(dt, (2, 0, 3), rng)
        r = random_array(dt, (3,), rng)
        c = rng.integers(0, 2, (3, 1)).astype(bool)
        for n, v in (('a', a), ('b', b), ('s', s), ('m', m), ('e', e), ('one', one), ('e3', e3), ('r', r), ('c', c)):
            g.inp(n, v)
        op2 = 'maximum' if dt == 'bool' else 'sub'
        for op in ('add', 'mul', op2, 'lt', 'div'):
            for xn, yn, xv, yv in (('a', 'b', a, b), ('b', 'a', b, a), ('s', 'm', s, m), ('m', 's', m, s),
                                   ('e', 'one', e, one), ('one', 'e', one, e), ('e3', 'r', e3, r),
                                   ('e3', 's', e3, s), ('r', 'm', r, m)):
                g.out('bcast/%s/%s/%s%s,%s%s' % (op, dt, xn, list(xv.shape), yn, list(yv.shape)),
                      '(%s %s %s)' % (op, xn, yn), ref_binary(op, xv, yv))
        g.out('bcast/where/%s/c[3 1],s,b' % dt, '(where c s b)', ref_where(c, s, b))
        c3 = rng.integers(0, 2, (3,)).astype(bool)
        g.inp('c3', c3)
        g.out('bcast/where/%s/c[3],e3,s' % dt, '(where c3 e3 s)', ref_where(c3, e3, s))
        R.run(g)


def t_literals(R, rng):
    """TLALOC (NEP 50): weakly typed literals take the array's dtype unless
    their kind is higher (float literal with ints/bool -> f64, int literal
    with bool -> i64)."""
    lits = [2.5, 2, 3, -1, 0.1, 1e300, -0.0, 0, float('inf'), float('nan')]
    for dt in DTYPES:
        g = Graph('lit_' + dt)
        x = specials(dt, rng, 4)
        g.inp('x', x)
        for op in ('add', 'mul', 'sub', 'div', 'maximum', 'lt', 'eq', 'pow', 'floor_divide'):
            for lit in lits:
                lt = weak_dtype(NP[dt], lit)
                with ERR:
                    lv = np.array(lit, dtype=lt)
                for side in (0, 1):
                    # integer powers with a negative exponent are a run-time
                    # error (tested in t_errors): skip those operand orders
                    if op == 'pow' and lt.kind == 'i':
                        if side == 0 and lit < 0:
                            continue
                        if side == 1 and dt != 'bool':
                            continue
                    if side:
                        expr = '(%s %s x)' % (op, fmt_num(lit))
                        exp = ref_binary(op, lv, x, lt, x.dtype)
                    else:
                        expr = '(%s x %s)' % (op, fmt_num(lit))
                        exp = ref_binary(op, x, lv, x.dtype, lt)
                    g.out('lit/%s/%s/%s/%d' % (op, dt, fmt_num(lit), side), expr, exp, zsign=op != 'maximum')
        # where with literal branches
        c = rng.integers(0, 2, x.shape).astype(bool)
        g.inp('c', c)
        for lit in (1.5, 7):
            lt = weak_dtype(NP[dt], lit)
            g.out('lit/where/%s/%s' % (dt, lit), '(where c x %s)' % fmt_num(lit),
                  np.where(c, x.astype(promote(x.dtype, lt)), np.array(lit, dtype=lt)))
        R.run(g)
    # all-weak expressions stay weak and default to i64 / f64
    g = Graph('lit_only')
    g.out('lit/only/int', '(add 2 3)', np.array(5, dtype=np.int64))
    g.out('lit/only/float', '(mul 2.5 2)', np.array(5.0))
    g.out('lit/only/exp', '(exp 1)', np.array(math.e))
    g.out('lit/only/cmp', '(lt 1 2.5)', np.array(True))
    g.out('lit/only/bcast', '(add (fill f32 [2] 1.5) (mul 2 3))', np.array([7.5, 7.5], dtype=np.float32))
    R.run(g)


def t_cast(R, rng):
    for sd in DTYPES:
        g = Graph('cast_' + sd)
        x = specials(sd, rng, 6)
        if isfloat(NP[sd]):
            x = np.concatenate([x, np.array([2147483647.5, 2147483648.0, -2147483648.9, -2147483649.0,
                                             9.3e18, -9.3e18, 2.0**63, -2.0**63, 1.5, -1.5, 0.9999], dtype=NP[sd])])
        g.inp('x', x)
        for dd in DTYPES:
            g.out('cast/%s->%s' % (sd, dd), '(cast x :dtype %s)' % dd, ref_cast(x, NP[dd]), zsign=True)
        R.run(g)


REDUCE_AXES = [None, 0, 1, -1, [0, 2], [2, 0, 1], [-2]]


def _reduce_data(dt, rng, prod=False):
    x = random_array(dt, (3, 4, 5), rng)
    if isfloat(NP[dt]):
        if prod:
            x = (rng.uniform(0.5, 2.0, (3, 4, 5)) * np.where(rng.random((3, 4, 5)) < 0.5, -1, 1)).astype(NP[dt])
        big = 3e38 if dt == 'f32' else 1e300
        x[0, 1, 0] = np.nan
        x[0, 2, 1] = np.inf
        x[0, 0, 2] = np.inf
        x[0, 3, 2] = -np.inf
        x[1, 2, 3] = -np.inf
        x[2, :, 4] = -np.inf
        x[2, 2, :] = -0.0
        x[1, 1, 4] = 1e30 if prod else big
        x[2, 3, 0] = 1e-30 if prod else (1e-300 if dt == 'f64' else 1e-40)
        if not prod:
            x[1, 0, 0] = -big if dt == 'f64' else -1e30
    elif dt != 'bool':
        info = np.iinfo(NP[dt])
        x[0, 0, 0] = info.max
        x[0, 1, 0] = info.max
        x[1, 0, 1] = info.min
        x[2, 3, 3] = info.min
        x[1, 1, 1] = 0
    return x


def t_reduce(R, rng):
    for dt in DTYPES:
        g = Graph('reduce_' + dt)
        x = _reduce_data(dt, rng)
        xp = _reduce_data(dt, rng, prod=True)
        g.inp('x', x)
        g.inp('xp', xp)
        for op in ('sum', 'prod', 'max', 'min', 'mean', 'logsumexp'):
            src, arr = ('xp', xp) if op == 'prod' else ('x', x)
            for axis in REDUCE_AXES:
                for kd in (False, True):
                    attr = ''
                    if axis is not None:
                        attr += ' :axis ' + (str(axis) if isinstance(axis, int) else '[' + ' '.join(map(str, axis)) + ']')
                    if kd:
                        attr += ' :keepdims true'
                    exp, scale = ref_reduce(op, arr, axis, kd)
                    g.out('reduce/%s/%s/axis=%s/kd=%d' % (op, dt, axis, kd), '(%s %s%s)' % (op, src, attr), exp, scale)
        R.run(g)
        # empty operands: sum 0, prod 1, mean NaN, logsumexp -inf; max/min
        # over a non-empty axis of an empty array is fine (an empty result)
        g = Graph('reduce_empty_' + dt)
        e = random_array(dt, (2, 0, 3), rng)
        g.inp('e', e)
        for op in ('sum', 'prod', 'mean', 'logsumexp'):
            for axis in (None, 1, [0, 1], 2):
                exp, scale = ref_reduce(op, e, axis, False)
                g.out('reduce/%s/%s/empty/axis=%s' % (op, dt, axis), '(%s e%s)' % (op, '' if axis is None else ' :axis ' + (str(axis) if isinstance(axis, int) else '[%s]' % ' '.join(map(str, axis)))), exp, scale)
        for op in ('max', 'min'):
            for axis in (0, 2, [0, 2]):
                exp, _ = ref_reduce(op, e, axis, True)
                g.out('reduce/%s/%s/empty/axis=%s' % (op, dt, axis), '(%s e :axis %s :keepdims true)' % (op, str(axis) if isinstance(axis, int) else '[%s]' % ' '.join(map(str, axis))), exp)
        s = random_array(dt, (), rng)
        g.inp('s', s)
        for op in ('sum', 'prod', 'max', 'min', 'mean', 'logsumexp'):
            exp, scale = ref_reduce(op, s, None, False)
            g.out('reduce/%s/%s/scalar' % (op, dt), '(%s s)' % op, exp, scale)
        R.run(g)


def t_softmax(R, rng):
    for dt in DTYPES:
        g = Graph('softmax_' + dt)
        x = random_array(dt, (3, 4, 5), rng)
        if isfloat(NP[dt]):
            x[0, 1, :] *= 30
            x[0, 2, 3] = np.nan
            x[1, 0, 2] = np.inf
            x[1, 3, :] = -np.inf
            x[2, 1, 1] = 3e38 if dt == 'f32' else 1e300
            x[2, 2, 0] = -np.inf
        v = random_array(dt, (6,), rng)
        e = random_array(dt, (2, 0), rng)
        g.inp('x', x)
        g.inp('v', v)
        g.inp('e', e)
        for op in ('softmax', 'log_softmax'):
            for axis in (None, 0, 1, 2, -2):
                exp, scale = ref_softmax(op, x, -1 if axis is None else axis)
                g.out('%s/%s/axis=%s' % (op, dt, axis), '(%s x%s)' % (op, '' if axis is None else ' :axis %d' % axis),
                      exp, scale)
            exp, scale = ref_softmax(op, v, 0)
            g.out('%s/%s/rank1' % (op, dt), '(%s v)' % op, exp, scale)
            for axis in (0, 1):
                exp, scale = ref_softmax(op, e, axis)
                g.out('%s/%s/empty/axis=%d' % (op, dt, axis), '(%s e :axis %d)' % (op, axis), exp, scale)
        R.run(g)


def t_shape(R, rng):
    for dt in DTYPES:
        g = Graph('shape_' + dt)
        x = random_array(dt, (2, 3, 4), rng, 0.2)
        c = random_array(dt, (3, 1), rng)
        q = random_array(dt, (1, 3, 1), rng)
        e = random_array(dt, (2, 0, 4), rng)
        s = random_array(dt, (), rng)
        for n, v in (('x', x), ('c', c), ('q', q), ('e', e), ('s', s)):
            g.inp(n, v)
        cases = [
            ('reshape/[4 -1]', '(reshape x :shape [4 -1])', x.reshape(4, -1)),
            ('reshape/[24]', '(reshape x :shape [24])', x.reshape(24)),
            ('reshape/[-1 2 2]', '(reshape x :shape [-1 2 2])', x.reshape(-1, 2, 2)),
            ('reshape/[1 2 1 12]', '(reshape x :shape [1 2 1 12])', x.reshape(1, 2, 1, 12)),
            ('reshape/scalar->[1 1]', '(reshape s :shape [1 1])', s.reshape(1, 1)),
            ('reshape/[1 1]->[]', '(reshape (reshape s :shape [1 1]) :shape [])', s.reshape(())),
            ('reshape/empty', '(reshape e :shape [0 8])', e.reshape(0, 8)),
            ('reshape/empty-1', '(reshape e :shape [4 -1])', e.reshape(4, -1)),
            ('transpose/default', '(transpose x)', x.transpose()),
            ('transpose/[1 0 2]', '(transpose x :perm [1 0 2])', x.transpose(1, 0, 2)),
            ('transpose/[2 0 1]', '(transpose x :perm [2 0 1])', x.transpose(2, 0, 1)),
            ('transpose/[-1 0 1]', '(transpose x :perm [-1 0 1])', x.transpose(2, 0, 1)),
            ('transpose/empty', '(transpose e :perm [1 2 0])', e.transpose(1, 2, 0)),
            ('transpose/scalar', '(transpose s)', s),
            ('broadcast_to/[3 1]->[2 3 4]', '(broadcast_to c :shape [2 3 4])', np.broadcast_to(c, (2, 3, 4))),
            ('broadcast_to/[]->[2 3]', '(broadcast_to s :shape [2 3])', np.broadcast_to(s, (2, 3))),
            ('broadcast_to/[3 1]->[0 3 5]', '(broadcast_to c :shape [0 3 5])', np.broadcast_to(c, (0, 3, 5))),
            ('broadcast_to/same', '(broadcast_to x :shape [2 3 4])', x),
            ('expand_dims/0', '(expand_dims x :axis 0)', np.expand_dims(x, 0)),
            ('expand_dims/-1', '(expand_dims x :axis -1)', np.expand_dims(x, -1)),
            ('expand_dims/[0 2]', '(expand_dims x :axis [0 2])', np.expand_dims(x, (0, 2))),
            ('expand_dims/2', '(expand_dims x :axis 2)', np.expand_dims(x, 2)),
            ('expand_dims/scalar', '(expand_dims s :axis 0)', np.expand_dims(s, 0)),
            ('squeeze/all', '(squeeze q)', np.squeeze(q)),
            ('squeeze/0', '(squeeze q :axis 0)', np.squeeze(q, 0)),
            ('squeeze/[0 -1]', '(squeeze q :axis [0 -1])', np.squeeze(q, (0, 2))),
            ('squeeze/none', '(squeeze x)', x),
            ('concat/0', '(concat x x :axis 0)', np.concatenate([x, x], 0)),
            ('concat/1', '(concat x (slice x :axis 1 :stop 1) x :axis 1)', np.concatenate([x, x[:, :1], x], 1)),
            ('concat/-1', '(concat x e x :axis 1)', np.concatenate([x, e, x], 1)),
            ('concat/last', '(concat x (slice x :axis 2 :start 1) :axis -1)', np.concatenate([x, x[:, :, 1:]], -1)),
            ('concat/default', '(concat c c)', np.concatenate([c, c], 0)),
            ('concat/one', '(concat x :axis 1)', x),
            ('concat/empty', '(concat e e :axis 0)', np.concatenate([e, e], 0)),
            ('zeros_like', '(zeros_like x)', np.zeros_like(x)),
            ('ones_like', '(ones_like x)', np.ones_like(x)),
            ('zeros_like/empty', '(zeros_like e)', np.zeros_like(e)),
            ('ones_like/scalar', '(ones_like s)', np.ones_like(s)),
            ('dim/1', '(dim x :axis 1)', np.int64(x.shape[1])),
            ('dim/-1 of empty', '(dim e :axis -1)', np.int64(e.shape[-1])),
            ('iota/1', '(iota x :axis 1)', np.broadcast_to(np.arange(x.shape[1]).reshape(1, -1, 1), x.shape).copy()),
            ('iota/-1 plus x', '(add (iota x :axis -1) x)',
             (np.broadcast_to(np.arange(x.shape[-1]), x.shape) + x.astype(np.promote_types(x.dtype, np.int64)))),
            ('iota/empty', '(iota e :axis 0)', np.zeros(e.shape, np.int64)),
            ('dim/in arithmetic', '(mul x (dim x :axis 0))', x.astype(np.promote_types(x.dtype, np.int64)) * x.shape[0]),
        ]
        slices = [(0, None, None, None), (1, 1, None, None), (1, None, 2, None), (2, 1, 3, None),
                  (2, None, None, 2), (2, None, None, -1), (2, -1, None, -2), (2, 3, 0, -1),
                  (1, -100, 100, None), (1, 100, -100, -1), (2, 5, 9, None), (2, -2, -1, None),
                  (0, 1, 0, None), (-1, None, None, 3), (-3, None, -1, None), (2, 10, None, -3),
                  (2, None, -10, -1)]
        for ax, st, sp, step in slices:
            attr = ' :axis %d' % ax
            sl = [slice(None)] * 3
            sl[ax] = slice(st, sp, step)
            if st is not None:
                attr += ' :start %d' % st
            if sp is not None:
                attr += ' :stop %d' % sp
            if step is not None:
                attr += ' :step %d' % step
            cases.append(('slice/%s' % attr.strip(), '(slice x%s)' % attr, x[tuple(sl)]))
        cases.append(('slice/noaxis', '(slice x :start 1)', x[1:]))
        cases.append(('slice/empty', '(slice e :axis 2 :start 1 :step 2)', e[:, :, 1::2]))
        # take: indices i32 and i64, negative indices wrap; flat without :axis
        i32 = np.array([2, -1, 0, 1, -3], dtype=np.int32)
        i64 = np.array([[3, -4], [0, 1], [-1, 2]], dtype=np.int64)
        ie = np.zeros((0,), dtype=np.int64)
        i_s = np.array(-2, dtype=np.int32)
        g.inp('i32', i32)
        g.inp('i64', i64)
        g.inp('ie', ie)
        g.inp('is', i_s)
        cases += [
            ('take/axis1/i32', '(take x i32 :axis 1)', np.take(x, i32, axis=1)),
            ('take/axis0/i32', '(take x (slice i32 :start 1 :stop 4 :step 2) :axis 0)', np.take(x, i32[1:4:2], axis=0)),
            ('take/axis-1/i64', '(take x i64 :axis -1)', np.take(x, i64, axis=-1)),
            ('take/axis2/i64', '(take x i64 :axis 2)', np.take(x, i64, axis=2)),
            ('take/flat/i64', '(take x i64)', np.take(x, i64)),
            ('take/flat/i32', '(take x i32)', np.take(x, i32)),
            ('take/empty-idx', '(take x ie :axis 1)', np.take(x, ie, axis=1)),
            ('take/scalar-idx', '(take x is :axis 1)', np.take(x, i_s, axis=1)),
            ('take/empty-x', '(take e i32 :axis 2)', np.take(e, np.array([2, -1, 0, 1, -3]), axis=2)),
        ]
        # slice_update: x with a slice replaced; scatter_add: x with rows added at indices
        x2 = random_array(dt, (2, 3, 4), rng, 0.2)
        g.inp('x2', x2)
        for ax, st, sp, step in slices[:9]:
            attr = ' :axis %d' % ax
            sl = [slice(None)] * 3
            sl[ax] = slice(st, sp, step)
            for nm, v in ((' :start %d', st), (' :stop %d', sp), (' :step %d', step)):
                if v is not None:
                    attr += nm % v
            y = x.copy()
            y[tuple(sl)] = x2[tuple(sl)]
            cases.append(('slice_update/%s' % attr.strip(), '(slice_update x (slice x2%s)%s)' % (attr, attr), y))
        if dt != 'bool':
            for ax, idx, nm in ((1, i32, 'i32'), (2, i64, 'i64'), (-1, i32, 'i32'), (0, ie, 'ie')):
                y = x.copy()
                v = np.take(x2, idx, axis=ax)
                ix = [slice(None)] * 3
                ix[ax] = idx
                np.add.at(y, tuple(ix), v)
                cases.append(('scatter_add/axis%d/%s' % (ax, nm),
                              '(scatter_add x %s (take x2 %s :axis %d) :axis %d)' % (nm, nm, ax, ax), y))
            y = x.copy().reshape(-1)
            np.add.at(y, i64.reshape(-1), np.take(x2, i64).reshape(-1))
            cases.append(('scatter_add/flat', '(scatter_add x i64 (take x2 i64))', y.reshape(x.shape)))
        for label, expr, exp in cases:
            g.out('shape/%s/%s' % (label, dt), expr, np.array(exp, order='C'))
        R.run(g)


def t_matmul(R, rng):
    shapes = [((3, 4), (4, 5)), ((4,), (4, 5)), ((3, 4), (4,)), ((4,), (4,)),
              ((2, 1, 3, 4), (5, 4, 2)), ((2, 3, 4), (4, 2)), ((4,), (2, 4, 3)),
              ((2, 3, 4), (4,)), ((3, 0), (0, 2)), ((0, 3), (3, 2)), ((1, 3, 4), (2, 4, 1)),
              ((2, 3, 4), (1, 4, 2)), ((3, 1, 2, 4), (1, 5, 4, 2)), ((2, 2, 3), (2, 1, 3, 2)),
              ((0, 2, 3), (3, 4)), ((2, 0), (0,))]
    pairs = [(d, d) for d in DTYPES] + [('i32', 'f32'), ('i32', 'i64'), ('bool', 'f64'), ('f32', 'f64'), ('bool', 'i32')]
    for ad, bd in pairs:
        g = Graph('matmul_%s_%s' % (ad, bd))
        for k, (sa, sb) in enumerate(shapes):
            a = random_array(ad, sa, rng)
            b = random_array(bd, sb, rng)
            if ad == 'i64' and a.size:
                a.flat[0] = I64_MAX  # wraps
            if ad == 'i32' and a.size:
                a.flat[0] = I32_MAX
            g.inp('a%d' % k, a)
            g.inp('b%d' % k, b)
            ct = promote(a.dtype, b.dtype)
            with ERR:
                if ct == BOOL:
                    exp = np.matmul(a.astype(np.int64), b.astype(np.int64)) != 0  # or of ands
                    scale = None
                elif isfloat(ct):
                    exp = np.matmul(a.astype(F64), b.astype(F64)).astype(ct)
                    scale = np.matmul(np.abs(a.astype(F64)), np.abs(b.astype(F64)))
                else:
                    exp = np.matmul(a.astype(I64), b.astype(I64)).astype(ct)  # wraps
                    scale = None
            g.out('matmul/%s,%s/%s@%s' % (ad, bd, list(sa), list(sb)), '(matmul a%d b%d)' % (k, k), np.asarray(exp), scale)
        R.run(g)
    # special values: inf * 0 -> NaN, NaN propagates, inf + -inf -> NaN
    for dt in ('f32', 'f64'):
        g = Graph('matmul_special_' + dt)
        a = np.array([[1.0, np.inf, 0.0], [np.nan, 1.0, 2.0], [1.0, 2.0, 3.0], [np.inf, -np.inf, 1.0]], dtype=NP[dt])
        b = np.array([[1.0, 0.0], [1.0, 2.0], [0.0, -0.5]], dtype=NP[dt])
        g.inp('a', a)
        g.inp('b', b)
        with ERR:
            exp = np.matmul(a.astype(F64), b.astype(F64)).astype(NP[dt])
            scale = np.matmul(np.abs(a.astype(F64)), np.abs(b.astype(F64)))
        g.out('matmul/special/%s' % dt, '(matmul a b)', exp, scale)
        R.run(g)


def t_constants(R, rng):
    g = Graph('constants', dims={'n': 2})
    g.inp('x', np.zeros((2, 3), dtype=np.float32), shape='[n 3]')
    g.out('const/f32', '(const f32 [3] 1 2 3)', np.array([1, 2, 3], dtype=np.float32))
    g.out('const/f32-special', '(const f32 [2 3] 0.5 -0.0 inf -inf 3e38 1e-45)',
          np.array([[0.5, -0.0, np.inf], [-np.inf, 3e38, 1e-45]], dtype=np.float32), zsign=True)
    g.out('const/f32-overflow', '(const f32 [2] 1e300 -1e300)', np.array([np.inf, -np.inf], dtype=np.float32))
    g.out('const/f64', '(const f64 [2 2] 1e300 5e-324 -0.0 nan)', np.array([[1e300, 5e-324], [-0.0, np.nan]]), zsign=True)
    g.out('const/f64-int', '(const f64 [2] 1 -7)', np.array([1.0, -7.0]))
    g.out('const/i32', '(const i32 [4] -2147483648 2147483647 0 -5)', np.array([I32_MIN, I32_MAX, 0, -5], dtype=np.int32))
    g.out('const/i64', '(const i64 [3] -9223372036854775807 9223372036854775807 1152921573326323713)',
          np.array([I64_MIN + 1, I64_MAX, 2**60 + 2**36 + 1], dtype=np.int64))
    g.out('const/i64-min', '(const i64 [1] -9223372036854775808)', np.array([I64_MIN], dtype=np.int64))
    g.out('const/bool', '(const bool [2 2] 1 0 0 1)', np.array([[True, False], [False, True]]))
    g.out('const/scalar', '(const f64 [] 2.5)', np.array(2.5))
    g.out('const/empty', '(const i32 [0 3])', np.zeros((0, 3), dtype=np.int32))
    g.out('fill/f32', '(fill f32 [2 3] 0.5)', np.full((2, 3), 0.5, dtype=np.float32))
    g.out('fill/f32-sym', '(fill f32 [n 3] 0.25)', np.full((2, 3), 0.25, dtype=np.float32))
    g.out('fill/f64-inf', '(fill f64 [2] -inf)', np.full((2,), -np.inf))
    g.out('fill/f64-negzero', '(fill f64 [2] -0.0)', np.full((2,), -0.0), zsign=True)
    g.out('fill/f32-int', '(fill f32 [1] 3)', np.full((1,), 3.0, dtype=np.float32))
    g.out('fill/i32', '(fill i32 [3] -2147483648)', np.full((3,), I32_MIN, dtype=np.int32))
    g.out('fill/i64', '(fill i64 [2 2] 9223372036854775807)', np.full((2, 2), I64_MAX, dtype=np.int64))
    g.out('fill/bool', '(fill bool [2] 1)', np.full((2,), True))
    g.out('fill/scalar', '(fill i64 [] 7)', np.array(7, dtype=np.int64))
    g.out('fill/empty', '(fill f64 [0 2] 1.5)', np.zeros((0, 2)))
    g.out('fill/add-input', '(add x (fill f32 [n 3] 1.5))', np.full((2, 3), 1.5, dtype=np.float32))
    R.run(g)
    for dt in DTYPES:
        g = Graph('like_' + dt)
        x = specials(dt, rng, 2).reshape(-1, 1)[:6].reshape(2, 3)
        g.inp('x', x)
        g.out('zeros_like/%s' % dt, '(zeros_like x)', np.zeros_like(x), zsign=True)
        g.out('ones_like/%s' % dt, '(ones_like x)', np.ones_like(x))
        R.run(g)


def t_symbolic(R, rng):
    g = Graph('symbolic')
    x = random_array('f64', (3, 4), rng)
    y = random_array('f64', (4,), rng)
    g.inp('x', x, shape='[n m]')
    g.inp('y', y, shape='[m]')
    g.out('sym/add', '(add x y)', x + y)
    g.out('sym/sum', '(sum x :axis 1)', x.sum(1))
    g.out('sym/matmul', '(matmul x y)', x @ y)
    g.out('sym/softmax', '(softmax x :axis 0)', ref_softmax('softmax', x, 0)[0])
    R.run(g)
    # a symbolic dim bound only by --dim, with a zero size
    g = Graph('symbolic_zero', dims={'n': 0})
    g.out('sym/fill0', '(fill f64 [n 2] 1.0)', np.zeros((0, 2)))
    g.out('sym/sum0', '(sum (fill f64 [n 2] 1.0) :axis 0)', np.zeros(2))
    R.run(g)


# ---- errors: bad input exits with status 2 --------------------------------

def _write_raw_npy(path, header_dict, data, version=(1, 0)):
    h = repr(header_dict).encode('latin1')
    pre = 10 if version == (1, 0) else 12
    pad = (64 - (pre + len(h) + 1) % 64) % 64
    h = h + b' ' * pad + b'\n'
    with open(path, 'wb') as f:
        f.write(b'\x93NUMPY' + bytes(version))
        f.write(len(h).to_bytes(2 if version == (1, 0) else 4, 'little'))
        f.write(h)
        f.write(data)


def t_errors(R, rng):
    tg_x = '(graph g (in x f32 [2 3]) (out y (neg x)))\n'
    x = np.zeros((2, 3), dtype=np.float32)
    R.expect_rc('error/npy-wrong-dtype', tg_x, [('x', x.astype(np.float64))])
    R.expect_rc('error/npy-wrong-dtype-i32', tg_x, [('x', x.astype(np.int32))])
    R.expect_rc('error/npy-fortran', tg_x, [('x', np.asfortranarray(np.arange(6, dtype=np.float32).reshape(2, 3)))])
    R.expect_rc('error/npy-big-endian', tg_x, [('x', x.astype('>f4'))])
    R.expect_rc('error/npy-big-endian-i8', '(graph g (in x i64 [3]) (out y x))\n', [('x', np.arange(3).astype('>i8'))])
    R.expect_rc('error/npy-big-endian-f8', '(graph g (in x f64 [3]) (out y x))\n', [('x', np.arange(3.0).astype('>f8'))])
    R.expect_rc('error/npy-structured', '(graph g (in x f64 [3]) (out y x))\n',
                [('x', np.zeros(3, dtype=[('a', '<f8')]))])
    R.expect_rc('error/npy-3d-fortran', '(graph g (in x f64 [2 3 2]) (out y x))\n',
                [('x', np.asfortranarray(np.arange(12.0).reshape(2, 3, 2)))])
    R.expect_rc('error/npy-int16', '(graph g (in x i32 [3]) (out y x))\n', [('x', np.zeros(3, dtype=np.int16))])
    R.expect_rc('error/npy-uint8', '(graph g (in x bool [3]) (out y x))\n', [('x', np.zeros(3, dtype=np.uint8))])
    R.expect_rc('error/npy-complex', '(graph g (in x f64 [3]) (out y x))\n', [('x', np.zeros(3, dtype=np.complex128))])
    R.expect_rc('error/npy-f16', tg_x, [('x', x.astype(np.float16))])
    R.expect_rc('error/npy-shape', tg_x, [('x', np.zeros((3, 2), dtype=np.float32))])
    R.expect_rc('error/npy-rank', tg_x, [('x', np.zeros((6,), dtype=np.float32))])
    R.expect_rc('error/npy-rank0', tg_x, [('x', np.zeros((), dtype=np.float32))])
    R.expect_rc('error/npy-empty-vs-shape', tg_x, [('x', np.zeros((2, 0), dtype=np.float32))])
    d = os.path.join(R.tmp, 'raw')
    os.makedirs(d, exist_ok=True)
    obj = os.path.join(d, 'obj.npy')
    np.save(obj, np.array([1, 'a', None], dtype=object), allow_pickle=True)
    R.expect_rc('error/npy-object', '(graph g (in x f64 [3]) (out y x))\n', npy_paths={'x': obj})
    good = os.path.join(d, 'good.npy')
    np.save(good, x)
    raw = open(good, 'rb').read()
    for nm, data in (('truncated-data', raw[:-5]), ('truncated-header', raw[:20]), ('bad-magic', b'\x93NUMPX' + raw[6:]),
                     ('empty-file', b''), ('text', b'hello world\n' * 10), ('version-9', raw[:6] + b'\x09\x00' + raw[8:])):
        p = os.path.join(d, nm + '.npy')
        with open(p, 'wb') as f:
            f.write(data)
        R.expect_rc('error/npy-' + nm, tg_x, npy_paths={'x': p})
    p = os.path.join(d, 'bad-shape-header.npy')
    _write_raw_npy(p, {'descr': '<f4', 'fortran_order': False, 'shape': (2, -3)}, b'\0' * 24)
    R.expect_rc('error/npy-negative-dim', tg_x, npy_paths={'x': p})
    p = os.path.join(d, 'huge-shape.npy')
    _write_raw_npy(p, {'descr': '<f4', 'fortran_order': False, 'shape': (2**40, 2**40)}, b'\0' * 24)
    R.expect_rc('error/npy-huge-shape', '(graph g (in x f32 [n m]) (out y x))\n', npy_paths={'x': p})
    p = os.path.join(d, 'missing.npy')
    R.expect_rc('error/npy-missing-file', tg_x, npy_paths={'x': p})
    R.expect_rc('error/no-input-value', tg_x)
    R.expect_rc('error/unknown-input', tg_x, [('x', x), ('zz', x)])
    R.expect_rc('error/sym-conflict', '(graph g (in x f64 [n]) (in y f64 [n]) (out z (add x y)))\n',
                [('x', np.zeros(2)), ('y', np.zeros(3))])
    R.expect_rc('error/sym-vs-dim', '(graph g (in x f64 [n]) (out z (neg x)))\n', [('x', np.zeros(2))], dims={'n': 3})
    # dtype errors at inference (TLALOC: these ops refuse bool operands)
    for op in ('neg', 'sign'):
        R.expect_rc('error/bool-%s' % op, '(graph g (in x bool [2]) (out y (%s x)))\n' % op,
                    [('x', np.array([True, False]))])
    for op in ('sub', 'floor_divide', 'remainder', 'pow'):
        R.expect_rc('error/bool-%s' % op, '(graph g (in x bool [2]) (out y (%s x x)))\n' % op,
                    [('x', np.array([True, False]))])
    bad_graphs = {
        'bcast-mismatch': '(graph g (in x f32 [3]) (in y f32 [4]) (out z (add x y)))',
        'reshape-size': '(graph g (in x f32 [2 3]) (out z (reshape x :shape [4 2])))',
        'reshape-two-infer': '(graph g (in x f32 [2 3]) (out z (reshape x :shape [-1 -1])))',
        'take-float-idx': '(graph g (in x f32 [3]) (in i f32 [2]) (out z (take x i :axis 0)))',
        'cast-no-dtype': '(graph g (in x f32 [3]) (out z (cast x)))',
        'matmul-inner': '(graph g (in x f32 [2 3]) (in y f32 [4 2]) (out z (matmul x y)))',
        'matmul-scalar': '(graph g (in x f32 []) (in y f32 [3]) (out z (matmul x y)))',
        'squeeze-non1': '(graph g (in x f32 [2 3]) (out z (squeeze x :axis 0)))',
        'sum-axis-range': '(graph g (in x f32 [2 3]) (out z (sum x :axis 2)))',
        'sum-axis-repeat': '(graph g (in x f32 [2 3]) (out z (sum x :axis [1 -1])))',
        'max-empty-axis': '(graph g (in x f32 [2 0]) (out z (max x :axis 1)))',
        'min-empty-all': '(graph g (in x i32 [0]) (out z (min x)))',
        'transpose-perm': '(graph g (in x f32 [2 3]) (out z (transpose x :perm [0 0])))',
        'concat-shapes': '(graph g (in x f32 [2 3]) (in y f32 [3 3]) (out z (concat x y :axis 1)))',
        'concat-rank': '(graph g (in x f32 [2 3]) (in y f32 [3]) (out z (concat x y)))',
        'slice-step0': '(graph g (in x f32 [3]) (out z (slice x :step 0)))',
        'broadcast_to-bad': '(graph g (in x f32 [3]) (out z (broadcast_to x :shape [2 4])))',
        'softmax-scalar': '(graph g (in x f32 []) (out z (softmax x)))',
        'unknown-op': '(graph g (in x f32 [3]) (out z (frobnicate x)))',
        'unknown-name': '(graph g (in x f32 [3]) (out z (neg y)))',
        'unclosed': '(graph g (in x f32 [3]) (out z (neg x))',
        'bad-dtype': '(graph g (in x f16 [3]) (out z (neg x)))',
        'arity': '(graph g (in x f32 [3]) (out z (add x)))',
        'bad-attr': '(graph g (in x f32 [3]) (out z (neg x :axis 0)))',
        'const-count': '(graph g (out z (const f32 [3] 1 2)))',
        'const-bool-value': '(graph g (out z (const bool [1] 2)))',
        'const-i32-range': '(graph g (out z (const i32 [1] 2147483648)))',
        'const-i32-float': '(graph g (out z (const i32 [1] 1.5)))',
    }
    for nm, text in bad_graphs.items():
        R.expect_rc('error/graph-' + nm, text + '\n', extra=['--random', '1'])
    # run-time errors
    R.expect_rc('error/take-out-of-range', '(graph g (in x f32 [3]) (in i i64 [2]) (out z (take x i :axis 0)))\n',
                [('x', np.zeros(3, dtype=np.float32)), ('i', np.array([0, 3]))])
    R.expect_rc('error/take-out-of-range-neg', '(graph g (in x f32 [3]) (in i i32 [2]) (out z (take x i :axis 0)))\n',
                [('x', np.zeros(3, dtype=np.float32)), ('i', np.array([0, -4], dtype=np.int32))])
    R.expect_rc('error/take-flat-out-of-range', '(graph g (in x f32 [2 3]) (in i i32 [1]) (out z (take x i)))\n',
                [('x', np.zeros((2, 3), dtype=np.float32)), ('i', np.array([6], dtype=np.int32))])
    R.expect_rc('error/take-empty-axis', '(graph g (in x f32 [0 3]) (in i i32 [1]) (out z (take x i :axis 0)))\n',
                [('x', np.zeros((0, 3), dtype=np.float32)), ('i', np.array([0], dtype=np.int32))])
    R.expect_rc('error/pow-negative-int', '(graph g (in x i32 [2]) (in y i32 [2]) (out z (pow x y)))\n',
                [('x', np.array([2, 3], dtype=np.int32)), ('y', np.array([1, -1], dtype=np.int32))])
    R.expect_rc('error/pow-negative-literal', '(graph g (in x i64 [2]) (out z (pow x -2)))\n',
                [('x', np.array([2, 3], dtype=np.int64))])
    R.expect_rc('error/max-empty-symbolic', '(graph g (in x f32 [n 2]) (out z (max x :axis 0)))\n',
                [('x', np.zeros((0, 2), dtype=np.float32))])


# ---- .npy round trips -----------------------------------------------------

def t_npy(R, rng):
    arrays = []
    for dt in DTYPES:
        arrays.append(specials(dt, rng, 3))
        arrays.append(random_array(dt, (), rng))
        arrays.append(random_array(dt, (0,), rng))
        arrays.append(random_array(dt, (2, 0, 3), rng))
        arrays.append(random_array(dt, (3, 4), rng, 0.3))
    nanbits = np.array([0x7ff8000000000123, 0xfff8000000000000, 0x7ff0000000000001, 0x8000000000000000],
                       dtype=np.uint64).view(np.float64)
    arrays.append(nanbits)
    arrays.append(np.array([0x7fc00123, 0xffc00000, 0x80000000, 0x00000001], dtype=np.uint32).view(np.float32))
    arrays.append(np.arange(4096, dtype=np.float64).reshape(2, 8, 256))
    arrays.append(np.ones((1, 1, 1, 1, 1, 1), dtype=np.int32))
    d = os.path.join(R.tmp, 'npy')
    os.makedirs(d, exist_ok=True)
    for k, a in enumerate(arrays):
        dt = TLNAME[a.dtype]
        sh = shape_str(a.shape)
        tg = '(graph g (in x %s %s) (out y x) (out z (reshape x :shape %s)))\n' % (dt, sh, sh)
        for ver in ((1, 0), (2, 0), (3, 0)):
            label = 'npy/roundtrip/%d-%s%s/v%d.%d' % (k, dt, list(a.shape), ver[0], ver[1])
            if not R.wanted([label]):
                continue
            p = os.path.join(d, 'in%d-%d.npy' % (k, ver[0]))
            with open(p, 'wb') as f:
                np.lib.format.write_array(f, a, version=ver)
            rd = R._dir('npy%d' % k)
            rc, err, outdir = R.tlaloc(rd, tg, [], npy_paths={'x': p})
            if rc != 0:
                R.record(label, 'tlaloc exited %s: %s' % (rc, err.strip()[-200:]), rd)
                continue
            msg = None
            for o in ('y', 'z'):
                op = os.path.join(outdir, o + '.npy')
                try:
                    with open(op, 'rb') as f:  # tlaloc writes version 1.0
                        v = np.lib.format.read_magic(f)
                    if v != (1, 0):
                        msg = 'output %s has .npy version %s, expected 1.0' % (o, v)
                        break
                    b = np.load(op, allow_pickle=False)
                except Exception as e:  # noqa: BLE001
                    msg = 'cannot read output %s: %s' % (o, e)
                    break
                if b.dtype != a.dtype or b.shape != a.shape or b.tobytes() != a.tobytes() or \
                        not b.flags.c_contiguous or b.dtype.byteorder not in '=<|':
                    msg = 'output %s is %s %s, not byte-identical to the input %s %s' % (
                        o, b.dtype, b.shape, a.dtype, a.shape)
                    break
            R.record(label, msg, rd)
    # a header padded with many spaces (numpy allows any header length)
    p = os.path.join(d, 'longhdr.npy')
    a = np.arange(6, dtype=np.int64).reshape(2, 3)
    h = "{'descr': '<i8', 'fortran_order': False, 'shape': (2, 3), }"
    h = h + ' ' * (1000 - len(h) - 10 - 1) + '\n'
    with open(p, 'wb') as f:
        f.write(b'\x93NUMPY\x01\x00' + len(h).to_bytes(2, 'little') + h.encode() + a.tobytes())
    rd = R._dir('longhdr')
    rc, err, outdir = R.tlaloc(rd, '(graph g (in x i64 [2 3]) (out y x))\n', [], npy_paths={'x': p})
    R.record('npy/long-header', None if rc == 0 and np.array_equal(np.load(os.path.join(outdir, 'y.npy')), a)
             else 'exit %s: %s' % (rc, err.strip()), rd)
    # several outputs of one node, and an input given as an output twice
    g = Graph('npy_multi')
    x = specials('f64', rng, 2)
    g.inp('x', x)
    g.out('npy/multi/a', 'x', x, zsign=True)
    g.out('npy/multi/b', 'x', x, zsign=True)
    g.out('npy/multi/c', '(neg x)', -x, zsign=True)
    g.out('npy/multi/d', '(neg x)', -x, zsign=True)
    R.run(g)


def t_mixed(R, rng):
    """Mixed dtypes where one kernel handles several operands, out-of-range
    int literals (NEP 50), reductions over no axis, casts of literals."""
    # concat promotes like the other ops (numpy.concatenate does too)
    for xd in DTYPES:
        for yd in DTYPES:
            if xd == yd:
                continue
            g = Graph('concat_%s_%s' % (xd, yd))
            # non-zero data (all True for bool) so that a wrong element is visible
            x = (np.arange(6).reshape(2, 3) % 5 + 1).astype(NP[xd])
            y = (np.arange(3).reshape(1, 3) + 2).astype(NP[yd])
            g.inp('x', x)
            g.inp('y', y)
            ct = promote(x.dtype, y.dtype)
            g.out('concat/mixed/%s,%s' % (xd, yd), '(concat x y :axis 0)',
                  np.concatenate([x.astype(ct), y.astype(ct)], 0))
            R.run(g)
    # NEP 50: comparisons with an out-of-range Python int are exact; the
    # same literal in arithmetic is an OverflowError (here: exit status 2)
    g = Graph('lit_range')
    x = np.array([I32_MIN, -1, 0, 1, I32_MAX], dtype=np.int32)
    g.inp('x', x)
    g.out('lit-range/lt/i32/3e9', '(lt x 3000000000)', np.ones(5, dtype=bool))
    g.out('lit-range/gt/i32/-3e9', '(gt x -3000000000)', np.ones(5, dtype=bool))
    g.out('lit-range/eq/i32/2^32+1', '(eq x 4294967297)', np.zeros(5, dtype=bool))
    g.out('lit-range/lt/i32/in-range', '(lt x 2147483647)', x < I32_MAX)
    R.run(g)
    R.expect_rc('lit-range/add/i32/3e9', '(graph g (in x i32 [2]) (out y (add x 3000000000)))\n',
                [('x', np.array([1, 2], dtype=np.int32))])
    # reductions over an empty axis list reduce nothing (numpy axis=())
    for dt in DTYPES:
        g = Graph('reduce_noaxis_' + dt)
        x = random_array(dt, (2, 3), rng, 0.3)
        g.inp('x', x)
        for op in ('sum', 'prod', 'max', 'min', 'mean', 'logsumexp'):
            exp, scale = ref_reduce(op, x, [], False)
            g.out('reduce/%s/%s/axis=[]' % (op, dt), '(%s x :axis [])' % op, exp, scale)
        R.run(g)
    # literals through cast and unary ops; f32 equality with a float literal
    g = Graph('lit_cast')
    xf = np.array([0.1, 0.2, 1.0 / 3], dtype=np.float32)
    g.inp('xf', xf)
    g.out('lit/cast/f32-overflow', '(cast 1e300 :dtype f32)', np.array(np.inf, dtype=np.float32))
    g.out('lit/cast/bool', '(cast -1 :dtype bool)', np.array(True))
    g.out('lit/cast/nan-i32', '(cast nan :dtype i32)', np.array(I32_MIN, dtype=np.int32))
    g.out('lit/cast/i64-f32', '(cast 1152921573326323713 :dtype f32)', np.array(2**60 + 2**36 + 1, dtype=np.int64).astype(np.float32))
    g.out('lit/neg', '(neg 3)', np.array(-3, dtype=np.int64))
    g.out('lit/not', '(not 0.0)', np.array(True))
    g.out('lit/f32-eq-0.1', '(eq xf 0.1)', np.array([True, False, False]))  # TLALOC: 0.1 rounds to f32
    g.out('lit/f32-add-0.1', '(add xf 0.1)', (xf.astype(F64) + np.float64(np.float32(0.1))).astype(np.float32))
    g.out('lit/f32-mul-1/3', '(mul xf 0.3333333333333333)', (xf.astype(F64) * np.float64(np.float32(1 / 3))).astype(np.float32))
    R.run(g)


def _rand_shape(rng, rank):
    return tuple(int(rng.choice([0, 1, 1, 2, 3, 4], p=[0.06, 0.24, 0.1, 0.3, 0.2, 0.1])) for _ in range(rank))


def _bcast_partner(rng, shape):
    """A random shape that broadcasts with `shape` (dims dropped or set to 1)."""
    r = int(rng.integers(0, len(shape) + 2))
    out = []
    for i in range(r):
        j = len(shape) - r + i
        if j < 0:
            out.append(int(rng.choice([1, 2])))
        else:
            out.append(1 if rng.random() < 0.3 else shape[j])
    return tuple(out)


def t_fuzz(R, rng):
    """Random shapes (rank 0-4, with 0 and 1 dims), random dtypes, random
    broadcasting, random reduction axes, permutations and slices."""
    for k in range(40):
        g = Graph('fuzz%d' % k)
        rank = int(rng.integers(0, 5))
        sx = _rand_shape(rng, rank)
        sy = _bcast_partner(rng, sx)
        try:
            np.broadcast_shapes(sx, sy)
        except ValueError:
            sy = ()
        xd, yd = rng.choice(DTYPES, 2)
        x = random_array(xd, sx, rng, 0.3)
        y = random_array(yd, sy, rng, 0.3)
        g.inp('x', x)
        g.inp('y', y)
        for op in rng.choice(BIN_ALL, 6, replace=False):
            if op in BIN_NUMERIC and xd == 'bool' and yd == 'bool':
                continue
            if op in BIN_INT and (isfloat(NP[xd]) or isfloat(NP[yd])):
                continue
            g.out('fuzz/%d/%s/%s%s,%s%s' % (k, op, xd, list(sx), yd, list(sy)), _bin_expr(op, 'x', 'y', yd),
                  _bin_ref(op, x, y))
        c = rng.integers(0, 2, _bcast_partner(rng, sx)).astype(bool)
        try:
            np.broadcast_shapes(c.shape, sx, sy)
            g.inp('c', c)
            g.out('fuzz/%d/where' % k, '(where c x y)', ref_where(c, x, y))
        except ValueError:
            pass
        if rank:
            # reduction over a random subset of axes, maybe negative
            n = int(rng.integers(1, rank + 1))
            axes = [int(a) - (rank if rng.random() < 0.4 else 0) for a in rng.choice(rank, n, replace=False)]
            kd = bool(rng.integers(0, 2))
            ops = ['sum', 'prod', 'mean', 'logsumexp']
            if all(sx[a] for a in axes):
                ops += ['max', 'min']
            for op in ops:
                exp, scale = ref_reduce(op, x, axes, kd)
                g.out('fuzz/%d/%s/axis=%s/kd=%d' % (k, op, axes, kd),
                      '(%s x :axis [%s]%s)' % (op, ' '.join(map(str, axes)), ' :keepdims true' if kd else ''), exp, scale)
            perm = [int(p) for p in rng.permutation(rank)]
            g.out('fuzz/%d/transpose%s' % (k, perm), '(transpose x :perm [%s])' % ' '.join(map(str, perm)),
                  np.array(x.transpose(perm), order='C'))
            ax = int(rng.integers(-rank, rank))
            st, sp = (int(v) for v in rng.integers(-5, 6, 2))
            step = int(rng.choice([1, 2, -1, -2, 3]))
            sl = [slice(None)] * rank
            sl[ax] = slice(st, sp, step)
            g.out('fuzz/%d/slice' % k, '(slice x :axis %d :start %d :stop %d :step %d)' % (ax, st, sp, step),
                  np.array(x[tuple(sl)], order='C'))
            g.out('fuzz/%d/softmax' % k, '(softmax x :axis %d)' % ax, *ref_softmax('softmax', x, ax))
            g.out('fuzz/%d/log_softmax' % k, '(log_softmax x :axis %d)' % ax, *ref_softmax('log_softmax', x, ax))
            g.out('fuzz/%d/concat' % k, '(concat x x :axis %d)' % ax, np.concatenate([x, x], ax))
            if sx[ax]:
                idx = rng.integers(-sx[ax], sx[ax], _rand_shape(rng, int(rng.integers(0, 3)))).astype(
                    rng.choice([np.int32, np.int64]))
                g.inp('i', idx)
                g.out('fuzz/%d/take' % k, '(take x i :axis %d)' % ax, np.take(x, idx.astype(np.int64), axis=ax))
        R.run(g)


# ---- composition: a few mixed graphs with let ---------------------------

def t_compose(R, rng):
    g = Graph('compose')
    x = random_array('f32', (4, 10), rng)
    y = np.eye(10, dtype=np.float32)[rng.integers(0, 10, 4)]
    g.inp('x', x)
    g.inp('y', y)
    g.let('lp', '(log_softmax x :axis 1)')
    lp = ref_softmax('log_softmax', x, 1)[0]
    g.out('compose/xent', '(neg (mean (sum (mul y lp) :axis 1)))',
          np.array(-np.mean(np.sum(y.astype(F64) * lp.astype(F64), axis=1).astype(np.float32).astype(F64)), dtype=np.float32))
    g.out('compose/softmax-log', '(log (softmax x :axis 1))',
          np.log(ref_softmax('softmax', x, 1)[0].astype(F64)).astype(np.float32))
    g.out('compose/cast-chain', '(cast (mul (cast x :dtype i32) 3) :dtype f64)',
          (ref_cast(x, np.int32) * np.int32(3)).astype(F64))
    R.run(g)


# ---------------------------------------------------------------------------
# functions, conditionals and loops, against the same loops written in numpy

CONTROL_FUNCS = '''
(func newton_go (in x f64 [n]) (in y f64 [n]) (out c (gt (max (div (abs (sub (mul y y) x)) x)) 1e-13)))
(func newton_step (in x f64 [n]) (in y f64 [n]) (out x2 x) (out y2 (mul 0.5 (add y (div x y)))))
(func cum (in c T [m]) (in x T [m]) (out c2 (add c x)) (out y (add c x)))
(func rnn (in h f64 [b k]) (in w f64 [d k]) (in u f64 [k k]) (in bias f64 [k]) (in x f64 [b d])
  (let h2 (tanh (add (add (matmul x w) (matmul h u)) bias)))
  (out hn h2) (out w2 w) (out u2 u) (out bias2 bias) (out y (sum h2 :axis 1)))
(func pos (in a T [n]) (out r (sqrt a)))
(func bad (in a T [n]) (out r (take a (fill i64 [n] 100))))
(func never (in i i64 []) (in a T [n]) (out p (ge i 0)))
(func spin (in i i64 []) (in a T [n]) (out i2 (add i 1)) (out a2 a))
(func bad_loop (in a T [n]) (out r (loop 0 a :cond never :body spin :max 3 :out 1)))
(func sq1 (in a T [n]) (out r (add (mul a a) 1)))
(func twice (in a T [n]) (out r (call (call a :fn sq1) :fn sq1)))
(func lt3 (in i i64 []) (in a T [n]) (out p (lt i 3)))
(func inc (in i i64 []) (in a T [n]) (out i2 (add i 1)) (out a2 (add a 1)))
(func inner (in i i64 []) (in a T [n]) (out i2 (add i 1)) (out a2 (loop 0 a :cond lt3 :body inc :max 10 :out 1)))
(func lti (in j i64 []) (in i i64 []) (in a T [n]) (out p (lt j i)))
(func inc2 (in j i64 []) (in i i64 []) (in a T [n]) (out j2 (add j 1)) (out i2 i) (out a2 (add a 1)))
(func tri (in i i64 []) (in a T [n]) (out i2 (add i 1)) (out a2 (loop 0 i a :cond lti :body inc2 :max 10 :out 2)))
(func done (in i i64 []) (in a T [n]) (out p (ge i 4)))
(func rec (in i i64 []) (in a T [n]) (out i2 (add i 1)) (out a2 (add a 1)) (out y (mul a2 2)) (out s (sum a2)))
'''


def t_control(R, rng):
    for eng in (None, 'llvm'):
        sfx = eng or 'interp'
        for dt in ('f32', 'f64'):
            np_dt = np.float32 if dt == 'f32' else np.float64
            g = Graph('control_%s_%s' % (sfx, dt), funcs=CONTROL_FUNCS.replace(' T ', ' %s ' % dt), engine=eng)
            # Newton's method for sqrt: a while loop (f64), the same iteration in numpy
            xs = np.concatenate([np.exp(rng.uniform(np.log(1e-6), np.log(1e6), 60)), [1.0, 4.0, 1e-300, 1e300]])
            g.inp('nx', xs)
            y = xs.copy()
            with ERR:
                for _ in range(2000):
                    if not np.max(np.abs(y * y - xs) / xs) > 1e-13:
                        break
                    y = 0.5 * (y + xs / y)
            g.out('control/newton/%s/%s' % (sfx, dt), '(loop nx nx :cond newton_go :body newton_step :max 2000 :out 1)', y)
            # cumulative sum with scan (same order of additions as np.cumsum)
            cx = random_array(dt, (9, 5), rng)
            g.inp('cx', cx)
            g.inp('c0', np.zeros(5, dtype=np_dt))
            g.let('[cc cy]', '(scan c0 cx :body cum :carry 1)')
            g.out('control/cumsum/%s/%s' % (sfx, dt), 'cy', np.cumsum(cx, axis=0, dtype=np_dt))
            g.out('control/cumsum-carry/%s/%s' % (sfx, dt), 'cc', np.cumsum(cx, axis=0, dtype=np_dt)[-1])
            g.inp('ex', np.zeros((0, 5), dtype=np_dt))
            g.out('control/scan-empty/%s/%s' % (sfx, dt), '(scan c0 ex :body cum :carry 1 :out 1)', np.zeros((0, 5), dtype=np_dt))
            g.out('control/scan-empty-carry/%s/%s' % (sfx, dt), '(scan c0 ex :body cum :carry 1)', np.zeros(5, dtype=np_dt))
            # a piecewise function with cond: the untaken branch would fail (an index
            # out of range; a loop past its :max), so it must never run
            px = np.abs(random_array(dt, (6,), rng)) + np_dt(0.5)
            g.inp('px', px)
            g.inp('pt', np.array(True))
            g.inp('pf', np.array(False))
            g.out('control/cond-lazy/%s/%s' % (sfx, dt), '(cond pt px :then pos :else bad)', np.sqrt(px))
            g.out('control/cond-lazy-else/%s/%s' % (sfx, dt), '(cond pf px :then bad_loop :else pos)', np.sqrt(px))
            g.out('control/cond-data/%s/%s' % (sfx, dt), '(cond (gt (sum px) 0) (neg px) :then sq1 :else bad)',
                  (-px) * (-px) + np_dt(1))
            # one function from three places (graph, twice inside another function)
            g.out('control/call3/%s/%s' % (sfx, dt), '(add (call px :fn sq1) (call px :fn twice))',
                  (px * px + np_dt(1)) + ((px * px + np_dt(1)) ** 2 + np_dt(1)))
            # nested loops: 3 outer iterations of a 3-trip inner loop; inner trips = outer counter
            g.out('control/nested/%s/%s' % (sfx, dt), '(loop 0 px :cond lt3 :body inner :max 10 :out 1)', px + np_dt(9))
            g.out('control/nested-tri/%s/%s' % (sfx, dt), '(loop 0 px :cond lt3 :body tri :max 10 :out 1)', px + np_dt(3))
            # zero trips; :until as the post-condition (the body runs once, even though cond is false after)
            g.out('control/zero-trip/%s/%s' % (sfx, dt), '(loop 5 px :cond lt3 :body inc :max 10 :out 1)', px)
            g.out('control/until/%s/%s' % (sfx, dt), '(loop 0 px :cond lt3 :body inc :until done :max unbounded :out 1)',
                  px + np_dt(4))
            # per-trip results (:stack): stacked along a dim the trip count binds,
            # fed to more ops; zero trips give [0 n] and [0]
            rec_y = np.stack([(px + np_dt(k + 1)) * np_dt(2) for k in range(3)])
            g.let('[ri ra ry rs]', '(loop 0 px :cond lt3 :body rec :max 10 :stack 2 :trips t)')
            g.out('control/stack/%s/%s' % (sfx, dt), 'ry', rec_y)
            g.out('control/stack-sum/%s/%s' % (sfx, dt), 'rs',
                  np.array([np.sum(px + np_dt(k + 1), dtype=np_dt) for k in range(3)], dtype=np_dt))
            g.out('control/stack-fed/%s/%s' % (sfx, dt), '(sum (mul ry ry) :axis 0)', np.sum(rec_y * rec_y, axis=0))
            g.out('control/stack-zero/%s/%s' % (sfx, dt), '(loop 5 px :cond lt3 :body rec :max 10 :stack 2 :trips t0 :out 2)',
                  np.zeros((0, 6), dtype=np_dt))
            R.run(g)
        # an RNN with scan against the same recurrence in numpy
        g = Graph('control_rnn_%s' % sfx, funcs=CONTROL_FUNCS.replace(' T ', ' f64 '), engine=eng)
        T, B, D, H = 7, 3, 4, 5
        xs = rng.normal(size=(T, B, D))
        h0 = rng.normal(size=(B, H))
        w = rng.normal(size=(D, H)) * 0.5
        u = rng.normal(size=(H, H)) * 0.5
        b = rng.normal(size=H)
        for n, a in (('xs', xs), ('h0', h0), ('w', w), ('u', u), ('b', b)):
            g.inp(n, a)
        h, ys = h0, []
        for t in range(T):
            h = np.tanh(xs[t] @ w + h @ u + b)
            ys.append(h.sum(axis=1))
        g.let('[hT w1 u1 b1 ys]', '(scan h0 w u b xs :body rnn :carry 4)')
        g.out('control/rnn-h/%s' % sfx, 'hT', h)
        g.out('control/rnn-ys/%s' % sfx, 'ys', np.array(ys))
        R.run(g)
        # a loop that hits its maximum trip count: a clear run-time error
        fx = np.ones(3)
        R.expect_rc('control/max-trips/%s' % sfx, CONTROL_FUNCS.replace(' T ', ' f64 ') +
                    '(graph m (in x f64 [3]) (out y (loop 0 x :cond never :body spin :max 5 :out 1)))',
                    [('x', fx)], rc_want=2, extra=['--engine', eng] if eng else None)


RANDOM_FUNCS = '''
(func u0 (in a T [n]) (out r (tanh (add a 0.5))))
(func u1 (in a T [n]) (out r (mul (sin a) 0.75)))
(func u2 (in a T [n]) (out r (sub (mul a 0.5) (cos a))))
(func b0 (in a T [n]) (in b T [n]) (out r (tanh (add a b))))
(func two (in a T [n]) (out r (call a :fn u0)) (out s (call (call a :fn u1) :fn u2)))
(func lt2 (in i i64 []) (in a T [n]) (out p (lt i 2)))
(func lt4 (in i i64 []) (in a T [n]) (out p (lt i 4)))
(func st0 (in i i64 []) (in a T [n]) (out i2 (add i 1)) (out a2 (call a :fn u0)))
(func st1 (in i i64 []) (in a T [n]) (out i2 (add i 1)) (out a2 (cond (gt (sum a) 0) a :then u1 :else u2)))
(func sc0 (in c T [n]) (in x T [n]) (out c2 (call c x :fn b0)) (out y (mul c2 x)))
(func sc1 (in c T [n]) (in k T [n]) (in x T [n]) (out c2 (add (mul c 0.5) (mul (tanh k) x))) (out y (sin c2)))
(func lt3k (in i i64 []) (in a T [n]) (in k T [n]) (out p (lt i 3)))
(func st2 (in i i64 []) (in a T [n]) (in k T [n]) (out i2 (add i 1)) (out a2 (add (mul a 0.5) (exp (sin k)))) (out k2 k))
(func h0 (in a T [n]) (out r (mul a (tanh (sum a)))))
(func h1 (in a T [n]) (out r (sub (tanh (sum a)) a)))
(func u0b (in b T [n]) (out s (tanh (add b 0.5))))
(func rs0 (in i i64 []) (in a T [n]) (out i2 (add i 1)) (out a2 (call a :fn u0)) (out y (mul a 0.5)) (out s (sum a)))
'''


def _random_expr(rng, depth, stacks=None):
    """A random expression over x, z [n] and xs [5 n] with calls, conds,
    loops, scans, and with `stacks` (a list: the :trips symbols used so
    far) loops with per-trip results, their stacks fed to more ops."""
    if depth == 0 or rng.random() < 0.15:
        return ['x', 'z', '(slice xs :axis 0 :start 2 :stop 3 :step 1)'][rng.integers(0, 2)]
    a = _random_expr(rng, depth - 1, stacks)
    k = rng.integers(0, 14 if stacks is not None else 13)
    if k == 13:  # a loop's per-trip results (:stack), summed over the trips
        stacks.append('t%d' % len(stacks))
        loop = '(loop %d %s :cond lt4 :body rs0 :max 8 :stack 2 :trips %s :out %%d)' % (rng.integers(0, 5), a, stacks[-1])
        return '(sum %s :axis 0)' % (loop % 2) if rng.random() < 0.5 else \
            '(add %s (sum %s))' % (loop % 1, loop % 3)
    if k == 9:  # loop-invariant code in a scan (a const) and a loop (state passed through)
        if rng.random() < 0.5:
            return '(scan %s %s xs :body sc1 :carry 1 :consts 1)' % (a, _random_expr(rng, depth - 1, stacks)) \
                if rng.random() < 0.3 else '(sum (scan %s %s xs :body sc1 :carry 1 :consts 1 :out 1) :axis 0)' % (a, _random_expr(rng, depth - 1, stacks))
        return '(loop %d %s %s :cond lt3k :body st2 :max 8 :out 1)' % (rng.integers(0, 4), a, _random_expr(rng, depth - 1, stacks))
    if k == 10:  # a condition known to the optimizer
        return '(cond (%s 1.0 0.0) %s :then u%d :else u%d)' % (('gt', 'lt')[rng.integers(0, 2)], a, rng.integers(0, 3), rng.integers(0, 3))
    if k == 11:  # branches that compute the same (u0b is u0 renamed)
        return '(cond (gt (sum %s) 0) %s :then u0 :else u0b)' % (_random_expr(rng, depth - 1, stacks), a)
    if k == 12:  # branches that share work
        return '(cond (gt (max %s) 0.5) %s :then h0 :else h1)' % (_random_expr(rng, depth - 1, stacks), a)
    if k == 0:
        return '(call %s :fn u%d)' % (a, rng.integers(0, 3))
    if k == 1:
        return '(call %s %s :fn b0)' % (a, _random_expr(rng, depth - 1, stacks))
    if k == 2:
        return '(call %s :fn two :out %d)' % (a, rng.integers(0, 2))
    if k == 3:
        return '(cond (gt (sum %s) %s) %s :then u%d :else u%d)' % (
            a, fmt_num(float(rng.normal())), _random_expr(rng, depth - 1, stacks), rng.integers(0, 3), rng.integers(0, 3))
    if k == 4:
        return '(loop %d %s :cond lt%d :body st%d :max 8 :out 1)' % (
            rng.integers(0, 3), a, 2 * rng.integers(1, 3), rng.integers(0, 2))
    if k == 5:
        return '(scan %s xs :body sc0 :carry 1 :out %d)' % (a, 0) if rng.random() < 0.5 else \
            '(sum (scan %s xs :body sc0 :carry 1 :out 1) :axis 0)' % a
    if k == 6:
        return '(add %s %s)' % (a, _random_expr(rng, depth - 1, stacks))
    if k == 7:
        return '(mul %s 0.5)' % a
    return '(tanh %s)' % a


def t_control_random(R, rng):
    """200 random programs with calls, conditionals, loops and scans: llvm
    (compiled) against the interpreter, and optimized (so the control-flow
    rules run: inlining, known conditions, identical branches, hoisting)
    then compiled, 10 programs per graph."""
    nprog = 0
    for gi in range(20):
        dt = ('f32', 'f64')[gi % 2]
        np_dt = np.float32 if dt == 'f32' else np.float64
        n = int(rng.integers(1, 7))
        x = rng.normal(size=n).astype(np_dt)
        z = rng.normal(size=n).astype(np_dt)
        xs = rng.normal(size=(5, n)).astype(np_dt)
        # every fourth graph has loops with per-trip results (the llvm
        # engine then runs it staged: the others keep the compiled whole)
        stacks = [] if gi % 4 == 3 else None
        outs = [_random_expr(rng, 4, stacks) for _ in range(10)]
        text = RANDOM_FUNCS.replace(' T ', ' %s ' % dt) + '(graph r (in x %s [n]) (in z %s [n]) (in xs %s [5 n])\n%s)\n' % (
            dt, dt, dt, '\n'.join('  (out o%d %s)' % (i, e) for i, e in enumerate(outs)))
        label = 'control/random/%02d-%s' % (gi, dt)
        if not R.wanted([label]):
            continue
        d = R._dir('control_random_%02d' % gi)
        ins = [('x', x), ('z', z), ('xs', xs)]
        rc1, e1, o1 = R.tlaloc(os.path.join(d), text, ins, None, None)
        d2 = os.path.join(d, 'llvm')
        os.makedirs(d2, exist_ok=True)
        rc2, e2, o2 = R.tlaloc(d2, text, ins, None, ['--engine', 'llvm'])
        # and optimized (the rewrite and control-flow rules: inlining,
        # if-simplification, hoisting), then compiled
        p = subprocess.run([R.exe, 'opt', os.path.join(d, 'g.tg')], stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=120)
        d3 = os.path.join(d, 'opt')
        os.makedirs(d3, exist_ok=True)
        rc3, e3, o3 = (p.returncode, p.stderr.decode(errors='replace'), None) if p.returncode else \
            R.tlaloc(d3, p.stdout.decode(), ins, None, ['--engine', 'llvm'])
        nprog += len(outs)
        if rc1 != 0 or rc2 != 0 or rc3 != 0:
            R.record(label, 'interp exit %s, llvm exit %s, opt+llvm exit %s: %s' % (rc1, rc2, rc3, (e1 or e2 or e3).strip()[-300:]), d)
            continue
        msg = None
        for i in range(len(outs)):
            a = np.load(os.path.join(o1, 'o%d.npy' % i))
            for what, o in (('llvm', o2), ('opt+llvm', o3)):
                b = np.load(os.path.join(o, 'o%d.npy' % i))
                m = compare(b, a, scale=np.max(np.abs(a)) if a.size else None)
                if m:
                    msg = 'program o%d = %s: %s vs interp: %s' % (i, outs[i], what, m)
                    break
            if msg:
                break
        R.record(label, msg, d)
        if not msg:
            R.ops_passed.update(OP_HEAD.findall(text))
    assert nprog == 200 or R.filt


# ---------------------------------------------------------------------------

TESTS = [t_unary, t_binary, t_where, t_broadcast, t_literals, t_cast, t_reduce, t_softmax,
         t_shape, t_matmul, t_constants, t_symbolic, t_errors, t_npy, t_compose, t_mixed, t_fuzz, t_control, t_control_random]


def main():
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    ap.add_argument('--tlaloc', required=True, help='the tlaloc executable')
    ap.add_argument('-v', '--verbose', action='store_true')
    ap.add_argument('-k', dest='filter', default='', help='only cases whose label contains this')
    ap.add_argument('--keep', action='store_true', help='keep the temporary directory')
    ap.add_argument('--seed', type=int, default=SEED, help='another seed (the default is fixed)')
    args = ap.parse_args()
    exe = os.path.abspath(args.tlaloc)
    tmp = tempfile.mkdtemp(prefix='tlaloc-diff-')
    t0 = time.time()
    R = Runner(exe, tmp, args.verbose, args.filter)
    ops = op_table(exe)
    derive_unary_refs(ops)
    try:
        for t in TESTS:
            # each family gets its own fixed seed, so families stay reproducible alone
            t(R, np.random.default_rng([args.seed, TESTS.index(t)]))
        # every op of the op table must have run in a passing case
        if not args.filter:
            for op in sorted(set(ops) - R.ops_passed):
                R.failed += 1
                print('FAIL  op %s of the op table never ran in a passing case: add it to a family above' % op)
    finally:
        keep = args.keep or R.failed
        if not keep:
            shutil.rmtree(tmp, ignore_errors=True)
    dt = time.time() - t0
    print('%d tlaloc runs in %.1f s%s%s' % (R.nrun, dt, ', %d known bugs (expected failures)' % R.xfailed if R.xfailed else '',
                                           ', cases kept in ' + tmp if keep else ''))
    print('%d passed, %d failed' % (R.passed, R.failed))
    return 1 if R.failed else 0


if __name__ == '__main__':
    sys.exit(main())
