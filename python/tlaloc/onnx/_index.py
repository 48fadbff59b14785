"""Selection by index: Gather, GatherElements, GatherND, Compress, OneHot,
ReverseSequence, and the scatters (ScatterElements/Scatter, ScatterND) as
one-hot selects of run-time indices.
"""
import numpy as np

from .. import graph as _g
from ._core import UnsupportedOnnx, _need, _npdt, _reg
from ._helpers import _attr_str, _axis, _iota, _keep, _pad_axis, _sc, _sval


@_reg("Gather", axis=0)
def _gather(m, node, ins, at):
    return _g.take(_need("Gather", ins, 0), _need("Gather", ins, 1), int(at["axis"]))


@_reg("GatherElements", axis=0)
def _gather_elements(m, node, ins, at):
    """Exact: out = sum over the data axis of where(index == iota, data, 0) (one
    nonzero term per output; every other term is an exact 0)."""
    op = "GatherElements"
    x = _need(op, ins, 0)
    idx = _need(op, ins, 1)
    xs = list(m._shape(x, op))
    qs = list(m._shape(idx, op))
    r = len(xs)
    if len(qs) != r or r == 0:
        raise UnsupportedOnnx("%s: data %s and indices %s ranks differ" % (op, xs, qs), op)
    axis = int(at["axis"])
    if axis < 0:
        axis += r
    for k in range(r):
        if k != axis and qs[k] > xs[k]:
            raise UnsupportedOnnx("%s: indices %s exceed data %s" % (op, qs, xs), op)
    tdt = m._dtype(idx)
    if tdt not in ("i32", "i64"):
        raise UnsupportedOnnx("%s: indices dtype %s" % (op, tdt), op)
    if any(qs[k] != xs[k] for k in range(r) if k != axis):
        key = tuple(slice(0, qs[k]) if k != axis else slice(None) for k in range(r))
        x = x[key]
    A = int(xs[axis])
    npdt = np.int32 if tdt == "i32" else np.int64
    zi = _g.constant(np.zeros((), npdt))
    idx = _g.where(_g.less(idx, zi), _g.add(idx, _g.constant(np.array(A, npdt))), idx)
    iota = np.arange(A, dtype=npdt).reshape((1,) * (axis + 1) + (A,) + (1,) * (r - axis - 1))
    onehot = _g.equal(_g.expand_dims(idx, axis + 1), _g.constant(iota))
    dt = m._dtype(x)
    zero = _g.constant(np.zeros((), {"f32": np.float32, "f64": np.float64, "i32": np.int32,
                                     "i64": np.int64, "bool": np.bool_}[dt]))
    xe = _g.expand_dims(x, axis)
    if dt == "bool":
        picked = _g.sum(_g.where(onehot, _g.cast(xe, "i32"), _g.constant(np.zeros((), np.int32))),
                        axis + 1, False)
        return _g.greater(picked, _g.constant(np.zeros((), np.int32)))
    return _keep(m, x, _g.sum(_g.where(onehot, xe, zero), axis + 1, False))


@_reg("OneHot", axis=-1)
def _onehot(m, node, ins, at):
    """eq(mod(indices, depth) laid on a new axis, arange(depth)) selecting
    values[1] (on) or values[0] (off), as the ONNX reference."""
    op = "OneHot"
    idx, vals = _need(op, ins, 0), _need(op, ins, 2)
    depth = _sval(m._static(node.input[1], op, "depth"), op, "depth")
    if depth != int(depth) or depth < 0:
        raise UnsupportedOnnx("%s: depth %r is not a non-negative integer" % (op, depth), op)
    depth = int(depth)
    r = m._rank(idx)
    axis = _axis(at["axis"], r + 1, op)
    idt = m._dtype(idx)
    if idt == "bool":
        idx = _g.cast(idx, "i64")
        idt = "i64"
    wrapped = _g.remainder(idx, _sc(idt, depth))
    hot = _g.equal(_g.expand_dims(wrapped, axis), _g.constant(
        np.arange(depth, dtype=_npdt(idt)).reshape((1,) * axis + (depth,) + (1,) * (r - axis))))
    if m._shape(vals, op) != (2,):
        raise UnsupportedOnnx("%s: values must have 2 elements" % op, op)
    off = _g.Var("slice", (vals,), [("axis", 0), ("start", 0), ("stop", 1)])
    on = _g.Var("slice", (vals,), [("axis", 0), ("start", 1), ("stop", 2)])
    return _g.where(hot, _g.squeeze(on, 0), _g.squeeze(off, 0))


@_reg("Compress", axis=None)
def _compress(m, node, ins, at):
    """A static condition (its true positions fix the output shape) selects
    with take; without axis, from the flattened input."""
    op = "Compress"
    x = _need(op, ins, 0)
    cond = np.asarray(m._static(node.input[1], op, "condition")).ravel().astype(bool)
    if at["axis"] is None:
        x = _g.reshape(x, (-1,))
        axis = 0
    else:
        axis = _axis(at["axis"], m._rank(x), op)
    n = m._shape(x, op)[axis]
    if cond.size > n:
        raise UnsupportedOnnx("%s: condition longer than the axis (%d > %d)" % (op, cond.size, n), op)
    return _g.take(x, _g.constant(np.nonzero(cond)[0].astype(np.int64)), axis)


@_reg("GatherND", batch_dims=0)
def _gathernd(m, node, ins, at):
    """take along a flattened leading block: each index tuple (negatives
    wrapped) becomes one linear index, plus the offset of its batch."""
    op = "GatherND"
    x, idx = _need(op, ins, 0), _need(op, ins, 1)
    xs, qs = m._shape(x, op), m._shape(idx, op)
    b = int(at["batch_dims"])
    q = qs[-1]
    if len(qs) < 1 or b + q > len(xs) or tuple(qs[:b]) != tuple(xs[:b]):
        raise UnsupportedOnnx("%s: data %s and indices %s do not fit (batch_dims %d)" % (op, xs, qs, b), op)
    if m._dtype(idx) not in ("i32", "i64"):
        raise UnsupportedOnnx("%s: indices dtype %s" % (op, m._dtype(idx)), op)
    idx = _g.cast(idx, "i64")
    dims = np.array(xs[b:b + q], np.int64)
    idx = _g.where(_g.less(idx, 0), _g.add(idx, _g.constant(dims)), idx)
    strides = np.array([int(np.prod(dims[k + 1:], dtype=np.int64)) for k in range(q)], np.int64)
    lin = _g.sum(_g.multiply(idx, _g.constant(strides)), -1)  # [batch..., idx...]
    block = int(np.prod(dims, dtype=np.int64))
    B = int(np.prod(xs[:b], dtype=np.int64))
    if b:
        off = np.arange(B, dtype=np.int64).reshape(tuple(xs[:b]) + (1,) * (len(qs) - 1 - b)) * block
        lin = _g.add(lin, _g.constant(off))
    flat = _g.reshape(x, (B * block,) + tuple(xs[b + q:]))
    return _g.take(flat, lin, 0)


@_reg("ReverseSequence", batch_axis=1, time_axis=0)
def _revseq(m, node, ins, at):
    """Per batch b, time t < len[b] reads t' = len[b] - 1 - t: one take from
    the [time * batch, ...] flattening with the run-time linear index."""
    op = "ReverseSequence"
    x, lens = _need(op, ins, 0), _need(op, ins, 1)
    shape = m._shape(x, op)
    r = len(shape)
    ta, ba = _axis(at["time_axis"], r, op), _axis(at["batch_axis"], r, op)
    if sorted((ta, ba)) != [0, 1]:
        raise UnsupportedOnnx("%s: time and batch axes must be 0 and 1" % op, op)
    perm = None
    if ta == 1:  # work time-major
        perm = [1, 0] + list(range(2, r))
        x = _g.transpose(x, perm)
    T, B = m._shape(x, op)[:2]
    t = _iota(T, 0, 2)
    b = _iota(B, 1, 2)
    ln = _g.reshape(_g.cast(lens, "i64"), (1, B))
    src = _g.where(_g.less(t, ln), _g.subtract(_g.subtract(ln, 1), t), t)
    flat = _g.reshape(x, (T * B,) + tuple(shape[2:]))
    y = _g.take(flat, _g.add(_g.multiply(src, B), b), 0)
    return _g.transpose(y, perm) if perm else y


# -- scatters: a one-hot match of run-time indices against the positions -----

def _scatter_last(m, op, data, lin, upd, red):
    """data [B..., L], lin and upd [B..., M] (lin: positions in [0, L), or
    outside to hit nothing) -> data with upd[m] written at lin[m]: with
    reduction none the last update to a position wins (the reference's
    sequential order); add / mul combine them all with the data."""
    L = m._shape(data, op)[-1]
    M = m._shape(lin, op)[-1]
    r = m._rank(lin)
    dt = m._dtype(data)
    hit = _g.equal(_g.expand_dims(lin, r), _iota(L, r, r + 1))  # [B..., M, L]
    ue = _g.expand_dims(upd, r)  # [B..., M, 1]
    if red == "none":
        jm = _iota(M, r - 1, r + 1)  # [.., M, 1]
        last = _g.max(_g.where(hit, jm, _sc("i64", -1)), r - 1, True)  # [B..., 1, L]
        sel = _g.logical_and(hit, _g.equal(jm, last))
        if dt == "bool":
            val = _g.cast(_g.sum(_g.where(sel, _g.cast(ue, "i32"), _sc("i32", 0)), r - 1), "bool")
        else:
            val = _g.sum(_g.where(sel, ue, _sc(dt, 0)), r - 1)
        return _g.where(_g.greater_equal(_g.squeeze(last, r - 1), 0), _keep(m, data, val), data)
    if dt == "bool":
        raise UnsupportedOnnx("%s: reduction %s on bool" % (op, red), op)
    if red == "add":
        return _keep(m, data, _g.add(data, _g.sum(_g.where(hit, ue, _sc(dt, 0)), r - 1)))
    if red == "mul":
        return _keep(m, data, _g.multiply(data, _g.prod(_g.where(hit, ue, _sc(dt, 1)), r - 1)))
    raise UnsupportedOnnx("%s: reduction %r" % (op, red), op)


def _wrap_index(m, op, idx, n):
    if m._dtype(idx) not in ("i32", "i64"):
        raise UnsupportedOnnx("%s: indices dtype %s" % (op, m._dtype(idx)), op)
    idx = _g.cast(idx, "i64")
    return _g.where(_g.less(idx, 0), _g.add(idx, n), idx)


@_reg("ScatterElements Scatter", axis=0, reduction="none")
def _scatter_elements(m, node, ins, at):
    """The scatter axis moved last; indices and updates padded (with an index
    that hits nothing) to the data's extent on the other axes."""
    op = node.op_type
    data, idx, upd = [_need(op, ins, k) for k in range(3)]
    ds, qs = list(m._shape(data, op)), list(m._shape(idx, op))
    r = len(ds)
    if len(qs) != r or tuple(m._shape(upd, op)) != tuple(qs):
        raise UnsupportedOnnx("%s: data %s, indices %s, updates %s" % (op, ds, qs, m._shape(upd, op)), op)
    axis = _axis(at["axis"], r, op)
    idx = _wrap_index(m, op, idx, ds[axis])
    for k in range(r):
        if k != axis and qs[k] < ds[k]:
            idx = _pad_axis(m, idx, k, 0, ds[k] - qs[k], _sc("i64", -1), op)
            upd = _pad_axis(m, upd, k, 0, ds[k] - qs[k], _sc(m._dtype(upd), 0), op)
        elif k != axis and qs[k] > ds[k]:
            raise UnsupportedOnnx("%s: indices %s exceed data %s" % (op, qs, ds), op)
    perm = [k for k in range(r) if k != axis] + [axis]
    inv = [perm.index(k) for k in range(r)]
    out = _scatter_last(m, op, _g.transpose(data, perm), _g.transpose(idx, perm),
                        _g.transpose(upd, perm), _attr_str(at["reduction"]))
    return _g.transpose(out, inv)


@_reg("ScatterND", reduction="none")
def _scatternd(m, node, ins, at):
    """Index tuples -> linear positions in the leading block of the data; the
    trailing (sliced) axes become batch axes of the scatter."""
    op = "ScatterND"
    data, idx, upd = [_need(op, ins, k) for k in range(3)]
    ds, qs, us = list(m._shape(data, op)), list(m._shape(idx, op)), list(m._shape(upd, op))
    q = qs[-1]
    if q > len(ds) or us != qs[:-1] + ds[q:]:
        raise UnsupportedOnnx("%s: data %s, indices %s, updates %s" % (op, ds, qs, us), op)
    dims = np.array(ds[:q], np.int64)
    idx = _wrap_index(m, op, idx, _g.constant(dims))
    strides = np.array([int(np.prod(dims[k + 1:], dtype=np.int64)) for k in range(q)], np.int64)
    lin = _g.reshape(_g.sum(_g.multiply(idx, _g.constant(strides)), -1), (-1,))  # [M]
    L = int(np.prod(dims, dtype=np.int64))
    M = int(np.prod(qs[:-1], dtype=np.int64))
    rest = ds[q:]
    R = int(np.prod(rest, dtype=np.int64))
    d2 = _g.transpose(_g.reshape(data, (L, R)), [1, 0])  # [R, L]
    u2 = _g.transpose(_g.reshape(upd, (M, R)), [1, 0])  # [R, M]
    l2 = _g.broadcast_to(_g.reshape(lin, (1, M)), (R, M))
    out = _scatter_last(m, op, d2, l2, u2, _attr_str(at["reduction"]))
    return _g.reshape(_g.transpose(out, [1, 0]), ds)
