"""Loading libtlaloc.so with ctypes (no compiler, nothing built at import).

The library is looked up, in order: the TLALOC_LIBRARY environment variable
(a path to the .so), ../../build/libtlaloc.so relative to this package (so
the package is importable straight from a source checkout with a build),
then the system's library path. It is loaded on first use, so
`import tlaloc` costs almost nothing; `tlaloc.library()` loads it eagerly.
"""
import ctypes
import os
import threading

_lock = threading.Lock()
_lib = None


class TlalocError(Exception):
    """An error reported by the C library; str(e) is its message and
    .status the C API's status: 2 bad input, 3 out of memory, 4 an internal
    error (a bug of tlaloc), 5 LLVM, the GPU driver or the ILP solver failed
    (None when the error is the frontend's own). A type error found when a
    built graph is parsed also has .op (the op), .src ((file, line) of the
    user code that built the value) and .var."""

    __module__ = "tlaloc"
    op = None
    src = None
    var = None
    status = None

    def __init__(self, *args, status=None):
        super().__init__(*args)
        self.status = status


class _Tensor(ctypes.Structure):
    _fields_ = [("dtype", ctypes.c_int32), ("rank", ctypes.c_int32),
                ("dims", ctypes.c_int64 * 8), ("data", ctypes.c_void_p)]


class _OptOptions(ctypes.Structure):
    """tlaloc_opt_options (include/tlaloc.h)."""
    _fields_ = [("rule_paths", ctypes.POINTER(ctypes.c_char_p)), ("nrules", ctypes.c_int),
                ("limits", ctypes.c_char_p), ("cost", ctypes.c_char_p),
                ("extract", ctypes.c_char_p), ("extract_seconds", ctypes.c_double),
                ("plugins", ctypes.POINTER(ctypes.c_char_p)), ("nplugins", ctypes.c_int),
                ("profile", ctypes.c_char_p)]


class _CompileOptions(ctypes.Structure):
    """tlaloc_compile_options (include/tlaloc.h); zeroed fields take the defaults."""
    _fields_ = [("opt_level", ctypes.c_int), ("threads", ctypes.c_int),
                ("use_cache", ctypes.c_int), ("cache_dir", ctypes.c_char_p),
                ("engine", ctypes.c_char_p), ("device", ctypes.c_char_p)]


# tlaloc_dtype codes (include/tlaloc.h)
DTYPE_CODES = {"bool": 0, "i32": 1, "i64": 2, "f32": 3, "f64": 4}
CODE_DTYPES = {v: k for k, v in DTYPE_CODES.items()}
MAX_RANK = 8


def _candidates():
    env = os.environ.get("TLALOC_LIBRARY")
    if env:
        yield env, True
    here = os.path.dirname(os.path.abspath(__file__))
    yield os.path.normpath(os.path.join(here, "..", "..", "build", "libtlaloc.so")), False
    try:  # installed by `meson install`: the library where it put it, relative to here
        from . import _paths
    except ImportError:
        pass
    else:
        rel = os.path.relpath(_paths.LIBDIR, _paths.PYDIR)
        yield os.path.normpath(os.path.join(here, "..", rel, "libtlaloc.so")), False
    import ctypes.util  # lazily: it imports shutil/re/subprocess (~20 ms)
    found = ctypes.util.find_library("tlaloc")
    if found:
        yield found, False
    yield "libtlaloc.so", False


def library():
    """The loaded ctypes.CDLL of libtlaloc (loads it on the first call)."""
    global _lib
    if _lib is not None:
        return _lib
    with _lock:
        if _lib is not None:
            return _lib
        tried = []
        lib = None
        for path, explicit in _candidates():
            if not explicit and os.path.sep in path and not os.path.exists(path):
                tried.append(path + " (missing)")
                continue
            try:
                lib = ctypes.CDLL(path)
                break
            except OSError as e:
                if explicit:
                    raise TlalocError("TLALOC_LIBRARY=%s cannot be loaded: %s" % (path, e)) from None
                tried.append("%s (%s)" % (path, e))
        if lib is None:
            raise TlalocError("libtlaloc.so not found; set TLALOC_LIBRARY to its path. Tried: "
                              + "; ".join(tried))
        vp, sz, i, cp = ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int, ctypes.c_char_p
        lib.tlaloc_parse.argtypes = [cp, sz, cp, ctypes.POINTER(vp), ctypes.POINTER(vp)]
        lib.tlaloc_parse.restype = i
        lib.tlaloc_graph_free.argtypes = [vp]
        lib.tlaloc_graph_free.restype = None
        lib.tlaloc_print.argtypes = [vp]
        lib.tlaloc_print.restype = vp
        lib.tlaloc_num_inputs.argtypes = [vp]
        lib.tlaloc_num_outputs.argtypes = [vp]
        for f in ("tlaloc_input_name", "tlaloc_output_name"):
            getattr(lib, f).argtypes = [vp, i]
            getattr(lib, f).restype = cp
        for f in ("tlaloc_input_type", "tlaloc_output_type"):
            getattr(lib, f).argtypes = [vp, i]
            getattr(lib, f).restype = vp
        lib.tlaloc_run.argtypes = [vp, vp, i, vp, i, ctypes.POINTER(vp)]
        lib.tlaloc_run.restype = i
        lib.tlaloc_free.argtypes = [vp]
        # fresh outputs reuse warm pages (include/tlaloc.h; TLALOC_MALLOC_TUNE=0: not)
        lib.tlaloc_malloc_tune.restype = None
        lib.tlaloc_malloc_tune()
        # GEMMs on this CPU's fastest OpenBLAS kernels (include/tlaloc.h;
        # OPENBLAS_CORETYPE or TLALOC_BLAS_TUNE=0: not)
        lib.tlaloc_blas_tune.restype = cp
        lib.tlaloc_blas_tune()
        lib.tlaloc_output_shapes.argtypes = [vp, vp, i, vp, i, ctypes.POINTER(vp)]
        lib.tlaloc_output_shapes.restype = i
        lib.tlaloc_optimize.argtypes = [vp, ctypes.POINTER(cp), i, cp, ctypes.POINTER(vp),
                                        ctypes.POINTER(vp), ctypes.POINTER(vp)]
        lib.tlaloc_optimize.restype = i
        lib.tlaloc_optimize_opts.argtypes = [vp, ctypes.POINTER(_OptOptions), ctypes.POINTER(vp),
                                             ctypes.POINTER(vp), ctypes.POINTER(vp)]
        lib.tlaloc_optimize_opts.restype = i
        lib.tlaloc_prove.argtypes = [vp, vp, ctypes.POINTER(cp), i, cp, ctypes.POINTER(vp),
                                     ctypes.POINTER(vp)]
        lib.tlaloc_prove.restype = i
        lib.tlaloc_compile.argtypes = [vp, ctypes.POINTER(_CompileOptions), ctypes.POINTER(vp),
                                       ctypes.POINTER(vp)]
        lib.tlaloc_compile.restype = i
        lib.tlaloc_program_run.argtypes = [vp, vp, i, vp, i, ctypes.POINTER(vp)]
        lib.tlaloc_program_run.restype = i
        lib.tlaloc_program_stats.argtypes = [vp]
        lib.tlaloc_program_stats.restype = vp
        lib.tlaloc_program_free.argtypes = [vp]
        lib.tlaloc_program_free.restype = None
        for f in ("tlaloc_op_name", "tlaloc_op_kind", "tlaloc_op_libm"):
            getattr(lib, f).argtypes = [i]
            getattr(lib, f).restype = cp
        lib.tlaloc_op_arity.argtypes = [i]
        lib.tlaloc_op_arity.restype = i
        lib.tlaloc_engine_name.argtypes = [i]
        lib.tlaloc_engine_name.restype = cp
        lib.tlaloc_version.argtypes = []
        lib.tlaloc_version.restype = cp
        lib.tlaloc_free.restype = None
        lib._path = getattr(lib, "_name", None)
        _lib = lib
        return lib


def take_string(lib, p):
    """Copies a heap C string returned by tlaloc and frees it."""
    if not p:
        return ""
    try:
        return ctypes.string_at(p).decode("utf-8", "replace")
    finally:
        lib.tlaloc_free(p)


class Graph:
    """A parsed graph (owns the C tlaloc_graph)."""

    __slots__ = ("_lib", "_g", "text", "__weakref__")

    def __init__(self, text, file="<python>"):
        lib = library()
        self._lib = lib
        self._g = None
        self.text = text
        src = text.encode("utf-8")
        g = ctypes.c_void_p()
        err = ctypes.c_void_p()
        st = lib.tlaloc_parse(src, len(src), file.encode("utf-8"), ctypes.byref(g), ctypes.byref(err))
        if st != 0:
            raise TlalocError(take_string(lib, err.value) or "tlaloc_parse failed", status=st)
        if err.value:
            lib.tlaloc_free(err.value)
        self._g = g.value

    def __del__(self):
        if self._g:
            self._lib.tlaloc_graph_free(self._g)
            self._g = None

    @classmethod
    def adopt(cls, handle):
        """Wraps a tlaloc_graph* this object now owns (text = its canonical print)."""
        self = cls.__new__(cls)
        self._lib = library()
        self._g = handle
        self.text = self.printed()
        return self

    def optimize(self, rules=True, limits=None, cost=None, plugins=None, profile=None):
        """(optimized Graph, stats dict) from tlaloc_optimize_opts; rules=True: the default
        rules folder, else a path or a list of .rw files/folders; cost: the objective
        over cost properties ("time", "memory", "time + 1e-9*memory"; None: the default);
        plugins: cost plugin .so paths; profile: a machine profile file for the cost model."""
        import json
        lib = self._lib
        if rules is True:
            arr, n = None, 0
        else:
            paths = [rules] if isinstance(rules, (str, bytes, os.PathLike)) else list(rules)
            if not paths:
                raise ValueError("rules=[]: give rule files/folders, or rules=True for the defaults")
            enc = [os.fsencode(p) for p in paths]
            arr, n = (ctypes.c_char_p * len(enc))(*enc), len(enc)
        out, st_json, err = ctypes.c_void_p(), ctypes.c_void_p(), ctypes.c_void_p()
        opts = _OptOptions()
        opts.rule_paths = arr
        opts.nrules = n
        opts.limits = limits.encode() if limits is not None else None
        if cost is not None:
            if not isinstance(cost, str):
                raise TypeError("cost= is an expression string, e.g. 'time + 1e-9*memory'")
            opts.cost = cost.encode()
        keep = None
        if plugins:
            plugins = [plugins] if isinstance(plugins, (str, bytes, os.PathLike)) else list(plugins)
            keep = [os.fsencode(p) for p in plugins]
            opts.plugins = (ctypes.c_char_p * len(keep))(*keep)
            opts.nplugins = len(keep)
        if profile is not None:
            opts.profile = os.fsencode(profile)
        st = lib.tlaloc_optimize_opts(self._g, ctypes.byref(opts), ctypes.byref(out),
                                      ctypes.byref(st_json), ctypes.byref(err))
        stats_text = take_string(lib, st_json.value)
        if st != 0:
            if out.value:
                lib.tlaloc_graph_free(out.value)
            raise TlalocError(take_string(lib, err.value) or "tlaloc_optimize failed", status=st)
        if err.value:
            lib.tlaloc_free(err.value)
        try:
            stats = json.loads(stats_text) if stats_text else {}
        except ValueError:
            stats = {"raw": stats_text}
        return Graph.adopt(out.value), stats

    @property
    def handle(self):
        return self._g

    def printed(self):
        return take_string(self._lib, self._lib.tlaloc_print(self._g))

    def inputs(self):
        lib, g = self._lib, self._g
        return [(lib.tlaloc_input_name(g, k).decode(), take_string(lib, lib.tlaloc_input_type(g, k)))
                for k in range(lib.tlaloc_num_inputs(g))]

    def outputs(self):
        lib, g = self._lib, self._g
        return [(lib.tlaloc_output_name(g, k).decode(), take_string(lib, lib.tlaloc_output_type(g, k)))
                for k in range(lib.tlaloc_num_outputs(g))]


class Program:
    """A compiled graph (owns the C tlaloc_program). Keeps its Graph alive:
    the C program points into it."""

    __slots__ = ("_lib", "_p", "graph", "__weakref__")

    def __init__(self, graph, opt_level=0, threads=0, use_cache=None, cache_dir=None, engine="llvm"):
        lib = graph._lib
        self._lib = lib
        self._p = None
        self.graph = graph
        opts = _CompileOptions()
        opts.opt_level = opt_level
        opts.threads = threads
        opts.use_cache = 0 if use_cache is None else (1 if use_cache else -1)
        opts.cache_dir = os.fsencode(cache_dir) if cache_dir is not None else None
        opts.engine = engine.encode()
        p, err = ctypes.c_void_p(), ctypes.c_void_p()
        st = lib.tlaloc_compile(graph._g, ctypes.byref(opts), ctypes.byref(p), ctypes.byref(err))
        if st != 0:
            raise TlalocError(take_string(lib, err.value) or "tlaloc_compile failed", status=st)
        if err.value:
            lib.tlaloc_free(err.value)
        self._p = p.value

    def __del__(self):
        if self._p:
            self._lib.tlaloc_program_free(self._p)
            self._p = None

    @property
    def handle(self):
        return self._p

    def stats(self):
        """tlaloc_program_stats as a dict (compile times in ms, cache_hit, kernels, ...)."""
        import json
        return json.loads(take_string(self._lib, self._lib.tlaloc_program_stats(self._p)))


def engines():
    """The engines' names, from the C library's table (tlaloc_engine_name)."""
    lib = library()
    names, i = [], 0
    while True:
        n = lib.tlaloc_engine_name(i)
        if n is None:
            return names
        names.append(n.decode())
        i += 1


def ops():
    """The C library's op table: [(name, arity, kind, libm or None)] in
    table order (tlaloc_op_name and friends)."""
    lib = library()
    out, i = [], 0
    while True:
        n = lib.tlaloc_op_name(i)
        if n is None:
            return out
        m = lib.tlaloc_op_libm(i)
        out.append((n.decode(), lib.tlaloc_op_arity(i), lib.tlaloc_op_kind(i).decode(),
                    m.decode() if m else None))
        i += 1


def version():
    """The C library's "MAJOR.MINOR.PATCH"."""
    return library().tlaloc_version().decode()


def parse_type(s):
    """'f32[n 10]' -> ('f32', ('n', 10)); '' dims for scalars."""
    s = s.strip()
    k = s.index("[")
    dt = s[:k]
    dims = []
    body = s[k + 1:s.rindex("]")]
    i = 0
    while i < len(body):
        if body[i].isspace():
            i += 1
            continue
        j = i
        if body[i] == "(":  # a derived dim: '(+ n -1)', up to its ')'
            depth = 0
            while j < len(body):
                depth += {"(": 1, ")": -1}.get(body[j], 0)
                j += 1
                if depth == 0:
                    break
        else:
            while j < len(body) and not body[j].isspace():
                j += 1
        d = body[i:j]
        try:
            dims.append(int(d))
        except ValueError:
            dims.append(d)
        i = j
    return dt, tuple(dims)
