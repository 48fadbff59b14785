"""ONNX decompositions: the cases the backend node tests leave out (NaN and
inf, ties, groups, reverse directions, ...), each against numpy or against
another path through the importer."""
import itertools

import numpy as np
import pytest
from onnx import helper, numpy_helper, TensorProto

import tlaloc.onnx as tlo

F32, F64, I32, I64 = TensorProto.FLOAT, TensorProto.DOUBLE, TensorProto.INT32, TensorProto.INT64


def _run(op, inputs, out_types, attrs=None, inits=None, opset=13, nout=1):
    """Builds a one-node model over numpy inputs {name: array} (and
    initializers), runs it with tlaloc, returns the outputs."""
    code = {np.dtype(np.float32): F32, np.dtype(np.float64): F64, np.dtype(np.int32): I32,
            np.dtype(np.int64): I64, np.dtype(np.bool_): TensorProto.BOOL}
    inits = inits or {}
    names = list(inputs) + list(inits)
    outs = ["y%d" % k for k in range(nout)]
    node = helper.make_node(op, names, outs, **(attrs or {}))
    g = helper.make_graph(
        [node], "t", [helper.make_tensor_value_info(k, code[v.dtype], v.shape) for k, v in inputs.items()],
        [helper.make_tensor_value_info(o, t, None) for o, t in zip(outs, out_types)],
        initializer=[numpy_helper.from_array(v, k) for k, v in inits.items()])
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", opset)])
    return tlo.function(tlo.load(m))(*inputs.values())


def test_argmax_argmin_nan_ties_and_last_index():
    x = np.array([[1, 3, 3, np.nan, 2, np.nan], [5, 5, -1, -1, 0, 5]], np.float32)
    for op, f in (("ArgMax", np.argmax), ("ArgMin", np.argmin)):
        (y,) = _run(op, {"x": x}, [I64], {"axis": 1, "keepdims": 0})
        np.testing.assert_array_equal(y, f(x, 1))  # first NaN, else first extreme
        (y,) = _run(op, {"x": x}, [I64], {"axis": 1, "select_last_index": 1})
        last = x.shape[1] - 1 - f(x[:, ::-1], 1)
        np.testing.assert_array_equal(y, last[:, None])
    xi = np.array([[np.iinfo(np.int32).min, 7, np.iinfo(np.int32).max, 7]], np.int32)
    (y,) = _run("ArgMin", {"x": xi}, [I64], {"axis": 1, "keepdims": 0})
    assert y.tolist() == [0]
    (y,) = _run("ArgMax", {"x": xi}, [I64], {"axis": -1, "keepdims": 0, "select_last_index": 1})
    assert y.tolist() == [2]


def test_round_half_to_even_and_non_finite():
    x = np.array([-2.5, -1.5, -0.5, 0.5, 1.5, 2.5, 2.4999998, -3.7, 1e30, np.inf, -np.inf, np.nan,
                  8388607.5, -0.0], np.float32)
    (y,) = _run("Round", {"x": x}, [F32], opset=11)
    np.testing.assert_array_equal(y, np.round(x))


def test_cumsum_with_inf_exclusive_reverse():
    x = np.array([[1, np.inf, 2, -np.inf, 3], [1, 2, 3, 4, 5]], np.float64)
    ax = {"axis": np.array(1, np.int64)}
    for excl, rev in itertools.product((0, 1), (0, 1)):
        (y,) = _run("CumSum", {"x": x}, [F64], {"exclusive": excl, "reverse": rev}, ax, opset=14)
        v = x[:, ::-1] if rev else x
        with np.errstate(invalid="ignore"):  # inf + -inf is NaN, here as in numpy
            ref = np.cumsum(v, 1)
        if excl:
            ref = np.concatenate([np.zeros((2, 1)), ref[:, :-1]], 1)
        np.testing.assert_array_equal(y, ref[:, ::-1] if rev else ref)
    xi = np.arange(37, dtype=np.int32).reshape(1, 37)
    (y,) = _run("CumSum", {"x": xi}, [I32], None, ax, opset=14)
    np.testing.assert_array_equal(y, np.cumsum(xi, 1, dtype=np.int32))


def test_mod_fmod_and_floor_mod_signs():
    a = np.array([5, -5, 5, -5, 0, 7.5, -7.5], np.float32)
    b = np.array([3, 3, -3, -3, 2, 2, -2], np.float32)
    (y,) = _run("Mod", {"a": a, "b": b}, [F32], {"fmod": 1})
    np.testing.assert_array_equal(y, np.fmod(a, b))
    (y,) = _run("Mod", {"a": a, "b": b}, [F32])
    np.testing.assert_array_equal(y, np.mod(a, b))
    ai, bi = a.astype(np.int64)[:5], b.astype(np.int64)[:5]
    (y,) = _run("Mod", {"a": ai, "b": bi}, [I64], {"fmod": 1})
    np.testing.assert_array_equal(y, np.fmod(ai, bi))


def test_bitwise_xor():
    a = np.array([0, 5, -1, 1 << 40, 123456789], np.int64)
    b = np.array([7, 5, 12, 3, -987654321], np.int64)
    (y,) = _run("BitwiseXor", {"a": a, "b": b}, [I64], opset=18)
    np.testing.assert_array_equal(y, np.bitwise_xor(a, b))
    (y,) = _run("BitwiseXor", {"a": a.astype(np.int32), "b": b.astype(np.int32)}, [I32], opset=18)
    np.testing.assert_array_equal(y, np.bitwise_xor(a.astype(np.int32), b.astype(np.int32)))


@pytest.mark.parametrize("dt", [np.float32, np.float64])
def test_inverse_hyperbolic_accuracy(dt):
    """Full precision near 0 and 1 and for huge arguments (no overflow)."""
    t = np.concatenate([-np.logspace(-30, 30, 61), [0.0], np.logspace(-30, 30, 61)])
    if dt == np.float32:
        t = t[np.abs(t) < 1e38]
    x = t.astype(dt)
    tol = dict(rtol=4 * np.finfo(dt).eps, atol=0)
    (y,) = _run("Asinh", {"x": x}, [F32 if dt == np.float32 else F64], opset=9)
    np.testing.assert_allclose(y, np.arcsinh(x.astype(np.float64)).astype(dt), **tol)
    xc = (1 + np.abs(x)).astype(dt)
    (y,) = _run("Acosh", {"x": xc}, [F32 if dt == np.float32 else F64], opset=9)
    np.testing.assert_allclose(y, np.arccosh(xc.astype(np.float64)).astype(dt), **tol)
    xt = np.tanh(np.linspace(-8, 8, 101)).astype(dt)
    xt = np.concatenate([xt, np.array([-1e-20, 1e-20, 0.5, -0.999], dt)])
    (y,) = _run("Atanh", {"x": xt}, [F32 if dt == np.float32 else F64], opset=9)
    ref = np.arctanh(xt.astype(np.float64))
    np.testing.assert_allclose(y, ref.astype(dt), rtol=16 * np.finfo(dt).eps, atol=0)


def test_pad_modes_against_numpy():
    x = np.arange(2 * 5 * 4, dtype=np.float32).reshape(2, 5, 4)
    pads = np.array([0, 4, 1, 0, 3, -2], np.int64)  # begin per axis, then end; -2 crops
    for mode, npmode in (("reflect", "reflect"), ("edge", "edge"), ("constant", "constant")):
        (y,) = _run("Pad", {"x": x}, [F32], {"mode": mode}, {"p": pads})
        ref = np.pad(x[:, :, :2], [(0, 0), (4, 3), (1, 0)], mode=npmode)
        np.testing.assert_array_equal(y, ref)


def test_topk_ties_and_smallest():
    x = np.array([[3, 1, 3, 2, 1, 3], [0, 0, 0, 0, 0, 0]], np.float32)
    for largest in (1, 0):
        v, i = _run("TopK", {"x": x}, [F32, I64], {"axis": 1, "largest": largest},
                    {"k": np.array([4], np.int64)}, opset=11, nout=2)
        # ONNX: sorted by value, equal values by lower index first
        order = np.argsort(-x if largest else x, axis=1, kind="stable")[:, :4]
        np.testing.assert_array_equal(i, order)
        np.testing.assert_array_equal(v, np.take_along_axis(x, order, 1))


def _conv_ref(x, w, b, stride, dil, pads, group):
    """Direct convolution (2-D), the definition."""
    N, C, H, W = x.shape
    M, Cg, kh, kw = w.shape
    xp = np.pad(x, [(0, 0), (0, 0), (pads[0], pads[2]), (pads[1], pads[3])])
    oh = (xp.shape[2] - (kh - 1) * dil[0] - 1) // stride[0] + 1
    ow = (xp.shape[3] - (kw - 1) * dil[1] - 1) // stride[1] + 1
    y = np.zeros((N, M, oh, ow), np.float64)
    Mg = M // group
    for mo in range(M):
        g = mo // Mg
        for i, j in itertools.product(range(kh), range(kw)):
            win = xp[:, g * Cg:(g + 1) * Cg, i * dil[0]:i * dil[0] + (oh - 1) * stride[0] + 1:stride[0],
                     j * dil[1]:j * dil[1] + (ow - 1) * stride[1] + 1:stride[1]]
            y[:, mo] += np.einsum("nchw,c->nhw", win, w[mo, :, i, j])
        y[:, mo] += b[mo]
    return y.astype(np.float32)


@pytest.mark.parametrize("group", [1, 2, 6])
def test_conv_groups_strides_dilations_pads(group):
    rng = np.random.default_rng(group)
    x = rng.standard_normal((2, 6, 9, 8)).astype(np.float32)
    w = rng.standard_normal((6, 6 // group, 3, 2)).astype(np.float32)
    b = rng.standard_normal(6).astype(np.float32)
    at = {"group": group, "strides": [2, 1], "dilations": [1, 2], "pads": [1, 0, 2, 1]}
    (y,) = _run("Conv", {"x": x}, [F32], at, {"w": w, "b": b})
    ref = _conv_ref(x, w, b, [2, 1], [1, 2], [1, 0, 2, 1], group)
    np.testing.assert_allclose(y, ref, rtol=1e-5, atol=1e-5)


def test_conv_transpose_is_the_adjoint_of_conv():
    """<conv(x), y> == <x, conv_transpose(y)> with the same weights, groups,
    strides, dilations and pads."""
    rng = np.random.default_rng(0)
    x = rng.standard_normal((1, 4, 7, 6))
    w = rng.standard_normal((6, 2, 3, 2))
    at = {"group": 2, "strides": [2, 3], "dilations": [2, 1], "pads": [1, 0, 2, 1]}
    (cx,) = _run("Conv", {"x": x}, [F64], at, {"w": w})
    y = rng.standard_normal(cx.shape)
    # output_padding makes the transposed output exactly x's size
    (ty,) = _run("ConvTranspose", {"y": y}, [F64], dict(at, output_shape=[7, 6]), {"w": w})
    assert ty.shape == x.shape
    np.testing.assert_allclose((cx * y).sum(), (x * ty).sum(), rtol=1e-10)


def test_avgpool_ceil_mode_count_include_pad():
    x = np.arange(1 * 1 * 6 * 5, dtype=np.float32).reshape(1, 1, 6, 5)
    for cip in (0, 1):
        at = {"kernel_shape": [3, 3], "strides": [2, 2], "pads": [1, 1, 1, 1], "ceil_mode": 1,
              "count_include_pad": cip}
        (y,) = _run("AveragePool", {"x": x}, [F32], at, opset=11)
        xp = np.pad(x[0, 0], 1, constant_values=np.nan)
        inside = np.pad(np.ones((6, 5)), 1) if not cip else np.ones((8, 7))
        ref = np.zeros(y.shape[2:], np.float32)
        for i, j in np.ndindex(*ref.shape):  # windows may overhang the padding: not counted
            win = xp[2 * i:2 * i + 3, 2 * j:2 * j + 3]
            cnt = inside[2 * i:2 * i + 3, 2 * j:2 * j + 3]
            ref[i, j] = np.nansum(win) / cnt.sum()
        np.testing.assert_allclose(y[0, 0], ref, rtol=1e-6)


@pytest.mark.parametrize("op", ["LSTM", "GRU", "RNN"])
def test_recurrent_directions_agree(op):
    """bidirectional = forward and reverse stacked; reverse = forward on the
    time-reversed sequence, its Y reversed back."""
    T, N, I, H = 4, 2, 3, 5
    G = {"LSTM": 4, "GRU": 3, "RNN": 1}[op]
    rng = np.random.default_rng(7)
    x = rng.standard_normal((T, N, I)).astype(np.float32)
    W = rng.standard_normal((2, G * H, I)).astype(np.float32) * 0.5
    R = rng.standard_normal((2, G * H, H)).astype(np.float32) * 0.5
    B = rng.standard_normal((2, 2 * G * H)).astype(np.float32) * 0.5
    nout = 3 if op == "LSTM" else 2
    types = [F32] * nout

    def run(direction, xx, k):
        sl = slice(k, k + 1) if k is not None else slice(None)
        return _run(op, {"x": xx}, types, {"hidden_size": H, "direction": direction},
                    {"W": W[sl], "R": R[sl], "B": B[sl]}, opset=14, nout=nout)
    bi = run("bidirectional", x, None)
    fw = run("forward", x, 0)
    rv = run("reverse", x, 1)
    rv2 = run("forward", x[::-1].copy(), 1)
    np.testing.assert_allclose(rv[0], rv2[0][::-1], rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(rv[1], rv2[1], rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(bi[0], np.concatenate([fw[0], rv[0]], 1), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(bi[1], np.concatenate([fw[1], rv[1]], 0), rtol=1e-5, atol=1e-6)


def test_lstm_sequence_lens_masks_steps():
    """A batch entry with a shorter length: its Y is 0 past the length and
    Y_h is the state at its last step (= running the shorter sequence)."""
    T, N, I, H = 5, 2, 3, 4
    rng = np.random.default_rng(11)
    x = rng.standard_normal((T, N, I)).astype(np.float32)
    W = rng.standard_normal((1, 4 * H, I)).astype(np.float32) * 0.5
    R = rng.standard_normal((1, 4 * H, H)).astype(np.float32) * 0.5
    inits = {"W": W, "R": R, "B": np.zeros((1, 8 * H), np.float32),
             "L": np.array([5, 3], np.int32)}
    y, yh = _run("LSTM", {"x": x}, [F32, F32], {"hidden_size": H}, inits, opset=14, nout=2)
    y3, yh3 = _run("LSTM", {"x": x[:3, 1:].copy()}, [F32, F32], {"hidden_size": H},
                   {"W": W, "R": R}, opset=14, nout=2)
    np.testing.assert_allclose(y[:3, :, 1:], y3, rtol=1e-5, atol=1e-6)
    np.testing.assert_array_equal(y[3:, :, 1], 0)
    np.testing.assert_allclose(yh[:, 1:], yh3, rtol=1e-5, atol=1e-6)


def test_scatter_elements_last_write_wins_and_padding():
    data = np.zeros((3, 4), np.float32)
    idx = np.array([[1, 1, -1], [0, 2, 2]], np.int64)  # indices narrower than the data
    upd = np.arange(1, 7, dtype=np.float32).reshape(2, 3)
    (y,) = _run("ScatterElements", {"d": data, "i": idx, "u": upd}, [F32], {"axis": 1}, opset=16)
    ref = data.copy()
    for a, b in np.ndindex(*idx.shape):
        ref[a, idx[a, b]] = upd[a, b]
    np.testing.assert_array_equal(y, ref)


def test_einsum_against_numpy():
    rng = np.random.default_rng(5)
    a = rng.standard_normal((2, 3, 4))
    b = rng.standard_normal((4, 5))
    c = rng.standard_normal((3, 3))
    for eq, ins in (("bij,jk->bki", (a, b)), ("ii->i", (c,)), ("ii", (c,)), ("bij,jk", (a, b)),
                    ("...j,jk->...k", (a, b)), ("ij,ij->", (c, c))):
        names = {"x%d" % k: v for k, v in enumerate(ins)}
        (y,) = _run("Einsum", names, [F64], {"equation": eq}, opset=12)
        np.testing.assert_allclose(y, np.einsum(eq, *ins), rtol=1e-12, atol=1e-12)


def test_resize_linear_roi_extrapolation_and_sizes():
    x = np.arange(16, dtype=np.float32).reshape(1, 1, 4, 4)
    roi = np.array([0, 0, -0.2, 0.1, 1, 1, 0.9, 1.3], np.float32)
    (y,) = _run("Resize", {"x": x}, [F32],
                {"mode": "linear", "coordinate_transformation_mode": "tf_crop_and_resize",
                 "extrapolation_value": -1.0},
                {"roi": roi, "scales": np.array([], np.float32), "sizes": np.array([1, 1, 3, 3], np.int64)})
    # by hand: rows at -0.6, 1.05, 2.7; cols at 0.3, 2.1, 3.9 (> 3: extrapolated)
    rows, cols = [-0.6, 1.05, 2.7], [0.3, 2.1, 3.9]
    ref = np.zeros((3, 3), np.float32)
    for i, r in enumerate(rows):
        for j, c in enumerate(cols):
            if not (0 <= r <= 3 and 0 <= c <= 3):
                ref[i, j] = -1
            else:
                r0, c0 = int(np.floor(r)), int(np.floor(c))
                r1, c1 = min(r0 + 1, 3), min(c0 + 1, 3)
                fr, fc = r - r0, c - c0
                ref[i, j] = ((1 - fr) * ((1 - fc) * x[0, 0, r0, c0] + fc * x[0, 0, r0, c1])
                             + fr * ((1 - fc) * x[0, 0, r1, c0] + fc * x[0, 0, r1, c1]))
    np.testing.assert_allclose(y[0, 0], ref, rtol=1e-5, atol=1e-5)


def test_static_parameter_computed_from_a_frozen_input():
    """A value computed from constants only (here Range's limit) is
    evaluated at import; one computed from a graph input asks for that input
    to be frozen (needs_static names the graph input, not the node)."""
    nodes = [helper.make_node("Cast", ["n"], ["nf"], to=F32),
             helper.make_node("Range", ["zero", "nf", "one"], ["y"])]
    g = helper.make_graph(nodes, "t", [helper.make_tensor_value_info("n", I32, [])],
                          [helper.make_tensor_value_info("y", F32, None)],
                          initializer=[numpy_helper.from_array(np.array(0, np.float32), "zero"),
                                       numpy_helper.from_array(np.array(1, np.float32), "one")])
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 13)])
    with pytest.raises(tlo.UnsupportedOnnx) as e:
        tlo.load(m)
    assert e.value.needs_static == "n" and e.value.op == "Range"
    (y,) = tlo.function(tlo.load(m, static_inputs={"n": np.array(4, np.int32)}))()
    np.testing.assert_array_equal(y, np.arange(4, dtype=np.float32))


@pytest.mark.parametrize("npdt,code", [(np.uint8, TensorProto.UINT8), (np.int8, TensorProto.INT8),
                                       (np.uint16, TensorProto.UINT16), (np.int16, TensorProto.INT16),
                                       (np.uint32, TensorProto.UINT32)])
def test_narrow_integers_wrap_like_numpy(npdt, code):
    """Held in int64, wrapped into range after each node: the same values as
    numpy's fixed-width arithmetic, through a chain of ops."""
    info = np.iinfo(npdt)
    rng = np.random.default_rng(int(code))
    a = rng.integers(info.min, info.max, 64, dtype=npdt, endpoint=True)
    b = rng.integers(info.min, info.max, 64, dtype=npdt, endpoint=True)
    a[:2] = [info.min, info.max]
    nodes = [helper.make_node("Mul", ["a", "b"], ["p"]), helper.make_node("Add", ["p", "a"], ["s"]),
             helper.make_node("Sub", ["s", "b"], ["y"])]
    if info.min < 0:
        nodes.append(helper.make_node("Neg", ["a"], ["n"]))
    outs = ["y"] + (["n"] if info.min < 0 else [])
    g = helper.make_graph(nodes, "t", [helper.make_tensor_value_info(k, code, [64]) for k in "ab"],
                          [helper.make_tensor_value_info(k, code, [64]) for k in outs])
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 14)])
    f = tlo.function(tlo.load(m))
    got = f(a, b)
    with np.errstate(over="ignore"):
        ref = [a * b + a - b] + ([-a] if info.min < 0 else [])
    for x, r in zip(got, ref):
        assert x.dtype == npdt
        np.testing.assert_array_equal(x, r)
    with pytest.raises(TypeError, match="expected dtype"):
        f(a.astype(np.int64), b)
