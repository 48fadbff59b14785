/* measure/calibrate.c - tl_calibrate, behind `tlaloc calibrate`: measures
 * this machine for the time model (the profile of cost/profile.h).
 *
 * Every figure is taken through tlaloc's own backend, on small graphs
 * compiled with be_compile and timed with be_run (minimum of several runs),
 * so the profile describes the code tlaloc generates, whatever flags this
 * file was built with. The model predicts a program as
 *   run_overhead + sum over kernels (kernel_overhead [+ par_overhead] + work)
 * and each measurement below solves that equation for one unknown, in an
 * order where the terms it subtracts are already known:
 *   1. overheads: one tiny kernel vs a chain of K tiny kernels; then
 *      par_overhead: an in-cache kernel just above the split threshold,
 *      on one thread and split;
 *   2. stream bandwidth: a triad a = b + 3c (12 bytes per element), one
 *      thread and the backend's threads: on 3 x 64 MiB for memory (less
 *      the first touch of the 64 MiB output's fresh pages, measured apart)
 *      and on working sets of 96 KiB to 24 MiB for the cache levels;
 *   3. plain arithmetic: a chain of 64 dependent mul/add per element, in
 *      cache (one flop per op, as tl_node_work counts them); the cost of a
 *      row in a row kernel (short rows against long ones);
 *   4. per-element math: (OP x) minus the copy-like (neg x) on an
 *      in-cache array, one thread, so elem_ns is the math only; on f32
 *      and on f64 (math libraries differ: f64 tanh is far slower than f64
 *      exp), f64_factor the geometric mean of the ratios;
 *   5. GEMM: a square matmul graph (cblas from generated code); the
 *      roofline takes the larger of its arithmetic and memory terms, and
 *      here the arithmetic dominates;
 *   6. the GPU and the link, when there is a GPU (calibrate_gpu.c). */
#include "measure/calibrate.h"

#include "backend/be_internal.h"
#include "backend/blas.h"
#include "interp/interp.h"
#include "ir/tg.h"
#include "util/util.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

/* The backend's split rule and thread count (backend/be_internal.h:
 * BE_SPLIT_ELEMS, be_default_threads) are the model's too. */
/* glibc maps an allocation of 32 MiB or more afresh on every call (its
 * dynamic mmap threshold stops there), so such an output's pages are
 * first-touched by every run. */
#define GLIBC_MMAP_MAX (32.0 * 1024 * 1024)

/* One run: its wall time in seconds, -1 on an error. Into fresh outputs,
 * freed after (be_run); with into, into the outputs already in outs, kept
 * (be_run_into: no fresh pages; a large output is written with streaming
 * stores). */
static double run_once(be_program *p, tl_tensor *const *inputs, const int64_t *syms, tl_tensor **outs,
                       bool into, char *err, size_t n) {
  const tl_graph *g = be_program_graph(p);
  tl_error e;
  tl_error_clear(&e);
  double t0 = tl_now_ms();
  int rc = into ? be_run_into(p, inputs, syms, outs, &e) : be_run(p, inputs, syms, outs, &e);
  double t = (tl_now_ms() - t0) * 1e-3;
  if (rc) return tl_error_to(&e, err, n);
  if (!into)
    for (int i = 0; i < g->noutputs; i++) tl_tensor_free(outs[i]);
  return t;
}

double tl_time_run(be_program *p, tl_tensor *const *inputs, const int64_t *syms, int runs,
                   double budget_s, char *err, size_t n) {
  const tl_graph *g = be_program_graph(p);
  tl_tensor **outs = tl_xcalloc((size_t)g->noutputs + 1, sizeof *outs);
  double best = run_once(p, inputs, syms, outs, false, err, n), start = tl_now_ms(); /* warm-up */
  for (int r = 0; best >= 0 && r < 100000; r++) {
    if (r >= runs && (tl_now_ms() - start) * 1e-3 >= budget_s) break;
    double t = run_once(p, inputs, syms, outs, false, err, n);
    if (t < 0 || r == 0 || t < best) best = t;
  }
  tl_free(outs);
  return best;
}

int tl_timing_inputs(const tl_graph *g, const int64_t *syms, tl_tensor **inputs, char *err, size_t n) {
  uint64_t s = 0x2545f4914f6cdd1dULL;
  for (int i = 0; i < g->ninputs; i++) inputs[i] = NULL;
  for (int i = 0; i < g->ninputs; i++) {
    const tl_node *x = &g->nodes[g->inputs[i]];
    int64_t dims[TL_MAX_RANK];
    char e2[256];
    tl_tensor *t = NULL;
    if (tl_concrete_dims(g, &x->type, syms, dims, e2, sizeof e2) ||
        !(t = tl_tensor_new((tl_dtype)x->type.dtype, x->type.rank, dims, e2, sizeof e2))) {
      snprintf(err, n, "input '%s': %s", g->names[x->name], e2);
      for (int j = 0; j < i; j++) {
        tl_tensor_free(inputs[j]);
        inputs[j] = NULL;
      }
      return -1;
    }
    for (int64_t k = 0; k < t->numel; k++) {
      s ^= s << 13, s ^= s >> 7, s ^= s << 17; /* xorshift64 */
      if (tl_dtype_is_float((tl_dtype)t->dtype)) tl_tensor_set_f64(t, k, 0.5 + (double)(s >> 11) * 0x1p-53);
      else if (t->dtype == TL_BOOL) tl_tensor_set_i64(t, k, k & 1);
      else tl_tensor_set_i64(t, k, (int64_t)(s % 3));
    }
    inputs[i] = t;
  }
  return 0;
}

/* ---- one measurement -------------------------------------------------- */

typedef struct cal {
  bool quick;
  int threads;
  be_options o1, on; /* one thread; the backend's threads */
  int runs;          /* at least this many runs per measurement */
  double budget;     /* and at least this long (s) */
  char *err;
  size_t n;
} cal;

/* Compiles src (concrete shapes only) under each of the nopt option sets
 * and times the programs in alternation, one run of each per round, so
 * that a burst of load on a shared machine hits them alike: at least
 * c->runs rounds and c->budget seconds, after a warm-up run each. t[i]: the
 * minimum in seconds under o[i]. into: the timed runs write the warm-up
 * run's outputs (run_once). 0, or -1 with a message. */
static int time_src_n(cal *c, const char *src, const be_options *const *o, int nopt, bool into, double *t) {
  tl_diag d;
  tl_diag_init(&d, "calibrate", src, strlen(src));
  tl_graph *g = tl_tg_parse(src, strlen(src), &d);
  if (!g) {
    snprintf(c->err, c->n, "calibration graph does not parse: %s", tl_diag_text(&d));
    tl_diag_free(&d);
    return -1;
  }
  tl_diag_free(&d);
  tl_tensor **in = tl_xcalloc((size_t)g->ninputs + 1, sizeof *in);
  /* each program's outputs: with into, its warm-up run's, kept */
  tl_tensor **outs[2] = {tl_xcalloc((size_t)g->noutputs + 1, sizeof **outs),
                         tl_xcalloc((size_t)g->noutputs + 1, sizeof **outs)};
  be_program *p[2] = {NULL, NULL};
  int rc = tl_timing_inputs(g, NULL, in, c->err, c->n);
  for (int i = 0; i < nopt && !rc; i++) {
    tl_error e = {0};
    if (!(p[i] = be_compile(g, o[i], &e))) rc = tl_error_to(&e, c->err, c->n);
    else if (into && be_run(p[i], in, NULL, outs[i], &e)) rc = tl_error_to(&e, c->err, c->n); /* warm-up */
    else if (!into && run_once(p[i], in, NULL, outs[i], false, c->err, c->n) < 0) rc = -1;    /* warm-up */
    t[i] = INFINITY;
  }
  double start = tl_now_ms();
  for (int r = 0; !rc && r < 100000; r++) {
    if (r >= c->runs && (tl_now_ms() - start) * 1e-3 >= c->budget) break;
    for (int i = 0; i < nopt && !rc; i++) {
      double ti = run_once(p[i], in, NULL, outs[i], into, c->err, c->n);
      if (ti < 0) rc = -1;
      else t[i] = fmin(t[i], ti);
    }
  }
  for (int i = 0; i < nopt; i++) be_program_free(p[i]);
  for (int i = 0; i < g->ninputs; i++) tl_tensor_free(in[i]);
  for (int i = 0; i < 2; i++) {
    if (into)
      for (int k = 0; k < g->noutputs; k++) tl_tensor_free(outs[i][k]);
    tl_free(outs[i]);
  }
  tl_free(in);
  tl_graph_free(g);
  return rc;
}

static double time_src(cal *c, const char *src, const be_options *o) {
  double t;
  return time_src_n(c, src, &o, 1, false, &t) ? -1 : t;
}

static double time_fmt(cal *c, const be_options *o, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static double time_fmt(cal *c, const be_options *o, const char *fmt, ...) {
  char src[8192];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(src, sizeof src, fmt, ap);
  va_end(ap);
  return time_src(c, src, o);
}

static void cpu_name(char *buf, size_t n) {
  snprintf(buf, n, "unknown CPU");
  FILE *f = fopen("/proc/cpuinfo", "r");
  if (!f) return;
  char line[512];
  while (fgets(line, sizeof line, f)) {
    if (strncmp(line, "model name", 10)) continue;
    char *v = strchr(line, ':');
    if (!v) break;
    v++;
    while (*v == ' ' || *v == '\t') v++;
    v[strcspn(v, "\n")] = 0;
    snprintf(buf, n, "%s", v);
    break;
  }
  fclose(f);
}

/* ---- the measurements ------------------------------------------------- */

static int measure_overheads(cal *c, tl_profile *p, FILE *lg) {
  enum { K = 16 };
  double t1 = time_fmt(c, &c->o1, "(graph k1 (in x f32 [16]) (out y (sum x :axis 0 :keepdims true)))");
  if (t1 < 0) return -1;
  /* K reductions in a chain: each is its own kernel on a 16-element row */
  tl_buf b = {0};
  tl_buf_printf(&b, "(graph kk (in x f32 [16]) (let r0 (sum x :axis 0 :keepdims true))");
  for (int i = 1; i < K; i++) tl_buf_printf(&b, " (let r%d (sum (add x r%d) :axis 0 :keepdims true))", i, i - 1);
  tl_buf_printf(&b, " (out y r%d))", K - 1);
  double tk = time_src(c, b.s, &c->o1);
  tl_free(b.s);
  if (tk < 0) return -1;
  /* noise can make the difference tiny or negative: keep a 10 ns floor */
  p->kernel_overhead = fmax((tk - t1) / (K - 1), 1e-8);
  p->run_overhead = fmax(t1 - p->kernel_overhead, 1e-8);
  if (lg) {
    fprintf(lg, "  %-44s %10.3f us\n", "program call (be_run fixed cost)", p->run_overhead * 1e6);
    fprintf(lg, "  %-44s %10.3f us\n", "kernel call", p->kernel_overhead * 1e6);
  }
  return 0;
}

/* Work time of a one-kernel program: what is left after the overheads. */
static double work_of(const tl_profile *p, double t, bool par) {
  double w = t - p->run_overhead - p->kernel_overhead - (par ? p->par_overhead : 0);
  return w > t * 0.05 ? w : t * 0.05;
}

/* Seconds per byte of first-touching fresh memory, allocated as the
 * backend allocates a large output (2 MiB aligned, huge pages advised):
 * writing fresh pages minus writing the same bytes once they are mapped. */
static void *(*volatile fill)(void *, int, size_t) = memset; /* a store the compiler cannot drop */

static double fault_cost(size_t bytes, int reps) {
  char *q = tl_xaligned_alloc(1 << 21, bytes);
  if (!q) return 0;
  fill(q, 1, bytes);
  double touched = 1e30, fresh = 1e30;
  for (int r = 0; r < reps; r++) {
    double t0 = tl_now_ms();
    fill(q, r, bytes);
    touched = fmin(touched, tl_now_ms() - t0);
    t0 = tl_now_ms();
    char *f = tl_xaligned_alloc(1 << 21, bytes);
    if (!f) break;
#ifdef MADV_HUGEPAGE
    madvise(f, bytes, MADV_HUGEPAGE);
#endif
    fill(f, r, bytes);
    tl_free(f);
    fresh = fmin(fresh, tl_now_ms() - t0);
  }
  tl_free(q);
  return fresh < 1e30 ? fmax(fresh - touched, 0) * 1e-3 / (double)bytes : 0;
}

/* Bandwidth in bytes/s from the triad's time t on n-element arrays (12
 * bytes per element), less the overheads. */
static double triad_bw(const tl_profile *p, double t, long n, bool par) {
  double w = t - p->run_overhead - p->kernel_overhead - (par ? p->par_overhead : 0);
  return 12.0 * (double)n / fmax(w, t * 0.05);
}

/* The triad a = b + 3c on n-element f32 arrays, on one thread and on the
 * backend's threads, timed in alternation. An output of 32 MiB or more
 * would be a fresh mapping on every be_run: those runs go into the
 * warm-up's outputs instead, so that no page is first touched in the
 * timing. (Subtracting fault_bw's estimate of the first touches instead
 * made the bandwidth hang on that estimate: one noisy fault measurement,
 * 79 MB/s under a sanitizer with a test beside it, left 5% of the triad's
 * time and a bandwidth of 163 GB/s.) -1 on failure. */
static int triad(cal *c, const tl_profile *p, long n, double *bw1, double *bwall) {
  char src[256];
  snprintf(src, sizeof src, "(graph triad (in b f32 [%ld]) (in c f32 [%ld]) (out a (add b (mul c 3.0))))", n, n);
  const be_options *o[2] = {&c->o1, &c->on};
  double t[2];
  if (time_src_n(c, src, o, c->threads > 1 ? 2 : 1, 4.0 * (double)n >= GLIBC_MMAP_MAX, t)) return -1;
  *bw1 = triad_bw(p, t[0], n, false);
  *bwall = c->threads > 1 ? triad_bw(p, t[1], n, n >= BE_SPLIT_ELEMS) : *bw1;
  return 0;
}

static int measure_bandwidth(cal *c, tl_profile *p, FILE *lg) {
  /* fresh pages: 64 MiB, as a large output */
  double fc = fault_cost((size_t)1 << 26, c->quick ? 2 : 4);
  p->fault_bw = fc > 0 ? 1 / fc : 1e12;
  if (lg) fprintf(lg, "  %-44s %10.2f GB/s\n", "first touch of fresh pages", p->fault_bw * 1e-9);
  /* memory: 3 x 64 MiB (quick: 3 x 32 MiB), beyond the caches of the
   * machines measured so far */
  long big = c->quick ? 1L << 23 : 1L << 24;
  /* the figure that matters most for large programs: at least 0.15 s of
   * rounds even when quick, so that a burst of load does not decide it */
  double budget = c->budget;
  c->budget = fmax(budget, 0.15);
  int rc = triad(c, p, big, &p->bw_1, &p->bw_all);
  c->budget = budget;
  if (rc) return -1;
  if (lg) {
    char what[64];
    snprintf(what, sizeof what, "stream triad %ld MiB, 1 thread", 12 * big >> 20);
    fprintf(lg, "  %-44s %10.2f GB/s\n", what, p->bw_1 * 1e-9);
    snprintf(what, sizeof what, "stream triad %ld MiB, %d threads", 12 * big >> 20, c->threads);
    fprintf(lg, "  %-44s %10.2f GB/s\n", what, p->bw_all * 1e-9);
  }
  /* the caches: working sets of 96 KiB to 24 MiB, a level each */
  p->nlevels = 0;
  for (long n = 1L << 13; n <= 1L << 21; n <<= 2) {
    double b1, ball;
    if (triad(c, p, n, &b1, &ball)) return -1;
    int i = p->nlevels++;
    p->level_bytes[i] = 12.0 * (double)n;
    p->level_bw_1[i] = b1;
    p->level_bw_all[i] = ball;
    if (lg) {
      char what[64];
      snprintf(what, sizeof what, "stream triad %.2f MiB, 1 | %d threads", 12.0 * (double)n / (1 << 20), c->threads);
      fprintf(lg, "  %-44s %10.2f | %.2f GB/s\n", what, b1 * 1e-9, ball * 1e-9);
    }
  }
  return 0;
}

/* Where splitting a kernel across the threads starts to pay: a light
 * in-cache kernel (a copy-like add, the cheapest per element, so the
 * threshold holds for every kernel) costs t1 per element on one thread;
 * split over T threads it saves n t1 (1 - 1/T) and costs par_overhead, so
 * it pays from n = par_overhead / (t1 (1 - 1/T)). Rounded up to a power of
 * two and kept within [2^12, 2^22]; the engines compile with it
 * (be_options.split_elems) and the time model predicts with it. */
static int measure_split(cal *c, tl_profile *p, FILE *lg) {
  p->parallel_min_elems = BE_SPLIT_ELEMS;
  if (c->threads <= 1 || p->par_overhead <= 1e-8) return 0;
  enum { N = 1 << 16 };
  double t = time_fmt(c, &c->o1, "(graph s (in x f32 [%d]) (out y (add x 1.5)))", N);
  if (t < 0) return -1;
  double per = fmax((t - p->run_overhead - p->kernel_overhead) / N, 1e-12);
  double n = p->par_overhead / (per * (1.0 - 1.0 / c->threads));
  long m = 1L << 12;
  while (m < n && m < (1L << 22)) m <<= 1;
  p->parallel_min_elems = (double)m;
  if (lg) fprintf(lg, "  %-44s %10ld elements (%.3f ns/element on one thread)\n", "split from", m, per * 1e9);
  return 0;
}

static int measure_par_overhead(cal *c, tl_profile *p, FILE *lg) {
  p->par_overhead = 0;
  if (c->threads > 1) {
    /* 64 Ki elements: just split, 512 KiB of data, in each core's L2 */
    const char *src = "(graph par (in x f32 [65536]) (out y (exp x)))";
    const be_options *o[2] = {&c->o1, &c->on};
    double t[2];
    if (time_src_n(c, src, o, 2, false, t)) return -1;
    double ts = t[0], tp = t[1];
    double work = ts - p->run_overhead - p->kernel_overhead;
    p->par_overhead = fmax(tp - p->run_overhead - p->kernel_overhead - work / c->threads, 1e-8);
  }
  if (lg) fprintf(lg, "  %-44s %10.3f us\n", "split kernel, extra", p->par_overhead * 1e6);
  return measure_split(c, p, lg);
}

/* A chain of 32 (add (mul . 1.0001) 0.0001): 64 flops per element; strict
 * IEEE arithmetic, so LLVM cannot fold it. */
static double time_flops(cal *c, long n, const be_options *o) {
  tl_buf e = {0};
  tl_buf_printf(&e, "(graph fma (in x f32 [%ld]) (out y ", n);
  for (int i = 0; i < 32; i++) tl_buf_printf(&e, "(add (mul ");
  tl_buf_printf(&e, "x");
  for (int i = 0; i < 32; i++) tl_buf_printf(&e, " 1.0001) 0.0001)");
  tl_buf_printf(&e, "))");
  double t = time_src(c, e.s, o);
  tl_free(e.s);
  return t;
}

static int measure_flops(cal *c, tl_profile *p, FILE *lg) {
  long n1 = 8192, nn = 1L << 17; /* in L1/L2; nn is above the split threshold */
  double t1 = time_flops(c, n1, &c->o1);
  if (t1 < 0) return -1;
  p->flops_1 = 64.0 * (double)n1 / work_of(p, t1, false);
  p->flops_all = p->flops_1;
  if (c->threads > 1) {
    double tn = time_flops(c, nn, &c->on);
    if (tn < 0) return -1;
    p->flops_all = 64.0 * (double)nn / work_of(p, tn, true);
  }
  if (lg) {
    fprintf(lg, "  %-44s %10.2f GFLOP/s\n", "f32 mul/add chain, 1 thread", p->flops_1 * 1e-9);
    char what[64];
    snprintf(what, sizeof what, "f32 mul/add chain, %d threads", c->threads);
    fprintf(lg, "  %-44s %10.2f GFLOP/s\n", what, p->flops_all * 1e-9);
  }
  return 0;
}

/* ns per element of op on dtype dt, over the copy-like baseline; in cache,
 * one thread. -1 on failure. */
static double elem_cost(cal *c, tl_op op, const char *dt) {
  enum { N = 16384, COLS = 256 };
  const tl_op_info *oi = &tl_ops[op];
  double t, base;
  if (oi->kind == TL_KIND_REDUCTION) {
    const char *src = "(graph r (in x %s [%d %d]) (out y %s))";
    char expr[128];
    snprintf(expr, sizeof expr, "(%s x :axis 1)", oi->name);
    t = time_fmt(c, &c->o1, src, dt, N / COLS, COLS, expr);
    /* a row reduction against sum; a row normalisation against a copy */
    base = time_fmt(c, &c->o1, src, dt, N / COLS, COLS,
                    op == TL_OP_SOFTMAX || op == TL_OP_LOG_SOFTMAX ? "(add x 0.5)" : "(sum x :axis 1)");
  } else if (oi->arity == 2) {
    const char *src = "(graph b (in x %s [%d]) (in z %s [%d]) (out y (%s x z)))";
    t = time_fmt(c, &c->o1, src, dt, N, dt, N, oi->name);
    base = time_fmt(c, &c->o1, src, dt, N, dt, N, "add");
  } else {
    /* the inputs are in [0.5, 1.5): an op defined for x < 0 gets -x */
    const char *arg = oi->domain == TL_DOM_NEGATIVE ? "(neg x)" : "x";
    const char *src = "(graph u (in x %s [%d]) (out y (%s %s)))";
    t = time_fmt(c, &c->o1, src, dt, N, oi->name, arg);
    base = time_fmt(c, &c->o1, src, dt, N, "neg", arg[0] == '(' ? "(neg x)" : "x");
  }
  if (t < 0 || base < 0) return -1;
  /* an op no slower than the copy still does math: a 0.005 ns floor keeps
   * it marked as measured math rather than as one flop */
  return fmax((t - base) / N * 1e9, 0.005);
}

/* Per row and pass of a row kernel: a row sum over 16-element rows
 * against one over 256-element rows, the same elements in all. */
static int measure_rows(cal *c, tl_profile *p, FILE *lg) {
  const char *src = "(graph rows (in x f32 [%d %d]) (out y (sum x :axis 1)))";
  double ts = time_fmt(c, &c->o1, src, 1024, 16), tl = time_fmt(c, &c->o1, src, 64, 256);
  if (ts < 0 || tl < 0) return -1;
  p->row_ns = fmax((ts - tl) / (1024 - 64) * 1e9, 0);
  if (lg) fprintf(lg, "  %-44s %10.3f ns\n", "row of a row kernel", p->row_ns);
  return 0;
}

static int measure_math(cal *c, tl_profile *p, FILE *lg) {
  tl_profile def;
  tl_profile_default(&def);
  double lsum = 0;
  int nf = 0;
  for (int op = 0; op < TL_OP_COUNT; op++) {
    if (def.elem_ns[op] <= 0) continue;
    double ns = elem_cost(c, (tl_op)op, "f32"), ns64 = elem_cost(c, (tl_op)op, "f64");
    if (ns < 0 || ns64 < 0) return -1;
    p->elem_ns[op] = ns;
    p->elem_ns_f64[op] = ns64;
    lsum += log(ns64 / ns);
    nf++;
    if (lg) {
      char what[64];
      snprintf(what, sizeof what, "%s, per element, f32 | f64", tl_ops[op].name);
      fprintf(lg, "  %-44s %10.3f | %.3f ns\n", what, ns, ns64);
    }
  }
  /* for ops measured on f32 only: the geometric mean of the f64/f32 ratios */
  p->f64_factor = nf ? fmin(fmax(exp(lsum / nf), 0.5), 16) : p->f64_factor;
  if (lg) fprintf(lg, "  %-44s %10.2f x\n", "f64 math / f32 math (geometric mean)", p->f64_factor);
  return 0;
}

/* Which f32 exp and tanh the backend should call: libmvec's or tlaloc's
 * own inline kernels (be_options.own_math), each timed against the other
 * (before the per-op costs, which are then measured with the choice)
 * in alternating rounds on 10^5 elements in cache, one thread. Own only
 * when at least 3% faster, so that noise does not flip a sound default. */
static int measure_vmath(cal *c, tl_profile *p, FILE *lg) {
  static const struct { const char *fn; unsigned bit; } f[] = {{"exp", TL_OWN_EXP32}, {"tanh", TL_OWN_TANH32}};
  be_options own = c->o1;
  own.vector_math = 2;
  const be_options *o[2] = {&c->o1, &own};
  p->own_math = 0;
  for (size_t i = 0; i < sizeof f / sizeof f[0]; i++) {
    char src[160];
    double t[2];
    snprintf(src, sizeof src, "(graph vm (in x f32 [100000]) (out y (%s (mul x 0.5))))", f[i].fn);
    if (time_src_n(c, src, o, 2, false, t)) return -1;
    if (t[1] < 0.97 * t[0]) p->own_math |= f[i].bit;
    if (lg) {
      char what[64];
      snprintf(what, sizeof what, "f32 %s: libmvec | own (chosen: %s)", f[i].fn,
               (p->own_math & f[i].bit) ? "own" : "libmvec");
      fprintf(lg, "  %-44s %10.3f | %.3f ns\n", what, t[0] / 1e5 * 1e9, t[1] / 1e5 * 1e9);
    }
  }
  /* what follows (the per-op costs) is measured with the math chosen */
  c->o1.own_math = c->on.own_math = p->own_math;
  return 0;
}

/* Which of OpenBLAS's kernel sets runs the GEMMs (backend/blas.h): each
 * one this CPU can run times an f32 and an f64 product (512^3; 256^3 with
 * --quick), and the fastest by the sum of the two, relative to the set
 * OpenBLAS picked itself, is kept when it is at least 3% faster (noise must
 * not flip a sound choice). The process then runs it, so the GEMM rates
 * below are measured with it; the profile records it as blas.core. */
static int measure_blas(cal *c, tl_profile *p, FILE *lg) {
  const char *cores[16];
  int nc = be_blas_cores(cores, 16);
  if (nc == 0) {
    if (lg) fprintf(lg, "  %-44s %s\n", "OpenBLAS kernel set", "no choice (not a dynamic-arch OpenBLAS)");
    return 0;
  }
  /* copied: the list's order follows the set running */
  char names[16][32];
  for (int k = 0; k < nc; k++) snprintf(names[k], sizeof names[k], "%.31s", cores[k]);
  long n = c->quick ? 256 : 512;
  double t0[2] = {0, 0}, best = 0;
  int pick = 0;
  for (int k = 0; k < nc; k++) {
    const char *name = names[k];
    if (be_blas_set_core(name, c->err, c->n)) return -1;
    double t[2];
    for (int i = 0; i < 2; i++) {
      t[i] = time_fmt(c, &c->o1, "(graph mm (in a %s [%ld %ld]) (in b %s [%ld %ld]) (out c (matmul a b)))",
                      i ? "f64" : "f32", n, n, i ? "f64" : "f32", n, n);
      if (t[i] < 0) return -1;
    }
    if (k == 0) t0[0] = t[0], t0[1] = t[1];
    double score = t[0] / t0[0] + t[1] / t0[1];
    if (k == 0 || score < best) best = score, pick = k;
    if (lg) {
      char what[96];
      double nn = 2.0 * (double)n * (double)n * (double)n;
      snprintf(what, sizeof what, "OpenBLAS %.31s%s: GEMM f32 | f64 %ld^3", name, k ? "" : " (at start)", n);
      fprintf(lg, "  %-44s %10.2f | %.2f GFLOP/s\n", what, nn / t[0] * 1e-9, nn / t[1] * 1e-9);
    }
  }
  if (best > 0.97 * 2) pick = 0;
  const char *chosen = names[pick];
  if (be_blas_set_core(chosen, c->err, c->n)) return -1;
  snprintf(p->blas_core, sizeof p->blas_core, "%.31s", chosen);
  if (lg) fprintf(lg, "  %-44s %10s\n", "OpenBLAS kernel set chosen", chosen);
  return 0;
}

static int measure_gemm(cal *c, tl_profile *p, FILE *lg) {
  long n = c->quick ? 256 : 1024;
  const char *dts[2] = {"f32", "f64"};
  double *rate[2] = {&p->gemm_f32, &p->gemm_f64};
  for (int i = 0; i < 2; i++) {
    double t = time_fmt(c, &c->o1, "(graph mm (in a %s [%ld %ld]) (in b %s [%ld %ld]) (out c (matmul a b)))",
                        dts[i], n, n, dts[i], n, n);
    if (t < 0) return -1;
    double nn = (double)n;
    *rate[i] = 2 * nn * nn * nn / work_of(p, t, false);
    if (lg) {
      char what[64];
      snprintf(what, sizeof what, "GEMM %s %ldx%ldx%ld (BLAS)", dts[i], n, n, n);
      fprintf(lg, "  %-44s %10.2f GFLOP/s\n", what, *rate[i] * 1e-9);
    }
  }
  /* a product of 32 rows: how much slower small products run (gemm_half:
   * the smallest dim at which the rate is half the large one's) */
  double t = time_fmt(c, &c->o1, "(graph mm (in a f32 [32 %ld]) (in b f32 [%ld %ld]) (out c (matmul a b)))", n, n, n);
  if (t < 0) return -1;
  double small = 2 * 32.0 * (double)n * (double)n / work_of(p, t, false);
  double half = small > 0 ? 32 * (p->gemm_f32 / small - 1) : 0;
  p->gemm_half = half < 0 ? 0 : half > 1024 ? 1024 : half;
  if (lg) {
    char what[64];
    snprintf(what, sizeof what, "GEMM f32 32x%ldx%ld (BLAS)", n, n);
    fprintf(lg, "  %-44s %10.2f GFLOP/s (half rate at %.0f rows)\n", what, small * 1e-9, p->gemm_half);
  }
  return 0;
}

int tl_calibrate(tl_profile *p, bool quick, FILE *lg, char *err, size_t n) {
  tl_profile_default(p);
  cal c = {0};
  c.quick = quick;
  c.threads = be_default_threads();
  c.o1 = be_options_default();
  c.o1.threads = 1;
  c.o1.use_cache = 0; /* measuring must not fill the user's compile cache */
  c.on = c.o1;
  c.on.threads = c.threads;
  c.runs = quick ? 3 : 10;
  c.budget = quick ? 0.01 : 0.1;
  c.err = err;
  c.n = n;
  p->threads = c.threads;
  p->parallel_min_elems = BE_SPLIT_ELEMS; /* until measure_split */
  cpu_name(p->cpu, sizeof p->cpu);
  if (lg) fprintf(lg, "tlaloc calibrate%s: %s, %d thread%s\n", quick ? " --quick" : "", p->cpu,
                   c.threads, c.threads > 1 ? "s" : "");
  if (measure_overheads(&c, p, lg) || measure_par_overhead(&c, p, lg) || measure_bandwidth(&c, p, lg) ||
      measure_flops(&c, p, lg) || measure_rows(&c, p, lg) || measure_vmath(&c, p, lg) || measure_math(&c, p, lg) ||
      measure_blas(&c, p, lg) || measure_gemm(&c, p, lg) || tl_calibrate_gpu(p, quick, lg, err, n)) {
    tl_profile_default(p);
    return -1;
  }
  p->measured = true;
  return 0;
}
