"""The graph builder's larger, less used parts, loaded on first use so that
`import tlaloc` compiles less: numpy indexing (Var.__getitem__), the -1
of a reshape of a symbolic shape, and errors located at the user's line."""
import builtins
import re

from .graph import Var, _is_int, constant, expand_dims, emit_graph, take


def getitem(self, key):
    """Var.__getitem__ (numpy indexing)."""
    if not isinstance(key, tuple):
        key = (key,)
    key = tuple(_index_key(k) for k in key)
    if builtins.sum(1 for k in key if isinstance(k, Var)) > 1:
        raise IndexError("one integer-array index per subscript is supported (numpy's "
                         "combined advanced indexing is not); index twice, or use tl.take")
    if any(k is Ellipsis for k in key):
        if builtins.sum(1 for k in key if k is Ellipsis) > 1:
            raise IndexError("an index can only have a single ellipsis ('...')")
        used = builtins.sum(1 for k in key if k is not None and k is not Ellipsis)
        e = key.index(Ellipsis)
        fill = self.ndim - used
        if fill < 0:
            raise IndexError("too many indices for a tensor of rank %d" % self.ndim)
        key = key[:e] + (slice(None),) * fill + key[e + 1:]
    dims = list(self.type[1])  # tracked through the key (one type query)
    if builtins.sum(1 for k in key if k is not None) > len(dims):
        raise IndexError("too many indices for a tensor of rank %d" % len(dims))
    x = self
    axis = 0
    for k in key:
        if k is None:
            x = expand_dims(x, axis)
            dims.insert(axis, 1)
            axis += 1
        elif isinstance(k, slice):
            if k.start is None and k.stop is None and k.step in (None, 1):
                axis += 1
                continue
            if k.step == 0:
                raise ValueError("slice step cannot be zero")
            attrs = [("axis", axis)]
            for nm, v in (("start", k.start), ("stop", k.stop), ("step", k.step)):
                if v is not None:
                    if isinstance(v, Var) or not _is_int(v):
                        raise TypeError("slice bounds must be Python ints (got %r)" % (v,))
                    attrs.append((nm, int(v)))
            d = dims[axis]
            if isinstance(d, str):
                # a derived dim ((+ n -1), (ceildiv n 2)); unlike numpy the
                # bounds are not clamped: they are checked when the graph runs
                dims[axis] = "(slice)"
            else:
                dims[axis] = len(range(*k.indices(d)))
            x = Var("slice", (x,), attrs)
            axis += 1
        elif isinstance(k, Var):
            kt = k.type
            if kt[0] not in ("i32", "i64"):
                raise IndexError(_MASK_MSG if kt[0] == "bool" else
                                 "array indices must be integers, got %s" % kt[0])
            x = take(x, k, axis=axis)
            dims[axis:axis + 1] = list(kt[1])
            axis += len(kt[1])
        elif _is_int(k):
            k = int(k)
            d = dims[axis]
            if isinstance(d, str):
                # one element of a symbolic dim: a slice whose bounds are
                # checked when the graph runs (n >= k + 1)
                attrs = [("axis", axis), ("start", k)]
                if k != -1:
                    attrs.append(("stop", k + 1))
                x = Var("slice", (x,), attrs)
                x = Var("squeeze", (x,), [("axis", axis)])
            else:
                if not -d <= k < d:
                    raise IndexError("index %d is out of bounds for axis %d with size %d"
                                     % (k, axis, d))
                attrs = [("axis", axis), ("start", k)]
                if k != -1:
                    attrs.append(("stop", k + 1))
                x = Var("slice", (x,), attrs)
                x = Var("squeeze", (x,), [("axis", axis)])
            del dims[axis]
        else:
            raise TypeError("unsupported index %r (ints, slices, None, ..., integer arrays)"
                            % (k,))
    return x


_MASK_MSG = ("boolean mask indexing is not supported: its result's shape depends on the "
             "values, which a compiled graph cannot have (jax.jit refuses it too); use "
             "tl.where(mask, x, 0) to zero the other elements, or tl.sum(tl.where(mask, x, 0)) "
             "for a masked reduction")


def _index_key(k):
    """Lists and numpy arrays in an index: integer arrays become constants
    (taken along their axis); boolean ones are refused."""
    if isinstance(k, (list, tuple)) or type(k).__module__ == "numpy" and hasattr(k, "ndim") \
            and k.ndim > 0:
        import numpy as np
        a = np.asarray(k)
        if a.dtype == np.bool_:
            raise IndexError(_MASK_MSG)
        if a.size == 0:
            a = a.astype(np.int64)
        if a.dtype.kind not in "iu":
            raise IndexError("array indices must be integers, got %s" % a.dtype)
        return constant(a.astype(np.int64))
    if isinstance(k, bool) or type(k).__name__ == "bool_":
        raise IndexError(_MASK_MSG)
    return k


ERR_AT = re.compile(r":(\d+):(\d+): error: ([^\n]*)")


def located_error(err, inputs, outputs):
    """err (a TlalocError from parsing the graph of outputs) with the Python
    line that built the offending value: the graph is emitted again with
    every op a `let` of its own, so the line of the C message names one
    Var, whose .src is the user's file and line. The error returned has
    .op, .src ((file, line) or None) and .var; err itself when the place
    cannot be found."""
    from ._lib import Graph, TlalocError
    line_map = {}
    try:
        text = emit_graph(inputs, outputs, None, "located", max_depth=1, line_map=line_map)[0]
        Graph(text, "<located>")
    except TlalocError as e2:
        m = ERR_AT.search(str(e2))
        v = line_map.get(int(m.group(1))) if m else None
    except Exception:
        return err
    else:
        return err
    if v is None:
        return err
    msg = str(err).rstrip("\n")
    detail = m.group(3)
    if v.src:
        import linecache
        code = linecache.getline(v.src[0], v.src[1]).strip()
        head = "%s:%d: %s (the %s built here)%s" % (v.src[0], v.src[1], detail, v.op,
                                                  "\n    " + code if code else "")
    else:
        head = "%s (the %s built at an unknown place)" % (detail, v.op)
    out = TlalocError("%s\nin the graph as emitted:\n%s" % (head, msg))
    out.op = v.op
    out.src = v.src
    out.var = v
    return out
