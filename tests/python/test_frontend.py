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
