"""SymPy expressions -> tlaloc graphs (in the spirit of SymPy's theano_code).

    import sympy as sp, tlaloc.sympy as tls
    x, y = sp.symbols("x y")
    f = tls.function([sp.exp(x) * sp.sin(y), sp.Max(x, y)], [x, y])
    f(np.linspace(0, 1, 5), np.ones(5))        # -> [array, array]

Symbols become graph inputs (default f64 arrays of shape ("n",); pass
dtype=/shape= for all, or dtypes=/shapes= dicts per symbol). Every SymPy
node is mapped to tlaloc ops or refused with NotImplementedError naming it.
"""
import sympy as _sp

from . import graph as _g
from .function import Function as _Function

__all__ = ["to_vars", "to_tg", "function", "SympyConversionError"]


class SympyConversionError(NotImplementedError):
    """A SymPy node that tlaloc cannot express."""


def _num(e):
    if e is _sp.S.Infinity:
        return float("inf")
    if e is _sp.S.NegativeInfinity:
        return float("-inf")
    if e is _sp.S.NaN:
        return float("nan")
    if isinstance(e, _sp.Integer):
        v = int(e)
        if abs(v) < 2 ** 53:
            return v
        return float(v)
    return float(e)  # Rational, Float, pi, E, ... correctly rounded to f64


def _unary_map():
    m = {
        _sp.exp: _g.exp, _sp.log: _g.log, _sp.sin: _g.sin, _sp.cos: _g.cos,
        _sp.tan: _g.tan, _sp.tanh: _g.tanh, _sp.Abs: _g.absolute, _sp.sign: _g.sign,
        _sp.floor: _g.floor, _sp.ceiling: _g.ceil, _sp.erf: _g.erf, _sp.erfc: _g.erfc,
        _sp.sinh: _g.sinh, _sp.cosh: _g.cosh, _sp.asin: _g.arcsin, _sp.acos: _g.arccos,
        _sp.atan: _g.arctan, _sp.asinh: _g.arcsinh, _sp.acosh: _g.arccosh, _sp.atanh: _g.arctanh,
    }
    try:
        from sympy.codegen.cfunctions import log1p, expm1
        m[log1p] = _g.log1p
        m[expm1] = _g.expm1
    except ImportError:  # pragma: no cover
        pass
    return m


_UNARY = _unary_map()
_REL = {_sp.StrictLessThan: _g.less, _sp.LessThan: _g.less_equal,
        _sp.StrictGreaterThan: _g.greater, _sp.GreaterThan: _g.greater_equal,
        _sp.Equality: _g.equal, _sp.Unequality: _g.not_equal}


class _Converter:
    def __init__(self, symvars):
        self.sym = symvars
        self.memo = {}

    def __call__(self, e):
        e = _sp.sympify(e)
        v = self.memo.get(e)
        if v is None:
            v = self.conv(e)
            self.memo[e] = v
        return v

    def conv(self, e):
        if e.is_Symbol:
            if e not in self.sym:
                raise SympyConversionError("symbol %s is not in the symbols list" % e)
            return self.sym[e]
        if e in (_sp.true, _sp.S.true):
            return _g.as_var(True)
        if e in (_sp.false, _sp.S.false):
            return _g.as_var(False)
        if e.is_Number or e.is_NumberSymbol or e in (_sp.S.Infinity, _sp.S.NegativeInfinity,
                                                     _sp.S.NaN):
            if e.is_real is False:
                raise SympyConversionError("complex constant %s" % e)
            return _g.as_var(_num(e))
        if isinstance(e, _sp.Add):
            terms = list(e.args)
            # constants last keeps `x + 1` reading naturally
            out = None
            for t in sorted(terms, key=lambda t: t.is_Number):
                if out is not None and t.could_extract_minus_sign() and not t.is_Number:
                    out = _g.subtract(out, self(-t))
                    continue
                v = self(t)
                out = v if out is None else _g.add(out, v)
            return out
        if isinstance(e, _sp.Mul):
            num, den = [], []
            coeff, rest = e.as_coeff_mul()
            for f in rest:
                b, x = f.as_base_exp()
                if x.is_Number and x.is_negative and not isinstance(f, _sp.exp):
                    den.append(b if x == -1 else _sp.Pow(b, -x, evaluate=False))
                else:
                    num.append(f)
            out = None
            for f in num:
                v = self(f)
                out = v if out is None else _g.multiply(out, v)
            if coeff == -1 and out is not None:
                out = _g.negative(out)
            elif coeff != 1 or out is None:
                c = _g.as_var(_num(coeff))
                out = c if out is None else _g.multiply(c, out)
            for f in den:
                out = _g.divide(out, self(f))
            return out
        if isinstance(e, _sp.Pow):
            b, x = e.args
            if b is _sp.E:
                return _g.exp(self(x))
            if x.is_Number:
                if x == _sp.Rational(1, 2):
                    return _g.sqrt(self(b))
                if x == _sp.Rational(-1, 2):
                    return _g.divide(1, _g.sqrt(self(b)))
                if x == -1:
                    return _g.divide(1, self(b))
                if x == 2:
                    bv = self(b)
                    return _g.multiply(bv, bv)
                if x.is_Integer and x < 0:
                    return _g.divide(1, _g.power(self(b), _num(-x)))
                return _g.power(self(b), _num(x))
            return _g.power(self(b), self(x))
        if isinstance(e, _sp.exp):
            return _g.exp(self(e.args[0]))
        if isinstance(e, _sp.log) and len(e.args) == 2:
            return _g.divide(_g.log(self(e.args[0])), _g.log(self(e.args[1])))
        f = _UNARY.get(e.func)
        if f is not None:
            if len(e.args) != 1:
                raise SympyConversionError("%s with %d arguments" % (e.func.__name__, len(e.args)))
            return f(self(e.args[0]))
        if isinstance(e, _sp.atan2):
            return _g.arctan2(self(e.args[0]), self(e.args[1]))
        if isinstance(e, (_sp.Max, _sp.Min)):
            op = _g.maximum if isinstance(e, _sp.Max) else _g.minimum
            args = [self(a) for a in e.args]
            out = args[0]
            for a in args[1:]:
                out = op(out, a)
            return out
        if isinstance(e, _sp.Piecewise):
            pieces = list(e.args)
            expr, cond = pieces[-1]
            if cond in (_sp.true, True):
                out = self(expr)
                pieces = pieces[:-1]
            else:
                out = _g.as_var(float("nan"))  # no branch taken: SymPy's lambdify gives nan
            for expr, cond in reversed(pieces):
                out = _g.where(self(cond), self(expr), out)
            return out
        rel = _REL.get(type(e))
        if rel is not None:
            return rel(self(e.lhs), self(e.rhs))
        if isinstance(e, _sp.And):
            args = [self(a) for a in e.args]
            out = args[0]
            for a in args[1:]:
                out = _g.logical_and(out, a)
            return out
        if isinstance(e, _sp.Or):
            args = [self(a) for a in e.args]
            out = args[0]
            for a in args[1:]:
                out = _g.logical_or(out, a)
            return out
        if isinstance(e, _sp.Not):
            return _g.logical_not(self(e.args[0]))
        if isinstance(e, _sp.Heaviside):
            raise SympyConversionError("Heaviside (its value at 0 is a choice; use Piecewise)")
        raise SympyConversionError("SymPy %s (in %s) has no tlaloc mapping" % (e.func.__name__, e))


def to_vars(exprs, symbols, dtype="f64", shape=("n",), dtypes=None, shapes=None):
    """(input Vars, output Vars) for exprs (one or a list) over symbols."""
    single = not isinstance(exprs, (list, tuple))
    exprs = [exprs] if single else list(exprs)
    symvars = {}
    ins = []
    for s in symbols:
        name = str(s)
        try:
            _g.check_name(name)
        except ValueError:
            name = "s%d" % len(ins)
        dt = (dtypes or {}).get(s, dtype)
        sh = (shapes or {}).get(s, shape)
        v = _g.tensor(name, dt, sh)
        symvars[s] = v
        ins.append(v)
    c = _Converter(symvars)
    outs = [c(e) for e in exprs]
    return ins, (outs[0] if single else outs)


def to_tg(exprs, symbols, name="sympy", **kw):
    """.tg text of exprs."""
    ins, outs = to_vars(exprs, symbols, **kw)
    return _g.emit(ins, outs if isinstance(outs, list) else [outs], None, name)


def function(exprs, symbols, rules=None, cost=None, name="sympy", limits=None, engine="llvm",
             **kw):
    """Compiles exprs (one SymPy expression or a list) over symbols; returns a
    callable on numpy arrays (one per symbol, in order). engine= as for
    tlaloc.function: "llvm" (compiled, the default), "interp" (the reference
    interpreter) or "auto" (compiled, else interpreted)."""
    ins, outs = to_vars(exprs, symbols, **kw)
    return _Function(ins, outs, rules=rules, cost=cost, name=name, limits=limits, engine=engine)
