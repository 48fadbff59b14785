"""Control flow: If (the branch taken when the condition is static, else
both and a where), Loop and Scan unrolled by importing the body once per
iteration (OnnxGraph._inline).
"""
import numpy as np

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
