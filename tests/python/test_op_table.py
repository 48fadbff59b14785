"""The frontends against the C library's op table (ir/ops.def): every
elementwise op is reachable from Python, and the SymPy and ONNX importers
map every op they can name or say why not. A new op of the table fails here
until each frontend has decided about it."""
import tlaloc as tl
from tlaloc import _lib

# Ops SymPy has no function for; each with the reason.
NOT_IN_SYMPY = {
    "bitwise_xor": "sympy's Xor is boolean logic, and sympy has no integer bitwise operators",
    "neg": "sympy writes -x as Mul(-1, x), converted by the Mul rule",
    "sqrt": "sympy writes sqrt(x) as Pow(x, 1/2), converted by the Pow rule",
    "sigmoid": "no sympy function; 1/(1+exp(-x)) converts and the stability rules fuse it",
    "softplus": "no sympy function; log(1+exp(x)) converts and the stability rules fuse it",
    "log1mexp": "no sympy function",
    "reciprocal": "sympy writes 1/x as Pow(x, -1)",
    "not": "sympy's Not is logic on booleans, converted by the boolean rules",
    "cast": "no sympy function",
    "add": "Add, converted by the Add rule", "sub": "Add with a negated term",
    "mul": "Mul rule", "div": "Mul with Pow(., -1)", "pow": "Pow rule",
    "floor_divide": "sympy's floor(a/b) converts to floor(div)",
    "remainder": "sympy's Mod is not numpy's remainder for negative operands",
    "maximum": "Max, converted by the Max rule", "minimum": "Min rule",
    "logaddexp": "no sympy function", "xlogy": "no sympy function",
    "eq": "relational rule", "ne": "relational rule", "lt": "relational rule", "le": "relational rule",
    "gt": "relational rule", "ge": "relational rule",
    "and": "boolean rule", "or": "boolean rule", "where": "Piecewise rule",
    "relu": "no sympy function; Max(x, 0) converts to maximum",
    "cbrt": "sympy's cbrt(x) is Pow(x, 1/3), the principal (complex) root for negative x",
    "atan2": "sympy's atan2 has its own two-operand converter",
    "hypot": "no sympy function; sqrt(x**2 + y**2) converts (without hypot's overflow safety)",
}

# Ops ONNX has no operator for; each with the reason.
NOT_IN_ONNX = {
    "log1p": "no ONNX operator", "expm1": "no ONNX operator", "erfc": "no ONNX operator",
    "log1mexp": "no ONNX operator", "reciprocal": "Reciprocal converts to div(1, x)",
    "cast": "Cast has its own converter", "div": "Div has its own converter (integer truncation)",
    "floor_divide": "no ONNX operator", "remainder": "Mod has its own converter",
    "pow": "Pow has its own converter", "maximum": "Max (variadic) has its own converter",
    "minimum": "Min (variadic) has its own converter", "logaddexp": "no ONNX operator",
    "xlogy": "no ONNX operator", "ne": "no ONNX operator (Not(Equal))", "where": "Where has its own converter",
    "cbrt": "no ONNX operator", "atan2": "no ONNX operator", "hypot": "no ONNX operator",
}


def elementwise_ops():
    return [(n, a) for n, a, k, _ in _lib.ops() if k == "elementwise"]


def emitted_op(f, arity):
    """The op f applies to its operands directly, or None for a composition
    (tan as div(sin, cos) maps no op)."""
    x = tl.tensor("x", "f64", (3,))
    z = tl.tensor("z", "f64", (3,))
    v = f(x) if arity == 1 else f(x, z)
    direct = all(a is x or a is z or a.op == "lit" for a in v.args)
    return v.op if direct else None


def test_every_elementwise_op_is_a_python_function():
    for name, arity in elementwise_ops():
        if name in ("cast", "where"):  # need a dtype / three operands: tested below
            continue
        f = getattr(tl, name)
        assert emitted_op(f, arity) == name, "tl.%s does not emit the op %s" % (name, name)
    x = tl.tensor("x", "f64", (3,))
    assert tl.cast(x, "f32").op == "cast"
    assert tl.where(x > 0, x, x).op == "where"


def test_an_op_of_the_table_without_a_function_is_found():
    # graph.__getattr__ builds tl.<op> from the table for ops it does not define
    f = tl.graph.__getattr__("erfc")
    assert emitted_op(f, 1) == "erfc"
    try:
        tl.no_such_op
    except AttributeError as e:
        assert "no_such_op" in str(e)
    else:
        raise AssertionError("an unknown name must raise AttributeError")


def test_sympy_maps_every_op_it_can_name():
    from tlaloc import sympy as tls
    mapped = set()
    for sf, f in tls._UNARY.items():
        mapped.add(emitted_op(f, 1))
    for name, arity in elementwise_ops():
        assert name in mapped or name in NOT_IN_SYMPY, \
            "op %s: map it in tlaloc/sympy.py's _unary_map or say why not in NOT_IN_SYMPY" % name
    for name in NOT_IN_SYMPY:
        assert name not in mapped, "%s is mapped: remove it from NOT_IN_SYMPY" % name


def test_onnx_maps_every_op_it_can_name():
    from tlaloc.onnx import _elementwise as ew
    mapped = set()
    for f in list(ew._UN.values()):
        mapped.add(emitted_op(f, 1))
    for f in list(ew._BIN.values()):
        mapped.add(emitted_op(f, 2))
    for name, arity in elementwise_ops():
        assert name in mapped or name in NOT_IN_ONNX, \
            "op %s: map it in tlaloc/onnx/_elementwise.py or say why not in NOT_IN_ONNX" % name
