/* gk_build.c - the values inside a kernel, and the elementwise and
 * take-check kernels (gb.h).
 *
 * Values are built as backend/lower_expr.c builds them for the CPU, with
 * the same semantics operation by operation (NaN propagation, stable
 * sigmoid/softplus, integer wrapping, x // 0 == 0, x86 float-to-int
 * conversion); gb_ex evaluates a node at an index vector through the
 * index maps of the shape ops. Two things differ on purpose:
 *   - a take index out of range is clamped after the error is recorded:
 *     the GPU runs every kernel of a program and checks the error word at
 *     the end, so a later kernel must not read outside its buffers;
 *   - floating remainder is libdevice's fmod (LLVM lowers frem for NVPTX
 *     as x - y * trunc(x / y), which is not fmod).
 *
 * An elementwise kernel is a grid-stride loop over its output elements.
 * When its loops merge into one (be_ew_loops: every access either follows
 * the output's layout or does not move), each thread takes four adjacent
 * elements per iteration: the loads at the run's first element are marked
 * aligned, so LLVM's load/store vectoriser makes one 16-byte access of
 * each four (the emulator checks the alignment claim); a scalar loop takes
 * the remainder. Otherwise the linear index is split into one index per
 * merged group of dims. */
#include "gpu/gb.h"

#include "util/util.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

void gb_fail(gb *b, const char *fmt, ...) {
  if (b->failed) return;
  b->failed = 1;
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(b->err, b->errn, fmt, ap);
  va_end(ap);
}

static bool isf(int dt) { return dt == TL_F32 || dt == TL_F64; }

int32_t gb_dim(gb *b, int64_t d) { return d >= 0 ? gk_i64(b->k, d) : gk_sym(b->k, tl_dim_sym_id(d)); }

void gb_strides(gb *b, int rank, const int64_t *dims, int32_t *st) {
  int32_t s = gk_i64(b->k, 1);
  for (int i = rank - 1; i >= 0; i--) {
    st[i] = s;
    s = gk_mul(b->k, s, gb_dim(b, dims[i]));
  }
}

int32_t gb_offset(gb *b, int rank, const int32_t *st, const int32_t *idx) {
  int32_t off = gk_i64(b->k, 0);
  for (int i = 0; i < rank; i++) off = gk_add(b->k, off, gk_mul(b->k, idx[i], st[i]));
  return off;
}

void gb_decompose(gb *b, int32_t lin, int nd, const int32_t *dims, int32_t *idx) {
  for (int i = nd - 1; i > 0; i--) {
    idx[i] = gk_bin_v(b->k, GK_SREM, lin, dims[i]);
    lin = gk_bin_v(b->k, GK_SDIV, lin, dims[i]);
  }
  if (nd > 0) idx[0] = lin;
}

int32_t gb_gtid(gb *b) {
  gk_kernel *k = b->k;
  return gk_add(k, gk_mul(k, gk_sreg_v(k, GK_CTAID), gk_sreg_v(k, GK_NTID)), gk_sreg_v(k, GK_TID));
}

int32_t gb_gstride(gb *b) { return gk_mul(b->k, gk_sreg_v(b->k, GK_NCTAID), gk_sreg_v(b->k, GK_NTID)); }

void gb_set_err(gb *b, int kind) { gk_err(b->k, ((int64_t)b->knode << 4) | kind); }

/* ---- scalars --------------------------------------------------------------- */

static int32_t cf(gb *b, int dt, double v) { return gk_cf(b->k, gk_ty_of_dtype(dt), v); }
static int32_t fcmp(gb *b, gk_fcmp p, int32_t x, int32_t y) { return gk_fcmp_v(b->k, p, x, y); }
static int32_t icmp(gb *b, gk_icmp p, int32_t x, int32_t y) { return gk_icmp_v(b->k, p, x, y); }
static int32_t sel(gb *b, int32_t c, int32_t x, int32_t y) { return gk_select(b->k, c, x, y); }
static int32_t fbin(gb *b, gk_bin op, int32_t x, int32_t y) { return gk_bin_v(b->k, op, x, y); }
static int32_t intr1(gb *b, gk_intr f, int32_t x) { return gk_intr_v(b->k, f, x, -1, -1); }
static int32_t intr2(gb *b, gk_intr f, int32_t x, int32_t y) { return gk_intr_v(b->k, f, x, y, -1); }

static int32_t truthy(gb *b, int32_t v, int dt) {
  if (dt == TL_BOOL) return v;
  if (isf(dt)) return fcmp(b, GK_FUNE, v, cf(b, dt, 0));
  return icmp(b, GK_INE, v, gk_ci(b->k, gk_ty_of_dtype(dt), 0));
}

/* x86 cvttsd2si: NaN and out-of-range give the most negative integer */
static int32_t f2i(gb *b, int32_t v, int from, int to) {
  gk_kernel *k = b->k;
  int32_t d = from == TL_F32 ? gk_conv_v(k, GK_FPEXT, v, GK_F64) : v;
  double lo = to == TL_I32 ? -2147483649.0 : -9223372036854775808.0;
  double hi = to == TL_I32 ? 2147483648.0 : 9223372036854775808.0;
  int32_t ok = gk_bin_v(k, GK_AND, fcmp(b, to == TL_I32 ? GK_FOGT : GK_FOGE, d, gk_cf(k, GK_F64, lo)),
                        fcmp(b, GK_FOLT, d, gk_cf(k, GK_F64, hi)));
  int32_t safe = sel(b, ok, d, gk_cf(k, GK_F64, 0));
  int32_t r = gk_conv_v(k, GK_FPTOSI, safe, gk_ty_of_dtype(to));
  return sel(b, ok, r, gk_ci(k, gk_ty_of_dtype(to), to == TL_I32 ? INT32_MIN : INT64_MIN));
}

int32_t gb_conv(gb *b, int32_t v, int from, int to) {
  gk_kernel *k = b->k;
  if (from == to) return v;
  if (to == TL_BOOL) return truthy(b, v, from);
  gk_ty t = gk_ty_of_dtype(to);
  if (from == TL_BOOL) return gk_conv_v(k, isf(to) ? GK_UITOFP : GK_ZEXT, v, t);
  if (isf(from)) {
    if (isf(to)) return gk_conv_v(k, to == TL_F64 ? GK_FPEXT : GK_FPTRUNC, v, t);
    return f2i(b, v, from, to);
  }
  if (isf(to)) {
    if (from == TL_I64 && to == TL_F32) /* through double, as the interpreter */
      return gk_conv_v(k, GK_FPTRUNC, gk_conv_v(k, GK_SITOFP, v, GK_F64), t);
    return gk_conv_v(k, GK_SITOFP, v, t);
  }
  return gk_conv_v(k, to == TL_I64 ? GK_SEXT : GK_TRUNC, v, t);
}

static int32_t f_sign(gb *b, int dt, int32_t x) {
  int32_t z = cf(b, dt, 0);
  return sel(b, fcmp(b, GK_FOGT, x, z), cf(b, dt, 1),
             sel(b, fcmp(b, GK_FOLT, x, z), cf(b, dt, -1), sel(b, fcmp(b, GK_FOEQ, x, z), z, x)));
}

/* log1p(exp(-|x|)) */
static int32_t log1pexp_neg_abs(gb *b, int dt, int32_t x) {
  return gb_math(b, GK_LOG1P, dt, gb_math(b, GK_EXP, dt, gk_fneg(b->k, intr1(b, GK_FABS, x)), -1), -1);
}

static void fdivmod(gb *b, int dt, int32_t a, int32_t y, int32_t *div, int32_t *mod) {
  gk_kernel *k = b->k;
  int32_t z = cf(b, dt, 0), one = cf(b, dt, 1);
  int32_t m0 = gb_math(b, GK_FMOD, dt, a, y);
  int32_t q = fbin(b, GK_FDIV, a, y);
  int32_t div0 = fbin(b, GK_FDIV, fbin(b, GK_FSUB, a, m0), y);
  int32_t mnz = fcmp(b, GK_FUNE, m0, z);
  int32_t sd = gk_bin_v(k, GK_XOR, fcmp(b, GK_FOLT, y, z), fcmp(b, GK_FOLT, m0, z));
  int32_t adj = gk_bin_v(k, GK_AND, mnz, sd);
  int32_t m1 = sel(b, adj, fbin(b, GK_FADD, m0, y), m0);
  int32_t div1 = sel(b, adj, fbin(b, GK_FSUB, div0, one), div0);
  int32_t m2 = sel(b, mnz, m1, intr2(b, GK_COPYSIGN, z, y));
  int32_t fd0 = intr1(b, GK_FLOOR, div1);
  int32_t fd1 = sel(b, fcmp(b, GK_FOGT, fbin(b, GK_FSUB, div1, fd0), cf(b, dt, 0.5)), fbin(b, GK_FADD, fd0, one), fd0);
  int32_t fd = sel(b, fcmp(b, GK_FUNE, div1, z), fd1, intr2(b, GK_COPYSIGN, z, q));
  int32_t bz = fcmp(b, GK_FOEQ, y, z);
  *div = sel(b, bz, q, fd);
  *mod = sel(b, bz, m0, m2);
}

/* a ** e for integers by square and multiply over the bits of e (a
 * negative e records the error and gives 1, as on the CPU) */
static int32_t ipow(gb *b, int32_t a, int32_t e) {
  gk_kernel *k = b->k;
  gk_ty t = gk_type(k, a);
  int32_t z = gk_ci(k, t, 0), one = gk_ci(k, t, 1);
  gk_if(k, icmp(b, GK_ISLT, e, z));
  gb_set_err(b, BE_ERR_POW);
  gk_end(k);
  int32_t r = gk_var(k, t), base = gk_var(k, t), ex = gk_var(k, t), it = gk_var(k, GK_I64);
  gk_set(k, r, one);
  gk_set(k, base, a);
  gk_set(k, ex, sel(b, icmp(b, GK_ISLT, e, z), z, e));
  gk_loop(k, it, gk_i64(k, 0), gk_i64(k, t == GK_I32 ? 31 : 63), gk_i64(k, 1));
  int32_t rv = gk_get(k, r), bv = gk_get(k, base), ev = gk_get(k, ex);
  int32_t bit = icmp(b, GK_INE, gk_bin_v(k, GK_AND, ev, one), z);
  gk_set(k, r, sel(b, bit, gk_mul(k, rv, bv), rv));
  gk_set(k, base, gk_mul(k, bv, bv));
  gk_set(k, ex, gk_bin_v(k, GK_ASHR, ev, one));
  gk_end(k);
  return gk_get(k, r);
}

static int32_t f_unary(gb *b, int op, int dt, int32_t x) {
  gk_kernel *k = b->k;
  switch (op) {
  case TL_OP_NEG: return gk_fneg(k, x);
  case TL_OP_ABS: return intr1(b, GK_FABS, x);
  case TL_OP_SIGN: return f_sign(b, dt, x);
  case TL_OP_SQRT: return intr1(b, GK_SQRT, x);
  case TL_OP_FLOOR: return intr1(b, GK_FLOOR, x);
  case TL_OP_CEIL: return intr1(b, GK_CEIL, x);
  case TL_OP_RECIPROCAL: return fbin(b, GK_FDIV, cf(b, dt, 1), x);
  /* as the interpreter: NaN stays, -0 and below become +0 */
  case TL_OP_RELU: return sel(b, fcmp(b, GK_FOLE, x, cf(b, dt, 0)), cf(b, dt, 0), x);
  case TL_OP_SIGMOID: {
    int32_t en = gb_math(b, GK_EXP, dt, gk_fneg(k, intr1(b, GK_FABS, x)), -1);
    int32_t d = fbin(b, GK_FADD, cf(b, dt, 1), en);
    return sel(b, fcmp(b, GK_FOGE, x, cf(b, dt, 0)), fbin(b, GK_FDIV, cf(b, dt, 1), d), fbin(b, GK_FDIV, en, d));
  }
  case TL_OP_SOFTPLUS: {
    int32_t r = fbin(b, GK_FADD, intr2(b, GK_MAXNUM, x, cf(b, dt, 0)), log1pexp_neg_abs(b, dt, x));
    return sel(b, fcmp(b, GK_FUNO, x, x), x, r);
  }
  case TL_OP_LOG1MEXP: {
    int32_t a = gb_math(b, GK_LOG, dt, gk_fneg(k, gb_math(b, GK_EXPM1, dt, x, -1)), -1);
    int32_t c = gb_math(b, GK_LOG1P, dt, gk_fneg(k, gb_math(b, GK_EXP, dt, x, -1)), -1);
    int32_t r = sel(b, fcmp(b, GK_FOGT, x, cf(b, dt, -M_LN2)), a, c);
    return sel(b, fcmp(b, GK_FOGT, x, cf(b, dt, 0)), cf(b, dt, NAN), r);
  }
  default: {
    int f = tl_ops[op].math && tl_ops[op].ref1 ? gk_math_lookup(tl_ops[op].math) : -1;
    return f >= 0 ? gb_math(b, (gk_math)f, dt, x, -1) : -1;
  }
  }
}

static int32_t f_binary(gb *b, int op, int dt, int32_t x, int32_t y) {
  int32_t d, m;
  switch (op) {
  case TL_OP_ADD: return fbin(b, GK_FADD, x, y);
  case TL_OP_SUB: return fbin(b, GK_FSUB, x, y);
  case TL_OP_MUL: return fbin(b, GK_FMUL, x, y);
  case TL_OP_DIV: return fbin(b, GK_FDIV, x, y);
  case TL_OP_FLOOR_DIVIDE: fdivmod(b, dt, x, y, &d, &m); return d;
  case TL_OP_REMAINDER: fdivmod(b, dt, x, y, &d, &m); return m;
  case TL_OP_MAXIMUM: return intr2(b, GK_MAXIMUM, x, y);
  case TL_OP_MINIMUM: return intr2(b, GK_MINIMUM, x, y);
  case TL_OP_LOGADDEXP: {
    int32_t mx = intr2(b, GK_MAXNUM, x, y);
    int32_t r = fbin(b, GK_FADD, mx, log1pexp_neg_abs(b, dt, fbin(b, GK_FSUB, x, y)));
    r = sel(b, fcmp(b, GK_FUNO, x, y), cf(b, dt, NAN), r);
    return sel(b, fcmp(b, GK_FOEQ, x, y), fbin(b, GK_FADD, x, cf(b, dt, M_LN2)), r);
  }
  case TL_OP_XLOGY: {
    int32_t r = fbin(b, GK_FMUL, x, gb_math(b, GK_LOG, dt, y, -1));
    int32_t z = gk_bin_v(b->k, GK_AND, fcmp(b, GK_FOEQ, x, cf(b, dt, 0)), fcmp(b, GK_FORD, y, y));
    return sel(b, z, cf(b, dt, 0), r);
  }
  default: {
    int f = tl_ops[op].math && tl_ops[op].ref2 ? gk_math_lookup(tl_ops[op].math) : -1;
    return f >= 0 ? gb_math(b, (gk_math)f, dt, x, y) : -1;
  }
  }
}

static int32_t i_op(gb *b, int op, int32_t x, int32_t y) {
  gk_kernel *k = b->k;
  gk_ty t = gk_type(k, x);
  int32_t z = gk_ci(k, t, 0), one = gk_ci(k, t, 1), m1 = gk_ci(k, t, -1);
  switch (op) {
  case TL_OP_NEG: return gk_bin_v(k, GK_SUB, z, x);
  case TL_OP_ABS: return sel(b, icmp(b, GK_ISLT, x, z), gk_bin_v(k, GK_SUB, z, x), x);
  case TL_OP_SIGN: return sel(b, icmp(b, GK_ISGT, x, z), one, sel(b, icmp(b, GK_ISLT, x, z), m1, z));
  case TL_OP_RELU: return sel(b, icmp(b, GK_ISGT, x, z), x, z);
  case TL_OP_ADD: return gk_bin_v(k, GK_ADD, x, y);
  case TL_OP_SUB: return gk_bin_v(k, GK_SUB, x, y);
  case TL_OP_MUL: return gk_bin_v(k, GK_MUL, x, y);
  case TL_OP_MAXIMUM: return sel(b, icmp(b, GK_ISGT, x, y), x, y);
  case TL_OP_MINIMUM: return sel(b, icmp(b, GK_ISLT, x, y), x, y);
  case TL_OP_POW: return ipow(b, x, y);
  case TL_OP_FLOOR_DIVIDE: case TL_OP_REMAINDER: {
    int32_t y0 = icmp(b, GK_IEQ, y, z), ym = icmp(b, GK_IEQ, y, m1);
    int32_t ys = sel(b, gk_bin_v(k, GK_OR, y0, ym), one, y);
    int32_t r = gk_bin_v(k, GK_SREM, x, ys);
    if (op == TL_OP_FLOOR_DIVIDE) {
      int32_t q = gk_bin_v(k, GK_SDIV, x, ys);
      int32_t adj = gk_bin_v(k, GK_AND, icmp(b, GK_INE, r, z),
                             gk_bin_v(k, GK_XOR, icmp(b, GK_ISLT, x, z), icmp(b, GK_ISLT, y, z)));
      q = gk_bin_v(k, GK_SUB, q, gk_conv_v(k, GK_ZEXT, adj, t));
      return sel(b, y0, z, sel(b, ym, gk_bin_v(k, GK_SUB, z, x), q));
    }
    int32_t adj = gk_bin_v(k, GK_AND, icmp(b, GK_INE, r, z),
                           gk_bin_v(k, GK_XOR, icmp(b, GK_ISLT, r, z), icmp(b, GK_ISLT, y, z)));
    r = sel(b, adj, gk_bin_v(k, GK_ADD, r, y), r);
    return sel(b, gk_bin_v(k, GK_OR, y0, ym), z, r);
  }
  default: return -1;
  }
}

/* ---- expressions ------------------------------------------------------------ */

static int32_t load_at(gb *b, int32_t bi, int dt, int32_t off) { return gk_load(b->k, bi, dt, off); }

static int32_t lit_value(gb *b, const tl_node *n) {
  int dt = n->type.dtype;
  bool one = n->op == TL_OP_ONES_LIKE;
  if (n->op == TL_OP_ZEROS_LIKE || one) return isf(dt) ? cf(b, dt, one) : gk_ci(b->k, gk_ty_of_dtype(dt), one);
  if (isf(dt)) {
    double v = n->attrs.is_int ? (double)n->attrs.i : n->attrs.f;
    return cf(b, dt, dt == TL_F32 ? (double)(float)v : v);
  }
  int64_t v = n->attrs.is_int ? n->attrs.i : tl_f64_to_i64(n->attrs.f);
  return gk_ci(b->k, gk_ty_of_dtype(dt), dt == TL_BOOL ? v != 0 : v);
}

/* Index of operand x of a broadcasting op of type ot. */
static void bcast_idx(gb *b, const tl_type *xt, const tl_type *ot, const int32_t *idx, int32_t *xi) {
  int src[TL_MAX_RANK];
  tl_broadcast_src_axes(xt, ot, src);
  for (int j = 0; j < xt->rank; j++) xi[j] = src[j] < 0 ? gk_i64(b->k, 0) : idx[src[j]];
}

/* Python slice start for a dim of length len. */
static int32_t slice_start(gb *b, const tl_attrs *a, int32_t len) {
  gk_kernel *k = b->k;
  int64_t step = (a->present & TL_A_STEP) ? a->step : 1;
  int32_t zero = gk_i64(k, 0);
  if (step > 0) {
    if (!(a->present & TL_A_START)) return zero;
    int64_t s = a->start;
    if (s < 0) {
      int32_t v = gk_add(k, gk_i64(k, s), len);
      return sel(b, icmp(b, GK_ISLT, v, zero), zero, v);
    }
    return sel(b, icmp(b, GK_ISGT, gk_i64(k, s), len), len, gk_i64(k, s));
  }
  int32_t lm1 = gk_bin_v(k, GK_SUB, len, gk_i64(k, 1));
  if (!(a->present & TL_A_START)) return lm1;
  int64_t s = a->start;
  if (s < 0) {
    int32_t v = gk_add(k, gk_i64(k, s), len);
    return sel(b, icmp(b, GK_ISLT, v, zero), gk_i64(k, -1), v);
  }
  return sel(b, icmp(b, GK_ISGE, gk_i64(k, s), len), lm1, gk_i64(k, s));
}

static int32_t ex_elemwise(gb *b, int32_t id, const int32_t *idx) {
  const tl_graph *g = b->g;
  const tl_node *n = &g->nodes[id];
  const int32_t *in = tl_node_inputs(g, n);
  int op = n->op, nin = n->ninputs, odt = n->type.dtype;
  int32_t v[3] = {0};
  int dts[3] = {0};
  const tl_type *ts[3] = {0};
  for (int q = 0; q < nin; q++) {
    int32_t xi[TL_MAX_RANK];
    ts[q] = &g->nodes[in[q]].type;
    bcast_idx(b, ts[q], &n->type, idx, xi);
    v[q] = gb_ex(b, in[q], xi);
    dts[q] = ts[q]->dtype;
  }
  gk_kernel *k = b->k;
  switch (op) {
  case TL_OP_NOT: return gk_bin_v(k, GK_XOR, truthy(b, v[0], dts[0]), gk_ci(k, GK_I1, 1));
  case TL_OP_AND: return gk_bin_v(k, GK_AND, truthy(b, v[0], dts[0]), truthy(b, v[1], dts[1]));
  case TL_OP_OR: return gk_bin_v(k, GK_OR, truthy(b, v[0], dts[0]), truthy(b, v[1], dts[1]));
  case TL_OP_BITWISE_XOR: return gk_bin_v(k, GK_XOR, gb_conv(b, v[0], dts[0], odt), gb_conv(b, v[1], dts[1], odt));
  case TL_OP_WHERE: return sel(b, truthy(b, v[0], dts[0]), gb_conv(b, v[1], dts[1], odt), gb_conv(b, v[2], dts[2], odt));
  case TL_OP_CAST: return gb_conv(b, v[0], dts[0], odt);
  default: break;
  }
  uint8_t ct = (uint8_t)odt, weak;
  if (tl_ops[op].dtype_rule == TL_DR_CMP) tl_promote(ts, nin, &ct, &weak);
  for (int q = 0; q < nin; q++) v[q] = gb_conv(b, v[q], dts[q], ct);
  if (tl_ops[op].dtype_rule == TL_DR_CMP) {
    static const gk_fcmp fp[] = {GK_FOEQ, GK_FUNE, GK_FOLT, GK_FOLE, GK_FOGT, GK_FOGE};
    static const gk_icmp ip[] = {GK_IEQ, GK_INE, GK_ISLT, GK_ISLE, GK_ISGT, GK_ISGE};
    int q = op - TL_OP_EQ;
    if (isf(ct)) return fcmp(b, fp[q], v[0], v[1]);
    if (ct == TL_BOOL) { /* as unsigned bytes */
      v[0] = gk_conv_v(k, GK_ZEXT, v[0], GK_I32);
      v[1] = gk_conv_v(k, GK_ZEXT, v[1], GK_I32);
    }
    return icmp(b, ip[q], v[0], v[1]);
  }
  int32_t r = -1;
  if (isf(ct)) r = nin == 1 ? f_unary(b, op, ct, v[0]) : f_binary(b, op, ct, v[0], v[1]);
  else if (ct == TL_BOOL) {
    if (op == TL_OP_ABS) r = v[0];
    else if (op == TL_OP_ADD || op == TL_OP_MAXIMUM) r = gk_bin_v(k, GK_OR, v[0], v[1]);
    else if (op == TL_OP_MUL || op == TL_OP_MINIMUM) r = gk_bin_v(k, GK_AND, v[0], v[1]);
  } else r = i_op(b, op, v[0], nin > 1 ? v[1] : -1);
  if (r < 0) {
    gb_fail(b, "gpu: op %s on dtype %s is not supported", tl_ops[op].name, tl_dtype_name((tl_dtype)ct));
    r = gk_ci(k, gk_ty_of_dtype(odt), 0);
  }
  return r;
}

int32_t gb_ex(gb *b, int32_t id, const int32_t *idx) {
  const tl_node *n = &b->g->nodes[id];
  const be_plan *p = b->p;
  if (p->state[id] == BE_S_MAT || p->state[id] == BE_S_ALIAS) {
    int32_t st[TL_MAX_RANK];
    gb_strides(b, n->type.rank, n->type.dims, st);
    return load_at(b, p->buf_of[id], n->type.dtype, gb_offset(b, n->type.rank, st, idx));
  }
  return gb_ex_def(b, id, idx);
}

int32_t gb_ex_def(gb *b, int32_t id, const int32_t *idx) {
  const tl_graph *g = b->g;
  const tl_node *n = &g->nodes[id];
  const int32_t *in = tl_node_inputs(g, n);
  const be_plan *p = b->p;
  gk_kernel *k = b->k;
  const tl_type *xt = n->ninputs ? &g->nodes[in[0]].type : NULL;
  int32_t xi[TL_MAX_RANK];
  int src[TL_MAX_RANK];
  if (tl_view_src_axes(g, n, src)) {
    for (int i = 0; i < xt->rank; i++) xi[i] = src[i] < 0 ? gk_i64(k, 0) : idx[src[i]];
    return gb_ex(b, in[0], xi);
  }
  switch (n->op) {
  case TL_OP_LIT: case TL_OP_FILL: case TL_OP_ZEROS_LIKE: case TL_OP_ONES_LIKE:
    return lit_value(b, n);
  case TL_OP_DIM: {
    int ax = n->attrs.axes[0] < 0 ? n->attrs.axes[0] + xt->rank : n->attrs.axes[0];
    return gb_dim(b, xt->dims[ax]);
  }
  case TL_OP_IOTA:
    return idx[n->attrs.axes[0] < 0 ? n->attrs.axes[0] + xt->rank : n->attrs.axes[0]];
  case TL_OP_SLICE: {
    int ax = (n->attrs.present & TL_A_AXIS) ? n->attrs.axes[0] : 0;
    if (ax < 0) ax += xt->rank;
    int64_t step = (n->attrs.present & TL_A_STEP) ? n->attrs.step : 1;
    int32_t start = slice_start(b, &n->attrs, gb_dim(b, xt->dims[ax]));
    for (int i = 0; i < xt->rank; i++) xi[i] = idx[i];
    xi[ax] = gk_add(k, start, gk_mul(k, idx[ax], gk_i64(k, step)));
    return gb_ex(b, in[0], xi);
  }
  case TL_OP_TAKE: {
    const tl_type *it = &g->nodes[in[1]].type;
    bool flat = !(n->attrs.present & TL_A_AXIS);
    int ax = flat ? 0 : n->attrs.axes[0];
    if (ax < 0) ax += xt->rank;
    int32_t ist[TL_MAX_RANK];
    gb_strides(b, it->rank, it->dims, ist);
    int32_t j = load_at(b, p->buf_of[in[1]], it->dtype, gb_offset(b, it->rank, ist, idx + ax));
    j = gb_conv(b, j, it->dtype, TL_I64);
    int32_t len = gk_i64(k, 1);
    if (flat)
      for (int i = 0; i < xt->rank; i++) len = gk_mul(k, len, gb_dim(b, xt->dims[i]));
    else
      len = gb_dim(b, xt->dims[ax]);
    int32_t zero = gk_i64(k, 0);
    j = sel(b, icmp(b, GK_ISLT, j, zero), gk_add(k, j, len), j);
    /* clamped: an index out of range was reported by the take check */
    int32_t top = gk_bin_v(k, GK_SUB, len, gk_i64(k, 1));
    j = sel(b, icmp(b, GK_ISGT, j, top), top, j);
    j = sel(b, icmp(b, GK_ISLT, j, zero), zero, j);
    if (flat) return load_at(b, p->buf_of[in[0]], xt->dtype, j);
    for (int i = 0; i < ax; i++) xi[i] = idx[i];
    xi[ax] = j;
    for (int i = ax + 1; i < xt->rank; i++) xi[i] = idx[i - 1 + it->rank];
    return gb_ex(b, in[0], xi);
  }
  default:
    if (tl_ops[n->op].kind == TL_KIND_ELEMWISE) return ex_elemwise(b, id, idx);
    gb_fail(b, "gpu: op %s on dtype %s is not supported (internal: not inline)", tl_ops[n->op].name,
            tl_dtype_name((tl_dtype)n->type.dtype));
    return gk_ci(k, gk_ty_of_dtype(n->type.dtype), 0);
  }
}

/* ---- elementwise kernels ----------------------------------------------------- */

enum { EW_VEC = 4 };

typedef struct ew {
  const be_kern *kk;
  const tl_node *n;
  int32_t base;          /* output offset of the kernel's first element (a concat part) */
  int32_t ost[TL_MAX_RANK];
  be_loops L;
  bool own;
} ew;

/* The value of the kernel's element whose loop indices are idx. */
static int32_t ew_value(gb *b, const ew *w, const int32_t *idx) {
  int32_t v = w->own ? gb_ex_def(b, w->kk->node, idx) : gb_ex(b, w->kk->node, idx);
  return gb_conv(b, v, w->n->type.dtype, b->p->bufs[w->kk->out].dtype);
}

static void ew_store(gb *b, const ew *w, const int32_t *idx, int32_t v) {
  int32_t off = gk_add(b->k, w->base, gb_offset(b, w->n->type.rank, w->ost, idx));
  gk_store(b->k, w->kk->out, b->p->bufs[w->kk->out].dtype, off, v);
}

/* idx for the merged loop's index i (every dim 0 but the carry dim) */
static void merged_idx(gb *b, const ew *w, int32_t i, int32_t *idx) {
  for (int d = 0; d < w->n->type.rank; d++) idx[d] = gk_i64(b->k, 0);
  if (w->L.n == 1) idx[w->L.carry[0]] = i;
}

static int k_ew(gb *b, const be_kern *kk) {
  gk_kernel *k = b->k;
  const tl_graph *g = b->g;
  ew w;
  memset(&w, 0, sizeof w);
  w.kk = kk;
  w.n = &g->nodes[kk->node];
  w.own = b->p->buf_of[kk->node] == kk->out && b->p->state[kk->node] == BE_S_MAT;
  int r = w.n->type.rank;
  w.base = gk_i64(k, 0);
  if (kk->place >= 0) {
    const tl_node *cn = &g->nodes[kk->place];
    gb_strides(b, cn->type.rank, cn->type.dims, w.ost);
    int ax = (cn->attrs.present & TL_A_AXIS) ? cn->attrs.axes[0] : 0;
    if (ax < 0) ax += cn->type.rank;
    if (cn->op == TL_OP_SLICE_UPDATE) {
      /* the update's index i along the axis lands at start + i * step */
      int64_t step = (cn->attrs.present & TL_A_STEP) ? cn->attrs.step : 1;
      int32_t start = slice_start(b, &cn->attrs, gb_dim(b, cn->type.dims[ax]));
      w.base = gk_mul(k, start, w.ost[ax]);
      w.ost[ax] = gk_mul(k, w.ost[ax], gk_i64(k, step));
    } else {
      int32_t pos = gk_i64(k, 0);
      for (int i = 0; i < kk->part; i++)
        pos = gk_add(k, pos, gb_dim(b, g->nodes[tl_node_inputs(g, cn)[i]].type.dims[ax]));
      w.base = gk_mul(k, pos, w.ost[ax]);
    }
  } else {
    gb_strides(b, r, w.n->type.dims, w.ost);
  }
  be_ew_loops(b->p, kk, &w.L);
  int32_t total = gk_i64(k, 1);
  for (int i = 0; i < r; i++) total = gk_mul(k, total, gb_dim(b, w.n->type.dims[i]));
  int32_t gtid = gb_gtid(b), gstride = gb_gstride(b);
  int32_t idx[TL_MAX_RANK];
  k->launch.nwork = r;
  for (int i = 0; i < r; i++) k->launch.work[i] = w.n->type.dims[i];
  if (w.L.n <= 1) {
    /* runs of EW_VEC elements: all values first, then the stores (loads
     * may not move past a store that could alias them) */
    k->launch.per_block = GB_THREADS * EW_VEC;
    int32_t nv = gk_bin_v(k, GK_SDIV, total, gk_i64(k, EW_VEC));
    int32_t vv = gk_var(k, GK_I64);
    gk_loop(k, vv, gtid, nv, gstride);
    int32_t i0 = gk_mul(k, gk_get(k, vv), gk_i64(k, EW_VEC));
    if (kk->place < 0) {
      k->align_base = i0;
      k->align_vec = EW_VEC;
    }
    int32_t vals[EW_VEC];
    for (int j = 0; j < EW_VEC; j++) {
      merged_idx(b, &w, gk_add(k, i0, gk_i64(k, j)), idx);
      vals[j] = ew_value(b, &w, idx);
    }
    for (int j = 0; j < EW_VEC; j++) {
      merged_idx(b, &w, gk_add(k, i0, gk_i64(k, j)), idx);
      ew_store(b, &w, idx, vals[j]);
    }
    k->align_base = -1;
    gk_end(k);
    int32_t tv = gk_var(k, GK_I64);
    gk_loop(k, tv, gk_add(k, gk_mul(k, nv, gk_i64(k, EW_VEC)), gtid), total, gstride);
    int32_t i = gk_get(k, tv);
    merged_idx(b, &w, i, idx);
    ew_store(b, &w, idx, ew_value(b, &w, idx));
    gk_end(k);
    return b->failed ? -1 : 0;
  }
  k->launch.per_block = GB_THREADS;
  int32_t tv = gk_var(k, GK_I64);
  gk_loop(k, tv, gtid, total, gstride);
  int32_t i = gk_get(k, tv);
  int32_t lens[TL_MAX_RANK], js[TL_MAX_RANK];
  for (int q = 0; q < w.L.n; q++) {
    lens[q] = gk_i64(k, 1);
    for (int d = w.L.first[q]; d <= w.L.last[q]; d++) lens[q] = gk_mul(k, lens[q], gb_dim(b, w.n->type.dims[d]));
  }
  gb_decompose(b, i, w.L.n, lens, js);
  for (int d = 0; d < r; d++) idx[d] = gk_i64(k, 0);
  for (int q = 0; q < w.L.n; q++) idx[w.L.carry[q]] = js[q];
  ew_store(b, &w, idx, ew_value(b, &w, idx));
  gk_end(k);
  return b->failed ? -1 : 0;
}

static int k_takecheck(gb *b, const be_kern *kk) {
  gk_kernel *k = b->k;
  const tl_graph *g = b->g;
  const tl_node *n = &g->nodes[kk->node];
  const int32_t *in = tl_node_inputs(g, n);
  const tl_type *xt = &g->nodes[in[0]].type, *it = &g->nodes[in[1]].type;
  bool flat = !(n->attrs.present & TL_A_AXIS);
  int ax = flat ? 0 : n->attrs.axes[0];
  if (ax < 0) ax += xt->rank;
  int32_t len = gk_i64(k, 1);
  if (flat)
    for (int i = 0; i < xt->rank; i++) len = gk_mul(k, len, gb_dim(b, xt->dims[i]));
  else
    len = gb_dim(b, xt->dims[ax]);
  int32_t cnt = gk_i64(k, 1);
  for (int i = 0; i < it->rank; i++) cnt = gk_mul(k, cnt, gb_dim(b, it->dims[i]));
  k->launch.nwork = it->rank;
  for (int i = 0; i < it->rank; i++) k->launch.work[i] = it->dims[i];
  k->launch.per_block = GB_THREADS;
  int32_t tv = gk_var(k, GK_I64);
  gk_loop(k, tv, gb_gtid(b), cnt, gb_gstride(b));
  int32_t j = gb_conv(b, load_at(b, b->p->buf_of[in[1]], it->dtype, gk_get(k, tv)), it->dtype, TL_I64);
  int32_t bad = gk_bin_v(k, GK_OR, icmp(b, GK_ISLT, j, gk_bin_v(k, GK_SUB, gk_i64(k, 0), len)), icmp(b, GK_ISGE, j, len));
  gk_if(k, bad);
  gb_set_err(b, BE_ERR_TAKE);
  gk_end(k);
  gk_end(k);
  return 0;
}

/* scatter_add's accumulation, as backend/lower.c's k_scatter: for every
 * element of the addend v in C order, the index j = i[...] (negative: from
 * the end; out of range: the take error, and the element is skipped) picks
 * the element of the buffer (already holding operand 0) that v's element
 * is added to. One thread does it all, so duplicate indices add up in the
 * CPU's order and the result is the CPU's to the bit; the other threads of
 * the grid skip the loop. (Atomic adds would be parallel but would sum
 * floats in an order that changes from run to run.) */
static int k_scatter(gb *b, const be_kern *kk) {
  gk_kernel *k = b->k;
  const tl_graph *g = b->g;
  const tl_node *n = &g->nodes[kk->node];
  const int32_t *in = tl_node_inputs(g, n);
  const tl_type *xt = &n->type, *it = &g->nodes[in[1]].type, *vt = &g->nodes[in[2]].type;
  bool flat = !(n->attrs.present & TL_A_AXIS);
  int ax = flat ? 0 : n->attrs.axes[0], dt = xt->dtype;
  if (ax < 0) ax += xt->rank;
  int32_t ost[TL_MAX_RANK], ist[TL_MAX_RANK], vd[TL_MAX_RANK], iv[TL_MAX_RANK];
  gb_strides(b, xt->rank, xt->dims, ost);
  gb_strides(b, it->rank, it->dims, ist);
  int32_t len = gk_i64(k, 1), cnt = gk_i64(k, 1), zero = gk_i64(k, 0);
  if (flat)
    for (int i = 0; i < xt->rank; i++) len = gk_mul(k, len, gb_dim(b, xt->dims[i]));
  else
    len = gb_dim(b, xt->dims[ax]);
  for (int i = 0; i < vt->rank; i++) cnt = gk_mul(k, cnt, vd[i] = gb_dim(b, vt->dims[i]));
  k->launch.nwork = 0; /* one block: thread 0 works */
  k->launch.per_block = GB_THREADS;
  gk_if(k, icmp(b, GK_IEQ, gb_gtid(b), zero));
  int32_t tv = gk_var(k, GK_I64);
  gk_loop(k, tv, zero, cnt, gk_i64(k, 1));
  gb_decompose(b, gk_get(k, tv), vt->rank, vd, iv);
  int ia = flat ? 0 : ax;
  int32_t j = load_at(b, b->p->buf_of[in[1]], it->dtype, gb_offset(b, it->rank, ist, iv + ia));
  j = gb_conv(b, j, it->dtype, TL_I64);
  j = sel(b, icmp(b, GK_ISLT, j, zero), gk_add(k, j, len), j);
  int32_t bad = gk_bin_v(k, GK_OR, icmp(b, GK_ISLT, j, zero), icmp(b, GK_ISGE, j, len));
  gk_if(k, bad);
  gb_set_err(b, BE_ERR_TAKE);
  gk_end(k);
  gk_if(k, gk_bin_v(k, GK_XOR, bad, gk_ci(k, GK_I1, 1)));
  int32_t off;
  if (flat) {
    off = j;
  } else {
    int32_t xi[TL_MAX_RANK];
    for (int i = 0; i < ax; i++) xi[i] = iv[i];
    xi[ax] = j;
    for (int i = ax + 1; i < xt->rank; i++) xi[i] = iv[i - 1 + it->rank];
    off = gb_offset(b, xt->rank, ost, xi);
  }
  int32_t v = gb_conv(b, gb_ex(b, in[2], iv), vt->dtype, dt), old = load_at(b, kk->out, dt, off);
  gk_store(k, kk->out, dt, off, gk_bin_v(k, isf(dt) ? GK_FADD : GK_ADD, old, v));
  gk_end(k);
  gk_end(k);
  gk_end(k);
  return b->failed ? -1 : 0;
}

int gb_kernel(gb *b, int ki, const char *name, int stage, int32_t scratch, int slots) {
  const be_kern *kk = &b->p->ks[ki];
  b->k = gk_new(name, GB_THREADS);
  b->k->plan_kernel = ki;
  b->k->stage = stage;
  b->k->scratch = stage ? scratch : -1;
  b->k->is_const = b->is_const;
  b->knode = kk->node;
  /* in-place kernels read and write one buffer: its loads are never merged */
  b->k->nowrite = kk->out;
  int rc;
  switch (kk->kind) {
  case BE_K_EW: rc = k_ew(b, kk); break;
  case BE_K_RED:
    rc = stage == 1   ? gb_k_red_part(b, kk, scratch, slots)
         : stage == 2 ? gb_k_red_final(b, kk, scratch, slots)
                      : gb_k_red(b, kk);
    break;
  case BE_K_SOFTMAX: rc = gb_k_softmax(b, kk); break;
  case BE_K_MATMUL: rc = gb_k_matmul(b, kk); break;
  case BE_K_SCATTER: rc = k_scatter(b, kk); break;
  case BE_K_TAKECHECK: rc = k_takecheck(b, kk); break;
  default: gb_fail(b, "gpu: kernel kind %d is not supported", kk->kind); rc = -1; break;
  }
  if (!rc && b->failed) rc = -1;
  if (!rc && gk_verify(b->k, b->err, b->errn)) rc = -1;
  return rc;
}
