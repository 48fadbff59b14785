/* apply.c - choosing and instantiating derivative rules on a graph.
 *
 * A rule is instantiated for one operand of one node: ?g is the node's
 * cotangent, ?out the node, the left side's variables its operands and
 * attributes. The attributes are first made explicit where an op has a
 * default that another op spells differently (softmax's axis -1,
 * transpose's reversed perm, concat's axis 0), so that `:axis ?a` copied
 * into a `sum` means the same axis. Helper forms expand here from the
 * types at hand; zeros_like and ones_like become fills of the type (the
 * value never depends on the operand, and a fill keeps no operand alive).
 *
 * The result then fits the operand (fit): cast to its dtype, summed over
 * the dims the operand was broadcast along, broadcast over the dims where
 * the rule's value is smaller. That is the generic half of every rule, so
 * rules are written at the op's own shapes. */
#include "grad/internal.h"
#include "util/alloc.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- conditions -------------------------------------------------------------- */

typedef struct bind {
  tl_graph *g;
  int32_t node, ct;
  int k;
  int32_t var[GR_V_FIRST + 8]; /* operand variables: node ids */
  tl_attrs attrs;              /* the node's, made explicit */
} bind;

static const tl_type *var_type(const tl_graph *g, const gr_rule *r, const tl_node *n, int k, int v) {
  const int32_t *in = tl_node_inputs(g, n);
  if (v == GR_V_OUT) return &n->type;
  if (v == GR_V_G) return &n->type; /* the cotangent has the result's type */
  int op = v - GR_V_FIRST;
  return &g->nodes[in[r->wrt < 0 ? k : op]].type;
}

static bool conds_hold(const gr_rule *r, const tl_graph *g, const tl_node *n, int k) {
  for (int c = 0; c < r->nconds; c++) {
    const gr_cond *x = &r->conds[c];
    const tl_type *t = var_type(g, r, n, k, x->vars[0]);
    switch (x->kind) {
    case GR_C_RANK: if (t->rank != x->n) return false; break;
    case GR_C_SCALAR: if (t->rank != 0) return false; break;
    case GR_C_FLOAT: if (!tl_dtype_is_float((tl_dtype)t->dtype)) return false; break;
    case GR_C_DTYPE: if (t->dtype != x->dtype) return false; break;
    case GR_C_SAME_SHAPE:
      for (int i = 1; i < x->nvars; i++) {
        const tl_type *u = var_type(g, r, n, k, x->vars[i]);
        if (u->rank != t->rank || memcmp(u->dims, t->dims, (size_t)t->rank * sizeof *t->dims)) return false;
      }
      break;
    default: return false;
    }
  }
  return true;
}

bool gr_rule_applies(const gr_rules *rs, int i, const tl_graph *g, int32_t node, int k) {
  const gr_rule *r = &rs->r[i];
  const tl_node *n = &g->nodes[node];
  if (r->op != n->op || (r->wrt >= 0 && r->wrt != k) || k >= n->ninputs) return false;
  return conds_hold(r, g, n, k);
}

int gr_rule_pick(const gr_rules *rs, const tl_graph *g, int32_t node, int k) {
  const tl_node *n = &g->nodes[node];
  int text = -1;
  for (int i = 0; i < rs->n; i++)
    if (rs->r[i].op == n->op && (rs->r[i].wrt == k || rs->r[i].wrt < 0) && rs->r[i].text > text)
      text = rs->r[i].text;
  for (int i = 0; i < rs->n; i++)
    if (rs->r[i].text == text && gr_rule_applies(rs, i, g, node, k)) return i;
  return -1;
}

/* ---- building ------------------------------------------------------------------- */

typedef struct ictx {
  const gr_rule *r;
  bind *b;
  char *err;
  size_t n;
  bool failed;
} ictx;

__attribute__((format(printf, 2, 3))) static int32_t fail(ictx *c, const char *fmt, ...) {
  if (c->failed) return -1;
  c->failed = true;
  int k = snprintf(c->err, c->n, "derivative rule %s (%s:%d): ", c->r->name, c->r->file, c->r->loc.line);
  if (k < 0 || (size_t)k >= c->n) return -1;
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(c->err + k, c->n - (size_t)k, fmt, ap);
  va_end(ap);
  return -1;
}

static int32_t add(ictx *c, int op, const tl_attrs *a, const int32_t *in, int nin) {
  if (c->failed) return -1;
  char e[512];
  int32_t id = tl_graph_add(c->b->g, op, a, in, nin, (tl_loc){0, 0}, e, sizeof e);
  if (id < 0) return fail(c, "%s", e);
  return id;
}

static const tl_type *type_of(ictx *c, int32_t id) { return &c->b->g->nodes[id].type; }

static int32_t lit_int(ictx *c, int64_t v) {
  tl_attrs a;
  tl_attrs_init(&a);
  a.is_int = 1;
  a.i = v;
  a.f = (double)v;
  return add(c, TL_OP_LIT, &a, NULL, 0);
}

static int32_t fill(ictx *c, const tl_type *t, double v) {
  tl_attrs a;
  tl_attrs_init(&a);
  a.dtype = t->dtype;
  a.nshape = t->rank;
  memcpy(a.shape, t->dims, sizeof a.shape);
  a.f = v;
  if (!tl_dtype_is_float((tl_dtype)t->dtype)) {
    a.is_int = 1;
    a.i = (int64_t)v;
  }
  return add(c, TL_OP_FILL, &a, NULL, 0);
}

static int32_t cast(ictx *c, int32_t x, int dt) {
  const tl_type *t = type_of(c, x);
  if (t->dtype == dt && !t->weak) return x;
  tl_attrs a;
  tl_attrs_init(&a);
  a.present = TL_A_DTYPE;
  a.dtype = (uint8_t)dt;
  return add(c, TL_OP_CAST, &a, &x, 1);
}

static int32_t sum_axes(ictx *c, int32_t x, const int *axes, int nax, bool keep) {
  if (nax == 0) return x;
  tl_attrs a;
  tl_attrs_init(&a);
  a.present = TL_A_AXIS | (keep ? TL_A_KEEPDIMS : 0);
  a.naxes = (uint8_t)nax;
  for (int i = 0; i < nax; i++) a.axes[i] = (int8_t)axes[i];
  a.keepdims = keep;
  return add(c, TL_OP_SUM, &a, &x, 1);
}

static bool same_dims(const tl_type *a, const tl_type *b) {
  return a->rank == b->rank && !memcmp(a->dims, b->dims, (size_t)a->rank * sizeof *a->dims);
}

static int32_t broadcast(ictx *c, int32_t x, const tl_type *to) {
  if (same_dims(type_of(c, x), to)) return x;
  tl_attrs a;
  tl_attrs_init(&a);
  a.present = TL_A_SHAPE;
  a.nshape = to->rank;
  memcpy(a.shape, to->dims, sizeof a.shape);
  return add(c, TL_OP_BROADCAST_TO, &a, &x, 1);
}

static int32_t reshape(ictx *c, int32_t x, const tl_type *to) {
  if (same_dims(type_of(c, x), to)) return x;
  tl_attrs a;
  tl_attrs_init(&a);
  a.present = TL_A_SHAPE;
  a.nshape = to->rank;
  memcpy(a.shape, to->dims, sizeof a.shape);
  return add(c, TL_OP_RESHAPE, &a, &x, 1);
}

/* Value v (a contribution to x's cotangent) made to fit x: x's dtype, and
 * x's shape by summing what broadcasting stretched, then (full) broadcasting
 * what is smaller; without full, dims of size 1 where x's are larger stay
 * (the value is uniform along them). st: the shape v stands for (an
 * elementwise node's result), or NULL. Dims align on the right, as numpy's. */
static int32_t fit(ictx *c, int32_t v, const tl_type *xt, const tl_type *st, bool full) {
  v = cast(c, v, xt->dtype);
  if (v < 0) return -1;
  if (st) {
    /* v stands for a value of shape st (an elementwise op's result; v may
     * be uniform along some of its dims): where x was broadcast along a
     * dim that v is uniform along, the sum needs v stretched first */
    const tl_type *vt0 = type_of(c, v);
    bool stretch = false;
    for (int i = 0; i < st->rank; i++) {
      int xi = i - (st->rank - xt->rank), vi = i - (st->rank - vt0->rank);
      bool xb = xi < 0 || (xt->dims[xi] == 1 && st->dims[i] != 1);
      bool vu = vi < 0 || (vt0->dims[vi] == 1 && st->dims[i] != 1);
      stretch |= xb && vu;
    }
    if (stretch) {
      tl_type to = *st;
      v = broadcast(c, v, &to);
      if (v < 0) return -1;
    }
  }
  const tl_type vt = *type_of(c, v);
  if (same_dims(&vt, xt)) return v;
  int lead = vt.rank > xt->rank ? vt.rank - xt->rank : 0;
  int ones[TL_MAX_RANK], n1 = 0, leads[TL_MAX_RANK];
  for (int i = lead; i < vt.rank; i++) {
    int64_t d = vt.dims[i], x = xt->dims[i - lead + (xt->rank - (vt.rank - lead))];
    if (d == x || d == 1) continue;
    if (x == 1) ones[n1++] = i;
    else {
      char s1[96], s2[96];
      return fail(c, "gives %s for an operand of type %s", tl_type_str(c->b->g, &vt, s1, sizeof s1),
                  tl_type_str(c->b->g, xt, s2, sizeof s2));
    }
  }
  for (int i = 0; i < lead; i++) leads[i] = i;
  v = sum_axes(c, v, ones, n1, true);
  if (v >= 0) v = sum_axes(c, v, leads, lead, false);
  if (v >= 0 && full) v = broadcast(c, v, xt);
  return v;
}

/* The node's attributes with the defaults other ops spell differently
 * made explicit. */
static void explicit_attrs(const tl_graph *g, const tl_node *n, tl_attrs *a) {
  *a = n->attrs;
  int rank = g->nodes[tl_node_inputs(g, n)[0]].type.rank;
  if ((n->op == TL_OP_SOFTMAX || n->op == TL_OP_LOG_SOFTMAX || n->op == TL_OP_CONCAT) &&
      !(a->present & TL_A_AXIS)) {
    a->present |= TL_A_AXIS;
    a->naxes = 1;
    a->axes[0] = (int8_t)(n->op == TL_OP_CONCAT ? 0 : -1);
  }
  if (n->op == TL_OP_TRANSPOSE && !(a->present & TL_A_PERM)) {
    a->present |= TL_A_PERM;
    a->nperm = (uint8_t)rank;
    for (int i = 0; i < rank; i++) a->perm[i] = (int8_t)(rank - 1 - i);
  }
}

/* Copies key `bit` of src into dst (absent in src: absent in dst). */
static void copy_key(tl_attrs *dst, const tl_attrs *src, unsigned bit) {
  dst->present &= ~bit;
  if (!(src->present & bit)) return;
  dst->present |= bit;
  switch (bit) {
  case TL_A_AXIS: dst->naxes = src->naxes; memcpy(dst->axes, src->axes, sizeof dst->axes); break;
  case TL_A_KEEPDIMS: dst->keepdims = src->keepdims; break;
  case TL_A_DTYPE: dst->dtype = src->dtype; break;
  case TL_A_SHAPE: dst->nshape = src->nshape; memcpy(dst->shape, src->shape, sizeof dst->shape); break;
  case TL_A_PERM: dst->nperm = src->nperm; memcpy(dst->perm, src->perm, sizeof dst->perm); break;
  case TL_A_START: dst->start = src->start; break;
  case TL_A_STOP: dst->stop = src->stop; break;
  default: dst->step = src->step; break;
  }
}

/* A reduction's axes over a rank-r operand, sorted, as flags. */
static int reduced_axes(ictx *c, const tl_attrs *a, int r, bool *red) {
  memset(red, 0, TL_MAX_RANK * sizeof *red);
  if (!(a->present & TL_A_AXIS)) {
    for (int i = 0; i < r; i++) red[i] = true;
    return 0;
  }
  for (int i = 0; i < a->naxes; i++) {
    int ax = a->axes[i] < 0 ? a->axes[i] + r : a->axes[i];
    if (ax < 0 || ax >= r) return fail(c, "axis %d is out of range for rank %d", a->axes[i], r);
    red[ax] = true;
  }
  return 0;
}

static int32_t helper(ictx *c, const gr_term *t, const int32_t *kid, const tl_attrs *a) {
  int32_t e = kid[0];
  const tl_type *x = t->nkids > 1 ? type_of(c, kid[1]) : NULL;
  switch ((gr_helper)t->op) {
  case GR_H_UNREDUCE: {
    bool red[TL_MAX_RANK];
    if (reduced_axes(c, a, x->rank, red)) return -1;
    if (!((a->present & TL_A_KEEPDIMS) && a->keepdims)) {
      tl_attrs ea;
      tl_attrs_init(&ea);
      ea.present = TL_A_AXIS;
      for (int i = 0; i < x->rank; i++)
        if (red[i]) ea.axes[ea.naxes++] = (int8_t)i;
      if (ea.naxes) e = add(c, TL_OP_EXPAND_DIMS, &ea, &e, 1);
    }
    return e; /* the keepdims shape: broadcasting (or fit) stretches it */
  }
  case GR_H_COUNT: {
    const tl_type *xt = type_of(c, e);
    bool red[TL_MAX_RANK];
    if (reduced_axes(c, a, xt->rank, red)) return -1;
    int64_t k = 1;
    tl_type sym = {.dtype = xt->dtype};
    for (int i = 0; i < xt->rank; i++) {
      if (!red[i]) continue;
      if (tl_dim_is_sym(xt->dims[i])) sym.dims[sym.rank++] = xt->dims[i];
      else k *= xt->dims[i];
    }
    if (!sym.rank) return lit_int(c, k);
    /* a symbolic size is known at run time: the product of the dim ops'
     * values, in the dtype a sum over those dims has (i64 for bool and
     * i32, as TL_DR_SUM) */
    int32_t s = k != 1 ? lit_int(c, k) : -1;
    for (int i = 0; i < xt->rank; i++) {
      if (!red[i] || !tl_dim_is_sym(xt->dims[i])) continue;
      /* the dim of an input that has it (a use of e would keep e computed
       * for its shape alone), else of e */
      const tl_graph *g = c->b->g;
      int32_t src = e, ax = i;
      for (int k = 0; k < g->ninputs && src == e; k++) {
        const tl_type *it = &g->nodes[g->inputs[k]].type;
        for (int j = 0; j < it->rank; j++)
          if (it->dims[j] == xt->dims[i]) {
            src = g->inputs[k];
            ax = j;
            break;
          }
      }
      tl_attrs da;
      tl_attrs_init(&da);
      da.present = TL_A_AXIS;
      da.naxes = 1;
      da.axes[0] = (int8_t)ax;
      int32_t d = add(c, TL_OP_DIM, &da, &src, 1);
      if (s >= 0 && d >= 0) {
        int32_t in[2] = {s, d};
        d = add(c, TL_OP_MUL, NULL, in, 2);
      }
      s = d;
    }
    int dt = xt->dtype == TL_BOOL || xt->dtype == TL_I32 ? TL_I64 : xt->dtype;
    if (s >= 0 && dt != TL_I64) {
      tl_attrs ca;
      tl_attrs_init(&ca);
      ca.present = TL_A_DTYPE;
      ca.dtype = (uint8_t)dt;
      s = add(c, TL_OP_CAST, &ca, &s, 1);
    }
    return s;
  }
  case GR_H_RESHAPE_LIKE: return reshape(c, e, x);
  case GR_H_UNTRANSPOSE: {
    tl_attrs ia;
    tl_attrs_init(&ia);
    int r = type_of(c, e)->rank;
    if (!(a->present & TL_A_PERM) || a->nperm != r) return fail(c, "untranspose needs the :perm of rank %d", r);
    ia.present = TL_A_PERM;
    ia.nperm = (uint8_t)r;
    for (int i = 0; i < r; i++) ia.perm[a->perm[i] < 0 ? a->perm[i] + r : a->perm[i]] = (int8_t)i;
    return add(c, TL_OP_TRANSPOSE, &ia, &e, 1);
  }
  case GR_H_UNCONCAT: {
    const tl_node *n = &c->b->g->nodes[c->b->node];
    const int32_t *in = tl_node_inputs(c->b->g, n);
    int r = type_of(c, e)->rank;
    int ax = (a->present & TL_A_AXIS) ? a->axes[0] : 0;
    if (ax < 0) ax += r;
    /* operand k's part: [before, before + d) from the start, or from the
     * end when the dims before it are symbolic and those after are not */
    int64_t before = 0, after = 0, d = x->dims[ax];
    bool sym_before = false, sym_after = false;
    for (int i = 0; i < n->ninputs; i++) {
      int64_t di = c->b->g->nodes[in[i]].type.dims[ax];
      if (i == c->b->k) continue;
      bool *sym = i < c->b->k ? &sym_before : &sym_after;
      int64_t *acc = i < c->b->k ? &before : &after;
      if (tl_dim_is_sym(di)) *sym = true;
      else *acc += di;
    }
    if (n->ninputs == 1) return reshape(c, e, x); /* the whole */
    tl_attrs sa;
    tl_attrs_init(&sa);
    sa.present = TL_A_AXIS;
    sa.naxes = 1;
    sa.axes[0] = (int8_t)ax;
    if (!sym_before && !tl_dim_is_sym(d)) {
      sa.present |= TL_A_START | TL_A_STOP;
      sa.start = before;
      sa.stop = before + d;
    } else if (!sym_before && !sym_after) {
      sa.present |= TL_A_START;
      sa.start = before;
      if (after) sa.present |= TL_A_STOP, sa.stop = -after;
    } else if (!sym_after && !tl_dim_is_sym(d)) {
      sa.present |= TL_A_START;
      sa.start = -(after + d);
      if (after) sa.present |= TL_A_STOP, sa.stop = -after;
    } else {
      return fail(c, "concat along a symbolic dim: operand %d has symbolic sizes on both sides, so its part "
                     "of the gradient has no static offsets", c->b->k);
    }
    return add(c, TL_OP_SLICE, &sa, &e, 1);
  }
  case GR_H_MT: {
    int r = type_of(c, e)->rank;
    if (r < 2) return fail(c, "mT of a rank-%d value", r);
    tl_attrs ta;
    tl_attrs_init(&ta);
    ta.present = TL_A_PERM;
    ta.nperm = (uint8_t)r;
    for (int i = 0; i < r; i++) ta.perm[i] = (int8_t)(i < r - 2 ? i : i == r - 2 ? r - 1 : r - 2);
    return add(c, TL_OP_TRANSPOSE, &ta, &e, 1);
  }
  default: return fail(c, "unknown helper");
  }
}

int32_t gr_rule_apply(const gr_rules *rs, int i, tl_graph *g, int32_t node, int k, int32_t ct, char *err,
                      size_t n) {
  return gr_apply(rs, i, g, node, k, ct, true, err, n);
}

int32_t gr_broadcast(tl_graph *g, int32_t x, const tl_type *to, char *err, size_t n) {
  static const gr_rule none = {.name = "(transform)", .file = "-"};
  bind b = {.g = g};
  ictx c = {&none, &b, err, n, false};
  return broadcast(&c, x, to);
}

int32_t gr_apply(const gr_rules *rs, int i, tl_graph *g, int32_t node, int k, int32_t ct, bool full, char *err,
                 size_t n) {
  const gr_rule *r = &rs->r[i];
  const tl_node *nd = &g->nodes[node];
  bind b = {.g = g, .node = node, .ct = ct, .k = k};
  ictx c = {r, &b, err, n, false};
  if (r->noperands > 8) return fail(&c, "too many operands");
  const int32_t *in = tl_node_inputs(g, nd);
  b.var[GR_V_G] = ct;
  b.var[GR_V_OUT] = node;
  for (int v = 0; v < r->noperands; v++) b.var[GR_V_FIRST + v] = in[r->wrt < 0 ? k : v];
  explicit_attrs(g, nd, &b.attrs);
  int32_t *id = tl_xmalloc((size_t)(r->nt + 1) * sizeof *id);
  for (int t = 0; t < r->nt && !c.failed; t++) {
    const gr_term *x = &r->t[t];
    int32_t kid[64];
    for (int q = 0; q < x->nkids; q++) kid[q] = id[r->kid[x->kids + q]];
    tl_attrs a = x->attrs;
    for (unsigned bit = 1; bit <= TL_A_STEP; bit <<= 1)
      if (x->copy & bit) copy_key(&a, &b.attrs, bit);
    if (x->dtype_var >= 0) {
      a.present |= TL_A_DTYPE;
      a.dtype = g->nodes[b.var[x->dtype_var]].type.dtype;
    }
    switch (x->kind) {
    case GR_T_VAR: id[t] = b.var[x->var]; break;
    case GR_T_NUM: {
      tl_attrs la;
      tl_attrs_init(&la);
      la.is_int = x->is_int;
      la.i = x->i;
      la.f = x->f;
      id[t] = add(&c, TL_OP_LIT, &la, NULL, 0);
      break;
    }
    case GR_T_HELPER: id[t] = helper(&c, x, kid, &a); break;
    default:
      if (x->op == TL_OP_ZEROS_LIKE || x->op == TL_OP_ONES_LIKE)
        id[t] = fill(&c, type_of(&c, kid[0]), x->op == TL_OP_ONES_LIKE);
      else
        id[t] = add(&c, x->op, &a, kid, x->nkids);
    }
  }
  int32_t v = c.failed ? -1 : id[r->nt - 1];
  tl_free(id);
  if (v < 0) return -1;
  /* adding nodes may have moved g's arrays: nd and in are stale here */
  const tl_node *now = &g->nodes[node];
  tl_type xt = g->nodes[tl_node_inputs(g, now)[k]].type, st = now->type;
  return fit(&c, v, &xt, tl_ops[now->op].kind == TL_KIND_ELEMWISE ? &st : NULL, full);
}
