"""The graph builder's conveniences: Var repr, errors that name the user's
line, compile options passed through, numpy coverage, shared state."""
import os

import numpy as np
import pytest

import tlaloc as tl

THIS = os.path.abspath(__file__)


def _line_of(marker):
    with open(THIS) as fh:
        for k, line in enumerate(fh, 1):
            if marker in line and "_line_of" not in line:
                return k
    raise AssertionError(marker)


# ---- repr and located errors ------------------------------------------------

def test_repr_shows_op_dtype_and_shape():
    x = tl.tensor("x", "f32", ("n", 10))
    assert repr(x) == "<tlaloc.Var in x f32[n 10]>"
    assert repr(tl.sum(x, axis=1)) == "<tlaloc.Var sum f32[n]>"
    assert repr(x @ np.ones((10, 3), np.float32)) == "<tlaloc.Var matmul f32[n 3]>"
    assert repr(tl.cast(x, "i64") > 2) == "<tlaloc.Var gt bool[n 10]>"
    assert repr(tl.as_var(2.5)) == "<tlaloc.Var lit 2.5>"
    bad = x + tl.tensor("y", "f32", (3,))
    r = repr(bad)  # never raises
    assert r.startswith("<tlaloc.Var add: type error:") and "broadcast" in r


def test_compile_error_names_the_users_line():
    x = tl.tensor("x", "f32", ("n", 10))
    y = tl.tensor("y", "f32", (3,))
    h = tl.exp(x)
    z = h + y  # MARK-bad-add
    out = tl.sum(z * 2)
    with pytest.raises(tl.TlalocError) as ei:
        tl.function([x, y], out)
    msg = str(ei.value)
    line = _line_of("MARK-bad-add")
    assert "%s:%d:" % (THIS, line) in msg
    assert "z = h + y" in msg and "add" in msg and "broadcast" in msg
    assert ei.value.op == "add" and ei.value.src == (THIS, line) and ei.value.var is z
    # the same error from a shape query
    with pytest.raises(tl.TlalocError) as ei2:
        out.shape
    assert "%s:%d:" % (THIS, line) in str(ei2.value)


def test_error_inside_a_helper_names_the_helper_line():
    def layer(v, w):
        return v @ w  # MARK-helper
    x = tl.tensor("x", "f64", ("n", 4))
    with pytest.raises(tl.TlalocError) as ei:
        tl.function([x], layer(x, np.ones((5, 2))))
    assert "%s:%d:" % (THIS, _line_of("MARK-helper")) in str(ei.value)
    assert ei.value.op == "matmul"


def test_gradient_vars_keep_the_site_of_the_forward_values():
    x = tl.tensor("x", "f64", ("n",))
    y = tl.exp(x)
    g = tl.grad(tl.sum(y), x)
    assert g.src is not None and g.src[0] == THIS


# ---- compile options -----------------------------------------------------------

def _profile(path, **keys):
    with open(path, "w") as fh:
        fh.write("# tlaloc profile 1\n")
        for k, v in keys.items():
            fh.write("%s %s\n" % (k, v))
    return str(path)


def test_profile_reaches_the_cost_model(tmp_path):
    """profile= replaces the stored machine profile: a GEMM rate 10^6 times
    lower makes the same program's predicted time larger."""
    a = tl.tensor("A", "f32", (400, 90))
    b = tl.tensor("B", "f32", (90, 25))
    fast = tl.function([a, b], a @ b, profile=_profile(tmp_path / "fast.txt", gemm_f32=1e12))
    slow = tl.function([a, b], a @ b, profile=_profile(tmp_path / "slow.txt", gemm_f32=1e6))
    assert slow.stats["program"]["time"] > 100 * fast.stats["program"]["time"]
    A = np.ones((400, 90), np.float32)
    B = np.ones((90, 25), np.float32)
    np.testing.assert_array_equal(slow(A, B), A @ B)
    with pytest.raises(tl.TlalocError, match="no such file"):
        tl.function([a, b], a @ b, profile=str(tmp_path / "missing.txt"))
    with pytest.raises(tl.TlalocError, match="unknown key 'bogus'"):
        tl.function([a, b], a @ b, profile=_profile(tmp_path / "bad.txt", bogus=1))
    with pytest.raises(ValueError, match="profile="):
        tl.function([a, b], a @ b, profile=str(tmp_path / "fast.txt"), rules=False)


def test_threads_are_passed_to_the_compiler():
    x = tl.tensor("x", "f64", ("n",))
    X = np.linspace(-3, 3, 1 << 20)
    want = np.tanh(X) * 2 + 1
    for t in (1, 3):
        f = tl.function([x], tl.tanh(x) * 2 + 1, threads=t)
        np.testing.assert_allclose(f(X), want, rtol=1e-12, atol=1e-15)
    for bad in (-1, 1.5, True):
        with pytest.raises(ValueError, match="threads="):
            tl.function([x], x + 1, threads=bad)
