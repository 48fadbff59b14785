#!/usr/bin/python3
"""Runs the ONNX backend node tests (Debian's libonnx-testdata) with tlaloc.

    TLALOC_LIBRARY=build/libtlaloc.so /usr/bin/python3 tests/python/onnx_suite.py [--write] [-v] [NAME...]

Each model is imported (tlaloc.onnx), run by tlaloc on every
test_data_set_*, and compared with the expected outputs: same dtype, same
shape, numpy.testing.assert_allclose(rtol=1e-4, atol=1e-5) (NaNs must match).
Prints passed/failed/unsupported per op; --write stores the passing set in
tests/python/onnx_passing.txt.
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
    for s in sets:
        try:
            ins = [_read_tensor(p) for p in sorted(glob.glob(os.path.join(s, "input_*.pb")),
                                                    key=_idx)]
            exp = [_read_tensor(p) for p in sorted(glob.glob(os.path.join(s, "output_*.pb")),
                                                    key=_idx)]
        except Exception as e:
            return "unsupported", None, "test data not tensors: %s" % e
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
                    np.testing.assert_allclose(a, b, rtol=RTOL, atol=ATOL, equal_nan=True)
                else:
                    np.testing.assert_array_equal(a, b)
            except AssertionError as e:
                return "fail", None, "output %d: %s" % (k, str(e).strip()[:800])
    del ops
    return "pass", None, ""


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
