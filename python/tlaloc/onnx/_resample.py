"""Resampling at computed coordinates: Resize and Upsample (per axis, static
gathers of neighbours and static weights), GridSample and RoiAlign
(run-time coordinates, neighbours gathered by linear index).
"""
import numpy as np

from .. import graph as _g
from ._core import UnsupportedOnnx, _need, _opt, _reg
from ._helpers import _attr_str, _keep, _round_even, _sc


# -- Resize: per axis, a static gather of neighbours and static weights ------

def _resize_coord(ctm, j, scale, W, roi, out_w):
    """The input coordinate of output position j (ONNX's coordinate
    transformations); None where tf_crop_and_resize extrapolates."""
    if ctm == "align_corners":
        return 0.0 if out_w == 1 else j * (W - 1) / (out_w - 1)
    if ctm == "asymmetric":
        return j / scale
    if ctm == "tf_crop_and_resize":
        if out_w == 1:
            x = (roi[1] - roi[0]) * (W - 1) / 2
        else:
            x = j * (roi[1] - roi[0]) * (W - 1) / (out_w - 1)
        x += roi[0] * (W - 1)
        return None if x < 0 or x > W - 1 else x
    if ctm == "pytorch_half_pixel":
        return -0.5 if out_w == 1 else (j + 0.5) / scale - 0.5
    if ctm == "half_pixel":
        return (j + 0.5) / scale - 0.5
    if ctm == "tf_half_pixel_for_nn":
        return (j + 0.5) / scale
    raise UnsupportedOnnx("Resize: coordinate_transformation_mode %r" % ctm, "Resize")


def _resize_neighbours(x, n, W):
    """The n input positions nearest to x (ties to the smaller) among the
    input extended by ceil(n/2) edge copies each side, as positions of the
    extension, the way the ONNX reference picks them; then clamped into the
    input (the edge copies)."""
    pad = -(-n // 2)
    xp = x + pad
    lo = int(np.floor(xp))
    cand = [i for i in range(lo - n, lo + n + 2) if 0 <= i < W + 2 * pad]
    cand.sort(key=lambda i: (abs(xp - i), i))
    idx = sorted(cand[:n])
    return [min(max(i - pad, 0), W - 1) for i in idx], [i - pad for i in idx]


def _resize_axis_taps(at, mode, W, out, scale, roi):
    """(indices [out, n], weights [out, n] or None for nearest, extrapolated [out])."""
    ctm = _attr_str(at["coordinate_transformation_mode"])
    A = float(at["cubic_coeff_a"])
    nm = _attr_str(at["nearest_mode"])
    n = 4 if mode == "cubic" else 2
    out_w = scale * W
    idx = np.zeros((out, n if mode != "nearest" else 1), np.int64)
    wts = np.zeros((out, n), np.float64)
    ext = np.zeros(out, bool)
    for j in range(out):
        x = _resize_coord(ctm, j, scale, W, roi, out_w)
        if x is None:
            ext[j] = True
            continue
        xi = float(np.floor(x))
        ratio = 1.0 if x == xi else x - xi
        nb, raw = _resize_neighbours(x, n, W)
        if mode == "nearest":
            if ratio == 1.0:
                right = True
            elif nm == "round_prefer_floor":
                right = ratio > 0.5
            elif nm == "round_prefer_ceil":
                right = ratio >= 0.5
            elif nm == "floor":
                right = False
            elif nm == "ceil":
                right = True
            else:
                raise UnsupportedOnnx("Resize: nearest_mode %r" % nm, "Resize")
            idx[j, 0] = nb[1] if right else nb[0]
            continue
        if mode == "linear":
            c = np.array([1 - ratio, ratio])
        else:
            r1, q = ratio + 1, 1 - ratio
            c = np.array([((A * r1 - 5 * A) * r1 + 8 * A) * r1 - 4 * A,
                          ((A + 2) * ratio - (A + 3)) * ratio * ratio + 1,
                          ((A + 2) * q - (A + 3)) * q * q + 1,
                          ((A * (q + 1) - 5 * A) * (q + 1) + 8 * A) * (q + 1) - 4 * A])
        if at["exclude_outside"]:
            c = np.where([0 <= i < W for i in raw], c, 0.0)
            c = c / c.sum()
        idx[j] = nb
        wts[j] = c
    return idx, (None if mode == "nearest" else wts), ext


def _resize(m, op, x, scales, sizes, roi, at):
    """Separable: axis by axis, last to first (the reference's order), the
    output is sum_t take(x, index_t) * weight_t over the 1 (nearest), 2
    (linear) or 4 (cubic) neighbours, the weights computed in f64 from the
    static geometry; extrapolated positions take extrapolation_value."""
    mode = _attr_str(at["mode"])
    if mode not in ("nearest", "linear", "cubic"):
        raise UnsupportedOnnx("%s: mode %r" % (op, mode), op)
    shape = m._shape(x, op)
    r = len(shape)
    if sizes is not None:
        sizes = [int(v) for v in sizes]
        if len(sizes) != r:
            raise UnsupportedOnnx("%s: %d sizes for rank %d" % (op, len(sizes), r), op)
        scales = [sizes[k] / shape[k] for k in range(r)]
    else:
        scales = [float(v) for v in scales]
        if len(scales) != r:
            raise UnsupportedOnnx("%s: %d scales for rank %d" % (op, len(scales), r), op)
        sizes = [int(scales[k] * shape[k]) for k in range(r)]
    if roi is None or len(roi) == 0:
        roi = [0.0] * r + [1.0] * r
    y = x
    for k in reversed(range(r)):
        ctm = _attr_str(at["coordinate_transformation_mode"])
        if scales[k] == 1.0 and sizes[k] == shape[k] and ctm != "tf_crop_and_resize":
            continue
        if scales[k] <= 0 or sizes[k] <= 0:
            raise UnsupportedOnnx("%s: scale %r on axis %d" % (op, scales[k], k), op)
        idx, wts, ext = _resize_axis_taps(at, mode, shape[k], sizes[k], scales[k],
                                          (float(roi[k]), float(roi[k + r])))
        lay = (1,) * k + (sizes[k],) + (1,) * (r - k - 1)
        acc = None
        for t in range(idx.shape[1]):
            term = _g.take(y, _g.constant(idx[:, t]), k)
            if wts is not None:
                term = _g.multiply(term, _g.constant(wts[:, t].reshape(lay)))
            acc = term if acc is None else _g.add(acc, term)
        if ext.any():
            acc = _g.where(_g.constant(ext.reshape(lay)), float(at["extrapolation_value"]), acc)
        y = acc
    return _keep(m, x, y)


@_reg("Resize", coordinate_transformation_mode="half_pixel", cubic_coeff_a=-0.75,
      exclude_outside=0, extrapolation_value=0.0, mode="nearest", nearest_mode="round_prefer_floor")
def _resize_op(m, node, ins, at):
    op = "Resize"
    x = _need(op, ins, 0)
    if m.opset < 11:  # Resize-10: (X, scales), asymmetric, nearest rounds down
        at = dict(at, coordinate_transformation_mode="asymmetric", nearest_mode="floor")
        scales = np.asarray(m._static(node.input[1], op, "scales")).ravel()
        return _resize(m, op, x, scales, None, None, at)

    def get(k, what):
        if _opt(ins, k) is None:
            return None
        v = np.asarray(m._static(node.input[k], op, what)).ravel()
        return v if v.size else None
    roi = get(1, "roi") if _attr_str(at["coordinate_transformation_mode"]) == "tf_crop_and_resize" else None
    scales, sizes = get(2, "scales"), get(3, "sizes")
    if (scales is None) == (sizes is None):
        raise UnsupportedOnnx("%s: exactly one of scales and sizes must be given" % op, op)
    return _resize(m, op, x, scales, sizes, roi, at)


@_reg("Upsample", mode="nearest", scales=None)
def _upsample(m, node, ins, at):
    op = "Upsample"
    x = _need(op, ins, 0)
    scales = at["scales"] if m.opset < 9 else np.asarray(m._static(node.input[1], op, "scales")).ravel()
    rat = {"coordinate_transformation_mode": "asymmetric", "cubic_coeff_a": -0.75,
           "exclude_outside": 0, "extrapolation_value": 0.0, "mode": _attr_str(at["mode"]),
           "nearest_mode": "floor"}
    return _resize(m, op, x, scales, None, None, rat)


# -- GridSample: run-time coordinates, gathers of the 1, 4 or 16 neighbours --

def _grid_reflect(v, lo2, hi2):
    """Reflects coordinates into [lo2 / 2, hi2 / 2] (twice the bounds, as
    PyTorch's grid sampler): the distance from the low bound, folded."""
    if lo2 == hi2:
        return _g.multiply(v, 0.0)
    mn, span = lo2 / 2.0, (hi2 - lo2) / 2.0
    d = _g.absolute(_g.subtract(v, mn))
    extra = _g.remainder(d, span)
    flips = _g.floor(_g.divide(d, span))
    even = _g.equal(_g.remainder(flips, 2.0), 0.0)
    return _g.where(even, _g.add(extra, mn), _g.add(_g.subtract(span, extra), mn))


@_reg("GridSample", align_corners=0, mode="bilinear", padding_mode="zeros")
def _gridsample(m, node, ins, at):
    """PyTorch's grid_sample (which ONNX follows), 2-D: grid coordinates
    unnormalised to pixels, folded by the padding mode (border: clipped;
    reflection: reflected), then the nearest pixel (ties to even), the 4
    bilinear or the 16 bicubic (A = -0.75) neighbours, gathered by linear
    index from the [N*H*W, C] input; taps outside the image read 0."""
    op = "GridSample"
    x, grid = _need(op, ins, 0), _need(op, ins, 1)
    xs, gs = m._shape(x, op), m._shape(grid, op)
    dt = m._dtype(x)
    if len(xs) != 4 or len(gs) != 4 or gs[3] != 2 or gs[0] != xs[0] or dt not in ("f32", "f64"):
        raise UnsupportedOnnx("%s: input %s %s and grid %s (2-D sampling only)" % (op, dt, xs, gs), op)
    mode, pad = _attr_str(at["mode"]), _attr_str(at["padding_mode"])
    if mode not in ("nearest", "bilinear", "bicubic") or pad not in ("zeros", "border", "reflection"):
        raise UnsupportedOnnx("%s: mode %r, padding_mode %r" % (op, mode, pad), op)
    align = bool(at["align_corners"])
    N, C, H, W = xs
    _, Ho, Wo, _ = gs
    g = _g.cast(grid, dt)

    def coord(k, size):
        v = _g.squeeze(_g.Var("slice", (g,), [("axis", 3), ("start", k), ("stop", k + 1)]), 3)
        if align:
            return _g.multiply(_g.add(v, 1.0), (size - 1) / 2.0)
        return _g.divide(_g.subtract(_g.multiply(_g.add(v, 1.0), float(size)), 1.0), 2.0)

    def fold(v, size):
        if pad == "border":
            return _g.minimum(_g.maximum(v, 0.0), float(size - 1))
        if pad == "reflection":
            v = _grid_reflect(v, 0.0, 2.0 * (size - 1)) if align else _grid_reflect(v, -1.0, 2.0 * size - 1)
            return _g.minimum(_g.maximum(v, 0.0), float(size - 1))
        return v
    xt = _g.reshape(_g.transpose(x, [0, 2, 3, 1]), (N * H * W, C))
    base = _g.constant((np.arange(N, dtype=np.int64) * H * W).reshape(N, 1, 1))

    def tap(ix, iy):
        """x at integral float coordinates [N, Ho, Wo] -> [N, Ho, Wo, C], 0 outside."""
        ok = _g.logical_and(_g.logical_and(_g.greater_equal(ix, 0.0), _g.less_equal(ix, float(W - 1))),
                            _g.logical_and(_g.greater_equal(iy, 0.0), _g.less_equal(iy, float(H - 1))))
        cx = _g.cast(_g.minimum(_g.maximum(ix, 0.0), float(W - 1)), "i64")
        cy = _g.cast(_g.minimum(_g.maximum(iy, 0.0), float(H - 1)), "i64")
        cx = _g.where(ok, cx, _sc("i64", 0))  # NaN coordinates: any index, masked below
        cy = _g.where(ok, cy, _sc("i64", 0))
        v = _g.take(xt, _g.add(base, _g.add(_g.multiply(cy, W), cx)), 0)
        return _g.where(_g.expand_dims(ok, 3), v, _sc(dt, 0))

    ix, iy = coord(0, W), coord(1, H)
    if mode == "nearest":
        y = tap(_round_even(fold(ix, W)), _round_even(fold(iy, H)))
    elif mode == "bilinear":
        ix, iy = fold(ix, W), fold(iy, H)
        x0, y0 = _g.floor(ix), _g.floor(iy)
        fx, fy = _g.subtract(ix, x0), _g.subtract(iy, y0)
        x1, y1 = _g.add(x0, 1.0), _g.add(y0, 1.0)
        gx, gy = _g.subtract(1.0, fx), _g.subtract(1.0, fy)
        y = None
        for xx, yy, w in ((x0, y0, _g.multiply(gx, gy)), (x1, y0, _g.multiply(fx, gy)),
                          (x0, y1, _g.multiply(gx, fy)), (x1, y1, _g.multiply(fx, fy))):
            t = _g.multiply(tap(xx, yy), _g.expand_dims(w, 3))
            y = t if y is None else _g.add(y, t)
    else:  # bicubic: the padding mode applies to each tap
        A = -0.75
        x0, y0 = _g.floor(ix), _g.floor(iy)
        tx, ty = _g.subtract(ix, x0), _g.subtract(iy, y0)

        def coeffs(t):
            def c1(v):
                return _g.add(_g.multiply(_g.multiply(_g.subtract(_g.multiply(A + 2, v), A + 3), v), v), 1.0)

            def c2(v):
                return _g.subtract(_g.multiply(_g.add(_g.multiply(_g.subtract(_g.multiply(A, v), 5 * A), v),
                                                      8 * A), v), 4 * A)
            q = _g.subtract(1.0, t)
            return [c2(_g.add(t, 1.0)), c1(t), c1(q), c2(_g.add(q, 1.0))]
        cx, cy = coeffs(tx), coeffs(ty)
        y = None
        for j in range(4):
            yy = fold(_g.add(y0, float(j - 1)), H)
            for i in range(4):
                xx = fold(_g.add(x0, float(i - 1)), W)
                w = _g.multiply(cx[i], cy[j])
                t = _g.multiply(tap(xx, yy), _g.expand_dims(w, 3))
                y = t if y is None else _g.add(y, t)
    return _keep(m, x, _g.transpose(y, [0, 3, 1, 2]))


@_reg("RoiAlign", coordinate_transformation_mode="half_pixel", mode="avg", output_height=1,
      output_width=1, sampling_ratio=0, spatial_scale=1.0)
def _roialign(m, node, ins, at):
    """The reference's algorithm with a static sampling grid: per roi, the
    sample coordinates of every bin (run-time values), clamped as the
    reference does (a sample beyond the image by more than one pixel reads
    0), bilinear weights separable in y and x, the 4 corners gathered by
    linear index from the [N*H*W, C] input; avg: the mean of a bin's
    samples, max: the max over samples of the largest weighted corner."""
    op = "RoiAlign"
    x, rois, bidx = [_need(op, ins, k) for k in range(3)]
    xs = m._shape(x, op)
    dt = m._dtype(x)
    if len(xs) != 4 or dt not in ("f32", "f64"):
        raise UnsupportedOnnx("%s: input must be float [N, C, H, W], got %s %s" % (op, dt, xs), op)
    sr = int(at["sampling_ratio"])
    if sr <= 0:
        raise UnsupportedOnnx("%s: sampling_ratio 0 (adaptive: a data-dependent sample count)" % op, op)
    mode = _attr_str(at["mode"])
    ctm = _attr_str(at["coordinate_transformation_mode"])
    if mode not in ("avg", "max") or ctm not in ("half_pixel", "output_half_pixel"):
        raise UnsupportedOnnx("%s: mode %r, coordinate_transformation_mode %r" % (op, mode, ctm), op)
    N, C, H, W = xs
    R = m._shape(rois, op)[0]
    oh, ow = int(at["output_height"]), int(at["output_width"])
    off = 0.5 if ctm == "half_pixel" else 0.0
    sc = float(at["spatial_scale"])
    r = _g.cast(rois, dt)

    def col(k):  # [R, 1]
        return _g.Var("slice", (r,), [("axis", 1), ("start", k), ("stop", k + 1)])
    x0, y0 = _g.subtract(_g.multiply(col(0), sc), off), _g.subtract(_g.multiply(col(1), sc), off)
    rw = _g.subtract(_g.subtract(_g.multiply(col(2), sc), off), x0)
    rh = _g.subtract(_g.subtract(_g.multiply(col(3), sc), off), y0)
    if ctm == "output_half_pixel":
        rw, rh = _g.maximum(rw, 1.0), _g.maximum(rh, 1.0)

    def samples(start, size, n):
        """Sample coordinates [R, n * sr] of bins 0..n-1: start + (p + (i + .5) / sr) * size / n."""
        frac = (np.arange(n)[:, None] + (np.arange(sr)[None, :] + 0.5) / sr).ravel()
        return _g.add(start, _g.multiply(_g.divide(size, float(n)), _g.constant(frac.reshape(1, -1))))

    def axis_taps(v, size):
        """(valid, low index, high index, low weight, high weight), each [R, S]."""
        ok = _g.logical_and(_g.greater_equal(v, -1.0), _g.less_equal(v, float(size)))
        v = _g.maximum(v, 0.0)
        lo = _g.floor(v)
        top = _g.greater_equal(lo, float(size - 1))
        lo = _g.where(top, float(size - 1), lo)
        hi = _g.where(top, float(size - 1), _g.add(lo, 1.0))
        v = _g.where(top, lo, v)
        lw = _g.subtract(v, lo)
        return ok, _g.cast(lo, "i64"), _g.cast(hi, "i64"), _g.subtract(1.0, lw), lw
    yok, ylo, yhi, yw0, yw1 = axis_taps(samples(y0, rh, oh), H)
    xok, xlo, xhi, xw0, xw1 = axis_taps(samples(x0, rw, ow), W)
    ok = _g.logical_and(_g.expand_dims(yok, 2), _g.expand_dims(xok, 1))  # [R, Sy, Sx]
    xt = _g.reshape(_g.transpose(x, [0, 2, 3, 1]), (N * H * W, C))
    base = _g.reshape(_g.multiply(_g.cast(bidx, "i64"), H * W), (R, 1, 1))
    terms = []
    for yi, wy in ((ylo, yw0), (yhi, yw1)):
        for xi, wx in ((xlo, xw0), (xhi, xw1)):
            lin = _g.add(base, _g.add(_g.expand_dims(_g.multiply(yi, W), 2), _g.expand_dims(xi, 1)))
            w = _g.multiply(_g.expand_dims(wy, 2), _g.expand_dims(wx, 1))  # [R, Sy, Sx]
            v = _g.take(xt, lin, 0)  # [R, Sy, Sx, C]
            terms.append(_g.multiply(v, _g.expand_dims(w, 3)))
    if mode == "avg":
        val = _g.add(_g.add(terms[0], terms[1]), _g.add(terms[2], terms[3]))
    else:
        val = _g.maximum(_g.maximum(terms[0], terms[1]), _g.maximum(terms[2], terms[3]))
    val = _g.where(_g.expand_dims(ok, 3), val, _sc(dt, 0))
    val = _g.reshape(val, (R, oh, sr, ow, sr, C))
    y = _g.mean(val, [2, 4]) if mode == "avg" else _g.max(val, [2, 4])
    return _keep(m, x, _g.transpose(y, [0, 3, 1, 2]))
