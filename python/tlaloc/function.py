"""tl.function: compile a graph once, call it on numpy arrays."""
import ctypes
import struct
import threading
import time

from . import _lib
from .graph import Var, as_var, emit_graph

_NP = {}


def _np():
    if not _NP:
        import numpy as np
        _NP["np"] = np
        _NP["codes"] = {np.dtype(np.bool_).num: 0, np.dtype(np.int32).num: 1,
                        np.dtype(np.int64).num: 2, np.dtype(np.float32).num: 3,
                        np.dtype(np.float64).num: 4}
        _NP["dtypes"] = [np.dtype(np.bool_), np.dtype(np.int32), np.dtype(np.int64),
                         np.dtype(np.float32), np.dtype(np.float64)]
    return _NP["np"]


# Outputs bigger than this are handed to numpy without a copy (freed by
# tlaloc_free when the array dies); smaller ones are copied (cheaper).
_ZERO_COPY_BYTES = 1 << 16


class _CBuffer:
    """Owns a tlaloc-allocated output buffer; numpy views it via __array_interface__."""

    __slots__ = ("__array_interface__", "_ptr", "_free")

    def __init__(self, ptr, shape, typestr, free):
        self._ptr = ptr
        self._free = free
        self.__array_interface__ = {"data": (ptr, False), "shape": shape, "typestr": typestr,
                                    "version": 3}

    def __del__(self):
        if self._ptr:
            self._free(self._ptr)
            self._ptr = None


class Function:
    """A compiled graph: call it with numpy arrays, one per input, in order.

    Returns one array (one output) or a list of arrays. `graph` is the .tg
    text, `stats` the compile statistics."""

    def __init__(self, inputs, outputs, rules=None, cost=None, name="f", text=None,
                 bound=None):
        if rules is not None:
            raise NotImplementedError(
                "tl.function(rules=...): the optimizer (e-graph saturation) is not exposed in "
                "the C API yet; graphs are run by the reference interpreter as written")
        if cost is not None:
            raise NotImplementedError(
                "tl.function(cost=...): extraction under a cost model is not exposed in the "
                "C API yet; graphs are run by the reference interpreter as written")
        np = _np()
        self._single = not isinstance(outputs, (list, tuple))
        if text is None:
            inputs = list(inputs)
            outs = [outputs] if self._single else list(outputs)
            t0 = time.perf_counter()
            text, self.output_names = emit_graph(inputs, [as_var(o) for o in outs], None, name)
            t1 = time.perf_counter()
        else:
            t0 = t1 = time.perf_counter()
            self.output_names = None
        self.graph = text
        self._g = _lib.Graph(text, "<%s>" % name)
        t2 = time.perf_counter()
        lib = self._g._lib
        ins = self._g.inputs()
        outs = self._g.outputs()
        if self.output_names is None:
            self.output_names = [n for n, _ in outs]
        self.input_names = [n for n, _ in ins]
        self.input_types = [_lib.parse_type(t) for _, t in ins]
        self.output_types = [_lib.parse_type(t) for _, t in outs]
        self.stats = {
            "emit_s": t1 - t0,
            "parse_s": t2 - t1,
            "nodes_in_text": text.count("("),
            "engine": "interpreter",
            # pending the optimizer/backend in the C API:
            "pending": ["saturate_s", "egraph_nodes", "extract_s", "cost", "compile_s",
                        "cache_hit"],
        }
        # bound: {input name: array} for inputs the caller does not pass (ONNX initializers)
        self._bound = dict(bound or {})
        for k in self._bound:
            if k not in self.input_names:
                raise ValueError("bound value for unknown input %r" % k)
        self._arg_names = [n for n in self.input_names if n not in self._bound]
        self._nin = len(ins)
        self._nout = len(outs)
        self._in = ctypes.create_string_buffer(80 * max(self._nin, 1))
        self._out = ctypes.create_string_buffer(80 * max(self._nout, 1))
        self._in_ptr = ctypes.addressof(self._in)
        self._out_ptr = ctypes.addressof(self._out)
        self._err = ctypes.c_void_p()
        self._err_ref = ctypes.byref(self._err)
        self._run = lib.tlaloc_run
        self._free = lib.tlaloc_free
        self._lock = threading.Lock()
        dts = _NP["dtypes"]
        codes = {"bool": 0, "i32": 1, "i64": 2, "f32": 3, "f64": 4}
        self._spec = []
        for (n, (dt, shape)) in zip(self.input_names, self.input_types):
            code = codes[dt]
            fixed = tuple((k, d) for k, d in enumerate(shape) if isinstance(d, int))
            syms = tuple((k, d) for k, d in enumerate(shape) if isinstance(d, str))
            self._spec.append((n, dts[code], code, len(shape), fixed, syms,
                               code | (len(shape) << 32)))
        self._bound_arrays = {}
        for k, v in self._bound.items():
            i = self.input_names.index(k)
            self._bound_arrays[i] = self._check(i, v)

    def __repr__(self):
        return "<tlaloc.Function %s(%s) -> %s>" % (
            self._g.inputs and "", ", ".join(self._arg_names), ", ".join(self.output_names))

    def _check(self, i, a):
        np = _NP["np"]
        name, dt, code, rank, fixed, syms, header = self._spec[i]
        if type(a) is not np.ndarray:
            if isinstance(a, np.generic) or isinstance(a, (int, float, bool, list, tuple)):
                a = np.asarray(a)
                if a.dtype.kind == dt.kind or (a.dtype.kind in "iu" and dt.kind == "f"):
                    a = a.astype(dt)
            else:
                a = np.asarray(a)
        if a.dtype != dt:
            raise TypeError("input %r: expected dtype %s (%s), got %s"
                            % (name, _lib.CODE_DTYPES[code], dt.name, a.dtype.name))
        if a.ndim != rank:
            raise ValueError("input %r: expected rank %d (shape %s), got shape %s"
                             % (name, rank, _fmt_shape(self.input_types[i][1]), a.shape))
        if not a.flags.c_contiguous:
            raise ValueError("input %r: array is not C-contiguous (use numpy.ascontiguousarray)"
                             % name)
        shape = a.shape
        for k, d in fixed:
            if shape[k] != d:
                raise ValueError("input %r: dim %d is %d, expected %d (shape %s)"
                                 % (name, k, shape[k], d, _fmt_shape(self.input_types[i][1])))
        return a

    def __call__(self, *args, **kwargs):
        np = _NP["np"]
        if kwargs:
            args = list(args)
            for n in self._arg_names[len(args):]:
                if n not in kwargs:
                    raise TypeError("missing input %r" % n)
                args.append(kwargs.pop(n))
            if kwargs:
                raise TypeError("unexpected inputs %s" % sorted(kwargs))
        if len(args) != len(self._arg_names):
            raise TypeError("%s takes %d inputs (%s), got %d"
                            % (self.graph.split()[1], len(self._arg_names),
                               ", ".join(self._arg_names), len(args)))
        arrays = []
        buf = self._in
        j = 0
        symvals = None
        for i in range(self._nin):
            if i in self._bound_arrays:
                a = self._bound_arrays[i]
            else:
                a = args[j]
                j += 1
                name, dt, code, rank, fixed, syms, header = self._spec[i]
                if type(a) is not np.ndarray or a.dtype is not dt or not a.flags.c_contiguous:
                    a = self._check(i, a)
                else:
                    if a.ndim != rank:
                        a = self._check(i, a)
                    shape = a.shape
                    for k, d in fixed:
                        if shape[k] != d:
                            self._check(i, a)
                if syms:
                    if symvals is None:
                        symvals = {}
                    for k, s in syms:
                        v = symvals.setdefault(s, (a.shape[k], name, k))
                        if v[0] != a.shape[k]:
                            raise ValueError(
                                "input %r: dim %d (%s) is %d, but %s was bound to %d by input %r"
                                % (name, k, s, a.shape[k], s, v[0], v[1]))
            arrays.append(a)
        with self._lock:
            off = 0
            for i, a in enumerate(arrays):
                shape = a.shape
                _PACK[len(shape)](buf, off, self._spec[i][6], *shape)
                _PTR(buf, off + 72, a.ctypes.data)
                off += 80
            st = self._run(self._g._g, self._in_ptr, self._nin, self._out_ptr, self._nout,
                           self._err_ref)
            if st != 0:
                msg = _lib.take_string(self._g._lib, self._err.value)
                self._err.value = None
                raise _lib.TlalocError(msg or "tlaloc_run failed (status %d)" % st)
            rows = _UNPACK(self._out, self._nout)
        results = []
        dts = _NP["dtypes"]
        for row in rows:
            code = row[0]
            rank = row[1]
            shape = row[2:2 + rank]
            ptr = row[10]
            dt = dts[code]
            n = 1
            for d in shape:
                n *= d
            nbytes = n * dt.itemsize
            if ptr and nbytes > _ZERO_COPY_BYTES:
                owner = _CBuffer(ptr, shape, dt.str, self._free)
                results.append(np.asarray(owner))
            else:
                out = np.empty(shape, dt)
                if nbytes:
                    ctypes.memmove(out.ctypes.data, ptr, nbytes)
                if ptr:
                    self._free(ptr)
                results.append(out)
        return results[0] if self._single else results


_PACK = [struct.Struct("<q%dq" % r).pack_into for r in range(9)]
_PTR = struct.Struct("<Q").pack_into
_ROW = struct.Struct("<ii8qQ")


def _UNPACK(buf, n):
    return [_ROW.unpack_from(buf, 80 * k) for k in range(n)]


def _fmt_shape(shape):
    return "(" + ", ".join(str(d) for d in shape) + ("," if len(shape) == 1 else "") + ")"


def function(inputs, outputs, rules=None, cost=None, name="f"):
    """Compiles the graph from `inputs` (tl.tensor Vars) to `outputs` (a Var or a list).

    rules= and cost= (the optimizer's rule files and cost expression) raise
    NotImplementedError until the optimizer is exposed in the C API."""
    return Function(inputs, outputs, rules=rules, cost=cost, name=name)


def from_tg(text, rules=None, cost=None, bound=None, name="tg"):
    """A Function from .tg text (its own inputs and outputs)."""
    f = Function([], [], rules=rules, cost=cost, name=name, text=text, bound=bound)
    f._single = f._nout == 1
    return f
