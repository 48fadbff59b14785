"""tl.random: Threefry-2x32-20 from the IR's integer ops, against Random123's
known answers and a numpy reference written from the specification, with
the same bits on both engines, and the distributions' moments."""
import numpy as np
import pytest

import tlaloc as tl

M = 0xFFFFFFFF
ROT = (13, 15, 26, 6, 17, 29, 16, 24)


def threefry_ref(k0, k1, x0, x1):
    """Threefry-2x32, 20 rounds (Random123), on numpy uint64 holding words."""
    k0, k1 = np.uint64(k0), np.uint64(k1)
    x0 = np.asarray(x0, np.uint64)
    x1 = np.asarray(x1, np.uint64)
    m = np.uint64(M)
    ks = (k0, k1, k0 ^ k1 ^ np.uint64(0x1BD11BDA))
    x0 = (x0 + k0) & m
    x1 = (x1 + k1) & m
    for i in range(20):
        r = np.uint64(ROT[i % 8])
        x0 = (x0 + x1) & m
        x1 = (((x1 << r) | (x1 >> (np.uint64(32) - r))) & m) ^ x0
        if i % 4 == 3:
            s = (i + 1) // 4
            x0 = (x0 + ks[s % 3]) & m
            x1 = (x1 + ks[(s + 1) % 3] + np.uint64(s)) & m
    return x0.astype(np.int64), x1.astype(np.int64)


KAT = [  # Random123 kat_vectors, threefry2x32 20: counter, key -> output
    ((0, 0), (0, 0), (0x6B200159, 0x99BA4EFE)),
    ((M, M), (M, M), (0x1CB996FC, 0xBB002BE7)),
    ((0x243F6A88, 0x85A308D3), (0x13198A2E, 0x03707344), (0xC4923A9C, 0x483DF7A0)),
]


def test_reference_matches_random123():
    for ctr, key, want in KAT:
        got = threefry_ref(key[0], key[1], [ctr[0]], [ctr[1]])
        assert (int(got[0][0]), int(got[1][0])) == want


@pytest.fixture(scope="module")
def core():
    k = tl.tensor("k", "i64", (2,))
    c = tl.tensor("c", "i64", (2, "n"))
    y0, y1 = tl.random.threefry2x32(k[0], k[1], c[0], c[1])
    return {e: tl.function([k, c], [y0, y1], engine=e) for e in ("llvm", "interp")}


@pytest.mark.parametrize("engine", ["llvm", "interp"])
def test_threefry_known_answers(core, engine):
    f = core[engine]
    for ctr, key, want in KAT:
        y0, y1 = f(np.array(key), np.array([[ctr[0]], [ctr[1]]]))
        assert (int(y0[0]), int(y1[0])) == want
    rng = np.random.default_rng(5)
    c = rng.integers(0, 1 << 32, (2, 1000), dtype=np.int64)
    k = rng.integers(0, 1 << 32, 2, dtype=np.int64)
    y0, y1 = f(k, c)
    r0, r1 = threefry_ref(k[0], k[1], c[0], c[1])
    np.testing.assert_array_equal(y0, r0)
    np.testing.assert_array_equal(y1, r1)


def _both(outs):
    a = tl.function([], outs, engine="llvm")()
    b = tl.function([], outs, engine="interp")()
    return a, b


def test_bits_split_uniform_are_the_reference_and_identical_on_both_engines():
    key = tl.random.key(42)
    kd = tl.random.key_data(42)
    assert list(kd) == [0, 42]
    k1, k2 = tl.random.split(key)[0], tl.random.split(key)[1]
    outs = [tl.random.bits(key, (3, 5)), tl.random.split(key, 3),
            tl.random.uniform(k1, (7,)), tl.random.uniform(k2, (2, 3), "f64"),
            tl.random.bernoulli(k1, 0.3, (50,)), tl.random.fold_in(key, 7)]
    a, b = _both(outs)
    for x, y in zip(a, b):
        assert x.dtype == y.dtype
        np.testing.assert_array_equal(x, y)
    # the reference: bits are blocks (j, 0), split (j, 1), fold_in (data, 2)
    y0, y1 = threefry_ref(kd[0], kd[1], np.arange(8), np.zeros(8))
    np.testing.assert_array_equal(a[0].ravel(), np.concatenate([y0, y1])[:15])
    s0, s1 = threefry_ref(kd[0], kd[1], np.arange(3), np.ones(3))
    np.testing.assert_array_equal(a[1], np.stack([s0, s1], 1))
    f0, f1 = threefry_ref(kd[0], kd[1], [7], [2])
    np.testing.assert_array_equal(a[5], [f0[0], f1[0]])
    k1d = np.stack(threefry_ref(kd[0], kd[1], np.arange(2), np.ones(2)), 1)[0]  # split(key)[0]
    u0, u1 = threefry_ref(k1d[0], k1d[1], np.arange(4), np.zeros(4))
    w = np.concatenate([u0, u1])[:7]
    np.testing.assert_array_equal(a[2], (w >> 8).astype(np.float32) * np.float32(2.0 ** -24))
    assert a[2].dtype == np.float32 and a[3].dtype == np.float64 and a[4].dtype == np.bool_
    assert ((a[3] >= 0) & (a[3] < 1)).all()


def test_keys_as_inputs_give_new_numbers_without_recompiling():
    k = tl.tensor("key", "i64", (2,))
    f = tl.function([k], tl.random.uniform(k, (4,)))
    a, b = f(tl.random.key_data(1)), f(tl.random.key_data(2))
    assert not np.array_equal(a, b)
    np.testing.assert_array_equal(a, f(tl.random.key_data(1)))
    np.testing.assert_array_equal(a, tl.function([], tl.random.uniform(tl.random.key(1), (4,)))())


def test_distributions():
    key = tl.random.key(2024)
    ks = tl.random.split(key, 5)
    n = 20000
    logits = np.log(np.array([0.1, 0.2, 0.7]))
    outs = [tl.random.uniform(ks[0], (n,)), tl.random.normal(ks[1], (n,), "f64"),
            tl.random.bernoulli(ks[2], 0.25, (n,)),
            tl.random.categorical(ks[3], np.tile(logits, (n, 1))),
            tl.random.uniform(ks[4], (n,), "f64", -2.0, 3.0),
            tl.random.normal(ks[1], (n,), "f32")]
    u, z, b, c, u2, z32 = tl.function([], outs, engine="llvm")()
    assert abs(u.mean() - 0.5) < 0.01 and abs(u.std() - 12 ** -0.5) < 0.01
    assert abs(z.mean()) < 0.03 and abs(z.std() - 1) < 0.03 and np.isfinite(z).all()
    assert abs(b.mean() - 0.25) < 0.015
    np.testing.assert_allclose(np.bincount(c, minlength=3) / n, [0.1, 0.2, 0.7], atol=0.015)
    assert u2.min() >= -2 and u2.max() < 3 and abs(u2.mean() - 0.5) < 0.05
    assert z32.dtype == np.float32
    # the interpreter (on fewer draws: it is slow): the same integers and
    # uniforms; floats through log/cos within the ulps of vector math
    n = 500
    outs = [tl.random.uniform(ks[0], (n,)), tl.random.normal(ks[1], (n,), "f64"),
            tl.random.bernoulli(ks[2], 0.25, (n,)),
            tl.random.categorical(ks[3], np.tile(logits, (n, 1)))]
    u, z, b, c = tl.function([], outs, engine="llvm")()
    iu, iz, ib, ic = tl.function([], outs, engine="interp")()
    np.testing.assert_array_equal(iu, u)
    np.testing.assert_array_equal(ib, b)
    np.testing.assert_allclose(iz, z, rtol=1e-12, atol=1e-12)
    assert (ic != c).sum() <= 1


def test_symbolic_shapes_are_refused():
    with pytest.raises(tl.SymbolicSizeError, match="index range"):
        tl.random.uniform(tl.random.key(0), ("n", 3))
