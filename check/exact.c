/* exact.c - elementwise graphs evaluated exactly with MPFR (exact.h). */
#include "check/exact.h"

#include <math.h>
#include <mpfr.h>
#include <stdlib.h>
#include <string.h>

#include "util/util.h"

#define EXACT_MAX_PREC 16384

static bool evaluable(int op) {
  switch (op) {
  case TL_OP_INPUT: case TL_OP_LIT: case TL_OP_FILL: case TL_OP_NEG: case TL_OP_ABS: case TL_OP_SQRT:
  case TL_OP_CBRT: case TL_OP_EXP: case TL_OP_EXPM1: case TL_OP_LOG: case TL_OP_LOG1P: case TL_OP_SIN:
  case TL_OP_COS: case TL_OP_TAN: case TL_OP_ASIN: case TL_OP_ACOS: case TL_OP_ATAN: case TL_OP_SINH:
  case TL_OP_COSH: case TL_OP_TANH: case TL_OP_ASINH: case TL_OP_ACOSH: case TL_OP_ATANH: case TL_OP_ERF:
  case TL_OP_ERFC: case TL_OP_FLOOR: case TL_OP_CEIL: case TL_OP_RECIPROCAL: case TL_OP_ADD: case TL_OP_SUB:
  case TL_OP_MUL: case TL_OP_DIV: case TL_OP_POW: case TL_OP_ATAN2: case TL_OP_HYPOT: case TL_OP_MAXIMUM:
  case TL_OP_MINIMUM: case TL_OP_EQ: case TL_OP_NE: case TL_OP_LT: case TL_OP_LE: case TL_OP_GT:
  case TL_OP_GE: case TL_OP_AND: case TL_OP_OR: case TL_OP_NOT: case TL_OP_WHERE: case TL_OP_SIGMOID:
  case TL_OP_SOFTPLUS: case TL_OP_LOG1MEXP: case TL_OP_LOGADDEXP: case TL_OP_XLOGY: case TL_OP_CAST:
    return true;
  default:
    return false;
  }
}

bool tl_exact_supports(const tl_graph *g) {
  for (int32_t id = 0; id < g->nnodes; id++) {
    int op = g->nodes[id].op;
    if (!evaluable(op)) return false;
    /* a cast to an integer or bool rounds: not a real-number op */
    if (op == TL_OP_CAST && !tl_dtype_is_float((tl_dtype)g->nodes[id].type.dtype)) return false;
  }
  return true;
}

/* The flat index into a value of type t of the element at multi-index ix
 * of the shape `of` (numpy broadcasting: t's dims align to the right and
 * size-1 dims repeat). */
static int64_t bcast_index(const tl_type *t, const tl_type *of, const int64_t *ix, const int64_t *syms) {
  int64_t k = 0;
  int off = of->rank - t->rank;
  for (int d = 0; d < t->rank; d++) {
    int64_t n = tl_dim_is_sym(t->dims[d]) ? syms[tl_dim_sym_id(t->dims[d])] : t->dims[d];
    k = k * n + (n == 1 ? 0 : ix[d + off]);
  }
  return k;
}

/* One evaluation at precision prec into v[]; *lossy when a cancellation
 * outran it. */
static void eval_at(const tl_graph *g, const double *in_val, mpfr_t *v, mpfr_prec_t prec, bool *lossy) {
  const mpfr_rnd_t R = MPFR_RNDN;
  for (int32_t id = 0; id < g->nnodes; id++) {
    const tl_node *n = &g->nodes[id];
    mpfr_set_prec(v[id], prec);
    const int32_t *in = tl_node_inputs(g, n);
    mpfr_ptr a = n->ninputs > 0 ? v[in[0]] : NULL, b = n->ninputs > 1 ? v[in[1]] : NULL;
    mpfr_ptr r = v[id];
    switch (n->op) {
    case TL_OP_INPUT: mpfr_set_d(r, in_val[id], R); break;
    case TL_OP_LIT:
    case TL_OP_FILL:
      if (n->attrs.is_int) mpfr_set_si(r, (long)n->attrs.i, R);
      else mpfr_set_d(r, n->attrs.f, R);
      break;
    case TL_OP_CAST: mpfr_set(r, a, R); break;
    case TL_OP_NEG: mpfr_neg(r, a, R); break;
    case TL_OP_ABS: mpfr_abs(r, a, R); break;
    case TL_OP_SQRT: mpfr_sqrt(r, a, R); break;
    case TL_OP_CBRT: mpfr_cbrt(r, a, R); break;
    case TL_OP_EXP: mpfr_exp(r, a, R); break;
    case TL_OP_EXPM1: mpfr_expm1(r, a, R); break;
    case TL_OP_LOG: mpfr_log(r, a, R); break;
    case TL_OP_LOG1P: mpfr_log1p(r, a, R); break;
    case TL_OP_SIN: mpfr_sin(r, a, R); break;
    case TL_OP_COS: mpfr_cos(r, a, R); break;
    case TL_OP_TAN: mpfr_tan(r, a, R); break;
    case TL_OP_ASIN: mpfr_asin(r, a, R); break;
    case TL_OP_ACOS: mpfr_acos(r, a, R); break;
    case TL_OP_ATAN: mpfr_atan(r, a, R); break;
    case TL_OP_SINH: mpfr_sinh(r, a, R); break;
    case TL_OP_COSH: mpfr_cosh(r, a, R); break;
    case TL_OP_TANH: mpfr_tanh(r, a, R); break;
    case TL_OP_ASINH: mpfr_asinh(r, a, R); break;
    case TL_OP_ACOSH: mpfr_acosh(r, a, R); break;
    case TL_OP_ATANH: mpfr_atanh(r, a, R); break;
    case TL_OP_ERF: mpfr_erf(r, a, R); break;
    case TL_OP_ERFC: mpfr_erfc(r, a, R); break;
    case TL_OP_FLOOR: mpfr_floor(r, a); break;
    case TL_OP_CEIL: mpfr_ceil(r, a); break;
    case TL_OP_RECIPROCAL: mpfr_ui_div(r, 1, a, R); break;
    case TL_OP_SIGMOID: /* 1 / (1 + e^-x) */
      mpfr_neg(r, a, R);
      mpfr_exp(r, r, R);
      mpfr_add_ui(r, r, 1, R);
      mpfr_ui_div(r, 1, r, R);
      break;
    case TL_OP_SOFTPLUS: /* log(1 + e^x) */
      mpfr_exp(r, a, R);
      mpfr_log1p(r, r, R);
      break;
    case TL_OP_LOG1MEXP: /* log(1 - e^x) = log(-expm1(x)) */
      mpfr_expm1(r, a, R);
      mpfr_neg(r, r, R);
      mpfr_log(r, r, R);
      break;
    case TL_OP_LOGADDEXP: { /* max + log1p(e^-|a-b|) */
      mpfr_t d;
      mpfr_init2(d, prec);
      mpfr_sub(d, a, b, R);
      mpfr_abs(d, d, R);
      mpfr_neg(d, d, R);
      mpfr_exp(d, d, R);
      mpfr_log1p(d, d, R);
      mpfr_max(r, a, b, R);
      mpfr_add(r, r, d, R);
      mpfr_clear(d);
      break;
    }
    case TL_OP_XLOGY: /* 0 where x == 0 */
      if (mpfr_zero_p(a) && !mpfr_nan_p(b)) mpfr_set_zero(r, 1);
      else {
        mpfr_log(r, b, R);
        mpfr_mul(r, r, a, R);
      }
      break;
    case TL_OP_ADD:
    case TL_OP_SUB:
      if (n->op == TL_OP_ADD) mpfr_add(r, a, b, R);
      else mpfr_sub(r, a, b, R);
      /* too few bits: the result cancelled more than the precision holds,
       * or the smaller operand did not fit beside the larger one (1 - 1e-200
       * is 1 at 256 bits, and log of it 0) */
      if (mpfr_regular_p(a) && mpfr_regular_p(b)) {
        mpfr_exp_t ea = mpfr_get_exp(a), eb = mpfr_get_exp(b);
        mpfr_exp_t top = ea > eb ? ea : eb, low = ea > eb ? eb : ea;
        if (mpfr_zero_p(r) || (mpfr_regular_p(r) && top - mpfr_get_exp(r) > (mpfr_exp_t)prec - 80) ||
            top - low > (mpfr_exp_t)prec - 80)
          *lossy = true;
      }
      break;
    case TL_OP_MUL: mpfr_mul(r, a, b, R); break;
    case TL_OP_DIV: mpfr_div(r, a, b, R); break;
    case TL_OP_POW: mpfr_pow(r, a, b, R); break;
    case TL_OP_ATAN2: mpfr_atan2(r, a, b, R); break;
    case TL_OP_HYPOT: mpfr_hypot(r, a, b, R); break;
    case TL_OP_MAXIMUM: mpfr_max(r, a, b, R); break;
    case TL_OP_MINIMUM: mpfr_min(r, a, b, R); break;
    case TL_OP_EQ: mpfr_set_si(r, mpfr_equal_p(a, b), R); break;
    case TL_OP_NE: mpfr_set_si(r, !mpfr_equal_p(a, b) && !mpfr_unordered_p(a, b), R); break;
    case TL_OP_LT: mpfr_set_si(r, mpfr_less_p(a, b), R); break;
    case TL_OP_LE: mpfr_set_si(r, mpfr_lessequal_p(a, b), R); break;
    case TL_OP_GT: mpfr_set_si(r, mpfr_greater_p(a, b), R); break;
    case TL_OP_GE: mpfr_set_si(r, mpfr_greaterequal_p(a, b), R); break;
    case TL_OP_AND: mpfr_set_si(r, !mpfr_zero_p(a) && !mpfr_zero_p(b), R); break;
    case TL_OP_OR: mpfr_set_si(r, !mpfr_zero_p(a) || !mpfr_zero_p(b), R); break;
    case TL_OP_NOT: mpfr_set_si(r, mpfr_zero_p(a), R); break;
    case TL_OP_WHERE: mpfr_set(r, mpfr_zero_p(a) ? v[in[2]] : b, R); break;
    default: abort(); /* tl_exact_supports ruled it out */
    }
  }
}

int tl_exact_elem(const tl_graph *g, tl_tensor *const *ins, int32_t id, int64_t elem, double *out) {
  if (!tl_exact_supports(g)) return -1;
  /* the multi-index of elem in id's shape, and each input's element */
  const tl_type *ot = &g->nodes[id].type;
  int64_t syms[TL_MAX_RANK * 4];
  for (size_t i = 0; i < sizeof syms / sizeof *syms; i++) syms[i] = 1;
  for (int i = 0; i < g->ninputs; i++) {
    const tl_type *t = &g->nodes[g->inputs[i]].type;
    for (int d = 0; d < t->rank; d++)
      if (tl_dim_is_sym(t->dims[d]) && tl_dim_sym_id(t->dims[d]) < (int)(sizeof syms / sizeof *syms))
        syms[tl_dim_sym_id(t->dims[d])] = ins[i]->dims[d];
  }
  int64_t ix[TL_MAX_RANK] = {0}, rest = elem;
  for (int d = ot->rank - 1; d >= 0; d--) {
    int64_t n = tl_dim_is_sym(ot->dims[d]) ? syms[tl_dim_sym_id(ot->dims[d])] : ot->dims[d];
    ix[d] = n > 0 ? rest % n : 0;
    rest = n > 0 ? rest / n : 0;
  }
  double *in_val = tl_xcalloc((size_t)g->nnodes + 1, sizeof *in_val);
  for (int i = 0; i < g->ninputs; i++) {
    int32_t nd = g->inputs[i];
    in_val[nd] = tl_tensor_get_f64(ins[i], bcast_index(&g->nodes[nd].type, ot, ix, syms));
  }
  mpfr_exp_t emin = mpfr_get_emin(), emax = mpfr_get_emax();
  mpfr_set_emin(mpfr_get_emin_min());
  mpfr_set_emax(mpfr_get_emax_max());
  mpfr_t *v = tl_xmalloc(((size_t)g->nnodes + 1) * sizeof *v);
  for (int32_t i = 0; i < g->nnodes; i++) mpfr_init2(v[i], 256);
  int rc = 1;
  double prev = NAN;
  bool have_prev = false;
  for (mpfr_prec_t p = 256; p <= EXACT_MAX_PREC && rc == 1; p *= 2) {
    bool lossy = false;
    eval_at(g, in_val, v, p, &lossy);
    if (lossy) {
      have_prev = false;
      continue;
    }
    double d = mpfr_get_d(v[id], MPFR_RNDN);
    if (have_prev && (d == prev || (isnan(d) && isnan(prev)))) {
      *out = d;
      rc = 0;
    }
    prev = d;
    have_prev = true;
  }
  for (int32_t i = 0; i < g->nnodes; i++) mpfr_clear(v[i]);
  tl_free(v);
  tl_free(in_val);
  mpfr_set_emin(emin);
  mpfr_set_emax(emax);
  return rc;
}
