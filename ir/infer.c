/* infer.c - dtype and shape inference for every op.
 *
 * One function per family of ops, picked through a table indexed by op
 * (tests/ir checks it has no hole). The rules are numpy's: broadcasting
 * aligns shapes on the right and stretches size-1 dims; NEP 50 promotion
 * lets weakly typed scalar literals take the other operand's dtype.
 *
 * Symbolic dims: the same symbol is the same size. A symbol broadcast
 * against a concrete size other than 1 is an error (the symbol might be
 * anything); two different symbols must be equal when the graph is bound
 * (same_at_bind), as PyTensor checks them at run time. Sizes computed
 * from symbols (concat along a symbolic axis, slicing one, reshape's -1)
 * are derived dims of the graph's table (ir/symdim.h), interned here:
 * inference may append to the symbol table of the graph it is given (the
 * table only grows, and a dim's name is its definition). */
#include "ir/ir.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

typedef struct ictx {
  const tl_graph *g;
  int op;
  const tl_attrs *a;
  const tl_type *const *in;
  int nin;
  tl_type *out;
  char *err;
  size_t err_size;
} ictx;

typedef int (*infer_fn)(ictx *c);

/* The graph whose symbol table derived dims are interned in (NULL: none;
 * see the header comment on why a const graph's table may grow). */
static tl_graph *symtab(ictx *c) { return (tl_graph *)(uintptr_t)c->g; }

__attribute__((format(printf, 2, 3))) static int fail(ictx *c, const char *fmt, ...) {
  int n = snprintf(c->err, c->err_size, "%s: ", tl_ops[c->op].name);
  if (n < 0 || (size_t)n >= c->err_size) return -1;
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(c->err + n, c->err_size - (size_t)n, fmt, ap);
  va_end(ap);
  return -1;
}

static const char *tstr(ictx *c, const tl_type *t, char *buf, size_t n) {
  return tl_type_str(c->g, t, buf, n);
}

static const char *dstr(ictx *c, int64_t d, char *buf, size_t n) {
  if (tl_dim_is_sym(d) && c->g && tl_dim_sym_id(d) < c->g->nsyms)
    snprintf(buf, n, "%s", c->g->syms[tl_dim_sym_id(d)]);
  else
    snprintf(buf, n, "%lld", (long long)d);
  return buf;
}

/* ---- dtypes ---------------------------------------------------------- */

enum { K_BOOL, K_INT, K_FLOAT };
static int dkind(int dt) {
  return dt == TL_BOOL ? K_BOOL : tl_dtype_is_int((tl_dtype)dt) ? K_INT : K_FLOAT;
}

/* NEP 50: strong operands promote by numpy's table; weak literals only lift
 * the category (a float literal makes an int array f64; an int literal
 * makes a bool array i64); all-weak stays weak. */
void tl_promote(const tl_type *const *in, int n, uint8_t *dtype, uint8_t *weak) {
  int strong = -1, wk = -1;
  for (int i = 0; i < n; i++) {
    if (in[i]->weak) {
      if (dkind(in[i]->dtype) > wk) wk = dkind(in[i]->dtype);
    } else {
      strong = strong < 0 ? in[i]->dtype : tl_dtype_promote((tl_dtype)strong, (tl_dtype)in[i]->dtype);
    }
  }
  if (strong < 0) {
    *dtype = (uint8_t)(wk == K_FLOAT ? TL_F64 : wk == K_INT ? TL_I64 : TL_BOOL);
    *weak = 1;
    return;
  }
  *weak = 0;
  if (wk > dkind(strong)) strong = wk == K_FLOAT ? TL_F64 : TL_I64;
  *dtype = (uint8_t)strong;
}

static int infer_dtype(ictx *c, int first) {
  uint8_t dt, weak;
  const tl_op_info *oi = &tl_ops[c->op];
  tl_promote(c->in + first, c->nin - first, &dt, &weak);
  switch (oi->dtype_rule) {
  case TL_DR_SAME: break;
  case TL_DR_NUMERIC:
    if (dt == TL_BOOL) return fail(c, "not defined for bool operands (cast them first)");
    break;
  case TL_DR_INTEGER:
    if (tl_dtype_is_float((tl_dtype)dt)) return fail(c, "defined for integer and bool operands only, not %s",
                                                     tl_dtype_name((tl_dtype)dt));
    break;
  case TL_DR_FLOAT:
    if (!tl_dtype_is_float((tl_dtype)dt)) dt = TL_F64;
    break;
  case TL_DR_BOOL:
  case TL_DR_CMP:
    dt = TL_BOOL;
    break;
  case TL_DR_SUM:
    if (dt == TL_BOOL || dt == TL_I32) dt = TL_I64;
    break;
  case TL_DR_WHERE:
    break; /* caller passed first = 1 */
  case TL_DR_FIRST:
    dt = c->in[0]->dtype;
    weak = c->in[0]->weak;
    break;
  case TL_DR_ATTR:
    dt = c->a->dtype;
    weak = 0;
    break;
  }
  c->out->dtype = dt;
  c->out->weak = weak;
  return 0;
}

/* ---- shapes ---------------------------------------------------------- */

/* Two different symbolic sizes that must be equal (broadcast operands,
 * matmul's inner dims): accepted, and checked when the graph is bound, by
 * interning both differences as derived dims (neither may be negative).
 * False when they can never be equal (n and n + 1). */
static bool same_at_bind(ictx *c, int64_t a, int64_t b) {
  tl_graph *g = symtab(c);
  int64_t d;
  char e[200];
  return g && tl_dim_is_sym(a) && tl_dim_is_sym(b) && !tl_dim_arith(g, TL_DIM_SUB, a, b, &d, e, sizeof e) &&
         !tl_dim_arith(g, TL_DIM_SUB, b, a, &d, e, sizeof e);
}

static int broadcast2(ictx *c, const tl_type *x, const tl_type *y, tl_type *r) {
  int rank = x->rank > y->rank ? x->rank : y->rank;
  int64_t dims[TL_MAX_RANK] = {0}; /* dims past the rank are zero: types are hashed and compared as bytes */
  for (int i = 0; i < rank; i++) {
    int ix = x->rank - rank + i, iy = y->rank - rank + i;
    int64_t a = ix >= 0 ? x->dims[ix] : 1, b = iy >= 0 ? y->dims[iy] : 1;
    if (a == b || b == 1) dims[i] = a;
    else if (a == 1) dims[i] = b;
    else if (same_at_bind(c, a, b)) dims[i] = a;
    else {
      char s1[128], s2[128], d1[64], d2[64];
      return fail(c, "cannot broadcast %s with %s (dim %s vs %s)", tstr(c, x, s1, sizeof s1),
                  tstr(c, y, s2, sizeof s2), dstr(c, a, d1, sizeof d1), dstr(c, b, d2, sizeof d2));
    }
  }
  r->rank = (uint8_t)rank;
  memcpy(r->dims, dims, sizeof dims);
  return 0;
}

static int infer_elemwise(ictx *c) {
  const tl_op_info *oi = &tl_ops[c->op];
  if (oi->dtype_rule == TL_DR_WHERE) {
    if (infer_dtype(c, 1)) return -1;
  } else if (infer_dtype(c, 0)) {
    return -1;
  }
  /* fold left to right: the message names the first operand (whole, for
   * binary ops) and the one that does not fit */
  tl_type shape = *c->in[0];
  for (int i = 1; i < c->nin; i++)
    if (broadcast2(c, &shape, c->in[i], &shape)) return -1;
  c->out->rank = shape.rank;
  memcpy(c->out->dims, shape.dims, sizeof shape.dims);
  if (c->op == TL_OP_CAST) {
    c->out->dtype = c->a->dtype;
    c->out->weak = 0;
  }
  return 0;
}

static int infer_like(ictx *c) {
  *c->out = *c->in[0];
  return 0;
}

/* Normalises the axes attribute against `rank`: negative axes count from
 * the end; out of range and repeated axes are errors. Without the
 * attribute, `all` selects every axis (reductions) or none. */
static int norm_axes(ictx *c, int rank, bool all, int *axes, int *naxes) {
  if (!(c->a->present & TL_A_AXIS)) {
    *naxes = 0;
    if (all)
      for (int i = 0; i < rank; i++) axes[(*naxes)++] = i;
    return 0;
  }
  *naxes = c->a->naxes;
  for (int i = 0; i < c->a->naxes; i++) {
    int ax = c->a->axes[i];
    if (ax < -rank || ax >= rank)
      return fail(c, "axis %d is out of range for rank %d", ax, rank);
    if (ax < 0) ax += rank;
    for (int j = 0; j < i; j++)
      if (axes[j] == ax) return fail(c, "axis %d is repeated", c->a->axes[i]);
    axes[i] = ax;
  }
  return 0;
}

static int infer_reduce(ictx *c) {
  if (infer_dtype(c, 0)) return -1;
  const tl_type *x = c->in[0];
  int axes[TL_MAX_RANK], naxes;
  if (norm_axes(c, x->rank, true, axes, &naxes)) return -1;
  bool red[TL_MAX_RANK] = {false};
  for (int i = 0; i < naxes; i++) {
    red[axes[i]] = true;
    if ((c->op == TL_OP_MAX || c->op == TL_OP_MIN) && x->dims[axes[i]] == 0)
      return fail(c, "zero-size reduction along axis %d has no identity", axes[i]);
  }
  int r = 0;
  for (int i = 0; i < x->rank; i++) {
    if (!red[i]) c->out->dims[r++] = x->dims[i];
    else if (c->a->keepdims) c->out->dims[r++] = 1;
  }
  c->out->rank = (uint8_t)r;
  c->out->weak = 0;
  return 0;
}

static int infer_softmax(ictx *c) {
  if (infer_dtype(c, 0)) return -1;
  const tl_type *x = c->in[0];
  int ax = -1;
  if (c->a->present & TL_A_AXIS) {
    if (c->a->naxes != 1) return fail(c, ":axis must be a single axis");
    ax = c->a->axes[0];
  }
  if (x->rank == 0) return fail(c, "needs an operand of rank 1 or more");
  if (ax < -x->rank || ax >= x->rank)
    return fail(c, "axis %d is out of range for rank %d", ax, x->rank);
  c->out->rank = x->rank;
  memcpy(c->out->dims, x->dims, sizeof x->dims);
  c->out->weak = 0;
  return 0;
}

/* reshape when a symbol is involved: the sizes compared (and the -1 dim
 * computed) as canonical polynomials of the symbols. */
static int reshape_symbolic(ictx *c, int64_t *dims, int n, int infer_at) {
  tl_graph *g = symtab(c);
  const tl_type *x = c->in[0];
  int64_t in = 1, out = 1;
  char e[200], s1[128], s2[128];
  for (int i = 0; i < x->rank; i++)
    if (tl_dim_arith(g, TL_DIM_MUL, in, x->dims[i], &in, e, sizeof e)) return fail(c, "%s", e);
  for (int i = 0; i < n; i++)
    if (i != infer_at && tl_dim_arith(g, TL_DIM_MUL, out, dims[i], &out, e, sizeof e)) return fail(c, "%s", e);
  if (infer_at >= 0) {
    int64_t q, back;
    if (out == 0 || tl_dim_arith(g, TL_DIM_FLOORDIV, in, out, &q, e, sizeof e) ||
        tl_dim_arith(g, TL_DIM_MUL, q, out, &back, e, sizeof e) || back != in)
      return fail(c, "cannot infer the -1 dim of reshape from %s: its size %s is not a multiple of %s",
                  tstr(c, x, s1, sizeof s1), dstr(c, in, s2, sizeof s2), dstr(c, out, e, sizeof e));
    dims[infer_at] = q;
  } else if (in != out) {
    tl_type t = *x;
    t.rank = (uint8_t)n;
    memcpy(t.dims, dims, (size_t)n * sizeof *dims);
    return fail(c, "cannot reshape %s to %s (sizes %s and %s differ)", tstr(c, x, s1, sizeof s1),
                tstr(c, &t, s2, sizeof s2), dstr(c, in, e, 100), dstr(c, out, e + 100, 100));
  }
  c->out->rank = (uint8_t)n;
  memcpy(c->out->dims, dims, (size_t)n * sizeof *dims);
  return 0;
}

static int infer_reshape(ictx *c) {
  if (infer_dtype(c, 0)) return -1;
  const tl_type *x = c->in[0];
  int n = c->a->nshape, infer_at = -1;
  int64_t dims[TL_MAX_RANK] = {0};
  for (int i = 0; i < n; i++) {
    dims[i] = c->a->shape[i];
    if (dims[i] == TL_DIM_INFER) {
      if (infer_at >= 0) return fail(c, "only one dim may be -1");
      infer_at = i;
      dims[i] = 1;
    }
  }
  bool sym = false;
  for (int i = 0; i < x->rank; i++) sym |= tl_dim_is_sym(x->dims[i]);
  for (int i = 0; i < n; i++) sym |= tl_dim_is_sym(dims[i]);
  if (sym) {
    if (!symtab(c)) return fail(c, "a reshape of symbolic sizes needs the graph's symbol table");
    return reshape_symbolic(c, dims, n, infer_at);
  }
  int64_t in = 1, out = 1;
  for (int i = 0; i < x->rank; i++) in *= x->dims[i];
  for (int i = 0; i < n; i++) out *= dims[i];
  char s1[128];
  if (infer_at >= 0) {
    if (out == 0 || in % out != 0)
      return fail(c, "cannot reshape %s: size is not divisible by the given dims", tstr(c, x, s1, sizeof s1));
    dims[infer_at] = in / out;
  } else if (in != out) {
    char s2[128];
    tl_type t = *x;
    t.rank = (uint8_t)n;
    memcpy(t.dims, dims, sizeof dims);
    return fail(c, "cannot reshape %s to %s (sizes differ)", tstr(c, x, s1, sizeof s1), tstr(c, &t, s2, sizeof s2));
  }
  c->out->rank = (uint8_t)n;
  memcpy(c->out->dims, dims, sizeof dims);
  return 0;
}

static int infer_transpose(ictx *c) {
  if (infer_dtype(c, 0)) return -1;
  const tl_type *x = c->in[0];
  int perm[TL_MAX_RANK];
  if (c->a->present & TL_A_PERM) {
    if (c->a->nperm != x->rank)
      return fail(c, ":perm has %d entries for an operand of rank %d", c->a->nperm, x->rank);
    bool seen[TL_MAX_RANK] = {false};
    for (int i = 0; i < x->rank; i++) {
      int p = c->a->perm[i];
      if (p < 0) p += x->rank;
      if (p < 0 || p >= x->rank || seen[p])
        return fail(c, ":perm is not a permutation of 0..%d", x->rank - 1);
      seen[p] = true;
      perm[i] = p;
    }
  } else {
    for (int i = 0; i < x->rank; i++) perm[i] = x->rank - 1 - i;
  }
  c->out->rank = x->rank;
  for (int i = 0; i < x->rank; i++) c->out->dims[i] = x->dims[perm[i]];
  return 0;
}

static int infer_broadcast_to(ictx *c) {
  if (infer_dtype(c, 0)) return -1;
  const tl_type *x = c->in[0];
  int n = c->a->nshape;
  char s1[128], s2[128];
  tl_type t;
  memset(&t, 0, sizeof t);
  t.dtype = x->dtype;
  t.rank = (uint8_t)n;
  memcpy(t.dims, c->a->shape, sizeof t.dims);
  for (int i = 0; i < n; i++)
    if (t.dims[i] == TL_DIM_INFER) return fail(c, "-1 is not allowed in :shape");
  if (x->rank > n)
    return fail(c, "cannot broadcast %s to %s", tstr(c, x, s1, sizeof s1), tstr(c, &t, s2, sizeof s2));
  for (int i = 0; i < x->rank; i++) {
    int64_t a = x->dims[i], b = t.dims[n - x->rank + i];
    if (a != b && a != 1)
      return fail(c, "cannot broadcast %s to %s", tstr(c, x, s1, sizeof s1), tstr(c, &t, s2, sizeof s2));
  }
  c->out->rank = (uint8_t)n;
  memcpy(c->out->dims, t.dims, sizeof t.dims);
  c->out->weak = 0;
  return 0;
}

static int infer_expand_dims(ictx *c) {
  if (infer_dtype(c, 0)) return -1;
  const tl_type *x = c->in[0];
  int rank = x->rank + c->a->naxes;
  if (rank > TL_MAX_RANK) return fail(c, "result rank %d exceeds %d", rank, TL_MAX_RANK);
  int axes[TL_MAX_RANK], naxes;
  if (norm_axes(c, rank, false, axes, &naxes)) return -1;
  bool ins[TL_MAX_RANK] = {false};
  for (int i = 0; i < naxes; i++) ins[axes[i]] = true;
  int j = 0;
  for (int i = 0; i < rank; i++) c->out->dims[i] = ins[i] ? 1 : x->dims[j++];
  c->out->rank = (uint8_t)rank;
  c->out->weak = 0;
  return 0;
}

static int infer_squeeze(ictx *c) {
  if (infer_dtype(c, 0)) return -1;
  const tl_type *x = c->in[0];
  bool drop[TL_MAX_RANK] = {false};
  if (c->a->present & TL_A_AXIS) {
    int axes[TL_MAX_RANK], naxes;
    if (norm_axes(c, x->rank, false, axes, &naxes)) return -1;
    for (int i = 0; i < naxes; i++) {
      if (x->dims[axes[i]] != 1) {
        char d[64];
        return fail(c, "cannot squeeze axis %d of size %s", axes[i], dstr(c, x->dims[axes[i]], d, sizeof d));
      }
      drop[axes[i]] = true;
    }
  } else {
    for (int i = 0; i < x->rank; i++) drop[i] = x->dims[i] == 1;
  }
  int r = 0;
  for (int i = 0; i < x->rank; i++)
    if (!drop[i]) c->out->dims[r++] = x->dims[i];
  c->out->rank = (uint8_t)r;
  return 0;
}

void tl_broadcast_src_axes(const tl_type *xt, const tl_type *ot, int src[TL_MAX_RANK]) {
  int off = ot->rank - xt->rank;
  for (int j = 0; j < xt->rank; j++) src[j] = xt->dims[j] == 1 && ot->dims[j + off] != 1 ? -1 : j + off;
}

bool tl_view_src_axes(const tl_graph *g, const tl_node *n, int src[TL_MAX_RANK]) {
  if (n->op != TL_OP_TRANSPOSE && n->op != TL_OP_BROADCAST_TO && n->op != TL_OP_EXPAND_DIMS && n->op != TL_OP_SQUEEZE)
    return false;
  const tl_type *xt = &g->nodes[tl_node_inputs(g, n)[0]].type, *ot = &n->type;
  bool mark[TL_MAX_RANK] = {0}; /* expand_dims: inserted result dims; squeeze: dropped operand dims */
  switch (n->op) {
  case TL_OP_TRANSPOSE: /* result axis i is operand axis perm[i] (default: reversed) */
    for (int i = 0; i < xt->rank; i++) {
      int q = (n->attrs.present & TL_A_PERM) ? n->attrs.perm[i] : xt->rank - 1 - i;
      src[q < 0 ? q + xt->rank : q] = i;
    }
    break;
  case TL_OP_BROADCAST_TO: tl_broadcast_src_axes(xt, ot, src); break;
  case TL_OP_EXPAND_DIMS: {
    for (int i = 0; i < n->attrs.naxes; i++) {
      int a = n->attrs.axes[i];
      mark[a < 0 ? a + ot->rank : a] = true;
    }
    int j = 0;
    for (int i = 0; i < ot->rank; i++)
      if (!mark[i]) src[j++] = i;
    break;
  }
  default: { /* squeeze: the given axes, or every dim of 1 */
    for (int i = 0; i < xt->rank; i++) mark[i] = !(n->attrs.present & TL_A_AXIS) && xt->dims[i] == 1;
    if (n->attrs.present & TL_A_AXIS)
      for (int i = 0; i < n->attrs.naxes; i++) {
        int a = n->attrs.axes[i];
        mark[a < 0 ? a + xt->rank : a] = true;
      }
    int j = 0;
    for (int i = 0; i < xt->rank; i++) src[i] = mark[i] ? -1 : j++;
    break;
  }
  }
  return true;
}

static int infer_concat(ictx *c) {
  if (infer_dtype(c, 0)) return -1;
  const tl_type *x = c->in[0];
  if (x->rank == 0) return fail(c, "cannot concatenate rank-0 operands");
  int ax = 0;
  if (c->a->present & TL_A_AXIS) {
    if (c->a->naxes != 1) return fail(c, ":axis must be a single axis");
    ax = c->a->axes[0];
  }
  if (ax < -x->rank || ax >= x->rank) return fail(c, "axis %d is out of range for rank %d", ax, x->rank);
  if (ax < 0) ax += x->rank;
  int64_t total = 0;
  char s1[128], s2[128];
  for (int k = 0; k < c->nin; k++) {
    const tl_type *y = c->in[k];
    if (y->rank != x->rank)
      return fail(c, "operands have ranks %d and %d (%s, %s)", x->rank, y->rank,
                  tstr(c, x, s1, sizeof s1), tstr(c, y, s2, sizeof s2));
    for (int i = 0; i < x->rank; i++)
      if (i != ax && y->dims[i] != x->dims[i])
        return fail(c, "operand shapes %s and %s differ outside axis %d", tstr(c, x, s1, sizeof s1),
                    tstr(c, y, s2, sizeof s2), ax);
    if (tl_dim_is_sym(y->dims[ax]) || tl_dim_is_sym(total)) {
      char e[200];
      if (!symtab(c)) return fail(c, "cannot concatenate along symbolic dim of %s", tstr(c, y, s1, sizeof s1));
      if (tl_dim_arith(symtab(c), TL_DIM_ADD, total, y->dims[ax], &total, e, sizeof e)) return fail(c, "%s", e);
      continue;
    }
    total += y->dims[ax];
  }
  c->out->rank = x->rank;
  memcpy(c->out->dims, x->dims, sizeof x->dims);
  c->out->dims[ax] = total;
  return 0;
}

/* The shape of slicing x by c's attributes into *out (rank and dims). */
static int slice_shape(ictx *c, const tl_type *x, tl_type *out) {
  const tl_attrs *a = c->a;
  if (x->rank == 0) return fail(c, "cannot slice a rank-0 operand");
  int ax = 0;
  if (a->present & TL_A_AXIS) {
    if (a->naxes != 1) return fail(c, ":axis must be a single axis");
    ax = a->axes[0];
  }
  if (ax < -x->rank || ax >= x->rank) return fail(c, "axis %d is out of range for rank %d", ax, x->rank);
  if (ax < 0) ax += x->rank;
  int64_t step = (a->present & TL_A_STEP) ? a->step : 1;
  if (step == 0) return fail(c, ":step must not be 0");
  int64_t n = x->dims[ax], len;
  bool has_start = a->present & TL_A_START, has_stop = a->present & TL_A_STOP;
  if (tl_dim_is_sym(n)) {
    bool full = (!has_start || (step > 0 && a->start == 0)) && !has_stop && (step == 1 || step == -1);
    if (full) {
      len = n;
    } else {
      tl_graph *g = symtab(c);
      if (!g) return fail(c, "cannot slice symbolic dim %s except whole", "?");
      /* The slice covers [lo, hi) of the dim, stepping by |step|. Unlike
       * numpy, the bounds are not clamped: 0 <= lo <= hi <= n is checked at
       * bind time, by interning hi - lo and n - hi as derived dims. */
      int64_t lo, hi, span, rest, k;
      char e[200];
      bool ok;
      if (step > 0) {
        k = has_start ? a->start : 0;
        ok = !tl_dim_add_int(g, k < 0 ? n : 0, k, &lo, e, sizeof e);
        k = has_stop ? a->stop : 0;
        ok = ok && !tl_dim_add_int(g, !has_stop || k < 0 ? n : 0, k, &hi, e, sizeof e);
      } else {
        k = has_stop ? a->stop + 1 : 0;
        ok = !tl_dim_add_int(g, has_stop && a->stop < 0 ? n : 0, k, &lo, e, sizeof e);
        k = has_start ? a->start + 1 : 0;
        ok = ok && !tl_dim_add_int(g, !has_start || a->start < 0 ? n : 0, k, &hi, e, sizeof e);
      }
      ok = ok && !tl_dim_arith(g, TL_DIM_SUB, hi, lo, &span, e, sizeof e) &&
           !tl_dim_arith(g, TL_DIM_SUB, n, hi, &rest, e, sizeof e) &&
           !tl_dim_arith(g, TL_DIM_CEILDIV, span, step > 0 ? step : -step, &len, e, sizeof e);
      if (!ok) return fail(c, "slice of symbolic dim %s: %s", g->syms[tl_dim_sym_id(n)], e);
      (void)rest;
    }
  } else {
    /* Python's slice.indices() */
    int64_t start, stop;
    if (step > 0) {
      start = has_start ? a->start : 0;
      stop = has_stop ? a->stop : n;
      if (start < 0) start = start + n < 0 ? 0 : start + n;
      else if (start > n) start = n;
      if (stop < 0) stop = stop + n < 0 ? 0 : stop + n;
      else if (stop > n) stop = n;
      len = stop > start ? (stop - start + step - 1) / step : 0;
    } else {
      start = has_start ? a->start : n - 1;
      stop = has_stop ? a->stop : -n - 1;
      if (start < 0) start = start + n < 0 ? -1 : start + n;
      else if (start >= n) start = n - 1;
      if (stop < 0) stop = stop + n < 0 ? -1 : stop + n;
      else if (stop >= n) stop = n - 1;
      len = start > stop ? (start - stop + (-step) - 1) / (-step) : 0;
    }
  }
  out->rank = x->rank;
  memcpy(out->dims, x->dims, sizeof x->dims);
  out->dims[ax] = len;
  return 0;
}

static int infer_slice(ictx *c) {
  if (infer_dtype(c, 0)) return -1;
  return slice_shape(c, c->in[0], c->out);
}

static bool same_dims(const tl_type *a, const tl_type *b) {
  return a->rank == b->rank && !memcmp(a->dims, b->dims, (size_t)a->rank * sizeof *a->dims);
}

/* slice_update x v: x with the slice that slice would take replaced by v,
 * which has exactly that slice's shape and x's dtype (no broadcasting, no
 * conversion: the transpose of slice). */
static int infer_slice_update(ictx *c) {
  if (infer_dtype(c, 0)) return -1;
  const tl_type *x = c->in[0], *v = c->in[1];
  tl_type s;
  memset(&s, 0, sizeof s);
  if (slice_shape(c, x, &s)) return -1;
  char s1[128], s2[128];
  if (!same_dims(&s, v) || v->dtype != x->dtype) {
    s.dtype = x->dtype;
    return fail(c, "the update must have the slice's type %s, not %s", tstr(c, &s, s1, sizeof s1),
                tstr(c, v, s2, sizeof s2));
  }
  c->out->rank = x->rank;
  memcpy(c->out->dims, x->dims, sizeof x->dims);
  c->out->weak = 0;
  return 0;
}

static int infer_take(ictx *c) {
  if (infer_dtype(c, 0)) return -1;
  const tl_type *x = c->in[0], *idx = c->in[1];
  char s1[128];
  if (!tl_dtype_is_int((tl_dtype)idx->dtype))
    return fail(c, "indices must be i32 or i64, not %s", tstr(c, idx, s1, sizeof s1));
  if (!(c->a->present & TL_A_AXIS)) { /* numpy: take from the flattened operand */
    c->out->rank = idx->rank;
    memcpy(c->out->dims, idx->dims, sizeof idx->dims);
    return 0;
  }
  if (c->a->naxes != 1) return fail(c, ":axis must be a single axis");
  int ax = c->a->axes[0];
  if (ax < -x->rank || ax >= x->rank) return fail(c, "axis %d is out of range for rank %d", ax, x->rank);
  if (ax < 0) ax += x->rank;
  int rank = x->rank - 1 + idx->rank;
  if (rank > TL_MAX_RANK) return fail(c, "result rank %d exceeds %d", rank, TL_MAX_RANK);
  int r = 0;
  for (int i = 0; i < ax; i++) c->out->dims[r++] = x->dims[i];
  for (int i = 0; i < idx->rank; i++) c->out->dims[r++] = idx->dims[i];
  for (int i = ax + 1; i < x->rank; i++) c->out->dims[r++] = x->dims[i];
  c->out->rank = (uint8_t)rank;
  return 0;
}

/* scatter_add x i v: x with v's slices added at the indices i along :axis
 * (duplicates accumulate; no :axis: into the flattened x); v has the shape
 * and dtype of (take x i :axis) (the transpose of take). */
static int infer_scatter_add(ictx *c) {
  if (infer_dtype(c, 0)) return -1;
  const tl_type *x = c->in[0], *v = c->in[2];
  char s1[128], s2[128];
  if (x->dtype == TL_BOOL) return fail(c, "not defined for bool operands (cast them first)");
  if (x->rank == 0) return fail(c, "cannot scatter into a rank-0 operand");
  tl_type t;
  memset(&t, 0, sizeof t);
  ictx tc = *c;
  tc.out = &t;
  tc.nin = 2;
  if (infer_take(&tc)) return -1;
  if (!same_dims(&t, v) || v->dtype != x->dtype) {
    t.dtype = x->dtype;
    return fail(c, "the addend must have the type %s of (take x i), not %s", tstr(c, &t, s1, sizeof s1),
                tstr(c, v, s2, sizeof s2));
  }
  c->out->rank = x->rank;
  memcpy(c->out->dims, x->dims, sizeof x->dims);
  c->out->weak = 0;
  return 0;
}

/* dim (an i64 scalar) and iota (i64, x's shape): one :axis of x */
static int infer_axis_index(ictx *c) {
  const tl_type *x = c->in[0];
  if (c->a->naxes != 1) return fail(c, ":axis must be a single axis");
  int ax = c->a->axes[0];
  if (ax < -x->rank || ax >= x->rank) return fail(c, "axis %d is out of range for rank %d", ax, x->rank);
  c->out->dtype = TL_I64;
  c->out->weak = 0;
  c->out->rank = c->op == TL_OP_IOTA ? x->rank : 0;
  if (c->op == TL_OP_IOTA) memcpy(c->out->dims, x->dims, sizeof x->dims);
  return 0;
}

static int infer_matmul(ictx *c) {
  if (infer_dtype(c, 0)) return -1;
  c->out->weak = 0;
  tl_type a = *c->in[0], b = *c->in[1];
  char s1[128], s2[128];
  if (a.rank == 0 || b.rank == 0)
    return fail(c, "operands must have rank >= 1 (%s, %s)", tstr(c, &a, s1, sizeof s1), tstr(c, &b, s2, sizeof s2));
  bool va = a.rank == 1, vb = b.rank == 1;
  if (va) { a.dims[1] = a.dims[0]; a.dims[0] = 1; a.rank = 2; }
  if (vb) { b.dims[1] = 1; b.rank = 2; }
  int64_t k1 = a.dims[a.rank - 1], k2 = b.dims[b.rank - 2];
  if (k1 != k2 && !same_at_bind(c, k1, k2)) {
    char d1[64], d2[64];
    return fail(c, "inner dims differ: %s @ %s (%s vs %s)", tstr(c, c->in[0], s1, sizeof s1),
                tstr(c, c->in[1], s2, sizeof s2), dstr(c, k1, d1, sizeof d1), dstr(c, k2, d2, sizeof d2));
  }
  tl_type ba = a, bb = b, bo;
  ba.rank = (uint8_t)(a.rank - 2);
  bb.rank = (uint8_t)(b.rank - 2);
  if (broadcast2(c, &ba, &bb, &bo)) return -1;
  int r = bo.rank;
  memcpy(c->out->dims, bo.dims, sizeof bo.dims);
  if (!va) c->out->dims[r++] = a.dims[a.rank - 2];
  if (!vb) c->out->dims[r++] = b.dims[b.rank - 1];
  c->out->rank = (uint8_t)r;
  return 0;
}

static int infer_lit(ictx *c) {
  c->out->dtype = c->a->is_int ? TL_I64 : TL_F64;
  c->out->weak = 1;
  c->out->rank = 0;
  return 0;
}

static int infer_fill(ictx *c) {
  c->out->dtype = c->a->dtype;
  c->out->weak = 0;
  c->out->rank = c->a->nshape;
  memcpy(c->out->dims, c->a->shape, sizeof c->a->shape);
  for (int i = 0; i < c->a->nshape; i++)
    if (c->a->shape[i] == TL_DIM_INFER) return fail(c, "-1 is not allowed in a shape");
  return 0;
}

/* in and const get their type when created (tl_graph_add_input/_const). */
static int infer_given(ictx *c) {
  return fail(c, "is created by its own declaration, not as an operation");
}

static int infer_control(ictx *c) {
  return tl_infer_control(c->g, c->op, c->a, c->in, c->nin, c->out, c->err, c->err_size);
}

/* Ops of kind TL_KIND_ELEMWISE need no entry: they all infer by numpy
 * broadcasting under their dtype rule (infer_elemwise). */
static const infer_fn infer_table[TL_OP_COUNT] = {
  [TL_OP_INPUT] = infer_given, [TL_OP_CONST] = infer_given,
  [TL_OP_LIT] = infer_lit, [TL_OP_FILL] = infer_fill,
  [TL_OP_ZEROS_LIKE] = infer_like, [TL_OP_ONES_LIKE] = infer_like, [TL_OP_DIM] = infer_axis_index, [TL_OP_IOTA] = infer_axis_index,
  [TL_OP_SUM] = infer_reduce, [TL_OP_PROD] = infer_reduce, [TL_OP_MAX] = infer_reduce,
  [TL_OP_MIN] = infer_reduce, [TL_OP_MEAN] = infer_reduce, [TL_OP_LOGSUMEXP] = infer_reduce,
  [TL_OP_SOFTMAX] = infer_softmax, [TL_OP_LOG_SOFTMAX] = infer_softmax,
  [TL_OP_RESHAPE] = infer_reshape, [TL_OP_TRANSPOSE] = infer_transpose,
  [TL_OP_BROADCAST_TO] = infer_broadcast_to, [TL_OP_EXPAND_DIMS] = infer_expand_dims,
  [TL_OP_SQUEEZE] = infer_squeeze, [TL_OP_CONCAT] = infer_concat, [TL_OP_SLICE] = infer_slice,
  [TL_OP_TAKE] = infer_take, [TL_OP_MATMUL] = infer_matmul,
  [TL_OP_SLICE_UPDATE] = infer_slice_update, [TL_OP_SCATTER_ADD] = infer_scatter_add,
  [TL_OP_CALL] = infer_control, [TL_OP_COND] = infer_control, [TL_OP_LOOP] = infer_control,
  [TL_OP_SCAN] = infer_control,
};

static infer_fn infer_for(int op) {
  if (op < 0 || op >= TL_OP_COUNT) return NULL;
  if (infer_table[op]) return infer_table[op];
  return tl_ops[op].kind == TL_KIND_ELEMWISE ? infer_elemwise : NULL;
}

bool tl_infer_has(int op) { return infer_for(op) != NULL; }


int tl_infer(const tl_graph *g, int op, const tl_attrs *attrs, const tl_type *const *in,
             int nin, tl_type *out, char *err, size_t err_size) {
  ictx c = {g, op, attrs, in, nin, out, err, err_size};
  memset(out, 0, sizeof *out);
  const tl_op_info *oi = &tl_ops[op];
  if (oi->arity >= 0 && nin != oi->arity)
    return fail(&c, "expects %d operand%s, got %d", oi->arity, oi->arity == 1 ? "" : "s", nin);
  if (oi->arity < 0 && nin < 1 && oi->kind != TL_KIND_CONTROL) return fail(&c, "expects at least one operand");
  if (op == TL_OP_COND && nin < 1) return fail(&c, "expects a condition");
  unsigned extra = attrs->present & ~oi->allowed_attrs & ~(unsigned)TL_A_DTYPE;
  if (extra) return fail(&c, "does not take the attribute given");
  if ((attrs->present & oi->required_attrs) != oi->required_attrs)
    return fail(&c, "is missing a required attribute");
  for (int i = 0; i < nin; i++)
    if (in[i]->dtype >= TL_DTYPE_COUNT) return fail(&c, "operand %d has no valid type", i);
  int r = infer_for(op)(&c);
  if (r == 0 && out->rank > TL_MAX_RANK) return fail(&c, "result rank exceeds %d", TL_MAX_RANK);
  return r;
}
