"""tlaloc Python package: graph building, tl.function, errors, engines.

tl.function compiles with the LLVM backend by default (engine="llvm");
engine="interp" is the reference interpreter, the oracle the compiled
results are compared with throughout."""
import ctypes
import glob
import json
import math
import subprocess
import sys
import os
import threading

import numpy as np
import pytest

import tlaloc as tl

rng = np.random.default_rng(0)


def f32(*shape):
    return rng.standard_normal(shape).astype(np.float32)


# compiled vs interpreted: the backend's vector math (libmvec) and
# summation orders differ from the interpreter's by a few ulps
TOL = {"f": {4: dict(rtol=2e-5, atol=1e-6), 8: dict(rtol=1e-12, atol=1e-14)}}


def assert_engines_agree(got, want, msg=""):
    got, want = np.asarray(got), np.asarray(want)
    assert got.dtype == want.dtype and got.shape == want.shape, msg
    if want.dtype.kind == "f":
        scale = float(np.max(np.abs(want[np.isfinite(want)]), initial=1.0))
        t = TOL["f"][want.dtype.itemsize]
        np.testing.assert_allclose(got, want, rtol=t["rtol"], atol=t["atol"] * scale, err_msg=msg)
    else:
        np.testing.assert_array_equal(got, want, err_msg=msg)


def log_softmax_np(x, axis):
    # log(sum exp(x - m)) as log1p of the terms other than the (first) max,
    # as tlaloc computes it: a row dominated by its max keeps its digits
    m = x.max(axis=axis, keepdims=True)
    e = np.exp(x - m)
    np.put_along_axis(e, np.expand_dims(np.argmax(x, axis=axis), axis), 0.0, axis=axis)
    return x - m - np.log1p(e.sum(axis=axis, keepdims=True))


def test_xent_example():
    x = tl.tensor("x", "f32", ("n", 10))
    y = tl.tensor("y", "f32", ("n", 10))
    loss = -tl.mean(tl.sum(y * tl.log(tl.softmax(x, axis=1)), axis=1))
    f = tl.function([x, y], loss)
    assert "(in x f32 [n 10])" in f.graph and "softmax" in f.graph
    X, Y = f32(4, 10), np.eye(10, dtype=np.float32)[:4]
    got = f(X, Y)
    assert got.dtype == np.float32 and got.shape == ()
    np.testing.assert_allclose(got, -np.mean(np.sum(Y * log_softmax_np(X, 1), axis=1)), rtol=1e-5)
    assert "parse_s" in f.stats and f.stats["engine"] == "llvm" and f.engine == "llvm"
    fi = tl.function([x, y], loss, engine="interp")
    assert fi.stats["engine"] == "interpreter" and "compile_s" not in fi.stats
    assert_engines_agree(got, fi(X, Y))


@pytest.mark.parametrize("name,build,ref", [
    ("add", lambda a, b: a + b, lambda a, b: a + b),
    ("radd", lambda a, b: 2 + a, lambda a, b: 2 + a),
    ("sub", lambda a, b: a - b, lambda a, b: a - b),
    ("rsub", lambda a, b: 1.5 - a, lambda a, b: 1.5 - a),
    ("mul", lambda a, b: a * b * 3, lambda a, b: a * b * 3),
    ("div", lambda a, b: a / (b * b + 1), lambda a, b: a / (b * b + 1)),
    ("rdiv", lambda a, b: 1 / (b * b + 1), lambda a, b: 1 / (b * b + 1)),
    ("pow", lambda a, b: abs(a) ** 1.5, lambda a, b: np.abs(a) ** 1.5),
    ("rpow", lambda a, b: 2 ** a, lambda a, b: 2 ** a),
    ("neg", lambda a, b: -a, lambda a, b: -a),
    ("lt", lambda a, b: a < b, lambda a, b: a < b),
    ("le", lambda a, b: a <= 0.1, lambda a, b: a <= 0.1),
    ("gt", lambda a, b: a > b, lambda a, b: a > b),
    ("ge", lambda a, b: a >= b, lambda a, b: a >= b),
    ("eq", lambda a, b: tl.eq(a, a), lambda a, b: a == a),
    ("and", lambda a, b: (a > 0) & (b > 0), lambda a, b: (a > 0) & (b > 0)),
    ("or", lambda a, b: (a > 0) | (b > 0), lambda a, b: (a > 0) | (b > 0)),
    ("not", lambda a, b: ~(a > 0), lambda a, b: ~(a > 0)),
    ("exp", lambda a, b: tl.exp(a), np.exp),
    ("log", lambda a, b: tl.log(tl.abs(a) + 1), lambda a, b: np.log(np.abs(a) + 1)),
    ("tanh", lambda a, b: tl.tanh(a), lambda a, b: np.tanh(a)),
    ("sigmoid", lambda a, b: tl.sigmoid(a), lambda a, b: 1 / (1 + np.exp(-a))),
    ("erf", lambda a, b: tl.erf(a), lambda a, b: np.vectorize(math.erf)(a).astype(a.dtype)),
    ("where", lambda a, b: tl.where(a > b, a, b), lambda a, b: np.where(a > b, a, b)),
    ("maximum", lambda a, b: tl.maximum(a, b), np.maximum),
    ("minimum", lambda a, b: tl.minimum(a, 0.0), lambda a, b: np.minimum(a, 0.0)),
    ("sum1", lambda a, b: tl.sum(a, axis=1), lambda a, b: a.sum(axis=1)),
    ("sumk", lambda a, b: tl.sum(a, axis=1, keepdims=True), lambda a, b: a.sum(1, keepdims=True)),
    ("mean", lambda a, b: tl.mean(a), lambda a, b: a.mean()),
    ("max", lambda a, b: tl.max(a, axis=0), lambda a, b: a.max(axis=0)),
    ("method", lambda a, b: a.sum(axis=0).max(), lambda a, b: a.sum(0).max()),
    ("softmax", lambda a, b: tl.softmax(a), lambda a, b: np.exp(log_softmax_np(a, -1))),
    ("log_softmax", lambda a, b: tl.log_softmax(a, axis=0), lambda a, b: log_softmax_np(a, 0)),
    ("logsumexp", lambda a, b: tl.logsumexp(a, axis=1),
     lambda a, b: np.log(np.exp(a).sum(axis=1))),
    ("matmul", lambda a, b: a @ b.T, lambda a, b: a @ b.T),
    ("T", lambda a, b: a.T, lambda a, b: a.T),
    ("reshape", lambda a, b: a.reshape(4, 3), lambda a, b: a.reshape(4, 3)),
    ("reshape-1", lambda a, b: a.reshape(-1), lambda a, b: a.reshape(-1)),
    ("slice", lambda a, b: a[1:3], lambda a, b: a[1:3]),
    ("slice2", lambda a, b: a[:, ::2], lambda a, b: a[:, ::2]),
    ("sliceneg", lambda a, b: a[::-1, -2:], lambda a, b: a[::-1, -2:]),
    ("int", lambda a, b: a[1], lambda a, b: a[1]),
    ("intneg", lambda a, b: a[:, -1], lambda a, b: a[:, -1]),
    ("none", lambda a, b: a[None, 0], lambda a, b: a[None, 0]),
    ("ellipsis", lambda a, b: a[..., 2], lambda a, b: a[..., 2]),
    ("concat", lambda a, b: tl.concatenate([a, b], axis=0), lambda a, b: np.concatenate([a, b])),
    ("cast", lambda a, b: (a * 10).astype("i32"), lambda a, b: (a * 10).astype(np.int32)),
    ("np-scalar", lambda a, b: a * np.float32(2), lambda a, b: a * np.float32(2)),
    ("const", lambda a, b: a + tl.constant(np.arange(4, dtype=np.float32)),
     lambda a, b: a + np.arange(4, dtype=np.float32)),
])
def test_ops(name, build, ref):
    a = tl.tensor("a", "f32", (3, 4))
    b = tl.tensor("b", "f32", (3, 4))
    A, B = f32(3, 4), f32(3, 4)
    f = tl.function([a, b], build(a, b))
    assert f.stats["engine"] == "llvm"
    got = f(A, B)
    want = np.asarray(ref(A, B))
    assert got.shape == want.shape, f.graph
    if want.dtype.kind == "f":
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6, err_msg=f.graph)
    else:
        np.testing.assert_array_equal(got, want)
    assert_engines_agree(got, tl.function([a, b], build(a, b), engine="interp")(A, B), f.graph)


def test_multiple_outputs_and_sharing():
    x = tl.tensor("x", "f64", ("n",))
    e = tl.exp(x)
    f = tl.function([x], [e + 1, e * 2])
    assert f.graph.count("(exp x)") == 1 and "(let " in f.graph
    X = np.linspace(0, 1, 7)
    a, b = f(X)
    np.testing.assert_allclose(a, np.exp(X) + 1)
    np.testing.assert_allclose(b, np.exp(X) * 2)


def test_symbolic_dims_bind_and_check():
    x = tl.tensor("x", "f64", ("n", 3))
    y = tl.tensor("y", "f64", ("n",))
    f = tl.function([x, y], tl.sum(x, axis=1) + y)
    np.testing.assert_allclose(f(np.ones((5, 3)), np.ones(5)), np.full(5, 4.0))
    with pytest.raises(ValueError, match="n"):
        f(np.ones((5, 3)), np.ones(4))


def test_input_errors():
    x = tl.tensor("x", "f32", (2, 3))
    f = tl.function([x], x * 2)
    with pytest.raises(TypeError, match="f32"):
        f(np.ones((2, 3)))  # float64
    with pytest.raises(ValueError, match="rank"):
        f(np.ones(6, np.float32))
    with pytest.raises(ValueError, match="dim 1"):
        f(np.ones((2, 4), np.float32))
    with pytest.raises(ValueError, match="contiguous"):
        f(np.ones((3, 2), np.float32).T)
    with pytest.raises(TypeError, match="takes 1"):
        f()
    np.testing.assert_array_equal(f(np.ones((2, 3), np.float32)), np.full((2, 3), 2, np.float32))


def test_c_errors_become_tlaloc_error():
    a = tl.tensor("a", "f32", (2, 3))
    b = tl.tensor("b", "f32", (4,))
    with pytest.raises(tl.TlalocError, match="cannot broadcast"):
        tl.function([a, b], a + b)
    with pytest.raises(tl.TlalocError, match="1:"):
        tl.from_tg("(graph g (in x f32 [2]) (out y (frobnicate x)))")
    # run-time errors (integer to a negative power) carry the C message
    i = tl.tensor("i", "i64", (2,))
    f = tl.function([i], i ** i)
    with pytest.raises(tl.TlalocError):
        f(np.array([2, -1], np.int64))


def test_missing_input_and_names():
    x = tl.tensor("x", "f64", ())
    y = tl.tensor("y", "f64", ())
    with pytest.raises(ValueError, match="'y'"):
        tl.function([x], x + y)
    with pytest.raises(ValueError):
        tl.tensor("bad name", "f64")
    with pytest.raises(TypeError):
        tl.tensor("z", "f16")
    with pytest.raises(TypeError):
        bool(x > y)


REPO = os.path.normpath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))


def test_cost_and_limits_need_rules():
    x = tl.tensor("x", "f64", ())
    for off in (False, None):
        with pytest.raises(ValueError, match="cost="):
            tl.function([x], x, cost="time", rules=off)
        with pytest.raises(ValueError, match="limits"):
            tl.function([x], x, limits="iters=3", rules=off)
    # with the default rules they apply
    assert tl.function([x], x, limits="iters=3").stats["optimized"] is True


def test_optimizes_by_default():
    """tl.function runs the shipped rules unless told not to: the naive
    softplus is finite at 100 and 1000 (it overflows as written)."""
    x = tl.tensor("x", "f64", ())
    f = tl.function([x], tl.log(1 + tl.exp(x)))
    assert f.stats["optimized"] is True and "softplus" in f.optimized_graph
    np.testing.assert_allclose(f(100.0), 100.0, rtol=1e-15)
    np.testing.assert_allclose(f(1000.0), 1000.0, rtol=1e-15)
    xv = tl.tensor("x", "f32", ("n",))
    fv = tl.function([xv], tl.log(1 + tl.exp(xv)))
    X = np.array([100.0, 20.0, 0.0, -20.0, -100.0], np.float32)
    np.testing.assert_allclose(fv(X), np.logaddexp(np.float32(0), X), rtol=2e-6)
    for off in (False, None):
        g = tl.function([x], tl.log(1 + tl.exp(x)), rules=off)
        assert g.stats["optimized"] is False and g.optimized_graph is None
        with np.errstate(over="ignore"):
            assert np.isinf(g(1000.0))


def test_default_optimization_falls_back_with_a_warning(monkeypatch, tmp_path):
    """An optimizer that cannot start (here: an empty rules folder where the
    library looks) warns and runs the graph as written under the default;
    an explicit rules=True raises."""
    monkeypatch.setenv("TLALOC_RULES_DIR", str(tmp_path / "missing"))
    x = tl.tensor("x", "f64", ())
    with pytest.warns(RuntimeWarning, match="default optimization failed"):
        f = tl.function([x], x * 2)
    assert f.stats["optimized"] is False and "optimize_error" in f.stats
    assert f(3.0) == 6.0
    with pytest.raises(tl.TlalocError):
        tl.function([x], x * 2, rules=True)


def test_rules_optimize_and_stats():
    z = tl.tensor("z", "f64", ("n",))
    naive = tl.log(1 + tl.exp(z))
    f0 = tl.function([z], naive, rules=False)
    assert f0.optimized_graph is None and f0.stats["optimized"] is False
    for rules in (True, [os.path.join(REPO, "rules", "stability.rw")],
                  os.path.join(REPO, "rules")):
        f = tl.function([z], naive, rules=rules, limits="iters=30,nodes=100000,time=10")
        assert "exp" in f.graph and "softplus" in f.optimized_graph
        for k in ("stop", "iterations", "enodes", "eclasses", "optimize_ms", "compile_s",
                  "cache_hit", "kernels"):
            assert k in f.stats, k
        Z = np.array([1000.0, 30.0, 0.0, -30.0, -1000.0])
        with np.errstate(over="ignore"):
            assert np.isinf(f0(Z)[0])  # as written: overflows
        np.testing.assert_allclose(f(Z), np.logaddexp(0.0, Z), rtol=1e-12, atol=0)
    with pytest.raises(tl.TlalocError):
        tl.function([z], naive, rules=[os.path.join(REPO, "no-such-rules.rw")])


def test_version():
    from tlaloc._lib import version
    assert version().count(".") == 2


def _softmax_np(x, axis):
    e = np.exp(x - x.max(axis=axis, keepdims=True))
    return e / e.sum(axis=axis, keepdims=True)


# Stability: naive formulas that overflow/underflow as written; with rules=True
# the optimizer rewrites them to the fused stable forms and tlaloc matches a
# numerically stable numpy reference at extreme inputs.
STABILITY = [
    ("softplus", lambda x: tl.log(1 + tl.exp(x)),
     lambda X: np.logaddexp(0.0, X)),
    ("log_softmax", lambda x: tl.log(tl.softmax(x, axis=1)),
     lambda X: log_softmax_np(X, 1)),
    ("logsumexp_naive", lambda x: tl.log(tl.sum(tl.exp(x), axis=1)),
     lambda X: np.logaddexp.reduce(X, axis=1)),
    ("sigmoid_naive", lambda x: 1 / (1 + tl.exp(-x)),
     lambda X: np.where(X >= 0, 1 / (1 + np.exp(-np.abs(X))),
                        np.exp(-np.abs(X)) / (1 + np.exp(-np.abs(X))))),
]


@pytest.mark.parametrize("engine", ["llvm", "interp"])
@pytest.mark.parametrize("name,build,ref", STABILITY, ids=[s[0] for s in STABILITY])
def test_stability_rules(name, build, ref, engine):
    x = tl.tensor("x", "f64", ("n", 4))
    f = tl.function([x], build(x), rules=True, engine=engine)
    X = np.array([[1000.0, -1000.0, 0.5, 700.0],
                  [-800.0, -790.0, -810.0, -805.0],
                  [1.0, 2.0, 3.0, 4.0]])
    got = f(X)
    assert np.all(np.isfinite(got)), (name, got, f.optimized_graph)
    # The interpreter's log_softmax takes log1p of the non-max terms, so the
    # max element's -5.1e-131 keeps its digits; the backend's takes the log of
    # the whole sum (1 + 5.1e-131 == 1) and gives 0: exact to an ulp of the
    # row's scale, not relatively (a gap noted in docs/python.md).
    atol = 1e-300 if engine == "interp" else 1e-15
    np.testing.assert_allclose(got, ref(X), rtol=1e-12, atol=atol)


def test_type_inference_from_c():
    x = tl.tensor("x", "i32", ("n", 4))
    v = tl.sum(x * 2.5, axis=1, keepdims=True)
    assert v.dtype == "f64" and v.shape == ("n", 1)
    assert (x @ x.T).shape == ("n", "n")


def test_from_tg_and_large_output_zero_copy():
    f = tl.from_tg("(graph g (in x f64 [n]) (out y (mul x 2)) (out z (sum x)))")
    X = np.arange(100000, dtype=np.float64)
    y, z = f(X)
    assert y.flags.owndata  # numpy's array, written in place by tlaloc_run (no copy)
    np.testing.assert_array_equal(y, X * 2)
    assert z == X.sum()
    del y


def test_scalar_and_list_inputs_converted():
    x = tl.tensor("x", "f64", ())
    f = tl.function([x], x + 1)
    assert f(2.0) == 3.0
    v = tl.tensor("v", "f32", (3,))
    g = tl.function([v], v * 2)
    np.testing.assert_array_equal(g([1, 2, 3]), np.array([2, 4, 6], np.float32))


def test_deep_graph_uses_lets():
    x = tl.tensor("x", "f64", ())
    y = x
    for _ in range(3000):
        y = y + 1
    f = tl.function([x], y)
    assert f(0.0) == 3000.0


def test_import_is_fast_and_lazy():
    """What made an import slow: numpy and libtlaloc.so (LLVM) loaded
    eagerly; both wait for first use. The time bound is loose (a loaded
    2-core machine took 0.1 s): the two facts are what is checked."""
    code = ("import time, sys; t=time.perf_counter(); import tlaloc; "
            "d=time.perf_counter()-t; print(d, 'numpy' in sys.modules, sys.modules['tlaloc._lib']._lib is None)")
    env = dict(os.environ, PYTHONPATH=os.path.join(os.path.dirname(tl.__file__), ".."))
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env,
                         check=True).stdout.split()
    assert out[1] == "False" and out[2] == "True" and float(out[0]) < 1.0, out


def test_shape_signature_cache_and_inplace_outputs():
    x = tl.tensor("x", "f32", ("n",))
    f = tl.function([x], [x + 1, tl.sum(x)])
    a, s = f(np.ones(3, np.float32))
    b, t = f(np.zeros(5, np.float32))
    np.testing.assert_array_equal(a, [2, 2, 2])  # earlier results are not overwritten
    np.testing.assert_array_equal(b, [1] * 5)
    assert s == 3 and t == 0 and len(f._cache) == 2
    ro = np.arange(4, dtype=np.float32)
    ro.setflags(write=False)
    np.testing.assert_array_equal(f(ro)[0], ro + 1)
    with pytest.raises(ValueError, match="C-contiguous"):
        f(np.arange(8, dtype=np.float32)[::2])
    big = np.arange(100000, dtype=np.float32)
    np.testing.assert_array_equal(f(big)[0], big + 1)
    assert f(np.zeros(0, np.float32))[0].shape == (0,)


def _best_call_s(f, a, calls):
    import time
    best = 1.0
    for _ in range(calls):
        t = time.perf_counter()
        f(a)
        best = min(best, time.perf_counter() - t)
    return best


def test_per_call_overhead_tiny(capsys):
    """Fastest call of a compiled `x + 1` on f32[2] (docs/python.md has the
    figure for 50,000 calls); the interpreter's printed for comparison."""
    x = tl.tensor("x", "f32", (2,))
    f = tl.function([x], x + 1)
    fi = tl.function([x], x + 1, engine="interp")
    assert f.stats["engine"] == "llvm"
    a = np.ones(2, np.float32)
    best = _best_call_s(f, a, 5000)
    best_i = _best_call_s(fi, a, 5000)
    with capsys.disabled():
        print("\nper-call overhead, fastest of 5000: compiled %.2f us, interpreter %.2f us"
              % (best * 1e6, best_i * 1e6))
    assert best < 50e-6  # generous bound for loaded CI machines; docs give the measured value


# ---- engines -----------------------------------------------------------------

EXAMPLES = sorted(glob.glob(os.path.join(REPO, "examples", "*.tg")))


def _random_inputs(f, seed, n=5):
    """Inputs for f's graph: symbols = n, floats in (0.5, 1.5) (log and sqrt
    domains), ints in [0, 3), random bools."""
    r = np.random.default_rng(seed)
    out = []
    for name, (dt, shape) in zip(f.input_names, f.input_types):
        shape = tuple(n if isinstance(d, str) else d for d in shape)
        if dt in ("f32", "f64"):
            out.append(r.uniform(0.5, 1.5, shape).astype({"f32": np.float32, "f64": np.float64}[dt]))
        elif dt == "bool":
            out.append(r.random(shape) < 0.5)
        else:
            out.append(r.integers(0, 3, shape).astype({"i32": np.int32, "i64": np.int64}[dt]))
    return out


@pytest.mark.parametrize("path", EXAMPLES, ids=[os.path.basename(p)[:-3] for p in EXAMPLES])
def test_examples_compiled_match_interpreter(path):
    """Differential: each example compiled as written, and optimised with the
    default rules then compiled, against the interpreted original graph."""
    text = open(path).read()
    fi = tl.from_tg(text, engine="interp")
    ins = _random_inputs(fi, 0)
    want = fi(*ins)
    if fi._single:
        want = [want]
    for rules in (None, True):
        f = tl.from_tg(text, rules=rules)
        # a graph with control flow runs staged: compiled segments and functions
        assert f.stats["engine"] == "llvm" and (f.stats["compile"].get("staged") or f.stats["kernels"] >= 1)
        got = f(*ins)
        if f._single:
            got = [got]
        for k, (g, w) in enumerate(zip(got, want)):
            assert_engines_agree(g, w, "%s output %d, rules=%s" % (path, k, rules))


def test_engine_argument_checked():
    x = tl.tensor("x", "f64", ())
    for bad in ("tpu", "", None, "LLVM"):
        with pytest.raises(ValueError, match="engine="):
            tl.function([x], x + 1, engine=bad)
    with pytest.raises(ValueError, match="engine="):
        tl.from_tg("(graph g (in x f64 []) (out y x))", engine="jit")


def _many_symbols_graph(nsym):
    """A graph the backend refuses: more symbolic dims than it lowers (256)."""
    xs = [tl.tensor("x%d" % i, "f64", ("n%d" % i,)) for i in range(nsym)]
    total = tl.sum(xs[0])
    for v in xs[1:]:
        total = total + tl.sum(v)
    return xs, total


def test_engine_errors_and_auto_fallback():
    xs, total = _many_symbols_graph(300)
    with pytest.raises(tl.TlalocError, match="backend: .*not supported"):
        tl.function(xs, total)  # engine="llvm": no silent fallback
    fa = tl.function(xs, total, engine="auto")
    assert fa.stats["engine"] == "interpreter-fallback" and fa.engine == "interpreter"
    assert "not supported" in fa.stats["fallback_reason"]
    assert fa.compile_stats() is None
    args = [np.full(i % 3 + 1, 0.5) for i in range(300)]
    assert fa(*args) == sum(a.sum() for a in args)
    fi = tl.function(xs, total, engine="interp")
    assert fi.stats["engine"] == "interpreter" and fi(*args) == fa(*args)
    # a graph the backend compiles: auto compiles it
    x = tl.tensor("x", "f32", (3,))
    f = tl.function([x], tl.exp(x), engine="auto")
    assert f.stats["engine"] == "llvm" and "fallback_reason" not in f.stats


def test_compile_stats_and_disk_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("TLALOC_CACHE_DIR", str(tmp_path / "cache"))
    x = tl.tensor("x", "f32", ("n", 8))
    # unary ops and row kernels only: a broadcasting binary op leaves stack
    # bytes past the rank in the inferred dims (ir/infer.c broadcast2), which
    # the backend's cache key hashes, so such programs miss the cache today
    y = [tl.softmax(tl.exp(x), axis=1), tl.max(tl.log_softmax(tl.tanh(x), axis=1), axis=1)]
    f1 = tl.function([x], y)
    assert f1.stats["engine"] == "llvm" and f1.stats["cache_hit"] is False
    assert f1.stats["compile_s"] > 0 and f1.stats["kernels"] >= 2
    c = f1.stats["compile"]
    for k in ("plan_ms", "lower_ms", "opt_ms", "codegen_ms", "cache_ms", "jit_ms", "compile_ms",
              "cache_hit", "kernels", "inplace", "arena_bytes"):
        assert k in c, k
    assert c["codegen_ms"] > 0 and c["compile_ms"] >= c["opt_ms"]
    assert os.listdir(tmp_path / "cache")  # the object was written
    f2 = tl.function([x], y)  # the same program: linked from the cache
    assert f2.stats["cache_hit"] is True and f2.stats["compile"]["codegen_ms"] == 0
    X = f32(4, 8)
    for a, b in zip(f1(X), f2(X)):
        np.testing.assert_array_equal(a, b)
    # arena_bytes: the intermediates at the last call's sizes (0 before a call)
    assert f2.stats["compile"]["arena_bytes"] == 0
    assert f2.compile_stats()["arena_bytes"] > 0


def test_two_threads_share_a_function():
    """Calls are serialised per Function (a program runs on one thread at a
    time); concurrent callers with different shapes all get their own results."""
    x = tl.tensor("x", "f32", ("n",))
    f = tl.function([x], [tl.log_softmax(x * 2 + 1), tl.sum(x)])
    errors = []

    def work(seed, n):
        r = np.random.default_rng(seed)
        try:
            for _ in range(300):
                X = r.standard_normal(n).astype(np.float32)
                a, s = f(X)
                np.testing.assert_allclose(a, log_softmax_np(X * 2 + 1, 0), rtol=1e-5, atol=1e-5)
                np.testing.assert_allclose(s, X.sum(), rtol=1e-4, atol=1e-4)
        except Exception as e:  # reported by the main thread
            errors.append(e)

    ts = [threading.Thread(target=work, args=(1, 7)), threading.Thread(target=work, args=(2, 5000))]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    assert not errors, errors[0]


# ---- the C API of compiled programs, through ctypes ---------------------------

class _T(ctypes.Structure):
    _fields_ = [("dtype", ctypes.c_int32), ("rank", ctypes.c_int32),
                ("dims", ctypes.c_int64 * 8), ("data", ctypes.c_void_p)]


def _tensor(a):
    t = _T()
    t.dtype = {np.dtype(np.float32): 3, np.dtype(np.float64): 4}[a.dtype]
    t.rank = a.ndim
    for k, d in enumerate(a.shape):
        t.dims[k] = d
    t.data = a.ctypes.data if a.size else None
    return t


def _program(text):
    from tlaloc import _lib
    g = _lib.Graph(text)
    return _lib.Program(g), g._lib


def _prun(prog, lib, ins, outs):
    err = ctypes.c_void_p()
    ia = (_T * len(ins))(*ins)
    oa = (_T * len(outs))(*outs)
    st = lib.tlaloc_program_run(prog.handle, ctypes.addressof(ia), len(ins), ctypes.addressof(oa),
                                len(outs), ctypes.byref(err))
    from tlaloc._lib import take_string
    return st, take_string(lib, err.value), oa


def test_c_program_run_conventions():
    prog, lib = _program("(graph g (in x f64 [n]) (out y (mul x 2)) (out s (sum x)))")
    X = np.arange(5.0)
    # data NULL: tlaloc allocates the output (the caller frees it with tlaloc_free)
    st, msg, oa = _prun(prog, lib, [_tensor(X)], [_T(), _T()])
    assert st == 0 and msg == "", msg
    assert (oa[0].dtype, oa[0].rank, oa[0].dims[0], oa[1].rank) == (4, 1, 5, 0)
    y = np.ctypeslib.as_array(ctypes.cast(oa[0].data, ctypes.POINTER(ctypes.c_double)), (5,)).copy()
    s = ctypes.cast(oa[1].data, ctypes.POINTER(ctypes.c_double))[0]
    lib.tlaloc_free(oa[0].data)
    lib.tlaloc_free(oa[1].data)
    np.testing.assert_array_equal(y, X * 2)
    assert s == 10.0
    # caller buffers: written in place; their type must be the output's
    Y, S = np.empty(5), np.empty(())
    st, msg, _ = _prun(prog, lib, [_tensor(X)], [_tensor(Y), _tensor(S)])
    assert st == 0 and S == 10.0
    np.testing.assert_array_equal(Y, X * 2)
    st, msg, _ = _prun(prog, lib, [_tensor(X)], [_tensor(np.empty(4)), _tensor(S)])
    assert st == 2 and "output 0 ('y') is f64[5]; the buffer given does not match" in msg
    # an output buffer over an input is refused, not silently wrong
    st, msg, _ = _prun(prog, lib, [_tensor(X)], [_tensor(X), _tensor(S)])
    assert st == 2 and "overlaps input 'x'" in msg
    st, msg, _ = _prun(prog, lib, [_tensor(X), _tensor(X)], [_tensor(Y), _tensor(S)])
    assert st == 2 and "takes 1 inputs" in msg
    bad = _tensor(X)
    bad.dtype = 3
    st, msg, _ = _prun(prog, lib, [bad], [_tensor(Y), _tensor(S)])
    assert st == 2 and "input 'x'" in msg and "f32" in msg
    bad = _tensor(X)
    bad.rank = 9
    st, msg, _ = _prun(prog, lib, [bad], [_tensor(Y), _tensor(S)])
    assert st == 2 and "bad descriptor" in msg
    stats = json.loads(tl._lib.take_string(lib, lib.tlaloc_program_stats(prog.handle)))
    assert stats["kernels"] >= 1


def test_c_compile_options_checked():
    from tlaloc import _lib
    g = _lib.Graph("(graph g (in x f32 [4]) (out y (exp x)))")
    for kw, what in ((dict(opt_level=4), "opt_level"), (dict(threads=-1), "threads")):
        with pytest.raises(tl.TlalocError, match=what):
            _lib.Program(g, **kw)
    for kw in (dict(opt_level=-1), dict(opt_level=3), dict(threads=1), dict(use_cache=False)):
        p = _lib.Program(g, **kw)
        assert p.stats()["cache_hit"] is False or kw.get("use_cache") is not False


def test_readme_python_example_runs_and_is_stable(capsys):
    """The README's Python example runs as written, and its second function
    is the stability rewrite happening by default."""
    import re
    with open(os.path.join(REPO, "README.md")) as fh:
        block = re.findall(r"```python\n(.*?)```", fh.read(), re.S)[0]
    env = {}
    exec(compile(block, "README.md", "exec"), env)
    capsys.readouterr()
    g, h = env["g"], env["h"]
    Z = np.array([100.0, 1000.0])
    np.testing.assert_array_equal(g(Z), Z)
    assert "softplus" in g.optimized_graph
    with np.errstate(over="ignore"):
        assert np.isinf(h(Z)[1])


def test_default_optimization_does_not_hide_option_errors():
    x = tl.tensor("x", "f64", ())
    with pytest.raises(tl.TlalocError, match="unknown property"):
        tl.function([x], tl.exp(x), cost="time + speed")
    with pytest.raises(tl.TlalocError, match="limits"):
        tl.function([x], tl.exp(x), limits="iters=banana")
