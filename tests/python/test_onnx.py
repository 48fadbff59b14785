"""ONNX import: unit tests and the backend node-test suite (libonnx-testdata)."""
import os

import numpy as np
import onnx
import pytest
from onnx import helper, TensorProto

import tlaloc.onnx as tlo
import onnx_suite

NODE_DIR = onnx_suite.node_dir()
PASSING = []
if os.path.exists(onnx_suite.PASSING_FILE):
    PASSING = [l.strip() for l in open(onnx_suite.PASSING_FILE) if l.strip()]


def _model(nodes, inputs, outputs, inits=(), opset=13):
    g = helper.make_graph(nodes, "t", inputs, outputs, initializer=list(inits))
    return helper.make_model(g, opset_imports=[helper.make_opsetid("", opset)])


def _vi(name, dt, shape):
    return helper.make_tensor_value_info(name, dt, shape)


def test_gemm_softmax_model():
    w = np.arange(12, dtype=np.float32).reshape(3, 4) / 10
    m = _model([helper.make_node("Gemm", ["x", "w"], ["h"], transB=1, alpha=0.5),
                helper.make_node("Softmax", ["h"], ["y"], axis=1)],
               [_vi("x", TensorProto.FLOAT, [2, 4])], [_vi("y", TensorProto.FLOAT, [2, 3])],
               [onnx.numpy_helper.from_array(w, "w")], opset=11)
    g = tlo.load(m)
    assert "(const f32 [3 4]" in g.text
    x = np.random.default_rng(0).standard_normal((2, 4)).astype(np.float32)
    (y,) = tlo.function(g)(x)
    h = 0.5 * x @ w.T
    e = np.exp(h - h.max(1, keepdims=True))
    np.testing.assert_allclose(y, e / e.sum(1, keepdims=True), rtol=1e-5)


def _loop_model(trips, cond=None):
    """Loop(M, cond, y): y += 1 each step; scan output 2 y + i (the body
    passes its condition through, so the loop runs M times)."""
    b = helper.make_graph([
        helper.make_node("Identity", ["cond_in"], ["cond_out"]),
        helper.make_node("Constant", [], ["one"], value=helper.make_tensor("one", TensorProto.FLOAT, [], [1.0])),
        helper.make_node("Add", ["y_in", "one"], ["y_out"]),
        helper.make_node("Cast", ["i"], ["fi"], to=TensorProto.FLOAT),
        helper.make_node("Add", ["y_in", "y_in"], ["y2"]),
        helper.make_node("Add", ["y2", "fi"], ["scan_out"]),
    ], "body", [_vi("i", TensorProto.INT64, []), _vi("cond_in", TensorProto.BOOL, []),
                _vi("y_in", TensorProto.FLOAT, [3])],
        [_vi("cond_out", TensorProto.BOOL, []), _vi("y_out", TensorProto.FLOAT, [3]),
         _vi("scan_out", TensorProto.FLOAT, [3])])
    inits = [onnx.numpy_helper.from_array(np.array(trips, np.int64), "M")]
    if cond is not None:
        inits.append(onnx.numpy_helper.from_array(np.array(cond), "c"))
    return _model([helper.make_node("Loop", ["M", "c" if cond is not None else "", "y"], ["ry", "rs"], body=b)],
                  [_vi("y", TensorProto.FLOAT, [3])],
                  [_vi("ry", TensorProto.FLOAT, [3]), _vi("rs", TensorProto.FLOAT, [trips, 3])], inits)


@pytest.mark.parametrize("trips,cond", [(4, None), (0, None), (3, True), (3, False)])
def test_loop_with_scan_outputs_is_a_scan(trips, cond):
    """A Loop with scan outputs and a static trip count imports as a scan
    (the body once, a function), not unrolled; zero trips (M = 0, or an
    initial condition false) give empty scan outputs."""
    g = tlo.load(_loop_model(trips, cond))
    assert "(scan " in g.text and g.text.count("(add ") <= 4, g.text
    y0 = np.array([1.0, -2.0, 0.5], np.float32)
    ry, rs = tlo.function(g)(y0)
    n = trips if cond is not False else 0
    y, want = y0.copy(), []
    for i in range(n):
        want.append(2 * y + i)
        y = y + 1
    np.testing.assert_allclose(ry, y)
    np.testing.assert_allclose(rs, np.array(want, np.float32).reshape(n, 3))


def test_loop_with_a_run_time_end_stacks_its_scan_outputs():
    """A Loop whose trip count is a graph input and whose body computes its
    condition (stop once y passes a limit), with scan outputs and a Slice
    at the iteration number: one loop with per-trip results (:stack), not
    unrolled and with nothing frozen; its outputs' length is the trip
    count, against the same loop in numpy, for several trip counts and
    limits (zero trips included). A Slice past the table's end is a
    run-time error, not a shorter output."""
    table = np.arange(1, 9, dtype=np.float32)
    b = helper.make_graph([
        helper.make_node("Constant", [], ["one"], value=helper.make_tensor("one", TensorProto.INT64, [], [1])),
        helper.make_node("Add", ["i", "one"], ["end"]),
        helper.make_node("Unsqueeze", ["i", "ax0"], ["st"]),
        helper.make_node("Unsqueeze", ["end", "ax0"], ["en"]),
        helper.make_node("Slice", ["table", "st", "en"], ["ti"]),
        helper.make_node("Add", ["y_in", "ti"], ["y_out"]),
        helper.make_node("ReduceSum", ["y_out"], ["tot"], keepdims=0),
        helper.make_node("Less", ["tot", "limit"], ["cond_out"]),
        helper.make_node("Mul", ["y_out", "y_out"], ["sq"]),
    ], "body", [_vi("i", TensorProto.INT64, []), _vi("cond_in", TensorProto.BOOL, []),
                _vi("y_in", TensorProto.FLOAT, [2])],
        [_vi("cond_out", TensorProto.BOOL, []), _vi("y_out", TensorProto.FLOAT, [2]),
         _vi("sq", TensorProto.FLOAT, [2])])
    inits = [onnx.numpy_helper.from_array(table, "table"), onnx.numpy_helper.from_array(np.array([0], np.int64), "ax0")]
    m = _model([helper.make_node("Loop", ["M", "c", "y"], ["ry", "rs"], body=b)],
               [_vi("M", TensorProto.INT64, []), _vi("c", TensorProto.BOOL, []), _vi("y", TensorProto.FLOAT, [2]),
                _vi("limit", TensorProto.FLOAT, [])],
               [_vi("ry", TensorProto.FLOAT, [2]), _vi("rs", TensorProto.FLOAT, ["k", 2])], inits)
    g = tlo.load(m)
    assert ":stack 1" in g.text and g.text.count("(slice ") + g.text.count("(take ") == 1, g.text
    f = tlo.function(g)
    y0 = np.array([0.5, -1.0], np.float32)
    for M, c, limit in ((5, True, 1e9), (8, True, 10.0), (3, True, -1.0), (0, True, 1e9), (4, False, 1e9)):
        y, want, i, go = y0.copy(), [], 0, c
        while go and i < M:
            y = y + table[i]
            want.append(y * y)
            go = bool(y.sum() < limit)
            i += 1
        ry, rs = f(np.array(M, np.int64), np.array(c), y0, np.array(limit, np.float32))
        np.testing.assert_allclose(ry, y, rtol=1e-6)
        np.testing.assert_allclose(rs, np.array(want, np.float32).reshape(len(want), 2), rtol=1e-6)
    with pytest.raises(Exception, match="out of (range|bounds)"):
        f(np.array(9, np.int64), np.array(True), y0, np.array(1e9, np.float32))


@pytest.mark.parametrize("direction", [0, 1])
def test_scan8_is_a_map_of_scans(direction):
    """Scan-8's batch axis: a scan without carries over the batch whose
    body is the scan over one element's sequence (the body imported once),
    not unrolled; both directions, against numpy."""
    b = helper.make_graph([helper.make_node("Add", ["s", "x"], ["s2"]),
                           helper.make_node("Mul", ["s2", "x"], ["y"])], "body",
                          [_vi("s", TensorProto.FLOAT, [2]), _vi("x", TensorProto.FLOAT, [2])],
                          [_vi("s2", TensorProto.FLOAT, [2]), _vi("y", TensorProto.FLOAT, [2])])
    m = _model([helper.make_node("Scan", ["", "init", "xs"], ["last", "ys"], body=b, num_scan_inputs=1,
                                 directions=[direction])],
               [_vi("init", TensorProto.FLOAT, [3, 2]), _vi("xs", TensorProto.FLOAT, [3, 4, 2])],
               [_vi("last", TensorProto.FLOAT, [3, 2]), _vi("ys", TensorProto.FLOAT, [3, 4, 2])], opset=8)
    g = tlo.load(m)
    assert g.text.count("(scan ") >= 2 and g.text.count("(add ") == 1, g.text
    rng = np.random.default_rng(1)
    init, xs = rng.standard_normal((3, 2)).astype(np.float32), rng.standard_normal((3, 4, 2)).astype(np.float32)
    last, ys = tlo.function(g)(init, xs)
    want_last, want_ys = init.copy(), np.zeros_like(xs)
    for i in range(3):
        s = init[i].copy()
        steps = range(3, -1, -1) if direction else range(4)
        for k, t in enumerate(steps):  # Scan-8 appends outputs in iteration order
            s = s + xs[i, t]
            want_ys[i, k] = s * xs[i, t]
        want_last[i] = s
    np.testing.assert_allclose(last, want_last, rtol=1e-6)
    np.testing.assert_allclose(ys, want_ys, rtol=1e-6)


def test_large_initializer_becomes_bound_input():
    w = np.ones((40, 40), np.float32)
    m = _model([helper.make_node("MatMul", ["x", "w"], ["y"])],
               [_vi("x", TensorProto.FLOAT, [1, 40])], [_vi("y", TensorProto.FLOAT, [1, 40])],
               [onnx.numpy_helper.from_array(w, "w")])
    g = tlo.load(m, const_limit=100)
    assert "(in w f32 [40 40])" in g.text and "w" in g.bound
    (y,) = tlo.function(g)(np.ones((1, 40), np.float32))
    np.testing.assert_array_equal(y, np.full((1, 40), 40, np.float32))


def test_unsupported_op_and_attribute_named():
    m = _model([helper.make_node("Unique", ["x"], ["y"])],
               [_vi("x", TensorProto.FLOAT, [3])], [_vi("y", TensorProto.FLOAT, [3])])
    with pytest.raises(tlo.UnsupportedOnnx, match="Unique"):
        tlo.load(m)
    m = _model([helper.make_node("Pad", ["x", "p"], ["y"], mode="wrap")],
               [_vi("x", TensorProto.FLOAT, [3])], [_vi("y", TensorProto.FLOAT, [5])],
               [onnx.numpy_helper.from_array(np.array([1, 1], np.int64), "p")])
    with pytest.raises(tlo.UnsupportedOnnx, match="wrap") as e:
        tlo.load(m)
    assert e.value.op == "Pad"
    m = _model([helper.make_node("Relu", ["x"], ["y"], frobnicate=1)],
               [_vi("x", TensorProto.FLOAT, [3])], [_vi("y", TensorProto.FLOAT, [3])])
    with pytest.raises(tlo.UnsupportedOnnx, match="frobnicate"):
        tlo.load(m)
    m = _model([helper.make_node("Relu", ["x"], ["y"])],
               [_vi("x", TensorProto.FLOAT16, [3])], [_vi("y", TensorProto.FLOAT16, [3])])
    with pytest.raises(tlo.UnsupportedOnnx, match="FLOAT16"):
        tlo.load(m)
    m = _model([helper.make_node("Abs", ["x"], ["y"])],
               [_vi("x", TensorProto.UINT64, [3])], [_vi("y", TensorProto.UINT64, [3])])
    with pytest.raises(tlo.UnsupportedOnnx, match="UINT64"):
        tlo.load(m)


needs_data = pytest.mark.skipif(NODE_DIR is None, reason="libonnx-testdata not installed")


@needs_data
@pytest.mark.parametrize("name", PASSING)
def test_node_model_still_passes(name):
    st, op, msg = onnx_suite.run_model(os.path.join(NODE_DIR, name))
    assert st == "pass", msg


@needs_data
def test_no_supported_model_fails():
    """Every node model whose ops are all supported must pass (known bugs are
    listed in onnx_suite.KNOWN_BUGS and reported as xfail below)."""
    res = onnx_suite.run_all()
    bad = {k: v[2][:300] for k, v in res.items()
           if v[0] == "fail" and k not in onnx_suite.KNOWN_BUGS}
    assert not bad, bad


@needs_data
@pytest.mark.parametrize("name", sorted(onnx_suite.KNOWN_BUGS))
def test_known_bugs(name):
    pytest.xfail("KNOWN BUG: " + onnx_suite.KNOWN_BUGS[name])
