"""The recurrent layers RNN, GRU and LSTM, unrolled over the (static)
sequence length, with their activation functions.
"""
import numpy as np

from .. import graph as _g
from ._core import UnsupportedOnnx, _need, _opt, _reg
from ._helpers import _attr_str, _keep, _sc


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
