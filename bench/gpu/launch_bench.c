/* launch_bench.c - the GPU benchmarks through AOT launchers, for a GPU
 * machine with no LLVM (scripts/gpu-check.sh builds it from what
 * scripts/gpu-prepare.sh carried): the launchers chain, loss, colsum,
 * softmax, log_softmax and attention (the graphs of bench/gpu compiled with --target ptx
 * --name NAME) linked into one program, plain C11 and libc.
 *
 *   cc -O2 -I DIR launch_bench.c DIR/chain_launch.c ... -ldl -lpthread -lm -o run && ./run OUTDIR
 *
 * Each kernel is timed by CUDA events on its stream (the mean over runs
 * after one untimed), on inputs already on the device; its bandwidth counts
 * the bytes it must move at least (inputs read once, outputs written once)
 * and is set against the device-to-device copy bandwidth measured in the
 * same run (bytes read plus written). Results are checked at scale (the
 * chain against C on a sample, softmax rows summing to 1, log_softmax rows'
 * log-sum-exp at 0, both against double precision on some rows); attention's
 * inputs and output go to OUTDIR as .npy for bench/gpu/torch_bench.py, which
 * compares them with PyTorch's. Lines "BENCH name key=value ..." are what
 * gpu-check.sh reads; exit 3 without a GPU, 1 when a check fails. */
#define _POSIX_C_SOURCE 199309L /* clock_gettime */
#include "attention.h"
#include "chain.h"
#include "colsum.h"
#include "log_softmax.h"
#include "loss.h"
#include "softmax.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static uint64_t rng = 88172645463325252ull;
static float uni(void) { /* xorshift64, uniform in [-2, 2) */
  rng ^= rng << 13;
  rng ^= rng >> 7;
  rng ^= rng << 17;
  return (float)((rng >> 40) * (4.0 / 16777216.0) - 2.0);
}

static tlaloc_tensor tensor(int rank, const int64_t *dims) {
  tlaloc_tensor t;
  memset(&t, 0, sizeof t);
  t.dtype = 3;
  t.rank = rank;
  int64_t n = 1;
  for (int i = 0; i < rank; i++) n *= t.dims[i] = dims[i];
  float *p = malloc((size_t)n * sizeof *p);
  for (int64_t i = 0; p && i < n; i++) p[i] = uni();
  t.data = p;
  return t;
}

static int64_t numel(const tlaloc_tensor *t) {
  int64_t n = 1;
  for (int i = 0; i < t->rank; i++) n *= t->dims[i];
  return n;
}

static void npy_write(const char *dir, const char *name, const tlaloc_tensor *t) {
  char path[4096], h[256];
  snprintf(path, sizeof path, "%s/%s.npy", dir, name);
  FILE *f = fopen(path, "wb");
  if (!f) return;
  int l = snprintf(h, sizeof h, "{'descr': '<f4', 'fortran_order': False, 'shape': (%lld, %lld), }",
                   (long long)t->dims[0], (long long)t->dims[1]);
  int pad = 64 - (10 + l + 1) % 64;
  fwrite("\x93NUMPY\x01\x00", 1, 8, f);
  unsigned short hl = (unsigned short)(l + pad + 1);
  fputc(hl & 255, f);
  fputc(hl >> 8, f);
  fwrite(h, 1, (size_t)l, f);
  for (int i = 0; i < pad; i++) fputc(' ', f);
  fputc('\n', f);
  fwrite(t->data, 4, (size_t)numel(t), f);
  fclose(f);
}

static int fails;

static void check(int ok, const char *what) {
  if (!ok) {
    printf("FAIL %s\n", what);
    fails++;
  }
}

/* row r of x (cols wide) against softmax or log_softmax in double */
static double row_error(const float *x, const float *y, int64_t r, int64_t cols, int lg) {
  const float *xr = x + r * cols, *yr = y + r * cols;
  double m = -INFINITY, s = 0, worst = 0;
  for (int64_t j = 0; j < cols; j++) m = xr[j] > m ? xr[j] : m;
  for (int64_t j = 0; j < cols; j++) s += exp(xr[j] - m);
  for (int64_t j = 0; j < cols; j++) {
    double want = lg ? xr[j] - m - log(s) : exp(xr[j] - m) / s;
    double e = fabs(yr[j] - want) / (fabs(want) + (lg ? 1 : 1e-30));
    if (e > worst) worst = e;
  }
  return worst;
}

int main(int argc, char **argv) {
  const char *out = argc > 1 ? argv[1] : ".";
  if (chain_init()) {
    printf("nogpu: %s\n", chain_error());
    return 3;
  }
  printf("BENCH device name=\"%s\"\n", chain_device_name());
  size_t cb = (size_t)1 << 30;
  double ct = chain_copy_time(cb, 20);
  double copy_bw = 2.0 * (double)cb / ct;
  double h2d = chain_h2d_time((size_t)256 << 20, 3);
  printf("BENCH copy bytes=%zu s=%.6g gbs=%.1f (device to device, read + written)\n", cb, ct, copy_bw / 1e9);
  printf("BENCH link gbs=%.2f (host to device, pageable memory, 256 MiB)\n", (256.0 * 1048576) / h2d / 1e9);

  /* the fused chain: y = tanh(exp(0.5 a)) b + 1 over 10^8 f32 */
  {
    int64_t n = 100000000;
    tlaloc_tensor in[2] = {tensor(1, &n), tensor(1, &n)}, y[1];
    int rc = chain_prepare(in);
    double ms = rc ? -1 : chain_time_exec(20);
    rc = rc ? rc : chain_fetch(y);
    check(rc == 0 && ms > 0, "chain ran");
    if (!rc) {
      const float *a = in[0].data, *b = in[1].data, *r = y[0].data;
      double worst = 0;
      for (int64_t i = 0; i < n; i += 9973) {
        /* relative to the terms' scale, |t b| + 1: the sum cancels to ~0
         * where t b is near -1, and f32 rounding of t b is relative to it */
        double tb = tanh(exp(0.5 * a[i])) * b[i];
        double e = fabs(r[i] - (tb + 1)) / (fabs(tb) + 1);
        if (e > worst) worst = e;
      }
      check(worst < 1e-5, "chain against C on every 9973rd element");
      double bw = 12.0 * (double)n / (ms * 1e-3);
      printf("BENCH chain ms=%.4f gbs=%.1f copy_ratio=%.3f check_err=%.2g (n = 10^8 f32, 12 bytes per element)\n", ms,
             bw / 1e9, bw / copy_bw, worst);
      free(y[0].data);
    } else {
      printf("BENCH chain failed: %s\n", chain_error());
    }
    free(in[0].data);
    free(in[1].data);
    chain_release();
  }

  /* a call's fixed costs, what the cost model's gpu_launch, gpu_sync and
   * link_latency stand for: the chain at n = 1000, its kernel alone (CUDA
   * events: mostly the launch) and whole calls (wall clock: two copies in,
   * the launch, the error word back and a copy out) */
  {
    int64_t n = 1000;
    tlaloc_tensor in[2] = {tensor(1, &n), tensor(1, &n)}, y[1];
    int rc = chain_prepare(in);
    double kms = rc ? -1 : chain_time_exec(200), best = INFINITY;
    for (int rep = 0; !rc && rep < 5; rep++) {
      struct timespec t0, t1;
      clock_gettime(CLOCK_MONOTONIC, &t0);
      for (int i = 0; i < 100 && !rc; i++) {
        rc = chain(in, y);
        if (!rc) free(y[0].data);
      }
      clock_gettime(CLOCK_MONOTONIC, &t1);
      double us = ((double)(t1.tv_sec - t0.tv_sec) * 1e6 + (double)(t1.tv_nsec - t0.tv_nsec) * 1e-3) / 100;
      if (us < best) best = us;
    }
    check(rc == 0 && kms > 0, "chain at n = 1000");
    if (!rc) printf("BENCH call ms=%.4f call_us=%.2f kernel_us=%.2f (chain at n = 1000: a whole call by the wall clock, its kernel by CUDA events)\n",
                     best * 1e-3, best, kms * 1e3);
    free(in[0].data);
    free(in[1].data);
    chain_release();
  }

  /* a loss, the mean of (a - b)^2 over 10^8 f32: a reduction to one value */
  {
    int64_t n = 100000000;
    tlaloc_tensor in[2] = {tensor(1, &n), tensor(1, &n)}, y[1];
    int rc = loss_prepare(in);
    double ms = rc ? -1 : loss_time_exec(20);
    rc = rc ? rc : loss_fetch(y);
    check(rc == 0 && ms > 0, "loss ran");
    if (!rc) {
      const float *a = in[0].data, *b = in[1].data;
      double s = 0;
      for (int64_t i = 0; i < n; i++) s += ((double)a[i] - b[i]) * ((double)a[i] - b[i]);
      double want = s / (double)n, got = *(const float *)y[0].data, err = fabs(got - want) / want;
      check(err < 1e-5, "loss against C in double");
      double bw = 8.0 * (double)n / (ms * 1e-3);
      printf("BENCH loss ms=%.4f gbs=%.1f copy_ratio=%.3f check_err=%.2g (mean of (a - b)^2, n = 10^8 f32, 8 bytes per "
             "element)\n",
             ms, bw / 1e9, bw / copy_bw, err);
      free(y[0].data);
    } else {
      printf("BENCH loss failed: %s\n", loss_error());
    }
    free(in[0].data);
    free(in[1].data);
    loss_release();
  }

  /* a bias's gradient, the sum over axis 0 of [2^20 64] f32 */
  {
    int64_t dims[2] = {1 << 20, 64};
    tlaloc_tensor in[1] = {tensor(2, dims)}, y[1];
    int rc = colsum_prepare(in);
    double ms = rc ? -1 : colsum_time_exec(20);
    rc = rc ? rc : colsum_fetch(y);
    check(rc == 0 && ms > 0, "colsum ran");
    if (!rc) {
      const float *x = in[0].data, *got = y[0].data;
      double worst = 0;
      for (int64_t j = 0; j < dims[1]; j++) {
        double s = 0, scale = 0;
        for (int64_t i = 0; i < dims[0]; i++) s += x[i * dims[1] + j], scale += fabs(x[i * dims[1] + j]);
        double e = fabs(got[j] - s) / scale;
        if (e > worst) worst = e;
      }
      check(worst < 1e-6, "colsum against C in double");
      double bw = 4.0 * (double)(dims[0] * dims[1]) / (ms * 1e-3);
      printf("BENCH colsum ms=%.4f gbs=%.1f copy_ratio=%.3f check_err=%.2g (sum over axis 0 of [2^20 64] f32)\n", ms,
             bw / 1e9, bw / copy_bw, worst);
      free(y[0].data);
    } else {
      printf("BENCH colsum failed: %s\n", colsum_error());
    }
    free(in[0].data);
    colsum_release();
  }

  /* softmax and log_softmax over 4096 x 32768 */
  for (int lg = 0; lg < 2; lg++) {
    int64_t dims[2] = {4096, 32768};
    tlaloc_tensor x[1] = {tensor(2, dims)}, y[1];
    int rc = lg ? log_softmax_prepare(x) : softmax_prepare(x);
    double ms = rc ? -1 : lg ? log_softmax_time_exec(20) : softmax_time_exec(20);
    rc = rc ? rc : lg ? log_softmax_fetch(y) : softmax_fetch(y);
    const char *name = lg ? "log_softmax" : "softmax";
    check(rc == 0 && ms > 0, name);
    if (!rc) {
      const float *yy = y[0].data;
      double worst = 0, sums = 0;
      for (int64_t r = 0; r < dims[0]; r++) {
        double s = 0;
        for (int64_t j = 0; j < dims[1]; j++) s += lg ? exp(yy[r * dims[1] + j]) : yy[r * dims[1] + j];
        if (fabs(s - 1) > sums) sums = fabs(s - 1);
      }
      for (int64_t r = 0; r < dims[0]; r += 1021) {
        double e = row_error(x[0].data, yy, r, dims[1], lg);
        if (e > worst) worst = e;
      }
      check(sums < 1e-3 && worst < 1e-4, lg ? "log_softmax rows" : "softmax rows");
      double bw = 8.0 * (double)(dims[0] * dims[1]) / (ms * 1e-3);
      printf("BENCH %s ms=%.4f gbs=%.1f copy_ratio=%.3f check_err=%.2g row_sum_err=%.2g (4096 x 32768 f32)\n", name,
             ms, bw / 1e9, bw / copy_bw, worst, sums);
      free(y[0].data);
    } else {
      printf("BENCH %s failed: %s\n", name, lg ? log_softmax_error() : softmax_error());
    }
    free(x[0].data);
    if (lg) log_softmax_release();
    else softmax_release();
  }

  /* attention, t = 4096, d = 64 */
  {
    int64_t dims[2] = {4096, 64};
    tlaloc_tensor in[3] = {tensor(2, dims), tensor(2, dims), tensor(2, dims)}, o[1];
    int rc = attention_prepare(in);
    double ms = rc ? -1 : attention_time_exec(10);
    rc = rc ? rc : attention_fetch(o);
    check(rc == 0 && ms > 0, "attention ran");
    if (!rc) {
      double flops = 4.0 * 4096.0 * 4096.0 * 64.0;
      printf("BENCH attention ms=%.4f tflops=%.2f (t = 4096, d = 64 f32; scores materialised)\n", ms,
             flops / (ms * 1e-3) / 1e12);
      npy_write(out, "attention_q", &in[0]);
      npy_write(out, "attention_k", &in[1]);
      npy_write(out, "attention_v", &in[2]);
      npy_write(out, "attention_o", &o[0]);
      free(o[0].data);
    } else {
      printf("BENCH attention failed: %s\n", attention_error());
    }
    for (int i = 0; i < 3; i++) free(in[i].data);
    attention_release();
  }
  printf("BENCH done failures=%d\n", fails);
  return fails ? 1 : 0;
}
