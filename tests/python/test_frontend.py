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


@pytest.mark.parametrize("engine", ["llvm", "interp"])
def test_run_time_error_names_the_users_line(engine):
    x = tl.tensor("x", "f64", (3,))
    i = tl.tensor("i", "i64", (2,))
    picked = tl.take(tl.exp(x), i)  # MARK-bad-take
    f = tl.function([x, i], tl.sum(picked) * 2, engine=engine)
    assert f(np.zeros(3), np.array([0, 2])) == 4.0
    with pytest.raises(tl.TlalocError) as ei:
        f(np.zeros(3), np.array([0, 5]))
    msg = str(ei.value)
    assert "%s:%d:" % (THIS, _line_of("MARK-bad-take")) in msg, msg
    assert "picked = tl.take" in msg and "out of bounds" in msg
    assert ei.value.op == "take" and ei.value.var is picked


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


# ---- numpy coverage ---------------------------------------------------------------

RNG = np.random.default_rng(7)
M = RNG.standard_normal((4, 6))
M[1, 2] = M[1, 4] = M[1].max() + 1  # ties: numpy takes the first
A = RNG.standard_normal((6, 3))
B3 = RNG.standard_normal((2, 3, 4))
C3 = RNG.standard_normal((2, 4, 5))
D3 = RNG.standard_normal((3, 4, 5))
E3 = RNG.standard_normal((4, 5, 2))
I1 = np.array([[0, 5, 2], [1, 1, 1], [5, 4, 3], [-1, 0, 2]])
I0 = np.array([[0, 3, 2, 1, 1, -4]])

NUMPY_CASES = {
    "arange": (lambda m: m + tl.arange(6), lambda M: M + np.arange(6)),
    "arange-float": (lambda m: m * tl.arange(0.5, 3.5, 0.5), lambda M: M * np.arange(0.5, 3.5, 0.5)),
    "eye": (lambda m: m @ tl.eye(6, k=1), lambda M: M @ np.eye(6, k=1)),
    "one_hot": (lambda m: tl.one_hot(tl.argmax(m, 1), 6), lambda M: np.eye(6)[np.argmax(M, 1)]),
    "argmax-0": (lambda m: tl.argmax(m, 0), lambda M: np.argmax(M, 0)),
    "argmax-1-keepdims": (lambda m: tl.argmax(m, 1, keepdims=True),
                          lambda M: np.argmax(M, 1, keepdims=True)),
    "argmax-all": (lambda m: m.argmax(), lambda M: M.argmax()),
    "argmin-1": (lambda m: m.argmin(1), lambda M: M.argmin(1)),
    "argmin-neg-axis": (lambda m: tl.argmin(m, -2), lambda M: np.argmin(M, -2)),
    "cumsum-1": (lambda m: tl.cumsum(m, 1), lambda M: np.cumsum(M, 1)),
    "cumsum-0": (lambda m: m.cumsum(0), lambda M: M.cumsum(0)),
    "cumsum-all": (lambda m: tl.cumsum(m), lambda M: np.cumsum(M)),
    "cumsum-int": (lambda m: tl.cumsum(tl.cast(m * 10, "i32"), 1),
                   lambda M: np.cumsum((M * 10).astype(np.int32), 1)),
    "cumprod-1": (lambda m: tl.cumprod(m, 1), lambda M: np.cumprod(M, 1)),
    "pad": (lambda m: tl.pad(m, ((1, 2), (0, 3)), constant_values=7.0),
            lambda M: np.pad(M, ((1, 2), (0, 3)), constant_values=7.0)),
    "pad-int": (lambda m: tl.pad(m, 1), lambda M: np.pad(M, 1)),
    "clip": (lambda m: tl.clip(m, -0.5, 0.5), lambda M: np.clip(M, -0.5, 0.5)),
    "clip-method": (lambda m: m.clip(None, 0.1), lambda M: M.clip(None, 0.1)),
    "take_along_axis-1": (lambda m: tl.take_along_axis(m, I1, 1),
                          lambda M: np.take_along_axis(M, I1, 1)),
    "take_along_axis-0": (lambda m: tl.take_along_axis(m, I0, 0),
                          lambda M: np.take_along_axis(M, I0, 0)),
    "index-rows": (lambda m: m[[0, 2]], lambda M: M[[0, 2]]),
    "index-cols": (lambda m: m[:, [4, 0]], lambda M: M[:, [4, 0]]),
    "index-numpy-neg": (lambda m: m[np.array([3, -1])], lambda M: M[np.array([3, -1])]),
    "index-2d": (lambda m: m[:, np.array([[1, 2], [3, 4]])], lambda M: M[:, np.array([[1, 2], [3, 4]])]),
    "index-var": (lambda m: m[tl.argmax(m, 0)], lambda M: M[np.argmax(M, 0)]),
    "index-mixed": (lambda m: m[1:3, [5, 0, 1]][:, 0], lambda M: M[1:3, [5, 0, 1]][:, 0]),
    "einsum-matmul": (lambda m: tl.einsum("ij,jk->ik", m, A), lambda M: np.einsum("ij,jk->ik", M, A)),
    "einsum-implicit": (lambda m: tl.einsum("ij,jk", m, A), lambda M: np.einsum("ij,jk", M, A)),
    "einsum-transpose": (lambda m: tl.einsum("ij->ji", m), lambda M: np.einsum("ij->ji", M)),
    "einsum-sum": (lambda m: tl.einsum("ij->", m), lambda M: np.einsum("ij->", M)),
    "einsum-rowdot": (lambda m: tl.einsum("ij,ij->i", m, m), lambda M: np.einsum("ij,ij->i", M, M)),
    "einsum-broadcast": (lambda m: tl.einsum("ij,kj->ikj", m, m), lambda M: np.einsum("ij,kj->ikj", M, M)),
    "einsum-batch": (lambda m: tl.einsum("bij,bjk->kib", B3, C3) + tl.sum(m) * 0,
                     lambda M: np.einsum("bij,bjk->kib", B3, C3)),
    "einsum-grouped": (lambda m: tl.einsum("ijk,jkl->il", D3, E3) + tl.sum(m) * 0,
                       lambda M: np.einsum("ijk,jkl->il", D3, E3)),
    "einsum-three": (lambda m: tl.einsum("ij,jk,kl->il", m, A, A.T),
                     lambda M: np.einsum("ij,jk,kl->il", M, A, A.T)),
    "einsum-outer": (lambda m: tl.einsum("i,j->ij", m[0], m[1]), lambda M: np.einsum("i,j->ij", M[0], M[1])),
}


@pytest.mark.parametrize("name", sorted(NUMPY_CASES))
@pytest.mark.parametrize("engine", ["llvm", "interp"])
def test_numpy_coverage(name, engine):
    build, ref = NUMPY_CASES[name]
    m = tl.tensor("M", "f64", (4, 6))
    got = tl.function([m], build(m), engine=engine)(M)
    want = ref(M)
    assert got.shape == np.shape(want) and got.dtype == np.asarray(want).dtype
    np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-12)


def test_argmax_takes_the_first_nan_as_numpy():
    v = tl.tensor("v", "f64", (5,))
    f = tl.function([v], [tl.argmax(v), tl.argmin(v)])
    for a in ([1.0, np.nan, 3.0, np.nan, 0.0], [2.0, 2.0, 1.0, 0.0, 2.0]):
        a = np.array(a)
        assert [int(r) for r in f(a)] == [np.argmax(a), np.argmin(a)]


def test_boolean_masks_are_refused_with_a_hint():
    m = tl.tensor("M", "f64", (4, 6))
    for mask in (m > 0, np.array([True, False, True, True]), [True, False, True, False], True):
        with pytest.raises(IndexError, match=r"boolean mask.*tl\.where"):
            m[mask]


def test_index_errors():
    m = tl.tensor("M", "f64", (4, 6))
    with pytest.raises(IndexError, match="out of bounds"):
        m[4]
    with pytest.raises(IndexError, match="one integer-array index"):
        m[[0, 1], [1, 2]]
    with pytest.raises(IndexError, match="integers"):
        m[[0.5, 1.0]]
    with pytest.raises(NotImplementedError, match="repeated"):
        tl.einsum("ii->i", m)


# the symbolic-shape cases: X of shape (n, d)
V = np.arange(12, dtype=np.float32).reshape(3, 4)
SYMBOLIC_OK = {
    "X[0]": (lambda X: X[0], lambda V: V[0], "f32[d]"),
    "X[-1]": (lambda X: X[-1], lambda V: V[-1], "f32[d]"),
    "X[:, 0]": (lambda X: X[:, 0], lambda V: V[:, 0], "f32[n]"),
    "X[::-1]": (lambda X: X[::-1], lambda V: V[::-1], "f32[n d]"),
    "X[[0, -1]]": (lambda X: X[[0, -1]], lambda V: V[[0, -1]], "f32[2 d]"),
    "sum(X) / n": (lambda X: tl.sum(X) / X.shape[0], lambda V: np.float32(V.sum() / V.shape[0]),
                   "f32[]"),
    "d * X": (lambda X: X.shape[1] * X, lambda V: V.shape[1] * V, "f32[n d]"),
    "size": (lambda X: tl.size(X), lambda V: np.int64(V.size), "i64[]"),
    "reshape (-1, d)": (lambda X: X[:, None].reshape((-1, "d")), lambda V: V, "f32[n d]"),
    "einsum rowdot": (lambda X: tl.einsum("nd,nd->n", X, X), lambda V: np.einsum("nd,nd->n", V, V),
                      "f32[n]"),
    "einsum gram": (lambda X: tl.einsum("nd,md->nm", X, X), lambda V: V @ V.T, "f32[n n]"),
    # derived dims: sizes computed from the symbols (checked when bound)
    "X[:, 1:]": (lambda X: X[:, 1:], lambda V: V[:, 1:], "f32[n (+ d -1)]"),
    "X[:, -2:]": (lambda X: X[:, -2:], lambda V: V[:, -2:], "f32[n 2]"),
    "X[:, ::2]": (lambda X: X[:, ::2], lambda V: V[:, ::2], "f32[n (ceildiv d 2)]"),
    "X[:, 1:][:, ::-2]": (lambda X: X[:, 1:][:, ::-2], lambda V: V[:, 1:][:, ::-2],
                               "f32[n (ceildiv (+ d -1) 2)]"),
    "X.reshape((-1,))": (lambda X: X.reshape((-1,)), lambda V: V.reshape(-1), "f32[(* d n)]"),
    "reshape back": (lambda X: X.reshape((-1,)).reshape(("n", "d")), lambda V: V, "f32[n d]"),
    "concatenate": (lambda X: tl.concatenate([X, X], 0), lambda V: np.concatenate([V, V], 0),
                    "f32[(* 2 n) d]"),
    "concatenate parts": (lambda X: tl.concatenate([X[:, 1:], X[:, :1]], 1),
                          lambda V: np.concatenate([V[:, 1:], V[:, :1]], 1), "f32[n d]"),
    "pad": (lambda X: tl.pad(X, ((0, 0), (1, 2))), lambda V: np.pad(V, ((0, 0), (1, 2))),
            "f32[n (+ d 3)]"),
    "einsum grouped": (lambda X: tl.einsum("nd,nd->", X, X), lambda V: np.einsum("nd,nd->", V, V),
                       "f32[]"),
    # index ranges over symbolic dims: the IR's iota
    "argmax": (lambda X: tl.argmax(X, 1), lambda V: np.argmax(V, 1), "i64[n]"),
    "argmin axis 0": (lambda X: tl.argmin(-X, 0), lambda V: np.argmin(-V, 0), "i64[d]"),
    "take_along_axis": (lambda X: tl.take_along_axis(X, tl.argmax(X, 1, keepdims=True), 1),
                        lambda V: np.take_along_axis(V, np.argmax(V, 1)[:, None], 1), "f32[n 1]"),
    "arange": (lambda X: tl.arange(X.shape[0]), lambda V: np.arange(V.shape[0]), "i64[n]"),
    "arange step": (lambda X: tl.arange(1, X.shape[1], 2), lambda V: np.arange(1, V.shape[1], 2),
                    "i64[(ceildiv (+ d -1) 2)]"),
    "eye": (lambda X: tl.eye(X.shape[1], dtype="f32"), lambda V: np.eye(V.shape[1], dtype=np.float32),
            "f32[d d]"),
    "one_hot of argmax": (lambda X: tl.one_hot(tl.argmax(X, 0), 3, "f32"),
                          lambda V: np.eye(3, dtype=np.float32)[np.argmax(V, 0)] * (np.argmax(V, 0) < 3)[:, None],
                          "f32[d 3]"),
}


@pytest.mark.parametrize("name", sorted(SYMBOLIC_OK))
def test_symbolic_shapes_that_work(name):
    build, ref, typ = SYMBOLIC_OK[name]
    X = tl.tensor("X", "f32", ("n", "d"))
    v = build(X)
    assert repr(v).endswith(" %s>" % typ)
    for W in (V, np.ones((1, 7), np.float32)):
        got = tl.function([X], v)(W)
        want = ref(W)
        assert got.shape == np.shape(want) and got.dtype == np.asarray(want).dtype
        np.testing.assert_allclose(got, want, rtol=1e-6)


SYMBOLIC_REFUSED = {
    "cumsum": lambda X: tl.cumsum(X, 0),
    "reshape to a size": lambda X: X.reshape((X.shape[0] * 2, -1)),
}


@pytest.mark.parametrize("name", sorted(SYMBOLIC_REFUSED))
def test_symbolic_index_ranges_are_refused_clearly(name):
    X = tl.tensor("X", "f32", ("n", "d"))
    with pytest.raises(tl.SymbolicSizeError, match="doubling steps|not a shape"):
        SYMBOLIC_REFUSED[name](X)


def test_derived_dims_are_checked_when_bound():
    X = tl.tensor("X", "f32", ("n", "d"))
    f = tl.function([X], [X[:, 2:], X[:, :3]])
    a, b = f(np.ones((2, 5), np.float32))
    assert a.shape == (2, 3) and b.shape == (2, 3)
    # numpy would clamp; a graph compiled for any d checks instead
    with pytest.raises(tl.TlalocError, match=r"\(\+ d -3\)|\(\+ d -2\)"):
        f(np.ones((2, 1), np.float32))


def test_distinct_symbols_equal_when_bound():
    x = tl.tensor("x", "f64", ("n",))
    y = tl.tensor("y", "f64", ("m",))
    f = tl.function([x, y], x * y)
    np.testing.assert_array_equal(f(np.arange(3.0), np.arange(3.0)), np.arange(3.0) ** 2)
    with pytest.raises(tl.TlalocError, match="must be >= 0"):
        f(np.arange(3.0), np.arange(4.0))
    # sizes that can never be equal are refused when the graph is built
    with pytest.raises(tl.TlalocError, match="cannot broadcast"):
        tl.function([x], x[1:] * x)


def test_derived_dims_through_gradients():
    X = tl.tensor("X", "f64", ("n", "d"))
    loss = tl.sum(tl.exp(tl.concatenate([X[:, 1:], X[:, :1]], 1)) * X)
    g, = tl.grad(loss, [X])
    V = np.random.default_rng(0).standard_normal((3, 5))
    got = tl.function([X], g)(V)
    R = np.concatenate([V[:, 1:], V[:, :1]], 1)
    want = np.exp(R) + np.concatenate([(np.exp(R) * V)[:, -1:], (np.exp(R) * V)[:, :-1]], 1)
    np.testing.assert_allclose(got, want, rtol=1e-12)


# ---- shared variables and updates ----------------------------------------------------

@pytest.mark.parametrize("engine", ["llvm", "interp"])
def test_shared_values_and_updates(engine):
    w = tl.shared(np.zeros(3), name="w")
    assert repr(w) == "<tlaloc.shared w f64[3]>" and w.shape == (3,)
    x = tl.tensor("x", "f64", (3,))
    step = tl.function([x], tl.sum(w * x), updates=[(w, w + x)], engine=engine)
    assert step(np.ones(3)) == 0.0  # the output reads the old value
    np.testing.assert_array_equal(w.get_value(), [1, 1, 1])
    assert step(np.array([1.0, 2.0, 3.0])) == 6.0
    np.testing.assert_array_equal(w.get_value(), [2, 3, 4])
    # a function without updates sees set_value
    read = tl.function([x], x + w, engine=engine)
    w.set_value([10, 20, 30])
    np.testing.assert_array_equal(read(np.zeros(3)), [10, 20, 30])
    v = w.get_value()
    v[0] = -1  # a copy
    assert w.get_value()[0] == 10


def test_updates_are_simultaneous_and_after_the_outputs():
    a = tl.shared(np.array([1.0, 2.0]), name="a")
    b = tl.shared(np.array([5.0, 6.0]), name="b")
    swap = tl.function([], [a, b * 2], updates=[(a, b), (b, a)])
    out_a, out_b2 = swap()
    np.testing.assert_array_equal(out_a, [1, 2])
    np.testing.assert_array_equal(out_b2, [10, 12])
    np.testing.assert_array_equal(a.get_value(), [5, 6])
    np.testing.assert_array_equal(b.get_value(), [1, 2])
    swap()
    np.testing.assert_array_equal(a.get_value(), [1, 2])
    # a failing call updates nothing
    n = tl.shared(np.int64(0), name="count")
    x = tl.tensor("x", "i64", ("k",))
    f = tl.function([x], tl.take(x, 3), updates=[(n, n + 1)])
    assert f(np.arange(5)) == 3 and n.get_value() == 1
    with pytest.raises(tl.TlalocError):
        f(np.arange(2))
    assert n.get_value() == 1


def test_sgd_with_shared_parameters_matches_numpy():
    rng = np.random.default_rng(3)
    X = rng.standard_normal((64, 5))
    y = (X @ np.array([1.0, -2.0, 0.5, 0.0, 3.0]) > 0).astype(np.float64)
    w = tl.shared(np.zeros(5), name="w")
    b = tl.shared(0.0, name="b")
    xs = tl.tensor("X", "f64", ("n", 5))
    ys = tl.tensor("y", "f64", ("n",))
    z = xs @ w + b
    loss = tl.mean(tl.softplus(z) - ys * z)
    gw, gb = tl.grad(loss, [w, b])
    train = tl.function([xs, ys], loss, updates=[(w, w - 0.5 * gw), (b, b - 0.5 * gb)])
    W, B = np.zeros(5), 0.0
    losses = []
    for _ in range(20):
        losses.append(train(X, y))
        zz = X @ W + B
        p = 1 / (1 + np.exp(-zz))
        W, B = W - 0.5 * X.T @ (p - y) / len(y), B - 0.5 * np.mean(p - y)
    np.testing.assert_allclose(w.get_value(), W, rtol=1e-10)
    np.testing.assert_allclose(b.get_value(), B, rtol=1e-10)
    assert losses[-1] < 0.5 * losses[0]


def test_shared_errors():
    w = tl.shared(np.zeros((2, 3), np.float32), name="w2")
    x = tl.tensor("x", "f32", (2, 3))
    with pytest.raises(TypeError, match="cannot be an input"):
        tl.function([x, w], x + w)
    with pytest.raises(TypeError, match="type f32"):
        tl.function([x], x, updates=[(w, tl.sum(x))])
    with pytest.raises(TypeError, match="type f32"):
        tl.function([x], x, updates=[(w, tl.cast(x, "f64"))])
    with pytest.raises(ValueError, match="updated twice"):
        tl.function([x], x, updates=[(w, x), (w, x * 2)])
    with pytest.raises(TypeError, match="tl.shared"):
        tl.function([x], x, updates=[(x, x)])
    with pytest.raises(ValueError, match="shape"):
        w.set_value(np.zeros(3))
    w.set_value(np.ones((2, 3)))  # converted to f32
    assert w.get_value().dtype == np.float32


def test_import_loads_none_of_the_optional_modules():
    import subprocess
    import sys
    code = ("import sys, tlaloc; print(sorted(m for m in sys.modules if m in "
            "('tlaloc.state', 'tlaloc.random', 'tlaloc.numpy_ops', 'numpy')))")
    env = dict(os.environ, PYTHONPATH=os.path.join(os.path.dirname(tl.__file__), ".."))
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env,
                         check=True).stdout.strip()
    assert out == "[]"
