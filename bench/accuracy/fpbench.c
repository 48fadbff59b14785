/* fpbench.c - the FPBench row of the accuracy benchmark: FPBench's
 * expressions (bench/accuracy/fpbench/, converted once from FPCore by
 * fpcore2tg.py), each evaluated before and after `tl_opt_graph` with the
 * default rules and cost, by the reference interpreter in f64, against an
 * MPFR reference; the error in bits as Herbie measures it.
 *
 *   bench-fpbench [--points N] [--seed S] [--smoke] [--table] [DIR|FILE.tg]...
 *
 * Sampling (as Herbie does): each input is drawn uniformly among the f64
 * values of its declared `:range` (all finite values when none), that is
 * uniformly over the values' bit patterns, not over the reals; points that
 * fail the `; where:` line of the file (the precondition's part no range
 * can say) or whose exact result is not a finite f64 are drawn again.
 *
 * The reference: every node evaluated in MPFR at 256 bits, then at twice
 * the precision until two precisions round to the same f64 (up to 16384
 * bits; a point that never settles is dropped and counted). Error of a
 * value v against the rounded exact result r: log2(1 + the number of f64
 * values between them) (so 0 is exact and 64 is everything wrong); v NaN
 * or infinite where r is finite counts 64. An expression's error is the
 * mean over its points.
 *
 * Prints, per expression, bits before and after and the difference, and
 * the totals: how many improved by >= 1 bit, unchanged, worse by > 1 bit.
 * Exit status: 1 when an expression cannot be read, evaluated or
 * optimized; with --smoke (few points, a test) also when an expression
 * gets worse by more than 1 bit on average (the guarantee of
 * docs/accuracy.md). 0 otherwise. */
#include <float.h>
#include <math.h>
#include <mpfr.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <dirent.h>
#include <sys/stat.h>

#include "interp/interp.h"
#include "ir/diag.h"
#include "ir/tg.h"
#include "opt/opt.h"
#include "util/util.h"

#define MAX_PREC 16384
#define MAX_IN 16

/* ---- f64 values as ordinals (Herbie's ulp distance) ------------------ */

static int64_t ord(double x) {
  int64_t b;
  if (x == 0) return 0;
  memcpy(&b, &x, sizeof b);
  return b < 0 ? -(b & INT64_MAX) : b;
}

static double from_ord(int64_t o) {
  int64_t b = o < 0 ? ((-o) | INT64_MIN) : o;
  double x;
  memcpy(&x, &b, sizeof x);
  return x;
}

static double bits_error(double v, double r) {
  if (!isfinite(v)) return 64;
  double d = fabs((double)ord(v) - (double)ord(r));
  return log2(1 + d);
}

static uint64_t rng_state;
static uint64_t rng(void) {
  uint64_t z = (rng_state += 0x9e3779b97f4a7c15ULL);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}

/* Uniform over the f64 values in [lo, hi] (finite). */
static double draw(double lo, double hi) {
  int64_t a = ord(lo), b = ord(hi);
  uint64_t span = (uint64_t)(b - a);
  uint64_t k = span == UINT64_MAX ? rng() : rng() % (span + 1);
  return from_ord(a + (int64_t)k);
}

/* ---- the MPFR evaluator ------------------------------------------------ */

/* Evaluates g's nodes at one point (x[i]: input i) at precision prec into
 * v[] (initialised by the caller to at least prec bits). 0, or -1 with the
 * op it cannot evaluate in *bad. */
static int mp_eval(const tl_graph *g, const double *x, mpfr_t *v, mpfr_prec_t prec, int *bad) {
  const mpfr_rnd_t R = MPFR_RNDN;
  mpfr_t t, u;
  mpfr_inits2(prec, t, u, (mpfr_ptr)0);
  int rc = 0;
  for (int32_t id = 0; id < g->nnodes && rc == 0; id++) {
    const tl_node *n = &g->nodes[id];
    mpfr_set_prec(v[id], prec);
    const int32_t *in = tl_node_inputs(g, n);
    mpfr_ptr a = n->ninputs > 0 ? v[in[0]] : NULL, b = n->ninputs > 1 ? v[in[1]] : NULL;
    mpfr_ptr r = v[id];
    switch (n->op) {
    case TL_OP_INPUT: {
      int k = 0;
      while (g->inputs[k] != id) k++;
      mpfr_set_d(r, x[k], R);
      break;
    }
    case TL_OP_LIT:
    case TL_OP_FILL:
      if (n->attrs.is_int) mpfr_set_si(r, (long)n->attrs.i, R);
      else mpfr_set_d(r, n->attrs.f, R);
      break;
    case TL_OP_NEG: mpfr_neg(r, a, R); break;
    case TL_OP_ABS: mpfr_abs(r, a, R); break;
    case TL_OP_SQRT: mpfr_sqrt(r, a, R); break;
    case TL_OP_CBRT: mpfr_cbrt(r, a, R); break;
    case TL_OP_EXP: mpfr_exp(r, a, R); break;
    case TL_OP_EXPM1: mpfr_expm1(r, a, R); break;
    case TL_OP_LOG: mpfr_log(r, a, R); break;
    case TL_OP_LOG1P: mpfr_log1p(r, a, R); break;
    case TL_OP_SIN: mpfr_sin(r, a, R); break;
    case TL_OP_COS: mpfr_cos(r, a, R); break;
    case TL_OP_TAN: mpfr_tan(r, a, R); break;
    case TL_OP_ASIN: mpfr_asin(r, a, R); break;
    case TL_OP_ACOS: mpfr_acos(r, a, R); break;
    case TL_OP_ATAN: mpfr_atan(r, a, R); break;
    case TL_OP_SINH: mpfr_sinh(r, a, R); break;
    case TL_OP_COSH: mpfr_cosh(r, a, R); break;
    case TL_OP_TANH: mpfr_tanh(r, a, R); break;
    case TL_OP_ASINH: mpfr_asinh(r, a, R); break;
    case TL_OP_ACOSH: mpfr_acosh(r, a, R); break;
    case TL_OP_ATANH: mpfr_atanh(r, a, R); break;
    case TL_OP_ERF: mpfr_erf(r, a, R); break;
    case TL_OP_ERFC: mpfr_erfc(r, a, R); break;
    case TL_OP_FLOOR: mpfr_floor(r, a); break;
    case TL_OP_CEIL: mpfr_ceil(r, a); break;
    case TL_OP_RECIPROCAL: mpfr_ui_div(r, 1, a, R); break;
    case TL_OP_ADD: mpfr_add(r, a, b, R); break;
    case TL_OP_SUB: mpfr_sub(r, a, b, R); break;
    case TL_OP_MUL: mpfr_mul(r, a, b, R); break;
    case TL_OP_DIV: mpfr_div(r, a, b, R); break;
    case TL_OP_POW: mpfr_pow(r, a, b, R); break;
    case TL_OP_ATAN2: mpfr_atan2(r, a, b, R); break;
    case TL_OP_HYPOT: mpfr_hypot(r, a, b, R); break;
    case TL_OP_MAXIMUM: mpfr_max(r, a, b, R); break;
    case TL_OP_MINIMUM: mpfr_min(r, a, b, R); break;
    case TL_OP_EQ: mpfr_set_si(r, mpfr_equal_p(a, b), R); break;
    case TL_OP_NE: mpfr_set_si(r, !mpfr_equal_p(a, b) && !mpfr_unordered_p(a, b), R); break;
    case TL_OP_LT: mpfr_set_si(r, mpfr_less_p(a, b), R); break;
    case TL_OP_LE: mpfr_set_si(r, mpfr_lessequal_p(a, b), R); break;
    case TL_OP_GT: mpfr_set_si(r, mpfr_greater_p(a, b), R); break;
    case TL_OP_GE: mpfr_set_si(r, mpfr_greaterequal_p(a, b), R); break;
    case TL_OP_AND: mpfr_set_si(r, !mpfr_zero_p(a) && !mpfr_zero_p(b), R); break;
    case TL_OP_OR: mpfr_set_si(r, !mpfr_zero_p(a) || !mpfr_zero_p(b), R); break;
    case TL_OP_NOT: mpfr_set_si(r, mpfr_zero_p(a), R); break;
    case TL_OP_WHERE: mpfr_set(r, mpfr_zero_p(a) ? v[in[2]] : b, R); break;
    default:
      *bad = n->op;
      rc = -1;
    }
  }
  mpfr_clears(t, u, (mpfr_ptr)0);
  return rc;
}

/* The exact value of output 0 at x, rounded to f64: 0, 1 when it never
 * settled, -1 when the graph has an op the evaluator lacks. */
static int exact(const tl_graph *g, const double *x, mpfr_t *v, double *out, int *bad) {
  int32_t o = g->outputs[0].node;
  double prev = NAN;
  for (mpfr_prec_t p = 256; p <= MAX_PREC; p *= 2) {
    if (mp_eval(g, x, v, p, bad)) return -1;
    double d = mpfr_get_d(v[o], MPFR_RNDN);
    if (p > 256 && (d == prev || (isnan(d) && isnan(prev)))) {
      *out = d;
      return 0;
    }
    prev = d;
  }
  return 1;
}

/* ---- files ------------------------------------------------------------ */

static tl_graph *parse_text(const char *name, const char *src) {
  tl_diag d;
  tl_diag_init(&d, name, src, strlen(src));
  tl_graph *g = tl_tg_parse(src, strlen(src), &d);
  if (!g || d.nerrors) {
    fprintf(stderr, "%s", tl_diag_text(&d));
    tl_graph_free(g);
    g = NULL;
  }
  tl_diag_free(&d);
  return g;
}

/* The `; where:` expression of src as a graph over g's inputs, or NULL
 * (none; *fail set on a parse error). */
static tl_graph *where_graph(const char *path, const char *src, const tl_graph *g, bool *fail) {
  const char *w = strstr(src, "\n; where: ");
  if (!w) return NULL;
  w += strlen("\n; where: ");
  const char *e = strchr(w, '\n');
  tl_buf b = {0};
  tl_buf_printf(&b, "(graph where");
  for (int i = 0; i < g->ninputs; i++)
    tl_buf_printf(&b, " (in %s f64 [n])", g->names[g->nodes[g->inputs[i]].name]);
  tl_buf_printf(&b, " (out ok %.*s))", (int)(e - w), w);
  tl_graph *p = parse_text(path, b.s);
  free(b.s);
  if (!p) *fail = true;
  return p;
}

static tl_tensor *run1(const tl_graph *g, tl_tensor **ins, char *err, size_t n) {
  int64_t syms[8];
  for (int i = 0; i < 8; i++) syms[i] = -1;
  tl_tensor *out[4] = {NULL, NULL, NULL, NULL};
  if (g->noutputs > 4 || g->nsyms > 8) {
    snprintf(err, n, "too many outputs or symbols");
    return NULL;
  }
  if (tl_bind_inputs(g, ins, syms, err, n) || tl_interp_run(g, ins, syms, out, err, n)) return NULL;
  for (int i = 1; i < g->noutputs; i++) tl_tensor_free(out[i]);
  return out[0];
}

typedef struct result {
  char *name;
  double before, after;
  int points, dropped;
  bool rewritten;
  bool skipped; /* too few valid sample points */
} result;

typedef struct run_opts {
  int points;
  bool smoke;
} run_opts;

/* One expression: 0, or -1 (message printed). */
static int bench_file(const char *path, tl_opt *o, const run_opts *ro, result *res) {
  char err[4096];
  size_t len;
  char *src = tl_read_file(path, &len, err, sizeof err);
  if (!src) {
    fprintf(stderr, "bench-fpbench: %s\n", err);
    return -1;
  }
  int rc = -1;
  bool wfail = false;
  tl_graph *g = parse_text(path, src), *wg = NULL, *best = NULL;
  tl_tensor *ins[MAX_IN] = {0}, *wins[MAX_IN] = {0};
  mpfr_t *v = NULL;
  double *xs = NULL, *ref = NULL;
  if (!g) goto done;
  if (g->ninputs > MAX_IN || g->noutputs != 1) {
    fprintf(stderr, "%s: expected at most %d inputs and one output\n", path, MAX_IN);
    goto done;
  }
  wg = where_graph(path, src, g, &wfail);
  if (wfail) goto done;
  best = tl_opt_graph(o, g, err, sizeof err);
  if (!best) {
    fprintf(stderr, "%s: optimizing: %s\n", path, err);
    goto done;
  }
  char *t1 = tl_tg_print(g), *t2 = tl_tg_print(best);
  res->rewritten = strcmp(t1, t2) != 0;
  free(t1);
  free(t2);
  int N = ro->points, ni = g->ninputs, batch = 4 * N;
  double lo[MAX_IN], hi[MAX_IN];
  for (int i = 0; i < ni; i++) {
    if (!tl_graph_range(g, g->inputs[i], &lo[i], &hi[i])) lo[i] = -INFINITY, hi[i] = INFINITY;
    if (lo[i] < -DBL_MAX) lo[i] = -DBL_MAX;
    if (hi[i] > DBL_MAX) hi[i] = DBL_MAX;
  }
  v = malloc((size_t)g->nnodes * sizeof *v);
  for (int32_t i = 0; i < g->nnodes; i++) mpfr_init2(v[i], 256);
  xs = malloc((size_t)N * ni * sizeof *xs);
  ref = malloc((size_t)N * sizeof *ref);
  int have = 0, dropped = 0;
  double xi[MAX_IN];
  for (int round = 0; round < 50 && have < N; round++) {
    int64_t dims[1] = {batch};
    for (int i = 0; i < ni; i++) {
      ins[i] = tl_tensor_new(TL_F64, 1, dims, err, sizeof err);
      for (int k = 0; k < batch; k++) tl_tensor_set_f64(ins[i], k, draw(lo[i], hi[i]));
    }
    tl_tensor *ok = NULL;
    if (wg) {
      ok = run1(wg, ins, err, sizeof err);
      if (!ok) {
        fprintf(stderr, "%s: the where line: %s\n", path, err);
        goto done;
      }
    }
    for (int k = 0; k < batch && have < N; k++) {
      if (ok && tl_tensor_get_f64(ok, k) == 0) continue;
      for (int i = 0; i < ni; i++) xi[i] = tl_tensor_get_f64(ins[i], k);
      double r;
      int bad = -1;
      int e = exact(g, xi, v, &r, &bad);
      if (e < 0) {
        fprintf(stderr, "%s: the MPFR evaluator has no '%s'\n", path, tl_ops[bad].name);
        tl_tensor_free(ok);
        goto done;
      }
      if (e > 0) {
        dropped++;
        continue;
      }
      if (!isfinite(r)) continue;
      memcpy(xs + (size_t)have * ni, xi, (size_t)ni * sizeof *xi);
      ref[have++] = r;
    }
    tl_tensor_free(ok);
    for (int i = 0; i < ni; i++) tl_tensor_free(ins[i]), ins[i] = NULL;
  }
  res->points = have;
  res->dropped = dropped;
  if (have < N / 10) {
    /* as Herbie: an expression whose precondition sampling cannot satisfy
     * is left out, not failed */
    res->skipped = true;
    rc = 0;
    goto done;
  }
  int64_t dims[1] = {have};
  for (int i = 0; i < ni; i++) {
    ins[i] = tl_tensor_new(TL_F64, 1, dims, err, sizeof err);
    for (int k = 0; k < have; k++) tl_tensor_set_f64(ins[i], k, xs[(size_t)k * ni + i]);
  }
  tl_tensor *yb = run1(g, ins, err, sizeof err);
  if (!yb) {
    fprintf(stderr, "%s: interpreter: %s\n", path, err);
    goto done;
  }
  /* the optimized graph's inputs are the original's, by name */
  for (int i = 0; i < best->ninputs; i++) {
    const char *nm = best->names[best->nodes[best->inputs[i]].name];
    for (int j = 0; j < ni; j++)
      if (strcmp(nm, g->names[g->nodes[g->inputs[j]].name]) == 0) wins[i] = ins[j];
  }
  tl_tensor *ya = run1(best, wins, err, sizeof err);
  if (!ya) {
    fprintf(stderr, "%s: interpreter (optimized): %s\n", path, err);
    tl_tensor_free(yb);
    goto done;
  }
  double sb = 0, sa = 0;
  for (int k = 0; k < have; k++) {
    /* a scalar result (no input reaches it) broadcasts */
    double b = tl_tensor_get_f64(yb, yb->numel == 1 ? 0 : k), a = tl_tensor_get_f64(ya, ya->numel == 1 ? 0 : k);
    sb += bits_error(b, ref[k]);
    sa += bits_error(a, ref[k]);
  }
  res->before = sb / have;
  res->after = sa / have;
  tl_tensor_free(yb);
  tl_tensor_free(ya);
  rc = 0;
done:
  for (int i = 0; i < MAX_IN; i++) tl_tensor_free(ins[i]);
  if (v) {
    for (int32_t i = 0; i < g->nnodes; i++) mpfr_clear(v[i]);
    free(v);
  }
  free(xs);
  free(ref);
  tl_graph_free(g);
  tl_graph_free(wg);
  tl_graph_free(best);
  free(src);
  return rc;
}

static int cmp_str(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

/* Appends the .tg files under path (a file, or a folder searched one level
 * of subfolders deep), sorted. */
static void collect(const char *path, char ***files, int *n, int *cap, int depth) {
  struct stat st;
  if (stat(path, &st) != 0) {
    fprintf(stderr, "bench-fpbench: %s: not found\n", path);
    return;
  }
  if (!S_ISDIR(st.st_mode)) {
    if (*n == *cap) *cap = *cap ? 2 * *cap : 64, *files = realloc(*files, (size_t)*cap * sizeof **files);
    (*files)[(*n)++] = strdup(path);
    return;
  }
  DIR *d = opendir(path);
  if (!d) return;
  char **names = NULL;
  int nn = 0, cn = 0;
  struct dirent *e;
  while ((e = readdir(d))) {
    if (e->d_name[0] == '.') continue;
    if (nn == cn) cn = cn ? 2 * cn : 64, names = realloc(names, (size_t)cn * sizeof *names);
    names[nn++] = strdup(e->d_name);
  }
  closedir(d);
  qsort(names, (size_t)nn, sizeof *names, cmp_str);
  for (int i = 0; i < nn; i++) {
    size_t l = strlen(path) + strlen(names[i]) + 2;
    char *p = malloc(l);
    snprintf(p, l, "%s/%s", path, names[i]);
    size_t pl = strlen(p);
    struct stat s2;
    if (stat(p, &s2) == 0 && S_ISDIR(s2.st_mode) && depth < 1) collect(p, files, n, cap, depth + 1);
    else if (pl > 3 && strcmp(p + pl - 3, ".tg") == 0) collect(p, files, n, cap, depth);
    free(p);
    free(names[i]);
  }
  free(names);
}

int main(int argc, char **argv) {
  run_opts ro = {4000, false};
  uint64_t seed = 1;
  char **paths = calloc((size_t)argc + 1, sizeof *paths);
  int np = 0;
  for (int i = 1; i < argc; i++) {
    if (strcmp(argv[i], "--points") == 0 && i + 1 < argc) ro.points = atoi(argv[++i]);
    else if (strcmp(argv[i], "--seed") == 0 && i + 1 < argc) seed = strtoull(argv[++i], NULL, 10);
    else if (strcmp(argv[i], "--smoke") == 0) ro.smoke = true, ro.points = 256;
    else if (argv[i][0] == '-') {
      fprintf(stderr, "usage: bench-fpbench [--points N] [--seed S] [--smoke] [DIR|FILE.tg]...\n");
      return 2;
    } else paths[np++] = argv[i];
  }
  if (ro.points < 1) ro.points = 1;
  if (np == 0) paths[np++] = TL_SOURCE_ROOT "/bench/accuracy/fpbench";
  char **files = NULL;
  int nf = 0, cf = 0;
  for (int i = 0; i < np; i++) collect(paths[i], &files, &nf, &cf, 0);
  free(paths);
  mpfr_set_emin(mpfr_get_emin_min());
  mpfr_set_emax(mpfr_get_emax_max());
  tl_opt_params p = tl_opt_defaults();
  char err[4096];
  tl_opt *o = tl_opt_new(&p, err, sizeof err);
  if (!o) {
    fprintf(stderr, "bench-fpbench: %s\n", err);
    return 1;
  }
  int failures = 0, better = 0, same = 0, worse = 0, rewritten = 0;
  double tb = 0, ta = 0;
  int counted = 0, nskipped = 0;
  printf("| expression | points | bits before | bits after | change |\n|---|---|---|---|---|\n");
  for (int i = 0; i < nf; i++) {
    rng_state = seed * 0x2545F4914F6CDD1DULL + (uint64_t)i;
    result r = {0};
    const char *base = strstr(files[i], "fpbench/") ? strstr(files[i], "fpbench/") + 8 : files[i];
    if (bench_file(files[i], o, &ro, &r)) {
      failures++;
      printf("| %s | - | - | - | error |\n", base);
      free(files[i]);
      continue;
    }
    if (r.skipped) {
      printf("| %s | %d | - | - | skipped: too few points satisfy the precondition |\n", base, r.points);
      nskipped++;
      free(files[i]);
      continue;
    }
    double d = r.after - r.before;
    const char *what = d <= -1 ? "better" : d > 1 ? "WORSE" : "same";
    better += d <= -1;
    worse += d > 1;
    same += d > -1 && d <= 1;
    rewritten += r.rewritten;
    tb += r.before;
    ta += r.after;
    counted++;
    printf("| %s | %d%s | %.2f | %.2f | %+.2f %s |\n", base, r.points, r.dropped ? "*" : "", r.before, r.after, d,
           what);
    if (ro.smoke && d > 1) failures++;
    fflush(stdout);
    free(files[i]);
  }
  free(files);
  printf("\n%d expressions: %d better by >= 1 bit, %d within 1 bit, %d worse by > 1 bit; %d rewritten; "
         "mean bits %.2f before, %.2f after; %d skipped%s\n",
         counted, better, same, worse, rewritten, counted ? tb / counted : 0, counted ? ta / counted : 0, nskipped,
         failures ? " (failures above)" : "");
  tl_opt_free(o);
  return failures ? 1 : 0;
}
