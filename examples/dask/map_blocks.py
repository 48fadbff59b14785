"""A compiled tlaloc function as the task of a distributed engine: dask.

The function is built and compiled here, then dask ships it to worker
processes of a dask.distributed LocalCluster, which run it on the chunks of
a dask array. A Function pickles as its optimized graph and options;
each worker compiles it once (a compile-cache lookup when the workers share
the cache, as they do on one machine) and then runs it per chunk.

    PYTHONPATH=python python3 examples/dask/map_blocks.py [N] [CHUNK]

prints the result's agreement with numpy and the times; exit 1 on a
mismatch. Needs python3-dask and python3-distributed (Debian)."""
import sys
import time

import numpy as np


def model():
    """A numerically awkward elementwise model: softplus written naively
    (log(1 + exp(x)) overflows for x > 88 in f32) and a gate. tlaloc's
    rules rewrite the naive form into the stable one."""
    import tlaloc as tl
    x = tl.tensor("x", "f32", ("n",))
    y = tl.log(1 + tl.exp(x)) * tl.tanh(0.5 * x) + 0.25 * x * x
    return tl.function([x], y)


def reference(x):
    x = x.astype(np.float64)
    return (np.logaddexp(0, x) * np.tanh(0.5 * x) + 0.25 * x * x).astype(np.float32)


def main(n=4_000_000, chunk=500_000, workers=2):
    import dask.array as da
    from dask.distributed import Client, LocalCluster

    f = model()
    rng = np.random.default_rng(0)
    host = (rng.standard_normal(n) * 40).astype(np.float32)  # |x| > 88 happens
    with LocalCluster(n_workers=workers, threads_per_worker=1, processes=True,
                      dashboard_address=None) as cluster, Client(cluster) as client:
        arr = da.from_array(host, chunks=chunk)
        t0 = time.perf_counter()
        got = arr.map_blocks(f, dtype=np.float32).compute()  # first: ships f, compiles on workers
        t1 = time.perf_counter()
        got2 = arr.map_blocks(f, dtype=np.float32).compute()
        t2 = time.perf_counter()
        ref_d = arr.map_blocks(reference, dtype=np.float32).compute()
        t3 = time.perf_counter()
    t4 = time.perf_counter()
    ref = reference(host)
    t5 = time.perf_counter()
    ok = np.all(np.isfinite(got)) and np.allclose(got, ref, rtol=1e-5, atol=1e-5) \
        and np.array_equal(got, got2) and np.allclose(ref_d, ref)
    print("dask map_blocks over %d chunks of %d on %d worker processes: %s"
          % (n // chunk, chunk, workers, "agrees with numpy" if ok else "MISMATCH"))
    print("  tlaloc first pass (ships and compiles): %.3f s; second pass: %.3f s; "
          "the numpy model through dask: %.3f s; numpy here, one process: %.3f s"
          % (t1 - t0, t2 - t1, t3 - t2, t5 - t4))
    return 0 if ok else 1


if __name__ == "__main__":
    args = [int(a) for a in sys.argv[1:3]]
    sys.exit(main(*args))
