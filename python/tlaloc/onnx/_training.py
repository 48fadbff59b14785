"""Training ops: the losses NegativeLogLikelihoodLoss and
SoftmaxCrossEntropyLoss, and the optimizer steps of
ai.onnx.preview.training (Adagrad, Momentum, Adam) -- deterministic
formulas.
"""
import numpy as np

from .. import graph as _g
from ._core import UnsupportedOnnx, _need, _opt, _reg
from ._helpers import _attr_str, _keep


def _nll(m, op, x, target, weight, at):
    """NegativeLogLikelihoodLoss on x [N, C, d...] (log-probabilities), exactly:
    the picked entry is selected with a one-hot comparison (eq against a
    broadcast class-index constant) and summed over C, where every other term
    is an exact 0."""
    xs = m._shape(x, op)
    if len(xs) < 2:
        raise UnsupportedOnnx("%s: input must have rank >= 2, got %s" % (op, xs), op)
    ts = m._shape(target, op)
    if tuple(ts) != (xs[0],) + tuple(xs[2:]):
        raise UnsupportedOnnx("%s: target shape %s does not match input %s" % (op, ts, xs), op)
    tdt = m._dtype(target)
    if tdt not in ("i32", "i64"):
        raise UnsupportedOnnx("%s: target dtype %s" % (op, tdt), op)
    red = at["reduction"]
    red = red.decode() if isinstance(red, bytes) else red
    if red not in ("none", "sum", "mean"):
        raise UnsupportedOnnx("%s: reduction=%r" % (op, red), op)
    C = int(xs[1])
    r = len(xs)
    npdt = np.int32 if tdt == "i32" else np.int64
    iota = np.arange(C, dtype=npdt).reshape((1, C) + (1,) * (r - 2))
    t1 = _g.expand_dims(target, 1)  # [N, 1, d...]
    onehot = _g.equal(t1, _g.constant(iota))  # [N, C, d...]
    ign = at["ignore_index"]
    keep = None
    if ign is not None:
        keep = _g.not_equal(target, _g.constant(np.array(int(ign), dtype=npdt)))
        onehot = _g.logical_and(onehot, _g.expand_dims(keep, 1))
    dt = m._dtype(x)
    zero = _g.constant(np.zeros((), dtype=np.float32 if dt == "f32" else np.float64))
    picked = _g.sum(_g.where(onehot, x, zero), 1, False)  # [N, d...]
    w = None
    if weight is not None:
        if tuple(m._shape(weight, op)) != (C,) or m._dtype(weight) != dt:
            raise UnsupportedOnnx("%s: weight must be %s[%d]" % (op, dt, C), op)
        wb = _g.reshape(weight, (1, C) + (1,) * (r - 2))
        w = _g.sum(_g.where(onehot, _g.broadcast_to(wb, xs), zero), 1, False)
        loss = _g.negative(_g.multiply(picked, w))
    else:
        loss = _g.negative(picked)
        if keep is not None:
            w = _g.cast(keep, dt)
    if red == "none":
        out = loss
    elif red == "sum":
        out = _g.sum(loss)
    elif w is None:
        out = _g.mean(loss)
    else:
        out = _g.divide(_g.sum(loss), _g.sum(w))
    return _keep(m, x, out)


@_reg("NegativeLogLikelihoodLoss", reduction="mean", ignore_index=None)
def _nll_op(m, node, ins, at):
    op = node.op_type
    return _nll(m, op, _need(op, ins, 0), _need(op, ins, 1), _opt(ins, 2), at)


@_reg("SoftmaxCrossEntropyLoss", reduction="mean", ignore_index=None)
def _sce_op(m, node, ins, at):
    op = node.op_type
    x = _need(op, ins, 0)
    lp = _keep(m, x, _g.log_softmax(x, 1))
    return [_nll(m, op, lp, _need(op, ins, 1), _opt(ins, 2), at), lp]


# -- the optimizer steps of ai.onnx.preview.training: deterministic formulas --

def _optimizer_groups(m, op, ins, k):
    """(R, T, [k groups of n tensors]) from Adagrad/Momentum/Adam's inputs."""
    R, T = _need(op, ins, 0), _need(op, ins, 1)
    rest = ins[2:]
    if not rest or len(rest) % k or any(v is None for v in rest):
        raise UnsupportedOnnx("%s: %d tensor inputs do not split into %d groups" % (op, len(rest), k), op)
    n = len(rest) // k
    return R, T, [rest[g * n:(g + 1) * n] for g in range(k)]


@_reg("Adagrad", decay_factor=0.0, epsilon=1e-6, norm_coefficient=0.0)
def _adagrad(m, node, ins, at):
    """r = R / (1 + T decay); g = norm X + G; H' = H + g^2;
    X' = X - r g / (sqrt(H') + eps)."""
    op = "Adagrad"
    R, T, (xs, gs, hs) = _optimizer_groups(m, op, ins, 3)
    r = _g.divide(R, _g.add(1.0, _g.multiply(_g.cast(T, "f64"), float(at["decay_factor"]))))
    xo, ho = [], []
    for x, gr, h in zip(xs, gs, hs):
        g = _g.add(_g.multiply(float(at["norm_coefficient"]), x), gr)
        hn = _g.add(h, _g.multiply(g, g))
        xn = _g.subtract(x, _g.divide(_g.multiply(r, g), _g.add(_g.sqrt(hn), float(at["epsilon"]))))
        xo.append(_keep(m, x, xn))
        ho.append(_keep(m, h, hn))
    return xo + ho


@_reg("Momentum", alpha=None, beta=None, mode=None, norm_coefficient=None)
def _momentum(m, node, ins, at):
    """g = norm X + G; V' = alpha V + (beta if T > 0 else 1) g; standard:
    X' = X - R V'; nesterov: X' = X - R (g + alpha V')."""
    op = "Momentum"
    R, T, (xs, gs, vs) = _optimizer_groups(m, op, ins, 3)
    mode = _attr_str(at["mode"])
    if mode not in ("standard", "nesterov"):
        raise UnsupportedOnnx("%s: mode %r" % (op, mode), op)
    a, b = float(at["alpha"]), float(at["beta"])
    badj = _g.where(_g.greater(T, 0), b, 1.0)
    xo, vo = [], []
    for x, gr, v in zip(xs, gs, vs):
        g = _g.add(_g.multiply(float(at["norm_coefficient"]), x), gr)
        vn = _g.add(_g.multiply(a, v), _g.multiply(badj, g))
        step = vn if mode == "standard" else _g.add(g, _g.multiply(a, vn))
        xo.append(_keep(m, x, _g.subtract(x, _g.multiply(R, step))))
        vo.append(_keep(m, v, vn))
    return xo + vo


@_reg("Adam", alpha=0.9, beta=0.999, epsilon=1e-6, norm_coefficient=0.0, norm_coefficient_post=0.0)
def _adam(m, node, ins, at):
    """g = norm X + G; V' = a V + (1 - a) g; H' = b H + (1 - b) g^2;
    R' = R sqrt(1 - b^T) / (1 - a^T) if T > 0 else R;
    X' = (1 - norm_post) (X - R' V' / (sqrt(H') + eps))."""
    op = "Adam"
    R, T, (xs, gs, vs, hs) = _optimizer_groups(m, op, ins, 4)
    a, b = float(at["alpha"]), float(at["beta"])
    tf = _g.cast(T, "f64")
    radj = _g.where(_g.greater(T, 0),
                    _g.divide(_g.multiply(R, _g.sqrt(_g.subtract(1.0, _g.power(b, tf)))),
                              _g.subtract(1.0, _g.power(a, tf))), R)
    xo, vo, ho = [], [], []
    for x, gr, v, h in zip(xs, gs, vs, hs):
        g = _g.add(_g.multiply(float(at["norm_coefficient"]), x), gr)
        vn = _g.add(_g.multiply(a, v), _g.multiply(1.0 - a, g))
        hn = _g.add(_g.multiply(b, h), _g.multiply(1.0 - b, _g.multiply(g, g)))
        xn = _g.subtract(x, _g.multiply(radj, _g.divide(vn, _g.add(_g.sqrt(hn), float(at["epsilon"])))))
        xo.append(_keep(m, x, _g.multiply(1.0 - float(at["norm_coefficient_post"]), xn)))
        vo.append(_keep(m, v, vn))
        ho.append(_keep(m, h, hn))
    return xo + vo + ho
