/* cost/cost_graph.c - the cost of an extracted program (a tl_graph): each
 * node's properties as extraction charged them, their totals, the objective,
 * and the real peak memory under the program's schedule (cost.h). */
#include "cost/cost.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/util.h"

/* The scalar literal or fill value of node id, if it is one. */
static bool known_value(const tl_graph *g, int32_t id, double *v) {
  const tl_node *n = &g->nodes[id];
  if (n->op != TL_OP_LIT && n->op != TL_OP_FILL) return false;
  *v = n->attrs.is_int ? (double)n->attrs.i : n->attrs.f;
  return true;
}

/* A loop's trip count when it has no bound: an estimate (documented in
 * docs/cost.md), since nothing tells how often a while loop runs. */
#define TL_COST_UNBOUNDED_TRIPS 10.0

/* Function f's totals into out: from fn_totals when given, else costed. */
static int fn_totals_of(const tl_cost_registry *r, const tl_fns *t, const double *fn_totals, int32_t f, double *out,
                        char *err, size_t n) {
  int np = tl_cost_nprops(r);
  if (!fn_totals) return tl_cost_graph(r, NULL, t->fn[f], NULL, out, NULL, NULL, err, n);
  memcpy(out, fn_totals + (size_t)f * (size_t)np, (size_t)np * sizeof *out);
  return 0;
}

int tl_cost_control(const tl_cost_registry *r, const tl_fns *t, const double *fn_totals, int op, const tl_attrs *at,
                    const tl_type *const *in_type, int nin, double *add, char *err, size_t n) {
  int np = tl_cost_nprops(r);
  double *a = tl_xcalloc((size_t)np + 1, sizeof *a), *b = tl_xcalloc((size_t)np + 1, sizeof *b);
  int rc = 0;
  for (int p = 0; p < np; p++) add[p] = 0;
  switch (op) {
  case TL_OP_CALL:
    rc = fn_totals_of(r, t, fn_totals, at->fn[0], add, err, n);
    break;
  case TL_OP_COND:
    rc = fn_totals_of(r, t, fn_totals, at->fn[0], a, err, n);
    if (!rc) rc = fn_totals_of(r, t, fn_totals, at->fn[1], b, err, n);
    for (int p = 0; p < np && !rc; p++) add[p] = a[p] > b[p] ? a[p] : b[p];
    break;
  case TL_OP_LOOP: {
    double trips = at->trips >= 0 ? (double)at->trips : TL_COST_UNBOUNDED_TRIPS;
    rc = fn_totals_of(r, t, fn_totals, at->fn[1], a, err, n);
    if (!rc) rc = fn_totals_of(r, t, fn_totals, at->fn[0], b, err, n);
    for (int p = 0; p < np && !rc; p++) add[p] = trips * (a[p] + b[p]) + b[p];
    break;
  }
  case TL_OP_SCAN: {
    int first = (int)at->carry + (int)((at->present & TL_A_CONSTS) ? at->consts : 0);
    int64_t len = first < nin ? in_type[first]->dims[0] : at->length;
    double steps = tl_dim_is_sym(len) ? tl_cost_sym_size(r) : (double)len;
    rc = fn_totals_of(r, t, fn_totals, at->fn[1], a, err, n);
    for (int p = 0; p < np && !rc; p++) add[p] = steps * a[p];
    break;
  }
  default: break;
  }
  /* value properties are not summed; code is the functions', charged once
   * per program by the caller */
  int code = tl_cost_find(r, "code");
  for (int p = 0; p < np; p++)
    if (tl_cost_prop_kind(r, p) != TL_PROP_COST || p == code) add[p] = 0;
  tl_free(a);
  tl_free(b);
  return rc;
}

/* The code of every function g's control nodes run, each once (a
 * function's own total counts the functions it runs, once each). */
static int functions_code(const tl_cost_registry *r, const tl_graph *g, int code, double *out, char *err, size_t n) {
  int np = tl_cost_nprops(r);
  uint8_t *seen = tl_xcalloc((size_t)g->fns->n + 1, 1);
  double *tot = tl_xcalloc((size_t)np + 1, sizeof *tot);
  int rc = 0;
  *out = 0;
  for (int32_t id = 0; id < g->nnodes && !rc; id++) {
    int32_t fs[3];
    int k = tl_control_fns(&g->nodes[id], fs);
    for (int j = 0; j < k && !rc; j++) {
      if (seen[fs[j]]) continue;
      seen[fs[j]] = 1;
      rc = tl_cost_graph(r, NULL, g->fns->fn[fs[j]], NULL, tot, NULL, NULL, err, n);
      *out += tot[code];
    }
  }
  tl_free(seen);
  tl_free(tot);
  return rc;
}

int tl_cost_graph(const tl_cost_registry *r, const tl_cost_expr *obj, const tl_graph *g, const uint8_t *given,
                  double *totals, double *objective, double *peak_bytes, char *err, size_t n) {
  int np = tl_cost_nprops(r);
  double *props = tl_xcalloc((size_t)g->nnodes * (size_t)np + 1, sizeof *props);
  /* operand vectors: value properties are the operand's, costs are 0 (each
   * node is charged its own contribution, as extraction charged it) */
  double *opnd = tl_xmalloc(((size_t)TL_GRAPH_MAX_ARGS * (size_t)np + 1) * sizeof *opnd);
  const double **in = tl_xmalloc(TL_GRAPH_MAX_ARGS * sizeof *in);
  const tl_type **in_type = tl_xmalloc(TL_GRAPH_MAX_ARGS * sizeof *in_type);
  bool *in_known = tl_xmalloc(TL_GRAPH_MAX_ARGS * sizeof *in_known);
  double *in_value = tl_xmalloc(TL_GRAPH_MAX_ARGS * sizeof *in_value);
  uint8_t *in_facts = tl_xmalloc(TL_GRAPH_MAX_ARGS * sizeof *in_facts);
  /* the sign facts the optimizer's analysis has, so that a program costs
   * here what extraction charged for it */
  uint8_t *facts = tl_xcalloc((size_t)g->nnodes + 1, 1);
  for (int p = 0; p < np; p++) totals[p] = 0;
  double total_obj = 0;
  int rc = 0;
  for (int32_t id = 0; id < g->nnodes && rc == 0; id++) {
    const tl_node *nd = &g->nodes[id];
    const int32_t *args = tl_node_inputs(g, nd);
    for (int k = 0; k < nd->ninputs; k++) {
      double *v = opnd + (size_t)k * (size_t)np;
      for (int p = 0; p < np; p++)
        v[p] = tl_cost_prop_kind(r, p) == TL_PROP_VALUE ? props[(size_t)args[k] * (size_t)np + (size_t)p] : 0;
      in[k] = v;
      in_type[k] = &g->nodes[args[k]].type;
      in_value[k] = 0;
      in_known[k] = known_value(g, args[k], &in_value[k]);
      in_facts[k] = facts[args[k]];
    }
    double lo, hi, v;
    if (given) facts[id] = given[id];
    else if (nd->op == TL_OP_INPUT)
      facts[id] = tl_graph_range(g, id, &lo, &hi) ? tl_range_facts(lo, hi) : 0;
    else if (known_value(g, id, &v)) facts[id] = tl_value_facts(v);
    else facts[id] = tl_sign_facts(nd->op, in_facts, nd->ninputs < 3 ? nd->ninputs : 3,
                                   nd->ninputs == 2 && args[0] == args[1]);
    tl_cost_node cn = {.op = nd->op, .attrs = &nd->attrs, .type = &nd->type, .nin = nd->ninputs,
                       .in_type = in_type, .in_known = in_known, .in_value = in_value,
                       .in_facts = in_facts, .in = in,
                       .profile = tl_cost_profile(r), .sym_size = tl_cost_sym_size(r)};
    double *out = props + (size_t)id * (size_t)np;
    if (tl_cost_eval(r, &cn, out, err, n)) {
      rc = -1;
      break;
    }
    if (tl_ops[nd->op].kind == TL_KIND_CONTROL && g->fns) { /* a run costs its functions, once */
      bool first = true;
      for (int32_t j = 0; j < id && first; j++) first = !tl_control_same_run(g, j, id);
      if (first) {
        double *add = tl_xcalloc((size_t)np + 1, sizeof *add);
        rc = tl_cost_control(r, g->fns, NULL, nd->op, &nd->attrs, in_type, nd->ninputs, add, err, n);
        for (int p = 0; p < np && !rc; p++) out[p] += add[p];
        tl_free(add);
        if (rc) break;
      }
    }
    for (int p = 0; p < np; p++)
      if (tl_cost_prop_kind(r, p) == TL_PROP_COST) totals[p] += out[p];
    if (obj) total_obj += tl_cost_expr_eval(obj, out);
  }
  int code = tl_cost_find(r, "code");
  if (rc == 0 && code >= 0 && g->fns && tl_graph_has_control(g)) {
    double c = 0, *v = tl_xcalloc((size_t)np + 1, sizeof *v);
    rc = functions_code(r, g, code, &c, err, n);
    totals[code] += c;
    v[code] = c;
    if (obj) total_obj += tl_cost_expr_eval(obj, v);
    tl_free(v);
  }
  if (objective) *objective = total_obj;
  if (peak_bytes) *peak_bytes = tl_cost_peak_bytes(g, tl_cost_sym_size(r));
  tl_free(props);
  tl_free(opnd);
  tl_free(in);
  tl_free(in_type);
  tl_free(in_known);
  tl_free(in_value);
  tl_free(in_facts);
  tl_free(facts);
  return rc;
}

double tl_cost_peak_bytes(const tl_graph *g, double sym_size) {
  if (g->nnodes == 0) return 0;
  /* last reader of every node; outputs are read "at the end" */
  int32_t *last = tl_xmalloc((size_t)g->nnodes * sizeof *last);
  for (int32_t i = 0; i < g->nnodes; i++) last[i] = -1;
  for (int32_t i = 0; i < g->nnodes; i++) {
    const int32_t *args = tl_node_inputs(g, &g->nodes[i]);
    for (int k = 0; k < g->nodes[i].ninputs; k++) last[args[k]] = i;
  }
  for (int i = 0; i < g->noutputs; i++) last[g->outputs[i].node] = g->nnodes;
  double live = 0, peak = 0;
  for (int32_t i = 0; i < g->nnodes; i++) {
    const tl_node *nd = &g->nodes[i];
    bool counted = nd->op != TL_OP_INPUT && nd->op != TL_OP_LIT;
    /* the result is allocated while the operands are still live */
    if (counted && last[i] >= 0)
      live += tl_type_elems(&nd->type, sym_size) * (double)tl_dtype_size((tl_dtype)nd->type.dtype);
    if (live > peak) peak = live;
    const int32_t *args = tl_node_inputs(g, nd);
    for (int k = 0; k < nd->ninputs; k++) {
      const tl_node *a = &g->nodes[args[k]];
      bool dup = false;
      for (int j = 0; j < k; j++) dup = dup || args[j] == args[k];
      if (dup || last[args[k]] != i || a->op == TL_OP_INPUT || a->op == TL_OP_LIT) continue;
      live -= tl_type_elems(&a->type, sym_size) * (double)tl_dtype_size((tl_dtype)a->type.dtype);
    }
  }
  tl_free(last);
  return peak;
}
