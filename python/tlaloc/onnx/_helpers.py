"""Small building blocks shared by the op converters: results cast back to
the operand's dtype (_keep), typed scalar constants, axis normalisation,
axes from an attribute or an input, iotas, static scalars, padding along
one axis, rounding half to even.
"""
import numpy as np

from .. import graph as _g
from ._core import UnsupportedOnnx, _npdt, _opt


def _keep(m, x, r):
    """Casts r back to x's dtype where tlaloc's promotion differs from ONNX's
    (ONNX ops keep the operand dtype)."""
    dt = m._dtype(x)
    if m._dtype(r) != dt:
        r = _g.cast(r, dt)
    return r


def _axes_from(m, node, ins, at, input_index, since):
    """Axes from the attribute (opset < since) or from input `input_index`."""
    if m.opset >= since:
        if "axes" in at and at["axes"] is not None:
            raise UnsupportedOnnx("%s: attribute axes at opset %d" % (node.op_type, m.opset))
        v = _opt(ins, input_index)
        if v is None:
            return None
        arr = m._static(node.input[input_index], node.op_type, "axes")
        return [int(a) for a in np.asarray(arr).ravel()]
    ax = at.get("axes")
    return None if ax is None else [int(a) for a in ax]


def _sc(dt, v):
    """A typed scalar constant (literals are weakly typed; this is not)."""
    return _g.constant(np.array(v, _npdt(dt)))


def _axis(a, r, op, what="axis"):
    a = int(a)
    if a < -r or a >= r:
        raise UnsupportedOnnx("%s: %s %d out of range for rank %d" % (op, what, a, r), op)
    return a + r if a < 0 else a


def _iota(n, axis, rank, dt=np.int64):
    """arange(n) as a constant of the given rank, laid along `axis`."""
    return _g.constant(np.arange(n, dtype=dt).reshape((1,) * axis + (n,) + (1,) * (rank - axis - 1)))


def _sval(arr, op, what):
    """A static scalar (or one-element tensor) parameter as a Python number."""
    a = np.asarray(arr).ravel()
    if a.size != 1:
        raise UnsupportedOnnx("%s: %s must have one element, got %d" % (op, what, a.size), op)
    return a[0].item()


def _attr_str(v):
    return v.decode() if isinstance(v, bytes) else v


def _pad_axis(m, x, axis, before, after, value, op):
    """x with `before`/`after` copies of `value` (a scalar Var) around `axis`."""
    shape = list(m._shape(x, op))
    parts = []
    for n in (before, after):
        if n:
            ps = list(shape)
            ps[axis] = n
            parts.append(_g.broadcast_to(value, ps))
        else:
            parts.append(None)
    seq = [p for p in (parts[0], x, parts[1]) if p is not None]
    return _g.concatenate(seq, axis) if len(seq) > 1 else x


def _round_even(v):
    """Round half to even (nearbyint), from floor and where."""
    f = _g.floor(v)
    d = _g.subtract(v, f)
    odd = _g.not_equal(_g.remainder(f, 2.0), 0.0)
    up = _g.logical_or(_g.greater(d, 0.5), _g.logical_and(_g.equal(d, 0.5), odd))
    return _g.where(up, _g.add(f, 1.0), f)
