#!/usr/bin/env python3
"""train.py - training with tlaloc's gradients: logistic regression and a
two-layer MLP, each trained with Adam on synthetic data (docs/grad.md).

    python3 examples/train.py [--steps N] [--quiet]

The whole step - forward pass, tl.grad, and Adam's update of every parameter
and its two moment estimates - is one graph, compiled once by tl.function
(optimized by the rules of rules/); the Python loop only feeds the new
parameters back. Exits 1 unless each loss falls to under half its first
value."""
import argparse
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "python"))
if "TLALOC_LIBRARY" not in os.environ and os.path.exists(os.path.join(HERE, "..", "build", "libtlaloc.so")):
    os.environ["TLALOC_LIBRARY"] = os.path.join(HERE, "..", "build", "libtlaloc.so")

import numpy as np  # noqa: E402

import tlaloc as tl  # noqa: E402


def adam_step(params, loss, lr=0.01, b1=0.9, b2=0.999, eps=1e-8):
    """The update of Adam (Kingma and Ba 2015) as graph outputs: for each
    parameter p with moments m, v (new inputs) and the step count t (an
    input, for the bias corrections), the new p, m, v. Returns the moment
    inputs, t, and the outputs [p', m', v' per parameter]."""
    grads = tl.grad(loss, params)
    t = tl.tensor("t", "f32", ())
    moments, outs = [], []
    for p, g in zip(params, grads):
        m = tl.tensor("m_" + p.name, "f32", p.shape)
        v = tl.tensor("v_" + p.name, "f32", p.shape)
        m1 = b1 * m + (1 - b1) * g
        v1 = b2 * v + (1 - b2) * g * g
        mhat = m1 / (1 - b1 ** t)
        vhat = v1 / (1 - b2 ** t)
        outs += [p - lr * mhat / (tl.sqrt(vhat) + eps), m1, v1]
        moments += [m, v]
    return moments, t, outs


def train(name, params, data_inputs, loss, init, data, steps, quiet, lr=0.01):
    moments, t, outs = adam_step(params, loss, lr=lr)
    f = tl.function(params + moments + [t] + data_inputs, [loss] + outs, rules=True)
    state = [init[p.name] for p in params]
    mom = [np.zeros(init[p.name].shape, np.float32) for p in params for _ in (0, 1)]
    losses = []
    for step in range(1, steps + 1):
        out = f(*state, *mom, np.float32(step), *data)
        losses.append(float(out[0]))
        new = out[1:]
        state = [new[3 * i] for i in range(len(params))]
        mom = [new[3 * i + k] for i in range(len(params)) for k in (1, 2)]
        if not quiet and (step == 1 or step % max(1, steps // 5) == 0):
            print("%-7s step %4d  loss %.5f" % (name, step, losses[-1]))
    return losses


def logistic_regression(steps, quiet, rng):
    n, d = 2000, 20
    w_true = rng.normal(size=d)
    X = rng.normal(size=(n, d)).astype(np.float32)
    y = (X @ w_true + 0.5 * rng.normal(size=n) > 0).astype(np.float32)
    Xv, yv = tl.tensor("X", "f32", (n, d)), tl.tensor("y", "f32", (n,))
    w, b = tl.tensor("w", "f32", (d,)), tl.tensor("b", "f32", ())
    z = Xv @ w + b
    loss = tl.mean(tl.softplus(z) - yv * z)  # -log-likelihood, written stably
    init = {"w": np.zeros(d, np.float32), "b": np.float32(0)}
    return train("logreg", [w, b], [Xv, yv], loss, init, [X, y], steps, quiet, lr=0.05)


def mlp(steps, quiet, rng):
    n, d, h, k = 1024, 16, 64, 4
    X = rng.normal(size=(n, d)).astype(np.float32)
    centers = rng.normal(size=(k, d)) * 2
    labels = np.argmin(((X[:, None, :] - centers[None]) ** 2).sum(-1), axis=1)
    Y = np.eye(k, dtype=np.float32)[labels]
    Xv, Yv = tl.tensor("x", "f32", (n, d)), tl.tensor("y", "f32", (n, k))
    W1, b1 = tl.tensor("W1", "f32", (d, h)), tl.tensor("b1", "f32", (h,))
    W2, b2 = tl.tensor("W2", "f32", (h, k)), tl.tensor("b2", "f32", (k,))
    hidden = tl.relu(Xv @ W1 + b1)
    loss = -tl.mean(tl.sum(Yv * tl.log_softmax(hidden @ W2 + b2, axis=1), axis=1))
    init = {"W1": (rng.normal(size=(d, h)) / np.sqrt(d)).astype(np.float32), "b1": np.zeros(h, np.float32),
            "W2": (rng.normal(size=(h, k)) / np.sqrt(h)).astype(np.float32), "b2": np.zeros(k, np.float32)}
    return train("mlp", [W1, b1, W2, b2], [Xv, Yv], loss, init, [X, Y], steps, quiet)


def main(argv=None):
    ap = argparse.ArgumentParser()
    ap.add_argument("--steps", type=int, default=200)
    ap.add_argument("--quiet", action="store_true")
    a = ap.parse_args(argv)
    rng = np.random.default_rng(0)
    ok = True
    for run in (logistic_regression, mlp):
        losses = run(a.steps, a.quiet, rng)
        fell = losses[-1] < 0.5 * losses[0]
        ok &= fell
        print("%s: loss %.4f -> %.4f%s" % (run.__name__, losses[0], losses[-1], "" if fell else "  (did not fall)"))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
