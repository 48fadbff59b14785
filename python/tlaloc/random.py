"""Counter-based random numbers with explicit keys, as jax.random:
Threefry-2x32 with 20 rounds (Random123; the generator JAX uses by
default), built from the IR's integer ops, so the interpreter and compiled
code give the same bits.

    k = tl.random.key(0)
    k1, k2 = tl.random.split(k)            # a [2, 2] Var; k1 = its row 0
    u = tl.random.uniform(k1, (3, 4))      # f32 in [0, 1)
    z = tl.random.normal(k2, (100,), "f64")

A key is an i64[2] Var holding two 32-bit words (a constant from key(), or
a graph input fed with numpy's key_data(seed), so a compiled function can
take a new key per call). The same key gives the same numbers; derive new
keys with split() rather than reusing one. Shapes must be concrete: the
counters are an index range, which symbolic shapes cannot have yet.

Values are uint32 words stored in i64 (the IR has no unsigned dtype);
addition mod 2^32 is an add and a remainder, a rotation a multiply, a
floor division and a remainder, XOR the IR's bitwise_xor. Some hundred
integer ops per pair of words, fused into one kernel.
"""
from .graph import (SymbolicSizeError, Var, add, as_var, bitwise_xor, cast, concatenate,
                    constant, fill, floor_divide, less, log, multiply, remainder, reshape,
                    sqrt, subtract, sum, take, cos, negative, stack)

M32 = 1 << 32
_ROT = (13, 15, 26, 6, 17, 29, 16, 24)
_PARITY = 0x1BD11BDA


def key_data(seed):
    """The key words for an int seed, as numpy int64 [2] (to feed a key input)."""
    import numpy as np
    seed = int(seed)
    if seed < 0:
        seed &= (1 << 64) - 1
    return np.array([(seed >> 32) & (M32 - 1), seed & (M32 - 1)], np.int64)


def key(seed):
    """A key from an int seed (a constant i64[2])."""
    return constant(key_data(seed))


def _add32(a, b):
    return remainder(add(a, b), M32)


def _rotl32(x, r):
    return add(remainder(multiply(x, 1 << r), M32), floor_divide(x, 1 << (32 - r)))


def _xor32(a, b):
    return bitwise_xor(a, b)


def threefry2x32(k0, k1, x0, x1):
    """Threefry-2x32-20 of the counter words (x0, x1) under key (k0, k1): two
    Vars of words (i64 in [0, 2^32)), broadcast together."""
    k0, k1, x0, x1 = (as_var(v) for v in (k0, k1, x0, x1))
    ks = (k0, k1, _xor32(_xor32(k0, k1), _PARITY))
    x0 = _add32(x0, k0)
    x1 = _add32(x1, k1)
    for i in range(20):
        x0 = _add32(x0, x1)
        x1 = _xor32(_rotl32(x1, _ROT[i % 8]), x0)
        if i % 4 == 3:
            s = (i + 1) // 4
            x0 = _add32(x0, ks[s % 3])
            x1 = _add32(x1, add(ks[(s + 1) % 3], s))
    return x0, x1


def _words(k):
    k = as_var(k)
    import numpy as np
    return take(k, constant(np.int64(0))), take(k, constant(np.int64(1)))


def _shape(shape):
    if isinstance(shape, (int, str)):
        shape = (shape,)
    shape = tuple(shape)
    n = 1
    for d in shape:
        if isinstance(d, (str, Var)):
            raise SymbolicSizeError(
                "random numbers of a symbolic shape %r need a counter per element, an index "
                "range the IR has no op for yet; use a concrete shape" % (shape,))
        n *= int(d)
    return shape, n


def _counters(m):
    """0..m-1 (i64): a constant for small m, else a doubling scan of ones
    (a graph of log2(m) steps instead of m literals)."""
    import numpy as np
    if m <= 4096:
        return constant(np.arange(m, dtype=np.int64))
    from .numpy_ops import cumsum
    return subtract(cumsum(fill((m,), 1, "i64")), 1)


def bits(key, shape=()):
    """Random 32-bit words (i64 in [0, 2^32)) of a concrete shape: word j of
    the flattened result is output j // m of block j % m, for m = ceil(n/2)
    blocks with counters (j, 0)."""
    shape, n = _shape(shape)
    if n == 0:
        return fill(shape, 0, "i64")
    k0, k1 = _words(key)
    m = (n + 1) // 2
    y0, y1 = threefry2x32(k0, k1, _counters(m), 0)
    w = concatenate([y0, y1], 0)
    if 2 * m != n:
        w = Var("slice", (w,), [("axis", 0), ("start", 0), ("stop", n)])
    return reshape(w, shape) if shape != (n,) else w


def split(key, num=2):
    """num new keys (i64[num, 2]) from key: blocks with counters (j, 1), so
    they differ from bits(key, ...)'s."""
    num = int(num)
    if num < 1:
        raise ValueError("split: num must be >= 1")
    k0, k1 = _words(key)
    y0, y1 = threefry2x32(k0, k1, _counters(num), 1)
    return stack([y0, y1], 1)


def fold_in(key, data):
    """A new key from key and an int (or i64 Var) in [0, 2^32): counters
    (data, 2)."""
    k0, k1 = _words(key)
    d = as_var(data)
    y0, y1 = threefry2x32(k0, k1, reshape(d, (1,)), 2)
    return concatenate([y0, y1], 0)


def _unit(key, shape, dtype):
    """Uniform in [0, 1) on a grid of 2^-24 (f32: 24 bits of one word) or
    2^-53 (f64: 27 + 26 bits of two words, numpy's random_double)."""
    from .graph import as_dtype
    dt = as_dtype(dtype)
    if dt == "f32":
        b = bits(key, shape)
        return multiply(cast(floor_divide(b, 256), "f32"), 2.0 ** -24)
    if dt == "f64":
        b = bits(key, tuple(shape) + (2,))
        import numpy as np
        hi = floor_divide(take(b, constant(np.int64(0)), axis=len(shape)), 32)
        lo = floor_divide(take(b, constant(np.int64(1)), axis=len(shape)), 64)
        return multiply(cast(add(multiply(hi, 1 << 26), lo), "f64"), 2.0 ** -53)
    raise TypeError("random floats are f32 or f64, not %s" % dt)


def uniform(key, shape=(), dtype="f32", minval=0.0, maxval=1.0):
    """Uniform floats in [minval, maxval) (f32 or f64)."""
    shape, _ = _shape(shape)
    u = _unit(key, shape, dtype)
    if minval == 0.0 and maxval == 1.0 and not isinstance(minval, Var) \
            and not isinstance(maxval, Var):
        return u
    return add(multiply(u, subtract(maxval, minval)), minval)


def normal(key, shape=(), dtype="f32"):
    """Standard normal floats by Box-Muller on two uniforms per element
    (log, sqrt and cos: the engines agree up to the ulps of vector math)."""
    shape, _ = _shape(shape)
    import math
    import numpy as np
    u = _unit(key, shape + (2,), dtype)
    ax = len(shape)
    u1 = subtract(1.0, take(u, constant(np.int64(0)), axis=ax))  # (0, 1]
    u2 = take(u, constant(np.int64(1)), axis=ax)
    return multiply(sqrt(multiply(log(u1), -2.0)), cos(multiply(u2, 2 * math.pi)))


def bernoulli(key, p=0.5, shape=None):
    """True with probability p (a number or a float Var broadcast to shape;
    shape defaults to p's)."""
    pv = p if isinstance(p, Var) else None
    if shape is None:
        shape = pv.shape if pv is not None else ()
    shape, _ = _shape(shape)
    dt = pv.dtype if pv is not None and pv.dtype in ("f32", "f64") else "f64"
    return less(_unit(key, shape, dt), p)


def categorical(key, logits, axis=-1):
    """Indices (i64) drawn with probabilities softmax(logits) along axis, by
    the Gumbel-max trick (as jax.random.categorical); the other axes are
    independent draws."""
    from .numpy_ops import argmax
    logits = as_var(logits)
    dt = logits.dtype if logits.dtype in ("f32", "f64") else "f64"
    shape, _ = _shape(logits.shape)
    tiny = 2.0 ** -126 if dt == "f32" else 2.0 ** -1022
    u = add(multiply(_unit(key, shape, dt), 1.0 - tiny), tiny)  # (0, 1)
    g = negative(log(negative(log(u))))
    return argmax(add(logits, g), axis)
