"""Symbolic differentiation: tl.grad, tl.vjp, tl.jvp (docs/grad.md).

The expression is emitted as .tg text, the C library differentiates it
(tlaloc_grad, the rules of rules/grad.rw), and the derivative graph is read
back into Vars over the caller's own Vars, so the results combine with any
other expression and go to tl.function like one::

    x = tl.tensor("x", "f32", ("n", 3)); w = tl.tensor("w", "f32", (3,))
    loss = tl.mean(tl.softplus(-(x @ w)))
    gw = tl.grad(loss, w)                  # a Var, as theano.grad / pytensor.grad
    f = tl.function([x, w], [loss, gw])

With respect to an intermediate Var the gradient treats it as an
independent input (the expression is cut there), as pytensor.grad does.
"""
import ctypes

from . import _lib
from .graph import Var, as_var, emit_graph, inputs_of, tensor

__all__ = ["grad", "vjp", "jvp"]


class _GradOptions(ctypes.Structure):
    """tlaloc_grad_options (include/tlaloc.h)."""
    _fields_ = [("mode", ctypes.c_char_p),
                ("of", ctypes.POINTER(ctypes.c_char_p)), ("nof", ctypes.c_int),
                ("wrt", ctypes.POINTER(ctypes.c_char_p)), ("nwrt", ctypes.c_int),
                ("with_outputs", ctypes.c_int),
                ("rule_paths", ctypes.POINTER(ctypes.c_char_p)), ("nrules", ctypes.c_int)]


def _bind(lib):
    if getattr(lib, "_grad_bound", False):
        return
    vp = ctypes.c_void_p
    lib.tlaloc_grad.argtypes = [vp, ctypes.POINTER(_GradOptions), ctypes.POINTER(vp), ctypes.POINTER(vp)]
    lib.tlaloc_grad.restype = ctypes.c_int
    lib._grad_bound = True


def _strings(xs):
    arr = (ctypes.c_char_p * max(len(xs), 1))()
    for i, s in enumerate(xs):
        arr[i] = s.encode() if isinstance(s, str) else s
    return arr


def _substitute(outputs, mapping):
    """The expressions of outputs with the Vars of mapping (id -> Var)
    replaced (an iterative rebuild: deep expressions are fine)."""
    done = dict(mapping)
    stack = [(o, False) for o in outputs]
    while stack:
        v, ready = stack.pop()
        k = id(v)
        if k in done:
            continue
        if not v.args:
            done[k] = v
            continue
        if not ready:
            stack.append((v, True))
            stack.extend((a, False) for a in v.args if id(a) not in done)
            continue
        args = [done[id(a)] for a in v.args]
        if all(a is b for a, b in zip(args, v.args)):
            done[k] = v
        else:
            done[k] = w = Var(v.op, args, v.attrs, v.data, v.name)
            w.src = v.src
    return [done[id(o)] for o in outputs]


# ---- reading the derivative graph back ----------------------------------------

def _tokens(text):
    out, i, n = [], 0, len(text)
    while i < n:
        c = text[i]
        if c in " \t\r\n":
            i += 1
        elif c == ";":
            while i < n and text[i] != "\n":
                i += 1
        elif c in "()[]":
            out.append(c)
            i += 1
        else:
            j = i
            while j < n and text[j] not in " \t\r\n()[];":
                j += 1
            out.append(text[i:j])
            i = j
    return out


def _number(tok):
    if tok in ("inf", "+inf"):
        return float("inf")
    if tok == "-inf":
        return float("-inf")
    if tok == "nan":
        return float("nan")
    if any(ch in tok for ch in ".eE"):
        return float(tok)
    return int(tok)


def _is_number(tok):
    try:
        _number(tok)
        return True
    except ValueError:
        return False


def _attr_value(tok, it):
    if tok == "[":
        vals = []
        for t in it:
            if t == "]":
                return vals
            vals.append(int(t) if _is_number(t) else t)
        raise _lib.TlalocError("derivative graph: unterminated list")
    if tok in ("true", "false"):
        return tok == "true"
    return int(tok) if _is_number(tok) else tok


_FN_KEYS = ("fn", "then", "else", "cond", "body", "until")


def _read_graph(text, leaves):
    """{output name: Var} of canonical .tg text (tlaloc_print's), its
    inputs bound to the Vars of leaves (by name); its functions (a
    derivative of control flow has some) become control.Fn objects.
    Iterative: lets give the nesting, expressions nest at most 48 deep
    (the printer cuts deeper)."""
    from .control import Fn, _fresh
    toks = _tokens(text)
    it = iter(toks)
    fns = {}
    scope = [dict(leaves)]

    def expr(tok):
        env = scope[0]
        if tok != "(":
            if _is_number(tok):
                return Var("lit", (), (), _number(tok))
            return env[tok]
        head = next(it)
        if head in ("const", "fill"):
            dt = next(it)
            assert next(it) == "["
            shape = []
            for t in it:
                if t == "]":
                    break
                shape.append(int(t) if _is_number(t) else t)
            vals = []
            for t in it:
                if t == ")":
                    break
                vals.append(_number(t))
            if head == "fill":
                return Var("fill", (), (), (dt, tuple(shape), vals[0]))
            import numpy as np
            npdt = {"bool": np.bool_, "i32": np.int32, "i64": np.int64, "f32": np.float32, "f64": np.float64}[dt]
            return Var("const", (), (), (dt, tuple(shape), np.array(vals, dtype=npdt)))
        args, attrs = [], []
        for t in it:
            if t == ")":
                break
            if t.startswith(":"):
                key = t[1:]
                val = next(it)
                attrs.append((key, fns[val] if key in _FN_KEYS else _attr_value(val, it)))
            else:
                args.append(expr(t))
        return Var(head, args, attrs)

    def form(is_fn):
        """The items of a graph or function up to its ')': (params, [(kind, name, Var)])."""
        params, items = [], []
        for t in it:
            if t == ")":
                break
            assert t == "("
            kind, name = next(it), next(it)
            if kind == "in":
                dt = next(it)
                assert next(it) == "["
                shape = []
                for u in it:
                    if u == "]":
                        break
                    shape.append(int(u) if _is_number(u) else u)
                for u in it:  # :range, if any
                    if u == ")":
                        break
                if is_fn:
                    scope[0][name] = v = tensor(name, dt, tuple(shape))
                    params.append(v)
                elif name not in scope[0]:
                    raise _lib.TlalocError("derivative graph: input %r has no Var" % name)
                continue
            v = expr(next(it))
            assert next(it) == ")"
            if kind == "let":
                scope[0][name] = v
            items.append((kind, name, v))
        return params, items

    for t in it:
        assert t == "("
        head, name = next(it), next(it)
        if head == "func":
            saved = scope[0]
            scope[0] = {}
            params, items = form(True)
            scope[0] = saved
            # a fresh name: the graph these Vars end up in may hold another
            # function read under the same name (a second tl.grad)
            fns[name] = Fn(_fresh(name.replace(".", "_")), params, [v for k, _, v in items if k == "out"], [])
            continue
        assert head == "graph"
        _, items = form(False)
        return {n: v for k, n, v in items if k == "out"}
    raise _lib.TlalocError("derivative graph: no graph")


# ---- the three transforms --------------------------------------------------------

def _as_list(x):
    return (list(x), True) if isinstance(x, (list, tuple)) else ([x], False)


def _fresh(prefix, taken):
    k = 0
    while "%s%d" % (prefix, k) in taken:
        k += 1
    n = "%s%d" % (prefix, k)
    taken.add(n)
    return n


def _derive(mode, outputs, wrt, extra=None, rules=None):
    """Runs tlaloc_grad on outputs (Vars) with respect to wrt (Vars);
    extra: per output (vjp) or per wrt (jvp) the Var bound to its
    cotangent or tangent input. Returns {output name: Var}, the output
    names and the wrt names used."""
    outputs = [as_var(o) for o in outputs]
    wrt = list(wrt)
    for w in wrt:
        if not isinstance(w, Var):
            raise TypeError("wrt must be tlaloc Vars, got %r" % (w,))
    ins = inputs_of(outputs)
    taken = {x.name for x in ins}
    # a Var to differentiate with respect to that is not an input: cut there
    cut, wrt_names, leaves = {}, [], {x.name: x for x in ins}
    for w in wrt:
        if w.op == "in":
            if w.name not in leaves:  # the outputs do not depend on it: an extra input
                leaves[w.name] = w
                ins.append(w)
            wrt_names.append(w.name)
            continue
        if id(w) not in cut:
            dt, shape = w.type
            p = tensor(_fresh("_wrt", taken), dt, shape)
            cut[id(w)] = p
            leaves[p.name] = w
        wrt_names.append(cut[id(w)].name)
    if cut:
        outputs = _substitute(outputs, cut)
        ins = [x for x in inputs_of(outputs)]
        for w in wrt:
            p = cut.get(id(w)) if w.op != "in" else w
            if p not in ins:
                ins.append(p)
    out_names = [_fresh("_out", taken) for _ in outputs]
    text, out_names = emit_graph(ins, outputs, out_names, "d")
    lib = _lib.library()
    _bind(lib)
    src = _lib.Graph(text, "<tl.%s>" % mode)
    opts = _GradOptions()
    opts.mode = mode.encode()
    of_arr, wrt_arr = _strings(out_names), _strings(wrt_names)
    opts.of, opts.nof = of_arr, len(out_names)
    opts.wrt, opts.nwrt = wrt_arr, len(wrt_names)
    if rules:
        paths = [rules] if isinstance(rules, str) else list(rules)
        rp = _strings([p if isinstance(p, str) else str(p) for p in paths])
        opts.rule_paths, opts.nrules = rp, len(paths)
    out, err = ctypes.c_void_p(), ctypes.c_void_p()
    st = lib.tlaloc_grad(src.handle, ctypes.byref(opts), ctypes.byref(out), ctypes.byref(err))
    if st != 0:
        raise _lib.TlalocError(_lib.take_string(lib, err.value) or "tlaloc_grad failed", status=st)
    dg = _lib.Graph.adopt(out.value)
    if extra is not None:
        names = out_names if mode == "vjp" else wrt_names
        prefix = "ct_" if mode == "vjp" else "t_"
        for n, v in zip(names, extra):
            leaves[prefix + n] = as_var(v)
    return _read_graph(dg.printed(), leaves), out_names, wrt_names


def grad(cost, wrt, rules=None):
    """d cost / d wrt, symbolically: cost a scalar float Var; wrt a Var (an
    input or any intermediate) or a list of them. Returns a Var, or a list
    when wrt is a list (theano.grad's convention). An input the cost does
    not depend on gets zeros. rules: derivative rule files or folders
    (default: the rules folder)."""
    ws, is_list = _as_list(wrt)
    got, outs, names = _derive("grad", [cost], ws, rules=rules)
    res = [got["d%s_d%s" % (outs[0], n)] for n in names]
    return res if is_list else res[0]


def vjp(outputs, wrt, cotangents, rules=None):
    """The vector-Jacobian product sum_o <cotangents[o], d outputs[o] / d wrt>
    for each wrt: outputs a Var or a list, cotangents likewise (each of its
    output's type). Returns a Var per wrt (a list when wrt is a list)."""
    os_, _ = _as_list(outputs)
    cts, _ = _as_list(cotangents)
    if len(cts) != len(os_):
        raise ValueError("vjp: %d outputs but %d cotangents" % (len(os_), len(cts)))
    ws, is_list = _as_list(wrt)
    got, outs, names = _derive("vjp", os_, ws, cts, rules)
    res = [got["vjp_%s" % n] for n in names]
    return res if is_list else res[0]


def jvp(outputs, wrt, tangents, rules=None):
    """The Jacobian-vector product sum_w d outputs[o] / d wrt[w] tangents[w]
    for each output (forward mode): tangents one per wrt, of its type.
    Returns a Var per output (a list when outputs is a list)."""
    os_, is_list = _as_list(outputs)
    ws, _ = _as_list(wrt)
    ts, _ = _as_list(tangents)
    if len(ts) != len(ws):
        raise ValueError("jvp: %d wrt but %d tangents" % (len(ws), len(ts)))
    got, outs, names = _derive("jvp", os_, ws, ts, rules)
    res = [got["jvp_%s" % n] for n in outs]
    return res if is_list else res[0]
