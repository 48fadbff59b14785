/* tensor.c - the tensor language, analysis and rule conditions (tensor.h). */
#include "opt/tensor.h"
#include "opt/control.h"

#include "interp/interp.h"
#include "ir/tg.h"
#include "util/util.h"

#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- payloads ----------------------------------------------------------- */

static tl_attrs payload(eg_egraph *e, uint32_t attr) {
  size_t n;
  const uint8_t *b = eg_attr_bytes(e, attr, &n);
  tl_attrs a;
  tl_attrs_init(&a);
  if (n == sizeof a) memcpy(&a, b, sizeof a);
  return a;
}

static uint32_t intern(eg_egraph *e, const tl_attrs *a) { return eg_attr_intern(e, a, sizeof *a); }

const tn_data *tn_data_of(eg_egraph *e, eg_id id) { return eg_data(e, id); }

/* ---- the language ------------------------------------------------------- */

/* The language's op table: constant, expanded from ops.def like every
 * other op-indexed table. */
static const char *const op_names[TL_OP_COUNT] = {
#define OP(id, name, arity, kind, dr, allowed, required, ...) [TL_OP_##id] = name,
#include "ir/ops.def"
#undef OP
};
static const int op_arity[TL_OP_COUNT] = {
#define OP(id, name, arity, kind, dr, allowed, required, ...) [TL_OP_##id] = arity,
#include "ir/ops.def"
#undef OP
};

static int parse_leaf(const eg_lang *l, const char *tok, size_t n, int *op, uint8_t *attr) {
  (void)l;
  if (n == 0 || n >= 64) return -1;
  char buf[64];
  memcpy(buf, tok, n);
  buf[n] = 0;
  tl_attrs a;
  tl_attrs_init(&a);
  char *end;
  bool is_int = strpbrk(buf, ".eEin") == NULL;
  if (is_int) {
    errno = 0;
    long long v = strtoll(buf, &end, 10);
    if (*end || errno == ERANGE) return -1; /* not an i64 literal */
    a.is_int = 1;
    a.i = v;
  } else {
    double v;
    if (strcmp(buf, "inf") == 0) v = INFINITY;
    else if (strcmp(buf, "-inf") == 0) v = -INFINITY;
    else if (strcmp(buf, "nan") == 0) v = NAN;
    else {
      v = strtod(buf, &end);
      if (*end) return -1;
    }
    a.f = v;
  }
  *op = TL_OP_LIT;
  memcpy(attr, &a, sizeof a);
  return (int)sizeof a;
}

static int parse_attrs(const eg_lang *l, int op, const eg_kv *kv, int nkv, uint8_t *attr, char *err,
                       size_t errsz) {
  tn_ctx *c = l->ctx;
  /* their payload is an index into the context (an input slot, a stored
   * tensor): a rule has none to give, and the analysis would read past the
   * context's tables */
  if (op == TL_OP_INPUT || op == TL_OP_CONST) {
    snprintf(err, errsz, "'%s' stands for one of the program's %s and cannot be written in a "
             "pattern (a number is a literal)", tl_ops[op].name,
             op == TL_OP_INPUT ? "inputs" : "tensors");
    return -1;
  }
  tl_attrs a;
  tl_attrs_init(&a);
  for (int i = 0; i < nkv; i++) {
    tl_buf t = {0};
    tl_buf_printf(&t, ":%.*s %.*s", (int)kv[i].keylen, kv[i].key, (int)kv[i].vallen, kv[i].val);
    int rc = tl_tg_parse_attr(c->store, op, t.s, t.len, &a, err, errsz);
    tl_free(t.s);
    if (rc) return -1;
  }
  /* transpose's :perm has one entry per operand dim, so a reversing one is
   * the default here too: the same node as the graphs' */
  if (op == TL_OP_TRANSPOSE) tl_perm_drop_reversal(&a, a.nperm);
  memcpy(attr, &a, sizeof a);
  return (int)sizeof a;
}

static int print_head(const eg_lang *l, int op, const uint8_t *attr, size_t n, char *buf, size_t size) {
  tn_ctx *c = l->ctx;
  tl_attrs a;
  tl_attrs_init(&a);
  if (n == sizeof a) memcpy(&a, attr, sizeof a);
  tl_buf b = {0};
  switch (op) {
  case TL_OP_INPUT:
    tl_buf_printf(&b, "%s", a.lit >= 0 && a.lit < c->ninputs ? c->store->names[c->in_name[a.lit]] : "?in");
    break;
  case TL_OP_LIT: {
    char v[64];
    if (a.is_int) snprintf(v, sizeof v, "%lld", (long long)a.i);
    else tl_fmt_double(v, sizeof v, a.f, false);
    tl_buf_printf(&b, "%s", v);
    break;
  }
  case TL_OP_CONST: {
    /* the whole literal is the head: it has no children */
    tl_graph *tmp = tl_graph_new("c");
    tl_graph_add_const(tmp, tl_tensor_copy(c->store->lits[a.lit]), (tl_loc){0, 0});
    char *s = tl_tg_print_node(tmp, 0);
    tl_buf_printf(&b, "%s", s);
    tl_free(s);
    tl_graph_free(tmp);
    break;
  }
  case TL_OP_FILL: {
    char v[64];
    if (a.is_int) snprintf(v, sizeof v, "%lld", (long long)a.i);
    else tl_fmt_double(v, sizeof v, a.f, a.dtype == TL_F32);
    tl_buf_printf(&b, "(fill %s ", tl_dtype_name((tl_dtype)a.dtype));
    tl_tg_print_dims(c->store, a.shape, a.nshape, &b);
    tl_buf_printf(&b, " %s)", v);
    break;
  }
  default:
    tl_buf_printf(&b, "%s", tl_ops[op].name);
    tl_tg_print_attrs(c->store, &a, &b);
  }
  int len = snprintf(buf, size, "%s", b.s ? b.s : "");
  tl_free(b.s);
  return len;
}

/* ---- the analysis ------------------------------------------------------- */

static bool types_equal(const tl_type *a, const tl_type *b) {
  if (a->dtype != b->dtype || a->weak != b->weak || a->rank != b->rank) return false;
  for (int i = 0; i < a->rank; i++)
    if (a->dims[i] != b->dims[i]) return false;
  return true;
}

static uint8_t value_facts(double v) { return tl_value_facts(v); }

static uint8_t op_facts(int op, const tn_data *const *k, uint32_t n) {
  uint8_t f[3] = {0, 0, 0};
  for (uint32_t i = 0; i < n && i < 3; i++) f[i] = k[i]->facts;
  return tl_sign_facts(op, f, (int)(n < 3 ? n : 3), n == 2 && k[0] == k[1]);
}

/* Folds an elementwise op whose operands are all uniform constants. */
static bool fold(int op, const tl_attrs *a, const tn_data *const *k, uint32_t n, const tl_type *out,
                 double *value) {
  if (tl_ops[op].kind != TL_KIND_ELEMWISE || n > 3) return false;
  for (uint32_t i = 0; i < n; i++)
    if (!k[i]->has_value) return false;
  tl_tensor *args[3] = {NULL, NULL, NULL};
  tl_type ts[3];
  const tl_type *tp[3];
  bool ok = true;
  char err[128];
  for (uint32_t i = 0; i < n && ok; i++) {
    args[i] = tl_tensor_new((tl_dtype)k[i]->type.dtype, 0, NULL, err, sizeof err);
    if (!args[i]) ok = false;
    else if (tl_dtype_is_float((tl_dtype)k[i]->type.dtype)) tl_tensor_set_f64(args[i], 0, k[i]->value);
    else tl_tensor_set_i64(args[i], 0, (int64_t)k[i]->value);
    ts[i] = k[i]->type;
    ts[i].rank = 0;
    tp[i] = &ts[i];
  }
  tl_type ot = *out;
  ot.rank = 0;
  tl_tensor *res = NULL;
  if (ok && tl_interp_eval(op, a, (const tl_tensor *const *)args, tp, (int)n, &ot, &res, err, sizeof err) == 0) {
    *value = tl_dtype_is_float((tl_dtype)res->dtype) ? tl_tensor_get_f64(res, 0)
                                                      : (double)tl_tensor_get_i64(res, 0);
    /* integers beyond 2^53 do not survive a double: do not claim a value */
    if (tl_dtype_is_int((tl_dtype)res->dtype) && fabs(*value) > 9007199254740992.0) ok = false;
  } else {
    ok = false;
  }
  tl_tensor_free(res);
  for (uint32_t i = 0; i < n; i++) tl_tensor_free(args[i]);
  return ok;
}

static void make(eg_egraph *e, int op, uint32_t attr, const eg_id *kids, uint32_t n, void *out,
                 void *ctxp) {
  tn_ctx *c = ctxp;
  tn_data *d = out;
  memset(d, 0, sizeof *d);
  tl_attrs a = payload(e, attr);
  if (op == TL_OP_INPUT) {
    d->type = c->in_type[a.lit];
    /* a declared range gives the sign facts the guards ask for */
    d->facts = tl_range_facts(c->in_lo[a.lit], c->in_hi[a.lit]);
    return;
  }
  if (op == TL_OP_CONST) {
    const tl_tensor *t = c->store->lits[a.lit];
    d->type.dtype = t->dtype;
    d->type.rank = t->rank;
    memcpy(d->type.dims, t->dims, sizeof t->dims);
    if (t->numel > 0) {
      double v0 = tl_tensor_get_f64(t, 0);
      bool uniform = true;
      uint8_t facts = TN_NONZERO | TN_POSITIVE | TN_NONNEG;
      for (int64_t i = 0; i < t->numel; i++) {
        double v = tl_tensor_get_f64(t, i);
        if (v != v0 && !(isnan(v) && isnan(v0))) uniform = false;
        facts &= value_facts(v) | (isnan(v) ? (TN_NONZERO | TN_POSITIVE | TN_NONNEG) : 0);
      }
      d->facts = facts;
      if (uniform && tl_dtype_is_float((tl_dtype)t->dtype)) {
        d->has_value = 1;
        d->value = v0;
      } else if (uniform) {
        d->has_value = 1;
        d->value = (double)tl_tensor_get_i64(t, 0);
      }
    }
    return;
  }
  const tn_data *k[TL_GRAPH_MAX_ARGS];
  const tl_type *kt[TL_GRAPH_MAX_ARGS];
  if (n > TL_GRAPH_MAX_ARGS) {
    d->type.dtype = TL_DTYPE_ERROR;
    return;
  }
  for (uint32_t i = 0; i < n; i++) {
    k[i] = eg_data(e, kids[i]);
    kt[i] = &k[i]->type;
    if (k[i]->type.dtype == TL_DTYPE_ERROR) {
      d->type.dtype = TL_DTYPE_ERROR;
      return;
    }
  }
  char err[256];
  if (tl_infer(c->store, op, &a, kt, (int)n, &d->type, err, sizeof err) != 0) {
    memset(d, 0, sizeof *d);
    d->type.dtype = TL_DTYPE_ERROR;
    return;
  }
  if (op == TL_OP_LIT || op == TL_OP_FILL) {
    d->has_value = 1;
    d->value = a.is_int ? (double)a.i : a.f;
  } else if (op == TL_OP_ZEROS_LIKE || op == TL_OP_ONES_LIKE) {
    d->has_value = 1;
    d->value = op == TL_OP_ONES_LIKE;
  } else if (op == TL_OP_DIM && n == 1) {
    const tl_type *xt = kt[0];
    int ax = a.axes[0] < 0 ? a.axes[0] + xt->rank : a.axes[0];
    if (ax >= 0 && ax < xt->rank && !tl_dim_is_sym(xt->dims[ax])) {
      d->has_value = 1;
      d->value = (double)xt->dims[ax];
    }
  } else {
    double v;
    if (fold(op, &a, k, n, &d->type, &v)) {
      d->has_value = 1;
      d->value = v;
    }
  }
  d->facts = op_facts(op, k, n);
  if (d->has_value) d->facts |= value_facts(d->value);
  if (d->facts & TN_POSITIVE) d->facts |= TN_NONZERO | TN_NONNEG;
}

/* the same double to the bit (NaN is itself, -0 is not 0) */
static bool same_value(double a, double b) { return memcmp(&a, &b, sizeof a) == 0; }

static unsigned merge(eg_egraph *e, void *top, const void *fromp, void *ctx) {
  (void)e;
  (void)ctx;
  tn_data *to = top;
  const tn_data *from = fromp;
  unsigned r = 0;
  uint8_t facts = to->facts | from->facts;
  if (facts != to->facts) r |= EG_MERGE_TO;
  if (facts != from->facts) r |= EG_MERGE_FROM;
  to->facts = facts;
  if (from->has_value && !to->has_value) {
    to->has_value = 1;
    to->value = from->value;
    r |= EG_MERGE_TO;
  } else if (to->has_value && (!from->has_value || !same_value(to->value, from->value))) {
    /* two known values that differ (an unsound rule, or one constant
     * folded two ways that round apart): the class keeps to's, which is
     * news to the parents of from's class */
    r |= EG_MERGE_FROM;
  }
  return r;
}

static bool refuse(eg_egraph *e, const void *ap, const void *bp, char *why, size_t n, void *ctx) {
  (void)e;
  tn_ctx *c = ctx;
  const tn_data *a = ap, *b = bp;
  if (types_equal(&a->type, &b->type)) return false;
  char s1[160], s2[160];
  snprintf(why, n, "type %s differs from %s", tl_type_str(c->store, &a->type, s1, sizeof s1),
           tl_type_str(c->store, &b->type, s2, sizeof s2));
  return true;
}

static bool is_value_leaf(const eg_egraph *e, const eg_node *nd, void *ctx) {
  (void)e;
  (void)ctx;
  return nd->op == TL_OP_LIT || nd->op == TL_OP_FILL;
}

/* A class with a known uniform value gets its value as a leaf (a weak lit or
 * a typed fill), so extraction can replace the computation by the constant.
 * The e-graph calls this from inside eg_add and eg_union, and it adds and
 * unions itself: the leaf's own call returns at once (its class holds a
 * value leaf), so the re-entry is one level deep whatever the graph. */
static void modify(eg_egraph *e, eg_id cls, void *ctx) {
  (void)ctx;
  const tn_data *d = eg_data(e, cls);
  if (!d->has_value || d->type.dtype == TL_DTYPE_ERROR) return;
  uint32_t nn;
  const uint32_t *nodes = eg_class_nodes(e, eg_find(e, cls), &nn);
  for (uint32_t i = 0; i < nn; i++)
    if (is_value_leaf(e, eg_get_node(e, nodes[i]), NULL)) return;
  tl_type t = d->type;
  double v = d->value;
  tl_attrs a;
  tl_attrs_init(&a);
  int op;
  bool is_int = !tl_dtype_is_float((tl_dtype)t.dtype);
  if (t.weak) {
    op = TL_OP_LIT;
    a.is_int = is_int;
  } else {
    op = TL_OP_FILL;
    a.dtype = t.dtype;
    a.nshape = t.rank;
    memcpy(a.shape, t.dims, sizeof a.shape);
    a.is_int = is_int;
  }
  if (is_int) a.i = (int64_t)v;
  else a.f = v;
  eg_id leaf = eg_add(e, op, intern(e, &a), NULL, 0);
  eg_reason why = {EG_WHY_ANALYSIS, "constant-fold", false};
  eg_union_why(e, cls, leaf, &why);
}

/* ---- conditions ------------------------------------------------------- */

static const tn_data *arg_data(eg_egraph *e, uint32_t id) { return eg_data(e, id); }

static bool c_nonzero(eg_egraph *e, const uint32_t *a, const char *const *at, int n, void *x) {
  (void)at; (void)n; (void)x;
  return arg_data(e, a[0])->facts & TN_NONZERO;
}
static bool c_positive(eg_egraph *e, const uint32_t *a, const char *const *at, int n, void *x) {
  (void)at; (void)n; (void)x;
  return arg_data(e, a[0])->facts & TN_POSITIVE;
}
static bool c_nonneg(eg_egraph *e, const uint32_t *a, const char *const *at, int n, void *x) {
  (void)at; (void)n; (void)x;
  return arg_data(e, a[0])->facts & TN_NONNEG;
}
static bool c_nonpos(eg_egraph *e, const uint32_t *a, const char *const *at, int n, void *x) {
  (void)at; (void)n; (void)x;
  return arg_data(e, a[0])->facts & TN_NONPOS;
}
static bool c_true(eg_egraph *e, const uint32_t *a, const char *const *at, int n, void *x) {
  (void)e; (void)a; (void)at; (void)n; (void)x;
  return true;
}
static bool c_same_dtype(eg_egraph *e, const uint32_t *a, const char *const *at, int n, void *x) {
  (void)at; (void)x;
  for (int i = 1; i < n; i++)
    if (arg_data(e, a[0])->type.dtype != arg_data(e, a[i])->type.dtype) return false;
  return true;
}
static bool c_const(eg_egraph *e, const uint32_t *a, const char *const *at, int n, void *x) {
  (void)at; (void)n; (void)x;
  return arg_data(e, a[0])->has_value;
}
static bool c_scalar(eg_egraph *e, const uint32_t *a, const char *const *at, int n, void *x) {
  (void)at; (void)n; (void)x;
  return arg_data(e, a[0])->type.rank == 0;
}
static bool c_float(eg_egraph *e, const uint32_t *a, const char *const *at, int n, void *x) {
  (void)at; (void)n; (void)x;
  return tl_dtype_is_float((tl_dtype)arg_data(e, a[0])->type.dtype);
}
static bool c_strong(eg_egraph *e, const uint32_t *a, const char *const *at, int n, void *x) {
  (void)at; (void)n; (void)x;
  return !arg_data(e, a[0])->type.weak;
}
static bool c_same_shape(eg_egraph *e, const uint32_t *a, const char *const *at, int n, void *x) {
  (void)at; (void)x;
  const tl_type *t0 = &arg_data(e, a[0])->type;
  for (int i = 1; i < n; i++) {
    const tl_type *t = &arg_data(e, a[i])->type;
    if (t->rank != t0->rank || memcmp(t->dims, t0->dims, (size_t)t->rank * sizeof *t->dims)) return false;
  }
  return true;
}
static bool c_same_type(eg_egraph *e, const uint32_t *a, const char *const *at, int n, void *x) {
  (void)at; (void)x;
  for (int i = 1; i < n; i++)
    if (!types_equal(&arg_data(e, a[0])->type, &arg_data(e, a[i])->type)) return false;
  return true;
}
static bool c_dtype(eg_egraph *e, const uint32_t *a, const char *const *at, int n, void *x) {
  (void)n; (void)x;
  int dt = at[1] ? tl_dtype_lookup(at[1], strlen(at[1])) : -1;
  return dt >= 0 && arg_data(e, a[0])->type.dtype == dt;
}
static bool c_rank(eg_egraph *e, const uint32_t *a, const char *const *at, int n, void *x) {
  (void)n; (void)x;
  return at[1] && arg_data(e, a[0])->type.rank == atoi(at[1]);
}
/* (value ?x V): every element of ?x is the number V */
static bool c_value(eg_egraph *e, const uint32_t *a, const char *const *at, int n, void *x) {
  (void)n; (void)x;
  const tn_data *d = arg_data(e, a[0]);
  return at[1] && d->has_value && d->value == strtod(at[1], NULL);
}
/* (lossless-cast ?x DT): casting ?x's dtype to DT loses nothing */
static bool c_widens(eg_egraph *e, const uint32_t *a, const char *const *at, int n, void *x) {
  (void)n; (void)x;
  int to = at[1] ? tl_dtype_lookup(at[1], strlen(at[1])) : -1;
  int from = arg_data(e, a[0])->type.dtype;
  if (to < 0) return false;
  if (from == to || from == TL_BOOL) return true;
  if (from == TL_I32) return to == TL_I64 || to == TL_F64;
  if (from == TL_F32) return to == TL_F64;
  return false;
}

static bool c_numeric(eg_egraph *e, const uint32_t *a, const char *const *at, int n, void *x) {
  (void)at; (void)n; (void)x;
  uint8_t dt = arg_data(e, a[0])->type.dtype;
  return dt != TL_BOOL && dt < TL_DTYPE_COUNT;
}
/* (fits ?b ?a): broadcasting ?b against ?a leaves ?a's shape unchanged */
static bool c_fits(eg_egraph *e, const uint32_t *a, const char *const *at, int n, void *x) {
  (void)at; (void)n; (void)x;
  const tl_type *b = &arg_data(e, a[0])->type, *t = &arg_data(e, a[1])->type;
  if (b->rank > t->rank) return false;
  for (int i = 0; i < b->rank; i++) {
    int64_t d = b->dims[i], td = t->dims[t->rank - b->rank + i];
    if (d != td && d != 1) return false;
  }
  return true;
}

const tn_cond_def tn_conds[TN_C_COUNT] = {
  [TN_C_NONZERO] = {"nonzero", "v", c_nonzero}, [TN_C_POSITIVE] = {"positive", "v", c_positive},
  [TN_C_NONNEG] = {"nonneg", "v", c_nonneg}, [TN_C_NONPOS] = {"nonpos", "v", c_nonpos},
  [TN_C_CONST] = {"const", "v", c_const}, [TN_C_SCALAR] = {"scalar", "v", c_scalar},
  [TN_C_FLOAT] = {"float", "v", c_float}, [TN_C_STRONG] = {"strong", "v", c_strong},
  [TN_C_NUMERIC] = {"numeric", "v", c_numeric}, [TN_C_SAME_SHAPE] = {"same-shape", "vv+", c_same_shape},
  [TN_C_SAME_TYPE] = {"same-type", "vv+", c_same_type}, [TN_C_SAME_DTYPE] = {"same-dtype", "vv+", c_same_dtype},
  [TN_C_DTYPE] = {"dtype", "va", c_dtype}, [TN_C_RANK] = {"rank", "va", c_rank},
  [TN_C_VALUE] = {"value", "va", c_value}, [TN_C_LOSSLESS_CAST] = {"lossless-cast", "va", c_widens},
  [TN_C_FITS] = {"fits", "vv", c_fits}, [TN_C_IMPROVES_ACCURACY] = {"improves-accuracy", "", c_true},
};

/* ---- context ---------------------------------------------------------- */

tn_ctx *tn_ctx_new(void) {
  tn_ctx *c = tl_xcalloc(1, sizeof *c);
  c->store = tl_graph_new("store");
  for (int op = 0; op < TL_OP_COUNT; op++) c->op_class[op] = tl_ops[op].fuse;
  c->lang = (eg_lang){.name = "tensor", .nops = TL_OP_COUNT, .op_names = op_names, .arity = op_arity,
                      .parse_leaf = parse_leaf, .parse_attrs = parse_attrs, .print_head = print_head,
                      .nclasses = TL_FUSE_CLASS_COUNT, .class_names = tl_fuse_class_names,
                      .op_class = c->op_class, .control = &tn_control_lang, .ctx = c};
  c->analysis = (eg_analysis){sizeof(tn_data), make, merge, modify, refuse, c};
  c->conds = eg_conds_new();
  for (int i = 0; i < TN_C_COUNT; i++)
    eg_conds_add(c->conds, tn_conds[i].name, tn_conds[i].args, tn_conds[i].on_classes, c);
  return c;
}

tn_mark tn_ctx_mark(const tn_ctx *c) {
  return (tn_mark){c->store->nsyms, c->store->nnames, c->store->nlits};
}

void tn_ctx_reset(tn_ctx *c, tn_mark m) {
  tl_graph *s = c->store;
  while (s->nsyms > m.nsyms) tl_free(s->syms[--s->nsyms]);
  while (s->nnames > m.nnames) tl_free(s->names[--s->nnames]);
  while (s->nlits > m.nlits) tl_tensor_free(s->lits[--s->nlits]);
  if (c->ntrips_sym > m.nsyms) c->ntrips_sym = m.nsyms;
  c->ninputs = 0;
}

tn_slots tn_ctx_take_slots(tn_ctx *c) {
  tn_slots s = {c->in_name, c->in_type, c->in_lo, c->in_hi, c->ninputs};
  c->in_name = NULL, c->in_type = NULL, c->in_lo = c->in_hi = NULL;
  c->ninputs = c->capinputs = 0;
  return s;
}

void tn_ctx_put_slots(tn_ctx *c, tn_slots s) {
  tl_free(c->in_name);
  tl_free(c->in_type);
  tl_free(c->in_lo);
  tl_free(c->in_hi);
  c->in_name = s.in_name, c->in_type = s.in_type, c->in_lo = s.in_lo, c->in_hi = s.in_hi;
  c->ninputs = c->capinputs = s.n;
}

void tn_ctx_free(tn_ctx *c) {
  if (!c) return;
  tl_graph_free(c->store);
  tl_free(c->trips_sym);
  tl_free(c->in_name);
  tl_free(c->in_type);
  tl_free(c->in_lo);
  tl_free(c->in_hi);
  eg_conds_free(c->conds);
  tl_free(c);
}

/* Renames src's symbols in t into the context's symbol table. */
static void rename_dims(tn_ctx *c, const tl_graph *src, int64_t *dims, int n) {
  for (int i = 0; i < n; i++)
    if (dims[i] != TL_DIM_INFER && tl_dim_is_sym(dims[i])) {
      const char *s = src->syms[tl_dim_sym_id(dims[i])];
      dims[i] = tl_dim_sym(tl_graph_sym(c->store, s, strlen(s)));
    }
}

int tn_input(tn_ctx *c, const tl_graph *src, int32_t node, char *err, size_t err_size) {
  const tl_node *n = &src->nodes[node];
  const char *name = src->names[n->name];
  tl_type tt = n->type;
  rename_dims(c, src, tt.dims, tt.rank);
  double lo = -INFINITY, hi = INFINITY;
  tl_graph_range(src, node, &lo, &hi);
  for (int i = 0; i < c->ninputs; i++) {
    if (strcmp(c->store->names[c->in_name[i]], name) != 0) continue;
    if (!types_equal(&c->in_type[i], &tt)) {
      char s1[160], s2[160];
      snprintf(err, err_size, "input '%s' is %s in one graph and %s in another", name,
               tl_type_str(c->store, &c->in_type[i], s1, sizeof s1),
               tl_type_str(c->store, &tt, s2, sizeof s2));
      return -1;
    }
    if (c->in_lo[i] != lo || c->in_hi[i] != hi) {
      snprintf(err, err_size, "input '%s' has the range [%g, %g] in one graph and [%g, %g] in another",
               name, c->in_lo[i], c->in_hi[i], lo, hi);
      return -1;
    }
    return i;
  }
  if (c->ninputs == c->capinputs) {
    c->capinputs = c->capinputs ? 2 * c->capinputs : 8;
    c->in_name = tl_xrealloc(c->in_name, (size_t)c->capinputs * sizeof *c->in_name);
    c->in_type = tl_xrealloc(c->in_type, (size_t)c->capinputs * sizeof *c->in_type);
    c->in_lo = tl_xrealloc(c->in_lo, (size_t)c->capinputs * sizeof *c->in_lo);
    c->in_hi = tl_xrealloc(c->in_hi, (size_t)c->capinputs * sizeof *c->in_hi);
  }
  c->in_name[c->ninputs] = tl_graph_name(c->store, name);
  c->in_type[c->ninputs] = tt;
  c->in_lo[c->ninputs] = lo;
  c->in_hi[c->ninputs] = hi;
  return c->ninputs++;
}

/* Node n of g into e with attributes a (its dims already the store's) and
 * its operands' classes from cls (kids: scratch); a const's tensor is
 * copied into the store. */
static eg_id load_node(tn_ctx *c, eg_egraph *e, const tl_graph *g, const tl_node *n, tl_attrs *a,
                       const eg_id *cls, eg_id *kids) {
  if (n->op == TL_OP_CONST) {
    TL_GROW(c->store->lits, c->store->nlits, c->store->caplits);
    c->store->lits[c->store->nlits] = tl_tensor_copy(g->lits[n->attrs.lit]);
    a->lit = c->store->nlits++;
  }
  for (int k = 0; k < n->ninputs; k++) kids[k] = cls[tl_node_inputs(g, n)[k]];
  return eg_add(e, n->op, intern(e, a), kids, n->ninputs);
}

int tn_load_graph(tn_ctx *c, eg_egraph *e, const tl_graph *g, eg_id *out_cls, int *in_slots,
                  char *err, size_t err_size) {
  eg_id *cls = tl_xmalloc(((size_t)g->nnodes + 1) * sizeof *cls);
  eg_id *kids = tl_xmalloc(TL_GRAPH_MAX_ARGS * sizeof *kids);
  int rc = 0;
  /* control nodes are typed through the functions they call */
  if (g->fns) tl_graph_set_fns(c->store, g->fns);
  for (int i = 0; i < g->ninputs && rc == 0; i++) {
    int slot = tn_input(c, g, g->inputs[i], err, err_size);
    if (slot < 0) {
      rc = -1;
      break;
    }
    if (in_slots) in_slots[i] = slot;
    tl_attrs a;
    tl_attrs_init(&a);
    a.lit = slot;
    cls[g->inputs[i]] = eg_add(e, TL_OP_INPUT, intern(e, &a), NULL, 0);
  }
  for (int32_t id = 0; id < g->nnodes && rc == 0; id++) {
    const tl_node *n = &g->nodes[id];
    if (n->op == TL_OP_INPUT) continue;
    tl_attrs a = n->attrs;
    rename_dims(c, g, a.shape, a.nshape);
    if (a.present & TL_A_TRIPS) { /* a loop's :trips */
      rename_dims(c, g, &a.tdim, 1);
      int s = tl_dim_sym_id(a.tdim);
      if (s >= c->ntrips_sym) {
        c->trips_sym = tl_xrealloc(c->trips_sym, (size_t)s + 1);
        memset(c->trips_sym + c->ntrips_sym, 0, (size_t)(s + 1 - c->ntrips_sym));
        c->ntrips_sym = s + 1;
      }
      c->trips_sym[s] = 1;
    }
    cls[id] = load_node(c, e, g, n, &a, cls, kids);
  }
  if (rc == 0)
    for (int i = 0; i < g->noutputs; i++) out_cls[i] = cls[g->outputs[i].node];
  tl_free(cls);
  tl_free(kids);
  return rc;
}

tl_attrs tn_attrs(eg_egraph *e, const eg_node *nd) { return payload(e, nd->attr); }

eg_id tn_add(eg_egraph *e, int op, const tl_attrs *a, const eg_id *kids, uint32_t n) {
  return eg_add(e, op, intern(e, a), kids, n);
}

#define TN_UNBOUND INT64_MAX

/* A callee dim as the caller sees it (map: f's symbol -> the store's dim). */
static int64_t callee_dim(int64_t d, const int64_t *map) {
  if (d == TL_DIM_INFER || !tl_dim_is_sym(d)) return d;
  return map[tl_dim_sym_id(d)];
}

int tn_load_fn(tn_ctx *c, eg_egraph *e, const tl_graph *f, const eg_id *args, eg_id *out_cls) {
  int64_t *map = tl_xmalloc(((size_t)f->nsyms + 1) * sizeof *map);
  for (int s = 0; s < f->nsyms; s++) map[s] = TN_UNBOUND;
  for (int i = 0; i < f->ninputs; i++) {
    if (args[i] == EG_NONE) continue; /* a parameter nothing loaded reads */
    const tl_type *pt = &f->nodes[f->inputs[i]].type, *at = &tn_data_of(e, eg_find(e, args[i]))->type;
    for (int d = 0; d < pt->rank && d < at->rank; d++)
      if (tl_dim_is_sym(pt->dims[d])) map[tl_dim_sym_id(pt->dims[d])] = at->dims[d];
  }
  eg_id *cls = tl_xmalloc(((size_t)f->nnodes + 1) * sizeof *cls);
  eg_id *kids = tl_xmalloc(TL_GRAPH_MAX_ARGS * sizeof *kids);
  for (int i = 0; i < f->ninputs; i++) cls[f->inputs[i]] = args[i];
  int rc = 0;
  for (int32_t id = 0; id < f->nnodes && rc == 0; id++) {
    const tl_node *n = &f->nodes[id];
    if (n->op == TL_OP_INPUT) continue;
    tl_attrs a = n->attrs;
    for (int d = 0; d < a.nshape; d++)
      if ((a.shape[d] = callee_dim(a.shape[d], map)) == TN_UNBOUND) rc = -1; /* a dim no parameter fixes */
    if (a.present & TL_A_TRIPS) rc = -1; /* a loop's :trips is its body's own symbol: the call stays */
    if (rc) break;
    cls[id] = load_node(c, e, f, n, &a, cls, kids);
  }
  if (rc == 0)
    for (int i = 0; i < f->noutputs; i++) out_cls[i] = cls[f->outputs[i].node];
  tl_free(map);
  tl_free(cls);
  tl_free(kids);
  return rc;
}

/* dims of the store's symbol table as dims of g's (by name) */
static void remap_dims(tn_ctx *c, tl_graph *g, int64_t *dims, int n) {
  for (int i = 0; i < n; i++)
    if (tl_dim_is_sym(dims[i]) && dims[i] != TL_DIM_INFER) {
      const char *s = c->store->syms[tl_dim_sym_id(dims[i])];
      dims[i] = tl_dim_sym(tl_graph_sym(g, s, strlen(s)));
    }
}

tl_graph *tn_build_graph(tn_ctx *c, eg_egraph *e, const uint32_t *choice, const eg_id *roots,
                         const char *const *out_names, int nroots, const int *in_slots, int nin,
                         const char *name, uint8_t **facts, char *err, size_t err_size) {
  tl_graph *g = tl_graph_new(name);
  tl_graph_set_fns(g, c->store->fns);
  /* The store's base symbols, in order; its derived ones (ir/symdim.h)
   * only as the inputs and chosen terms use them, by name: a derived dim
   * is also a bind-time check, and one that only an unchosen term made
   * (a slice the rules tried) must not constrain the program. */
  for (int i = 0; i < c->store->nsyms; i++)
    if (!tl_sym_derived(c->store, i) && !(i < c->ntrips_sym && c->trips_sym[i]))
      tl_graph_sym(g, c->store->syms[i], strlen(c->store->syms[i]));
  int32_t *in_node = tl_xmalloc(((size_t)c->ninputs + 1) * sizeof *in_node);
  for (int i = 0; i < c->ninputs; i++) in_node[i] = -1;
  for (int i = 0; i < nin; i++) {
    int s = in_slots[i];
    tl_type it = c->in_type[s];
    remap_dims(c, g, it.dims, it.rank);
    in_node[s] = tl_graph_add_input(g, c->store->names[c->in_name[s]], &it, (tl_loc){0, 0});
    if (c->in_lo[s] != -INFINITY || c->in_hi[s] != INFINITY) tl_graph_set_range(g, in_node[s], c->in_lo[s], c->in_hi[s]);
  }
  size_t nids = eg_nids(e);
  int32_t *built = tl_xmalloc((nids + 1) * sizeof *built);
  for (size_t i = 0; i < nids; i++) built[i] = -1;
  /* iterative post-order over the chosen terms (graphs can be deep): a
   * frame is a class and its next operand; a class met again while its
   * frame is open is a cycle in the choice */
  typedef struct frame { eg_id cl; uint32_t k; } frame;
  size_t cap = 256, sp = 0;
  frame *stack = tl_xmalloc(cap * sizeof *stack);
  uint8_t *open = tl_xcalloc(nids + 1, 1);
  int32_t *args = tl_xmalloc(TL_GRAPH_MAX_ARGS * sizeof *args);
  bool ok = true;
  for (int r = 0; r < nroots && ok; r++) {
    eg_id root = eg_find(e, roots[r]);
    if (built[root] >= 0) continue;
    stack[sp++] = (frame){root, 0};
    open[root] = 1;
    while (sp > 0 && ok) {
      frame *f = &stack[sp - 1];
      eg_id cl = f->cl;
      if (choice[cl] == EG_NONE) {
        snprintf(err, err_size, "extraction chose no term for e-class %u", cl);
        ok = false;
        break;
      }
      const eg_node *nd = eg_get_node(e, choice[cl]);
      const eg_id *kids = eg_node_kids(e, nd);
      if (f->k < nd->n) {
        eg_id kc = eg_find(e, kids[f->k++]);
        if (built[kc] >= 0) continue;
        if (open[kc]) {
          snprintf(err, err_size, "extraction chose a cyclic term at e-class %u", kc);
          ok = false;
          break;
        }
        if (sp == cap) stack = tl_xrealloc(stack, (cap *= 2) * sizeof *stack);
        stack[sp++] = (frame){kc, 0};
        open[kc] = 1;
        continue;
      }
      sp--;
      open[cl] = 0;
      tl_attrs a = payload(e, nd->attr);
      int32_t id;
      char e2[512];
      if (nd->op == TL_OP_INPUT) {
        id = in_node[a.lit];
        if (id < 0) {
          snprintf(err, err_size, "extracted term uses input '%s' that the graph does not declare",
                   c->store->names[c->in_name[a.lit]]);
          ok = false;
          break;
        }
      } else if (nd->op == TL_OP_CONST) {
        id = tl_graph_add_const(g, tl_tensor_copy(c->store->lits[a.lit]), (tl_loc){0, 0});
      } else {
        for (uint32_t k = 0; k < nd->n; k++) args[k] = built[eg_find(e, kids[k])];
        remap_dims(c, g, a.shape, a.nshape); /* reshape, broadcast_to, fill */
        if (a.present & TL_A_TRIPS) remap_dims(c, g, &a.tdim, 1);
        id = tl_graph_add(g, nd->op, &a, args, (int)nd->n, (tl_loc){0, 0}, e2, sizeof e2);
        if (id < 0) {
          snprintf(err, err_size, "extracted term is ill-typed: %s", e2);
          ok = false;
          break;
        }
      }
      built[cl] = id;
    }
  }
  if (ok)
    for (int r = 0; r < nroots; r++) tl_graph_add_output(g, out_names[r], built[eg_find(e, roots[r])]);
  if (ok && facts) {
    *facts = tl_xcalloc((size_t)g->nnodes + 1, 1);
    for (size_t cl = 0; cl < nids; cl++)
      if (built[cl] >= 0 && (eg_id)cl == eg_find(e, (eg_id)cl)) (*facts)[built[cl]] |= tn_data_of(e, (eg_id)cl)->facts;
  }
  tl_free(stack);
  tl_free(open);
  tl_free(args);
  tl_free(built);
  tl_free(in_node);
  if (!ok) {
    tl_graph_free(g);
    return NULL;
  }
  return g;
}

/* ---- weights ------------------------------------------------------------ */

/* The op table's WEIGHT column: transcendental functions cost several
 * flops; the fused stable forms a little less than the naive compositions
 * they replace (log_softmax below x - logsumexp(x): 1 + 11). */
static double weights[TL_OP_COUNT];
static pthread_once_t weights_once = PTHREAD_ONCE_INIT;

static void init_weights(void) {
  for (int op = 0; op < TL_OP_COUNT; op++) weights[op] = tl_ops[op].weight;
}

/* Filled once (pthread_once: optimizers on several threads share it). */
const double *tn_op_weights(void) {
  pthread_once(&weights_once, init_weights);
  return weights;
}

/* ---- the op table's declarations ---------------------------------------- */

int tn_op_table_rules(eg_rules *r, tl_diag *d) {
  size_t cap = 4096, len = 0;
  char *text = tl_xmalloc(cap);
  int first = r->ninplaces;
  len += (size_t)snprintf(text, cap, "(ruleset op-table\n");
  for (int op = 0; op < TL_OP_COUNT; op++) {
    const tl_op_info *oi = &tl_ops[op];
    if (!oi->inplace || oi->arity < 1) continue;
    char pat[256], dst[64];
    int pl = snprintf(pat, sizeof pat, "(%s", oi->name), dl = 0;
    for (int i = 0; i < oi->arity && i < 3; i++) {
      pl += snprintf(pat + pl, sizeof pat - (size_t)pl, " ?x%d", i);
      if (oi->inplace & (1u << i)) dl += snprintf(dst + dl, sizeof dst - (size_t)dl, " ?x%d", i);
    }
    if (oi->inplace & TL_INPLACE_ROWS || oi->required_attrs & TL_A_AXIS)
      pl += snprintf(pat + pl, sizeof pat - (size_t)pl, " :axis ?axis");
    if (oi->required_attrs & TL_A_DTYPE) pl += snprintf(pat + pl, sizeof pat - (size_t)pl, " :dtype ?dtype");
    snprintf(pat + pl, sizeof pat - (size_t)pl, ")");
    char line[512];
    int ll = snprintf(line, sizeof line, "  (inplace %s-ip %s :destroys%s%s)\n", oi->name, pat, dst,
                      oi->inplace & TL_INPLACE_ROWS ? " :rowwise" : "");
    if (len + (size_t)ll + 2 >= cap) text = tl_xrealloc(text, cap *= 2);
    memcpy(text + len, line, (size_t)ll + 1);
    len += (size_t)ll;
  }
  memcpy(text + len, ")", 2);
  len++;
  int nerr = eg_rules_load(r, "ir/ops.def", text, len, d);
  tl_free(text);
  /* each declaration is the op's row of ops.def, not a line of the text */
  for (int i = first; !nerr && i < r->ninplaces; i++) {
    r->inplaces[i].line = tl_ops[r->inplaces[i].op].line;
    r->inplaces[i].col = 1;
  }
  return nerr ? -1 : 0;
}
