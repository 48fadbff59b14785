"""tl.function: compile a graph once, call it on numpy arrays."""
import ctypes
import threading
import time

from . import _lib
from .graph import Var, as_var, emit_graph

_NP = {}


def _np():
    global _NDARRAY
    if not _NP:
        import numpy as np
        _NDARRAY = np.ndarray
        _NP["np"] = np
        _NP["codes"] = {np.dtype(np.bool_).num: 0, np.dtype(np.int32).num: 1,
                        np.dtype(np.int64).num: 2, np.dtype(np.float32).num: 3,
                        np.dtype(np.float64).num: 4}
        _NP["dtypes"] = [np.dtype(np.bool_), np.dtype(np.int32), np.dtype(np.int64),
                         np.dtype(np.float32), np.dtype(np.float64)]
    return _NP["np"]


class _Sig:
    """What one input-shape signature needs, computed once (tlaloc_output_shapes):
    the input/output descriptor arrays with dims filled in, a settable pointer
    per input, and per output either a cached numpy buffer (small outputs: run
    writes into it, the caller gets a copy), the shape/dtype to allocate, or
    (late) nothing: tlaloc allocates it, its dims known only after the run
    (a loop's :stack)."""

    __slots__ = ("ins", "in_ptrs", "outs", "out_ptrs", "small", "big", "bound_keep", "ins_p",
                 "outs_p", "late")


def _c_ptr(a):
    """Data address of a C-contiguous numpy array (fast path for writable arrays)."""
    try:
        return _ADDR(_CCHAR.from_buffer(a))
    except (TypeError, ValueError, BufferError):
        return a.ctypes.data


_ADDR = ctypes.addressof
_CCHAR = ctypes.c_char
_DUMMY = ctypes.create_string_buffer(8)  # data for zero-element outputs (nothing is written)
_DUMMY_PTR = ctypes.addressof(_DUMMY)

# Outputs up to this many bytes are written into a per-signature buffer and
# returned as a copy (cheaper than fetching a fresh array's address); bigger
# ones are allocated by numpy and written in place.
_SMALL_BYTES = 1 << 12


def check_engine(engine):
    """engine= names an engine of the C library's table (tlaloc engines:
    "llvm", "interp", ...) or is "auto" (compiled, else interpreted)."""
    names = _lib.engines()
    if engine != "auto" and engine not in names:
        raise ValueError("engine=%r: expected one of %s, or 'auto' (compiled, else interpreted)"
                         % (engine, ", ".join(repr(n) for n in names)))


class _DefaultRules:
    """function()'s default rules=: the shipped rules folder, as rules=True,
    except that an optimizer that cannot start warns and runs the graph as
    written instead of raising."""

    def __repr__(self):
        return "DEFAULT_RULES"


DEFAULT_RULES = _DefaultRules()


# device= names the engine that runs there: the CPU backend, the GPU backend
# (or its emulator), or the C library's "auto" engine, which picks the CPU
# or the GPU at each call from the cost model's prediction
DEVICES = {"cpu": "llvm", "gpu": "gpu", "gpu-sim": "gpu-sim", "auto": "auto"}


def engine_for_device(engine, device):
    """The engine for device= (None: engine= alone decides)."""
    if device is None:
        return engine
    if device not in DEVICES:
        raise ValueError("device=%r: expected one of %s" % (device, ", ".join(repr(d) for d in DEVICES)))
    if engine not in ("llvm", DEVICES[device]):
        raise ValueError("engine=%r and device=%r name different engines" % (engine, device))
    return DEVICES[device]


class Function:
    """A compiled graph: call it with numpy arrays, one per input, in order.

    Returns one array (one output) or a list of arrays. `graph` is the .tg
    text as written, `optimized_graph` the graph that runs (the optimizer's
    output when rules= is given), `stats` the compile statistics.

    engine="llvm" runs native code from the LLVM backend, "interp" the
    reference interpreter, each through tlaloc_compile's engine table;
    "auto" compiles and falls back to the interpreter when the backend
    refuses the graph
    (stats["engine"] then says "interpreter-fallback" and
    stats["fallback_reason"] has the backend's message)."""

    def __init__(self, inputs, outputs, rules=None, cost=None, name="f", text=None,
                 bound=None, limits=None, engine="llvm", device=None, threads=0, plugins=None, profile=None,
                 out_names=None):
        # what a pickled copy needs to be made again (__reduce__)
        self._travel = {"name": name, "engine": engine, "device": device, "threads": threads}
        exact = device is not None  # the C engine of that name, "auto" included
        engine = engine_for_device(engine, device)
        if not exact:
            check_engine(engine)
        if limits is not None and (rules is None or rules is False):
            raise ValueError("limits= applies to the optimizer: pass rules=True or rule paths")
        if cost is not None and (rules is None or rules is False):
            raise ValueError("cost= chooses what the optimizer extracts: pass rules=True or rule paths")
        if plugins and (rules is None or rules is False):
            raise ValueError("plugins= are cost plugins of the optimizer: pass rules=True or rule paths")
        if profile is not None and (rules is None or rules is False):
            raise ValueError("profile= is the optimizer's machine profile: pass rules=True or rule paths")
        if not isinstance(threads, int) or isinstance(threads, bool) or threads < 0:
            raise ValueError("threads= is a count >= 0 (0: min(2, CPUs)), got %r" % (threads,))
        np = _np()
        self._single = not isinstance(outputs, (list, tuple))
        if text is None:
            inputs = list(inputs)
            outs = [outputs] if self._single else list(outputs)
            t0 = time.perf_counter()
            text, self.output_names = emit_graph(inputs, [as_var(o) for o in outs], out_names, name)
            t1 = time.perf_counter()
        else:
            t0 = t1 = time.perf_counter()
            self.output_names = None
        self.graph = text
        # the Vars it was built from: a run-time error is located at the
        # user's line by running them again in the interpreter (_located)
        self._built = (inputs, [as_var(o) for o in outs]) if self.output_names is not None else None
        try:
            self._src = _lib.Graph(text, "<%s>" % name)
        except _lib.TlalocError as e:
            if self.output_names is None:
                raise
            from ._shapes import located_error
            raise located_error(e, inputs, [as_var(o) for o in outs]) from None
        t2 = time.perf_counter()
        self.stats = {
            "emit_s": t1 - t0,
            "parse_s": t2 - t1,
            "nodes_in_text": text.count("("),
        }
        by_default = rules is DEFAULT_RULES
        if by_default:
            rules = True
        if rules is None or rules is False:
            self._g = self._src
            self.optimized_graph = None
            self.stats["optimized"] = False
        else:
            try:
                self._g, ostats = self._src.optimize(rules, limits, cost, plugins, profile)
            except _lib.TlalocError as e:
                # options of the user's own are errors of the user's own
                if not by_default or plugins or profile is not None or cost is not None \
                        or limits is not None:
                    raise
                # the optimizer could not start (no rules folder where the
                # library looks, a bad machine profile): run the graph as
                # written rather than refuse a graph that is fine
                import warnings
                warnings.warn("tlaloc: the default optimization failed, the graph runs as "
                              "written (pass rules=False to skip it): %s" % e, RuntimeWarning,
                              stacklevel=3)
                self._g = self._src
                self.optimized_graph = None
                self.stats["optimized"] = False
                self.stats["optimize_error"] = str(e)
            else:
                self.optimized_graph = self._g.text
                self.stats["optimized"] = True
                self.stats["optimize_s"] = time.perf_counter() - t2
                self.stats.update(ostats)
        lib = self._g._lib
        self._program = None
        if engine == "interp":
            self.stats["engine"] = "interpreter"
        else:
            t3 = time.perf_counter()
            try:
                self._program = _lib.Program(self._g, threads=threads,
                                             engine="llvm" if engine == "auto" and not exact else engine)
                t4 = time.perf_counter()
            except _lib.TlalocError as e:
                if engine != "auto":
                    raise
                self.stats["engine"] = "interpreter-fallback"
                self.stats["fallback_reason"] = str(e)
            else:
                c = self._program.stats()
                self.stats["engine"] = c["engine"]
                self.stats["compile_s"] = t4 - t3
                self.stats["cache_hit"] = c.get("cache_hit", False)
                self.stats["kernels"] = c.get("kernels", 0)
                self.stats["compile"] = c
        ins = self._g.inputs()
        outs = self._g.outputs()
        if self.output_names is None:
            self.output_names = [n for n, _ in outs]
        self.input_names = [n for n, _ in ins]
        self.input_types = [_lib.parse_type(t) for _, t in ins]
        self.output_types = [_lib.parse_type(t) for _, t in outs]
        # bound: {input name: array} for inputs the caller does not pass (ONNX initializers)
        self._bound = dict(bound or {})
        for k in self._bound:
            if k not in self.input_names:
                raise ValueError("bound value for unknown input %r" % k)
        self._arg_names = [n for n in self.input_names if n not in self._bound]
        self._nin = len(ins)
        self._nout = len(outs)
        self._err = ctypes.c_void_p()
        self._err_ref = ctypes.byref(self._err)
        self._shapes = lib.tlaloc_output_shapes
        self._free = lib.tlaloc_free
        self._ghandle = ctypes.c_void_p(self._g._g)
        # the run entry point: same arguments for both engines
        if self._program is not None:
            self._run = lib.tlaloc_program_run
            self._handle = ctypes.c_void_p(self._program.handle)
        else:
            self._run = lib.tlaloc_run
            self._handle = self._ghandle
        self._run_name = "tlaloc_program_run" if self._program is not None else "tlaloc_run"
        self._cnin = ctypes.c_int(self._nin)
        self._cnout = ctypes.c_int(self._nout)
        self._lock = threading.Lock()
        self._cache = {}
        dts = _NP["dtypes"]
        codes = {"bool": 0, "i32": 1, "i64": 2, "f32": 3, "f64": 4}
        self._spec = []
        for (n, (dt, shape)) in zip(self.input_names, self.input_types):
            code = codes[dt]
            fixed = tuple((k, d) for k, d in enumerate(shape) if isinstance(d, int))
            syms = tuple((k, d) for k, d in enumerate(shape) if isinstance(d, str))
            self._spec.append((n, dts[code], code, len(shape), fixed, syms))
        self._bound_arrays = {}
        for k, v in self._bound.items():
            i = self.input_names.index(k)
            self._bound_arrays[i] = self._check(i, v)
        # positions of caller-passed inputs among the graph's inputs
        self._arg_pos = [i for i in range(self._nin) if i not in self._bound_arrays]
        self._arg_dts = [self._spec[i][1] for i in self._arg_pos]

    def _located(self, err, arrays):
        """err (a run-time failure, e.g. a take index out of range) with the
        Python line that built the failing value: the graph as written (not
        the optimized one, whose nodes have no source) runs again in the
        interpreter, emitted one op per line, and the line its error names
        is a Var whose .src is the user's file and line. err itself when
        the interpreter does not fail or the place cannot be found; only
        the error path pays for this."""
        if self._built is None or err.status not in (2, None):
            return err
        import re
        from .graph import emit_graph
        inputs, outs = self._built
        line_map = {}
        try:
            text = emit_graph(inputs, outs, None, "located", max_depth=1, line_map=line_map)[0]
            g = _lib.Graph(text, "<located>")
            names = [n for n, _ in g.inputs()]
            given = dict(zip(self._arg_names, arrays))
            given.update({self.input_names[i]: a for i, a in self._bound_arrays.items()})
            Function([], [], text=text, rules=False, engine="interp")(**{n: given[n] for n in names})
        except _lib.TlalocError as e2:
            m = re.search(r"\(at (\d+):(\d+)\): ([^\n]*)", str(e2))
            v = line_map.get(int(m.group(1))) if m else None
        except Exception:
            return err
        else:
            return err
        if v is None or not v.src:
            return err
        import linecache
        code = linecache.getline(v.src[0], v.src[1]).strip()
        out = _lib.TlalocError("%s:%d: %s: %s (the %s built here)%s\nas the compiled function said: %s"
                               % (v.src[0], v.src[1], v.op, m.group(3), v.op,
                                  "\n    " + code if code else "", err), status=err.status)
        out.op = v.op
        out.src = v.src
        out.var = v
        return out

    def __reduce__(self):
        """A Function pickles as the graph that runs (the optimized one when
        it was optimized, so the other side does not optimize again), its
        bound inputs and its options; unpickling compiles it again, which
        the compile cache makes a lookup where the cache is shared (the same
        machine, or TLALOC_CACHE_DIR on a shared disk). The compiled code
        itself does not travel: it is the host's."""
        text = self.optimized_graph if self.optimized_graph is not None else self.graph
        bound = {k: _np().asarray(v) for k, v in self._bound.items()}
        return (_unpickle_function, (text, self._single, bound, dict(self._travel),
                                     list(self.output_names), self.optimized_graph is not None))

    @property
    def engine(self):
        """"llvm" or "interpreter" (also after an engine="auto" fallback)."""
        return "llvm" if self._program is not None else "interpreter"

    def compile_stats(self):
        """The compiled program's statistics now (tlaloc_program_stats: compile
        times in ms, cache_hit, kernels, inplace, arena_bytes at the last
        call's sizes); None with the interpreter."""
        if self._program is None:
            return None
        with self._lock:
            return self._program.stats()

    def __repr__(self):
        return "<tlaloc.Function %s(%s) -> %s>" % (
            self._g.inputs and "", ", ".join(self._arg_names), ", ".join(self.output_names))

    def _check(self, i, a):
        np = _NP["np"]
        name, dt, code, rank, fixed, syms = self._spec[i]
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

    def _signature(self, key, arrays):
        """Builds (and caches) the _Sig for these argument shapes: checks fixed and
        symbolic dims, asks tlaloc_output_shapes for the outputs."""
        np = _NP["np"]
        full = []
        j = 0
        for i in range(self._nin):
            if i in self._bound_arrays:
                full.append(self._bound_arrays[i])
            else:
                full.append(arrays[j])
                j += 1
        symvals = {}
        for i, a in enumerate(full):
            name, dt, code, rank, fixed, syms = self._spec[i]
            self._check(i, a)
            for k, s in syms:
                v = symvals.setdefault(s, (a.shape[k], name, k))
                if v[0] != a.shape[k]:
                    raise ValueError(
                        "input %r: dim %d (%s) is %d, but %s was bound to %d by input %r"
                        % (name, k, s, a.shape[k], s, v[0], v[1]))
        sig = _Sig()
        sig.ins = (_lib._Tensor * max(self._nin, 1))()
        for i, a in enumerate(full):
            t = sig.ins[i]
            t.dtype = self._spec[i][2]
            t.rank = a.ndim
            for k, d in enumerate(a.shape):
                t.dims[k] = d
            t.data = _c_ptr(a)
        base = ctypes.addressof(sig.ins)
        sz = ctypes.sizeof(_lib._Tensor)
        off = _lib._Tensor.data.offset
        # bound inputs keep their pointer; caller inputs get one set per call
        sig.in_ptrs = [ctypes.c_void_p.from_address(base + i * sz + off) for i in self._arg_pos]
        sig.bound_keep = [full[i] for i in self._bound_arrays]
        sig.outs = (_lib._Tensor * max(self._nout, 1))()
        st = self._shapes(self._ghandle, sig.ins, self._nin, sig.outs, self._nout, self._err_ref)
        if st != 0:
            msg = _lib.take_string(self._g._lib, self._err.value)
            self._err.value = None
            raise _lib.TlalocError(msg or "tlaloc_output_shapes failed (status %d)" % st, status=st)
        dts = _NP["dtypes"]
        obase = ctypes.addressof(sig.outs)
        sig.out_ptrs = []
        sig.small = []
        sig.big = []
        sig.late = []  # outputs whose dims a loop's :stack decides (-1): tlaloc allocates them
        for k in range(self._nout):
            t = sig.outs[k]
            dt = dts[t.dtype]
            shape = tuple(t.dims[:t.rank])
            ptr = ctypes.c_void_p.from_address(obase + k * sz + off)
            sig.out_ptrs.append(ptr)
            if any(d < 0 for d in shape):
                sig.late.append((k, dt, ptr))
                continue
            n = 1
            for d in shape:
                n *= d
            if n == 0:
                ptr.value = _DUMMY_PTR
                sig.small.append((k, np.empty(shape, dt)))
            elif n * dt.itemsize <= _SMALL_BYTES:
                buf = np.empty(shape, dt)
                ptr.value = buf.ctypes.data
                sig.small.append((k, buf))
            else:
                sig.big.append((k, shape, dt, ptr))
        sig.ins_p = ctypes.c_void_p(ctypes.addressof(sig.ins))
        sig.outs_p = ctypes.c_void_p(ctypes.addressof(sig.outs))
        if len(self._cache) > 64:
            self._cache.clear()
        self._cache[key] = sig
        return sig

    def _take_late(self, sig):
        """The outputs tlaloc allocated (their dims known only after the
        run), copied into numpy arrays and released."""
        np = _NP["np"]
        out = []
        for k, dt, ptr in sig.late:
            t = sig.outs[k]
            shape = tuple(t.dims[:t.rank])
            n = 1
            for d in shape:
                n *= d
            o = np.empty(shape, dt)
            if n:
                ctypes.memmove(o.ctypes.data, ptr.value, n * dt.itemsize)
            self._g._lib.tlaloc_free(ptr.value)
            ptr.value = None
            out.append((k, o))
        return out

    def __call__(self, *args, **kwargs):
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
        ndarray = _NDARRAY
        ptrs = []
        arrays = args
        j = 0
        for dt in self._arg_dts:
            a = args[j]
            if type(a) is ndarray and a.dtype is dt:
                try:  # succeeds only for writable C-contiguous arrays
                    ptrs.append(_ADDR(_CCHAR.from_buffer(a)))
                    j += 1
                    continue
                except (TypeError, ValueError, BufferError):
                    pass
            if arrays is args:
                arrays = list(args)
            a = arrays[j] = self._check(self._arg_pos[j], a)
            ptrs.append(a.ctypes.data)
            j += 1
        key = tuple([a.shape for a in arrays])
        sig = self._cache.get(key)
        if sig is None:
            with self._lock:  # the error slot and the graph: one thread at a time
                sig = self._signature(key, arrays)
        with self._lock:
            for p, v in zip(sig.in_ptrs, ptrs):
                p.value = v
            big = None
            if sig.big:
                big = []
                for k, shape, dt, ptr in sig.big:
                    o = _NP["np"].empty(shape, dt)
                    ptr.value = _ADDR(_CCHAR.from_buffer(o))
                    big.append((k, o))
            for _, _, ptr in sig.late:
                ptr.value = None
            st = self._run(self._handle, sig.ins_p, self._cnin, sig.outs_p, self._cnout,
                           self._err_ref)
            if st != 0:
                msg = _lib.take_string(self._g._lib, self._err.value)
                self._err.value = None
                err = _lib.TlalocError(msg or "%s failed (status %d)" % (self._run_name, st), status=st)
            else:
                late = self._take_late(sig) if sig.late else ()
                if self._single:
                    if late:
                        return late[0][1]
                    if big:
                        return big[0][1]
                    return sig.small[0][1].copy()
                results = [None] * self._nout
                for k, buf in sig.small:
                    results[k] = buf.copy()
                for k, o in late:
                    results[k] = o
        if st != 0:
            raise self._located(err, arrays) from None
        if big:
            for k, o in big:
                results[k] = o
        return results


_NDARRAY = None


def _fmt_shape(shape):
    return "(" + ", ".join(str(d) for d in shape) + ("," if len(shape) == 1 else "") + ")"


def function(inputs, outputs, rules=DEFAULT_RULES, cost=None, name="f", limits=None, engine="llvm",
             device=None, threads=0, plugins=None, profile=None, updates=None):
    """Compiles the graph from `inputs` (tl.tensor Vars) to `outputs` (a Var or a list).

    engine="llvm" (default) runs native code from the LLVM backend and raises
    TlalocError when the backend cannot compile the graph; engine="interp"
    runs the reference interpreter; engine="auto" compiles and falls back to
    the interpreter (stats["engine"] == "interpreter-fallback").

    device= says where instead: "cpu" (the LLVM backend), "gpu" (the GPU
    backend: TlalocError "gpu: no CUDA driver ..." without one), "gpu-sim"
    (the GPU's kernels on the host's emulator), "auto" (the CPU or the GPU
    at each call, whichever the cost model predicts faster for its sizes,
    copies included; docs/gpu.md).

    By default the graph is optimized with the shipped rules folder (the
    stability, algebra and fusion rewrites: log(1 + exp(x)) runs as
    softplus(x)); rules=False (or None) runs the graph as written, rules=True
    is the default but raises when the optimizer cannot start (the default
    warns and runs the graph as written), rules=[paths] uses those .rw
    files/folders;
    limits="iters=30,nodes=100000,time=10,mem=512" bounds the saturation;
    cost= is the objective extraction minimises, an expression over cost
    properties ("time", "memory", "time + 1e-9*memory"; default "time + accuracy + 1e-8*code";
    see docs/cost.md). stats then has the extracted program's properties.
    threads: the compiled program's threads for large loops (0: min(2, CPUs);
    tlaloc_compile_options.threads). plugins: cost plugin .so files the
    optimizer loads (their properties can be named in cost=); profile: a
    machine profile file (as `tlaloc calibrate` writes) for the optimizer's
    cost model instead of the stored one (tlaloc_opt_options).

    Shared variables (tl.shared) the outputs read are passed their current
    values; updates=[(shared, new value), ...] stores the new values after
    each call, computed in the same run as the outputs (from the old
    values), as theano.function's updates."""
    if updates or _uses_shared(outputs):
        from .state import SharedFunction
        return SharedFunction(inputs, outputs, updates, rules=rules, cost=cost, name=name,
                              limits=limits, engine=engine, device=device, threads=threads,
                              plugins=plugins, profile=profile)
    return Function(inputs, outputs, rules=rules, cost=cost, name=name, limits=limits,
                    engine=engine, device=device, threads=threads, plugins=plugins, profile=profile)


def _unpickle_function(text, single, bound, travel, output_names, optimized):
    f = Function([], [], rules=False, text=text, bound=bound, **travel)
    f._single = single
    f.output_names = output_names
    f.stats["optimized"] = optimized  # before it travelled
    f.stats["unpickled"] = True
    return f


def _uses_shared(outputs):
    import sys
    mod = sys.modules.get(__package__ + ".state")
    if mod is None:  # tl.shared never called: no Var can be one
        return False
    from .graph import inputs_of
    Shared = mod.Shared
    outs = [outputs] if not isinstance(outputs, (list, tuple)) else list(outputs)
    return any(isinstance(v, Shared) for v in inputs_of([o for o in outs if isinstance(o, Var)]))


def from_tg(text, rules=None, cost=None, bound=None, name="tg", limits=None, engine="llvm", device=None):
    """A Function from .tg text (its own inputs and outputs)."""
    f = Function([], [], rules=rules, cost=cost, name=name, text=text, bound=bound,
                 limits=limits, engine=engine, device=device)
    f._single = f._nout == 1
    return f
