"""tlaloc: a tensor-graph optimizer/compiler, from Python.

    import numpy as np, tlaloc as tl
    x = tl.tensor("x", "f32", ("n", 10)); y = tl.tensor("y", "f32", ("n", 10))
    loss = -tl.mean(tl.sum(y * tl.log_softmax(x, axis=1), axis=1))
    f = tl.function([x, y], loss)
    f(np.random.rand(4, 10).astype("f4"), np.eye(10, dtype="f4")[:4])
    dx = tl.grad(loss, x)          # symbolic, as theano.grad; tl.vjp, tl.jvp too

Importing is cheap: numpy and libtlaloc.so are loaded on first use.
"""
from ._lib import TlalocError, library, version
from .graph import *  # noqa: F401,F403
from .graph import Var, tensor, scalar, vector, matrix, constant, emit, inputs_of  # noqa: F401
from .function import Function, function, from_tg  # noqa: F401
from .autodiff import grad, vjp, jvp  # noqa: F401
from .control import cond, ifelse, while_loop, while_scan, fori_loop, scan, fn  # noqa: F401

__version__ = "0.1.0"


def __getattr__(name):
    """tl.random and tl.shared (loaded on first use), and ops of the op table without a
    function of their own (graph.__getattr__)."""
    if name == "random":
        import importlib
        return importlib.import_module(".random", __name__)
    if name in ("shared", "Shared"):
        from . import state as mod
        globals()[name] = v = getattr(mod, name)
        return v
    from . import graph
    return getattr(graph, name)


def parse(text, file="<python>"):
    """Parses .tg text; returns the canonical text (raises TlalocError on errors)."""
    from ._lib import Graph
    return Graph(text, file).printed()
