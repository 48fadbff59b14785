/* test_match.c - e-matching: hand-checked cases, repeated variables, ground
 * sub-patterns, attribute variables, and the compiled program against the
 * naive backtracking matcher on a saturated math e-graph. */
#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>

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

/* pat compiled for skipping searches (eg_prog_skip_applied), m cleared for
 * its matches; *p: the parsed pattern (the program reads it). */
static eg_prog *skipping_prog(eg_egraph *g, const char *pat, eg_pat **p, eg_matches *m) {
  char err[200];
  *p = eg_pat_parse(eg_lang_of(g), pat, err, sizeof err);
  cr_assert(*p, "%s", err);
  eg_prog *pr = eg_prog_new(g, &(*p)->p, &(*p)->vars);
  eg_prog_skip_applied(pr, true);
  eg_matches_clear(m, (*p)->vars.n);
  return pr;
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
  cr_assert_eq(count(g, "(g ?a ?a)", &m), 1); /* repeated var: same class */
  cr_assert_eq(count(g, "(g x ?b)", &m), 2);  /* ground child: lookup */
  cr_assert_eq(count(g, "(g ?a y)", &m), 1);
  cr_assert_eq(count(g, "(f (g ?a ?a))", &m), 1);
  cr_assert_eq(count(g, "(f (g ?a y))", &m), 0);
  cr_assert_eq(count(g, "(g x y)", &m), 1);         /* ground root */
  cr_assert_eq(count(g, "(g z y)", &m), 0);         /* ground, absent */
  cr_assert_eq(count(g, "?v", &m), eg_nclasses(g)); /* bare var: every class */
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

/* Keyed binds (a node pattern whose first child is a variable bound
 * earlier: a binary search in the class's sorted nodes) must respect the
 * attribute and arity in the order, and leave attribute variables alone. */
Test(egraph_match, keyed_binds_respect_attributes) {
  eg_egraph *g = eg_new((eg_params){.lang = &toy_lang, .check = true});
  char err[128];
  /* sorted in C: (f x), (sum x :2), (sum x :3), (sum y :4): the first two
   * sums share op, arity and first child, and differ in the attribute */
  const char *same[] = {"(sum x :axis 2)", "(sum x :axis 3)", "(sum y :axis 4)", "(f x)"};
  eg_id c = EG_NONE;
  for (int i = 0; i < 4; i++) {
    eg_id t = eg_add_term(g, same[i], err, sizeof err);
    cr_assert_neq(t, EG_NONE, "%s", err);
    if (c != EG_NONE) eg_union(g, c, t);
    c = t;
  }
  eg_add_term(g, "(g (sum x :axis 3) (sum x :axis 2))", err, sizeof err); /* (g C C) */
  eg_add_term(g, "(g x (f x))", err, sizeof err);                         /* (g x C) */
  eg_rebuild(g);
  eg_matches m = {0};
  cr_assert_eq(count(g, "(g (sum ?x :axis 3) (sum ?x :axis 2))", &m), 1);
  cr_assert_eq(count(g, "(g ?x (sum ?x :axis 2))", &m), 1);
  cr_assert_eq(count(g, "(g ?x (f ?x))", &m), 1);
  cr_assert_eq(count(g, "(g ?x (sum ?x :axis ?a))", &m), 2);
  cr_assert_eq(count(g, "(g (sum ?x :axis ?a) (sum ?x :axis ?a))", &m), 3);
  eg_matches_free(&m);
  eg_free(g);
}

/* Skipping what an anchor search found (eg_prog_skip_applied) keeps a
 * match whose nodes did not change when a ground part's class did: here
 * (g a b) comes to match (g ?a k) by k joining b's class, and neither the
 * f nor the g node is stamped for it. */
Test(egraph_match, skipping_keeps_matches_through_a_moved_ground_class) {
  eg_egraph *g = eg_new((eg_params){.lang = &toy_lang, .check = true});
  char err[128];
  cr_assert_neq(eg_add_term(g, "(f (g a b))", err, sizeof err), EG_NONE, "%s", err);
  eg_id b = eg_add_term(g, "b", err, sizeof err), k = eg_add_term(g, "k", err, sizeof err);
  eg_rebuild(g);
  eg_pat *p;
  eg_matches m = {0};
  eg_prog *pr = skipping_prog(g, "(f (g ?a k))", &p, &m);
  eg_next_epoch(g);
  cr_assert_eq(eg_prog_search(g, pr, SIZE_MAX, &m), 0);
  eg_prog_applied(pr);
  eg_next_epoch(g);
  eg_union(g, k, b);
  eg_rebuild(g);
  cr_assert_eq(eg_find(g, k), b); /* b has the parent: it stays the root, (g a b) is not re-keyed */
  cr_assert_eq(eg_prog_search(g, pr, SIZE_MAX, &m), 1);
  cr_assert_eq(m.n, 1, "the match through the moved ground class was skipped");
  eg_prog_applied(pr);
  /* nothing changed since that search: found and counted, not kept */
  eg_matches_clear(&m, p->vars.n);
  eg_next_epoch(g);
  cr_assert_eq(eg_prog_search(g, pr, SIZE_MAX, &m), 1);
  cr_assert_eq(m.n, 0);
  eg_matches_free(&m);
  eg_prog_free(pr);
  eg_pat_free(p);
  eg_free(g);
}

/* A pattern binding a node of an op no class has is not searched
 * (eg_prog_prepare says so), and once such a node appears under an old
 * node, the match through them is found and kept by a skipping search. */
Test(egraph_match, an_absent_op_is_not_searched_until_it_appears) {
  eg_egraph *g = eg_new((eg_params){.lang = &toy_lang, .check = true});
  char err[128];
  cr_assert_neq(eg_add_term(g, "(g a b)", err, sizeof err), EG_NONE, "%s", err);
  cr_assert_neq(eg_add_term(g, "(g c c)", err, sizeof err), EG_NONE, "%s", err);
  eg_id b = eg_add_term(g, "b", err, sizeof err);
  eg_rebuild(g);
  eg_pat *p;
  eg_matches m = {0};
  eg_prog *pr = skipping_prog(g, "(g ?x (f ?y))", &p, &m);
  cr_assert(!eg_prog_prepare(g, pr), "no f node: nothing to search");
  eg_next_epoch(g);
  cr_assert_eq(eg_prog_search(g, pr, SIZE_MAX, &m), 0);
  eg_prog_applied(pr);
  eg_next_epoch(g);
  eg_id fd = eg_add_term(g, "(f d)", err, sizeof err);
  eg_union(g, fd, b);
  eg_rebuild(g);
  cr_assert(eg_prog_prepare(g, pr));
  cr_assert_eq(eg_prog_search(g, pr, SIZE_MAX, &m), 1);
  cr_assert_eq(m.n, 1, "the match through the new f node was skipped");
  eg_matches_clear(&m, p->vars.n);
  cr_assert_eq(count(g, "(g ?x (f ?y))", &m), 1);
  cr_assert_eq(count(g, "(f (g ?x ?y))", &m), 0);
  eg_matches_free(&m);
  eg_prog_free(pr);
  eg_pat_free(p);
  eg_free(g);
}

Test(egraph_match, machine_equals_naive_on_math) {
  eg_math mt;
  eg_math_init(&mt);
  eg_rules *r = eg_rules_new(&mt.lang, mt.conds);
  cr_assert_eq(eg_rules_load_file(r, TL_SOURCE_ROOT "/bench/egraph/egg-math.rw", NULL), 0);
  /* the second expression gives the keyed rules (first child bound before:
   * factor, d-sin, d-cos) matches to find */
  const char *exprs[] = {"(d x (- (pow x 3) (* 7 (pow x 2))))", "(d x (* (sin x) (cos x)))"};
  size_t keyed[3] = {0, 0, 0};
  const char *keyed_names[3] = {"factor", "d-sin", "d-cos"};
  for (int e = 0; e < 2; e++) {
    eg_egraph *g = eg_new(eg_math_params(&mt, false));
    char err[128];
    cr_assert_neq(eg_add_term(g, exprs[e], err, sizeof err), EG_NONE, "%s", err);
    eg_phase ph = {NULL, {6, 5000, 10, 0}};
    eg_report_free(eg_run(g, r, &ph, 1, eg_run_defaults()));
    eg_matches m = {0};
    for (int i = 0; i < r->nrules; i++) {
      eg_prog *pr = eg_prog_new(g, &r->rules[i].lhs, r->rules[i].vars);
      eg_matches_clear(&m, r->rules[i].vars->n);
      size_t n = eg_prog_search(g, pr, SIZE_MAX, &m);
      eg_matches nv = {0};
      size_t nn = eg_pattern_search_naive(g, &r->rules[i].lhs, r->rules[i].vars, &nv);
      cr_assert_eq(n, nn, "%s: rule %s: machine %zu naive %zu", exprs[e], r->rules[i].name, n, nn);
      for (int k = 0; k < 3; k++)
        if (!strcmp(r->rules[i].name, keyed_names[k])) keyed[k] += n;
      /* same multiset of records */
      size_t w = 1 + m.width;
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
  }
  for (int k = 0; k < 3; k++) cr_assert_gt(keyed[k], 0u, "rule %s found nothing to compare", keyed_names[k]);
  eg_rules_free(r);
  eg_math_fini(&mt);
}
