"""Shape and layout ops: Transpose, Reshape, Flatten, Squeeze/Unsqueeze,
Concat, Split, Slice, Expand, Tile, Pad, DepthToSpace/SpaceToDepth, and
the ops whose values are known at import (Constant, ConstantOfShape,
Shape, Size, Range).
"""
import numpy as np
from onnx import numpy_helper as _nh

from .. import graph as _g
from ._core import UnsupportedOnnx, _evaluate, _need, _NP_TO_TL, _opt, _reg, _widen
from ._helpers import _attr_str, _axes_from, _axis, _pad_axis, _sc


@_reg("Transpose", perm=None)
def _transpose(m, node, ins, at):
    x = _need("Transpose", ins, 0)
    return _g.transpose(x, None if at["perm"] is None else list(at["perm"]))


@_reg("Reshape", allowzero=0, shape=None)
def _reshape(m, node, ins, at):
    x = _need("Reshape", ins, 0)
    if m.opset < 5:
        shape = list(at["shape"])
    else:
        shape = [int(s) for s in np.asarray(m._static(node.input[1], "Reshape", "shape")).ravel()]
    if any(s == 0 for s in shape):
        if at["allowzero"]:
            pass
        else:
            xs = m._shape(x, "Reshape")
            shape = [xs[k] if s == 0 else s for k, s in enumerate(shape)]
    return _g.reshape(x, shape)


@_reg("Flatten", axis=1)
def _flatten(m, node, ins, at):
    x = _need("Flatten", ins, 0)
    shape = m._shape(x, "Flatten")
    axis = int(at["axis"])
    if axis < 0:
        axis += len(shape)
    outer = int(np.prod(shape[:axis], dtype=np.int64))
    inner = int(np.prod(shape[axis:], dtype=np.int64))
    return _g.reshape(x, (outer, inner))


@_reg("Squeeze", axes=None)
def _squeeze(m, node, ins, at):
    x = _need("Squeeze", ins, 0)
    axes = _axes_from(m, node, ins, at, 1, 13)
    if axes is None:
        return _g.squeeze(x)
    return _g.squeeze(x, axes if len(axes) != 1 else axes[0])


@_reg("Unsqueeze", axes=None)
def _unsqueeze(m, node, ins, at):
    x = _need("Unsqueeze", ins, 0)
    axes = _axes_from(m, node, ins, at, 1, 13)
    if axes is None:
        raise UnsupportedOnnx("Unsqueeze without axes", "Unsqueeze")
    r = m._rank(x) + len(axes)
    axes = sorted(a + r if a < 0 else a for a in axes)
    for a in axes:
        x = _g.expand_dims(x, a)
    return x


@_reg("Concat", axis=None)
def _concat(m, node, ins, at):
    xs = [x for x in ins if x is not None]
    if at["axis"] is None:
        raise UnsupportedOnnx("Concat without axis", "Concat")
    return _g.concatenate(xs, int(at["axis"]))


@_reg("Split", axis=0, split=None, num_outputs=None)
def _split(m, node, ins, at):
    x = _need("Split", ins, 0)
    shape = m._shape(x, "Split")
    axis = int(at["axis"])
    if axis < 0:
        axis += len(shape)
    n = len(node.output)
    if m.opset >= 13 and _opt(ins, 1) is not None:
        sizes = [int(s) for s in np.asarray(m._static(node.input[1], "Split", "split")).ravel()]
    elif m.opset < 13 and at["split"] is not None:
        sizes = [int(s) for s in at["split"]]
    else:
        d = shape[axis]
        if at["num_outputs"] is not None:
            n = int(at["num_outputs"])
        k = -(-d // n)
        sizes = [k] * (d // k) + ([d % k] if d % k else [])
        if len(sizes) != n:
            sizes = [d // n] * n
    outs = []
    start = 0
    for s in sizes:
        outs.append(_g.Var("slice", (x,), [("axis", axis), ("start", start), ("stop", start + s)]))
        start += s
    return outs


_I64MAX = 2 ** 63 - 1


def _const_int(v):
    """v's value as an int when it depends on no input and has one element."""
    if _g.inputs_of([v]):
        return None
    a = np.asarray(_evaluate(v)).ravel()
    return int(a[0]) if a.size == 1 and a.dtype.kind in "iub" else None


def _base_offset(v):
    """(base, k) with v == base + k, seen through shape-only ops on one
    element and the addition of constants (an ONNX loop's `i` and `i + 1`)."""
    k = 0
    for _ in range(64):
        if v.op in ("reshape", "expand_dims", "squeeze", "cast") and len(v.args) == 1:
            v = v.args[0]
        elif v.op in ("add", "sub") and len(v.args) == 2 and _const_int(v.args[1]) is not None:
            k += _const_int(v.args[1]) * (1 if v.op == "add" else -1)
            v = v.args[0]
        elif v.op == "add" and len(v.args) == 2 and _const_int(v.args[0]) is not None:
            k += _const_int(v.args[0])
            v = v.args[1]
        else:
            break
    return v, k


def _dynamic_slice(m, x, ins):
    """A Slice whose start is known only at run time but whose end is the
    start plus a constant c (one axis, step 1): x[s:s+c] as a take of
    s + arange(c), where s is the start made non-negative (ONNX adds the
    dim). Where ONNX would return fewer than c elements (the slice runs
    past an end, or a negative start whose end is not negative) the take's
    index is out of range: a run-time error, never a shorter result."""
    op = "Slice"
    axes = None
    if _opt(ins, 3) is not None:
        axes = _const_int(ins[3])
        if axes is None:
            raise UnsupportedOnnx("Slice with run-time axes", op)
    if _opt(ins, 4) is not None and _const_int(ins[4]) != 1:
        raise UnsupportedOnnx("Slice with a run-time start and a step other than 1", op)
    (bs, ks), (be, ke) = _base_offset(ins[1]), _base_offset(ins[2])
    if bs is not be or ke < ks or m._shape(ins[1], op) != (1,):
        raise UnsupportedOnnx("Slice with a run-time start: its end must be the start plus a constant", op)
    xs = m._shape(x, op)
    ax = (axes or 0) + (len(xs) if (axes or 0) < 0 else 0)
    dim = xs[ax]
    if not isinstance(dim, int):
        raise UnsupportedOnnx("Slice with a run-time start on a symbolic dim", op)
    c = ke - ks
    s = _g.cast(_g.reshape(ins[1], ()), "i64")
    big = _g.constant(np.array(dim, np.int64))
    neg = _g.where(_g.less(_g.add(s, c), 0), _g.add(s, dim), big)
    base = _g.where(_g.less(s, 0), neg, s)
    base = _g.where(_g.less(base, 0), big, base)
    idx = _g.add(base, _g.constant(np.arange(c, dtype=np.int64)))
    return _g.take(x, idx, ax)


@_reg("Slice", starts=None, ends=None, axes=None)
def _slice(m, node, ins, at):
    x = _need("Slice", ins, 0)
    if m.opset >= 10:
        try:
            m._static(node.input[1], "Slice", "starts")
        except UnsupportedOnnx as e:
            try:
                return _dynamic_slice(m, x, ins)
            except UnsupportedOnnx:
                raise e from None  # it says which input to freeze
    if m.opset < 10:
        starts, ends = list(at["starts"]), list(at["ends"])
        axes = list(at["axes"]) if at["axes"] is not None else list(range(len(starts)))
        steps = [1] * len(starts)
    else:
        def get(k, what):
            if _opt(ins, k) is None:
                return None
            return [int(v) for v in np.asarray(m._static(node.input[k], "Slice", what)).ravel()]
        starts, ends = get(1, "starts"), get(2, "ends")
        axes = get(3, "axes")
        steps = get(4, "steps")
        if axes is None:
            axes = list(range(len(starts)))
        if steps is None:
            steps = [1] * len(starts)
    for a, s, e, st in zip(axes, starts, ends, steps):
        if st == 0:
            raise UnsupportedOnnx("Slice with step 0", "Slice")
        attrs = [("axis", int(a)), ("start", int(s))]
        # ONNX clamps like Python slices; +-INT64_MAX sentinels mean "to the end"
        if not ((st > 0 and e >= _I64MAX // 2) or (st < 0 and e <= -_I64MAX // 2)):
            attrs.append(("stop", int(e)))
        if st != 1:
            attrs.append(("step", int(st)))
        if st > 0 and s <= -_I64MAX // 2:
            attrs[1] = ("start", 0)
        x = _g.Var("slice", (x,), attrs)
    return x


@_reg("Expand")
def _expand(m, node, ins, at):
    x = _need("Expand", ins, 0)
    shape = [int(s) for s in np.asarray(m._static(node.input[1], "Expand", "shape")).ravel()]
    xs = m._shape(x, "Expand")
    r = max(len(xs), len(shape))
    a = [1] * (r - len(xs)) + list(xs)
    b = [1] * (r - len(shape)) + shape
    out = []
    for p, q in zip(a, b):
        if p != q and p != 1 and q != 1:
            raise UnsupportedOnnx("Expand: shapes %s and %s do not broadcast" % (xs, shape))
        out.append(q if p == 1 else p)
    return _g.broadcast_to(x, out)


@_reg("Constant", value=None, value_float=None, value_floats=None, value_int=None,
      value_ints=None, sparse_value=None, value_string=None, value_strings=None)
def _constant(m, node, ins, at):
    if at["value"] is not None:
        return _nh.to_array(at["value"])
    if at["value_float"] is not None:
        return np.array(at["value_float"], np.float32)
    if at["value_floats"] is not None:
        return np.array(at["value_floats"], np.float32)
    if at["value_int"] is not None:
        return np.array(at["value_int"], np.int64)
    if at["value_ints"] is not None:
        return np.array(at["value_ints"], np.int64)
    raise UnsupportedOnnx("Constant of a sparse or string value", "Constant")


@_reg("ConstantOfShape", value=None)
def _cos(m, node, ins, at):
    shape = [int(s) for s in np.asarray(m._static(node.input[0], "ConstantOfShape", "shape")).ravel()]
    val = np.zeros(1, np.float32) if at["value"] is None else _nh.to_array(at["value"]).ravel()
    dt = _NP_TO_TL.get(_widen(val).dtype.type)
    if dt is None:
        raise UnsupportedOnnx("ConstantOfShape of dtype %s" % val.dtype, "ConstantOfShape")
    n = int(np.prod(shape, dtype=np.int64))
    if n <= m.const_limit:  # its value stays known to ops that need it static
        m.consts[node.output[0]] = np.full(shape, val[0], val.dtype)
    return _g.fill(tuple(shape), val[0].item(), dt)


@_reg("Shape", start=0, end=None)
def _shape_op(m, node, ins, at):
    x = _need("Shape", ins, 0)
    shape = list(m._shape(x, "Shape"))
    s, e = int(at["start"]), at["end"]
    return np.array(shape[s:(None if e is None else int(e))], np.int64)


@_reg("Size")
def _size(m, node, ins, at):
    x = _need("Size", ins, 0)
    return np.array(int(np.prod(m._shape(x, "Size"), dtype=np.int64)), np.int64)


@_reg("Tile")
def _tile(m, node, ins, at):
    x = _need("Tile", ins, 0)
    reps = [int(r) for r in np.asarray(m._static(node.input[1], "Tile", "repeats")).ravel()]
    shape = m._shape(x, "Tile")
    if len(reps) != len(shape):
        raise UnsupportedOnnx("Tile: repeats of length %d for rank %d" % (len(reps), len(shape)))
    y = x
    for k, rep in enumerate(reps):
        if rep != 1:
            y = _g.concatenate([y] * rep, k)
    return y


@_reg("Range")
def _range(m, node, ins, at):
    vals = [np.asarray(m._static(node.input[k], "Range", w)) for k, w in
            enumerate(("start", "limit", "delta"))]
    return np.arange(vals[0], vals[1], vals[2]).astype(vals[0].dtype)


@_reg("DepthToSpace", blocksize=None, mode="DCR")
def _d2s(m, node, ins, at):
    op = "DepthToSpace"
    x = _need(op, ins, 0)
    shape = m._shape(x, op)
    if len(shape) != 4:
        raise UnsupportedOnnx("%s: input must be 4-D, got %s" % (op, shape), op)
    b = int(at["blocksize"])
    n, c, h, w = shape
    if c % (b * b):
        raise UnsupportedOnnx("%s: channels %d not divisible by blocksize^2" % (op, c), op)
    mode = _attr_str(at["mode"])
    if mode == "DCR":
        y = _g.transpose(_g.reshape(x, (n, b, b, c // (b * b), h, w)), [0, 3, 4, 1, 5, 2])
    elif mode == "CRD":
        y = _g.transpose(_g.reshape(x, (n, c // (b * b), b, b, h, w)), [0, 1, 4, 2, 5, 3])
    else:
        raise UnsupportedOnnx("%s: mode %r" % (op, mode), op)
    return _g.reshape(y, (n, c // (b * b), h * b, w * b))


@_reg("SpaceToDepth", blocksize=None)
def _s2d(m, node, ins, at):
    op = "SpaceToDepth"
    x = _need(op, ins, 0)
    shape = m._shape(x, op)
    if len(shape) != 4:
        raise UnsupportedOnnx("%s: input must be 4-D, got %s" % (op, shape), op)
    b = int(at["blocksize"])
    n, c, h, w = shape
    if h % b or w % b:
        raise UnsupportedOnnx("%s: spatial dims %s not divisible by %d" % (op, shape[2:], b), op)
    y = _g.transpose(_g.reshape(x, (n, c, h // b, b, w // b, b)), [0, 3, 5, 1, 2, 4])
    return _g.reshape(y, (n, c * b * b, h // b, w // b))


@_reg("Pad", mode="constant", pads=None, value=0.0)
def _pad(m, node, ins, at):
    """Static pads. Negative pads crop (slice); constant pads concatenate a
    broadcast value, edge pads a broadcast edge slice, reflect pads the
    mirrored slices (step -1) without the edge."""
    op = "Pad"
    x = _need(op, ins, 0)
    dt = m._dtype(x)
    shape = list(m._shape(x, op))
    r = len(shape)
    mode = _attr_str(at["mode"])
    if mode not in ("constant", "edge", "reflect"):
        raise UnsupportedOnnx("%s: mode %r" % (op, mode), op)
    if m.opset < 11:
        pads = [int(p) for p in at["pads"]]
        value = _sc(dt, float(at["value"]) if dt in ("f32", "f64") else int(at["value"]))
        axes = list(range(r))
    else:
        pads = [int(p) for p in np.asarray(m._static(node.input[1], op, "pads")).ravel()]
        cv = _opt(ins, 2)
        value = _sc(dt, 0) if cv is None else _g.cast(_g.reshape(cv, ()), dt)
        if _opt(ins, 3) is not None:
            axes = [_axis(a, r, op) for a in np.asarray(m._static(node.input[3], op, "axes")).ravel()]
        else:
            axes = list(range(r))
    if len(pads) != 2 * len(axes):
        raise UnsupportedOnnx("%s: %d pads for %d axes" % (op, len(pads), len(axes)), op)
    for k, axis in enumerate(axes):
        before, after = pads[k], pads[k + len(axes)]
        if before < 0 or after < 0:
            n = m._shape(x, op)[axis]
            x = _g.Var("slice", (x,), [("axis", axis), ("start", max(-before, 0)),
                                       ("stop", n - max(-after, 0))])
            before, after = max(before, 0), max(after, 0)
        if not before and not after:
            continue
        n = m._shape(x, op)[axis]
        if mode == "constant":
            x = _pad_axis(m, x, axis, before, after, value, op)
            continue
        if n == 0 or (mode == "reflect" and (before >= n or after >= n)):
            raise UnsupportedOnnx("%s: %s pads %d/%d on an axis of size %d" % (op, mode, before, after, n), op)
        parts = []
        if mode == "edge":
            ps = list(m._shape(x, op))
            if before:
                ps[axis] = before
                parts.append(_g.broadcast_to(_g.Var("slice", (x,), [("axis", axis), ("start", 0),
                                                                   ("stop", 1)]), ps))
            parts.append(x)
            if after:
                ps[axis] = after
                parts.append(_g.broadcast_to(_g.Var("slice", (x,), [("axis", axis), ("start", n - 1),
                                                                   ("stop", n)]), ps))
        else:
            if before:  # x[before], ..., x[1]
                parts.append(_g.Var("slice", (x,), [("axis", axis), ("start", before), ("stop", 0),
                                                    ("step", -1)]))
            parts.append(x)
            if after:  # x[n-2], ..., x[n-1-after] (a stop of -1 would mean the end)
                sl = [("axis", axis), ("start", n - 2), ("step", -1)]
                if n - 2 - after >= 0:
                    sl.insert(2, ("stop", n - 2 - after))
                parts.append(_g.Var("slice", (x,), sl))
        x = _g.concatenate(parts, axis)
    return x
