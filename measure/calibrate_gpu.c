/* measure/calibrate_gpu.c - the GPU's and the link's figures of the
 * profile (cost/profile.h), measured by `tlaloc calibrate` when there is a
 * GPU (tl_calibrate_gpu), and the GPU's side of `tlaloc cost-report`
 * (tl_gpu_report_measure).
 *
 * As for the CPU, every figure is taken through tlaloc's own GPU backend
 * (gpu_compile, gpu_run) on small graphs, the kernels timed by CUDA events
 * on inputs already on the device (gpu_time), and each solves the model
 * (docs/gpu.md, "Placement") for one unknown:
 *   gpu_bw        a device-to-device copy of 1 GiB (256 MiB with --quick),
 *                 bytes read plus written per second;
 *   link_bw, link_latency   host-to-device copies from pageable memory of
 *                 256 MiB (64) and of 4 bytes;
 *   gpu_launch    a kernel with 256 elements of work: all launch;
 *   gpu_sync      one whole call of that program (wall clock) less its two
 *                 copies' latency and its launch;
 *   gpu_flops, gpu_flops_f64   a chain of 32 multiply-adds per element on
 *                 2^24 elements, less the launch;
 *   gpu_math_factor   16 nested exps per element on 2^24 elements: ns per
 *                 exp on the GPU against the profile's elem.exp (one CPU
 *                 thread), measured before;
 *   gpu_gemm_f32, gpu_gemm_f64   a 4096 x 4096 matmul (cuBLAS where it loads). */
#include "measure/calibrate.h"

#include "cost/cost.h"
#include "gpu/gpu.h"
#include "interp/interp.h"
#include "ir/tg.h"
#include "util/util.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct gprog {
  tl_graph *g;
  tl_tensor **in;
  gpu_program *p;
} gprog;

static void gprog_free(gprog *x) {
  gpu_program_free(x->p);
  if (x->g)
    for (int i = 0; i < x->g->ninputs; i++) tl_tensor_free(x->in[i]);
  tl_free(x->in);
  tl_graph_free(x->g);
  memset(x, 0, sizeof *x);
}

/* Compiles src for the GPU and runs it once on timing inputs (their device
 * copies then stay for gpu_time). 0, or -1 with a message. */
static int gprog_make(gprog *x, const char *src, char *err, size_t n) {
  memset(x, 0, sizeof *x);
  tl_diag d;
  tl_diag_init(&d, "calibrate", src, strlen(src));
  x->g = tl_tg_parse(src, strlen(src), &d);
  tl_diag_free(&d);
  if (!x->g) {
    snprintf(err, n, "calibration graph does not parse");
    return -1;
  }
  x->in = tl_xcalloc((size_t)x->g->ninputs + 1, sizeof *x->in);
  if (tl_timing_inputs(x->g, NULL, x->in, err, n)) return -1;
  gpu_options o = gpu_options_default();
  tl_error e = {0};
  if (!(x->p = gpu_compile(x->g, &o, &e))) return tl_error_to(&e, err, n);
  tl_tensor **outs = tl_xcalloc((size_t)x->g->noutputs + 1, sizeof *outs);
  int rc = gpu_run(x->p, x->in, NULL, outs, &e) ? tl_error_to(&e, err, n) : 0;
  for (int i = 0; i < x->g->noutputs; i++) tl_tensor_free(outs[i]);
  tl_free(outs);
  return rc;
}

/* Seconds of all of src's kernels, reps runs after one (-1 on failure). */
static double time_kernels(const char *src, int reps, char *err, size_t n) {
  gprog x;
  double t = gprog_make(&x, src, err, n) ? -1 : gpu_time(x.p, -1, reps, err, n);
  gprog_free(&x);
  return t;
}

int tl_calibrate_gpu(tl_profile *p, bool quick, FILE *lg, char *err, size_t n) {
  char why[512];
  if (!gpu_available(why, sizeof why)) {
    if (lg) fprintf(lg, "GPU: skipped (%s); the GPU and link figures keep their defaults (docs/gpu.md)\n", why);
    return 0;
  }
  gprog tiny;
  if (gprog_make(&tiny, "(graph t (in x f32 [256]) (out y (add x 1.0)))", err, n)) {
    gprog_free(&tiny);
    return -1;
  }
  snprintf(p->gpu, sizeof p->gpu, "%s", gpu_device_name(tiny.p));
  if (lg) fprintf(lg, "GPU: %s\n", p->gpu);
  int rc = 0;
  size_t big = quick ? (size_t)256 << 20 : (size_t)1 << 30, link = quick ? (size_t)64 << 20 : (size_t)256 << 20;
  double t = gpu_copy_seconds(tiny.p, big, 10, 0, err, n);
  double th = t > 0 ? gpu_copy_seconds(tiny.p, link, 3, 1, err, n) : -1;
  double tl = th > 0 ? gpu_copy_seconds(tiny.p, 4, 20, 1, err, n) : -1;
  double tk = tl > 0 ? gpu_time(tiny.p, -1, 200, err, n) : -1;
  if (tk < 0) rc = -1;
  else {
    p->gpu_bw = 2.0 * (double)big / t;
    p->link_latency = tl;
    p->link_bw = (double)link / fmax(th - tl, 1e-9);
    p->gpu_launch = tk;
    double best = INFINITY;
    tl_tensor *out[1] = {0};
    tl_error e;
    tl_error_clear(&e);
    for (int r = 0; r < 20 && !rc; r++) {
      double t0 = tl_now_ms();
      rc = gpu_run(tiny.p, tiny.in, NULL, out, &e) ? tl_error_to(&e, err, n) : 0;
      best = fmin(best, (tl_now_ms() - t0) * 1e-3);
      tl_tensor_free(out[0]);
    }
    p->gpu_sync = fmax(best - 2 * tl - tk, 1e-6);
    if (lg) {
      fprintf(lg, "  %-44s %10.1f GB/s\n", "device memory (copy, read + written)", p->gpu_bw * 1e-9);
      fprintf(lg, "  %-44s %10.2f GB/s, %.1f us a copy\n", "link, host to device (pageable)", p->link_bw * 1e-9,
              p->link_latency * 1e6);
      fprintf(lg, "  %-44s %10.2f us\n", "kernel launch", p->gpu_launch * 1e6);
      fprintf(lg, "  %-44s %10.2f us\n", "call synchronisation", p->gpu_sync * 1e6);
    }
  }
  gprog_free(&tiny);
  /* arithmetic: 32 dependent multiply-adds per element */
  enum { NE = 1 << 24 };
  for (int f64 = 0; f64 < 2 && !rc; f64++) {
    tl_buf b = {0};
    tl_buf_printf(&b, "(graph t (in x %s [%d]) (out y ", f64 ? "f64" : "f32", NE);
    for (int i = 0; i < 32; i++) tl_buf_printf(&b, "(add (mul ");
    tl_buf_printf(&b, "x");
    for (int i = 0; i < 32; i++) tl_buf_printf(&b, " 1.0001) 0.0001)");
    tl_buf_printf(&b, "))");
    double tc = time_kernels(b.s, 20, err, n);
    tl_free(b.s);
    if (tc < 0) rc = -1;
    else {
      double rate = 64.0 * NE / fmax(tc - p->gpu_launch, 1e-9);
      *(f64 ? &p->gpu_flops_f64 : &p->gpu_flops) = rate;
      if (lg) fprintf(lg, "  %-44s %10.1f TFLOP/s\n", f64 ? "f64 multiply-add" : "f32 multiply-add", rate * 1e-12);
    }
  }
  /* math: 16 nested exps (arguments kept near 0) */
  if (!rc) {
    tl_buf b = {0};
    tl_buf_printf(&b, "(graph t (in x f32 [%d]) (out y ", NE);
    for (int i = 0; i < 16; i++) tl_buf_printf(&b, "(exp (mul 0.01 ");
    tl_buf_printf(&b, "x");
    for (int i = 0; i < 16; i++) tl_buf_printf(&b, "))");
    tl_buf_printf(&b, "))");
    double tm = time_kernels(b.s, 20, err, n);
    tl_free(b.s);
    if (tm < 0) rc = -1;
    else {
      double ns = fmax(tm - p->gpu_launch - 8.0 * NE / p->gpu_bw, 1e-12) * 1e9 / (16.0 * NE);
      p->gpu_math_factor = p->elem_ns[TL_OP_EXP] / ns;
      if (lg) fprintf(lg, "  %-44s %10.5f ns (one CPU thread's / %.0f)\n", "exp, per element", ns, p->gpu_math_factor);
    }
  }
  /* GEMM */
  int m = quick ? 2048 : 4096;
  for (int f64 = 0; f64 < 2 && !rc; f64++) {
    char src[256];
    const char *dt = f64 ? "f64" : "f32";
    snprintf(src, sizeof src, "(graph t (in a %s [%d %d]) (in b %s [%d %d]) (out c (matmul a b)))", dt, m, m, dt, m, m);
    double tg = time_kernels(src, 5, err, n);
    if (tg < 0) rc = -1;
    else {
      double rate = 2.0 * m * (double)m * m / fmax(tg - p->gpu_launch, 1e-9);
      *(f64 ? &p->gpu_gemm_f64 : &p->gpu_gemm_f32) = rate;
      if (lg) fprintf(lg, "  %-44s %10.1f TFLOP/s\n", f64 ? "matmul f64" : "matmul f32", rate * 1e-12);
    }
  }
  return rc;
}

/* ---- cost-report on the GPU ----------------------------------------------------------- */

int tl_gpu_report_measure(const tl_profile *p, const tl_graph *g, const int64_t *syms, int runs, tl_gpu_report *r,
                          char *err, size_t n) {
  memset(r, 0, sizeof *r);
  tl_program_cost pc;
  if (tl_cost_predict(p, g, syms, &pc, err, n)) return -1;
  r->nks = pc.nks;
  r->predicted = tl_xcalloc((size_t)pc.nks + 1, sizeof *r->predicted);
  r->measured = tl_xcalloc((size_t)pc.nks + 1, sizeof *r->measured);
  tl_placement pl;
  if (tl_cost_place(p, g, syms, 0, &pl, err, n)) {
    tl_program_cost_free(&pc);
    return -1;
  }
  r->pred_h2d = pl.h2d_s;
  r->pred_d2h = pl.d2h_s;
  r->pred_total = pl.h2d_s + pl.d2h_s + p->gpu_sync;
  for (int i = 0; i < pc.nks; i++) {
    const tl_node *x = &g->nodes[pc.ks[i].node];
    bool f64 = x->type.dtype == TL_F64;
    r->predicted[i] = tl_profile_gpu_kernel_time(p, &pc.ks[i].w, f64);
    r->pred_total += r->predicted[i];
    r->measured[i] = -1;
  }
  tl_program_cost_free(&pc);
  r->meas_total = -1;
  if (!gpu_available(r->why, sizeof r->why)) return 0;
  tl_tensor **in = tl_xcalloc((size_t)g->ninputs + 1, sizeof *in), **out = tl_xcalloc((size_t)g->noutputs + 1, sizeof *out);
  gpu_options o = gpu_options_default();
  gpu_program *gp = NULL;
  int rc = tl_timing_inputs(g, syms, in, err, n);
  tl_error e = {0};
  if (!rc && !(gp = gpu_compile(g, &o, &e))) rc = tl_error_to(&e, err, n);
  if (!rc) {
    double best = INFINITY;
    for (int k = 0; k < runs && !rc; k++) {
      double t0 = tl_now_ms();
      rc = gpu_run(gp, in, syms, out, &e) ? tl_error_to(&e, err, n) : 0;
      best = fmin(best, (tl_now_ms() - t0) * 1e-3);
      for (int i = 0; i < g->noutputs; i++) tl_tensor_free(out[i]), out[i] = NULL;
    }
    r->meas_total = rc ? -1 : best;
  }
  /* the GPU program's plan lets kernels write over dead inputs, so its
   * kernels can differ from the CPU plan's: then only the totals compare */
  r->same_kernels = !rc && gpu_program_kernels(gp) == r->nks;
  for (int i = 0; !rc && r->same_kernels && i < r->nks; i++) {
    double t = gpu_time(gp, i, runs, err, n);
    if (t < 0) rc = -1;
    else r->measured[i] = t;
  }
  snprintf(r->why, sizeof r->why, "%s", gp ? gpu_device_name(gp) : "");
  gpu_program_free(gp);
  for (int i = 0; i < g->ninputs; i++) tl_tensor_free(in[i]);
  tl_free(in);
  tl_free(out);
  return rc;
}

void tl_gpu_report_free(tl_gpu_report *r) {
  tl_free(r->predicted);
  tl_free(r->measured);
  memset(r, 0, sizeof *r);
}
