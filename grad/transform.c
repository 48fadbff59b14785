/* transform.c - reverse-mode differentiation of a graph, and forward mode
 * by transposing it.
 *
 * Reverse mode (Griewank and Walther, "Evaluating Derivatives", ch. 3):
 * the forward graph is copied node for node (ids kept, so each node's
 * cotangent is indexed by its id), then one sweep over the ids from the
 * last to the first gives every node that has a cotangent to its operands,
 * through the rule gr_rule_pick chooses, accumulating with add. Only
 * operands that depend on a differentiated input receive anything, and
 * only float values carry cotangents (an integer or bool value has none,
 * as in JAX and PyTorch). The graph is hash-consed, so a rule's ?out and
 * the forward values it reads are the forward nodes themselves: the
 * gradient shares them.
 *
 * Forward mode is the transposition trick (J. Townsend, "A new trick for
 * calculating Jacobian vector products", 2017): the VJP graph u = J^T c is
 * linear in the cotangents c, so the reverse sweep of <u, t> with respect
 * to c computes J t, and no forward rule is needed. The cotangent inputs
 * then have no use left and are dropped.
 *
 * The result is compacted (only what the outputs reach, in id order), and
 * the forward graph's let names are kept for the values that remain. No
 * traversal recurses over the graph. */
#include "grad/internal.h"
#include "util/alloc.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* A copy of g's nodes (same ids, same symbols), no outputs and no lets. */
static tl_graph *copy_nodes(const tl_graph *g, const char *name) {
  tl_graph *h = tl_graph_copy(g, name);
  h->noutputs = 0;
  h->nlets = 0;
  for (int32_t id = 0; id < h->nnodes; id++)
    if (h->nodes[id].op != TL_OP_INPUT) h->nodes[id].name = -1; /* let names are given again at the end */
  return h;
}

/* The nodes h's outputs reach and every input not in drop_in (flags per
 * input number) into a fresh graph in id order, h freed; or h itself when
 * it drops no input and at most a tenth of its nodes are dead. g's let
 * names are kept for nodes below g->nnodes (the ids are g's there). */
static tl_graph *compact(tl_graph *h, const tl_graph *g, const bool *drop_in) {
  bool *live = tl_xcalloc((size_t)h->nnodes + 1, 1);
  int32_t *map = tl_xmalloc(((size_t)h->nnodes + 1) * sizeof *map);
  for (int i = 0; i < h->noutputs; i++) live[h->outputs[i].node] = true;
  for (int32_t id = h->nnodes - 1; id >= 0; id--) {
    if (!live[id]) continue;
    const tl_node *x = &h->nodes[id];
    for (int k = 0; k < x->ninputs; k++) live[tl_node_inputs(h, x)[k]] = true;
  }
  for (int i = 0; i < h->ninputs; i++)
    if (!drop_in || !drop_in[i]) live[h->inputs[i]] = true;
  bool dropping = false;
  int32_t dead = 0;
  for (int i = 0; drop_in && i < h->ninputs; i++) dropping |= drop_in[i];
  for (int32_t id = 0; id < h->nnodes; id++) dead += !live[id];
  if (!dropping && (int64_t)dead * 10 <= h->nnodes) {
    /* few dead nodes: they cost nothing (every engine and the printer
     * start from the outputs), a rebuild would cost a pass of hashing */
    for (int i = 0; g && i < g->nlets; i++) {
      int32_t id = g->lets[i];
      if (id < h->nnodes && live[id] && h->nodes[id].op != TL_OP_INPUT)
        tl_graph_add_let(h, g->names[g->nodes[id].name], id);
    }
    tl_free(live);
    tl_free(map);
    return h;
  }
  tl_graph *c = tl_graph_new(h->name);
  for (int i = 0; i < h->nsyms; i++) tl_graph_sym(c, h->syms[i], strlen(h->syms[i]));
  char err[256];
  int32_t in[TL_GRAPH_MAX_ARGS];
  /* inputs keep their declared order */
  for (int i = 0; i < h->ninputs; i++) {
    const tl_node *x = &h->nodes[h->inputs[i]];
    map[h->inputs[i]] = live[h->inputs[i]] ? tl_graph_add_input(c, h->names[x->name], &x->type, x->loc) : -1;
  }
  for (int32_t id = 0; id < h->nnodes; id++) {
    const tl_node *x = &h->nodes[id];
    if (!live[id] || x->op == TL_OP_INPUT) continue;
    if (x->op == TL_OP_CONST) {
      map[id] = tl_graph_add_const(c, tl_tensor_copy(h->lits[x->attrs.lit]), x->loc);
      continue;
    }
    for (int k = 0; k < x->ninputs; k++) in[k] = map[tl_node_inputs(h, x)[k]];
    map[id] = tl_graph_add(c, x->op, &x->attrs, in, x->ninputs, x->loc, err, sizeof err);
    /* the same op on the same operands types the same: it cannot fail */
    if (map[id] < 0) abort();
  }
  for (int i = 0; g && i < g->nlets; i++) {
    int32_t id = g->lets[i];
    if (id < h->nnodes && live[id] && h->nodes[id].op != TL_OP_INPUT)
      tl_graph_add_let(c, g->names[g->nodes[id].name], map[id]);
  }
  for (int i = 0; i < h->noutputs; i++) tl_graph_add_output(c, h->names[h->outputs[i].name], map[h->outputs[i].node]);
  tl_free(live);
  tl_free(map);
  tl_graph_free(h);
  return c;
}

static int find_output(const tl_graph *g, const char *name) {
  for (int i = 0; i < g->noutputs; i++)
    if (!strcmp(g->names[g->outputs[i].name], name)) return i;
  return -1;
}

static int find_input(const tl_graph *g, const char *name) {
  for (int i = 0; i < g->ninputs; i++)
    if (!strcmp(g->names[g->nodes[g->inputs[i]].name], name)) return i;
  return -1;
}

/* Whether a new input or output named `name` would clash with a name the
 * derivative graph keeps from g: its inputs, its lets, and its outputs
 * when they are kept too (with_outputs). */
static bool name_used(const tl_graph *g, const char *name, bool with_outputs) {
  for (int i = 0; i < g->ninputs; i++)
    if (!strcmp(g->names[g->nodes[g->inputs[i]].name], name)) return true;
  for (int i = 0; i < g->nlets; i++)
    if (!strcmp(g->names[g->nodes[g->lets[i]].name], name)) return true;
  for (int i = 0; with_outputs && i < g->noutputs; i++)
    if (!strcmp(g->names[g->outputs[i].name], name)) return true;
  return false;
}

/* The selection of p over g: output and input numbers. */
typedef struct sel {
  int *of, nof, *wrt, nwrt;
} sel;

static int select_io(const tl_graph *g, const gr_params *p, sel *s, char *err, size_t n) {
  s->of = tl_xcalloc((size_t)g->noutputs + (size_t)p->nof + 1, sizeof *s->of);
  s->wrt = tl_xcalloc((size_t)g->ninputs + (size_t)p->nwrt + 1, sizeof *s->wrt);
  s->nof = s->nwrt = 0;
  char buf[128];
  if (p->nof == 0)
    for (int i = 0; i < g->noutputs; i++) s->of[s->nof++] = i;
  for (int i = 0; i < p->nof; i++) {
    int o = find_output(g, p->of[i]);
    if (o < 0) return snprintf(err, n, "grad: the graph has no output '%s'", p->of[i]), -1;
    s->of[s->nof++] = o;
  }
  for (int i = 0; i < s->nof; i++) {
    const tl_node *x = &g->nodes[g->outputs[s->of[i]].node];
    if (!tl_dtype_is_float((tl_dtype)x->type.dtype))
      return snprintf(err, n, "grad: output '%s' is %s: integer and bool values carry no gradient",
                      g->names[g->outputs[s->of[i]].name], tl_type_str(g, &x->type, buf, sizeof buf)), -1;
    if (p->mode == GR_GRAD && x->type.rank != 0)
      return snprintf(err, n, "grad: output '%s' is %s, not a scalar: differentiate a scalar (its sum, say), "
                      "or take a vector-Jacobian product (vjp)", g->names[g->outputs[s->of[i]].name],
                      tl_type_str(g, &x->type, buf, sizeof buf)), -1;
  }
  if (p->nwrt == 0)
    for (int i = 0; i < g->ninputs; i++)
      if (tl_dtype_is_float((tl_dtype)g->nodes[g->inputs[i]].type.dtype)) s->wrt[s->nwrt++] = i;
  for (int i = 0; i < p->nwrt; i++) {
    int w = find_input(g, p->wrt[i]);
    if (w < 0) return snprintf(err, n, "grad: the graph has no input '%s'", p->wrt[i]), -1;
    const tl_type *t = &g->nodes[g->inputs[w]].type;
    if (!tl_dtype_is_float((tl_dtype)t->dtype))
      return snprintf(err, n, "grad: input '%s' is %s: only float inputs have gradients", p->wrt[i],
                      tl_type_str(g, t, buf, sizeof buf)), -1;
    s->wrt[s->nwrt++] = w;
  }
  if (s->nof == 0 || s->nwrt == 0)
    return snprintf(err, n, "grad: nothing to differentiate (%s)", s->nof ? "no float input" : "no output"), -1;
  return 0;
}

static void sel_free(sel *s) {
  tl_free(s->of);
  tl_free(s->wrt);
}

static int32_t fill_zeros(tl_graph *h, const tl_type *t, char *err, size_t n) {
  tl_attrs a;
  tl_attrs_init(&a);
  a.dtype = t->dtype;
  a.nshape = t->rank;
  memcpy(a.shape, t->dims, sizeof a.shape);
  return tl_graph_add(h, TL_OP_FILL, &a, NULL, 0, (tl_loc){0, 0}, err, n);
}

/* One reverse sweep over h's forward nodes [0, nfwd): ct[id] holds the
 * seeds on entry and every cotangent on exit (-1: none). dep[id]: the
 * node depends on a differentiated input. */
static int sweep(tl_graph *h, const gr_rules *rs, int32_t nfwd, const bool *dep, int32_t *ct, char *err, size_t n) {
  char e2[768];
  for (int32_t id = nfwd - 1; id >= 0; id--) {
    if (ct[id] < 0) continue;
    const tl_node *x = &h->nodes[id];
    int op = x->op, nin = x->ninputs;
    if (tl_ops[op].kind == TL_KIND_CONTROL && dep[id])
      return snprintf(err, n, "grad: the gradient of %s (a function call, conditional or loop) is not "
                      "implemented yet", tl_ops[op].name), -1;
    if (tl_ops[op].grad != TL_GRAD_DIFF || nin == 0) continue;
    /* a cotangent may be smaller than its value (uniform along size-1
     * dims, as an elementwise rule of a broadcasting consumer leaves it);
     * rules of other ops see it at the value's shape */
    if (tl_ops[op].kind != TL_KIND_ELEMWISE) {
      tl_type xt = x->type; /* adding nodes moves h's arrays */
      ct[id] = gr_broadcast(h, ct[id], &xt, e2, sizeof e2);
      if (ct[id] < 0) {
        snprintf(err, n, "grad: %s", e2);
        return -1;
      }
    }
    for (int k = 0; k < nin; k++) {
      int32_t in = tl_node_inputs(h, &h->nodes[id])[k];
      const tl_type *it = &h->nodes[in].type;
      if (!dep[in] || ((tl_ops[op].nograd >> k) & 1) || !tl_dtype_is_float((tl_dtype)it->dtype)) continue;
      int r = gr_rule_pick(rs, h, id, k);
      if (r < 0) {
        char t1[128], t2[128];
        const tl_node *nd = &h->nodes[id];
        snprintf(err, n, "grad: no derivative rule for %s with respect to operand %d (%s -> %s%s); add one to "
                 "rules/grad.rw", tl_ops[op].name, k, tl_type_str(h, it, t1, sizeof t1),
                 tl_type_str(h, &nd->type, t2, sizeof t2), nd->loc.line ? ", see the graph's line" : "");
        if (nd->loc.line) snprintf(err + strlen(err), n - strlen(err), " %d:%d", nd->loc.line, nd->loc.col);
        return -1;
      }
      int32_t c = gr_apply(rs, r, h, id, k, ct[id], false, e2, sizeof e2);
      if (c < 0) {
        snprintf(err, n, "grad: %s", e2);
        return -1;
      }
      if (ct[in] < 0) {
        ct[in] = c;
      } else {
        int32_t ops[2] = {ct[in], c};
        ct[in] = tl_graph_add(h, TL_OP_ADD, NULL, ops, 2, (tl_loc){0, 0}, e2, sizeof e2);
        if (ct[in] < 0) {
          snprintf(err, n, "grad: accumulating the cotangent of a %s: %s", tl_ops[h->nodes[in].op].name, e2);
          return -1;
        }
      }
    }
  }
  return 0;
}

/* Nodes of g that depend on one of the nodes in `from`. */
static bool *depends(const tl_graph *g, const int32_t *from, int nfrom) {
  bool *dep = tl_xcalloc((size_t)g->nnodes + 1, 1);
  for (int i = 0; i < nfrom; i++) dep[from[i]] = true;
  for (int32_t id = 0; id < g->nnodes; id++) {
    const tl_node *x = &g->nodes[id];
    for (int k = 0; k < x->ninputs && !dep[id]; k++) dep[id] = dep[tl_node_inputs(g, x)[k]];
  }
  return dep;
}

/* Adds the sum of two cotangents (a < 0: b alone). */
static int32_t accumulate(tl_graph *h, int32_t a, int32_t b, char *err, size_t n) {
  if (a < 0) return b;
  int32_t two[2] = {a, b};
  return tl_graph_add(h, TL_OP_ADD, NULL, two, 2, (tl_loc){0, 0}, err, n);
}

static int32_t scalar_one(tl_graph *h, int dtype, char *err, size_t n) {
  tl_attrs a;
  tl_attrs_init(&a);
  a.dtype = (uint8_t)dtype;
  a.f = 1;
  return tl_graph_add(h, TL_OP_FILL, &a, NULL, 0, (tl_loc){0, 0}, err, n);
}

/* Reverse mode (GR_GRAD, GR_VJP) of g, uncompacted: g's nodes keep their
 * ids. For GR_VJP, ct_in[i] receives the node of output s->of[i]'s
 * cotangent input; grads[sweep * nwrt + w] the gradient nodes. */
static tl_graph *reverse(const tl_graph *g, const gr_rules *rs, gr_mode mode, bool with_outputs, const sel *s,
                         int32_t *ct_in, char *err, size_t n) {
  tl_buf nm = {0};
  tl_buf_printf(&nm, "%s_%s", g->name, mode == GR_VJP ? "vjp" : mode == GR_JVP ? "jvp" : "grad");
  tl_graph *h = copy_nodes(g, nm.s);
  tl_free(nm.s);
  int32_t nfwd = g->nnodes;
  int32_t *from = tl_xmalloc(((size_t)s->nwrt + 1) * sizeof *from);
  for (int i = 0; i < s->nwrt; i++) from[i] = g->inputs[s->wrt[i]];
  bool *dep = depends(g, from, s->nwrt);
  tl_free(from);
  int32_t *ct = tl_xmalloc(((size_t)nfwd + 1) * sizeof *ct);
  int32_t *grads = tl_xmalloc(((size_t)s->nof * (size_t)s->nwrt + 1) * sizeof *grads);
  int rc = 0;
  if (with_outputs)
    for (int i = 0; i < g->noutputs; i++) tl_graph_add_output(h, g->names[g->outputs[i].name], g->outputs[i].node);
  int sweeps = mode == GR_GRAD ? s->nof : 1;
  for (int i = 0; i < s->nof && mode != GR_GRAD; i++) {
    const tl_output *o = &g->outputs[s->of[i]];
    tl_buf in = {0};
    tl_buf_printf(&in, "ct_%s", g->names[o->name]);
    if (name_used(g, in.s, with_outputs)) {
      snprintf(err, n, "grad: the cotangent input '%s' would clash with a name of the graph", in.s);
      rc = -1;
    } else {
      ct_in[i] = tl_graph_add_input(h, in.s, &g->nodes[o->node].type, (tl_loc){0, 0});
    }
    tl_free(in.s);
  }
  for (int sw = 0; sw < sweeps && !rc; sw++) {
    for (int32_t id = 0; id < nfwd; id++) ct[id] = -1;
    for (int i = 0; i < s->nof && !rc; i++) {
      if (mode == GR_GRAD && i != sw) continue;
      int32_t o = g->outputs[s->of[i]].node;
      if (!dep[o]) continue;
      int32_t seed = mode == GR_GRAD ? scalar_one(h, g->nodes[o].type.dtype, err, n) : ct_in[i];
      ct[o] = seed < 0 ? -1 : accumulate(h, ct[o], seed, err, n);
      if (ct[o] < 0) rc = -1;
    }
    if (!rc) rc = sweep(h, rs, nfwd, dep, ct, err, n);
    for (int w = 0; w < s->nwrt && !rc; w++) {
      int32_t in = g->inputs[s->wrt[w]];
      grads[sw * s->nwrt + w] = ct[in] >= 0 ? gr_broadcast(h, ct[in], &g->nodes[in].type, err, n)
                                            : fill_zeros(h, &g->nodes[in].type, err, n);
      if (grads[sw * s->nwrt + w] < 0) rc = -1;
    }
  }
  for (int sw = 0; sw < sweeps && !rc; sw++)
    for (int w = 0; w < s->nwrt && !rc; w++) {
      tl_buf on = {0};
      const char *in = g->names[g->nodes[g->inputs[s->wrt[w]]].name];
      if (mode == GR_GRAD) tl_buf_printf(&on, "d%s_d%s", g->names[g->outputs[s->of[sw]].name], in);
      else tl_buf_printf(&on, "vjp_%s", in);
      if (name_used(g, on.s, with_outputs)) {
        snprintf(err, n, "grad: the output name '%s' would clash with a name of the graph", on.s);
        rc = -1;
      } else {
        tl_graph_add_output(h, on.s, grads[sw * s->nwrt + w]);
      }
      tl_free(on.s);
    }
  tl_free(dep);
  tl_free(ct);
  tl_free(grads);
  if (rc) {
    tl_graph_free(h);
    return NULL;
  }
  return h;
}

/* Forward mode: the VJP v = J^T c of g, then one reverse sweep of
 * S = sum_w sum(v_w * t_w) with respect to the cotangent inputs c_o, whose
 * cotangents are (J t)_o. The result must not use the c_o any more (the
 * VJP is linear in them); it is checked. */
static tl_graph *forward(const tl_graph *g, const gr_rules *rs, const gr_params *p, const sel *s, char *err,
                         size_t n) {
  int32_t *ct_in = tl_xcalloc((size_t)s->nof + 1, sizeof *ct_in);
  tl_graph *v = reverse(g, rs, GR_JVP, false, s, ct_in, err, n);
  if (!v) {
    tl_free(ct_in);
    return NULL;
  }
  int32_t *vjp = tl_xmalloc(((size_t)s->nwrt + 1) * sizeof *vjp);
  for (int w = 0; w < s->nwrt; w++) vjp[w] = v->outputs[w].node;
  v->noutputs = 0;
  int rc = 0;
  int32_t total = -1;
  for (int w = 0; w < s->nwrt && !rc; w++) {
    const tl_node *x = &g->nodes[g->inputs[s->wrt[w]]];
    tl_buf tn = {0};
    tl_buf_printf(&tn, "t_%s", g->names[x->name]);
    if (name_used(g, tn.s, p->with_outputs)) {
      snprintf(err, n, "grad: the tangent input '%s' would clash with a name of the graph", tn.s);
      rc = -1;
    } else {
      int32_t t = tl_graph_add_input(v, tn.s, &x->type, (tl_loc){0, 0});
      int32_t two[2] = {vjp[w], t};
      int32_t m = tl_graph_add(v, TL_OP_MUL, NULL, two, 2, (tl_loc){0, 0}, err, n);
      int32_t sm = m < 0 ? -1 : tl_graph_add(v, TL_OP_SUM, NULL, &m, 1, (tl_loc){0, 0}, err, n);
      total = sm < 0 ? -1 : accumulate(v, total, sm, err, n);
      if (total < 0) rc = -1;
    }
    tl_free(tn.s);
  }
  tl_free(vjp);
  int32_t nn = v->nnodes;
  bool *dep = rc ? NULL : depends(v, ct_in, s->nof);
  int32_t *ct = tl_xmalloc(((size_t)nn + 1) * sizeof *ct);
  for (int32_t id = 0; id < nn; id++) ct[id] = -1;
  if (!rc && dep[total]) {
    ct[total] = scalar_one(v, v->nodes[total].type.dtype, err, n);
    rc = ct[total] < 0 ? -1 : sweep(v, rs, nn, dep, ct, err, n);
  }
  if (p->with_outputs)
    for (int i = 0; i < g->noutputs && !rc; i++)
      tl_graph_add_output(v, g->names[g->outputs[i].name], g->outputs[i].node);
  for (int i = 0; i < s->nof && !rc; i++) {
    const tl_output *o = &g->outputs[s->of[i]];
    int32_t j = ct[ct_in[i]] >= 0 ? gr_broadcast(v, ct[ct_in[i]], &g->nodes[o->node].type, err, n)
                                  : fill_zeros(v, &g->nodes[o->node].type, err, n);
    tl_buf on = {0};
    tl_buf_printf(&on, "jvp_%s", g->names[o->name]);
    if (j < 0) rc = -1;
    else if (name_used(g, on.s, p->with_outputs)) {
      snprintf(err, n, "grad: the output name '%s' would clash with a name of the graph", on.s);
      rc = -1;
    } else {
      tl_graph_add_output(v, on.s, j);
    }
    tl_free(on.s);
  }
  tl_free(dep);
  tl_free(ct);
  tl_graph *c = NULL;
  if (!rc) {
    bool *drop = tl_xcalloc((size_t)v->ninputs + 1, 1);
    for (int i = 0; i < v->ninputs; i++)
      for (int k = 0; k < s->nof; k++) drop[i] |= v->inputs[i] == ct_in[k];
    c = compact(v, g, drop);
    v = NULL;
    tl_free(drop);
    for (int i = 0; i < c->ninputs && c; i++)
      if (!strncmp(c->names[c->nodes[c->inputs[i]].name], "ct_", 3) &&
          find_input(g, c->names[c->nodes[c->inputs[i]].name]) < 0) {
        snprintf(err, n, "grad: internal error: the VJP is not linear in its cotangent '%s'",
                 c->names[c->nodes[c->inputs[i]].name]);
        tl_graph_free(c);
        c = NULL;
      }
  }
  tl_free(ct_in);
  tl_graph_free(v);
  return c;
}

tl_graph *gr_transform(const tl_graph *g, const gr_rules *rs, const gr_params *p, char *err, size_t n) {
  sel s;
  if (select_io(g, p, &s, err, n)) {
    sel_free(&s);
    return NULL;
  }
  if (p->mode == GR_JVP) {
    tl_graph *f = forward(g, rs, p, &s, err, n);
    sel_free(&s);
    return f;
  }
  int32_t *ct_in = tl_xcalloc((size_t)s.nof + 1, sizeof *ct_in);
  tl_graph *h = reverse(g, rs, p->mode, p->with_outputs, &s, ct_in, err, n);
  tl_free(ct_in);
  sel_free(&s);
  if (!h) return NULL;
  return compact(h, g, NULL);
}
