/* test_deep.c - terms as deep as a long program: extraction's printing and
 * explanations over 10^5..10^6-level chains run on the default stack (the
 * sanitizer build included), and explanations of a DAG whose flat proof is
 * exponentially long stop at their bound. */
#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>

#include "egraph/explain.h"
#include "util/alloc.h"
#include "egraph/extract.h"
#include "tests/support/egg_math.h"
#include "egraph/runner.h"

static eg_math M;
static void setup(void) { eg_math_init(&M); }
static void teardown(void) { eg_math_fini(&M); }
TestSuite(egraph_deep, .init = setup, .fini = teardown);

static eg_id leaf(eg_egraph *g, const char *t) {
  char err[128];
  eg_id id = eg_add_term(g, t, err, sizeof err);
  cr_assert_neq(id, EG_NONE, "%s", err);
  return id;
}

/* (+ (+ ... (+ bottom 1) ... 1) 1), n levels */
static eg_id chain(eg_egraph *g, eg_id bottom, int n) {
  eg_id one = leaf(g, "1"), c = bottom;
  for (int i = 0; i < n; i++) {
    eg_id k[2] = {c, one};
    c = eg_add(g, EG_MATH_ADD, EG_ATTR_NONE, k, 2);
  }
  return c;
}

Test(egraph_deep, extracted_chain_prints) {
  eg_egraph *g = eg_new((eg_params){.lang = &M.lang});
  int n = 1000000;
  eg_id root = chain(g, leaf(g, "x"), n);
  eg_rebuild(g);
  double cost;
  char *s = eg_extract_best(g, root, &cost);
  cr_assert(s);
  cr_assert_eq(cost, 2.0 * n + 1);
  cr_assert_eq(strlen(s), (size_t)n * strlen("(+  1)") + 1);
  cr_assert(!strncmp(s, "(+ (+ (+ x 1) 1) 1)", 6) && !strcmp(s + strlen(s) - 6, " 1) 1)"));
  tl_free(s);
  eg_free(g);
}

static eg_rules *zero_add(void) {
  eg_rules *r = eg_rules_new(&M.lang, M.conds);
  const char *t = "(ruleset z (rule zero-add (+ ?a 0) => ?a))";
  cr_assert_eq(eg_rules_load(r, "z.rw", t, strlen(t), NULL), 0);
  return r;
}

/* A rewrite at the bottom of a chain: the proof is one step under a path
 * as long as the chain, printed with the path's middle left out. */
Test(egraph_deep, explanation_of_a_deep_rewrite) {
  eg_rules *r = zero_add();
  eg_egraph *g = eg_new((eg_params){.lang = &M.lang, .explain = true});
  int n = 200000;
  eg_id x = leaf(g, "x"), x0[2] = {x, leaf(g, "0")};
  eg_id a = chain(g, eg_add(g, EG_MATH_ADD, EG_ATTR_NONE, x0, 2), n);
  eg_id b = chain(g, x, n);
  eg_phase ph = {NULL, {4, 0, 0, 0}};
  eg_report_free(eg_run(g, r, &ph, 1, eg_run_defaults()));
  cr_assert_eq(eg_find(g, a), eg_find(g, b));
  eg_expl *e = eg_explain(g, a, b);
  cr_assert(e);
  cr_assert_not(eg_expl_truncated(e));
  cr_assert_eq(eg_expl_nsteps(e), 1);
  const eg_expl_step *s = eg_expl_step_at(e, 0);
  cr_assert_str_eq(s->rule, "zero-add");
  cr_assert_str_eq(s->before, "(+ x 0)");
  cr_assert_str_eq(s->after, "x");
  /* 8 levels of the path at each end */
  char want[512] = "", *w = want;
  for (int i = 0; i < 8; i++) w += sprintf(w, "(+ ");
  w += sprintf(w, "... ");
  for (int i = 0; i < 8; i++) w += sprintf(w, "(+ ");
  w += sprintf(w, "(Rewrite=> zero-add x)");
  for (int i = 0; i < 8; i++) w += sprintf(w, " 1)");
  w += sprintf(w, " ...");
  for (int i = 0; i < 8; i++) w += sprintf(w, " 1)");
  cr_assert_str_eq(s->term, want);
  cr_assert_lt(strlen(eg_expl_start(e)), 2 * EG_EXPL_TERM_BYTES);
  cr_assert_lt(strlen(s->plain), 2 * EG_EXPL_TERM_BYTES);
  cr_assert(strstr(eg_expl_start(e), "..."));
  eg_expl_free(e);
  char *t = eg_id_term(g, a);
  cr_assert_lt(strlen(t), 2 * EG_EXPL_TERM_BYTES);
  tl_free(t);
  eg_free(g);
  eg_rules_free(r);
}

/* v_i = (+ v_{i-1} v_{i-1}) with (+ x 0) at the bottom against x: the flat
 * proof repeats the bottom step at each of the 2^60 uses; the explanation
 * stops at its work bound, and every term is cut at its byte bound. */
Test(egraph_deep, explanation_of_a_shared_dag_is_bounded) {
  eg_rules *r = zero_add();
  eg_egraph *g = eg_new((eg_params){.lang = &M.lang, .explain = true});
  eg_id x = leaf(g, "x"), x0[2] = {x, leaf(g, "0")};
  eg_id a = eg_add(g, EG_MATH_ADD, EG_ATTR_NONE, x0, 2), b = x;
  for (int i = 0; i < 60; i++) {
    eg_id ka[2] = {a, a}, kb[2] = {b, b};
    a = eg_add(g, EG_MATH_ADD, EG_ATTR_NONE, ka, 2);
    b = eg_add(g, EG_MATH_ADD, EG_ATTR_NONE, kb, 2);
  }
  eg_phase ph = {NULL, {4, 0, 0, 0}};
  eg_report_free(eg_run(g, r, &ph, 1, eg_run_defaults()));
  cr_assert_eq(eg_find(g, a), eg_find(g, b));
  eg_expl *e = eg_explain(g, a, b);
  cr_assert(e);
  cr_assert(eg_expl_truncated(e));
  size_t n = eg_expl_nsteps(e);
  cr_assert_gt(n, 1000);
  for (size_t i = 0; i < n; i += n / 7) {
    const eg_expl_step *s = eg_expl_step_at(e, i);
    cr_assert_lt(strlen(s->plain), 2 * EG_EXPL_TERM_BYTES);
    cr_assert(strstr(s->term, "(Rewrite=> zero-add x)"), "%.300s", s->term);
  }
  cr_assert(strstr(eg_expl_text(e), "explanation cut after"));
  eg_expl_free(e);
  eg_free(g);
  eg_rules_free(r);
}
