/* interp.c - the reference interpreter.
 *
 * Nodes run in id order (which is topological). Each value is a dense
 * C-order tensor; a value is freed after its last reader. Every kernel reads
 * and writes elements through the dtype-generic accessors and computes in
 * double (floats) or int64 (integers, wrapped to the result's width on
 * store), which is exact for + - * / and sqrt in f32 and f64 once operands
 * are rounded to the compute dtype, and more accurate than numpy for
 * transcendental functions and sums. Clarity over speed. */
#include "interp/interp.h"
#include "util/util.h"

#include <float.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* What a kernel sees: its node's operands and their static types. */
typedef struct rctx {
  const tl_tensor *const *args;
  const tl_type *const *types;
  const char *opname;
  tl_loc loc;
  char *err;
  size_t err_size;
  bool failed;
} rctx;

typedef int (*kernel_fn)(rctx *c, const tl_node *n, tl_tensor *out);

__attribute__((format(printf, 2, 3))) static int rfail(rctx *c, const char *fmt, ...) {
  if (c->failed) return -1;
  c->failed = true;
  int k = snprintf(c->err, c->err_size, "%s", c->opname);
  if (c->loc.line > 0)
    k += snprintf(c->err + k, c->err_size - (size_t)k, " (at %d:%d)", c->loc.line, c->loc.col);
  k += snprintf(c->err + k, c->err_size - (size_t)k, ": ");
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(c->err + k, c->err_size - (size_t)k, fmt, ap);
  va_end(ap);
  return -1;
}

static const tl_tensor *arg(rctx *c, const tl_node *n, int k) { return c->args[k]; }

static void strides_of(const int64_t *dims, int rank, int64_t *st) {
  int64_t s = 1;
  for (int i = rank - 1; i >= 0; i--) {
    st[i] = s;
    s *= dims[i];
  }
}

/* Strides that read x broadcast into an output of the given rank. */
static void bcast_strides(const tl_tensor *x, int rank, int64_t *st) {
  int64_t xs[TL_MAX_RANK];
  strides_of(x->dims, x->rank, xs);
  for (int i = 0; i < rank; i++) {
    int xi = i - (rank - x->rank);
    st[i] = xi < 0 || x->dims[xi] == 1 ? 0 : xs[xi];
  }
}

/* Offset in a tensor with strides st of the element at flat output index o. */
static int64_t offset_of(int64_t o, const int64_t *dims, int rank, const int64_t *st) {
  int64_t off = 0;
  for (int i = rank - 1; i >= 0; i--) {
    if (dims[i] == 0) return 0;
    off += (o % dims[i]) * st[i];
    o /= dims[i];
  }
  return off;
}

/* ---- scalar operations ------------------------------------------------ */

static double sigmoid(double x) {
  if (x >= 0) return 1.0 / (1.0 + exp(-x));
  double e = exp(x);
  return e / (1.0 + e);
}

static double softplus(double x) {
  if (isnan(x)) return x;
  return fmax(x, 0.0) + log1p(exp(-fabs(x)));
}

/* log(1 - exp(x)) for x <= 0 (Maechler 2012: switch at -log 2). */
static double log1mexp(double x) {
  if (x > 0) return NAN;
  return x > -M_LN2 ? log(-expm1(x)) : log1p(-exp(x));
}

static double logaddexp(double a, double b) {
  if (a == b) return a + M_LN2; /* also right for +-inf */
  double m = fmax(a, b);
  if (isnan(a) || isnan(b)) return NAN;
  return m + log1p(exp(-fabs(a - b)));
}

static double xlogy(double x, double y) {
  if (x == 0 && !isnan(y)) return 0.0;
  return x * log(y);
}

static double fsign(double x) { return x > 0 ? 1.0 : x < 0 ? -1.0 : x == 0 ? 0.0 : x; }

/* numpy's floor division and remainder for floats (npy_divmod). */
static double fdivmod(double a, double b, double *mod) {
  double m = fmod(a, b);
  if (b == 0) {
    *mod = m;
    return a / b;
  }
  double div = (a - m) / b;
  if (m != 0) {
    if ((b < 0) != (m < 0)) {
      m += b;
      div -= 1.0;
    }
  } else {
    m = copysign(0.0, b);
  }
  double fd;
  if (div != 0) {
    fd = floor(div);
    if (div - fd > 0.5) fd += 1.0;
  } else {
    fd = copysign(0.0, a / b);
  }
  *mod = m;
  return fd;
}

static double fmaxnan(double a, double b) { return isnan(a) ? a : isnan(b) ? b : a >= b ? a : b; }
static double fminnan(double a, double b) { return isnan(a) ? a : isnan(b) ? b : a <= b ? a : b; }

static double f_unary(int op, double x) {
  switch (op) {
  case TL_OP_NEG: return -x;
  case TL_OP_ABS: return fabs(x);
  case TL_OP_SIGN: return fsign(x);
  case TL_OP_RELU: return x > 0 || isnan(x) ? x : 0.0;
  case TL_OP_SQRT: return sqrt(x);
  case TL_OP_SIGMOID: return sigmoid(x);
  case TL_OP_SOFTPLUS: return softplus(x);
  case TL_OP_LOG1MEXP: return log1mexp(x);
  case TL_OP_FLOOR: return floor(x);
  case TL_OP_CEIL: return ceil(x);
  case TL_OP_RECIPROCAL: return 1.0 / x;
  default: return tl_ops[op].ref1 ? tl_ops[op].ref1(x) : NAN; /* a libm op (ir/ops.def) */
  }
}

static double f_binary(int op, double a, double b) {
  double m;
  switch (op) {
  case TL_OP_ADD: return a + b;
  case TL_OP_SUB: return a - b;
  case TL_OP_MUL: return a * b;
  case TL_OP_DIV: return a / b;
  case TL_OP_FLOOR_DIVIDE: return fdivmod(a, b, &m);
  case TL_OP_REMAINDER: fdivmod(a, b, &m); return m;
  case TL_OP_MAXIMUM: return fmaxnan(a, b);
  case TL_OP_MINIMUM: return fminnan(a, b);
  case TL_OP_LOGADDEXP: return logaddexp(a, b);
  case TL_OP_XLOGY: return xlogy(a, b);
  default: return tl_ops[op].ref2 ? tl_ops[op].ref2(a, b) : NAN; /* a libm op (ir/ops.def) */
  }
}

/* Integers wrap: arithmetic in uint64, truncated to the result on store. */
static int64_t wrap_add(int64_t a, int64_t b) { return (int64_t)((uint64_t)a + (uint64_t)b); }
static int64_t wrap_sub(int64_t a, int64_t b) { return (int64_t)((uint64_t)a - (uint64_t)b); }
static int64_t wrap_mul(int64_t a, int64_t b) { return (int64_t)((uint64_t)a * (uint64_t)b); }

static int64_t ipow(int64_t a, int64_t b) {
  uint64_t r = 1, base = (uint64_t)a;
  while (b > 0) {
    if (b & 1) r *= base;
    base *= base;
    b >>= 1;
  }
  return (int64_t)r;
}

static int64_t ifloordiv(int64_t a, int64_t b) {
  if (b == 0) return 0;                     /* numpy: 0 with a warning */
  if (b == -1) return wrap_sub(0, a);       /* INT_MIN // -1 wraps */
  int64_t q = a / b;
  if (a % b != 0 && ((a < 0) != (b < 0))) q--;
  return q;
}

static int64_t iremainder(int64_t a, int64_t b) {
  if (b == 0 || b == -1) return 0;
  int64_t r = a % b;
  if (r != 0 && ((r < 0) != (b < 0))) r += b;
  return r;
}

static int i_binary(rctx *c, int op, int64_t a, int64_t b, int64_t *r) {
  switch (op) {
  case TL_OP_ADD: *r = wrap_add(a, b); return 0;
  case TL_OP_SUB: *r = wrap_sub(a, b); return 0;
  case TL_OP_MUL: *r = wrap_mul(a, b); return 0;
  case TL_OP_FLOOR_DIVIDE: *r = ifloordiv(a, b); return 0;
  case TL_OP_REMAINDER: *r = iremainder(a, b); return 0;
  case TL_OP_POW:
    if (b < 0) return rfail(c, "integers to negative integer powers are not allowed");
    *r = ipow(a, b);
    return 0;
  case TL_OP_MAXIMUM: *r = a > b ? a : b; return 0;
  case TL_OP_MINIMUM: *r = a < b ? a : b; return 0;
  default: return rfail(c, "no integer kernel");
  }
}

static int64_t i_unary(int op, int64_t x) {
  switch (op) {
  case TL_OP_NEG: return wrap_sub(0, x);
  case TL_OP_ABS: return x < 0 ? wrap_sub(0, x) : x;
  case TL_OP_SIGN: return x > 0 ? 1 : x < 0 ? -1 : 0;
  case TL_OP_RELU: return x > 0 ? x : 0;
  default: return 0;
  }
}

static bool compare(int op, double a, double b) {
  switch (op) {
  case TL_OP_EQ: return a == b;
  case TL_OP_NE: return a != b;
  case TL_OP_LT: return a < b;
  case TL_OP_LE: return a <= b;
  case TL_OP_GT: return a > b;
  default: return a >= b;
  }
}

static bool icompare(int op, int64_t a, int64_t b) {
  switch (op) {
  case TL_OP_EQ: return a == b;
  case TL_OP_NE: return a != b;
  case TL_OP_LT: return a < b;
  case TL_OP_LE: return a <= b;
  case TL_OP_GT: return a > b;
  default: return a >= b;
  }
}

/* ---- elementwise ------------------------------------------------------ */

/* Operand k at element o, as the compute dtype ct sees it. */
typedef struct operand { const tl_tensor *t; int64_t st[TL_MAX_RANK]; } operand;

static double getf(const operand *x, int64_t off, int ct) {
  double v = tl_tensor_get_f64(x->t, off);
  return ct == TL_F32 ? (double)(float)v : v;
}

static int64_t geti(const operand *x, int64_t off, int ct) {
  int64_t v = tl_tensor_get_i64(x->t, off);
  return ct == TL_I32 ? (int64_t)(int32_t)(uint32_t)(uint64_t)v : ct == TL_BOOL ? v != 0 : v;
}

static bool truthy(const tl_tensor *t, int64_t off) {
  if (tl_dtype_is_float((tl_dtype)t->dtype)) return tl_tensor_get_f64(t, off) != 0 || isnan(tl_tensor_get_f64(t, off));
  return tl_tensor_get_i64(t, off) != 0;
}

static int k_elemwise(rctx *c, const tl_node *n, tl_tensor *out) {
  int op = n->op, nin = n->ninputs;
  operand x[3];
  for (int k = 0; k < nin; k++) {
    x[k].t = arg(c, n, k);
    bcast_strides(x[k].t, out->rank, x[k].st);
  }
  uint8_t ct = out->dtype, weak;
  if (tl_ops[op].dtype_rule == TL_DR_CMP) {
    tl_promote(c->types, nin, &ct, &weak);
    /* integers compare exactly, literals beyond i32 included (NEP 50) */
    if (ct == TL_I32) ct = TL_I64;
  }
  if (op == TL_OP_WHERE) ct = out->dtype;
  bool fl = tl_dtype_is_float((tl_dtype)ct);
  for (int64_t o = 0; o < out->numel; o++) {
    int64_t off[3] = {0, 0, 0};
    for (int k = 0; k < nin; k++) off[k] = offset_of(o, out->dims, out->rank, x[k].st);
    switch (op) {
    case TL_OP_NOT: tl_tensor_set_i64(out, o, !truthy(x[0].t, off[0])); continue;
    case TL_OP_AND: tl_tensor_set_i64(out, o, truthy(x[0].t, off[0]) && truthy(x[1].t, off[1])); continue;
    case TL_OP_OR: tl_tensor_set_i64(out, o, truthy(x[0].t, off[0]) || truthy(x[1].t, off[1])); continue;
    case TL_OP_BITWISE_XOR:
      tl_tensor_set_i64(out, o, geti(&x[0], off[0], ct) ^ geti(&x[1], off[1], ct));
      continue;
    case TL_OP_WHERE: {
      const operand *pick = truthy(x[0].t, off[0]) ? &x[1] : &x[2];
      int64_t po = pick == &x[1] ? off[1] : off[2];
      if (fl) tl_tensor_set_f64(out, o, getf(pick, po, ct));
      else tl_tensor_set_i64(out, o, geti(pick, po, ct));
      continue;
    }
    case TL_OP_CAST: {
      const tl_tensor *s = x[0].t;
      if (tl_dtype_is_float((tl_dtype)s->dtype) && out->dtype == TL_I32)
        ((int32_t *)out->data)[o] = tl_f64_to_i32(tl_tensor_get_f64(s, off[0]));
      else if (tl_dtype_is_float((tl_dtype)s->dtype) && out->dtype != TL_BOOL)
        tl_tensor_set_f64(out, o, tl_tensor_get_f64(s, off[0]));
      else if (out->dtype == TL_BOOL)
        tl_tensor_set_i64(out, o, truthy(s, off[0]));
      else
        tl_tensor_set_i64(out, o, tl_tensor_get_i64(s, off[0]));
      continue;
    }
    default: break;
    }
    if (tl_ops[op].dtype_rule == TL_DR_CMP) {
      bool r = fl ? compare(op, getf(&x[0], off[0], ct), getf(&x[1], off[1], ct))
                  : icompare(op, geti(&x[0], off[0], ct), geti(&x[1], off[1], ct));
      tl_tensor_set_i64(out, o, r);
    } else if (fl) {
      double r = nin == 1 ? f_unary(op, getf(&x[0], off[0], ct))
                          : f_binary(op, getf(&x[0], off[0], ct), getf(&x[1], off[1], ct));
      tl_tensor_set_f64(out, o, r);
    } else if (ct == TL_BOOL) {
      /* bool arithmetic is logic: + and maximum are or, * and minimum and */
      bool a = geti(&x[0], off[0], ct) != 0, b = nin > 1 && geti(&x[1], off[1], ct) != 0;
      bool r = op == TL_OP_ABS ? a
             : (op == TL_OP_ADD || op == TL_OP_MAXIMUM) ? (a || b)
             : (a && b);
      tl_tensor_set_i64(out, o, r);
    } else if (nin == 1) {
      tl_tensor_set_i64(out, o, i_unary(op, geti(&x[0], off[0], ct)));
    } else {
      int64_t r = 0;
      if (i_binary(c, op, geti(&x[0], off[0], ct), geti(&x[1], off[1], ct), &r)) return -1;
      tl_tensor_set_i64(out, o, r);
    }
  }
  return 0;
}

/* ---- constants -------------------------------------------------------- */

static int k_lit(rctx *c, const tl_node *n, tl_tensor *out) {
  if (n->attrs.is_int) tl_tensor_set_i64(out, 0, n->attrs.i);
  else tl_tensor_set_f64(out, 0, n->attrs.f);
  return 0;
}

/* A const's payload is passed as its only argument (it lives in the graph). */
static int k_const(rctx *c, const tl_node *n, tl_tensor *out) {
  const tl_tensor *x = c->args[0];
  memcpy(out->data, x->data, (size_t)x->numel * tl_dtype_size((tl_dtype)x->dtype));
  return 0;
}

static int k_fill(rctx *c, const tl_node *n, tl_tensor *out) {
  for (int64_t o = 0; o < out->numel; o++) {
    if (n->attrs.is_int) tl_tensor_set_i64(out, o, n->attrs.i);
    else tl_tensor_set_f64(out, o, n->attrs.f);
  }
  return 0;
}

static int k_dim(rctx *c, const tl_node *n, tl_tensor *out) {
  const tl_tensor *x = c->args[0];
  int ax = n->attrs.axes[0] < 0 ? n->attrs.axes[0] + x->rank : n->attrs.axes[0];
  tl_tensor_set_i64(out, 0, x->dims[ax]);
  return 0;
}

static int k_iota(rctx *c, const tl_node *n, tl_tensor *out) {
  (void)c;
  int ax = n->attrs.axes[0] < 0 ? n->attrs.axes[0] + out->rank : n->attrs.axes[0];
  int64_t inner = 1;
  for (int i = ax + 1; i < out->rank; i++) inner *= out->dims[i];
  for (int64_t o = 0; o < out->numel; o++) tl_tensor_set_i64(out, o, (o / inner) % out->dims[ax]);
  return 0;
}

static int k_like(rctx *c, const tl_node *n, tl_tensor *out) {
  for (int64_t o = 0; o < out->numel; o++) tl_tensor_set_i64(out, o, n->op == TL_OP_ONES_LIKE);
  return 0;
}

static int k_input(rctx *c, const tl_node *n, tl_tensor *out) {
  return rfail(c, "inputs are bound, not computed");
}

/* ---- reductions ------------------------------------------------------- */

/* Output offset of every input element: the reduced axes get stride 0. */
static void reduce_strides(const tl_node *n, const tl_tensor *x, int64_t *st) {
  bool red[TL_MAX_RANK] = {false};
  if (!(n->attrs.present & TL_A_AXIS))
    for (int i = 0; i < x->rank; i++) red[i] = true;
  for (int i = 0; i < n->attrs.naxes; i++) {
    int ax = n->attrs.axes[i];
    red[ax < 0 ? ax + x->rank : ax] = true;
  }
  int64_t od[TL_MAX_RANK];
  int r = 0;
  for (int i = 0; i < x->rank; i++)
    if (!red[i]) od[r++] = x->dims[i];
  int64_t os[TL_MAX_RANK];
  strides_of(od, r, os);
  r = 0;
  for (int i = 0; i < x->rank; i++) st[i] = red[i] ? 0 : os[r++];
}

static int k_reduce(rctx *c, const tl_node *n, tl_tensor *out) {
  const tl_tensor *x = arg(c, n, 0);
  int op = n->op;
  int64_t st[TL_MAX_RANK];
  reduce_strides(n, x, st);
  int64_t m = out->numel, count = m ? x->numel / (m ? m : 1) : 0;
  bool ints = !tl_dtype_is_float((tl_dtype)out->dtype) && op != TL_OP_MEAN && op != TL_OP_LOGSUMEXP;
  if ((op == TL_OP_MAX || op == TL_OP_MIN) && count == 0 && m > 0)
    return rfail(c, "zero-size reduction has no identity");
  double *acc = tl_xmalloc(((size_t)m + 1) * sizeof *acc);
  int64_t *iacc = tl_xmalloc(((size_t)m + 1) * sizeof *iacc);
  bool *seen = tl_xcalloc((size_t)m + 1, 1);
  for (int64_t o = 0; o < m; o++) {
    acc[o] = op == TL_OP_PROD ? 1.0 : op == TL_OP_LOGSUMEXP ? -INFINITY : 0.0;
    iacc[o] = op == TL_OP_PROD ? 1 : 0;
  }
  /* logsumexp: first the max (into acc), then the shifted sum (into sum) */
  for (int64_t i = 0; i < x->numel; i++) {
    int64_t o = offset_of(i, x->dims, x->rank, st);
    if (ints) {
      int64_t v = tl_tensor_get_i64(x, i);
      switch (op) {
      case TL_OP_SUM: iacc[o] = wrap_add(iacc[o], v); break;
      case TL_OP_PROD: iacc[o] = wrap_mul(iacc[o], v); break;
      case TL_OP_MAX: iacc[o] = !seen[o] || v > iacc[o] ? v : iacc[o]; break;
      default: iacc[o] = !seen[o] || v < iacc[o] ? v : iacc[o]; break;
      }
    } else {
      double v = tl_tensor_get_f64(x, i);
      switch (op) {
      case TL_OP_SUM: case TL_OP_MEAN: acc[o] += v; break;
      case TL_OP_PROD: acc[o] *= v; break;
      case TL_OP_MAX: case TL_OP_LOGSUMEXP: acc[o] = !seen[o] ? v : fmaxnan(acc[o], v); break;
      default: acc[o] = !seen[o] ? v : fminnan(acc[o], v); break;
      }
    }
    seen[o] = true;
  }
  if (op == TL_OP_LOGSUMEXP) {
    /* m + log1p(sum of the other terms): the max contributes exp(0) = 1
     * exactly (its first occurrence), so a dominant max loses no digits */
    double *sum = tl_xcalloc((size_t)m + 1, sizeof *sum);
    bool *used = tl_xcalloc((size_t)m + 1, 1);
    for (int64_t i = 0; i < x->numel; i++) {
      int64_t o = offset_of(i, x->dims, x->rank, st);
      if (!isfinite(acc[o])) continue;
      double v = tl_tensor_get_f64(x, i);
      if (!used[o] && v == acc[o]) used[o] = true;
      else sum[o] += exp(v - acc[o]);
    }
    for (int64_t o = 0; o < m; o++)
      if (isfinite(acc[o])) acc[o] += log1p(sum[o]);
    tl_free(sum);
    tl_free(used);
  }
  for (int64_t o = 0; o < m; o++) {
    if (op == TL_OP_MEAN) tl_tensor_set_f64(out, o, acc[o] / (double)count);
    else if (ints) tl_tensor_set_i64(out, o, iacc[o]);
    else tl_tensor_set_f64(out, o, acc[o]);
  }
  tl_free(acc);
  tl_free(iacc);
  tl_free(seen);
  return 0;
}

/* softmax / log_softmax along one axis, shifted by the row max (a
 * non-finite max shifts by 0, as scipy.special does). */
static int k_softmax(rctx *c, const tl_node *n, tl_tensor *out) {
  const tl_tensor *x = arg(c, n, 0);
  int ax = (n->attrs.present & TL_A_AXIS) ? n->attrs.axes[0] : -1;
  if (ax < 0) ax += x->rank;
  int64_t outer = 1, len = x->dims[ax], inner = 1;
  for (int i = 0; i < ax; i++) outer *= x->dims[i];
  for (int i = ax + 1; i < x->rank; i++) inner *= x->dims[i];
  for (int64_t a = 0; a < outer; a++) {
    for (int64_t b = 0; b < inner; b++) {
      int64_t base = a * len * inner + b;
      double mx = -INFINITY;
      int64_t at = -1;
      for (int64_t k = 0; k < len; k++) {
        double v = tl_tensor_get_f64(x, base + k * inner);
        if (at < 0 || isnan(v) || v > mx) mx = v, at = k;
        if (isnan(v)) break;
      }
      if (!isfinite(mx)) mx = isnan(mx) ? mx : 0.0, at = -1;
      /* s = 1 + rest, the max's own term being exp(0) = 1; log(s) is taken
       * as log1p(rest) so that a row dominated by its max keeps every digit */
      double rest = 0;
      for (int64_t k = 0; k < len; k++)
        if (k != at) rest += exp(tl_tensor_get_f64(x, base + k * inner) - mx);
      double s = at >= 0 ? 1.0 + rest : rest, logs = at >= 0 ? log1p(rest) : log(rest);
      /* a row whose max is +inf shifts by 0 and sums to +inf: each term
       * exp(v) over it is 0, or NaN where exp(v) overflows the result's
       * dtype (the terms are values of that dtype, as every engine
       * computes them: f32 overflows above 88.7, where a double would not) */
      double big = out->dtype == TL_F32 ? FLT_MAX : DBL_MAX;
      for (int64_t k = 0; k < len; k++) {
        double v = tl_tensor_get_f64(x, base + k * inner) - mx, e = exp(v);
        if (e > big) e = INFINITY;
        tl_tensor_set_f64(out, base + k * inner, n->op == TL_OP_SOFTMAX ? e / s : v - logs);
      }
    }
  }
  return 0;
}

/* ---- shape ops -------------------------------------------------------- */

static int k_copy(rctx *c, const tl_node *n, tl_tensor *out) {
  const tl_tensor *x = arg(c, n, 0);
  memcpy(out->data, x->data, (size_t)x->numel * tl_dtype_size((tl_dtype)x->dtype));
  return 0;
}

static int k_transpose(rctx *c, const tl_node *n, tl_tensor *out) {
  const tl_tensor *x = arg(c, n, 0);
  int64_t xs[TL_MAX_RANK], st[TL_MAX_RANK];
  strides_of(x->dims, x->rank, xs);
  for (int i = 0; i < x->rank; i++) {
    int p = (n->attrs.present & TL_A_PERM) ? n->attrs.perm[i] : x->rank - 1 - i;
    if (p < 0) p += x->rank;
    st[i] = xs[p];
  }
  size_t es = tl_dtype_size((tl_dtype)x->dtype);
  for (int64_t o = 0; o < out->numel; o++)
    memcpy((char *)out->data + o * (int64_t)es,
           (const char *)x->data + offset_of(o, out->dims, out->rank, st) * (int64_t)es, es);
  return 0;
}

static int k_broadcast_to(rctx *c, const tl_node *n, tl_tensor *out) {
  const tl_tensor *x = arg(c, n, 0);
  int64_t st[TL_MAX_RANK];
  bcast_strides(x, out->rank, st);
  size_t es = tl_dtype_size((tl_dtype)x->dtype);
  for (int64_t o = 0; o < out->numel; o++)
    memcpy((char *)out->data + o * (int64_t)es,
           (const char *)x->data + offset_of(o, out->dims, out->rank, st) * (int64_t)es, es);
  return 0;
}

static int k_concat(rctx *c, const tl_node *n, tl_tensor *out) {
  int ax = (n->attrs.present & TL_A_AXIS) ? n->attrs.axes[0] : 0;
  if (ax < 0) ax += out->rank;
  int64_t outer = 1, inner = 1;
  for (int i = 0; i < ax; i++) outer *= out->dims[i];
  for (int i = ax + 1; i < out->rank; i++) inner *= out->dims[i];
  int64_t pos = 0;
  bool fl = tl_dtype_is_float((tl_dtype)out->dtype);
  for (int k = 0; k < n->ninputs; k++) {
    const tl_tensor *x = arg(c, n, k);
    int64_t chunk = x->dims[ax] * inner;
    /* operands are converted to the promoted dtype element by element */
    for (int64_t a = 0; a < outer; a++)
      for (int64_t j = 0; j < chunk; j++) {
        int64_t o = a * out->dims[ax] * inner + pos + j, i = a * chunk + j;
        if (fl) tl_tensor_set_f64(out, o, tl_tensor_get_f64(x, i));
        else tl_tensor_set_i64(out, o, tl_tensor_get_i64(x, i));
      }
    pos += chunk;
  }
  return 0;
}

/* Python's slice start along a dim of length len (as infer.c computes it). */
static int64_t slice_first(const tl_attrs *a, int64_t len) {
  int64_t step = (a->present & TL_A_STEP) ? a->step : 1, start;
  if (step > 0) {
    start = (a->present & TL_A_START) ? a->start : 0;
    if (start < 0) start = start + len < 0 ? 0 : start + len;
    else if (start > len) start = len;
  } else {
    start = (a->present & TL_A_START) ? a->start : len - 1;
    if (start < 0) start = start + len < 0 ? -1 : start + len;
    else if (start >= len) start = len - 1;
  }
  return start;
}

/* Copies the slice x[start::step] along :axis (of v's shape) out of x into
 * v, or, with into_x, v into that slice of x: one walk for slice and
 * slice_update. */
static void slice_copy(const tl_node *n, const tl_tensor *x, const tl_tensor *v, bool into_x) {
  const tl_attrs *a = &n->attrs;
  int ax = (a->present & TL_A_AXIS) ? a->axes[0] : 0;
  if (ax < 0) ax += x->rank;
  int64_t step = (a->present & TL_A_STEP) ? a->step : 1, start = slice_first(a, x->dims[ax]);
  int64_t xs[TL_MAX_RANK];
  strides_of(x->dims, x->rank, xs);
  size_t es = tl_dtype_size((tl_dtype)x->dtype);
  for (int64_t o = 0; o < v->numel; o++) {
    int64_t rem = o, off = 0;
    for (int i = v->rank - 1; i >= 0; i--) {
      int64_t idx = rem % v->dims[i];
      rem /= v->dims[i];
      off += (i == ax ? start + idx * step : idx) * xs[i];
    }
    char *xp = (char *)x->data + off * (int64_t)es, *vp = (char *)v->data + o * (int64_t)es;
    if (into_x) memcpy(xp, vp, es);
    else memcpy(vp, xp, es);
  }
}

static int k_slice(rctx *c, const tl_node *n, tl_tensor *out) {
  slice_copy(n, arg(c, n, 0), out, false);
  return 0;
}

/* take's and scatter_add's view of x along :axis (without it, of x
 * flattened): outer blocks of len slices of inner elements. Fails, as
 * numpy does, on an index outside [-len, len). */
static int index_geometry(rctx *c, const tl_node *n, const tl_tensor *x, const tl_tensor *idx, int64_t *outer,
                          int64_t *len, int64_t *inner) {
  bool flat = !(n->attrs.present & TL_A_AXIS);
  int ax = flat ? 0 : n->attrs.axes[0];
  if (ax < 0) ax += x->rank;
  *outer = 1, *len = flat ? x->numel : x->dims[ax], *inner = 1;
  if (!flat) {
    for (int i = 0; i < ax; i++) *outer *= x->dims[i];
    for (int i = ax + 1; i < x->rank; i++) *inner *= x->dims[i];
  }
  for (int64_t k = 0; k < idx->numel; k++) {
    int64_t j = tl_tensor_get_i64(idx, k);
    if (j < -*len || j >= *len)
      return rfail(c, "index %lld is out of bounds for axis %d with size %lld", (long long)j, ax, (long long)*len);
  }
  return 0;
}

static int k_take(rctx *c, const tl_node *n, tl_tensor *out) {
  const tl_tensor *x = arg(c, n, 0), *idx = arg(c, n, 1);
  size_t es = tl_dtype_size((tl_dtype)x->dtype);
  int64_t outer, len, inner;
  if (index_geometry(c, n, x, idx, &outer, &len, &inner)) return -1;
  for (int64_t a = 0; a < outer; a++)
    for (int64_t k = 0; k < idx->numel; k++) {
      int64_t j = tl_tensor_get_i64(idx, k);
      if (j < 0) j += len;
      memcpy((char *)out->data + ((a * idx->numel + k) * inner) * (int64_t)es,
             (const char *)x->data + ((a * len + j) * inner) * (int64_t)es, (size_t)inner * es);
    }
  return 0;
}

/* x with x[start::step] along :axis replaced by v (v has the slice's type). */
static int k_slice_update(rctx *c, const tl_node *n, tl_tensor *out) {
  const tl_tensor *x = arg(c, n, 0), *v = arg(c, n, 1);
  memcpy(out->data, x->data, (size_t)x->numel * tl_dtype_size((tl_dtype)x->dtype));
  slice_copy(n, out, v, true);
  return 0;
}

/* x with v's slices added at the indices (the transpose of k_take): in
 * v's element order, so that duplicate indices accumulate in a fixed order. */
static int k_scatter_add(rctx *c, const tl_node *n, tl_tensor *out) {
  const tl_tensor *x = arg(c, n, 0), *idx = arg(c, n, 1), *v = arg(c, n, 2);
  bool fl = tl_dtype_is_float((tl_dtype)x->dtype);
  int64_t outer, len, inner;
  if (index_geometry(c, n, x, idx, &outer, &len, &inner)) return -1;
  memcpy(out->data, x->data, (size_t)x->numel * tl_dtype_size((tl_dtype)x->dtype));
  for (int64_t a = 0; a < outer; a++)
    for (int64_t k = 0; k < idx->numel; k++) {
      int64_t j = tl_tensor_get_i64(idx, k);
      if (j < 0) j += len;
      for (int64_t b = 0; b < inner; b++) {
        int64_t o = (a * len + j) * inner + b, src = (a * idx->numel + k) * inner + b;
        if (fl) tl_tensor_set_f64(out, o, tl_tensor_get_f64(out, o) + tl_tensor_get_f64(v, src));
        else tl_tensor_set_i64(out, o, wrap_add(tl_tensor_get_i64(out, o), tl_tensor_get_i64(v, src)));
      }
    }
  return 0;
}

/* ---- matmul ----------------------------------------------------------- */

static int k_matmul(rctx *c, const tl_node *n, tl_tensor *out) {
  const tl_tensor *a = arg(c, n, 0), *b = arg(c, n, 1);
  /* view both as (..., m, k) and (..., k, p) */
  int64_t ad[TL_MAX_RANK + 1], bd[TL_MAX_RANK + 1];
  int ar = a->rank, br = b->rank;
  memcpy(ad, a->dims, sizeof a->dims);
  memcpy(bd, b->dims, sizeof b->dims);
  if (ar == 1) { ad[1] = ad[0]; ad[0] = 1; ar = 2; }
  if (br == 1) { bd[1] = 1; br = 2; }
  int64_t m = ad[ar - 2], k = ad[ar - 1], p = bd[br - 1];
  int batch_rank = (ar > br ? ar : br) - 2;
  int64_t bdims[TL_MAX_RANK], ast[TL_MAX_RANK], bst[TL_MAX_RANK];
  int64_t nb = 1;
  for (int i = 0; i < batch_rank; i++) {
    int ai = i - (batch_rank - (ar - 2)), bi = i - (batch_rank - (br - 2));
    int64_t da = ai >= 0 ? ad[ai] : 1, db = bi >= 0 ? bd[bi] : 1;
    bdims[i] = da == 1 ? db : da;
    nb *= bdims[i];
  }
  /* batch strides in units of whole matrices */
  int64_t s = 1;
  for (int i = ar - 3; i >= 0; i--) {
    int oi = i + (batch_rank - (ar - 2));
    ast[oi] = ad[i] == 1 ? 0 : s;
    s *= ad[i];
  }
  for (int i = 0; i < batch_rank - (ar - 2); i++) ast[i] = 0;
  s = 1;
  for (int i = br - 3; i >= 0; i--) {
    int oi = i + (batch_rank - (br - 2));
    bst[oi] = bd[i] == 1 ? 0 : s;
    s *= bd[i];
  }
  for (int i = 0; i < batch_rank - (br - 2); i++) bst[i] = 0;
  int ct = out->dtype;
  bool fl = tl_dtype_is_float((tl_dtype)ct);
  for (int64_t q = 0; q < nb; q++) {
    int64_t ab = offset_of(q, bdims, batch_rank, ast) * m * k;
    int64_t bb = offset_of(q, bdims, batch_rank, bst) * k * p;
    for (int64_t i = 0; i < m; i++)
      for (int64_t j = 0; j < p; j++) {
        int64_t o = (q * m + i) * p + j;
        if (fl) {
          double acc = 0;
          for (int64_t t = 0; t < k; t++) {
            double x = tl_tensor_get_f64(a, ab + i * k + t), y = tl_tensor_get_f64(b, bb + t * p + j);
            if (ct == TL_F32) x = (float)x, y = (float)y;
            acc += x * y;
          }
          tl_tensor_set_f64(out, o, acc);
        } else if (ct == TL_BOOL) {
          bool acc = false;
          for (int64_t t = 0; t < k; t++)
            acc = acc || (tl_tensor_get_i64(a, ab + i * k + t) && tl_tensor_get_i64(b, bb + t * p + j));
          tl_tensor_set_i64(out, o, acc);
        } else {
          int64_t acc = 0;
          for (int64_t t = 0; t < k; t++)
            acc = wrap_add(acc, wrap_mul(tl_tensor_get_i64(a, ab + i * k + t), tl_tensor_get_i64(b, bb + t * p + j)));
          tl_tensor_set_i64(out, o, acc);
        }
      }
  }
  return 0;
}

/* Ops of kind TL_KIND_ELEMWISE need no entry: k_elemwise runs them all,
 * through f_unary/f_binary (and a libm op through its ops.def function). */
static const kernel_fn kernels[TL_OP_COUNT] = {
  [TL_OP_INPUT] = k_input, [TL_OP_LIT] = k_lit, [TL_OP_CONST] = k_const, [TL_OP_FILL] = k_fill,
  [TL_OP_ZEROS_LIKE] = k_like, [TL_OP_ONES_LIKE] = k_like, [TL_OP_DIM] = k_dim, [TL_OP_IOTA] = k_iota,
  [TL_OP_SUM] = k_reduce, [TL_OP_PROD] = k_reduce, [TL_OP_MAX] = k_reduce,
  [TL_OP_MIN] = k_reduce, [TL_OP_MEAN] = k_reduce, [TL_OP_LOGSUMEXP] = k_reduce,
  [TL_OP_SOFTMAX] = k_softmax, [TL_OP_LOG_SOFTMAX] = k_softmax,
  [TL_OP_RESHAPE] = k_copy, [TL_OP_TRANSPOSE] = k_transpose,
  [TL_OP_BROADCAST_TO] = k_broadcast_to, [TL_OP_EXPAND_DIMS] = k_copy,
  [TL_OP_SQUEEZE] = k_copy, [TL_OP_CONCAT] = k_concat, [TL_OP_SLICE] = k_slice,
  [TL_OP_TAKE] = k_take, [TL_OP_MATMUL] = k_matmul,
  [TL_OP_SLICE_UPDATE] = k_slice_update, [TL_OP_SCATTER_ADD] = k_scatter_add,
};

static kernel_fn kernel_for(int op) {
  if (op < 0 || op >= TL_OP_COUNT) return NULL;
  if (kernels[op]) return kernels[op];
  return tl_ops[op].kind == TL_KIND_ELEMWISE ? k_elemwise : NULL;
}

/* control nodes are run by tl_interp_run itself (interp/control.c) */
bool tl_interp_has(int op) {
  return kernel_for(op) != NULL || (op >= 0 && op < TL_OP_COUNT && tl_ops[op].kind == TL_KIND_CONTROL);
}

/* ---- driver ----------------------------------------------------------- */

int tl_concrete_dims(const tl_graph *g, const tl_type *t, const int64_t *syms, int64_t *dims,
                     char *err, size_t err_size) {
  for (int i = 0; i < t->rank; i++) {
    int64_t d = t->dims[i];
    if (tl_dim_is_sym(d)) {
      int s = tl_dim_sym_id(d);
      int64_t v = syms ? tl_dim_value(g, d, syms) : -1;
      if (v < 0) {
        snprintf(err, err_size, "symbolic dim '%s' has no size (bind it with --dim %s=SIZE or an input)",
                 g->syms[s], g->syms[s]);
        return -1;
      }
      d = v;
    }
    dims[i] = d;
  }
  return 0;
}

int tl_bind_inputs(const tl_graph *g, tl_tensor *const *inputs, int64_t *syms, char *err,
                   size_t err_size) {
  for (int i = 0; i < g->ninputs; i++) {
    const tl_tensor *x = inputs[i];
    if (!x) continue;
    const tl_node *n = &g->nodes[g->inputs[i]];
    const char *name = g->names[n->name];
    char want[160]; /* the expected type, formatted only for a message (this runs every call) */
#define WANT() tl_type_str(g, &n->type, want, sizeof want)
    if (x->dtype != n->type.dtype) {
      WANT();
      snprintf(err, err_size, "input '%s': expected %s, got dtype %s", name, want,
               tl_dtype_name((tl_dtype)x->dtype));
      return -1;
    }
    if (x->rank != n->type.rank) {
      WANT();
      snprintf(err, err_size, "input '%s': expected %s, got rank %d", name, want, x->rank);
      return -1;
    }
    for (int k = 0; k < x->rank; k++) {
      int64_t d = n->type.dims[k];
      if (tl_dim_is_sym(d)) {
        int s = tl_dim_sym_id(d);
        if (tl_sym_derived(g, s)) continue; /* checked once the base symbols are bound */
        if (syms[s] >= 0 && syms[s] != x->dims[k]) {
          snprintf(err, err_size, "input '%s': dim %d ('%s') is %lld, but '%s' is already %lld",
                   name, k, g->syms[s], (long long)x->dims[k], g->syms[s], (long long)syms[s]);
          return -1;
        }
        syms[s] = x->dims[k];
      } else if (d != x->dims[k]) {
        WANT();
        snprintf(err, err_size, "input '%s': expected %s, dim %d is %lld", name, want, k,
                 (long long)x->dims[k]);
        return -1;
      }
    }
#undef WANT
  }
  if (tl_syms_eval(g, syms, err, err_size)) return -1;
  for (int i = 0; i < g->ninputs; i++) {
    const tl_tensor *x = inputs[i];
    if (!x) continue;
    const tl_node *n = &g->nodes[g->inputs[i]];
    for (int k = 0; k < x->rank; k++) {
      int64_t d = n->type.dims[k];
      if (!tl_dim_is_sym(d) || !tl_sym_derived(g, tl_dim_sym_id(d))) continue;
      int s = tl_dim_sym_id(d);
      if (syms[s] < 0) {
        snprintf(err, err_size, "input '%s': dim %d is '%s', and no input binds what it is computed from "
                 "by a dim of its own", g->names[n->name], k, g->syms[s]);
        return -1;
      }
      if (syms[s] != x->dims[k]) {
        snprintf(err, err_size, "input '%s': dim %d ('%s') is %lld, but '%s' is %lld", g->names[n->name], k,
                 g->syms[s], (long long)x->dims[k], g->syms[s], (long long)syms[s]);
        return -1;
      }
    }
  }
  return 0;
}

/* splitmix64: small, seedable, good enough for test inputs */
static uint64_t rnd_next(uint64_t *s) {
  uint64_t z = (*s += 0x9e3779b97f4a7c15ULL);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}

static double rnd_normal(uint64_t *s) {
  double u1 = ((double)(rnd_next(s) >> 11) + 0.5) / 9007199254740992.0;
  double u2 = (double)(rnd_next(s) >> 11) / 9007199254740992.0;
  return sqrt(-2.0 * log(u1)) * cos(2.0 * M_PI * u2);
}

int tl_random_inputs(const tl_graph *g, tl_tensor **inputs, const int64_t *syms, uint64_t seed,
                     char *err, size_t err_size) {
  uint64_t s = seed;
  for (int i = 0; i < g->ninputs; i++) {
    if (inputs[i]) continue;
    const tl_node *n = &g->nodes[g->inputs[i]];
    int64_t dims[TL_MAX_RANK];
    char e2[256];
    if (tl_concrete_dims(g, &n->type, syms, dims, e2, sizeof e2)) {
      snprintf(err, err_size, "input '%s': %s", g->names[n->name], e2);
      return -1;
    }
    tl_tensor *t = tl_tensor_new((tl_dtype)n->type.dtype, n->type.rank, dims, e2, sizeof e2);
    if (!t) {
      snprintf(err, err_size, "input '%s': %s", g->names[n->name], e2);
      return -1;
    }
    for (int64_t k = 0; k < t->numel; k++) {
      if (tl_dtype_is_float((tl_dtype)t->dtype)) tl_tensor_set_f64(t, k, rnd_normal(&s));
      else if (t->dtype == TL_BOOL) tl_tensor_set_i64(t, k, (int64_t)(rnd_next(&s) & 1));
      else tl_tensor_set_i64(t, k, (int64_t)(rnd_next(&s) % 3));
    }
    inputs[i] = t;
  }
  return 0;
}

/* Runs one node's kernel into a new tensor of type t (dims concrete). */
static int eval_node(const tl_node *n, const tl_tensor *const *args, const tl_type *const *types,
                     const int64_t *dims, tl_tensor **res, char *err, size_t err_size) {
  rctx c = {args, types, tl_ops[n->op].name, n->loc, err, err_size, false};
  char e2[256];
  *res = NULL;
  tl_tensor *out = tl_tensor_new((tl_dtype)n->type.dtype, n->type.rank, dims, e2, sizeof e2);
  if (!out) return rfail(&c, "%s", e2);
  if (kernel_for(n->op)(&c, n, out)) {
    tl_tensor_free(out);
    return -1;
  }
  *res = out;
  return 0;
}

int tl_interp_eval(int op, const tl_attrs *attrs, const tl_tensor *const *args,
                   const tl_type *const *types, int nargs, const tl_type *out_type,
                   tl_tensor **out, char *err, size_t err_size) {
  tl_node n;
  memset(&n, 0, sizeof n);
  n.op = (uint16_t)op;
  n.ninputs = (uint16_t)nargs;
  n.attrs = *attrs;
  n.type = *out_type;
  if (tl_ops[op].kind == TL_KIND_CONTROL || !kernel_for(op)) {
    snprintf(err, err_size, "%s: runs functions of a graph, not evaluated alone", tl_ops[op].name);
    return -1;
  }
  for (int i = 0; i < out_type->rank; i++)
    if (tl_dim_is_sym(out_type->dims[i])) {
      snprintf(err, err_size, "%s: result shape is symbolic", tl_ops[op].name);
      return -1;
    }
  return eval_node(&n, args, types, out_type->dims, out, err, err_size);
}

/* The interpreter's runner for control nodes: function fn of the table
 * of graph ctx, bound to its arguments and interpreted. */
static int interp_fn(void *ctx, int32_t fn, tl_tensor *const *in, tl_tensor **out, char *err, size_t n) {
  const tl_graph *f = ((const tl_graph *)ctx)->fns->fn[fn];
  int64_t *syms = tl_xmalloc(((size_t)f->nsyms + 1) * sizeof *syms);
  for (int s = 0; s < f->nsyms; s++) syms[s] = -1;
  char e2[1024];
  int rc = tl_bind_inputs(f, in, syms, e2, sizeof e2);
  if (!rc) rc = tl_interp_run(f, in, syms, out, e2, sizeof e2);
  if (rc) snprintf(err, n, "in function '%s': %s", f->name, e2);
  tl_free(syms);
  return rc;
}

/* Runs control node id; its results go to vals[id] and to every live
 * node later in g that is a result of the same run (done[] marks them). */
static int run_control(const tl_graph *g, int32_t id, const tl_tensor *const *args, const bool *live, bool *done,
                       tl_tensor **vals, int64_t *syms, char *err, size_t n) {
  const tl_node *x = &g->nodes[id];
  int nres = tl_control_nresults(g, x);
  tl_tensor **res = tl_xcalloc((size_t)nres + 1, sizeof *res);
  tl_ctl_runner r = {(void *)g, interp_fn, NULL, NULL, NULL, syms};
  int rc = tl_control_run(g, x, (tl_tensor *const *)args, res, &r, err, n);
  if (rc == 0 && tl_control_bind_trips(g, x, res, syms, err, n)) {
    for (int i = 0; i < nres; i++) tl_tensor_free(res[i]);
    rc = -1;
  }
  if (rc == 0) {
    vals[id] = res[x->attrs.out];
    res[x->attrs.out] = NULL;
    for (int32_t j = id + 1; j < g->nnodes; j++)
      if (live[j] && tl_control_same_run(g, id, j)) {
        vals[j] = res[g->nodes[j].attrs.out];
        res[g->nodes[j].attrs.out] = NULL;
        done[j] = true;
      }
    for (int i = 0; i < nres; i++) tl_tensor_free(res[i]);
  }
  tl_free(res);
  return rc;
}

int tl_interp_run(const tl_graph *g, tl_tensor *const *inputs, const int64_t *bound,
                  tl_tensor **outputs, char *err, size_t err_size) {
  int32_t nn = g->nnodes;
  /* a loop with :stack binds its :trips symbol when it has run */
  int64_t *syms = tl_xmalloc(((size_t)g->nsyms + 1) * sizeof *syms);
  for (int s = 0; s < g->nsyms; s++) syms[s] = bound ? bound[s] : -1;
  rctx c = {NULL, NULL, "interp", {0, 0}, err, err_size, false};
  tl_tensor **vals = tl_xcalloc((size_t)nn + 1, sizeof(tl_tensor *));
  int32_t *uses = tl_xcalloc((size_t)nn + 1, sizeof *uses);
  bool *live = tl_xcalloc((size_t)nn + 1, sizeof *live);
  bool *borrowed = tl_xcalloc((size_t)nn + 1, sizeof *borrowed);
  bool *done = tl_xcalloc((size_t)nn + 1, sizeof *done); /* control results already computed */
  for (int i = 0; i < g->noutputs; i++) {
    live[g->outputs[i].node] = true;
    uses[g->outputs[i].node]++;
    outputs[i] = NULL;
  }
  for (int32_t id = nn - 1; id >= 0; id--) {
    if (!live[id]) continue;
    const tl_node *n = &g->nodes[id];
    for (int k = 0; k < n->ninputs; k++) {
      live[tl_node_inputs(g, n)[k]] = true;
      uses[tl_node_inputs(g, n)[k]]++;
    }
  }
  for (int i = 0; i < g->ninputs; i++) {
    vals[g->inputs[i]] = inputs[i];
    borrowed[g->inputs[i]] = true;
  }
  const tl_tensor **args = tl_xcalloc(TL_GRAPH_MAX_ARGS, sizeof *args);
  const tl_type **types = tl_xcalloc(TL_GRAPH_MAX_ARGS, sizeof *types);
  int rc = 0;
  for (int32_t id = 0; id < nn && rc == 0; id++) {
    const tl_node *n = &g->nodes[id];
    if (!live[id] || n->op == TL_OP_INPUT) continue;
    c.opname = tl_ops[n->op].name;
    c.loc = n->loc;
    int64_t dims[TL_MAX_RANK];
    char e2[256];
    /* a control run's results are sized by the run */
    if (tl_ops[n->op].kind != TL_KIND_CONTROL && tl_concrete_dims(g, &n->type, syms, dims, e2, sizeof e2)) {
      rc = rfail(&c, "%s", e2);
      break;
    }
    for (int k = 0; k < n->ninputs; k++) {
      int32_t x = tl_node_inputs(g, n)[k];
      args[k] = vals[x];
      types[k] = &g->nodes[x].type;
    }
    if (n->op == TL_OP_CONST) args[0] = g->lits[n->attrs.lit];
    if (tl_ops[n->op].kind == TL_KIND_CONTROL) {
      if (!done[id]) rc = run_control(g, id, args, live, done, vals, syms, err, err_size);
      if (rc) break;
    } else {
      tl_tensor *out;
      rc = eval_node(n, args, types, dims, &out, err, err_size);
      if (rc) break;
      vals[id] = out;
    }
    for (int k = 0; k < n->ninputs; k++) {
      int32_t x = tl_node_inputs(g, n)[k];
      if (--uses[x] == 0 && !borrowed[x]) {
        tl_tensor_free(vals[x]);
        vals[x] = NULL;
      }
    }
  }
  tl_free(args);
  tl_free(types);
  if (rc == 0) {
    for (int i = 0; i < g->noutputs; i++) {
      int32_t x = g->outputs[i].node;
      /* hand each output its own tensor: copy inputs and repeats */
      if (borrowed[x] || --uses[x] > 0) {
        outputs[i] = tl_tensor_copy(vals[x]);
      } else {
        outputs[i] = vals[x];
        vals[x] = NULL;
      }
    }
  }
  for (int32_t id = 0; id < nn; id++)
    if (!borrowed[id]) tl_tensor_free(vals[id]);
  tl_free(vals);
  tl_free(uses);
  tl_free(live);
  tl_free(borrowed);
  tl_free(done);
  tl_free(syms);
  return rc;
}
