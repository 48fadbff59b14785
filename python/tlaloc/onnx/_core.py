"""The importer's core: OnnxGraph, which walks a model's graph node by node
into tlaloc Vars; the converter registry (_reg, _HANDLERS) and the input
helpers _need/_opt; dtypes, and the narrow integer types (int8, uint8,
int16, uint16, uint32) held in int64 and wrapped after each node; per-op
type inference (_ty); and the evaluation of values known at import
(_evaluate, OnnxGraph._static).
"""
import re

import numpy as np
import onnx as _onnx
from onnx import numpy_helper as _nh

from .. import _lib
from .. import graph as _g
from ..function import Function as _Function


class UnsupportedOnnx(NotImplementedError):
    """The model uses something tlaloc cannot express; .op names the op (or None)."""

    def __init__(self, msg, op=None):
        super().__init__(msg)
        self.op = op


_TP = _onnx.TensorProto
_DT = {_TP.FLOAT: "f32", _TP.DOUBLE: "f64", _TP.INT32: "i32", _TP.INT64: "i64",
       _TP.BOOL: "bool"}
_NP_DT = {"f32": np.float32, "f64": np.float64, "i32": np.int32, "i64": np.int64,
          "bool": np.bool_}


def _dtname(code):
    try:
        return _TP.DataType.Name(code)
    except Exception:
        return str(code)


# 8-, 16- and 32-bit integer types tlaloc lacks are held exactly in i64 (the
# "container"): after every node, a value of such a type is reduced into its
# range (wrap-around, as numpy's fixed-width arithmetic in the ONNX
# reference), so each op sees the narrow values. i64 arithmetic wraps modulo
# 2^64, which 2^8, 2^16 and 2^32 divide, so + - * and integer powers stay
# exact modulo the narrow width. Inputs and outputs of these types are
# converted at the call (tlo.function): every value is in range, so the
# conversion changes none.
_NARROW = {_TP.UINT8: (np.uint8, 8, False), _TP.INT8: (np.int8, 8, True),
           _TP.UINT16: (np.uint16, 16, False), _TP.INT16: (np.int16, 16, True),
           _TP.UINT32: (np.uint32, 32, False)}
_NARROW_NP = {np.dtype(v[0]): k for k, v in _NARROW.items()}


def _tl_dtype(code, what):
    if code in _NARROW:
        return "i64"
    try:
        return _DT[code]
    except KeyError:
        raise UnsupportedOnnx("%s has dtype %s; tlaloc has bool, int32, int64, float, double "
                              "(and holds int8, uint8, int16, uint16, uint32 in int64)"
                              % (what, _dtname(code))) from None


def _widen(arr):
    """A numpy array of a narrow integer type as int64 (other arrays as they are)."""
    arr = np.asarray(arr)
    return arr.astype(np.int64) if arr.dtype in _NARROW_NP else arr


def _wrap(v, code):
    """v (i64) reduced into the range of narrow type `code`, modulo 2^bits."""
    _, bits, signed = _NARROW[code]
    M = 1 << bits
    if signed:
        return _g.subtract(_g.remainder(_g.add(v, M // 2), M), M // 2)
    return _g.remainder(v, M)


# ops whose result is one of their inputs' values (rearranged or selected):
# no wrap needed when the output has the inputs' narrow type
_RANGE_KEEPING = {"Identity", "Reshape", "Transpose", "Squeeze", "Unsqueeze", "Slice", "Gather",
                  "GatherElements", "GatherND", "Concat", "Split", "Flatten", "Expand", "Tile",
                  "Max", "Min", "MaxPool", "Where", "ReduceMax", "ReduceMin", "Compress",
                  "DepthToSpace", "SpaceToDepth", "Pad", "ReverseSequence", "Clip", "Dropout"}


def _uses_narrow(model):
    """Whether a narrow integer type appears anywhere in the main graph."""
    g = model.graph
    for vi in list(g.input) + list(g.output) + list(g.value_info):
        if vi.type.HasField("tensor_type") and vi.type.tensor_type.elem_type in _NARROW:
            return True
    if any(t.data_type in _NARROW for t in g.initializer):
        return True
    for n in g.node:
        for a in n.attribute:
            if a.name in ("to", "dtype") and a.i in _NARROW:
                return True
            if a.HasField("t") and a.t.data_type in _NARROW:
                return True
    return False


_SAN = re.compile(r"[^A-Za-z0-9_.]")

# Values computed from constants only are evaluated at import when an op
# needs them static; bigger ones are refused rather than materialised.
_FOLD_LIMIT = 1 << 16


def _ty(v):
    """(dtype, shape) of a Var, as tlaloc infers it.

    Var.type re-parses the whole subgraph under v, which is quadratic over a
    deep network; here each op is typed once, from a one-op graph whose
    operands are stand-in inputs of the operands' (already known) types."""
    if v._type is not None:
        return v._type
    stack = [v]
    while stack:
        u = stack[-1]
        if u._type is not None:
            stack.pop()
            continue
        if u.op in ("in", "lit", "const", "fill"):
            u.type  # leaves: cheap
            stack.pop()
            continue
        todo = [a for a in u.args if a._type is None]
        if todo:
            stack.extend(todo)
            continue
        stack.pop()
        if u.op == "_alias":
            u._type = u.args[0]._type
            continue
        stand = {}
        args = []
        for a in u.args:
            if a.op == "lit":  # literals stay literals: they are weakly typed
                args.append(a)
                continue
            if id(a) not in stand:
                stand[id(a)] = _g.Var("in", (), (), a._type, "a%d" % len(stand))
            args.append(stand[id(a)])
        q = _g.Var(u.op, args, u.attrs)
        text = _g.emit(list(stand.values()), [q], ["v"], "type_query")
        u._type = _lib.parse_type(_lib.Graph(text, "<type query: %s>" % u.op).outputs()[0][1])
    return v._type


def _evaluate(v):
    """Runs a Var that depends on no graph input with tlaloc's interpreter."""
    f = _Function([], [v], name="fold")
    return np.asarray(f())



class OnnxGraph:
    """An imported model: .text (the .tg), .input_names (to pass, in order),
    .bound ({input name: array} for large initializers), .output_names."""

    def __init__(self, model, const_limit=1024, name=None, static_inputs=None):
        if isinstance(model, (str, bytes)) or hasattr(model, "__fspath__"):
            model = _onnx.load(model)
        self.model = model
        self.const_limit = const_limit
        self.opset = None
        for o in model.opset_import:
            if o.domain in ("", "ai.onnx"):
                self.opset = o.version
            elif o.domain != "ai.onnx.ml" or any(n.domain == o.domain for n in model.graph.node):
                pass
        if self.opset is None:
            self.opset = 1
        g = model.graph
        # ONNX element types of the values, where a narrow integer type is
        # involved (their results must be wrapped into range)
        self.ltype = {}
        if _uses_narrow(model):
            try:
                inf = _onnx.shape_inference.infer_shapes(model)
            except Exception as e:
                raise UnsupportedOnnx("int8/16 or uint8/16/32 values need ONNX's type inference, "
                                      "which failed: %s" % e) from None
            for vi in list(inf.graph.input) + list(inf.graph.output) + list(inf.graph.value_info):
                if vi.type.HasField("tensor_type") and vi.type.tensor_type.elem_type:
                    self.ltype[vi.name] = vi.type.tensor_type.elem_type
            for t in g.initializer:
                self.ltype[t.name] = t.data_type
        self.input_np = []   # per caller input: its numpy dtype when narrow, else None
        self.output_np = []  # per output: its numpy dtype when narrow, else None
        self.env = {}      # onnx name -> Var
        self.consts = {}   # onnx name -> numpy array when statically known
        self.names = {}    # tlaloc names in use
        self.in_vars = []
        self.in_onnx = {}  # id(input Var) -> ONNX graph input name
        self.bound = {}
        inits = {t.name: t for t in g.initializer}
        for t in g.sparse_initializer:
            raise UnsupportedOnnx("sparse initializer %s" % t.values.name)
        real_inputs = [i for i in g.input if i.name not in inits]
        self.input_names = []
        static_inputs = dict(static_inputs or {})
        for k in static_inputs:
            if k not in [i.name for i in real_inputs]:
                raise ValueError("static_inputs: %r is not a graph input" % k)
        for vi in real_inputs:
            if vi.name in static_inputs:
                arr = np.asarray(static_inputs[vi.name])
                self.consts[vi.name] = arr
                self.env[vi.name] = self._const_var(arr)
                continue
            v = self._declare_input(vi)
            self.input_names.append(v.name)
            code = vi.type.tensor_type.elem_type
            self.input_np.append(np.dtype(_NARROW[code][0]) if code in _NARROW else None)
        for name, t in inits.items():
            arr = _nh.to_array(t)
            self._add_initializer(name, arr)
        for node in g.node:
            self._node(node)
        outs = []
        self.output_names = []
        for vi in g.output:
            if vi.name not in self.env:
                raise UnsupportedOnnx("graph output %s is not computed" % vi.name)
            v = self.env[vi.name]
            tt = vi.type.tensor_type if vi.type.HasField("tensor_type") else None
            if tt is None:
                raise UnsupportedOnnx("graph output %s is not a tensor" % vi.name)
            want = _tl_dtype(tt.elem_type, "output %s" % vi.name) if tt.elem_type else None
            if want is not None and self._dtype(v) != want:
                v = _g.cast(v, want)
            if tt.elem_type in _NARROW and self.ltype.get(vi.name) != tt.elem_type:
                v = _wrap(v, tt.elem_type)
            self.output_np.append(np.dtype(_NARROW[tt.elem_type][0]) if tt.elem_type in _NARROW else None)
            outs.append(v)
            self.output_names.append(self._fresh(vi.name))
        gname = self._sanitize(name or g.name or "onnx")
        self.text = _g.emit(self.in_vars, outs, self.output_names, gname)

    # -- names, inputs, constants --
    def _sanitize(self, name):
        s = _SAN.sub("_", name) or "v"
        if not (s[0].isalpha() or s[0] == "_"):
            s = "v_" + s
        if s in _g._STATEMENTS:
            s = s + "_"
        return s

    def _fresh(self, name):
        s = self._sanitize(name)
        base, k = s, 1
        while s in self.names:
            s = "%s_%d" % (base, k)
            k += 1
        self.names[s] = True
        return s

    def _declare_input(self, vi):
        if not vi.type.HasField("tensor_type"):
            raise UnsupportedOnnx("input %s is not a tensor (sequence/optional/map)" % vi.name)
        tt = vi.type.tensor_type
        dt = _tl_dtype(tt.elem_type, "input %s" % vi.name)
        if not tt.HasField("shape"):
            raise UnsupportedOnnx("input %s has no shape (unknown rank)" % vi.name)
        dims = []
        for k, d in enumerate(tt.shape.dim):
            if d.HasField("dim_value"):
                dims.append(int(d.dim_value))
            elif d.HasField("dim_param"):
                dims.append(self._sanitize(d.dim_param))
            else:
                dims.append(self._sanitize("%s_d%d" % (vi.name, k)))
        v = _g.tensor(self._fresh(vi.name), dt, tuple(dims))
        self.in_vars.append(v)
        self.env[vi.name] = v
        self.in_onnx[id(v)] = vi.name
        return v

    def _add_initializer(self, name, arr):
        self.consts[name] = arr
        arr = _widen(arr)
        dt = _NP_TO_TL.get(arr.dtype.type)
        if dt is None:
            raise UnsupportedOnnx("initializer %s has dtype %s" % (name, arr.dtype))
        if arr.size <= self.const_limit:
            self.env[name] = _g.constant(arr)
        else:
            v = _g.tensor(self._fresh(name), dt, tuple(int(d) for d in arr.shape))
            self.in_vars.append(v)
            self.bound[v.name] = np.ascontiguousarray(arr)
            self.env[name] = v

    def _const_var(self, arr):
        arr = _widen(arr)
        if _NP_TO_TL.get(arr.dtype.type) is None:
            raise UnsupportedOnnx("constant of dtype %s" % arr.dtype)
        if arr.size <= self.const_limit:
            return _g.constant(arr)
        v = _g.tensor(self._fresh("const"), _NP_TO_TL[arr.dtype.type], tuple(arr.shape))
        self.in_vars.append(v)
        self.bound[v.name] = np.ascontiguousarray(arr)
        return v

    # -- helpers for handlers --
    def _dtype(self, v):
        return _ty(v)[0]

    def _rank(self, v):
        return len(_ty(v)[1])

    def _shape(self, v, op):
        shape = _ty(v)[1]
        for d in shape:
            if isinstance(d, str):
                raise UnsupportedOnnx("%s needs a static shape, got symbolic dim %s" % (op, d), op)
        return shape

    def _static(self, name, op, what):
        """The value of ONNX tensor `name`, which must be known when importing.
        A value computed only from constants is evaluated once by tlaloc's
        interpreter (e.g. a Range limit computed from a frozen input)."""
        if name in self.consts:
            return self.consts[name]
        v = self.env.get(name)
        deps = _g.inputs_of([v]) if v is not None else []
        if v is not None and not deps:
            n = int(np.prod([d for d in _ty(v)[1]], dtype=np.int64))
            if n <= _FOLD_LIMIT:
                arr = _evaluate(v)
                self.consts[name] = arr
                return arr
        e = UnsupportedOnnx("%s: input %s (%s) must be a constant (initializer, Constant, "
                            "or a graph input frozen with static_inputs=)" % (op, what, name), op)
        # the graph input this value is computed from, which a caller can freeze
        e.needs_static = name
        for d in deps:
            if id(d) in self.in_onnx and d.name not in self.bound:
                e.needs_static = self.in_onnx[id(d)]
                break
        raise e

    def _inline(self, graph, args, op, static=()):
        """Imports a subgraph (a Loop/Scan body, an If branch) in this graph's
        scope -- outer names stay visible -- with its inputs bound to `args`
        (Vars); returns its output Vars, and the values of the outputs listed
        in `static`, which must be known at import. Names the body defines are
        restored afterwards, so a body can be imported once per iteration."""
        names = [i.name for i in graph.input]
        if len(names) != len(args):
            raise UnsupportedOnnx("%s: body takes %d inputs, given %d" % (op, len(names), len(args)), op)
        touched = set(names) | {o for n in graph.node for o in n.output} | \
            {t.name for t in graph.initializer}
        saved = {k: (self.env.get(k), self.consts.get(k)) for k in touched}
        try:
            for nm, v in zip(names, args):
                self.env[nm] = v
                self.consts.pop(nm, None)
                if v.op == "const":  # a constant argument stays usable where a value must be static
                    dt, shape, vals = v.data
                    self.consts[nm] = np.asarray(vals, _npdt(dt)).reshape(shape)
            for t in graph.initializer:
                self._add_initializer(t.name, _nh.to_array(t))
            for node in graph.node:
                self._node(node)
            outs = []
            for o in graph.output:
                if o.name not in self.env:
                    raise UnsupportedOnnx("%s: body output %s is not computed" % (op, o.name), op)
                outs.append(self.env[o.name])
            vals = [self._static(graph.output[k].name, op, "body output %d" % k) for k in static]
            return outs, vals
        finally:
            for k, (v, c) in saved.items():
                if v is None:
                    self.env.pop(k, None)
                else:
                    self.env[k] = v
                if c is None:
                    self.consts.pop(k, None)
                else:
                    self.consts[k] = c

    def _narrow_result(self, node, o, r):
        """Wraps a node's result into the range of its narrow type (if any)."""
        code = self.ltype.get(o)
        if code is None:
            if any(self.ltype.get(n) in _NARROW for n in node.input if n):
                raise UnsupportedOnnx("%s: the type of %s (from narrow integer inputs) is not "
                                      "inferred" % (node.op_type, o), node.op_type)
            return r
        if code not in _NARROW:
            return r
        if node.op_type in _RANGE_KEEPING and all(
                self.ltype.get(n) == code for n in node.input[:1] if n):
            return r
        if self._dtype(r) != "i64":
            r = _g.cast(r, "i64")
        return _wrap(r, code)

    def _node(self, node):
        op = node.op_type
        if node.domain not in ("", "ai.onnx") and not (node.domain == _TRAINING and op in _TRAINING_OPS):
            raise UnsupportedOnnx("op %s of domain %s" % (op, node.domain), op)
        h = _HANDLERS.get(op)
        if h is None:
            raise UnsupportedOnnx("ONNX op %s is not supported by tlaloc" % op, op)
        fn, allowed = h
        attrs = {}
        for a in node.attribute:
            if a.name not in allowed:
                raise UnsupportedOnnx("%s: attribute %s is not supported" % (op, a.name), op)
            attrs[a.name] = _onnx.helper.get_attribute_value(a)
        for k, d in allowed.items():
            attrs.setdefault(k, d)
        ins = []
        for n in node.input:
            if n == "":
                ins.append(None)
            elif n in self.env:
                ins.append(self.env[n])
            else:
                raise UnsupportedOnnx("%s: input %s is not defined" % (op, n), op)
        try:
            res = fn(self, node, ins, attrs)
        except UnsupportedOnnx as e:
            if e.op is None:
                e.op = op
            raise
        if not isinstance(res, (list, tuple)):
            res = [res]
        outs = [o for o in node.output]
        for k, o in enumerate(outs):
            if o == "":
                continue
            if k >= len(res) or res[k] is None:
                raise UnsupportedOnnx("%s: output %d (%s) is not supported" % (op, k, o), op)
            r = res[k]
            if isinstance(r, np.ndarray):
                self.consts[o] = r
                r = self._const_var(r)
            elif self.ltype:
                r = self._narrow_result(node, o, r)
            _ty(r)  # type-checks the node now, and keeps later queries one op deep
            self.env[o] = r


# -- the converter registry: @_reg("Op1 Op2", attr=default, ...) registers a
# converter fn(m: OnnxGraph, node, ins: [Var or None], at: {attr: value})
# returning a Var, a numpy array (a value known at import) or a list of them

_NP_TO_TL = {np.float32: "f32", np.float64: "f64", np.int32: "i32", np.int64: "i64",
             np.bool_: "bool"}
_HANDLERS = {}


def _reg(names, **allowed):
    def deco(fn):
        for n in names.split():
            _HANDLERS[n] = (fn, allowed)
        return fn
    return deco


def _need(op, ins, k):
    if k >= len(ins) or ins[k] is None:
        raise UnsupportedOnnx("%s: missing input %d" % (op, k), op)
    return ins[k]


def _opt(ins, k):
    return ins[k] if k < len(ins) else None


def _npdt(dt):
    return _NP_DT[dt]


# the one domain besides the default whose ops are imported: its optimizer
# steps (_training.py)
_TRAINING = "ai.onnx.preview.training"
_TRAINING_OPS = ("Adagrad", "Adam", "Momentum")
