/* test_explain.c - explanations: a chain of rule steps whose every step is
 * replayed (the step's rule, run once on the step's start, yields its end). */
#include <criterion/criterion.h>
#include <stdlib.h>

#include "egraph/explain.h"
#include "tests/support/egg_math.h"
#include "egraph/runner.h"

static eg_math M;
static void setup(void) { eg_math_init(&M); }
static void teardown(void) { eg_math_fini(&M); }
TestSuite(egraph_explain, .init = setup, .fini = teardown);

static const char *RULES =
  "(ruleset alg\n"
  "  (rule comm-add (+ ?a ?b) => (+ ?b ?a))\n"
  "  (rule assoc-add (+ ?a (+ ?b ?c)) => (+ (+ ?a ?b) ?c))\n"
  "  (rule comm-mul (* ?a ?b) => (* ?b ?a))\n"
  "  (rule distribute (* ?a (+ ?b ?c)) => (+ (* ?a ?b) (* ?a ?c)))\n"
  "  (rule zero-add (+ ?a 0) => ?a))\n";

/* A step is valid when one application of its rule to `from` puts `to` in
 * the same class (run in a fresh e-graph without analyses). */
static void replay(const eg_rules *all, const eg_expl_step *s) {
  eg_rules *one = eg_rules_new(&M.lang, M.conds);
  const eg_rule *ru = eg_rules_find(all, s->rule, false);
  cr_assert(ru, "unknown rule in explanation: %s", s->rule);
  char text[512];
  /* rebuild the single rule from the shared file text */
  char key[64];
  snprintf(key, sizeof key, "(rule %s ", s->rule);
  const char *start = strstr(RULES, key), *end = start;
  for (int depth = 0; end == start || depth > 0; end++) depth += (*end == '(') - (*end == ')');
  snprintf(text, sizeof text, "(ruleset one %.*s)", (int)(end - start), start);
  cr_assert_eq(eg_rules_load(one, "one.rw", text, strlen(text), NULL), 0, "%s", text);
  eg_egraph *g = eg_new((eg_params){.lang = &M.lang, .check = true});
  char err[128];
  const char *from = s->backward ? s->after : s->before, *to = s->backward ? s->before : s->after;
  eg_id a = eg_add_term(g, from, err, sizeof err);
  eg_phase ph = {NULL, {1, 0, 0, 0}};
  eg_report_free(eg_run(g, one, &ph, 1, eg_run_defaults()));
  eg_id b = eg_lookup(g, 0, 0, NULL, 0);
  (void)b;
  eg_id t = eg_add_term(g, to, err, sizeof err);
  eg_rebuild(g);
  cr_assert_eq(eg_find(g, a), eg_find(g, t), "step %s: %s -> %s not replayable", s->rule, from, to);
  eg_free(g);
  eg_rules_free(one);
}

Test(egraph_explain, chain_replays) {
  eg_rules *r = eg_rules_new(&M.lang, M.conds);
  cr_assert_eq(eg_rules_load(r, "alg.rw", RULES, strlen(RULES), NULL), 0);
  eg_params p = {.lang = &M.lang, .explain = true, .check = true};
  eg_egraph *g = eg_new(p);
  char err[128];
  eg_id a = eg_add_term(g, "(* x (+ y (+ z 0)))", err, sizeof err);
  eg_id b = eg_add_term(g, "(+ (* z x) (* x y))", err, sizeof err);
  eg_phase ph = {NULL, {8, 5000, 10, 0}};
  eg_report_free(eg_run(g, r, &ph, 1, eg_run_defaults()));
  cr_assert_eq(eg_find(g, a), eg_find(g, b));
  eg_expl *e = eg_explain(g, a, b);
  cr_assert(e);
  cr_assert_str_eq(eg_expl_start(e), "(* x (+ y (+ z 0)))");
  size_t n = eg_expl_nsteps(e);
  cr_assert_gt(n, 0);
  cr_assert_str_eq(eg_expl_step_at(e, n - 1)->plain, "(+ (* z x) (* x y))");
  for (size_t i = 0; i < n; i++) {
    const eg_expl_step *s = eg_expl_step_at(e, i);
    cr_assert(strstr(s->term, "(Rewrite"), "%s", s->term);
    replay(r, s);
  }
  eg_expl_free(e);
  cr_assert_null(eg_explain(g, a, eg_add_term(g, "q", err, sizeof err)));
  eg_free(g);
  eg_rules_free(r);
}

Test(egraph_explain, math_with_constant_folding) {
  eg_rules *r = eg_rules_new(&M.lang, M.conds);
  cr_assert_eq(eg_rules_load_file(r, TL_SOURCE_ROOT "/bench/egraph/egg-math.rw", NULL), 0);
  eg_params p = eg_math_params(&M, true);
  p.check = true;
  eg_egraph *g = eg_new(p);
  char err[128];
  eg_id a = eg_add_term(g, "(+ x (+ x (+ x x)))", err, sizeof err);
  eg_phase ph = {NULL, {30, 100000, 10, 0}};
  eg_report_free(eg_run(g, r, &ph, 1, eg_run_defaults()));
  eg_id b = eg_add_term(g, "(* x 4)", err, sizeof err);
  eg_expl *e = eg_explain(g, a, b);
  cr_assert(e);
  size_t n = eg_expl_nsteps(e);
  cr_assert_gt(n, 0);
  cr_assert_str_eq(eg_expl_step_at(e, n - 1)->plain, "(* x 4)");
  /* consecutive steps chain: each step starts where the previous ended */
  for (size_t i = 1; i < n; i++) {
    const eg_expl_step *s = eg_expl_step_at(e, i);
    cr_assert(strstr(eg_expl_step_at(e, i - 1)->plain, s->before), "%s", eg_expl_text(e));
  }
  eg_expl_free(e);
  eg_free(g);
  eg_rules_free(r);
}
