"""ONNX models -> tlaloc .tg graphs (read with Debian's python3-onnx).

    import tlaloc.onnx as tlo
    m = tlo.load("model.onnx")        # m.text is the .tg graph
    f = tlo.function("model.onnx")    # callable: one numpy array per graph input

Every ONNX op that tlaloc's IR can express exactly is mapped, with its
attributes and opset differences; anything else -- an op, an attribute, a
dtype, a data-dependent shape -- raises UnsupportedOnnx naming it. Nothing
is dropped or approximated. Initializers with at most `const_limit`
elements become (const ...) literals; larger ones become graph inputs bound
to their values (the returned function passes them itself).

Ops without a tlaloc op are decomposed into tlaloc ops exactly (docs/onnx.md
has the table): ArgMax as a min over matching positions, Conv as im2col and
one matmul, pooling as strided slices, Resize as static gathers and
weights, RNNs unrolled, scatters as one-hot selects, ... int8/uint8/int16/
uint16/uint32 values are held in int64 and wrapped into range after each
node.

This package: _core (OnnxGraph, the converter registry, dtypes and narrow
integers, type inference, import-time evaluation), _helpers (building
blocks shared by the converters), and one module per op family, each
registering its converters with _reg when imported here: _elementwise,
_linalg, _reductions, _tensor, _index, _nn, _resample, _rnns, _control,
_signal, _text, _quant, _training.
"""
import numpy as np

from ..function import Function as _Function
from ._core import (  # noqa: F401 (the internals the module had)
    UnsupportedOnnx, OnnxGraph, _HANDLERS, _reg, _need, _opt, _ty, _evaluate, _tl_dtype, _widen,
    _wrap, _NARROW, _NP_TO_TL)
# The converters, registered on import. Each one is exact (the same values
# as the ONNX reference, up to the summation order of a reduction);
# attribute values that cannot be expressed are refused by name.
from . import (  # noqa: F401
    _elementwise, _linalg, _reductions, _tensor, _index, _nn, _resample, _rnns, _control, _signal,
    _text, _quant, _training)

__all__ = ["UnsupportedOnnx", "load", "to_tg", "function", "OnnxGraph", "SUPPORTED_OPS"]


def load(model, const_limit=1024, name=None, static_inputs=None):
    """Imports an ONNX model (a path or a ModelProto) -> OnnxGraph.

    static_inputs={name: array} freezes graph inputs to constants (needed
    where a shape depends on them: Reshape's shape, Slice's starts, ...)."""
    return OnnxGraph(model, const_limit, name, static_inputs)


def to_tg(model, const_limit=1024):
    return load(model, const_limit).text


def function(model, const_limit=1024, rules=None, cost=None, limits=None, engine="llvm"):
    """A tlaloc Function for the model: call it with the graph inputs (not
    the initializers) in order; it returns the list of outputs. engine= as
    for tlaloc.function: "llvm" (compiled, the default), "interp" (the
    reference interpreter) or "auto" (compiled, else interpreted)."""
    g = load(model, const_limit) if not isinstance(model, OnnxGraph) else model
    f = _Function([], [], rules=rules, cost=cost, name="onnx", text=g.text, bound=g.bound,
                  limits=limits, engine=engine)
    f._single = False
    f.onnx = g
    if any(d is not None for d in g.input_np + g.output_np):
        return _NarrowFunction(f, g)
    return f


class _NarrowFunction:
    """A Function over narrow integer inputs/outputs: takes and returns them
    with their numpy dtypes, passing them to tlaloc as int64 (every value is
    in range both ways, so the conversions are exact)."""

    def __init__(self, f, g):
        self.function = f
        self.onnx = g

    def __getattr__(self, name):
        return getattr(self.function, name)

    def __call__(self, *args):
        conv = []
        for k, a in enumerate(args):
            want = self.onnx.input_np[k] if k < len(self.onnx.input_np) else None
            if want is not None:
                a = np.asarray(a)
                if a.dtype != want:
                    raise TypeError("input %r: expected dtype %s, got %s"
                                    % (self.onnx.input_names[k], want, a.dtype))
                a = a.astype(np.int64)  # a C-contiguous copy (0-d stays 0-d)
            conv.append(a)
        outs = self.function(*conv)
        return [o if d is None else o.astype(d) for o, d in zip(outs, self.onnx.output_np)]


SUPPORTED_OPS = sorted(_HANDLERS)
