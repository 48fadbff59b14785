"""cost= in the Python package: the objective reaches the optimizer, the
stats report the extracted program's properties, errors are exceptions."""
import os
import sys

import numpy as np
import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.normpath(os.path.join(HERE, "..", "..", "python")))
os.environ.setdefault("TLALOC_PROFILE", os.path.join(HERE, "no-such-profile.txt"))

import tlaloc as tl  # noqa: E402

CHAIN = """(graph m (in A f32 [400 90]) (in B f32 [90 25]) (in C f32 [25 90])
  (out D (matmul (matmul A B) C)))"""


def test_cost_changes_the_program():
    t = tl.from_tg(CHAIN, rules=True, cost="time")
    m = tl.from_tg(CHAIN, rules=True, cost="memory")
    assert "(matmul (matmul A B) C)" in t.optimized_graph
    assert "(matmul A (matmul B C))" in m.optimized_graph
    assert m.stats["peak_bytes_program"] < t.stats["peak_bytes_program"]
    assert t.stats["program"]["time"] < m.stats["program"]["time"]
    assert t.stats["cost"] == "time" and m.stats["extract"] == "dag"
    rng = np.random.default_rng(1)
    a, b, c = (rng.standard_normal(s).astype(np.float32) for s in ((400, 90), (90, 25), (25, 90)))
    want = (a.astype(np.float64) @ b @ c)
    np.testing.assert_allclose(t(a, b, c), want, rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(m(a, b, c), want, rtol=1e-4, atol=1e-4)


def test_default_cost_is_reported():
    z = tl.tensor("z", "f64", ("n",))
    f = tl.function([z], tl.log(1 + tl.exp(z)), rules=True)
    assert "softplus" in f.optimized_graph
    assert f.stats["cost"] == "time + accuracy + 1e-8*code"
    assert f.stats["program"]["accuracy"] == 0


def test_cost_errors():
    x = tl.tensor("x", "f64", ())
    with pytest.raises(ValueError, match="cost="):
        tl.function([x], x, cost="time", rules=False)
    with pytest.raises(tl.TlalocError, match="column 8: unknown property 'speed'"):
        tl.function([x], tl.exp(x), rules=True, cost="time + speed")
    with pytest.raises(TypeError):
        tl.function([x], tl.exp(x), rules=True, cost=3)


def test_function_takes_plugins():
    """tl.function(plugins=[...]) loads cost plugins into the optimizer: the
    energy plugin's property can be the objective and is reported."""
    plugin = os.environ.get("TLALOC_ENERGY_PLUGIN")
    if not plugin:
        pytest.skip("TLALOC_ENERGY_PLUGIN not set (meson sets it)")
    a = tl.tensor("A", "f32", (400, 90))
    b = tl.tensor("B", "f32", (90, 25))
    c = tl.tensor("C", "f32", (25, 90))
    f = tl.function([a, b, c], (a @ b) @ c, plugins=[plugin], cost="energy")
    assert f.stats["cost"] == "energy" and f.stats["program"]["energy"] > 0
    with pytest.raises(tl.TlalocError, match="unknown property 'energy'"):
        tl.function([a, b, c], (a @ b) @ c, cost="energy")
    with pytest.raises(tl.TlalocError):
        tl.function([a, b, c], (a @ b) @ c, plugins=[os.path.join(HERE, "no-such.so")])
    with pytest.raises(ValueError, match="plugins="):
        tl.function([a, b, c], (a @ b) @ c, plugins=[plugin], rules=False)
