"""tl.cond, tl.while_loop, tl.fori_loop, tl.scan, tl.ifelse and @tl.fn,
against the same loops written in numpy, on the compiled (staged) engine
and on the interpreter."""
import numpy as np
import pytest

import tlaloc as tl

ENGINES = ["llvm", "interp"]


def fn(inputs, outputs, engine):
    return tl.function(inputs, outputs, engine=engine)


@pytest.mark.parametrize("engine", ENGINES)
def test_while_loop_newton_sqrt(engine):
    x = tl.tensor("x", "f64", ("n",))
    r = tl.while_loop(lambda y: tl.max(tl.abs(y * y - x) / x) > 1e-13,
                      lambda y: 0.5 * (y + x / y), x, max_iters=200)
    f = fn([x], r, engine)
    xv = np.exp(np.random.default_rng(0).uniform(np.log(1e-6), np.log(1e6), 100))
    y = xv.copy()
    while np.max(np.abs(y * y - xv) / xv) > 1e-13:
        y = 0.5 * (y + xv / y)
    np.testing.assert_array_equal(f(xv), y)
    assert "(loop " in f.graph and "(func " in f.graph  # a real loop, not unrolled


@pytest.mark.parametrize("engine", ENGINES)
def test_cond_runs_only_the_branch_taken(engine):
    p = tl.scalar("p", "bool")
    x = tl.tensor("x", "f64", ("n",))
    # the untaken branch indexes out of range: it must never run
    bad = lambda a: tl.take(a, tl.full(("n",), 100, "i64"))  # noqa: E731
    f = fn([p, x], tl.cond(p, lambda a: tl.sqrt(a), bad, x), engine)
    g = fn([p, x], tl.cond(p, bad, lambda a: tl.log(a), x), engine)
    xv = np.array([1.0, 4.0, 9.0])
    np.testing.assert_allclose(f(True, xv), np.sqrt(xv), rtol=1e-15)
    np.testing.assert_allclose(g(False, xv), np.log(xv), rtol=1e-15)
    with pytest.raises(tl.TlalocError, match="out of (range|bounds)"):
        f(False, xv)
    # tuples of results, closures over outer values (lifted as operands)
    w = tl.tensor("w", "f64", ("n",))
    s, d = tl.cond(tl.sum(x) > 0, lambda a: (a + w, a - w), lambda a: (a * w, a / w), x)
    h = fn([x, w], [s, d], engine)
    wv = np.array([2.0, 3.0, 4.0])
    for xs in (xv, -xv):
        got = h(xs, wv)
        want = (xs + wv, xs - wv) if xs.sum() > 0 else (xs * wv, xs / wv)
        np.testing.assert_allclose(got[0], want[0], rtol=1e-15)
        np.testing.assert_allclose(got[1], want[1], rtol=1e-15)


@pytest.mark.parametrize("engine", ENGINES)
def test_ifelse_values_are_lazy(engine):
    p = tl.scalar("p", "bool")
    x = tl.tensor("x", "f64", ("n",))
    out = tl.ifelse(p, tl.sqrt(x), tl.take(x, tl.full(("n",), 100, "i64")))
    f = fn([p, x], out, engine)
    xv = np.array([1.0, 4.0])
    np.testing.assert_array_equal(f(True, xv), np.sqrt(xv))
    with pytest.raises(tl.TlalocError):
        f(False, xv)


@pytest.mark.parametrize("engine", ENGINES)
def test_scan_cumsum_and_rnn(engine):
    xs = tl.tensor("xs", "f32", ("t", "k"))
    c0 = tl.tensor("c0", "f32", ("k",))
    last, sums = tl.scan(lambda c, x: (c + x, c + x), c0, xs)
    f = fn([c0, xs], [last, sums], engine)
    xv = np.random.default_rng(1).normal(size=(9, 4)).astype(np.float32)
    got_last, got = f(np.zeros(4, np.float32), xv)
    np.testing.assert_array_equal(got, np.cumsum(xv, axis=0, dtype=np.float32))
    np.testing.assert_array_equal(got_last, np.cumsum(xv, axis=0, dtype=np.float32)[-1])
    # zero steps
    e_last, e = f(np.ones(4, np.float32), np.zeros((0, 4), np.float32))
    assert e.shape == (0, 4)
    np.testing.assert_array_equal(e_last, np.ones(4, np.float32))
    # an RNN: h = tanh(x W + h U + b), the weights closed over
    T, B, D, H = 6, 3, 4, 5
    X = tl.tensor("X", "f64", ("t", "b", "d"))
    h0 = tl.tensor("h0", "f64", ("b", "h"))
    W = tl.tensor("W", "f64", ("d", "h"))
    U = tl.tensor("U", "f64", ("h", "h"))
    bias = tl.tensor("bias", "f64", ("h",))

    def cell(h, x):
        h2 = tl.tanh(x @ W + h @ U + bias)
        return h2, tl.sum(h2 * h2, axis=1)

    hT, ys = tl.scan(cell, h0, X)
    g = fn([X, h0, W, U, bias], [hT, ys], engine)
    rng = np.random.default_rng(2)
    Xv, hv = rng.normal(size=(T, B, D)), rng.normal(size=(B, H))
    Wv, Uv, bv = rng.normal(size=(D, H)) * 0.5, rng.normal(size=(H, H)) * 0.5, rng.normal(size=H)
    h, want = hv, []
    for t in range(T):
        h = np.tanh(Xv[t] @ Wv + h @ Uv + bv)
        want.append((h * h).sum(axis=1))
    got_h, got_ys = g(Xv, hv, Wv, Uv, bv)
    np.testing.assert_allclose(got_h, h, rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(got_ys, np.array(want), rtol=1e-12)


@pytest.mark.parametrize("engine", ENGINES)
def test_fori_loop_and_nesting(engine):
    x = tl.tensor("x", "f64", ("n",))
    f = fn([x], tl.fori_loop(0, 5, lambda i, v: v * 2 + tl.cast(i, "f64"), x), engine)
    xv = np.array([1.0, -2.0, 0.5])
    want = xv.copy()
    for i in range(5):
        want = want * 2 + i
    np.testing.assert_array_equal(f(xv), want)
    # a while loop inside a fori body: the inner trip count depends on the outer counter
    def outer(i, v):
        _, w = tl.while_loop(lambda s: s[0] < i, lambda s: (s[0] + 1, s[1] + 1.0), (tl.constant(np.int64(0)), v),
                             max_iters=10)
        return w
    g = fn([x], tl.fori_loop(0, 4, outer, x), engine)
    np.testing.assert_array_equal(g(xv), xv + (0 + 1 + 2 + 3))
    # zero trips: the state comes back unchanged
    z = fn([x], tl.fori_loop(3, 1, lambda i, v: v + 1.0, x), engine)
    np.testing.assert_array_equal(z(xv), xv)


@pytest.mark.parametrize("engine", ENGINES)
def test_max_iters_is_a_run_time_error(engine):
    x = tl.tensor("x", "f64", ("n",))
    f = fn([x], tl.while_loop(lambda v: tl.sum(v) > -1.0, lambda v: v + 1.0, x, max_iters=7), engine)
    with pytest.raises(tl.TlalocError, match="did not end within its :max of 7 iterations"):
        f(np.zeros(2))


def test_fn_is_one_function_called_from_three_places():
    @tl.fn
    def sq1(a):
        return a * a + 1.0

    x = tl.tensor("x", "f64", ("n",))
    out = sq1(x) + sq1(-x) + sq1(sq1(x))
    f = tl.function([x], out)
    assert f.graph.count("(func ") == 1 and f.graph.count(":fn sq1") == 4
    xv = np.array([0.5, -3.0])
    s = xv * xv + 1
    np.testing.assert_allclose(f(xv), 2 * s + s * s + 1, rtol=1e-15)
    # another shape: another trace of the same Python function
    m = tl.tensor("m", "f32", ("a", "b"))
    g = tl.function([m], sq1(m))
    np.testing.assert_allclose(g(np.ones((2, 3), np.float32)), np.full((2, 3), 2.0, np.float32))


def test_structure_errors():
    x = tl.tensor("x", "f64", ("n",))
    with pytest.raises(ValueError, match="different structures"):
        tl.cond(tl.sum(x) > 0, lambda a: (a, a), lambda a: a, x)
    with pytest.raises(ValueError, match="state's structure"):
        tl.while_loop(lambda s: tl.sum(s[0]) > 0, lambda s: s[0], (x, x))
    with pytest.raises(ValueError, match="scalar"):
        tl.cond(x > 0, lambda a: a, lambda a: a, x)
    # types that differ between branches: the C library names both functions
    with pytest.raises(tl.TlalocError, match="the branches disagree"):
        tl.function([x], tl.cond(tl.sum(x) > 0, lambda a: a, lambda a: tl.cast(a, "f32"), x))


torch = pytest.importorskip("torch")


def _fd(f, args, k, eps=1e-6):
    """Central finite differences of scalar f with respect to args[k]."""
    a = [np.array(v, dtype=np.float64) for v in args]
    g = np.zeros_like(a[k])
    for i in np.ndindex(a[k].shape):
        up = [v.copy() for v in a]
        dn = [v.copy() for v in a]
        up[k][i] += eps
        dn[k][i] -= eps
        g[i] = (f(*up) - f(*dn)) / (2 * eps)
    return g


@pytest.mark.parametrize("engine", ENGINES)
def test_grad_through_cond_call_scan_fori_against_pytorch(engine):
    x = tl.tensor("x", "f64", ("n",))
    W = tl.tensor("W", "f64", ("n", "n"))
    xs = tl.tensor("xs", "f64", ("t", "n"))

    @tl.fn
    def layer(h, w):
        return tl.tanh(h @ w)

    def cell(h, xt):
        h2 = layer(h, W) + xt
        return h2, tl.sum(tl.sin(h2))

    hT, ys = tl.scan(cell, x, xs)
    c = tl.cond(tl.sum(x) > 0, lambda a: tl.exp(a) * hT, lambda a: a * a - hT, x)
    v = tl.fori_loop(0, 3, lambda i, v: tl.sin(v) * layer(v, W), x)
    loss = tl.sum(c) + tl.sum(ys) + tl.sum(v * v)
    gx, gW, gxs = tl.grad(loss, [x, W, xs])
    f = tl.function([x, W, xs], [loss, gx, gW, gxs], engine=engine)
    rng = np.random.default_rng(3)
    for sign in (1.0, -1.0):
        xv = sign * np.abs(rng.normal(size=3))
        Wv, xsv = rng.normal(size=(3, 3)) * 0.5, rng.normal(size=(4, 3))
        got = f(xv, Wv, xsv)
        tx, tW, txs = (torch.tensor(a, requires_grad=True) for a in (xv, Wv, xsv))
        h, tot = tx, 0
        for t in range(4):
            h = torch.tanh(h @ tW) + txs[t]
            tot = tot + torch.sin(h).sum()
        cc = torch.exp(tx) * h if tx.sum() > 0 else tx * tx - h
        vv = tx
        for i in range(3):
            vv = torch.sin(vv) * torch.tanh(vv @ tW)
        L = cc.sum() + tot + (vv * vv).sum()
        L.backward()
        np.testing.assert_allclose(got[0], L.item(), rtol=1e-13)
        for a, b in zip(got[1:], (tx.grad, tW.grad, txs.grad)):
            np.testing.assert_allclose(a, b.numpy(), rtol=1e-11, atol=1e-13)
        # and against finite differences of tlaloc's own forward value
        fwd = tl.function([x, W, xs], loss, engine=engine)
        np.testing.assert_allclose(got[2], _fd(fwd, (xv, Wv, xsv), 1), rtol=1e-6, atol=1e-8)


def test_grad_of_grad_through_scan_against_pytorch():
    x = tl.tensor("x", "f64", ("n",))
    xs = tl.tensor("xs", "f64", ("t", "n"))
    hT, ys = tl.scan(lambda h, xt: (tl.sin(h * xt), tl.sum(h * h * xt)), x, xs)
    loss = tl.sum(hT) + tl.sum(ys)
    gx = tl.grad(loss, x)
    u = tl.tensor("u", "f64", ("n",))
    hv = tl.grad(tl.sum(gx * u), x)  # a Hessian-vector product
    f = tl.function([x, xs, u], hv)
    rng = np.random.default_rng(4)
    xv, xsv, uv = rng.normal(size=3), rng.normal(size=(5, 3)), rng.normal(size=3)
    tx = torch.tensor(xv, requires_grad=True)
    txs = torch.tensor(xsv)
    h, tot = tx, 0
    for t in range(5):
        tot = tot + (h * h * txs[t]).sum()
        h = torch.sin(h * txs[t])
    L = h.sum() + tot
    (g,) = torch.autograd.grad(L, tx, create_graph=True)
    (hvp,) = torch.autograd.grad((g * torch.tensor(uv)).sum(), tx)
    np.testing.assert_allclose(f(xv, xsv, uv), hvp.numpy(), rtol=1e-11, atol=1e-13)


@pytest.mark.parametrize("engine", ENGINES)
def test_grad_through_while_loop_against_pytorch(engine):
    """A while loop's gradient (tlaloc counts the trips, then replays the
    body from the start for each step back) against PyTorch's autograd of
    the same eager loop, with a closed-over matrix (carried state) and an
    integer counter in the state, and against finite differences."""
    x = tl.tensor("x", "f64", ("n",))
    W = tl.tensor("W", "f64", ("n", "n"))
    y = tl.while_loop(lambda v: tl.sum(v * v) < 20.0, lambda v: v * 1.5 + tl.tanh(v @ W), x, max_iters=100)
    i, z = tl.while_loop(lambda s: s[0] < 4, lambda s: (s[0] + 1, tl.sin(s[1]) * 1.7 + s[1] @ W),
                         (tl.constant(np.int64(0)), x), max_iters=10)
    loss = tl.sum(y * y) + tl.sum(z)
    gx, gW = tl.grad(loss, [x, W])
    f = tl.function([x, W], [loss, gx, gW], engine=engine)
    rng = np.random.default_rng(5)
    for _ in range(3):
        xv, Wv = rng.normal(size=3) * 0.3, rng.normal(size=(3, 3)) * 0.3
        got = f(xv, Wv)
        tx, tW = torch.tensor(xv, requires_grad=True), torch.tensor(Wv, requires_grad=True)
        v = tx
        while (v * v).sum() < 20.0:
            v = v * 1.5 + torch.tanh(v @ tW)
        zz = tx
        for _ in range(4):
            zz = torch.sin(zz) * 1.7 + zz @ tW
        L = (v * v).sum() + zz.sum()
        L.backward()
        np.testing.assert_allclose(got[0], L.item(), rtol=1e-12)
        np.testing.assert_allclose(got[1], tx.grad.numpy(), rtol=1e-10, atol=1e-12)
        np.testing.assert_allclose(got[2], tW.grad.numpy(), rtol=1e-10, atol=1e-12)
        fwd = tl.function([x, W], loss, engine=engine)
        np.testing.assert_allclose(got[1], _fd(fwd, (xv, Wv), 0), rtol=1e-5, atol=1e-7)


def test_grad_through_a_zero_trip_while_loop_is_the_identity():
    x = tl.tensor("x", "f64", ("n",))
    y = tl.while_loop(lambda v: tl.sum(v) > 1e9, lambda v: v * 2.0, x, max_iters=5)
    f = tl.function([x], tl.grad(tl.sum(y * y), x))
    xv = np.array([1.0, -2.0, 3.0])
    np.testing.assert_allclose(f(xv), 2 * xv)


def test_grad_of_grad_through_while_loop_against_pytorch():
    """A Hessian-vector product through a while loop: the gradient's own
    loops (counting, backward, replay) are differentiated in turn."""
    x = tl.tensor("x", "f64", ("n",))
    y = tl.while_loop(lambda v: tl.sum(v * v) < 20.0, lambda v: tl.sin(v) * 1.5 + v, x, max_iters=100)
    gx = tl.grad(tl.sum(y * y * y), x)
    u = tl.tensor("u", "f64", ("n",))
    f = tl.function([x, u], tl.grad(tl.sum(gx * u), x))
    xv, uv = np.array([0.3, -0.2, 0.5]), np.array([1.0, 0.5, -0.3])
    tx = torch.tensor(xv, requires_grad=True)
    v = tx
    while (v * v).sum() < 20.0:
        v = torch.sin(v) * 1.5 + v
    (g,) = torch.autograd.grad((v ** 3).sum(), tx, create_graph=True)
    (h,) = torch.autograd.grad((g * torch.tensor(uv)).sum(), tx)
    np.testing.assert_allclose(f(xv, uv), h.numpy(), rtol=1e-11, atol=1e-12)


@pytest.mark.parametrize("engine", ENGINES + ["gpu-sim"])
def test_while_scan_records_each_trip_against_numpy(engine):
    """A while loop whose trips each give values, stacked: their length is
    the trip count, known only when the loop has run (PyTensor's scan with
    `until`); the stacked values feed more ops; zero trips give empty
    stacks of the right element shape."""
    x = tl.tensor("x", "f64", ("n",))

    def body(v):
        y = 0.5 * (v + x / v)
        return y, (y, tl.max(tl.abs(y * y - x)))

    r, (ys, errs) = tl.while_scan(lambda v: tl.max(tl.abs(v * v - x)) > 1e-9, body, x, max_iters=100)
    assert ys.type[1][1] == "n" and ys.type[1][0] == errs.type[1][0]  # [trips n], [trips]
    f = fn([x], [r, ys, errs, tl.sum(ys, axis=0), tl.mean(errs)], engine) if engine != "gpu-sim" else \
        tl.function([x], [r, ys, errs, tl.sum(ys, axis=0), tl.mean(errs)], device="gpu-sim")
    assert ":stack 2" in f.graph  # a real loop, not unrolled
    for xv in (np.array([2.0, 9.0, 0.25, 100.0]), np.array([3.0, 7.0]), np.array([1.0, 4.0])):
        y, want_ys, want_errs = xv.copy(), [], []
        while np.max(np.abs(y * y - xv)) > 1e-9:
            y = 0.5 * (y + xv / y)
            want_ys.append(y.copy())
            want_errs.append(np.max(np.abs(y * y - xv)))
        want_ys = np.array(want_ys).reshape(len(want_ys), len(xv))
        got = f(xv)
        # (compiled code may contract y * y - x into an fma: errs differ by an ulp of x)
        np.testing.assert_allclose(got[0], y, rtol=1e-15)
        assert got[1].shape == want_ys.shape and got[2].shape == (len(want_errs),)
        np.testing.assert_allclose(got[1], want_ys, rtol=1e-15)
        np.testing.assert_allclose(got[2], np.array(want_errs), rtol=1e-12, atol=1e-13)
        np.testing.assert_allclose(got[3], want_ys.sum(axis=0), rtol=1e-15)
        if want_errs:
            np.testing.assert_allclose(got[4], np.mean(want_errs), rtol=1e-15)
        else:  # no trip (x = 1, 4: exact from the start)
            assert np.isnan(got[4])


@pytest.mark.parametrize("engine", ENGINES)
def test_while_scan_errors(engine):
    x = tl.tensor("x", "f64", ("n",))
    # past :max: a run-time error naming the loop
    r, ys = tl.while_scan(lambda v: tl.sum(v) < 1e9, lambda v: (v * 2.0, v), x, max_iters=5)
    f = fn([x], ys, engine)
    assert f(np.array([1e8])).shape == (4, 1)
    with pytest.raises(tl.TlalocError, match="did not end within its :max of 5"):
        f(np.array([1.0]))
    # the trip count meets an input's dim of the same symbol: they must agree
    t = r.type  # noqa: F841
    sym = ys.type[1][0]
    w = tl.tensor("w", "f64", (sym,))
    g = fn([x, w], tl.add(ys[:, 0], w), engine)
    np.testing.assert_array_equal(g(np.array([1e8]), np.zeros(4)), [1e8, 2e8, 4e8, 8e8])
    with pytest.raises(tl.TlalocError, match="ran 4 trips, but its :trips"):
        g(np.array([1e8]), np.zeros(3))
    # no gradient through it (a scan has one): said, not guessed
    with pytest.raises(Exception, match="per-trip results"):
        tl.function([x], tl.grad(tl.sum(r), x), engine=engine)(np.array([1.0]))


@pytest.mark.parametrize("engine", ENGINES)
def test_jvp_through_control_flow_against_finite_differences(engine):
    """Forward mode (transposition of the VJP) through a while loop, a scan,
    a cond and a tl.fn call: J t against central differences in f64."""
    x = tl.tensor("x", "f64", ("n",))
    t = tl.tensor("t", "f64", ("n",))
    root = tl.while_loop(lambda y: tl.max(tl.abs(y * y - x) / x) > 1e-13, lambda y: 0.5 * (y + x / y), x,
                         max_iters=200)
    _, ys = tl.scan(lambda c, xt: (c * 0.5 + tl.sin(xt), c * xt), x[0] * 0.0, x)
    pw = tl.cond(tl.sum(x) > 0, lambda a: tl.exp(a) * a, lambda a: -a, x)

    @tl.fn
    def cell(a):
        return tl.tanh(a) * a

    outs = [tl.sum(root * root * root), tl.sum(ys), tl.sum(pw), tl.sum(cell(x))]
    f = tl.function([x], outs, engine=engine)
    jf = tl.function([x, t], tl.jvp(outs, x, t), engine=engine)
    rng = np.random.default_rng(3)
    xv, tv = rng.uniform(0.5, 3.0, 5), rng.standard_normal(5)
    got = jf(xv, tv)
    h = 1e-6
    fp, fm = f(xv + h * tv), f(xv - h * tv)
    for k in range(len(outs)):
        np.testing.assert_allclose(got[k], (fp[k] - fm[k]) / (2 * h), rtol=1e-6, atol=1e-8)
