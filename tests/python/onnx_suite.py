#!/usr/bin/python3
"""Runs the ONNX backend node tests (Debian's libonnx-testdata) with tlaloc.

    TLALOC_LIBRARY=build/libtlaloc.so /usr/bin/python3 tests/python/onnx_suite.py [--write] [-v] [NAME...]

Each model is imported (tlaloc.onnx), run by tlaloc on every
test_data_set_*, and compared with the expected outputs: same dtype, same
shape, numpy.testing.assert_allclose(rtol=1e-4, atol=1e-5) (NaNs must match).
Prints passed/failed/unsupported per op; --write stores the passing set in
tests/python/onnx_passing.txt. A few stored expectations are known wrong:
they are recomputed from the operator's definition (WRONG_EXPECTED) or
compared with the rounding they were stored with (ROUNDED_EXPECTED).
"""
import collections
import glob
import os
import sys
import traceback

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "..", "python"))

import numpy as np  # noqa: E402
import onnx  # noqa: E402
from onnx import numpy_helper  # noqa: E402

import tlaloc.onnx as tlo  # noqa: E402

RTOL, ATOL = 1e-4, 1e-5
PASSING_FILE = os.path.join(HERE, "onnx_passing.txt")
# Models whose ops are all supported but which fail because of a real tlaloc
# bug: name -> reason. The pytest test marks these xfail('KNOWN BUG: ...').
KNOWN_BUGS = {}


def _window(a, periodic):
    """The window formula of the ONNX spec, in float64 with numpy's pi."""
    def f(ins, exp):
        size = int(np.asarray(ins[0]).ravel()[0])
        n = np.arange(size, dtype=np.float64)
        N = size if periodic else size - 1
        w = a[0] - a[1] * np.cos(2 * np.pi * n / N) + a[2] * np.cos(4 * np.pi * n / N)
        return [w.astype(exp[0].dtype)]
    return f


# Models whose stored expected outputs are wrong beyond the tolerance: the
# window tests of onnx 1.12 were generated with an approximation of pi
# (github.com/onnx/onnx/issues/5316, fixed later by regenerating the data).
# For these the expected output is recomputed from the operator's
# definition: name -> f(inputs, stored outputs) -> outputs.
WRONG_EXPECTED = {}
for _k, _a in (("hann", (0.5, 0.5, 0.0)), ("hamming", (25 / 46, 21 / 46, 0.0)),
               ("blackman", (0.42, 0.5, 0.08))):
    for _sym in ("", "_symmetric"):
        for _exp in ("", "_expanded"):
            WRONG_EXPECTED["test_%swindow%s%s" % (_k, _sym, _exp)] = _window(_a, not _sym)


def _adam_multiple(ins, exp):
    """test_adam_multiple's node leaves epsilon at its default (1e-6), but its
    expected outputs were generated with epsilon=1e-2: Adam's formulas of
    the spec, with the node's attributes (alpha 0.95, beta 0.85, norm 1e-3)."""
    r, t = float(ins[0]), int(ins[1])
    a, b, norm, eps = 0.95, 0.85, 0.001, 1e-6
    xs, gs, vs, hs = ins[2:4], ins[4:6], ins[6:8], ins[8:10]
    radj = r * np.sqrt(1 - b ** t) / (1 - a ** t) if t > 0 else r
    xo, vo, ho = [], [], []
    for x, g, v, h in zip(xs, gs, vs, hs):
        g = norm * x.astype(np.float64) + g
        vn = a * v + (1 - a) * g
        hn = b * h + (1 - b) * g * g
        xo.append((x - radj * vn / (np.sqrt(hn) + eps)).astype(np.float32))
        vo.append(vn.astype(np.float32))
        ho.append(hn.astype(np.float32))
    return xo + vo + ho


WRONG_EXPECTED["test_adam_multiple"] = _adam_multiple

# Models whose expected outputs are stored rounded (the GridSample tests
# hard-code PyTorch's values to 4 decimals): name -> the absolute tolerance
# that rounding needs (half a unit of the last decimal, plus float32 noise).
ROUNDED_EXPECTED = {"test_gridsample%s" % s: 5.01e-5 for s in (
    "", "_aligncorners_true", "_bicubic", "_bilinear", "_border_padding", "_nearest",
    "_reflection_padding", "_zeros_padding")}
# The RoiAlign tests' outputs are also hard-coded to 4 decimals, and
# aligned_false's differ by up to 8.4e-5 from the algorithm evaluated in
# float64 (an independent numpy loop agrees with tlaloc to 1e-7): 1e-4.
ROUNDED_EXPECTED.update({"test_roialign_aligned_false": 1e-4, "test_roialign_aligned_true": 1e-4})


def node_dir():
    for d in ("/usr/share/libonnx-testdata/data/node",):
        if os.path.isdir(d):
            return d
    return None


def _read_tensor(path):
    t = onnx.TensorProto()
    with open(path, "rb") as f:
        t.ParseFromString(f.read())
    return numpy_helper.to_array(t)


def run_model(mdir):
    """('pass'|'fail'|'unsupported', op or None, message)."""
    path = os.path.join(mdir, "model.onnx")
    try:
        model = onnx.load(path)
    except Exception as e:
        return "unsupported", None, "onnx.load: %s" % e
    ops = sorted({n.op_type for n in model.graph.node})
    sets = sorted(glob.glob(os.path.join(mdir, "test_data_set_*")))
    if not sets:
        return "unsupported", None, "no test data"
    init_names = {t.name for t in model.graph.initializer}
    in_names = [i.name for i in model.graph.input if i.name not in init_names]
    frozen_any = set()
    for s in sets:
        try:
            ins = [_read_tensor(p) for p in sorted(glob.glob(os.path.join(s, "input_*.pb")),
                                                    key=_idx)]
            exp = [_read_tensor(p) for p in sorted(glob.glob(os.path.join(s, "output_*.pb")),
                                                    key=_idx)]
        except Exception as e:
            return "unsupported", None, "test data not tensors: %s" % e
        name = os.path.basename(os.path.normpath(mdir))
        if name in WRONG_EXPECTED:
            exp = WRONG_EXPECTED[name](ins, exp)
        # Inputs that fix shapes (Reshape's shape, Slice's starts, ...) are
        # frozen to this data set's values: tlaloc graphs have static shapes.
        frozen = {}
        while True:
            try:
                g = tlo.load(model, static_inputs=frozen)
                break
            except tlo.UnsupportedOnnx as e:
                nm = getattr(e, "needs_static", None)
                if nm in in_names and nm not in frozen and in_names.index(nm) < len(ins):
                    frozen[nm] = ins[in_names.index(nm)]
                    continue
                return "unsupported", e.op, str(e)
            except Exception as e:  # a tlaloc type error on a supported op: a failure
                return "fail", None, "import: %s: %s" % (type(e).__name__, e)
        frozen_idx = {in_names.index(n) for n in frozen}
        frozen_any.update(frozen)
        try:
            f = tlo.function(g)
        except Exception as e:
            return "fail", None, "compile: %s: %s\n%s" % (type(e).__name__, e, g.text[:2000])
        try:
            got = f(*[np.require(a, requirements='C') for k, a in enumerate(ins)
                       if k not in frozen_idx])
        except Exception as e:
            return "fail", None, "run: %s: %s" % (type(e).__name__, e)
        if len(got) != len(exp):
            return "fail", None, "%d outputs, expected %d" % (len(got), len(exp))
        for k, (a, b) in enumerate(zip(got, exp)):
            if a.dtype != b.dtype:
                return "fail", None, "output %d: dtype %s, expected %s" % (k, a.dtype, b.dtype)
            if a.shape != b.shape:
                return "fail", None, "output %d: shape %s, expected %s" % (k, a.shape, b.shape)
            try:
                if b.dtype.kind in "fc":
                    np.testing.assert_allclose(a, b, rtol=RTOL, atol=ROUNDED_EXPECTED.get(name, ATOL),
                                               equal_nan=True)
                else:
                    np.testing.assert_array_equal(a, b)
            except AssertionError as e:
                return "fail", None, "output %d: %s" % (k, str(e).strip()[:800])
    del ops
    # A pass that needed frozen inputs is reported as such: the graph is
    # specialised to this data set's value of those inputs.
    return "pass", None, ("frozen: " + ", ".join(sorted(frozen_any))) if frozen_any else ""


def _idx(p):
    b = os.path.basename(p)
    return int(b.split("_")[1].split(".")[0])


def model_ops(mdir):
    try:
        m = onnx.load(os.path.join(mdir, "model.onnx"))
        return sorted({n.op_type for n in m.graph.node})
    except Exception:
        return []


def run_all(names=None, verbose=False):
    d = node_dir()
    results = {}
    for mdir in sorted(glob.glob(os.path.join(d, "test_*"))):
        name = os.path.basename(mdir)
        if names and name not in names:
            continue
        try:
            results[name] = run_model(mdir) + (model_ops(mdir),)
        except Exception as e:
            results[name] = ("fail", None, "crash: %s\n%s" % (e, traceback.format_exc()),
                             model_ops(mdir))
        if verbose and results[name][0] != "pass":
            print("%-60s %s %s" % (name, results[name][0], results[name][2][:300]))
    return results


def table(results):
    per = collections.defaultdict(lambda: [0, 0, 0])
    idx = {"pass": 0, "fail": 1, "unsupported": 2}
    for name, (st, op, msg, ops) in results.items():
        key = ops[0] if len(ops) == 1 else ("(multi-op) " + (op or (ops[0] if ops else "?")))
        if name.endswith("_expanded"):
            key = "(expanded) " + name[5:].split("_")[0]
        per[key][idx[st]] += 1
    lines = ["| op | passed | failed | unsupported |", "|---|---|---|---|"]
    for k in sorted(per):
        p, f, u = per[k]
        lines.append("| %s | %d | %d | %d |" % (k, p, f, u))
    tot = collections.Counter(r[0] for r in results.values())
    n = len(results)
    lines.append("| **total (%d models)** | %d | %d | %d |" % (n, tot["pass"], tot["fail"],
                                                              tot["unsupported"]))
    return "\n".join(lines)


def main(argv):
    write = "--write" in argv
    verbose = "-v" in argv
    names = [a for a in argv if not a.startswith("-")]
    res = run_all(names or None, verbose)
    print(table(res))
    tot = collections.Counter(r[0] for r in res.values())
    n = len(res)
    print("supported (pass+fail): %d/%d = %.1f%%; passing %d = %.1f%%"
          % (tot["pass"] + tot["fail"], n, 100.0 * (tot["pass"] + tot["fail"]) / max(n, 1),
             tot["pass"], 100.0 * tot["pass"] / max(n, 1)))
    nfrozen = sum(1 for r in res.values() if r[0] == "pass" and r[2].startswith("frozen: "))
    print("passing with every input taken at run time: %d = %.1f%%; passing with some inputs "
          "frozen to the data set's values (shape/axis/count parameters): %d"
          % (tot["pass"] - nfrozen, 100.0 * (tot["pass"] - nfrozen) / max(n, 1), nfrozen))
    blockers = collections.Counter(r[1] or "(other: dtype/shape/inputs)" for r in res.values()
                                   if r[0] == "unsupported")
    print("unsupported, by blocking op:", ", ".join("%s %d" % kv for kv in blockers.most_common()))
    if write:
        with open(PASSING_FILE, "w") as f:
            for k in sorted(res):
                if res[k][0] == "pass":
                    f.write(k + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
