/* check_grad.c - derivative rules (rules/grad.rw) against central finite
 * differences computed in f64 through the interpreter (docs/grad.md,
 * "Checking rules").
 *
 * A trial draws one application of the rule's op: operand shapes (numpy
 * broadcasting among the operands of an elementwise op), attributes, f32
 * or f64, and values from the op's domain (the op table's DOMAIN column)
 * out of the generator the rewrite-rule trials use (gen.h). Only trials
 * where the rule is the one the transform would pick are kept (its
 * conditions hold, no earlier rule of its file for the same operand
 * applies). The rule is instantiated on the trial's graph with a random
 * cotangent ct (gr_rule_apply: the rule, then the transform's own
 * broadcast sums and cast) and run; the reference is
 *
 *   expected[e] = sum_o ct[o] J[o][e],  J[o][e] = (y_o(x + h e) - y_o(x - h e)) / 2h
 *
 * with the op evaluated in f64 at the same (rounded) point, h = 1e-6
 * max(1, |x_e|). Half the trials are smooth (normal values: no kink is
 * ever hit); the other half use the generator's zeros and small integers,
 * which land on the points where an op is not differentiable. There the
 * entry J[o][e] is PyTorch's convention (kink() below: abs and relu at 0
 * are 0, maximum/minimum ties split evenly, max/min reductions share among
 * ties) instead of the finite difference; a jump (remainder at a multiple
 * of its divisor) is not compared.
 *
 * A rule fails with its file:line, the inputs, and the two values of the
 * first element that differs by more than rtol (|a| + |b|) + rtol scale
 * (rtol 2e-3 when the rule ran in f32, 1e-6 in f64; scale: the largest
 * |expected|), or when it does not type-check on a valid application. */
#include "check/check.h"
#include "check/gen.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "grad/grad.h"
#include "interp/interp.h"
#include "ir/tg.h"
#include "util/util.h"

enum { K_FLOAT, K_INDEX, K_BOOL };

typedef struct operand {
  int kind;    /* K_* */
  int dtype;   /* K_FLOAT: f32 or f64 */
  int rank;
  int64_t dims[TL_MAX_RANK];
  int64_t len; /* K_INDEX: indices lie in [-len, len) */
} operand;

typedef struct gcase {
  int op;
  int nin;
  operand in[4];
  char attrs[160];   /* the attributes in .tg syntax (cast: its dtype below) */
  int cast_to;       /* cast's :dtype */
} gcase;

static void render(const gcase *c, bool f64, tl_buf *b) {
  tl_buf_printf(b, "(graph trial");
  for (int i = 0; i < c->nin; i++) {
    const operand *x = &c->in[i];
    const char *dt = x->kind == K_INDEX ? "i64" : x->kind == K_BOOL ? "bool" : f64 ? "f64" : tl_dtype_name((tl_dtype)x->dtype);
    tl_buf_printf(b, " (in a%d %s [", i, dt);
    for (int d = 0; d < x->rank; d++) tl_buf_printf(b, "%s%lld", d ? " " : "", (long long)x->dims[d]);
    tl_buf_printf(b, "])");
  }
  tl_buf_printf(b, " (out y (%s", tl_ops[c->op].name);
  for (int i = 0; i < c->nin; i++) tl_buf_printf(b, " a%d", i);
  if (c->op == TL_OP_CAST) tl_buf_printf(b, " :dtype %s", f64 ? "f64" : tl_dtype_name((tl_dtype)c->cast_to));
  tl_buf_printf(b, "%s)))", c->attrs);
}

static operand fl(int dt, int rank, const int64_t *dims) {
  operand x = {K_FLOAT, dt, rank, {0}, 0};
  for (int i = 0; i < rank; i++) x.dims[i] = dims[i];
  return x;
}

static operand rand_float(rng *r, int dt, int minrank, int maxrank, int lo, int hi) {
  operand x = {K_FLOAT, dt, minrank + rint_(r, maxrank - minrank + 1), {0}, 0};
  for (int i = 0; i < x.rank; i++) x.dims[i] = lo + rint_(r, hi - lo + 1);
  return x;
}

/* Operands that broadcast together, as check.c's trials draw them: each
 * the base shape, a suffix of it with some dims 1, or a scalar. */
static void broadcasting(rng *r, int n, int dt, operand *out) {
  int brank = rint_(r, 4);
  int64_t b[TL_MAX_RANK];
  for (int i = 0; i < brank; i++) b[i] = 1 + rint_(r, 3);
  for (int k = 0; k < n; k++) {
    int mode = rint_(r, 100);
    int64_t d[TL_MAX_RANK];
    int rank;
    if (mode < 50 || k == 0) {
      rank = brank;
      memcpy(d, b, sizeof d);
    } else if (mode < 85) {
      rank = brank ? rint_(r, brank + 1) : 0;
      for (int i = 0; i < rank; i++) d[i] = rint_(r, 3) ? b[brank - rank + i] : 1;
    } else {
      rank = 0;
    }
    out[k] = fl(dt, rank, d);
  }
  if (rint_(r, 4) == 0 && n > 1) { /* the broadcast on the first operand instead */
    operand t = out[0];
    out[0] = out[n - 1];
    out[n - 1] = t;
  }
}

static const char *axis_attr(rng *r, int rank, bool allow_none, bool allow_list) {
  static char buf[32];
  int k = rint_(r, 5);
  if ((k == 0 && allow_none) || rank == 0) return "";
  if (k == 4 && allow_list && rank >= 2) return " :axis [0 -1]";
  int ax = k == 1 ? 0 : k == 2 ? -1 : rint_(r, rank);
  snprintf(buf, sizeof buf, " :axis %d", ax);
  return buf;
}

/* A random application of op; false if op has no generator. */
static bool gen_case(rng *r, int op, gcase *c) {
  memset(c, 0, sizeof *c);
  c->op = op;
  int dt = rint_(r, 2) ? TL_F32 : TL_F64;
  const tl_op_info *oi = &tl_ops[op];
  char *a = c->attrs;
  size_t an = sizeof c->attrs;
  if (oi->kind == TL_KIND_ELEMWISE) {
    if (op == TL_OP_WHERE) {
      c->nin = 3;
      broadcasting(r, 3, dt, c->in);
      c->in[0].kind = K_BOOL;
    } else {
      c->nin = oi->arity;
      broadcasting(r, c->nin, dt, c->in);
      if (c->nin == 2 && rint_(r, 6) == 0) c->in[1].dtype = dt == TL_F32 ? TL_F64 : TL_F32; /* promotion */
    }
    if (op == TL_OP_CAST) c->cast_to = rint_(r, 2) ? TL_F32 : TL_F64;
    return true;
  }
  switch (op) {
  case TL_OP_SUM: case TL_OP_PROD: case TL_OP_MAX: case TL_OP_MIN: case TL_OP_MEAN: case TL_OP_LOGSUMEXP:
    c->nin = 1;
    c->in[0] = rand_float(r, dt, 1, 3, 1, 3);
    snprintf(a, an, "%s%s", axis_attr(r, c->in[0].rank, true, true), rint_(r, 3) == 0 ? " :keepdims true" : "");
    return true;
  case TL_OP_SOFTMAX: case TL_OP_LOG_SOFTMAX:
    c->nin = 1;
    c->in[0] = rand_float(r, dt, 1, 3, 1, 4);
    snprintf(a, an, "%s", axis_attr(r, c->in[0].rank, true, false));
    return true;
  case TL_OP_RESHAPE: {
    c->nin = 1;
    c->in[0] = rand_float(r, dt, 1, 3, 1, 3);
    static const char *const shapes[] = {" :shape [-1]", " :shape [1 -1]", " :shape [-1 1]"};
    snprintf(a, an, "%s", shapes[rint_(r, 3)]);
    if (c->in[0].rank == 2 && rint_(r, 2))
      snprintf(a, an, " :shape [%lld %lld]", (long long)c->in[0].dims[1], (long long)c->in[0].dims[0]);
    return true;
  }
  case TL_OP_EXPAND_DIMS:
    c->nin = 1;
    c->in[0] = rand_float(r, dt, 0, 2, 1, 3);
    snprintf(a, an, " :axis %d", rint_(r, 2) ? 0 : -1);
    return true;
  case TL_OP_SQUEEZE: {
    c->nin = 1;
    c->in[0] = rand_float(r, dt, 1, 3, 2, 3);
    int at = rint_(r, c->in[0].rank);
    c->in[0].dims[at] = 1;
    if (rint_(r, 2)) snprintf(a, an, " :axis %d", at);
    return true;
  }
  case TL_OP_TRANSPOSE: {
    c->nin = 1;
    c->in[0] = rand_float(r, dt, 2, 3, 1, 3);
    int rk = c->in[0].rank, p[3] = {0, 1, 2};
    for (int i = rk - 1; i > 0; i--) {
      int j = rint_(r, i + 1), t = p[i];
      p[i] = p[j];
      p[j] = t;
    }
    if (rint_(r, 3)) {
      size_t l = (size_t)snprintf(a, an, " :perm [");
      for (int i = 0; i < rk; i++) l += (size_t)snprintf(a + l, an - l, "%s%d", i ? " " : "", p[i]);
      snprintf(a + l, an - l, "]");
    }
    return true;
  }
  case TL_OP_BROADCAST_TO: {
    c->nin = 1;
    c->in[0] = rand_float(r, dt, 0, 2, 1, 3);
    operand *x = &c->in[0];
    for (int i = 0; i < x->rank; i++)
      if (rint_(r, 2)) x->dims[i] = 1;
    size_t l = (size_t)snprintf(a, an, " :shape [2");
    for (int i = 0; i < x->rank; i++) l += (size_t)snprintf(a + l, an - l, " %lld", (long long)(x->dims[i] == 1 ? 1 + rint_(r, 3) : x->dims[i]));
    snprintf(a + l, an - l, "]");
    return true;
  }
  case TL_OP_CONCAT: {
    c->nin = 2 + rint_(r, 2);
    operand base = rand_float(r, dt, 1, 2, 1, 3);
    int ax = rint_(r, base.rank);
    for (int k = 0; k < c->nin; k++) {
      c->in[k] = base;
      c->in[k].dims[ax] = 1 + rint_(r, 3);
    }
    if (ax || rint_(r, 2)) snprintf(a, an, " :axis %d", ax);
    return true;
  }
  case TL_OP_SLICE: case TL_OP_SLICE_UPDATE: {
    c->nin = 1;
    c->in[0] = rand_float(r, dt, 1, 2, 3, 5);
    int ax = rint_(r, c->in[0].rank);
    size_t l = (size_t)snprintf(a, an, " :axis %d", ax);
    if (rint_(r, 3)) l += (size_t)snprintf(a + l, an - l, " :start %d", rint_(r, 9) - 4);
    if (rint_(r, 3)) l += (size_t)snprintf(a + l, an - l, " :stop %d", rint_(r, 13) - 6);
    if (rint_(r, 2)) snprintf(a + l, an - l, " :step %d", rint_(r, 2) ? 2 : rint_(r, 2) ? -1 : -2);
    return true; /* slice_update's update: added by the caller from the slice's type */
  }
  case TL_OP_TAKE: case TL_OP_SCATTER_ADD: {
    c->nin = 2;
    c->in[0] = rand_float(r, dt, 1, 2, 2, 4);
    bool flat = rint_(r, 4) == 0;
    int ax = flat ? 0 : rint_(r, c->in[0].rank);
    operand *i = &c->in[1];
    i->kind = K_INDEX;
    i->rank = 1 + rint_(r, 2);
    for (int d = 0; d < i->rank; d++) i->dims[d] = 1 + rint_(r, 3);
    i->len = 1;
    if (flat)
      for (int d = 0; d < c->in[0].rank; d++) i->len *= c->in[0].dims[d];
    else
      i->len = c->in[0].dims[ax];
    if (!flat) snprintf(a, an, " :axis %d", ax);
    return true;
  }
  case TL_OP_MATMUL: {
    /* numpy's forms: vector or matrix on each side, batch dims on either */
    c->nin = 2;
    int64_t m = 1 + rint_(r, 3), k = 1 + rint_(r, 3), n = 1 + rint_(r, 3), b = 1 + rint_(r, 2);
    int64_t vk[1] = {k}, mk[2] = {m, k}, bmk[3] = {b, m, k}, kn[2] = {k, n}, bkn[3] = {b, k, n};
    switch (rint_(r, 7)) {
    case 0: c->in[0] = fl(dt, 1, vk); c->in[1] = fl(dt, 1, vk); break;
    case 1: c->in[0] = fl(dt, 1, vk); c->in[1] = fl(dt, 2, kn); break;
    case 2: c->in[0] = fl(dt, 2, mk); c->in[1] = fl(dt, 1, vk); break;
    case 3: c->in[0] = fl(dt, 2, mk); c->in[1] = fl(dt, 2, kn); break;
    case 4: c->in[0] = fl(dt, 3, bmk); c->in[1] = fl(dt, 2, kn); break;
    case 5: c->in[0] = fl(dt, 2, mk); c->in[1] = fl(dt, 3, bkn); break;
    default: c->in[0] = fl(dt, 1, vk); c->in[1] = fl(dt, 3, bkn); break;
    }
    return true;
  }
  default: return false;
  }
}

/* The type of the op's result on c's operands (a parse of the rendered text). */
static tl_graph *parse_case(const gcase *c, bool f64) {
  tl_buf b = {0};
  render(c, f64, &b);
  tl_diag d;
  tl_diag_init(&d, "trial", b.s, b.len);
  tl_graph *g = tl_tg_parse(b.s, b.len, &d);
  tl_diag_free(&d);
  tl_free(b.s);
  return g;
}

/* slice_update and scatter_add: the update operand has the type of the
 * slice or take of the same attributes. false if that does not type-check. */
static bool add_update(gcase *c) {
  int op = c->op;
  c->op = op == TL_OP_SLICE_UPDATE ? TL_OP_SLICE : TL_OP_TAKE;
  tl_graph *g = parse_case(c, false);
  c->op = op;
  if (!g) return false;
  const tl_type *t = &g->nodes[g->outputs[0].node].type;
  c->in[c->nin++] = fl(c->in[0].dtype, t->rank, t->dims);
  tl_graph_free(g);
  return true;
}

/* ---- values ----------------------------------------------------------------------- */

static double in_domain(double v, int dom) {
  switch (dom) {
  case TL_DOM_POSITIVE: return 0.1 + fabs(v);
  case TL_DOM_NEGATIVE: return -0.1 - fabs(v);
  case TL_DOM_NONZERO: return fabs(v) < 0.1 ? copysign(0.1 + fabs(v), v == 0 ? 1 : v) : v;
  case TL_DOM_GT_MINUS1: return -0.9 + fabs(v);
  case TL_DOM_UNIT: return 0.9 * tanh(v);
  case TL_DOM_GT_ONE: return 1.1 + fabs(v);
  default: return v;
  }
}

/* The inputs of a trial (in f64 for the finite differences; rounded to
 * the operand's dtype first, so both runs see one point) and a cotangent
 * of the result's type. kinks: values from the generator's zeros and
 * small integers too. */
static void gen_values(rng *r, const gcase *c, bool kinks, tl_tensor **v64, tl_tensor **v) {
  for (int i = 0; i < c->nin; i++) {
    const operand *x = &c->in[i];
    int dt = x->kind == K_INDEX ? TL_I64 : x->kind == K_BOOL ? TL_BOOL : x->dtype;
    v[i] = tl_tensor_new((tl_dtype)dt, x->rank, x->dims, NULL, 0);
    v64[i] = tl_tensor_new(x->kind == K_FLOAT ? TL_F64 : (tl_dtype)dt, x->rank, x->dims, NULL, 0);
    for (int64_t e = 0; e < v[i]->numel; e++) {
      if (x->kind == K_INDEX) {
        int64_t j = (int64_t)(rnext(r) % (uint64_t)(2 * x->len)) - x->len;
        tl_tensor_set_i64(v[i], e, j);
        tl_tensor_set_i64(v64[i], e, j);
        continue;
      }
      if (x->kind == K_BOOL) {
        int64_t bit = rint_(r, 2);
        tl_tensor_set_i64(v[i], e, bit);
        tl_tensor_set_i64(v64[i], e, bit);
        continue;
      }
      double f = kinks && rint_(r, 2) ? gen_float(r, x->dtype == TL_F32, false) : rnorm(r) * 1.5;
      if (kinks && rint_(r, 3) == 0) f = (double)(rint_(r, 3) - 1); /* ties */
      f = in_domain(f, tl_ops[c->op].domain);
      if (x->dtype == TL_F32) f = (float)f;
      tl_tensor_set_f64(v[i], e, f);
      tl_tensor_set_f64(v64[i], e, f);
    }
  }
}

/* Offset in operand t (broadcast into out's dims) of output element o. */
static int64_t bcast_at(const tl_tensor *t, int orank, const int64_t *odims, int64_t o) {
  int64_t off = 0, st = 1;
  for (int i = orank - 1; i >= 0; i--) {
    int64_t idx = o % odims[i];
    o /= odims[i];
    int ti = i - (orank - t->rank);
    if (ti < 0) continue;
    if (t->dims[ti] != 1) off += idx * st;
    st *= t->dims[ti];
  }
  return off;
}

/* Output element of a reduction over x (attrs a) that input element e
 * goes to. */
static int64_t reduced_at(const tl_attrs *a, const tl_tensor *x, int64_t e) {
  bool red[TL_MAX_RANK] = {false};
  if (!(a->present & TL_A_AXIS))
    for (int i = 0; i < x->rank; i++) red[i] = true;
  for (int i = 0; i < a->naxes; i++) red[a->axes[i] < 0 ? a->axes[i] + x->rank : a->axes[i]] = true;
  int64_t o = 0, st = 1;
  for (int i = x->rank - 1; i >= 0; i--) {
    int64_t idx = e % x->dims[i];
    e /= x->dims[i];
    if (red[i]) continue;
    o += idx * st;
    st *= x->dims[i];
  }
  return o;
}

enum { KINK_NO, KINK_YES, KINK_SKIP };

/* PyTorch 1.13's derivative of output element o in operand k's element e
 * where the op is not differentiable there (docs/grad.md, "Conventions").
 * ins: the f64 inputs; y: the f64 result. */
static int kink(const tl_node *n, int k, tl_tensor *const *ins, const tl_tensor *y, int64_t o, int64_t e,
                double *J) {
  int op = n->op;
  if (tl_ops[op].kind == TL_KIND_ELEMWISE) {
    if (bcast_at(ins[k], y->rank, y->dims, o) != e) return KINK_NO;
    double a = tl_tensor_get_f64(ins[0], bcast_at(ins[0], y->rank, y->dims, o));
    double b = n->ninputs > 1 ? tl_tensor_get_f64(ins[1], bcast_at(ins[1], y->rank, y->dims, o)) : 0;
    switch (op) {
    case TL_OP_ABS: case TL_OP_RELU:
      if (a != 0) return KINK_NO;
      *J = 0;
      return KINK_YES;
    case TL_OP_MAXIMUM: case TL_OP_MINIMUM:
      if (a != b) return KINK_NO;
      *J = 0.5;
      return KINK_YES;
    case TL_OP_REMAINDER: {
      double m = fmod(a, b);
      return m == 0 || fabs(m) < 1e-5 * fabs(b) || fabs(fabs(m) - fabs(b)) < 1e-5 * fabs(b) ? KINK_SKIP : KINK_NO;
    }
    default: return KINK_NO;
    }
  }
  if (op == TL_OP_MAX || op == TL_OP_MIN) {
    const tl_tensor *x = ins[0];
    if (reduced_at(&n->attrs, x, e) != o || tl_tensor_get_f64(x, e) != tl_tensor_get_f64(y, o)) return KINK_NO;
    int ties = 0;
    for (int64_t i = 0; i < x->numel; i++)
      ties += reduced_at(&n->attrs, x, i) == o && tl_tensor_get_f64(x, i) == tl_tensor_get_f64(y, o);
    if (ties < 2) return KINK_NO;
    *J = 1.0 / ties;
    return KINK_YES;
  }
  return KINK_NO;
}

/* ---- one trial ---------------------------------------------------------------------- */

typedef struct gtrial {
  int status;   /* 0 skipped, 1 pass, 2 fail */
  char why[1200];
  gcase c;
  tl_tensor *ins[5], *ct; /* kept on failure */
  int k;
  bool kinks;
} gtrial;

static void trial_free(gtrial *t) {
  for (int i = 0; i < 5; i++) tl_tensor_free(t->ins[i]);
  tl_tensor_free(t->ct);
  memset(t->ins, 0, sizeof t->ins);
  t->ct = NULL;
}

/* Whether rule i is the one the transform picks for operand k of the
 * trial's node (the rules of its own text only). */
static bool effective(const gr_rules *rs, int i, const tl_graph *g, int32_t node, int k) {
  if (!gr_rule_applies(rs, i, g, node, k)) return false;
  gr_rule_info me = gr_rule_at(rs, i);
  for (int j = 0; j < i; j++) {
    gr_rule_info o = gr_rule_at(rs, j);
    if (o.text == me.text && o.op == me.op && (o.wrt == k || o.wrt < 0) && gr_rule_applies(rs, j, g, node, k))
      return false;
  }
  return true;
}

static void run_trial(const gr_rules *rs, int ri, rng *r, bool kinks, gtrial *t) {
  gr_rule_info ru = gr_rule_at(rs, ri);
  memset(t, 0, sizeof *t);
  t->kinks = kinks;
  if (!gen_case(r, ru.op, &t->c)) return;
  if ((ru.op == TL_OP_SLICE_UPDATE || ru.op == TL_OP_SCATTER_ADD) && !add_update(&t->c)) return;
  int k = ru.wrt >= 0 ? ru.wrt : rint_(r, t->c.nin);
  t->k = k;
  if (k >= t->c.nin || t->c.in[k].kind != K_FLOAT) return;
  tl_graph *g = parse_case(&t->c, false), *g64 = parse_case(&t->c, true);
  tl_tensor *v[5] = {0}, *v64[5] = {0}, *outs[2] = {0}, *y64 = NULL;
  char err[1024];
  if (!g || !g64) goto done;
  int32_t node = g->outputs[0].node;
  const tl_type yt_v = g->nodes[node].type, *yt = &yt_v; /* a copy: adding nodes moves g->nodes */
  if (!tl_dtype_is_float((tl_dtype)yt->dtype) || !effective(rs, ri, g, node, k)) goto done;
  gen_values(r, &t->c, kinks, v64, v);
  /* the cotangent, in the result's dtype */
  int32_t ctn = tl_graph_add_input(g, "ct", yt, (tl_loc){0, 0});
  t->ct = tl_tensor_new((tl_dtype)yt->dtype, yt->rank, yt->dims, NULL, 0);
  for (int64_t i = 0; i < t->ct->numel; i++) {
    double f = rnorm(r);
    tl_tensor_set_f64(t->ct, i, yt->dtype == TL_F32 ? (double)(float)f : f);
  }
  int32_t c = gr_rule_apply(rs, ri, g, node, k, ctn, err, sizeof err);
  for (int i = 0; i < t->c.nin; i++) t->ins[i] = tl_tensor_copy(v[i]);
  if (c < 0) {
    t->status = 2;
    snprintf(t->why, sizeof t->why, "does not type-check: %s", err);
    goto done;
  }
  tl_graph_add_output(g, "vjp", c);
  v[t->c.nin] = t->ct;
  if (tl_interp_run(g, v, NULL, outs, err, sizeof err)) goto done;
  const tl_tensor *vjp = outs[1];
  /* the finite differences, in f64 */
  tl_tensor *x = v64[k];
  if (tl_interp_run(g64, v64, NULL, &y64, err, sizeof err)) goto done;
  for (int64_t o = 0; o < y64->numel; o++)
    if (!isfinite(tl_tensor_get_f64(y64, o))) goto done;
  int64_t ne = x->numel, no = y64->numel;
  double *expect = tl_xcalloc((size_t)ne + 1, sizeof *expect), *tol = tl_xcalloc((size_t)ne + 1, sizeof *tol);
  bool *skip = tl_xcalloc((size_t)ne + 1, 1);
  bool *at_kink = tl_xcalloc((size_t)ne + 1, 1);
  bool bad = false;
  const tl_node *n64 = &g64->nodes[g64->outputs[0].node];
  /* the finite differences' rounding: eps |y| / h per output */
  double cy = 0;
  for (int64_t o = 0; o < no; o++) cy += fabs(tl_tensor_get_f64(t->ct, o)) * fmax(1, fabs(tl_tensor_get_f64(y64, o)));
  for (int64_t e = 0; e < ne && !bad; e++) {
    double x0 = tl_tensor_get_f64(x, e), h = 1e-6 * fmax(1, fabs(x0)), d[2] = {0, 0};
    /* steps h and h/2: Richardson's extrapolation, and their difference as
     * the truncation error's estimate (near a pole it is large) */
    for (int s2 = 0; s2 < 2 && !bad; s2++) {
      double hs = s2 ? h / 2 : h;
      tl_tensor *yp = NULL, *ym = NULL;
      tl_tensor_set_f64(x, e, x0 + hs);
      int rc = tl_interp_run(g64, v64, NULL, &yp, err, sizeof err);
      tl_tensor_set_f64(x, e, x0 - hs);
      rc |= tl_interp_run(g64, v64, NULL, &ym, err, sizeof err);
      tl_tensor_set_f64(x, e, x0);
      for (int64_t o = 0; o < no && !rc && !skip[e]; o++) {
        double J = (tl_tensor_get_f64(yp, o) - tl_tensor_get_f64(ym, o)) / (2 * hs), Jk;
        int kk = kinks ? kink(n64, k, v64, y64, o, e, &Jk) : KINK_NO;
        if (kk == KINK_SKIP) skip[e] = true;
        if (kk == KINK_YES) {
          J = Jk;
          at_kink[e] = true;
        }
        d[s2] += tl_tensor_get_f64(t->ct, o) * J;
      }
      if (rc || !isfinite(d[s2]) || fabs(d[s2]) > 1e8) bad = true;
      tl_tensor_free(yp);
      tl_tensor_free(ym);
    }
    expect[e] = d[1] + (d[1] - d[0]) / 3;
    tol[e] = fabs(d[1] - d[0]) + 8 * 2.3e-16 * cy / (h / 2);
  }
  if (!bad) {
    double scale = 0, rtol = vjp->dtype == TL_F32 || yt->dtype == TL_F32 ? 2e-3 : 1e-6;
    for (int i = 0; i < t->c.nin; i++) rtol = t->c.in[i].kind == K_FLOAT && t->c.in[i].dtype == TL_F32 ? 2e-3 : rtol;
    for (int64_t e = 0; e < ne; e++) scale = fmax(scale, fabs(expect[e]));
    t->status = 1;
    for (int64_t e = 0; e < ne; e++) {
      if (skip[e]) continue;
      double a = tl_tensor_get_f64(vjp, e), b = expect[e];
      if (!(fabs(a - b) <= rtol * (fabs(a) + fabs(b)) + rtol * scale + tol[e])) {
        t->status = 2;
        snprintf(t->why, sizeof t->why, "element %lld of operand %d differs: rule %.9g vs %s %.9g",
                 (long long)e, k, a, at_kink[e] ? "PyTorch's convention at this kink" : "finite differences", b);
        break;
      }
    }
  }
  tl_free(tol);
  tl_free(expect);
  tl_free(skip);
  tl_free(at_kink);
done:
  if (t->status != 2) trial_free(t);
  for (int i = 0; i < 5; i++) {
    if (i != t->c.nin) tl_tensor_free(v[i]);
    tl_tensor_free(v64[i]);
  }
  tl_tensor_free(outs[0]);
  tl_tensor_free(outs[1]);
  tl_tensor_free(y64);
  tl_graph_free(g);
  tl_graph_free(g64);
}

static void print_values(FILE *f, const char *label, const tl_tensor *t) {
  fprintf(f, "    %s = %s[", label, tl_dtype_name((tl_dtype)t->dtype));
  for (int i = 0; i < t->rank; i++) fprintf(f, "%s%lld", i ? " " : "", (long long)t->dims[i]);
  fprintf(f, "] {");
  for (int64_t i = 0; i < t->numel && i < 12; i++) {
    if (tl_dtype_is_float((tl_dtype)t->dtype)) fprintf(f, "%s%.9g", i ? ", " : "", tl_tensor_get_f64(t, i));
    else fprintf(f, "%s%lld", i ? ", " : "", (long long)tl_tensor_get_i64(t, i));
  }
  fprintf(f, "%s}\n", t->numel > 12 ? ", ..." : "");
}

int tl_check_grad_rules(const gr_rules *rs, const tl_check_opts *o, tl_check_result *res) {
  FILE *f = o->out;
  int per = o->trials > 0 ? (o->trials + 3) / 4 : 50, fails = 0;
  for (int ri = 0; ri < gr_rules_count(rs); ri++) {
    gr_rule_info ru = gr_rule_at(rs, ri);
    res->nrules++;
    rng r = {o->seed * 0x100000001b3ULL + (uint64_t)ri * 6151 + 3};
    int valid = 0, nfail = 0;
    gtrial first;
    bool have = false;
    for (int pass = 0; pass < 2; pass++) {
      int got = 0;
      for (int attempt = 0; attempt < per * 40 && got < per && nfail < 10; attempt++) {
        gtrial t;
        run_trial(rs, ri, &r, pass == 1, &t);
        if (!t.status) continue;
        got++;
        if (t.status == 2) {
          nfail++;
          if (!have) {
            first = t;
            have = true;
            continue;
          }
        }
        trial_free(&t);
      }
      valid += got;
    }
    if (valid == 0) {
      res->nuntested++;
      if (f) fprintf(f, "%s:%d: warning: derivative rule %s: no valid trial\n", ru.file, ru.line, ru.name);
    } else if (o->verbose && f && !have) {
      fprintf(f, "%s:%d: derivative rule %s: ok (%d trials)\n", ru.file, ru.line, ru.name, valid);
    }
    if (!have) continue;
    bool known = false;
    for (int k = 0; k < o->nknown; k++) known |= !strcmp(o->known[k], ru.name);
    if (known) res->nknown++;
    else res->ncex++, fails++;
    res->failed = tl_xrealloc(res->failed, (size_t)(res->nfailed + 1) * sizeof *res->failed);
    res->failed[res->nfailed++] = tl_xstrdup(ru.name);
    if (f) {
      tl_buf b = {0};
      render(&first.c, false, &b);
      fprintf(f, "%s:%d: %s: derivative rule %s: %s (%s trial; %d of %d trials failed)\n", ru.file, ru.line,
              known ? "known counter-example" : "counter-example", ru.name, first.why,
              first.kinks ? "kink" : "smooth", nfail, valid);
      fprintf(f, "    on %s\n", b.s);
      tl_free(b.s);
      for (int i = 0; i < first.c.nin; i++) {
        char nm[16];
        snprintf(nm, sizeof nm, "a%d", i);
        print_values(f, nm, first.ins[i]);
      }
      print_values(f, "ct", first.ct);
    }
    trial_free(&first);
  }
  return fails;
}
