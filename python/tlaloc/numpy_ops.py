"""numpy functions the graph builder offers by decomposition into the IR's
ops (loaded on first use: tl.argmax and the others are found through
graph.__getattr__, so `import tlaloc` does not compile this module)."""
from .graph import (Var, SymbolicSizeError, add, as_dtype, as_var, cast, constant,  # noqa: F401
                    equal, expand_dims, fill, greater, less, logical_or, matmul, max, min,
                    multiply, not_equal, ones_like, ravel, reshape, sum, take, transpose, where,
                    zeros_like, _np_dtype, _op)


def size(x, axis=None, dtype="i64"):
    """The number of elements of x (along axis) as a scalar Var: the IR's
    `dim` op, whose value is the bound size when the dim is symbolic (a
    literal when it is concrete)."""
    x = as_var(x)
    dims = x.type[1]
    axes = range(len(dims)) if axis is None else [int(axis) % len(dims)]
    total = None
    for a in axes:
        term = Var("dim", (x,), [("axis", a)])
        if dtype != "i64":
            term = cast(term, dtype)
        total = term if total is None else multiply(total, term)
    return total if total is not None else cast(constant(1, "i64"), dtype)


# ---- numpy functions by decomposition into the ops above ----
def _concrete(d, what):
    if isinstance(d, str):
        raise SymbolicSizeError(
            "%s along a symbolic dim (%r): its log2(n) doubling steps must be known when the "
            "graph is built; give that dim a concrete size, or write the scan with tl.scan"
            % (what, str(d)))
    return d


def arange(start, stop=None, step=1, dtype=None):
    """numpy.arange: a constant when the bounds are Python numbers; an
    `iota` when the stop is a symbolic dim (`arange(X.shape[0])`; start and
    step ints, step > 0)."""
    import numpy as np
    if stop is None:
        start, stop = 0, start
    if isinstance(stop, str) and not isinstance(start, (str, Var)) and not isinstance(step, (str, Var)):
        start, step = int(start), int(step)
        if step <= 0:
            raise ValueError("arange with a symbolic stop needs a step > 0")
        count = stop if (start, step) == (0, 1) else "(ceildiv (- %s %d) %d)" % (stop, start, step)
        r = Var("iota", (fill((count,), 0, "i64"),), [("axis", 0)])
        if step != 1:
            r = multiply(r, step)
        if start:
            r = add(r, start)
        return cast(r, dtype) if dtype is not None else r
    for v in (start, stop, step):
        if isinstance(v, (str, Var)):
            raise SymbolicSizeError("arange with a symbolic start or step (%r): only the stop may "
                                    "be a symbolic dim" % (v,))
    a = np.arange(start, stop, step)
    if dtype is not None:
        a = a.astype(_np_dtype(as_dtype(dtype)))
    return constant(a)


def eye(N, M=None, k=0, dtype="f64"):
    """numpy.eye: a constant for int sizes; for a symbolic size, row index
    == column index - k over two iotas."""
    import numpy as np
    if isinstance(N, Var) or isinstance(M, Var):
        raise SymbolicSizeError("eye: the sizes are dims (ints or symbol names), not values")
    if isinstance(N, str) or isinstance(M, str):
        M = N if M is None else M
        z = fill((N, M), 0, "i64")
        rows, cols = Var("iota", (z,), [("axis", 0)]), Var("iota", (z,), [("axis", 1)])
        return cast(equal(add(rows, int(k)), cols), dtype)
    return constant(np.eye(N, M, k, dtype=_np_dtype(as_dtype(dtype))))


def identity_matrix(n, dtype="f64"):
    return eye(n, dtype=dtype)


def _iota_along(n, axis, rank):
    """arange(n) (i64) shaped to broadcast along axis of a rank-`rank`
    tensor: a constant for an int n, the IR's iota for a symbolic one."""
    import numpy as np
    shape = [1] * rank
    shape[axis] = n
    if isinstance(n, str):
        return Var("iota", (fill(tuple(shape), 0, "i64"),), [("axis", axis)])
    return constant(np.arange(n, dtype=np.int64).reshape(shape))


def _len_value(x, ax, n):
    """The size n of x's axis ax as a value: the int, or the dim op's."""
    return size(x, ax) if isinstance(n, str) else n


def one_hot(indices, depth, dtype="f64"):
    """[..., depth]: 1 where the last index equals indices, else 0 (an index
    out of 0..depth-1 gives a zero row, as jax.nn.one_hot)."""
    indices = as_var(indices)
    depth = int(depth)
    rank = indices.ndim
    hit = equal(expand_dims(indices, rank), _iota_along(depth, rank, rank + 1))
    return cast(hit, dtype)


def _norm_axis(axis, rank):
    if not -rank <= axis < rank:
        raise ValueError("axis %d is out of bounds for a tensor of rank %d" % (axis, rank))
    return axis % rank


def _arg_reduce(x, axis, keepdims, reduce, what):
    x = as_var(x)
    if x.dtype == "bool":
        x = cast(x, "i32")
    if axis is None:
        x = ravel(x)
        axis = 0
    dims = x.type[1]
    ax = _norm_axis(int(axis), len(dims))
    n = dims[ax]
    m = reduce(x, ax, keepdims=True)
    hit = equal(x, m)
    if x.dtype in ("f32", "f64"):
        hit = logical_or(hit, not_equal(x, x))  # numpy: the first NaN
    first = min(where(hit, _iota_along(n, ax, len(dims)), _len_value(x, ax, n)), ax, keepdims)
    return first


def argmax(x, axis=None, keepdims=False):
    """numpy.argmax (i64; the first maximum; the first NaN if any)."""
    return _arg_reduce(x, axis, keepdims, max, "argmax")


def argmin(x, axis=None, keepdims=False):
    """numpy.argmin (i64; the first minimum; the first NaN if any)."""
    return _arg_reduce(x, axis, keepdims, min, "argmin")


def _scan(x, axis, dtype, combine, neutral_like, what):
    """Inclusive scan along axis by doubling (Hillis-Steele): log2(n) steps of
    y + shift(y, k); a concrete axis length."""
    x = as_var(x)
    if axis is None:
        x = ravel(x)
        axis = 0
    if dtype is not None:
        x = cast(x, dtype)
    elif x.dtype in ("bool", "i32"):
        x = cast(x, "i64")  # numpy accumulates small ints in the platform int
    dims = x.type[1]
    ax = _norm_axis(int(axis), len(dims))
    n = _concrete(dims[ax], what)
    y = x
    k = 1
    while k < n:
        head = neutral_like(Var("slice", (y,), [("axis", ax), ("start", 0), ("stop", k)]))
        body = Var("slice", (y,), [("axis", ax), ("start", 0), ("stop", n - k)])
        y = combine(y, _op("concat", head, body, axis=ax))
        k *= 2
    return y


def cumsum(x, axis=None, dtype=None):
    """numpy.cumsum (bool and i32 accumulate in i64, as numpy on Linux)."""
    return _scan(x, axis, dtype, add, zeros_like, "cumsum")


def cumprod(x, axis=None, dtype=None):
    """numpy.cumprod (bool and i32 accumulate in i64)."""
    return _scan(x, axis, dtype, multiply, ones_like, "cumprod")


def pad(x, pad_width, mode="constant", constant_values=0):
    """numpy.pad, mode="constant" with one scalar value: concatenates fills
    (a padded axis must have a concrete size)."""
    if mode != "constant":
        raise NotImplementedError("pad mode=%r: only mode='constant' is supported" % (mode,))
    if isinstance(constant_values, (list, tuple)) or isinstance(constant_values, Var):
        raise NotImplementedError("pad: constant_values must be one scalar")
    x = as_var(x)
    dt, dims = x.type
    dims = list(dims)
    rank = len(dims)
    import numpy as np
    pw = np.asarray(pad_width, dtype=np.int64)
    if pw.ndim == 0:
        pw = np.full((rank, 2), int(pw))
    elif pw.ndim == 1:
        pw = np.tile(pw.reshape(1, -1) if pw.size == 2 else pw.reshape(-1, 1), (rank, 1)) \
            if pw.size in (1, 2) else None
    if pw is None or pw.shape != (rank, 2) or (pw < 0).any():
        raise ValueError("pad_width must be an int, (before, after) or one (before, after) per "
                         "axis, all >= 0")
    for ax in range(rank):
        b, a = int(pw[ax, 0]), int(pw[ax, 1])
        if not b and not a:
            continue
        parts = []
        for w in (b, a):
            if w:
                shp = list(dims)
                shp[ax] = w
                parts.append(fill(shp, constant_values, dt))
            else:
                parts.append(None)
        x = _op("concat", *[p for p in (parts[0], x, parts[1]) if p is not None], axis=ax)
        # a symbolic dim grows into a derived one: (+ n 2)
        dims[ax] = "(+ %s %d)" % (dims[ax], b + a) if isinstance(dims[ax], str) else dims[ax] + b + a
    return x


def take_along_axis(arr, indices, axis):
    """numpy.take_along_axis (indices of arr's rank; negative ones wrap; an
    index out of range gives 0, not an error). Computed as a one-hot
    selection summed along the axis, so it costs len(axis) work per output
    element (an iota along a symbolic axis)."""
    arr = as_var(arr)
    indices = as_var(indices)
    if axis is None:
        arr = ravel(arr)
        indices = ravel(indices)
        axis = 0
    dims = arr.type[1]
    rank = len(dims)
    if indices.ndim != rank:
        raise ValueError("take_along_axis: indices must have the rank of arr (%d), got %d"
                         % (rank, indices.ndim))
    ax = _norm_axis(int(axis), rank)
    n = dims[ax]
    idx = where(less(indices, 0), add(indices, _len_value(arr, ax, n)), indices)
    hit = equal(expand_dims(idx, ax + 1), _iota_along(n, ax + 1, rank + 1))
    src = expand_dims(arr, ax)
    dt = arr.dtype
    if dt == "bool":
        return greater(sum(where(hit, cast(src, "i32"), 0), ax + 1), 0)
    return sum(where(hit, src, zeros_like(src)), ax + 1)


def einsum(subscripts, *operands):
    """numpy.einsum for explicit or implicit output, by transposes, sums and
    (batched) matmuls, contracting the operands left to right. Not
    supported: '...', and an index repeated within one operand (diagonals).
    Grouping several dims into one matmul dim needs their concrete sizes."""
    if not isinstance(subscripts, str):
        raise TypeError("einsum: the subscripts come first, as a string")
    spec = subscripts.replace(" ", "")
    if "." in spec:
        raise NotImplementedError("einsum: '...' is not supported; write the dims out")
    if "->" in spec:
        lhs, out = spec.split("->")
    else:
        lhs = spec
        letters = lhs.replace(",", "")
        out = "".join(sorted(c for c in set(letters) if letters.count(c) == 1))
    terms = lhs.split(",")
    if len(terms) != len(operands):
        raise ValueError("einsum: %d operands for %d subscripts" % (len(operands), len(terms)))
    ops = [as_var(o) for o in operands]
    for t, o in zip(terms, ops):
        if len(set(t)) != len(t):
            raise NotImplementedError("einsum: an index repeated within one operand (%r: a "
                                      "diagonal or a trace) is not supported" % t)
        if not t.isalpha():
            raise ValueError("einsum: subscripts are letters, got %r" % t)
        if len(t) != o.ndim:
            raise ValueError("einsum: %r has %d indices for an operand of rank %d"
                             % (t, len(t), o.ndim))
    if len(set(out)) != len(out) or any(c not in lhs for c in out):
        raise ValueError("einsum: bad output subscripts %r" % out)
    cur, ci = ops[0], terms[0]
    for j in range(1, len(ops)):
        keep = set(out) | set("".join(terms[j + 1:]))
        cur, ci = _einsum_pair(cur, ci, ops[j], terms[j], keep)
    cur, ci = _einsum_sum(cur, ci, set(out))
    if ci != out:
        cur = transpose(cur, [ci.index(c) for c in out])
    return cur


def _einsum_sum(v, idx, keep):
    gone = [k for k, c in enumerate(idx) if c not in keep]
    if gone:
        v = sum(v, gone)
        idx = "".join(c for c in idx if c in keep)
    return v, idx


def _group(v, dims, groups):
    """v (dims in group order) reshaped to one dim per group (concrete sizes
    needed only where a group has several dims; an empty group is a 1)."""
    shape = []
    k = 0
    need = False
    for g in groups:
        part = dims[k:k + g]
        k += g
        if g == 1:
            shape.append(part[0])
            continue
        need = True
        if any(isinstance(d, str) for d in part):
            # a derived dim, their product: (* n d)
            shape.append("(* %s)" % " ".join(str(d) for d in part))
            continue
        p = 1
        for d in part:
            p *= d
        shape.append(p)
    return reshape(v, shape) if need else v


def _einsum_pair(a, ia, b, ib, keep):
    a, ia = _einsum_sum(a, ia, keep | set(ib))
    b, ib = _einsum_sum(b, ib, keep | set(ia))
    batch = [c for c in ia if c in ib and c in keep]
    contr = [c for c in ia if c in ib and c not in keep]
    left = [c for c in ia if c not in ib]
    right = [c for c in ib if c not in ia]
    sizes = dict(zip(ia, a.type[1]))
    sizes.update({c: d for c, d in zip(ib, b.type[1]) if c not in sizes})
    oa = batch + left + contr
    ob = batch + contr + right
    if list(ia) != oa:
        a = transpose(a, [ia.index(c) for c in oa])
    if list(ib) != ob:
        b = transpose(b, [ib.index(c) for c in ob])
    nb = len(batch)
    bd = [sizes[c] for c in batch]
    a = _group(a, [sizes[c] for c in oa], [1] * nb + [len(left), len(contr)])
    b = _group(b, [sizes[c] for c in ob], [1] * nb + [len(contr), len(right)])
    r = matmul(a, b)  # batch + [L] + [R]
    want = bd + [sizes[c] for c in left] + [sizes[c] for c in right]
    if len(left) != 1 or len(right) != 1:
        r = reshape(r, want) if want else reshape(r, ())
    return r, "".join(batch + left + right)
