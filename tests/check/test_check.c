/* test_check.c - check-rules: the shipped rules pass (up to the known
 * counter-examples of known.txt), every deliberately unsound rule is caught,
 * the sound control passes, and "improves accuracy" is honoured. */
#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>

#include "check/check.h"
#include "util/alloc.h"
#include "ir/ir.h"

static char *slurp(const char *path) {
  FILE *f = fopen(path, "rb");
  cr_assert(f, "cannot open %s", path);
  fseek(f, 0, SEEK_END);
  long n = ftell(f);
  fseek(f, 0, SEEK_SET);
  char *s = tl_xcalloc(1, (size_t)n + 1);
  cr_assert(fread(s, 1, (size_t)n, f) == (size_t)n);
  fclose(f);
  return s;
}

static bool failed(const tl_check_result *r, const char *name) {
  for (int i = 0; i < r->nfailed; i++)
    if (!strcmp(r->failed[i], name)) return true;
  return false;
}

static int check_file(const char *rel, const char *const *known, int nknown, tl_check_result *res) {
  char path[1024];
  snprintf(path, sizeof path, "%s/%s", TL_SOURCE_DIR, rel);
  char *text = slurp(path);
  tl_check_opts o = {.seed = 1, .trials = 200, .known = known, .nknown = nknown, .out = stdout};
  int rc = tl_check_rules_text(path, text, &o, res);
  tl_free(text);
  return rc;
}

Test(check, shipped_rules) {
  char *k = slurp(TL_SOURCE_DIR "/tests/check/known.txt");
  const char *known[256];
  int nknown = 0;
  for (char *line = strtok(k, "\n"); line && nknown < 256; line = strtok(NULL, "\n"))
    if (line[0] && line[0] != '#') known[nknown++] = line;
  const char *files[] = {"rules/algebraic.rw", "rules/stability.rw", "rules/accuracy.rw"};
  for (int i = 0; i < 3; i++) {
    tl_check_result res;
    int rc = check_file(files[i], known, nknown, &res);
    cr_expect_eq(rc, 0, "%s: %d rules with an unknown counter-example", files[i], res.ncex);
    cr_expect_gt(res.nrules, 20);
    cr_expect_eq(res.nuntested, 0, "%s: %d rules never tested", files[i], res.nuntested);
    tl_check_result_free(&res);
  }
  tl_free(k);
}

Test(check, unsound_rules_caught) {
  tl_check_result res;
  int rc = check_file("tests/check/unsound.rw", NULL, 0, &res);
  const char *bad[] = {"log-product-unguarded", "div-self-unguarded", "sqrt-square-to-x",
                       "add-mul-zero-shape", "exp-log-unguarded", "sub-swap", "floordiv-overflow",
                       "cast-lossy", "abs-drop", "sum-neg-wrong"};
  for (size_t i = 0; i < sizeof bad / sizeof *bad; i++)
    cr_expect(failed(&res, bad[i]), "unsound rule %s was not caught", bad[i]);
  cr_expect(!failed(&res, "div-two-control"), "the sound control was reported");
  cr_expect_eq(rc, (int)(sizeof bad / sizeof *bad));
  tl_check_result_free(&res);
}

Test(check, improves_accuracy) {
  tl_check_result res;
  check_file("tests/check/accuracy.rw", NULL, 0, &res);
  cr_expect(!failed(&res, "logaddexp-declared"));
  cr_expect(failed(&res, "logaddexp-undeclared"));
  tl_check_result_free(&res);
}

Test(check, shipped_fusion_and_inplace_rules) {
  tl_check_result res;
  cr_expect_eq(check_file("rules/inplace.rw", NULL, 0, &res), 0);
  tl_check_result_free(&res);
  /* the op table's in-place claims: one per elementwise op, two by rows */
  tl_check_opts o = {.seed = 1, .trials = 100, .out = stderr};
  cr_expect_eq(tl_check_op_table(&o, &res), 0);
  int claims = 0;
  for (int op = 0; op < TL_OP_COUNT; op++) claims += tl_ops[op].inplace != 0;
  cr_expect_eq(res.nrules, claims, "every in-place claim of the op table is checked");
  cr_expect_gt(res.nrules, 30);
  cr_expect_eq(res.nuntested, 0, "%d in-place claims never applied", res.nuntested);
  tl_check_result_free(&res);
  /* fuse declarations are skipped, not counted as checked */
  cr_expect_eq(check_file("rules/fusion.rw", NULL, 0, &res), 0);
  cr_expect_eq(res.nrules, 0);
  tl_check_result_free(&res);
}

Test(check, unsound_inplace_caught) {
  tl_check_result res;
  int rc = check_file("tests/check/inplace.rw", NULL, 0, &res);
  cr_expect(failed(&res, "transpose-ip"));
  cr_expect(failed(&res, "sum-ip"));
  cr_expect(failed(&res, "softmax-ip"));
  cr_expect(!failed(&res, "exp-control"));
  cr_expect(!failed(&res, "add-control"));
  cr_expect(failed(&res, "transpose-rows"));
  cr_expect(!failed(&res, "softmax-rows"), "a softmax row reads only its own row");
  cr_expect(!failed(&res, "log_softmax-rows"));
  cr_expect_eq(rc, 4);
  cr_expect_eq(res.nrules, 8);
  cr_expect_eq(res.nuntested, 0);
  tl_check_result_free(&res);
}

Test(check, malformed_is_an_error) {
  tl_check_result res;
  tl_check_opts o = {.seed = 1, .trials = 10, .out = NULL};
  cr_expect_eq(tl_check_rules_text("bad.rw", "(ruleset x (rule r (add ?x) => ", &o, &res), -1);
  cr_expect_eq(tl_check_rules_text("bad.rw", "(ruleset x (rule r (frob ?x) => ?x))", &o, &res), -1);
  cr_expect_eq(tl_check_rules_text("bad.rw", "(ruleset x (fuse f exp :into frob))", &o, &res), -1);
  cr_expect_eq(tl_check_rules_text("bad.rw", "(ruleset x (inplace i (exp (log ?x)) :destroys ?x))", &o, &res), -1);
}

Test(check, deterministic) {
  tl_check_result a, b;
  check_file("tests/check/unsound.rw", NULL, 0, &a);
  check_file("tests/check/unsound.rw", NULL, 0, &b);
  cr_expect_eq(a.nfailed, b.nfailed);
  tl_check_result_free(&a);
  tl_check_result_free(&b);
}

/* Derivative rules: the shipped ones agree with finite differences and
 * PyTorch's conventions, every one of them tested; five wrong ones (wrong
 * sign, missing chain factor, missing broadcast of a reduction's
 * cotangent, wrong axis, wrong subgradient convention) are caught and the
 * control is not. */
Test(check, shipped_derivative_rules) {
  tl_check_result res;
  cr_expect_eq(check_file("rules/grad.rw", NULL, 0, &res), 0, "%d derivative rules with a counter-example", res.ncex);
  cr_expect_gt(res.nrules, 60);
  cr_expect_eq(res.nuntested, 0, "%d derivative rules never tested", res.nuntested);
  tl_check_result_free(&res);
}

Test(check, wrong_derivative_rules_caught) {
  tl_check_result res;
  int rc = check_file("tests/check/grad_wrong.rw", NULL, 0, &res);
  const char *bad[] = {"sin-wrong-sign", "exp-no-chain", "sum-no-unreduce", "softmax-wrong-axis",
                       "maximum-tie-to-x"};
  for (size_t i = 0; i < sizeof bad / sizeof *bad; i++)
    cr_expect(failed(&res, bad[i]), "wrong derivative rule %s was not caught", bad[i]);
  cr_expect(!failed(&res, "tanh-control"), "the right control was reported");
  cr_expect_eq(rc, 5);
  cr_expect_eq(res.nrules, 6);
  tl_check_result_free(&res);
}
