#!/usr/bin/env python3
"""torch_bench.py OUTDIR - PyTorch's figures beside tlaloc's GPU kernels
(scripts/gpu-check.sh runs it after bench/gpu/launch_bench.c):

  softmax, log_softmax over 4096 x 32768 f32 (torch.softmax, eager);
  the fused chain tanh(exp(0.5 a)) * b + 1 at n = 10^8 (eager: one kernel
  per op), and torch.compile'd when that works there;
  a call of the chain at n = 1000 from host arrays to a host result
  (wall clock, the best of 5 x 100);
  attention t = 4096, d = 64: softmax(q k^T / 8) v in f32 (TF32 off, as
  tlaloc's kernels and cuBLAS calls use none), and
  scaled_dot_product_attention on the same inputs; tlaloc's output, written
  by launch_bench to OUTDIR, is compared with PyTorch's.

Times are CUDA events around 20 runs after warm-up. Prints lines "TORCH
name key=value ..."; "TORCH unavailable ..." when there is no torch or no
GPU (exit 0: the comparison is then missing, not failed)."""
import os
import sys


def main():
    out = sys.argv[1] if len(sys.argv) > 1 else "."
    try:
        import numpy as np
        import torch
    except ImportError as e:
        print("TORCH unavailable reason=\"%s\"" % e)
        return 0
    if not torch.cuda.is_available():
        print("TORCH unavailable reason=\"torch sees no GPU\"")
        return 0
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    dev = torch.device("cuda")
    print("TORCH version=%s device=\"%s\"" % (torch.__version__, torch.cuda.get_device_name(0)))

    def timed(f, reps=20):
        for _ in range(3):
            f()
        torch.cuda.synchronize()
        a, b = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        a.record()
        for _ in range(reps):
            f()
        b.record()
        torch.cuda.synchronize()
        return a.elapsed_time(b) / reps

    x = torch.rand(4096, 32768, device=dev) * 4 - 2
    for name, fn in (("softmax", torch.softmax), ("log_softmax", torch.log_softmax)):
        ms = timed(lambda: fn(x, -1))
        print("TORCH %s ms=%.4f gbs=%.1f" % (name, ms, 8 * x.numel() / (ms * 1e-3) / 1e9))
    del x

    n = 100_000_000
    a = torch.rand(n, device=dev) * 4 - 2
    b = torch.rand(n, device=dev) * 4 - 2

    def chain(a, b):
        return torch.tanh(torch.exp(a * 0.5)) * b + 1

    ms = timed(lambda: chain(a, b))
    print("TORCH chain ms=%.4f gbs=%.1f mode=eager" % (ms, 12 * n / (ms * 1e-3) / 1e9))
    try:
        cc = torch.compile(chain)
        ms = timed(lambda: cc(a, b))
        print("TORCH chain ms=%.4f gbs=%.1f mode=compiled" % (ms, 12 * n / (ms * 1e-3) / 1e9))
    except Exception as e:  # no compiler there: the eager figure stands
        print("TORCH chain compiled=unavailable reason=\"%s\"" % str(e).splitlines()[0][:120])
    # the loss of launch_bench: the mean of (a - b)^2, 8 bytes per element
    ms = timed(lambda: torch.mean((a - b) * (a - b)))
    print("TORCH loss ms=%.4f gbs=%.1f mode=eager" % (ms, 8 * n / (ms * 1e-3) / 1e9))
    ms = timed(lambda: torch.nn.functional.mse_loss(a, b))
    print("TORCH loss ms=%.4f gbs=%.1f mode=mse_loss" % (ms, 8 * n / (ms * 1e-3) / 1e9))
    del a, b

    # launch_bench's colsum: a bias's gradient, the sum over axis 0 of [2^20 64]
    x = torch.rand(1 << 20, 64, device=dev) * 4 - 2
    ms = timed(lambda: x.sum(0))
    print("TORCH colsum ms=%.4f gbs=%.1f mode=eager" % (ms, 4 * x.numel() / (ms * 1e-3) / 1e9))
    del x

    # a call's fixed costs, as launch_bench's "call" row: host arrays of
    # 1000 in, the chain (eager), the result back to the host
    import time
    ha = np.random.default_rng(1).uniform(-2, 2, 1000).astype(np.float32)
    hb = np.random.default_rng(2).uniform(-2, 2, 1000).astype(np.float32)

    def call():
        return chain(torch.from_numpy(ha).to(dev), torch.from_numpy(hb).to(dev)).cpu().numpy()

    for _ in range(10):
        call()
    best = float("inf")
    for _ in range(5):
        t0 = time.perf_counter()
        for _ in range(100):
            call()
        best = min(best, (time.perf_counter() - t0) / 100)
    print("TORCH call ms=%.4f call_us=%.2f mode=eager" % (best * 1e3, best * 1e6))

    paths = [os.path.join(out, "attention_%s.npy" % k) for k in "qkvo"]
    if all(os.path.exists(p) for p in paths):
        q, k, v, o = (torch.from_numpy(np.load(p)).to(dev) for p in paths)
    else:
        q, k, v = (torch.rand(4096, 64, device=dev) * 4 - 2 for _ in range(3))
        o = None

    def naive():
        return torch.softmax(q @ k.T / 8.0, -1) @ v

    ms = timed(naive, 10)
    flops = 4.0 * 4096 * 4096 * 64
    print("TORCH attention ms=%.4f tflops=%.2f mode=matmul-softmax-matmul" % (ms, flops / (ms * 1e-3) / 1e12))
    sdpa = torch.nn.functional.scaled_dot_product_attention
    ms = timed(lambda: sdpa(q[None, None], k[None, None], v[None, None]), 10)
    print("TORCH attention ms=%.4f tflops=%.2f mode=sdpa" % (ms, flops / (ms * 1e-3) / 1e12))
    if o is not None:
        ref = naive()
        err = ((o - ref).abs() / (ref.abs() + 1e-3)).max().item()
        print("TORCH attention_check max_rel_err=%.3g ok=%d" % (err, err < 1e-3))
        return 0 if err < 1e-3 else 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
