/* test_rules.c - the .rw reader: the shipped math rules, and error messages
 * with exact file:line:col, source line and caret. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tests/support/egg_math.h"
#include "util/alloc.h"
#include "egraph/rules.h"

static eg_math M;
static void setup(void) { eg_math_init(&M); }
static void teardown(void) { eg_math_fini(&M); }

static char *load(const char *text, int *nerr) {
  eg_rules *r = eg_rules_new(&M.lang, M.conds);
  tl_diag d = {0};
  *nerr = eg_rules_load(r, "t.rw", text, strlen(text), &d);
  cr_assert_eq(r->nrules, *nerr ? 0 : r->nrules, "a text with errors adds nothing");
  cr_assert(!*nerr || (r->nfuses == 0 && r->ninplaces == 0 && r->nclasses == 0),
            "a text with errors adds no declarations");
  eg_rules_free(r);
  char *s = tl_xstrdup(tl_diag_text(&d));
  tl_diag_free(&d);
  return s;
}

TestSuite(egraph_rules, .init = setup, .fini = teardown);

Test(egraph_rules, shipped_math_rules) {
  eg_rules *r = eg_rules_new(&M.lang, M.conds);
  tl_diag d = {0};
  cr_assert_eq(eg_rules_load_file(r, TL_SOURCE_ROOT "/bench/egraph/egg-math.rw", &d), 0, "%s", tl_diag_text(&d));
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
                      "    (rule r (foo ?a) => ?a))\n"
                      "             ^\n");
  tl_free(s);
}

Test(egraph_rules, wrong_arity) {
  int n;
  char *s = load("(ruleset s (rule r (+ ?a) => ?a))", &n);
  cr_assert_str_eq(s, "t.rw:1:21: error: op '+' takes 2 operands, got 1\n"
                      "  (ruleset s (rule r (+ ?a) => ?a))\n"
                      "                      ^\n");
  tl_free(s);
}

Test(egraph_rules, unbound_rhs_var) {
  int n;
  char *s = load("(ruleset s (rule r (+ ?a ?b) => (+ ?a ?c)))", &n);
  cr_assert_str_eq(s, "t.rw:1:39: error: unbound variable '?c' on the right side\n"
                      "  (ruleset s (rule r (+ ?a ?b) => (+ ?a ?c)))\n"
                      "                                        ^\n");
  tl_free(s);
}

Test(egraph_rules, unknown_condition) {
  int n;
  char *s = load("(ruleset s (rule r (/ ?a ?a) => 1 :if (positive ?a)))", &n);
  cr_assert_str_eq(s, "t.rw:1:40: error: unknown condition 'positive'\n"
                      "  (ruleset s (rule r (/ ?a ?a) => 1 :if (positive ?a)))\n"
                      "                                         ^\n");
  tl_free(s);
}

Test(egraph_rules, duplicate_rule_name) {
  int n;
  char *s = load("(ruleset s\n (rule r (+ ?a 0) => ?a)\n (rule r (* ?a 1) => ?a))", &n);
  cr_assert_str_eq(s, "t.rw:3:8: error: duplicate rule name 'r' (first defined at t.rw:2:2)\n"
                      "   (rule r (* ?a 1) => ?a))\n"
                      "         ^\n");
  tl_free(s);
}

Test(egraph_rules, unbalanced_parens) {
  int n;
  char *s = load("(ruleset s\n (rule r (+ ?a 0) => ?a)\n", &n);
  cr_assert_str_eq(s, "t.rw:1:1: error: unbalanced parentheses: '(' is never closed\n"
                      "  (ruleset s\n"
                      "  ^\n");
  tl_free(s);
  s = load("(ruleset s (rule r ?a => ?a)))", &n);
  cr_assert_str_eq(s, "t.rw:1:30: error: unbalanced parentheses: unexpected ')'\n"
                      "  (ruleset s (rule r ?a => ?a)))\n"
                      "                               ^\n");
  tl_free(s);
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
  tl_free(s);
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
    tl_free(s);
  }
}

/* ---- fusion and in-place declarations ------------------------------------ */

static int op_of(const char *name) {
  for (int i = 0; i < M.lang.nops; i++)
    if (!strcmp(M.lang.op_names[i], name)) return i;
  cr_assert_fail("no op %s", name);
  return -1;
}

Test(egraph_rules, fuse_inplace_opclass_parse) {
  eg_rules *r = eg_rules_new(&M.lang, M.conds);
  const char *t = "(ruleset fusion\n"
                  "  (opclass arith + - * /)\n"
                  "  (opclass trig sin cos)\n"
                  "  (opclass all-math arith trig ln sqrt)\n"
                  "  (fuse a-into-a arith :into all-math :if (single-use))\n"
                  "  (fuse trig-any trig :into any :if (cheap) :if (max-ops 8))\n"
                  "  (fuse ln-out ln :into output)\n"
                  "  (rule z (+ ?a 0) => ?a))\n"
                  "(ruleset inplace\n"
                  "  (inplace add-ip (+ ?a ?b) :destroys ?a ?b)\n"
                  "  (inplace ln-ip (ln ?x) :destroys ?x)\n"
                  "  (inplace sin-rows (sin ?x) :destroys ?x :rowwise))\n";
  tl_diag d = {0};
  cr_assert_eq(eg_rules_load(r, "t.rw", t, strlen(t), &d), 0, "%s", tl_diag_text(&d));
  int plus = op_of("+"), ln = op_of("ln"), sin = op_of("sin");
  int nops = M.lang.nops;
  cr_assert_eq(r->nrules, 1, "fuse/inplace/opclass are not rewrite rules");
  cr_assert_eq(r->nclasses, 3);
  cr_assert(r->classes[2].ops[plus] && r->classes[2].ops[sin] && r->classes[2].ops[ln]);
  cr_assert_eq(r->nfuses, 3);
  cr_assert(r->fuses[0].producer[plus] && !r->fuses[0].producer[ln] && r->fuses[0].consumer[sin]);
  cr_assert(!r->fuses[0].consumer[nops], "`output` is only in any or by name");
  cr_assert_eq(r->fuses[0].nconds, 1);
  cr_assert_eq(r->fuses[0].conds[0].kind, EG_FUSE_SINGLE_USE);
  cr_assert(r->fuses[1].consumer[nops] && r->fuses[1].consumer[plus]);
  cr_assert_eq(r->fuses[1].nconds, 2);
  cr_assert_eq(r->fuses[1].conds[1].kind, EG_FUSE_MAX_OPS);
  cr_assert_eq(r->fuses[1].conds[1].arg, 8);
  cr_assert(r->fuses[2].consumer[nops] && !r->fuses[2].consumer[plus]);
  cr_assert_eq(r->ninplaces, 3);
  cr_assert_eq(r->inplaces[0].op, plus);
  cr_assert_eq(r->inplaces[0].destroys, 3u);
  cr_assert_eq(r->inplaces[1].destroys, 1u);
  cr_assert(!r->inplaces[1].rowwise);
  cr_assert(r->inplaces[2].rowwise && r->inplaces[2].destroys == 1u && r->inplaces[2].op == sin);
  cr_assert_eq(eg_rules_ruleset(r, "inplace"), 1);
  tl_diag_free(&d);
  eg_rules_free(r);
}

Test(egraph_rules, fuse_errors) {
  int n;
  char *s = load("(ruleset f\n  (fuse a frob :into any))\n", &n);
  cr_assert_eq(n, 1);
  cr_assert_str_eq(s, "t.rw:2:11: error: unknown op or opclass 'frob'\n"
                      "    (fuse a frob :into any))\n"
                      "            ^\n");
  tl_free(s);
  s = load("(ruleset f (fuse a + any))", &n);
  cr_assert_str_eq(s, "t.rw:1:22: error: expected ':into CONSUMER' after the producer\n"
                      "  (ruleset f (fuse a + any))\n"
                      "                       ^\n");
  tl_free(s);
  s = load("(ruleset f (fuse a + :into * :if (single-use 2)))", &n);
  cr_assert_str_eq(s, "t.rw:1:46: error: condition 'single-use' takes no arguments\n"
                      "  (ruleset f (fuse a + :into * :if (single-use 2)))\n"
                      "                                               ^\n");
  tl_free(s);
  s = load("(ruleset f (fuse a + :into * :if (max-ops x)))", &n);
  cr_assert_str_eq(s, "t.rw:1:43: error: condition 'max-ops' takes a positive integer\n"
                      "  (ruleset f (fuse a + :into * :if (max-ops x)))\n"
                      "                                            ^\n");
  tl_free(s);
  s = load("(ruleset f (fuse a + :into * :if (nonzero ?x)))", &n);
  cr_assert_str_eq(s, "t.rw:1:35: error: unknown fusion condition 'nonzero' (known: single-use, cheap, light, max-ops N)\n"
                      "  (ruleset f (fuse a + :into * :if (nonzero ?x)))\n"
                      "                                    ^\n");
  tl_free(s);
  s = load("(ruleset f (rule a (+ ?x 0) => ?x)\n (fuse a + :into *))", &n);
  cr_assert_str_eq(s, "t.rw:2:8: error: duplicate rule name 'a' (first defined at t.rw:1:12)\n"
                      "   (fuse a + :into *))\n"
                      "         ^\n");
  tl_free(s);
}

Test(egraph_rules, opclass_errors) {
  int n;
  char *s = load("(ruleset f\n  (opclass c + *)\n  (opclass c ln))", &n);
  cr_assert_str_eq(s, "t.rw:3:12: error: duplicate opclass 'c' (first defined at t.rw:2:3)\n"
                      "    (opclass c ln))\n"
                      "             ^\n");
  tl_free(s);
  s = load("(ruleset f (opclass sin +))", &n);
  cr_assert_str_eq(s, "t.rw:1:21: error: opclass name 'sin' is an op name, 'any' or 'output'\n"
                      "  (ruleset f (opclass sin +))\n"
                      "                      ^\n");
  tl_free(s);
  s = load("(ruleset f (opclass c + ?x))", &n);
  cr_assert_str_eq(s, "t.rw:1:25: error: expected an opclass member: an op, an opclass, 'any' or 'output'\n"
                      "  (ruleset f (opclass c + ?x))\n"
                      "                          ^\n");
  tl_free(s);
  s = load("(ruleset f (opclass c))", &n);
  cr_assert_str_eq(s, "t.rw:1:21: error: opclass 'c' has no members\n"
                      "  (ruleset f (opclass c))\n"
                      "                      ^\n");
  tl_free(s);
}

Test(egraph_rules, inplace_errors) {
  int n;
  char *s = load("(ruleset i\n  (inplace a (ln (+ ?x 1)) :destroys ?x))", &n);
  cr_assert_eq(n, 1);
  cr_assert_str_eq(s, "t.rw:2:14: error: an in-place pattern is one op over distinct ?vars, e.g. (exp ?x)\n"
                      "    (inplace a (ln (+ ?x 1)) :destroys ?x))\n"
                      "               ^\n");
  tl_free(s);
  s = load("(ruleset i (inplace a (+ ?x ?x) :destroys ?x))", &n);
  cr_assert(strstr(s, "t.rw:1:23: error: an in-place pattern is one op over distinct ?vars"), "%s", s);
  tl_free(s);
  s = load("(ruleset i (inplace a (+ ?x ?y) :destroys ?z))", &n);
  cr_assert_str_eq(s, "t.rw:1:43: error: '?z' is not an operand of the pattern\n"
                      "  (ruleset i (inplace a (+ ?x ?y) :destroys ?z))\n"
                      "                                            ^\n");
  tl_free(s);
  s = load("(ruleset i (inplace a (+ ?x ?y) :destroys))", &n);
  cr_assert_str_eq(s, "t.rw:1:42: error: expected an operand ?var after ':destroys'\n"
                      "  (ruleset i (inplace a (+ ?x ?y) :destroys))\n"
                      "                                           ^\n");
  tl_free(s);
  s = load("(ruleset i (inplace a (+ ?x ?y) :destroys :rowwise))", &n);
  cr_assert(strstr(s, "t.rw:1:43: error: expected an operand ?var after ':destroys'"), "%s", s);
  tl_free(s);
  s = load("(ruleset i (inplace a (+ ?x ?y) :destroys ?x :rowwise ?y))", &n);
  cr_assert_str_eq(s, "t.rw:1:55: error: expected ')' after ':rowwise'\n"
                      "  (ruleset i (inplace a (+ ?x ?y) :destroys ?x :rowwise ?y))\n"
                      "                                                        ^\n");
  cr_assert_eq(n, 1);
  tl_free(s);
  s = load("(ruleset i (inplace a (+ ?x ?y) :if (nonzero ?x)))", &n);
  cr_assert_str_eq(s, "t.rw:1:33: error: expected ':destroys ?VAR...' after the pattern\n"
                      "  (ruleset i (inplace a (+ ?x ?y) :if (nonzero ?x)))\n"
                      "                                  ^\n");
  tl_free(s);
  s = load("(ruleset i (inplace a (frob ?x) :destroys ?x))", &n);
  cr_assert(strstr(s, "t.rw:1:24: error: unknown op 'frob'"), "%s", s);
  tl_free(s);
  s = load("(ruleset i (nonsense a))", &n);
  cr_assert(strstr(s, "t.rw:1:12: error: expected '(rule NAME LHS => RHS ...)', '(fuse ...)', "
                      "'(inplace ...)', '(control ...)' or '(opclass ...)'"), "%s", s);
  tl_free(s);
}

Test(egraph_rules, decl_errors_report_all_and_keep_nothing) {
  int n;
  char *s = load("(ruleset f\n"
                 "  (opclass c + *)\n"
                 "  (fuse a c :into nope)\n"
                 "  (fuse b c :into c :if (cheap 1))\n"
                 "  (inplace p (+ ?x ?y) :destroys ?q)\n"
                 "  (fuse ok c :into c))\n", &n);
  cr_assert_eq(n, 3, "%s", s);
  cr_assert(strstr(s, "t.rw:3:19: error: unknown op or opclass 'nope'"), "%s", s);
  cr_assert(strstr(s, "t.rw:4:32: error: condition 'cheap' takes no arguments"), "%s", s);
  cr_assert(strstr(s, "t.rw:5:34: error: '?q' is not an operand of the pattern"), "%s", s);
  tl_free(s);
  const char *bad[] = {"(ruleset f (fuse))", "(ruleset f (fuse a))", "(ruleset f (fuse a + :into))",
                       "(ruleset f (fuse a (+) :into *))", "(ruleset f (fuse a + :into * :if))",
                       "(ruleset f (fuse a + :into * :if ()))", "(ruleset f (fuse a + :into * :if (max-ops)))",
                       "(ruleset f (fuse a + :into * :if (max-ops 0)))", "(ruleset f (fuse a + :into * :if (max-ops 1 2)))",
                       "(ruleset f (fuse a + :into * junk))", "(ruleset f (opclass))", "(ruleset f (opclass (c) +))",
                       "(ruleset f (opclass c (+)))", "(ruleset f (inplace))", "(ruleset f (inplace a))",
                       "(ruleset f (inplace a ?x :destroys ?x))", "(ruleset f (inplace a (+ ?x 1) :destroys ?x))",
                       "(ruleset f (inplace a (+ ?x ?y) :destroys ?x 1))", "(ruleset f (inplace a (+ ?x ?y) ?x))",
                       "(ruleset f (fuse ?a + :into *))", "(ruleset f (fuse a + :into * :if (single-use (x))))"};
  for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
    char *e = load(bad[i], &n);
    cr_assert_gt(n, 0, "accepted: %s", bad[i]);
    tl_free(e);
  }
}

/* A pattern 5000 deep is refused at the level past the limit, with a
 * file:line:col message, not read by 5000 nested calls (a stack overflow
 * in the sanitizer build); its quoted line is a window around the column. */
Test(egraph_rules, deep_patterns_are_refused) {
  size_t depth = 5000, len = 40 + 9 * depth;
  char *text = tl_xmalloc(len), *p = text;
  p += sprintf(p, "(ruleset s\n (rule r ");
  for (size_t i = 0; i < depth; i++) p += sprintf(p, "(ln ");
  p += sprintf(p, "?a");
  for (size_t i = 0; i < depth; i++) *p++ = ')';
  sprintf(p, " => ?a))");
  int n;
  char *s = load(text, &n);
  cr_expect_eq(n, 1, "%.300s", s);
  /* " (rule r " is 9 columns; the 1001st '(' is at 10 + 4 * 1000 */
  cr_expect(strncmp(s, "t.rw:2:4010: error: pattern nested more than 1000 deep\n", 55) == 0, "%.300s", s);
  cr_expect_lt(strlen(s), 400, "%zu bytes of diagnostics", strlen(s));
  tl_free(s);
  /* 1000 deep is fine */
  p = text + sprintf(text, "(ruleset s\n (rule r ");
  for (size_t i = 0; i < 1000; i++) p += sprintf(p, "(ln ");
  p += sprintf(p, "?a");
  for (size_t i = 0; i < 1000; i++) *p++ = ')';
  sprintf(p, " => ?a))");
  s = load(text, &n);
  cr_expect_eq(n, 0, "%.300s", s);
  tl_free(s);
  tl_free(text);
}

/* A condition reads its arguments as it declares them: an operand's class
 * where it takes a variable (an atom there was passed as EG_NONE, and the
 * condition read the e-class data of id EG_NONE: a crash in opt). */
Test(egraph_rules, condition_argument_kinds) {
  int n;
  char *s = load("(ruleset s (rule r (+ ?a 0) => ?a :if (nonzero 1?a)))", &n);
  cr_assert_str_eq(s, "t.rw:1:48: error: condition 'nonzero' takes a ?variable of the pattern "
                      "as argument 1, not '1?a'\n"
                      "  (ruleset s (rule r (+ ?a 0) => ?a :if (nonzero 1?a)))\n"
                      "                                                 ^\n");
  tl_free(s);
  s = load("(ruleset s (rule r (+ ?a ?b) => ?a :if (const-or-distinct-var ?a x)))", &n);
  cr_expect(strstr(s, "t.rw:1:66: error: condition 'const-or-distinct-var' takes a ?variable "
                      "of the pattern as argument 2, not 'x'"), "%s", s);
  tl_free(s);
}
