"""Integer and quantized ops (the narrow types held in int64, see
_core._NARROW): BitShift, QuantizeLinear, DequantizeLinear,
DynamicQuantizeLinear, MatMulInteger, ConvInteger, QLinearMatMul,
QLinearConv.
"""
from .. import graph as _g
from ._core import UnsupportedOnnx, _dtname, _NARROW, _need, _opt, _reg, _TP
from ._helpers import _attr_str, _axis, _round_even, _sc
from ._nn import _conv_core


@_reg("BitShift", direction=None)
def _bitshift(m, node, ins, at):
    """Unsigned shifts: x * 2^y (wrapped into the type by the caller's wrap)
    or floor(x / 2^y)."""
    op = "BitShift"
    x, y = _need(op, ins, 0), _need(op, ins, 1)
    code = m.ltype.get(node.input[0])
    if code not in _NARROW or _NARROW[code][2]:
        raise UnsupportedOnnx("%s: only uint8, uint16 and uint32 (uint64 does not fit int64)" % op, op)
    p = _g.power(_sc("i64", 2), y)
    d = _attr_str(at["direction"])
    if d == "LEFT":
        return _g.multiply(x, p)
    if d == "RIGHT":
        return _g.floor_divide(x, p)
    raise UnsupportedOnnx("%s: direction %r" % (op, d), op)


def _per_axis(m, v, x, axis, op):
    """A scale / zero point: a scalar, or a 1-D tensor laid along `axis` of x."""
    if v is None or m._rank(v) == 0 or m._shape(v, op) == (1,):
        return v if v is None or m._rank(v) == 0 else _g.reshape(v, ())
    r = m._rank(x)
    a = _axis(axis, r, op)
    return _g.reshape(v, (1,) * a + (-1,) + (1,) * (r - a - 1))


def _narrow_range(code, op):
    if code not in _NARROW:
        raise UnsupportedOnnx("%s: output type %s" % (op, _dtname(code)), op)
    _, bits, signed = _NARROW[code]
    return (-(1 << (bits - 1)), (1 << (bits - 1)) - 1) if signed else (0, (1 << bits) - 1)


@_reg("QuantizeLinear", axis=1, saturate=1)
def _quantize(m, node, ins, at):
    """saturate(round_half_even(x / scale) + zero_point), in the zero point's
    type (uint8 by default)."""
    op = "QuantizeLinear"
    x, sc, zp = _need(op, ins, 0), _need(op, ins, 1), _opt(ins, 2)
    code = m.ltype.get(node.input[2], _TP.UINT8) if zp is not None else _TP.UINT8
    lo, hi = _narrow_range(code, op)
    q = _round_even(_g.divide(x, _per_axis(m, sc, x, at["axis"], op)))
    if zp is not None:
        q = _g.add(q, _g.cast(_per_axis(m, zp, x, at["axis"], op), m._dtype(q)))
    return _g.cast(_g.minimum(_g.maximum(q, float(lo)), float(hi)), "i64")


@_reg("DequantizeLinear", axis=1)
def _dequantize(m, node, ins, at):
    """(x - zero_point) * scale, in the scale's type."""
    op = "DequantizeLinear"
    x, sc, zp = _need(op, ins, 0), _need(op, ins, 1), _opt(ins, 2)
    if zp is not None:
        x = _g.subtract(x, _per_axis(m, zp, x, at["axis"], op))
    return _g.multiply(_g.cast(x, m._dtype(sc)), _per_axis(m, sc, x, at["axis"], op))


@_reg("DynamicQuantizeLinear")
def _dynquant(m, node, ins, at):
    """The ONNX function body: scale = (max(0, max x) - min(0, min x)) / 255,
    zero point = saturate(round(-min / scale)), then QuantizeLinear; in f32."""
    op = "DynamicQuantizeLinear"
    x = _need(op, ins, 0)
    lo = _g.minimum(_g.min(x), _sc("f32", 0))
    hi = _g.maximum(_g.max(x), _sc("f32", 0))
    scale = _g.divide(_g.subtract(hi, lo), _sc("f32", 255))
    zpf = _round_even(_g.minimum(_g.maximum(_g.subtract(_sc("f32", 0), _g.divide(lo, scale)), 0.0), 255.0))
    zp = _g.cast(zpf, "i64")
    q = _g.add(_round_even(_g.divide(x, scale)), zpf)
    y = _g.cast(_g.minimum(_g.maximum(q, 0.0), 255.0), "i64")
    return [y, scale, zp]


def _minus_zp(m, v, zp, axis, op):
    if zp is None:
        return v
    if m._rank(zp) == 1 and m._shape(zp, op)[0] != 1 and axis is not None:
        r = m._rank(v)
        a = _axis(axis, r, op)
        zp = _g.reshape(zp, (1,) * a + (-1,) + (1,) * (r - a - 1))
    elif m._rank(zp) >= 1:
        zp = _g.reshape(zp, ()) if m._shape(zp, op) == (1,) else zp
    return _g.subtract(v, zp)


@_reg("MatMulInteger")
def _matmul_int(m, node, ins, at):
    """(A - a_zero_point) @ (B - b_zero_point) in i64 (exact), as int32;
    a 1-D a_zero_point is per row of A, a 1-D b_zero_point per column of B."""
    op = "MatMulInteger"
    a, b = _need(op, ins, 0), _need(op, ins, 1)
    a = _minus_zp(m, a, _opt(ins, 2), -2 if m._rank(a) > 1 else None, op)
    b = _minus_zp(m, b, _opt(ins, 3), -1, op)
    return _g.cast(_g.matmul(a, b), "i32")


@_reg("ConvInteger", auto_pad="NOTSET", dilations=None, group=1, kernel_shape=None, pads=None,
      strides=None)
def _conv_int(m, node, ins, at):
    """Conv of (x - x_zero_point) by (w - w_zero_point) in i64 (exact; the
    padding is then the zero point, as the spec asks), as int32."""
    op = "ConvInteger"
    x, w = _need(op, ins, 0), _need(op, ins, 1)
    x = _minus_zp(m, x, _opt(ins, 2), None, op)
    w = _minus_zp(m, w, _opt(ins, 3), 0, op)
    return _g.cast(_conv_core(m, op, x, w, None, int(at["group"]), at), "i32")


def _requantize(m, op, acc, scale, zp, code):
    """saturate(round_half_even(acc * scale) + zero_point) into type `code`."""
    lo, hi = _narrow_range(code, op)
    q = _round_even(_g.multiply(_g.cast(acc, "f64"), scale))
    if zp is not None:
        q = _g.add(q, _g.cast(zp, "f64"))
    return _g.cast(_g.minimum(_g.maximum(q, float(lo)), float(hi)), "i64")


@_reg("QLinearMatMul")
def _qlinear_matmul(m, node, ins, at):
    """MatMulInteger, then requantized with a_scale * b_scale / y_scale
    (f64), rounded half to even, plus y_zero_point, saturated."""
    op = "QLinearMatMul"
    a, asc, azp, b, bsc, bzp, ysc, yzp = [_opt(ins, k) for k in range(8)]
    if a is None or b is None or asc is None or bsc is None or ysc is None:
        raise UnsupportedOnnx("%s: missing input" % op, op)
    acc = _g.matmul(_minus_zp(m, a, azp, -2, op), _minus_zp(m, b, bzp, -1, op))
    scale = _g.divide(_g.multiply(_g.cast(_per_axis(m, asc, a, -2, op), "f64"),
                                  _g.cast(_per_axis(m, bsc, b, -1, op), "f64")),
                      _g.cast(_g.reshape(ysc, ()), "f64"))
    code = m.ltype.get(node.input[7], _TP.UINT8) if yzp is not None else _TP.UINT8
    return _requantize(m, op, acc, scale, None if yzp is None else _g.reshape(yzp, ()), code)


@_reg("QLinearConv", auto_pad="NOTSET", dilations=None, group=1, kernel_shape=None, pads=None,
      strides=None)
def _qlinear_conv(m, node, ins, at):
    """ConvInteger (+ an int32 bias), requantized with x_scale * w_scale /
    y_scale per output channel."""
    op = "QLinearConv"
    x, xsc, xzp, w, wsc, wzp, ysc, yzp = [_opt(ins, k) for k in range(8)]
    bias = _opt(ins, 8)
    if x is None or w is None or xsc is None or wsc is None or ysc is None:
        raise UnsupportedOnnx("%s: missing input" % op, op)
    xx = _minus_zp(m, x, xzp, None, op)
    ww = _minus_zp(m, w, wzp, 0, op)
    acc = _conv_core(m, op, xx, ww, None if bias is None else _g.cast(bias, "i64"), int(at["group"]), at)
    r = m._rank(acc)
    wscale = _g.cast(wsc, "f64")
    if m._rank(wsc) == 1 and m._shape(wsc, op)[0] != 1:
        wscale = _g.reshape(wscale, (1, -1) + (1,) * (r - 2))
    else:
        wscale = _g.reshape(wscale, ())
    scale = _g.divide(_g.multiply(_g.cast(_g.reshape(xsc, ()), "f64"), wscale),
                      _g.cast(_g.reshape(ysc, ()), "f64"))
    code = m.ltype.get(node.input[7], _TP.UINT8) if yzp is not None else _TP.UINT8
    return _requantize(m, op, acc, scale, None if yzp is None else _g.reshape(yzp, ()), code)
