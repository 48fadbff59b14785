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
 * The result is compacted (only what the outputs reach, in id order but
 * where a forward loop reads its gradient's counting loop), and
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

/* h's nodes with every node after its operands, sorted by id where the
 * ids allow (always, but after share_counted_loops), and live[id] set for
 * the nodes the outputs reach (a pass over that order from its end). An
 * iterative depth-first walk: graphs are millions of nodes deep. */
static int32_t *operand_order(const tl_graph *h, bool *live) {
  int32_t nn = h->nnodes;
  int32_t *order = tl_xmalloc(((size_t)nn + 1) * sizeof *order);
  uint8_t *seen = tl_xcalloc((size_t)nn + 1, 1);
  int32_t *stack = tl_xmalloc(((size_t)nn + 1) * sizeof *stack);
  int32_t *next = tl_xcalloc((size_t)nn + 1, sizeof *next); /* the next operand to visit */
  int32_t no = 0;
  for (int32_t r = 0; r < nn; r++) {
    if (seen[r]) continue;
    int32_t sp = 0;
    stack[sp++] = r;
    seen[r] = 1;
    while (sp) {
      int32_t v = stack[sp - 1];
      const tl_node *x = &h->nodes[v];
      if (next[v] < x->ninputs) {
        int32_t u = tl_node_inputs(h, x)[next[v]++];
        if (!seen[u]) {
          seen[u] = 1;
          stack[sp++] = u;
        }
      } else {
        order[no++] = v;
        sp--;
      }
    }
  }
  for (int i = 0; i < h->noutputs; i++) live[h->outputs[i].node] = true;
  for (int32_t k = nn - 1; k >= 0; k--) { /* users before their operands */
    const tl_node *x = &h->nodes[order[k]];
    if (live[order[k]])
      for (int j = 0; j < x->ninputs; j++) live[tl_node_inputs(h, x)[j]] = true;
  }
  tl_free(seen);
  tl_free(stack);
  tl_free(next);
  return order;
}

/* The nodes h's outputs reach and every input not in drop_in (flags per
 * input number) into a fresh graph in operand order (operand_order), h freed; or h itself when
 * it drops no input and at most a tenth of its nodes are dead. g's let
 * names are kept for nodes below g->nnodes (the ids are g's there). */
static tl_graph *compact(tl_graph *h, const tl_graph *g, const bool *drop_in) {
  bool *live = tl_xcalloc((size_t)h->nnodes + 1, 1);
  int32_t *map = tl_xmalloc(((size_t)h->nnodes + 1) * sizeof *map);
  int32_t *order = operand_order(h, live);
  for (int i = 0; i < h->ninputs; i++)
    if (!drop_in || !drop_in[i]) live[h->inputs[i]] = true;
  bool forward_refs = false;
  for (int32_t k = 0; order && k < h->nnodes; k++) forward_refs |= order[k] != k;
  bool dropping = false;
  int32_t dead = 0;
  for (int i = 0; drop_in && i < h->ninputs; i++) dropping |= drop_in[i];
  for (int32_t id = 0; id < h->nnodes; id++) dead += !live[id];
  if (!dropping && !forward_refs && (int64_t)dead * 10 <= h->nnodes) {
    /* few dead nodes: they cost nothing (every engine and the printer
     * start from the outputs), a rebuild would cost a pass of hashing */
    for (int i = 0; g && i < g->nlets; i++) {
      int32_t id = g->lets[i];
      if (id < h->nnodes && live[id] && h->nodes[id].op != TL_OP_INPUT)
        tl_graph_add_let(h, g->names[g->nodes[id].name], id);
    }
    tl_free(live);
    tl_free(map);
    tl_free(order);
    return h;
  }
  tl_graph *c = tl_graph_new(h->name);
  tl_graph_set_fns(c, h->fns);
  for (int i = 0; i < h->nsyms; i++) tl_graph_sym(c, h->syms[i], strlen(h->syms[i]));
  char err[256];
  int32_t in[TL_GRAPH_MAX_ARGS];
  /* inputs keep their declared order */
  for (int i = 0; i < h->ninputs; i++) {
    const tl_node *x = &h->nodes[h->inputs[i]];
    if (x->op != TL_OP_INPUT) continue; /* (a jvp's cotangent turned zeros) */
    map[h->inputs[i]] = live[h->inputs[i]] ? tl_graph_add_input(c, h->names[x->name], &x->type, x->loc) : -1;
  }
  for (int32_t k = 0; k < h->nnodes; k++) {
    int32_t id = order[k];
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
  tl_free(order);
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

/* ---- control flow: calls, conditionals and scans -------------------------
 * The gradient of a control node is control flow over gradient functions,
 * which are appended to the derivative graph's own function table (a copy
 * of the forward graph's, made once by gr_transform):
 *   call f(a..)           -> call of f.vjp(a.., ct..): one result per float operand
 *   cond p (f|h)(a..)     -> cond p (f.vjp|h.vjp)(a.., ct..)
 *   scan f (c.. xs..)     -> the forward scan again through f.trace, which also
 *                            stacks each step's input carries (the recorded
 *                            trace), then a scan over the reversed trace whose
 *                            body f.rev calls f.vjp: backpropagation through
 *                            time; its carries are the carries' cotangents
 * where f.vjp is f's VJP (every float output's cotangent in, the gradient of
 * every float parameter out). A loop records no trace: its gradient counts
 * and replays (see "loops" below). */

static bool is_float_type(const tl_type *t) { return tl_dtype_is_float((tl_dtype)t->dtype); }

static int32_t find_fn(const tl_fns *t, const char *name) { return tl_fns_find(t, name, strlen(name)); }

/* The function named nm->s if t has it already (nm freed), else -1 (nm
 * kept, for the builder to name the new function). */
static int32_t have_fn(const tl_fns *t, tl_buf *nm) {
  int32_t have = find_fn(t, nm->s);
  if (have >= 0) {
    tl_free(nm->s);
    nm->s = NULL;
  }
  return have;
}

static tl_graph *transform_in(const tl_graph *g, const gr_rules *rs, const gr_params *p, bool own_table, char *err,
                              size_t n);

/* Index in t of the VJP function of function fi (made on first use); -2
 * when fi has no float parameter or no float result (no gradient flows). */
static int32_t fn_vjp(tl_fns *t, const gr_rules *rs, int32_t fi, char *err, size_t n) {
  const tl_graph *f = t->fn[fi];
  tl_buf nm = {0};
  tl_buf_printf(&nm, "%s.vjp", f->name);
  int32_t have = have_fn(t, &nm);
  if (have >= 0) return have;
  /* a copy whose results are named r.K: the cotangent inputs (ct_r.K) then
   * cannot clash with a parameter (a VJP's own are ct_..., so the VJP of a
   * VJP would clash otherwise) */
  tl_graph *fc = tl_graph_copy(f, NULL);
  char pre[16] = "r";
  for (bool clash = true; clash && strlen(pre) < sizeof pre - 1;) {
    clash = false; /* a VJP's parameters are ct_r.K: its own VJP takes ct_rr.K */
    for (int i = 0; i < fc->ninputs && !clash; i++)
      clash = !strncmp(fc->names[fc->nodes[fc->inputs[i]].name], "ct_", 3) &&
              !strncmp(fc->names[fc->nodes[fc->inputs[i]].name] + 3, pre, strlen(pre)) &&
              fc->names[fc->nodes[fc->inputs[i]].name][3 + strlen(pre)] == '.';
    if (clash) strcat(pre, "r");
  }
  for (int i = 0; i < fc->noutputs; i++) {
    char on[32];
    snprintf(on, sizeof on, "%s.%d", pre, i);
    fc->outputs[i].name = tl_graph_name(fc, on);
  }
  f = fc;
  const char **of = tl_xcalloc((size_t)f->noutputs + 1, sizeof *of);
  const char **wrt = tl_xcalloc((size_t)f->ninputs + 1, sizeof *wrt);
  int nof = 0, nwrt = 0;
  for (int i = 0; i < f->noutputs; i++)
    if (is_float_type(&f->nodes[f->outputs[i].node].type)) of[nof++] = f->names[f->outputs[i].name];
  for (int i = 0; i < f->ninputs; i++)
    if (is_float_type(&f->nodes[f->inputs[i]].type)) wrt[nwrt++] = f->names[f->nodes[f->inputs[i]].name];
  int32_t r = -2;
  if (nof && nwrt) {
    gr_params p = {GR_VJP, of, nof, wrt, nwrt, false};
    char e2[1024];
    tl_graph *v = transform_in(f, rs, &p, false, e2, sizeof e2);
    if (!v) {
      snprintf(err, n, "in function '%s': %s", f->name, e2);
      r = -1;
    } else {
      tl_free(v->name);
      v->name = tl_xstrdup(nm.s);
      r = tl_fns_add(t, v);
    }
  }
  tl_free(of);
  tl_free(wrt);
  tl_free(nm.s);
  tl_graph_free(fc);
  return r;
}

/* The type of result r of control node x (its :out r sibling's). */
static int result_type(const tl_graph *h, const tl_node *x, int r, tl_type *out, char *err, size_t n) {
  tl_attrs a = x->attrs;
  a.out = r;
  const tl_type *in[TL_GRAPH_MAX_ARGS];
  for (int k = 0; k < x->ninputs; k++) in[k] = &h->nodes[tl_node_inputs(h, x)[k]].type;
  return tl_infer_control(h, x->op, &a, in, x->ninputs, out, err, n);
}

static int32_t add_ctl(tl_graph *h, int op, const tl_attrs *a, const int32_t *args, int nargs, char *err, size_t n) {
  return tl_graph_add(h, op, a, args, nargs, (tl_loc){0, 0}, err, n);
}

static int32_t reversed(tl_graph *h, int32_t v, char *err, size_t n) {
  tl_attrs a;
  tl_attrs_init(&a);
  a.present = TL_A_AXIS | TL_A_STEP;
  a.naxes = 1;
  a.axes[0] = 0;
  a.step = -1;
  return tl_graph_add(h, TL_OP_SLICE, &a, &v, 1, (tl_loc){0, 0}, err, n);
}

/* ---- residuals: what the backward pass of a scan step reads ------------
 * f.vjp recomputes f's values from its parameters before it uses them; in a
 * scan that is a second forward pass per step. Instead (the partial
 * evaluation JAX does for its scans), the values of f.vjp that its
 * backward part reads, depend on the step (a carry or an x, not only on
 * consts) and are not a cheap view of a parameter, are residuals: f.trace
 * computes and returns them with the step's input carries (the scan stacks
 * them), and f.rev is f.vjp's backward part alone, reading them. */

typedef struct resid {
  const tl_graph *v; /* f.vjp */
  int npar;          /* f's parameters: f.vjp's first inputs */
  bool *ct_dep;      /* per node of v: depends on a cotangent input */
  bool *varies;      /* depends on a carry or an x */
  int32_t *res;      /* the residual nodes, in id order */
  int nres;
} resid;

static bool is_view(int op) {
  return op == TL_OP_TRANSPOSE || op == TL_OP_RESHAPE || op == TL_OP_EXPAND_DIMS || op == TL_OP_SQUEEZE ||
         op == TL_OP_BROADCAST_TO;
}

static void resid_find(resid *r, const tl_graph *v, int npar, int k, int m) {
  r->v = v;
  r->npar = npar;
  r->ct_dep = tl_xcalloc((size_t)v->nnodes + 1, 1);
  r->varies = tl_xcalloc((size_t)v->nnodes + 1, 1);
  bool *cheap = tl_xcalloc((size_t)v->nnodes + 1, 1);
  bool *is_res = tl_xcalloc((size_t)v->nnodes + 1, 1);
  for (int i = 0; i < v->ninputs; i++) {
    int32_t x = v->inputs[i];
    if (i >= npar) r->ct_dep[x] = true;
    else r->varies[x] = i < k || i >= k + m;
    cheap[x] = true;
  }
  for (int32_t x = 0; x < v->nnodes; x++) {
    const tl_node *nd = &v->nodes[x];
    if (nd->op == TL_OP_INPUT) continue;
    bool all_cheap = true;
    for (int j = 0; j < nd->ninputs; j++) {
      int32_t a = tl_node_inputs(v, nd)[j];
      r->ct_dep[x] |= r->ct_dep[a];
      r->varies[x] |= r->varies[a];
      all_cheap &= cheap[a];
    }
    cheap[x] = nd->ninputs == 0 || (is_view(nd->op) && all_cheap);
  }
  /* residuals: read by a backward node (or a result itself) */
  for (int32_t x = 0; x < v->nnodes; x++) {
    const tl_node *nd = &v->nodes[x];
    if (!r->ct_dep[x]) continue;
    for (int j = 0; j < nd->ninputs; j++) {
      int32_t a = tl_node_inputs(v, nd)[j];
      if (!r->ct_dep[a] && r->varies[a] && !cheap[a] && v->nodes[a].type.rank < TL_MAX_RANK) is_res[a] = true;
    }
  }
  for (int i = 0; i < v->noutputs; i++) {
    int32_t a = v->outputs[i].node;
    if (!r->ct_dep[a] && r->varies[a] && !cheap[a] && v->nodes[a].type.rank < TL_MAX_RANK) is_res[a] = true;
  }
  r->res = tl_xcalloc((size_t)v->nnodes + 1, sizeof *r->res);
  r->nres = 0;
  for (int32_t x = 0; x < v->nnodes; x++)
    if (is_res[x]) r->res[r->nres++] = x;
  tl_free(cheap);
  tl_free(is_res);
}

static void resid_free(resid *r) {
  tl_free(r->ct_dep);
  tl_free(r->varies);
  tl_free(r->res);
}

/* Rebuilds the nodes of v that `roots` need into h, through map (set for
 * the nodes given: inputs, residuals), in id order. */
static int rebuild(tl_graph *h, const tl_graph *v, int32_t *map, const int32_t *roots, int nroots, char *err, size_t n) {
  bool *need = tl_xcalloc((size_t)v->nnodes + 1, 1);
  for (int i = 0; i < nroots; i++) need[roots[i]] = true;
  for (int32_t x = v->nnodes - 1; x >= 0; x--) {
    if (!need[x] || map[x] >= 0) continue;
    const tl_node *nd = &v->nodes[x];
    for (int j = 0; j < nd->ninputs; j++) need[tl_node_inputs(v, nd)[j]] = true;
  }
  int rc = 0;
  int32_t ops[TL_GRAPH_MAX_ARGS];
  for (int32_t x = 0; x < v->nnodes && !rc; x++) {
    if (!need[x] || map[x] >= 0) continue;
    const tl_node *nd = &v->nodes[x];
    if (nd->op == TL_OP_INPUT) {
      rc = -1;
      snprintf(err, n, "grad: internal error: %s's input %d is not bound", v->name, x);
      break;
    }
    if (nd->op == TL_OP_CONST) {
      map[x] = tl_graph_add_const(h, tl_tensor_copy(v->lits[nd->attrs.lit]), nd->loc);
      continue;
    }
    for (int j = 0; j < nd->ninputs; j++) ops[j] = map[tl_node_inputs(v, nd)[j]];
    if ((map[x] = tl_graph_add(h, nd->op, &nd->attrs, ops, nd->ninputs, nd->loc, err, n)) < 0) rc = -1;
  }
  tl_free(need);
  return rc;
}

/* f.trace: f, then its input carries, then the residuals. */
static int32_t fn_trace(tl_fns *t, int32_t fi, int k, const resid *r, char *err, size_t n) {
  const tl_graph *f = t->fn[fi];
  tl_buf nm = {0};
  tl_buf_printf(&nm, "%s.trace", f->name);
  int32_t have = have_fn(t, &nm);
  if (have >= 0) return have;
  tl_graph *c = tl_graph_copy(f, nm.s);
  tl_free(nm.s);
  int rc = 0;
  char on[32];
  for (int i = 0; i < k; i++) {
    snprintf(on, sizeof on, "cin.%d", i);
    tl_graph_add_output(c, on, c->inputs[i]);
  }
  int32_t *map = tl_xmalloc(((size_t)r->v->nnodes + 1) * sizeof *map);
  for (int32_t x = 0; x < r->v->nnodes; x++) map[x] = -1;
  for (int i = 0; i < r->npar; i++) map[r->v->inputs[i]] = c->inputs[i];
  rc = rebuild(c, r->v, map, r->res, r->nres, err, n);
  for (int j = 0; j < r->nres && !rc; j++) {
    snprintf(on, sizeof on, "res.%d", j);
    tl_graph_add_output(c, on, map[r->res[j]]);
  }
  tl_free(map);
  if (rc) {
    tl_graph_free(c);
    return -1;
  }
  return tl_fns_add(t, c);
}

/* f.rev, the reverse scan's body, for a scan of k carries and m consts:
 *   carries:   the float carries' cotangents, the float consts' gradient sums
 *   consts:    the forward scan's consts
 *   sequences: the step's input carries (the trace), its xs, its float ys'
 *              cotangents, its residuals
 * returns the carries' cotangents one step back, the sums plus this step's
 * consts gradients, then the xs' gradients: f.vjp's backward part. */
static int32_t fn_rev(tl_fns *t, int32_t fi, int32_t vi, int k, int m, const resid *rs_, const bool *want_dx,
                      char *err, size_t n) {
  const tl_graph *f = t->fn[fi], *v = t->fn[vi];
  tl_buf nm = {0};
  tl_buf_printf(&nm, "%s.rev", f->name);
  /* the xs whose gradients nobody reads are left out (named by a mask) */
  bool all = true;
  for (int i = k + m; i < f->ninputs; i++) all &= want_dx[i - k - m];
  if (!all) {
    tl_buf_printf(&nm, ".x");
    for (int i = k + m; i < f->ninputs; i++) tl_buf_printf(&nm, "%d", want_dx[i - k - m] ? 1 : 0);
  }
  int32_t have = have_fn(t, &nm);
  if (have >= 0) return have;
  tl_graph *r = tl_graph_new(nm.s);
  tl_free(nm.s);
  r->fns = t; /* weakly, as every function of t */
  for (int s = 0; s < v->nsyms; s++) tl_graph_sym(r, v->syms[s], strlen(v->syms[s]));
  int nin = f->ninputs, nout = f->noutputs;
  int32_t *ctc = tl_xcalloc((size_t)nin + 1, sizeof *ctc), *par = tl_xcalloc((size_t)nin + 1, sizeof *par);
  int32_t *cty = tl_xcalloc((size_t)nout + 1, sizeof *cty);
  char pn[32];
  const tl_type *pt;
  /* carries: cotangents of the float carries, then sums of the float consts */
  for (int i = 0; i < k + m; i++)
    if (is_float_type(pt = &f->nodes[f->inputs[i]].type)) {
      snprintf(pn, sizeof pn, i < k ? "ctc.%d" : "acc.%d", i);
      ctc[i] = tl_graph_add_input(r, pn, pt, (tl_loc){0, 0});
    }
  for (int i = k; i < k + m; i++) { /* consts */
    snprintf(pn, sizeof pn, "p.%d", i);
    par[i] = tl_graph_add_input(r, pn, &f->nodes[f->inputs[i]].type, (tl_loc){0, 0});
  }
  for (int i = 0; i < nin; i++) { /* sequences: the trace's carries, the xs */
    if (i >= k && i < k + m) continue;
    snprintf(pn, sizeof pn, "p.%d", i);
    par[i] = tl_graph_add_input(r, pn, &f->nodes[f->inputs[i]].type, (tl_loc){0, 0});
  }
  for (int q = k; q < nout; q++)
    if (is_float_type(pt = &f->nodes[f->outputs[q].node].type)) {
      snprintf(pn, sizeof pn, "cty.%d", q);
      cty[q] = tl_graph_add_input(r, pn, pt, (tl_loc){0, 0});
    }
  int32_t *map = tl_xmalloc(((size_t)v->nnodes + 1) * sizeof *map);
  for (int32_t x = 0; x < v->nnodes; x++) map[x] = -1;
  for (int j = 0; j < rs_->nres; j++) { /* residuals, last */
    snprintf(pn, sizeof pn, "res.%d", j);
    map[rs_->res[j]] = tl_graph_add_input(r, pn, &v->nodes[rs_->res[j]].type, (tl_loc){0, 0});
  }
  /* f.vjp's inputs: f's parameters, then its float results' cotangents */
  for (int i = 0; i < nin; i++) map[v->inputs[i]] = par[i];
  int ci = nin;
  for (int q = 0; q < nout; q++)
    if (is_float_type(&f->nodes[f->outputs[q].node].type)) map[v->inputs[ci++]] = q < k ? ctc[q] : cty[q];
  int32_t *roots = tl_xcalloc((size_t)v->noutputs + 1, sizeof *roots);
  int nroots = 0;
  for (int i = 0, w0 = 0; i < nin; i++)
    if (is_float_type(&f->nodes[f->inputs[i]].type)) {
      if (i < k + m || want_dx[i - k - m]) roots[nroots++] = v->outputs[w0].node;
      w0++;
    }
  int rc = rebuild(r, v, map, roots, nroots, err, n);
  /* v's outputs: the gradients of f's float parameters, in order */
  int32_t *grad = tl_xcalloc((size_t)nin + 1, sizeof *grad);
  int w = 0;
  for (int i = 0; i < nin; i++) {
    grad[i] = -1;
    if (!is_float_type(&f->nodes[f->inputs[i]].type) || rc) continue;
    int32_t o = v->outputs[w++].node;
    if (i < k + m || want_dx[i - k - m]) grad[i] = map[o];
  }
  for (int i = 0; i < nin && !rc; i++) { /* outputs in the order of the carries, then the xs */
    if (grad[i] < 0 || i >= k + m) continue;
    int32_t d = grad[i];
    if (i >= k) {
      int32_t two[2] = {ctc[i], grad[i]};
      if ((d = tl_graph_add(r, TL_OP_ADD, NULL, two, 2, (tl_loc){0, 0}, err, n)) < 0) {
        rc = -1;
        break;
      }
    }
    snprintf(pn, sizeof pn, i < k ? "dc.%d" : "dk.%d", i);
    tl_graph_add_output(r, pn, d);
  }
  for (int i = k + m; i < nin && !rc; i++)
    if (grad[i] >= 0) {
      snprintf(pn, sizeof pn, "dx.%d", i);
      tl_graph_add_output(r, pn, grad[i]);
    }
  tl_free(ctc);
  tl_free(par);
  tl_free(cty);
  tl_free(map);
  tl_free(roots);
  tl_free(grad);
  if (rc) {
    r->fns = NULL;
    tl_graph_free(r);
    return -1;
  }
  return tl_fns_add(t, r);
}

static int32_t accumulate(tl_graph *h, int32_t a, int32_t b, char *err, size_t n);

/* Gives the cotangent c to operand k of node x (when that operand depends
 * on a differentiated input). */
static int give(tl_graph *h, int32_t xid, int k, int32_t c, const bool *dep, int32_t *ct, char *err, size_t n) {
  int32_t in = tl_node_inputs(h, &h->nodes[xid])[k];
  if (!dep[in] || !is_float_type(&h->nodes[in].type)) return 0;
  ct[in] = accumulate(h, ct[in], c, err, n);
  return ct[in] < 0 ? -1 : 0;
}

/* The cotangents of control node id's run (its results' cotangents, from
 * every sibling) to its operands. id is the run's first node. */
/* ---- loops: count the trips, then replay ----------------------------------
 * A while loop records no trace, and its trip count is known only when it
 * ends, so nothing can be stacked into a preallocated result. Its gradient
 * replays instead (checkpointing with no snapshots: O(1) memory, O(n^2)
 * body runs for n trips):
 *   (s_n, n) = loop (s_0, 0) :cond c.count :body b.count_body [:until u.count]
 *              the same loop, also counting its trips; the forward
 *              loop's nodes become results of this run
 *              (share_counted_loops), so it runs once for both
 *   ct       = loop (n, ct_n, s_0) :cond b.bwd_cond :body b.bwd_body
 *              while j > 0: j -= 1; s_j = loop (0, j, s_0) :body b (j times,
 *              b.replay_*); ct = b.vjp(s_j, ct)
 * and ct is the gradient of s_0's float values. JAX refuses reverse mode
 * through while_loop; this is correct for any trip count but quadratic in
 * it: a loop that runs long should be a scan (a recorded trace, linear). */

/* A new function named name whose parameters are extra (i64 scalars named
 * by extra_names) followed by f's parameters (f's types and symbols). */
static tl_graph *fn_like(const tl_graph *f, const char *name, const char *const *extra, int nextra,
                         int32_t *params) {
  tl_graph *g = tl_graph_new(name);
  for (int i = 0; i < f->nsyms; i++) tl_graph_sym(g, f->syms[i], strlen(f->syms[i]));
  tl_type it = {.dtype = TL_I64, .rank = 0};
  int np = 0;
  for (int i = 0; i < nextra; i++) params[np++] = tl_graph_add_input(g, extra[i], &it, (tl_loc){0, 0});
  for (int i = 0; i < f->ninputs; i++) {
    char nm[32];
    snprintf(nm, sizeof nm, "s.%d", i);
    params[np++] = tl_graph_add_input(g, nm, &f->nodes[f->inputs[i]].type, (tl_loc){0, 0});
  }
  return g;
}

static int32_t i64_scalar(tl_graph *h, int64_t v, char *err, size_t n) {
  tl_attrs a;
  tl_attrs_init(&a);
  a.dtype = TL_I64;
  a.f = (double)v;
  a.i = v;
  a.is_int = 1;
  return tl_graph_add(h, TL_OP_FILL, &a, NULL, 0, (tl_loc){0, 0}, err, n);
}

static int32_t call_out(tl_graph *h, int32_t fi, int out, const int32_t *args, int nargs, char *err, size_t n) {
  tl_attrs a;
  tl_attrs_init(&a);
  a.present = TL_A_FN;
  a.fn[0] = fi;
  a.out = out;
  return add_ctl(h, TL_OP_CALL, &a, args, nargs, err, n);
}

static int32_t bin(tl_graph *h, int op, int32_t x, int32_t y, char *err, size_t n) {
  int32_t two[2] = {x, y};
  return tl_graph_add(h, op, NULL, two, 2, (tl_loc){0, 0}, err, n);
}

/* Outputs r.K: f's results on args (f's parameters). */
static bool add_calls(tl_graph *g, int32_t fi, const int32_t *args, int nargs, char *err, size_t n) {
  const tl_graph *f = g->fns->fn[fi];
  for (int r = 0; r < f->noutputs; r++) {
    int32_t v = call_out(g, fi, r, args, nargs, err, n);
    if (v < 0) return false;
    char on[32];
    snprintf(on, sizeof on, "r.%d", r);
    tl_graph_add_output(g, on, v);
  }
  return true;
}

/* v + d for an i64 scalar v, or -1. */
static int32_t add_i64(tl_graph *g, int op, int32_t v, int64_t d, char *err, size_t n) {
  int32_t c = i64_scalar(g, d, err, n);
  return c < 0 ? -1 : bin(g, op, v, c, err, n);
}

/* Adds function g to t under its name (or finds the one already there);
 * -1 when building it failed (bad: a node was -1). */
static int32_t fn_add(tl_fns *t, tl_graph *g, bool bad) {
  if (bad) {
    tl_graph_free(g);
    return -1;
  }
  int32_t have = find_fn(t, g->name);
  if (have >= 0) {
    tl_graph_free(g);
    return have;
  }
  return tl_fns_add(t, g);
}

/* The loop's counting functions, the loop's own with the count as the last
 * state: its body b.count_body(s.., i) = (b(s..), i + 1), its condition
 * (and :until) c.count(s.., i) = c(s..). Copies, not calls, so that
 * share_counted_loops can see that they give the loop's own results first
 * (`counts`) and make the forward loop's nodes results of the counting
 * run. */
static int32_t fn_count(tl_fns *t, int32_t fi, bool body, char *err, size_t n) {
  const tl_graph *f = t->fn[fi];
  tl_buf nm = {0};
  tl_buf_printf(&nm, "%s.count%s", f->name, body ? "_body" : "");
  int32_t have = have_fn(t, &nm);
  if (have >= 0) return have;
  tl_graph *g = tl_graph_copy(f, nm.s);
  tl_free(nm.s);
  g->fns = t;
  tl_type it = {.dtype = TL_I64, .rank = 0};
  /* names of their own: a count of a count (grad of grad) adds another */
  char pn[32], on[32];
  snprintf(pn, sizeof pn, "trips.%d", f->ninputs);
  snprintf(on, sizeof on, "trips2.%d", f->ninputs);
  int32_t i = tl_graph_add_input(g, pn, &it, (tl_loc){0, 0});
  bool bad = i < 0;
  if (body && !bad) {
    int32_t i1 = add_i64(g, TL_OP_ADD, i, 1, err, n);
    bad = i1 < 0;
    if (!bad) tl_graph_add_output(g, on, i1);
  }
  return fn_add(t, g, bad);
}

/* b.replay_cond(k, j, s..) = k < j; b.replay_body(k, j, s..) = (k + 1, j, b(s..)). */
static int32_t fn_replay(tl_fns *t, int32_t bi, bool body, char *err, size_t n) {
  const tl_graph *f = t->fn[bi];
  tl_buf nm = {0};
  tl_buf_printf(&nm, "%s.replay_%s", f->name, body ? "body" : "cond");
  int32_t have = have_fn(t, &nm);
  if (have >= 0) return have;
  const char *ex[2] = {"k", "j"};
  int32_t *pa = tl_xmalloc(((size_t)f->ninputs + 3) * sizeof *pa);
  tl_graph *g = fn_like(f, nm.s, ex, 2, pa);
  tl_free(nm.s);
  g->fns = t;
  bool bad = false;
  if (!body) {
    int32_t lt = bin(g, TL_OP_LT, pa[0], pa[1], err, n);
    bad = lt < 0;
    if (!bad) tl_graph_add_output(g, "go", lt);
  } else {
    int32_t k1 = add_i64(g, TL_OP_ADD, pa[0], 1, err, n);
    bad = k1 < 0;
    if (!bad) {
      tl_graph_add_output(g, "k2", k1);
      tl_graph_add_output(g, "j2", pa[1]);
    }
    bad = bad || !add_calls(g, bi, pa + 2, f->ninputs, err, n);
  }
  tl_free(pa);
  return fn_add(t, g, bad);
}

/* b.bwd_cond(j, ct.., s0..) = j > 0; b.bwd_body(j, ct.., s0..) = (j - 1,
 * b.vjp(s_{j-1}, ct), s0..) with s_{j-1} replayed from s0. nf float
 * states (their cotangents are the ct parameters). */
static int32_t fn_bwd(tl_fns *t, int32_t bi, bool body, int32_t vi, const int *fl, int nf, int64_t trips,
                      char *err, size_t n) {
  const tl_graph *f = t->fn[bi];
  tl_buf nm = {0};
  tl_buf_printf(&nm, "%s.bwd_%s", f->name, body ? "body" : "cond");
  int32_t have = have_fn(t, &nm);
  if (have >= 0) return have;
  int32_t rc_ = body ? fn_replay(t, bi, false, err, n) : 0, rb = body ? fn_replay(t, bi, true, err, n) : 0;
  if (rc_ < 0 || rb < 0) {
    tl_free(nm.s);
    return -1;
  }
  tl_graph *g = tl_graph_new(nm.s);
  tl_free(nm.s);
  g->fns = t;
  for (int i = 0; i < f->nsyms; i++) tl_graph_sym(g, f->syms[i], strlen(f->syms[i]));
  tl_type it = {.dtype = TL_I64, .rank = 0};
  int32_t j = tl_graph_add_input(g, "j", &it, (tl_loc){0, 0});
  int32_t *ct = tl_xmalloc(((size_t)nf + 1) * sizeof *ct), *s0 = tl_xmalloc(((size_t)f->ninputs + 1) * sizeof *s0);
  for (int w = 0; w < nf; w++) {
    char nm2[32];
    snprintf(nm2, sizeof nm2, "ct.%d", w);
    ct[w] = tl_graph_add_input(g, nm2, &f->nodes[f->inputs[fl[w]]].type, (tl_loc){0, 0});
  }
  for (int i = 0; i < f->ninputs; i++) {
    char nm2[32];
    snprintf(nm2, sizeof nm2, "s0.%d", i);
    s0[i] = tl_graph_add_input(g, nm2, &f->nodes[f->inputs[i]].type, (tl_loc){0, 0});
  }
  bool bad = false;
  int32_t zero = i64_scalar(g, 0, err, n);
  bad |= zero < 0;
  if (!body) {
    int32_t gt = bad ? -1 : bin(g, TL_OP_GT, j, zero, err, n);
    bad |= gt < 0;
    if (!bad) tl_graph_add_output(g, "go", gt);
  } else {
    int32_t j1 = bad ? -1 : add_i64(g, TL_OP_SUB, j, 1, err, n);
    bad |= j1 < 0;
    int ns = f->ninputs;
    int32_t *args = tl_xmalloc(((size_t)ns + (size_t)nf + 3) * sizeof *args);
    int32_t *sj = tl_xmalloc(((size_t)ns + 1) * sizeof *sj);
    args[0] = zero;
    args[1] = j1;
    memcpy(args + 2, s0, (size_t)ns * sizeof *args);
    tl_attrs a;
    tl_attrs_init(&a);
    a.present = TL_A_COND | TL_A_BODY | TL_A_MAX;
    a.fn[0] = rc_;
    a.fn[1] = rb;
    a.trips = trips;
    for (int i = 0; i < ns && !bad; i++) { /* s_{j-1}: the replay's states */
      a.out = 2 + i;
      sj[i] = add_ctl(g, TL_OP_LOOP, &a, args, ns + 2, err, n);
      bad |= sj[i] < 0;
    }
    if (!bad) tl_graph_add_output(g, "j2", j1);
    memcpy(args, sj, (size_t)ns * sizeof *args);
    memcpy(args + ns, ct, (size_t)nf * sizeof *args);
    for (int w = 0; w < nf && !bad; w++) { /* b.vjp's results: the float parameters' gradients */
      int32_t d = call_out(g, vi, w, args, ns + nf, err, n);
      bad |= d < 0;
      char on[32];
      snprintf(on, sizeof on, "ct2.%d", w);
      if (!bad) tl_graph_add_output(g, on, d);
    }
    for (int i = 0; i < ns && !bad; i++) {
      char on[32];
      snprintf(on, sizeof on, "s02.%d", i);
      tl_graph_add_output(g, on, s0[i]);
    }
    tl_free(args);
    tl_free(sj);
  }
  tl_free(ct);
  tl_free(s0);
  return fn_add(t, g, bad);
}

/* The gradient of loop node x (operands ops, the float states' indices fl
 * with cotangents cts) into ct, through give. */
static int loop_vjp(tl_graph *h, const gr_rules *rs, int32_t id, const tl_node *x, const int32_t *ops,
                    const int32_t *cts, const bool *dep, int32_t *ct, char *err, size_t n) {
  tl_fns *t = h->fns;
  int ns = x->ninputs;
  bool until = (x->attrs.present & TL_A_UNTIL) != 0;
  if (x->attrs.present & TL_A_STACK) {
    snprintf(err, n, "grad: the gradient through a loop with per-trip results (:stack) is not supported (write it "
                     "as a scan, whose trace the gradient replays, where the trip count is known)");
    return -1;
  }
  int32_t bi = x->attrs.fn[1];
  int *fl = tl_xmalloc(((size_t)ns + 1) * sizeof *fl);
  int nf = 0;
  for (int i = 0; i < ns; i++)
    if (is_float_type(&h->nodes[ops[i]].type)) fl[nf++] = i;
  int32_t vi = nf ? fn_vjp(t, rs, bi, err, n) : -2;
  int rc = vi == -1 ? -1 : 0;
  if (vi == -2) { /* no float state: no gradient flows */
    tl_free(fl);
    return 0;
  }
  int32_t cc = rc ? -1 : fn_count(t, x->attrs.fn[0], false, err, n);
  int32_t cb = cc < 0 ? -1 : fn_count(t, bi, true, err, n);
  int32_t cu = cb < 0 || !until ? cb : fn_count(t, x->attrs.fn[2], false, err, n);
  int32_t bc = cu < 0 ? -1 : fn_bwd(t, bi, false, vi, fl, nf, x->attrs.trips, err, n);
  int32_t bb = bc < 0 ? -1 : fn_bwd(t, bi, true, vi, fl, nf, x->attrs.trips, err, n);
  if (bb < 0) rc = -1;
  int32_t *args = tl_xmalloc(((size_t)ns * 2 + 4) * sizeof *args);
  int32_t cnt = -1;
  if (!rc) { /* n: the same loop, counting */
    memcpy(args, ops, (size_t)ns * sizeof *args);
    args[ns] = i64_scalar(h, 0, err, n);
    tl_attrs a = x->attrs;
    a.fn[0] = cc;
    a.fn[1] = cb;
    if (until) a.fn[2] = cu;
    a.out = ns;
    cnt = args[ns] < 0 ? -1 : add_ctl(h, TL_OP_LOOP, &a, args, ns + 1, err, n);
    if (cnt < 0) rc = -1;
  }
  if (!rc) { /* the backward loop from (n, ct_n, s_0) */
    int na = 0;
    args[na++] = cnt;
    for (int w = 0; w < nf; w++) args[na++] = cts[fl[w]];
    for (int i = 0; i < ns; i++) args[na++] = ops[i];
    tl_attrs a;
    tl_attrs_init(&a);
    a.present = TL_A_COND | TL_A_BODY | TL_A_MAX;
    a.fn[0] = bc;
    a.fn[1] = bb;
    a.trips = x->attrs.trips;
    for (int w = 0; w < nf && !rc; w++) {
      a.out = 1 + w;
      int32_t d = add_ctl(h, TL_OP_LOOP, &a, args, na, err, n);
      rc = d < 0 ? -1 : give(h, id, fl[w], d, dep, ct, err, n);
    }
  }
  tl_free(args);
  tl_free(fl);
  return rc;
}

static int control_vjp(tl_graph *h, const gr_rules *rs, int32_t id, int32_t nfwd, const bool *dep, int32_t *ct,
                       char *err, size_t n) {
  tl_node x = h->nodes[id]; /* adding nodes moves h's arrays */
  int nres = tl_control_nresults(h, &x), nin = x.ninputs;
  int32_t *cts = tl_xmalloc(((size_t)nres + 1) * sizeof *cts);
  tl_type *rt = tl_xcalloc((size_t)nres + 1, sizeof *rt);
  int32_t *ops = tl_xmalloc(((size_t)nin + 1) * sizeof *ops);
  memcpy(ops, tl_node_inputs(h, &x), (size_t)nin * sizeof *ops);
  bool any = false;
  int rc = 0;
  for (int r = 0; r < nres && !rc; r++) {
    cts[r] = -1;
    rc = result_type(h, &x, r, &rt[r], err, n);
  }
  for (int32_t j = id; j < nfwd && !rc; j++)
    if (j == id || tl_control_same_run(h, id, j)) {
      int r = h->nodes[j].attrs.out;
      if (ct[j] < 0) continue;
      tl_type jt = h->nodes[j].type;
      cts[r] = gr_broadcast(h, ct[j], &jt, err, n);
      if (cts[r] < 0) rc = -1;
      any = true;
    }
  /* a float result without a cotangent gets zeros */
  for (int r = 0; r < nres && !rc && any; r++)
    if (cts[r] < 0 && is_float_type(&rt[r]) && (cts[r] = fill_zeros(h, &rt[r], err, n)) < 0) rc = -1;
  tl_fns *t = h->fns;
  int32_t *args = tl_xcalloc((size_t)nin + (size_t)nres * 4 + 8, sizeof *args);
  tl_attrs a;
  tl_attrs_init(&a);
  if (!rc && any && (x.op == TL_OP_CALL || x.op == TL_OP_COND)) {
    int first = x.op == TL_OP_COND; /* the condition carries no gradient */
    int32_t v0 = fn_vjp(t, rs, x.attrs.fn[0], err, n), v1 = -2;
    if (v0 >= 0 && x.op == TL_OP_COND) v1 = fn_vjp(t, rs, x.attrs.fn[1], err, n);
    if (v0 == -1 || v1 == -1) rc = -1;
    const tl_graph *f = t->fn[x.attrs.fn[0]];
    if (!rc && v0 >= 0) {
      int na = 0;
      for (int k = 0; k < nin; k++) args[na++] = ops[k];
      for (int r = 0; r < nres; r++)
        if (is_float_type(&rt[r])) args[na++] = cts[r];
      if (x.op == TL_OP_CALL) {
        a.present = TL_A_FN;
        a.fn[0] = v0;
      } else {
        a.present = TL_A_THEN | TL_A_ELSE;
        a.fn[0] = v0;
        a.fn[1] = v1;
      }
      int w = 0;
      for (int k = first; k < nin && !rc; k++) {
        if (!is_float_type(&f->nodes[f->inputs[k - first]].type)) continue;
        a.out = w++;
        int32_t d = add_ctl(h, x.op, &a, args, na, err, n);
        rc = d < 0 ? -1 : give(h, id, k, d, dep, ct, err, n);
      }
    }
  } else if (!rc && any && x.op == TL_OP_SCAN) {
    int k = (int)x.attrs.carry, m = (x.attrs.present & TL_A_CONSTS) ? (int)x.attrs.consts : 0, nx = nin - k - m;
    int32_t fi = x.attrs.fn[1];
    /* a scan an earlier sweep made record its trace runs f.trace: its own
     * function is f */
    const char *fname = t->fn[fi]->name;
    size_t fl = strlen(fname);
    if (fl > 6 && !strcmp(fname + fl - 6, ".trace")) {
      char base[256];
      snprintf(base, sizeof base, "%.*s", (int)(fl - 6), fname);
      if (find_fn(t, base) >= 0) fi = find_fn(t, base);
    }
    const tl_graph *f = t->fn[fi];
    int nout = f->noutputs;
    nres = nout; /* f.trace's extra results (the trace) have no cotangent */
    int32_t vi = fn_vjp(t, rs, fi, err, n);
    if (vi == -1) rc = -1;
    if (!rc && vi >= 0) {
      /* the recorded trace: each step's input carries, stacked. The forward
       * scan itself becomes a run of f.trace (the same results first), so
       * the forward pass runs once, not again for the trace */
      resid res;
      resid_find(&res, t->fn[vi], f->ninputs, k, m);
      int32_t ti = fn_trace(t, fi, k, &res, err, n);
      bool *want_dx = tl_xcalloc((size_t)nx + 1, sizeof *want_dx);
      for (int j = 0; j < nx; j++) want_dx[j] = dep[ops[k + m + j]] && is_float_type(&h->nodes[ops[k + m + j]].type);
      int32_t ri = ti < 0 ? -1 : fn_rev(t, fi, vi, k, m, &res, want_dx, err, n);
      int nresid = res.nres;
      resid_free(&res);
      if (ri < 0) rc = -1;
      args = tl_xrealloc(args, ((size_t)nin * 2 + (size_t)nres + (size_t)nresid + 8) * sizeof *args);
      for (int32_t j = nfwd - 1; j >= id && !rc; j--) /* id last: the test compares with it */
        if (j == id || tl_control_same_run(h, id, j)) h->nodes[j].attrs.fn[1] = ti;
      int32_t *stacked = tl_xcalloc((size_t)k + (size_t)nresid + 1, sizeof *stacked);
      tl_attrs ta = x.attrs;
      ta.fn[1] = ti;
      for (int i = 0; i < k + nresid && !rc; i++) { /* the input carries, then the residuals */
        ta.out = nout + i;
        if ((stacked[i] = add_ctl(h, TL_OP_SCAN, &ta, ops, nin, err, n)) < 0) rc = -1;
      }
      /* the reverse scan: carries the float carries' cotangents and the
       * float consts' gradient sums (from zero); its consts: the forward
       * ones; its sequences: the trace, the xs and the ys' cotangents,
       * reversed */
      int na = 0, ncar = 0;
      for (int i = 0; i < k; i++)
        if (is_float_type(&rt[i])) args[na++] = cts[i], ncar++;
      for (int i = k; i < k + m && !rc; i++) {
        tl_type ct_t = h->nodes[ops[i]].type;
        if (!is_float_type(&ct_t)) continue;
        if ((args[na++] = fill_zeros(h, &ct_t, err, n)) < 0) rc = -1;
        ncar++;
      }
      for (int i = k; i < k + m; i++) args[na++] = ops[i];
      for (int i = 0; i < k && !rc; i++)
        if ((args[na++] = reversed(h, stacked[i], err, n)) < 0) rc = -1;
      for (int j = 0; j < nx && !rc; j++)
        if ((args[na++] = reversed(h, ops[k + m + j], err, n)) < 0) rc = -1;
      for (int q = k; q < nres && !rc; q++)
        if (is_float_type(&rt[q]) && (args[na++] = reversed(h, cts[q], err, n)) < 0) rc = -1;
      for (int j = 0; j < nresid && !rc; j++)
        if ((args[na++] = reversed(h, stacked[k + j], err, n)) < 0) rc = -1;
      tl_attrs_init(&a);
      a.present = TL_A_BODY | TL_A_CARRY | (m ? TL_A_CONSTS : 0);
      a.fn[1] = ri;
      a.carry = ncar;
      a.consts = m;
      int w = 0;
      for (int i = 0; i < k + m && !rc; i++) { /* the carries' cotangents, the consts' gradients */
        if (!is_float_type(&h->nodes[ops[i]].type)) continue;
        a.out = w++;
        int32_t d = add_ctl(h, TL_OP_SCAN, &a, args, na, err, n);
        rc = d < 0 ? -1 : give(h, id, i, d, dep, ct, err, n);
      }
      for (int j = 0; j < nx && !rc; j++) {
        if (!is_float_type(&f->nodes[f->inputs[k + m + j]].type) || !want_dx[j]) continue;
        a.out = w++;
        int32_t d = add_ctl(h, TL_OP_SCAN, &a, args, na, err, n);
        int32_t dr = d < 0 ? -1 : reversed(h, d, err, n);
        rc = dr < 0 ? -1 : give(h, id, k + m + j, dr, dep, ct, err, n);
      }
      tl_free(stacked);
      tl_free(want_dx);
    }
  } else if (!rc && any) {
    rc = loop_vjp(h, rs, id, &x, ops, cts, dep, ct, err, n);
  }
  tl_free(args);
  tl_free(cts);
  tl_free(rt);
  tl_free(ops);
  return rc;
}

/* One reverse sweep over h's forward nodes [0, nfwd): ct[id] holds the
 * seeds on entry and every cotangent on exit (-1: none). dep[id]: the
 * node depends on a differentiated input. */
static int sweep(tl_graph *h, const gr_rules *rs, int32_t nfwd, const bool *dep, int32_t *ct, char *err, size_t n) {
  char e2[768];
  for (int32_t id = nfwd - 1; id >= 0; id--) {
    if (tl_ops[h->nodes[id].op].kind == TL_KIND_CONTROL) {
      /* one run's results are handled together, at its first node */
      bool first = dep[id];
      for (int32_t j = 0; j < id && first; j++) first = !tl_control_same_run(h, j, id);
      if (first && control_vjp(h, rs, id, nfwd, dep, ct, err, n)) return -1;
      continue;
    }
    if (ct[id] < 0) continue;
    const tl_node *x = &h->nodes[id];
    int op = x->op, nin = x->ninputs;
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
/* A copy of table t whose functions are its own (each copied). */
static tl_fns *copy_table(const tl_fns *t) {
  tl_fns *c = tl_fns_new();
  for (int i = 0; i < t->n; i++) tl_fns_add(c, tl_graph_copy(t->fn[i], NULL));
  return c;
}

static tl_graph *reverse(const tl_graph *g, const gr_rules *rs, gr_mode mode, bool with_outputs, const sel *s,
                         int32_t *ct_in, bool own_table, char *err, size_t n) {
  tl_buf nm = {0};
  tl_buf_printf(&nm, "%s_%s", g->name, mode == GR_VJP ? "vjp" : mode == GR_JVP ? "jvp" : "grad");
  tl_graph *h = copy_nodes(g, nm.s);
  tl_free(nm.s);
  if (own_table && g->fns) { /* the gradient functions go into a table of its own */
    tl_fns *t = copy_table(g->fns);
    tl_graph_set_fns(h, t);
    tl_fns_release(t);
  }
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

/* Whether function fb is fa's counting copy (fn_count): named after it
 * with suffix ("go", "go.count") and giving fa's results from fa's
 * parameters, its extra parameter last. */
static bool counts(const tl_fns *t, int32_t fa, int32_t fb, const char *suffix) {
  const tl_graph *a = t->fn[fa], *b = t->fn[fb];
  size_t la = strlen(a->name);
  if (strncmp(a->name, b->name, la) || strcmp(b->name + la, suffix) || b->ninputs != a->ninputs + 1 ||
      b->noutputs < a->noutputs)
    return false;
  tl_graph head = *b;
  head.ninputs = a->ninputs;
  head.noutputs = a->noutputs;
  return tl_graph_equal(a, &head);
}

/* Whether node id is an i64 scalar fill of 0 (a count's start). */
static bool zero_count(const tl_graph *h, int32_t id) {
  const tl_node *z = &h->nodes[id];
  return z->op == TL_OP_FILL && z->type.dtype == TL_I64 && z->type.rank == 0 && z->attrs.is_int && z->attrs.i == 0;
}

/* After the sweeps, a forward loop whose gradient counted its trips takes
 * its results from the counting loop (loop_vjp: the same loop with the
 * count as its last state), so the loop runs once for its results and its
 * count; later counts of the same loop (another output's sweep) become
 * that run too. The redirected nodes refer to later ones: compact orders
 * the result by operands. Loops are bucketed by body function, and the
 * cheap checks (operands, :max) come before the functions' comparison:
 * linear in the loops for a chain of thousands of them. */
static void share_counted_loops(tl_graph *h, int32_t nfwd) {
  const tl_fns *t = h->fns;
  if (!t || !t->n) return;
  int32_t nn = h->nnodes;
  int32_t *first = tl_xmalloc(((size_t)t->n + 1) * sizeof *first); /* per body: its loops, ascending */
  int32_t *next = tl_xmalloc(((size_t)nn + 1) * sizeof *next);
  for (int f = 0; f < t->n; f++) first[f] = -1;
  for (int32_t j = nn - 1; j >= 0; j--)
    if (h->nodes[j].op == TL_OP_LOOP) {
      next[j] = first[h->nodes[j].attrs.fn[1]];
      first[h->nodes[j].attrs.fn[1]] = j;
    }
  for (int32_t c = nfwd; c < nn; c++) {
    const tl_node *y = &h->nodes[c];
    if (y->op != TL_OP_LOOP || y->ninputs < 1 || !zero_count(h, tl_node_inputs(h, y)[y->ninputs - 1])) continue;
    const char *bn = t->fn[y->attrs.fn[1]]->name;
    size_t bl = strlen(bn), sl = strlen(".count_body");
    if (bl <= sl || strcmp(bn + bl - sl, ".count_body")) continue;
    int32_t base = tl_fns_find(t, bn, bl - sl);
    bool until = (y->attrs.present & TL_A_UNTIL) != 0;
    const int32_t *yi = tl_node_inputs(h, y);
    /* an earlier count of the same loop: this one runs as it */
    bool merged = false;
    for (int32_t j = first[y->attrs.fn[1]]; j >= 0 && j < c && !merged; j = next[j]) {
      const tl_node *x = &h->nodes[j];
      if (j < nfwd || x->ninputs != y->ninputs || x->inputs == y->inputs || x->attrs.trips != y->attrs.trips ||
          memcmp(x->attrs.fn, y->attrs.fn, sizeof x->attrs.fn) ||
          memcmp(tl_node_inputs(h, x), yi, ((size_t)y->ninputs - 1) * sizeof *yi) ||
          !zero_count(h, tl_node_inputs(h, x)[x->ninputs - 1]))
        continue;
      h->nodes[c].inputs = x->inputs;
      merged = true;
    }
    if (merged || base < 0) continue;
    /* the forward loop it counts: its nodes become results of this run */
    for (int32_t j = first[base]; j >= 0 && j < nfwd; j = next[j]) {
      tl_node *x = &h->nodes[j];
      if (x->op != TL_OP_LOOP || x->attrs.fn[1] != base || x->ninputs + 1 != y->ninputs ||
          x->attrs.trips != y->attrs.trips || until != ((x->attrs.present & TL_A_UNTIL) != 0) ||
          memcmp(tl_node_inputs(h, x), yi, (size_t)x->ninputs * sizeof *yi) ||
          !counts(t, x->attrs.fn[0], y->attrs.fn[0], ".count") || !counts(t, base, y->attrs.fn[1], ".count_body") ||
          (until && !counts(t, x->attrs.fn[2], y->attrs.fn[2], ".count")))
        continue;
      int out = x->attrs.out;
      x->op = y->op;
      x->ninputs = y->ninputs;
      x->inputs = y->inputs;
      x->attrs = y->attrs;
      x->attrs.out = out;
      if (out) x->attrs.present |= TL_A_OUT;
      else x->attrs.present &= ~(unsigned)TL_A_OUT;
    }
  }
  tl_free(first);
  tl_free(next);
}

/* Forward mode: the VJP v = J^T c of g, then one reverse sweep of
 * S = sum_w sum(v_w * t_w) with respect to the cotangent inputs c_o, whose
 * cotangents are (J t)_o. The result must not use the c_o any more (the
 * VJP is linear in them); it is checked. */
static tl_graph *forward(const tl_graph *g, const gr_rules *rs, const gr_params *p, const sel *s, bool own_table,
                         char *err, size_t n) {
  int32_t *ct_in = tl_xcalloc((size_t)s->nof + 1, sizeof *ct_in);
  tl_graph *v = reverse(g, rs, GR_JVP, false, s, ct_in, own_table, err, n);
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
    /* Control flow's VJP functions take the cotangents as parameters, so
     * the sweep's result still passes them to calls whose results do not
     * depend on them (J t is linear in t alone): they become zeros there.
     * A graph without control flow keeps the check below (an internal
     * error if a cotangent is still read). */
    for (int k = 0; k < s->nof && !rc && tl_graph_has_control(g); k++) {
      int32_t z = fill_zeros(v, &v->nodes[ct_in[k]].type, err, n);
      if (z < 0) {
        rc = -1;
        break;
      }
      tl_node *x = &v->nodes[ct_in[k]]; /* the input becomes those zeros: forward references, ordered by compact */
      x->op = v->nodes[z].op;
      x->ninputs = v->nodes[z].ninputs;
      x->inputs = v->nodes[z].inputs;
      x->attrs = v->nodes[z].attrs;
    }
    share_counted_loops(v, g->nnodes);
    c = compact(v, g, drop);
    v = NULL;
    tl_free(drop);
    for (int i = 0; c && i < c->ninputs; i++)
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
  return transform_in(g, rs, p, true, err, n);
}

/* own_table: the result gets its own copy of g's function table (the
 * public entry); else it shares g's, which is where the gradient
 * functions of g's control nodes go (g is a function of that table). */
static tl_graph *transform_in(const tl_graph *g, const gr_rules *rs, const gr_params *p, bool own_table, char *err,
                              size_t n) {
  sel s;
  if (select_io(g, p, &s, err, n)) {
    sel_free(&s);
    return NULL;
  }
  if (p->mode == GR_JVP) {
    tl_graph *f = forward(g, rs, p, &s, own_table, err, n);
    sel_free(&s);
    return f;
  }
  int32_t *ct_in = tl_xcalloc((size_t)s.nof + 1, sizeof *ct_in);
  tl_graph *h = reverse(g, rs, p->mode, p->with_outputs, &s, ct_in, own_table, err, n);
  tl_free(ct_in);
  sel_free(&s);
  if (!h) return NULL;
  share_counted_loops(h, g->nnodes);
  return compact(h, g, NULL);
}
