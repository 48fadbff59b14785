/* bench-cost.c - how well the time model ranks programs: predicted
 * (tl_cost_predict) against measured (be_run, minimum of several runs)
 * program time, over every example graph and a set of random graphs, with
 * Spearman's rank correlation, Kendall's tau-b and the median ratio
 * predicted/measured. The predictions come from a profile measured in the
 * same run (tl_calibrate) and, for comparison, from the built-in defaults.
 *
 * Examples: all symbolic dims get one size, doubled from 256 until the
 * program takes its target time; the targets are spread log-uniformly over
 * 0.1-20 ms so that the set spans the range. Random graphs: elementwise
 * chains with transcendental ops (their arguments guarded so that every
 * value stays finite: the math library's special-value paths are another
 * cost), row reductions and normalisations broadcast back, and matmuls,
 * on f32 or f64 arrays of 16 Ki to 4 Mi elements.
 *
 * The smoke run (small sizes, one run, the default profile) is a test: it
 * also checks each compiled program's outputs against the interpreter's on
 * the same inputs (f32 1e-4, f64 1e-9, relative to the larger value plus
 * the output's largest magnitude, at least 1: the inputs are about 1, and
 * an output that cancels to ~0 keeps f32's absolute error) and that every prediction and
 * measurement is a positive number; a mismatch, a compile or run error
 * exits 1.
 *
 * usage: bench-cost SOURCE_DIR [--smoke] [--profile PATH] [--runs N] [--graphs N] [--seed N]
 *                   [--dump DIR]   (writes the random graphs there, for tlaloc cost-report) */
#include "measure/calibrate.h"

#include "interp/interp.h"
#include "ir/tg.h"
#include "util/util.h"

#include <dirent.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int runs = 5, smoke = 0;
static const char *dump; /* --dump DIR: write each random graph there as .tg */

typedef struct point {
  char name[64];
  char size[48];
  int nks;
  double pred, pred_def, meas; /* seconds */
  bool random;
} point;

static point *pts;
static int npts, cappts;

/* ---- statistics ---------------------------------------------------------- */

/* Ranks 1..n of v (ties get their mean rank). */
static void ranks(const double *v, int n, double *r) {
  int *ix = tl_xmalloc((size_t)n * sizeof *ix);
  for (int i = 0; i < n; i++) ix[i] = i;
  for (int i = 1; i < n; i++) /* insertion sort: n is small */
    for (int j = i; j > 0 && v[ix[j]] < v[ix[j - 1]]; j--) {
      int t = ix[j];
      ix[j] = ix[j - 1];
      ix[j - 1] = t;
    }
  for (int i = 0; i < n;) {
    int j = i;
    while (j + 1 < n && v[ix[j + 1]] == v[ix[i]]) j++;
    for (int k = i; k <= j; k++) r[ix[k]] = (i + j) / 2.0 + 1;
    i = j + 1;
  }
  tl_free(ix);
}

static double pearson(const double *a, const double *b, int n) {
  double ma = 0, mb = 0, sab = 0, saa = 0, sbb = 0;
  for (int i = 0; i < n; i++) ma += a[i], mb += b[i];
  ma /= n, mb /= n;
  for (int i = 0; i < n; i++) {
    sab += (a[i] - ma) * (b[i] - mb);
    saa += (a[i] - ma) * (a[i] - ma);
    sbb += (b[i] - mb) * (b[i] - mb);
  }
  return saa > 0 && sbb > 0 ? sab / sqrt(saa * sbb) : NAN;
}

static double spearman(const double *a, const double *b, int n) {
  double *ra = tl_xmalloc((size_t)n * sizeof *ra), *rb = tl_xmalloc((size_t)n * sizeof *rb);
  ranks(a, n, ra);
  ranks(b, n, rb);
  double r = pearson(ra, rb, n);
  tl_free(ra);
  tl_free(rb);
  return r;
}

static double kendall_b(const double *a, const double *b, int n) {
  double conc = 0, disc = 0, ta = 0, tb = 0;
  for (int i = 0; i < n; i++)
    for (int j = i + 1; j < n; j++) {
      double da = a[i] - a[j], db = b[i] - b[j];
      if (da == 0 && db == 0) continue;
      if (da == 0) ta++;
      else if (db == 0) tb++;
      else if ((da > 0) == (db > 0)) conc++;
      else disc++;
    }
  double d = sqrt((conc + disc + ta) * (conc + disc + tb));
  return d > 0 ? (conc - disc) / d : NAN;
}

static int cmp_double(const void *x, const void *y) {
  double a = *(const double *)x, b = *(const double *)y;
  return (a > b) - (a < b);
}

static double median(double *v, int n) {
  qsort(v, (size_t)n, sizeof *v, cmp_double);
  return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

/* One summary line over the points selected by which (0 all, 1 examples,
 * 2 random) for one prediction column. */
static void summary(const char *what, int which, bool defaults) {
  double *p = tl_xmalloc(((size_t)npts + 1) * sizeof *p), *m = tl_xmalloc(((size_t)npts + 1) * sizeof *m);
  double *ratio = tl_xmalloc(((size_t)npts + 1) * sizeof *ratio);
  int n = 0, within2 = 0;
  for (int i = 0; i < npts; i++) {
    if ((which == 1 && pts[i].random) || (which == 2 && !pts[i].random)) continue;
    p[n] = defaults ? pts[i].pred_def : pts[i].pred;
    m[n] = pts[i].meas;
    ratio[n] = p[n] / m[n];
    if (ratio[n] >= 0.5 && ratio[n] <= 2) within2++;
    n++;
  }
  if (n >= 2) {
    double rho = spearman(p, m, n), tau = kendall_b(p, m, n);
    double lo = 1e300, hi = 0;
    for (int i = 0; i < n; i++) lo = fmin(lo, ratio[i]), hi = fmax(hi, ratio[i]);
    printf("| %-34s | %3d | %7.3f | %7.3f | %6.2f | %5.2f-%-6.2f | %3d/%-3d |\n", what, n, rho, tau,
           median(ratio, n), lo, hi, within2, n);
  }
  tl_free(p);
  tl_free(m);
  tl_free(ratio);
}

/* ---- measuring one graph ------------------------------------------------- */

/* The compiled program's outputs against the interpreter's on in. 0, or -1
 * with the first mismatch printed. */
static int check_outputs(const char *name, const tl_graph *g, be_program *prog, tl_tensor **in,
                         const int64_t *syms) {
  tl_error err = {0};
  int no = g->noutputs, rc = 0;
  tl_tensor **got = tl_xcalloc((size_t)no + 1, sizeof *got), **ref = tl_xcalloc((size_t)no + 1, sizeof *ref);
  if (be_run(prog, in, syms, got, &err) || tl_interp_run(g, in, syms, ref, TL_EMSG(&err))) {
    fprintf(stderr, "bench-cost: %s: %s\n", name, err.msg);
    rc = -1;
  }
  for (int o = 0; o < no && !rc; o++) {
    const tl_tensor *a = got[o], *b = ref[o];
    if (a->dtype != b->dtype || a->numel != b->numel) {
      fprintf(stderr, "bench-cost: %s: output %d: compiled and interpreted differ in dtype or size\n", name, o);
      rc = -1;
      break;
    }
    bool fl = tl_dtype_is_float((tl_dtype)a->dtype);
    double t = a->dtype == TL_F64 ? 1e-9 : 1e-4, scale = 0;
    for (int64_t k = 0; k < b->numel && fl; k++)
      if (isfinite(tl_tensor_get_f64(b, k))) scale = fmax(scale, fabs(tl_tensor_get_f64(b, k)));
    for (int64_t k = 0; k < a->numel; k++) {
      double x = tl_tensor_get_f64(a, k), y = tl_tensor_get_f64(b, k);
      bool ok = !fl                        ? tl_tensor_get_i64(a, k) == tl_tensor_get_i64(b, k)
                : isnan(x) || isnan(y)     ? isnan(x) && isnan(y)
                : isinf(x) || isinf(y)     ? x == y
                                           : fabs(x - y) <= t * (fmax(fabs(x), fabs(y)) + fmax(scale, 1));
      if (!ok) {
        fprintf(stderr, "bench-cost: %s: output %d element %lld: compiled %.9g, interpreted %.9g\n", name, o,
                (long long)k, x, y);
        rc = -1;
        break;
      }
    }
  }
  for (int o = 0; o < no; o++) tl_tensor_free(got[o]), tl_tensor_free(ref[o]);
  tl_free(got);
  tl_free(ref);
  return rc;
}

/* Predicts and measures g under syms; appends a point. -1 on failure. */
static int measure(const tl_profile *prof, const tl_profile *def, tl_graph *g, const int64_t *syms,
                   const char *name, const char *size, bool random, be_program *prog) {
  char err[512];
  tl_program_cost pc, pd;
  if (tl_cost_predict(prof, g, syms, &pc, err, sizeof err) || tl_cost_predict(def, g, syms, &pd, err, sizeof err)) {
    fprintf(stderr, "bench-cost: %s: %s\n", name, err);
    return -1;
  }
  tl_tensor **in = tl_xcalloc((size_t)g->ninputs + 1, sizeof *in);
  double t = -1;
  if (!tl_timing_inputs(g, syms, in, err, sizeof err))
    t = tl_time_run(prog, in, syms, runs, smoke ? 0 : 0.02, err, sizeof err);
  if (t < 0) fprintf(stderr, "bench-cost: %s: %s\n", name, err);
  bool bad = t < 0 || (smoke && check_outputs(name, g, prog, in, syms));
  if (!bad && !(t > 0 && pc.total > 0 && pd.total > 0 && isfinite(pc.total) && isfinite(pd.total))) {
    fprintf(stderr, "bench-cost: %s: measured %g s, predicted %g s, defaults %g s: not positive numbers\n", name, t,
            pc.total, pd.total);
    bad = true;
  }
  for (int i = 0; i < g->ninputs; i++) tl_tensor_free(in[i]);
  tl_free(in);
  if (bad) {
    tl_program_cost_free(&pc);
    tl_program_cost_free(&pd);
    return -1;
  }
  TL_GROW(pts, npts, cappts);
  point *pt = &pts[npts++];
  memset(pt, 0, sizeof *pt);
  snprintf(pt->name, sizeof pt->name, "%s", name);
  snprintf(pt->size, sizeof pt->size, "%s", size);
  pt->nks = pc.nks;
  pt->pred = pc.total;
  pt->pred_def = pd.total;
  pt->meas = t;
  pt->random = random;
  printf("| %-22s | %-18s | %3d | %10.4f | %10.4f | %10.4f | %6.2f |\n", name, size, pc.nks, t * 1e3, pc.total * 1e3,
         pd.total * 1e3, pc.total / t);
  fflush(stdout);
  tl_program_cost_free(&pc);
  tl_program_cost_free(&pd);
  return 0;
}

/* The examples, each at the size that makes it take about target seconds. */
static int run_examples(const char *srcdir, const tl_profile *prof, const tl_profile *def) {
  char dir[4096];
  snprintf(dir, sizeof dir, "%s/examples", srcdir);
  DIR *dp = opendir(dir);
  if (!dp) {
    fprintf(stderr, "bench-cost: cannot read %s\n", dir);
    return -1;
  }
  char **names = NULL;
  int nn = 0, cap = 0;
  struct dirent *de;
  while ((de = readdir(dp))) {
    size_t l = strlen(de->d_name);
    if (l < 4 || strcmp(de->d_name + l - 3, ".tg")) continue;
    TL_GROW(names, nn, cap);
    names[nn++] = tl_xstrdup(de->d_name);
  }
  closedir(dp);
  for (int i = 1; i < nn; i++) /* a stable order: by name */
    for (int j = i; j > 0 && strcmp(names[j], names[j - 1]) < 0; j--) {
      char *t = names[j];
      names[j] = names[j - 1];
      names[j - 1] = t;
    }
  int rc = 0;
  be_options o = be_options_default();
  o.use_cache = 0;
  for (int i = 0; i < nn && !rc; i++) {
    char path[8192];
    snprintf(path, sizeof path, "%s/%s", dir, names[i]);
    tl_graph *g = tl_tg_load(path, stderr);
    if (!g) {
      rc = -1;
      break;
    }
    tl_error err = {0};
    be_program *prog = be_compile(g, &o, &err);
    if (!prog) {
      fprintf(stderr, "bench-cost: %s: %s\n", names[i], err.msg);
      tl_graph_free(g);
      rc = -1;
      break;
    }
    double target = 1e-4 * pow(200, nn > 1 ? (double)i / (nn - 1) : 0);
    int64_t *syms = tl_xcalloc((size_t)g->nsyms + 1, sizeof *syms);
    int64_t v = smoke ? 64 : 256;
    /* grow the size until one run takes the target (at most 2^24) */
    while (!smoke && g->nsyms > 0 && v < (1 << 24)) {
      for (int s = 0; s < g->nsyms; s++) syms[s] = v;
      tl_tensor **in = tl_xcalloc((size_t)g->ninputs + 1, sizeof *in);
      double t = -1;
      if (!tl_timing_inputs(g, syms, in, TL_EMSG(&err))) t = tl_time_run(prog, in, syms, 1, 0, TL_EMSG(&err));
      for (int k = 0; k < g->ninputs; k++) tl_tensor_free(in[k]);
      tl_free(in);
      if (t < 0 || t >= target) break;
      /* quadratic graphs (attention) grow fast: smaller steps near the end */
      v = (int64_t)((double)v * (t < target / 8 ? 2 : 1.25));
    }
    for (int s = 0; s < g->nsyms; s++) syms[s] = v;
    char size[48] = "";
    for (int s = 0; s < g->nsyms && s < 3; s++)
      snprintf(size + strlen(size), sizeof size - strlen(size), "%s%s=%lld", s ? " " : "", g->syms[s], (long long)v);
    if (!g->nsyms) snprintf(size, sizeof size, "fixed");
    char name[64];
    snprintf(name, sizeof name, "%.*s", (int)(strlen(names[i]) - 3), names[i]);
    rc = measure(prof, def, g, syms, name, size, false, prog);
    tl_free(syms);
    be_program_free(prog);
    tl_graph_free(g);
  }
  for (int i = 0; i < nn; i++) tl_free(names[i]);
  tl_free(names);
  return rc;
}

/* ---- random graphs -------------------------------------------------------- */

static uint64_t rs;
static uint64_t rnd(void) { /* splitmix64 */
  uint64_t z = (rs += 0x9e3779b97f4a7c15ULL);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}
static int pick(int n) { return (int)(rnd() % (uint64_t)n); }

typedef struct gen {
  tl_graph *g;
  int32_t *vals; /* values of the full shape, usable as operands */
  int nv, capv;
  char err[256];
} gen;

static int32_t add(gen *q, int op, const tl_attrs *a, int32_t x, int32_t y) {
  tl_attrs none;
  tl_attrs_init(&none);
  int32_t in[2] = {x, y};
  return tl_graph_add(q->g, op, a ? a : &none, in, y < 0 ? 1 : 2, (tl_loc){0, 0}, q->err, sizeof q->err);
}

static int32_t lit(gen *q, double v) {
  tl_attrs a;
  tl_attrs_init(&a);
  a.f = v;
  return tl_graph_add(q->g, TL_OP_LIT, &a, NULL, 0, (tl_loc){0, 0}, q->err, sizeof q->err);
}

/* A bounded value in (-1, 1): the argument of exp-like ops. */
static int32_t bounded(gen *q, int32_t x) { return add(q, pick(2) ? TL_OP_TANH : TL_OP_SIN, NULL, x, -1); }
/* A value >= 0.5: the argument of log-like ops. */
static int32_t positive(gen *q, int32_t x) { return add(q, TL_OP_ADD, NULL, add(q, TL_OP_ABS, NULL, x, -1), lit(q, 0.5)); }

static int32_t unary(gen *q, int32_t x) {
  static const int plain[] = {TL_OP_TANH, TL_OP_SIGMOID, TL_OP_SIN, TL_OP_COS, TL_OP_ERF, TL_OP_SOFTPLUS,
                              TL_OP_NEG, TL_OP_ABS, TL_OP_ERFC};
  static const int pos[] = {TL_OP_LOG, TL_OP_SQRT, TL_OP_LOG1P, TL_OP_RECIPROCAL};
  static const int bnd[] = {TL_OP_EXP, TL_OP_EXPM1};
  switch (pick(3)) {
  case 0: return add(q, plain[pick(sizeof plain / sizeof *plain)], NULL, x, -1);
  case 1: return add(q, pos[pick(sizeof pos / sizeof *pos)], NULL, positive(q, x), -1);
  default: return add(q, bnd[pick(sizeof bnd / sizeof *bnd)], NULL, bounded(q, x), -1);
  }
}

static int32_t binary(gen *q, int32_t x, int32_t y) {
  static const int ops[] = {TL_OP_ADD, TL_OP_SUB, TL_OP_MUL, TL_OP_MAXIMUM, TL_OP_MINIMUM, TL_OP_LOGADDEXP};
  int k = pick(8);
  if (k == 6) return add(q, TL_OP_DIV, NULL, x, positive(q, y));
  if (k == 7) return add(q, TL_OP_POW, NULL, positive(q, x), bounded(q, y));
  int32_t r = add(q, ops[pick(sizeof ops / sizeof *ops)], NULL, x, y);
  /* keep sums of sums from growing without bound */
  return pick(3) ? r : bounded(q, r);
}

/* A row reduction (keepdims, broadcast back by the consumer) or a row
 * normalisation over the last axis. */
static int32_t rowop(gen *q, int32_t x, int rank) {
  static const int reds[] = {TL_OP_SUM, TL_OP_MAX, TL_OP_MEAN, TL_OP_LOGSUMEXP, TL_OP_MIN};
  tl_attrs a;
  tl_attrs_init(&a);
  a.present = TL_A_AXIS;
  a.naxes = 1;
  a.axes[0] = (int8_t)(rank - 1);
  if (pick(3) == 0) return add(q, pick(2) ? TL_OP_SOFTMAX : TL_OP_LOG_SOFTMAX, &a, x, -1);
  a.present |= TL_A_KEEPDIMS;
  a.keepdims = 1;
  int op = reds[pick(sizeof reds / sizeof *reds)];
  int32_t r = add(q, op, &a, x, -1);
  return add(q, TL_OP_SUB, NULL, x, op == TL_OP_SUM ? add(q, TL_OP_MUL, NULL, r, lit(q, 0.01)) : r);
}

static tl_graph *random_graph(int idx, char *size, size_t sn) {
  gen q = {0};
  q.g = tl_graph_new("random");
  int dt = pick(4) ? TL_F32 : TL_F64;
  int rank = 1 + pick(2);
  /* 2^14 .. 2^22 elements, log-uniform */
  int lg = smoke ? 10 + pick(4) : 14 + pick(9);
  int64_t dims[2] = {(int64_t)1 << lg, 1};
  if (rank == 1) dims[0] = (int64_t)1 << lg;
  else {
    int c = 4 + pick(lg - 6);
    dims[1] = (int64_t)1 << c;
    dims[0] = (int64_t)1 << (lg - c);
  }
  snprintf(size, sn, rank == 1 ? "%s [%lld]" : "%s [%lld %lld]", dt == TL_F32 ? "f32" : "f64", (long long)dims[0],
           (long long)dims[1]);
  int nin = 1 + pick(3);
  for (int i = 0; i < nin; i++) {
    tl_type t = {.dtype = (uint8_t)dt, .rank = (uint8_t)rank};
    memcpy(t.dims, dims, sizeof dims);
    if (i > 0 && rank == 2 && pick(3) == 0) { /* a row vector, broadcast */
      t.rank = 1;
      t.dims[0] = dims[1];
    }
    char name[16];
    snprintf(name, sizeof name, "x%d", i);
    int32_t id = tl_graph_add_input(q.g, name, &t, (tl_loc){0, 0});
    if (t.rank == rank) {
      TL_GROW(q.vals, q.nv, q.capv);
      q.vals[q.nv++] = id;
    } else {
      /* used through a binary op with a full-shape value */
      int32_t v = add(&q, TL_OP_MUL, NULL, q.vals[0], id);
      TL_GROW(q.vals, q.nv, q.capv);
      q.vals[q.nv++] = v;
    }
  }
  /* a square matmul when rows are few enough to keep it under ~20 ms */
  if (rank == 2 && dims[1] <= 512 && pick(3) == 0) {
    tl_type w = {.dtype = (uint8_t)dt, .rank = 2, .dims = {dims[1], dims[1]}};
    int32_t wi = tl_graph_add_input(q.g, "w", &w, (tl_loc){0, 0});
    int32_t m = add(&q, TL_OP_MATMUL, NULL, q.vals[pick(q.nv)], wi);
    TL_GROW(q.vals, q.nv, q.capv);
    q.vals[q.nv++] = m;
  }
  int steps = 3 + pick(10);
  for (int s = 0; s < steps; s++) {
    int32_t x = q.vals[q.nv - 1 - pick(q.nv < 3 ? q.nv : 3)], v;
    int k = pick(10);
    if (k < 4) v = unary(&q, x);
    else if (k < 8) v = binary(&q, x, q.vals[pick(q.nv)]);
    else v = rowop(&q, x, rank);
    if (v < 0) {
      fprintf(stderr, "bench-cost: random graph %d: %s\n", idx, q.err);
      tl_free(q.vals);
      tl_graph_free(q.g);
      return NULL;
    }
    TL_GROW(q.vals, q.nv, q.capv);
    q.vals[q.nv++] = v;
  }
  tl_graph_add_output(q.g, "y", q.vals[q.nv - 1]);
  if (pick(4) == 0 && q.nv > nin + 2) tl_graph_add_output(q.g, "z", q.vals[nin + pick(q.nv - nin - 1)]);
  tl_free(q.vals);
  return q.g;
}

static int run_random(int count, uint64_t seed, const tl_profile *prof, const tl_profile *def) {
  rs = seed;
  be_options o = be_options_default();
  o.use_cache = 0;
  for (int i = 0; i < count; i++) {
    char size[48], name[32];
    tl_error err = {0};
    tl_graph *g = random_graph(i, size, sizeof size);
    if (!g) return -1;
    snprintf(name, sizeof name, "random %d", i);
    if (dump) {
      char path[4096];
      snprintf(path, sizeof path, "%s/random%d.tg", dump, i);
      FILE *f = fopen(path, "w");
      char *text = tl_tg_print(g);
      if (!f || fputs(text, f) < 0 || fclose(f)) fprintf(stderr, "bench-cost: cannot write %s\n", path);
      tl_free(text);
    }
    be_program *prog = be_compile(g, &o, &err);
    if (!prog) {
      char *text = tl_tg_print(g);
      fprintf(stderr, "bench-cost: %s: %s\n%s", name, err.msg, text);
      tl_free(text);
      tl_graph_free(g);
      return -1;
    }
    int rc = measure(prof, def, g, NULL, name, size, true, prog);
    be_program_free(prog);
    tl_graph_free(g);
    if (rc) return -1;
  }
  return 0;
}

int main(int argc, char **argv) {
  const char *srcdir = argc > 1 ? argv[1] : ".", *ppath = NULL;
  int ngraphs = 30;
  uint64_t seed = 5;
  for (int i = 2; i < argc; i++) {
    bool v = i + 1 < argc;
    if (!strcmp(argv[i], "--smoke")) smoke = 1;
    else if (!strcmp(argv[i], "--profile") && v) ppath = argv[++i];
    else if (!strcmp(argv[i], "--runs") && v) runs = atoi(argv[++i]);
    else if (!strcmp(argv[i], "--graphs") && v) ngraphs = atoi(argv[++i]);
    else if (!strcmp(argv[i], "--seed") && v) seed = strtoull(argv[++i], NULL, 10);
    else if (!strcmp(argv[i], "--dump") && v) dump = argv[++i];
    else {
      fprintf(stderr, "usage: bench-cost SOURCE_DIR [--smoke] [--profile PATH] [--runs N] [--graphs N] [--seed N] [--dump DIR]\n");
      return 2;
    }
  }
  if (runs < 1) runs = 1;
  if (smoke) runs = 1;
  char err[1024] = "";
  tl_profile prof, def;
  tl_profile_default(&def);
  FILE *la = fopen("/proc/loadavg", "r");
  char lbuf[128] = "?\n";
  if (la) {
    if (!fgets(lbuf, sizeof lbuf, la)) snprintf(lbuf, sizeof lbuf, "?\n");
    fclose(la);
  }
  printf("load average at start: %s", lbuf);
  if (ppath) {
    if (tl_profile_load(ppath, &prof, err, sizeof err)) {
      fprintf(stderr, "bench-cost: %s\n", err[0] ? err : "no profile there");
      return 2;
    }
    printf("profile: %s\n", ppath);
  } else if (smoke) {
    prof = def;
    printf("profile: defaults (smoke run)\n");
  } else {
    printf("profile: measured now (tl_calibrate)\n");
    if (tl_calibrate(&prof, false, stdout, err, sizeof err)) {
      fprintf(stderr, "bench-cost: calibration failed: %s\n", err);
      return 1;
    }
  }
  printf("\n| graph | size | kernels | measured ms | predicted ms | defaults ms | pred/meas |\n"
         "|---|---|---|---|---|---|---|\n");
  double t0 = tl_now_ms();
  if (run_examples(srcdir, &prof, &def) || run_random(ngraphs, seed, &prof, &def)) {
    printf("FAILED (see the message above)\n");
    return 1;
  }
  printf("\n(measured: minimum of %d runs and at least %s; %d graphs in %.1f s)\n\n", runs,
         smoke ? "1 run" : "20 ms", npts, (tl_now_ms() - t0) * 1e-3);
  printf("| predictions from | n | Spearman | Kendall tau-b | median pred/meas | range | within 2x |\n"
         "|---|---|---|---|---|---|---|\n");
  summary("measured profile, all graphs", 0, false);
  summary("measured profile, examples", 1, false);
  summary("measured profile, random graphs", 2, false);
  summary("defaults, all graphs", 0, true);
  tl_free(pts);
  return 0;
}
