"""Element-wise converters: unary math, binary arithmetic, logic and
comparisons, the variadic Max/Min/Sum/Mean, activations (Relu, Elu,
HardSwish, ...), IsNaN/IsInf, Cast/CastLike, Clip, Round, Shrink and the
inverse hyperbolic functions.
"""
import numpy as np

from .. import graph as _g
from ._core import UnsupportedOnnx, _need, _opt, _reg, _tl_dtype
from ._helpers import _keep


_UN = {"Neg": _g.negative, "Abs": _g.absolute, "Exp": _g.exp, "Log": _g.log,
       "Sqrt": _g.sqrt, "Sin": _g.sin, "Cos": _g.cos, "Tanh": _g.tanh,
       "Sigmoid": _g.sigmoid, "Softplus": _g.softplus, "Erf": _g.erf, "Floor": _g.floor,
       "Ceil": _g.ceil, "Sign": _g.sign, "Not": _g.logical_not, "Tan": _g.tan,
       "Sinh": _g.sinh, "Cosh": _g.cosh, "Relu": _g.relu,
       "Asin": _g.arcsin, "Acos": _g.arccos, "Atan": _g.arctan, "Asinh": _g.arcsinh,
       "Acosh": _g.arccosh, "Atanh": _g.arctanh}


@_reg(" ".join(_UN))
def _unary(m, node, ins, at):
    x = _need(node.op_type, ins, 0)
    r = _UN[node.op_type](x)
    return _keep(m, x, r)


@_reg("Reciprocal")
def _recip(m, node, ins, at):
    x = _need("Reciprocal", ins, 0)
    return _keep(m, x, _g.divide(1, x))


@_reg("Identity")
def _identity(m, node, ins, at):
    return _need("Identity", ins, 0)


_BIN = {"Add": _g.add, "Sub": _g.subtract, "Mul": _g.multiply, "And": _g.logical_and,
        "Or": _g.logical_or, "Xor": _g.not_equal, "Equal": _g.equal, "Less": _g.less,
        "LessOrEqual": _g.less_equal, "Greater": _g.greater,
        "GreaterOrEqual": _g.greater_equal, "BitwiseXor": _g.bitwise_xor}


@_reg(" ".join(_BIN))
def _binary(m, node, ins, at):
    a, b = _need(node.op_type, ins, 0), _need(node.op_type, ins, 1)
    return _BIN[node.op_type](a, b)


@_reg("Div")
def _div(m, node, ins, at):
    a, b = _need("Div", ins, 0), _need("Div", ins, 1)
    return _keep(m, a, _g.divide(a, b))  # integers: truncated, as ONNX's reference


@_reg("Pow")
def _pow(m, node, ins, at):
    a, b = _need("Pow", ins, 0), _need("Pow", ins, 1)
    return _keep(m, a, _g.power(a, b))  # result has the base's dtype


@_reg("Mod", fmod=0)
def _mod(m, node, ins, at):
    a, b = _need("Mod", ins, 0), _need("Mod", ins, 1)
    if not at["fmod"]:
        return _g.remainder(a, b)
    # C fmod: the sign of a, the magnitude of |a| mod |b|, which numpy's
    # remainder gives exactly for non-negative operands
    r = _g.remainder(_g.absolute(a), _g.absolute(b))
    return _g.where(_g.less(a, 0), _g.negative(r), r)


@_reg("Where")
def _where(m, node, ins, at):
    return _g.where(_need("Where", ins, 0), _need("Where", ins, 1), _need("Where", ins, 2))


@_reg("Max Min Sum Mean")
def _variadic(m, node, ins, at):
    op = node.op_type
    xs = [x for x in ins if x is not None]
    if not xs:
        raise UnsupportedOnnx("%s with no inputs" % op, op)
    f = {"Max": _g.maximum, "Min": _g.minimum, "Sum": _g.add, "Mean": _g.add}[op]
    out = xs[0]
    for x in xs[1:]:
        out = f(out, x)
    if op == "Mean":
        out = _keep(m, xs[0], _g.divide(out, len(xs)))
    elif len(xs) == 1:
        out = _g.Var("_alias", (out,), (), None, None) if False else out
    return out


@_reg("LeakyRelu", alpha=0.01)
def _leaky(m, node, ins, at):
    x = _need("LeakyRelu", ins, 0)
    return _g.where(_g.less(x, 0), _g.multiply(x, float(at["alpha"])), x)


@_reg("PRelu")
def _prelu(m, node, ins, at):
    x, s = _need("PRelu", ins, 0), _need("PRelu", ins, 1)
    return _g.where(_g.less(x, 0), _g.multiply(x, s), x)


@_reg("Elu", alpha=1.0)
def _elu(m, node, ins, at):
    x = _need("Elu", ins, 0)
    return _g.where(_g.less(x, 0), _g.multiply(float(at["alpha"]), _g.expm1(x)), x)


@_reg("Celu", alpha=1.0)
def _celu(m, node, ins, at):
    x = _need("Celu", ins, 0)
    a = float(at["alpha"])
    return _g.add(_g.maximum(x, 0), _g.minimum(0, _g.multiply(a, _g.expm1(_g.divide(x, a)))))


@_reg("Selu", alpha=1.67326319217681884765625, gamma=1.05070102214813232421875)
def _selu(m, node, ins, at):
    x = _need("Selu", ins, 0)
    a, gm = float(at["alpha"]), float(at["gamma"])
    return _g.multiply(gm, _g.where(_g.less_equal(x, 0), _g.multiply(a, _g.expm1(x)), x))


@_reg("ThresholdedRelu", alpha=1.0)
def _trelu(m, node, ins, at):
    x = _need("ThresholdedRelu", ins, 0)
    return _g.where(_g.greater(x, float(at["alpha"])), x, 0)


@_reg("HardSigmoid", alpha=0.2, beta=0.5)
def _hsig(m, node, ins, at):
    x = _need("HardSigmoid", ins, 0)
    return _g.maximum(0, _g.minimum(1, _g.add(_g.multiply(float(at["alpha"]), x),
                                               float(at["beta"]))))


@_reg("HardSwish")
def _hswish(m, node, ins, at):
    x = _need("HardSwish", ins, 0)
    return _g.multiply(x, _g.maximum(0, _g.minimum(1, _g.add(_g.multiply(1 / 6, x), 0.5))))


@_reg("Softsign")
def _softsign(m, node, ins, at):
    x = _need("Softsign", ins, 0)
    return _g.divide(x, _g.add(1, _g.absolute(x)))


@_reg("Mish")
def _mish(m, node, ins, at):
    x = _need("Mish", ins, 0)
    return _g.multiply(x, _g.tanh(_g.softplus(x)))


@_reg("IsNaN")
def _isnan(m, node, ins, at):
    x = _need("IsNaN", ins, 0)
    return _g.not_equal(x, x)


@_reg("IsInf", detect_negative=1, detect_positive=1)
def _isinf(m, node, ins, at):
    x = _need("IsInf", ins, 0)
    pos = _g.equal(x, float("inf"))
    neg = _g.equal(x, float("-inf"))
    if at["detect_negative"] and at["detect_positive"]:
        return _g.logical_or(pos, neg)
    if at["detect_positive"]:
        return pos
    if at["detect_negative"]:
        return neg
    return _g.not_equal(x, x) if False else _g.logical_and(pos, neg)


@_reg("Cast", to=None, saturate=1)
def _cast(m, node, ins, at):
    x = _need("Cast", ins, 0)
    dt = _tl_dtype(at["to"], "Cast to")
    src = m._dtype(x)
    if src == dt:
        return x
    return _g.cast(x, dt)


@_reg("CastLike", saturate=1)
def _castlike(m, node, ins, at):
    x, y = _need("CastLike", ins, 0), _need("CastLike", ins, 1)
    return _g.cast(x, m._dtype(y))


@_reg("Clip", min=None, max=None)
def _clip(m, node, ins, at):
    x = _need("Clip", ins, 0)
    if m.opset < 11:
        lo = at["min"]
        hi = at["max"]
        lo = None if lo is None else float(lo)
        hi = None if hi is None else float(hi)
    else:
        lo, hi = _opt(ins, 1), _opt(ins, 2)
    if lo is not None:
        x = _g.maximum(x, lo)
    if hi is not None:
        x = _g.minimum(x, hi)
    return x


@_reg("Round")
def _round(m, node, ins, at):
    """Half to even: floor, then up when the fraction is above one half, or
    exactly one half and the floor is odd (x - floor(x) is exact)."""
    x = _need("Round", ins, 0)
    dt = m._dtype(x)
    if dt not in ("f32", "f64"):
        return x
    f = _g.floor(x)
    d = _g.subtract(x, f)
    odd = _g.not_equal(_g.remainder(f, 2.0), 0.0)
    up = _g.logical_or(_g.greater(d, 0.5), _g.logical_and(_g.equal(d, 0.5), odd))
    # NaN and +-inf: d is NaN, so not up, and f is already x
    return _g.where(up, _g.add(f, 1.0), f)


@_reg("Shrink", bias=0.0, lambd=0.5)
def _shrink(m, node, ins, at):
    x = _need("Shrink", ins, 0)
    b, lam = float(at["bias"]), float(at["lambd"])
    y = _g.where(_g.less(x, -lam), _g.add(x, b), _g.where(_g.greater(x, lam), _g.subtract(x, b), 0))
    return _keep(m, x, y)


