/* test_rules.c - the .rw reader: the shipped math rules, and error messages
 * with exact file:line:col, source line and caret. */
#include <criterion/criterion.h>

#include "egraph/math.h"
#include "egraph/rules.h"

static eg_math M;
static void setup(void) { eg_math_init(&M); }
static void teardown(void) { eg_math_fini(&M); }

static char *load(const char *text, int *nerr) {
  eg_rules *r = eg_rules_new(&M.lang, M.conds);
  eg_diag d = {0};
  *nerr = eg_rules_load(r, "t.rw", text, strlen(text), &d);
  cr_assert_eq(r->nrules, *nerr ? 0 : r->nrules, "a text with errors adds nothing");
  eg_rules_free(r);
  char *s = d.text ? strdup(d.text) : strdup("");
  eg_diag_free(&d);
  return s;
}

TestSuite(egraph_rules, .init = setup, .fini = teardown);

Test(egraph_rules, shipped_math_rules) {
  eg_rules *r = eg_rules_new(&M.lang, M.conds);
  eg_diag d = {0};
  cr_assert_eq(eg_rules_load_file(r, TL_SOURCE_ROOT "/bench/egraph/egg-math.rw", &d), 0, "%s", d.text);
  cr_assert_eq(r->nrules, 36);
  cr_assert_eq(r->nrulesets, 1);
  cr_assert_str_eq(r->rules[0].name, "comm-add");
  cr_assert_str_eq(r->rules[35].name, "i-parts");
  const eg_rule *dc = eg_rules_find(r, "d-constant", false);
  cr_assert(dc);
  cr_assert_eq(dc->nconds, 2);
  eg_rules_free(r);
}

Test(egraph_rules, bidirectional_makes_two_rules) {
  eg_rules *r = eg_rules_new(&M.lang, M.conds);
  const char *t = "(ruleset s (rule c (+ ?a ?b) <=> (+ ?b ?a)) (rule z (+ ?a 0) => ?a))";
  cr_assert_eq(eg_rules_load(r, "t.rw", t, strlen(t), NULL), 0);
  cr_assert_eq(r->nrules, 3);
  cr_assert(eg_rules_find(r, "c", true));
  eg_rules_free(r);
}

Test(egraph_rules, unknown_op) {
  int n;
  char *s = load("(ruleset s\n  (rule r (foo ?a) => ?a))\n", &n);
  cr_assert_eq(n, 1);
  cr_assert_str_eq(s, "t.rw:2:12: error: unknown op 'foo'\n"
                      "  (rule r (foo ?a) => ?a))\n"
                      "           ^\n");
  free(s);
}

Test(egraph_rules, wrong_arity) {
  int n;
  char *s = load("(ruleset s (rule r (+ ?a) => ?a))", &n);
  cr_assert_str_eq(s, "t.rw:1:21: error: op '+' takes 2 operands, got 1\n"
                      "(ruleset s (rule r (+ ?a) => ?a))\n"
                      "                    ^\n");
  free(s);
}

Test(egraph_rules, unbound_rhs_var) {
  int n;
  char *s = load("(ruleset s (rule r (+ ?a ?b) => (+ ?a ?c)))", &n);
  cr_assert_str_eq(s, "t.rw:1:39: error: unbound variable '?c' on the right side\n"
                      "(ruleset s (rule r (+ ?a ?b) => (+ ?a ?c)))\n"
                      "                                      ^\n");
  free(s);
}

Test(egraph_rules, unknown_condition) {
  int n;
  char *s = load("(ruleset s (rule r (/ ?a ?a) => 1 :if (positive ?a)))", &n);
  cr_assert_str_eq(s, "t.rw:1:40: error: unknown condition 'positive'\n"
                      "(ruleset s (rule r (/ ?a ?a) => 1 :if (positive ?a)))\n"
                      "                                       ^\n");
  free(s);
}

Test(egraph_rules, duplicate_rule_name) {
  int n;
  char *s = load("(ruleset s\n (rule r (+ ?a 0) => ?a)\n (rule r (* ?a 1) => ?a))", &n);
  cr_assert_str_eq(s, "t.rw:3:8: error: duplicate rule name 'r' (first defined at t.rw:2:2)\n"
                      " (rule r (* ?a 1) => ?a))\n"
                      "       ^\n");
  free(s);
}

Test(egraph_rules, unbalanced_parens) {
  int n;
  char *s = load("(ruleset s\n (rule r (+ ?a 0) => ?a)\n", &n);
  cr_assert_str_eq(s, "t.rw:1:1: error: unbalanced parentheses: '(' is never closed\n"
                      "(ruleset s\n"
                      "^\n");
  free(s);
  s = load("(ruleset s (rule r ?a => ?a)))", &n);
  cr_assert_str_eq(s, "t.rw:1:30: error: unbalanced parentheses: unexpected ')'\n"
                      "(ruleset s (rule r ?a => ?a)))\n"
                      "                             ^\n");
  free(s);
}

Test(egraph_rules, several_errors_in_one_run) {
  int n;
  char *s = load("(ruleset s\n"
                 "  (rule a (foo ?x) => ?x)\n"
                 "  (rule b (+ ?x 0) => ?y)\n"
                 "  (rule c (+ ?x 0) => ?x :if (nonzero ?x ?x))\n"
                 "  (rule d (+ ?x 0) -> ?x)\n"
                 "  (rule e (+ ?x 0) => ?x))\n", &n);
  cr_assert_eq(n, 4, "%s", s);
  cr_assert(strstr(s, "t.rw:2:12: error: unknown op 'foo'"));
  cr_assert(strstr(s, "t.rw:3:23: error: unbound variable '?y' on the right side"));
  cr_assert(strstr(s, "t.rw:4:31: error: condition 'nonzero' takes 1 argument, got 2"));
  cr_assert(strstr(s, "t.rw:5:20: error: expected '=>' or '<=>' after the left side"));
  free(s);
}

Test(egraph_rules, garbage_never_crashes) {
  const char *bad[] = {"", ")", "(", "(ruleset", "(ruleset)", "(rule x)", "((((", "(ruleset s (rule))",
                       "(ruleset s (rule r))", "(ruleset s (rule r (+ ?a ?b)))",
                       "(ruleset s (rule r (+ ?a ?b) =>))", "(ruleset s (rule r ? => ?))",
                       "(ruleset s (rule r (+ ?a ?b) => ?a :if))", "(ruleset s (rule r (+ ?a ?b) => ?a :if nonzero))",
                       "(ruleset s (rule r (+ ?a ?b) => ?a :if (nonzero (+ 1 2))))", "(ruleset s (rule r () => 1))",
                       "(ruleset s (rule r (+ ?a ?b :axis 1) => 1))", "(ruleset s [ ] (rule r 1 => 2))",
                       "x y z", "(ruleset s (rule (r) 1 => 2))", "(ruleset s (rule r 1 <=> ?a))"};
  for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
    int n;
    char *s = load(bad[i], &n);
    if (i > 0) cr_assert_gt(n, 0, "accepted: %s", bad[i]);
    free(s);
  }
}
