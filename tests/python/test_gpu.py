"""device= in tl.function: "gpu-sim" runs the GPU backend's kernels on the
host's emulator (it must agree with the interpreter), "gpu" the GPU itself
(TlalocError naming what is missing on a machine without one), "auto" the
CPU or the GPU per call from the cost model, "cpu" the LLVM backend."""
import numpy as np
import pytest

import tlaloc as tl
from tlaloc import _lib


def _graph():
    x = tl.tensor("x", "f32", ("n", 37))
    return [x], [tl.softmax(tl.exp(x) * 0.5, axis=1), tl.sum(x, axis=0)]


def test_gpu_sim_agrees_with_the_interpreter():
    ins, outs = _graph()
    x = np.random.default_rng(3).standard_normal((50, 37)).astype(np.float32)
    want = tl.function(ins, outs, engine="interp")(x)
    f = tl.function(ins, outs, device="gpu-sim")
    assert f.stats["engine"] == "gpu-sim"
    for got, ref in zip(f(x), want):
        np.testing.assert_allclose(got, ref, rtol=1e-4, atol=1e-6)
    assert f.stats["compile"]["kernels"] >= 2


def test_gpu_without_a_gpu_says_so():
    ins, outs = _graph()
    if "gpu" in _lib.engines():
        try:
            f = tl.function(ins, outs, device="gpu")
        except tl.TlalocError as e:
            assert "gpu: no " in str(e)  # no CUDA driver, or no GPU
            assert e.status == 5  # TLALOC_BACKEND_FAILED, not bad input
        else:
            x = np.ones((4, 37), np.float32)
            ref = tl.function(ins, outs, engine="interp")(x)
            for got, want in zip(f(x), ref):
                np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-6)


def test_auto_and_cpu_devices():
    ins, outs = _graph()
    x = np.ones((8, 37), np.float32)
    ref = tl.function(ins, outs, engine="interp")(x)
    for dev in ("auto", "cpu"):
        f = tl.function(ins, outs, device=dev)
        assert f.stats["engine"] == ("auto" if dev == "auto" else "llvm")
        for got, want in zip(f(x), ref):
            np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)
    # a tiny call stays on the CPU, and auto says what it predicted
    f = tl.function(ins, outs, device="auto")
    f(x)
    st = f.compile_stats()
    assert st["device"] == "cpu" and st["predicted_cpu_us"] < st["predicted_gpu_us"]


def test_bad_input_status():
    """A graph the engine cannot take is bad input (status 2)."""
    with pytest.raises(tl.TlalocError) as e:
        _lib.Graph("(graph g (in x f32 [4]) (out y (frob x)))", "<t>")
    assert e.value.status == 2


def test_device_argument_checked():
    x = tl.tensor("x", "f32", (3,))
    with pytest.raises(ValueError, match="device="):
        tl.function([x], x + 1, device="tpu")
    with pytest.raises(ValueError, match="name different engines"):
        tl.function([x], x + 1, engine="interp", device="gpu")


def test_c_api_device_field():
    """tlaloc_compile_options.device picks the engine of that place."""
    import ctypes
    g = _lib.Graph("(graph g (in x f32 [4]) (out y (exp x)))", "<t>")
    lib = g._lib
    for dev, engine, ok in (("gpu-sim", "gpu-sim", True), ("cpu", "llvm", True), ("tpu", None, False)):
        opts = _lib._CompileOptions()
        opts.device = dev.encode()
        p, err = ctypes.c_void_p(), ctypes.c_void_p()
        st = lib.tlaloc_compile(g._g, ctypes.byref(opts), ctypes.byref(p), ctypes.byref(err))
        msg = _lib.take_string(lib, err.value) if err.value else ""
        assert (st == 0) == ok, msg
        if ok:
            import json
            assert json.loads(_lib.take_string(lib, lib.tlaloc_program_stats(p.value)))["engine"] == engine
            lib.tlaloc_program_free(p.value)
        else:
            assert "device 'tpu'" in msg
