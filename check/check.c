/* check.c - random testing of rewrite rules (see check.h, docs/rules.md). */
#include "check/check.h"
#include "check/exact.h"
#include "check/gen.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "interp/interp.h"
#include "opt/tensor.h"
#include "util/util.h"

/* ---- the condition registry ------------------------------------------- */

/* The optimizer's conditions (opt/tensor.h's tn_conds, in its order, so
 * an eg_cond_use.fn is a tn_cond_id); check-rules evaluates them itself on
 * the trial's values (conds_hold), so they are registered as markers. */
static bool c_true(eg_egraph *e, const uint32_t *a, const char *const *at, int n, void *x) {
  (void)e; (void)a; (void)at; (void)n; (void)x;
  return true;
}

eg_conds *tl_check_conds_new(void) {
  eg_conds *c = eg_conds_new();
  for (int i = 0; i < TN_C_COUNT; i++) eg_conds_add(c, tn_conds[i].name, tn_conds[i].args, c_true, NULL);
  return c;
}

/* ---- a trial ------------------------------------------------------------ */

enum { V_INPUT, V_FILL, V_LIT };

typedef struct var_inst {
  int kind;             /* V_* */
  tl_type type;
  tl_tensor *t;         /* V_INPUT: the values; V_FILL/V_LIT: one element */
  tl_attrs attrs;       /* attribute variables: the payload */
  double lit;           /* V_LIT / V_FILL value */
  int64_t ilit;         /* the same, exactly, when lit_int (an i64 near 2^63 is not a double) */
  bool lit_int;
} var_inst;

typedef struct trial {
  const eg_rule *rule;
  int nv;
  var_inst *v;
} trial;

/* Conditions of the rule that mention variable v with name id. */
static bool var_has(const eg_rule *ru, uint32_t v, int id) {
  for (int i = 0; i < ru->nconds; i++)
    if (ru->conds[i].fn == id && ru->conds[i].nargs > 0 && ru->conds[i].vars[0] == v) return true;
  return false;
}
static const char *var_atom(const eg_rule *ru, uint32_t v, int id) {
  for (int i = 0; i < ru->nconds; i++)
    if (ru->conds[i].fn == id && ru->conds[i].nargs > 1 && ru->conds[i].vars[0] == v)
      return ru->conds[i].atoms[1];
  return NULL;
}

static const int red_ops[] = {TL_OP_SUM, TL_OP_PROD, TL_OP_MAX, TL_OP_MIN, TL_OP_MEAN,
                              TL_OP_LOGSUMEXP};

/* A random payload for attribute variable v: by the op it labels. */
static void gen_attr(rng *r, const eg_rule *ru, uint32_t v, tl_attrs *a) {
  tl_attrs_init(a);
  int op = -1;
  const eg_pattern *ps[2] = {&ru->lhs, &ru->rhs};
  for (int s = 0; s < 2 && op < 0; s++)
    for (uint32_t i = 0; i < ps[s]->n; i++)
      if (ps[s]->nodes[i].kind == EG_PAT_NODE && ps[s]->nodes[i].attr_var &&
          ps[s]->nodes[i].var == v) { op = ps[s]->nodes[i].op; break; }
  bool red = false;
  for (size_t i = 0; i < sizeof red_ops / sizeof *red_ops; i++) red |= op == red_ops[i];
  if (red) {
    int k = rint_(r, 5);
    if (k >= 1) { a->present |= TL_A_AXIS; a->naxes = 1; a->axes[0] = (int8_t)(k == 1 ? 0 : k == 2 ? -1 : 1); }
    if (k == 4) { a->naxes = 2; a->axes[0] = 0; a->axes[1] = 1; }
    if (rint_(r, 3) == 0) { a->present |= TL_A_KEEPDIMS; a->keepdims = 1; }
  } else if (op == TL_OP_SOFTMAX || op == TL_OP_LOG_SOFTMAX || op == TL_OP_EXPAND_DIMS ||
             op == TL_OP_CONCAT || op == TL_OP_TAKE || op == TL_OP_SQUEEZE) {
    int k = rint_(r, 4);
    if (k > 0 || op == TL_OP_EXPAND_DIMS) {
      a->present |= TL_A_AXIS; a->naxes = 1;
      a->axes[0] = (int8_t)(k == 1 ? -1 : k == 2 ? 1 : 0);
    }
  } else if (op == TL_OP_RESHAPE || op == TL_OP_BROADCAST_TO) {
    a->present |= TL_A_SHAPE;
    int k = rint_(r, 4);
    a->nshape = (uint8_t)(k == 0 ? 1 : k == 3 ? 3 : 2);
    for (int i = 0; i < a->nshape; i++) a->shape[i] = 1;
    a->shape[k == 1 ? 1 : 0] = op == TL_OP_RESHAPE ? TL_DIM_INFER : 1 + rint_(r, 3);
  } else if (op == TL_OP_TRANSPOSE) {
    if (rint_(r, 2)) { a->present |= TL_A_PERM; a->nperm = 2; a->perm[0] = 1; a->perm[1] = 0; }
  } else if (op == TL_OP_CAST) {
    a->present |= TL_A_DTYPE; a->dtype = (uint8_t)rint_(r, TL_DTYPE_COUNT);
  } else if (op == TL_OP_SLICE) {
    a->present |= TL_A_AXIS | TL_A_START | TL_A_STOP | TL_A_STEP;
    a->naxes = 1; a->axes[0] = 0; a->start = 0; a->stop = 1 + rint_(r, 2); a->step = 1;
  }
}

/* Draws a trial's variables; false when the conditions cannot hold. */
static bool gen_trial(rng *r, trial *t) {
  const eg_rule *ru = t->rule;
  const eg_vartab *vt = ru->vars;
  bool wide = rint_(r, 2);
  int brank = rint_(r, 4);
  int64_t bdims[TL_MAX_RANK];
  for (int i = 0; i < brank; i++) bdims[i] = 1 + rint_(r, 3);
  for (uint32_t v = 0; v < vt->n; v++) {
    var_inst *x = &t->v[v];
    memset(x, 0, sizeof *x);
    if (vt->is_attr[v]) { gen_attr(r, ru, v, &x->attrs); continue; }
    /* dtype */
    const char *dts = var_atom(ru, v, TN_C_DTYPE);
    int dt = rint_(r, TL_DTYPE_COUNT);
    if (var_has(ru, v, TN_C_FLOAT)) dt = TL_F32 + rint_(r, 2);
    else if (var_has(ru, v, TN_C_NUMERIC)) dt = TL_I32 + rint_(r, 4);
    if (dts) { dt = tl_dtype_lookup(dts, strlen(dts)); if (dt < 0) return false; }
    /* shape */
    const char *rk = var_atom(ru, v, TN_C_RANK);
    int rank;
    int64_t dims[TL_MAX_RANK];
    int mode = rint_(r, 100);
    if (var_has(ru, v, TN_C_SCALAR)) mode = -1;
    if (mode < 0 || (mode >= 45 && mode < 60)) rank = 0;
    else if (mode < 45) { rank = brank; memcpy(dims, bdims, sizeof dims); }
    else if (mode < 85) { /* a broadcastable suffix, some dims 1 */
      rank = brank ? rint_(r, brank + 1) : 0;
      for (int i = 0; i < rank; i++) dims[i] = rint_(r, 3) ? bdims[brank - rank + i] : 1;
    } else {
      rank = rint_(r, 4);
      for (int i = 0; i < rank; i++) dims[i] = 1 + rint_(r, 4);
    }
    if (rk) {
      rank = atoi(rk);
      if (rank < 0 || rank > 4) return false;
      for (int i = 0; i < rank; i++) dims[i] = i < brank && rint_(r, 2) ? bdims[i] : 1 + rint_(r, 3);
    }
    x->type.dtype = (uint8_t)dt;
    x->type.rank = (uint8_t)rank;
    memcpy(x->type.dims, dims, sizeof dims);
    const char *val = var_atom(ru, v, TN_C_VALUE);
    x->kind = val ? V_LIT : var_has(ru, v, TN_C_CONST) ? V_FILL : V_INPUT;
    bool pos = var_has(ru, v, TN_C_POSITIVE), nonneg = var_has(ru, v, TN_C_NONNEG),
         nz = var_has(ru, v, TN_C_NONZERO), nonpos = var_has(ru, v, TN_C_NONPOS);
    if (x->kind == V_LIT) {
      x->lit_int = strpbrk(val, ".eEin") == NULL;
      x->lit = strtod(val, NULL);
      if (x->lit_int) { /* as the rules' leaves parse (opt/tensor.c): else no literal has it */
        char *end;
        errno = 0;
        x->ilit = strtoll(val, &end, 10);
        if (*end || errno == ERANGE) return false;
      }
      x->type.dtype = x->lit_int ? TL_I64 : TL_F64;
      x->type.weak = 1;
      x->type.rank = 0;
    }
    tl_tensor *tt = tl_tensor_new((tl_dtype)x->type.dtype, x->type.rank, x->type.dims, NULL, 0);
    if (!tt) return false;
    int64_t n = x->kind == V_INPUT ? tt->numel : (tt->numel ? 1 : 0);
    for (int64_t i = 0; i < n; i++) {
      if (x->kind == V_LIT) {
        if (x->lit_int) tl_tensor_set_i64(tt, i, x->ilit);
        else tl_tensor_set_f64(tt, i, x->lit);
        continue;
      }
      if (tl_dtype_is_float((tl_dtype)dt)) {
        double f = gen_float(r, dt == TL_F32, wide);
        if (dt == TL_F32) f = (float)f;
        if (pos || nonneg) f = fabs(f);
        if (nonpos) f = -fabs(f);
        if ((pos || nz) && f == 0) f = dt == TL_F32 ? 1e-20 : 1e-30;
        if (nz && !pos && rint_(r, 2)) f = -f;
        tl_tensor_set_f64(tt, i, f);
      } else if (dt == TL_BOOL) {
        tl_tensor_set_i64(tt, i, (pos || nz) ? 1 : rint_(r, 2));
      } else {
        int64_t k = gen_int(r, (tl_dtype)dt, wide);
        if (pos || nonneg) k = k < 0 ? -(k + 1) : k;
        if (nonpos) k = k > 0 ? -k : k;
        if ((pos || nz) && k == 0) k = 1;
        if (nz && !pos && rint_(r, 2)) k = -k;
        tl_tensor_set_i64(tt, i, k);
      }
    }
    if (x->kind == V_FILL && tt->numel) { /* uniform: every element the first */
      for (int64_t i = 1; i < tt->numel; i++) tl_tensor_set_i64(tt, i, 0);
      bool fi = !tl_dtype_is_float((tl_dtype)dt);
      x->lit_int = fi;
      x->lit = tl_tensor_get_f64(tt, 0);
      int64_t li = x->ilit = tl_tensor_get_i64(tt, 0);
      for (int64_t i = 1; i < tt->numel; i++)
        if (fi) tl_tensor_set_i64(tt, i, li); else tl_tensor_set_f64(tt, i, x->lit);
    }
    x->t = tt;
  }
  return true;
}

static void trial_clear(trial *t) {
  for (int i = 0; i < t->nv; i++) { tl_tensor_free(t->v[i].t); t->v[i].t = NULL; }
}

/* Whether the rule's conditions hold on the trial's actual types and values. */
static bool conds_hold(const trial *t) {
  const eg_rule *ru = t->rule;
  for (int c = 0; c < ru->nconds; c++) {
    const eg_cond_use *u = &ru->conds[c];
    const var_inst *a[8] = {0};
    for (int k = 0; k < u->nargs && k < 8; k++)
      if (u->vars[k] != EG_NONE && u->vars[k] < (uint32_t)t->nv) a[k] = &t->v[u->vars[k]];
    const char *at1 = u->nargs > 1 ? u->atoms[1] : NULL;
    if (u->fn == TN_C_IMPROVES_ACCURACY) continue;
    if (!a[0] || !a[0]->t) return false;
    const tl_tensor *x = a[0]->t;
    const tl_type *ty = &a[0]->type;
    switch ((tn_cond_id)u->fn) { /* every condition: -Wswitch says when one is missing */
    case TN_C_NONZERO: case TN_C_POSITIVE: case TN_C_NONNEG: case TN_C_NONPOS:
      for (int64_t i = 0; i < x->numel; i++) {
        double f = tl_tensor_get_f64(x, i);
        bool hold = u->fn == TN_C_NONZERO ? f != 0 : u->fn == TN_C_POSITIVE ? f > 0
                  : u->fn == TN_C_NONNEG ? f >= 0 : f <= 0;
        if (!hold) return false;
      }
      break;
    case TN_C_SAME_DTYPE:
      for (int k = 1; k < u->nargs && k < 8; k++)
        if (!a[k] || a[k]->type.dtype != ty->dtype) return false;
      break;
    case TN_C_CONST: if (a[0]->kind == V_INPUT) return false; break;
    case TN_C_SCALAR: if (ty->rank != 0) return false; break;
    case TN_C_FLOAT: if (!tl_dtype_is_float((tl_dtype)ty->dtype)) return false; break;
    case TN_C_STRONG: if (ty->weak) return false; break;
    case TN_C_NUMERIC: if (ty->dtype == TL_BOOL) return false; break;
    case TN_C_DTYPE: if (!at1 || ty->dtype != tl_dtype_lookup(at1, strlen(at1))) return false; break;
    case TN_C_RANK: if (!at1 || ty->rank != atoi(at1)) return false; break;
    case TN_C_VALUE:
      if (!at1 || a[0]->kind == V_INPUT || a[0]->lit != strtod(at1, NULL)) return false;
      break;
    case TN_C_LOSSLESS_CAST: {
      int to = at1 ? tl_dtype_lookup(at1, strlen(at1)) : -1, from = ty->dtype;
      if (to < 0) return false;
      if (!(from == to || from == TL_BOOL || (from == TL_I32 && (to == TL_I64 || to == TL_F64)) ||
            (from == TL_F32 && to == TL_F64))) return false;
      break;
    }
    case TN_C_SAME_SHAPE: case TN_C_SAME_TYPE:
      for (int k = 1; k < u->nargs && k < 8; k++) {
        if (!a[k]) return false;
        const tl_type *b = &a[k]->type;
        if (b->rank != ty->rank || memcmp(b->dims, ty->dims, (size_t)b->rank * sizeof *b->dims)) return false;
        if (u->fn == TN_C_SAME_TYPE && (b->dtype != ty->dtype || b->weak != ty->weak)) return false;
      }
      break;
    case TN_C_FITS: {
      if (!a[1]) return false;
      const tl_type *b = ty, *tt = &a[1]->type;
      if (b->rank > tt->rank) return false;
      for (int i = 0; i < b->rank; i++) {
        int64_t d = b->dims[i], td = tt->dims[tt->rank - b->rank + i];
        if (d != td && d != 1) return false;
      }
      break;
    }
    case TN_C_IMPROVES_ACCURACY: case TN_C_COUNT: break;
    }
  }
  return true;
}

/* Instantiates pattern p into g; the root's node id, -1 on a type error.
 * ids receives each pattern node's graph node. */
static int32_t instantiate(tl_graph *g, const eg_pattern *p, const int32_t *var_node,
                           const trial *t, int32_t *ids) {
  char err[256];
  for (uint32_t i = 0; i < p->n; i++) {
    const eg_pnode *pn = &p->nodes[i];
    if (pn->kind == EG_PAT_VAR) { ids[i] = var_node[pn->var]; if (ids[i] < 0) return -1; continue; }
    tl_attrs a;
    tl_attrs_init(&a);
    if (pn->attr_var) a = t->v[pn->var].attrs;
    else if (pn->attr_len == sizeof a) memcpy(&a, p->blob + pn->attr_off, sizeof a);
    else if (pn->attr_len) memcpy(&a, p->blob + pn->attr_off, pn->attr_len < sizeof a ? pn->attr_len : sizeof a);
    int32_t kids[16];
    if (pn->n > 16) return -1;
    for (uint32_t k = 0; k < pn->n; k++) kids[k] = ids[p->kids[pn->kids + k]];
    ids[i] = tl_graph_add(g, pn->op, &a, kids, (int)pn->n, (tl_loc){0, 0}, err, sizeof err);
    if (ids[i] < 0) return -1;
  }
  return p->n ? ids[p->n - 1] : -1;
}

/* ---- comparing ---------------------------------------------------------- */

typedef struct outcome {
  int status;       /* 0 skip (ill-typed or run-time error), 1 pass, 2 fail */
  char why[160];
  tl_tensor *l, *r; /* kept on failure */
  tl_graph *g;
} outcome;

static double max_finite(const tl_tensor *t) {
  double m = 0;
  for (int64_t i = 0; t && i < t->numel; i++) {
    double f = fabs(tl_tensor_get_f64(t, i));
    if (isfinite(f) && f > m) m = f;
  }
  return m;
}

/* The trial's variables as nodes of g: inputs (their tensors appended to
 * ins), fills and literals; var_node[v] = -1 for attribute variables. */
static int add_vars(tl_graph *g, const trial *t, int32_t *var_node, tl_tensor **ins) {
  const eg_rule *ru = t->rule;
  int nin = 0;
  char err[256];
  for (int v = 0; v < t->nv; v++) {
    const var_inst *x = &t->v[v];
    var_node[v] = -1;
    if (ru->vars->is_attr[v] || !x->t) continue;
    const char *nm = ru->vars->names[v];
    if (nm[0] == '?') nm++;
    tl_attrs a;
    tl_attrs_init(&a);
    if (x->kind == V_INPUT) {
      var_node[v] = tl_graph_add_input(g, nm, &x->type, (tl_loc){0, 0});
      ins[nin++] = x->t;
      continue;
    }
    if (x->lit_int) { a.is_int = 1; a.i = x->ilit; } else a.f = x->lit;
    if (x->kind == V_FILL) {
      a.dtype = x->type.dtype;
      a.nshape = x->type.rank;
      memcpy(a.shape, x->type.dims, sizeof a.shape);
      var_node[v] = tl_graph_add(g, TL_OP_FILL, &a, NULL, 0, (tl_loc){0, 0}, err, sizeof err);
    } else {
      var_node[v] = tl_graph_add(g, TL_OP_LIT, &a, NULL, 0, (tl_loc){0, 0}, err, sizeof err);
    }
  }
  return nin;
}

static void run_trial(const trial *t, bool improves, outcome *o) {
  const eg_rule *ru = t->rule;
  memset(o, 0, sizeof *o);
  tl_graph *g = tl_graph_new("check");
  int32_t *var_node = tl_xmalloc(((size_t)t->nv + 1) * sizeof *var_node);
  tl_tensor **ins = tl_xcalloc((size_t)t->nv + 1, sizeof *ins);
  int nin = add_vars(g, t, var_node, ins);
  char err[256];
  int32_t *lids = tl_xmalloc(((size_t)ru->lhs.n + 1) * sizeof *lids);
  int32_t *rids = tl_xmalloc(((size_t)ru->rhs.n + 1) * sizeof *rids);
  int32_t l = instantiate(g, &ru->lhs, var_node, t, lids);
  int32_t r = l >= 0 ? instantiate(g, &ru->rhs, var_node, t, rids) : -1;
  tl_tensor **outs = NULL;
  int nout = 0;
  if (l < 0 || r < 0) goto done;
  tl_graph_add_output(g, "lhs", l);
  tl_graph_add_output(g, "rhs", r);
  for (uint32_t i = 0; i < ru->lhs.n; i++) tl_graph_add_output(g, "t", lids[i]);
  for (uint32_t i = 0; i < ru->rhs.n; i++) tl_graph_add_output(g, "t", rids[i]);
  nout = g->noutputs;
  outs = tl_xcalloc((size_t)nout, sizeof *outs);
  int64_t syms[1] = {0};
  if (tl_interp_run(g, ins, syms, outs, err, sizeof err)) { nout = 0; goto done; }
  const tl_tensor *L = outs[0], *R = outs[1];
  const tl_type *lt = &g->nodes[l].type, *rt = &g->nodes[r].type;
  o->status = 2;
  if (lt->dtype != rt->dtype || lt->rank != rt->rank ||
      memcmp(lt->dims, rt->dims, (size_t)lt->rank * sizeof *lt->dims) ||
      L->dtype != R->dtype || L->numel != R->numel) {
    char s1[96], s2[96];
    snprintf(o->why, sizeof o->why, "changes the type/shape: %s => %s",
             tl_type_str(g, lt, s1, sizeof s1), tl_type_str(g, rt, s2, sizeof s2));
    goto fail;
  }
  double scale = 0;
  for (int i = 0; i < nin; i++) scale = fmax(scale, max_finite(ins[i]));
  for (int i = 0; i < nout; i++) scale = fmax(scale, max_finite(outs[i]));
  bool fl = tl_dtype_is_float((tl_dtype)L->dtype);
  /* an f32 result or input rounds at f32 precision (an f32 intermediate
   * between f64 inputs and an f64 result is a precision loss: not excused) */
  bool any32 = L->dtype == TL_F32 || R->dtype == TL_F32;
  for (int i = 0; i < nin; i++) any32 |= ins[i]->dtype == TL_F32;
  double rtol = any32 ? 1e-5 : 1e-12;
  for (int64_t i = 0; i < L->numel; i++) {
    if (!fl) {
      if (tl_tensor_get_i64(L, i) != tl_tensor_get_i64(R, i)) {
        snprintf(o->why, sizeof o->why, "element %lld differs: %lld vs %lld", (long long)i,
                 (long long)tl_tensor_get_i64(L, i), (long long)tl_tensor_get_i64(R, i));
        goto fail;
      }
      continue;
    }
    double a = tl_tensor_get_f64(L, i), b = tl_tensor_get_f64(R, i);
    bool ok;
    if (isnan(a) || isnan(b)) ok = isnan(a) && isnan(b);
    else if (isinf(a) || isinf(b)) ok = a == b;
    else ok = fabs(a - b) <= rtol * (fabs(a) + fabs(b)) + rtol * 4 * scale;
    /* a rule that improves accuracy may replace inf/NaN by a finite value
     * (or an undefined NaN by an overflow), and digits the naive side lost
     * to cancellation: finite values then agree to 1e-2 relative, which
     * still catches a wrong formula (off by O(1)); the accuracy benchmark
     * measures such rules against a high-precision reference */
    if (!ok && improves && !isfinite(a) && isfinite(b)) ok = true;
    if (!ok && improves && isnan(a)) ok = true;
    if (!ok && improves && isfinite(a) && isfinite(b))
      ok = fabs(a - b) <= 1e-2 * (fabs(a) + fabs(b)) + rtol * 4 * scale;
    /* beyond that, the naive side may have lost every digit (0 for a
     * tiny difference, a quotient of rounding errors): the exact value
     * decides, and the rewritten side must be no farther from it */
    double ex;
    if (!ok && improves && isfinite(a) && tl_exact_elem(g, ins, l, i, &ex) == 0 && isfinite(ex))
      ok = fabs(b - ex) <= fabs(a - ex) + rtol * fabs(ex);
    if (!ok) {
      snprintf(o->why, sizeof o->why, "element %lld differs: %.17g vs %.17g (tolerance scale %.3g)",
               (long long)i, a, b, scale);
      goto fail;
    }
  }
  o->status = 1;
  goto done;
fail:
  o->l = tl_tensor_copy(L);
  o->r = tl_tensor_copy(R);
done:
  for (int i = 0; i < nout; i++) tl_tensor_free(outs[i]);
  tl_free(outs);
  tl_free(lids);
  tl_free(rids);
  tl_free(var_node);
  tl_free(ins);
  o->g = g;
}

static void print_tensor(FILE *f, const char *label, const tl_tensor *t, bool weak) {
  fprintf(f, "    %s = %s%s[", label, weak ? "weak " : "", tl_dtype_name((tl_dtype)t->dtype));
  for (int i = 0; i < t->rank; i++) fprintf(f, "%s%lld", i ? " " : "", (long long)t->dims[i]);
  fprintf(f, "] {");
  for (int64_t i = 0; i < t->numel && i < 8; i++) {
    if (tl_dtype_is_float((tl_dtype)t->dtype)) fprintf(f, "%s%.9g", i ? ", " : "", tl_tensor_get_f64(t, i));
    else fprintf(f, "%s%lld", i ? ", " : "", (long long)tl_tensor_get_i64(t, i));
  }
  fprintf(f, "%s}\n", t->numel > 8 ? ", ..." : "");
}

static void print_attrs(FILE *f, const char *name, const tl_attrs *a) {
  fprintf(f, "    %s =", name);
  if (a->present & TL_A_AXIS) {
    fprintf(f, " :axis [");
    for (int i = 0; i < a->naxes; i++) fprintf(f, "%s%d", i ? " " : "", a->axes[i]);
    fprintf(f, "]");
  }
  if (a->present & TL_A_KEEPDIMS) fprintf(f, " :keepdims %s", a->keepdims ? "true" : "false");
  if (a->present & TL_A_DTYPE) fprintf(f, " :dtype %s", tl_dtype_name((tl_dtype)a->dtype));
  if (a->present & TL_A_SHAPE) {
    fprintf(f, " :shape [");
    for (int i = 0; i < a->nshape; i++)
      fprintf(f, "%s%lld", i ? " " : "", a->shape[i] == TL_DIM_INFER ? -1LL : (long long)a->shape[i]);
    fprintf(f, "]");
  }
  if (a->present & TL_A_PERM) {
    fprintf(f, " :perm [");
    for (int i = 0; i < a->nperm; i++) fprintf(f, "%s%d", i ? " " : "", a->perm[i]);
    fprintf(f, "]");
  }
  if (!a->present) fprintf(f, " (no attributes)");
  fprintf(f, "\n");
}

/* ---- driver -------------------------------------------------------------- */

static bool rule_improves(const eg_rules *rs, const eg_rule *ru) {
  for (int i = 0; i < ru->nconds; i++)
    if (ru->conds[i].fn == TN_C_IMPROVES_ACCURACY) return true;
  const char *set = ru->ruleset >= 0 && ru->ruleset < rs->nrulesets ? rs->rulesets[ru->ruleset] : "";
  return strncmp(set, "stability", 9) == 0;
}

void tl_check_result_free(tl_check_result *r) {
  if (!r) return;
  for (int i = 0; i < r->nfailed; i++) tl_free(r->failed[i]);
  tl_free(r->failed);
  memset(r, 0, sizeof *r);
}

/* ---- in-place rules ------------------------------------------------------ */

static bool same_bits(const tl_tensor *a, const tl_tensor *b, int64_t i) {
  if (tl_dtype_is_float((tl_dtype)a->dtype)) {
    double x = tl_tensor_get_f64(a, i), y = tl_tensor_get_f64(b, i);
    return (isnan(x) && isnan(y)) || !memcmp(&x, &y, sizeof x);
  }
  return tl_tensor_get_i64(a, i) == tl_tensor_get_i64(b, i);
}

/* Whether elements i and j of a tensor of type t lie in the same row along
 * axis ax (their indices differ at most in dim ax). */
static bool same_row(const tl_type *t, int ax, int64_t i, int64_t j) {
  for (int d = t->rank - 1; d >= 0; d--) {
    int64_t n = t->dims[d];
    if (d != ax && i % n != j % n) return false;
    i /= n, j /= n;
  }
  return true;
}

/* One trial of (inplace NAME (OP ?a ...) :destroys ...): for a destroyed
 * operand drawn with the result's dtype and shape (where the backend would
 * apply the rule), the result is computed, one element j of the operand is
 * changed, and the result is computed again: every element other than j
 * must be unchanged, else writing the result over the operand element by
 * element could clobber a value still to be read. For a :rowwise rule,
 * every element outside j's row along the op's axis must be unchanged
 * (the backend's row kernel reads each element of a row before writing
 * it, but a row that read another row would see it clobbered). Returns 0
 * (the rule does not apply to these types), 1 (pass) or 2 (fail, why
 * set). */
static int run_inplace_trial(rng *r, const trial *t, const eg_inplace *ip, char *why, size_t nwhy) {
  tl_graph *g = tl_graph_new("check-inplace");
  int32_t *var_node = tl_xmalloc(((size_t)t->nv + 1) * sizeof *var_node);
  tl_tensor **ins = tl_xcalloc((size_t)t->nv + 1, sizeof *ins);
  int32_t *ids = tl_xmalloc(((size_t)ip->pat.n + 1) * sizeof *ids);
  int nin = add_vars(g, t, var_node, ins), status = 0;
  int32_t root = instantiate(g, &ip->pat, var_node, t, ids);
  tl_tensor *out0 = NULL, *out1 = NULL, *saved = NULL;
  char err[256];
  if (root < 0) goto done;
  tl_graph_add_output(g, "y", root);
  const tl_type *ot = &g->nodes[root].type;
  const tl_attrs *ra = &g->nodes[root].attrs;
  int ax = (ra->present & TL_A_AXIS) && ra->naxes ? ra->axes[0] : -1;
  if (ax < 0) ax += ot->rank;
  if (ip->rowwise && ((ra->present & TL_A_AXIS) && ra->naxes > 1)) goto done; /* not one row axis */
  const eg_pnode *pr = &ip->pat.nodes[ip->pat.n - 1];
  for (uint32_t k = 0; k < pr->n && !status; k++) {
    if (!((ip->destroys >> k) & 1)) continue;
    uint32_t v = ip->pat.nodes[ip->pat.kids[pr->kids + k]].var;
    int32_t x = var_node[v];
    int in = -1;
    for (int i = 0; i < g->ninputs; i++)
      if (g->inputs[i] == x) in = i;
    const tl_type *xt = x >= 0 ? &g->nodes[x].type : NULL;
    if (in < 0 || in >= nin || xt->dtype != ot->dtype || xt->weak || ot->weak || xt->rank != ot->rank ||
        memcmp(xt->dims, ot->dims, (size_t)ot->rank * sizeof *ot->dims) || ins[in]->numel == 0)
      continue;
    if (tl_interp_run(g, ins, NULL, &out0, err, sizeof err)) break;
    tl_tensor *xv = ins[in];
    int64_t j = (int64_t)(rnext(r) % (uint64_t)xv->numel);
    saved = tl_tensor_copy(xv);
    double old = tl_tensor_get_f64(xv, j);
    if (tl_dtype_is_float((tl_dtype)xv->dtype))
      tl_tensor_set_f64(xv, j, old != 0 ? -2 * old : 1.5); /* always a different value */
    else
      tl_tensor_set_i64(xv, j, xv->dtype == TL_BOOL ? !tl_tensor_get_i64(xv, j) : tl_tensor_get_i64(xv, j) ^ 1);
    int rc = tl_interp_run(g, ins, NULL, &out1, err, sizeof err);
    memcpy(xv->data, saved->data, (size_t)xv->numel * tl_dtype_size((tl_dtype)xv->dtype));
    if (rc) break;
    status = 1;
    for (int64_t i = 0; i < out0->numel; i++)
      if (i != j && !(ip->rowwise && same_row(ot, ax, i, j)) && !same_bits(out0, out1, i)) {
        snprintf(why, nwhy, "result element %lld changed when only element %lld of %s changed%s",
                 (long long)i, (long long)j, ip->vars->names[v], ip->rowwise ? " (another row)" : "");
        status = 2;
        break;
      }
  }
done:
  tl_tensor_free(out0);
  tl_tensor_free(out1);
  tl_tensor_free(saved);
  tl_graph_free(g);
  tl_free(ids);
  tl_free(ins);
  tl_free(var_node);
  return status;
}

/* An in-place rule is sound when its op is elementwise (every result
 * element reads each operand at its own index, so it reads the destroyed
 * operand's element before the result overwrites it) - that is the op
 * table's definition; the trials test it on the interpreter. A :rowwise
 * rule needs an op that works along an :axis (or an elementwise one), and
 * trials that find no result row reading another row of the operand. */
static void check_inplace(const eg_rules *rs, int idx, const tl_check_opts *o, tl_check_result *res) {
  const eg_inplace *ip = &rs->inplaces[idx];
  FILE *f = o->out;
  int trials = o->trials > 0 ? o->trials : 200;
  res->nrules++;
  char why[200] = "";
  int valid = 0;
  bool bad = false;
  eg_rule ru;
  memset(&ru, 0, sizeof ru);
  ru.name = ip->name;
  ru.lhs = ip->pat;
  ru.rhs = ip->pat;
  ru.vars = ip->vars;
  rng r = {o->seed * 0x100000001b3ULL + (uint64_t)idx * 104729 + 17};
  trial t = {&ru, (int)ip->vars->n, tl_xcalloc((size_t)ip->vars->n + 1, sizeof(var_inst))};
  for (int attempt = 0; attempt < trials * 30 && valid < trials && !bad; attempt++) {
    if (gen_trial(&r, &t)) {
      int st = run_inplace_trial(&r, &t, ip, why, sizeof why);
      valid += st != 0;
      bad = st == 2;
    }
    trial_clear(&t);
  }
  tl_free(t.v);
  /* trials that passed do not make a non-elementwise op element-local */
  if (!bad && ip->rowwise && tl_ops[ip->op].kind != TL_KIND_ELEMWISE && !(tl_ops[ip->op].allowed_attrs & TL_A_AXIS)) {
    snprintf(why, sizeof why, "%s has no :axis, so it has no rows for :rowwise", tl_ops[ip->op].name);
    bad = true;
  }
  if (!bad && !ip->rowwise && tl_ops[ip->op].kind != TL_KIND_ELEMWISE) {
    snprintf(why, sizeof why, "%s is not an elementwise op: a result element may read other elements "
             "of the operand it overwrites", tl_ops[ip->op].name);
    bad = true;
  }
  if (bad) {
    res->ncex++;
    res->failed = tl_xrealloc(res->failed, (size_t)(res->nfailed + 1) * sizeof *res->failed);
    res->failed[res->nfailed++] = tl_xstrdup(ip->name);
    if (f) fprintf(f, "%s:%d: counter-example: in-place rule %s: %s\n", ip->file, ip->line, ip->name, why);
  } else if (valid == 0) {
    res->nuntested++;
    if (f) fprintf(f, "%s:%d: warning: in-place rule %s: never applies (no trial gave the destroyed "
                      "operand the result's dtype and shape)\n", ip->file, ip->line, ip->name);
  } else if (o->verbose && f) {
    fprintf(f, "%s:%d: in-place rule %s: ok (%d trials)\n", ip->file, ip->line, ip->name, valid);
  }
}

int tl_check_rules(const eg_rules *rs, const tl_check_opts *o, tl_check_result *res) {
  memset(res, 0, sizeof *res);
  int trials = o->trials > 0 ? o->trials : 200;
  FILE *f = o->out;
  for (int ri = 0; ri < rs->nrules; ri++) {
    const eg_rule *ru = &rs->rules[ri];
    res->nrules++;
    rng r = {o->seed * 0x100000001b3ULL + (uint64_t)ri * 7919 + 1};
    trial t = {ru, (int)ru->vars->n, tl_xcalloc((size_t)ru->vars->n + 1, sizeof(var_inst))};
    bool improves = rule_improves(rs, ru);
    bool known = false;
    for (int k = 0; k < o->nknown; k++) {
      size_t n = strlen(o->known[k]);
      if (!strcmp(o->known[k], ru->name) ||
          (ru->backward && n == strlen(ru->name) + 2 && !strncmp(o->known[k], ru->name, n - 2) &&
           !strcmp(o->known[k] + n - 2, "<-")))
        known = true;
    }
    int valid = 0, nfail = 0;
    outcome first = {0};
    bool have_first = false;
    trial first_t = {ru, t.nv, tl_xcalloc((size_t)t.nv + 1, sizeof(var_inst))};
    for (int attempt = 0; attempt < trials * 30 && valid < trials; attempt++) {
      bool ok = gen_trial(&r, &t) && conds_hold(&t);
      if (ok) {
        outcome oc;
        run_trial(&t, improves, &oc);
        if (oc.status) valid++;
        if (oc.status == 2) {
          nfail++;
          if (!have_first) {
            first = oc;
            have_first = true;
            for (int v = 0; v < t.nv; v++) { first_t.v[v] = t.v[v]; t.v[v].t = NULL; }
            oc.g = NULL;
          } else {
            tl_tensor_free(oc.l);
            tl_tensor_free(oc.r);
          }
        }
        tl_graph_free(oc.g);
      }
      trial_clear(&t);
      if (nfail >= 20) break;
    }
    char rname[300];
    snprintf(rname, sizeof rname, "%s%s", ru->name, ru->backward ? "<-" : "");
    if (valid == 0) {
      res->nuntested++;
      if (f) fprintf(f, "%s:%d: warning: rule %s: no valid trial (inputs never type-check or "
                        "satisfy the conditions)\n", ru->file ? ru->file : "?", ru->line, rname);
    } else if (o->verbose && f && !have_first) {
      fprintf(f, "%s:%d: rule %s: ok (%d trials)\n", ru->file ? ru->file : "?", ru->line, rname, valid);
    }
    if (have_first) {
      if (known) res->nknown++; else res->ncex++;
      res->failed = tl_xrealloc(res->failed, (size_t)(res->nfailed + 1) * sizeof *res->failed);
      res->failed[res->nfailed++] = tl_xstrdup(rname);
      if (f) {
        fprintf(f, "%s:%d: %s: rule %s%s: %s (%d of %d trials failed)\n",
                ru->file ? ru->file : "?", ru->line, known ? "known counter-example" : "counter-example",
                rname, improves ? " (improves accuracy)" : "", first.why, nfail, valid);
        for (int v = 0; v < t.nv; v++) {
          const var_inst *x = &first_t.v[v];
          if (ru->vars->is_attr[v]) { print_attrs(f, ru->vars->names[v], &x->attrs); continue; }
          if (x->t) print_tensor(f, ru->vars->names[v], x->t, x->type.weak);
        }
        if (first.l) print_tensor(f, "lhs", first.l, false);
        if (first.r) print_tensor(f, "rhs", first.r, false);
      }
      tl_tensor_free(first.l);
      tl_tensor_free(first.r);
      tl_graph_free(first.g);
      trial_clear(&first_t);
    }
    tl_free(first_t.v);
    tl_free(t.v);
  }
  for (int i = 0; i < rs->ninplaces; i++) check_inplace(rs, i, o, res);
  /* fuse declarations say what the backend computes in one loop, not that
   * two terms are equal: there is nothing to prove on random inputs */
  if (rs->nfuses && f)
    fprintf(f, "check-rules: %d fusion rule%s skipped (not rewrite rules: nothing to check on values)\n",
            rs->nfuses, rs->nfuses == 1 ? "" : "s");
  return res->ncex;
}

int tl_check_rules_text(const char *file, const char *text, const tl_check_opts *o,
                        tl_check_result *res) {
  memset(res, 0, sizeof *res);
  tn_ctx *c = tn_ctx_new();
  eg_conds *conds = tl_check_conds_new();
  eg_rules *rs = eg_rules_new(&c->lang, conds);
  tl_diag d = {0};
  int rc;
  if (eg_rules_load(rs, file, text, strlen(text), &d)) {
    if (o->out) fputs(tl_diag_text(&d), o->out);
    rc = -1;
  } else {
    rc = tl_check_rules(rs, o, res);
    gr_rules *gr = gr_rules_new();
    tl_buf gd = {0};
    if (gr_rules_load(gr, file, text, strlen(text), &gd)) {
      if (o->out && gd.s) fputs(gd.s, o->out);
      tl_check_result_free(res);
      rc = -1;
    } else {
      rc += tl_check_grad_rules(gr, o, res);
    }
    tl_free(gd.s);
    gr_rules_free(gr);
  }
  tl_diag_free(&d);
  eg_rules_free(rs);
  eg_conds_free(conds);
  tn_ctx_free(c);
  return rc;
}

int tl_check_op_table(const tl_check_opts *o, tl_check_result *res) {
  return tl_check_rule_files(NULL, 0, true, o, o->out, NULL, res);
}

int tl_check_rule_files(const char *const *files, int nfiles, bool op_table, const tl_check_opts *o,
                        FILE *diag, int *nerrors, tl_check_result *res) {
  memset(res, 0, sizeof *res);
  tn_ctx *c = tn_ctx_new();
  eg_conds *conds = tl_check_conds_new();
  eg_rules *rs = eg_rules_new(&c->lang, conds);
  tl_diag d = {0};
  int rc, errs = op_table && tn_op_table_rules(rs, &d) ? 1 : 0;
  for (int i = 0; i < nfiles; i++) errs += eg_rules_load_file(rs, files[i], &d);
  gr_rules *gr = gr_rules_new();
  tl_buf gd = {0};
  if (!errs)
    for (int i = 0; i < nfiles; i++) errs += gr_rules_load_path(gr, files[i], &gd);
  if (nerrors) *nerrors = errs;
  if (errs) {
    if (diag) fputs(tl_diag_text(&d), diag);
    if (diag && gd.s) fputs(gd.s, diag);
    rc = -1;
  } else {
    rc = tl_check_rules(rs, o, res);
    rc += tl_check_grad_rules(gr, o, res);
  }
  tl_free(gd.s);
  gr_rules_free(gr);
  tl_diag_free(&d);
  eg_rules_free(rs);
  eg_conds_free(conds);
  tn_ctx_free(c);
  return rc;
}
