"""Neural-network layers: Dropout; normalisations (BatchNormalization,
LayerNormalization, InstanceNormalization, MeanVarianceNormalization,
LRN); pooling (GlobalAverage/GlobalMax, MaxPool, AveragePool, MaxUnpool)
and convolution (Conv, ConvTranspose) as strided slices of the padded
input, a convolution being im2col and one matmul (_conv_core, which the
quantized convolutions share).
"""
import numpy as np

from .. import graph as _g
from ._core import UnsupportedOnnx, _need, _npdt, _opt, _reg
from ._helpers import _attr_str, _axis, _keep, _pad_axis, _sc, _sval
from ._index import _scatter_last


@_reg("Dropout", ratio=0.5, seed=None, is_test=None, consumed_inputs=None)
def _dropout(m, node, ins, at):
    x = _need("Dropout", ins, 0)
    if m.opset >= 12 and _opt(ins, 2) is not None:
        if _sval(m._static(node.input[2], "Dropout", "training_mode"), "Dropout", "training_mode"):
            # training with ratio 0 drops nothing; any other ratio is random
            ratio = 0.5 if _opt(ins, 1) is None else \
                _sval(m._static(node.input[1], "Dropout", "ratio"), "Dropout", "ratio")
            if ratio != 0:
                raise UnsupportedOnnx("Dropout in training mode (random)", "Dropout")
    elif m.opset < 7 and not at["is_test"]:
        raise UnsupportedOnnx("Dropout in training mode (is_test=0)", "Dropout")
    outs = [x]
    if len(node.output) > 1:
        outs.append(_g.cast(_g.ones_like(x), "bool"))
    return outs


@_reg("BatchNormalization", epsilon=1e-5, momentum=0.9, training_mode=0, spatial=1,
      is_test=None, consumed_inputs=None)
def _bn(m, node, ins, at):
    """Inference: (x - mean) / sqrt(var + eps) * scale + bias per channel.
    Training mode (opset >= 14): the batch statistics over every axis but 1
    (population variance) normalise x, and the running statistics are
    updated with the momentum, as the ONNX reference."""
    op = "BatchNormalization"
    nout = len([o for o in node.output if o])
    training = bool(at["training_mode"])
    if training and m.opset < 14:
        raise UnsupportedOnnx("BatchNormalization training_mode before opset 14", op)
    if nout > 1 and not (training and nout <= 3 and len(node.output) <= 3):
        raise UnsupportedOnnx("BatchNormalization in training mode (saved statistics outputs)", op)
    if m.opset < 9 and at["spatial"] != 1:
        raise UnsupportedOnnx("BatchNormalization spatial=0", op)
    x, s, b, mean, var = [_need(op, ins, k) for k in range(5)]
    r = m._rank(x)

    def bc(v):
        return _g.reshape(v, (-1,) + (1,) * (r - 2)) if r > 2 else v
    outs = []
    if training:
        axes = [0] + list(range(2, r))
        mu = _g.mean(x, axes)
        d = _g.subtract(x, bc(mu))
        bvar = _g.mean(_g.multiply(d, d), axes)
        mom = float(at["momentum"])
        outs = [_keep(m, mean, _g.add(_g.multiply(mean, mom), _g.multiply(mu, 1.0 - mom))),
                _keep(m, var, _g.add(_g.multiply(var, mom), _g.multiply(bvar, 1.0 - mom)))]
        mean, var = mu, bvar
    y = _g.divide(_g.subtract(x, bc(mean)), _g.sqrt(_g.add(bc(var), float(at["epsilon"]))))
    return [_keep(m, x, _g.add(_g.multiply(y, bc(s)), bc(b)))] + outs


@_reg("LayerNormalization", axis=-1, epsilon=1e-5, stash_type=1)
def _ln(m, node, ins, at):
    x, s, b = _need("LayerNormalization", ins, 0), _need("LayerNormalization", ins, 1), _opt(ins, 2)
    r = m._rank(x)
    axis = int(at["axis"])
    if axis < 0:
        axis += r
    axes = list(range(axis, r))
    xx = x
    dt = m._dtype(x)
    if at["stash_type"] == 1 and dt != "f32":
        xx = _g.cast(x, "f32")
    mu = _g.mean(xx, axes, True)
    d = _g.subtract(xx, mu)
    var = _g.mean(_g.multiply(d, d), axes, True)
    inv = _g.divide(1, _g.sqrt(_g.add(var, float(at["epsilon"]))))
    y = _g.multiply(d, inv)
    if m._dtype(y) != dt:
        y = _g.cast(y, dt)
    y = _g.multiply(y, s)
    if b is not None:
        y = _g.add(y, b)
    return [y, mu, inv]


@_reg("GlobalAveragePool GlobalMaxPool")
def _gpool(m, node, ins, at):
    x = _need(node.op_type, ins, 0)
    r = m._rank(x)
    axes = list(range(2, r))
    if not axes:
        return x
    f = _g.mean if node.op_type == "GlobalAveragePool" else _g.max
    return _keep(m, x, f(x, axes if len(axes) > 1 else axes[0], True))


@_reg("InstanceNormalization", epsilon=1e-5)
def _instnorm(m, node, ins, at):
    """Per (sample, channel): (x - mean) / sqrt(var + eps) over the spatial
    axes (population variance), then scale and bias per channel."""
    op = "InstanceNormalization"
    x, s, b = [_need(op, ins, k) for k in range(3)]
    r = m._rank(x)
    if r < 3:
        raise UnsupportedOnnx("%s: input must have rank >= 3" % op, op)
    axes = list(range(2, r))
    mu = _g.mean(x, axes, True)
    d = _g.subtract(x, mu)
    var = _g.mean(_g.multiply(d, d), axes, True)
    y = _g.divide(d, _g.sqrt(_g.add(var, float(at["epsilon"]))))
    cb = (-1,) + (1,) * (r - 2)
    return _keep(m, x, _g.add(_g.multiply(y, _g.reshape(s, cb)), _g.reshape(b, cb)))


@_reg("MeanVarianceNormalization", axes=None)
def _mvn(m, node, ins, at):
    """The ONNX function body: (x - E[x]) / (sqrt(E[x^2] - E[x]^2) + 1e-9)."""
    op = "MeanVarianceNormalization"
    x = _need(op, ins, 0)
    r = m._rank(x)
    axes = [0, 2, 3] if at["axes"] is None else [_axis(a, r, op) for a in at["axes"]]
    mu = _g.mean(x, axes, True)
    ex2 = _g.mean(_g.multiply(x, x), axes, True)
    std = _g.sqrt(_g.subtract(ex2, _g.multiply(mu, mu)))
    return _keep(m, x, _g.divide(_g.subtract(x, mu), _g.add(std, 1e-9)))


@_reg("LRN", alpha=1e-4, beta=0.75, bias=1.0, size=None)
def _lrn(m, node, ins, at):
    """x / (bias + alpha / size * sum of x^2 over the channel window)^beta,
    the window sum being `size` shifted slices of the zero-padded squares."""
    op = "LRN"
    x = _need(op, ins, 0)
    shape = m._shape(x, op)
    if len(shape) < 3:
        raise UnsupportedOnnx("%s: input must have rank >= 3" % op, op)
    size = int(at["size"])
    C = shape[1]
    lo, hi = (size - 1) // 2, (size - 1) - (size - 1) // 2
    sq = _g.multiply(x, x)
    padded = _pad_axis(m, sq, 1, lo, hi, _sc(m._dtype(x), 0), op)
    acc = None
    for k in range(size):
        sl = _g.Var("slice", (padded,), [("axis", 1), ("start", k), ("stop", k + C)])
        acc = sl if acc is None else _g.add(acc, sl)
    base = _g.add(float(at["bias"]), _g.multiply(float(at["alpha"]) / size, acc))
    return _keep(m, x, _g.divide(x, _g.power(base, float(at["beta"]))))


# -- pooling and convolution: strided slices of the padded input ------------

def _ints(v, n, default):
    return [int(a) for a in v] if v is not None else [default] * n


def _window_geometry(op, spatial, kernel, at):
    """Per spatial axis: (stride, dilation, pad before, pad after, output
    size, extra), `extra` being the padding a ceil_mode window reads past
    the end (it counts for nothing). ONNX's formulas; with ceil_mode a
    window that would start in the end padding is dropped."""
    k = len(spatial)
    strides = _ints(at.get("strides"), k, 1)
    dil = _ints(at.get("dilations"), k, 1)
    pads = _ints(at.get("pads"), 2 * k, 0)
    auto = _attr_str(at.get("auto_pad") or "NOTSET")
    ceil = bool(at.get("ceil_mode") or 0)
    if len(strides) != k or len(dil) != k or len(pads) != 2 * k or len(kernel) != k:
        raise UnsupportedOnnx("%s: strides/dilations/pads/kernel do not match %d spatial axes"
                              % (op, k), op)
    geo = []
    for i, D in enumerate(spatial):
        s, d = strides[i], dil[i]
        eff = (kernel[i] - 1) * d + 1
        if auto in ("SAME_UPPER", "SAME_LOWER"):
            out = -(-D // s)
            total = max((out - 1) * s + eff - D, 0)
            pb = total // 2 if auto == "SAME_UPPER" else total - total // 2
            pe = total - pb
        elif auto == "VALID":
            pb = pe = 0
            out = (D - eff) // s + 1
        elif auto == "NOTSET":
            pb, pe = pads[i], pads[i + k]
            num = D + pb + pe - eff
            if ceil:
                out = -(-num // s) + 1
                if (out - 1) * s >= D + pb:
                    out -= 1
            else:
                out = num // s + 1
        else:
            raise UnsupportedOnnx("%s: auto_pad %r" % (op, auto), op)
        if out < 1 or pb < 0 or pe < 0:
            raise UnsupportedOnnx("%s: no output for input size %d, kernel %d, pads %d/%d"
                                  % (op, D, kernel[i], pb, pe), op)
        extra = max((out - 1) * s + eff - (D + pb + pe), 0)
        geo.append((s, d, pb, pe, out, extra))
    return geo


def _windows(m, op, x, kernel, geo, fill):
    """x [N, C, D...] padded with `fill` (a scalar Var) on the spatial axes,
    then one strided slice [N, C, out...] per kernel offset, in C order of
    the offsets (slices along one axis are shared by the offsets after it)."""
    for i, (s, d, pb, pe, out, extra) in enumerate(geo):
        if pb or pe + extra:
            x = _pad_axis(m, x, 2 + i, pb, pe + extra, fill, op)
    level = [x]
    for i, (s, d, pb, pe, out, extra) in enumerate(geo):
        nxt = []
        for v in level:
            for o in range(kernel[i]):
                start = o * d
                attrs = [("axis", 2 + i), ("start", start), ("stop", start + (out - 1) * s + 1)]
                if s != 1:
                    attrs.append(("step", s))
                nxt.append(_g.Var("slice", (v,), attrs))
        level = nxt
    return level


def _lowest(dt):
    if dt in ("f32", "f64"):
        return _sc(dt, -np.inf)
    return _sc(dt, np.iinfo(_npdt(dt)).min)


def _pool_setup(m, op, x, at):
    shape = m._shape(x, op)
    if len(shape) < 3:
        raise UnsupportedOnnx("%s: input must have rank >= 3, got %s" % (op, shape), op)
    kernel = _ints(at["kernel_shape"], 0, 0)
    geo = _window_geometry(op, shape[2:], kernel, at)
    return shape, kernel, geo


@_reg("MaxPool", auto_pad="NOTSET", ceil_mode=0, dilations=None, kernel_shape=None, pads=None,
      storage_order=0, strides=None)
def _maxpool(m, node, ins, at):
    """maximum over the window slices of the input padded with -inf (the
    padding never wins). The optional Indices output is the flat index of
    the first maximum in the unpadded input (row- or column-major)."""
    op = "MaxPool"
    x = _need(op, ins, 0)
    dt = m._dtype(x)
    shape, kernel, geo = _pool_setup(m, op, x, at)
    sl = _windows(m, op, x, kernel, geo, _lowest(dt))
    y = sl[0]
    for v in sl[1:]:
        y = _g.maximum(y, v)
    if len(node.output) < 2 or not node.output[1]:
        return y
    # indices: a running first-maximum, with the static source index of each slice
    sp = list(shape[2:])
    outs = [g[4] for g in geo]
    offs = list(np.ndindex(*kernel))
    base = np.arange(shape[0] * shape[1], dtype=np.int64).reshape(shape[0], shape[1], *([1] * len(sp)))
    base = base * int(np.prod(sp, dtype=np.int64))
    best, bidx = None, None
    for v, o in zip(sl, offs):
        coords = [np.arange(outs[i]) * geo[i][0] + o[i] * geo[i][1] - geo[i][2] for i in range(len(sp))]
        # (a padding position never wins: clipping only keeps its index in range)
        grid = [np.clip(g_, 0, n - 1) for g_, n in zip(np.meshgrid(*coords, indexing="ij"), sp)]
        flat = np.ravel_multi_index(grid, sp, order="F" if at["storage_order"] else "C")
        idx = _g.constant((base + flat.reshape((1, 1) + flat.shape)).astype(np.int64))
        if best is None:
            best, bidx = v, idx
        else:
            upd = _g.greater(v, best)
            best = _g.where(upd, v, best)
            bidx = _g.where(upd, idx, bidx)
    return [y, _g.broadcast_to(bidx, m._shape(y, op))]


@_reg("AveragePool", auto_pad="NOTSET", ceil_mode=0, count_include_pad=0, kernel_shape=None,
      pads=None, strides=None, dilations=None)
def _avgpool(m, node, ins, at):
    """Sum of the window slices of the zero-padded input, divided by the
    number of counted elements of each window -- a static constant: the
    input's elements, plus the pads with count_include_pad (never the
    ceil_mode overhang)."""
    op = "AveragePool"
    x = _need(op, ins, 0)
    dt = m._dtype(x)
    if dt not in ("f32", "f64"):
        raise UnsupportedOnnx("%s of %s" % (op, dt), op)
    shape, kernel, geo = _pool_setup(m, op, x, at)
    sl = _windows(m, op, x, kernel, geo, _sc(dt, 0))
    y = sl[0]
    for v in sl[1:]:
        y = _g.add(y, v)
    # the count of each window, from the same windows over a 0/1 mask
    mask = np.ones([1], np.int64)
    for i, (s, d, pb, pe, out, extra) in enumerate(geo):
        D = shape[2 + i]
        line = np.zeros(D + pb + pe + extra, np.int64)
        if at["count_include_pad"]:
            line[:D + pb + pe] = 1
        else:
            line[pb:pb + D] = 1
        cnt = np.zeros(out, np.int64)
        for o in range(kernel[i]):
            cnt += line[o * d:o * d + (out - 1) * s + 1:s]
        mask = np.multiply.outer(mask, cnt)
    mask = mask.reshape((1, 1) + mask.shape[1:])
    if (mask == 0).any():
        raise UnsupportedOnnx("%s: a window covers only padding" % op, op)
    if (mask == mask.flat[0]).all():
        return _g.divide(y, _sc(dt, mask.flat[0]))
    return _g.divide(y, _g.constant(mask.astype(_npdt(dt))))


@_reg("Conv", auto_pad="NOTSET", dilations=None, group=1, kernel_shape=None, pads=None,
      strides=None)
def _conv(m, node, ins, at):
    op = "Conv"
    x, w, b = _need(op, ins, 0), _need(op, ins, 1), _opt(ins, 2)
    ws = m._shape(w, op)
    if at["kernel_shape"] is not None and list(at["kernel_shape"]) != list(ws[2:]):
        raise UnsupportedOnnx("%s: kernel_shape %s differs from the weights %s" % (op, at["kernel_shape"], ws), op)
    return _conv_core(m, op, x, w, b, int(at["group"]), at)


def _conv_core(m, op, x, w, b, G, at):
    """im2col: the window slices of the zero-padded input stacked on a new
    axis ([N, C, K, out...] -> [N, G, C/G * K, P]), then one (batched over
    groups) matmul with the weights [G, M/G, C/G * K]; a 1x1 stride-1
    convolution is the matmul alone."""
    dt = m._dtype(x)
    shape = m._shape(x, op)
    ws = m._shape(w, op)
    if len(shape) < 3 or len(ws) != len(shape):
        raise UnsupportedOnnx("%s: input %s and weights %s" % (op, shape, ws), op)
    N, C = shape[0], shape[1]
    M = ws[0]
    kernel = list(ws[2:])
    if C % G or M % G or ws[1] != C // G:
        raise UnsupportedOnnx("%s: %d channels, %d filters, group %d, weights %s" % (op, C, M, G, ws), op)
    geo = _window_geometry(op, shape[2:], kernel, at)
    outs = [g[4] for g in geo]
    P = int(np.prod(outs, dtype=np.int64))
    K = int(np.prod(kernel, dtype=np.int64))
    sl = _windows(m, op, x, kernel, geo, _sc(dt, 0))
    if K == 1:
        cols = sl[0]
    else:
        cols = _g.concatenate([_g.expand_dims(v, 2) for v in sl], 2)
    Cg, Mg = C // G, M // G
    if G == 1:
        y = _g.matmul(_g.reshape(w, (M, Cg * K)), _g.reshape(cols, (N, Cg * K, P)))
    else:
        y = _g.matmul(_g.reshape(w, (G, Mg, Cg * K)), _g.reshape(cols, (N, G, Cg * K, P)))
    y = _g.reshape(y, [N, M] + outs)
    if b is not None:
        y = _g.add(y, _g.reshape(b, [M] + [1] * len(outs)))
    return _keep(m, x, y)


@_reg("ConvTranspose", auto_pad="NOTSET", dilations=None, group=1, kernel_shape=None,
      output_padding=None, output_shape=None, pads=None, strides=None)
def _convt(m, node, ins, at):
    """The transposed convolution as a convolution: the input with stride-1
    zeros inserted between its elements, padded by (kernel extent - 1) minus
    the pads (plus output_padding at the end; a negative pad crops), then
    convolved with stride 1 by the weights with channels swapped per group
    and every spatial axis flipped."""
    op = "ConvTranspose"
    x, w, b = _need(op, ins, 0), _need(op, ins, 1), _opt(ins, 2)
    dt = m._dtype(x)
    shape = m._shape(x, op)
    ws = m._shape(w, op)
    r = len(shape)
    k = r - 2
    if k < 1 or len(ws) != r:
        raise UnsupportedOnnx("%s: input %s and weights %s" % (op, shape, ws), op)
    G = int(at["group"])
    C, Mg = ws[0], ws[1]
    kernel = list(ws[2:])
    if shape[1] != C or C % G:
        raise UnsupportedOnnx("%s: %d channels, weights %s, group %d" % (op, shape[1], ws, G), op)
    if at["kernel_shape"] is not None and list(at["kernel_shape"]) != kernel:
        raise UnsupportedOnnx("%s: kernel_shape %s differs from the weights %s" % (op, at["kernel_shape"], ws), op)
    strides = _ints(at["strides"], k, 1)
    dil = _ints(at["dilations"], k, 1)
    opad = _ints(at["output_padding"], k, 0)
    pads = _ints(at["pads"], 2 * k, 0)
    auto = _attr_str(at["auto_pad"] or "NOTSET")
    if auto not in ("NOTSET", "SAME_UPPER", "SAME_LOWER", "VALID"):
        raise UnsupportedOnnx("%s: auto_pad %r" % (op, auto), op)
    oshape = None if at["output_shape"] is None else [int(v) for v in at["output_shape"]][-k:]
    if auto in ("SAME_UPPER", "SAME_LOWER") and oshape is None:
        oshape = [shape[2 + i] * strides[i] for i in range(k)]
    for i in range(k):
        eff = (kernel[i] - 1) * dil[i] + 1
        full = strides[i] * (shape[2 + i] - 1) + opad[i] + eff
        if oshape is not None:
            total = full - oshape[i]
            if auto == "SAME_UPPER":
                pads[i], pads[i + k] = total // 2, total - total // 2
            else:
                pads[i], pads[i + k] = total - total // 2, total // 2
        elif auto == "VALID":
            pads[i] = pads[i + k] = 0
    # the input with zeros inserted: [.., D, ..] -> [.., (D - 1) * s + 1, ..]
    for i in range(k):
        s = strides[i]
        if s == 1:
            continue
        a = 2 + i
        cur = list(m._shape(x, op))
        D = cur[a]
        zs = cur[:a + 1] + [s - 1] + cur[a + 1:]
        z = _g.concatenate([_g.expand_dims(x, a + 1), _g.broadcast_to(_sc(dt, 0), zs)], a + 1)
        x = _g.reshape(z, cur[:a] + [D * s] + cur[a + 1:])
        x = _g.Var("slice", (x,), [("axis", a), ("start", 0), ("stop", (D - 1) * s + 1)])
    cpads = []
    for i in range(k):
        eff = (kernel[i] - 1) * dil[i] + 1
        lo, hi = eff - 1 - pads[i], eff - 1 - pads[i + k] + opad[i]
        if lo < 0 or hi < 0:
            n = m._shape(x, op)[2 + i]
            x = _g.Var("slice", (x,), [("axis", 2 + i), ("start", max(-lo, 0)), ("stop", n - max(-hi, 0))])
        cpads.append((max(lo, 0), max(hi, 0)))
    # weights [C, M/G, k...] -> [M, C/G, k...], flipped
    Cg = C // G
    wt = _g.reshape(w, [G, Cg, Mg] + kernel)
    wt = _g.reshape(_g.transpose(wt, [0, 2, 1] + list(range(3, 3 + k))), [G * Mg, Cg] + kernel)
    for i in range(k):
        wt = _g.Var("slice", (wt,), [("axis", 2 + i), ("start", -1), ("step", -1)])
    cat = {"pads": [p[0] for p in cpads] + [p[1] for p in cpads], "dilations": dil}
    return _conv_core(m, op, x, wt, b, G, cat)


@_reg("MaxUnpool", kernel_shape=None, pads=None, strides=None)
def _maxunpool(m, node, ins, at):
    """Zeros with X written at its (flat, whole-tensor) indices: per (n, c)
    plane, a scatter of X at index - plane offset, in the default output
    shape ((in - 1) * stride + kernel - pads); a given output_shape pads
    (zeros at the end) or crops that, as the ONNX test data has it."""
    op = "MaxUnpool"
    x, idx = _need(op, ins, 0), _need(op, ins, 1)
    shape = m._shape(x, op)
    k = len(shape) - 2
    kernel = _ints(at["kernel_shape"], 0, 0)
    strides = _ints(at["strides"], k, 1)
    pads = _ints(at["pads"], 2 * k, 0)
    dshape = list(shape[:2]) + [(shape[2 + i] - 1) * strides[i] + kernel[i] - pads[i] - pads[i + k]
                                for i in range(k)]
    oshape = dshape
    if _opt(ins, 2) is not None:
        oshape = [int(v) for v in np.asarray(m._static(node.input[2], op, "output_shape")).ravel()]
    if len(oshape) != len(shape) or list(oshape[:2]) != list(shape[:2]):
        raise UnsupportedOnnx("%s: output_shape %s for input %s" % (op, oshape, shape), op)
    N, C = shape[:2]
    plane = int(np.prod(dshape[2:], dtype=np.int64))
    Q = int(np.prod(shape[2:], dtype=np.int64))
    off = _g.constant((np.arange(N * C, dtype=np.int64) * plane).reshape(N, C, 1))
    lin = _g.subtract(_g.reshape(_g.cast(idx, "i64"), (N, C, Q)), off)
    zeros = _g.broadcast_to(_sc(m._dtype(x), 0), (N, C, plane))
    y = _g.reshape(_scatter_last(m, op, zeros, lin, _g.reshape(x, (N, C, Q)), "none"), dshape)
    for i in range(k):
        d, o = dshape[2 + i], oshape[2 + i]
        if o > d:
            y = _pad_axis(m, y, 2 + i, 0, o - d, _sc(m._dtype(x), 0), op)
        elif o < d:
            y = _g.Var("slice", (y,), [("axis", 2 + i), ("start", 0), ("stop", o)])
    return y
