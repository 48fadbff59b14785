"""Signal processing: the Hann, Hamming and Blackman windows, and DFT and
STFT as matmuls with static cos/sin matrices.
"""
import numpy as np

from .. import graph as _g
from ._core import UnsupportedOnnx, _need, _opt, _reg, _tl_dtype
from ._helpers import _axis, _keep, _pad_axis, _sc, _sval


_WINDOWS = {"HannWindow": (0.5, 0.5, 0.0), "HammingWindow": (25.0 / 46.0, 21.0 / 46.0, 0.0),
            "BlackmanWindow": (0.42, 0.5, 0.08)}


@_reg("HannWindow HammingWindow BlackmanWindow", output_datatype=1, periodic=1)
def _window(m, node, ins, at):
    """a0 - a1 cos(2 pi n / N) + a2 cos(4 pi n / N), n < size, N = size
    (periodic) or size - 1 (symmetric); evaluated in f64, cast to the output
    dtype. The size must be static (it is the output's shape)."""
    op = node.op_type
    size = _sval(m._static(node.input[0], op, "size"), op, "size")
    if size != int(size) or size < 0:
        raise UnsupportedOnnx("%s: size %r" % (op, size), op)
    size = int(size)
    dt = _tl_dtype(at["output_datatype"], "%s output_datatype" % op)
    a0, a1, a2 = _WINDOWS[op]
    N = size if at["periodic"] else size - 1
    ang = _g.multiply(_g.constant(np.arange(size, dtype=np.float64)), 2.0 * np.pi / N if N else 0.0)
    w = _g.subtract(a0, _g.multiply(a1, _g.cos(ang)))
    if a2:
        w = _g.add(w, _g.multiply(a2, _g.cos(_g.multiply(2.0, ang))))
    return _g.cast(w, dt)


# -- DFT and STFT: matmuls with the (static) cos / sin matrices --------------

def _dft_last(m, op, xr, xi, n, inverse, onesided):
    """The DFT along the last axis of (real, imaginary or None) parts of
    length n: y_k = sum_j x_j exp(-+2 pi i j k / n) (/ n when inverse), as
    matmuls with f64 cos and sin matrices (the definition; no FFT)."""
    K = n // 2 + 1 if onesided else n
    jk = np.outer(np.arange(n), np.arange(K)) % n  # exact angles for big n
    ang = 2 * np.pi * jk / n
    cos, sin = np.cos(ang), np.sin(ang)
    if not inverse:
        sin = -sin
    scale = 1.0 / n if inverse else 1.0
    c, s = _g.constant(cos * scale), _g.constant(sin * scale)
    yr = _g.matmul(xr, c)
    yi = _g.matmul(xr, s)
    if xi is not None:  # (a + ib)(c + is) = (ac - bs) + i(as + bc)
        yr = _g.subtract(yr, _g.matmul(xi, s))
        yi = _g.add(yi, _g.matmul(xi, c))
    return yr, yi


def _complex_parts(m, op, x):
    shape = m._shape(x, op)
    r = len(shape)
    if shape[-1] not in (1, 2):
        raise UnsupportedOnnx("%s: the last axis must be 1 (real) or 2 (complex), got %d" % (op, shape[-1]), op)
    xr = _g.squeeze(_g.Var("slice", (x,), [("axis", r - 1), ("start", 0), ("stop", 1)]), r - 1)
    xi = None
    if shape[-1] == 2:
        xi = _g.squeeze(_g.Var("slice", (x,), [("axis", r - 1), ("start", 1), ("stop", 2)]), r - 1)
    return xr, xi


@_reg("DFT", axis=1, inverse=0, onesided=0)
def _dft(m, node, ins, at):
    op = "DFT"
    x = _need(op, ins, 0)
    dt = m._dtype(x)
    if dt not in ("f32", "f64"):
        raise UnsupportedOnnx("%s of %s" % (op, dt), op)
    r = m._rank(x)
    axis = _axis(at["axis"], r, op)
    if axis == r - 1 or axis == 0:
        raise UnsupportedOnnx("%s: axis %d is the batch or the complex axis" % (op, axis), op)
    if at["inverse"] and at["onesided"]:
        raise UnsupportedOnnx("%s: inverse with onesided" % op, op)
    xr, xi = _complex_parts(m, op, x)
    perm = [k for k in range(r - 1) if k != axis] + [axis]
    inv = [perm.index(k) for k in range(r - 1)]
    xr = _g.transpose(xr, perm)
    xi = None if xi is None else _g.transpose(xi, perm)
    n = m._shape(x, op)[axis]
    if _opt(ins, 1) is not None:  # dft_length: zero-pad or truncate the signal
        L = int(_sval(m._static(node.input[1], op, "dft_length"), op, "dft_length"))
        parts = []
        for v in (xr, xi):
            if v is None:
                parts.append(None)
            elif L < n:
                parts.append(_g.Var("slice", (v,), [("axis", r - 2), ("start", 0), ("stop", L)]))
            else:
                parts.append(_pad_axis(m, v, r - 2, 0, L - n, _sc(dt, 0), op))
        xr, xi = parts
        n = L
    yr, yi = _dft_last(m, op, xr, xi, n, at["inverse"], at["onesided"])
    y = _g.concatenate([_g.expand_dims(_g.transpose(v, inv), r - 1) for v in (yr, yi)], r - 1)
    return _keep(m, x, y)


@_reg("STFT", onesided=1)
def _stft(m, node, ins, at):
    """Frames of the signal (a take with a static [frames, length] index),
    times the window, then the DFT of each frame."""
    op = "STFT"
    x = _need(op, ins, 0)
    dt = m._dtype(x)
    shape = m._shape(x, op)
    if len(shape) != 3 or dt not in ("f32", "f64"):
        raise UnsupportedOnnx("%s: signal must be [batch, length, 1 or 2] float, got %s %s" % (op, dt, shape), op)
    step = int(_sval(m._static(node.input[1], op, "frame_step"), op, "frame_step"))
    win = _opt(ins, 2)
    if _opt(ins, 3) is not None:
        flen = int(_sval(m._static(node.input[3], op, "frame_length"), op, "frame_length"))
    elif win is not None:
        flen = m._shape(win, op)[0]
    else:
        raise UnsupportedOnnx("%s: neither window nor frame_length" % op, op)
    if win is not None and m._shape(win, op) != (flen,):
        raise UnsupportedOnnx("%s: window length differs from frame_length %d" % (op, flen), op)
    T = shape[1]
    nf = (T - flen) // step + 1
    if nf < 1 or step < 1:
        raise UnsupportedOnnx("%s: no frame of %d in a signal of %d" % (op, flen, T), op)
    idx = np.arange(nf)[:, None] * step + np.arange(flen)[None, :]
    xr, xi = _complex_parts(m, op, x)
    fr = _g.take(xr, _g.constant(idx.astype(np.int64)), 1)  # [batch, frames, length]
    fi = None if xi is None else _g.take(xi, _g.constant(idx.astype(np.int64)), 1)
    if win is not None:
        fr = _g.multiply(fr, win)
        fi = None if fi is None else _g.multiply(fi, win)
    onesided = bool(at["onesided"]) and xi is None
    yr, yi = _dft_last(m, op, fr, fi, flen, False, onesided)
    return _keep(m, x, _g.concatenate([_g.expand_dims(yr, 3), _g.expand_dims(yi, 3)], 3))
