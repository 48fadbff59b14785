"""Reductions along axes: Reduce*, Softmax/LogSoftmax, ArgMax/ArgMin,
Hardmax, CumSum, TopK.
"""
import numpy as np

from .. import graph as _g
from ._core import UnsupportedOnnx, _need, _reg
from ._helpers import _axes_from, _axis, _iota, _keep, _sc, _sval


_RED = {"ReduceSum": 13, "ReduceMean": 18, "ReduceMax": 18, "ReduceMin": 18,
        "ReduceProd": 18, "ReduceLogSumExp": 18, "ReduceL1": 18, "ReduceL2": 18,
        "ReduceSumSquare": 18, "ReduceLogSum": 18}


@_reg(" ".join(_RED), axes=None, keepdims=1, noop_with_empty_axes=0)
def _reduce(m, node, ins, at):
    op = node.op_type
    x = _need(op, ins, 0)
    axes = _axes_from(m, node, ins, at, 1, _RED[op])
    if axes is not None and len(axes) == 0:
        axes = None
    if axes is None and at["noop_with_empty_axes"]:
        return x
    kd = bool(at["keepdims"])
    ax = axes if axes is None or len(axes) != 1 else axes[0]
    if op == "ReduceSum":
        r = _g.sum(x, ax, kd)
    elif op == "ReduceMean":
        r = _g.mean(x, ax, kd)
    elif op == "ReduceMax":
        r = _g.max(x, ax, kd)
    elif op == "ReduceMin":
        r = _g.min(x, ax, kd)
    elif op == "ReduceProd":
        r = _g.prod(x, ax, kd)
    elif op == "ReduceLogSumExp":
        r = _g.logsumexp(x, ax, kd)
    elif op == "ReduceL1":
        r = _g.sum(_g.absolute(x), ax, kd)
    elif op == "ReduceL2":
        r = _g.sqrt(_g.sum(_g.multiply(x, x), ax, kd))
    elif op == "ReduceSumSquare":
        r = _g.sum(_g.multiply(x, x), ax, kd)
    else:  # ReduceLogSum
        r = _g.log(_g.sum(x, ax, kd))
    return _keep(m, x, r)


@_reg("Softmax LogSoftmax", axis=None)
def _softmax(m, node, ins, at):
    op = node.op_type
    x = _need(op, ins, 0)
    f = _g.softmax if op == "Softmax" else _g.log_softmax
    if m.opset >= 13:
        axis = -1 if at["axis"] is None else int(at["axis"])
        return _keep(m, x, f(x, axis))
    # opset < 13: the input is coerced to 2-D [prod(d[:axis]), prod(d[axis:])]
    axis = 1 if at["axis"] is None else int(at["axis"])
    shape = m._shape(x, op)
    r = len(shape)
    if axis < 0:
        axis += r
    if axis == r - 1:
        return _keep(m, x, f(x, -1))
    outer = int(np.prod(shape[:axis], dtype=np.int64))
    inner = int(np.prod(shape[axis:], dtype=np.int64))
    y = f(_g.reshape(x, (outer, inner)), 1)
    return _keep(m, x, _g.reshape(y, shape))


def _arg_index(m, op, x, axis, last):
    """Index of the first (last) max along axis, keepdims: the min (max) of the
    positions where x equals its max. NaN counts as the max (numpy's argmax
    returns the first NaN), so NaN positions match too."""
    r = m._rank(x)
    A = m._shape(x, op)[axis]
    if A == 0:
        raise UnsupportedOnnx("%s over an empty axis" % op, op)
    mx = _g.max(x, axis, True)
    hit = _g.equal(x, mx)
    if m._dtype(x) in ("f32", "f64"):
        hit = _g.logical_or(hit, _g.not_equal(x, x))
    io = _iota(A, axis, r)
    if last:
        return _g.max(_g.where(hit, io, _sc("i64", -1)), axis, True)
    return _g.min(_g.where(hit, io, _sc("i64", A)), axis, True)


@_reg("ArgMax ArgMin", axis=0, keepdims=1, select_last_index=0)
def _argmax(m, node, ins, at):
    op = node.op_type
    x = _need(op, ins, 0)
    if m._dtype(x) == "bool":
        x = _g.cast(x, "i32")
    r = m._rank(x)
    if r == 0:
        raise UnsupportedOnnx("%s of a scalar" % op, op)
    axis = _axis(at["axis"], r, op)
    if op == "ArgMin":  # argmin(x) == argmax(-x) for ordered values; NaN stays NaN
        x = _g.negative(x) if m._dtype(x) in ("f32", "f64") else _g.subtract(_sc(m._dtype(x), -1), x)
    y = _arg_index(m, op, x, axis, bool(at["select_last_index"]))
    return y if at["keepdims"] else _g.squeeze(y, axis)


@_reg("Hardmax", axis=None)
def _hardmax(m, node, ins, at):
    """One-hot of the first maximum along the axis (opset < 13: of the input
    coerced to 2-D, as Softmax)."""
    op = "Hardmax"
    x = _need(op, ins, 0)
    shape = m._shape(x, op)
    r = len(shape)
    if m.opset >= 13:
        axis = _axis(-1 if at["axis"] is None else at["axis"], r, op)
        xx = x
    else:
        axis = _axis(1 if at["axis"] is None else at["axis"], r, op)
        outer = int(np.prod(shape[:axis], dtype=np.int64))
        xx = _g.reshape(x, (outer, int(np.prod(shape[axis:], dtype=np.int64))))
        axis = 1
    A = m._shape(xx, op)[axis]
    rr = m._rank(xx)
    hot = _g.equal(_iota(A, axis, rr), _arg_index(m, op, xx, axis, False))
    y = _g.cast(hot, m._dtype(x))
    return _g.reshape(y, shape) if xx is not x else y


def _shift(m, x, axis, k, dt):
    """x moved k places forward along axis, zeros entering."""
    shape = list(m._shape(x, "CumSum"))
    n = shape[axis]
    if k >= n:
        return _g.broadcast_to(_sc(dt, 0), shape)
    zs = list(shape)
    zs[axis] = k
    head = _g.broadcast_to(_sc(dt, 0), zs)
    body = _g.Var("slice", (x,), [("axis", axis), ("start", 0), ("stop", n - k)])
    return _g.concatenate([head, body], axis)


@_reg("CumSum", exclusive=0, reverse=0)
def _cumsum(m, node, ins, at):
    """Hillis-Steele scan: log2(n) rounds of x += x shifted by 2^k. Only
    additions of the inputs (no multiplication by a 0/1 matrix, which would
    turn an inf into NaN elsewhere); exclusive shifts the input by one first,
    reverse flips the axis around the scan."""
    op = "CumSum"
    x = _need(op, ins, 0)
    dt = m._dtype(x)
    if dt == "bool":
        raise UnsupportedOnnx("CumSum of bool", op)
    r = m._rank(x)
    axis = _axis(_sval(m._static(node.input[1], op, "axis"), op, "axis"), r, op)
    n = m._shape(x, op)[axis]
    flip = [("axis", axis), ("start", -1), ("step", -1)]
    if at["reverse"]:
        x = _g.Var("slice", (x,), flip)
    if at["exclusive"]:
        x = _shift(m, x, axis, 1, dt)
    k = 1
    while k < n:
        x = _g.add(x, _shift(m, x, axis, k, dt))
        k *= 2
    if at["reverse"]:
        x = _g.Var("slice", (x,), flip)
    return x


@_reg("TopK", axis=-1, largest=1, sorted=1, k=None)
def _topk(m, node, ins, at):
    """The rank of each element along the axis -- how many come before it:
    larger (smaller) ones, and equal ones at a lower index; NaN counts as the
    largest -- and output position p takes the element of rank p (a one-hot
    select-and-sum). Quadratic in the axis length."""
    op = "TopK"
    x = _need(op, ins, 0)
    K = int(at["k"]) if m.opset < 10 else int(_sval(m._static(node.input[1], op, "k"), op, "k"))
    r = m._rank(x)
    axis = _axis(at["axis"], r, op)
    A = m._shape(x, op)[axis]
    if K < 0 or K > A:
        raise UnsupportedOnnx("%s: k=%d for an axis of %d" % (op, K, A), op)
    dt = m._dtype(x)
    perm = [k for k in range(r) if k != axis] + [axis]
    xt = _g.transpose(x, perm)  # [..., A]
    xi = _g.expand_dims(xt, r)  # [..., A(i), 1]
    xj = _g.expand_dims(xt, r - 1)  # [..., 1, A(j)]
    if at["largest"]:
        before = _g.greater(xj, xi)
    else:
        before = _g.less(xj, xi)
    same = _g.equal(xj, xi)
    if dt in ("f32", "f64"):
        ni, nj = _g.not_equal(xi, xi), _g.not_equal(xj, xj)
        if at["largest"]:
            before = _g.logical_or(before, _g.logical_and(nj, _g.logical_not(ni)))
        else:
            before = _g.logical_or(before, _g.logical_and(ni, _g.logical_not(nj)))
        same = _g.logical_or(same, _g.logical_and(ni, nj))
    lower = _g.constant(np.arange(A)[None, :] < np.arange(A)[:, None])  # [i, j]: j < i
    before = _g.logical_or(before, _g.logical_and(same, lower))
    rank = _g.sum(_g.cast(before, "i64"), r)  # [..., A]
    hot = _g.equal(_g.expand_dims(rank, r - 1), _iota(K, 0, 2))  # [..., K, A]
    zero = _sc(dt, 0) if dt != "bool" else _sc("i32", 0)
    xv = xj if dt != "bool" else _g.cast(xj, "i32")
    vals = _g.sum(_g.where(hot, xv, zero), r)
    vals = _keep(m, x, vals) if dt != "bool" else _g.cast(vals, "bool")
    inds = _g.sum(_g.where(hot, _iota(A, 1, 2), _sc("i64", 0)), r)
    inv = [perm.index(k) for k in range(r)]
    return [_g.transpose(vals, inv), _g.transpose(inds, inv)]
