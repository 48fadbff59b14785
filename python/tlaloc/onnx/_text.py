"""TfIdfVectorizer: counts of a pool's n-grams in integer token sequences.
"""
import numpy as np

from .. import graph as _g
from ._core import UnsupportedOnnx, _need, _npdt, _reg
from ._helpers import _attr_str, _sc


@_reg("TfIdfVectorizer", max_gram_length=None, max_skip_count=None, min_gram_length=None, mode=None,
      ngram_counts=None, ngram_indexes=None, pool_int64s=None, pool_strings=None, weights=None)
def _tfidf(m, node, ins, at):
    """Counts of the pool's n-grams along the last axis: for each length n
    and skip s (s = 0 only for n = 1), the n slices x[i + k (s + 1)] compared
    with the pool's k-th items and and-ed, summed over i; then placed at the
    n-grams' output columns and weighted (TF: counts, IDF: weight if seen,
    TFIDF: count * weight)."""
    op = "TfIdfVectorizer"
    x = _need(op, ins, 0)
    if at["pool_strings"] is not None or at["pool_int64s"] is None:
        raise UnsupportedOnnx("%s: string pools (tlaloc has no strings)" % op, op)
    dt = m._dtype(x)
    if dt not in ("i32", "i64"):
        raise UnsupportedOnnx("%s of %s" % (op, dt), op)
    shape = m._shape(x, op)
    if len(shape) not in (1, 2):
        raise UnsupportedOnnx("%s: input must be [C] or [N, C]" % op, op)
    mode = _attr_str(at["mode"])
    if mode not in ("TF", "IDF", "TFIDF"):
        raise UnsupportedOnnx("%s: mode %r" % (op, mode), op)
    lo, hi, skips = int(at["min_gram_length"]), int(at["max_gram_length"]), int(at["max_skip_count"])
    pool = [int(v) for v in at["pool_int64s"]]
    starts = [int(v) for v in at["ngram_counts"]] + [len(pool)]
    idx = [int(v) for v in at["ngram_indexes"]]
    C = shape[-1]
    ax = len(shape) - 1
    cols = []  # (pool entry number, count Var [..., P_n]) per n
    entry = 0
    for n in range(1, len(starts)):
        items = pool[starts[n - 1]:starts[n]]
        if len(items) % n:
            raise UnsupportedOnnx("%s: pool of %d-grams has %d items" % (op, n, len(items)), op)
        P = len(items) // n
        if P == 0:
            continue
        table = np.array(items, _npdt(dt)).reshape(P, n)
        if lo <= n <= hi:
            cnt = None
            for sk in (range(skips + 1) if n > 1 else [0]):
                span = (n - 1) * (sk + 1)
                if span >= C:
                    continue
                hit = None
                for k in range(n):
                    sl = _g.Var("slice", (x,), [("axis", ax), ("start", k * (sk + 1)),
                                                ("stop", C - span + k * (sk + 1))])
                    e = _g.equal(_g.expand_dims(sl, ax + 1), _g.constant(table[:, k]))  # [..., L, P]
                    hit = e if hit is None else _g.logical_and(hit, e)
                c = _g.sum(_g.cast(hit, "i64"), ax)
                cnt = c if cnt is None else _g.add(cnt, c)
            if cnt is None:
                cnt = _g.broadcast_to(_sc("i64", 0), tuple(shape[:-1]) + (P,))
        else:
            cnt = _g.broadcast_to(_sc("i64", 0), tuple(shape[:-1]) + (P,))
        cols.append(cnt)
        entry += P
    if entry != len(idx):
        raise UnsupportedOnnx("%s: %d ngram_indexes for %d pool n-grams" % (op, len(idx), entry), op)
    counts = _g.cast(_g.concatenate(cols, ax) if len(cols) > 1 else cols[0], "f32")
    w = np.ones(entry, np.float32) if at["weights"] is None else np.array(at["weights"], np.float32)
    if mode == "IDF":
        counts = _g.multiply(_g.cast(_g.greater(counts, 0), "f32"), _g.constant(w))
    elif mode == "TFIDF":
        counts = _g.multiply(counts, _g.constant(w))
    # columns in output order; a column no n-gram maps to reads an appended 0
    width = max(idx) + 1 if idx else 0
    where_ = {j: p for p, j in enumerate(idx)}
    zcol = _g.broadcast_to(_sc("f32", 0), tuple(shape[:-1]) + (1,))
    padded = _g.concatenate([counts, zcol], ax)
    order = np.array([where_.get(j, entry) for j in range(width)], np.int64)
    return _g.take(padded, _g.constant(order), ax)
