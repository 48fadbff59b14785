/* be_pass.c - one-pass groups (backend/plan_pass.c), part of be-diff: a
 * product X w, elementwise kernels over its rows and the product X^T r (or
 * r^T X) over the same X run block by block. Each case checks how many
 * groups the plan forms (so a group that should form and does not fails,
 * and so does one formed where a kernel reads the product at another row)
 * and compares the program with the interpreter on one thread and on two,
 * over sizes that leave partial blocks, partial vectors and empty parts:
 * rows not a multiple of 4 or 16, n = 0, d = 0, d below and above one
 * vector, NaN and infinities in the data. */
#include "backend/be_internal.h"
#include "interp/interp.h"
#include "tests/common/tltest.h"
#include "util/alloc.h"

#include <stdio.h>
#include <string.h>

int be_compare_opts(const tl_graph *g, tl_tensor **inputs, const int64_t *syms, const char *what, int verbose,
                    const be_options *o, be_stats *st);
void be_add_specials(tl_tensor *t); /* be_loops.c */

typedef struct pcase {
  const char *name, *text;
  int groups; /* one-pass groups the plan must form */
  int min_n;  /* sizes with fewer rows are skipped */
} pcase;

/* logistic regression's step, as tl.grad writes it; the loss (a reduction
 * of z between the two products) moves after the group */
#define LOGREG(T, MEAN_FIRST)                                                                                      \
  "(graph p (in w " T " [d]) (in b " T " []) (in X " T " [n d]) (in y " T " [n])"                                \
  " (let z (add (matmul X w) b))" MEAN_FIRST " (let r (mul (sub (sigmoid z) y) 0.01))"                             \
  " (out loss (mean (sub (softplus z) (mul z y))))"                                                                \
  " (out w2 (add w (mul (squeeze (matmul (transpose X :perm [1 0]) (expand_dims r :axis -1)) :axis -1) -0.1)))" \
  " (out b2 (add b (mul (sum r :axis 0) -0.1))))"

static const pcase cases[] = {
  {"logreg f32", LOGREG("f32", ""), 1, 0},
  /* the loss's kernel comes before r's: it reads z, which r's kernel may
   * no longer write over (z stays live to the group's end) */
  {"logreg f32, loss first", LOGREG("f32", " (let l0 (mean (sub (softplus z) (mul z y))))"), 1, 0},
  {"logreg f64", LOGREG("f64", ""), 1, 0},
  /* r^T X, r a row vector */
  {"r^T X", "(graph p (in w f64 [d]) (in X f64 [n d]) (out g (matmul (tanh (matmul X w)) X)))", 1, 0},
  /* [n 1] columns through the members, X^T r as a column */
  {"columns", "(graph p (in w f32 [d 1]) (in X f32 [n d]) (in y f32 [n 1])"
              " (out g (matmul (transpose X) (mul (sub (matmul X w) y) 2))))", 1, 0},
  /* r needs all of z (its sum): no group, and the same values */
  {"r reads all rows", "(graph p (in w f32 [d]) (in X f32 [n d]) (let z (matmul X w))"
                       " (out g (matmul (transpose X) (expand_dims (mul z (sum z)) :axis -1))))", 0, 0},
  /* r reads z's last row at every row: no group (a block would read it
   * before the last block computed it); n >= 1, as the compiled program
   * asks of the slice's size n - 1 */
  {"r reads the last row", "(graph p (in w f32 [d]) (in X f32 [n d]) (let z (matmul X w))"
                           " (out g (matmul (transpose X) (expand_dims (mul z (slice z :start -1)) :axis -1))))", 0, 1},
  /* r gathers: the index check must run before the gather, so it cannot
   * move after the group, and no group forms */
  {"r gathers", "(graph p (in w f32 [d]) (in X f32 [n d]) (in i i32 [n]) (in v f32 [3]) (let z (matmul X w))"
                " (out g (matmul (transpose X) (expand_dims (mul z (take v i)) :axis -1))))", 0, 0},
  /* the second product over another matrix: no group */
  {"two matrices", "(graph p (in w f32 [d]) (in X f32 [n d]) (in V f32 [n d])"
                   " (out g (matmul (transpose V) (expand_dims (exp (matmul X w)) :axis -1))))", 0, 0},
};

static const int64_t sizes[][2] = {{1000, 7}, {37, 100}, {203, 20}, {5, 3}, {0, 9}, {9, 0}, {3000, 16}};

static int groups(const tl_graph *g) {
  be_plan pl;
  char err[512];
  int n = -1;
  if (!be_plan_build(&pl, g, err, sizeof err)) {
    n = 0;
    for (int k = 0; k < pl.nks; k++) n += pl.ks[k].pass_hi > pl.ks[k].pass_lo && k == pl.ks[k].pass_lo;
  }
  be_plan_free(&pl);
  return n;
}

static int run_case(const pcase *c, int verbose) {
  char *diag = NULL, err[512];
  tl_graph *g = tlt_parse(c->text, &diag);
  if (!g) {
    printf("FAIL %s: parse: %s\n", c->name, diag);
    tl_free(diag);
    return 1;
  }
  tl_free(diag);
  int bad = 0, ng = groups(g);
  if (ng != c->groups) {
    printf("FAIL %s: %d one-pass groups, expected %d\n", c->name, ng, c->groups);
    bad = 1;
  }
  for (size_t s = 0; s < sizeof sizes / sizeof *sizes && !bad; s++)
    for (int special = 0; special < 2 && !bad && sizes[s][0] >= c->min_n; special++) {
      /* symbols in order of appearance: d, n (w comes first) */
      int64_t syms[8] = {sizes[s][1], sizes[s][0]}; /* and room for derived ones (n - 1) */
      tl_tensor *in[4] = {0};
      if (tl_random_inputs(g, in, syms, (uint64_t)(11 + s), err, sizeof err)) {
        printf("FAIL %s: inputs: %s\n", c->name, err);
        bad = 1;
        break;
      }
      if (special)
        for (int i = 0; i < g->ninputs; i++)
          if (i == g->ninputs - 1 || g->nodes[g->inputs[i]].type.rank == 2) be_add_specials(in[i]);
      be_options o = be_options_default();
      o.use_cache = 0;
      for (int th = 1; th <= 2 && !bad; th++) {
        char what[300];
        snprintf(what, sizeof what, "%s (n %lld, d %lld%s, %d thread%s)", c->name, (long long)sizes[s][0],
                 (long long)sizes[s][1], special ? ", NaN and inf" : "", th, th > 1 ? "s" : "");
        o.threads = th;
        be_stats st;
        bad = be_compare_opts(g, in, syms, what, verbose, &o, &st);
        if (!bad && st.npasses != c->groups) {
          printf("FAIL %s: the program ran %d groups, the plan formed %d\n", what, st.npasses, c->groups);
          bad = 1;
        }
      }
      for (int i = 0; i < g->ninputs; i++) tl_tensor_free(in[i]);
    }
  tl_graph_free(g);
  return bad;
}

int be_pass_tests(int verbose) {
  int fails = 0, n = (int)(sizeof cases / sizeof *cases);
  for (int i = 0; i < n; i++) fails += run_case(&cases[i], verbose);
  printf("one-pass groups: %d cases x %d sizes, %d failed\n", n, (int)(sizeof sizes / sizeof *sizes), fails);
  return fails;
}
