"""The ONNX "light" vision models (tests/data/onnx-light, a copy of the ONNX
backend test data's light/ folder; TLALOC_ONNX_LIGHT=DIR reads another):
full network topologies whose float weights are ConstantOfShape nodes, with
the expected output of the ONNX reference on the backend runner's dummy
input.

Each model is imported, then run twice through the Python package: by the
interpreter (engine="interp") and optimised + compiled (rules=True: the
default rules and limits, then the LLVM backend through tlaloc_compile and
tlaloc_program_run), and both are compared with the expected output. The
slow cases run only with TLALOC_SLOW_TESTS=1 (their times on a loaded
2-core machine are noted).

With constant weights every class gets the same logit, so the expected
output of a model ending in Softmax is uniform (0.001) whatever the
convolutions compute -- provided equal logits come out bitwise equal:
squeezenet's are ~9.5e9, where one f32 ulp (1024) is a factor e^1024 in
the softmax (docs/backend.md, "Uniform operands"). Only densenet121 (no
Softmax) checks values. The random-weight test below makes up for that on
squeezenet: it compares the optimised, compiled program with the
interpreted original graph.
"""
import os

import numpy as np
import onnx
import pytest
from onnx import numpy_helper

import tlaloc.onnx as tlo

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.normpath(os.path.join(HERE, "..", ".."))
LIGHT = os.environ.get("TLALOC_ONNX_LIGHT", os.path.join(ROOT, "tests", "data", "onnx-light"))
SLOW = os.environ.get("TLALOC_SLOW_TESTS") == "1"
RTOL, ATOL = 1e-4, 1e-5

# name -> (interpreter seconds, optimise+compile+run seconds), measured on
# the loaded development machine; the second through the C API with a cold
# compile cache (load average ~4). None: not run that way (too slow).
MODELS = {
    "squeezenet": (1, 1),
    "shufflenet": (2, 3),
    "bvlc_alexnet": (5, 1),
    "zfnet512": (10, 1),
    "inception_v1": (16, 2),
    "inception_v2": (12, 3),
    "resnet50": (23, 3),
    "densenet121": (20, 4),
    "vgg19": (None, 4),  # 164 s interpreted: compiled only
}
DEFAULT_LIMIT_S = 5  # cases slower than this need TLALOC_SLOW_TESTS=1

needs_light = pytest.mark.skipif(not os.path.isdir(LIGHT),
                                 reason="onnx-light models not present (%s)" % LIGHT)


def _path(name):
    return os.path.join(LIGHT, "light_%s.onnx" % name)


def _expected(name):
    return numpy_helper.to_array(onnx.load_tensor(os.path.join(LIGHT, "light_%s_output_0.pb" % name)))


def _dummy_input(model):
    """The ONNX backend runner's input for light models: arange(n) / n."""
    inits = {t.name for t in model.graph.initializer}
    (vi,) = [i for i in model.graph.input if i.name not in inits]
    shape = [d.dim_value if d.HasField("dim_value") else 1 for d in vi.type.tensor_type.shape.dim]
    n = int(np.prod(shape))
    return (np.arange(n).reshape(shape) / n).astype(np.float32)


def _gate(seconds):
    if seconds is None:
        pytest.skip("not run this way: too slow")
    if seconds > DEFAULT_LIMIT_S and not SLOW:
        pytest.skip("slow (~%d s): set TLALOC_SLOW_TESTS=1" % seconds)


def _check(got, exp):
    assert got.dtype == exp.dtype
    np.testing.assert_allclose(got.reshape(exp.shape), exp, rtol=RTOL, atol=ATOL)


def _opt_and_run(g, x):
    """The model optimised (default rules, default limits) and compiled
    (tlaloc_compile), run on x (its bound initializers passed by the
    Function); returns the single output."""
    f = tlo.function(g, rules=True)
    assert f.stats["engine"] == "llvm" and f.stats["optimized"]
    assert f.stats["kernels"] > 0 and f.stats["compile_s"] > 0
    (y,) = f(x)
    return y


@needs_light
@pytest.mark.parametrize("name", sorted(MODELS))
def test_light_model_imports(name):
    """Every op of every light model is supported: the import succeeds."""
    m = onnx.load(_path(name))
    missing = sorted({n.op_type for n in m.graph.node} - set(tlo.SUPPORTED_OPS))
    assert not missing
    g = tlo.load(m)
    assert len(g.input_names) == 1 and len(g.output_names) == 1


@needs_light
@pytest.mark.parametrize("name", sorted(MODELS))
def test_light_model_interpreted(name):
    _gate(MODELS[name][0])
    m = onnx.load(_path(name))
    f = tlo.function(tlo.load(m), engine="interp")
    assert f.stats["engine"] == "interpreter"
    (y,) = f(_dummy_input(m))
    _check(y, _expected(name))


@needs_light
@pytest.mark.parametrize("name", sorted(MODELS))
def test_light_model_optimised_compiled(name):
    _gate(MODELS[name][1])
    m = onnx.load(_path(name))
    y = _opt_and_run(tlo.load(m), _dummy_input(m))
    _check(y, _expected(name))


def _with_random_weights(model, seed):
    """The model with each ConstantOfShape (the stripped weights) replaced by
    an initializer of random values of that shape."""
    rng = np.random.default_rng(seed)
    m = onnx.ModelProto()
    m.CopyFrom(model)
    consts = {t.name: numpy_helper.to_array(t) for t in m.graph.initializer}
    keep = []
    for n in m.graph.node:
        if n.op_type == "ConstantOfShape" and n.input[0] in consts:
            shape = [int(s) for s in consts[n.input[0]]]
            w = (rng.standard_normal(shape) * 0.1).astype(np.float32)
            m.graph.initializer.append(numpy_helper.from_array(w, n.output[0]))
        else:
            keep.append(n)
    del m.graph.node[:]
    m.graph.node.extend(keep)
    return m


@needs_light
def test_light_squeezenet_random_weights_compiled_matches_interpreter():
    """Differential, with non-trivial values: random weights, a random
    input; the optimised and compiled program against the interpreted
    original graph."""
    m = _with_random_weights(onnx.load(_path("squeezenet")), 0)
    g = tlo.load(m)
    x = np.random.default_rng(1).random((1, 3, 224, 224), np.float32)
    (ref,) = tlo.function(g, engine="interp")(x)
    assert ref.std() > 1e-4  # not the uniform output of constant weights
    y = _opt_and_run(g, x)
    np.testing.assert_allclose(y.reshape(ref.shape), ref, rtol=1e-3, atol=1e-6)
