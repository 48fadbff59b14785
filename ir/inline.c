/* inline.c - replacing calls of small straight-line functions by their
 * bodies.
 *
 * A call of a function without control flow of its own and with at most
 * max_nodes nodes becomes the function's nodes, rebuilt on the call's
 * operands: the engines then fuse across the boundary and the optimizer's
 * rules see through it. Larger functions, and functions with branches or
 * loops, stay calls (a call is compiled once however often it is made).
 * Inside-out: the table's functions are inlined first, in table order (a
 * function calls only those before it), then the graph, so a chain of
 * small calls flattens completely. The results of one call (its :out
 * siblings) are one instantiation: hash-consing makes the rebuilt nodes
 * of the second sibling the first one's. */
#include "ir/ir.h"
#include "util/alloc.h"

#include <stdio.h>
#include <string.h>

#define UNBOUND INT64_MAX

static bool inlinable(const tl_graph *f, int max_nodes) { return f->nnodes <= max_nodes && !tl_graph_has_control(f); }

/* A callee dim as the caller sees it (map: callee symbol -> caller dim). */
static int64_t remap_dim(int64_t d, const int64_t *map) {
  if (d == TL_DIM_INFER || !tl_dim_is_sym(d)) return d;
  return map[tl_dim_sym_id(d)];
}

/* f's nodes rebuilt in h on args; *res receives output k's node. */
static int instantiate(tl_graph *h, const tl_graph *f, const int32_t *args, int k, int32_t *res, char *err, size_t n) {
  int64_t *map = tl_xmalloc(((size_t)f->nsyms + 1) * sizeof *map);
  for (int s = 0; s < f->nsyms; s++) map[s] = UNBOUND;
  for (int i = 0; i < f->ninputs; i++) {
    const tl_type *pt = &f->nodes[f->inputs[i]].type, *at = &h->nodes[args[i]].type;
    for (int d = 0; d < pt->rank; d++)
      if (tl_dim_is_sym(pt->dims[d])) map[tl_dim_sym_id(pt->dims[d])] = at->dims[d];
  }
  int32_t *id = tl_xmalloc(((size_t)f->nnodes + 1) * sizeof *id);
  for (int i = 0; i < f->ninputs; i++) id[f->inputs[i]] = args[i];
  int rc = 0;
  int32_t ops[TL_GRAPH_MAX_ARGS];
  for (int32_t x = 0; x < f->nnodes && !rc; x++) {
    const tl_node *nd = &f->nodes[x];
    if (nd->op == TL_OP_INPUT) continue;
    if (nd->op == TL_OP_CONST) {
      id[x] = tl_graph_add_const(h, tl_tensor_copy(f->lits[nd->attrs.lit]), nd->loc);
      continue;
    }
    tl_attrs a = nd->attrs;
    for (int d = 0; d < a.nshape && !rc; d++) {
      a.shape[d] = remap_dim(a.shape[d], map);
      if (a.shape[d] == UNBOUND) rc = -1, snprintf(err, n, "inline %s: a dim no parameter determines", f->name);
    }
    for (int j = 0; j < nd->ninputs; j++) ops[j] = id[tl_node_inputs(f, nd)[j]];
    if (!rc && (id[x] = tl_graph_add(h, nd->op, &a, ops, nd->ninputs, nd->loc, err, n)) < 0) rc = -1;
  }
  if (!rc) *res = id[f->outputs[k].node];
  tl_free(map);
  tl_free(id);
  return rc;
}

/* g rebuilt into a new graph over table t (g's table, inlined), its calls
 * of small straight-line functions inlined. */
static tl_graph *inline_graph(const tl_graph *g, tl_fns *t, bool is_fn, int max_nodes, const int32_t *remap,
                              char *err, size_t n) {
  tl_graph *h = tl_graph_new(g->name);
  if (is_fn)
    h->fns = t; /* weakly: t will hold it */
  else
    tl_graph_set_fns(h, t);
  for (int s = 0; s < g->nsyms; s++) tl_graph_sym(h, g->syms[s], strlen(g->syms[s]));
  int32_t *map = tl_xmalloc(((size_t)g->nnodes + 1) * sizeof *map);
  int rc = 0;
  int32_t ops[TL_GRAPH_MAX_ARGS];
  for (int i = 0; i < g->ninputs; i++) {
    const tl_node *x = &g->nodes[g->inputs[i]];
    map[g->inputs[i]] = tl_graph_add_input(h, g->names[x->name], &x->type, x->loc);
    double lo, hi;
    if (tl_graph_range(g, g->inputs[i], &lo, &hi)) tl_graph_set_range(h, map[g->inputs[i]], lo, hi);
  }
  for (int32_t x = 0; x < g->nnodes && !rc; x++) {
    const tl_node *nd = &g->nodes[x];
    if (nd->op == TL_OP_INPUT) continue;
    if (nd->op == TL_OP_CONST) {
      map[x] = tl_graph_add_const(h, tl_tensor_copy(g->lits[nd->attrs.lit]), nd->loc);
      continue;
    }
    for (int j = 0; j < nd->ninputs; j++) ops[j] = map[tl_node_inputs(g, nd)[j]];
    tl_attrs a = nd->attrs;
    if (remap && tl_ops[nd->op].kind == TL_KIND_CONTROL) {
      static const unsigned slot_bits[3] = {TL_A_FN | TL_A_THEN | TL_A_COND, TL_A_ELSE | TL_A_BODY, TL_A_UNTIL};
      for (int k = 0; k < 3; k++)
        if (a.present & slot_bits[k]) a.fn[k] = remap[a.fn[k]];
    }
    if (!remap && nd->op == TL_OP_CALL && inlinable(t->fn[nd->attrs.fn[0]], max_nodes))
      rc = instantiate(h, t->fn[nd->attrs.fn[0]], ops, nd->attrs.out, &map[x], err, n);
    else if ((map[x] = tl_graph_add(h, nd->op, &a, ops, nd->ninputs, nd->loc, err, n)) < 0)
      rc = -1;
  }
  for (int i = 0; i < g->nlets && !rc; i++) tl_graph_add_let(h, g->names[g->nodes[g->lets[i]].name], map[g->lets[i]]);
  for (int i = 0; i < g->noutputs && !rc; i++)
    tl_graph_add_output(h, g->names[g->outputs[i].name], map[g->outputs[i].node]);
  tl_free(map);
  if (rc) {
    if (is_fn) h->fns = NULL;
    tl_graph_free(h);
    return NULL;
  }
  return h;
}

tl_graph *tl_inline_calls(const tl_graph *g, int max_nodes, char *err, size_t n) {
  tl_fns *t = tl_fns_new();
  tl_graph *h = NULL;
  int i = 0;
  for (; g->fns && i < g->fns->n; i++) {
    tl_graph *f = inline_graph(g->fns->fn[i], t, true, max_nodes, NULL, err, n);
    if (!f) break;
    tl_fns_add(t, f);
  }
  if (!g->fns || i == g->fns->n) h = inline_graph(g, t, false, max_nodes, NULL, err, n);
  tl_fns_release(t);
  return h;
}

/* Post-order from function f: its callees, then f. */
static void reach(const tl_fns *t, int32_t f, uint8_t *seen, int32_t *order, int *n) {
  if (seen[f]) return;
  seen[f] = 1;
  const tl_graph *g = t->fn[f];
  for (int32_t x = 0; x < g->nnodes; x++) {
    int32_t fs[3];
    int k = tl_control_fns(&g->nodes[x], fs);
    for (int j = 0; j < k; j++) reach(t, fs[j], seen, order, n);
  }
  order[(*n)++] = f;
}

tl_graph *tl_graph_keep_fns(const tl_graph *g, char *err, size_t n) {
  int nf = g->fns ? g->fns->n : 0;
  uint8_t *seen = tl_xcalloc((size_t)nf + 1, 1);
  int32_t *order = tl_xmalloc(((size_t)nf + 1) * sizeof *order), *remap = tl_xmalloc(((size_t)nf + 1) * sizeof *remap);
  int no = 0;
  for (int32_t x = 0; x < g->nnodes; x++) {
    int32_t fs[3];
    int k = tl_control_fns(&g->nodes[x], fs);
    for (int j = 0; j < k; j++) reach(g->fns, fs[j], seen, order, &no);
  }
  for (int i = 0; i < nf; i++) remap[i] = -1;
  for (int i = 0; i < no; i++) remap[order[i]] = i;
  tl_fns *t = no ? tl_fns_new() : NULL;
  tl_graph *h = NULL;
  int i = 0;
  for (; i < no; i++) {
    tl_graph *f = inline_graph(g->fns->fn[order[i]], t, true, -1, remap, err, n);
    if (!f) break;
    tl_fns_add(t, f);
  }
  if (i == no) h = inline_graph(g, t, false, -1, remap, err, n);
  if (t) tl_fns_release(t);
  tl_free(seen);
  tl_free(order);
  tl_free(remap);
  return h;
}
