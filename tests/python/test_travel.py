"""Functions that travel: a compiled Function pickles (its optimized graph
and options; the other side compiles it again) and runs as a task of
dask.distributed on chunks of a dask array (examples/dask/map_blocks.py)."""
import os
import pickle
import subprocess
import sys

import numpy as np
import pytest

import tlaloc as tl

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.normpath(os.path.join(HERE, "..", ".."))


def _softplus_fn(**kw):
    x = tl.tensor("x", "f32", ("n",))
    return tl.function([x], tl.log(1 + tl.exp(x)), **kw)


def test_pickle_round_trip_runs_the_optimized_graph():
    f = _softplus_fn()
    g = pickle.loads(pickle.dumps(f))
    x = np.array([-100, -1, 0, 1, 100, 1000], np.float32)
    want = np.logaddexp(0, x.astype(np.float64)).astype(np.float32)
    np.testing.assert_allclose(g(x), want, rtol=1e-6)
    np.testing.assert_array_equal(g(x), f(x))
    assert g.graph == f.optimized_graph  # the optimized graph travelled
    assert g.stats["optimized"] and g.stats["unpickled"]
    assert "softplus" in g.graph  # not re-derived from the naive form
    assert g.engine == "llvm"


def test_pickle_keeps_outputs_engine_and_bound_inputs():
    a = tl.tensor("a", "f64", (3,))
    b = tl.tensor("b", "f64", (3,))
    f = tl.function([a, b], [a + b, a * b], engine="interp", rules=False)
    g = pickle.loads(pickle.dumps(f))
    assert g.engine == "interpreter" and g.output_names == f.output_names
    x, y = np.arange(3.0), np.array([2.0, -1.0, 0.5])
    for got, want in zip(g(x, y), [x + y, x * y]):
        np.testing.assert_array_equal(got, want)
    # bound inputs (as ONNX initializers are) travel with their values
    h = tl.from_tg("(graph g (in x f32 [2]) (in w f32 [2]) (out y (mul x w)))",
                   bound={"w": np.array([3, 4], np.float32)})
    h2 = pickle.loads(pickle.dumps(h))
    np.testing.assert_array_equal(h2(np.array([1, 2], np.float32)), [3, 8])


def test_single_output_stays_single():
    g = pickle.loads(pickle.dumps(_softplus_fn(rules=False)))
    out = g(np.zeros(4, np.float32))
    assert isinstance(out, np.ndarray) and out.shape == (4,)


def test_a_function_with_shared_state_refuses_to_pickle():
    w = tl.shared(np.ones(3, np.float32), name="w")
    x = tl.tensor("x", "f32", (3,))
    f = tl.function([x], x * w, updates=[(w, w + x)])
    with pytest.raises(TypeError, match="shared variables"):
        pickle.dumps(f)


def test_dask_distributed_map_blocks():
    try:
        import dask.array  # noqa: F401
        import distributed  # noqa: F401
    except ImportError as e:
        pytest.skip("dask.distributed not installed (python3-dask, python3-distributed): %s" % e)
    env = dict(os.environ)
    env["PYTHONPATH"] = os.path.join(ROOT, "python") + os.pathsep + env.get("PYTHONPATH", "")
    r = subprocess.run([sys.executable, os.path.join(ROOT, "examples", "dask", "map_blocks.py"),
                        "400000", "50000"], capture_output=True, text=True, env=env, timeout=300)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "agrees with numpy" in r.stdout
