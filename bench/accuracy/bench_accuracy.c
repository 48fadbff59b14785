/* bench_accuracy.c - accuracy benchmark: for each rule of
 * rules/stability.rw, the naive form (the rule's left side) and the form
 * tl_opt rewrites it to, evaluated by the reference interpreter on a sweep
 * of inputs (the range where the naive form fails, and a normal range), the
 * error measured against a 256-bit MPFR reference computed from the very
 * same (dtype-rounded) input values. Prints a markdown table: rule, dtype,
 * input range, max relative error before and after, and whether after
 * meets the target (<= 1e-6 f32, <= 1e-14 f64). The relative error's
 * denominator is floored at the dtype's smallest normal (results that
 * underflow are judged in absolute terms there).
 *
 *   bench-accuracy            2000 points per range
 *   bench-accuracy --smoke    50 points (a test)
 * Exit status 0 always in full mode (a table to read); --smoke exits 1 when
 * a case is not rewritten, its rewritten form misses the target against
 * the MPFR reference, or is non-finite where the reference is finite. */
#include <float.h>
#include <math.h>
#include <mpfr.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "interp/interp.h"
#include "ir/tg.h"
#include "opt/opt.h"
#include "util/util.h"

#define PREC 256

typedef enum {
  R_LOG_SOFTMAX, R_SOFTMAX, R_LSE_ROWS, R_LSE_ALL, R_LOG1P, R_LOG1M, R_EXPM1, R_SOFTPLUS,
  R_SOFTPLUS_NEG, R_LOG1MEXP, R_LOG_SIGMOID, R_NEG_SOFTPLUS, R_SIGMOID, R_SIGMOID_NEG, R_EXP,
  R_TANH, R_ERFC, R_ERFC_NEG, R_LOGADDEXP, R_XLOGY, R_X, R_Y_SIGMOID
} ref_kind;

/* How a sweep value t becomes the inputs: elementwise x = t; x = -|t|
 * (computed in the graph, for the nonpos guards); rows of 3; y = t - 1. */
typedef enum { G_X, G_NEGABS, G_ROW_SPREAD, G_ROW_NEAR, G_ROW_TIE, G_XY_LAE, G_XY_SAME } gen_kind;

typedef struct {
  const char *rule, *dtype, *expr;
  gen_kind gen;
  ref_kind ref;
  bool logsp;     /* t = sign * 10^u, u in [lo, hi]; else t in [lo, hi] */
  double sign, lo, hi;
  const char *range; /* as printed */
} bcase;

#define LS_SOFTMAX "(log (softmax x :axis 1))"
#define SMDEF "(div (exp x) (sum (exp x) :axis -1 :keepdims true))"
#define TANHDEF "(div (sub (exp x) (exp (neg x))) (add (exp x) (exp (neg x))))"

static const bcase cases[] = {
  {"log-softmax", "f32", LS_SOFTMAX, G_ROW_SPREAD, R_LOG_SOFTMAX, false, 1, 50, 100, "rows (t, t-1, -t), t in [50, 100]"},
  {"log-softmax", "f64", LS_SOFTMAX, G_ROW_SPREAD, R_LOG_SOFTMAX, false, 1, 400, 1000, "rows (t, t-1, -t), t in [400, 1000]"},
  {"log-softmax", "f64", LS_SOFTMAX, G_ROW_SPREAD, R_LOG_SOFTMAX, false, 1, -5, 5, "rows (t, t-1, -t), t in [-5, 5]"},
  {"log-softmax-last", "f64", "(log (softmax x))", G_ROW_SPREAD, R_LOG_SOFTMAX, false, 1, 400, 1000, "rows (t, t-1, -t), t in [400, 1000]"},
  {"exp-log-softmax", "f64", "(exp (log_softmax x :axis 1))", G_ROW_SPREAD, R_SOFTMAX, false, 1, 1, 300, "rows (t, t-1, -t), t in [1, 300]"},
  {"softmax-def-last", "f32", SMDEF, G_ROW_NEAR, R_SOFTMAX, false, 1, 89, 200, "rows (t, t-1, t-2), t in [89, 200]"},
  {"softmax-def-last", "f64", SMDEF, G_ROW_NEAR, R_SOFTMAX, false, 1, 710, 1000, "rows (t, t-1, t-2), t in [710, 1000]"},
  {"softmax-def-1", "f64", "(div (exp x) (sum (exp x) :axis 1 :keepdims true))", G_ROW_NEAR, R_SOFTMAX, false, 1, 710, 1000, "rows (t, t-1, t-2), t in [710, 1000]"},
  {"log-sum-exp", "f32", "(log (sum (exp x) :axis 1))", G_ROW_NEAR, R_LSE_ROWS, false, 1, 89, 200, "rows (t, t-1, t-2), t in [89, 200]"},
  {"log-sum-exp", "f64", "(log (sum (exp x) :axis 1))", G_ROW_NEAR, R_LSE_ROWS, false, 1, 710, 1000, "rows (t, t-1, t-2), t in [710, 1000]"},
  {"log-sum-exp-all", "f64", "(log (sum (exp x)))", G_ROW_NEAR, R_LSE_ALL, false, 1, 710, 1000, "row (t, t-1, t-2), t in [710, 1000]"},
  {"x-minus-lse-last", "f32", "(sub x (logsumexp x :axis -1 :keepdims true))", G_ROW_TIE, R_LOG_SOFTMAX, true, 1, 5, 7, "rows (t, t, t-2), t in [1e5, 1e7]"},
  {"x-minus-lse-last", "f64", "(sub x (logsumexp x :axis -1 :keepdims true))", G_ROW_TIE, R_LOG_SOFTMAX, true, 1, 13, 15, "rows (t, t, t-2), t in [1e13, 1e15]"},
  {"x-minus-lse-1", "f64", "(sub x (logsumexp x :axis 1 :keepdims true))", G_ROW_TIE, R_LOG_SOFTMAX, true, 1, 13, 15, "rows (t, t, t-2), t in [1e13, 1e15]"},
  {"log1p", "f32", "(log (add 1 x))", G_X, R_LOG1P, true, 1, -30, -4, "x in [1e-30, 1e-4]"},
  {"log1p", "f64", "(log (add 1 x))", G_X, R_LOG1P, true, 1, -300, -8, "x in [1e-300, 1e-8]"},
  {"log1p", "f64", "(log (add 1 x))", G_X, R_LOG1P, false, 1, 0.1, 100, "x in [0.1, 100]"},
  {"log1p-r", "f64", "(log (add x 1))", G_X, R_LOG1P, true, -1, -300, -8, "x in [-1e-8, -1e-300]"},
  {"log1m", "f32", "(log (sub 1 x))", G_X, R_LOG1M, true, 1, -30, -4, "x in [1e-30, 1e-4]"},
  {"log1m", "f64", "(log (sub 1 x))", G_X, R_LOG1M, true, 1, -300, -8, "x in [1e-300, 1e-8]"},
  {"expm1", "f32", "(sub (exp x) 1)", G_X, R_EXPM1, true, 1, -30, -4, "x in [1e-30, 1e-4]"},
  {"expm1", "f64", "(sub (exp x) 1)", G_X, R_EXPM1, true, -1, -300, -8, "x in [-1e-8, -1e-300]"},
  {"expm1", "f64", "(sub (exp x) 1)", G_X, R_EXPM1, false, 1, -5, 5, "x in [-5, 5]"},
  {"softplus", "f32", "(log (add 1 (exp x)))", G_X, R_SOFTPLUS, false, 1, 89, 1000, "x in [89, 1000]"},
  {"softplus", "f32", "(log (add 1 (exp x)))", G_X, R_SOFTPLUS, false, 1, -80, -17, "x in [-80, -17]"},
  {"softplus", "f64", "(log (add 1 (exp x)))", G_X, R_SOFTPLUS, false, 1, 710, 1e4, "x in [710, 1e4]"},
  {"softplus", "f64", "(log (add 1 (exp x)))", G_X, R_SOFTPLUS, false, 1, -700, -37, "x in [-700, -37]"},
  {"softplus", "f64", "(log (add 1 (exp x)))", G_X, R_SOFTPLUS, false, 1, -5, 5, "x in [-5, 5]"},
  {"softplus-r", "f64", "(log (add (exp x) 1))", G_X, R_SOFTPLUS, false, 1, 710, 1e4, "x in [710, 1e4]"},
  {"log1p-exp", "f64", "(log1p (exp x))", G_X, R_SOFTPLUS, false, 1, 710, 1e4, "x in [710, 1e4]"},
  {"softplus-minus-x", "f32", "(sub (softplus x) x)", G_X, R_SOFTPLUS_NEG, false, 1, 10, 80, "x in [10, 80]"},
  {"softplus-minus-x", "f64", "(sub (softplus x) x)", G_X, R_SOFTPLUS_NEG, false, 1, 20, 700, "x in [20, 700]"},
  {"log1mexp", "f32", "(log1p (neg (exp x)))", G_NEGABS, R_LOG1MEXP, true, 1, -30, -4, "x = -|z|, z in [1e-30, 1e-4]"},
  {"log1mexp", "f64", "(log1p (neg (exp x)))", G_NEGABS, R_LOG1MEXP, true, 1, -300, -8, "x = -|z|, z in [1e-300, 1e-8]"},
  {"log-neg-expm1", "f32", "(log (neg (expm1 x)))", G_NEGABS, R_LOG1MEXP, false, 1, 17, 80, "x = -|z|, z in [17, 80]"},
  {"log-neg-expm1", "f64", "(log (neg (expm1 x)))", G_NEGABS, R_LOG1MEXP, false, 1, 37, 700, "x = -|z|, z in [37, 700]"},
  {"log-1m-exp", "f32", "(log (sub 1 (exp x)))", G_NEGABS, R_LOG1MEXP, false, 1, 17, 80, "x = -|z|, z in [17, 80]"},
  {"log-1m-exp", "f64", "(log (sub 1 (exp x)))", G_NEGABS, R_LOG1MEXP, false, 1, 37, 700, "x = -|z|, z in [37, 700]"},
  {"log-1m-exp", "f64", "(log (sub 1 (exp x)))", G_NEGABS, R_LOG1MEXP, true, 1, -300, -8, "x = -|z|, z in [1e-300, 1e-8]"},
  {"log-sigmoid", "f32", "(log (sigmoid x))", G_X, R_LOG_SIGMOID, false, 1, -1000, -104, "x in [-1000, -104]"},
  {"log-sigmoid", "f64", "(log (sigmoid x))", G_X, R_LOG_SIGMOID, false, 1, -1e4, -746, "x in [-1e4, -746]"},
  {"log-sigmoid", "f64", "(log (sigmoid x))", G_X, R_LOG_SIGMOID, false, 1, 37, 700, "x in [37, 700]"},
  {"log-1m-sigmoid", "f32", "(log (sub 1 (sigmoid x)))", G_X, R_NEG_SOFTPLUS, false, 1, 17, 1000, "x in [17, 1000]"},
  {"log-1m-sigmoid", "f64", "(log (sub 1 (sigmoid x)))", G_X, R_NEG_SOFTPLUS, false, 1, 37, 1e4, "x in [37, 1e4]"},
  {"one-minus-sigmoid", "f32", "(sub 1 (sigmoid x))", G_X, R_SIGMOID_NEG, false, 1, 17, 80, "x in [17, 80]"},
  {"one-minus-sigmoid", "f64", "(sub 1 (sigmoid x))", G_X, R_SIGMOID_NEG, false, 1, 37, 700, "x in [37, 700]"},
  {"sigmoid-exp-ratio", "f32", "(div (exp x) (add 1 (exp x)))", G_X, R_SIGMOID, false, 1, 89, 1000, "x in [89, 1000]"},
  {"sigmoid-exp-ratio", "f64", "(div (exp x) (add 1 (exp x)))", G_X, R_SIGMOID, false, 1, 710, 1e4, "x in [710, 1e4]"},
  {"sigmoid-exp-ratio-r", "f64", "(div (exp x) (add (exp x) 1))", G_X, R_SIGMOID, false, 1, 710, 1e4, "x in [710, 1e4]"},
  {"sigmoid-recip", "f32", "(div 1 (add 1 (exp x)))", G_X, R_SIGMOID_NEG, false, 1, 89, 103, "x in [89, 103]"},
  {"sigmoid-recip", "f64", "(div 1 (add 1 (exp x)))", G_X, R_SIGMOID_NEG, false, 1, 710, 744, "x in [710, 744]"},
  {"sigmoid-recip-r", "f64", "(reciprocal (add 1 (exp x)))", G_X, R_SIGMOID_NEG, false, 1, 710, 744, "x in [710, 744]"},
  {"sigmoid-def", "f64", "(div 1 (add 1 (exp (neg x))))", G_X, R_SIGMOID, false, 1, -744, -710, "x in [-744, -710]"},
  {"sigmoid-odds", "f32", "(div (sigmoid x) (sub 1 (sigmoid x)))", G_X, R_EXP, false, 1, 17, 88, "x in [17, 88]"},
  {"sigmoid-odds", "f64", "(div (sigmoid x) (sub 1 (sigmoid x)))", G_X, R_EXP, false, 1, 37, 709, "x in [37, 709]"},
  {"tanh-def", "f32", TANHDEF, G_X, R_TANH, false, 1, 89, 1000, "x in [89, 1000]"},
  {"tanh-def", "f64", TANHDEF, G_X, R_TANH, false, 1, 710, 1e4, "x in [710, 1e4]"},
  {"tanh-def", "f64", TANHDEF, G_X, R_TANH, true, 1, -300, -8, "x in [1e-300, 1e-8]"},
  {"erfc", "f32", "(sub 1 (erf x))", G_X, R_ERFC, false, 1, 3, 9, "x in [3, 9]"},
  {"erfc", "f64", "(sub 1 (erf x))", G_X, R_ERFC, false, 1, 4, 26, "x in [4, 26]"},
  {"erfc-neg", "f64", "(add 1 (erf x))", G_X, R_ERFC_NEG, false, 1, -26, -4, "x in [-26, -4]"},
  {"erfc-neg-r", "f32", "(add (erf x) 1)", G_X, R_ERFC_NEG, false, 1, -9, -3, "x in [-9, -3]"},
  {"logaddexp", "f32", "(log (add (exp x) (exp y)))", G_XY_LAE, R_LOGADDEXP, false, 1, 89, 1000, "x in [89, 1000], y = x-1"},
  {"logaddexp", "f64", "(log (add (exp x) (exp y)))", G_XY_LAE, R_LOGADDEXP, false, 1, 710, 1e4, "x in [710, 1e4], y = x-1"},
  {"logaddexp", "f64", "(log (add (exp x) (exp y)))", G_XY_LAE, R_LOGADDEXP, false, 1, -1e4, -746, "x in [-1e4, -746], y = x-1"},
  {"xlogy", "f32", "(mul x (log y))", G_XY_SAME, R_XLOGY, false, 1, 0, 2, "x = y in [0, 2]"},
  {"xlogy", "f64", "(mul x (log y))", G_XY_SAME, R_XLOGY, false, 1, 0, 2, "x = y in [0, 2]"},
  /* the shapes of gradients (docs/grad.md); lse-grad's rows need a second
   * operand of another shape than these generators give: tests/stability has it */
  {"div-mul-cancel", "f32", "(mul y (div x y))", G_XY_SAME, R_X, false, 1, 0, 2, "x = y in [0, 2]"},
  {"div-mul-cancel", "f64", "(mul y (div x y))", G_XY_SAME, R_X, false, 1, 0, 2, "x = y in [0, 2]"},
  {"sigmoid-grad", "f32", "(mul (div y (add 1 (exp x))) (exp x))", G_XY_LAE, R_Y_SIGMOID, false, 1, 89, 1000, "x in [89, 1000], y = x-1"},
  {"sigmoid-grad", "f64", "(mul (div y (add 1 (exp x))) (exp x))", G_XY_LAE, R_Y_SIGMOID, false, 1, 710, 1e4, "x in [710, 1e4], y = x-1"},
};

/* The MPFR reference of output element `o` (row-wise ops: C = 3). */
static void reference(const bcase *c, const double *x, const double *y, int C, int o, mpfr_t r) {
  mpfr_t a, b, s, m;
  mpfr_inits2(PREC, a, b, s, m, (mpfr_ptr)0);
  switch (c->ref) {
  case R_LOG_SOFTMAX: case R_SOFTMAX: case R_LSE_ROWS: case R_LSE_ALL: {
    int row = c->ref == R_LSE_ROWS ? o : c->ref == R_LSE_ALL ? 0 : o / C; /* LSE_ALL: C = every element */
    const double *v = x + row * C;
    mpfr_set_zero(s, 1);
    for (int j = 0; j < C; j++) {
      mpfr_set_d(a, v[j], MPFR_RNDN);
      mpfr_exp(a, a, MPFR_RNDN);
      mpfr_add(s, s, a, MPFR_RNDN);
    }
    mpfr_log(s, s, MPFR_RNDN); /* lse */
    if (c->ref == R_LSE_ROWS || c->ref == R_LSE_ALL) { mpfr_set(r, s, MPFR_RNDN); break; }
    mpfr_set_d(a, x[o], MPFR_RNDN);
    mpfr_sub(r, a, s, MPFR_RNDN);
    if (c->ref == R_SOFTMAX) mpfr_exp(r, r, MPFR_RNDN);
    break;
  }
  default: {
    double v = c->gen == G_NEGABS ? -fabs(x[o]) : x[o];
    mpfr_set_d(a, v, MPFR_RNDN);
    mpfr_set_d(b, y[o], MPFR_RNDN);
    switch (c->ref) {
    case R_LOG1P: mpfr_log1p(r, a, MPFR_RNDN); break;
    case R_LOG1M: mpfr_neg(a, a, MPFR_RNDN); mpfr_log1p(r, a, MPFR_RNDN); break;
    case R_EXPM1: mpfr_expm1(r, a, MPFR_RNDN); break;
    case R_SOFTPLUS_NEG: case R_LOG_SIGMOID: mpfr_neg(a, a, MPFR_RNDN); /* fall through */
    case R_SOFTPLUS: case R_NEG_SOFTPLUS:
      mpfr_exp(r, a, MPFR_RNDN);
      mpfr_log1p(r, r, MPFR_RNDN);
      if (c->ref == R_LOG_SIGMOID || c->ref == R_NEG_SOFTPLUS) mpfr_neg(r, r, MPFR_RNDN);
      break;
    case R_LOG1MEXP: /* log(-expm1 x) near 0, log1p(-exp x) far out (1 - e^x rounds at 256 bits) */
      if (v > -0.693) { mpfr_expm1(r, a, MPFR_RNDN); mpfr_neg(r, r, MPFR_RNDN); mpfr_log(r, r, MPFR_RNDN); }
      else { mpfr_exp(r, a, MPFR_RNDN); mpfr_neg(r, r, MPFR_RNDN); mpfr_log1p(r, r, MPFR_RNDN); }
      break;
    case R_SIGMOID_NEG: mpfr_neg(a, a, MPFR_RNDN); /* fall through */
    case R_SIGMOID: case R_Y_SIGMOID:
      mpfr_neg(a, a, MPFR_RNDN);
      mpfr_exp(r, a, MPFR_RNDN);
      mpfr_add_ui(r, r, 1, MPFR_RNDN);
      mpfr_ui_div(r, 1, r, MPFR_RNDN);
      if (c->ref == R_Y_SIGMOID) mpfr_mul(r, r, b, MPFR_RNDN);
      break;
    case R_X: mpfr_set(r, a, MPFR_RNDN); break;
    case R_EXP: mpfr_exp(r, a, MPFR_RNDN); break;
    case R_TANH: mpfr_tanh(r, a, MPFR_RNDN); break;
    case R_ERFC_NEG: mpfr_neg(a, a, MPFR_RNDN); /* fall through */
    case R_ERFC: mpfr_erfc(r, a, MPFR_RNDN); break;
    case R_LOGADDEXP:
      mpfr_exp(a, a, MPFR_RNDN);
      mpfr_exp(b, b, MPFR_RNDN);
      mpfr_add(r, a, b, MPFR_RNDN);
      mpfr_log(r, r, MPFR_RNDN);
      break;
    case R_XLOGY:
      if (mpfr_zero_p(a)) mpfr_set_zero(r, 1);
      else { mpfr_log(r, b, MPFR_RNDN); mpfr_mul(r, r, a, MPFR_RNDN); }
      break;
    default: mpfr_set_nan(r); break;
    }
  }
  }
  mpfr_clears(a, b, s, m, (mpfr_ptr)0);
}

/* |got - ref| / max(|ref|, smallest normal); inf/NaN results are flagged. */
static double rel_err(double got, mpfr_t ref, bool f32, int *bad) {
  if (isnan(got)) { *bad |= 2; return INFINITY; }
  if (isinf(got)) {
    if (mpfr_inf_p(ref) && (got > 0) == (mpfr_sgn(ref) > 0)) return 0;
    *bad |= 1;
    return INFINITY;
  }
  mpfr_t d, den;
  mpfr_inits2(PREC, d, den, (mpfr_ptr)0);
  mpfr_sub_d(d, ref, got, MPFR_RNDN);
  mpfr_abs(d, d, MPFR_RNDN);
  mpfr_abs(den, ref, MPFR_RNDN);
  double fl = f32 ? FLT_MIN : DBL_MIN;
  if (mpfr_cmp_d(den, fl) < 0) mpfr_set_d(den, fl, MPFR_RNDN);
  mpfr_div(d, d, den, MPFR_RNDN);
  double e = mpfr_get_d(d, MPFR_RNDU);
  mpfr_clears(d, den, (mpfr_ptr)0);
  return e;
}

static tl_graph *parse(const char *src) {
  tl_diag d;
  tl_diag_init(&d, "bench.tg", src, strlen(src));
  tl_graph *g = tl_tg_parse(src, strlen(src), &d);
  if (!g) fprintf(stderr, "%s", tl_diag_text(&d));
  tl_diag_free(&d);
  return g;
}

static tl_tensor *run(const tl_graph *g, tl_tensor **ins) {
  char err[512];
  int64_t syms[4] = {-1, -1, -1, -1};
  tl_tensor *out[1] = {NULL};
  if (tl_bind_inputs(g, ins, syms, err, sizeof err) || tl_interp_run(g, ins, syms, out, err, sizeof err)) {
    fprintf(stderr, "bench-accuracy: %s\n", err);
    return NULL;
  }
  return out[0];
}

static void fmt_err(char *buf, size_t n, double e, int bad) {
  if (bad & 2) snprintf(buf, n, "nan");
  else if (bad & 1) snprintf(buf, n, "inf");
  else snprintf(buf, n, "%.2e", e);
}

int main(int argc, char **argv) {
  bool smoke = argc > 1 && strcmp(argv[1], "--smoke") == 0;
  int N = smoke ? 50 : 2000;
  tl_opt_params p = tl_opt_defaults();
  const char *paths[2] = {TL_SOURCE_ROOT "/rules/algebraic.rw", TL_SOURCE_ROOT "/rules/stability.rw"};
  p.rule_paths = paths;
  p.nrule_paths = 2;
  tl_error err = {0};
  tl_opt *o = tl_opt_new(&p, TL_EMSG(&err));
  if (!o) {
    fprintf(stderr, "bench-accuracy: %s\n", err.msg);
    return 1;
  }
  int failures = 0, missed = 0, kept = 0;
  printf("| rule | dtype | input range | max rel err.msg before | max rel err.msg after | after <= target | rewritten |\n");
  printf("|---|---|---|---|---|---|---|\n");
  for (size_t ci = 0; ci < sizeof cases / sizeof *cases; ci++) {
    const bcase *c = &cases[ci];
    bool f32 = strcmp(c->dtype, "f32") == 0, rows = c->gen >= G_ROW_SPREAD && c->gen <= G_ROW_TIE;
    bool has_y = c->gen == G_XY_LAE || c->gen == G_XY_SAME;
    int C = rows ? 3 : 1;
    char src[1024], in[256];
    if (c->gen == G_NEGABS)
      snprintf(in, sizeof in, "(in z %s [%d %d]) (let x (neg (abs z)))", c->dtype, N, C);
    else if (has_y)
      snprintf(in, sizeof in, "(in x %s [%d 1]) (in y %s [%d 1])", c->dtype, N, c->dtype, N);
    else
      snprintf(in, sizeof in, "(in x %s [%d %d])", c->dtype, N, C);
    snprintf(src, sizeof src, "(graph g %s (out r %s))", in, c->expr);
    tl_graph *g = parse(src);
    if (!g) return 1;
    tl_graph *best = tl_opt_graph(o, g, &err);
    if (!best) {
      fprintf(stderr, "bench-accuracy: %s: %s\n", c->rule, err.msg);
      return 1;
    }
    char *before_text = tl_tg_print(g), *after_text = tl_tg_print(best);
    bool rewritten = strcmp(before_text, after_text) != 0;
    tl_free(before_text);
    tl_free(after_text);
    int64_t dims[2] = {N, C};
    tl_tensor *ins[2] = {NULL, NULL};
    ins[0] = tl_tensor_new(f32 ? TL_F32 : TL_F64, 2, dims, TL_EMSG(&err));
    if (has_y) ins[1] = tl_tensor_new(f32 ? TL_F32 : TL_F64, 2, dims, TL_EMSG(&err));
    for (int i = 0; i < N; i++) {
      double u = N > 1 ? c->lo + (c->hi - c->lo) * i / (N - 1) : c->lo;
      double t = c->logsp ? c->sign * pow(10, u) : u;
      switch (c->gen) {
      case G_ROW_SPREAD: t = f32 ? (float)t : t; /* rows of exact dtype values */
        tl_tensor_set_f64(ins[0], 3 * i, t); tl_tensor_set_f64(ins[0], 3 * i + 1, t - 1);
        tl_tensor_set_f64(ins[0], 3 * i + 2, -t); break;
      case G_ROW_NEAR:
        tl_tensor_set_f64(ins[0], 3 * i, t); tl_tensor_set_f64(ins[0], 3 * i + 1, t - 1);
        tl_tensor_set_f64(ins[0], 3 * i + 2, t - 2); break;
      case G_ROW_TIE:
        tl_tensor_set_f64(ins[0], 3 * i, t); tl_tensor_set_f64(ins[0], 3 * i + 1, t);
        tl_tensor_set_f64(ins[0], 3 * i + 2, t - 2); break;
      case G_XY_LAE: tl_tensor_set_f64(ins[0], i, t); tl_tensor_set_f64(ins[1], i, t - 1); break;
      case G_XY_SAME: tl_tensor_set_f64(ins[0], i, t); tl_tensor_set_f64(ins[1], i, t); break;
      default: tl_tensor_set_f64(ins[0], i, t); break;
      }
    }
    /* the values the graphs see (rounded to the dtype) */
    int64_t nin = (int64_t)N * C;
    double *xv = tl_xmalloc((size_t)nin * sizeof *xv), *yv = tl_xcalloc((size_t)nin, sizeof *yv);
    for (int64_t i = 0; i < nin; i++) {
      xv[i] = tl_tensor_get_f64(ins[0], i);
      if (has_y) yv[i] = tl_tensor_get_f64(ins[1], i);
    }
    tl_tensor *naive = run(g, ins), *opt = run(best, ins);
    if (!naive || !opt) return 1;
    double eb = 0, ea = 0, worst_in = 0;
    int badb = 0, bada = 0;
    mpfr_t r;
    mpfr_init2(r, PREC);
    for (int64_t k = 0; k < opt->numel; k++) {
      reference(c, xv, yv, c->ref == R_LSE_ALL ? (int)nin : C, (int)k, r);
      double e1 = rel_err(tl_tensor_get_f64(naive, k), r, f32, &badb);
      int ba = 0;
      double e2 = rel_err(tl_tensor_get_f64(opt, k), r, f32, &ba);
      bada |= ba;
      if (e1 > eb) eb = e1;
      if (e2 > ea || (ba && !(bada & ~ba))) { ea = e2; worst_in = xv[rows ? k * (c->ref == R_LSE_ROWS ? 3 : 1) : k]; }
      if (ba && !mpfr_nan_p(r) && !mpfr_inf_p(r)) failures++;
    }
    mpfr_clear(r);
    double target = f32 ? 1e-6 : 1e-14;
    bool ok = !bada && ea <= target;
    if (!ok) missed++;
    if (!rewritten) kept++;
    char sb[32], sa[32];
    fmt_err(sb, sizeof sb, eb, badb);
    fmt_err(sa, sizeof sa, ea, bada);
    printf("| %s | %s | %s | %s | %s | %s | %s |\n", c->rule, c->dtype, c->range, sb, sa,
           ok ? "yes" : "**no**", rewritten ? "yes" : "**no**");
    if (!ok) fprintf(stderr, "  %s %s: worst input x = %.17g (rel err.msg %.3g)\n", c->rule, c->dtype, worst_in, ea);
    tl_tensor_free(naive);
    tl_tensor_free(opt);
    tl_tensor_free(ins[0]);
    tl_tensor_free(ins[1]);
    tl_free(xv);
    tl_free(yv);
    tl_graph_free(best);
    tl_graph_free(g);
  }
  tl_opt_free(o);
  fprintf(stderr, "%d case(s) miss the target; %d not rewritten; %d non-finite rewritten result(s)\n", missed,
          kept, failures);
  return smoke && (failures || missed || kept) ? 1 : 0;
}
