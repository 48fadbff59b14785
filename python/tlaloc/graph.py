"""Symbolic graph building: Var nodes, numpy-named ops, .tg emission."""
import math
import re
import sys

DTYPES = ("bool", "i32", "i64", "f32", "f64")
_DTYPE_ALIASES = {
    "bool": "bool", "bool_": "bool", "i32": "i32", "int32": "i32", "i64": "i64",
    "int64": "i64", "int": "i64", "f32": "f32", "float32": "f32", "f64": "f64",
    "float64": "f64", "float": "f64", "double": "f64",
}
_NAME_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_.'+\-]*$")
_STATEMENTS = {"in", "let", "out", "graph", "const", "fill", "true", "false", "inf", "nan"}


def as_dtype(dt):
    """'f32', 'float32', numpy dtypes and numpy scalar types -> tlaloc name."""
    if isinstance(dt, str):
        name = dt
    elif dt is bool:
        name = "bool"
    elif dt is int:
        name = "i64"
    elif dt is float:
        name = "f64"
    else:
        name = getattr(dt, "name", None) or getattr(getattr(dt, "dtype", None), "name", None) \
            or getattr(dt, "__name__", None)
        if name is None:
            raise TypeError("not a dtype: %r" % (dt,))
    try:
        return _DTYPE_ALIASES[name]
    except KeyError:
        raise TypeError("dtype %r is not supported by tlaloc (bool, i32, i64, f32, f64)" % (dt,)) from None


def check_name(name, what="name"):
    if not isinstance(name, str) or not _NAME_RE.match(name) or name in _STATEMENTS:
        raise ValueError("%s %r is not a valid .tg name (letters, digits, _ . ' + -; "
                         "starting with a letter or _)" % (what, name))
    return name


def fmt_number(v):
    """A Python/numpy number as a .tg literal (exact round trip)."""
    if isinstance(v, bool):
        return "1" if v else "0"
    if isinstance(v, int):
        return str(v)
    f = float(v)
    if math.isnan(f):
        return "nan"
    if math.isinf(f):
        return "inf" if f > 0 else "-inf"
    r = repr(f)
    if "e" not in r and "." not in r:
        r += ".0"
    return r


def _fmt_attr(v):
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (list, tuple)):
        return "[" + " ".join(_fmt_attr(x) for x in v) + "]"
    if isinstance(v, int):
        return str(v)
    if isinstance(v, str):
        return v
    if isinstance(v, float):
        return fmt_number(v)
    if hasattr(v, "params") and hasattr(v, "outs"):  # a traced function (control.Fn)
        return v.name
    try:  # numpy integers
        return str(int(v))
    except Exception:
        raise TypeError("bad attribute value %r" % (v,)) from None


_DIM_EXPR_RE = re.compile(r"^\((?:[A-Za-z0-9_.'+\-* ()]|floordiv|ceildiv)*\)$")


def check_dim(d):
    """A symbolic dim: a name, or a derived dim's text ('(+ n 1)', as
    tlaloc prints them: sums, products, floordiv, ceildiv of names and
    integers)."""
    if isinstance(d, str) and d.startswith("("):
        if not _DIM_EXPR_RE.match(d) or d.count("(") != d.count(")"):
            raise ValueError("dimension %r is not a valid derived dim (e.g. '(+ n 1)', "
                             "'(* 2 n)', '(floordiv n 2)')" % (d,))
        return d
    return check_name(d, "dimension symbol")


def _fmt_dims(shape):
    out = []
    for d in shape:
        if isinstance(d, str):
            check_dim(d)
            out.append(d)
        else:
            d = int(d)
            if d < 0:
                raise ValueError("negative dimension %d" % d)
            out.append(str(d))
    return "[" + " ".join(out) + "]"


def _user_site():
    """(file, line) of the innermost caller outside this package: where the
    user's code built a Var (kept for error messages; the line's text is
    read only when a message needs it)."""
    f = _getframe(2)
    while f is not None and f.f_code.co_filename.startswith(_PKG_PREFIX):
        f = f.f_back
    return (f.f_code.co_filename, f.f_lineno) if f is not None else None


_getframe = sys._getframe


# this package's frames have co_filename under here (same spelling as ours)
_PKG_PREFIX = _user_site.__code__.co_filename.rsplit("/", 1)[0] + "/"


class Var:
    """A symbolic tensor: an input, a literal, a constant or an op applied to Vars.

    Vars are immutable and hashable by identity (== is identity, as in
    PyTensor; use tl.eq / tl.equal for the elementwise comparison).
    `src` is (file, line) of the user code that built it (None if unknown);
    type errors found when compiling name it."""

    __slots__ = ("op", "args", "attrs", "data", "name", "_type", "src", "__weakref__")
    __array_priority__ = 1000  # numpy scalars on the left defer to Var

    def __init__(self, op, args=(), attrs=(), data=None, name=None):
        self.op = op
        self.args = tuple(args)
        self.attrs = tuple(attrs)
        self.data = data   # inputs/const/fill: (dtype, shape[, values]); lit: the number
        self.name = name
        self._type = None
        # leaves (inputs, literals, constants) are never where a type error is
        self.src = _user_site() if self.args else None

    # -- type, from the C inference (one parse of the subgraph; cached) --
    @property
    def type(self):
        """(dtype, shape) as tlaloc infers it, e.g. ('f32', ('n', 10))."""
        if self._type is None:
            if self.op == "in":
                self._type = (self.data[0], tuple(self.data[1]))
            else:
                from ._lib import Graph, TlalocError, parse_type
                ins = inputs_of([self])
                text = emit(ins, [self], ["v"], "type_query")
                try:
                    g = Graph(text, "<type query>")
                except TlalocError as e:
                    from ._shapes import located_error
                    raise located_error(e, ins, [self]) from None
                self._type = parse_type(g.outputs()[0][1])
        return self._type

    @property
    def dtype(self):
        return self.type[0]

    @property
    def shape(self):
        """The dims: ints, and Dim (a str subclass: the symbol's name) for
        symbolic ones; arithmetic of a Dim with a Var or a number is the
        size as a value (`tl.sum(X) / X.shape[0]`)."""
        return tuple(Dim(d, self, k) if isinstance(d, str) else d
                     for k, d in enumerate(self.type[1]))

    @property
    def ndim(self):
        return len(self.type[1])

    def __repr__(self):
        """<tlaloc.Var OP DTYPE[DIMS]> (inputs: `in NAME`, literals: their
        value; a Var whose type cannot be inferred says so)."""
        if self.op == "lit":
            return "<tlaloc.Var lit %s>" % fmt_number(self.data)
        head = "in %s" % self.name if self.op == "in" else self.op
        if self.op == "_alias":
            head = "%s (as %s)" % (self.args[0].op, self.name)
        try:
            dt, shape = self.type
        except Exception as e:  # a type error: repr must not raise
            from ._shapes import ERR_AT as _ERR_AT
            m = _ERR_AT.search(str(e))
            why = m.group(3) if m else str(e).split("\n", 1)[0]
            return "<tlaloc.Var %s: type error: %s>" % (head, why)
        return "<tlaloc.Var %s %s%s>" % (head, dt, _fmt_dims(shape))

    def __bool__(self):
        raise TypeError("a symbolic tlaloc tensor has no truth value (use tl.where / tl.eq)")

    def __hash__(self):
        return id(self)

    def __eq__(self, other):
        return self is other

    def __ne__(self, other):
        return self is not other

    def __iter__(self):
        raise TypeError("a symbolic tlaloc tensor is not iterable")

    # -- arithmetic --
    def __add__(self, o): return add(self, o)
    def __radd__(self, o): return add(o, self)
    def __sub__(self, o): return subtract(self, o)
    def __rsub__(self, o): return subtract(o, self)
    def __mul__(self, o): return multiply(self, o)
    def __rmul__(self, o): return multiply(o, self)
    def __truediv__(self, o): return divide(self, o)
    def __rtruediv__(self, o): return divide(o, self)
    def __floordiv__(self, o): return floor_divide(self, o)
    def __rfloordiv__(self, o): return floor_divide(o, self)
    def __mod__(self, o): return remainder(self, o)
    def __rmod__(self, o): return remainder(o, self)
    def __pow__(self, o): return power(self, o)
    def __rpow__(self, o): return power(o, self)
    def __neg__(self): return negative(self)
    def __pos__(self): return self
    def __abs__(self): return absolute(self)
    def __matmul__(self, o): return matmul(self, o)
    def __rmatmul__(self, o): return matmul(o, self)
    def __lt__(self, o): return less(self, o)
    def __le__(self, o): return less_equal(self, o)
    def __gt__(self, o): return greater(self, o)
    def __ge__(self, o): return greater_equal(self, o)
    def __invert__(self): return logical_not(self)
    def __and__(self, o): return logical_and(self, o)
    def __rand__(self, o): return logical_and(o, self)
    def __or__(self, o): return logical_or(self, o)
    def __ror__(self, o): return logical_or(o, self)
    def __xor__(self, o): return bitwise_xor(self, o)
    def __rxor__(self, o): return bitwise_xor(o, self)

    # -- methods, as numpy's ndarray --
    @property
    def T(self):
        return transpose(self)

    def transpose(self, *axes):
        if len(axes) == 1 and isinstance(axes[0], (tuple, list)):
            axes = tuple(axes[0])
        return transpose(self, axes or None)

    def reshape(self, *shape):
        if len(shape) == 1 and isinstance(shape[0], (tuple, list)):
            shape = tuple(shape[0])
        return reshape(self, shape)

    def astype(self, dtype): return cast(self, dtype)
    def sum(self, axis=None, keepdims=False): return sum(self, axis, keepdims)
    def prod(self, axis=None, keepdims=False): return prod(self, axis, keepdims)
    def mean(self, axis=None, keepdims=False): return mean(self, axis, keepdims)
    def max(self, axis=None, keepdims=False): return max(self, axis, keepdims)
    def min(self, axis=None, keepdims=False): return min(self, axis, keepdims)
    def squeeze(self, axis=None): return squeeze(self, axis)
    def take(self, indices, axis=None): return take(self, indices, axis)
    def clip(self, a_min=None, a_max=None): return clip(self, a_min, a_max)

    def argmax(self, axis=None, keepdims=False):
        from .numpy_ops import argmax
        return argmax(self, axis, keepdims)

    def argmin(self, axis=None, keepdims=False):
        from .numpy_ops import argmin
        return argmin(self, axis, keepdims)

    def cumsum(self, axis=None, dtype=None):
        from .numpy_ops import cumsum
        return cumsum(self, axis, dtype)

    def cumprod(self, axis=None, dtype=None):
        from .numpy_ops import cumprod
        return cumprod(self, axis, dtype)

    def ravel(self): return ravel(self)
    def flatten(self): return ravel(self)

    def named(self, name):
        """This value, to be output under `name` (a new Var)."""
        return identity_named(self, name)

    def __getitem__(self, key):
        """numpy indexing: ints, slices, None, ..., one integer array (_shapes.py)."""
        from ._shapes import getitem
        return getitem(self, key)


class SymbolicSizeError(NotImplementedError):
    """An op whose result size depends on symbolic dims in a way tlaloc's
    derived dims cannot say (sums, products and floor/ceil divisions of
    symbols they can: slicing, concat and reshape's -1 use them)."""

    __module__ = "tlaloc"


def _is_int(v):
    if isinstance(v, bool):
        return False
    if isinstance(v, int):
        return True
    return type(v).__name__ in ("int8", "int16", "int32", "int64", "uint8", "uint16", "uint32", "uint64")


def identity_named(x, name):
    # an input output under another name: (out name x) is fine, wrap to carry the name
    v = Var("_alias", (x,), (), None, check_name(name, "output name"))
    return v


def tensor(name, dtype="f64", shape=()):
    """A graph input: tensor('x', 'f32', ('n', 10)); dims are ints or symbol names."""
    check_name(name, "input name")
    dt = as_dtype(dtype)
    if isinstance(shape, (int, str)):
        shape = (shape,)
    shape = tuple(d if isinstance(d, str) else int(d) for d in shape)
    _fmt_dims(shape)
    if len(shape) > 8:
        raise ValueError("rank %d exceeds tlaloc's maximum of 8" % len(shape))
    return Var("in", (), (), (dt, shape), name)


def scalar(name, dtype="f64"):
    return tensor(name, dtype, ())


def vector(name, dtype="f64", n="n"):
    return tensor(name, dtype, (n,))


def matrix(name, dtype="f64", shape=("m", "n")):
    return tensor(name, dtype, shape)


def as_var(v):
    if isinstance(v, Var):
        return v
    if isinstance(v, bool):
        return Var("const", (), (), ("bool", (), [1 if v else 0]))
    if isinstance(v, (int, float)):
        return Var("lit", (), (), v)
    mod = type(v).__module__
    if mod == "numpy":
        import numpy as np
        a = np.asarray(v)
        if a.ndim == 0 and a.dtype.kind in "iuf" and not isinstance(v, np.ndarray):
            return Var("lit", (), (), a.item())  # numpy scalars: weak, like Python numbers
        return constant(a)
    if isinstance(v, (list, tuple)):
        import numpy as np
        return constant(np.asarray(v))
    raise TypeError("cannot use %r (%s) in a tlaloc graph" % (v, type(v).__name__))


def constant(value, dtype=None):
    """A literal tensor: (const dtype [dims] values...)."""
    import numpy as np
    a = np.asarray(value)
    if dtype is not None:
        a = a.astype(_np_dtype(as_dtype(dtype)))
    if a.dtype.kind == "u" or a.dtype.kind == "i" and a.dtype.itemsize < 4:
        a = a.astype(np.int64 if a.dtype.itemsize >= 4 else np.int32)
    if a.dtype == np.float16:
        a = a.astype(np.float32)
    dt = as_dtype(a.dtype)
    return Var("const", (), (), (dt, tuple(int(d) for d in a.shape), a.ravel()))


def fill(shape, value, dtype="f64"):
    """(fill dtype [dims] value); dims may be symbols."""
    if isinstance(shape, (int, str)):
        shape = (shape,)
    return Var("fill", (), (), (as_dtype(dtype), tuple(shape), value))


def full(shape, fill_value, dtype="f64"):
    return fill(shape, fill_value, dtype)


def zeros(shape, dtype="f64"):
    return fill(shape, 0, dtype)


def ones(shape, dtype="f64"):
    return fill(shape, 1, dtype)


def _np_dtype(dt):
    import numpy as np
    return {"bool": np.bool_, "i32": np.int32, "i64": np.int64, "f32": np.float32, "f64": np.float64}[dt]


def _op(name, *args, **attrs):
    a = [as_var(x) if type(x) is not Dim else x for x in args]
    if Dim in map(type, a):  # a symbolic size as a value: the other operand's float dtype
        dt = "i64"
        for x in a:
            if type(x) is not Dim and x.op not in ("lit",) and x.dtype in ("f32", "f64"):
                dt = x.dtype
                break
        a = [x.value(dt) if type(x) is Dim else x for x in a]
    at = [(k, v) for k, v in attrs.items() if v is not None]
    return Var(name, a, at)


# ---- elementwise ----
def _unary(opname, doc):
    def f(x):
        return _op(opname, x)
    f.__name__ = opname
    f.__doc__ = doc
    return f


negative = _unary("neg", "-x")
neg = negative
absolute = _unary("abs", "|x|")
abs = absolute
sign = _unary("sign", "sign(x)")
exp = _unary("exp", "e**x")
log = _unary("log", "natural log")
log1p = _unary("log1p", "log(1 + x)")
expm1 = _unary("expm1", "exp(x) - 1")
sqrt = _unary("sqrt", "square root")
sin = _unary("sin", "sine")
cos = _unary("cos", "cosine")
tan = _unary("tan", "tangent")
tanh = _unary("tanh", "hyperbolic tangent")
arcsin = _unary("asin", "inverse sine")
asin = arcsin
arccos = _unary("acos", "inverse cosine")
acos = arccos
arctan = _unary("atan", "inverse tangent")
atan = arctan
sinh = _unary("sinh", "hyperbolic sine")
cosh = _unary("cosh", "hyperbolic cosine")
arcsinh = _unary("asinh", "inverse hyperbolic sine")
asinh = arcsinh
arccosh = _unary("acosh", "inverse hyperbolic cosine")
acosh = arccosh
arctanh = _unary("atanh", "inverse hyperbolic tangent")
atanh = arctanh
cbrt = _unary("cbrt", "real cube root")
sigmoid = _unary("sigmoid", "1 / (1 + exp(-x)), stable")
expit = sigmoid
softplus = _unary("softplus", "log(1 + exp(x)), stable")
log1mexp = _unary("log1mexp", "log(1 - exp(x))")
erf = _unary("erf", "error function")
erfc = _unary("erfc", "1 - erf(x)")
floor = _unary("floor", "floor")
ceil = _unary("ceil", "ceiling")
reciprocal = _unary("reciprocal", "1 / x")
logical_not = _unary("not", "not x")


def _binary(opname, doc):
    def f(a, b):
        return _op(opname, a, b)
    f.__name__ = opname
    f.__doc__ = doc
    return f


add = _binary("add", "a + b")
subtract = _binary("sub", "a - b")
sub = subtract
multiply = _binary("mul", "a * b")
mul = multiply
divide = _binary("div", "a / b (true division)")
true_divide = divide
div = divide
floor_divide = _binary("floor_divide", "a // b")
remainder = _binary("remainder", "a % b (numpy's mod)")
mod = remainder
power = _binary("pow", "a ** b")
arctan2 = _binary("atan2", "the angle of the point (b, a)")
atan2 = arctan2
hypot = _binary("hypot", "sqrt(a**2 + b**2) without overflow")
pow = power
maximum = _binary("maximum", "elementwise max (NaN propagates)")
minimum = _binary("minimum", "elementwise min (NaN propagates)")
logaddexp = _binary("logaddexp", "log(exp(a) + exp(b))")
xlogy = _binary("xlogy", "x * log(y), 0 where x == 0")
equal = _binary("eq", "a == b")
eq = equal
not_equal = _binary("ne", "a != b")
ne = not_equal
less = _binary("lt", "a < b")
lt = less
less_equal = _binary("le", "a <= b")
le = less_equal
greater = _binary("gt", "a > b")
gt = greater
greater_equal = _binary("ge", "a >= b")
ge = greater_equal
logical_and = _binary("and", "a and b")
logical_or = _binary("or", "a or b")
bitwise_xor = _binary("bitwise_xor", "a ^ b for integers (logical xor for bools)")


def __getattr__(name):
    """An elementwise op of the C library's op table that has no function
    above (a new op of ir/ops.def) is tl.<its name>, found on first use;
    importing stays cheap because the library loads only then."""
    if name.startswith("_"):
        raise AttributeError(name)
    if name in _NUMPY_OPS:  # numpy functions by decomposition (numpy_ops.py), loaded on use
        from . import numpy_ops
        f = getattr(numpy_ops, name)
        globals()[name] = f
        return f
    from . import _lib
    for op, arity, kind, libm in _lib.ops():
        if op == name and kind == "elementwise" and arity in (1, 2):
            doc = ("%s(x)" % (libm or op)) if arity == 1 else ("%s(a, b)" % (libm or op))
            f = (_unary if arity == 1 else _binary)(op, doc + ", elementwise (from the op table)")
            globals()[name] = f
            return f
    raise AttributeError("module 'tlaloc' has no attribute %r" % name)


_NUMPY_OPS = ("size", "arange", "eye", "one_hot", "argmax", "argmin", "cumsum", "cumprod", "pad",
              "take_along_axis", "einsum")


def logical_xor(a, b):
    return not_equal(cast(a, "bool"), cast(b, "bool"))


def where(cond, a, b):
    return _op("where", cond, a, b)


def cast(x, dtype):
    return _op("cast", x, dtype=as_dtype(dtype))


def square(x):
    x = as_var(x)
    return x * x


def clip(x, a_min=None, a_max=None):
    if a_min is not None:
        x = maximum(x, a_min)
    if a_max is not None:
        x = minimum(x, a_max)
    return x


relu = _unary("relu", "max(x, 0): its gradient at 0 is 0 (PyTorch's relu), not maximum's 0.5")


def isnan(x):
    x = as_var(x)
    return not_equal(x, x)


def zeros_like(x):
    return _op("zeros_like", x)


def ones_like(x):
    return _op("ones_like", x)


# ---- reductions ----
def _axis(axis):
    if axis is None:
        return None
    if isinstance(axis, (list, tuple)):
        return [int(a) for a in axis]
    return int(axis)


def _reduction(opname, doc):
    def f(x, axis=None, keepdims=False):
        return _op(opname, x, axis=_axis(axis), keepdims=True if keepdims else None)
    f.__name__ = opname
    f.__doc__ = doc
    return f


sum = _reduction("sum", "sum over axis (all axes by default)")
prod = _reduction("prod", "product over axis")
max = _reduction("max", "maximum over axis")
amax = max
min = _reduction("min", "minimum over axis")
amin = min
mean = _reduction("mean", "mean over axis")
logsumexp = _reduction("logsumexp", "log(sum(exp(x))), stable")


def var(x, axis=None, keepdims=False, ddof=0):
    x = as_var(x)
    d = x - mean(x, axis, keepdims=True)
    s = mean(d * d, axis, keepdims) if ddof == 0 else None
    if ddof:
        raise NotImplementedError("var(ddof != 0) needs the reduced size; use sum(..)/(n - ddof)")
    return s


def std(x, axis=None, keepdims=False):
    return sqrt(var(x, axis, keepdims))


def softmax(x, axis=-1):
    return _op("softmax", x, axis=int(axis))


def log_softmax(x, axis=-1):
    return _op("log_softmax", x, axis=int(axis))


# ---- shape ops ----
def _check_shape_arg(shape, what):
    for d in shape:
        if isinstance(d, Var):
            raise SymbolicSizeError(
                "%s: %r is a value computed from a symbolic dim, not a shape; write the size "
                "as a derived dim, e.g. '(* 2 n)', or use -1" % (what, d))


def reshape(x, shape):
    if isinstance(shape, (int, str)):
        shape = (shape,)
    shape = tuple(shape)
    _check_shape_arg(shape, "reshape")
    for d in shape:
        if isinstance(d, str):
            check_dim(d)
    # a -1 is tlaloc's to infer: with symbolic dims it is their quotient
    # (f32[n d] -> (-1,) is (* d n))
    shape = [d if isinstance(d, str) else int(d) for d in shape]
    return _op("reshape", x, shape=shape)


def ravel(x):
    """x flattened (reshape to (-1,)); a symbolic shape only when it has one
    symbolic dim and the other dims are 1."""
    return reshape(x, (-1,))


def transpose(x, axes=None):
    return _op("transpose", x, perm=None if axes is None else [int(a) for a in axes])


def permute_dims(x, axes=None):
    return transpose(x, axes)


def broadcast_to(x, shape):
    if isinstance(shape, (int, str)):
        shape = (shape,)
    return _op("broadcast_to", x, shape=[d if isinstance(d, str) else int(d) for d in shape])


def expand_dims(x, axis):
    return _op("expand_dims", x, axis=_axis(axis))


def squeeze(x, axis=None):
    return _op("squeeze", x, axis=_axis(axis))


def concatenate(xs, axis=0):
    xs = [as_var(x) for x in xs]
    if not xs:
        raise ValueError("need at least one tensor to concatenate")
    # along a symbolic axis the size is a derived dim: (+ n 3), (* 2 n)
    return _op("concat", *xs, axis=int(axis))


concat = concatenate


def stack(xs, axis=0):
    return concatenate([expand_dims(x, axis) for x in xs], axis)


def take(x, indices, axis=None):
    return _op("take", x, indices, axis=None if axis is None else int(axis))


def matmul(a, b):
    return _op("matmul", a, b)


def dot(a, b):
    return matmul(a, b)


def identity(x):
    return as_var(x)


# ---- symbolic sizes as values ----
class Dim(str):
    """A symbolic dim of a Var's shape: the symbol's name (a str, so shapes
    still compare and print as before), which also knows its Var and axis.
    Arithmetic with a Var or a number gives the size as a value, computed
    from the data: a scalar (i64, or the other operand's float dtype) equal
    to the dim's size at run time (`tl.sum(X) / X.shape[0]`). It reads one
    element per index of that axis, so the other dims must not be empty."""

    __slots__ = ("var", "axis")

    def __new__(cls, name, var, axis):
        self = str.__new__(cls, name)
        self.var = var
        self.axis = axis
        return self

    def value(self, dtype="i64"):
        """The size as a scalar Var of dtype."""
        from .numpy_ops import size
        return size(self.var, self.axis, dtype)

    def _with(self, other):
        dt = "i64"
        if isinstance(other, Var) and other.dtype in ("f32", "f64"):
            dt = other.dtype
        elif isinstance(other, float):
            dt = "f64"
        return self.value(dt)

    def __add__(self, o): return add(self._with(o), o)
    def __radd__(self, o): return add(o, self._with(o))
    def __sub__(self, o): return subtract(self._with(o), o)
    def __rsub__(self, o): return subtract(o, self._with(o))
    def __mul__(self, o): return multiply(self._with(o), o)
    def __rmul__(self, o): return multiply(o, self._with(o))
    def __truediv__(self, o): return divide(self._with(o), o)
    def __rtruediv__(self, o): return divide(o, self._with(o))
    def __floordiv__(self, o): return floor_divide(self._with(o), o)
    def __rfloordiv__(self, o): return floor_divide(o, self._with(o))

    def __reduce__(self):
        return (str, (str(self),))


# ---- emission ----
def inputs_of(outputs):
    """Input Vars reachable from outputs, in first-seen order."""
    seen = set()
    ins = []
    stack = list(reversed(outputs))
    while stack:
        v = stack.pop()
        if id(v) in seen:
            continue
        seen.add(id(v))
        if v.op == "in":
            ins.append(v)
        stack.extend(reversed(v.args))
    return ins


def _leaf_text(v):
    if v.op == "lit":
        return fmt_number(v.data)
    if v.op == "const":
        dt, shape, values = v.data
        if dt == "bool":
            vals = ["1" if x else "0" for x in values]
        elif dt in ("i32", "i64"):
            vals = [str(int(x)) for x in values]
        else:
            vals = [fmt_number(float(x)) for x in values]
        return "(const %s %s%s)" % (dt, _fmt_dims(shape), "".join(" " + s for s in vals))
    if v.op == "fill":
        dt, shape, value = v.data
        return "(fill %s %s %s)" % (dt, _fmt_dims(shape), fmt_number(value))
    raise AssertionError(v.op)


def emit(inputs, outputs, out_names=None, graph_name="g", max_depth=200):
    """The .tg text of a graph with the given input Vars and output Vars."""
    return emit_graph(inputs, outputs, out_names, graph_name, max_depth)[0]


def _functions_of(outputs):
    """The traced functions (control.Fn) the graph of outputs calls, those
    they call first (the order a .tg file must define them in)."""
    done, order = set(), []

    def visit_graph(outs):
        seen, stack = set(), list(outs)
        while stack:
            v = stack.pop()
            if id(v) in seen:
                continue
            seen.add(id(v))
            for _, av in v.attrs:
                if hasattr(av, "params") and hasattr(av, "outs") and id(av) not in done:
                    visit_fn(av)
            stack.extend(v.args)

    def visit_fn(f):
        done.add(id(f))
        visit_graph(f.outs)
        order.append(f)

    visit_graph(outputs)
    return order


def emit_graph(inputs, outputs, out_names=None, graph_name="g", max_depth=200, line_map=None, keyword="graph"):
    """(.tg text, output names). line_map, a dict, gets {line number: Var}
    for each `let` line (with max_depth=1 every op is a let of its own).
    The functions the graph calls (tl.cond, tl.while_loop, ...) come first."""
    check_name(graph_name, "graph name")
    prefix = ""
    if keyword == "graph":
        fns = _functions_of([as_var(o) for o in outputs])
        prefix = "".join(emit_graph(f.params, f.outs, None, f.name, max_depth, None, "func")[0] for f in fns)
        if line_map is not None and prefix:
            line_map = None  # the line numbers would be off by the functions' lines
    in_names = set()
    for x in inputs:
        if not isinstance(x, Var) or x.op != "in":
            raise TypeError("function inputs must be tl.tensor(...) inputs, got %r" % (x,))
        if x.name in in_names:
            raise ValueError("two inputs are named %r" % x.name)
        in_names.add(x.name)
    in_ids = {id(x) for x in inputs}
    outputs = [as_var(o) for o in outputs]
    # post-order walk (iterative), use counts
    uses = {}
    order = []
    state = {}
    stack = [(o, False) for o in reversed(outputs)]
    while stack:
        v, done = stack.pop()
        k = id(v)
        if done:
            if state.get(k) != 2:
                state[k] = 2
                order.append(v)
            continue
        uses[k] = uses.get(k, 0) + 1
        if k in state:
            continue
        state[k] = 1
        if v.op == "in":
            if k not in in_ids:
                raise ValueError("the outputs depend on input %r, which is not in the inputs list"
                                 % v.name)
            state[k] = 2
            continue
        stack.append((v, True))
        for a in reversed(v.args):
            stack.append((a, False))
    names = {}
    for x in inputs:
        names[id(x)] = x.name
    lines = ["(%s %s" % (keyword, graph_name)]
    for x in inputs:
        lines.append("  (in %s %s %s)" % (x.name, x.data[0], _fmt_dims(x.data[1])))
    texts = {id(x): x.name for x in inputs}
    depth = {id(x): 0 for x in inputs}
    counter = [0]

    def fresh():
        while True:
            counter[0] += 1
            n = "_%d" % counter[0]
            if n not in in_names:
                return n

    for v in order:
        k = id(v)
        if v.op == "in":
            texts[k] = v.name
            depth[k] = 0
            continue
        if v.op in ("lit", "const", "fill"):
            t = _leaf_text(v)
            d = 0
        elif v.op == "_alias":
            texts[k] = texts[id(v.args[0])]
            depth[k] = depth[id(v.args[0])]
            continue
        else:
            parts = [v.op] + [texts[id(a)] for a in v.args]
            for an, av in v.attrs:
                parts.append(":%s %s" % (an, _fmt_attr(av)))
            t = "(" + " ".join(parts) + ")"
            d = 1 + _bmax([depth[id(a)] for a in v.args])
        shared = uses.get(k, 0) > 1 and v.op != "lit"
        if shared or d >= max_depth or (v.op == "const" and uses.get(k, 0) > 1):
            n = fresh()
            lines.append("  (let %s %s)" % (n, t))
            if line_map is not None:
                line_map[len(lines)] = v
            t, d = n, 0
        texts[k] = t
        depth[k] = d
    out_names = list(out_names) if out_names is not None else []
    used = set(in_names)
    final = []
    for i, o in enumerate(outputs):
        n = out_names[i] if i < len(out_names) and out_names[i] else (o.name if o.op != "in" and o.name else "out%d" % i)
        check_name(n, "output name")
        if n in used:
            base, j = n, 1
            while "%s_%d" % (base, j) in used:
                j += 1
            n = "%s_%d" % (base, j)
        used.add(n)
        final.append(n)
        lines.append("  (out %s %s)" % (n, texts[id(o)]))
    return prefix + "\n".join(lines) + ")\n", final


def _bmax(xs):
    m = 0
    for x in xs:
        if x > m:
            m = x
    return m
