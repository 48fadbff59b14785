/* plan.c - kernel formation: which nodes get a buffer, which are computed
 * inline inside a consumer's loop, and the ordered list of kernels; then
 * the in-place pass over that schedule.
 *
 * Nodes are visited in id order (topological). A node is
 *   MAT    it has a buffer: inputs, constants, reductions, softmax, matmul,
 *          concat, and the fusible nodes that the fusion rules do not fuse;
 *   ALIAS  reshape of a materialised value: the same contiguous memory seen
 *          with another shape;
 *   INLINE computed at each use inside the consumer's loop nest.
 * The fusible nodes are the elementwise ops, literals/fills and the
 * index-map shape ops (transpose, broadcast_to, expand_dims, squeeze, slice,
 * take). Which of them are fused is decided by the fuse rules (by default
 * rules/fusion.rw): a node stays INLINE when, for every use, a rule allows
 * its op into the consumer's op. Two kinds of use need no rule: operands
 * the lowering can only read from memory (matmul's, reshape's, take's
 * indices and a flat take's data), which the consumer materialises itself
 * whatever the rules say, and the operand of zeros_like/ones_like, of which
 * only the shape is read. A program output is a use whose consumer is
 * `output`.
 * A call, cond, loop or scan is one kernel (BE_K_CONTROL) per run; the
 * functions it runs are planned once each, in the root plan's table (see
 * "control flow" below).
 * Invariant: a kernel only reads buffers written by earlier kernels.
 *
 * In-place (the op table's INPLACE facts, and rules/inplace.rw): an
 * elementwise kernel writing a temporary (or a softmax row kernel, under a
 * :rowwise claim) may write over an operand's buffer instead, when the
 * claims allow it for
 * every op between the kernel's root and each read of that buffer and the
 * write is legal (see inplace()).
 *
 * Whatever the rules say, a fused expression has at most BE_FUSE_MAX_OPS
 * ops (be_internal.h): a longer one is cut by giving a node its own buffer.
 * Every walk over a kernel's expression (here, in lower*.c and in the cost
 * model) recurses once per level of it, so that bound is their depth. */
#include "backend/be_internal.h"
#include "egraph/rules.h"
#include "opt/opt.h"
#include "opt/tensor.h"
#include "util/util.h"

#include <pthread.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <xxhash.h>

static int add_buf(be_plan *p, int kind, int32_t node, int index) {
  return be_plan_add_buf(p, kind, node, index, &p->g->nodes[node].type);
}

int be_plan_add_buf(be_plan *p, int kind, int32_t node, int index, const tl_type *t) {
  if (p->nbufs == p->capbufs) {
    p->capbufs = p->capbufs ? 2 * p->capbufs : 16;
    p->bufs = tl_xrealloc(p->bufs, (size_t)p->capbufs * sizeof *p->bufs);
  }
  be_buf *b = &p->bufs[p->nbufs];
  memset(b, 0, sizeof *b);
  b->kind = kind;
  b->index = index;
  b->node = node;
  b->dtype = t->dtype;
  b->rank = t->rank;
  memcpy(b->dims, t->dims, sizeof b->dims);
  return p->nbufs++;
}

/* Buffers an inline expression rooted at id reads (recursion depth: the
 * fused expression's, at most BE_FUSE_MAX_OPS; so for computes and
 * reads_in_place). */
static void add_read(be_kern *k, int32_t b);

static void collect(const be_plan *p, int32_t id, be_kern *k) {
  const tl_node *n = &p->g->nodes[id];
  if (p->state[id] == BE_S_MAT || p->state[id] == BE_S_ALIAS) {
    add_read(k, p->buf_of[id]);
    return;
  }
  for (int i = 0; i < n->ninputs; i++) collect(p, tl_node_inputs(p->g, n)[i], k);
}

static be_kern *add_kern(be_plan *p, int kind, int32_t node, int32_t out) {
  if (p->nks == p->capks) {
    p->capks = p->capks ? 2 * p->capks : 16;
    p->ks = tl_xrealloc(p->ks, (size_t)p->capks * sizeof *p->ks);
  }
  be_kern *k = &p->ks[p->nks++];
  memset(k, 0, sizeof *k);
  k->kind = kind;
  k->node = node;
  k->out = out;
  k->place = -1;
  const tl_node *n = &p->g->nodes[node];
  if (kind == BE_K_EW) collect(p, node, k);
  else
    for (int i = 0; i < n->ninputs; i++) collect(p, tl_node_inputs(p->g, n)[i], k);
  return k;
}

/* Gives an inline node its own buffer, computed by an elementwise kernel. */
static void materialise(be_plan *p, int32_t id) {
  if (p->state[id] == BE_S_MAT || p->state[id] == BE_S_ALIAS) return;
  int b = add_buf(p, BE_BUF_TEMP, id, -1);
  add_kern(p, BE_K_EW, id, b);
  p->state[id] = BE_S_MAT;
  p->buf_of[id] = b;
}

static bool computes(const be_plan *p, int32_t id) {
  const tl_node *n = &p->g->nodes[id];
  if (p->state[id] != BE_S_INLINE) return false;
  if (tl_ops[n->op].kind == TL_KIND_ELEMWISE) return true;
  for (int i = 0; i < n->ninputs; i++)
    if (computes(p, tl_node_inputs(p->g, n)[i])) return true;
  return false;
}

/* A value read by a fused expression is as large as the expression's
 * root (t) unless it broadcasts along some dim: a lower rank, or a 1 where
 * the root's dim (aligned from the right) is not 1. */
static bool full_size(const tl_type *v, const tl_type *t) {
  if (v->rank < t->rank) return false;
  for (int i = 0; i < v->rank; i++) {
    int ti = i + t->rank - v->rank;
    if (v->dims[i] == 1 && ti >= 0 && t->dims[ti] != 1) return false;
  }
  return true;
}

/* The fuse condition (light) of the INLINE node id: its fused expression
 * calls no math function, has no op the op table prices above LIGHT_NS
 * per element (floor_divide and remainder are; add, mul, div, sqrt are
 * not), and reads at most one full-size value (*nfull counts them;
 * recursion: the expression's depth). A buffer element written and read
 * back costs ~0.4 ns at one thread's bandwidth (8 bytes at ~20 GB/s). */
#define LIGHT_NS 0.2
static bool light_walk(const be_plan *p, int32_t id, const tl_type *t, int *nfull) {
  const tl_node *n = &p->g->nodes[id];
  if (p->state[id] != BE_S_INLINE) return !full_size(&n->type, t) || ++*nfull <= 1;
  if (tl_ops[n->op].math || tl_ops[n->op].vmath || tl_ops[n->op].elem_ns > LIGHT_NS) return false;
  if (n->op == TL_OP_TAKE) return false; /* an index check besides the read */
  for (int i = 0; i < n->ninputs; i++)
    if (!light_walk(p, tl_node_inputs(p->g, n)[i], t, nfull)) return false;
  return true;
}

static bool light(const be_plan *p, int32_t id) {
  int nfull = 0;
  return light_walk(p, id, &p->g->nodes[id].type, &nfull);
}

/* ---- the rules ------------------------------------------------------------ */

/* Reads one .rw file into rs; 0, or -1 with its diagnostics in err. */
static int load_rw(eg_rules *rs, const char *path, char *err, size_t n) {
  tl_diag d = {0};
  int rc = eg_rules_load_file(rs, path, &d) ? -1 : 0;
  if (rc) snprintf(err, n, "backend: rule file errors:\n%s", d.nerrors ? tl_diag_text(&d) : path);
  tl_diag_free(&d);
  return rc;
}

static int load_fusion(be_rules *r, const char *path, char *err, size_t n) {
  tn_ctx *c = tn_ctx_new();
  eg_rules *rs = eg_rules_new(&c->lang, c->conds);
  int rc = load_rw(rs, path, err, n);
  if (!rc) {
    r->fuse = tl_xcalloc((size_t)rs->nfuses + 1, sizeof *r->fuse);
    for (int i = 0; i < rs->nfuses; i++) {
      const eg_fuse *f = &rs->fuses[i];
      be_fuse *b = &r->fuse[r->nfuse++];
      memcpy(b->producer, f->producer, TL_OP_COUNT + 1);
      memcpy(b->consumer, f->consumer, TL_OP_COUNT + 1);
      for (int k = 0; k < f->nconds; k++) {
        const eg_fuse_cond *fc = &f->conds[k];
        if (fc->kind == EG_FUSE_SINGLE_USE) b->single_use = true;
        else if (fc->kind == EG_FUSE_CHEAP) b->cheap = true;
        else if (fc->kind == EG_FUSE_LIGHT) b->light = true;
        else if (!b->max_ops || fc->arg < b->max_ops) b->max_ops = fc->arg;
      }
    }
  }
  eg_rules_free(rs);
  tn_ctx_free(c);
  return rc;
}

/* In-place rules are only sound for elementwise ops (each output element
 * reads each operand at its own index), and :rowwise ones for the ops whose
 * kernel is a row kernel that reads each element of a row before it writes
 * it (softmax, log_softmax: lw_k_softmax); any other op is refused. */
static int load_inplace(be_rules *r, const char *path, char *err, size_t n) {
  tn_ctx *c = tn_ctx_new();
  eg_rules *rs = eg_rules_new(&c->lang, c->conds);
  int rc = load_rw(rs, path, err, n);
  for (int i = 0; !rc && i < rs->ninplaces; i++) {
    const eg_inplace *ip = &rs->inplaces[i];
    bool ew = tl_ops[ip->op].kind == TL_KIND_ELEMWISE;
    if (ip->rowwise && !ew && ip->op != TL_OP_SOFTMAX && ip->op != TL_OP_LOG_SOFTMAX) {
      snprintf(err, n, "%s:%d:%d: error: in-place rule '%s': the CPU backend has no row kernel for %s "
               "(:rowwise applies to softmax and log_softmax)", ip->file, ip->line, ip->col, ip->name,
               tl_ops[ip->op].name);
      rc = -1;
      break;
    }
    if (!ip->rowwise && !ew) {
      snprintf(err, n, "%s:%d:%d: error: in-place rule '%s': %s is not an elementwise op", ip->file, ip->line,
               ip->col, ip->name, tl_ops[ip->op].name);
      rc = -1;
      break;
    }
    if (ew) r->destroys[ip->op] |= ip->destroys; /* an elementwise op is rowwise along any axis */
    else r->destroys_rows[ip->op] |= ip->destroys;
    r->ninplace_rules++;
  }
  eg_rules_free(rs);
  tn_ctx_free(c);
  return rc;
}

void be_rules_free(be_rules *r) {
  tl_free(r->fuse);
  memset(r, 0, sizeof *r);
}

/* The op table's in-place facts (ir/ops.def, INPLACE): every elementwise
 * op over each operand, softmax and log_softmax by rows. */
static void table_inplace(be_rules *r) {
  for (int op = 0; op < TL_OP_COUNT; op++) {
    uint32_t m = tl_ops[op].inplace;
    if (!m) continue;
    if (m & TL_INPLACE_ROWS) r->destroys_rows[op] |= m & ~(uint32_t)TL_INPLACE_ROWS;
    else r->destroys[op] |= m & ((1u << (tl_ops[op].arity > 0 ? tl_ops[op].arity : 1)) - 1);
    r->ninplace_rules++;
  }
}

static int rules_load(be_rules *r, const char *fusion, const char *inpl, char *err, size_t n) {
  memset(r, 0, sizeof *r);
  char path[4096];
  const char *dir = tl_rules_dir();
  if (!fusion) snprintf(path, sizeof path, "%s/fusion.rw", dir);
  if ((fusion ? *fusion : 1) && load_fusion(r, fusion ? fusion : path, err, n)) return -1;
  if (!inpl) snprintf(path, sizeof path, "%s/inplace.rw", dir);
  if (inpl ? *inpl : 1) table_inplace(r);
  if ((inpl ? *inpl : 1) && load_inplace(r, inpl ? inpl : path, err, n)) {
    be_rules_free(r);
    return -1;
  }
  return 0;
}

/* The default files are read once per process. */
static pthread_once_t default_once = PTHREAD_ONCE_INIT;
static be_rules default_rules;
static int default_rc;
static char default_err[2048];

static void default_load(void) {
  default_rc = rules_load(&default_rules, NULL, NULL, default_err, sizeof default_err);
}

const be_rules *be_rules_get(const be_options *o, be_rules *own, char *err, size_t n) {
  if (!o->fusion_rules && !o->inplace_rules) {
    pthread_once(&default_once, default_load);
    if (default_rc) {
      snprintf(err, n, "%s", default_err);
      return NULL;
    }
    return &default_rules;
  }
  return rules_load(own, o->fusion_rules, o->inplace_rules, err, n) ? NULL : own;
}

/* ---- fusion ---------------------------------------------------------- */

/* The fusion rules' view of the program: who reads each node, and the size
 * of each fused node's expression. */
typedef struct uses_csr {
  int32_t *start; /* per node: its uses are [start[id], start[id + 1]) */
  int32_t *cons;  /* consumer node, or -1 for a program output */
  int32_t *slot;  /* operand number at the consumer */
  int64_t *fops;  /* INLINE nodes: ops of the fused expression, counted as a
                     tree (a node fused into two places counts twice; loads
                     count 0), saturating; set when the node is visited */
} uses_csr;

/* Operands that the lowering reads from memory only: the consumer gives
 * them a buffer itself (materialise), so no fusion rule is asked. */
static bool needs_buffer(const tl_node *c, int slot) {
  switch (c->op) {
  case TL_OP_MATMUL: case TL_OP_RESHAPE: return true;
  case TL_OP_TAKE: return slot == 1 || !(c->attrs.present & TL_A_AXIS);
  case TL_OP_SCATTER_ADD: return slot == 1;
  default: return false;
  }
}

static void count_fused_ops(const be_plan *p, uses_csr *u, int32_t id) {
  const tl_node *n = &p->g->nodes[id];
  int64_t s = 1;
  for (int i = 0; i < n->ninputs; i++) {
    int32_t in = tl_node_inputs(p->g, n)[i];
    if (p->state[in] == BE_S_INLINE) s += u->fops[in];
    if (s > INT64_MAX / 4) s = INT64_MAX / 4;
  }
  u->fops[id] = s;
}

static bool rule_allows(const be_plan *p, const uses_csr *u, const be_fuse *f, int32_t id, int cop, bool buffered) {
  if (!f->producer[p->g->nodes[id].op] || !f->consumer[cop]) return false;
  if (f->single_use && p->uses[id] != 1) return false;
  if (f->cheap && computes(p, id)) return false;
  /* buffered: a use will give id a buffer anyway (a matmul operand): the
   * kernels that computed it inline before that would read it instead,
   * from a buffer written only later */
  if (f->light && (buffered || !light(p, id))) return false;
  return !f->max_ops || u->fops[id] <= f->max_ops;
}

/* id (just marked INLINE) may stay fused: its expression is within
 * BE_FUSE_MAX_OPS and every use is allowed by a rule. */
static bool fusible(const be_plan *p, const be_rules *r, uses_csr *u, int32_t id) {
  const tl_graph *g = p->g;
  count_fused_ops(p, u, id);
  if (u->fops[id] > BE_FUSE_MAX_OPS) return false;
  bool buffered = false;
  for (int32_t e = u->start[id]; e < u->start[id + 1]; e++)
    buffered |= u->cons[e] >= 0 && needs_buffer(&g->nodes[u->cons[e]], u->slot[e]);
  for (int32_t e = u->start[id]; e < u->start[id + 1]; e++) {
    int cop = TL_OP_COUNT; /* `output` */
    if (u->cons[e] >= 0) {
      const tl_node *c = &g->nodes[u->cons[e]];
      if (needs_buffer(c, u->slot[e]) || c->op == TL_OP_ZEROS_LIKE || c->op == TL_OP_ONES_LIKE ||
          c->op == TL_OP_DIM || c->op == TL_OP_IOTA)
        continue;
      cop = c->op;
    }
    bool ok = false;
    for (int i = 0; i < r->nfuse && !ok; i++) ok = rule_allows(p, u, &r->fuse[i], id, cop, buffered);
    if (!ok) return false;
  }
  return true;
}

static void uses_build(uses_csr *u, const tl_graph *g, const bool *live) {
  int32_t nn = g->nnodes;
  u->start = tl_xcalloc((size_t)nn + 2, sizeof *u->start);
  for (int32_t id = 0; id < nn; id++) {
    if (!live[id]) continue;
    const tl_node *x = &g->nodes[id];
    for (int k = 0; k < x->ninputs; k++) u->start[tl_node_inputs(g, x)[k] + 1]++;
  }
  for (int i = 0; i < g->noutputs; i++) u->start[g->outputs[i].node + 1]++;
  for (int32_t id = 0; id < nn; id++) u->start[id + 1] += u->start[id];
  int32_t total = u->start[nn];
  u->cons = tl_xmalloc(((size_t)total + 1) * sizeof *u->cons);
  u->slot = tl_xmalloc(((size_t)total + 1) * sizeof *u->slot);
  u->fops = tl_xcalloc((size_t)nn + 1, sizeof *u->fops);
  int32_t *fill = tl_xmalloc(((size_t)nn + 1) * sizeof *fill);
  memcpy(fill, u->start, (size_t)nn * sizeof *fill);
  for (int32_t id = 0; id < nn; id++) {
    if (!live[id]) continue;
    const tl_node *x = &g->nodes[id];
    for (int k = 0; k < x->ninputs; k++) {
      int32_t e = fill[tl_node_inputs(g, x)[k]]++;
      u->cons[e] = id;
      u->slot[e] = k;
    }
  }
  for (int i = 0; i < g->noutputs; i++) {
    int32_t e = fill[g->outputs[i].node]++;
    u->cons[e] = -1;
    u->slot[e] = 0;
  }
  tl_free(fill);
}

static void uses_free(uses_csr *u) {
  tl_free(u->start);
  tl_free(u->cons);
  tl_free(u->slot);
  tl_free(u->fops);
}

static int unsupported(const tl_graph *g, int32_t id, char *err, size_t n) {
  const tl_node *x = &g->nodes[id];
  snprintf(err, n, "backend: op %s on dtype %s is not supported", tl_ops[x->op].name,
           tl_dtype_name((tl_dtype)x->type.dtype));
  return -1;
}

static void inplace(be_plan *p, const be_rules *r, int destroy_inputs);
static void row_kernels(be_plan *p);
static int plan_build(be_plan *p, const tl_graph *g, const be_rules *rules, int destroy_inputs,
                      be_fnplans *fns, char *err, size_t n);

/* A transpose that swaps the last two dims and keeps the others. */
static bool swaps_last_two(const tl_node *n) {
  if (n->op != TL_OP_TRANSPOSE) return false;
  int r = n->type.rank;
  if (r < 2) return false;
  if (!(n->attrs.present & TL_A_PERM)) return r == 2;
  for (int i = 0; i < r; i++) {
    int q = n->attrs.perm[i] < 0 ? n->attrs.perm[i] + r : n->attrs.perm[i];
    if (q != (i < r - 2 ? i : i == r - 2 ? r - 1 : r - 2)) return false;
  }
  return true;
}

/* Every element of id's value is the same number: a fill, literal,
 * zeros_like or ones_like seen through shape ops, casts and negation
 * (each exact, so equal inputs give equal outputs). */
static bool uniform_value(const tl_graph *g, int32_t id) {
  for (;;) {
    const tl_node *n = &g->nodes[id];
    switch (n->op) {
    case TL_OP_LIT: case TL_OP_FILL: case TL_OP_ZEROS_LIKE: case TL_OP_ONES_LIKE: return true;
    case TL_OP_RESHAPE: case TL_OP_TRANSPOSE: case TL_OP_BROADCAST_TO: case TL_OP_EXPAND_DIMS:
    case TL_OP_SQUEEZE: case TL_OP_SLICE: case TL_OP_CAST: case TL_OP_NEG:
      id = tl_node_inputs(g, n)[0];
      break;
    default: return false;
    }
  }
}

/* ---- control flow --------------------------------------------------------
 * A run of a call, cond, loop or scan is one kernel (BE_K_CONTROL) however
 * many of its results the graph reads: every result gets a buffer (the
 * functions write them all), and a sibling node (another :out of the same
 * run) reads its result's buffer. A run whose functions compute another
 * run's results first (tl_control_prefix_run: a loss's scan and its
 * gradient's forward trace) is not run again: its nodes read the longer
 * run's buffers. */

/* The plan of function fi of g's table, planned on first use. */
static int fn_plan(be_plan *p, const be_rules *rules, int32_t fi, char *err, size_t n) {
  const tl_graph *f = p->g->fns->fn[fi];
  be_fnplans *t = p->fns;
  for (int i = 0; i < t->n; i++)
    if (t->g[i] == f) return t->plan[i] ? i : -1; /* NULL: being planned (no recursion in tlaloc's functions) */
  if (t->n == t->cap) {
    int cap = t->cap ? 2 * t->cap : 4;
    const tl_graph **ng = tl_xrealloc(t->g, (size_t)cap * sizeof *ng);
    t->g = ng;
    be_plan **np = tl_xrealloc(t->plan, (size_t)cap * sizeof *np);
    t->plan = np;
    t->cap = cap;
  }
  int i = t->n;
  be_plan *sp = tl_xcalloc(1, sizeof *sp);
  t->g[i] = f;
  t->plan[i] = NULL;
  t->n++;
  /* a function never writes over its parameters: they are its caller's buffers */
  if (plan_build(sp, f, rules, 0, t, err, n)) {
    be_plan_free(sp);
    tl_free(sp);
    return -1;
  }
  t->plan[i] = sp;
  return i;
}

/* The caller's dim for function dim d (a symbol: what the site binds it to). */
static int64_t site_dim(const be_site *s, int64_t d) { return d >= 0 ? d : s->symdim[tl_dim_sym_id(d)]; }

static tl_type site_type(const be_site *s, const tl_type *t) {
  tl_type r = *t;
  for (int i = 0; i < t->rank; i++) r.dims[i] = site_dim(s, t->dims[i]);
  return r;
}

/* Binds function fi's symbols to the caller's operand dims (parameter j is
 * operand first + j; a scan's sequence operands are seen one step at a
 * time, without their first dim) and gives each of its temporaries a
 * temporary of the caller's. */
static int plan_site(be_plan *p, const be_rules *rules, be_kern *k, be_site *s, int32_t fi, int first,
                     char *err, size_t n) {
  const tl_graph *g = p->g;
  const tl_node *x = &g->nodes[k->node];
  int fp = fn_plan(p, rules, fi, err, n);
  if (fp < 0) return -1;
  s->fnplan = fp;
  const be_plan *sp = p->fns->plan[fp];
  const tl_graph *f = sp->g;
  s->symdim = tl_xcalloc((size_t)f->nsyms + 1, sizeof *s->symdim);
  for (int i = 0; i < f->nsyms; i++) s->symdim[i] = TL_DIM_NONE;
  int seq = x->op == TL_OP_SCAN ? (int)(x->attrs.carry + ((x->attrs.present & TL_A_CONSTS) ? x->attrs.consts : 0))
                                : x->ninputs;
  for (int j = 0; j < f->ninputs && first + j < x->ninputs; j++) {
    const tl_type *ft = &f->nodes[f->inputs[j]].type;
    const tl_type *at = &g->nodes[tl_node_inputs(g, x)[first + j]].type;
    int shift = first + j >= seq ? 1 : 0;
    for (int d = 0; d < ft->rank && d + shift < at->rank; d++)
      if (ft->dims[d] < 0 && !tl_sym_derived(f, tl_dim_sym_id(ft->dims[d])))
        s->symdim[tl_dim_sym_id(ft->dims[d])] = at->dims[d + shift];
  }
  /* the function's derived dims as dims of the caller: typing the call
   * interned them in the caller's table already (ir/control.c), and the
   * table must not grow now (callers size symbol arrays before compiling) */
  int32_t nsyms = g->nsyms;
  if (tl_syms_map((tl_graph *)(uintptr_t)g, f, s->symdim, err, n)) return -1;
  if (g->nsyms != nsyms) {
    snprintf(err, n, "function '%s': a derived dim of its body is not a dim of the caller", f->name);
    return -1;
  }
  for (int i = 0; i < f->nsyms; i++)
    if (s->symdim[i] == TL_DIM_NONE) s->symdim[i] = 0;
  s->temp = tl_xmalloc(((size_t)sp->nbufs + 1) * sizeof *s->temp);
  for (int b = 0; b < sp->nbufs; b++) {
    s->temp[b] = -1;
    if (sp->bufs[b].kind != BE_BUF_TEMP) continue;
    tl_type t = {.dtype = sp->bufs[b].dtype, .rank = sp->bufs[b].rank};
    memcpy(t.dims, sp->bufs[b].dims, sizeof t.dims);
    t = site_type(s, &t);
    s->temp[b] = be_plan_add_buf(p, BE_BUF_TEMP, k->node, -1, &t);
  }
  return 0;
}

/* Adds buffer b to k's reads (once). */
static void add_read(be_kern *k, int32_t b) {
  for (int i = 0; i < k->nreads; i++)
    if (k->reads[i] == b) return;
  k->reads = tl_xrealloc(k->reads, (size_t)(k->nreads + 1) * sizeof *k->reads);
  k->reads[k->nreads++] = b;
}

/* The type of result r of run x. */
static int result_type(const tl_graph *g, const tl_node *x, int r, tl_type *t, char *err, size_t n) {
  tl_attrs a = x->attrs;
  a.out = r;
  if (r) a.present |= TL_A_OUT;
  else a.present &= ~(unsigned)TL_A_OUT;
  const tl_type **in = tl_xmalloc(((size_t)x->ninputs + 1) * sizeof *in);
  for (int i = 0; i < x->ninputs; i++) in[i] = &g->nodes[tl_node_inputs(g, x)[i]].type;
  int rc = tl_infer_control(g, x->op, &a, in, x->ninputs, t, err, n);
  tl_free(in);
  return rc;
}

static int plan_control(be_plan *p, const be_rules *rules, const bool *live, int32_t id, char *err, size_t n) {
  const tl_graph *g = p->g;
  const tl_node *x = &g->nodes[id];
  if (x->op == TL_OP_LOOP && (x->attrs.present & TL_A_STACK)) {
    /* the engines run these staged (engine/engine.c); an object cannot */
    snprintf(err, n, "loop: per-trip results (:stack) have a length known only when the loop has run; the "
                     "llvm engine runs such a graph staged, but one compiled program (an AOT object) cannot");
    return -1;
  }
  /* the run that computes id: an earlier kernel's, or a longer run's */
  int32_t run = id;
  for (int32_t j = 0, hops = 0; j < g->nnodes && hops < 8; j++)
    if (live[j] && tl_ops[g->nodes[j].op].kind == TL_KIND_CONTROL && !tl_control_same_run(g, run, j) &&
        tl_control_prefix_run(g, run, j)) {
      run = j;
      j = -1;
      hops++;
    }
  for (int i = 0; i < p->nks; i++) {
    const be_kern *k = &p->ks[i];
    if (k->kind == BE_K_CONTROL && (k->node == run || tl_control_same_run(g, k->node, run))) {
      int32_t b = k->ctl->res[x->attrs.out];
      p->state[id] = BE_S_MAT;
      p->buf_of[id] = b;
      return 0;
    }
  }
  const tl_node *r = &g->nodes[run];
  const int32_t *in = tl_node_inputs(g, r);
  /* operands in buffers; one computed inline elsewhere is computed into a
   * buffer of this kernel's (materialising the node itself would change
   * what kernels formed before read) */
  int32_t *opbuf = tl_xmalloc(((size_t)r->ninputs + 1) * sizeof *opbuf);
  for (int i = 0; i < r->ninputs; i++) {
    opbuf[i] = -1;
    for (int j = 0; j < i; j++)
      if (in[j] == in[i]) opbuf[i] = opbuf[j];
    if (opbuf[i] >= 0) continue;
    if (p->state[in[i]] == BE_S_MAT || p->state[in[i]] == BE_S_ALIAS) {
      opbuf[i] = p->buf_of[in[i]];
    } else {
      opbuf[i] = add_buf(p, BE_BUF_TEMP, in[i], -1);
      add_kern(p, BE_K_EW, in[i], opbuf[i]);
    }
  }
  be_kern *k = add_kern(p, BE_K_CONTROL, run, -1);
  int ki = (int)(k - p->ks);
  be_ctl *c = tl_xcalloc(1, sizeof *c);
  k->ctl = c;
  c->opbuf = opbuf;
  c->nop = r->ninputs;
  tl_free(k->reads); /* collect() saw the nodes; these are the buffers */
  k->reads = NULL;
  k->nreads = 0;
  for (int i = 0; i < r->ninputs; i++) add_read(k, opbuf[i]);
  int nres = tl_control_nresults(g, r);
  c->res = tl_xmalloc(((size_t)nres + 1) * sizeof *c->res);
  c->nres = nres;
  c->pred[0] = c->pred[1] = -1;
  for (int i = 0; i < nres; i++) {
    tl_type t;
    if (result_type(g, r, i, &t, err, n)) return -1;
    /* the buffer names the node that reads it (the outputs pass writes a
     * graph output straight into the caller's tensor) */
    int32_t holder = run;
    for (int32_t j = 0; j < g->nnodes; j++)
      if (live[j] && (j == id || tl_control_same_run(g, j, run) || tl_control_prefix_run(g, j, run)) &&
          g->nodes[j].attrs.out == i) {
        holder = j;
        break;
      }
    c->res[i] = be_plan_add_buf(p, BE_BUF_TEMP, holder, -1, &t);
  }
  k = &p->ks[ki];
  int32_t fns[3];
  c->nsite = tl_control_fns(r, fns);
  for (int i = 0; i < c->nsite; i++) {
    int first = r->op == TL_OP_COND ? 1 : 0;
    if (plan_site(p, rules, &p->ks[ki], &c->site[i], fns[i], first, err, n)) return -1;
  }
  if (r->op == TL_OP_LOOP || r->op == TL_OP_SCAN) {
    int nalt = r->op == TL_OP_LOOP ? nres : (int)r->attrs.carry;
    c->alt = tl_xmalloc(((size_t)nalt + 1) * sizeof *c->alt);
    for (int i = 0; i < nalt; i++) {
      const be_buf *rb = &p->bufs[c->res[i]];
      tl_type t = {.dtype = rb->dtype, .rank = rb->rank};
      memcpy(t.dims, rb->dims, sizeof t.dims);
      c->alt[i] = be_plan_add_buf(p, BE_BUF_TEMP, run, -1, &t);
    }
  }
  if (r->op == TL_OP_LOOP)
    for (int i = 0; i < 2; i++) {
      int si = i == 0 ? 0 : 2;
      if (si >= c->nsite) continue;
      const be_plan *sp = p->fns->plan[c->site[si].fnplan];
      const be_buf *ob = &sp->bufs[sp->out_buf[0]];
      tl_type t = {.dtype = ob->dtype, .rank = ob->rank};
      memcpy(t.dims, ob->dims, sizeof t.dims);
      t = site_type(&c->site[si], &t);
      c->pred[i] = be_plan_add_buf(p, BE_BUF_TEMP, run, -1, &t);
    }
  /* liveness: everything it writes, as reads of the kernel's */
  k = &p->ks[ki];
  for (int i = 0; i < nres; i++) add_read(k, c->res[i]);
  int nalt = r->op == TL_OP_LOOP ? nres : r->op == TL_OP_SCAN ? (int)r->attrs.carry : 0;
  for (int i = 0; i < nalt; i++) add_read(k, c->alt[i]);
  for (int i = 0; i < 2; i++)
    if (c->pred[i] >= 0) add_read(k, c->pred[i]);
  for (int i = 0; i < c->nsite; i++) {
    const be_plan *sp = p->fns->plan[c->site[i].fnplan];
    for (int b = 0; b < sp->nbufs; b++)
      if (c->site[i].temp[b] >= 0) add_read(k, c->site[i].temp[b]);
  }
  p->state[id] = BE_S_MAT;
  p->buf_of[id] = c->res[x->attrs.out];
  return 0;
}

int be_plan_build(be_plan *p, const tl_graph *g, char *err, size_t n) {
  memset(p, 0, sizeof *p);
  be_options o = be_options_default();
  const be_rules *r = be_rules_get(&o, NULL, err, n);
  return r ? be_plan_build_with(p, g, r, 0, err, n) : -1;
}

int be_plan_build_with(be_plan *p, const tl_graph *g, const be_rules *rules, int destroy_inputs,
                       char *err, size_t n) {
  return be_plan_build_for(p, g, rules, destroy_inputs, true, err, n);
}

int be_plan_build_for(be_plan *p, const tl_graph *g, const be_rules *rules, int destroy_inputs, bool row_kernels,
                      char *err, size_t n) {
  be_fnplans *fns = tl_xcalloc(1, sizeof *fns);
  fns->no_rows = !row_kernels;
  int rc = plan_build(p, g, rules, destroy_inputs, fns, err, n);
  p->root = true; /* it owns the table it was given */
  return rc;
}

static int plan_control(be_plan *p, const be_rules *rules, const bool *live, int32_t id, char *err, size_t n);

static int plan_build(be_plan *p, const tl_graph *g, const be_rules *rules, int destroy_inputs,
                      be_fnplans *fns, char *err, size_t n) {
  memset(p, 0, sizeof *p);
  p->g = g;
  p->root = fns == NULL;
  p->fns = fns ? fns : tl_xcalloc(1, sizeof *p->fns);
  int32_t nn = g->nnodes;
  p->state = tl_xcalloc((size_t)nn + 1, 1);
  p->buf_of = tl_xcalloc((size_t)nn + 1, sizeof *p->buf_of);
  p->uses = tl_xcalloc((size_t)nn + 1, sizeof *p->uses);
  p->out_buf = tl_xcalloc((size_t)g->noutputs + 1, sizeof *p->out_buf);
  bool *live = tl_xcalloc((size_t)nn + 1, 1);
  for (int i = 0; i < g->noutputs; i++) {
    live[g->outputs[i].node] = true;
    p->uses[g->outputs[i].node]++;
  }
  for (int32_t id = nn - 1; id >= 0; id--) {
    if (!live[id]) continue;
    const tl_node *x = &g->nodes[id];
    for (int k = 0; k < x->ninputs; k++) {
      live[tl_node_inputs(g, x)[k]] = true;
      p->uses[tl_node_inputs(g, x)[k]]++;
    }
  }
  uses_csr u;
  uses_build(&u, g, live);
  for (int i = 0; i < g->ninputs; i++) {
    int32_t id = g->inputs[i];
    p->state[id] = BE_S_MAT;
    p->buf_of[id] = add_buf(p, BE_BUF_INPUT, id, i);
  }
  for (int32_t id = 0; id < nn; id++) {
    const tl_node *x = &g->nodes[id];
    if (!live[id] || x->op == TL_OP_INPUT) continue;
    if (x->type.dtype >= TL_DTYPE_COUNT) {
      tl_free(live);
      uses_free(&u);
      return unsupported(g, id, err, n);
    }
    const int32_t *in = tl_node_inputs(g, x);
    switch (x->op) {
    case TL_OP_CONST:
      p->state[id] = BE_S_MAT;
      p->buf_of[id] = add_buf(p, BE_BUF_CONST, id, -1);
      break;
    case TL_OP_RESHAPE:
      materialise(p, in[0]);
      p->state[id] = BE_S_ALIAS;
      p->buf_of[id] = p->buf_of[in[0]];
      break;
    case TL_OP_CONCAT: {
      int b = add_buf(p, BE_BUF_TEMP, id, -1);
      for (int k = 0; k < x->ninputs; k++) {
        be_kern *kk = add_kern(p, BE_K_EW, in[k], b);
        kk->place = id;
        kk->part = k;
      }
      p->state[id] = BE_S_MAT;
      p->buf_of[id] = b;
      break;
    }
    case TL_OP_SLICE_UPDATE: case TL_OP_SCATTER_ADD: {
      /* operand 0 is copied into the buffer, then the update is written
       * over its slice (an EW kernel placed at the slice, as a concat's
       * part) or the addend accumulated at the indices (BE_K_SCATTER) */
      int b = add_buf(p, BE_BUF_TEMP, id, -1);
      add_kern(p, BE_K_EW, in[0], b);
      if (x->op == TL_OP_SLICE_UPDATE) {
        be_kern *kk = add_kern(p, BE_K_EW, in[1], b);
        kk->place = id;
        kk->part = 1;
      } else {
        materialise(p, in[1]);
        add_kern(p, BE_K_SCATTER, id, b);
      }
      p->state[id] = BE_S_MAT;
      p->buf_of[id] = b;
      break;
    }
    case TL_OP_TAKE:
      materialise(p, in[1]);
      if (!(x->attrs.present & TL_A_AXIS)) materialise(p, in[0]);
      add_kern(p, BE_K_TAKECHECK, id, -1);
      p->state[id] = BE_S_INLINE;
      if (!fusible(p, rules, &u, id)) materialise(p, id);
      break;
    case TL_OP_MATMUL: {
      /* BLAS needs contiguous operands of the result dtype; a float
       * operand that is an inline swap of the last two dims of a value is
       * that value's buffer read transposed (BLAS's trans flag), not a copy */
      int32_t ob[2];
      uint8_t tr[2] = {0, 0};
      for (int k = 0; k < 2; k++) {
        const tl_node *o = &g->nodes[in[k]];
        if (o->type.dtype == x->type.dtype && p->state[in[k]] == BE_S_INLINE && swaps_last_two(o) &&
            (x->type.dtype == TL_F32 || x->type.dtype == TL_F64)) {
          int32_t t = tl_node_inputs(g, o)[0];
          materialise(p, t);
          ob[k] = p->buf_of[t];
          tr[k] = 1;
        } else if (o->type.dtype != x->type.dtype) {
          ob[k] = add_buf(p, BE_BUF_TEMP, in[k], -1);
          p->bufs[ob[k]].dtype = x->type.dtype;
          add_kern(p, BE_K_EW, in[k], ob[k]);
        } else {
          materialise(p, in[k]);
          ob[k] = p->buf_of[in[k]];
        }
      }
      int b = add_buf(p, BE_BUF_TEMP, id, -1);
      be_kern *kk = add_kern(p, BE_K_MATMUL, id, b);
      kk->opbuf[0] = ob[0];
      kk->opbuf[1] = ob[1];
      kk->trans[0] = tr[0];
      kk->trans[1] = tr[1];
      for (int q = 0; q < 2; q++) kk->uniform[q] = uniform_value(g, in[q]);
      tl_free(kk->reads);
      kk->reads = tl_xmalloc(2 * sizeof *kk->reads);
      kk->reads[0] = ob[0];
      kk->reads[1] = ob[1];
      kk->nreads = 2;
      p->state[id] = BE_S_MAT;
      p->buf_of[id] = b;
      break;
    }
    default:
      switch (tl_ops[x->op].kind) {
      case TL_KIND_CONTROL:
        if (plan_control(p, rules, live, id, err, n)) {
          tl_free(live);
          uses_free(&u);
          return -1;
        }
        break;
      case TL_KIND_REDUCTION: {
        int b = add_buf(p, BE_BUF_TEMP, id, -1);
        add_kern(p, x->op == TL_OP_SOFTMAX || x->op == TL_OP_LOG_SOFTMAX ? BE_K_SOFTMAX : BE_K_RED,
                 id, b);
        p->state[id] = BE_S_MAT;
        p->buf_of[id] = b;
        break;
      }
      case TL_KIND_ELEMWISE: case TL_KIND_SHAPE: case TL_KIND_CONSTANT:
        p->state[id] = BE_S_INLINE;
        if (!fusible(p, rules, &u, id)) materialise(p, id);
        break;
      default:
        tl_free(live);
        uses_free(&u);
        return unsupported(g, id, err, n);
      }
    }
  }
  tl_free(live);
  uses_free(&u);
  /* outputs: a kernel writes straight into the caller's tensor when it can */
  bool *claimed = tl_xcalloc((size_t)p->nbufs + 1, 1);
  for (int i = 0; i < g->noutputs; i++) {
    int32_t x = g->outputs[i].node;
    int32_t b = p->state[x] == BE_S_MAT ? p->buf_of[x] : -1;
    if (b >= 0 && p->bufs[b].kind == BE_BUF_TEMP && p->bufs[b].node == x && !claimed[b] &&
        p->bufs[b].dtype == g->nodes[x].type.dtype) {
      p->bufs[b].kind = BE_BUF_OUTPUT;
      p->bufs[b].index = i;
      claimed[b] = true;
      p->out_buf[i] = b;
    } else {
      int nb = add_buf(p, BE_BUF_OUTPUT, x, i);
      add_kern(p, BE_K_EW, x, nb);
      p->out_buf[i] = nb;
      claimed = tl_xrealloc(claimed, (size_t)p->nbufs + 1);
      claimed[nb] = true;
    }
  }
  tl_free(claimed);
  if (!p->fns->no_rows) {
    row_kernels(p);
    be_plan_passes(p);
  }
  inplace(p, rules, destroy_inputs);
  return 0;
}

/* ---- row kernels ----------------------------------------------------------
 * An elementwise kernel over [..., D] whose expression reads row
 * reductions (sum, mean, max or min over the last axis with keepdims, of a
 * float value of the kernel's own shape) becomes one BE_K_ROWS kernel that
 * computes them in passes over each row before it writes the row: layer
 * norm's mean and variance, RMS norm's mean square. The row (4 KB at 1024
 * f32) comes from memory once and from cache in the later passes, instead
 * of once per kernel. A reduction joins when every use of it is in the
 * kernel's expression or in the input of another joining reduction (so it
 * is not a program output and no other kernel reads its buffer), and every
 * path to it runs through elementwise nodes of the kernel's shape or of
 * its row shape [..., 1], so that it is always read at the current row.
 * Its value is then the same number the buffer would hold: the lowering
 * reduces the same expression in the same order. */

typedef struct rowfuse {
  const be_plan *p;
  const tl_type *t;   /* the kernel's shape */
  int32_t *uses_in;   /* per node: uses from the walked expressions */
  uint8_t *mark;      /* per node: 1 INLINE walked, 2 candidate, 4 bad path, 8 rejected, 16 touched,
                         32 walked by rf_leak */
  int32_t *touched; int ntouched;
  int32_t *cand; int ncand;
} rowfuse;

static void rf_touch(rowfuse *f, int32_t id) {
  if (f->mark[id] & 16) return;
  f->mark[id] |= 16;
  f->touched[f->ntouched++] = id;
}

static bool rowshape(const tl_type *v, const tl_type *t) {
  if (v->rank != t->rank || v->dims[v->rank - 1] != 1) return false;
  return !memcmp(v->dims, t->dims, (size_t)(t->rank - 1) * sizeof *t->dims);
}

static bool same_type(const tl_type *a, const tl_type *b) {
  return a->rank == b->rank && a->dtype == b->dtype && !memcmp(a->dims, b->dims, (size_t)a->rank * sizeof *a->dims);
}

/* A reduction a BE_K_ROWS kernel of shape t could compute per row. */
static bool row_reduction(const be_plan *p, int32_t id, const tl_type *t) {
  const tl_node *n = &p->g->nodes[id];
  if (p->state[id] != BE_S_MAT || p->buf_of[id] < 0 || p->bufs[p->buf_of[id]].node != id) return false;
  if (n->op != TL_OP_SUM && n->op != TL_OP_MEAN && n->op != TL_OP_MAX && n->op != TL_OP_MIN) return false;
  if (n->type.dtype != TL_F32 && n->type.dtype != TL_F64) return false;
  if (!(n->attrs.present & TL_A_KEEPDIMS) || !n->attrs.keepdims || n->attrs.naxes != 1) return false;
  const tl_type *x = &p->g->nodes[tl_node_inputs(p->g, n)[0]].type;
  int ax = n->attrs.axes[0] < 0 ? n->attrs.axes[0] + x->rank : n->attrs.axes[0];
  return ax == t->rank - 1 && x->rank == t->rank && !memcmp(x->dims, t->dims, (size_t)t->rank * sizeof *t->dims) &&
         rowshape(&n->type, t);
}

/* Walks the operands of node id (an INLINE node, or an expression's root,
 * of type t or the row shape: ok) counting uses of candidate reductions. */
static void rf_operands(rowfuse *f, int32_t id, bool ok) {
  const be_plan *p = f->p;
  const tl_node *n = &p->g->nodes[id];
  for (int i = 0; i < n->ninputs; i++) {
    int32_t x = tl_node_inputs(p->g, n)[i];
    const tl_node *xn = &p->g->nodes[x];
    if (p->state[x] == BE_S_INLINE) {
      rf_touch(f, x);
      f->uses_in[x]++; /* this operand slot: inside */
      if (f->mark[x] & 1) continue;
      f->mark[x] |= 1;
      bool k = tl_ops[xn->op].kind == TL_KIND_ELEMWISE || tl_ops[xn->op].kind == TL_KIND_CONSTANT;
      rf_operands(f, x, ok && k && (same_type(&xn->type, f->t) || rowshape(&xn->type, f->t)));
    } else if ((f->mark[x] & 2) || row_reduction(p, x, f->t)) {
      rf_touch(f, x);
      f->uses_in[x]++;
      if (!ok) f->mark[x] |= 4;
      if (!(f->mark[x] & 2)) {
        f->mark[x] |= 2;
        f->cand[f->ncand++] = x;
      }
    }
  }
}

/* An INLINE node x used outside the walked expressions as well: another
 * kernel computes it too, so no candidate under it may lose its buffer.
 * Rejects them (8); true when one was newly rejected. */
static bool rf_leak(rowfuse *f, int32_t x) {
  if (f->mark[x] & 32) return false;
  f->mark[x] |= 32;
  const tl_node *n = &f->p->g->nodes[x];
  bool changed = false;
  for (int i = 0; i < n->ninputs; i++) {
    int32_t y = tl_node_inputs(f->p->g, n)[i];
    if (f->mark[y] & 2) {
      changed |= !(f->mark[y] & 8);
      f->mark[y] |= 8;
    } else if (f->p->state[y] == BE_S_INLINE) {
      rf_touch(f, y);
      changed |= rf_leak(f, y);
    }
  }
  return changed;
}

static int cmp_i32(const void *a, const void *b) {
  int32_t x = *(const int32_t *)a, y = *(const int32_t *)b;
  return (x > y) - (x < y);
}

static void row_kernels(be_plan *p) {
  const tl_graph *g = p->g;
  rowfuse f = {p, NULL, NULL, NULL, NULL, 0, NULL, 0};
  bool *drop = NULL; /* per kernel: a reduction now computed by a ROWS kernel */
  for (int ki = 0; ki < p->nks; ki++) {
    be_kern *k = &p->ks[ki];
    const tl_node *r = &g->nodes[k->node];
    if (k->kind != BE_K_EW || k->place >= 0 || r->type.rank < 2 || p->bufs[k->out].dtype != r->type.dtype) continue;
    bool any = false; /* cheap test first: does it read a row reduction's buffer? */
    for (int i = 0; i < k->nreads && !any; i++) {
      int32_t b = k->reads[i];
      any = p->bufs[b].kind == BE_BUF_TEMP && row_reduction(p, p->bufs[b].node, &r->type);
    }
    if (!any) continue;
    if (!f.mark) {
      f.uses_in = tl_xcalloc((size_t)g->nnodes + 1, sizeof *f.uses_in);
      f.mark = tl_xcalloc((size_t)g->nnodes + 1, 1);
      f.touched = tl_xmalloc(((size_t)g->nnodes + 1) * sizeof *f.touched);
      f.cand = tl_xmalloc(((size_t)g->nnodes + 1) * sizeof *f.cand);
      drop = tl_xcalloc((size_t)p->nks + 1, sizeof *drop);
    }
    f.t = &r->type;
    /* until no candidate is rejected: walk the kernel's expression and the
     * inputs of the candidates still in, counting uses */
    for (bool changed = true; changed;) {
      changed = false;
      for (int i = 0; i < f.ntouched; i++) {
        f.uses_in[f.touched[i]] = 0;
        f.mark[f.touched[i]] &= (uint8_t)~(1 | 32);
      }
      rf_operands(&f, k->node, true);
      for (int c = 0; c < f.ncand; c++) {
        int32_t x = f.cand[c];
        if (f.mark[x] & 8) continue;
        int32_t in = tl_node_inputs(g, &g->nodes[x])[0];
        if (p->state[in] == BE_S_INLINE) {
          rf_touch(&f, in);
          f.uses_in[in]++;
          if (!(f.mark[in] & 1)) {
            f.mark[in] |= 1;
            rf_operands(&f, in, true);
          }
        }
      }
      for (int i = 0; i < f.ntouched; i++) {
        int32_t x = f.touched[i];
        if ((f.mark[x] & 1) && f.uses_in[x] != p->uses[x]) changed |= rf_leak(&f, x);
      }
      /* an inline root (an output's kernel) computed elsewhere too */
      if (p->state[k->node] == BE_S_INLINE && p->uses[k->node] != 1) {
        rf_touch(&f, k->node);
        changed |= rf_leak(&f, k->node);
      }
      for (int c = 0; c < f.ncand; c++) {
        int32_t x = f.cand[c];
        if (!(f.mark[x] & 8) && ((f.mark[x] & 4) || f.uses_in[x] != p->uses[x])) {
          f.mark[x] |= 8;
          changed = true;
        }
      }
    }
    int32_t *rows = tl_xmalloc(((size_t)f.ncand + 1) * sizeof *rows);
    int nrows = 0;
    for (int c = 0; c < f.ncand; c++)
      if (!(f.mark[f.cand[c]] & 8)) rows[nrows++] = f.cand[c];
    for (int i = 0; i < f.ntouched; i++) f.uses_in[f.touched[i]] = 0, f.mark[f.touched[i]] = 0;
    f.ntouched = f.ncand = 0;
    if (!nrows) {
      tl_free(rows);
      continue;
    }
    qsort(rows, (size_t)nrows, sizeof *rows, cmp_i32);
    for (int i = 0; i < nrows; i++) {
      int32_t x = rows[i];
      for (int j = 0; j < ki; j++)
        if (p->ks[j].node == x && p->ks[j].kind == BE_K_RED) drop[j] = true;
      p->bufs[p->buf_of[x]].kind = BE_BUF_UNUSED;
      p->buf_of[x] = -1;
      p->state[x] = BE_S_ROW;
    }
    k->kind = BE_K_ROWS;
    k->rows = rows;
    k->nrows = nrows;
    k->nreads = 0;
    for (int i = 0; i < r->ninputs; i++) collect(p, tl_node_inputs(g, r)[i], k);
  }
  if (!drop) return;
  int w = 0;
  for (int i = 0; i < p->nks; i++) {
    if (drop[i]) {
      tl_free(p->ks[i].reads);
      continue;
    }
    p->ks[w++] = p->ks[i];
  }
  p->nks = w;
  tl_free(drop);
  tl_free(f.uses_in);
  tl_free(f.mark);
  tl_free(f.touched);
  tl_free(f.cand);
}

/* ---- in-place ----------------------------------------------------------- */

static bool same_shape(const tl_type *a, const tl_type *b) {
  return a->rank == b->rank && !memcmp(a->dims, b->dims, (size_t)a->rank * sizeof *a->dims);
}

/* Whether every read of buffer b in the expression of node id (fused into
 * the kernel, or the kernel's root when def) is a read of x at the
 * kernel's own output index, so that writing the output element by element
 * over b never clobbers an element still to be read. ident: id itself is
 * evaluated at the output index. An operand stays at the output index
 * through an elementwise op when it has the output's shape (no broadcast)
 * and an in-place rule lets the op write over it; index maps move it.
 * A softmax kernel's root reads its operand at every index of the output's
 * row, not only its own; a :rowwise rule says each result row reads only
 * the same row, and the row kernel reads each element before it writes
 * that element (lw_k_softmax), so such reads count as in place too. */
static bool reads_in_place(const be_plan *p, const be_rules *r, int32_t id, bool def, bool ident, int32_t b,
                           int32_t x, const tl_type *ot) {
  const tl_graph *g = p->g;
  const tl_node *n = &g->nodes[id];
  if (!def && (p->state[id] == BE_S_MAT || p->state[id] == BE_S_ALIAS))
    return p->buf_of[id] != b || (id == x && ident && p->state[id] == BE_S_MAT);
  bool ew = tl_ops[n->op].kind == TL_KIND_ELEMWISE;
  /* a row kernel's root (def) reads its operand along the output's rows */
  uint32_t keep = ew ? r->destroys[n->op] : def ? r->destroys_rows[n->op] : 0;
  for (int k = 0; k < n->ninputs; k++) {
    int32_t in = tl_node_inputs(g, n)[k];
    bool ik = ident && ((keep >> k) & 1) && same_shape(&g->nodes[in].type, ot);
    if (!reads_in_place(p, r, in, false, ik, b, x, ot)) return false;
  }
  return true;
}

/* A buffer kernel ki (elementwise, or a softmax under a :rowwise rule) may
 * write its result over, or -1. Legal when the buffer holds exactly one
 * value x (not an alias view, constant, output, or an input unless
 * allowed) of the result's dtype and shape, no later kernel reads it, and
 * the kernel reads it in place (reads_in_place). */
static int32_t inplace_target(const be_plan *p, const be_rules *r, int ki, int destroy_inputs,
                               const int *last_read) {
  const tl_graph *g = p->g;
  const be_kern *k = &p->ks[ki];
  if (!(k->kind == BE_K_EW || (k->kind == BE_K_SOFTMAX && r->destroys_rows[g->nodes[k->node].op])) ||
      k->place >= 0 || k->out < 0)
    return -1;
  const be_buf *ob = &p->bufs[k->out];
  const tl_node *root = &g->nodes[k->node];
  if (ob->kind != BE_BUF_TEMP || p->state[k->node] != BE_S_MAT || p->buf_of[k->node] != k->out ||
      ob->dtype != root->type.dtype)
    return -1;
  for (int i = 0; i < k->nreads; i++) {
    int32_t b = k->reads[i];
    const be_buf *bb = &p->bufs[b];
    if (!(bb->kind == BE_BUF_TEMP || (bb->kind == BE_BUF_INPUT && destroy_inputs))) continue;
    int32_t x = bb->node;
    if (p->state[x] != BE_S_MAT || p->buf_of[x] != b || bb->dtype != ob->dtype ||
        !same_shape(&g->nodes[x].type, &root->type))
      continue;
    if (last_read[b] > ki) continue; /* a later kernel reads it */
    if (reads_in_place(p, r, k->node, true, true, b, x, &root->type)) return b;
  }
  return -1;
}

/* The in-place pass, in schedule order: a kernel that may write over a
 * dead operand's buffer does, its own temporary becomes UNUSED, and every
 * later reference to it is redirected (so a chain of such kernels reuses
 * one buffer). The references are kept per buffer (the nodes it holds, the
 * kernels' reads of it, its last reader), so that the pass is linear in the
 * schedule: a redirected temporary is a kernel's fresh output, whose lists
 * move once into the target's. */
static void inplace(be_plan *p, const be_rules *r, int destroy_inputs) {
  if (!r->ninplace_rules) return;
  int nb = p->nbufs;
  int32_t nn = p->g->nnodes, nr = 0;
  for (int j = 0; j < p->nks; j++) nr += p->ks[j].nreads;
  int32_t *nhead = tl_xmalloc(((size_t)nb + 1) * sizeof *nhead), *nnext = tl_xmalloc(((size_t)nn + 1) * sizeof *nnext);
  int32_t *rhead = tl_xmalloc(((size_t)nb + 1) * sizeof *rhead), *rnext = tl_xmalloc(((size_t)nr + 1) * sizeof *rnext);
  int32_t *rk = tl_xmalloc(((size_t)nr + 1) * sizeof *rk), *rq = tl_xmalloc(((size_t)nr + 1) * sizeof *rq);
  int *last = tl_xmalloc(((size_t)nb + 1) * sizeof *last);
  for (int b = 0; b < nb; b++) nhead[b] = rhead[b] = last[b] = -1;
  for (int32_t id = nn - 1; id >= 0; id--)
    if (p->state[id] == BE_S_MAT || p->state[id] == BE_S_ALIAS) {
      nnext[id] = nhead[p->buf_of[id]];
      nhead[p->buf_of[id]] = id;
    }
  for (int j = 0, e = 0; j < p->nks; j++)
    for (int q = 0; q < p->ks[j].nreads; q++, e++) {
      int32_t b = p->ks[j].reads[q];
      rk[e] = j;
      rq[e] = q;
      rnext[e] = rhead[b];
      rhead[b] = e;
      /* a one-pass group's kernels run interleaved: what one of them reads
       * stays live to the group's end (plan_pass.c) */
      last[b] = p->ks[j].pass_hi > p->ks[j].pass_lo ? p->ks[j].pass_hi : j;
    }
  for (int ki = 0; ki < p->nks; ki++) {
    int32_t b = inplace_target(p, r, ki, destroy_inputs, last);
    if (b < 0) continue;
    int32_t old = p->ks[ki].out;
    p->ks[ki].out = b;
    for (int32_t id = nhead[old], nx; id >= 0; id = nx) {
      nx = nnext[id];
      p->buf_of[id] = b;
      nnext[id] = nhead[b];
      nhead[b] = id;
    }
    nhead[old] = -1;
    for (int32_t e = rhead[old], nx; e >= 0; e = nx) {
      nx = rnext[e];
      be_kern *k = &p->ks[rk[e]];
      k->reads[rq[e]] = b;
      for (int q = 0; q < 2; q++)
        if (k->kind == BE_K_MATMUL && k->opbuf[q] == old) k->opbuf[q] = b;
      for (int q = 0; k->ctl && q < k->ctl->nop; q++)
        if (k->ctl->opbuf[q] == old) k->ctl->opbuf[q] = b;
      rnext[e] = rhead[b];
      rhead[b] = e;
    }
    rhead[old] = -1;
    if (last[old] > last[b]) last[b] = last[old];
    p->bufs[old].kind = BE_BUF_UNUSED;
    p->bufs[b].node = p->ks[ki].node; /* b now holds the kernel's value */
    p->ninplace++;
  }
  tl_free(nhead);
  tl_free(nnext);
  tl_free(rhead);
  tl_free(rnext);
  tl_free(rk);
  tl_free(rq);
  tl_free(last);
}

/* jit.c's rule for be_options.threads == 0, here so that the cost model
 * (extract/) follows the same one. */
int be_default_threads(void) {
  long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
  return ncpu >= 2 ? 2 : 1;
}

static void hash_plan(XXH3_state_t *st, const be_plan *p);

uint64_t be_plan_hash(const be_plan *p) {
  XXH3_state_t *st = XXH3_createState();
  XXH3_64bits_reset(st);
  const int64_t version = BE_LOWER_VERSION;
  XXH3_64bits_update(st, &version, sizeof version);
  hash_plan(st, p);
  for (int i = 0; p->root && i < p->fns->n; i++) hash_plan(st, p->fns->plan[i]);
  uint64_t h = XXH3_64bits_digest(st);
  XXH3_freeState(st);
  return h;
}

static void hash_plan(XXH3_state_t *st, const be_plan *p) {
  XXH3_64bits_update(st, p->state, (size_t)p->g->nnodes);
  XXH3_64bits_update(st, p->buf_of, (size_t)p->g->nnodes * sizeof *p->buf_of);
  for (int b = 0; b < p->nbufs; b++) {
    const be_buf *x = &p->bufs[b];
    int64_t v[5] = {x->kind, x->index, x->node, x->dtype, x->rank};
    XXH3_64bits_update(st, v, sizeof v);
    XXH3_64bits_update(st, x->dims, sizeof x->dims);
  }
  for (int i = 0; i < p->nks; i++) {
    const be_kern *k = &p->ks[i];
    int64_t v[14] = {k->kind,      k->node,     k->out,      k->place,      k->part,
                     k->opbuf[0],  k->opbuf[1], k->trans[0], k->trans[1], k->uniform[0],
                     k->uniform[1], k->pass_lo, k->pass_hi, k->pass_part};
    XXH3_64bits_update(st, v, sizeof v);
    XXH3_64bits_update(st, k->reads, (size_t)k->nreads * sizeof *k->reads);
    XXH3_64bits_update(st, k->rows, (size_t)k->nrows * sizeof *k->rows);
    const be_ctl *c = k->ctl;
    if (!c) continue;
    XXH3_64bits_update(st, c->opbuf, (size_t)c->nop * sizeof *c->opbuf);
    XXH3_64bits_update(st, c->res, (size_t)c->nres * sizeof *c->res);
    XXH3_64bits_update(st, c->pred, sizeof c->pred);
    for (int s = 0; s < c->nsite; s++) {
      const be_plan *sp = p->fns->plan[c->site[s].fnplan];
      XXH3_64bits_update(st, &c->site[s].fnplan, sizeof c->site[s].fnplan);
      XXH3_64bits_update(st, c->site[s].temp, (size_t)sp->nbufs * sizeof *c->site[s].temp);
      XXH3_64bits_update(st, c->site[s].symdim, (size_t)sp->g->nsyms * sizeof *c->site[s].symdim);
    }
  }
}

static void ctl_free(be_ctl *c) {
  if (!c) return;
  tl_free(c->opbuf);
  tl_free(c->res);
  tl_free(c->alt);
  for (int i = 0; i < 3; i++) {
    tl_free(c->site[i].temp);
    tl_free(c->site[i].symdim);
  }
  tl_free(c);
}

void be_plan_free(be_plan *p) {
  for (int i = 0; i < p->nks; i++) {
    tl_free(p->ks[i].reads);
    tl_free(p->ks[i].rows);
    ctl_free(p->ks[i].ctl);
  }
  if (p->root && p->fns) {
    for (int i = 0; i < p->fns->n; i++) {
      if (p->fns->plan[i]) be_plan_free(p->fns->plan[i]);
      tl_free(p->fns->plan[i]);
    }
    tl_free(p->fns->g);
    tl_free(p->fns->plan);
    tl_free(p->fns);
  }
  tl_free(p->state);
  tl_free(p->buf_of);
  tl_free(p->uses);
  tl_free(p->bufs);
  tl_free(p->ks);
  tl_free(p->out_buf);
  memset(p, 0, sizeof *p);
}

int be_run_error(const tl_graph *g, int32_t rc, tl_error *err) {
  int node = rc >> 4;
  const tl_node *x = node < g->nnodes ? &g->nodes[node] : NULL;
  char why[160];
  switch (rc & 15) {
  case BE_ERR_TAKE: snprintf(why, sizeof why, "an index is out of bounds"); break;
  case BE_ERR_POW: snprintf(why, sizeof why, "integers to negative integer powers are not allowed"); break;
  case BE_ERR_EMPTY: snprintf(why, sizeof why, "zero-size reduction has no identity"); break;
  case BE_ERR_MAXTRIP:
    if (x)
      snprintf(why, sizeof why, "the loop did not end within its :max of %lld iterations", (long long)x->attrs.trips);
    else
      snprintf(why, sizeof why, "the loop did not end within its :max iterations");
    break;
  default: snprintf(why, sizeof why, "run-time error");
  }
  if (x && x->loc.line > 0)
    tl_fail(err, TL_BAD_INPUT, "%s (at %d:%d): %s", tl_ops[x->op].name, x->loc.line, x->loc.col, why);
  else
    tl_fail(err, TL_BAD_INPUT, "%s: %s", x ? tl_ops[x->op].name : "?", why);
  return -1;
}

void be_matmul_shape_of(const tl_graph *g, const tl_node *n, be_matmul_shape *m) {
  const int32_t *in = tl_node_inputs(g, n);
  const tl_type *at = &g->nodes[in[0]].type, *bt = &g->nodes[in[1]].type;
  memset(m, 0, sizeof *m);
  m->ar = at->rank, m->br = bt->rank;
  memcpy(m->ad, at->dims, sizeof at->dims);
  memcpy(m->bd, bt->dims, sizeof bt->dims);
  if (m->ar == 1) m->ad[1] = m->ad[0], m->ad[0] = 1, m->ar = 2;
  if (m->br == 1) m->bd[1] = 1, m->br = 2;
  m->nbr = (m->ar > m->br ? m->ar : m->br) - 2;
  for (int i = 0; i < m->nbr; i++) {
    int ai = i - (m->nbr - (m->ar - 2)), bi = i - (m->nbr - (m->br - 2));
    int64_t da = ai >= 0 ? m->ad[ai] : 1, db = bi >= 0 ? m->bd[bi] : 1;
    m->bdims[i] = da == 1 ? db : da;
    m->abat[i] = ai < 0 || (da == 1 && m->bdims[i] != 1) ? -1 : ai;
    m->bbat[i] = bi < 0 || (db == 1 && m->bdims[i] != 1) ? -1 : bi;
  }
}
