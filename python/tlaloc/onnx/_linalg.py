"""Linear algebra: MatMul, Gemm, Einsum, Det (1x1 to 3x3), EyeLike, Trilu.
"""
import numpy as np

from .. import graph as _g
from ._core import UnsupportedOnnx, _need, _opt, _reg, _tl_dtype
from ._helpers import _attr_str, _iota, _keep, _sc, _sval


@_reg("MatMul")
def _matmul(m, node, ins, at):
    return _g.matmul(_need("MatMul", ins, 0), _need("MatMul", ins, 1))


@_reg("Gemm", alpha=1.0, beta=1.0, transA=0, transB=0, broadcast=0)
def _gemm(m, node, ins, at):
    a, b, c = _need("Gemm", ins, 0), _need("Gemm", ins, 1), _opt(ins, 2)
    if at["transA"]:
        a = _g.transpose(a)
    if at["transB"]:
        b = _g.transpose(b)
    y = _g.matmul(a, b)
    if float(at["alpha"]) != 1.0:
        y = _g.multiply(float(at["alpha"]), y)
    if c is not None and float(at["beta"]) != 0.0:
        if float(at["beta"]) != 1.0:
            c = _g.multiply(float(at["beta"]), c)
        y = _g.add(y, c)
    return y


@_reg("EyeLike", dtype=None, k=0)
def _eyelike(m, node, ins, at):
    op = "EyeLike"
    x = _need(op, ins, 0)
    shape = m._shape(x, op)
    if len(shape) != 2:
        raise UnsupportedOnnx("%s: input must be 2-D" % op, op)
    dt = m._dtype(x) if at["dtype"] is None else _tl_dtype(at["dtype"], "EyeLike dtype")
    rows = _iota(shape[0], 0, 2)
    cols = _iota(shape[1], 1, 2)
    return _g.cast(_g.equal(_g.subtract(cols, rows), int(at["k"])), dt)


@_reg("Trilu", upper=1)
def _trilu(m, node, ins, at):
    """where(col - row >= k (upper) or <= k (lower), x, 0) on the last two axes."""
    op = "Trilu"
    x = _need(op, ins, 0)
    shape = m._shape(x, op)
    if len(shape) < 2:
        raise UnsupportedOnnx("%s: input must have rank >= 2" % op, op)
    k = 0 if _opt(ins, 1) is None else int(_sval(m._static(node.input[1], op, "k"), op, "k"))
    R, C = shape[-2], shape[-1]
    diff = _g.subtract(_iota(C, 1, 2), _iota(R, 0, 2))
    keep = _g.greater_equal(diff, k) if at["upper"] else _g.less_equal(diff, k)
    return _g.where(keep, x, _sc(m._dtype(x), 0))


@_reg("Det")
def _det(m, node, ins, at):
    """Leibniz formula for 1x1 to 3x3 matrices (batched); larger ones would
    need pivoting, which is data-dependent control flow."""
    op = "Det"
    x = _need(op, ins, 0)
    shape = m._shape(x, op)
    if len(shape) < 2 or shape[-1] != shape[-2] or shape[-1] > 3 or shape[-1] < 1:
        raise UnsupportedOnnx("%s: only 1x1 to 3x3 matrices are expressible, got %s" % (op, shape), op)
    n = shape[-1]
    r = len(shape)

    def e(i, j):
        v = _g.Var("slice", (x,), [("axis", r - 2), ("start", i), ("stop", i + 1)])
        v = _g.Var("slice", (v,), [("axis", r - 1), ("start", j), ("stop", j + 1)])
        return _g.squeeze(v, [r - 2, r - 1])
    if n == 1:
        return e(0, 0)
    if n == 2:
        return _g.subtract(_g.multiply(e(0, 0), e(1, 1)), _g.multiply(e(0, 1), e(1, 0)))
    t = None
    for p, sgn in (((0, 1, 2), 1), ((1, 2, 0), 1), ((2, 0, 1), 1),
                   ((0, 2, 1), -1), ((2, 1, 0), -1), ((1, 0, 2), -1)):
        term = _g.multiply(_g.multiply(e(0, p[0]), e(1, p[1])), e(2, p[2]))
        t = term if t is None else (_g.add(t, term) if sgn > 0 else _g.subtract(t, term))
    return t


def _einsum_parse(eq, ranks, op):
    """'ij,jk->ik' -> ([['i','j'], ['j','k']], ['i','k']); '...' becomes one
    letter per broadcast axis (upper-case placeholders, numpy-aligned)."""
    eq = eq.replace(" ", "")
    if "->" in eq:
        lhs, rhs = eq.split("->")
    else:
        lhs, rhs = eq, None
    terms = lhs.split(",")
    if len(terms) != len(ranks):
        raise UnsupportedOnnx("%s: %d operands for %r" % (op, len(ranks), eq), op)
    ell = 0
    for t, r in zip(terms, ranks):
        if "..." in t:
            ell = max(ell, r - len(t.replace("...", "")))
    if ell > 20:
        raise UnsupportedOnnx("%s: too many ellipsis axes" % op, op)
    ph = [chr(ord("A") + k) for k in range(ell)]
    subs = []
    for t, r in zip(terms, ranks):
        if "..." in t:
            pre, post = t.split("...")
            n = r - len(pre) - len(post)
            letters = list(pre) + ph[ell - n:] + list(post)
        else:
            letters = list(t)
        if len(letters) != r or not all(c.isalpha() for c in letters):
            raise UnsupportedOnnx("%s: term %r does not fit rank %d" % (op, t, r), op)
        subs.append(letters)
    if rhs is None:  # implicit output: the ellipsis, then the letters seen once, sorted
        counts = {}
        for s in subs:
            for c in s:
                counts[c] = counts.get(c, 0) + 1
        out = ph + sorted(c for c, k in counts.items() if k == 1 and c.islower())
    else:
        if "..." in rhs:
            pre, post = rhs.split("...")
            out = list(pre) + ph + list(post)
        else:
            out = list(rhs)
    return subs, out


@_reg("Einsum", equation=None)
def _einsum(m, node, ins, at):
    """Each operand: repeated letters -> its diagonal (a take of the
    flattened pair), then transposed and expanded to one common letter
    order; the product of all operands is summed over the letters that are
    not in the output, then transposed to the output order."""
    op = "Einsum"
    xs = [x for x in ins if x is not None]
    eq = _attr_str(at["equation"])
    subs, out = _einsum_parse(eq, [m._rank(x) for x in xs], op)
    sizes = {}
    ops = []
    for x, s in zip(xs, subs):
        shape = list(m._shape(x, op))
        s = list(s)
        while True:  # take diagonals of repeated letters
            dup = next((c for c in s if s.count(c) > 1), None)
            if dup is None:
                break
            i = s.index(dup)
            j = s.index(dup, i + 1)
            if shape[i] != shape[j]:
                raise UnsupportedOnnx("%s: %r has sizes %d and %d" % (op, dup, shape[i], shape[j]), op)
            n = shape[i]
            perm = [k for k in range(len(s)) if k not in (i, j)] + [i, j]
            x = _g.reshape(_g.transpose(x, perm), [shape[k] for k in perm[:-2]] + [n * n])
            x = _g.take(x, _g.constant(np.arange(n, dtype=np.int64) * (n + 1)), len(perm) - 2)
            s = [s[k] for k in perm[:-2]] + [dup]
            shape = [shape[k] for k in perm[:-2]] + [n]
        for c, d in zip(s, shape):
            if sizes.setdefault(c, d) != d and d != 1 and sizes[c] != 1:
                raise UnsupportedOnnx("%s: %r has sizes %d and %d" % (op, c, sizes[c], d), op)
            if d != 1:
                sizes[c] = d
        ops.append((x, s))
    for c in out:
        if c not in sizes:
            raise UnsupportedOnnx("%s: output letter %r is in no operand" % (op, c), op)
    order = list(out) + sorted(c for c in sizes if c not in out)
    prod = None
    for x, s in ops:
        x = _g.transpose(x, [s.index(c) for c in order if c in s]) if len(s) > 1 else x
        present = [c for c in order if c in s]
        for k, c in enumerate(order):  # expand dims for the letters this operand lacks
            if c not in present:
                x = _g.expand_dims(x, k)
                present.insert(k, c)
        prod = x if prod is None else _g.multiply(prod, x)
    red = list(range(len(out), len(order)))
    if red:
        prod = _g.sum(prod, red if len(red) > 1 else red[0])
    y = _g.broadcast_to(prod, [sizes[c] for c in out]) if out else prod
    return _keep(m, xs[0], y)
