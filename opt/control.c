/* control.c - carrying out the control-flow rules on the e-graph
 * (control.h; docs/rules.md "Control-flow rules").
 *
 * A pass searches, for each declaration, the nodes of its op, binds the
 * left side's variables (operand classes and the functions under its
 * keys), checks the conditions and adds the right side to the node's
 * e-class. The transformations work on functions as graphs: they build
 * new functions (a body with some of its nodes turned into parameters),
 * and load what moves out of the body into the e-graph through tn_load_fn
 * on the node's operands. */
#include "opt/control.h"

#include "util/alloc.h"

#include <limits.h>
#include <stdio.h>
#include <string.h>

enum { K_FN, K_THEN, K_ELSE, K_COND, K_BODY, K_UNTIL, NKEYS };
static const char *const keys[NKEYS] = {"fn", "then", "else", "cond", "body", "until"};
static const int key_slot[NKEYS] = {0, 0, 1, 0, 1, 2};
static const unsigned key_bit[NKEYS] = {TL_A_FN, TL_A_THEN, TL_A_ELSE, TL_A_COND, TL_A_BODY, TL_A_UNTIL};

enum { H_INLINE, H_HOIST_INVARIANT, H_HOIST_COMMON, H_HOIST_SEQUENCE, H_SUM_AFTER, NHEADS };
static const char *const heads[NHEADS] = {"inline", "hoist-invariant", "hoist-common", "hoist-sequence",
                                          "sum-after"};

enum { C_SAME_FN, C_STRAIGHT_LINE, NCONDS };
static const char *const fconds[NCONDS] = {"same-fn", "straight-line"};

static bool op_ok(int op) { return op >= 0 && op < TL_OP_COUNT && tl_ops[op].kind == TL_KIND_CONTROL; }
static bool key_ok(int op, int key) { return (tl_ops[op].allowed_attrs & key_bit[key]) != 0; }

const eg_control_lang tn_control_lang = {keys, NKEYS, heads, NHEADS, fconds, NCONDS, op_ok, key_ok};

/* ---- the set of (rule, node) pairs already carried out -------------------- */

struct tn_control_done {
  uint64_t *k;
  size_t n, cap; /* open addressing, cap a power of two; key 0 unused */
  /* the functions a transformation made, by (rule, its functions): the
   * other results of one run (:out) get the same ones, so they stay one run */
  int32_t (*memo)[6];
  size_t nmemo, capmemo;
};

static int32_t *memo_find(tn_control_done *d, int ci, int32_t f0, int32_t f1) {
  for (size_t i = 0; d && i < d->nmemo; i++)
    if (d->memo[i][0] == ci && d->memo[i][1] == f0 && d->memo[i][2] == f1) return d->memo[i] + 3;
  return NULL;
}

static void memo_put(tn_control_done *d, int ci, int32_t f0, int32_t f1, int32_t r0, int32_t r1, int32_t r2) {
  if (d->nmemo == d->capmemo) {
    d->capmemo = d->capmemo ? 2 * d->capmemo : 16;
    d->memo = tl_xrealloc(d->memo, d->capmemo * sizeof *d->memo);
  }
  int32_t *m = d->memo[d->nmemo++];
  m[0] = ci, m[1] = f0, m[2] = f1, m[3] = r0, m[4] = r1, m[5] = r2;
}

/* The one new body of rule ci for function b (tag tells transformations
 * apart): the body a sibling :out node made already, else *body, added to
 * the table (which then owns it: *body becomes NULL). */
static int32_t memo_body(tn_control_done *d, int ci, tl_fns *t, int32_t b, int32_t tag, tl_graph **body) {
  int32_t *m = memo_find(d, ci, b, tag);
  if (m) return m[0];
  int32_t bi = tl_fns_add(t, *body);
  *body = NULL;
  memo_put(d, ci, b, tag, bi, -1, -1);
  return bi;
}

static bool done_add(tn_control_done **dp, uint64_t key) {
  tn_control_done *d = *dp;
  if (!d) d = *dp = tl_xcalloc(1, sizeof *d);
  if (2 * (d->n + 1) > d->cap) {
    size_t cap = d->cap ? 2 * d->cap : 64;
    uint64_t *k = tl_xcalloc(cap, sizeof *k);
    for (size_t i = 0; i < d->cap; i++)
      if (d->k[i]) {
        size_t h = (size_t)(d->k[i] * 0x9E3779B97F4A7C15ULL) & (cap - 1);
        while (k[h]) h = (h + 1) & (cap - 1);
        k[h] = d->k[i];
      }
    tl_free(d->k);
    d->k = k;
    d->cap = cap;
  }
  size_t h = (size_t)(key * 0x9E3779B97F4A7C15ULL) & (d->cap - 1);
  while (d->k[h]) {
    if (d->k[h] == key) return false;
    h = (h + 1) & (d->cap - 1);
  }
  d->k[h] = key;
  d->n++;
  return true;
}

void tn_control_done_free(tn_control_done *d) {
  if (!d) return;
  tl_free(d->memo);
  tl_free(d->k);
  tl_free(d);
}

/* ---- functions as graphs ----------------------------------------------------- */

/* A new function named after f (unique in t), with f's symbols in order
 * (so dims copy over unchanged) and calling into t. */
static tl_graph *fn_new(const tl_graph *f, tl_fns *t, const char *what) {
  char name[256];
  for (int k = 1;; k++) {
    snprintf(name, sizeof name, "%s.%s%d", f->name, what, k);
    if (tl_fns_find(t, name, strlen(name)) < 0) break;
  }
  tl_graph *h = tl_graph_new(name);
  h->fns = t; /* weakly, as a function of t */
  for (int s = 0; s < f->nsyms; s++) tl_graph_sym(h, f->syms[s], strlen(f->syms[s]));
  return h;
}

static void fn_drop(tl_graph *h) {
  h->fns = NULL;
  tl_graph_free(h);
}

/* Copies f's node x into h, operands through map. -1 on an error. */
static int32_t copy_node(tl_graph *h, const tl_graph *f, int32_t x, const int32_t *map) {
  const tl_node *nd = &f->nodes[x];
  if (nd->op == TL_OP_CONST) return tl_graph_add_const(h, tl_tensor_copy(f->lits[nd->attrs.lit]), nd->loc);
  int32_t ops[TL_GRAPH_MAX_ARGS];
  for (int j = 0; j < nd->ninputs; j++) ops[j] = map[tl_node_inputs(f, nd)[j]];
  char err[256];
  return tl_graph_add(h, nd->op, &nd->attrs, ops, nd->ninputs, nd->loc, err, sizeof err);
}

static void add_param(tl_graph *h, const tl_graph *f, int32_t x, int32_t *map, int k) {
  char name[48];
  snprintf(name, sizeof name, "hoisted%d", k);
  map[x] = tl_graph_add_input(h, name, &f->nodes[x].type, f->nodes[x].loc);
}

/* Marks what the marked nodes of f read, transitively (a node x with
 * stop && stop[x] >= 0 reads nothing here: a cut node, a parameter). */
static void mark_needed(const tl_graph *f, uint8_t *need, const int32_t *stop) {
  for (int32_t x = f->nnodes - 1; x >= 0; x--) {
    if (!need[x] || (stop && stop[x] >= 0)) continue;
    const tl_node *nd = &f->nodes[x];
    for (int j = 0; j < nd->ninputs; j++) need[tl_node_inputs(f, nd)[j]] = 1;
  }
}

/* The marked nodes' ids, in node order, into out; their count. */
static int marked(const uint8_t *mask, int32_t n, int32_t *out) {
  int k = 0;
  for (int32_t x = 0; x < n; x++)
    if (mask[x]) out[k++] = x;
  return k;
}

/* f with the nodes cut[] (in order) replaced by new parameters inserted
 * before parameter `at`; nodes only they needed are dropped. With
 * pass_through, the new parameters are also appended to the outputs (a
 * loop body's new state). NULL on an error. */
static tl_graph *fn_cut(const tl_graph *f, tl_fns *t, const int32_t *cut, int ncut, int at, bool pass_through) {
  tl_graph *h = fn_new(f, t, "hoisted");
  int32_t *map = tl_xmalloc(((size_t)f->nnodes + 1) * sizeof *map);
  uint8_t *need = tl_xcalloc((size_t)f->nnodes + 1, 1);
  for (int32_t x = 0; x < f->nnodes; x++) map[x] = -1;
  for (int i = 0; i <= f->ninputs; i++) {
    if (i == at)
      for (int k = 0; k < ncut; k++) add_param(h, f, cut[k], map, k);
    if (i < f->ninputs) {
      const tl_node *x = &f->nodes[f->inputs[i]];
      map[f->inputs[i]] = tl_graph_add_input(h, f->names[x->name], &x->type, x->loc);
    }
  }
  /* what the outputs still need, walking back from them (a cut node stops) */
  for (int i = 0; i < f->noutputs; i++) need[f->outputs[i].node] = 1;
  mark_needed(f, need, map);
  bool ok = true;
  for (int32_t x = 0; x < f->nnodes && ok; x++)
    if (need[x] && map[x] < 0) ok = (map[x] = copy_node(h, f, x, map)) >= 0;
  for (int i = 0; i < f->noutputs && ok; i++) tl_graph_add_output(h, f->names[f->outputs[i].name], map[f->outputs[i].node]);
  for (int k = 0; k < ncut && ok && pass_through; k++) {
    char name[48];
    snprintf(name, sizeof name, "hoisted%d_out", k);
    tl_graph_add_output(h, name, map[cut[k]]);
  }
  tl_free(map);
  tl_free(need);
  if (!ok) {
    fn_drop(h);
    return NULL;
  }
  return h;
}

/* A predicate function f that takes ncut more parameters (types of src's
 * nodes cut[]) at the end and ignores them. */
static tl_graph *fn_extend(const tl_graph *f, tl_fns *t, const tl_graph *src, const int32_t *cut, int ncut) {
  tl_graph *h = fn_new(f, t, "ext");
  int32_t *map = tl_xmalloc(((size_t)f->nnodes + 1) * sizeof *map);
  for (int i = 0; i < f->ninputs; i++) {
    const tl_node *x = &f->nodes[f->inputs[i]];
    map[f->inputs[i]] = tl_graph_add_input(h, f->names[x->name], &x->type, x->loc);
  }
  for (int k = 0; k < ncut; k++) {
    char name[48];
    snprintf(name, sizeof name, "hoisted%d", k);
    /* src's symbols are the loop's body's: the same names as f's (one state) */
    tl_type ty = src->nodes[cut[k]].type;
    for (int d = 0; d < ty.rank; d++)
      if (tl_dim_is_sym(ty.dims[d])) {
        const char *s = src->syms[tl_dim_sym_id(ty.dims[d])];
        ty.dims[d] = tl_dim_sym(tl_graph_sym(h, s, strlen(s)));
      }
    tl_graph_add_input(h, name, &ty, (tl_loc){0, 0});
  }
  bool ok = true;
  for (int32_t x = 0; x < f->nnodes && ok; x++)
    if (f->nodes[x].op != TL_OP_INPUT) ok = (map[x] = copy_node(h, f, x, map)) >= 0;
  for (int i = 0; i < f->noutputs && ok; i++) tl_graph_add_output(h, f->names[f->outputs[i].name], map[f->outputs[i].node]);
  tl_free(map);
  if (!ok) {
    fn_drop(h);
    return NULL;
  }
  return h;
}

/* A function of f's parameters from `from` on computing f's nodes outs[]
 * (its outputs, in order): what moves out of a body, loaded on the node's
 * operands. Parameters from `lead` on take a new leading dim (`__steps`),
 * so the nodes computed from them are computed for every step at once
 * (a scan's sequences, whole). NULL on an error. */
static tl_graph *fn_slice(const tl_graph *f, tl_fns *t, const int32_t *outs, int nouts, int from, int lead) {
  tl_graph *h = fn_new(f, t, "pre");
  int32_t *map = tl_xmalloc(((size_t)f->nnodes + 1) * sizeof *map);
  uint8_t *need = tl_xcalloc((size_t)f->nnodes + 1, 1);
  int steps = lead < f->ninputs ? tl_graph_sym(h, "__steps", 7) : -1;
  bool ok = true;
  for (int i = from; i < f->ninputs && ok; i++) {
    const tl_node *x = &f->nodes[f->inputs[i]];
    tl_type ty = x->type;
    if (i >= lead) {
      ok = ty.rank < TL_MAX_RANK;
      memmove(ty.dims + 1, ty.dims, (size_t)ty.rank * sizeof *ty.dims);
      ty.dims[0] = tl_dim_sym(steps);
      ty.rank++;
    }
    map[f->inputs[i]] = tl_graph_add_input(h, f->names[x->name], &ty, x->loc);
  }
  for (int k = 0; k < nouts; k++) need[outs[k]] = 1;
  mark_needed(f, need, NULL);
  for (int32_t x = 0; x < f->nnodes && ok; x++)
    if (need[x] && f->nodes[x].op != TL_OP_INPUT) ok = (map[x] = copy_node(h, f, x, map)) >= 0;
  for (int k = 0; k < nouts && ok; k++) {
    char name[48];
    snprintf(name, sizeof name, "hoisted%d", k);
    tl_graph_add_output(h, name, map[outs[k]]);
  }
  tl_free(map);
  tl_free(need);
  if (!ok) {
    fn_drop(h);
    return NULL;
  }
  return h;
}

/* Ops that may stop a run with an error, which a hoisted computation must
 * not do where the loop or scan would not have run it (zero trips). */
static bool may_fail(int op) { return op == TL_OP_TAKE || tl_ops[op].kind == TL_KIND_CONTROL; }

/* Marks in cut (at map[y], or at y without a map) every node y of f in the
 * set `in` that computes something (not a parameter, not a leaf) and that
 * a node outside the set, or an output, reads: where a hoisted part of f
 * meets the rest. */
static void frontier(const tl_graph *f, const uint8_t *in, const int32_t *map, uint8_t *cut) {
  for (int32_t x = 0; x < f->nnodes; x++) {
    const tl_node *nd = &f->nodes[x];
    bool outside = !in[x];
    for (int j = 0; j < nd->ninputs && outside; j++) {
      int32_t y = tl_node_inputs(f, nd)[j];
      if (in[y] && f->nodes[y].op != TL_OP_INPUT && f->nodes[y].ninputs > 0) cut[map ? map[y] : y] = 1;
    }
  }
  for (int i = 0; i < f->noutputs; i++) {
    int32_t y = f->outputs[i].node;
    if (in[y] && f->nodes[y].op != TL_OP_INPUT && f->nodes[y].ninputs > 0) cut[map ? map[y] : y] = 1;
  }
}

/* The nodes of f to hoist, given which parameters are invariant: the
 * invariant nodes (every operand invariant; not a source) that a variant
 * node or an output reads. Returns their count (cut[] in node order). */
static int invariant_cut(const tl_graph *f, const uint8_t *param_inv, int32_t *cut) {
  uint8_t *inv = tl_xcalloc((size_t)f->nnodes + 1, 1);
  for (int i = 0; i < f->ninputs; i++) inv[f->inputs[i]] = param_inv[i];
  for (int32_t x = 0; x < f->nnodes; x++) {
    const tl_node *nd = &f->nodes[x];
    if (nd->op == TL_OP_INPUT) continue;
    bool v = !may_fail(nd->op);
    for (int j = 0; j < nd->ninputs && v; j++) v = inv[tl_node_inputs(f, nd)[j]];
    inv[x] = v;
  }
  uint8_t *cutp = tl_xcalloc((size_t)f->nnodes + 1, 1);
  frontier(f, inv, NULL, cutp);
  int n = marked(cutp, f->nnodes, cut);
  tl_free(inv);
  tl_free(cutp);
  return n;
}

/* ---- carrying out one right side --------------------------------------------- */

typedef struct ctx {
  tn_control_done *done;
  int ci; /* the rule */
  tn_ctx *c;
  eg_egraph *e;
  tl_fns *t;
  const eg_node *nd;
  eg_id kids[TL_GRAPH_MAX_ARGS];
  int nkids;
  tl_attrs a;
} ctx;

/* A node of op with attributes a on the matched node's operands followed
 * by extra[] (the hoisted values, new trailing operands). */
static eg_id add_appended(ctx *x, int op, const tl_attrs *a, const eg_id *extra, int nextra) {
  eg_id kids[TL_GRAPH_MAX_ARGS];
  int n = 0;
  for (int i = 0; i < x->nkids; i++) kids[n++] = x->kids[i];
  for (int k = 0; k < nextra; k++) kids[n++] = extra[k];
  return tn_add(x->e, op, a, kids, (uint32_t)n);
}

static eg_id do_inline(ctx *x, int32_t f) {
  if (x->nd->op != TL_OP_CALL) return EG_NONE;
  const tl_graph *g = x->t->fn[f];
  eg_id *out = tl_xmalloc(((size_t)g->noutputs + 1) * sizeof *out);
  eg_id r = tn_load_fn(x->c, x->e, g, x->kids, out) == 0 ? out[x->a.out] : EG_NONE;
  tl_free(out);
  return r;
}

/* scan: its body's nodes that read only the consts become new consts */
static eg_id hoist_scan(ctx *x, int32_t b) {
  const tl_graph *f = x->t->fn[b];
  int nc = (int)x->a.carry, nk = (x->a.present & TL_A_CONSTS) ? (int)x->a.consts : 0;
  uint8_t *pinv = tl_xcalloc((size_t)f->ninputs + 1, 1);
  for (int i = nc; i < nc + nk; i++) pinv[i] = 1;
  int32_t *cut = tl_xmalloc(((size_t)f->nnodes + 1) * sizeof *cut);
  int ncut = invariant_cut(f, pinv, cut);
  eg_id r = EG_NONE;
  if (ncut > 0 && x->nkids + ncut <= TL_GRAPH_MAX_ARGS) {
    tl_graph *pre = fn_slice(f, x->t, cut, ncut, 0, f->ninputs);
    tl_graph *body = pre ? fn_cut(f, x->t, cut, ncut, nc + nk, false) : NULL;
    eg_id *hv = tl_xmalloc(((size_t)ncut + 1) * sizeof *hv);
    /* pre's parameters are the body's: the consts are operands nc.., the
     * carries too; the sequences' slices are not operands, and pre does
     * not read them (EG_NONE) */
    eg_id *args = tl_xmalloc(((size_t)f->ninputs + 1) * sizeof *args);
    for (int i = 0; i < f->ninputs; i++) args[i] = i < nc + nk ? x->kids[i] : EG_NONE;
    if (body && tn_load_fn(x->c, x->e, pre, args, hv) == 0) {
      int32_t bi = memo_body(x->done, x->ci, x->t, b, -1, &body);
      eg_id nk2[TL_GRAPH_MAX_ARGS];
      int n = 0;
      for (int i = 0; i < nc + nk; i++) nk2[n++] = x->kids[i];
      for (int k = 0; k < ncut; k++) nk2[n++] = hv[k];
      for (int i = nc + nk; i < x->nkids; i++) nk2[n++] = x->kids[i];
      tl_attrs a = x->a;
      a.fn[1] = bi;
      a.consts = nk + ncut;
      a.present |= TL_A_CONSTS;
      r = tn_add(x->e, TL_OP_SCAN, &a, nk2, (uint32_t)n);
    }
    if (body) fn_drop(body);
    if (pre) fn_drop(pre);
    tl_free(hv);
    tl_free(args);
  }
  tl_free(pinv);
  tl_free(cut);
  return r;
}

/* loop: its body's nodes that read only state the body passes through
 * unchanged become new state, passed through too */
static eg_id hoist_loop(ctx *x, int32_t b) {
  const tl_graph *f = x->t->fn[b];
  if (f->ninputs != x->nkids || f->noutputs != f->ninputs) return EG_NONE;
  uint8_t *pinv = tl_xcalloc((size_t)f->ninputs + 1, 1);
  for (int i = 0; i < f->ninputs; i++) pinv[i] = f->outputs[i].node == f->inputs[i];
  int32_t *cut = tl_xmalloc(((size_t)f->nnodes + 1) * sizeof *cut);
  int ncut = invariant_cut(f, pinv, cut);
  eg_id r = EG_NONE;
  if (ncut > 0 && x->nkids + ncut <= TL_GRAPH_MAX_ARGS) {
    tl_graph *pre = fn_slice(f, x->t, cut, ncut, 0, f->ninputs);
    tl_graph *body = pre ? fn_cut(f, x->t, cut, ncut, f->ninputs, true) : NULL;
    tl_graph *cond = body ? fn_extend(x->t->fn[x->a.fn[0]], x->t, f, cut, ncut) : NULL;
    bool has_until = (x->a.present & TL_A_UNTIL) != 0;
    tl_graph *until = cond && has_until ? fn_extend(x->t->fn[x->a.fn[2]], x->t, f, cut, ncut) : NULL;
    eg_id *hv = tl_xmalloc(((size_t)ncut + 1) * sizeof *hv);
    if (cond && (!has_until || until) && tn_load_fn(x->c, x->e, pre, x->kids, hv) == 0) {
      tl_attrs a = x->a;
      int32_t *m = memo_find(x->done, x->ci, b, x->a.fn[0]);
      if (m) {
        a.fn[1] = m[0], a.fn[0] = m[1], a.fn[2] = has_until ? m[2] : a.fn[2];
      } else {
        a.fn[1] = tl_fns_add(x->t, body);
        a.fn[0] = tl_fns_add(x->t, cond);
        if (has_until) a.fn[2] = tl_fns_add(x->t, until);
        body = cond = until = NULL;
        memo_put(x->done, x->ci, b, x->a.fn[0], a.fn[1], a.fn[0], a.fn[2]);
      }
      r = add_appended(x, TL_OP_LOOP, &a, hv, ncut);
    }
    if (until) fn_drop(until);
    if (cond) fn_drop(cond);
    if (body) fn_drop(body);
    if (pre) fn_drop(pre);
    tl_free(hv);
  }
  tl_free(pinv);
  tl_free(cut);
  return r;
}

/* scan: its body's nodes that read only the sequences' slices (and
 * consts), made of ops that batch along a new leading axis (elementwise
 * ops whose slice-derived operands have the result's rank and whose
 * others broadcast from the right; matmul of a slice-derived left operand
 * and a const matrix), become new sequences: computed for every step at
 * once before the scan (x_t W for all t is one matmul of the whole
 * sequence), the body reading their slices. */
enum { S_VARIANT, S_CONST, S_SEQ };

static uint8_t seq_kind(const tl_graph *f, const tl_node *nd, const uint8_t *kind) {
  const int32_t *in = tl_node_inputs(f, nd);
  bool any_seq = false;
  for (int j = 0; j < nd->ninputs; j++) {
    if (kind[in[j]] == S_VARIANT) return S_VARIANT;
    any_seq = any_seq || kind[in[j]] == S_SEQ;
  }
  if (!any_seq) return may_fail(nd->op) ? S_VARIANT : S_CONST;
  if (nd->op == TL_OP_MATMUL)
    return kind[in[0]] == S_SEQ && kind[in[1]] == S_CONST && f->nodes[in[1]].type.rank == 2 &&
                   nd->type.rank >= 2 ? S_SEQ : S_VARIANT;
  if (tl_ops[nd->op].kind != TL_KIND_ELEMWISE) return S_VARIANT;
  for (int j = 0; j < nd->ninputs; j++) {
    int r = f->nodes[in[j]].type.rank;
    if (kind[in[j]] == S_SEQ ? r != nd->type.rank : r > nd->type.rank) return S_VARIANT;
  }
  return S_SEQ;
}

static eg_id hoist_sequence(ctx *x, int32_t b) {
  const tl_graph *f = x->t->fn[b];
  int nc = (int)x->a.carry, nk = (x->a.present & TL_A_CONSTS) ? (int)x->a.consts : 0, first = nc + nk;
  if (f->ninputs <= first || x->nkids != f->ninputs) return EG_NONE;
  uint8_t *kind = tl_xcalloc((size_t)f->nnodes + 1, 1), *seq = tl_xcalloc((size_t)f->nnodes + 1, 1);
  uint8_t *cutp = tl_xcalloc((size_t)f->nnodes + 1, 1);
  for (int i = 0; i < f->ninputs; i++) kind[f->inputs[i]] = i < nc ? S_VARIANT : i < first ? S_CONST : S_SEQ;
  for (int32_t y = 0; y < f->nnodes; y++) {
    const tl_node *nd = &f->nodes[y];
    if (nd->op != TL_OP_INPUT) kind[y] = nd->ninputs == 0 ? S_CONST : seq_kind(f, nd, kind);
    seq[y] = kind[y] == S_SEQ;
  }
  frontier(f, seq, NULL, cutp);
  int32_t *cut = tl_xmalloc(((size_t)f->nnodes + 1) * sizeof *cut);
  int ncut = marked(cutp, f->nnodes, cut);
  eg_id r = EG_NONE;
  if (ncut > 0 && x->nkids + ncut <= TL_GRAPH_MAX_ARGS) {
    /* pre: the consts and the whole sequences in (not the carries), the
     * cut's nodes batched out */
    tl_graph *pre = fn_slice(f, x->t, cut, ncut, nc, first);
    tl_graph *body = pre ? fn_cut(f, x->t, cut, ncut, f->ninputs, false) : NULL;
    eg_id hv[TL_GRAPH_MAX_ARGS];
    if (body && tn_load_fn(x->c, x->e, pre, x->kids + nc, hv) == 0) {
      int32_t bi = memo_body(x->done, x->ci, x->t, b, -2, &body);
      tl_attrs a = x->a;
      a.fn[1] = bi;
      r = add_appended(x, TL_OP_SCAN, &a, hv, ncut);
    }
    if (body) fn_drop(body);
    if (pre) fn_drop(pre);
  }
  tl_free(cut);
  tl_free(cutp);
  tl_free(seq);
  tl_free(kind);
  return r;
}

/* scan: a carry that only accumulates per-step values, acc + a_tᵀ b_t or
 * acc + sum(b_t, axis 0), is summed after the scan instead: Σ_t a_tᵀ b_t
 * is Aᵀ B for A and B the steps' a_t and b_t stacked along their rows, one
 * large product where the scan did one small one per step (a reverse
 * scan's weight gradients), and Σ_t sum(b_t, 0) one sum of B. The body
 * drops the carry and returns a_t and b_t as new per-step outputs; a
 * sequence's slice is read from the sequence itself. The order of the sum
 * changes (as any product's blocking does); a zero-step scan leaves the
 * carry's initial value, as before. */
typedef struct sum_carry {
  int k;           /* the carry */
  int32_t a, b;    /* f's per-step values (a = -1: a sum of b) */
  int oa, ob;      /* their stacked values: the new scan's output, -1 - (sequence operand),
                    * or NO_VALUE (a sum has no a) */
} sum_carry;
enum { NO_VALUE = INT_MIN };

static bool same_shape(const tl_type *x, const tl_type *y) {
  return x->dtype == y->dtype && x->rank == y->rank && !memcmp(x->dims, y->dims, (size_t)x->rank * sizeof *x->dims);
}

/* Is carry k of f such an accumulator? Its per-step values into *sc. */
static bool is_sum_carry(const tl_graph *f, int k, const int32_t *uses, sum_carry *sc) {
  int32_t p = f->inputs[k], o = f->outputs[k].node;
  const tl_node *ad = &f->nodes[o];
  if (ad->op != TL_OP_ADD || uses[p] != 1 || uses[o] != 1 || !same_shape(&ad->type, &f->nodes[p].type)) return false;
  const int32_t *in = tl_node_inputs(f, ad);
  int32_t e = in[0] == p ? in[1] : in[1] == p ? in[0] : -1;
  if (e < 0 || !same_shape(&f->nodes[e].type, &ad->type)) return false;
  const tl_node *nd = &f->nodes[e];
  const int32_t *ni = tl_node_inputs(f, nd);
  sc->k = k;
  if (nd->op == TL_OP_SUM) {
    const tl_attrs *a = &nd->attrs;
    sc->a = -1;
    sc->b = ni[0];
    return f->nodes[ni[0]].type.rank == 2 && nd->type.rank == 1 && (a->present & TL_A_AXIS) && a->naxes == 1 &&
           a->axes[0] == 0 && !a->keepdims;
  }
  if (nd->op != TL_OP_MATMUL) return false;
  const tl_node *tr = &f->nodes[ni[0]];
  sc->a = tl_node_inputs(f, tr)[0];
  sc->b = ni[1];
  return tr->op == TL_OP_TRANSPOSE && tr->type.rank == 2 && f->nodes[ni[1]].type.rank == 2 &&
         !(tr->attrs.present & TL_A_PERM); /* a rank-2 :perm left is [0 1] (tl_perm_drop_reversal) */
}

/* f without the carries sc[] (their parameters and outputs), returning
 * their per-step values after its outputs; sets sc[].oa/ob. NULL on an
 * error. */
static tl_graph *fn_sums(const tl_graph *f, tl_fns *t, int nc, int first, sum_carry *sc, int ns) {
  tl_graph *h = fn_new(f, t, "sums");
  int32_t *map = tl_xmalloc(((size_t)f->nnodes + 1) * sizeof *map);
  uint8_t *need = tl_xcalloc((size_t)f->nnodes + 1, 1), *gone = tl_xcalloc((size_t)f->noutputs + 1, 1);
  for (int32_t x = 0; x < f->nnodes; x++) map[x] = -1;
  for (int j = 0; j < ns; j++) gone[sc[j].k] = 1;
  for (int i = 0; i < f->ninputs; i++) {
    const tl_node *x = &f->nodes[f->inputs[i]];
    if (i >= nc || !gone[i]) map[f->inputs[i]] = tl_graph_add_input(h, f->names[x->name], &x->type, x->loc);
  }
  /* a value that is a sequence's slice: the sequence (operand i, as
   * -1 - i); one that another new output returns already: that output */
  int nout = f->noutputs - ns, nnew = 0;
  int32_t *newv = tl_xmalloc(((size_t)ns * 2 + 1) * sizeof *newv);
  for (int j = 0; j < ns; j++) {
    int32_t v[2] = {sc[j].a, sc[j].b};
    int o[2] = {NO_VALUE, NO_VALUE};
    for (int w = 0; w < 2; w++) {
      if (v[w] < 0) continue;
      int i = first;
      while (i < f->ninputs && f->inputs[i] != v[w]) i++;
      int q = 0;
      while (q < nnew && newv[q] != v[w]) q++;
      if (i < f->ninputs) {
        o[w] = -1 - i;
      } else if (q < nnew) {
        o[w] = f->noutputs - ns + q;
      } else {
        o[w] = nout++;
        newv[nnew++] = v[w];
        need[v[w]] = 1;
      }
    }
    sc[j].oa = o[0], sc[j].ob = o[1];
  }
  for (int i = 0; i < f->noutputs; i++)
    if (i >= nc || !gone[i]) need[f->outputs[i].node] = 1;
  mark_needed(f, need, map);
  bool ok = true;
  for (int32_t x = 0; x < f->nnodes && ok; x++)
    if (need[x] && map[x] < 0) ok = f->nodes[x].op != TL_OP_INPUT && (map[x] = copy_node(h, f, x, map)) >= 0;
  for (int i = 0; i < f->noutputs && ok; i++)
    if (i >= nc || !gone[i]) tl_graph_add_output(h, f->names[f->outputs[i].name], map[f->outputs[i].node]);
  for (int q = 0; q < nnew && ok; q++) {
    char name[48];
    snprintf(name, sizeof name, "step%d", q);
    tl_graph_add_output(h, name, map[newv[q]]);
  }
  tl_free(newv);
  tl_free(map);
  tl_free(need);
  tl_free(gone);
  if (!ok) {
    fn_drop(h);
    return NULL;
  }
  return h;
}

/* The sum after the scan: init + Aᵀ B (or init + sum(B, 0)) with A, B the
 * stacked [steps, rows, n] values flattened to [steps * rows, n]. */
static tl_graph *fn_sum_after(const tl_graph *f, tl_fns *t, const sum_carry *sc) {
  tl_graph *h = fn_new(f, t, "sum");
  int steps = tl_graph_sym(h, "__steps", 7);
  const tl_node *init = &f->nodes[f->inputs[sc->k]];
  int32_t ops[3], v[2] = {sc->a, sc->b}, flat[2] = {-1, -1};
  ops[0] = tl_graph_add_input(h, "init", &init->type, init->loc);
  char err[256];
  bool ok = true;
  for (int w = 0; w < 2 && ok; w++) {
    if (v[w] < 0) continue;
    tl_type ty = f->nodes[v[w]].type; /* rank 2 */
    tl_type st = ty;
    st.rank = 3;
    st.dims[0] = tl_dim_sym(steps), st.dims[1] = ty.dims[0], st.dims[2] = ty.dims[1];
    int32_t in = tl_graph_add_input(h, w ? "B" : "A", &st, (tl_loc){0, 0});
    tl_attrs a;
    tl_attrs_init(&a);
    a.present = TL_A_SHAPE;
    a.nshape = 2;
    a.shape[0] = TL_DIM_INFER, a.shape[1] = ty.dims[1];
    ok = (flat[w] = tl_graph_add(h, TL_OP_RESHAPE, &a, &in, 1, (tl_loc){0, 0}, err, sizeof err)) >= 0;
  }
  int32_t e = -1;
  tl_attrs a;
  tl_attrs_init(&a);
  if (ok && sc->a >= 0) {
    a.present = TL_A_PERM;
    a.nperm = 2;
    a.perm[0] = 1, a.perm[1] = 0;
    int32_t tr = tl_graph_add(h, TL_OP_TRANSPOSE, &a, &flat[0], 1, (tl_loc){0, 0}, err, sizeof err);
    int32_t mo[2] = {tr, flat[1]};
    tl_attrs_init(&a);
    e = tr < 0 ? -1 : tl_graph_add(h, TL_OP_MATMUL, &a, mo, 2, (tl_loc){0, 0}, err, sizeof err);
  } else if (ok) {
    a.present = TL_A_AXIS;
    a.naxes = 1;
    a.axes[0] = 0;
    e = tl_graph_add(h, TL_OP_SUM, &a, &flat[1], 1, (tl_loc){0, 0}, err, sizeof err);
  }
  ok = ok && e >= 0;
  if (ok) {
    tl_attrs_init(&a);
    int32_t ad[2] = {ops[0], e};
    int32_t r = tl_graph_add(h, TL_OP_ADD, &a, ad, 2, (tl_loc){0, 0}, err, sizeof err);
    ok = r >= 0;
    if (ok) tl_graph_add_output(h, "sum", r);
  }
  if (!ok) {
    fn_drop(h);
    return NULL;
  }
  return h;
}

static eg_id sum_after(ctx *x, int32_t b) {
  const tl_graph *f = x->t->fn[b];
  int nc = (int)x->a.carry, nk = (x->a.present & TL_A_CONSTS) ? (int)x->a.consts : 0, first = nc + nk;
  if (nc == 0 || x->nkids != f->ninputs || f->noutputs < nc) return EG_NONE;
  int32_t *uses = tl_xcalloc((size_t)f->nnodes + 1, sizeof *uses);
  for (int32_t y = 0; y < f->nnodes; y++)
    for (int j = 0; j < f->nodes[y].ninputs; j++) uses[tl_node_inputs(f, &f->nodes[y])[j]]++;
  for (int i = 0; i < f->noutputs; i++) uses[f->outputs[i].node]++;
  sum_carry *sc = tl_xcalloc((size_t)nc + 1, sizeof *sc);
  int ns = 0;
  for (int k = 0; k < nc; k++)
    if (is_sum_carry(f, k, uses, &sc[ns])) ns++;
  eg_id r = EG_NONE;
  tl_graph *body = ns ? fn_sums(f, x->t, nc, first, sc, ns) : NULL;
  if (body) {
    /* the new scan: the other carries, the same consts and sequences */
    tl_attrs a = x->a;
    a.fn[1] = memo_body(x->done, x->ci, x->t, b, -3, &body);
    a.carry = nc - ns;
    eg_id kids[TL_GRAPH_MAX_ARGS];
    int n = 0, j = 0, sunk = -1, before = 0;
    for (int i = 0; i < x->nkids; i++) {
      while (j < ns && sc[j].k < i) j++;
      if (i < nc && j < ns && sc[j].k == i) {
        if (i == x->a.out) sunk = j;
        if (i < x->a.out) before++;
        continue;
      }
      kids[n++] = x->kids[i];
    }
    if (sunk < 0) {
      a.out = x->a.out < nc ? x->a.out - before : x->a.out - ns;
      if (a.out) a.present |= TL_A_OUT;
      r = tn_add(x->e, TL_OP_SCAN, &a, kids, (uint32_t)n);
    } else {
      const sum_carry *c = &sc[sunk];
      eg_id args[3] = {x->kids[c->k], EG_NONE, EG_NONE};
      int o[2] = {c->oa, c->ob};
      for (int w = 0; w < 2; w++) {
        if (w == 0 && c->a < 0) continue;
        if (o[w] < 0) {
          args[1 + w] = x->kids[-1 - o[w]];
        } else {
          tl_attrs s = a;
          s.out = o[w];
          s.present |= TL_A_OUT;
          args[1 + w] = tn_add(x->e, TL_OP_SCAN, &s, kids, (uint32_t)n);
        }
      }
      if (c->a < 0) args[1] = args[2]; /* a sum's function takes init and B */
      tl_graph *post = fn_sum_after(f, x->t, c);
      eg_id out;
      if (post && tn_load_fn(x->c, x->e, post, args, &out) == 0) r = out;
      if (post) fn_drop(post);
    }
  }
  if (body) fn_drop(body);
  tl_free(sc);
  tl_free(uses);
  return r;
}

/* f and g rebuilt in one graph on shared parameters (g's params are f's:
 * a cond's branches take the same operands): hash-consing makes what both
 * compute one node. mf/mg map their nodes into it. */
static tl_graph *merged(const tl_graph *f, const tl_graph *g, tl_fns *t, int32_t *mf, int32_t *mg) {
  if (f->ninputs != g->ninputs || f->noutputs != g->noutputs) return NULL;
  tl_graph *s = fn_new(f, t, "both");
  for (int i = 0; i < f->ninputs; i++) {
    const tl_node *x = &f->nodes[f->inputs[i]];
    mf[f->inputs[i]] = mg[g->inputs[i]] = tl_graph_add_input(s, f->names[x->name], &x->type, x->loc);
  }
  /* g's symbols by name into s (f's are s's) */
  bool ok = true;
  for (int32_t x = 0; x < f->nnodes && ok; x++)
    if (f->nodes[x].op != TL_OP_INPUT) ok = (mf[x] = copy_node(s, f, x, mf)) >= 0;
  for (int32_t x = 0; x < g->nnodes && ok; x++) {
    if (g->nodes[x].op == TL_OP_INPUT) continue;
    tl_node nd = g->nodes[x];
    for (int d = 0; d < nd.attrs.nshape; d++)
      if (tl_dim_is_sym(nd.attrs.shape[d]) && nd.attrs.shape[d] != TL_DIM_INFER) {
        const char *sy = g->syms[tl_dim_sym_id(nd.attrs.shape[d])];
        nd.attrs.shape[d] = tl_dim_sym(tl_graph_sym(s, sy, strlen(sy)));
      }
    if (nd.attrs.present & TL_A_TRIPS) { /* a loop's :trips, the same way */
      const char *sy = g->syms[tl_dim_sym_id(nd.attrs.tdim)];
      nd.attrs.tdim = tl_dim_sym(tl_graph_sym(s, sy, strlen(sy)));
    }
    if (nd.op == TL_OP_CONST) {
      mg[x] = tl_graph_add_const(s, tl_tensor_copy(g->lits[nd.attrs.lit]), nd.loc);
      continue;
    }
    int32_t ops[TL_GRAPH_MAX_ARGS];
    for (int j = 0; j < nd.ninputs; j++) ops[j] = mg[tl_node_inputs(g, &g->nodes[x])[j]];
    char err[256];
    ok = (mg[x] = tl_graph_add(s, nd.op, &nd.attrs, ops, nd.ninputs, nd.loc, err, sizeof err)) >= 0;
  }
  if (!ok) {
    fn_drop(s);
    return NULL;
  }
  return s;
}

static bool same_fn(tl_fns *t, int32_t f, int32_t g) {
  if (f == g) return true;
  const tl_graph *a = t->fn[f], *b = t->fn[g];
  int32_t *ma = tl_xmalloc(((size_t)a->nnodes + 1) * sizeof *ma);
  int32_t *mb = tl_xmalloc(((size_t)b->nnodes + 1) * sizeof *mb);
  tl_graph *s = merged(a, b, t, ma, mb);
  bool eq = s != NULL;
  for (int i = 0; eq && i < a->noutputs; i++) eq = ma[a->outputs[i].node] == mb[b->outputs[i].node];
  if (s) fn_drop(s);
  tl_free(ma);
  tl_free(mb);
  return eq;
}

/* cond: what both branches compute from its operands becomes operands */
static eg_id hoist_common(ctx *x, int32_t fi, int32_t gi) {
  if (x->nd->op != TL_OP_COND || fi == gi) return EG_NONE;
  const tl_graph *f = x->t->fn[fi], *g = x->t->fn[gi];
  int32_t *mf = tl_xmalloc(((size_t)f->nnodes + 1) * sizeof *mf);
  int32_t *mg = tl_xmalloc(((size_t)g->nnodes + 1) * sizeof *mg);
  tl_graph *s = merged(f, g, x->t, mf, mg);
  eg_id r = EG_NONE;
  if (!s) goto out;
  /* s's nodes reached from both: common; the cut is the common nodes a
   * node of either branch that is not common reads, or an output is */
  uint8_t *in_f = tl_xcalloc((size_t)s->nnodes + 1, 1), *in_g = tl_xcalloc((size_t)s->nnodes + 1, 1);
  uint8_t *cutp = tl_xcalloc((size_t)s->nnodes + 1, 1);
  for (int32_t y = 0; y < f->nnodes; y++) in_f[mf[y]] = 1;
  for (int32_t y = 0; y < g->nnodes; y++) in_g[mg[y]] = 1;
  for (int side = 0; side < 2; side++) {
    const tl_graph *h = side ? g : f;
    const int32_t *m = side ? mg : mf;
    uint8_t *common = tl_xmalloc((size_t)h->nnodes + 1);
    for (int32_t y = 0; y < h->nnodes; y++) common[y] = in_f[m[y]] && in_g[m[y]];
    frontier(h, common, m, cutp);
    tl_free(common);
  }
  int32_t *cut = tl_xmalloc(((size_t)s->nnodes + 1) * sizeof *cut), *cf = NULL, *cg = NULL;
  int ncut = marked(cutp, s->nnodes, cut);
  if (ncut > 0 && x->nkids + ncut <= TL_GRAPH_MAX_ARGS) {
    /* the cut in each branch's own node ids (the first node mapping there) */
    cf = tl_xmalloc(((size_t)ncut + 1) * sizeof *cf);
    cg = tl_xmalloc(((size_t)ncut + 1) * sizeof *cg);
    for (int k = 0; k < ncut; k++) {
      cf[k] = cg[k] = -1;
      for (int32_t y = 0; y < f->nnodes && cf[k] < 0; y++)
        if (mf[y] == cut[k]) cf[k] = y;
      for (int32_t y = 0; y < g->nnodes && cg[k] < 0; y++)
        if (mg[y] == cut[k]) cg[k] = y;
    }
    tl_graph *pre = fn_slice(s, x->t, cut, ncut, 0, s->ninputs);
    tl_graph *f2 = pre ? fn_cut(f, x->t, cf, ncut, f->ninputs, false) : NULL;
    tl_graph *g2 = f2 ? fn_cut(g, x->t, cg, ncut, g->ninputs, false) : NULL;
    eg_id *hv = tl_xmalloc(((size_t)ncut + 1) * sizeof *hv);
    if (g2 && tn_load_fn(x->c, x->e, pre, x->kids + 1, hv) == 0) {
      tl_attrs a = x->a;
      int32_t *m = memo_find(x->done, x->ci, fi, gi);
      if (m) {
        a.fn[0] = m[0], a.fn[1] = m[1];
      } else {
        a.fn[0] = tl_fns_add(x->t, f2);
        a.fn[1] = tl_fns_add(x->t, g2);
        f2 = g2 = NULL;
        memo_put(x->done, x->ci, fi, gi, a.fn[0], a.fn[1], -1);
      }
      r = add_appended(x, TL_OP_COND, &a, hv, ncut);
    }
    if (g2) fn_drop(g2);
    if (f2) fn_drop(f2);
    if (pre) fn_drop(pre);
    tl_free(hv);
  }
  tl_free(cf);
  tl_free(cg);
  tl_free(cut);
  tl_free(cutp);
  tl_free(in_f);
  tl_free(in_g);
  fn_drop(s);
out:
  tl_free(mf);
  tl_free(mg);
  return r;
}

/* The right side of control ct for the node in x, its variables in subst. */
static eg_id apply(ctx *x, const eg_control *ct, const uint32_t *subst) {
  const eg_cterm *rt = &ct->rhs;
  if (rt->op >= 0) {
    eg_id kids[TL_GRAPH_MAX_ARGS];
    int n = 0;
    for (int i = 0; i < rt->nvars; i++) kids[n++] = subst[rt->vars[i]];
    for (int i = ct->lhs.nvars; i < x->nkids && n < TL_GRAPH_MAX_ARGS; i++) kids[n++] = x->kids[i];
    tl_attrs a;
    if (rt->op == ct->lhs.op) {
      a = x->a;
    } else {
      tl_attrs_init(&a);
      a.out = x->a.out;
      if (a.out) a.present |= TL_A_OUT;
    }
    for (int k = 0; k < rt->nkeys; k++) {
      a.fn[key_slot[rt->keys[k]]] = (int32_t)subst[rt->keyvars[k]];
      a.present |= key_bit[rt->keys[k]];
    }
    return tn_add(x->e, rt->op, &a, kids, (uint32_t)n);
  }
  int32_t f0 = rt->nvars > 0 ? (int32_t)subst[rt->vars[0]] : -1;
  int32_t f1 = rt->nvars > 1 ? (int32_t)subst[rt->vars[1]] : -1;
  bool fns_ok = true;
  for (int i = 0; i < rt->nvars; i++) fns_ok = fns_ok && ct->vars.is_attr[rt->vars[i]];
  if (!fns_ok) return EG_NONE; /* a transformation of classes: none exists */
  switch (rt->head) {
  case H_INLINE: return rt->nvars == 1 ? do_inline(x, f0) : EG_NONE;
  case H_HOIST_INVARIANT:
    if (rt->nvars != 1) return EG_NONE;
    if (x->nd->op == TL_OP_SCAN && f0 == x->a.fn[1]) return hoist_scan(x, f0);
    /* (a loop with :stack keeps its body: its per-trip results follow the state) */
    if (x->nd->op == TL_OP_LOOP && f0 == x->a.fn[1] && !(x->a.present & TL_A_STACK)) return hoist_loop(x, f0);
    return EG_NONE;
  case H_HOIST_COMMON:
    if (rt->nvars != 2 || f0 != x->a.fn[0] || f1 != x->a.fn[1]) return EG_NONE;
    return hoist_common(x, f0, f1);
  case H_HOIST_SEQUENCE:
    if (rt->nvars != 1 || x->nd->op != TL_OP_SCAN || f0 != x->a.fn[1]) return EG_NONE;
    return hoist_sequence(x, f0);
  case H_SUM_AFTER:
    if (rt->nvars != 1 || x->nd->op != TL_OP_SCAN || f0 != x->a.fn[1]) return EG_NONE;
    return sum_after(x, f0);
  default: return EG_NONE;
  }
}

static bool fn_cond_holds(tl_fns *t, const eg_cond_use *u, const uint32_t *subst) {
  int k = -1 - u->fn;
  for (int i = 0; i < u->nargs; i++) {
    int32_t f = (int32_t)subst[u->vars[i]];
    if (k == C_STRAIGHT_LINE && tl_graph_has_control(t->fn[f])) return false;
    if (k == C_SAME_FN && i > 0 && !same_fn(t, (int32_t)subst[u->vars[0]], f)) return false;
  }
  return true;
}

size_t tn_control_pass(tn_ctx *c, eg_egraph *e, const eg_rules *r, const bool *active, tl_fns *t,
                       size_t *applied, tn_control_done **done) {
  size_t added = 0;
  if (!t) return 0;
  eg_rebuild(e);
  for (int ci = 0; ci < r->ncontrols; ci++) {
    const eg_control *ct = &r->controls[ci];
    if (active && !active[ct->ruleset]) continue;
    /* the matching nodes first: applying changes the e-graph */
    uint32_t ncl;
    const eg_id *cls = eg_classes_with_op(e, ct->lhs.op, &ncl);
    uint32_t nn = 0, cap = 64;
    uint32_t *nodes = tl_xmalloc(cap * sizeof *nodes);
    for (uint32_t i = 0; i < ncl; i++) {
      uint32_t m;
      const uint32_t *ns = eg_class_nodes(e, cls[i], &m);
      for (uint32_t j = 0; j < m; j++) {
        if (eg_get_node(e, ns[j])->op != ct->lhs.op) continue;
        if (nn == cap) nodes = tl_xrealloc(nodes, (cap *= 2) * sizeof *nodes);
        nodes[nn++] = ns[j];
      }
    }
    uint32_t *subst = tl_xcalloc((size_t)ct->vars.n + 1, sizeof *subst);
    for (uint32_t i = 0; i < nn; i++) {
      if (!done_add(done, ((uint64_t)(uint32_t)ci << 32 | nodes[i]) + 1)) continue;
      ctx x = {.done = *done, .ci = ci, .c = c, .e = e, .t = t, .nd = eg_get_node(e, nodes[i])};
      x.nkids = x.nd->n;
      const eg_id *k = eg_node_kids(e, x.nd);
      for (int j = 0; j < x.nkids; j++) x.kids[j] = eg_find(e, k[j]);
      x.a = tn_attrs(e, x.nd);
      bool ok = x.nkids >= ct->lhs.nvars;
      for (int j = 0; j < ct->lhs.nvars && ok; j++) subst[ct->lhs.vars[j]] = x.kids[j];
      for (int j = 0; j < ct->lhs.nkeys && ok; j++) {
        int key = ct->lhs.keys[j];
        int32_t f = x.a.fn[key_slot[key]];
        ok = (x.a.present & key_bit[key]) && f >= 0 && f < t->n;
        subst[ct->lhs.keyvars[j]] = (uint32_t)f;
      }
      for (int j = 0; j < ct->nconds && ok; j++)
        ok = ct->conds[j].fn >= 0 ? eg_cond_holds(e, r->conds, &ct->conds[j], subst)
                                  : fn_cond_holds(t, &ct->conds[j], subst);
      if (!ok) continue;
      eg_id cl = x.nd->cls;
      eg_id res = apply(&x, ct, subst);
      if (res == EG_NONE) continue;
      if (eg_find(e, res) != eg_find(e, cl) && eg_union(e, cl, res)) {
        applied[ci]++;
        added++;
      }
    }
    tl_free(subst);
    tl_free(nodes);
    eg_rebuild(e);
  }
  return added;
}
