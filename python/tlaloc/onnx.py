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
"""
import re

import numpy as np
import onnx as _onnx
from onnx import numpy_helper as _nh

from . import _lib
from . import graph as _g
from .function import Function as _Function

__all__ = ["UnsupportedOnnx", "load", "to_tg", "function", "OnnxGraph", "SUPPORTED_OPS"]


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


_UN = {"Neg": _g.negative, "Abs": _g.absolute, "Exp": _g.exp, "Log": _g.log,
       "Sqrt": _g.sqrt, "Sin": _g.sin, "Cos": _g.cos, "Tanh": _g.tanh,
       "Sigmoid": _g.sigmoid, "Softplus": _g.softplus, "Erf": _g.erf, "Floor": _g.floor,
       "Ceil": _g.ceil, "Sign": _g.sign, "Not": _g.logical_not, "Tan": _g.tan,
       "Sinh": _g.sinh, "Cosh": _g.cosh}


@_reg(" ".join(_UN))
def _unary(m, node, ins, at):
    x = _need(node.op_type, ins, 0)
    r = _UN[node.op_type](x)
    return _keep(m, x, r)


def _keep(m, x, r):
    """Casts r back to x's dtype where tlaloc's promotion differs from ONNX's
    (ONNX ops keep the operand dtype)."""
    dt = m._dtype(x)
    if m._dtype(r) != dt:
        r = _g.cast(r, dt)
    return r


@_reg("Reciprocal")
def _recip(m, node, ins, at):
    x = _need("Reciprocal", ins, 0)
    return _keep(m, x, _g.divide(1, x))


@_reg("Identity")
def _identity(m, node, ins, at):
    return _need("Identity", ins, 0)


_BIN = {"Add": _g.add, "Sub": _g.subtract, "Mul": _g.multiply, "And": _g.logical_and,
        "Or": _g.logical_or, "Xor": _g.not_equal, "Equal": _g.equal, "Less": _g.less,
        "LessOrEqual": _g.less_equal, "Greater": _g.greater,
        "GreaterOrEqual": _g.greater_equal}


@_reg(" ".join(_BIN))
def _binary(m, node, ins, at):
    a, b = _need(node.op_type, ins, 0), _need(node.op_type, ins, 1)
    return _BIN[node.op_type](a, b)


@_reg("Div")
def _div(m, node, ins, at):
    a, b = _need("Div", ins, 0), _need("Div", ins, 1)
    return _keep(m, a, _g.divide(a, b))  # integers: truncated, as ONNX's reference


@_reg("Pow")
def _pow(m, node, ins, at):
    a, b = _need("Pow", ins, 0), _need("Pow", ins, 1)
    return _keep(m, a, _g.power(a, b))  # result has the base's dtype


@_reg("Mod", fmod=0)
def _mod(m, node, ins, at):
    a, b = _need("Mod", ins, 0), _need("Mod", ins, 1)
    if not at["fmod"]:
        return _g.remainder(a, b)
    # C fmod: the sign of a, the magnitude of |a| mod |b|, which numpy's
    # remainder gives exactly for non-negative operands
    r = _g.remainder(_g.absolute(a), _g.absolute(b))
    return _g.where(_g.less(a, 0), _g.negative(r), r)


@_reg("Where")
def _where(m, node, ins, at):
    return _g.where(_need("Where", ins, 0), _need("Where", ins, 1), _need("Where", ins, 2))


@_reg("Max Min Sum Mean")
def _variadic(m, node, ins, at):
    op = node.op_type
    xs = [x for x in ins if x is not None]
    if not xs:
        raise UnsupportedOnnx("%s with no inputs" % op, op)
    f = {"Max": _g.maximum, "Min": _g.minimum, "Sum": _g.add, "Mean": _g.add}[op]
    out = xs[0]
    for x in xs[1:]:
        out = f(out, x)
    if op == "Mean":
        out = _keep(m, xs[0], _g.divide(out, len(xs)))
    elif len(xs) == 1:
        out = _g.Var("_alias", (out,), (), None, None) if False else out
    return out


@_reg("Relu")
def _relu(m, node, ins, at):
    return _g.maximum(_need("Relu", ins, 0), 0)


@_reg("LeakyRelu", alpha=0.01)
def _leaky(m, node, ins, at):
    x = _need("LeakyRelu", ins, 0)
    return _g.where(_g.less(x, 0), _g.multiply(x, float(at["alpha"])), x)


@_reg("PRelu")
def _prelu(m, node, ins, at):
    x, s = _need("PRelu", ins, 0), _need("PRelu", ins, 1)
    return _g.where(_g.less(x, 0), _g.multiply(x, s), x)


@_reg("Elu", alpha=1.0)
def _elu(m, node, ins, at):
    x = _need("Elu", ins, 0)
    return _g.where(_g.less(x, 0), _g.multiply(float(at["alpha"]), _g.expm1(x)), x)


@_reg("Celu", alpha=1.0)
def _celu(m, node, ins, at):
    x = _need("Celu", ins, 0)
    a = float(at["alpha"])
    return _g.add(_g.maximum(x, 0), _g.minimum(0, _g.multiply(a, _g.expm1(_g.divide(x, a)))))


@_reg("Selu", alpha=1.67326319217681884765625, gamma=1.05070102214813232421875)
def _selu(m, node, ins, at):
    x = _need("Selu", ins, 0)
    a, gm = float(at["alpha"]), float(at["gamma"])
    return _g.multiply(gm, _g.where(_g.less_equal(x, 0), _g.multiply(a, _g.expm1(x)), x))


@_reg("ThresholdedRelu", alpha=1.0)
def _trelu(m, node, ins, at):
    x = _need("ThresholdedRelu", ins, 0)
    return _g.where(_g.greater(x, float(at["alpha"])), x, 0)


@_reg("HardSigmoid", alpha=0.2, beta=0.5)
def _hsig(m, node, ins, at):
    x = _need("HardSigmoid", ins, 0)
    return _g.maximum(0, _g.minimum(1, _g.add(_g.multiply(float(at["alpha"]), x),
                                               float(at["beta"]))))


@_reg("HardSwish")
def _hswish(m, node, ins, at):
    x = _need("HardSwish", ins, 0)
    return _g.multiply(x, _g.maximum(0, _g.minimum(1, _g.add(_g.multiply(1 / 6, x), 0.5))))


@_reg("Softsign")
def _softsign(m, node, ins, at):
    x = _need("Softsign", ins, 0)
    return _g.divide(x, _g.add(1, _g.absolute(x)))


@_reg("Mish")
def _mish(m, node, ins, at):
    x = _need("Mish", ins, 0)
    return _g.multiply(x, _g.tanh(_g.softplus(x)))


@_reg("IsNaN")
def _isnan(m, node, ins, at):
    x = _need("IsNaN", ins, 0)
    return _g.not_equal(x, x)


@_reg("IsInf", detect_negative=1, detect_positive=1)
def _isinf(m, node, ins, at):
    x = _need("IsInf", ins, 0)
    pos = _g.equal(x, float("inf"))
    neg = _g.equal(x, float("-inf"))
    if at["detect_negative"] and at["detect_positive"]:
        return _g.logical_or(pos, neg)
    if at["detect_positive"]:
        return pos
    if at["detect_negative"]:
        return neg
    return _g.not_equal(x, x) if False else _g.logical_and(pos, neg)


@_reg("Cast", to=None, saturate=1)
def _cast(m, node, ins, at):
    x = _need("Cast", ins, 0)
    dt = _tl_dtype(at["to"], "Cast to")
    src = m._dtype(x)
    if src == dt:
        return x
    return _g.cast(x, dt)


@_reg("CastLike", saturate=1)
def _castlike(m, node, ins, at):
    x, y = _need("CastLike", ins, 0), _need("CastLike", ins, 1)
    return _g.cast(x, m._dtype(y))


@_reg("MatMul")
def _matmul(m, node, ins, at):
    return _g.matmul(_need("MatMul", ins, 0), _need("MatMul", ins, 1))


@_reg("Gemm", alpha=1.0, beta=1.0, transA=0, transB=0, broadcast=0)
def _gemm(m, node, ins, at):
    a, b, c = _need("Gemm", ins, 0), _need("Gemm", ins, 1), _opt(ins, 2)
    if at["transA"]:
        a = _g.transpose(a)
    if at["transB"]:
        b = _g.transpose(b)
    y = _g.matmul(a, b)
    if float(at["alpha"]) != 1.0:
        y = _g.multiply(float(at["alpha"]), y)
    if c is not None and float(at["beta"]) != 0.0:
        if float(at["beta"]) != 1.0:
            c = _g.multiply(float(at["beta"]), c)
        y = _g.add(y, c)
    return y


def _axes_from(m, node, ins, at, input_index, since):
    """Axes from the attribute (opset < since) or from input `input_index`."""
    if m.opset >= since:
        if "axes" in at and at["axes"] is not None:
            raise UnsupportedOnnx("%s: attribute axes at opset %d" % (node.op_type, m.opset))
        v = _opt(ins, input_index)
        if v is None:
            return None
        arr = m._static(node.input[input_index], node.op_type, "axes")
        return [int(a) for a in np.asarray(arr).ravel()]
    ax = at.get("axes")
    return None if ax is None else [int(a) for a in ax]


_RED = {"ReduceSum": 13, "ReduceMean": 18, "ReduceMax": 18, "ReduceMin": 18,
        "ReduceProd": 18, "ReduceLogSumExp": 18, "ReduceL1": 18, "ReduceL2": 18,
        "ReduceSumSquare": 18, "ReduceLogSum": 18}


@_reg(" ".join(_RED), axes=None, keepdims=1, noop_with_empty_axes=0)
def _reduce(m, node, ins, at):
    op = node.op_type
    x = _need(op, ins, 0)
    axes = _axes_from(m, node, ins, at, 1, _RED[op])
    if axes is not None and len(axes) == 0:
        axes = None
    if axes is None and at["noop_with_empty_axes"]:
        return x
    kd = bool(at["keepdims"])
    ax = axes if axes is None or len(axes) != 1 else axes[0]
    if op == "ReduceSum":
        r = _g.sum(x, ax, kd)
    elif op == "ReduceMean":
        r = _g.mean(x, ax, kd)
    elif op == "ReduceMax":
        r = _g.max(x, ax, kd)
    elif op == "ReduceMin":
        r = _g.min(x, ax, kd)
    elif op == "ReduceProd":
        r = _g.prod(x, ax, kd)
    elif op == "ReduceLogSumExp":
        r = _g.logsumexp(x, ax, kd)
    elif op == "ReduceL1":
        r = _g.sum(_g.absolute(x), ax, kd)
    elif op == "ReduceL2":
        r = _g.sqrt(_g.sum(_g.multiply(x, x), ax, kd))
    elif op == "ReduceSumSquare":
        r = _g.sum(_g.multiply(x, x), ax, kd)
    else:  # ReduceLogSum
        r = _g.log(_g.sum(x, ax, kd))
    return _keep(m, x, r)


@_reg("Softmax LogSoftmax", axis=None)
def _softmax(m, node, ins, at):
    op = node.op_type
    x = _need(op, ins, 0)
    f = _g.softmax if op == "Softmax" else _g.log_softmax
    if m.opset >= 13:
        axis = -1 if at["axis"] is None else int(at["axis"])
        return _keep(m, x, f(x, axis))
    # opset < 13: the input is coerced to 2-D [prod(d[:axis]), prod(d[axis:])]
    axis = 1 if at["axis"] is None else int(at["axis"])
    shape = m._shape(x, op)
    r = len(shape)
    if axis < 0:
        axis += r
    if axis == r - 1:
        return _keep(m, x, f(x, -1))
    outer = int(np.prod(shape[:axis], dtype=np.int64))
    inner = int(np.prod(shape[axis:], dtype=np.int64))
    y = f(_g.reshape(x, (outer, inner)), 1)
    return _keep(m, x, _g.reshape(y, shape))


@_reg("Transpose", perm=None)
def _transpose(m, node, ins, at):
    x = _need("Transpose", ins, 0)
    return _g.transpose(x, None if at["perm"] is None else list(at["perm"]))


@_reg("Reshape", allowzero=0, shape=None)
def _reshape(m, node, ins, at):
    x = _need("Reshape", ins, 0)
    if m.opset < 5:
        shape = list(at["shape"])
    else:
        shape = [int(s) for s in np.asarray(m._static(node.input[1], "Reshape", "shape")).ravel()]
    if any(s == 0 for s in shape):
        if at["allowzero"]:
            pass
        else:
            xs = m._shape(x, "Reshape")
            shape = [xs[k] if s == 0 else s for k, s in enumerate(shape)]
    return _g.reshape(x, shape)


@_reg("Flatten", axis=1)
def _flatten(m, node, ins, at):
    x = _need("Flatten", ins, 0)
    shape = m._shape(x, "Flatten")
    axis = int(at["axis"])
    if axis < 0:
        axis += len(shape)
    outer = int(np.prod(shape[:axis], dtype=np.int64))
    inner = int(np.prod(shape[axis:], dtype=np.int64))
    return _g.reshape(x, (outer, inner))


@_reg("Squeeze", axes=None)
def _squeeze(m, node, ins, at):
    x = _need("Squeeze", ins, 0)
    axes = _axes_from(m, node, ins, at, 1, 13)
    if axes is None:
        return _g.squeeze(x)
    return _g.squeeze(x, axes if len(axes) != 1 else axes[0])


@_reg("Unsqueeze", axes=None)
def _unsqueeze(m, node, ins, at):
    x = _need("Unsqueeze", ins, 0)
    axes = _axes_from(m, node, ins, at, 1, 13)
    if axes is None:
        raise UnsupportedOnnx("Unsqueeze without axes", "Unsqueeze")
    r = m._rank(x) + len(axes)
    axes = sorted(a + r if a < 0 else a for a in axes)
    for a in axes:
        x = _g.expand_dims(x, a)
    return x


@_reg("Concat", axis=None)
def _concat(m, node, ins, at):
    xs = [x for x in ins if x is not None]
    if at["axis"] is None:
        raise UnsupportedOnnx("Concat without axis", "Concat")
    return _g.concatenate(xs, int(at["axis"]))


@_reg("Split", axis=0, split=None, num_outputs=None)
def _split(m, node, ins, at):
    x = _need("Split", ins, 0)
    shape = m._shape(x, "Split")
    axis = int(at["axis"])
    if axis < 0:
        axis += len(shape)
    n = len(node.output)
    if m.opset >= 13 and _opt(ins, 1) is not None:
        sizes = [int(s) for s in np.asarray(m._static(node.input[1], "Split", "split")).ravel()]
    elif m.opset < 13 and at["split"] is not None:
        sizes = [int(s) for s in at["split"]]
    else:
        d = shape[axis]
        if at["num_outputs"] is not None:
            n = int(at["num_outputs"])
        k = -(-d // n)
        sizes = [k] * (d // k) + ([d % k] if d % k else [])
        if len(sizes) != n:
            sizes = [d // n] * n
    outs = []
    start = 0
    for s in sizes:
        outs.append(_g.Var("slice", (x,), [("axis", axis), ("start", start), ("stop", start + s)]))
        start += s
    return outs


_I64MAX = 2 ** 63 - 1


@_reg("Slice", starts=None, ends=None, axes=None)
def _slice(m, node, ins, at):
    x = _need("Slice", ins, 0)
    if m.opset < 10:
        starts, ends = list(at["starts"]), list(at["ends"])
        axes = list(at["axes"]) if at["axes"] is not None else list(range(len(starts)))
        steps = [1] * len(starts)
    else:
        def get(k, what):
            if _opt(ins, k) is None:
                return None
            return [int(v) for v in np.asarray(m._static(node.input[k], "Slice", what)).ravel()]
        starts, ends = get(1, "starts"), get(2, "ends")
        axes = get(3, "axes")
        steps = get(4, "steps")
        if axes is None:
            axes = list(range(len(starts)))
        if steps is None:
            steps = [1] * len(starts)
    for a, s, e, st in zip(axes, starts, ends, steps):
        if st == 0:
            raise UnsupportedOnnx("Slice with step 0", "Slice")
        attrs = [("axis", int(a)), ("start", int(s))]
        # ONNX clamps like Python slices; +-INT64_MAX sentinels mean "to the end"
        if not ((st > 0 and e >= _I64MAX // 2) or (st < 0 and e <= -_I64MAX // 2)):
            attrs.append(("stop", int(e)))
        if st != 1:
            attrs.append(("step", int(st)))
        if st > 0 and s <= -_I64MAX // 2:
            attrs[1] = ("start", 0)
        x = _g.Var("slice", (x,), attrs)
    return x


@_reg("Gather", axis=0)
def _gather(m, node, ins, at):
    return _g.take(_need("Gather", ins, 0), _need("Gather", ins, 1), int(at["axis"]))


@_reg("Expand")
def _expand(m, node, ins, at):
    x = _need("Expand", ins, 0)
    shape = [int(s) for s in np.asarray(m._static(node.input[1], "Expand", "shape")).ravel()]
    xs = m._shape(x, "Expand")
    r = max(len(xs), len(shape))
    a = [1] * (r - len(xs)) + list(xs)
    b = [1] * (r - len(shape)) + shape
    out = []
    for p, q in zip(a, b):
        if p != q and p != 1 and q != 1:
            raise UnsupportedOnnx("Expand: shapes %s and %s do not broadcast" % (xs, shape))
        out.append(q if p == 1 else p)
    return _g.broadcast_to(x, out)


@_reg("Constant", value=None, value_float=None, value_floats=None, value_int=None,
      value_ints=None, sparse_value=None, value_string=None, value_strings=None)
def _constant(m, node, ins, at):
    if at["value"] is not None:
        return _nh.to_array(at["value"])
    if at["value_float"] is not None:
        return np.array(at["value_float"], np.float32)
    if at["value_floats"] is not None:
        return np.array(at["value_floats"], np.float32)
    if at["value_int"] is not None:
        return np.array(at["value_int"], np.int64)
    if at["value_ints"] is not None:
        return np.array(at["value_ints"], np.int64)
    raise UnsupportedOnnx("Constant of a sparse or string value", "Constant")


@_reg("ConstantOfShape", value=None)
def _cos(m, node, ins, at):
    shape = [int(s) for s in np.asarray(m._static(node.input[0], "ConstantOfShape", "shape")).ravel()]
    val = np.zeros(1, np.float32) if at["value"] is None else _nh.to_array(at["value"]).ravel()
    dt = _NP_TO_TL.get(_widen(val).dtype.type)
    if dt is None:
        raise UnsupportedOnnx("ConstantOfShape of dtype %s" % val.dtype, "ConstantOfShape")
    n = int(np.prod(shape, dtype=np.int64))
    if n <= m.const_limit:  # its value stays known to ops that need it static
        m.consts[node.output[0]] = np.full(shape, val[0], val.dtype)
    return _g.fill(tuple(shape), val[0].item(), dt)


@_reg("Shape", start=0, end=None)
def _shape_op(m, node, ins, at):
    x = _need("Shape", ins, 0)
    shape = list(m._shape(x, "Shape"))
    s, e = int(at["start"]), at["end"]
    return np.array(shape[s:(None if e is None else int(e))], np.int64)


@_reg("Size")
def _size(m, node, ins, at):
    x = _need("Size", ins, 0)
    return np.array(int(np.prod(m._shape(x, "Size"), dtype=np.int64)), np.int64)


@_reg("Clip", min=None, max=None)
def _clip(m, node, ins, at):
    x = _need("Clip", ins, 0)
    if m.opset < 11:
        lo = at["min"]
        hi = at["max"]
        lo = None if lo is None else float(lo)
        hi = None if hi is None else float(hi)
    else:
        lo, hi = _opt(ins, 1), _opt(ins, 2)
    if lo is not None:
        x = _g.maximum(x, lo)
    if hi is not None:
        x = _g.minimum(x, hi)
    return x


@_reg("Dropout", ratio=0.5, seed=None, is_test=None, consumed_inputs=None)
def _dropout(m, node, ins, at):
    x = _need("Dropout", ins, 0)
    if m.opset >= 12 and _opt(ins, 2) is not None:
        if _sval(m._static(node.input[2], "Dropout", "training_mode"), "Dropout", "training_mode"):
            # training with ratio 0 drops nothing; any other ratio is random
            ratio = 0.5 if _opt(ins, 1) is None else \
                _sval(m._static(node.input[1], "Dropout", "ratio"), "Dropout", "ratio")
            if ratio != 0:
                raise UnsupportedOnnx("Dropout in training mode (random)", "Dropout")
    elif m.opset < 7 and not at["is_test"]:
        raise UnsupportedOnnx("Dropout in training mode (is_test=0)", "Dropout")
    outs = [x]
    if len(node.output) > 1:
        outs.append(_g.cast(_g.ones_like(x), "bool"))
    return outs


@_reg("Tile")
def _tile(m, node, ins, at):
    x = _need("Tile", ins, 0)
    reps = [int(r) for r in np.asarray(m._static(node.input[1], "Tile", "repeats")).ravel()]
    shape = m._shape(x, "Tile")
    if len(reps) != len(shape):
        raise UnsupportedOnnx("Tile: repeats of length %d for rank %d" % (len(reps), len(shape)))
    y = x
    for k, rep in enumerate(reps):
        if rep != 1:
            y = _g.concatenate([y] * rep, k)
    return y


@_reg("Range")
def _range(m, node, ins, at):
    vals = [np.asarray(m._static(node.input[k], "Range", w)) for k, w in
            enumerate(("start", "limit", "delta"))]
    return np.arange(vals[0], vals[1], vals[2]).astype(vals[0].dtype)


@_reg("BatchNormalization", epsilon=1e-5, momentum=0.9, training_mode=0, spatial=1,
      is_test=None, consumed_inputs=None)
def _bn(m, node, ins, at):
    """Inference: (x - mean) / sqrt(var + eps) * scale + bias per channel.
    Training mode (opset >= 14): the batch statistics over every axis but 1
    (population variance) normalise x, and the running statistics are
    updated with the momentum, as the ONNX reference."""
    op = "BatchNormalization"
    nout = len([o for o in node.output if o])
    training = bool(at["training_mode"])
    if training and m.opset < 14:
        raise UnsupportedOnnx("BatchNormalization training_mode before opset 14", op)
    if nout > 1 and not (training and nout <= 3 and len(node.output) <= 3):
        raise UnsupportedOnnx("BatchNormalization in training mode (saved statistics outputs)", op)
    if m.opset < 9 and at["spatial"] != 1:
        raise UnsupportedOnnx("BatchNormalization spatial=0", op)
    x, s, b, mean, var = [_need(op, ins, k) for k in range(5)]
    r = m._rank(x)

    def bc(v):
        return _g.reshape(v, (-1,) + (1,) * (r - 2)) if r > 2 else v
    outs = []
    if training:
        axes = [0] + list(range(2, r))
        mu = _g.mean(x, axes)
        d = _g.subtract(x, bc(mu))
        bvar = _g.mean(_g.multiply(d, d), axes)
        mom = float(at["momentum"])
        outs = [_keep(m, mean, _g.add(_g.multiply(mean, mom), _g.multiply(mu, 1.0 - mom))),
                _keep(m, var, _g.add(_g.multiply(var, mom), _g.multiply(bvar, 1.0 - mom)))]
        mean, var = mu, bvar
    y = _g.divide(_g.subtract(x, bc(mean)), _g.sqrt(_g.add(bc(var), float(at["epsilon"]))))
    return [_keep(m, x, _g.add(_g.multiply(y, bc(s)), bc(b)))] + outs


@_reg("LayerNormalization", axis=-1, epsilon=1e-5, stash_type=1)
def _ln(m, node, ins, at):
    x, s, b = _need("LayerNormalization", ins, 0), _need("LayerNormalization", ins, 1), _opt(ins, 2)
    r = m._rank(x)
    axis = int(at["axis"])
    if axis < 0:
        axis += r
    axes = list(range(axis, r))
    xx = x
    dt = m._dtype(x)
    if at["stash_type"] == 1 and dt != "f32":
        xx = _g.cast(x, "f32")
    mu = _g.mean(xx, axes, True)
    d = _g.subtract(xx, mu)
    var = _g.mean(_g.multiply(d, d), axes, True)
    inv = _g.divide(1, _g.sqrt(_g.add(var, float(at["epsilon"]))))
    y = _g.multiply(d, inv)
    if m._dtype(y) != dt:
        y = _g.cast(y, dt)
    y = _g.multiply(y, s)
    if b is not None:
        y = _g.add(y, b)
    return [y, mu, inv]


@_reg("GlobalAveragePool GlobalMaxPool")
def _gpool(m, node, ins, at):
    x = _need(node.op_type, ins, 0)
    r = m._rank(x)
    axes = list(range(2, r))
    if not axes:
        return x
    f = _g.mean if node.op_type == "GlobalAveragePool" else _g.max
    return _keep(m, x, f(x, axes if len(axes) > 1 else axes[0], True))




def load(model, const_limit=1024, name=None, static_inputs=None):
    """Imports an ONNX model (a path or a ModelProto) -> OnnxGraph.

    static_inputs={name: array} freezes graph inputs to constants (needed
    where a shape depends on them: Reshape's shape, Slice's starts, ...)."""
    return OnnxGraph(model, const_limit, name, static_inputs)


def to_tg(model, const_limit=1024):
    return load(model, const_limit).text


def function(model, const_limit=1024, rules=None, cost=None, limits=None):
    """A tlaloc Function for the model: call it with the graph inputs (not
    the initializers) in order; it returns the list of outputs."""
    g = load(model, const_limit) if not isinstance(model, OnnxGraph) else model
    f = _Function([], [], rules=rules, cost=cost, name="onnx", text=g.text, bound=g.bound,
                  limits=limits)
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


def _nll(m, op, x, target, weight, at):
    """NegativeLogLikelihoodLoss on x [N, C, d...] (log-probabilities), exactly:
    the picked entry is selected with a one-hot comparison (eq against a
    broadcast class-index constant) and summed over C, where every other term
    is an exact 0."""
    xs = m._shape(x, op)
    if len(xs) < 2:
        raise UnsupportedOnnx("%s: input must have rank >= 2, got %s" % (op, xs), op)
    ts = m._shape(target, op)
    if tuple(ts) != (xs[0],) + tuple(xs[2:]):
        raise UnsupportedOnnx("%s: target shape %s does not match input %s" % (op, ts, xs), op)
    tdt = m._dtype(target)
    if tdt not in ("i32", "i64"):
        raise UnsupportedOnnx("%s: target dtype %s" % (op, tdt), op)
    red = at["reduction"]
    red = red.decode() if isinstance(red, bytes) else red
    if red not in ("none", "sum", "mean"):
        raise UnsupportedOnnx("%s: reduction=%r" % (op, red), op)
    C = int(xs[1])
    r = len(xs)
    npdt = np.int32 if tdt == "i32" else np.int64
    iota = np.arange(C, dtype=npdt).reshape((1, C) + (1,) * (r - 2))
    t1 = _g.expand_dims(target, 1)  # [N, 1, d...]
    onehot = _g.equal(t1, _g.constant(iota))  # [N, C, d...]
    ign = at["ignore_index"]
    keep = None
    if ign is not None:
        keep = _g.not_equal(target, _g.constant(np.array(int(ign), dtype=npdt)))
        onehot = _g.logical_and(onehot, _g.expand_dims(keep, 1))
    dt = m._dtype(x)
    zero = _g.constant(np.zeros((), dtype=np.float32 if dt == "f32" else np.float64))
    picked = _g.sum(_g.where(onehot, x, zero), 1, False)  # [N, d...]
    w = None
    if weight is not None:
        if tuple(m._shape(weight, op)) != (C,) or m._dtype(weight) != dt:
            raise UnsupportedOnnx("%s: weight must be %s[%d]" % (op, dt, C), op)
        wb = _g.reshape(weight, (1, C) + (1,) * (r - 2))
        w = _g.sum(_g.where(onehot, _g.broadcast_to(wb, xs), zero), 1, False)
        loss = _g.negative(_g.multiply(picked, w))
    else:
        loss = _g.negative(picked)
        if keep is not None:
            w = _g.cast(keep, dt)
    if red == "none":
        out = loss
    elif red == "sum":
        out = _g.sum(loss)
    elif w is None:
        out = _g.mean(loss)
    else:
        out = _g.divide(_g.sum(loss), _g.sum(w))
    return _keep(m, x, out)


@_reg("NegativeLogLikelihoodLoss", reduction="mean", ignore_index=None)
def _nll_op(m, node, ins, at):
    op = node.op_type
    return _nll(m, op, _need(op, ins, 0), _need(op, ins, 1), _opt(ins, 2), at)


@_reg("SoftmaxCrossEntropyLoss", reduction="mean", ignore_index=None)
def _sce_op(m, node, ins, at):
    op = node.op_type
    x = _need(op, ins, 0)
    lp = _keep(m, x, _g.log_softmax(x, 1))
    return [_nll(m, op, lp, _need(op, ins, 1), _opt(ins, 2), at), lp]

@_reg("GatherElements", axis=0)
def _gather_elements(m, node, ins, at):
    """Exact: out = sum over the data axis of where(index == iota, data, 0) (one
    nonzero term per output; every other term is an exact 0)."""
    op = "GatherElements"
    x = _need(op, ins, 0)
    idx = _need(op, ins, 1)
    xs = list(m._shape(x, op))
    qs = list(m._shape(idx, op))
    r = len(xs)
    if len(qs) != r or r == 0:
        raise UnsupportedOnnx("%s: data %s and indices %s ranks differ" % (op, xs, qs), op)
    axis = int(at["axis"])
    if axis < 0:
        axis += r
    for k in range(r):
        if k != axis and qs[k] > xs[k]:
            raise UnsupportedOnnx("%s: indices %s exceed data %s" % (op, qs, xs), op)
    tdt = m._dtype(idx)
    if tdt not in ("i32", "i64"):
        raise UnsupportedOnnx("%s: indices dtype %s" % (op, tdt), op)
    if any(qs[k] != xs[k] for k in range(r) if k != axis):
        key = tuple(slice(0, qs[k]) if k != axis else slice(None) for k in range(r))
        x = x[key]
    A = int(xs[axis])
    npdt = np.int32 if tdt == "i32" else np.int64
    zi = _g.constant(np.zeros((), npdt))
    idx = _g.where(_g.less(idx, zi), _g.add(idx, _g.constant(np.array(A, npdt))), idx)
    iota = np.arange(A, dtype=npdt).reshape((1,) * (axis + 1) + (A,) + (1,) * (r - axis - 1))
    onehot = _g.equal(_g.expand_dims(idx, axis + 1), _g.constant(iota))
    dt = m._dtype(x)
    zero = _g.constant(np.zeros((), {"f32": np.float32, "f64": np.float64, "i32": np.int32,
                                     "i64": np.int64, "bool": np.bool_}[dt]))
    xe = _g.expand_dims(x, axis)
    if dt == "bool":
        picked = _g.sum(_g.where(onehot, _g.cast(xe, "i32"), _g.constant(np.zeros((), np.int32))),
                        axis + 1, False)
        return _g.greater(picked, _g.constant(np.zeros((), np.int32)))
    return _keep(m, x, _g.sum(_g.where(onehot, xe, zero), axis + 1, False))




# ---------------------------------------------------------------------------
# Decompositions into tlaloc ops. Each one is exact (the same values as the
# ONNX reference, up to the summation order of a reduction); attribute
# values that cannot be expressed are refused by name.
# ---------------------------------------------------------------------------

def _npdt(dt):
    return _NP_DT[dt]


def _sc(dt, v):
    """A typed scalar constant (literals are weakly typed; this is not)."""
    return _g.constant(np.array(v, _npdt(dt)))


def _axis(a, r, op, what="axis"):
    a = int(a)
    if a < -r or a >= r:
        raise UnsupportedOnnx("%s: %s %d out of range for rank %d" % (op, what, a, r), op)
    return a + r if a < 0 else a


def _iota(n, axis, rank, dt=np.int64):
    """arange(n) as a constant of the given rank, laid along `axis`."""
    return _g.constant(np.arange(n, dtype=dt).reshape((1,) * axis + (n,) + (1,) * (rank - axis - 1)))


def _sval(arr, op, what):
    """A static scalar (or one-element tensor) parameter as a Python number."""
    a = np.asarray(arr).ravel()
    if a.size != 1:
        raise UnsupportedOnnx("%s: %s must have one element, got %d" % (op, what, a.size), op)
    return a[0].item()


def _attr_str(v):
    return v.decode() if isinstance(v, bytes) else v


def _arg_index(m, op, x, axis, last):
    """Index of the first (last) max along axis, keepdims: the min (max) of the
    positions where x equals its max. NaN counts as the max (numpy's argmax
    returns the first NaN), so NaN positions match too."""
    r = m._rank(x)
    A = m._shape(x, op)[axis]
    if A == 0:
        raise UnsupportedOnnx("%s over an empty axis" % op, op)
    mx = _g.max(x, axis, True)
    hit = _g.equal(x, mx)
    if m._dtype(x) in ("f32", "f64"):
        hit = _g.logical_or(hit, _g.not_equal(x, x))
    io = _iota(A, axis, r)
    if last:
        return _g.max(_g.where(hit, io, _sc("i64", -1)), axis, True)
    return _g.min(_g.where(hit, io, _sc("i64", A)), axis, True)


@_reg("ArgMax ArgMin", axis=0, keepdims=1, select_last_index=0)
def _argmax(m, node, ins, at):
    op = node.op_type
    x = _need(op, ins, 0)
    if m._dtype(x) == "bool":
        x = _g.cast(x, "i32")
    r = m._rank(x)
    if r == 0:
        raise UnsupportedOnnx("%s of a scalar" % op, op)
    axis = _axis(at["axis"], r, op)
    if op == "ArgMin":  # argmin(x) == argmax(-x) for ordered values; NaN stays NaN
        x = _g.negative(x) if m._dtype(x) in ("f32", "f64") else _g.subtract(_sc(m._dtype(x), -1), x)
    y = _arg_index(m, op, x, axis, bool(at["select_last_index"]))
    return y if at["keepdims"] else _g.squeeze(y, axis)


@_reg("Hardmax", axis=None)
def _hardmax(m, node, ins, at):
    """One-hot of the first maximum along the axis (opset < 13: of the input
    coerced to 2-D, as Softmax)."""
    op = "Hardmax"
    x = _need(op, ins, 0)
    shape = m._shape(x, op)
    r = len(shape)
    if m.opset >= 13:
        axis = _axis(-1 if at["axis"] is None else at["axis"], r, op)
        xx = x
    else:
        axis = _axis(1 if at["axis"] is None else at["axis"], r, op)
        outer = int(np.prod(shape[:axis], dtype=np.int64))
        xx = _g.reshape(x, (outer, int(np.prod(shape[axis:], dtype=np.int64))))
        axis = 1
    A = m._shape(xx, op)[axis]
    rr = m._rank(xx)
    hot = _g.equal(_iota(A, axis, rr), _arg_index(m, op, xx, axis, False))
    y = _g.cast(hot, m._dtype(x))
    return _g.reshape(y, shape) if xx is not x else y


@_reg("Round")
def _round(m, node, ins, at):
    """Half to even: floor, then up when the fraction is above one half, or
    exactly one half and the floor is odd (x - floor(x) is exact)."""
    x = _need("Round", ins, 0)
    dt = m._dtype(x)
    if dt not in ("f32", "f64"):
        return x
    f = _g.floor(x)
    d = _g.subtract(x, f)
    odd = _g.not_equal(_g.remainder(f, 2.0), 0.0)
    up = _g.logical_or(_g.greater(d, 0.5), _g.logical_and(_g.equal(d, 0.5), odd))
    # NaN and +-inf: d is NaN, so not up, and f is already x
    return _g.where(up, _g.add(f, 1.0), f)


def _shift(m, x, axis, k, dt):
    """x moved k places forward along axis, zeros entering."""
    shape = list(m._shape(x, "CumSum"))
    n = shape[axis]
    if k >= n:
        return _g.broadcast_to(_sc(dt, 0), shape)
    zs = list(shape)
    zs[axis] = k
    head = _g.broadcast_to(_sc(dt, 0), zs)
    body = _g.Var("slice", (x,), [("axis", axis), ("start", 0), ("stop", n - k)])
    return _g.concatenate([head, body], axis)


@_reg("CumSum", exclusive=0, reverse=0)
def _cumsum(m, node, ins, at):
    """Hillis-Steele scan: log2(n) rounds of x += x shifted by 2^k. Only
    additions of the inputs (no multiplication by a 0/1 matrix, which would
    turn an inf into NaN elsewhere); exclusive shifts the input by one first,
    reverse flips the axis around the scan."""
    op = "CumSum"
    x = _need(op, ins, 0)
    dt = m._dtype(x)
    if dt == "bool":
        raise UnsupportedOnnx("CumSum of bool", op)
    r = m._rank(x)
    axis = _axis(_sval(m._static(node.input[1], op, "axis"), op, "axis"), r, op)
    n = m._shape(x, op)[axis]
    flip = [("axis", axis), ("start", -1), ("step", -1)]
    if at["reverse"]:
        x = _g.Var("slice", (x,), flip)
    if at["exclusive"]:
        x = _shift(m, x, axis, 1, dt)
    k = 1
    while k < n:
        x = _g.add(x, _shift(m, x, axis, k, dt))
        k *= 2
    if at["reverse"]:
        x = _g.Var("slice", (x,), flip)
    return x


@_reg("DepthToSpace", blocksize=None, mode="DCR")
def _d2s(m, node, ins, at):
    op = "DepthToSpace"
    x = _need(op, ins, 0)
    shape = m._shape(x, op)
    if len(shape) != 4:
        raise UnsupportedOnnx("%s: input must be 4-D, got %s" % (op, shape), op)
    b = int(at["blocksize"])
    n, c, h, w = shape
    if c % (b * b):
        raise UnsupportedOnnx("%s: channels %d not divisible by blocksize^2" % (op, c), op)
    mode = _attr_str(at["mode"])
    if mode == "DCR":
        y = _g.transpose(_g.reshape(x, (n, b, b, c // (b * b), h, w)), [0, 3, 4, 1, 5, 2])
    elif mode == "CRD":
        y = _g.transpose(_g.reshape(x, (n, c // (b * b), b, b, h, w)), [0, 1, 4, 2, 5, 3])
    else:
        raise UnsupportedOnnx("%s: mode %r" % (op, mode), op)
    return _g.reshape(y, (n, c // (b * b), h * b, w * b))


@_reg("SpaceToDepth", blocksize=None)
def _s2d(m, node, ins, at):
    op = "SpaceToDepth"
    x = _need(op, ins, 0)
    shape = m._shape(x, op)
    if len(shape) != 4:
        raise UnsupportedOnnx("%s: input must be 4-D, got %s" % (op, shape), op)
    b = int(at["blocksize"])
    n, c, h, w = shape
    if h % b or w % b:
        raise UnsupportedOnnx("%s: spatial dims %s not divisible by %d" % (op, shape[2:], b), op)
    y = _g.transpose(_g.reshape(x, (n, c, h // b, b, w // b, b)), [0, 3, 5, 1, 2, 4])
    return _g.reshape(y, (n, c * b * b, h // b, w // b))


@_reg("EyeLike", dtype=None, k=0)
def _eyelike(m, node, ins, at):
    op = "EyeLike"
    x = _need(op, ins, 0)
    shape = m._shape(x, op)
    if len(shape) != 2:
        raise UnsupportedOnnx("%s: input must be 2-D" % op, op)
    dt = m._dtype(x) if at["dtype"] is None else _tl_dtype(at["dtype"], "EyeLike dtype")
    rows = _iota(shape[0], 0, 2)
    cols = _iota(shape[1], 1, 2)
    return _g.cast(_g.equal(_g.subtract(cols, rows), int(at["k"])), dt)


@_reg("OneHot", axis=-1)
def _onehot(m, node, ins, at):
    """eq(mod(indices, depth) laid on a new axis, arange(depth)) selecting
    values[1] (on) or values[0] (off), as the ONNX reference."""
    op = "OneHot"
    idx, vals = _need(op, ins, 0), _need(op, ins, 2)
    depth = _sval(m._static(node.input[1], op, "depth"), op, "depth")
    if depth != int(depth) or depth < 0:
        raise UnsupportedOnnx("%s: depth %r is not a non-negative integer" % (op, depth), op)
    depth = int(depth)
    r = m._rank(idx)
    axis = _axis(at["axis"], r + 1, op)
    idt = m._dtype(idx)
    if idt == "bool":
        idx = _g.cast(idx, "i64")
        idt = "i64"
    wrapped = _g.remainder(idx, _sc(idt, depth))
    hot = _g.equal(_g.expand_dims(wrapped, axis), _g.constant(
        np.arange(depth, dtype=_npdt(idt)).reshape((1,) * axis + (depth,) + (1,) * (r - axis))))
    if m._shape(vals, op) != (2,):
        raise UnsupportedOnnx("%s: values must have 2 elements" % op, op)
    off = _g.Var("slice", (vals,), [("axis", 0), ("start", 0), ("stop", 1)])
    on = _g.Var("slice", (vals,), [("axis", 0), ("start", 1), ("stop", 2)])
    return _g.where(hot, _g.squeeze(on, 0), _g.squeeze(off, 0))


@_reg("Shrink", bias=0.0, lambd=0.5)
def _shrink(m, node, ins, at):
    x = _need("Shrink", ins, 0)
    b, lam = float(at["bias"]), float(at["lambd"])
    y = _g.where(_g.less(x, -lam), _g.add(x, b), _g.where(_g.greater(x, lam), _g.subtract(x, b), 0))
    return _keep(m, x, y)


@_reg("InstanceNormalization", epsilon=1e-5)
def _instnorm(m, node, ins, at):
    """Per (sample, channel): (x - mean) / sqrt(var + eps) over the spatial
    axes (population variance), then scale and bias per channel."""
    op = "InstanceNormalization"
    x, s, b = [_need(op, ins, k) for k in range(3)]
    r = m._rank(x)
    if r < 3:
        raise UnsupportedOnnx("%s: input must have rank >= 3" % op, op)
    axes = list(range(2, r))
    mu = _g.mean(x, axes, True)
    d = _g.subtract(x, mu)
    var = _g.mean(_g.multiply(d, d), axes, True)
    y = _g.divide(d, _g.sqrt(_g.add(var, float(at["epsilon"]))))
    cb = (-1,) + (1,) * (r - 2)
    return _keep(m, x, _g.add(_g.multiply(y, _g.reshape(s, cb)), _g.reshape(b, cb)))


@_reg("MeanVarianceNormalization", axes=None)
def _mvn(m, node, ins, at):
    """The ONNX function body: (x - E[x]) / (sqrt(E[x^2] - E[x]^2) + 1e-9)."""
    op = "MeanVarianceNormalization"
    x = _need(op, ins, 0)
    r = m._rank(x)
    axes = [0, 2, 3] if at["axes"] is None else [_axis(a, r, op) for a in at["axes"]]
    mu = _g.mean(x, axes, True)
    ex2 = _g.mean(_g.multiply(x, x), axes, True)
    std = _g.sqrt(_g.subtract(ex2, _g.multiply(mu, mu)))
    return _keep(m, x, _g.divide(_g.subtract(x, mu), _g.add(std, 1e-9)))


def _pad_axis(m, x, axis, before, after, value, op):
    """x with `before`/`after` copies of `value` (a scalar Var) around `axis`."""
    shape = list(m._shape(x, op))
    parts = []
    for n in (before, after):
        if n:
            ps = list(shape)
            ps[axis] = n
            parts.append(_g.broadcast_to(value, ps))
        else:
            parts.append(None)
    seq = [p for p in (parts[0], x, parts[1]) if p is not None]
    return _g.concatenate(seq, axis) if len(seq) > 1 else x


@_reg("LRN", alpha=1e-4, beta=0.75, bias=1.0, size=None)
def _lrn(m, node, ins, at):
    """x / (bias + alpha / size * sum of x^2 over the channel window)^beta,
    the window sum being `size` shifted slices of the zero-padded squares."""
    op = "LRN"
    x = _need(op, ins, 0)
    shape = m._shape(x, op)
    if len(shape) < 3:
        raise UnsupportedOnnx("%s: input must have rank >= 3" % op, op)
    size = int(at["size"])
    C = shape[1]
    lo, hi = (size - 1) // 2, (size - 1) - (size - 1) // 2
    sq = _g.multiply(x, x)
    padded = _pad_axis(m, sq, 1, lo, hi, _sc(m._dtype(x), 0), op)
    acc = None
    for k in range(size):
        sl = _g.Var("slice", (padded,), [("axis", 1), ("start", k), ("stop", k + C)])
        acc = sl if acc is None else _g.add(acc, sl)
    base = _g.add(float(at["bias"]), _g.multiply(float(at["alpha"]) / size, acc))
    return _keep(m, x, _g.divide(x, _g.power(base, float(at["beta"]))))


@_reg("Pad", mode="constant", pads=None, value=0.0)
def _pad(m, node, ins, at):
    """Static pads. Negative pads crop (slice); constant pads concatenate a
    broadcast value, edge pads a broadcast edge slice, reflect pads the
    mirrored slices (step -1) without the edge."""
    op = "Pad"
    x = _need(op, ins, 0)
    dt = m._dtype(x)
    shape = list(m._shape(x, op))
    r = len(shape)
    mode = _attr_str(at["mode"])
    if mode not in ("constant", "edge", "reflect"):
        raise UnsupportedOnnx("%s: mode %r" % (op, mode), op)
    if m.opset < 11:
        pads = [int(p) for p in at["pads"]]
        value = _sc(dt, float(at["value"]) if dt in ("f32", "f64") else int(at["value"]))
        axes = list(range(r))
    else:
        pads = [int(p) for p in np.asarray(m._static(node.input[1], op, "pads")).ravel()]
        cv = _opt(ins, 2)
        value = _sc(dt, 0) if cv is None else _g.cast(_g.reshape(cv, ()), dt)
        if _opt(ins, 3) is not None:
            axes = [_axis(a, r, op) for a in np.asarray(m._static(node.input[3], op, "axes")).ravel()]
        else:
            axes = list(range(r))
    if len(pads) != 2 * len(axes):
        raise UnsupportedOnnx("%s: %d pads for %d axes" % (op, len(pads), len(axes)), op)
    for k, axis in enumerate(axes):
        before, after = pads[k], pads[k + len(axes)]
        if before < 0 or after < 0:
            n = m._shape(x, op)[axis]
            x = _g.Var("slice", (x,), [("axis", axis), ("start", max(-before, 0)),
                                       ("stop", n - max(-after, 0))])
            before, after = max(before, 0), max(after, 0)
        if not before and not after:
            continue
        n = m._shape(x, op)[axis]
        if mode == "constant":
            x = _pad_axis(m, x, axis, before, after, value, op)
            continue
        if n == 0 or (mode == "reflect" and (before >= n or after >= n)):
            raise UnsupportedOnnx("%s: %s pads %d/%d on an axis of size %d" % (op, mode, before, after, n), op)
        parts = []
        if mode == "edge":
            ps = list(m._shape(x, op))
            if before:
                ps[axis] = before
                parts.append(_g.broadcast_to(_g.Var("slice", (x,), [("axis", axis), ("start", 0),
                                                                   ("stop", 1)]), ps))
            parts.append(x)
            if after:
                ps[axis] = after
                parts.append(_g.broadcast_to(_g.Var("slice", (x,), [("axis", axis), ("start", n - 1),
                                                                   ("stop", n)]), ps))
        else:
            if before:  # x[before], ..., x[1]
                parts.append(_g.Var("slice", (x,), [("axis", axis), ("start", before), ("stop", 0),
                                                    ("step", -1)]))
            parts.append(x)
            if after:  # x[n-2], ..., x[n-1-after] (a stop of -1 would mean the end)
                sl = [("axis", axis), ("start", n - 2), ("step", -1)]
                if n - 2 - after >= 0:
                    sl.insert(2, ("stop", n - 2 - after))
                parts.append(_g.Var("slice", (x,), sl))
        x = _g.concatenate(parts, axis)
    return x


@_reg("Trilu", upper=1)
def _trilu(m, node, ins, at):
    """where(col - row >= k (upper) or <= k (lower), x, 0) on the last two axes."""
    op = "Trilu"
    x = _need(op, ins, 0)
    shape = m._shape(x, op)
    if len(shape) < 2:
        raise UnsupportedOnnx("%s: input must have rank >= 2" % op, op)
    k = 0 if _opt(ins, 1) is None else int(_sval(m._static(node.input[1], op, "k"), op, "k"))
    R, C = shape[-2], shape[-1]
    diff = _g.subtract(_iota(C, 1, 2), _iota(R, 0, 2))
    keep = _g.greater_equal(diff, k) if at["upper"] else _g.less_equal(diff, k)
    return _g.where(keep, x, _sc(m._dtype(x), 0))


@_reg("Compress", axis=None)
def _compress(m, node, ins, at):
    """A static condition (its true positions fix the output shape) selects
    with take; without axis, from the flattened input."""
    op = "Compress"
    x = _need(op, ins, 0)
    cond = np.asarray(m._static(node.input[1], op, "condition")).ravel().astype(bool)
    if at["axis"] is None:
        x = _g.reshape(x, (-1,))
        axis = 0
    else:
        axis = _axis(at["axis"], m._rank(x), op)
    n = m._shape(x, op)[axis]
    if cond.size > n:
        raise UnsupportedOnnx("%s: condition longer than the axis (%d > %d)" % (op, cond.size, n), op)
    return _g.take(x, _g.constant(np.nonzero(cond)[0].astype(np.int64)), axis)


@_reg("GatherND", batch_dims=0)
def _gathernd(m, node, ins, at):
    """take along a flattened leading block: each index tuple (negatives
    wrapped) becomes one linear index, plus the offset of its batch."""
    op = "GatherND"
    x, idx = _need(op, ins, 0), _need(op, ins, 1)
    xs, qs = m._shape(x, op), m._shape(idx, op)
    b = int(at["batch_dims"])
    q = qs[-1]
    if len(qs) < 1 or b + q > len(xs) or tuple(qs[:b]) != tuple(xs[:b]):
        raise UnsupportedOnnx("%s: data %s and indices %s do not fit (batch_dims %d)" % (op, xs, qs, b), op)
    if m._dtype(idx) not in ("i32", "i64"):
        raise UnsupportedOnnx("%s: indices dtype %s" % (op, m._dtype(idx)), op)
    idx = _g.cast(idx, "i64")
    dims = np.array(xs[b:b + q], np.int64)
    idx = _g.where(_g.less(idx, 0), _g.add(idx, _g.constant(dims)), idx)
    strides = np.array([int(np.prod(dims[k + 1:], dtype=np.int64)) for k in range(q)], np.int64)
    lin = _g.sum(_g.multiply(idx, _g.constant(strides)), -1)  # [batch..., idx...]
    block = int(np.prod(dims, dtype=np.int64))
    B = int(np.prod(xs[:b], dtype=np.int64))
    if b:
        off = np.arange(B, dtype=np.int64).reshape(tuple(xs[:b]) + (1,) * (len(qs) - 1 - b)) * block
        lin = _g.add(lin, _g.constant(off))
    flat = _g.reshape(x, (B * block,) + tuple(xs[b + q:]))
    return _g.take(flat, lin, 0)


@_reg("Det")
def _det(m, node, ins, at):
    """Leibniz formula for 1x1 to 3x3 matrices (batched); larger ones would
    need pivoting, which is data-dependent control flow."""
    op = "Det"
    x = _need(op, ins, 0)
    shape = m._shape(x, op)
    if len(shape) < 2 or shape[-1] != shape[-2] or shape[-1] > 3 or shape[-1] < 1:
        raise UnsupportedOnnx("%s: only 1x1 to 3x3 matrices are expressible, got %s" % (op, shape), op)
    n = shape[-1]
    r = len(shape)

    def e(i, j):
        v = _g.Var("slice", (x,), [("axis", r - 2), ("start", i), ("stop", i + 1)])
        v = _g.Var("slice", (v,), [("axis", r - 1), ("start", j), ("stop", j + 1)])
        return _g.squeeze(v, [r - 2, r - 1])
    if n == 1:
        return e(0, 0)
    if n == 2:
        return _g.subtract(_g.multiply(e(0, 0), e(1, 1)), _g.multiply(e(0, 1), e(1, 0)))
    t = None
    for p, sgn in (((0, 1, 2), 1), ((1, 2, 0), 1), ((2, 0, 1), 1),
                   ((0, 2, 1), -1), ((2, 1, 0), -1), ((1, 0, 2), -1)):
        term = _g.multiply(_g.multiply(e(0, p[0]), e(1, p[1])), e(2, p[2]))
        t = term if t is None else (_g.add(t, term) if sgn > 0 else _g.subtract(t, term))
    return t


@_reg("Asinh Acosh Atanh")
def _ahyp(m, node, ins, at):
    """Inverse hyperbolic functions from log1p and sqrt, in the forms that
    keep full precision near 0 (asinh, atanh) and 1 (acosh); for huge
    arguments, where the square would overflow, log(2|x|) is the value to
    the last bit."""
    op = node.op_type
    x = _need(op, ins, 0)
    if m._dtype(x) not in ("f32", "f64"):
        raise UnsupportedOnnx("%s of %s" % (op, m._dtype(x)), op)
    big = 1e8 if m._dtype(x) == "f64" else 1e4
    if op == "Atanh":  # sign(x) * 0.5 * log1p(2|x| / (1 - |x|)): no cancellation near -1
        a = _g.absolute(x)
        y = _g.multiply(0.5, _g.log1p(_g.divide(_g.multiply(2.0, a), _g.subtract(1.0, a))))
        return _keep(m, x, _g.where(_g.less(x, 0), _g.negative(y), y))
    if op == "Asinh":  # sign(x) * log1p(|x| + x^2 / (1 + sqrt(1 + x^2)))
        a = _g.absolute(x)
        a2 = _g.multiply(a, a)
        small = _g.log1p(_g.add(a, _g.divide(a2, _g.add(1.0, _g.sqrt(_g.add(1.0, a2))))))
        huge = _g.add(_g.log(a), float(np.log(2.0)))
        y = _g.where(_g.greater(a, big), huge, small)
        return _keep(m, x, _g.where(_g.less(x, 0), _g.negative(y), y))
    # acosh(x) = log1p(t + sqrt(2t + t^2)), t = x - 1 (exact for x in [1, 2])
    t = _g.subtract(x, 1.0)
    small = _g.log1p(_g.add(t, _g.sqrt(_g.add(_g.multiply(2.0, t), _g.multiply(t, t)))))
    huge = _g.add(_g.log(x), float(np.log(2.0)))
    return _keep(m, x, _g.where(_g.greater(x, big), huge, small))


@_reg("ReverseSequence", batch_axis=1, time_axis=0)
def _revseq(m, node, ins, at):
    """Per batch b, time t < len[b] reads t' = len[b] - 1 - t: one take from
    the [time * batch, ...] flattening with the run-time linear index."""
    op = "ReverseSequence"
    x, lens = _need(op, ins, 0), _need(op, ins, 1)
    shape = m._shape(x, op)
    r = len(shape)
    ta, ba = _axis(at["time_axis"], r, op), _axis(at["batch_axis"], r, op)
    if sorted((ta, ba)) != [0, 1]:
        raise UnsupportedOnnx("%s: time and batch axes must be 0 and 1" % op, op)
    perm = None
    if ta == 1:  # work time-major
        perm = [1, 0] + list(range(2, r))
        x = _g.transpose(x, perm)
    T, B = m._shape(x, op)[:2]
    t = _iota(T, 0, 2)
    b = _iota(B, 1, 2)
    ln = _g.reshape(_g.cast(lens, "i64"), (1, B))
    src = _g.where(_g.less(t, ln), _g.subtract(_g.subtract(ln, 1), t), t)
    flat = _g.reshape(x, (T * B,) + tuple(shape[2:]))
    y = _g.take(flat, _g.add(_g.multiply(src, B), b), 0)
    return _g.transpose(y, perm) if perm else y


def _einsum_parse(eq, ranks, op):
    """'ij,jk->ik' -> ([['i','j'], ['j','k']], ['i','k']); '...' becomes one
    letter per broadcast axis (upper-case placeholders, numpy-aligned)."""
    eq = eq.replace(" ", "")
    if "->" in eq:
        lhs, rhs = eq.split("->")
    else:
        lhs, rhs = eq, None
    terms = lhs.split(",")
    if len(terms) != len(ranks):
        raise UnsupportedOnnx("%s: %d operands for %r" % (op, len(ranks), eq), op)
    ell = 0
    for t, r in zip(terms, ranks):
        if "..." in t:
            ell = max(ell, r - len(t.replace("...", "")))
    if ell > 20:
        raise UnsupportedOnnx("%s: too many ellipsis axes" % op, op)
    ph = [chr(ord("A") + k) for k in range(ell)]
    subs = []
    for t, r in zip(terms, ranks):
        if "..." in t:
            pre, post = t.split("...")
            n = r - len(pre) - len(post)
            letters = list(pre) + ph[ell - n:] + list(post)
        else:
            letters = list(t)
        if len(letters) != r or not all(c.isalpha() for c in letters):
            raise UnsupportedOnnx("%s: term %r does not fit rank %d" % (op, t, r), op)
        subs.append(letters)
    if rhs is None:  # implicit output: the ellipsis, then the letters seen once, sorted
        counts = {}
        for s in subs:
            for c in s:
                counts[c] = counts.get(c, 0) + 1
        out = ph + sorted(c for c, k in counts.items() if k == 1 and c.islower())
    else:
        if "..." in rhs:
            pre, post = rhs.split("...")
            out = list(pre) + ph + list(post)
        else:
            out = list(rhs)
    return subs, out


@_reg("Einsum", equation=None)
def _einsum(m, node, ins, at):
    """Each operand: repeated letters -> its diagonal (a take of the
    flattened pair), then transposed and expanded to one common letter
    order; the product of all operands is summed over the letters that are
    not in the output, then transposed to the output order."""
    op = "Einsum"
    xs = [x for x in ins if x is not None]
    eq = _attr_str(at["equation"])
    subs, out = _einsum_parse(eq, [m._rank(x) for x in xs], op)
    sizes = {}
    ops = []
    for x, s in zip(xs, subs):
        shape = list(m._shape(x, op))
        s = list(s)
        while True:  # take diagonals of repeated letters
            dup = next((c for c in s if s.count(c) > 1), None)
            if dup is None:
                break
            i = s.index(dup)
            j = s.index(dup, i + 1)
            if shape[i] != shape[j]:
                raise UnsupportedOnnx("%s: %r has sizes %d and %d" % (op, dup, shape[i], shape[j]), op)
            n = shape[i]
            perm = [k for k in range(len(s)) if k not in (i, j)] + [i, j]
            x = _g.reshape(_g.transpose(x, perm), [shape[k] for k in perm[:-2]] + [n * n])
            x = _g.take(x, _g.constant(np.arange(n, dtype=np.int64) * (n + 1)), len(perm) - 2)
            s = [s[k] for k in perm[:-2]] + [dup]
            shape = [shape[k] for k in perm[:-2]] + [n]
        for c, d in zip(s, shape):
            if sizes.setdefault(c, d) != d and d != 1 and sizes[c] != 1:
                raise UnsupportedOnnx("%s: %r has sizes %d and %d" % (op, c, sizes[c], d), op)
            if d != 1:
                sizes[c] = d
        ops.append((x, s))
    for c in out:
        if c not in sizes:
            raise UnsupportedOnnx("%s: output letter %r is in no operand" % (op, c), op)
    order = list(out) + sorted(c for c in sizes if c not in out)
    prod = None
    for x, s in ops:
        x = _g.transpose(x, [s.index(c) for c in order if c in s]) if len(s) > 1 else x
        present = [c for c in order if c in s]
        for k, c in enumerate(order):  # expand dims for the letters this operand lacks
            if c not in present:
                x = _g.expand_dims(x, k)
                present.insert(k, c)
        prod = x if prod is None else _g.multiply(prod, x)
    red = list(range(len(out), len(order)))
    if red:
        prod = _g.sum(prod, red if len(red) > 1 else red[0])
    y = _g.broadcast_to(prod, [sizes[c] for c in out]) if out else prod
    return _keep(m, xs[0], y)


_WINDOWS = {"HannWindow": (0.5, 0.5, 0.0), "HammingWindow": (25.0 / 46.0, 21.0 / 46.0, 0.0),
            "BlackmanWindow": (0.42, 0.5, 0.08)}


@_reg("HannWindow HammingWindow BlackmanWindow", output_datatype=1, periodic=1)
def _window(m, node, ins, at):
    """a0 - a1 cos(2 pi n / N) + a2 cos(4 pi n / N), n < size, N = size
    (periodic) or size - 1 (symmetric); evaluated in f64, cast to the output
    dtype. The size must be static (it is the output's shape)."""
    op = node.op_type
    size = _sval(m._static(node.input[0], op, "size"), op, "size")
    if size != int(size) or size < 0:
        raise UnsupportedOnnx("%s: size %r" % (op, size), op)
    size = int(size)
    dt = _tl_dtype(at["output_datatype"], "%s output_datatype" % op)
    a0, a1, a2 = _WINDOWS[op]
    N = size if at["periodic"] else size - 1
    ang = _g.multiply(_g.constant(np.arange(size, dtype=np.float64)), 2.0 * np.pi / N if N else 0.0)
    w = _g.subtract(a0, _g.multiply(a1, _g.cos(ang)))
    if a2:
        w = _g.add(w, _g.multiply(a2, _g.cos(_g.multiply(2.0, ang))))
    return _g.cast(w, dt)


# -- pooling and convolution: strided slices of the padded input ------------

def _ints(v, n, default):
    return [int(a) for a in v] if v is not None else [default] * n


def _window_geometry(op, spatial, kernel, at):
    """Per spatial axis: (stride, dilation, pad before, pad after, output
    size, extra), `extra` being the padding a ceil_mode window reads past
    the end (it counts for nothing). ONNX's formulas; with ceil_mode a
    window that would start in the end padding is dropped."""
    k = len(spatial)
    strides = _ints(at.get("strides"), k, 1)
    dil = _ints(at.get("dilations"), k, 1)
    pads = _ints(at.get("pads"), 2 * k, 0)
    auto = _attr_str(at.get("auto_pad") or "NOTSET")
    ceil = bool(at.get("ceil_mode") or 0)
    if len(strides) != k or len(dil) != k or len(pads) != 2 * k or len(kernel) != k:
        raise UnsupportedOnnx("%s: strides/dilations/pads/kernel do not match %d spatial axes"
                              % (op, k), op)
    geo = []
    for i, D in enumerate(spatial):
        s, d = strides[i], dil[i]
        eff = (kernel[i] - 1) * d + 1
        if auto in ("SAME_UPPER", "SAME_LOWER"):
            out = -(-D // s)
            total = max((out - 1) * s + eff - D, 0)
            pb = total // 2 if auto == "SAME_UPPER" else total - total // 2
            pe = total - pb
        elif auto == "VALID":
            pb = pe = 0
            out = (D - eff) // s + 1
        elif auto == "NOTSET":
            pb, pe = pads[i], pads[i + k]
            num = D + pb + pe - eff
            if ceil:
                out = -(-num // s) + 1
                if (out - 1) * s >= D + pb:
                    out -= 1
            else:
                out = num // s + 1
        else:
            raise UnsupportedOnnx("%s: auto_pad %r" % (op, auto), op)
        if out < 1 or pb < 0 or pe < 0:
            raise UnsupportedOnnx("%s: no output for input size %d, kernel %d, pads %d/%d"
                                  % (op, D, kernel[i], pb, pe), op)
        extra = max((out - 1) * s + eff - (D + pb + pe), 0)
        geo.append((s, d, pb, pe, out, extra))
    return geo


def _windows(m, op, x, kernel, geo, fill):
    """x [N, C, D...] padded with `fill` (a scalar Var) on the spatial axes,
    then one strided slice [N, C, out...] per kernel offset, in C order of
    the offsets (slices along one axis are shared by the offsets after it)."""
    for i, (s, d, pb, pe, out, extra) in enumerate(geo):
        if pb or pe + extra:
            x = _pad_axis(m, x, 2 + i, pb, pe + extra, fill, op)
    level = [x]
    for i, (s, d, pb, pe, out, extra) in enumerate(geo):
        nxt = []
        for v in level:
            for o in range(kernel[i]):
                start = o * d
                attrs = [("axis", 2 + i), ("start", start), ("stop", start + (out - 1) * s + 1)]
                if s != 1:
                    attrs.append(("step", s))
                nxt.append(_g.Var("slice", (v,), attrs))
        level = nxt
    return level


def _lowest(dt):
    if dt in ("f32", "f64"):
        return _sc(dt, -np.inf)
    return _sc(dt, np.iinfo(_npdt(dt)).min)


def _pool_setup(m, op, x, at):
    shape = m._shape(x, op)
    if len(shape) < 3:
        raise UnsupportedOnnx("%s: input must have rank >= 3, got %s" % (op, shape), op)
    kernel = _ints(at["kernel_shape"], 0, 0)
    geo = _window_geometry(op, shape[2:], kernel, at)
    return shape, kernel, geo


@_reg("MaxPool", auto_pad="NOTSET", ceil_mode=0, dilations=None, kernel_shape=None, pads=None,
      storage_order=0, strides=None)
def _maxpool(m, node, ins, at):
    """maximum over the window slices of the input padded with -inf (the
    padding never wins). The optional Indices output is the flat index of
    the first maximum in the unpadded input (row- or column-major)."""
    op = "MaxPool"
    x = _need(op, ins, 0)
    dt = m._dtype(x)
    shape, kernel, geo = _pool_setup(m, op, x, at)
    sl = _windows(m, op, x, kernel, geo, _lowest(dt))
    y = sl[0]
    for v in sl[1:]:
        y = _g.maximum(y, v)
    if len(node.output) < 2 or not node.output[1]:
        return y
    # indices: a running first-maximum, with the static source index of each slice
    sp = list(shape[2:])
    outs = [g[4] for g in geo]
    offs = list(np.ndindex(*kernel))
    base = np.arange(shape[0] * shape[1], dtype=np.int64).reshape(shape[0], shape[1], *([1] * len(sp)))
    base = base * int(np.prod(sp, dtype=np.int64))
    best, bidx = None, None
    for v, o in zip(sl, offs):
        coords = [np.arange(outs[i]) * geo[i][0] + o[i] * geo[i][1] - geo[i][2] for i in range(len(sp))]
        # (a padding position never wins: clipping only keeps its index in range)
        grid = [np.clip(g_, 0, n - 1) for g_, n in zip(np.meshgrid(*coords, indexing="ij"), sp)]
        flat = np.ravel_multi_index(grid, sp, order="F" if at["storage_order"] else "C")
        idx = _g.constant((base + flat.reshape((1, 1) + flat.shape)).astype(np.int64))
        if best is None:
            best, bidx = v, idx
        else:
            upd = _g.greater(v, best)
            best = _g.where(upd, v, best)
            bidx = _g.where(upd, idx, bidx)
    return [y, _g.broadcast_to(bidx, m._shape(y, op))]


@_reg("AveragePool", auto_pad="NOTSET", ceil_mode=0, count_include_pad=0, kernel_shape=None,
      pads=None, strides=None, dilations=None)
def _avgpool(m, node, ins, at):
    """Sum of the window slices of the zero-padded input, divided by the
    number of counted elements of each window -- a static constant: the
    input's elements, plus the pads with count_include_pad (never the
    ceil_mode overhang)."""
    op = "AveragePool"
    x = _need(op, ins, 0)
    dt = m._dtype(x)
    if dt not in ("f32", "f64"):
        raise UnsupportedOnnx("%s of %s" % (op, dt), op)
    shape, kernel, geo = _pool_setup(m, op, x, at)
    sl = _windows(m, op, x, kernel, geo, _sc(dt, 0))
    y = sl[0]
    for v in sl[1:]:
        y = _g.add(y, v)
    # the count of each window, from the same windows over a 0/1 mask
    mask = np.ones([1], np.int64)
    for i, (s, d, pb, pe, out, extra) in enumerate(geo):
        D = shape[2 + i]
        line = np.zeros(D + pb + pe + extra, np.int64)
        if at["count_include_pad"]:
            line[:D + pb + pe] = 1
        else:
            line[pb:pb + D] = 1
        cnt = np.zeros(out, np.int64)
        for o in range(kernel[i]):
            cnt += line[o * d:o * d + (out - 1) * s + 1:s]
        mask = np.multiply.outer(mask, cnt)
    mask = mask.reshape((1, 1) + mask.shape[1:])
    if (mask == 0).any():
        raise UnsupportedOnnx("%s: a window covers only padding" % op, op)
    if (mask == mask.flat[0]).all():
        return _g.divide(y, _sc(dt, mask.flat[0]))
    return _g.divide(y, _g.constant(mask.astype(_npdt(dt))))


@_reg("Conv", auto_pad="NOTSET", dilations=None, group=1, kernel_shape=None, pads=None,
      strides=None)
def _conv(m, node, ins, at):
    op = "Conv"
    x, w, b = _need(op, ins, 0), _need(op, ins, 1), _opt(ins, 2)
    ws = m._shape(w, op)
    if at["kernel_shape"] is not None and list(at["kernel_shape"]) != list(ws[2:]):
        raise UnsupportedOnnx("%s: kernel_shape %s differs from the weights %s" % (op, at["kernel_shape"], ws), op)
    return _conv_core(m, op, x, w, b, int(at["group"]), at)


def _conv_core(m, op, x, w, b, G, at):
    """im2col: the window slices of the zero-padded input stacked on a new
    axis ([N, C, K, out...] -> [N, G, C/G * K, P]), then one (batched over
    groups) matmul with the weights [G, M/G, C/G * K]; a 1x1 stride-1
    convolution is the matmul alone."""
    dt = m._dtype(x)
    shape = m._shape(x, op)
    ws = m._shape(w, op)
    if len(shape) < 3 or len(ws) != len(shape):
        raise UnsupportedOnnx("%s: input %s and weights %s" % (op, shape, ws), op)
    N, C = shape[0], shape[1]
    M = ws[0]
    kernel = list(ws[2:])
    if C % G or M % G or ws[1] != C // G:
        raise UnsupportedOnnx("%s: %d channels, %d filters, group %d, weights %s" % (op, C, M, G, ws), op)
    geo = _window_geometry(op, shape[2:], kernel, at)
    outs = [g[4] for g in geo]
    P = int(np.prod(outs, dtype=np.int64))
    K = int(np.prod(kernel, dtype=np.int64))
    sl = _windows(m, op, x, kernel, geo, _sc(dt, 0))
    if K == 1:
        cols = sl[0]
    else:
        cols = _g.concatenate([_g.expand_dims(v, 2) for v in sl], 2)
    Cg, Mg = C // G, M // G
    if G == 1:
        y = _g.matmul(_g.reshape(w, (M, Cg * K)), _g.reshape(cols, (N, Cg * K, P)))
    else:
        y = _g.matmul(_g.reshape(w, (G, Mg, Cg * K)), _g.reshape(cols, (N, G, Cg * K, P)))
    y = _g.reshape(y, [N, M] + outs)
    if b is not None:
        y = _g.add(y, _g.reshape(b, [M] + [1] * len(outs)))
    return _keep(m, x, y)


@_reg("ConvTranspose", auto_pad="NOTSET", dilations=None, group=1, kernel_shape=None,
      output_padding=None, output_shape=None, pads=None, strides=None)
def _convt(m, node, ins, at):
    """The transposed convolution as a convolution: the input with stride-1
    zeros inserted between its elements, padded by (kernel extent - 1) minus
    the pads (plus output_padding at the end; a negative pad crops), then
    convolved with stride 1 by the weights with channels swapped per group
    and every spatial axis flipped."""
    op = "ConvTranspose"
    x, w, b = _need(op, ins, 0), _need(op, ins, 1), _opt(ins, 2)
    dt = m._dtype(x)
    shape = m._shape(x, op)
    ws = m._shape(w, op)
    r = len(shape)
    k = r - 2
    if k < 1 or len(ws) != r:
        raise UnsupportedOnnx("%s: input %s and weights %s" % (op, shape, ws), op)
    G = int(at["group"])
    C, Mg = ws[0], ws[1]
    kernel = list(ws[2:])
    if shape[1] != C or C % G:
        raise UnsupportedOnnx("%s: %d channels, weights %s, group %d" % (op, shape[1], ws, G), op)
    if at["kernel_shape"] is not None and list(at["kernel_shape"]) != kernel:
        raise UnsupportedOnnx("%s: kernel_shape %s differs from the weights %s" % (op, at["kernel_shape"], ws), op)
    strides = _ints(at["strides"], k, 1)
    dil = _ints(at["dilations"], k, 1)
    opad = _ints(at["output_padding"], k, 0)
    pads = _ints(at["pads"], 2 * k, 0)
    auto = _attr_str(at["auto_pad"] or "NOTSET")
    if auto not in ("NOTSET", "SAME_UPPER", "SAME_LOWER", "VALID"):
        raise UnsupportedOnnx("%s: auto_pad %r" % (op, auto), op)
    oshape = None if at["output_shape"] is None else [int(v) for v in at["output_shape"]][-k:]
    if auto in ("SAME_UPPER", "SAME_LOWER") and oshape is None:
        oshape = [shape[2 + i] * strides[i] for i in range(k)]
    for i in range(k):
        eff = (kernel[i] - 1) * dil[i] + 1
        full = strides[i] * (shape[2 + i] - 1) + opad[i] + eff
        if oshape is not None:
            total = full - oshape[i]
            if auto == "SAME_UPPER":
                pads[i], pads[i + k] = total // 2, total - total // 2
            else:
                pads[i], pads[i + k] = total - total // 2, total // 2
        elif auto == "VALID":
            pads[i] = pads[i + k] = 0
    # the input with zeros inserted: [.., D, ..] -> [.., (D - 1) * s + 1, ..]
    for i in range(k):
        s = strides[i]
        if s == 1:
            continue
        a = 2 + i
        cur = list(m._shape(x, op))
        D = cur[a]
        zs = cur[:a + 1] + [s - 1] + cur[a + 1:]
        z = _g.concatenate([_g.expand_dims(x, a + 1), _g.broadcast_to(_sc(dt, 0), zs)], a + 1)
        x = _g.reshape(z, cur[:a] + [D * s] + cur[a + 1:])
        x = _g.Var("slice", (x,), [("axis", a), ("start", 0), ("stop", (D - 1) * s + 1)])
    cpads = []
    for i in range(k):
        eff = (kernel[i] - 1) * dil[i] + 1
        lo, hi = eff - 1 - pads[i], eff - 1 - pads[i + k] + opad[i]
        if lo < 0 or hi < 0:
            n = m._shape(x, op)[2 + i]
            x = _g.Var("slice", (x,), [("axis", 2 + i), ("start", max(-lo, 0)), ("stop", n - max(-hi, 0))])
        cpads.append((max(lo, 0), max(hi, 0)))
    # weights [C, M/G, k...] -> [M, C/G, k...], flipped
    Cg = C // G
    wt = _g.reshape(w, [G, Cg, Mg] + kernel)
    wt = _g.reshape(_g.transpose(wt, [0, 2, 1] + list(range(3, 3 + k))), [G * Mg, Cg] + kernel)
    for i in range(k):
        wt = _g.Var("slice", (wt,), [("axis", 2 + i), ("start", -1), ("step", -1)])
    cat = {"pads": [p[0] for p in cpads] + [p[1] for p in cpads], "dilations": dil}
    return _conv_core(m, op, x, wt, b, G, cat)


# -- Resize: per axis, a static gather of neighbours and static weights ------

def _resize_coord(ctm, j, scale, W, roi, out_w):
    """The input coordinate of output position j (ONNX's coordinate
    transformations); None where tf_crop_and_resize extrapolates."""
    if ctm == "align_corners":
        return 0.0 if out_w == 1 else j * (W - 1) / (out_w - 1)
    if ctm == "asymmetric":
        return j / scale
    if ctm == "tf_crop_and_resize":
        if out_w == 1:
            x = (roi[1] - roi[0]) * (W - 1) / 2
        else:
            x = j * (roi[1] - roi[0]) * (W - 1) / (out_w - 1)
        x += roi[0] * (W - 1)
        return None if x < 0 or x > W - 1 else x
    if ctm == "pytorch_half_pixel":
        return -0.5 if out_w == 1 else (j + 0.5) / scale - 0.5
    if ctm == "half_pixel":
        return (j + 0.5) / scale - 0.5
    if ctm == "tf_half_pixel_for_nn":
        return (j + 0.5) / scale
    raise UnsupportedOnnx("Resize: coordinate_transformation_mode %r" % ctm, "Resize")


def _resize_neighbours(x, n, W):
    """The n input positions nearest to x (ties to the smaller) among the
    input extended by ceil(n/2) edge copies each side, as positions of the
    extension, the way the ONNX reference picks them; then clamped into the
    input (the edge copies)."""
    pad = -(-n // 2)
    xp = x + pad
    lo = int(np.floor(xp))
    cand = [i for i in range(lo - n, lo + n + 2) if 0 <= i < W + 2 * pad]
    cand.sort(key=lambda i: (abs(xp - i), i))
    idx = sorted(cand[:n])
    return [min(max(i - pad, 0), W - 1) for i in idx], [i - pad for i in idx]


def _resize_axis_taps(at, mode, W, out, scale, roi):
    """(indices [out, n], weights [out, n] or None for nearest, extrapolated [out])."""
    ctm = _attr_str(at["coordinate_transformation_mode"])
    A = float(at["cubic_coeff_a"])
    nm = _attr_str(at["nearest_mode"])
    n = 4 if mode == "cubic" else 2
    out_w = scale * W
    idx = np.zeros((out, n if mode != "nearest" else 1), np.int64)
    wts = np.zeros((out, n), np.float64)
    ext = np.zeros(out, bool)
    for j in range(out):
        x = _resize_coord(ctm, j, scale, W, roi, out_w)
        if x is None:
            ext[j] = True
            continue
        xi = float(np.floor(x))
        ratio = 1.0 if x == xi else x - xi
        nb, raw = _resize_neighbours(x, n, W)
        if mode == "nearest":
            if ratio == 1.0:
                right = True
            elif nm == "round_prefer_floor":
                right = ratio > 0.5
            elif nm == "round_prefer_ceil":
                right = ratio >= 0.5
            elif nm == "floor":
                right = False
            elif nm == "ceil":
                right = True
            else:
                raise UnsupportedOnnx("Resize: nearest_mode %r" % nm, "Resize")
            idx[j, 0] = nb[1] if right else nb[0]
            continue
        if mode == "linear":
            c = np.array([1 - ratio, ratio])
        else:
            r1, q = ratio + 1, 1 - ratio
            c = np.array([((A * r1 - 5 * A) * r1 + 8 * A) * r1 - 4 * A,
                          ((A + 2) * ratio - (A + 3)) * ratio * ratio + 1,
                          ((A + 2) * q - (A + 3)) * q * q + 1,
                          ((A * (q + 1) - 5 * A) * (q + 1) + 8 * A) * (q + 1) - 4 * A])
        if at["exclude_outside"]:
            c = np.where([0 <= i < W for i in raw], c, 0.0)
            c = c / c.sum()
        idx[j] = nb
        wts[j] = c
    return idx, (None if mode == "nearest" else wts), ext


def _resize(m, op, x, scales, sizes, roi, at):
    """Separable: axis by axis, last to first (the reference's order), the
    output is sum_t take(x, index_t) * weight_t over the 1 (nearest), 2
    (linear) or 4 (cubic) neighbours, the weights computed in f64 from the
    static geometry; extrapolated positions take extrapolation_value."""
    mode = _attr_str(at["mode"])
    if mode not in ("nearest", "linear", "cubic"):
        raise UnsupportedOnnx("%s: mode %r" % (op, mode), op)
    shape = m._shape(x, op)
    r = len(shape)
    if sizes is not None:
        sizes = [int(v) for v in sizes]
        if len(sizes) != r:
            raise UnsupportedOnnx("%s: %d sizes for rank %d" % (op, len(sizes), r), op)
        scales = [sizes[k] / shape[k] for k in range(r)]
    else:
        scales = [float(v) for v in scales]
        if len(scales) != r:
            raise UnsupportedOnnx("%s: %d scales for rank %d" % (op, len(scales), r), op)
        sizes = [int(scales[k] * shape[k]) for k in range(r)]
    if roi is None or len(roi) == 0:
        roi = [0.0] * r + [1.0] * r
    y = x
    for k in reversed(range(r)):
        ctm = _attr_str(at["coordinate_transformation_mode"])
        if scales[k] == 1.0 and sizes[k] == shape[k] and ctm != "tf_crop_and_resize":
            continue
        if scales[k] <= 0 or sizes[k] <= 0:
            raise UnsupportedOnnx("%s: scale %r on axis %d" % (op, scales[k], k), op)
        idx, wts, ext = _resize_axis_taps(at, mode, shape[k], sizes[k], scales[k],
                                          (float(roi[k]), float(roi[k + r])))
        lay = (1,) * k + (sizes[k],) + (1,) * (r - k - 1)
        acc = None
        for t in range(idx.shape[1]):
            term = _g.take(y, _g.constant(idx[:, t]), k)
            if wts is not None:
                term = _g.multiply(term, _g.constant(wts[:, t].reshape(lay)))
            acc = term if acc is None else _g.add(acc, term)
        if ext.any():
            acc = _g.where(_g.constant(ext.reshape(lay)), float(at["extrapolation_value"]), acc)
        y = acc
    return _keep(m, x, y)


@_reg("Resize", coordinate_transformation_mode="half_pixel", cubic_coeff_a=-0.75,
      exclude_outside=0, extrapolation_value=0.0, mode="nearest", nearest_mode="round_prefer_floor")
def _resize_op(m, node, ins, at):
    op = "Resize"
    x = _need(op, ins, 0)
    if m.opset < 11:  # Resize-10: (X, scales), asymmetric, nearest rounds down
        at = dict(at, coordinate_transformation_mode="asymmetric", nearest_mode="floor")
        scales = np.asarray(m._static(node.input[1], op, "scales")).ravel()
        return _resize(m, op, x, scales, None, None, at)

    def get(k, what):
        if _opt(ins, k) is None:
            return None
        v = np.asarray(m._static(node.input[k], op, what)).ravel()
        return v if v.size else None
    roi = get(1, "roi") if _attr_str(at["coordinate_transformation_mode"]) == "tf_crop_and_resize" else None
    scales, sizes = get(2, "scales"), get(3, "sizes")
    if (scales is None) == (sizes is None):
        raise UnsupportedOnnx("%s: exactly one of scales and sizes must be given" % op, op)
    return _resize(m, op, x, scales, sizes, roi, at)


@_reg("Upsample", mode="nearest", scales=None)
def _upsample(m, node, ins, at):
    op = "Upsample"
    x = _need(op, ins, 0)
    scales = at["scales"] if m.opset < 9 else np.asarray(m._static(node.input[1], op, "scales")).ravel()
    rat = {"coordinate_transformation_mode": "asymmetric", "cubic_coeff_a": -0.75,
           "exclude_outside": 0, "extrapolation_value": 0.0, "mode": _attr_str(at["mode"]),
           "nearest_mode": "floor"}
    return _resize(m, op, x, scales, None, None, rat)


# -- RNN, GRU, LSTM: unrolled over the (static) sequence ---------------------

def _act(name, alpha, beta, op):
    """An ONNX recurrent activation as a function of one Var."""
    nm = _attr_str(name)
    table = {
        "Tanh": lambda v: _g.tanh(v),
        "Sigmoid": lambda v: _g.sigmoid(v),
        "Relu": lambda v: _g.maximum(v, 0),
        "Softsign": lambda v: _g.divide(v, _g.add(1, _g.absolute(v))),
        "Softplus": lambda v: _g.softplus(v),
        "Affine": lambda v: _g.add(_g.multiply(alpha, v), beta),
        "LeakyRelu": lambda v: _g.where(_g.less(v, 0), _g.multiply(alpha, v), v),
        "ThresholdedRelu": lambda v: _g.where(_g.greater(v, alpha), v, 0),
        "ScaledTanh": lambda v: _g.multiply(alpha, _g.tanh(_g.multiply(beta, v))),
        "HardSigmoid": lambda v: _g.maximum(0, _g.minimum(1, _g.add(_g.multiply(alpha, v), beta))),
        "Elu": lambda v: _g.where(_g.less(v, 0), _g.multiply(alpha, _g.expm1(v)), v),
    }
    if nm not in table:
        raise UnsupportedOnnx("%s: activation %r" % (op, nm), op)
    return table[nm]


# default (alpha, beta) of the activations that take them
_ACT_DEFAULTS = {"Affine": (1.0, 0.0), "LeakyRelu": (0.01, None), "ThresholdedRelu": (1.0, None),
                 "ScaledTanh": (1.0, 1.0), "HardSigmoid": (0.2, 0.5), "Elu": (1.0, None)}


def _acts(op, at, per_dir, ndir):
    names = at["activations"]
    defaults = {"RNN": ["Tanh"], "GRU": ["Sigmoid", "Tanh"], "LSTM": ["Sigmoid", "Tanh", "Tanh"]}[op]
    names = [_attr_str(a) for a in names] if names else defaults * ndir
    if len(names) != per_dir * ndir:
        raise UnsupportedOnnx("%s: %d activations for %d direction(s)" % (op, len(names), ndir), op)
    alphas = list(at["activation_alpha"] or [])
    betas = list(at["activation_beta"] or [])
    fs = []
    for nm in names:
        a, b = _ACT_DEFAULTS.get(nm, (None, None))
        if nm in _ACT_DEFAULTS:
            a = float(alphas.pop(0)) if alphas else a
            if b is not None:
                b = float(betas.pop(0)) if betas else b
        fs.append(_act(nm, a, b, op))
    return [fs[d * per_dir:(d + 1) * per_dir] for d in range(ndir)]


def _rows(v, k, n, axis):
    """Rows k*n .. (k+1)*n of v along axis (one gate's block)."""
    return _g.Var("slice", (v,), [("axis", axis), ("start", k * n), ("stop", (k + 1) * n)])


def _recurrent(m, node, ins, at, op):
    """The ONNX equations, one time step after the other (the sequence length
    is static); X @ W^T for every step is one matmul. Directions are
    computed separately and stacked. sequence_lens must be static: steps
    past a batch entry's length keep its state and output zeros."""
    gates = {"RNN": 1, "GRU": 3, "LSTM": 4}[op]
    X, W, R = _need(op, ins, 0), _need(op, ins, 1), _need(op, ins, 2)
    B, lens, h0 = _opt(ins, 3), _opt(ins, 4), _opt(ins, 5)
    c0, P = (_opt(ins, 6), _opt(ins, 7)) if op == "LSTM" else (None, None)
    H = int(at["hidden_size"])
    direction = _attr_str(at["direction"])
    dirs = {"forward": [False], "reverse": [True], "bidirectional": [False, True]}.get(direction)
    if dirs is None:
        raise UnsupportedOnnx("%s: direction %r" % (op, direction), op)
    if op == "LSTM" and at["input_forget"]:
        raise UnsupportedOnnx("LSTM: input_forget=1", op)
    layout = int(at["layout"])
    if layout:
        X = _g.transpose(X, [1, 0, 2])
        h0 = None if h0 is None else _g.transpose(h0, [1, 0, 2])
        c0 = None if c0 is None else _g.transpose(c0, [1, 0, 2])
    T, N, _ = m._shape(X, op)
    dt = m._dtype(X)
    mask = None
    if lens is not None:
        ln = np.asarray(m._static(node.input[4], op, "sequence_lens")).ravel().astype(np.int64)
        if (ln != T).any():
            if len(dirs) > 1 or dirs[0]:
                raise UnsupportedOnnx("%s: sequence_lens shorter than the sequence in reverse" % op, op)
            mask = np.arange(T)[:, None] < ln[None, :]  # [T, N]
    fs = _acts(op, at, {"RNN": 1, "GRU": 2, "LSTM": 3}[op], len(dirs))
    clip = at["clip"]

    def clipv(v):
        if clip is None:
            return v
        return _g.minimum(_g.maximum(v, -float(clip)), float(clip))
    ys, hs, cs = [], [], []
    for d, rev in enumerate(dirs):
        Wd = _g.squeeze(_rows(W, d, 1, 0), 0)  # [G*H, I]
        Rd = _g.squeeze(_rows(R, d, 1, 0), 0)  # [G*H, H]
        XW = _g.matmul(X, _g.transpose(Wd))  # [T, N, G*H]
        if B is not None:
            Bd = _g.squeeze(_rows(B, d, 1, 0), 0)
            wb, rb = _rows(Bd, 0, gates * H, 0), _rows(Bd, 1, gates * H, 0)
        else:
            wb = rb = None
        h = _sc(dt, 0) if h0 is None else _g.squeeze(_rows(h0, d, 1, 0), 0)
        h = _g.broadcast_to(h, (N, H))
        c = None
        if op == "LSTM":
            c = _g.broadcast_to(_sc(dt, 0) if c0 is None else _g.squeeze(_rows(c0, d, 1, 0), 0), (N, H))
            Pd = None if P is None else _g.squeeze(_rows(P, d, 1, 0), 0)
        RT = [_g.transpose(_rows(Rd, k, H, 0)) for k in range(gates)]  # [H, H] per gate
        ysd = [None] * T
        for t in (reversed(range(T)) if rev else range(T)):
            xt = _g.squeeze(_rows(XW, t, 1, 0), 0)  # [N, G*H]

            def xg(k):  # input part of gate k, with both biases
                v = _rows(xt, k, H, 1)
                if wb is not None:
                    v = _g.add(v, _g.add(_rows(wb, k, H, 0), _rows(rb, k, H, 0)))
                return v
            if op == "RNN":
                hn = fs[d][0](clipv(_g.add(xg(0), _g.matmul(h, RT[0]))))
                cn = None
            elif op == "GRU":
                f, g = fs[d]
                z = f(clipv(_g.add(xg(0), _g.matmul(h, RT[0]))))
                r = f(clipv(_g.add(xg(1), _g.matmul(h, RT[1]))))
                xh = _rows(xt, 2, H, 1)
                if wb is not None:
                    xh = _g.add(xh, _rows(wb, 2, H, 0))
                if at["linear_before_reset"]:
                    rh = _g.matmul(h, RT[2])
                    if rb is not None:
                        rh = _g.add(rh, _rows(rb, 2, H, 0))
                    hh = g(clipv(_g.add(xh, _g.multiply(r, rh))))
                else:
                    rh = _g.matmul(_g.multiply(r, h), RT[2])
                    if rb is not None:
                        rh = _g.add(rh, _rows(rb, 2, H, 0))
                    hh = g(clipv(_g.add(xh, rh)))
                hn = _g.add(_g.multiply(_g.subtract(1, z), hh), _g.multiply(z, h))
                cn = None
            else:  # LSTM, gates i o f c; peepholes i o f
                f, g, hf = fs[d]

                def pre(k):
                    return _g.add(xg(k), _g.matmul(h, RT[k]))

                def peep(v, k):
                    return v if Pd is None else _g.add(v, _g.multiply(_rows(Pd, k, H, 0), c_prev))
                c_prev = c
                i_ = f(clipv(peep(pre(0), 0)))
                f_ = f(clipv(peep(pre(2), 2)))
                cc = g(clipv(pre(3)))
                cn = _g.add(_g.multiply(f_, c_prev), _g.multiply(i_, cc))
                c_prev = cn
                o_ = f(clipv(peep(pre(1), 1)))
                hn = _g.multiply(o_, hf(cn))
            if mask is not None:
                mt = _g.constant(mask[t].reshape(N, 1))
                ysd[t] = _g.where(mt, hn, _sc(dt, 0))
                hn = _g.where(mt, hn, h)
                if cn is not None:
                    cn = _g.where(mt, cn, c)
            else:
                ysd[t] = hn
            h, c = hn, cn
        ys.append(_g.concatenate([_g.expand_dims(y, 0) for y in ysd], 0))  # [T, N, H]
        hs.append(h)
        cs.append(c)
    Y = _g.concatenate([_g.expand_dims(y, 1) for y in ys], 1)  # [T, D, N, H]
    Yh = _g.concatenate([_g.expand_dims(h, 0) for h in hs], 0)  # [D, N, H]
    outs = [Y, Yh]
    if op == "LSTM":
        outs.append(_g.concatenate([_g.expand_dims(c, 0) for c in cs], 0))
    if layout:
        outs = [_g.transpose(outs[0], [2, 0, 1, 3])] + [_g.transpose(v, [1, 0, 2]) for v in outs[1:]]
    return [_keep(m, X, v) for v in outs]


_RNN_ATTRS = dict(activation_alpha=None, activation_beta=None, activations=None, clip=None,
                  direction="forward", hidden_size=None, layout=0)


@_reg("RNN", **_RNN_ATTRS)
def _rnn(m, node, ins, at):
    return _recurrent(m, node, ins, at, "RNN")


@_reg("GRU", linear_before_reset=0, **_RNN_ATTRS)
def _gru(m, node, ins, at):
    return _recurrent(m, node, ins, at, "GRU")


@_reg("LSTM", input_forget=0, **_RNN_ATTRS)
def _lstm(m, node, ins, at):
    return _recurrent(m, node, ins, at, "LSTM")


# -- scatters: a one-hot match of run-time indices against the positions -----

def _scatter_last(m, op, data, lin, upd, red):
    """data [B..., L], lin and upd [B..., M] (lin: positions in [0, L), or
    outside to hit nothing) -> data with upd[m] written at lin[m]: with
    reduction none the last update to a position wins (the reference's
    sequential order); add / mul combine them all with the data."""
    L = m._shape(data, op)[-1]
    M = m._shape(lin, op)[-1]
    r = m._rank(lin)
    dt = m._dtype(data)
    hit = _g.equal(_g.expand_dims(lin, r), _iota(L, r, r + 1))  # [B..., M, L]
    ue = _g.expand_dims(upd, r)  # [B..., M, 1]
    if red == "none":
        jm = _iota(M, r - 1, r + 1)  # [.., M, 1]
        last = _g.max(_g.where(hit, jm, _sc("i64", -1)), r - 1, True)  # [B..., 1, L]
        sel = _g.logical_and(hit, _g.equal(jm, last))
        if dt == "bool":
            val = _g.cast(_g.sum(_g.where(sel, _g.cast(ue, "i32"), _sc("i32", 0)), r - 1), "bool")
        else:
            val = _g.sum(_g.where(sel, ue, _sc(dt, 0)), r - 1)
        return _g.where(_g.greater_equal(_g.squeeze(last, r - 1), 0), _keep(m, data, val), data)
    if dt == "bool":
        raise UnsupportedOnnx("%s: reduction %s on bool" % (op, red), op)
    if red == "add":
        return _keep(m, data, _g.add(data, _g.sum(_g.where(hit, ue, _sc(dt, 0)), r - 1)))
    if red == "mul":
        return _keep(m, data, _g.multiply(data, _g.prod(_g.where(hit, ue, _sc(dt, 1)), r - 1)))
    raise UnsupportedOnnx("%s: reduction %r" % (op, red), op)


def _wrap_index(m, op, idx, n):
    if m._dtype(idx) not in ("i32", "i64"):
        raise UnsupportedOnnx("%s: indices dtype %s" % (op, m._dtype(idx)), op)
    idx = _g.cast(idx, "i64")
    return _g.where(_g.less(idx, 0), _g.add(idx, n), idx)


@_reg("ScatterElements Scatter", axis=0, reduction="none")
def _scatter_elements(m, node, ins, at):
    """The scatter axis moved last; indices and updates padded (with an index
    that hits nothing) to the data's extent on the other axes."""
    op = node.op_type
    data, idx, upd = [_need(op, ins, k) for k in range(3)]
    ds, qs = list(m._shape(data, op)), list(m._shape(idx, op))
    r = len(ds)
    if len(qs) != r or tuple(m._shape(upd, op)) != tuple(qs):
        raise UnsupportedOnnx("%s: data %s, indices %s, updates %s" % (op, ds, qs, m._shape(upd, op)), op)
    axis = _axis(at["axis"], r, op)
    idx = _wrap_index(m, op, idx, ds[axis])
    for k in range(r):
        if k != axis and qs[k] < ds[k]:
            idx = _pad_axis(m, idx, k, 0, ds[k] - qs[k], _sc("i64", -1), op)
            upd = _pad_axis(m, upd, k, 0, ds[k] - qs[k], _sc(m._dtype(upd), 0), op)
        elif k != axis and qs[k] > ds[k]:
            raise UnsupportedOnnx("%s: indices %s exceed data %s" % (op, qs, ds), op)
    perm = [k for k in range(r) if k != axis] + [axis]
    inv = [perm.index(k) for k in range(r)]
    out = _scatter_last(m, op, _g.transpose(data, perm), _g.transpose(idx, perm),
                        _g.transpose(upd, perm), _attr_str(at["reduction"]))
    return _g.transpose(out, inv)


@_reg("ScatterND", reduction="none")
def _scatternd(m, node, ins, at):
    """Index tuples -> linear positions in the leading block of the data; the
    trailing (sliced) axes become batch axes of the scatter."""
    op = "ScatterND"
    data, idx, upd = [_need(op, ins, k) for k in range(3)]
    ds, qs, us = list(m._shape(data, op)), list(m._shape(idx, op)), list(m._shape(upd, op))
    q = qs[-1]
    if q > len(ds) or us != qs[:-1] + ds[q:]:
        raise UnsupportedOnnx("%s: data %s, indices %s, updates %s" % (op, ds, qs, us), op)
    dims = np.array(ds[:q], np.int64)
    idx = _wrap_index(m, op, idx, _g.constant(dims))
    strides = np.array([int(np.prod(dims[k + 1:], dtype=np.int64)) for k in range(q)], np.int64)
    lin = _g.reshape(_g.sum(_g.multiply(idx, _g.constant(strides)), -1), (-1,))  # [M]
    L = int(np.prod(dims, dtype=np.int64))
    M = int(np.prod(qs[:-1], dtype=np.int64))
    rest = ds[q:]
    R = int(np.prod(rest, dtype=np.int64))
    d2 = _g.transpose(_g.reshape(data, (L, R)), [1, 0])  # [R, L]
    u2 = _g.transpose(_g.reshape(upd, (M, R)), [1, 0])  # [R, M]
    l2 = _g.broadcast_to(_g.reshape(lin, (1, M)), (R, M))
    out = _scatter_last(m, op, d2, l2, u2, _attr_str(at["reduction"]))
    return _g.reshape(_g.transpose(out, [1, 0]), ds)


@_reg("MaxUnpool", kernel_shape=None, pads=None, strides=None)
def _maxunpool(m, node, ins, at):
    """Zeros with X written at its (flat, whole-tensor) indices: per (n, c)
    plane, a scatter of X at index - plane offset, in the default output
    shape ((in - 1) * stride + kernel - pads); a given output_shape pads
    (zeros at the end) or crops that, as the ONNX test data has it."""
    op = "MaxUnpool"
    x, idx = _need(op, ins, 0), _need(op, ins, 1)
    shape = m._shape(x, op)
    k = len(shape) - 2
    kernel = _ints(at["kernel_shape"], 0, 0)
    strides = _ints(at["strides"], k, 1)
    pads = _ints(at["pads"], 2 * k, 0)
    dshape = list(shape[:2]) + [(shape[2 + i] - 1) * strides[i] + kernel[i] - pads[i] - pads[i + k]
                                for i in range(k)]
    oshape = dshape
    if _opt(ins, 2) is not None:
        oshape = [int(v) for v in np.asarray(m._static(node.input[2], op, "output_shape")).ravel()]
    if len(oshape) != len(shape) or list(oshape[:2]) != list(shape[:2]):
        raise UnsupportedOnnx("%s: output_shape %s for input %s" % (op, oshape, shape), op)
    N, C = shape[:2]
    plane = int(np.prod(dshape[2:], dtype=np.int64))
    Q = int(np.prod(shape[2:], dtype=np.int64))
    off = _g.constant((np.arange(N * C, dtype=np.int64) * plane).reshape(N, C, 1))
    lin = _g.subtract(_g.reshape(_g.cast(idx, "i64"), (N, C, Q)), off)
    zeros = _g.broadcast_to(_sc(m._dtype(x), 0), (N, C, plane))
    y = _g.reshape(_scatter_last(m, op, zeros, lin, _g.reshape(x, (N, C, Q)), "none"), dshape)
    for i in range(k):
        d, o = dshape[2 + i], oshape[2 + i]
        if o > d:
            y = _pad_axis(m, y, 2 + i, 0, o - d, _sc(m._dtype(x), 0), op)
        elif o < d:
            y = _g.Var("slice", (y,), [("axis", 2 + i), ("start", 0), ("stop", o)])
    return y


@_reg("TopK", axis=-1, largest=1, sorted=1, k=None)
def _topk(m, node, ins, at):
    """The rank of each element along the axis -- how many come before it:
    larger (smaller) ones, and equal ones at a lower index; NaN counts as the
    largest -- and output position p takes the element of rank p (a one-hot
    select-and-sum). Quadratic in the axis length."""
    op = "TopK"
    x = _need(op, ins, 0)
    K = int(at["k"]) if m.opset < 10 else int(_sval(m._static(node.input[1], op, "k"), op, "k"))
    r = m._rank(x)
    axis = _axis(at["axis"], r, op)
    A = m._shape(x, op)[axis]
    if K < 0 or K > A:
        raise UnsupportedOnnx("%s: k=%d for an axis of %d" % (op, K, A), op)
    dt = m._dtype(x)
    perm = [k for k in range(r) if k != axis] + [axis]
    xt = _g.transpose(x, perm)  # [..., A]
    xi = _g.expand_dims(xt, r)  # [..., A(i), 1]
    xj = _g.expand_dims(xt, r - 1)  # [..., 1, A(j)]
    if at["largest"]:
        before = _g.greater(xj, xi)
    else:
        before = _g.less(xj, xi)
    same = _g.equal(xj, xi)
    if dt in ("f32", "f64"):
        ni, nj = _g.not_equal(xi, xi), _g.not_equal(xj, xj)
        if at["largest"]:
            before = _g.logical_or(before, _g.logical_and(nj, _g.logical_not(ni)))
        else:
            before = _g.logical_or(before, _g.logical_and(ni, _g.logical_not(nj)))
        same = _g.logical_or(same, _g.logical_and(ni, nj))
    lower = _g.constant(np.arange(A)[None, :] < np.arange(A)[:, None])  # [i, j]: j < i
    before = _g.logical_or(before, _g.logical_and(same, lower))
    rank = _g.sum(_g.cast(before, "i64"), r)  # [..., A]
    hot = _g.equal(_g.expand_dims(rank, r - 1), _iota(K, 0, 2))  # [..., K, A]
    zero = _sc(dt, 0) if dt != "bool" else _sc("i32", 0)
    xv = xj if dt != "bool" else _g.cast(xj, "i32")
    vals = _g.sum(_g.where(hot, xv, zero), r)
    vals = _keep(m, x, vals) if dt != "bool" else _g.cast(vals, "bool")
    inds = _g.sum(_g.where(hot, _iota(A, 1, 2), _sc("i64", 0)), r)
    inv = [perm.index(k) for k in range(r)]
    return [_g.transpose(vals, inv), _g.transpose(inds, inv)]




# -- DFT and STFT: matmuls with the (static) cos / sin matrices --------------

def _dft_last(m, op, xr, xi, n, inverse, onesided):
    """The DFT along the last axis of (real, imaginary or None) parts of
    length n: y_k = sum_j x_j exp(-+2 pi i j k / n) (/ n when inverse), as
    matmuls with f64 cos and sin matrices (the definition; no FFT)."""
    K = n // 2 + 1 if onesided else n
    jk = np.outer(np.arange(n), np.arange(K)) % n  # exact angles for big n
    ang = 2 * np.pi * jk / n
    cos, sin = np.cos(ang), np.sin(ang)
    if not inverse:
        sin = -sin
    scale = 1.0 / n if inverse else 1.0
    c, s = _g.constant(cos * scale), _g.constant(sin * scale)
    yr = _g.matmul(xr, c)
    yi = _g.matmul(xr, s)
    if xi is not None:  # (a + ib)(c + is) = (ac - bs) + i(as + bc)
        yr = _g.subtract(yr, _g.matmul(xi, s))
        yi = _g.add(yi, _g.matmul(xi, c))
    return yr, yi


def _complex_parts(m, op, x):
    shape = m._shape(x, op)
    r = len(shape)
    if shape[-1] not in (1, 2):
        raise UnsupportedOnnx("%s: the last axis must be 1 (real) or 2 (complex), got %d" % (op, shape[-1]), op)
    xr = _g.squeeze(_g.Var("slice", (x,), [("axis", r - 1), ("start", 0), ("stop", 1)]), r - 1)
    xi = None
    if shape[-1] == 2:
        xi = _g.squeeze(_g.Var("slice", (x,), [("axis", r - 1), ("start", 1), ("stop", 2)]), r - 1)
    return xr, xi


@_reg("DFT", axis=1, inverse=0, onesided=0)
def _dft(m, node, ins, at):
    op = "DFT"
    x = _need(op, ins, 0)
    dt = m._dtype(x)
    if dt not in ("f32", "f64"):
        raise UnsupportedOnnx("%s of %s" % (op, dt), op)
    r = m._rank(x)
    axis = _axis(at["axis"], r, op)
    if axis == r - 1 or axis == 0:
        raise UnsupportedOnnx("%s: axis %d is the batch or the complex axis" % (op, axis), op)
    if at["inverse"] and at["onesided"]:
        raise UnsupportedOnnx("%s: inverse with onesided" % op, op)
    xr, xi = _complex_parts(m, op, x)
    perm = [k for k in range(r - 1) if k != axis] + [axis]
    inv = [perm.index(k) for k in range(r - 1)]
    xr = _g.transpose(xr, perm)
    xi = None if xi is None else _g.transpose(xi, perm)
    n = m._shape(x, op)[axis]
    if _opt(ins, 1) is not None:  # dft_length: zero-pad or truncate the signal
        L = int(_sval(m._static(node.input[1], op, "dft_length"), op, "dft_length"))
        parts = []
        for v in (xr, xi):
            if v is None:
                parts.append(None)
            elif L < n:
                parts.append(_g.Var("slice", (v,), [("axis", r - 2), ("start", 0), ("stop", L)]))
            else:
                parts.append(_pad_axis(m, v, r - 2, 0, L - n, _sc(dt, 0), op))
        xr, xi = parts
        n = L
    yr, yi = _dft_last(m, op, xr, xi, n, at["inverse"], at["onesided"])
    y = _g.concatenate([_g.expand_dims(_g.transpose(v, inv), r - 1) for v in (yr, yi)], r - 1)
    return _keep(m, x, y)


@_reg("STFT", onesided=1)
def _stft(m, node, ins, at):
    """Frames of the signal (a take with a static [frames, length] index),
    times the window, then the DFT of each frame."""
    op = "STFT"
    x = _need(op, ins, 0)
    dt = m._dtype(x)
    shape = m._shape(x, op)
    if len(shape) != 3 or dt not in ("f32", "f64"):
        raise UnsupportedOnnx("%s: signal must be [batch, length, 1 or 2] float, got %s %s" % (op, dt, shape), op)
    step = int(_sval(m._static(node.input[1], op, "frame_step"), op, "frame_step"))
    win = _opt(ins, 2)
    if _opt(ins, 3) is not None:
        flen = int(_sval(m._static(node.input[3], op, "frame_length"), op, "frame_length"))
    elif win is not None:
        flen = m._shape(win, op)[0]
    else:
        raise UnsupportedOnnx("%s: neither window nor frame_length" % op, op)
    if win is not None and m._shape(win, op) != (flen,):
        raise UnsupportedOnnx("%s: window length differs from frame_length %d" % (op, flen), op)
    T = shape[1]
    nf = (T - flen) // step + 1
    if nf < 1 or step < 1:
        raise UnsupportedOnnx("%s: no frame of %d in a signal of %d" % (op, flen, T), op)
    idx = np.arange(nf)[:, None] * step + np.arange(flen)[None, :]
    xr, xi = _complex_parts(m, op, x)
    fr = _g.take(xr, _g.constant(idx.astype(np.int64)), 1)  # [batch, frames, length]
    fi = None if xi is None else _g.take(xi, _g.constant(idx.astype(np.int64)), 1)
    if win is not None:
        fr = _g.multiply(fr, win)
        fi = None if fi is None else _g.multiply(fi, win)
    onesided = bool(at["onesided"]) and xi is None
    yr, yi = _dft_last(m, op, fr, fi, flen, False, onesided)
    return _keep(m, x, _g.concatenate([_g.expand_dims(yr, 3), _g.expand_dims(yi, 3)], 3))


# -- GridSample: run-time coordinates, gathers of the 1, 4 or 16 neighbours --

def _grid_reflect(v, lo2, hi2):
    """Reflects coordinates into [lo2 / 2, hi2 / 2] (twice the bounds, as
    PyTorch's grid sampler): the distance from the low bound, folded."""
    if lo2 == hi2:
        return _g.multiply(v, 0.0)
    mn, span = lo2 / 2.0, (hi2 - lo2) / 2.0
    d = _g.absolute(_g.subtract(v, mn))
    extra = _g.remainder(d, span)
    flips = _g.floor(_g.divide(d, span))
    even = _g.equal(_g.remainder(flips, 2.0), 0.0)
    return _g.where(even, _g.add(extra, mn), _g.add(_g.subtract(span, extra), mn))


@_reg("GridSample", align_corners=0, mode="bilinear", padding_mode="zeros")
def _gridsample(m, node, ins, at):
    """PyTorch's grid_sample (which ONNX follows), 2-D: grid coordinates
    unnormalised to pixels, folded by the padding mode (border: clipped;
    reflection: reflected), then the nearest pixel (ties to even), the 4
    bilinear or the 16 bicubic (A = -0.75) neighbours, gathered by linear
    index from the [N*H*W, C] input; taps outside the image read 0."""
    op = "GridSample"
    x, grid = _need(op, ins, 0), _need(op, ins, 1)
    xs, gs = m._shape(x, op), m._shape(grid, op)
    dt = m._dtype(x)
    if len(xs) != 4 or len(gs) != 4 or gs[3] != 2 or gs[0] != xs[0] or dt not in ("f32", "f64"):
        raise UnsupportedOnnx("%s: input %s %s and grid %s (2-D sampling only)" % (op, dt, xs, gs), op)
    mode, pad = _attr_str(at["mode"]), _attr_str(at["padding_mode"])
    if mode not in ("nearest", "bilinear", "bicubic") or pad not in ("zeros", "border", "reflection"):
        raise UnsupportedOnnx("%s: mode %r, padding_mode %r" % (op, mode, pad), op)
    align = bool(at["align_corners"])
    N, C, H, W = xs
    _, Ho, Wo, _ = gs
    g = _g.cast(grid, dt)

    def coord(k, size):
        v = _g.squeeze(_g.Var("slice", (g,), [("axis", 3), ("start", k), ("stop", k + 1)]), 3)
        if align:
            return _g.multiply(_g.add(v, 1.0), (size - 1) / 2.0)
        return _g.divide(_g.subtract(_g.multiply(_g.add(v, 1.0), float(size)), 1.0), 2.0)

    def fold(v, size):
        if pad == "border":
            return _g.minimum(_g.maximum(v, 0.0), float(size - 1))
        if pad == "reflection":
            v = _grid_reflect(v, 0.0, 2.0 * (size - 1)) if align else _grid_reflect(v, -1.0, 2.0 * size - 1)
            return _g.minimum(_g.maximum(v, 0.0), float(size - 1))
        return v
    xt = _g.reshape(_g.transpose(x, [0, 2, 3, 1]), (N * H * W, C))
    base = _g.constant((np.arange(N, dtype=np.int64) * H * W).reshape(N, 1, 1))

    def tap(ix, iy):
        """x at integral float coordinates [N, Ho, Wo] -> [N, Ho, Wo, C], 0 outside."""
        ok = _g.logical_and(_g.logical_and(_g.greater_equal(ix, 0.0), _g.less_equal(ix, float(W - 1))),
                            _g.logical_and(_g.greater_equal(iy, 0.0), _g.less_equal(iy, float(H - 1))))
        cx = _g.cast(_g.minimum(_g.maximum(ix, 0.0), float(W - 1)), "i64")
        cy = _g.cast(_g.minimum(_g.maximum(iy, 0.0), float(H - 1)), "i64")
        cx = _g.where(ok, cx, _sc("i64", 0))  # NaN coordinates: any index, masked below
        cy = _g.where(ok, cy, _sc("i64", 0))
        v = _g.take(xt, _g.add(base, _g.add(_g.multiply(cy, W), cx)), 0)
        return _g.where(_g.expand_dims(ok, 3), v, _sc(dt, 0))

    ix, iy = coord(0, W), coord(1, H)
    if mode == "nearest":
        y = tap(_round_even(fold(ix, W)), _round_even(fold(iy, H)))
    elif mode == "bilinear":
        ix, iy = fold(ix, W), fold(iy, H)
        x0, y0 = _g.floor(ix), _g.floor(iy)
        fx, fy = _g.subtract(ix, x0), _g.subtract(iy, y0)
        x1, y1 = _g.add(x0, 1.0), _g.add(y0, 1.0)
        gx, gy = _g.subtract(1.0, fx), _g.subtract(1.0, fy)
        y = None
        for xx, yy, w in ((x0, y0, _g.multiply(gx, gy)), (x1, y0, _g.multiply(fx, gy)),
                          (x0, y1, _g.multiply(gx, fy)), (x1, y1, _g.multiply(fx, fy))):
            t = _g.multiply(tap(xx, yy), _g.expand_dims(w, 3))
            y = t if y is None else _g.add(y, t)
    else:  # bicubic: the padding mode applies to each tap
        A = -0.75
        x0, y0 = _g.floor(ix), _g.floor(iy)
        tx, ty = _g.subtract(ix, x0), _g.subtract(iy, y0)

        def coeffs(t):
            def c1(v):
                return _g.add(_g.multiply(_g.multiply(_g.subtract(_g.multiply(A + 2, v), A + 3), v), v), 1.0)

            def c2(v):
                return _g.subtract(_g.multiply(_g.add(_g.multiply(_g.subtract(_g.multiply(A, v), 5 * A), v),
                                                      8 * A), v), 4 * A)
            q = _g.subtract(1.0, t)
            return [c2(_g.add(t, 1.0)), c1(t), c1(q), c2(_g.add(q, 1.0))]
        cx, cy = coeffs(tx), coeffs(ty)
        y = None
        for j in range(4):
            yy = fold(_g.add(y0, float(j - 1)), H)
            for i in range(4):
                xx = fold(_g.add(x0, float(i - 1)), W)
                w = _g.multiply(cx[i], cy[j])
                t = _g.multiply(tap(xx, yy), _g.expand_dims(w, 3))
                y = t if y is None else _g.add(y, t)
    return _keep(m, x, _g.transpose(y, [0, 3, 1, 2]))


def _round_even(v):
    """Round half to even (nearbyint), from floor and where."""
    f = _g.floor(v)
    d = _g.subtract(v, f)
    odd = _g.not_equal(_g.remainder(f, 2.0), 0.0)
    up = _g.logical_or(_g.greater(d, 0.5), _g.logical_and(_g.equal(d, 0.5), odd))
    return _g.where(up, _g.add(f, 1.0), f)


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


# -- control flow with a static trip count or a run-time select -------------

def _stack(vs, axis=0):
    return _g.concatenate([_g.expand_dims(v, axis) for v in vs], axis)


@_reg("If", then_branch=None, else_branch=None)
def _if(m, node, ins, at):
    """A static condition imports the branch taken; a run-time one imports
    both and selects with where (both are computed; same dtypes and
    shapes needed)."""
    op = "If"
    cond = _need(op, ins, 0)
    try:
        c = m._static(node.input[0], op, "cond")
    except UnsupportedOnnx:
        c = None
    if c is not None:
        return m._inline(at["then_branch"] if bool(np.asarray(c).ravel()[0]) else at["else_branch"],
                         [], op)[0]
    a, _ = m._inline(at["then_branch"], [], op)
    b, _ = m._inline(at["else_branch"], [], op)
    if len(a) != len(b):
        raise UnsupportedOnnx("%s: branches have %d and %d outputs" % (op, len(a), len(b)), op)
    outs = []
    cb = _g.reshape(_g.cast(cond, "bool"), ())
    for x, y in zip(a, b):
        if _ty(x) != _ty(y):
            raise UnsupportedOnnx("%s: branch outputs %s and %s differ (a run-time condition "
                                  "needs the same type)" % (op, _ty(x), _ty(y)), op)
        outs.append(_g.where(cb, x, y))
    return outs


@_reg("Loop", body=None)
def _loop(m, node, ins, at):
    """Unrolled: the trip count and the condition (initial and each
    iteration's) must be static; scan outputs are stacked on a new axis 0."""
    op = "Loop"
    body = at["body"]
    trip = None if _opt(ins, 0) is None else int(_sval(m._static(node.input[0], op, "M"), op, "M"))
    cond = True if _opt(ins, 1) is None else bool(_sval(m._static(node.input[1], op, "cond"), op, "cond"))
    if trip is None and _opt(ins, 1) is None:
        raise UnsupportedOnnx("%s: neither a trip count nor a condition (infinite loop)" % op, op)
    state = [x for x in ins[2:]]
    if any(v is None for v in state):
        raise UnsupportedOnnx("%s: an empty loop-carried input" % op, op)
    nstate = len(state)
    scans = []
    i = 0
    limit = trip if trip is not None else 1 << 12
    while cond and i < limit:
        outs, (c,) = m._inline(body, [_g.constant(np.array(i, np.int64)), _g.constant(np.array(cond)),
                                      *state], op, static=(0,))
        cond = bool(np.asarray(c).ravel()[0])
        state = outs[1:1 + nstate]
        scans.append(outs[1 + nstate:])
        i += 1
    if trip is None and cond:
        raise UnsupportedOnnx("%s: still running after %d iterations" % (op, limit), op)
    nscan = len(body.output) - 1 - nstate
    if nscan and not scans:
        raise UnsupportedOnnx("%s: zero iterations leave the scan outputs' shapes unknown" % op, op)
    return state + [_stack([s[k] for s in scans]) for k in range(nscan)]


@_reg("Scan", body=None, num_scan_inputs=None, scan_input_axes=None, scan_input_directions=None,
      scan_output_axes=None, scan_output_directions=None, directions=None)
def _scan(m, node, ins, at):
    """Unrolled over the (static) scan length: each scan input sliced along
    its axis (reversed for direction 1), scan outputs stacked likewise.
    Scan-8 (a leading batch axis, optional sequence_lens) loops over the
    batch as well."""
    op = "Scan"
    body = at["body"]
    K = int(at["num_scan_inputs"])
    if m.opset < 9:
        if _opt(ins, 0) is not None:
            raise UnsupportedOnnx("Scan-8 with sequence_lens", op)
        xs = ins[1:]
        N = m._shape(xs[0], op)[0]
        per = []
        for b in range(N):
            sub = [_g.squeeze(_g.Var("slice", (v,), [("axis", 0), ("start", b), ("stop", b + 1)]), 0)
                   for v in xs]
            per.append(_scan_run(m, op, body, sub, K, [0] * K, list(at["directions"] or [0] * K),
                                 None, None))
        return [_stack([p[k] for p in per]) for k in range(len(per[0]))]
    ni = len(ins) - K
    iax = list(at["scan_input_axes"] or [0] * K)
    idir = list(at["scan_input_directions"] or [0] * K)
    nout = len(body.output) - ni
    oax = list(at["scan_output_axes"] or [0] * nout)
    odir = list(at["scan_output_directions"] or [0] * nout)
    return _scan_run(m, op, body, list(ins), K, iax, idir, oax, odir)


def _scan_run(m, op, body, xs, K, iax, idir, oax, odir):
    ni = len(xs) - K
    state, seqs = xs[:ni], xs[ni:]
    seqs = [(v, _axis(a, m._rank(v), op)) for v, a in zip(seqs, iax)]
    T = m._shape(seqs[0][0], op)[seqs[0][1]]
    if any(m._shape(v, op)[a] != T for v, a in seqs):
        raise UnsupportedOnnx("%s: scan inputs of different lengths" % op, op)
    nout = len(body.output) - ni
    oax = oax or [0] * nout
    odir = odir or [0] * nout
    steps = []
    for t in range(T):
        args = list(state)
        for (v, a), d in zip(seqs, idir):
            tt = T - 1 - t if d else t
            args.append(_g.squeeze(_g.Var("slice", (v,), [("axis", a), ("start", tt), ("stop", tt + 1)]), a))
        outs, _ = m._inline(body, args, op)
        state = outs[:ni]
        steps.append(outs[ni:])
    res = list(state)
    for k in range(nout):
        seq = [s[k] for s in steps]
        if odir[k]:
            seq = seq[::-1]
        if not seq:
            raise UnsupportedOnnx("%s: an empty scan leaves the outputs' shapes unknown" % op, op)
        r = m._rank(seq[0]) + 1
        res.append(_stack(seq, _axis(oax[k], r, op)))
    return res


# -- the optimizer steps of ai.onnx.preview.training: deterministic formulas --

_TRAINING = "ai.onnx.preview.training"
_TRAINING_OPS = ("Adagrad", "Adam", "Momentum")


def _optimizer_groups(m, op, ins, k):
    """(R, T, [k groups of n tensors]) from Adagrad/Momentum/Adam's inputs."""
    R, T = _need(op, ins, 0), _need(op, ins, 1)
    rest = ins[2:]
    if not rest or len(rest) % k or any(v is None for v in rest):
        raise UnsupportedOnnx("%s: %d tensor inputs do not split into %d groups" % (op, len(rest), k), op)
    n = len(rest) // k
    return R, T, [rest[g * n:(g + 1) * n] for g in range(k)]


@_reg("Adagrad", decay_factor=0.0, epsilon=1e-6, norm_coefficient=0.0)
def _adagrad(m, node, ins, at):
    """r = R / (1 + T decay); g = norm X + G; H' = H + g^2;
    X' = X - r g / (sqrt(H') + eps)."""
    op = "Adagrad"
    R, T, (xs, gs, hs) = _optimizer_groups(m, op, ins, 3)
    r = _g.divide(R, _g.add(1.0, _g.multiply(_g.cast(T, "f64"), float(at["decay_factor"]))))
    xo, ho = [], []
    for x, gr, h in zip(xs, gs, hs):
        g = _g.add(_g.multiply(float(at["norm_coefficient"]), x), gr)
        hn = _g.add(h, _g.multiply(g, g))
        xn = _g.subtract(x, _g.divide(_g.multiply(r, g), _g.add(_g.sqrt(hn), float(at["epsilon"]))))
        xo.append(_keep(m, x, xn))
        ho.append(_keep(m, h, hn))
    return xo + ho


@_reg("Momentum", alpha=None, beta=None, mode=None, norm_coefficient=None)
def _momentum(m, node, ins, at):
    """g = norm X + G; V' = alpha V + (beta if T > 0 else 1) g; standard:
    X' = X - R V'; nesterov: X' = X - R (g + alpha V')."""
    op = "Momentum"
    R, T, (xs, gs, vs) = _optimizer_groups(m, op, ins, 3)
    mode = _attr_str(at["mode"])
    if mode not in ("standard", "nesterov"):
        raise UnsupportedOnnx("%s: mode %r" % (op, mode), op)
    a, b = float(at["alpha"]), float(at["beta"])
    badj = _g.where(_g.greater(T, 0), b, 1.0)
    xo, vo = [], []
    for x, gr, v in zip(xs, gs, vs):
        g = _g.add(_g.multiply(float(at["norm_coefficient"]), x), gr)
        vn = _g.add(_g.multiply(a, v), _g.multiply(badj, g))
        step = vn if mode == "standard" else _g.add(g, _g.multiply(a, vn))
        xo.append(_keep(m, x, _g.subtract(x, _g.multiply(R, step))))
        vo.append(_keep(m, v, vn))
    return xo + vo


@_reg("Adam", alpha=0.9, beta=0.999, epsilon=1e-6, norm_coefficient=0.0, norm_coefficient_post=0.0)
def _adam(m, node, ins, at):
    """g = norm X + G; V' = a V + (1 - a) g; H' = b H + (1 - b) g^2;
    R' = R sqrt(1 - b^T) / (1 - a^T) if T > 0 else R;
    X' = (1 - norm_post) (X - R' V' / (sqrt(H') + eps))."""
    op = "Adam"
    R, T, (xs, gs, vs, hs) = _optimizer_groups(m, op, ins, 4)
    a, b = float(at["alpha"]), float(at["beta"])
    tf = _g.cast(T, "f64")
    radj = _g.where(_g.greater(T, 0),
                    _g.divide(_g.multiply(R, _g.sqrt(_g.subtract(1.0, _g.power(b, tf)))),
                              _g.subtract(1.0, _g.power(a, tf))), R)
    xo, vo, ho = [], [], []
    for x, gr, v, h in zip(xs, gs, vs, hs):
        g = _g.add(_g.multiply(float(at["norm_coefficient"]), x), gr)
        vn = _g.add(_g.multiply(a, v), _g.multiply(1.0 - a, g))
        hn = _g.add(_g.multiply(b, h), _g.multiply(1.0 - b, _g.multiply(g, g)))
        xn = _g.subtract(x, _g.multiply(radj, _g.divide(vn, _g.add(_g.sqrt(hn), float(at["epsilon"])))))
        xo.append(_keep(m, x, _g.multiply(1.0 - float(at["norm_coefficient_post"]), xn)))
        vo.append(_keep(m, v, vn))
        ho.append(_keep(m, h, hn))
    return xo + vo + ho


@_reg("RoiAlign", coordinate_transformation_mode="half_pixel", mode="avg", output_height=1,
      output_width=1, sampling_ratio=0, spatial_scale=1.0)
def _roialign(m, node, ins, at):
    """The reference's algorithm with a static sampling grid: per roi, the
    sample coordinates of every bin (run-time values), clamped as the
    reference does (a sample beyond the image by more than one pixel reads
    0), bilinear weights separable in y and x, the 4 corners gathered by
    linear index from the [N*H*W, C] input; avg: the mean of a bin's
    samples, max: the max over samples of the largest weighted corner."""
    op = "RoiAlign"
    x, rois, bidx = [_need(op, ins, k) for k in range(3)]
    xs = m._shape(x, op)
    dt = m._dtype(x)
    if len(xs) != 4 or dt not in ("f32", "f64"):
        raise UnsupportedOnnx("%s: input must be float [N, C, H, W], got %s %s" % (op, dt, xs), op)
    sr = int(at["sampling_ratio"])
    if sr <= 0:
        raise UnsupportedOnnx("%s: sampling_ratio 0 (adaptive: a data-dependent sample count)" % op, op)
    mode = _attr_str(at["mode"])
    ctm = _attr_str(at["coordinate_transformation_mode"])
    if mode not in ("avg", "max") or ctm not in ("half_pixel", "output_half_pixel"):
        raise UnsupportedOnnx("%s: mode %r, coordinate_transformation_mode %r" % (op, mode, ctm), op)
    N, C, H, W = xs
    R = m._shape(rois, op)[0]
    oh, ow = int(at["output_height"]), int(at["output_width"])
    off = 0.5 if ctm == "half_pixel" else 0.0
    sc = float(at["spatial_scale"])
    r = _g.cast(rois, dt)

    def col(k):  # [R, 1]
        return _g.Var("slice", (r,), [("axis", 1), ("start", k), ("stop", k + 1)])
    x0, y0 = _g.subtract(_g.multiply(col(0), sc), off), _g.subtract(_g.multiply(col(1), sc), off)
    rw = _g.subtract(_g.subtract(_g.multiply(col(2), sc), off), x0)
    rh = _g.subtract(_g.subtract(_g.multiply(col(3), sc), off), y0)
    if ctm == "output_half_pixel":
        rw, rh = _g.maximum(rw, 1.0), _g.maximum(rh, 1.0)

    def samples(start, size, n):
        """Sample coordinates [R, n * sr] of bins 0..n-1: start + (p + (i + .5) / sr) * size / n."""
        frac = (np.arange(n)[:, None] + (np.arange(sr)[None, :] + 0.5) / sr).ravel()
        return _g.add(start, _g.multiply(_g.divide(size, float(n)), _g.constant(frac.reshape(1, -1))))

    def axis_taps(v, size):
        """(valid, low index, high index, low weight, high weight), each [R, S]."""
        ok = _g.logical_and(_g.greater_equal(v, -1.0), _g.less_equal(v, float(size)))
        v = _g.maximum(v, 0.0)
        lo = _g.floor(v)
        top = _g.greater_equal(lo, float(size - 1))
        lo = _g.where(top, float(size - 1), lo)
        hi = _g.where(top, float(size - 1), _g.add(lo, 1.0))
        v = _g.where(top, lo, v)
        lw = _g.subtract(v, lo)
        return ok, _g.cast(lo, "i64"), _g.cast(hi, "i64"), _g.subtract(1.0, lw), lw
    yok, ylo, yhi, yw0, yw1 = axis_taps(samples(y0, rh, oh), H)
    xok, xlo, xhi, xw0, xw1 = axis_taps(samples(x0, rw, ow), W)
    ok = _g.logical_and(_g.expand_dims(yok, 2), _g.expand_dims(xok, 1))  # [R, Sy, Sx]
    xt = _g.reshape(_g.transpose(x, [0, 2, 3, 1]), (N * H * W, C))
    base = _g.reshape(_g.multiply(_g.cast(bidx, "i64"), H * W), (R, 1, 1))
    terms = []
    for yi, wy in ((ylo, yw0), (yhi, yw1)):
        for xi, wx in ((xlo, xw0), (xhi, xw1)):
            lin = _g.add(base, _g.add(_g.expand_dims(_g.multiply(yi, W), 2), _g.expand_dims(xi, 1)))
            w = _g.multiply(_g.expand_dims(wy, 2), _g.expand_dims(wx, 1))  # [R, Sy, Sx]
            v = _g.take(xt, lin, 0)  # [R, Sy, Sx, C]
            terms.append(_g.multiply(v, _g.expand_dims(w, 3)))
    if mode == "avg":
        val = _g.add(_g.add(terms[0], terms[1]), _g.add(terms[2], terms[3]))
    else:
        val = _g.maximum(_g.maximum(terms[0], terms[1]), _g.maximum(terms[2], terms[3]))
    val = _g.where(_g.expand_dims(ok, 3), val, _sc(dt, 0))
    val = _g.reshape(val, (R, oh, sr, ow, sr, C))
    y = _g.mean(val, [2, 4]) if mode == "avg" else _g.max(val, [2, 4])
    return _keep(m, x, _g.transpose(y, [0, 3, 1, 2]))


# -- integer and quantized ops (narrow types held in i64, see _NARROW) -------

@_reg("BitShift", direction=None)
def _bitshift(m, node, ins, at):
    """Unsigned shifts: x * 2^y (wrapped into the type by the caller's wrap)
    or floor(x / 2^y)."""
    op = "BitShift"
    x, y = _need(op, ins, 0), _need(op, ins, 1)
    code = m.ltype.get(node.input[0])
    if code not in _NARROW or _NARROW[code][2]:
        raise UnsupportedOnnx("%s: only uint8, uint16 and uint32 (uint64 does not fit int64)" % op, op)
    p = _g.power(_sc("i64", 2), y)
    d = _attr_str(at["direction"])
    if d == "LEFT":
        return _g.multiply(x, p)
    if d == "RIGHT":
        return _g.floor_divide(x, p)
    raise UnsupportedOnnx("%s: direction %r" % (op, d), op)


def _per_axis(m, v, x, axis, op):
    """A scale / zero point: a scalar, or a 1-D tensor laid along `axis` of x."""
    if v is None or m._rank(v) == 0 or m._shape(v, op) == (1,):
        return v if v is None or m._rank(v) == 0 else _g.reshape(v, ())
    r = m._rank(x)
    a = _axis(axis, r, op)
    return _g.reshape(v, (1,) * a + (-1,) + (1,) * (r - a - 1))


def _narrow_range(code, op):
    if code not in _NARROW:
        raise UnsupportedOnnx("%s: output type %s" % (op, _dtname(code)), op)
    _, bits, signed = _NARROW[code]
    return (-(1 << (bits - 1)), (1 << (bits - 1)) - 1) if signed else (0, (1 << bits) - 1)


@_reg("QuantizeLinear", axis=1, saturate=1)
def _quantize(m, node, ins, at):
    """saturate(round_half_even(x / scale) + zero_point), in the zero point's
    type (uint8 by default)."""
    op = "QuantizeLinear"
    x, sc, zp = _need(op, ins, 0), _need(op, ins, 1), _opt(ins, 2)
    code = m.ltype.get(node.input[2], _TP.UINT8) if zp is not None else _TP.UINT8
    lo, hi = _narrow_range(code, op)
    q = _round_even(_g.divide(x, _per_axis(m, sc, x, at["axis"], op)))
    if zp is not None:
        q = _g.add(q, _g.cast(_per_axis(m, zp, x, at["axis"], op), m._dtype(q)))
    return _g.cast(_g.minimum(_g.maximum(q, float(lo)), float(hi)), "i64")


@_reg("DequantizeLinear", axis=1)
def _dequantize(m, node, ins, at):
    """(x - zero_point) * scale, in the scale's type."""
    op = "DequantizeLinear"
    x, sc, zp = _need(op, ins, 0), _need(op, ins, 1), _opt(ins, 2)
    if zp is not None:
        x = _g.subtract(x, _per_axis(m, zp, x, at["axis"], op))
    return _g.multiply(_g.cast(x, m._dtype(sc)), _per_axis(m, sc, x, at["axis"], op))


@_reg("DynamicQuantizeLinear")
def _dynquant(m, node, ins, at):
    """The ONNX function body: scale = (max(0, max x) - min(0, min x)) / 255,
    zero point = saturate(round(-min / scale)), then QuantizeLinear; in f32."""
    op = "DynamicQuantizeLinear"
    x = _need(op, ins, 0)
    lo = _g.minimum(_g.min(x), _sc("f32", 0))
    hi = _g.maximum(_g.max(x), _sc("f32", 0))
    scale = _g.divide(_g.subtract(hi, lo), _sc("f32", 255))
    zpf = _round_even(_g.minimum(_g.maximum(_g.subtract(_sc("f32", 0), _g.divide(lo, scale)), 0.0), 255.0))
    zp = _g.cast(zpf, "i64")
    q = _g.add(_round_even(_g.divide(x, scale)), zpf)
    y = _g.cast(_g.minimum(_g.maximum(q, 0.0), 255.0), "i64")
    return [y, scale, zp]


def _minus_zp(m, v, zp, axis, op):
    if zp is None:
        return v
    if m._rank(zp) == 1 and m._shape(zp, op)[0] != 1 and axis is not None:
        r = m._rank(v)
        a = _axis(axis, r, op)
        zp = _g.reshape(zp, (1,) * a + (-1,) + (1,) * (r - a - 1))
    elif m._rank(zp) >= 1:
        zp = _g.reshape(zp, ()) if m._shape(zp, op) == (1,) else zp
    return _g.subtract(v, zp)


@_reg("MatMulInteger")
def _matmul_int(m, node, ins, at):
    """(A - a_zero_point) @ (B - b_zero_point) in i64 (exact), as int32;
    a 1-D a_zero_point is per row of A, a 1-D b_zero_point per column of B."""
    op = "MatMulInteger"
    a, b = _need(op, ins, 0), _need(op, ins, 1)
    a = _minus_zp(m, a, _opt(ins, 2), -2 if m._rank(a) > 1 else None, op)
    b = _minus_zp(m, b, _opt(ins, 3), -1, op)
    return _g.cast(_g.matmul(a, b), "i32")


@_reg("ConvInteger", auto_pad="NOTSET", dilations=None, group=1, kernel_shape=None, pads=None,
      strides=None)
def _conv_int(m, node, ins, at):
    """Conv of (x - x_zero_point) by (w - w_zero_point) in i64 (exact; the
    padding is then the zero point, as the spec asks), as int32."""
    op = "ConvInteger"
    x, w = _need(op, ins, 0), _need(op, ins, 1)
    x = _minus_zp(m, x, _opt(ins, 2), None, op)
    w = _minus_zp(m, w, _opt(ins, 3), 0, op)
    return _g.cast(_conv_core(m, op, x, w, None, int(at["group"]), at), "i32")


def _requantize(m, op, acc, scale, zp, code):
    """saturate(round_half_even(acc * scale) + zero_point) into type `code`."""
    lo, hi = _narrow_range(code, op)
    q = _round_even(_g.multiply(_g.cast(acc, "f64"), scale))
    if zp is not None:
        q = _g.add(q, _g.cast(zp, "f64"))
    return _g.cast(_g.minimum(_g.maximum(q, float(lo)), float(hi)), "i64")


@_reg("QLinearMatMul")
def _qlinear_matmul(m, node, ins, at):
    """MatMulInteger, then requantized with a_scale * b_scale / y_scale
    (f64), rounded half to even, plus y_zero_point, saturated."""
    op = "QLinearMatMul"
    a, asc, azp, b, bsc, bzp, ysc, yzp = [_opt(ins, k) for k in range(8)]
    if a is None or b is None or asc is None or bsc is None or ysc is None:
        raise UnsupportedOnnx("%s: missing input" % op, op)
    acc = _g.matmul(_minus_zp(m, a, azp, -2, op), _minus_zp(m, b, bzp, -1, op))
    scale = _g.divide(_g.multiply(_g.cast(_per_axis(m, asc, a, -2, op), "f64"),
                                  _g.cast(_per_axis(m, bsc, b, -1, op), "f64")),
                      _g.cast(_g.reshape(ysc, ()), "f64"))
    code = m.ltype.get(node.input[7], _TP.UINT8) if yzp is not None else _TP.UINT8
    return _requantize(m, op, acc, scale, None if yzp is None else _g.reshape(yzp, ()), code)


@_reg("QLinearConv", auto_pad="NOTSET", dilations=None, group=1, kernel_shape=None, pads=None,
      strides=None)
def _qlinear_conv(m, node, ins, at):
    """ConvInteger (+ an int32 bias), requantized with x_scale * w_scale /
    y_scale per output channel."""
    op = "QLinearConv"
    x, xsc, xzp, w, wsc, wzp, ysc, yzp = [_opt(ins, k) for k in range(8)]
    bias = _opt(ins, 8)
    if x is None or w is None or xsc is None or wsc is None or ysc is None:
        raise UnsupportedOnnx("%s: missing input" % op, op)
    xx = _minus_zp(m, x, xzp, None, op)
    ww = _minus_zp(m, w, wzp, 0, op)
    acc = _conv_core(m, op, xx, ww, None if bias is None else _g.cast(bias, "i64"), int(at["group"]), at)
    r = m._rank(acc)
    wscale = _g.cast(wsc, "f64")
    if m._rank(wsc) == 1 and m._shape(wsc, op)[0] != 1:
        wscale = _g.reshape(wscale, (1, -1) + (1,) * (r - 2))
    else:
        wscale = _g.reshape(wscale, ())
    scale = _g.divide(_g.multiply(_g.cast(_g.reshape(xsc, ()), "f64"), wscale),
                      _g.cast(_g.reshape(ysc, ()), "f64"))
    code = m.ltype.get(node.input[7], _TP.UINT8) if yzp is not None else _TP.UINT8
    return _requantize(m, op, acc, scale, None if yzp is None else _g.reshape(yzp, ()), code)


SUPPORTED_OPS = sorted(_HANDLERS)
