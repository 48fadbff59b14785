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
 * The reference: check/exact.h's MPFR evaluation (adaptive precision up
 * to 16384 bits; a point where it never settles is dropped and counted,
 * `*` in the table). Error of a
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
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sys/stat.h>

#include "check/exact.h"
#include "interp/interp.h"
#include "util/error.h"
#include "ir/tg.h"
#include "opt/opt.h"
#include "util/util.h"

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
  /* unsigned arithmetic: the span of all finite values exceeds INT64_MAX */
  uint64_t span = (uint64_t)b - (uint64_t)a;
  uint64_t k = span == UINT64_MAX ? rng() : rng() % (span + 1);
  return from_ord((int64_t)((uint64_t)a + k));
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
  tl_free(b.s);
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
  tl_error err = {0};
  size_t len;
  char *src = tl_read_file(path, &len, TL_EMSG(&err));
  if (!src) {
    fprintf(stderr, "bench-fpbench: %s\n", err.msg);
    return -1;
  }
  int rc = -1;
  bool wfail = false;
  tl_graph *g = parse_text(path, src), *wg = NULL, *best = NULL;
  tl_tensor *ins[MAX_IN] = {0}, *wins[MAX_IN] = {0};
  double *xs = NULL, *ref = NULL;
  if (!g) goto done;
  if (g->ninputs > MAX_IN || g->noutputs != 1) {
    fprintf(stderr, "%s: expected at most %d inputs and one output\n", path, MAX_IN);
    goto done;
  }
  wg = where_graph(path, src, g, &wfail);
  if (wfail) goto done;
  best = tl_opt_graph(o, g, &err);
  if (!best) {
    fprintf(stderr, "%s: optimizing: %s\n", path, err.msg);
    goto done;
  }
  char *t1 = tl_tg_print(g), *t2 = tl_tg_print(best);
  res->rewritten = strcmp(t1, t2) != 0;
  tl_free(t1);
  tl_free(t2);
  int N = ro->points, ni = g->ninputs, batch = 4 * N;
  double lo[MAX_IN], hi[MAX_IN];
  for (int i = 0; i < ni; i++) {
    if (!tl_graph_range(g, g->inputs[i], &lo[i], &hi[i])) lo[i] = -INFINITY, hi[i] = INFINITY;
    if (lo[i] < -DBL_MAX) lo[i] = -DBL_MAX;
    if (hi[i] > DBL_MAX) hi[i] = DBL_MAX;
  }
  if (!tl_exact_supports(g)) {
    fprintf(stderr, "%s: the exact evaluator does not support every op of this graph\n", path);
    goto done;
  }
  xs = tl_xmalloc((size_t)N * ni * sizeof *xs);
  ref = tl_xmalloc((size_t)N * sizeof *ref);
  int have = 0, dropped = 0;
  double xi[MAX_IN];
  for (int round = 0; round < 50 && have < N; round++) {
    int64_t dims[1] = {batch};
    for (int i = 0; i < ni; i++) {
      ins[i] = tl_tensor_new(TL_F64, 1, dims, TL_EMSG(&err));
      for (int k = 0; k < batch; k++) tl_tensor_set_f64(ins[i], k, draw(lo[i], hi[i]));
    }
    tl_tensor *ok = NULL;
    if (wg) {
      ok = run1(wg, ins, TL_EMSG(&err));
      if (!ok) {
        fprintf(stderr, "%s: the where line: %s\n", path, err.msg);
        goto done;
      }
    }
    for (int k = 0; k < batch && have < N; k++) {
      if (ok && tl_tensor_get_f64(ok, k) == 0) continue;
      for (int i = 0; i < ni; i++) xi[i] = tl_tensor_get_f64(ins[i], k);
      double r;
      if (tl_exact_elem(g, ins, g->outputs[0].node, k, &r)) {
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
    ins[i] = tl_tensor_new(TL_F64, 1, dims, TL_EMSG(&err));
    for (int k = 0; k < have; k++) tl_tensor_set_f64(ins[i], k, xs[(size_t)k * ni + i]);
  }
  tl_tensor *yb = run1(g, ins, TL_EMSG(&err));
  if (!yb) {
    fprintf(stderr, "%s: interpreter: %s\n", path, err.msg);
    goto done;
  }
  /* the optimized graph's inputs are the original's, by name */
  for (int i = 0; i < best->ninputs; i++) {
    const char *nm = best->names[best->nodes[best->inputs[i]].name];
    for (int j = 0; j < ni; j++)
      if (strcmp(nm, g->names[g->nodes[g->inputs[j]].name]) == 0) wins[i] = ins[j];
  }
  tl_tensor *ya = run1(best, wins, TL_EMSG(&err));
  if (!ya) {
    fprintf(stderr, "%s: interpreter (optimized): %s\n", path, err.msg);
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
  tl_free(xs);
  tl_free(ref);
  tl_graph_free(g);
  tl_graph_free(wg);
  tl_graph_free(best);
  tl_free(src);
  return rc;
}

/* Appends the .tg files under path (a file, or a folder searched one level
 * of subfolders deep), sorted. */
static void collect(const char *path, char ***files, int *n, int *cap, int depth) {
  struct stat st;
  if (stat(path, &st) != 0) {
    fprintf(stderr, "bench-fpbench: %s: not found\n", path);
    return;
  }
  if (!S_ISDIR(st.st_mode)) {
    TL_GROW(*files, *n, *cap);
    (*files)[(*n)++] = tl_xstrdup(path);
    return;
  }
  int nn = 0;
  char **names = tl_dir_list(path, NULL, &nn);
  for (int i = 0; names && i < nn; i++) {
    tl_buf p = {0};
    tl_buf_printf(&p, "%s/%s", path, names[i]);
    struct stat s2;
    if (stat(p.s, &s2) == 0 && S_ISDIR(s2.st_mode) && depth < 1) collect(p.s, files, n, cap, depth + 1);
    else if (p.len > 3 && strcmp(p.s + p.len - 3, ".tg") == 0) collect(p.s, files, n, cap, depth);
    tl_free(p.s);
  }
  if (names) tl_dir_list_free(names, nn);
}

int main(int argc, char **argv) {
  run_opts ro = {4000, false};
  uint64_t seed = 1;
  char **paths = tl_xcalloc((size_t)argc + 1, sizeof *paths);
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
  tl_free(paths);
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
      tl_free(files[i]);
      continue;
    }
    if (r.skipped) {
      printf("| %s | %d | - | - | skipped: too few points satisfy the precondition |\n", base, r.points);
      nskipped++;
      tl_free(files[i]);
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
    tl_free(files[i]);
  }
  tl_free(files);
  printf("\n%d expressions: %d better by >= 1 bit, %d within 1 bit, %d worse by > 1 bit; %d rewritten; "
         "mean bits %.2f before, %.2f after; %d skipped%s\n",
         counted, better, same, worse, rewritten, counted ? tb / counted : 0, counted ? ta / counted : 0, nskipped,
         failures ? " (failures above)" : "");
  tl_opt_free(o);
  return failures ? 1 : 0;
}
