/* be_fusion.c - the planner's rule files, part of be-diff:
 *  - the shipped rules cover every elementwise op (a new op without a rule
 *    would silently lose fusion and in-place kernels);
 *  - without the rule ew-into-ew (tests/backend/no-ew-fusion.rw), and with
 *    no fusion rules at all, the examples form more kernels and compute the
 *    same values as the interpreter;
 *  - in-place kernels are formed where legal (counted by be_stats.ninplace,
 *    with a smaller arena) and not where an in-place write would be wrong:
 *    the operand is read by a later kernel, is a graph input, is an output,
 *    is seen through a reshape alias or read through an index map; every
 *    case is checked for values against the interpreter;
 *  - random graphs with nothing fused and inputs destroyable (the most
 *    in-place kernels) against the interpreter;
 *  - long chains that every rule would fuse whole are cut into kernels of
 *    at most BE_FUSE_MAX_OPS ops, and compute the interpreter's values;
 *  - the (light) condition recomputes a shared producer only where that
 *    reads no more memory than its buffer and does no costly op;
 *  - row kernels take the reductions they may and no other, and compute
 *    the interpreter's values (NaN, infinities, empty rows included). */
#include "backend/be_internal.h"
#include "util/alloc.h"
#include "interp/interp.h"
#include "tests/common/tltest.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int be_compare_opts(const tl_graph *g, tl_tensor **inputs, const int64_t *syms, const char *what, int verbose,
                    const be_options *o, be_stats *st);
int be_random_graphs_opts(int count, uint64_t seed, int verbose, const be_options *o, const char *label);

/* Every elementwise op may be fused into every elementwise consumer and
 * has an in-place rule, under the shipped files. */
static int coverage(void) {
  be_options o = be_options_default();
  char err[2048];
  const be_rules *r = be_rules_get(&o, NULL, err, sizeof err);
  if (!r) {
    printf("FAIL fusion rules: %s\n", err);
    return 1;
  }
  int bad = 0;
  for (int p = 0; p < TL_OP_COUNT; p++) {
    if (tl_ops[p].kind != TL_KIND_ELEMWISE) continue;
    if (!r->destroys[p]) {
      printf("FAIL rules/inplace.rw has no rule for elementwise op %s\n", tl_ops[p].name);
      bad = 1;
    }
    for (int c = 0; c < TL_OP_COUNT; c++) {
      if (tl_ops[c].kind != TL_KIND_ELEMWISE) continue;
      bool ok = false;
      for (int i = 0; i < r->nfuse && !ok; i++) ok = r->fuse[i].producer[p] && r->fuse[i].consumer[c];
      if (!ok) {
        printf("FAIL rules/fusion.rw does not fuse %s into %s\n", tl_ops[p].name, tl_ops[c].name);
        bad = 1;
        break;
      }
    }
  }
  printf("fusion rules: %d fuse rules, %d in-place rules, %s\n", r->nfuse, r->ninplace_rules,
         bad ? "FAILED" : "every elementwise op covered");
  return bad;
}

typedef struct ex_ctx {
  const char *srcdir;
  int verbose, fails;
  long total[3];
} ex_ctx;

/* One example under the shipped rules, without ew-into-ew, and with no
 * fusion at all: values against the interpreter, and kernel counts that
 * can only grow as rules are removed. */
static void example_kernels(const char *name, const char *src, size_t len, void *vctx) {
  (void)len;
  ex_ctx *c = vctx;
  char *diag = NULL;
  tl_graph *g = tlt_parse(src, &diag);
  tl_free(diag);
  if (!g) {
    printf("FAIL %s: parse\n", name);
    c->fails++;
    return;
  }
  char noew[4200], err[512];
  snprintf(noew, sizeof noew, "%s/tests/backend/no-ew-fusion.rw", c->srcdir);
  be_options o[3] = {be_options_default(), be_options_default(), be_options_default()};
  o[1].fusion_rules = noew;
  o[2].fusion_rules = "";
  int64_t *syms = tl_xcalloc((size_t)g->nsyms + 1, sizeof *syms);
  for (int s = 0; s < g->nsyms; s++) syms[s] = 6 + s;
  tl_tensor **in = tl_xcalloc((size_t)g->ninputs + 1, sizeof *in);
  int k[3] = {0, 0, 0}, ip = 0;
  if (tl_random_inputs(g, in, syms, 11, err, sizeof err)) {
    printf("FAIL %s: inputs: %s\n", name, err);
    c->fails++;
  } else {
    for (int i = 0; i < 3; i++) {
      be_stats st;
      memset(&st, 0, sizeof st);
      char what[300];
      snprintf(what, sizeof what, "%s (%s)", name, i == 0 ? "shipped rules" : i == 1 ? "no ew-into-ew" : "no fusion");
      c->fails += be_compare_opts(g, in, syms, what, c->verbose, &o[i], &st);
      k[i] = st.nkernels;
      c->total[i] += k[i];
      if (i == 0) ip = st.ninplace;
    }
    if (k[1] < k[0] || k[2] < k[1]) {
      printf("FAIL %s: kernels %d (shipped) %d (no ew-into-ew) %d (no fusion): removing rules must not fuse more\n",
             name, k[0], k[1], k[2]);
      c->fails++;
    }
  }
  printf("  %-22s kernels %2d shipped, %2d without ew-into-ew, %2d without fusion; %d in place\n", name, k[0], k[1],
         k[2], ip);
  for (int i = 0; i < g->ninputs; i++) tl_tensor_free(in[i]);
  tl_free(in);
  tl_free(syms);
  tl_graph_free(g);
}

typedef struct ip_case {
  const char *name, *text;
  int destroy_inputs, expect; /* in-place kernels expected */
} ip_case;

static const ip_case ip_cases[] = {
  /* t and u are shared, so each has a buffer; u's kernel is t's last reader */
  {"legal", "(graph ip (in x f32 [n 8]) (let t (exp x)) (let u (add t t))"
            " (out y (sum (mul u u) :axis 1)))", 0, 1},
  /* with inputs destroyable, t's kernel also writes over x */
  {"legal, inputs destroyable", "(graph ip (in x f32 [n 8]) (let t (exp x)) (let u (add t t))"
            " (out y (sum (mul u u) :axis 1)))", 1, 2},
  /* a reduction reads t before the kernel that writes over it (c's exp
   * keeps it from the light fusion rule: shared, c gets a buffer; a mean
   * over columns, which no row kernel takes) */
  {"legal after a reduction", "(graph ip (in x f64 [n 8]) (let t (exp x))"
            " (let c (exp (sub t (mean t :axis 0 :keepdims true)))) (out y (sum (mul c c) :axis 1)))", 0, 1},
  /* the in-place result feeds matmul: its operand buffers are redirected */
  {"legal into matmul", "(graph ip (in x f32 [5 5]) (let t (exp x)) (let u (add t t)) (out y (matmul u u)))", 0, 1},
  /* t is read again by the last kernel */
  {"read later", "(graph ip (in x f32 [n 8]) (let t (exp x)) (let u (add t t))"
            " (out y (sum (mul u u) :axis 1)) (out z (sum t :axis 1)))", 0, 0},
  /* the only dead operand is the graph input */
  {"graph input", "(graph ip (in x f32 [n 8]) (let u (exp x)) (out y (sum (mul u u) :axis 1)))", 0, 0},
  {"graph input, destroyable", "(graph ip (in x f32 [n 8]) (let u (exp x)) (out y (sum (mul u u) :axis 1)))", 1, 1},
  /* t is an output: the caller's tensor */
  {"output", "(graph ip (in x f32 [n 8]) (let t (exp x)) (let u (add t t)) (out t0 t)"
            " (out y (sum (mul u u) :axis 1)))", 0, 0},
  /* a reshape view of t is read by a later kernel */
  {"reshape alias read later", "(graph ip (in x f32 [4 8]) (let t (exp x)) (let u (add t t))"
            " (out y (sum (mul u u) :axis 1)) (out z (sum (reshape t :shape [-1]))))", 0, 0},
  /* u's kernel reads t's buffer through a reshape view as well */
  {"reshape alias in the kernel", "(graph ip (in x f32 [4 8]) (let t (exp x))"
            " (let u (add t (reshape t :shape [4 8]))) (out y (sum (mul u u) :axis 1)))", 0, 0},
  /* u's kernel reads t transposed: writing u[i,j] over t[i,j] would
   * clobber t[i,j] before u[j,i] reads it */
  {"transposed read", "(graph ip (in x f32 [8 8]) (let t (exp x)) (let u (add t (transpose t)))"
            " (out y (sum (mul u u) :axis 1)))", 0, 0},
  /* t has fewer elements than u (broadcast): not the same buffer size */
  {"broadcast", "(graph ip (in x f32 [8]) (in w f32 [n 8]) (let t (exp x)) (let u (add t w))"
            " (out y (sum (mul u u) :axis 1)) (out z (sum (mul t t))))", 0, 0},
  /* softmax (:rowwise): the scaled scores are computed and normalised in
   * the matmul's buffer, row by row */
  {"softmax over dead scores", "(graph ip (in q f32 [n 8]) (in k f32 [n 8]) (in v f32 [n 8])"
            " (out o (matmul (softmax (div (matmul q (transpose k)) 8.0) :axis -1) v)))", 0, 1},
  /* over axis 0: the column form of the row kernel */
  {"log_softmax by columns", "(graph ip (in x f32 [n 8]) (in w f32 [8 8])"
            " (out y (sum (log_softmax (matmul x w) :axis 0) :axis 1)))", 0, 1},
  {"softmax, scores read later", "(graph ip (in q f32 [n 8]) (in k f32 [n 8]) (let s (matmul q (transpose k)))"
            " (out o (softmax s :axis -1)) (out z (sum s :axis 1)))", 0, 0},
  /* element [i, j] of the row kernel's operand reads s[j, i]: another row */
  {"softmax, transposed read", "(graph ip (in q f32 [8 8]) (in k f32 [8 8]) (let s (matmul q k))"
            " (out o (sum (softmax (add s (transpose s)) :axis 1) :axis 0)))", 0, 0},
  {"softmax of a graph input", "(graph ip (in x f32 [n 8]) (out y (sum (softmax x :axis 1) :axis 1)))", 0, 0},
  {"softmax of a graph input, destroyable", "(graph ip (in x f32 [n 8])"
            " (out y (sum (softmax x :axis 1) :axis 1)))", 1, 1},
  /* f32 scores, f64 result: not the buffer's dtype */
  {"softmax, wider result", "(graph ip (in q f32 [n 8]) (in k f32 [n 8]) (let s (matmul q (transpose k)))"
            " (out o (sum (softmax (cast s :dtype f64) :axis -1) :axis 1)))", 0, 0},
};

static int inplace_cases(int verbose) {
  int fails = 0;
  for (size_t i = 0; i < sizeof ip_cases / sizeof *ip_cases; i++) {
    const ip_case *c = &ip_cases[i];
    char *diag = NULL;
    tl_graph *g = tlt_parse(c->text, &diag);
    if (!g) {
      printf("FAIL in-place %s: parse: %s\n", c->name, diag);
      tl_free(diag);
      fails++;
      continue;
    }
    tl_free(diag);
    int64_t syms[4] = {37, 37, 37, 37};
    tl_tensor *in[4] = {0};
    char err[256], what[200];
    snprintf(what, sizeof what, "in-place case '%s'", c->name);
    be_options on = be_options_default(), off = be_options_default();
    on.destroy_inputs = c->destroy_inputs;
    off.inplace_rules = "";
    be_stats son, soff;
    memset(&son, 0, sizeof son);
    memset(&soff, 0, sizeof soff);
    int bad = 0;
    if (tl_random_inputs(g, in, syms, 5, err, sizeof err)) {
      printf("FAIL %s: inputs: %s\n", what, err);
      bad = 1;
    } else {
      bad |= be_compare_opts(g, in, syms, what, verbose, &on, &son);
      bad |= be_compare_opts(g, in, syms, what, verbose, &off, &soff);
    }
    if (!bad && son.ninplace != c->expect) {
      printf("FAIL %s: %d in-place kernels, expected %d\n", what, son.ninplace, c->expect);
      bad = 1;
    }
    if (!bad && soff.ninplace != 0) {
      printf("FAIL %s: in-place kernels without in-place rules\n", what);
      bad = 1;
    }
    /* an in-place kernel writing a temporary saves that temporary */
    if (!bad && c->expect && !c->destroy_inputs && son.arena_bytes >= soff.arena_bytes) {
      printf("FAIL %s: arena %zu bytes in place, %zu without\n", what, son.arena_bytes, soff.arena_bytes);
      bad = 1;
    }
    printf("  in-place %-38s %d kernel%s in place (expected %d), arena %zu -> %zu bytes%s\n", c->name,
           son.ninplace, son.ninplace == 1 ? "" : "s", c->expect, soff.arena_bytes, son.arena_bytes,
           bad ? "  FAILED" : "");
    fails += bad;
    for (int k = 0; k < g->ninputs; k++) tl_tensor_free(in[k]);
    tl_graph_free(g);
  }
  return fails;
}

/* (max-ops 3) cuts gelu's chain: more kernels than one, fewer than without
 * elementwise fusion, and the same values. */
static int max_ops_test(const char *srcdir, int verbose) {
  char path[4200], rw[4200], err[512];
  snprintf(path, sizeof path, "%s/examples/gelu.tg", srcdir);
  snprintf(rw, sizeof rw, "%s/tests/backend/max-ops-fusion.rw", srcdir);
  tl_graph *g = tl_tg_load(path, stdout);
  if (!g) return 1;
  int64_t syms[1] = {1000};
  tl_tensor *in[1] = {0};
  be_options o = be_options_default();
  o.fusion_rules = rw;
  be_stats st;
  memset(&st, 0, sizeof st);
  int bad = tl_random_inputs(g, in, syms, 3, err, sizeof err) ? 1 : be_compare_opts(g, in, syms, "gelu (max-ops 3)", verbose, &o, &st);
  if (!bad && !(st.nkernels > 1 && st.nkernels < 5)) {
    printf("FAIL gelu under (max-ops 3): %d kernels, expected 2 to 4\n", st.nkernels);
    bad = 1;
  }
  printf("  gelu under (max-ops 3): %d kernels%s\n", st.nkernels, bad ? "  FAILED" : "");
  tl_tensor_free(in[0]);
  tl_graph_free(g);
  return bad;
}

/* A chain of n links, each fmt applied to the previous value ("%s"). */
static tl_graph *chain(int n, const char *decl, const char *fmt) {
  tl_buf b = {0};
  tl_buf_printf(&b, "(graph chain %s\n", decl);
  char prev[32] = "x";
  for (int i = 1; i <= n; i++) {
    tl_buf_printf(&b, "  (let v%d ", i);
    tl_buf_printf(&b, fmt, prev);
    tl_buf_printf(&b, ")\n");
    snprintf(prev, sizeof prev, "v%d", i);
  }
  tl_buf_printf(&b, "  (out y %s))\n", prev);
  tl_graph *g = tlt_parse(b.s, NULL);
  tl_free(b.s);
  return g;
}

/* Single-use elementwise links (and index maps) that the shipped rules
 * fuse whole are cut at BE_FUSE_MAX_OPS ops per kernel: a 6000-add chain
 * (12000 ops with its literals) makes 12 to 24 kernels, 3000 links of
 * neg-of-transpose likewise; the values are the interpreter's. */
static int fuse_max_test(int verbose) {
  struct { const char *decl, *fmt, *what; int n; } cases[] = {
      {"(in x f64 [3])", "(add %s 1.5)", "6000 adds", 6000},
      {"(in x f32 [2 2])", "(neg (transpose %s))", "3000 neg-of-transpose", 3000},
  };
  int bad = 0;
  for (int c = 0; c < 2; c++) {
    char err[512];
    tl_graph *g = chain(cases[c].n, cases[c].decl, cases[c].fmt);
    tl_tensor *in[1] = {0};
    be_options o = be_options_default();
    be_stats st;
    memset(&st, 0, sizeof st);
    int b = !g || tl_random_inputs(g, in, NULL, 5, err, sizeof err) ? 1
                                                                   : be_compare_opts(g, in, NULL, cases[c].what, verbose, &o, &st);
    int lo = 2 * cases[c].n / BE_FUSE_MAX_OPS, hi = 2 * lo + 2;
    if (!b && !(st.nkernels >= lo && st.nkernels <= hi)) {
      printf("FAIL %s: %d kernels, expected %d to %d (BE_FUSE_MAX_OPS %d)\n", cases[c].what, st.nkernels, lo, hi,
             BE_FUSE_MAX_OPS);
      b = 1;
    }
    printf("  %s: %d kernels%s\n", cases[c].what, st.nkernels, b ? "  FAILED" : "");
    bad += b;
    tl_tensor_free(in[0]);
    tl_graph_free(g);
  }
  return bad;
}

/* A rule file the backend cannot use is reported, not half applied. */
static int bad_rule_files(const char *srcdir) {
  int fails = 0;
  char path[4200], err[2048];
  snprintf(path, sizeof path, "%s/tests/check/inplace.rw", srcdir); /* transpose-ip: not elementwise */
  const char *cases[][2] = {{NULL, path}, {"/nonexistent/fusion.rw", NULL}};
  const char *expect[] = {"transpose is not an elementwise op", "cannot open"};
  for (int i = 0; i < 2; i++) {
    be_options o = be_options_default();
    o.fusion_rules = cases[i][0];
    o.inplace_rules = cases[i][1];
    be_rules own;
    const be_rules *r = be_rules_get(&o, &own, err, sizeof err);
    if (r || !strstr(err, expect[i])) {
      printf("FAIL bad rule file %d: %s\n", i, r ? "accepted" : err);
      if (r == &own) be_rules_free(&own);
      fails++;
    }
  }
  return fails;
}

/* The fuse condition (light): a shared producer is recomputed in each
 * consumer only when it is plain arithmetic reading at most one full-size
 * value. Kernel counts under the shipped rules, values against the
 * interpreter. */
typedef struct light_case {
  const char *name, *text;
  int kernels;
} light_case;

static const light_case light_cases[] = {
  /* normalising columns: x - mu feeds the variance and the output; no
   * buffer (over rows, a row kernel would take both means) */
  {"column norm", "(graph l (in x f32 [n 64]) (let mu (mean x :axis 0 :keepdims true)) (let d (sub x mu))"
                  " (let var (mean (mul d d) :axis 0 :keepdims true))"
                  " (out y (div d (sqrt (add var 1e-5)))))", 3},
  /* two full-size operands: recomputing would read two values per use */
  {"two full-size operands", "(graph l (in x f32 [n 8]) (in y f32 [n 8]) (let s (add x y))"
                             " (out a (sum s :axis 1)) (out b (max s :axis 1)))", 3},
  /* a math function is not recomputed */
  {"shared exp", "(graph l (in x f32 [n 8]) (let s (exp x)) (out a (sum s :axis 1)) (out b (max s :axis 1)))", 3},
  /* nor an op the op table prices above plain arithmetic */
  {"shared remainder", "(graph l (in x f32 [n 8]) (let s (remainder x 3.0))"
                       " (out a (sum s :axis 1)) (out b (max s :axis 1)))", 3},
  /* a broadcast operand does not count */
  {"shared x - row mean", "(graph l (in x f32 [n 8]) (let s (sub x (mean x :axis 1 :keepdims true)))"
                          " (out a (sum s :axis 1)) (out b (max s :axis 1)))", 3},
  {"shared x * column scale", "(graph l (in x f32 [n 8]) (in c f32 [8]) (let s (mul x c))"
                              " (out a (sum s :axis 1)) (out b (max s :axis 1)))", 2},
  /* a matmul operand gets a buffer anyway: computed inline in the sum's
   * kernel first, the sum would have read that buffer before its kernel
   * wrote it (found by tests/python's grad-of-grad) */
  {"shared with a matmul", "(graph l (in x f32 [n 8]) (in w f32 [8 8]) (let s (mul x 2.0))"
                           " (out a (sum s :axis 1)) (out b (matmul s w)))", 3},
};

static int light_test(int verbose) {
  int fails = 0;
  for (size_t i = 0; i < sizeof light_cases / sizeof *light_cases; i++) {
    const light_case *c = &light_cases[i];
    char *diag = NULL, err[256], what[200];
    tl_graph *g = tlt_parse(c->text, &diag);
    tl_free(diag);
    int64_t syms[4] = {37, 37, 37, 37};
    tl_tensor *in[4] = {0};
    be_options o = be_options_default();
    be_stats st;
    memset(&st, 0, sizeof st);
    snprintf(what, sizeof what, "light case '%s'", c->name);
    int bad = !g;
    if (g && tl_random_inputs(g, in, syms, 5, err, sizeof err)) {
      printf("FAIL %s: inputs: %s\n", what, err);
      bad = 1;
    } else if (g) {
      bad |= be_compare_opts(g, in, syms, what, verbose, &o, &st);
      if (st.nkernels != c->kernels) {
        printf("FAIL %s: %d kernels, expected %d\n", what, st.nkernels, c->kernels);
        bad = 1;
      }
    }
    printf("  light %-30s %d kernels (expected %d)%s\n", c->name, st.nkernels, c->kernels, bad ? "  FAILED" : "");
    for (int k = 0; g && k < g->ninputs; k++) tl_tensor_free(in[k]);
    tl_graph_free(g);
    fails += bad;
  }
  return fails;
}

/* Row kernels (plan.c "row kernels"): which reductions an elementwise
 * kernel computes itself, counted on the plan (kernels in all, BE_K_ROWS
 * kernels); values against the interpreter, at sizes 37 and 0 (empty
 * rows: a max's error must be the interpreter's) and on inputs with NaN
 * and infinities. */
typedef struct rows_case {
  const char *name, *text;
  int kernels, rows;
  int msym; /* symbol msym (in order of appearance) takes the value m where m is not 0 */
  int64_t m;
} rows_case;

static const rows_case rows_cases[] = {
  {"layer norm", "(graph l (in x f32 [n m]) (in g f32 [m]) (in b f32 [m])"
                 " (let mu (mean x :axis -1 :keepdims true)) (let d (sub x mu))"
                 " (let var (mean (mul d d) :axis -1 :keepdims true))"
                 " (out y (add (mul (div d (sqrt (add var 1e-5))) g) b)))", 1, 1, 0, 0},
  {"rms norm f64, rank 3", "(graph l (in x f64 [k n m]) (in g f64 [m])"
                           " (out y (mul (div x (sqrt (add (mean (mul x x) :axis 2 :keepdims true) 1e-6))) g)))", 1, 1, 0, 0},
  {"x - row max, row min", "(graph l (in x f32 [n m]) (let mx (max x :axis -1 :keepdims true))"
                           " (out y (mul (sub x mx) (min x :axis 1 :keepdims true))))", 1, 1, 0, 0},
  /* two reductions over rows of a rank-3 tensor: the first runs one row
   * ahead in the innermost kept loop (lower_rows.c "ahead") */
  {"layer norm f64, rank 3", "(graph l (in x f64 [k n m])"
                             " (let d (sub x (mean x :axis 2 :keepdims true)))"
                             " (out y (div d (sqrt (add (mean (mul d d) :axis 2 :keepdims true) 1e-6)))))", 1, 1, 0, 0},
  /* the second reduction does not read the first; a max runs ahead */
  {"row max beside row sum", "(graph l (in x f32 [n m]) (let mx (max (exp x) :axis -1 :keepdims true))"
                             " (out y (add (mul x mx) (sum (abs x) :axis 1 :keepdims true))))", 1, 1, 0, 0},
  /* log_softmax kernels (not row kernels) over rows of 4 KiB and more
   * write each row one row behind, inside the next row's sum pass
   * (lower_rows.c "one row behind"): a symbolic length (1030, and 200,
   * which the run-time test keeps in passes), rank 3 (the innermost kept
   * loop restarts), a known length whose rows start at every alignment */
  {"log_softmax one row behind", "(graph l (in x f32 [n m]) (out y (log_softmax x :axis -1)))", 1, 0, 1, 1030},
  {"log_softmax rows in passes", "(graph l (in x f32 [n m]) (out y (log_softmax x :axis -1)))", 1, 0, 1, 200},
  {"log_softmax behind f64, rank 3", "(graph l (in x f64 [k n m]) (out y (log_softmax x :axis 2)))", 1, 0, 2, 520},
  {"log_softmax behind, rows of 1100", "(graph l (in x f32 [n 1100]) (out y (log_softmax x :axis 1)))", 1, 0, 0, 0},
  /* logsumexp over rows of 2 KiB and more sums in blocks that prefetch
   * the next row (lower_rows.c "logsumexp's sum pass"): a symbolic length
   * (1030, and 200 below the run-time test), f64 of rank 3, a known one */
  {"logsumexp prefetching", "(graph l (in x f32 [n m]) (out y (logsumexp x :axis -1)))", 1, 0, 1, 1030},
  {"logsumexp rows in passes", "(graph l (in x f32 [n m]) (out y (logsumexp x :axis 1)))", 1, 0, 1, 200},
  {"logsumexp prefetching f64, rank 3", "(graph l (in x f64 [k n m]) (out y (logsumexp x :axis 2)))", 1, 0, 2, 520},
  {"logsumexp, rows of 1100", "(graph l (in x f32 [n 1100]) (out y (logsumexp (mul x 3.0) :axis 1)))", 1, 0, 0, 0},
  /* the mean is an output too: it keeps its buffer and its kernel */
  {"reduction also an output", "(graph l (in x f32 [n m]) (let mu (mean x :axis -1 :keepdims true))"
                               " (out m mu) (out y (sub x mu)))", 2, 0, 0, 0},
  /* read by another kernel (the sum over rows) as well */
  {"reduction read elsewhere", "(graph l (in x f32 [n m]) (let mu (sum x :axis -1 :keepdims true))"
                               " (out y (sub x mu)) (out z (sum (exp mu))))", 3, 0, 0, 0},
  /* t0 is an output's kernel and also computed inside y's: the min keeps
   * its buffer (found by bench-cost's random graphs) */
  {"shared inline root", "(graph l (in x0 f32 [n m]) (in x1 f32 [n m])"
                         " (let t0 (sub x0 (min x0 :axis 1 :keepdims true)))"
                         " (out y (maximum (tanh x1) t0)) (out z t0))", 3, 0, 0, 0},
  /* d is inline in the output's kernel and in another reduction's */
  {"inline node read elsewhere", "(graph l (in x f32 [n m]) (let d (sub x (mean x :axis -1 :keepdims true)))"
                                 " (out y (mul d 2.0)) (out z (sum d :axis 0)))", 3, 0, 0, 0},
  /* a reduction over the first axis is not a row's */
  {"column reduction", "(graph l (in x f32 [n m]) (out y (sub x (sum x :axis 0 :keepdims true))))", 2, 0, 0, 0},
  /* read through a transpose: not at the current row */
  {"through a transpose", "(graph l (in x f32 [n n]) (let s (sum x :axis -1 :keepdims true))"
                          " (out y (add x (transpose (broadcast_to s :shape [n n])))))", 2, 0, 0, 0},
  /* an integer reduction stays a kernel of its own */
  {"integer sum", "(graph l (in x i32 [n m]) (out y (sub x (sum x :axis -1 :keepdims true))))", 2, 0, 0, 0},
};

static int rows_test(int verbose) {
  int fails = 0;
  for (size_t i = 0; i < sizeof rows_cases / sizeof *rows_cases; i++) {
    const rows_case *c = &rows_cases[i];
    char *diag = NULL, err[256], what[200];
    tl_graph *g = tlt_parse(c->text, &diag);
    if (!g) {
      printf("FAIL rows case '%s': parse: %s\n", c->name, diag ? diag : "");
      tl_free(diag);
      fails++;
      continue;
    }
    tl_free(diag);
    int bad = 0, nk = -1, nrows = -1;
    be_plan pl;
    if (be_plan_build(&pl, g, err, sizeof err)) {
      printf("FAIL rows case '%s': plan: %s\n", c->name, err);
      bad = 1;
    } else {
      nk = pl.nks;
      nrows = 0;
      for (int k = 0; k < pl.nks; k++) nrows += pl.ks[k].kind == BE_K_ROWS;
      bad |= nk != c->kernels || nrows != c->rows;
    }
    be_plan_free(&pl);
    static const int64_t sizes[3] = {37, 5, 0};
    for (int z = 0; z < 3; z++) {
      int64_t syms[4] = {sizes[z], sizes[z] + 3, sizes[z] + 1, sizes[z]};
      if (c->m) syms[c->msym] = c->m;
      tl_tensor *in[4] = {0};
      be_options o = be_options_default();
      snprintf(what, sizeof what, "rows case '%s' at %lld", c->name, (long long)sizes[z]);
      if (tl_random_inputs(g, in, syms, 9 + (uint64_t)z, err, sizeof err)) {
        printf("FAIL %s: inputs: %s\n", what, err);
        bad = 1;
        continue;
      }
      if (z == 1) /* NaN, infinities and a huge value in the first rows */
        for (int k = 0; k < g->ninputs; k++) {
          tl_tensor *t = in[k];
          if (!tl_dtype_is_float((tl_dtype)t->dtype) || t->numel < 4) continue;
          tl_tensor_set_f64(t, 0, NAN);
          tl_tensor_set_f64(t, t->numel / 2, INFINITY);
          tl_tensor_set_f64(t, t->numel / 2 + 1, -INFINITY);
          tl_tensor_set_f64(t, t->numel - 1, 3e38);
        }
      bad |= be_compare_opts(g, in, syms, what, verbose, &o, NULL);
      /* rows split across two threads: each thread's first row starts the
       * reduction that runs ahead */
      o.threads = 2;
      o.split_elems = 1;
      snprintf(what, sizeof what, "rows case '%s' at %lld, two threads", c->name, (long long)sizes[z]);
      bad |= be_compare_opts(g, in, syms, what, verbose, &o, NULL);
      for (int k = 0; k < g->ninputs; k++) tl_tensor_free(in[k]);
    }
    printf("  rows %-28s %d kernels, %d row kernels (expected %d, %d)%s\n", c->name, nk, nrows, c->kernels, c->rows,
           bad ? "  FAILED" : "");
    tl_graph_free(g);
    fails += bad;
  }
  return fails;
}

int be_fusion_tests(const char *srcdir, int verbose) {
  int fails = coverage();
  ex_ctx c = {srcdir, verbose, 0, {0, 0, 0}};
  char dir[3800];
  snprintf(dir, sizeof dir, "%s/examples", srcdir);
  printf("fusion rules on the examples:\n");
  if (tlt_each_tg(dir, example_kernels, &c) < 0) c.fails++;
  printf("  kernels in all: %ld shipped, %ld without ew-into-ew, %ld without fusion\n", c.total[0], c.total[1],
         c.total[2]);
  if (!(c.total[1] > c.total[0] && c.total[2] > c.total[1])) {
    printf("FAIL removing fusion rules did not form more kernels\n");
    c.fails++;
  }
  fails += c.fails;
  fails += max_ops_test(srcdir, verbose);
  fails += fuse_max_test(verbose);
  fails += inplace_cases(verbose);
  fails += light_test(verbose);
  fails += rows_test(verbose);
  fails += bad_rule_files(srcdir);
  be_options o = be_options_default();
  o.fusion_rules = "";
  o.destroy_inputs = 1;
  fails += be_random_graphs_opts(100, 77, verbose, &o, " (no fusion, inputs destroyable)");
  return fails;
}
