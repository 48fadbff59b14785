"""Functions, conditionals and loops, with jax.lax's signatures.

    tl.cond(pred, true_fun, false_fun, *operands)
    tl.while_loop(cond_fun, body_fun, init_val, max_iters=None)
    tl.fori_loop(lower, upper, body_fun, init_val)
    tl.scan(f, init, xs, length=None)          -> (final_carry, stacked_ys)
    tl.ifelse(condition, then_value, else_value)   (PyTensor's: lazy values)
    @tl.fn                                     a function the optimizer sees as one

Each Python function is traced once on placeholder inputs typed like its
operands into a .tg function (docs/design.md, "Functions and control
flow"); the graph calls it through a call, cond, loop or scan node, so
only the taken branch runs and a loop is a loop, not an unrolled graph.
A value the function closes over is passed to it as an extra operand.
State may be a Var or a (nested) tuple or list of Vars."""
import itertools

from .graph import Var, as_var, tensor, check_name

_ids = itertools.count()


class Fn:
    """One traced function: parameters (input Vars), results (Vars) and the
    outer Vars it closes over (passed as extra operands after the own ones)."""

    __slots__ = ("name", "params", "outs", "lifted", "__weakref__")

    def __init__(self, name, params, outs, lifted):
        self.name = name
        self.params = params
        self.outs = outs
        self.lifted = lifted

    def __repr__(self):
        return "<tlaloc.Fn %s (%d params, %d results)>" % (self.name, len(self.params), len(self.outs))


# ---- pytrees of tuples and lists ----
def _flatten(tree):
    if isinstance(tree, (tuple, list)):
        leaves, specs = [], []
        for t in tree:
            l, s = _flatten(t)
            leaves += l
            specs.append(s)
        return leaves, (type(tree), specs)
    if tree is None:
        return [], None
    return [as_var(tree)], "leaf"


def _unflatten(spec, leaves):
    it = iter(leaves)

    def build(s):
        if s == "leaf":
            return next(it)
        if s is None:
            return None
        typ, subs = s
        return typ(build(x) for x in subs)

    return build(spec)


def _free_vars(outs, params, only_inputs=False):
    """What a function's results read from outside it, in first-seen order:
    the largest subexpressions that do not depend on its parameters (a
    loop's invariants are computed once, before it), or with only_inputs
    just the graph inputs (a branch must compute nothing unless taken).
    Leaves (literals, constants, fills) stay inside."""
    inside = {id(p) for p in params}
    dep = {}

    def depends(v):
        stack = [v]
        while stack:
            x = stack[-1]
            if id(x) in dep:
                stack.pop()
                continue
            if id(x) in inside:
                dep[id(x)] = True
                stack.pop()
                continue
            todo = [a for a in x.args if id(a) not in dep]
            if todo:
                stack.extend(todo)
                continue
            stack.pop()
            dep[id(x)] = any(dep[id(a)] for a in x.args)
        return dep[id(v)]

    seen, free = set(), []
    stack = list(reversed(outs))
    while stack:
        v = stack.pop()
        if id(v) in seen or id(v) in inside:
            continue
        seen.add(id(v))
        if v.op == "in" or (not only_inputs and v.args and not depends(v)):
            free.append(v)
            continue
        stack.extend(reversed(v.args))
    return free


def _placeholders(vals, prefix):
    ps = []
    for k, v in enumerate(vals):
        dt, shape = v.type
        ps.append(tensor("%s%d" % (prefix, k), dt, shape))
    return ps


def _trace(pyfun, vals, name, lazy=False):
    """Traces pyfun on placeholders typed like vals; (Fn, output spec).
    lazy: lift only graph inputs (a branch computes nothing unless taken)."""
    check_name(name, "function name")
    ps = _placeholders(vals, "p")
    res = pyfun(*ps)
    leaves, spec = _flatten(res)
    if not leaves:
        raise ValueError("function %s returns no value" % name)
    lifted = _free_vars(leaves, ps, only_inputs=lazy)
    # the lifted values become parameters of their own
    lp = _placeholders(lifted, "c")
    leaves = _substitute(leaves, dict(zip(map(id, lifted), lp)))
    return Fn(name, ps + lp, leaves, lifted), spec


def _substitute(outs, repl):
    """outs with the Vars of repl (by id) replaced, rebuilding what reads them."""
    memo = dict(repl)

    def sub(v):
        k = id(v)
        if k in memo:
            return memo[k]
        stack = [(v, False)]
        while stack:  # post-order, iterative
            x, expanded = stack.pop()
            if id(x) in memo:
                continue
            if not expanded:
                stack.append((x, True))
                stack.extend((a, False) for a in x.args if id(a) not in memo)
                continue
            args = tuple(memo[id(a)] for a in x.args)
            if all(a is b for a, b in zip(args, x.args)):
                memo[id(x)] = x
            else:
                y = Var(x.op, args, x.attrs, x.data, x.name)
                y.src = x.src
                memo[id(x)] = y
        return memo[k]

    return [sub(o) for o in outs]


def _fresh(kind):
    return "%s_%d" % (kind, next(_ids))


def _node(op, args, attrs, n):
    """The n results of one control run: Vars that differ only in :out."""
    outs = []
    for k in range(n):
        a = list(attrs) + ([("out", k)] if k else [])
        outs.append(Var(op, args, a))
    return outs


def _scalar_pred(p):
    p = as_var(p)
    if len(p.type[1]) != 0:
        raise ValueError("the condition must be a scalar, not of shape %s" % (p.type[1],))
    return p


def cond(pred, true_fun, false_fun, *operands):
    """jax.lax.cond: true_fun(*operands) if pred else false_fun(*operands);
    only the branch taken runs. Both must return the same structure of
    the same types."""
    pred = _scalar_pred(pred)
    ops, spec = _flatten(list(operands))
    ft, st = _trace(lambda *a: true_fun(*_unflatten(spec, a)), ops, _fresh("cond_true"), lazy=True)
    fe, se = _trace(lambda *a: false_fun(*_unflatten(spec, a)), ops, _fresh("cond_false"), lazy=True)
    if st != se or len(ft.outs) != len(fe.outs):
        raise ValueError("cond: the branches return different structures (%d values and %d values)"
                         % (len(ft.outs), len(fe.outs)))
    # both branches take the same operands: each one's lifted values too
    ft2, fe2 = _pad(ft, fe)
    args = [pred] + ops + ft.lifted + fe.lifted
    return _unflatten(st, _node("cond", args, [("then", ft2), ("else", fe2)], len(ft.outs)))


def _pad(a, b):
    """Two functions on the operands + a.lifted + b.lifted: each ignores
    the other's lifted values (parameters it does not read)."""
    na, nb = len(a.lifted), len(b.lifted)
    own_a = a.params[:len(a.params) - na]
    own_b = b.params[:len(b.params) - nb]
    extra_b_for_a = _placeholders(b.lifted, "d")
    extra_a_for_b = _placeholders(a.lifted, "e")
    fa = Fn(a.name, own_a + a.params[len(own_a):] + extra_b_for_a, a.outs, [])
    fb = Fn(b.name, own_b + extra_a_for_b + b.params[len(own_b):], b.outs, [])
    return fa, fb


def ifelse(condition, then_branch, else_branch):
    """PyTensor's ifelse: then_branch if condition else else_branch, where
    the branches are values (a Var or a tuple/list of them) computed only
    when taken: each becomes a function of the graph inputs it reads."""
    pred = _scalar_pred(condition)
    lt, st = _flatten(then_branch)
    le, se = _flatten(else_branch)
    if st != se:
        raise ValueError("ifelse: the branches have different structures")
    ins = []
    for v in _free_vars(lt + le, [], only_inputs=True):
        if v not in ins:
            ins.append(v)
    ps = _placeholders(ins, "p")
    repl = dict(zip(map(id, ins), ps))
    ft = Fn(_fresh("ifelse_then"), ps, _substitute(lt, repl), [])
    fe = Fn(_fresh("ifelse_else"), ps, _substitute(le, repl), [])
    return _unflatten(st, _node("cond", [pred] + ins, [("then", ft), ("else", fe)], len(lt)))


def _loop_fns(cond_fun, body_fun, state, spec, tag):
    fc, _ = _trace(lambda *a: cond_fun(_unflatten(spec, a)), state, _fresh(tag + "_cond"))
    if len(fc.outs) != 1:
        raise ValueError("%s: the condition must return one scalar" % tag)
    fb, sb = _trace(lambda *a: body_fun(_unflatten(spec, a)), state, _fresh(tag + "_body"))
    if sb != spec or len(fb.outs) != len(state):
        raise ValueError("%s: the body must return the state's structure (%d values), it returns %d"
                         % (tag, len(state), len(fb.outs)))
    return fc, fb


def _loop(fc, fb, state, max_iters):
    """The loop over state + both functions' lifted values (carried unchanged)."""
    lifted = fc.lifted + [v for v in fb.lifted if v not in fc.lifted]
    n = len(state)
    # carried: state, then the lifted values; each function takes all of them
    fc2 = _carry_all(fc, n, lifted, with_body=False)
    fb2 = _carry_all(fb, n, lifted, with_body=True)
    maxa = "unbounded" if max_iters is None else int(max_iters)
    outs = _node("loop", state + lifted, [("cond", fc2), ("body", fb2), ("max", maxa)], n + len(lifted))
    return outs[:n]


def _carry_all(f, n, lifted, with_body):
    """f over (state[n], lifted...): its own lifted parameters where they are
    in `lifted`, placeholders it ignores for the others; a body also
    returns the lifted values unchanged."""
    own = f.params[:n]
    mine = dict(zip(map(id, f.lifted), f.params[n:]))
    extra = []
    for k, v in enumerate(lifted):
        m = mine.get(id(v))
        extra.append(m if m is not None else tensor("q%d" % k, *v.type))
    outs = f.outs + (extra if with_body else [])
    return Fn(f.name, own + extra, outs, [])


def while_loop(cond_fun, body_fun, init_val, max_iters=None):
    """jax.lax.while_loop: val = init_val; while cond_fun(val): val =
    body_fun(val). max_iters bounds the iterations (one more is a run-time
    error); None: unbounded, as in JAX."""
    state, spec = _flatten(init_val)
    if not state:
        raise ValueError("while_loop: the state has no values")
    fc, fb = _loop_fns(cond_fun, body_fun, state, spec, "while")
    return _unflatten(spec, _loop(fc, fb, state, max_iters))


def while_scan(cond_fun, body_fun, init_val, max_iters=None):
    """A while loop that records: val = init_val; while cond_fun(val):
    val, y = body_fun(val), each trip's y stacked along a new first axis
    (y may be a Var or a tuple/list of them, as scan's). Returns
    (final val, stacked ys); their first dim is a symbol bound to the trip
    count when the loop has run (PyTensor's scan with `until`). No
    gradient (a scan has one)."""
    state, spec = _flatten(init_val)
    if not state:
        raise ValueError("while_scan: the state has no values")
    n = len(state)
    fc, _ = _trace(lambda *a: cond_fun(_unflatten(spec, a)), state, _fresh("wscan_cond"))
    if len(fc.outs) != 1:
        raise ValueError("while_scan: the condition must return one scalar")
    yspec_box = []

    def bf(*a):
        res = body_fun(_unflatten(spec, a))
        if not isinstance(res, tuple) or len(res) != 2:
            raise ValueError("while_scan: the body must return (state, y)")
        nl, ns = _flatten(res[0])
        if ns != spec:
            raise ValueError("while_scan: the body must return the state's structure")
        yl, ysp = _flatten(res[1])
        if not yl:
            raise ValueError("while_scan: the body records no value (use while_loop)")
        yspec_box.append(ysp)
        return nl + yl

    fb, _ = _trace(bf, state, _fresh("wscan_body"))
    lifted = fc.lifted + [v for v in fb.lifted if v not in fc.lifted]
    fc2 = _carry_all(fc, n, lifted, with_body=False)
    # the body: the state, the lifted values unchanged, then the trip's values
    own = fb.params[:n]
    mine = dict(zip(map(id, fb.lifted), fb.params[n:]))
    extra = [mine.get(id(v)) if id(v) in mine else tensor("q%d" % k, *v.type) for k, v in enumerate(lifted)]
    fb2 = Fn(fb.name, own + extra, fb.outs[:n] + extra + fb.outs[n:], [])
    ny = len(fb.outs) - n
    maxa = "unbounded" if max_iters is None else int(max_iters)
    attrs = [("cond", fc2), ("body", fb2), ("max", maxa), ("stack", ny), ("trips", _fresh("trips"))]
    outs = _node("loop", state + lifted, attrs, n + len(lifted) + ny)
    return _unflatten(spec, outs[:n]), _unflatten(yspec_box[0], outs[n + len(lifted):])


def fori_loop(lower, upper, body_fun, init_val):
    """jax.lax.fori_loop: for i in range(lower, upper): val = body_fun(i, val).
    i is an i64 scalar. With Python int bounds it is a scan of upper - lower
    steps (so it has a gradient, as in JAX); with a Var bound, a while loop
    (unbounded)."""
    from .graph import cast, less, add
    if not isinstance(lower, Var) and not isinstance(upper, Var):
        trips = max(0, int(upper) - int(lower))

        def step(c, _):
            i, v = c
            return (add(i, 1), body_fun(i, v)), None

        (_, out), _ = scan(step, (as_var(int(lower)), init_val), None, length=trips)
        return out
    state, spec = _flatten(init_val)
    i0 = cast(as_var(lower), "i64")
    hi = cast(as_var(upper), "i64")
    full = [i0] + state

    def bf(v):
        new = body_fun(v[0], _unflatten(spec, v[1:]))
        nl, ns = _flatten(new)
        if ns != spec:
            raise ValueError("fori_loop: the body must return the state's structure")
        return [add(v[0], 1)] + nl

    fc, _ = _trace(lambda *a: less(a[0], hi), full, _fresh("fori_cond"))
    fb, _ = _trace(lambda *a: bf(list(a)), full, _fresh("fori_body"))
    outs = _loop(fc, fb, full, None)
    return _unflatten(spec, outs[1:])


def scan(f, init, xs, length=None):
    """jax.lax.scan: carry = init; for x in xs: carry, y = f(carry, x);
    returns (final carry, the ys stacked along a new first axis). xs may be
    a Var, a tuple/list of them, or None (then length steps of x = None)."""
    carry, cspec = _flatten(init)
    seqs, xspec = _flatten(xs)
    if not seqs and length is None:
        raise ValueError("scan: xs is None, so length is needed")
    slices = []
    for s in seqs:
        dt, shape = s.type
        if not shape:
            raise ValueError("scan: a sequence must have at least one dim")
        slices.append(tensor("s", dt, shape[1:]))
    yspec_box = []

    def body(*a):
        c = _unflatten(cspec, a[:len(carry)])
        x = _unflatten(xspec, a[len(carry):]) if xspec is not None else None
        res = f(c, x)
        if not isinstance(res, (tuple, list)) or len(res) != 2:
            raise ValueError("scan: f must return (carry, y)")
        nc, ncs = _flatten(res[0])
        if ncs != cspec:
            raise ValueError("scan: f must return the carry's structure")
        ys, ysp = _flatten(res[1])
        yspec_box.append((ysp, len(ys)))
        return nc + ys

    proto = carry + slices
    fb, _ = _trace(lambda *a: body(*a), proto, _fresh("scan_body"))
    ysp, ny = yspec_box[0]
    # the closed-over values are the scan's consts: every step gets them whole
    nown, nl = len(carry), len(fb.lifted)
    params = fb.params[:nown] + fb.params[len(proto):] + fb.params[nown:len(proto)]
    fb2 = Fn(fb.name, params, fb.outs, [])
    attrs = [("body", fb2), ("carry", nown)]
    if nl:
        attrs.append(("consts", nl))
    if not seqs:
        attrs.append(("length", int(length)))
    k = nown
    res = _node("scan", carry + fb.lifted + seqs, attrs, nown + ny)
    return _unflatten(cspec, res[:nown]), _unflatten(ysp, res[k:])


def fn(pyfun=None, *, name=None):
    """@tl.fn: a function the optimizer sees as one function of the graph
    (traced once per operand types, called from everywhere it is used)."""
    def wrap(f):
        cache = {}
        base = check_name(name or f.__name__.strip("_") or "fn", "function name")

        def call(*args):
            leaves, spec = _flatten(list(args))
            key = (repr(spec), tuple(v.type for v in leaves))
            if key not in cache:
                fnobj, ospec = _trace(lambda *a: f(*_unflatten(spec, a)), leaves, _fresh(base))
                cache[key] = (fnobj, ospec)
            fnobj, ospec = cache[key]
            # the closed-over values of the first trace (the same Vars each call)
            res = _node("call", leaves + fnobj.lifted, [("fn", fnobj)], len(fnobj.outs))
            return _unflatten(ospec, res)

        call.__name__ = f.__name__
        call.__doc__ = f.__doc__
        call.__wrapped__ = f
        return call

    return wrap(pyfun) if pyfun is not None else wrap
