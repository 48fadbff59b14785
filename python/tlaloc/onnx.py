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
"""
import re

import numpy as np
import onnx as _onnx
from onnx import numpy_helper as _nh

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


def _tl_dtype(code, what):
    try:
        return _DT[code]
    except KeyError:
        raise UnsupportedOnnx("%s has dtype %s; tlaloc has bool, int32, int64, float, double"
                              % (what, _dtname(code))) from None


_SAN = re.compile(r"[^A-Za-z0-9_.]")


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
        self.env = {}      # onnx name -> Var
        self.consts = {}   # onnx name -> numpy array when statically known
        self.names = {}    # tlaloc names in use
        self.in_vars = []
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
        return v

    def _add_initializer(self, name, arr):
        dt = _NP_TO_TL.get(arr.dtype.type)
        if dt is None:
            raise UnsupportedOnnx("initializer %s has dtype %s" % (name, arr.dtype))
        self.consts[name] = arr
        if arr.size <= self.const_limit:
            self.env[name] = _g.constant(arr)
        else:
            v = _g.tensor(self._fresh(name), dt, tuple(int(d) for d in arr.shape))
            self.in_vars.append(v)
            self.bound[v.name] = np.ascontiguousarray(arr)
            self.env[name] = v

    def _const_var(self, arr):
        arr = np.asarray(arr)
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
        return v.type[0]

    def _shape(self, v, op):
        shape = v.type[1]
        for d in shape:
            if isinstance(d, str):
                raise UnsupportedOnnx("%s needs a static shape, got symbolic dim %s" % (op, d), op)
        return shape

    def _static(self, name, op, what):
        if name not in self.consts:
            e = UnsupportedOnnx("%s: input %s (%s) must be a constant (initializer, Constant, "
                                "or a graph input frozen with static_inputs=)" % (op, what, name), op)
            e.needs_static = name
            raise e
        return self.consts[name]

    def _node(self, node):
        op = node.op_type
        if node.domain not in ("", "ai.onnx"):
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
    if at["fmod"]:
        raise UnsupportedOnnx("Mod: fmod=1 (C fmod) is not in tlaloc's IR", "Mod")
    return _g.remainder(a, b)


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
    r = len(x.type[1]) + len(axes)
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
    dt = _NP_TO_TL.get(val.dtype.type)
    if dt is None:
        raise UnsupportedOnnx("ConstantOfShape of dtype %s" % val.dtype, "ConstantOfShape")
    n = int(np.prod(shape, dtype=np.int64))
    if n <= m.const_limit:
        return np.full(shape, val[0], val.dtype)
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
        tm = m.consts.get(node.input[2])
        if tm is None or bool(np.asarray(tm).ravel()[0]):
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
    if at["training_mode"] or len([o for o in node.output if o]) > 1:
        raise UnsupportedOnnx("BatchNormalization in training mode", "BatchNormalization")
    if m.opset < 9 and at["spatial"] != 1:
        raise UnsupportedOnnx("BatchNormalization spatial=0", "BatchNormalization")
    x, s, b, mean, var = [_need("BatchNormalization", ins, k) for k in range(5)]
    r = len(x.type[1])
    shp = None

    def bc(v):
        return _g.reshape(v, (-1,) + (1,) * (r - 2)) if r > 2 else v
    y = _g.divide(_g.subtract(x, bc(mean)), _g.sqrt(_g.add(bc(var), float(at["epsilon"]))))
    del shp
    return _keep(m, x, _g.add(_g.multiply(y, bc(s)), bc(b)))


@_reg("LayerNormalization", axis=-1, epsilon=1e-5, stash_type=1)
def _ln(m, node, ins, at):
    x, s, b = _need("LayerNormalization", ins, 0), _need("LayerNormalization", ins, 1), _opt(ins, 2)
    r = len(x.type[1])
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
    r = len(x.type[1])
    axes = list(range(2, r))
    if not axes:
        return x
    f = _g.mean if node.op_type == "GlobalAveragePool" else _g.max
    return _keep(m, x, f(x, axes if len(axes) > 1 else axes[0], True))


SUPPORTED_OPS = sorted(_HANDLERS)


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
    return f


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


SUPPORTED_OPS = sorted(_HANDLERS)
