/* test_match.c - e-matching: hand-checked cases, repeated variables, ground
 * sub-patterns, attribute variables, and the compiled program against the
 * naive backtracking matcher on a saturated math e-graph. */
#include <criterion/criterion.h>
#include <stdlib.h>

#include "tests/support/egg_math.h"
#include "egraph/pattern.h"
#include "egraph/runner.h"
#include "toy.h"

static size_t count(eg_egraph *g, const char *pat, eg_matches *m) {
  char err[200];
  eg_pat *p = eg_pat_parse(eg_lang_of(g), pat, err, sizeof err);
  cr_assert(p, "%s", err);
  eg_prog *pr = eg_prog_new(g, &p->p, &p->vars);
  eg_matches_clear(m, p->vars.n);
  size_t n = eg_prog_search(g, pr, SIZE_MAX, m);
  eg_matches naive = {0};
  size_t nn = eg_pattern_search_naive(g, &p->p, &p->vars, &naive);
  cr_assert_eq(n, nn, "%s: machine %zu, naive %zu", pat, n, nn);
  eg_matches_free(&naive);
  eg_prog_free(pr);
  eg_pat_free(p);
  return n;
}

Test(egraph_match, hand_checked) {
  eg_egraph *g = eg_new((eg_params){.lang = &toy_lang, .check = true});
  char err[128];
  eg_id a = eg_add_term(g, "(g x y)", err, sizeof err);
  eg_id b = eg_add_term(g, "(g y x)", err, sizeof err);
  eg_add_term(g, "(g x x)", err, sizeof err);
  eg_add_term(g, "(f (g x x))", err, sizeof err);
  eg_union(g, a, b);
  eg_rebuild(g);
  eg_matches m = {0};
  cr_assert_eq(count(g, "(g ?a ?b)", &m), 3);
  cr_assert_eq(count(g, "(g ?a ?a)", &m), 1);           /* repeated var: same class */
  cr_assert_eq(count(g, "(g x ?b)", &m), 2);            /* ground child: lookup */
  cr_assert_eq(count(g, "(g ?a y)", &m), 1);
  cr_assert_eq(count(g, "(f (g ?a ?a))", &m), 1);
  cr_assert_eq(count(g, "(f (g ?a y))", &m), 0);
  cr_assert_eq(count(g, "(g x y)", &m), 1);             /* ground root */
  cr_assert_eq(count(g, "(g z y)", &m), 0);             /* ground, absent */
  cr_assert_eq(count(g, "?v", &m), eg_nclasses(g));     /* bare var: every class */
  /* the match of (g x ?b) in the class {(g x y), (g y x)} binds ?b = y */
  count(g, "(g x ?b)", &m);
  eg_id y = eg_add_term(g, "y", err, sizeof err);
  bool found = false;
  for (size_t i = 0; i < m.n; i++)
    if (eg_match_at(&m, i)[0] == eg_find(g, a)) found = eg_match_at(&m, i)[1] == eg_find(g, y);
  cr_assert(found);
  eg_matches_free(&m);
  eg_free(g);
}

Test(egraph_match, attribute_variables) {
  eg_egraph *g = eg_new((eg_params){.lang = &toy_lang, .check = true});
  char err[128];
  cr_assert_neq(eg_add_term(g, "(sum x :axis 1)", err, sizeof err), EG_NONE, "%s", err);
  eg_add_term(g, "(sum x :axis 2)", err, sizeof err);
  eg_add_term(g, "(g (sum y :axis 1) (sum y :axis 1))", err, sizeof err);
  eg_add_term(g, "(g (sum y :axis 1) (sum y :axis 2))", err, sizeof err);
  eg_rebuild(g);
  eg_matches m = {0};
  cr_assert_eq(count(g, "(sum ?x :axis ?a)", &m), 4);
  cr_assert_eq(count(g, "(sum ?x :axis 1)", &m), 2);
  cr_assert_eq(count(g, "(g (sum ?x :axis ?a) (sum ?y :axis ?a))", &m), 1);
  count(g, "(sum x :axis ?a)", &m);
  cr_assert_eq(m.n, 2);
  cr_assert_neq(eg_match_at(&m, 0)[1], eg_match_at(&m, 1)[1]);
  eg_matches_free(&m);
  eg_free(g);
}

Test(egraph_match, machine_equals_naive_on_math) {
  eg_math mt;
  eg_math_init(&mt);
  eg_rules *r = eg_rules_new(&mt.lang, mt.conds);
  cr_assert_eq(eg_rules_load_file(r, TL_SOURCE_ROOT "/bench/egraph/egg-math.rw", NULL), 0);
  eg_egraph *g = eg_new(eg_math_params(&mt, false));
  char err[128];
  eg_add_term(g, "(d x (- (pow x 3) (* 7 (pow x 2))))", err, sizeof err);
  eg_phase ph = {NULL, {6, 5000, 10, 0}};
  eg_report_free(eg_run(g, r, &ph, 1, eg_run_defaults()));
  eg_matches m = {0};
  for (int i = 0; i < r->nrules; i++) {
    eg_prog *pr = eg_prog_new(g, &r->rules[i].lhs, r->rules[i].vars);
    eg_matches_clear(&m, r->rules[i].vars->n);
    size_t n = eg_prog_search(g, pr, SIZE_MAX, &m);
    eg_matches nv = {0};
    size_t nn = eg_pattern_search_naive(g, &r->rules[i].lhs, r->rules[i].vars, &nv);
    cr_assert_eq(n, nn, "rule %s: machine %zu naive %zu", r->rules[i].name, n, nn);
    /* same multiset of records */
    size_t w = 1 + m.width;
    int (*cmp)(const void *, const void *) = NULL;
    (void)cmp;
    for (size_t a = 0; a < n; a++) {
      bool hit = false;
      for (size_t b = 0; b < nn && !hit; b++) hit = !memcmp(m.a + a * w, nv.a + b * w, w * 4);
      cr_assert(hit, "rule %s: machine match %zu not found naively", r->rules[i].name, a);
    }
    eg_matches_free(&nv);
    eg_prog_free(pr);
  }
  eg_matches_free(&m);
  eg_free(g);
  eg_rules_free(r);
  eg_math_fini(&mt);
}
