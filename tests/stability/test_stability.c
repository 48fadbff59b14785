/* test_stability.c - every rule of rules/stability.rw, one case (or more)
 * each: the naive graph (the rule's left side over concrete inputs) must be
 * rewritten to the fused form (checked on the optimised graph's text), and
 * on inputs where the naive graph overflows, underflows or cancels the
 * optimised graph must be finite and accurate against a long double closed
 * form (relative error <= 1e-6 for f32, <= 1e-13 for f64), while the naive
 * graph must indeed fail there (inf/NaN/0 or relative error > 1e-3), so the
 * test catches a rule that stopped firing or a fused kernel that lost its
 * accuracy.
 *
 * Guarded rules (log1mexp, log-neg-expm1, log-1m-exp need (nonpos ?x)): the
 * sign analysis cannot prove a plain input <= 0, so x is built as
 * (neg (abs z)), which it can (abs is nonneg, neg flips it) and which is
 * exact, so the reference sees the very x the graph computes.
 *
 * exp-log-softmax (exp (log_softmax x)) -> softmax is a simplification, not
 * a stability fix: its naive form is already accurate (log_softmax is
 * stable), so only "fires and is accurate" is asserted for it. */
#include <criterion/criterion.h>
#include <float.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "interp/interp.h"
#include "ir/tg.h"
#include "opt/opt.h"
#include "util/util.h"
#include "tests/common/tltest.h"

static tl_graph *parse(const char *src) { return tlt_parse(src, NULL); }

typedef enum {
  R_LOG_SOFTMAX, R_SOFTMAX, R_LSE_ROWS, R_LSE_ALL, R_LOG1P, R_LOG1M, R_EXPM1, R_SOFTPLUS,
  R_SOFTPLUS_NEG, R_LOG1MEXP_NEGABS, R_LOG_SIGMOID, R_NEG_SOFTPLUS, R_SIGMOID, R_SIGMOID_NEG,
  R_EXP, R_TANH, R_ERFC, R_ERFC_NEG, R_LOGADDEXP, R_XLOGY, R_X, R_Y_SIGMOID, R_SOFTMAX_ROWSUM_Y
} ref_kind;

#define MAXV 8
typedef struct {
  const char *rule;
  const char *dtype;
  int rows, cols;       /* x (and y) are [rows cols] */
  bool has_y;
  const char *lets;     /* extra (let ...) before the output, may be "" */
  const char *expr;     /* over x (and y) */
  const char *want;     /* must appear in the optimised graph's text */
  const char *absent;   /* must not appear (NULL: no check) */
  ref_kind ref;
  bool naive_ok;        /* the naive form is accurate too (see top) */
  bool cost_tie;        /* see x_minus_lse_picks_log_softmax below */
  double x[MAXV], y[MAXV];
} scase;

static long double softplusl(long double x) { return x > 0 ? x + log1pl(expl(-x)) : log1pl(expl(x)); }

static long double log1mexpl(long double x) {
  return x > -0.6931471805599453094L ? logl(-expm1l(x)) : log1pl(-expl(x));
}

static long double sigmoidl(long double x) {
  return x >= 0 ? 1 / (1 + expl(-x)) : expl(x) / (1 + expl(x));
}

/* The closed form of case c over its inputs: fills out, returns the count. */
static int reference(const scase *c, long double *out) {
  int R = c->rows, C = c->cols, n = R * C;
  const double *x = c->x, *y = c->y;
  switch (c->ref) {
  case R_LOG_SOFTMAX: case R_SOFTMAX: case R_LSE_ROWS:
    for (int r = 0; r < R; r++) {
      long double m = x[r * C];
      for (int j = 1; j < C; j++) m = fmaxl(m, x[r * C + j]);
      long double s = 0;
      for (int j = 0; j < C; j++) s += expl((long double)x[r * C + j] - m);
      long double lse = m + logl(s);
      if (c->ref == R_LSE_ROWS) { out[r] = lse; continue; }
      for (int j = 0; j < C; j++)
        out[r * C + j] = c->ref == R_LOG_SOFTMAX ? ((long double)x[r * C + j] - m) - logl(s)
                                                 : expl(((long double)x[r * C + j] - m) - logl(s));
    }
    return c->ref == R_LSE_ROWS ? R : n;
  case R_SOFTMAX_ROWSUM_Y: /* softmax(x)[r, j] * sum_j y[r, j] */
    for (int r = 0; r < R; r++) {
      long double m = x[r * C], s = 0, ys = 0;
      for (int j = 1; j < C; j++) m = fmaxl(m, x[r * C + j]);
      for (int j = 0; j < C; j++) s += expl((long double)x[r * C + j] - m), ys += y[r * C + j];
      for (int j = 0; j < C; j++) out[r * C + j] = expl((long double)x[r * C + j] - m) / s * ys;
    }
    return n;
  case R_LSE_ALL: {
    long double m = x[0], s = 0;
    for (int i = 1; i < n; i++) m = fmaxl(m, x[i]);
    for (int i = 0; i < n; i++) s += expl((long double)x[i] - m);
    out[0] = m + logl(s);
    return 1;
  }
  default: break;
  }
  for (int i = 0; i < n; i++) {
    long double v = x[i], w = y[i];
    switch (c->ref) {
    case R_LOG1P: out[i] = log1pl(v); break;
    case R_LOG1M: out[i] = log1pl(-v); break;
    case R_EXPM1: out[i] = expm1l(v); break;
    case R_SOFTPLUS: out[i] = softplusl(v); break;
    case R_SOFTPLUS_NEG: out[i] = softplusl(-v); break;
    case R_LOG1MEXP_NEGABS: out[i] = log1mexpl(-fabsl(v)); break;
    case R_LOG_SIGMOID: out[i] = -softplusl(-v); break;
    case R_NEG_SOFTPLUS: out[i] = -softplusl(v); break;
    case R_SIGMOID: out[i] = sigmoidl(v); break;
    case R_SIGMOID_NEG: out[i] = sigmoidl(-v); break;
    case R_EXP: out[i] = expl(v); break;
    case R_TANH: out[i] = tanhl(v); break;
    case R_ERFC: out[i] = erfcl(v); break;
    case R_ERFC_NEG: out[i] = erfcl(-v); break;
    case R_LOGADDEXP: {
      long double m = fmaxl(v, w);
      out[i] = m + log1pl(expl(-fabsl(v - w)));
      break;
    }
    case R_XLOGY: out[i] = v == 0 ? 0 : v * logl(w); break;
    case R_X: out[i] = v; break;
    case R_Y_SIGMOID: out[i] = w * sigmoidl(v); break;
    default: out[i] = NAN; break;
    }
  }
  return n;
}

/* Relative error of got against ref, the denominator floored at the
 * dtype's smallest normal (a reference that underflows in the dtype is met
 * by 0 or the nearest subnormal). inf/NaN give +inf. */
static double rel_err(double got, long double ref, bool f32) {
  if (isnan(got)) return INFINITY;
  if (isinf(got)) return isinf(ref) && (got > 0) == (ref > 0) ? 0 : INFINITY;
  long double floor_ = f32 ? FLT_MIN : DBL_MIN;
  return (double)(fabsl((long double)got - ref) / fmaxl(fabsl(ref), floor_));
}

static tl_opt *stability_rules(void) {
  tl_opt_params p = tl_opt_defaults();
  const char *paths[2] = {TL_SOURCE_DIR "/rules/algebraic.rw", TL_SOURCE_DIR "/rules/stability.rw"};
  p.rule_paths = paths;
  p.nrule_paths = 2;
  p.limits.seconds = 20;
  char err[4096];
  tl_opt *o = tl_opt_new(&p, err, sizeof err);
  cr_assert(o, "%s", err);
  return o;
}

/* Runs g on the case's inputs; returns the single output (caller frees). */
static tl_tensor *run(const tl_graph *g, const scase *c) {
  char err[512];
  tl_dtype dt = strcmp(c->dtype, "f32") == 0 ? TL_F32 : TL_F64;
  int64_t dims[2] = {c->rows, c->cols};
  tl_tensor *ins[2] = {NULL, NULL};
  for (int k = 0; k < (c->has_y ? 2 : 1); k++) {
    ins[k] = tl_tensor_new(dt, 2, dims, err, sizeof err);
    cr_assert(ins[k], "%s", err);
    for (int i = 0; i < c->rows * c->cols; i++) tl_tensor_set_f64(ins[k], i, k ? c->y[i] : c->x[i]);
  }
  int64_t syms[4] = {-1, -1, -1, -1};
  cr_assert_eq(tl_bind_inputs(g, ins, syms, err, sizeof err), 0, "%s", err);
  tl_tensor *out[1] = {NULL};
  cr_assert_eq(tl_interp_run(g, ins, syms, out, err, sizeof err), 0, "%s: %s", c->rule, err);
  tl_tensor_free(ins[0]);
  tl_tensor_free(ins[1]);
  return out[0];
}

#define LS ""
#define NEGABS "(let x (neg (abs z)))"

static const scase cases[] = {
  /* softmax family: rows [a, a-1, -a]: softmax underflows at -a (log -> -inf), exp overflows */
  {"log-softmax", "f32", 1, 3, false, LS, "(log (softmax x :axis 1))", "log_softmax", "(softmax", R_LOG_SOFTMAX, false, false, {100, 99, -100}, {0}},
  {"log-softmax", "f64", 2, 3, false, LS, "(log (softmax x :axis 1))", "log_softmax", "(softmax", R_LOG_SOFTMAX, false, false, {1000, 999, -1000, 1, 0, -800}, {0}},
  {"log-softmax-last", "f64", 1, 3, false, LS, "(log (softmax x))", "log_softmax", "(softmax", R_LOG_SOFTMAX, false, false, {1000, 999, -1000}, {0}},
  {"exp-log-softmax", "f64", 1, 3, false, LS, "(exp (log_softmax x :axis 1))", "softmax", "log_softmax", R_SOFTMAX, true, false, {1000, 999, -10}, {0}},
  {"softmax-def-last", "f32", 1, 3, false, LS, "(div (exp x) (sum (exp x) :axis -1 :keepdims true))", "softmax", "(div", R_SOFTMAX, false, false, {100, 99, -10}, {0}},
  {"softmax-def-last", "f64", 1, 3, false, LS, "(div (exp x) (sum (exp x) :axis -1 :keepdims true))", "softmax", "(div", R_SOFTMAX, false, false, {1000, 999, -10}, {0}},
  {"softmax-def-1", "f64", 1, 3, false, LS, "(div (exp x) (sum (exp x) :axis 1 :keepdims true))", "softmax", "(div", R_SOFTMAX, false, false, {1000, 999, -10}, {0}},
  {"log-sum-exp", "f32", 1, 3, false, LS, "(log (sum (exp x) :axis 1))", "logsumexp", "(exp", R_LSE_ROWS, false, false, {100, 99, 98}, {0}},
  {"log-sum-exp", "f64", 2, 3, false, LS, "(log (sum (exp x) :axis 1))", "logsumexp", "(exp", R_LSE_ROWS, false, false, {1000, 999, 998, -1000, -1001, -1002}, {0}},
  {"log-sum-exp-all", "f64", 1, 3, false, LS, "(log (sum (exp x)))", "logsumexp", "(exp", R_LSE_ALL, false, false, {1000, 999, 998}, {0}},
  /* x - logsumexp x: at x ~ 1e6 (f32) / 1e15 (f64) the lse rounds to the ulp of x and the difference cancels */
  {"x-minus-lse-last", "f32", 1, 3, false, LS, "(sub x (logsumexp x :axis -1 :keepdims true))", "log_softmax", "logsumexp", R_LOG_SOFTMAX, false, true, {1e6, 1e6, 999998}, {0}},
  {"x-minus-lse-last", "f64", 1, 3, false, LS, "(sub x (logsumexp x :axis -1 :keepdims true))", "log_softmax", "logsumexp", R_LOG_SOFTMAX, false, true, {1e15, 1e15, 1e15 - 2}, {0}},
  {"x-minus-lse-1", "f64", 1, 3, false, LS, "(sub x (logsumexp x :axis 1 :keepdims true))", "log_softmax", "logsumexp", R_LOG_SOFTMAX, false, true, {1e15, 1e15, 1e15 - 2}, {0}},
  /* log1p / expm1: 1 + x rounds to 1 */
  {"log1p", "f32", 1, 3, false, LS, "(log (add 1 x))", "log1p", NULL, R_LOG1P, false, false, {1e-10, -1e-12, 0.5}, {0}},
  {"log1p", "f64", 1, 3, false, LS, "(log (add 1 x))", "log1p", NULL, R_LOG1P, false, false, {1e-10, 1e-20, -1e-18}, {0}},
  {"log1p-r", "f64", 1, 2, false, LS, "(log (add x 1))", "log1p", NULL, R_LOG1P, false, false, {1e-20, 3e-17}, {0}},
  {"log1m", "f64", 1, 2, false, LS, "(log (sub 1 x))", "log1p", "(sub", R_LOG1M, false, false, {1e-20, 3e-17}, {0}},
  {"log1m", "f32", 1, 2, false, LS, "(log (sub 1 x))", "log1p", "(sub", R_LOG1M, false, false, {1e-10, 1e-9}, {0}},
  {"expm1", "f32", 1, 3, false, LS, "(sub (exp x) 1)", "expm1", "(sub", R_EXPM1, false, false, {1e-10, -1e-12, 1e-5}, {0}},
  {"expm1", "f64", 1, 3, false, LS, "(sub (exp x) 1)", "expm1", "(sub", R_EXPM1, false, false, {1e-10, 1e-20, -1e-18}, {0}},
  /* softplus: exp overflows (x = 100 / 800), or 1 + exp x rounds to 1 (x = -20 / -40) */
  {"softplus", "f32", 1, 3, false, LS, "(log (add 1 (exp x)))", "softplus", "(exp", R_SOFTPLUS, false, false, {100, -20, 0.5}, {0}},
  {"softplus", "f64", 1, 3, false, LS, "(log (add 1 (exp x)))", "softplus", "(exp", R_SOFTPLUS, false, false, {800, -40, 0.5}, {0}},
  {"softplus-r", "f64", 1, 2, false, LS, "(log (add (exp x) 1))", "softplus", "(exp", R_SOFTPLUS, false, false, {800, -40}, {0}},
  {"log1p-exp", "f32", 1, 2, false, LS, "(log1p (exp x))", "softplus", "(exp", R_SOFTPLUS, false, false, {100, -20}, {0}},
  {"log1p-exp", "f64", 1, 2, false, LS, "(log1p (exp x))", "softplus", "(exp", R_SOFTPLUS, false, false, {800, -40}, {0}},
  /* softplus(x) - x cancels for large x */
  {"softplus-minus-x", "f32", 1, 2, false, LS, "(sub (softplus x) x)", "softplus", "(sub", R_SOFTPLUS_NEG, false, false, {20, 30}, {0}},
  {"softplus-minus-x", "f64", 1, 2, false, LS, "(sub (softplus x) x)", "softplus", "(sub", R_SOFTPLUS_NEG, false, false, {40, 50}, {0}},
  /* log1mexp: x = -|z| (see top); exp x rounds to 1 near 0, 1 - exp x rounds to 1 far out */
  {"log1mexp", "f64", 1, 2, false, NEGABS, "(log1p (neg (exp x)))", "log1mexp", "(exp", R_LOG1MEXP_NEGABS, false, false, {1e-20, 2e-17}, {0}},
  {"log1mexp", "f32", 1, 2, false, NEGABS, "(log1p (neg (exp x)))", "log1mexp", "(exp", R_LOG1MEXP_NEGABS, false, false, {1e-10, 1e-9}, {0}},
  {"log-neg-expm1", "f64", 1, 2, false, NEGABS, "(log (neg (expm1 x)))", "log1mexp", "expm1", R_LOG1MEXP_NEGABS, false, false, {50, 40}, {0}},
  {"log-neg-expm1", "f32", 1, 2, false, NEGABS, "(log (neg (expm1 x)))", "log1mexp", "expm1", R_LOG1MEXP_NEGABS, false, false, {20, 30}, {0}},
  {"log-1m-exp", "f64", 1, 3, false, NEGABS, "(log (sub 1 (exp x)))", "log1mexp", "(exp", R_LOG1MEXP_NEGABS, false, false, {50, 1e-20, 0.1}, {0}},
  {"log-1m-exp", "f32", 1, 3, false, NEGABS, "(log (sub 1 (exp x)))", "log1mexp", "(exp", R_LOG1MEXP_NEGABS, false, false, {20, 1e-10, 0.1}, {0}},
  /* sigmoid */
  {"log-sigmoid", "f64", 1, 3, false, LS, "(log (sigmoid x))", "softplus", "(sigmoid", R_LOG_SIGMOID, false, false, {-800, 40, 0.5}, {0}},
  {"log-sigmoid", "f32", 1, 3, false, LS, "(log (sigmoid x))", "softplus", "(sigmoid", R_LOG_SIGMOID, false, false, {-120, 20, 0.5}, {0}},
  {"log-1m-sigmoid", "f64", 1, 2, false, LS, "(log (sub 1 (sigmoid x)))", "softplus", "(sigmoid", R_NEG_SOFTPLUS, false, false, {40, 800}, {0}},
  {"log-1m-sigmoid", "f32", 1, 2, false, LS, "(log (sub 1 (sigmoid x)))", "softplus", "(sigmoid", R_NEG_SOFTPLUS, false, false, {20, 100}, {0}},
  {"one-minus-sigmoid", "f64", 1, 2, false, LS, "(sub 1 (sigmoid x))", "sigmoid", "(sub", R_SIGMOID_NEG, false, false, {40, 100}, {0}},
  {"one-minus-sigmoid", "f32", 1, 2, false, LS, "(sub 1 (sigmoid x))", "sigmoid", "(sub", R_SIGMOID_NEG, false, false, {20, 50}, {0}},
  {"sigmoid-exp-ratio", "f32", 1, 3, false, LS, "(div (exp x) (add 1 (exp x)))", "sigmoid", "(exp", R_SIGMOID, false, false, {100, -20, 0.5}, {0}},
  {"sigmoid-exp-ratio", "f64", 1, 3, false, LS, "(div (exp x) (add 1 (exp x)))", "sigmoid", "(exp", R_SIGMOID, false, false, {800, -40, 0.5}, {0}},
  {"sigmoid-exp-ratio-r", "f64", 1, 2, false, LS, "(div (exp x) (add (exp x) 1))", "sigmoid", "(exp", R_SIGMOID, false, false, {800, 1}, {0}},
  /* 1/(1+exp x): exp overflows, the result (e^-x, subnormal) is lost */
  {"sigmoid-recip", "f32", 1, 2, false, LS, "(div 1 (add 1 (exp x)))", "sigmoid", "(exp", R_SIGMOID_NEG, false, false, {89, 1}, {0}},
  {"sigmoid-recip", "f64", 1, 2, false, LS, "(div 1 (add 1 (exp x)))", "sigmoid", "(exp", R_SIGMOID_NEG, false, false, {710, 1}, {0}},
  {"sigmoid-recip-r", "f64", 1, 2, false, LS, "(reciprocal (add 1 (exp x)))", "sigmoid", "(exp", R_SIGMOID_NEG, false, false, {710, 1}, {0}},
  {"sigmoid-def", "f64", 1, 2, false, LS, "(div 1 (add 1 (exp (neg x))))", "sigmoid", "(exp", R_SIGMOID, false, false, {-710, 1}, {0}},
  {"sigmoid-def", "f32", 1, 2, false, LS, "(div 1 (add 1 (exp (neg x))))", "sigmoid", "(exp", R_SIGMOID, false, false, {-89, 1}, {0}},
  /* sigmoid/(1-sigmoid): 1 - sigmoid is 0 */
  {"sigmoid-odds", "f64", 1, 2, false, LS, "(div (sigmoid x) (sub 1 (sigmoid x)))", "exp", "sigmoid", R_EXP, false, false, {40, 1}, {0}},
  {"sigmoid-odds", "f32", 1, 2, false, LS, "(div (sigmoid x) (sub 1 (sigmoid x)))", "exp", "sigmoid", R_EXP, false, false, {20, 1}, {0}},
  {"tanh-def", "f32", 1, 3, false, LS, "(div (sub (exp x) (exp (neg x))) (add (exp x) (exp (neg x))))", "tanh", "(exp", R_TANH, false, false, {100, -100, 0.5}, {0}},
  {"tanh-def", "f64", 1, 3, false, LS, "(div (sub (exp x) (exp (neg x))) (add (exp x) (exp (neg x))))", "tanh", "(exp", R_TANH, false, false, {800, -800, 0.5}, {0}},
  /* 1 - erf x cancels (erfc(5) = 1.5e-12, erfc(7) = 4e-23) */
  {"erfc", "f64", 1, 3, false, LS, "(sub 1 (erf x))", "erfc", "(erf ", R_ERFC, false, false, {5, 7, 0.5}, {0}},
  {"erfc", "f32", 1, 2, false, LS, "(sub 1 (erf x))", "erfc", "(erf ", R_ERFC, false, false, {5, 4}, {0}},
  {"erfc-neg", "f64", 1, 2, false, LS, "(add 1 (erf x))", "erfc", "(erf ", R_ERFC_NEG, false, false, {-5, -7}, {0}},
  {"erfc-neg-r", "f64", 1, 2, false, LS, "(add (erf x) 1)", "erfc", "(erf ", R_ERFC_NEG, false, false, {-5, -7}, {0}},
  {"erfc-neg-r", "f32", 1, 2, false, LS, "(add (erf x) 1)", "erfc", "(erf ", R_ERFC_NEG, false, false, {-5, -4}, {0}},
  {"logaddexp", "f64", 1, 3, true, LS, "(log (add (exp x) (exp y)))", "logaddexp", "(exp", R_LOGADDEXP, false, false, {1000, -1000, 0.5}, {999, -1001, 0.25}},
  {"logaddexp", "f32", 1, 2, true, LS, "(log (add (exp x) (exp y)))", "logaddexp", "(exp", R_LOGADDEXP, false, false, {100, -120}, {99, -121}},
  /* x*log(y) at x = 0, y = 0: 0 * -inf = NaN; xlogy is 0 */
  {"xlogy", "f64", 1, 3, true, LS, "(mul x (log y))", "xlogy", NULL, R_XLOGY, false, false, {0, 2, 0}, {0, 3, 5}},
  {"xlogy", "f32", 1, 2, true, LS, "(mul x (log y))", "xlogy", NULL, R_XLOGY, false, false, {0, 2}, {0, 3}},
  /* gradient shapes (docs/grad.md): y * (x / y) is NaN at y = 0 and y = inf */
  {"div-mul-cancel", "f64", 1, 3, true, LS, "(mul y (div x y))", "(out r x)", "(div", R_X, false, false, {2, -3, 0.5}, {0, INFINITY, 4}},
  {"div-mul-cancel", "f32", 1, 2, true, LS, "(mul y (div x y))", "(out r x)", "(div", R_X, false, false, {2, -3}, {0, 1e-30}},
  /* the gradient of log(1 + exp x): y / (1 + exp x) * exp x is inf/inf past 88 (f32) */
  {"sigmoid-grad", "f32", 1, 3, true, LS, "(mul (div y (add 1 (exp x))) (exp x))", "sigmoid", "(exp", R_Y_SIGMOID, false, false, {100, -20, 0.5}, {2, 3, -1}},
  {"sigmoid-grad", "f64", 1, 2, true, LS, "(mul (div y (add 1 (exp x))) (exp x))", "sigmoid", "(exp", R_Y_SIGMOID, false, false, {800, 1}, {2, 3}},
  /* the gradient of log(sum(exp x)) over rows: exp overflows */
  {"lse-grad-1", "f32", 2, 3, true, LS, "(mul (exp x) (expand_dims (div (sum y :axis 1) (sum (exp x) :axis 1)) :axis 1))", "softmax", "(exp x", R_SOFTMAX_ROWSUM_Y, false, false, {100, 99, -100, 1, 0, 2}, {1, 2, 3, 0.5, 0.5, 1}},
  {"lse-grad-last", "f64", 2, 3, true, LS, "(mul (exp x) (expand_dims (div (sum y :axis -1) (sum (exp x) :axis -1)) :axis -1))", "softmax", "(exp x", R_SOFTMAX_ROWSUM_Y, false, false, {1000, 999, -1000, 1, 0, 2}, {1, 2, 3, 0.5, 0.5, 1}},
};

static void check_case(tl_opt *o, const scase *c) {
  char src[1024], in[256];
  tl_error err = {0};
  if (c->lets[0]) /* x is computed from the input z */
    snprintf(in, sizeof in, "(in z %s [%d %d]) %s", c->dtype, c->rows, c->cols, c->lets);
  else if (c->has_y)
    snprintf(in, sizeof in, "(in x %s [%d %d]) (in y %s [%d %d])", c->dtype, c->rows, c->cols, c->dtype,
             c->rows, c->cols);
  else
    snprintf(in, sizeof in, "(in x %s [%d %d])", c->dtype, c->rows, c->cols);
  snprintf(src, sizeof src, "(graph g %s (out r %s))", in, c->expr);
  tl_graph *g = parse(src);
  cr_assert(g, "%s: %s", c->rule, src);
  tl_graph *best = tl_opt_graph(o, g, &err);
  cr_assert(best, "%s: %s", c->rule, err.msg);
  char *text = tl_tg_print(best);
  cr_expect(strstr(text, c->want) != NULL, "%s (%s): %s did not fire: became\n%s", c->rule, c->dtype, c->expr, text);
  if (c->absent)
    cr_expect(strstr(text, c->absent) == NULL, "%s (%s): %s still has '%s':\n%s", c->rule, c->dtype, c->expr,
              c->absent, text);
  tl_tensor *naive = run(g, c), *opt = run(best, c);
  long double ref[MAXV];
  int n = reference(c, ref);
  cr_assert_eq(naive->numel, n, "%s", c->rule);
  cr_assert_eq(opt->numel, n, "%s", c->rule);
  double tol = strcmp(c->dtype, "f32") == 0 ? 1e-6 : 1e-13, worst_naive = 0;
  for (int i = 0; i < n; i++) {
    double a = tl_tensor_get_f64(opt, i), b = tl_tensor_get_f64(naive, i);
    double e = rel_err(a, ref[i], tol > 1e-7), en = rel_err(b, ref[i], tol > 1e-7);
    if (en > worst_naive || isnan(en)) worst_naive = en;
    cr_expect(isfinite(a) && e <= tol, "%s (%s) element %d: optimised %.17g, reference %.21Lg, rel err.msg %.3g",
              c->rule, c->dtype, i, a, ref[i], e);
  }
  if (!c->naive_ok)
    cr_expect(worst_naive > 1e-3, "%s (%s): the naive form did not fail on these inputs (worst rel err.msg %.3g)",
              c->rule, c->dtype, worst_naive);
  tl_tensor_free(naive);
  tl_tensor_free(opt);
  tl_free(text);
  tl_graph_free(best);
  tl_graph_free(g);
}

Test(stability, every_rule_fires_and_is_accurate) {
  tl_opt *o = stability_rules();
  for (size_t i = 0; i < sizeof cases / sizeof *cases; i++)
    if (!cases[i].cost_tie) check_case(o, &cases[i]);
  tl_opt_free(o);
}

/* x - logsumexp(x) and log_softmax(x) are equal; the fused form must cost
 * strictly less so extraction picks it (a tie once kept the naive form). */
Test(stability, x_minus_lse_picks_log_softmax) {
  tl_opt *o = stability_rules();
  for (size_t i = 0; i < sizeof cases / sizeof *cases; i++)
    if (cases[i].cost_tie) check_case(o, &cases[i]);
  tl_opt_free(o);
}

/* Every rule of rules/stability.rw has a case above (a new rule needs one). */
Test(stability, every_rule_has_a_case) {
  char err[512];
  size_t len;
  char *src = tl_read_file(TL_SOURCE_DIR "/rules/stability.rw", &len, err, sizeof err);
  cr_assert(src, "%s", err);
  int count = 0;
  for (char *p = strstr(src, "(rule "); p; p = strstr(p + 1, "(rule ")) {
    char name[128];
    if (sscanf(p, "(rule %127s", name) != 1) continue;
    bool found = false;
    for (size_t i = 0; i < sizeof cases / sizeof *cases && !found; i++) found = strcmp(cases[i].rule, name) == 0;
    cr_expect(found, "stability rule %s has no case in test_stability.c", name);
    count++;
  }
  cr_expect_geq(count, 25);
  tl_free(src);
}

/* ---- a rule that worsens accuracy on a declared range ------------------- */

/* The accurate form 1 / (sqrt(x + 1) + sqrt(x)) and a rule file holding a
 * rewrite that worsens it, back to sqrt(x + 1) - sqrt(x) (a cancellation
 * for large x). With x declared non-negative (:range 0 inf) the sign facts
 * show that the sum cannot cancel and the difference can: the cost refuses
 * the rewrite. Without the range the facts cannot tell (the sqrts may be
 * NaN), and the cheaper difference is taken: the declaration is what
 * protects the program. The errors are measured against MPFR (exact.h). */
#include "check/exact.h"

static double mean_bits(const tl_graph *g, tl_tensor *x) {
  char err[256];
  int64_t syms[2] = {-1, -1};
  tl_tensor *out[1] = {NULL};
  tl_tensor *ins[1] = {x};
  cr_assert(tl_bind_inputs(g, ins, syms, err, sizeof err) == 0 && tl_interp_run(g, ins, syms, out, err, sizeof err) == 0,
            "%s", err);
  double s = 0;
  for (int64_t k = 0; k < x->numel; k++) {
    double ref;
    cr_assert(tl_exact_elem(g, ins, g->outputs[0].node, k, &ref) == 0);
    double v = tl_tensor_get_f64(out[0], k);
    int64_t a, b;
    memcpy(&a, &v, 8);
    memcpy(&b, &ref, 8);
    s += log2(1 + fabs((double)a - (double)b)); /* both positive here */
  }
  tl_tensor_free(out[0]);
  return s / (double)x->numel;
}

Test(accuracy, a_worsening_rule_is_refused_on_a_declared_range) {
  /* equal in exact arithmetic for x >= 0 */
  const char *rules = "(ruleset worsen (rule conjugate-back (div 1 (add (sqrt (add ?x 1)) (sqrt ?x)))"
                      " => (sub (sqrt (add ?x 1)) (sqrt ?x))))";
  char path[] = "/tmp/tlaloc-worsen-XXXXXX";
  int fd = mkstemp(path);
  cr_assert(fd >= 0);
  FILE *f = fdopen(fd, "w");
  fputs(rules, f);
  fclose(f);
  tl_opt_params p = tl_opt_defaults();
  const char *paths[1] = {path};
  p.rule_paths = paths;
  p.nrule_paths = 1;
  tl_error err = {0};
  tl_opt *o = tl_opt_new(&p, TL_EMSG(&err));
  cr_assert(o, "%s", err.msg);
  const char *ranged = "(graph g (in x f64 [64] :range 0 inf) (out y (div 1 (add (sqrt (add x 1)) (sqrt x)))))";
  const char *plain = "(graph g (in x f64 [64]) (out y (div 1 (add (sqrt (add x 1)) (sqrt x)))))";
  tl_graph *g1 = parse(ranged), *g2 = parse(plain);
  tl_graph *b1 = tl_opt_graph(o, g1, &err), *b2 = b1 ? tl_opt_graph(o, g2, &err) : NULL;
  cr_assert(b1 && b2, "%s", err.msg);
  char *t1 = tl_tg_print(b1), *t2 = tl_tg_print(b2);
  cr_expect(strstr(t1, "(sub") == NULL, "the rewrite that cancels was taken on x >= 0:\n%s", t1);
  cr_expect(strstr(t2, "(sub") != NULL, "without the range the cost has no reason to refuse it:\n%s", t2);
  /* and the refused form is the accurate one: large x, where sqrt(x+1) - sqrt(x) cancels */
  int64_t dims[1] = {64};
  tl_tensor *x = tl_tensor_new(TL_F64, 1, dims, TL_EMSG(&err));
  for (int k = 0; k < 64; k++) tl_tensor_set_f64(x, k, pow(10, 4 + k * 0.2));
  double kept = mean_bits(b1, x), taken = mean_bits(b2, x);
  cr_expect(kept < 1 && taken > kept + 10, "bits of error: kept %g, cancelling %g", kept, taken);
  tl_tensor_free(x);
  tl_free(t1);
  tl_free(t2);
  tl_graph_free(g1);
  tl_graph_free(g2);
  tl_graph_free(b1);
  tl_graph_free(b2);
  tl_opt_free(o);
  unlink(path);
}
