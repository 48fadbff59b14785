/* staged.c - control flow between compiled straight-line programs
 * (engine/staged.h says what and why).
 *
 * Cutting a graph: a node's level is the number of control nodes on its
 * deepest path from the inputs (a control node counts itself). Segment L
 * holds the other nodes of level L; it runs after the control nodes of
 * level L and before those of level L + 1, which are the only ones that can
 * consume it. A value crosses from one step to a later one through the run's
 * value table: a segment's inputs are the values it reads that an earlier
 * step made, its outputs those a later step reads. Leaves (literals, fills,
 * constants) are copied into every segment that reads them instead. */
#include "engine/staged.h"

#include "interp/interp.h"
#include "util/util.h"

#include <stdio.h>
#include <string.h>

typedef struct fnprog {
  const tl_graph *g;
  tl_staged *s; /* the function has control flow itself */
  void *raw;    /* else the base engine's program */
} fnprog;

typedef struct fntab {
  const tl_engine *base;
  fnprog *p;
  int n;
  /* loop and scan buffers kept between runs: fresh pages cost a fault
   * each (on a VM, several microseconds), so a loop over 8 MB states that
   * allocated its double buffers per run spent most of its time in faults */
  tl_tensor **pool;
  int npool, cappool;
} fntab;

enum { POOL_MAX = 16 };

typedef struct seg {
  tl_graph *g;
  int32_t *in, *out; /* per segment input / output: the node of the staged graph */
  int nin, nout, capin, capout;
  void *prog;
} seg;

struct tl_staged {
  const tl_graph *g;
  const tl_engine *base;
  seg *segs;
  int nsegs;
  int32_t *steps; /* >= 0: segment index; < 0: control node -(id + 1) */
  int32_t *alias; /* per node: a control run whose first results are this run's, or -1 */
  int nsteps, capsteps, capsegs;
  fntab *fns;
  bool owns_fns;
};

static bool is_leaf(const tl_node *x) {
  return x->op != TL_OP_INPUT && x->ninputs == 0 && tl_ops[x->op].kind != TL_KIND_CONTROL;
}

/* A node segment L computes: its level's non-control nodes, leaves aside
 * (copied where read), except a leaf a run reads from the value table (a
 * control node's operand, a graph output): segment 0 computes that one. */
static bool member(const tl_node *x, int L, int lvl, bool tabled) {
  if (x->op == TL_OP_INPUT || tl_ops[x->op].kind == TL_KIND_CONTROL || lvl != L) return false;
  return !is_leaf(x) || tabled;
}

static void fntab_free(fntab *t) {
  if (!t) return;
  for (int i = 0; i < t->n; i++) {
    if (t->p[i].s)
      tl_staged_free(t->p[i].s);
    else if (t->p[i].raw)
      t->base->free(t->p[i].raw);
  }
  for (int i = 0; i < t->npool; i++) tl_tensor_free(t->pool[i]);
  tl_free(t->pool);
  tl_free(t->p);
  tl_free(t);
}

/* Copies node x of g into segment graph sg (operands through map). */
static int32_t copy_node(const tl_graph *g, int32_t x, tl_graph *sg, const int32_t *map, char *err, size_t n) {
  const tl_node *nd = &g->nodes[x];
  if (nd->op == TL_OP_CONST) return tl_graph_add_const(sg, tl_tensor_copy(g->lits[nd->attrs.lit]), nd->loc);
  int32_t args[TL_GRAPH_MAX_ARGS];
  for (int k = 0; k < nd->ninputs; k++) args[k] = map[tl_node_inputs(g, nd)[k]];
  return tl_graph_add(sg, nd->op, &nd->attrs, args, nd->ninputs, nd->loc, err, n);
}

/* Builds segment L's graph; false when it would have no outputs. */
static int build_segment(const tl_graph *g, int L, const int *lvl, const bool *live, const bool *used_later,
                         const bool *tabled, seg *sg, char *err, size_t n) {
  int32_t *map = tl_xmalloc(((size_t)g->nnodes + 1) * sizeof *map);
  for (int32_t i = 0; i < g->nnodes; i++) map[i] = -1;
  char name[64];
  snprintf(name, sizeof name, "%.40s.seg%d", g->name, L);
  sg->g = tl_graph_new(name);
  for (int s = 0; s < g->nsyms; s++) tl_graph_sym(sg->g, g->syms[s], strlen(g->syms[s])); /* same ids */
  int rc = 0;
  for (int32_t id = 0; id < g->nnodes && !rc; id++) {
    const tl_node *x = &g->nodes[id];
    if (!live[id] || !member(x, L, lvl[id], tabled[id])) continue;
    for (int k = 0; k < x->ninputs && !rc; k++) {
      int32_t y = tl_node_inputs(g, x)[k];
      if (map[y] >= 0) continue;
      if (is_leaf(&g->nodes[y]) && !tabled[y]) {
        if ((map[y] = copy_node(g, y, sg->g, map, err, n)) < 0) rc = -1;
        continue;
      }
      char in[32];
      snprintf(in, sizeof in, "v%d", y);
      tl_type t = g->nodes[y].type;
      t.weak = 0;
      map[y] = tl_graph_add_input(sg->g, in, &t, (tl_loc){0, 0});
      TL_GROW(sg->in, sg->nin, sg->capin);
      sg->in[sg->nin++] = y;
    }
    if (!rc && (map[id] = copy_node(g, id, sg->g, map, err, n)) < 0) rc = -1;
    if (!rc && used_later[id]) {
      char on[32];
      snprintf(on, sizeof on, "o%d", id);
      tl_graph_add_output(sg->g, on, map[id]);
      TL_GROW(sg->out, sg->nout, sg->capout);
      sg->out[sg->nout++] = id;
    }
  }
  tl_free(map);
  return rc;
}

static tl_staged *compile_with(const tl_graph *g, const tl_engine *base, const tl_engine_opts *o, fntab *fns,
                               tl_error *err);

/* Marks the functions g's control nodes run. */
static void mark_used(const tl_graph *g, bool *used) {
  for (int32_t id = 0; id < g->nnodes; id++) {
    const tl_node *x = &g->nodes[id];
    int32_t f[3];
    for (int k = tl_control_fns(x, f) - 1; k >= 0; k--) used[f[k]] = true;
  }
}

static fntab *compile_fns(const tl_graph *g, const tl_engine *base, const tl_engine_opts *o, tl_error *err) {
  fntab *t = tl_xcalloc(1, sizeof *t);
  t->base = base;
  int n = g->fns ? g->fns->n : 0;
  t->p = tl_xcalloc((size_t)n + 1, sizeof *t->p);
  /* only the functions that run: the graph's, then theirs (a function
   * calls only those before it, so one pass from the last suffices) */
  bool *used = tl_xcalloc((size_t)n + 1, sizeof *used);
  mark_used(g, used);
  for (int i = n - 1; i >= 0; i--)
    if (used[i]) mark_used(g->fns->fn[i], used);
  for (int i = 0; i < n; i++) {
    const tl_graph *f = g->fns->fn[i];
    t->p[i].g = f;
    t->n = i + 1;
    if (!used[i]) continue;
    if (tl_graph_has_control(f))
      t->p[i].s = compile_with(f, base, o, t, err);
    else
      t->p[i].raw = base->compile(f, o, err);
    t->n = i + 1;
    if (!t->p[i].s && !t->p[i].raw) {
      char m[sizeof err->msg];
      snprintf(m, sizeof m, "%s", err->msg);
      tl_fail(err, err->status ? err->status : TL_BAD_INPUT, "in function '%s': %s", f->name, m);
      fntab_free(t);
      tl_free(used);
      return NULL;
    }
  }
  tl_free(used);
  return t;
}

static tl_staged *compile_with(const tl_graph *g, const tl_engine *base, const tl_engine_opts *o, fntab *fns,
                               tl_error *err) {
  tl_staged *s = tl_xcalloc(1, sizeof *s);
  s->g = g;
  s->base = base;
  s->fns = fns;
  int32_t nn = g->nnodes;
  bool *live = tl_xcalloc((size_t)nn + 1, sizeof *live);
  bool *used_later = tl_xcalloc((size_t)nn + 1, sizeof *used_later);
  bool *tabled = tl_xcalloc((size_t)nn + 1, sizeof *tabled);
  int *lvl = tl_xcalloc((size_t)nn + 1, sizeof *lvl);
  s->alias = tl_xmalloc(((size_t)nn + 1) * sizeof *s->alias);
  for (int32_t i = 0; i < nn; i++) s->alias[i] = -1;
  for (int i = 0; i < g->noutputs; i++)
    live[g->outputs[i].node] = used_later[g->outputs[i].node] = tabled[g->outputs[i].node] = true;
  for (int32_t id = nn - 1; id >= 0; id--)
    if (live[id])
      for (int k = 0; k < g->nodes[id].ninputs; k++) live[tl_node_inputs(g, &g->nodes[id])[k]] = true;
  int top = 0;
  for (int32_t id = 0; id < nn; id++) {
    const tl_node *x = &g->nodes[id];
    bool ctl = tl_ops[x->op].kind == TL_KIND_CONTROL;
    for (int k = 0; k < x->ninputs; k++) {
      int32_t y = tl_node_inputs(g, x)[k];
      if (lvl[y] > lvl[id]) lvl[id] = lvl[y];
    }
    if (ctl) lvl[id]++;
    if (live[id] && lvl[id] > top) top = lvl[id];
    /* what a later step reads: a control node's operands, another level's */
    for (int k = 0; k < x->ninputs && live[id]; k++) {
      int32_t y = tl_node_inputs(g, x)[k];
      if (ctl || lvl[y] != lvl[id]) used_later[y] = true;
      if (ctl) tabled[y] = true;
    }
  }
  int rc = 0;
  char msg[1024];
  for (int L = 0; L <= top && !rc; L++) {
    if (L > 0) /* the control nodes of level L, one step per run */
      for (int32_t id = 0; id < nn; id++) {
        if (!live[id] || lvl[id] != L || tl_ops[g->nodes[id].op].kind != TL_KIND_CONTROL) continue;
        bool first = true;
        for (int32_t j = 0; j < id && first; j++) first = !(live[j] && tl_control_same_run(g, j, id));
        if (!first) continue;
        /* a run whose results another run of this level gives first is
         * not run: it takes that run's */
        for (int32_t j = 0; j < nn && s->alias[id] < 0; j++) {
          if (j == id || !live[j] || lvl[j] != L || tl_ops[g->nodes[j].op].kind != TL_KIND_CONTROL ||
              s->alias[j] >= 0 || !tl_control_prefix_run(g, id, j))
            continue;
          bool jfirst = true; /* j must be its run's first node: the one run */
          for (int32_t q = 0; q < j && jfirst; q++) jfirst = !(live[q] && tl_control_same_run(g, q, j));
          if (jfirst) s->alias[id] = j;
        }
        if (s->alias[id] >= 0) continue;
        TL_GROW(s->steps, s->nsteps, s->capsteps);
        s->steps[s->nsteps++] = -(id + 1);
      }
    seg sg;
    memset(&sg, 0, sizeof sg);
    rc = build_segment(g, L, lvl, live, used_later, tabled, &sg, msg, sizeof msg);
    if (rc) {
      tl_fail(err, TL_INTERNAL, "staging %s: %s", g->name, msg);
    } else if (sg.nout == 0) {
      tl_graph_free(sg.g);
      tl_free(sg.in);
      tl_free(sg.out);
    } else {
      sg.prog = base->compile(sg.g, o, err);
      if (!sg.prog) rc = -1;
      TL_GROW(s->segs, s->nsegs, s->capsegs);
      s->segs[s->nsegs++] = sg;
      TL_GROW(s->steps, s->nsteps, s->capsteps);
      s->steps[s->nsteps++] = s->nsegs - 1;
    }
  }
  /* a run aliased to one that is aliased in turn takes the last one's
   * (the prefix relation is transitive) */
  for (int32_t a = 0; a < nn; a++)
    for (int guard = 0; s->alias[a] >= 0 && s->alias[s->alias[a]] >= 0 && guard < nn; guard++)
      s->alias[a] = s->alias[s->alias[a]];
  tl_free(live);
  tl_free(used_later);
  tl_free(tabled);
  tl_free(lvl);
  if (rc) {
    tl_staged_free(s);
    return NULL;
  }
  return s;
}

tl_staged *tl_staged_compile(const tl_graph *g, const tl_engine *base, const tl_engine_opts *o, tl_error *err) {
  fntab *t = compile_fns(g, base, o, err);
  if (!t) return NULL;
  tl_staged *s = compile_with(g, base, o, t, err);
  if (!s) {
    fntab_free(t);
    return NULL;
  }
  s->owns_fns = true;
  return s;
}

void tl_staged_free(tl_staged *s) {
  if (!s) return;
  for (int i = 0; i < s->nsegs; i++) {
    if (s->segs[i].prog) s->base->free(s->segs[i].prog);
    tl_graph_free(s->segs[i].g);
    tl_free(s->segs[i].in);
    tl_free(s->segs[i].out);
  }
  tl_free(s->segs);
  tl_free(s->steps);
  tl_free(s->alias);
  if (s->owns_fns) fntab_free(s->fns);
  tl_free(s);
}

/* ---- running ------------------------------------------------------------- */

static int fn_run(void *ctx, int32_t fn, tl_tensor *const *in, tl_tensor **out, char *err, size_t n) {
  const fntab *t = ctx;
  const fnprog *p = &t->p[fn];
  tl_error e;
  tl_error_clear(&e);
  int rc = p->s ? tl_staged_run(p->s, in, NULL, out, &e) : t->base->run(p->raw, in, NULL, out, &e);
  if (rc) snprintf(err, n, "in function '%s': %s", p->g->name, e.msg);
  return rc;
}

static int fn_run_into(void *ctx, int32_t fn, tl_tensor *const *in, tl_tensor *const *out, char *err, size_t n) {
  const fntab *t = ctx;
  const fnprog *p = &t->p[fn];
  if (p->raw && t->base->run_into) {
    tl_error e;
    tl_error_clear(&e);
    int rc = t->base->run_into(p->raw, in, NULL, out, &e);
    if (rc) snprintf(err, n, "in function '%s': %s", p->g->name, e.msg);
    return rc;
  }
  int no = p->g->noutputs;
  tl_tensor **res = tl_xcalloc((size_t)no + 1, sizeof *res);
  int rc = fn_run(ctx, fn, in, res, err, n);
  for (int i = 0; i < no && !rc; i++) {
    size_t sz = (size_t)res[i]->numel * tl_dtype_size((tl_dtype)res[i]->dtype);
    if (res[i]->numel != out[i]->numel || res[i]->dtype != out[i]->dtype)
      rc = -1, snprintf(err, n, "in function '%s': output %d does not fit its buffer", p->g->name, i);
    else if (sz)
      memcpy(out[i]->data, res[i]->data, sz);
  }
  for (int i = 0; i < no; i++) tl_tensor_free(res[i]);
  tl_free(res);
  return rc;
}

static tl_tensor *pool_get(void *ctx, const tl_tensor *like, char *err, size_t n) {
  fntab *t = ctx;
  for (int i = t->npool - 1; i >= 0; i--) {
    tl_tensor *x = t->pool[i];
    if (x->dtype != like->dtype || x->numel != like->numel) continue;
    t->pool[i] = t->pool[--t->npool];
    x->rank = like->rank;
    memcpy(x->dims, like->dims, sizeof x->dims);
    return x;
  }
  return tl_tensor_new((tl_dtype)like->dtype, like->rank, like->dims, err, n);
}

static void pool_put(void *ctx, tl_tensor *x) {
  fntab *t = ctx;
  if (t->npool == POOL_MAX || !x->owns) {
    tl_tensor_free(x);
    return;
  }
  TL_GROW(t->pool, t->npool, t->cappool);
  t->pool[t->npool++] = x;
}

int tl_staged_run(tl_staged *s, tl_tensor *const *inputs, const int64_t *sym_values, tl_tensor **outputs,
                  tl_error *err) {
  const tl_graph *g = s->g;
  int32_t nn = g->nnodes;
  tl_tensor **vals = tl_xcalloc((size_t)nn + 1, sizeof *vals);
  bool *own = tl_xcalloc((size_t)nn + 1, sizeof *own);
  int64_t *syms = tl_xmalloc(((size_t)g->nsyms + 1) * sizeof *syms);
  for (int i = 0; i < g->noutputs; i++) outputs[i] = NULL;
  for (int k = 0; k < g->nsyms; k++) syms[k] = sym_values ? sym_values[k] : -1;
  int rc = tl_bind_inputs(g, inputs, syms, TL_EMSG(err)) ? tl_fail_kind(err, TL_BAD_INPUT) : 0;
  for (int i = 0; i < g->ninputs; i++) vals[g->inputs[i]] = inputs[i];
  tl_ctl_runner r = {s->fns, fn_run, fn_run_into, pool_get, pool_put, syms};
  for (int st = 0; st < s->nsteps && !rc; st++) {
    if (s->steps[st] >= 0) {
      const seg *sg = &s->segs[s->steps[st]];
      tl_tensor **in = tl_xcalloc((size_t)sg->nin + 1, sizeof *in);
      tl_tensor **out = tl_xcalloc((size_t)sg->nout + 1, sizeof *out);
      for (int k = 0; k < sg->nin; k++) in[k] = vals[sg->in[k]];
      rc = s->base->run(sg->prog, in, syms, out, err);
      for (int k = 0; k < sg->nout && !rc; k++) {
        vals[sg->out[k]] = out[k];
        own[sg->out[k]] = true;
      }
      tl_free(in);
      tl_free(out);
      continue;
    }
    int32_t id = -s->steps[st] - 1;
    const tl_node *x = &g->nodes[id];
    int nres = tl_control_nresults(g, x);
    tl_tensor **args = tl_xcalloc((size_t)x->ninputs + 1, sizeof *args);
    tl_tensor **res = tl_xcalloc((size_t)nres + 1, sizeof *res);
    for (int k = 0; k < x->ninputs; k++) args[k] = vals[tl_node_inputs(g, x)[k]];
    rc = tl_control_run(g, x, args, res, &r, TL_EMSG(err)) ? tl_fail_kind(err, TL_BAD_INPUT) : 0;
    /* a loop with :stack binds its :trips symbol for the segments after it */
    if (!rc && tl_control_bind_trips(g, x, res, syms, TL_EMSG(err))) rc = tl_fail_kind(err, TL_BAD_INPUT);
    /* the runs that take this one's first results get copies */
    for (int32_t a = 0; a < nn && !rc; a++) {
      if (s->alias[a] != id) continue;
      for (int32_t j = a; j < nn; j++)
        if (j == a || tl_control_same_run(g, a, j)) {
          vals[j] = tl_tensor_copy(res[g->nodes[j].attrs.out]);
          own[j] = true;
        }
    }
    for (int32_t j = id; j < nn && !rc; j++)
      if (j == id || tl_control_same_run(g, id, j)) {
        int o = g->nodes[j].attrs.out;
        vals[j] = res[o];
        own[j] = res[o] != NULL;
        res[o] = NULL;
      }
    for (int i = 0; i < nres; i++) tl_tensor_free(res[i]);
    tl_free(args);
    tl_free(res);
  }
  for (int i = 0; i < g->noutputs && !rc; i++) {
    int32_t x = g->outputs[i].node;
    bool again = false; /* the same node is an earlier output too */
    for (int j = 0; j < i && !again; j++) again = g->outputs[j].node == x;
    if (own[x] && !again) {
      outputs[i] = vals[x];
      own[x] = false;
    } else {
      outputs[i] = tl_tensor_copy(vals[x]);
    }
  }
  if (rc)
    for (int i = 0; i < g->noutputs; i++) {
      tl_tensor_free(outputs[i]);
      outputs[i] = NULL;
    }
  /* a control run's results go back to the pool: the next run's scans
   * and loops ask for the same sizes */
  for (int32_t id = 0; id < nn; id++)
    if (own[id] && tl_ops[g->nodes[id].op].kind == TL_KIND_CONTROL) pool_put(s->fns, vals[id]);
    else if (own[id]) tl_tensor_free(vals[id]);
  tl_free(vals);
  tl_free(own);
  tl_free(syms);
  return rc;
}

char *tl_staged_describe(const tl_staged *s) {
  tl_buf b = {0};
  tl_buf_printf(&b, "{\"engine\": \"%s\", \"staged\": true, \"segments\": [", s->base->name);
  for (int i = 0; i < s->nsegs; i++) {
    char *d = s->base->describe(s->segs[i].prog);
    tl_buf_printf(&b, "%s%s", i ? ", " : "", d);
    tl_free(d);
  }
  tl_buf_printf(&b, "], \"functions\": {");
  for (int i = 0, k = 0; s->owns_fns && i < s->fns->n; i++) {
    const fnprog *p = &s->fns->p[i];
    if (!p->s && !p->raw) continue; /* not run: inlined, or not called */
    char *d = p->s ? tl_staged_describe(p->s) : s->base->describe(p->raw);
    tl_buf_printf(&b, "%s\"%s\": %s", k++ ? ", " : "", p->g->name, d);
    tl_free(d);
  }
  tl_buf_printf(&b, "}}");
  return b.s;
}
