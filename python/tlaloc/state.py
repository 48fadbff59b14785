"""Shared variables and updates, as in Theano/PyTensor.

    w = tl.shared(np.zeros(3), name="w")
    x = tl.tensor("x", "f64", (3,))
    step = tl.function([x], tl.sum(w * x), updates=[(w, w + x)])
    step(np.ones(3)); w.get_value()        # [1. 1. 1.]

A shared variable is a graph input whose value lives in Python: every
Function that uses it reads the value current at the call, and a
Function's updates replace values after its outputs are computed (one
program run computes the outputs and the new values from the old ones,
then the new arrays are stored)."""
import threading

from .graph import Var, as_dtype, as_var, check_name, inputs_of

_counter = [0]
_counter_lock = threading.Lock()


def _np():
    import numpy as np
    return np


class Shared(Var):
    """A graph input with a value of its own (tl.shared). Its shape is the
    value's (concrete); set_value keeps dtype and shape."""

    __slots__ = ("_value",)

    def __init__(self, value, name=None, dtype=None):
        np = _np()
        from .graph import _np_dtype
        a = np.asarray(value)
        if dtype is not None:
            a = a.astype(_np_dtype(as_dtype(dtype)))
        elif a.dtype.kind in "iu" and a.dtype.itemsize < 4 or a.dtype.kind == "u":
            a = a.astype(np.int64)
        elif a.dtype == np.float16:
            a = a.astype(np.float32)
        dt = as_dtype(a.dtype)
        if name is None:
            with _counter_lock:
                name = "shared%d" % _counter[0]
                _counter[0] += 1
        check_name(name, "shared variable name")
        super().__init__("in", (), (), (dt, tuple(int(d) for d in a.shape)), name)
        self._value = np.array(a, dtype=_np_dtype(dt), order="C", copy=True)

    def get_value(self, borrow=False):
        """The current value (a copy; borrow=True: the stored array itself,
        which an update replaces rather than overwrites)."""
        return self._value if borrow else self._value.copy()

    def set_value(self, value, borrow=False):
        """Stores value (converted to this variable's dtype; same shape)."""
        np = _np()
        dt, shape = self.data
        from .graph import _np_dtype
        a = np.asarray(value)
        want = _np_dtype(dt)
        if a.dtype != want:
            if a.dtype.kind == "f" and np.dtype(want).kind in "iub":
                raise TypeError("shared %r is %s; got %s values" % (self.name, dt, a.dtype))
            a = a.astype(want)
        if a.shape != shape:
            raise ValueError("shared %r has shape %s; set_value got %s (the shape is part of "
                             "the compiled graphs)" % (self.name, shape, a.shape))
        if not (borrow and a.flags.c_contiguous and a is value):
            a = np.array(a, order="C", copy=True)
        self._value = a

    def __repr__(self):
        return "<tlaloc.shared %s %s%s>" % (self.name, self.data[0],
                                           "[" + " ".join(str(d) for d in self.data[1]) + "]")


def shared(value, name=None, dtype=None):
    """A shared variable holding a copy of value (numpy array or number)."""
    return Shared(value, name, dtype)


class SharedFunction:
    """A Function over inputs plus the shared variables its graph reads; a
    call passes their current values and then applies the updates."""

    def __reduce__(self):
        raise TypeError("a function over shared variables (tl.shared) does not pickle: their values "
                        "live in this process and updates change them here; pass them as inputs "
                        "(tl.tensor) to a function that travels")

    def __init__(self, inputs, outputs, updates, **kw):
        from .function import Function
        self._single = not isinstance(outputs, (list, tuple))
        outs = [outputs] if self._single else list(outputs)
        outs = [as_var(o) for o in outs]
        inputs = list(inputs)
        for x in inputs:
            if isinstance(x, Shared):
                raise TypeError("shared variable %r cannot be an input of a function: its value "
                                "is passed implicitly (use a tl.tensor input)" % x.name)
        pairs = []
        seen = set()
        for pair in updates or ():
            try:
                w, new = pair
            except (TypeError, ValueError):
                raise TypeError("updates are (shared variable, new value) pairs, got %r"
                                % (pair,)) from None
            if not isinstance(w, Shared):
                raise TypeError("an update's target must be a tl.shared variable, got %r" % (w,))
            if id(w) in seen:
                raise ValueError("shared %r is updated twice" % w.name)
            seen.add(id(w))
            new = as_var(new)
            if new.op == "lit" or new.type != w.type:
                got = new.type if new.op != "lit" else ("a Python number", ())
                raise TypeError("update of shared %r: the new value must have its type %s%s, "
                                "got %s%s (cast or broadcast it)"
                                % (w.name, w.type[0], list(w.type[1]), got[0], list(got[1])))
            pairs.append((w, new))
        names = {x.name for x in inputs}
        shareds = []
        for v in inputs_of(outs + [n for _, n in pairs]):
            if isinstance(v, Shared) and v not in shareds:
                if v.name in names:
                    raise ValueError("shared %r has the name of an input" % v.name)
                names.add(v.name)
                shareds.append(v)
        self.shared = shareds
        self.updates = pairs
        self._nout = len(outs)
        upd_names = ["update_%s" % w.name for w, _ in pairs]
        self.function = Function(inputs + shareds, outs + [n for _, n in pairs],
                                 out_names=[None] * len(outs) + upd_names, **kw)
        self._call = self.function.__call__
        self._lock = threading.Lock()
        self.stats = self.function.stats
        self.graph = self.function.graph
        self.optimized_graph = self.function.optimized_graph

    @property
    def engine(self):
        return self.function.engine

    def __repr__(self):
        return "<tlaloc.Function with %d shared, %d updates>" % (len(self.shared),
                                                                len(self.updates))

    def __call__(self, *args, **kwargs):
        with self._lock:  # the values read and the updates written: one call at a time
            vals = [s._value for s in self.shared]
            res = self._call(*args, *vals, **kwargs)
            k = self._nout
            for (w, _), v in zip(self.updates, res[k:]):
                w._value = v  # a fresh array from this run
        if self._single:
            return res[0]
        return res[:k]
