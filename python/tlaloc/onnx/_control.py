"""Control flow as tlaloc's own (docs/design.md, "Functions and control
flow"): If is a cond (only the branch taken runs; a static condition just
imports that branch), Loop a while loop, or a scan when it has scan outputs,
a static trip count and a condition that stays true (the body passes its
condition through), else a while loop whose scan outputs are its per-trip
results (tl.while_scan: their length is the trip count, bound when it has
run), Scan a scan (Scan-8: a map over its batch axis of a scan). Each body
is imported once, as a function (OnnxGraph._inline on the trace's
placeholders). A body that needs its iteration number where a value must
be static at import is unrolled by importing the body once per
iteration, when the trip count and condition are static (a Slice whose
start is the iteration number and whose end is that plus a constant is
not such a body: it is a take, _tensor._dynamic_slice).
"""
import numpy as np

from .. import control as _c
from .. import graph as _g
from ._core import UnsupportedOnnx, _need, _opt, _reg, _ty
from ._helpers import _axis, _sval


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
    cb = _g.reshape(_g.cast(cond, "bool"), ())
    a = m._inline(at["then_branch"], [], op)[0]  # typed here, to name a mismatch
    b = m._inline(at["else_branch"], [], op)[0]
    if len(a) != len(b):
        raise UnsupportedOnnx("%s: branches have %d and %d outputs" % (op, len(a), len(b)), op)
    for x, y in zip(a, b):
        if _ty(x) != _ty(y):
            raise UnsupportedOnnx("%s: branch outputs %s and %s differ (a run-time condition "
                                  "needs the same type)" % (op, _ty(x), _ty(y)), op)
    return list(_c.cond(cb, lambda: tuple(m._inline(at["then_branch"], [], op)[0]),
                        lambda: tuple(m._inline(at["else_branch"], [], op)[0])))


@_reg("Loop", body=None)
def _loop(m, node, ins, at):
    """A while loop over (i, cond, state...): while i < M and cond, the body
    gives (cond, state..., scan outputs...). With scan outputs it is a scan
    of M steps when M is static and the condition stays true; otherwise a
    loop whose per-trip results are stacked (:stack), their length bound
    when it has run; unrolled only when the body needs i static (a value
    that must be known at import) and M and the condition are."""
    op = "Loop"
    body = at["body"]
    state = [x for x in ins[2:]]
    if any(v is None for v in state):
        raise UnsupportedOnnx("%s: an empty loop-carried input" % op, op)
    nstate = len(state)
    nscan = len(body.output) - 1 - nstate
    M, C = _opt(ins, 0), _opt(ins, 1)
    if M is None and C is None:
        raise UnsupportedOnnx("%s: neither a trip count nor a condition (infinite loop)" % op, op)
    if nscan:
        res = _loop_as_scan(m, node, ins, at, nstate)
        if res is None:
            try:
                res = _loop_stacked(m, node, ins, at, nstate)
            except UnsupportedOnnx:
                res = None
        return res if res is not None else _loop_unrolled(m, node, ins, at)
    trips, i0, c0, go = _loop_head(m, node, ins)

    def step(s):
        i, c = s[0], s[1]
        outs = m._inline(body, [i, c] + list(s[2:]), op)[0]
        return (_g.add(i, 1), _g.reshape(_g.cast(outs[0], "bool"), ())) + tuple(outs[1:1 + nstate])

    res = _c.while_loop(go, step, (i0, c0) + tuple(state), max_iters=trips)
    return list(res[2:])


def _loop_head(m, node, ins):
    """A Loop's (i, cond) as a while loop's: the static trip count (the
    :max bound, or None), i's and cond's start, and the condition
    `cond and i < M` over the state (i, cond, ...)."""
    M, C = _opt(ins, 0), _opt(ins, 1)
    trips = None
    if M is not None:
        try:
            trips = int(_sval(m._static(node.input[0], "Loop", "M"), "Loop", "M"))
        except UnsupportedOnnx:
            trips = None
    Mv = _g.reshape(_g.cast(M, "i64"), ()) if M is not None else None
    i0 = _g.constant(np.array(0, np.int64))
    c0 = _g.reshape(_g.cast(C, "bool"), ()) if C is not None else _g.constant(np.array(True))

    def go(s):
        i, c = s[0], s[1]
        return _g.logical_and(c, _g.less(i, Mv)) if Mv is not None else c

    return trips, i0, c0, go


def _passes_condition(body):
    """The body's condition output is its condition input (directly or
    through Identity): the loop runs its whole trip count."""
    src, want = body.output[0].name, body.input[1].name
    for _ in range(len(body.node) + 1):
        if src == want:
            return True
        prod = [n for n in body.node if src in n.output]
        if len(prod) != 1 or prod[0].op_type != "Identity":
            return False
        src = prod[0].input[0]
    return False


def _loop_as_scan(m, node, ins, at, nstate):
    """A Loop with scan outputs, a static trip count M and a condition that
    stays true, as a scan of M steps carrying (i, state...): its scan
    outputs are the scan's stacked ys (M = 0: empty, typed by the body).
    None when it is not such a loop, or the body needs i static (then the
    caller unrolls it)."""
    op = "Loop"
    body = at["body"]
    M, C = _opt(ins, 0), _opt(ins, 1)
    if M is None or not _passes_condition(body):
        return None
    try:
        trips = int(_sval(m._static(node.input[0], op, "M"), op, "M"))
        c = True if C is None else bool(_sval(m._static(node.input[1], op, "cond"), op, "cond"))
    except UnsupportedOnnx:
        return None
    if not c:
        trips = 0
    state = list(ins[2:])
    c0 = _g.constant(np.array(True))

    def step(carry, _):
        i, s = carry[0], carry[1:]
        outs = m._inline(body, [i, c0] + list(s), op)[0]
        return (_g.add(i, 1),) + tuple(outs[1:1 + nstate]), tuple(outs[1 + nstate:])

    try:
        carry, ys = _c.scan(step, (_g.constant(np.array(0, np.int64)),) + tuple(state), None, length=trips)
    except UnsupportedOnnx:
        return None
    return list(carry[1:]) + list(ys)


def _loop_stacked(m, node, ins, at, nstate):
    """A Loop with scan outputs as a while loop over (i, cond, state...)
    whose per-trip results (the scan outputs) are stacked: their length is
    the trip count, known when the loop has run (tl.while_scan)."""
    op = "Loop"
    body = at["body"]
    trips, i0, c0, go = _loop_head(m, node, ins)

    def step(s):
        i, c = s[0], s[1]
        outs = m._inline(body, [i, c] + list(s[2:]), op)[0]
        nxt = (_g.add(i, 1), _g.reshape(_g.cast(outs[0], "bool"), ())) + tuple(outs[1:1 + nstate])
        return nxt, tuple(outs[1 + nstate:])

    res, ys = _c.while_scan(go, step, (i0, c0) + tuple(ins[2:]), max_iters=trips)
    return list(res[2:]) + list(ys)


def _loop_unrolled(m, node, ins, at):
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
    """A scan over each scan input's axis (reversed for direction 1), scan
    outputs stacked likewise. Scan-8 (a leading batch axis) is a map over
    the batch of such a scan; its sequence_lens is refused."""
    op = "Scan"
    body = at["body"]
    K = int(at["num_scan_inputs"])
    if m.opset < 9:
        if _opt(ins, 0) is not None:
            raise UnsupportedOnnx("Scan-8 with sequence_lens", op)
        # a map over the batch axis (a scan without carries) of a scan
        # over each batch element's sequences (their axis 0 once the batch
        # is taken)
        xs = ins[1:]
        ni = len(xs) - K
        nout = len(body.output) - ni
        dirs = list(at["directions"] or [0] * K)

        def per_batch(_, x):
            return (), tuple(_scan_real(m, op, body, list(x), K, [0] * K, dirs, [0] * nout, [0] * nout))

        _, ys = _c.scan(per_batch, (), tuple(xs))
        return list(ys)
    ni = len(ins) - K
    iax = list(at["scan_input_axes"] or [0] * K)
    idir = list(at["scan_input_directions"] or [0] * K)
    nout = len(body.output) - ni
    oax = list(at["scan_output_axes"] or [0] * nout)
    odir = list(at["scan_output_directions"] or [0] * nout)
    return _scan_real(m, op, body, list(ins), K, iax, idir, oax, odir)


def _move_axis(v, src, dst, rank):
    """v with axis src moved to position dst."""
    if src == dst:
        return v
    perm = [a for a in range(rank) if a != src]
    perm.insert(dst, src)
    return _g.transpose(v, perm)


def _reverse0(v):
    return _g.Var("slice", (v,), [("axis", 0), ("step", -1)])


def _scan_real(m, op, body, xs, K, iax, idir, oax, odir):
    """A tlaloc scan: each scan input's axis moved first (reversed for
    direction 1); the stacked outputs moved to their axis (reversed)."""
    ni = len(xs) - K
    state, seqs = xs[:ni], xs[ni:]
    xs0 = []
    for v, a, d in zip(seqs, iax, idir):
        r = m._rank(v)
        u = _move_axis(v, _axis(a, r, op), 0, r)
        xs0.append(_reverse0(u) if d else u)
    T = {m._shape(v, op)[0] for v in xs0}
    if len(T) > 1:
        raise UnsupportedOnnx("%s: scan inputs of different lengths" % op, op)

    def f(c, x):
        outs = m._inline(body, list(c) + list(x), op)[0]
        return tuple(outs[:ni]), tuple(outs[ni:])

    carry, ys = _c.scan(f, tuple(state), tuple(xs0))
    res = list(carry)
    for k, y in enumerate(ys):
        if odir[k]:
            y = _reverse0(y)
        r = m._rank(y)
        res.append(_move_axis(y, 0, _axis(oax[k], r, op), r))
    return res
