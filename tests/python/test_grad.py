"""tl.grad / tl.vjp / tl.jvp against PyTorch 1.13's autograd (Debian's
python3-torch), in f64: every differentiable op of the op table on random
inputs and on its edge values (zeros, ties: the subgradient conventions,
docs/grad.md), the gradients of every example graph, and grad of grad
against PyTorch's double backward. Graphs are evaluated in torch by
torch_eval, an evaluator of tlaloc Vars with torch ops, so both sides
differentiate the very same expression."""
import glob
import math
import os

import numpy as np
import pytest

import tlaloc as tl
from tlaloc.autodiff import _read_graph

torch = pytest.importorskip("torch")
F = torch.nn.functional
torch.set_default_dtype(torch.float64)

ROOT = os.path.normpath(os.path.join(os.path.dirname(__file__), "..", ".."))
TORCH_DT = {"bool": torch.bool, "i32": torch.int32, "i64": torch.int64, "f32": torch.float32, "f64": torch.float64}


# ---- tlaloc Vars evaluated with torch ops -----------------------------------------------

def _axes(at, rank, default=None):
    a = at.get("axis", default)
    if a is None:
        return None
    a = a if isinstance(a, list) else [a]
    return [x % rank if rank else x for x in a]


def _reduce(fn):
    def f(a, at):
        x = a[0]
        ax = _axes(at, x.dim())
        keep = bool(at.get("keepdims", False))
        if ax is None:
            ax = list(range(x.dim()))
        if not ax:
            return x
        return fn(x, ax, keep)
    return f


def _prod(x, ax, keep):
    for a in sorted(ax, reverse=True):
        x = torch.prod(x, dim=a, keepdim=keep)
    return x


def _slice(x, at):
    ax = at.get("axis", 0) % x.dim()
    step = at.get("step", 1)
    n = x.shape[ax]
    idx = range(n)[slice(at.get("start"), at.get("stop"), step)]
    return torch.index_select(x, ax, torch.tensor(list(idx), dtype=torch.int64))


def _slice_update(x, v, at):
    ax = at.get("axis", 0) % x.dim()
    idx = list(range(x.shape[ax])[slice(at.get("start"), at.get("stop"), at.get("step", 1))])
    return torch.index_copy(x, ax, torch.tensor(idx, dtype=torch.int64), v)


def _take(x, i, at):
    if "axis" not in at:
        return torch.take(x, torch.where(i < 0, i + x.numel(), i).long())
    ax = at["axis"] % x.dim()
    i = torch.where(i < 0, i + x.shape[ax], i).long()
    flat = torch.index_select(x, ax, i.reshape(-1))
    return flat.reshape(x.shape[:ax] + i.shape + x.shape[ax + 1:])


def _scatter_add(x, i, v, at):
    if "axis" not in at:
        i = torch.where(i < 0, i + x.numel(), i).long()
        return x.reshape(-1).index_add(0, i.reshape(-1), v.reshape(-1)).reshape(x.shape)
    ax = at["axis"] % x.dim()
    i = torch.where(i < 0, i + x.shape[ax], i).long()
    vv = v.reshape(x.shape[:ax] + (i.numel(),) + x.shape[ax + 1:])
    return x.index_add(ax, i.reshape(-1), vv)


OPS = {
    "neg": lambda a, at: -a[0], "abs": lambda a, at: torch.abs(a[0]), "relu": lambda a, at: torch.relu(a[0]),
    "sign": lambda a, at: torch.sign(a[0]), "exp": lambda a, at: torch.exp(a[0]),
    "log": lambda a, at: torch.log(a[0]), "log1p": lambda a, at: torch.log1p(a[0]),
    "expm1": lambda a, at: torch.expm1(a[0]), "sqrt": lambda a, at: torch.sqrt(a[0]),
    "sin": lambda a, at: torch.sin(a[0]), "cos": lambda a, at: torch.cos(a[0]), "tan": lambda a, at: torch.tan(a[0]),
    "tanh": lambda a, at: torch.tanh(a[0]), "sigmoid": lambda a, at: torch.sigmoid(a[0]),
    "softplus": lambda a, at: F.softplus(a[0], threshold=1e9),
    "log1mexp": lambda a, at: torch.log(-torch.expm1(a[0])),
    "erf": lambda a, at: torch.erf(a[0]), "erfc": lambda a, at: torch.erfc(a[0]),
    "floor": lambda a, at: torch.floor(a[0]), "ceil": lambda a, at: torch.ceil(a[0]),
    "reciprocal": lambda a, at: torch.reciprocal(a[0]),
    "not": lambda a, at: torch.logical_not(a[0]),
    "cast": lambda a, at: a[0].to(TORCH_DT[at["dtype"]]),
    "asin": lambda a, at: torch.asin(a[0]), "acos": lambda a, at: torch.acos(a[0]),
    "atan": lambda a, at: torch.atan(a[0]), "sinh": lambda a, at: torch.sinh(a[0]),
    "cosh": lambda a, at: torch.cosh(a[0]), "asinh": lambda a, at: torch.asinh(a[0]),
    "acosh": lambda a, at: torch.acosh(a[0]), "atanh": lambda a, at: torch.atanh(a[0]),
    # PyTorch 1.13 has no cbrt: the real cube root as sign(x) |x|^(1/3)
    "cbrt": lambda a, at: torch.sign(a[0]) * torch.abs(a[0]) ** (1.0 / 3.0),
    "atan2": lambda a, at: torch.atan2(a[0], a[1]), "hypot": lambda a, at: torch.hypot(*torch.broadcast_tensors(a[0], a[1])),
    "add": lambda a, at: a[0] + a[1], "sub": lambda a, at: a[0] - a[1], "mul": lambda a, at: a[0] * a[1],
    "div": lambda a, at: a[0] / a[1], "floor_divide": lambda a, at: torch.div(a[0], a[1], rounding_mode="floor"),
    "remainder": lambda a, at: torch.remainder(a[0], a[1]), "pow": lambda a, at: torch.pow(a[0], a[1]),
    "maximum": lambda a, at: torch.maximum(*torch.broadcast_tensors(a[0], a[1])),
    "minimum": lambda a, at: torch.minimum(*torch.broadcast_tensors(a[0], a[1])),
    "logaddexp": lambda a, at: torch.logaddexp(a[0], a[1]), "xlogy": lambda a, at: torch.xlogy(a[0], a[1]),
    "eq": lambda a, at: a[0] == a[1], "ne": lambda a, at: a[0] != a[1], "lt": lambda a, at: a[0] < a[1],
    "le": lambda a, at: a[0] <= a[1], "gt": lambda a, at: a[0] > a[1], "ge": lambda a, at: a[0] >= a[1],
    "and": lambda a, at: torch.logical_and(a[0], a[1]), "or": lambda a, at: torch.logical_or(a[0], a[1]),
    "where": lambda a, at: torch.where(a[0].bool(), *torch.broadcast_tensors(a[1], a[2])),
    "sum": _reduce(lambda x, ax, k: torch.sum(x, dim=ax, keepdim=k)),
    "mean": _reduce(lambda x, ax, k: torch.mean(x, dim=ax, keepdim=k)),
    "prod": _reduce(_prod),
    "max": _reduce(lambda x, ax, k: torch.amax(x, dim=ax, keepdim=k)),
    "min": _reduce(lambda x, ax, k: torch.amin(x, dim=ax, keepdim=k)),
    "logsumexp": _reduce(lambda x, ax, k: torch.logsumexp(x, dim=ax, keepdim=k)),
    "softmax": lambda a, at: torch.softmax(a[0], dim=at.get("axis", -1)),
    "log_softmax": lambda a, at: torch.log_softmax(a[0], dim=at.get("axis", -1)),
    "zeros_like": lambda a, at: torch.zeros_like(a[0]), "ones_like": lambda a, at: torch.ones_like(a[0]),
    "reshape": lambda a, at: a[0].reshape([d if isinstance(d, int) else SYM[d] for d in at["shape"]]),
    "transpose": lambda a, at: a[0].permute(at["perm"]) if "perm" in at else a[0].permute(
        list(range(a[0].dim()))[::-1]),
    "broadcast_to": lambda a, at: a[0].expand([d if isinstance(d, int) else SYM[d] for d in at["shape"]]),
    "expand_dims": lambda a, at: _expand_dims(a[0], at["axis"]),
    "squeeze": lambda a, at: a[0].squeeze() if "axis" not in at else _squeeze(a[0], at["axis"]),
    "concat": lambda a, at: torch.cat(a, dim=at.get("axis", 0)),
    "slice": lambda a, at: _slice(a[0], at), "take": lambda a, at: _take(a[0], a[1], at),
    "slice_update": lambda a, at: _slice_update(a[0], a[1], at),
    "scatter_add": lambda a, at: _scatter_add(a[0], a[1], a[2], at),
    "matmul": lambda a, at: torch.matmul(a[0], a[1]),
}
SYM = {}


def _expand_dims(x, axis):
    axes = axis if isinstance(axis, list) else [axis]
    r = x.dim() + len(axes)
    for a in sorted(ax % r for ax in axes):
        x = x.unsqueeze(a)
    return x


def _squeeze(x, axis):
    for a in sorted((ax % x.dim() for ax in (axis if isinstance(axis, list) else [axis])), reverse=True):
        x = x.squeeze(a)
    return x


def torch_eval(outputs, feed):
    """The values of tlaloc Vars computed with torch; feed: {input Var: tensor}."""
    vals = {id(v): t for v, t in feed.items()}
    stack = [(o, False) for o in outputs]
    while stack:
        v, ready = stack.pop()
        if id(v) in vals:
            continue
        if v.op == "lit":
            vals[id(v)] = v.data
            continue
        if v.op == "fill":
            dt, shape, val = v.data
            vals[id(v)] = torch.full([d if isinstance(d, int) else SYM[d] for d in shape], val, dtype=TORCH_DT[dt])
            continue
        if v.op == "const":
            dt, shape, data = v.data
            vals[id(v)] = torch.tensor(np.asarray(data).reshape(shape), dtype=TORCH_DT[dt])
            continue
        if v.op == "_alias":
            if id(v.args[0]) in vals:
                vals[id(v)] = vals[id(v.args[0])]
            else:
                stack.append((v, True))
                stack.append((v.args[0], False))
            continue
        if not ready:
            stack.append((v, True))
            stack.extend((a, False) for a in v.args if id(a) not in vals)
            continue
        args = [vals[id(a)] for a in v.args]
        args = [a if torch.is_tensor(a) else torch.tensor(a, dtype=_weak_dtype(a, args)) for a in args]
        vals[id(v)] = OPS[v.op](args, dict(v.attrs))
    return [vals[id(o)] for o in outputs]


def _weak_dtype(lit, args):
    """A Python number next to tensors takes their dtype (NEP 50, as tlaloc)."""
    for a in args:
        if torch.is_tensor(a):
            if isinstance(lit, float) and not a.is_floating_point():
                return torch.float64
            return a.dtype
    return torch.float64 if isinstance(lit, float) else torch.int64


def close(a, b, rtol=1e-7, atol=1e-9):
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    assert a.shape == b.shape, (a.shape, b.shape)
    both_nan = np.isnan(a) & np.isnan(b)
    same_inf = np.isinf(a) & (a == b)
    ok = both_nan | same_inf | (np.abs(a - b) <= atol + rtol * np.maximum(np.abs(a), np.abs(b)))
    return bool(ok.all()), a[~ok][:5], b[~ok][:5]


# ---- every op ---------------------------------------------------------------------------

def _vals(rng, shape, edge, domain):
    """Normal values, or (edge) zeros, -0 and small integers (ties) among them."""
    x = rng.normal(size=shape) * 1.5
    if edge:
        k = rng.integers(0, 4, size=shape)
        x = np.where(k == 0, 0.0, np.where(k == 1, rng.integers(-2, 3, size=shape).astype(float), x))
    if domain == "positive":
        x = 0.1 + np.abs(x)
    elif domain == "negative":
        x = -0.1 - np.abs(x)
    elif domain == "nonzero":
        x = np.where(np.abs(x) < 0.1, np.copysign(0.1 + np.abs(x), np.where(x == 0, 1.0, x)), x)
    elif domain == "gt-1":
        x = -0.9 + np.abs(x)
    elif domain == "unit":
        x = 0.9 * np.tanh(x)
    elif domain == "gt1":
        x = 1.1 + np.abs(x)
    return x


DOMAINS = {"log": "positive", "sqrt": "positive", "log1p": "gt-1", "log1mexp": "negative",
           "reciprocal": "nonzero", "div": "nonzero", "remainder": "nonzero", "pow": "positive",
           "xlogy": "positive", "asin": "unit", "acos": "unit", "atanh": "unit", "acosh": "gt1",
           "cbrt": "nonzero", "atan2": "nonzero", "hypot": "nonzero"}

# (op, operand shapes, attributes, index operands {position: (shape, length)})
CASES = [(op, [(3, 4)], {}, {}) for op in
         ["neg", "abs", "relu", "exp", "log", "log1p", "expm1", "sqrt", "sin", "cos", "tan", "tanh", "sigmoid",
          "asin", "acos", "atan", "sinh", "cosh", "asinh", "acosh", "atanh", "cbrt",
          "softplus", "log1mexp", "erf", "erfc", "reciprocal", "sign", "floor", "ceil"]]
CASES += [(op, [(3, 4), (4,)], {}, {}) for op in
          ["add", "sub", "mul", "div", "remainder", "pow", "maximum", "minimum", "logaddexp", "xlogy",
           "floor_divide", "atan2", "hypot"]]
CASES += [("cast", [(3, 4)], {"dtype": "f32"}, {}), ("where", [(3, 1), (3, 4), (4,)], {}, {})]
CASES += [(op, [(3, 4)], at, {}) for op in ["sum", "prod", "max", "min", "mean", "logsumexp"]
          for at in ({}, {"axis": 1}, {"axis": 0, "keepdims": True})]
CASES += [(op, [(3, 4)], {"axis": ax}, {}) for op in ["softmax", "log_softmax"] for ax in (0, -1)]
CASES += [("reshape", [(3, 4)], {"shape": [2, 6]}, {}), ("transpose", [(2, 3, 4)], {"perm": [1, 2, 0]}, {}),
          ("broadcast_to", [(3, 1)], {"shape": [2, 3, 4]}, {}), ("expand_dims", [(3, 4)], {"axis": 1}, {}),
          ("squeeze", [(3, 1, 4)], {"axis": 1}, {}), ("concat", [(3, 4), (2, 4)], {"axis": 0}, {}),
          ("slice", [(5, 4)], {"axis": 0, "start": 1, "stop": 5, "step": 2}, {}),
          ("slice", [(5, 4)], {"axis": 1, "start": -3}, {}),
          ("take", [(5, 4), None], {"axis": 0}, {1: ((3,), 5)}),
          ("take", [(5, 4), None], {}, {1: ((2, 2), 20)}),
          ("slice_update", [(5, 4), (2, 4)], {"axis": 0, "start": 1, "step": 2}, {}),
          ("scatter_add", [(5, 4), None, (3, 4)], {"axis": 0}, {1: ((3,), 5)}),
          ("matmul", [(3, 4), (4, 5)], {}, {}), ("matmul", [(4,), (2, 4, 3)], {}, {}),
          ("matmul", [(2, 3, 4), (4,)], {}, {}), ("matmul", [(4,), (4,)], {}, {})]


def _case_id(c):
    return "%s%s" % (c[0], "".join("-%s%s" % (k, v) for k, v in sorted(c[2].items())))


def test_every_differentiable_op_has_a_case():
    covered = {c[0] for c in CASES}
    for name, arity, kind, _ in tl._lib.ops():
        # control flow differentiates into gradient functions, not rules:
        # tests/python/test_control.py checks it against PyTorch
        if kind in ("source", "constant", "control") or name in ("not", "eq", "ne", "lt", "le", "gt", "ge", "and", "or",
                                                                          "bitwise_xor"):
            continue
        assert name in covered, "op %s has no gradient case against PyTorch" % name


@pytest.mark.parametrize("case", CASES, ids=_case_id)
@pytest.mark.parametrize("edge", [False, True], ids=["random", "edges"])
def test_op_gradient_matches_pytorch(case, edge):
    op, shapes, attrs, index = case
    rng = np.random.default_rng(abs(hash((_case_id(case), edge))) % (2 ** 32))
    ins, vals, diff = [], [], []
    for k, shape in enumerate(shapes):
        if k in index:
            ishape, n = index[k]
            v = rng.integers(-n, n, size=ishape).astype(np.int64)
            ins.append(tl.tensor("i%d" % k, "i64", ishape))
            vals.append(v)
            continue
        if op == "where" and k == 0:
            ins.append(tl.tensor("c", "bool", shape))
            vals.append(rng.integers(0, 2, size=shape).astype(bool))
            continue
        dom = DOMAINS.get(op)
        if op == "pow" and k == 1:
            dom = None if not edge else "positive"
        v = _vals(rng, shape, edge, dom)
        if op in ("prod",) and edge:
            v.flat[0] = 0.0
        ins.append(tl.tensor("a%d" % k, "f64", shape))
        vals.append(v)
        diff.append(k)
    if op == "slice_update":
        pass
    y = tl.graph._op(op, *ins, **attrs)
    if y.dtype not in ("f32", "f64"):
        return
    ct = rng.normal(size=[int(d) for d in y.shape])
    loss = tl.sum(tl.cast(y, "f64") * tl.constant(ct))
    grads = tl.grad(loss, [ins[k] for k in diff])
    got = tl.function(ins, grads, engine="interp")(*vals)
    got = got if isinstance(got, list) else [got]
    tins = [torch.tensor(v, requires_grad=k in diff) for k, v in enumerate(vals)]
    ty = torch_eval([y], dict(zip(ins, tins)))[0]
    tl_loss = (ty.to(torch.float64) * torch.tensor(ct)).sum()
    want = torch.autograd.grad(tl_loss, [tins[k] for k in diff], allow_unused=True)
    for k, g, w in zip(diff, got, want):
        w = np.zeros_like(vals[k]) if w is None else w.numpy()
        ok, a, b = close(g, w)
        assert ok, "%s operand %d (%s): tlaloc %s, PyTorch %s" % (op, k, "edge values" if edge else "random", a, b)


def test_subgradient_conventions():
    """abs and relu at 0, maximum and minimum ties, max and min reduction
    ties, floor: PyTorch 1.13's values, exactly (docs/grad.md)."""
    x = tl.tensor("x", "f64", (4,))
    y = tl.tensor("y", "f64", (4,))
    X = np.array([0.0, -0.0, 2.0, 2.0])
    Y = np.array([0.0, 1.0, 2.0, -1.0])
    exprs = {
        "abs": lambda a, b: tl.sum(tl.abs(a)), "relu": lambda a, b: tl.sum(tl.relu(a)),
        "maximum": lambda a, b: tl.sum(tl.maximum(a, b)), "minimum": lambda a, b: tl.sum(tl.minimum(a, b)),
        "max": lambda a, b: tl.max(a), "min": lambda a, b: tl.min(a), "floor": lambda a, b: tl.sum(tl.floor(a)),
        "maximum0": lambda a, b: tl.sum(tl.maximum(a, 0.0)),
    }
    texprs = {
        "abs": lambda a, b: torch.abs(a).sum(), "relu": lambda a, b: torch.relu(a).sum(),
        "maximum": lambda a, b: torch.maximum(a, b).sum(), "minimum": lambda a, b: torch.minimum(a, b).sum(),
        "max": lambda a, b: torch.amax(a), "min": lambda a, b: torch.amin(a), "floor": lambda a, b: torch.floor(a).sum(),
        "maximum0": lambda a, b: torch.maximum(a, torch.zeros(4)).sum(),
    }
    for name in exprs:
        gx, gy = tl.grad(exprs[name](x, y), [x, y])
        got = tl.function([x, y], [gx, gy], engine="interp")(X, Y)
        tx, ty = torch.tensor(X, requires_grad=True), torch.tensor(Y, requires_grad=True)
        want = torch.autograd.grad(texprs[name](tx, ty), [tx, ty], allow_unused=True)
        for g, w in zip(got, want):
            w = np.zeros(4) if w is None else w.numpy()
            assert np.array_equal(g, w), "%s: tlaloc %s, PyTorch %s" % (name, g, w)


# ---- the example graphs ------------------------------------------------------------------

def _example_graphs():
    out = []
    for path in sorted(glob.glob(os.path.join(ROOT, "examples", "*.tg"))):
        text = open(path).read().replace("f32", "f64")
        if "(func " in text:  # control flow: no gradient yet (grad refuses it)
            continue
        out.append((os.path.basename(path), text))
    return out


def _vars_of(text):
    """(input Vars by name, output Vars by name) of .tg text, through the C printer."""
    g = tl._lib.Graph(text, "<example>")
    ins = {}
    for name, ty in g.inputs():
        dt, shape = tl._lib.parse_type(ty)
        ins[name] = tl.tensor(name, dt, tuple(3 if isinstance(d, str) else d for d in shape))
    return ins, _read_graph(g.printed(), ins)


@pytest.mark.parametrize("name,text", _example_graphs(), ids=lambda v: v if isinstance(v, str) and v.endswith(".tg") else "")
def test_example_gradients_match_pytorch(name, text):
    ins, outs = _vars_of(text)
    floats = [v for v in ins.values() if v.dtype in ("f32", "f64")]
    outs = {k: v for k, v in outs.items() if v.dtype in ("f32", "f64")}
    if not floats or not outs:
        pytest.skip("no float input or output")
    rng = np.random.default_rng(len(text))
    vals = {k: rng.uniform(0.1, 0.9, size=[int(d) for d in v.shape]) for k, v in ins.items()}
    names = list(outs)
    cts = [tl.tensor("ct_" + n, "f64", outs[n].shape) for n in names]
    ctv = [rng.normal(size=[int(d) for d in outs[n].shape]) for n in names]
    grads = tl.vjp([outs[n] for n in names], floats, cts)
    f = tl.function(list(ins.values()) + cts, grads)
    got = f(*[vals[k] for k in ins], *ctv)
    got = got if isinstance(got, list) else [got]
    tins = {v: torch.tensor(vals[k], requires_grad=v in floats) for k, v in ins.items()}
    touts = torch_eval([outs[n] for n in names], tins)
    s = sum((t * torch.tensor(c)).sum() for t, c in zip(touts, ctv))
    want = torch.autograd.grad(s, [tins[v] for v in floats], allow_unused=True)
    for v, g, w in zip(floats, got, want):
        w = np.zeros(g.shape) if w is None else w.numpy()
        ok, a, b = close(g, w, rtol=1e-6)
        assert ok, "%s: d/d%s: tlaloc %s, PyTorch %s" % (name, v.name, a, b)


# ---- grad of grad -------------------------------------------------------------------------

def _double_backward_graphs():
    x = tl.tensor("x", "f64", (4, 3))
    w = tl.tensor("w", "f64", (3, 5))
    u = tl.tensor("u", "f64", (5,))
    y = tl.tensor("y", "f64", (4, 5))
    return [
        ("mlp", [x, w, u], tl.sum(tl.tanh(x @ w) * u)),
        ("xent", [x, w, y], -tl.mean(tl.sum(y * tl.log_softmax(x @ w, axis=1), axis=1))),
        ("mixed", [x, w, u], tl.logsumexp(tl.sigmoid(x @ w) * u) + tl.sum(tl.softplus(x) ** 3)),
        ("prod-max", [x, w, u], tl.sum(tl.prod(x, axis=1)) + tl.sum(tl.max(x @ w, axis=0) * u)),
    ]


@pytest.mark.parametrize("name,ins,f", _double_backward_graphs(), ids=lambda v: v if isinstance(v, str) else "")
def test_grad_of_grad_matches_pytorch_double_backward(name, ins, f):
    rng = np.random.default_rng(7)
    vals = [rng.uniform(0.1, 0.9, size=[int(d) for d in v.shape]) for v in ins]
    vs = [tl.tensor("v_" + v.name, "f64", v.shape) for v in ins]
    vvals = [rng.normal(size=[int(d) for d in v.shape]) for v in ins]
    g = tl.grad(f, ins)
    hv = tl.grad(sum((gi * vi).sum() for gi, vi in zip(g, vs)), ins)
    got = tl.function(ins + vs, hv)(*vals, *vvals)
    tins = [torch.tensor(v, requires_grad=True) for v in vals]
    tf = torch_eval([f], dict(zip(ins, tins)))[0]
    tg = torch.autograd.grad(tf, tins, create_graph=True)
    s = sum((gi * torch.tensor(vi)).sum() for gi, vi in zip(tg, vvals))
    want = torch.autograd.grad(s, tins, allow_unused=True)
    for v, a, b in zip(ins, got, want):
        b = np.zeros(a.shape) if b is None else b.detach().numpy()
        ok, x, y = close(a, b, rtol=1e-6)
        assert ok, "%s: (H v) for %s: tlaloc %s, PyTorch %s" % (name, v.name, x, y)


def test_jvp_matches_pytorch_forward_mode():
    x = tl.tensor("x", "f64", (4, 3))
    w = tl.tensor("w", "f64", (3, 5))
    f = tl.softmax(tl.tanh(x @ w), axis=1)
    t = tl.tensor("t", "f64", (3, 5))
    j = tl.jvp(f, w, t)
    rng = np.random.default_rng(3)
    X, W, T = rng.normal(size=(4, 3)), rng.normal(size=(3, 5)), rng.normal(size=(3, 5))
    got = tl.function([x, w, t], j)(X, W, T)
    _, want = torch.autograd.functional.jvp(lambda ww: torch.softmax(torch.tanh(torch.tensor(X) @ ww), dim=1),
                                            torch.tensor(W), torch.tensor(T))
    assert close(got, want.numpy())[0]


def test_grad_api_shapes_and_errors():
    x = tl.tensor("x", "f32", ("n", 3))
    w = tl.tensor("w", "f32", (3,))
    h = -(x @ w)
    loss = tl.mean(tl.softplus(h))
    gw = tl.grad(loss, w)
    assert isinstance(gw, tl.Var) and gw.shape == (3,) and gw.dtype == "f32"
    gx, gw2 = tl.grad(loss, [x, w])
    assert gx.shape == ("n", 3)
    gh = tl.grad(loss, h)  # an intermediate: the expression is cut there
    X = np.ones((2, 3), dtype=np.float32)
    W = np.array([1, -1, 0.5], dtype=np.float32)
    out = tl.function([x, w], [gh, gw])(X, W)
    s = 1 / (1 + np.exp(X @ W))  # sigmoid(h)
    assert np.allclose(out[0], s / 2, rtol=1e-6)
    assert np.allclose(out[1], -(X.T @ (s / 2)), rtol=1e-6)
    # an unrelated intermediate: the loss does not depend on it
    assert np.all(tl.function([x, w], tl.grad(loss, x * 2.0))(X, W) == 0)
    with pytest.raises(tl.TlalocError, match="not a scalar"):
        tl.grad(x @ w, w)
    k = tl.tensor("k", "i64", (3,))
    with pytest.raises(tl.TlalocError, match="only float inputs"):
        tl.grad(tl.sum(tl.cast(k, "f32") * w), k)


def test_training_example_loss_falls():
    """examples/train.py: logistic regression and an MLP trained with Adam
    (the update inside the compiled graph) halve their losses."""
    import importlib.util
    spec = importlib.util.spec_from_file_location("train", os.path.join(ROOT, "examples", "train.py"))
    train = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(train)
    assert train.main(["--steps", "60", "--quiet"]) == 0
