/* measure/cost_report.c - the time model's prediction for a program as the
 * backend compiles it, kernel by kernel, and the report behind `tlaloc
 * cost-report`, which sets it beside the clock.
 *
 * Prediction. be_plan_build gives the kernels in order; for each one the
 * work is the arithmetic of the expression it computes (its root node and
 * the inline nodes fused into it, each counted once through tl_node_work,
 * a row kernel's producer once per pass) and the bytes of the buffers it
 * reads and writes, nothing else: fused intermediates never touch memory.
 * An output of 32 MiB or more also pays for its fresh pages (fault_bw):
 * glibc maps such an allocation afresh on every call. tl_profile_kernel_time turns that into
 * seconds; whether the kernel is split over threads follows the backend's
 * rule (enough elements and an outer dimension of at least 2; BLAS and the
 * index checks of take stay outside the split). A program adds the fixed
 * cost of one be_run call.
 *
 * Measurement. The whole program is timed end to end with be_run. A kernel
 * is timed as a program of its own: a graph whose inputs are the buffers
 * the kernel reads, holding the expression it computes, with one output;
 * compiled, it is again exactly one kernel. Its row therefore includes one
 * call's fixed cost, and so does its prediction. */
#include "measure/calibrate.h"

#include "backend/be_internal.h"
#include "interp/interp.h"
#include "ir/tg.h"
#include "util/util.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- prediction -------------------------------------------------------- */

/* glibc's largest dynamic mmap threshold: an allocation at least this big
 * is a fresh mapping every time (see calibrate.c) */
#define GLIBC_MMAP_MAX (32.0 * 1024 * 1024)

static void concrete(const tl_type *t, const int64_t *syms, tl_type *out) {
  *out = *t;
  for (int i = 0; i < t->rank; i++)
    if (tl_dim_is_sym(t->dims[i])) out->dims[i] = syms[tl_dim_sym_id(t->dims[i])];
}

static double elems_of(const tl_type *t, const int64_t *syms) {
  tl_type c;
  concrete(t, syms, &c);
  return tl_type_elems(&c, 0);
}

static double buf_bytes(const be_plan *pl, int32_t b, const int64_t *syms) {
  const be_buf *bb = &pl->bufs[b];
  tl_type t = {.dtype = bb->dtype, .rank = bb->rank};
  memcpy(t.dims, bb->dims, sizeof t.dims);
  return elems_of(&t, syms) * (double)tl_dtype_size((tl_dtype)bb->dtype);
}

/* Whether kernel k computes its root node (rather than copying it from the
 * buffer that already holds it: an output that is an input, a cast copy of
 * a matmul operand). */
static bool computes_root(const be_plan *pl, const be_kern *k) {
  int st = pl->state[k->node];
  if (st == BE_S_INLINE) return true;
  return st == BE_S_MAT && pl->buf_of[k->node] == k->out;
}

/* Nodes add_expr has counted in the current kernel. */
typedef struct seen_set {
  uint8_t *on;    /* per node */
  int32_t *list;  /* the nodes set, to clear them after the kernel */
  int32_t n;
} seen_set;

/* Adds scale times the arithmetic of node id and of the inline nodes it is
 * computed from; nodes held in buffers are reads, counted by the caller. A
 * row kernel computes its fused producer once per pass. Recursion depth:
 * the kernel's fused expression, at most BE_FUSE_MAX_OPS (be_internal.h). */
static void add_expr(const tl_profile *p, const be_plan *pl, const int64_t *syms, int32_t id, bool root,
                     double scale, seen_set *seen, tl_kernel_work *w) {
  if (seen->on[id]) return;
  seen->on[id] = 1;
  seen->list[seen->n++] = id;
  if (!root && pl->state[id] != BE_S_INLINE && pl->state[id] != BE_S_ROW) return; /* ROW: computed in the kernel */
  const tl_graph *g = pl->g;
  const tl_node *x = &g->nodes[id];
  const int32_t *in = tl_node_inputs(g, x);
  tl_type out, *ts = tl_xmalloc(((size_t)x->ninputs + 1) * sizeof *ts);
  const tl_type **tp = tl_xmalloc(((size_t)x->ninputs + 1) * sizeof *tp);
  concrete(&x->type, syms, &out);
  for (int i = 0; i < x->ninputs; i++) {
    concrete(&g->nodes[in[i]].type, syms, &ts[i]);
    tp[i] = &ts[i];
  }
  tl_kernel_work nw;
  tl_node_work(p, (tl_op)x->op, &x->attrs, &out, tp, x->ninputs, 0, &nw);
  tl_free(ts);
  tl_free(tp);
  w->flops += scale * nw.flops;
  w->math_ns += scale * nw.math_ns;
  w->gemm_flops_f32 += scale * nw.gemm_flops_f32;
  w->gemm_flops_f64 += scale * nw.gemm_flops_f64;
  w->gemm_extra_f32 += scale * nw.gemm_extra_f32;
  w->gemm_extra_f64 += scale * nw.gemm_extra_f64;
  if (x->op == TL_OP_MATMUL) return; /* its operands are buffers */
  if (tl_ops[x->op].kind == TL_KIND_REDUCTION) scale *= tl_row_passes((tl_op)x->op);
  for (int i = 0; i < x->ninputs; i++) add_expr(p, pl, syms, in[i], false, scale, seen, w);
}

/* The backend's split rule (be_kern_split_dims, BE_SPLIT_ELEMS): the
 * elements the split sees, or 0 when the kernel stays on one thread
 * whatever its size (not splittable, or an outer loop of one iteration). */
static double split_elems(const be_plan *pl, const be_kern *k, const int64_t *syms) {
  const tl_type *kt;
  int lo, hi;
  if (!be_kern_split_dims(pl, k, &kt, &lo, &hi)) return 0;
  tl_type t;
  concrete(kt, syms, &t);
  double range = 1;
  for (int i = lo; i <= hi; i++) range *= (double)t.dims[i];
  return range < 2 ? 0 : tl_type_elems(&t, 0);
}

/* Elements a kernel's loop covers, for the report. */
static double loop_elems(const be_plan *pl, const be_kern *k, const int64_t *syms) {
  const tl_graph *g = pl->g;
  const tl_node *x = &g->nodes[k->node];
  if (k->kind == BE_K_RED || k->kind == BE_K_TAKECHECK)
    return elems_of(&g->nodes[tl_node_inputs(g, x)[k->kind == BE_K_RED ? 0 : 1]].type, syms);
  return elems_of(&x->type, syms);
}

int tl_cost_predict(const tl_profile *p, const tl_graph *g, const int64_t *syms, tl_program_cost *c,
                    char *err, size_t n) {
  memset(c, 0, sizeof *c);
  for (int s = 0; s < g->nsyms; s++)
    if (!syms || syms[s] < 0) {
      snprintf(err, n, "symbolic dim '%s' has no size (bind it with --dim %s=SIZE)", g->syms[s], g->syms[s]);
      return -1;
    }
  be_plan pl;
  if (be_plan_build(&pl, g, err, n)) {
    be_plan_free(&pl);
    return -1;
  }
  c->ks = tl_xcalloc((size_t)pl.nks + 1, sizeof *c->ks);
  c->nks = pl.nks;
  c->total = p->run_overhead;
  /* cleared after each kernel node by node: a memset per kernel would be
   * quadratic on a long chain's thousands of kernels */
  seen_set seen = {tl_xcalloc((size_t)g->nnodes + 1, 1), tl_xmalloc(((size_t)g->nnodes + 1) * sizeof(int32_t)), 0};
  uint8_t *touched = tl_xcalloc((size_t)pl.nbufs + 1, 1);
  for (int i = 0; i < pl.nks; i++) {
    const be_kern *k = &pl.ks[i];
    tl_kernel_cost *kc = &c->ks[i];
    kc->kind = k->kind;
    kc->node = k->node;
    for (int32_t j = 0; j < seen.n; j++) seen.on[seen.list[j]] = 0;
    seen.n = 0;
    tl_kernel_work *w = &kc->w;
    for (int r = 0; r < k->nreads; r++) w->bytes += buf_bytes(&pl, k->reads[r], syms);
    if (k->kind == BE_K_TAKECHECK) {
      /* one comparison per index read */
      for (int r = 0; r < k->nreads; r++)
        w->flops += buf_bytes(&pl, k->reads[r], syms) / (double)tl_dtype_size((tl_dtype)pl.bufs[k->reads[r]].dtype);
    } else if (computes_root(&pl, k)) {
      add_expr(p, &pl, syms, k->node, true, 1, &seen, w);
    }
    if (k->out >= 0)
      w->bytes += k->place >= 0 ? elems_of(&g->nodes[k->node].type, syms) * (double)tl_dtype_size((tl_dtype)pl.bufs[k->out].dtype)
                                : buf_bytes(&pl, k->out, syms);
    w->elems = split_elems(&pl, k, syms);
    kc->elems = loop_elems(&pl, k, syms);
    kc->parallel = p->threads > 1 && w->elems >= p->parallel_min_elems;
    kc->predicted = tl_profile_kernel_time(p, w);
    /* the first kernel to write a large output touches its fresh pages */
    if (k->out >= 0 && pl.bufs[k->out].kind == BE_BUF_OUTPUT && !touched[k->out]) {
      touched[k->out] = 1;
      double ob = buf_bytes(&pl, k->out, syms);
      if (ob >= GLIBC_MMAP_MAX) kc->predicted += ob / p->fault_bw;
    }
    c->total += kc->predicted;
  }
  tl_free(seen.on);
  tl_free(seen.list);
  tl_free(touched);
  be_plan_free(&pl);
  return 0;
}

void tl_program_cost_free(tl_program_cost *c) {
  tl_free(c->ks);
  memset(c, 0, sizeof *c);
}

/* ---- one kernel as a program of its own -------------------------------- */

typedef struct subg {
  const be_plan *pl;
  tl_graph *g2;
  int32_t *map;  /* node of g -> node of g2, -1; kept across kernels */
  int32_t *set;  /* the entries of map set for this kernel, to reset */
  int32_t nset;
  int ninputs;
  char *err;
  size_t n;
} subg;

static int32_t as_input(subg *s, int32_t id, const tl_type *t) {
  char name[32];
  snprintf(name, sizeof name, "b%d", s->ninputs++);
  return tl_graph_add_input(s->g2, name, t, s->pl->g->nodes[id].loc);
}

/* Copies the expression of node id into g2: inline nodes as they are,
 * buffers as inputs (constants as constants). -1 with a message.
 * Recursion depth: the kernel's fused expression, at most BE_FUSE_MAX_OPS. */
static int32_t copy_expr(subg *s, int32_t id, bool root) {
  if (s->map[id] >= 0) return s->map[id];
  const tl_graph *g = s->pl->g;
  const tl_node *x = &g->nodes[id];
  int32_t r;
  if (x->op == TL_OP_CONST) {
    r = tl_graph_add_const(s->g2, tl_tensor_copy(g->lits[x->attrs.lit]), x->loc);
  } else if (!root && s->pl->state[id] != BE_S_INLINE && s->pl->state[id] != BE_S_ROW) {
    r = as_input(s, id, &x->type);
  } else if (x->op == TL_OP_INPUT) {
    r = as_input(s, id, &x->type);
  } else {
    int32_t *in = tl_xmalloc(((size_t)x->ninputs + 1) * sizeof *in);
    const int32_t *xi = tl_node_inputs(g, x);
    r = 0;
    for (int i = 0; i < x->ninputs && r >= 0; i++) r = in[i] = copy_expr(s, xi[i], false);
    if (r >= 0) r = tl_graph_add(s->g2, x->op, &x->attrs, in, x->ninputs, x->loc, s->err, s->n);
    tl_free(in);
    if (r < 0) return -1;
  }
  s->map[id] = r;
  s->set[s->nset++] = id;
  return r;
}

/* The graph of kernel k alone, or NULL (with a message; an empty message
 * when the kernel cannot be run alone: take's index check). map and set
 * are scratch of g->nnodes entries, map all -1 (and left so). */
static tl_graph *kernel_graph(const be_plan *pl, const be_kern *k, int32_t *map, int32_t *set, char *err,
                              size_t n) {
  err[0] = 0;
  if (k->kind == BE_K_TAKECHECK || k->kind == BE_K_SCATTER) return NULL; /* they read their own output */
  const tl_graph *g = pl->g;
  subg s = {pl, tl_graph_new("kernel"), map, set, 0, 0, err, n};
  /* same symbol ids, so types and shape attributes carry over as they are */
  for (int i = 0; i < g->nsyms; i++) tl_graph_sym(s.g2, g->syms[i], strlen(g->syms[i]));
  int32_t out = -1;
  if (k->kind == BE_K_MATMUL) {
    /* the operands as BLAS sees them: contiguous, of the result dtype */
    int32_t in[2];
    for (int i = 0; i < 2; i++) {
      const be_buf *b = &pl->bufs[k->opbuf[i]];
      tl_type t = {.dtype = b->dtype, .rank = b->rank};
      memcpy(t.dims, b->dims, sizeof t.dims);
      in[i] = as_input(&s, b->node, &t);
      if (k->trans[i] && in[i] >= 0) {
        /* the buffer holds the operand with its last two dims swapped; BLAS
         * reads it with a trans flag, the sub-graph with a transpose */
        tl_attrs a;
        tl_attrs_init(&a);
        a.present |= TL_A_PERM;
        a.nperm = t.rank;
        for (int d = 0; d < t.rank; d++)
          a.perm[d] = (int8_t)(d < t.rank - 2 ? d : d == t.rank - 2 ? t.rank - 1 : t.rank - 2);
        in[i] = tl_graph_add(s.g2, TL_OP_TRANSPOSE, &a, &in[i], 1, g->nodes[k->node].loc, err, n);
      }
    }
    const tl_node *x = &g->nodes[k->node];
    out = tl_graph_add(s.g2, TL_OP_MATMUL, &x->attrs, in, 2, x->loc, err, n);
  } else {
    out = copy_expr(&s, k->node, computes_root(pl, k));
  }
  for (int32_t i = 0; i < s.nset; i++) map[set[i]] = -1;
  if (out < 0) {
    tl_graph_free(s.g2);
    return NULL;
  }
  tl_graph_add_output(s.g2, "y", out);
  return s.g2;
}

/* ---- the report: prediction beside the clock ---------------------------- */

static const char *kind_name(int k) {
  switch (k) {
  case BE_K_EW: return "fused";
  case BE_K_RED: return "reduce";
  case BE_K_SOFTMAX: return "softmax";
  case BE_K_MATMUL: return "matmul";
  case BE_K_SCATTER: return "scatter";
  case BE_K_ROWS: return "rows";
  default: return "take-chk";
  }
}

/* What bounds the prediction: memory, arithmetic, BLAS or the call. */
static const char *bound_of(const tl_profile *p, const tl_kernel_cost *kc) {
  const tl_kernel_work *w = &kc->w;
  bool par = kc->parallel;
  double mem = w->bytes / (par ? p->bw_all : p->bw_1);
  double comp = w->flops / (par ? p->flops_all : p->flops_1) + w->math_ns * 1e-9 / (par ? p->threads : 1);
  double gemm = (w->gemm_flops_f32 + w->gemm_extra_f32) / p->gemm_f32 +
                (w->gemm_flops_f64 + w->gemm_extra_f64) / p->gemm_f64;
  double ovh = p->kernel_overhead + (par ? p->par_overhead : 0);
  double m = fmax(fmax(mem, comp), fmax(gemm, ovh));
  return m == gemm ? "gemm" : m == ovh ? "call" : m == mem ? "memory" : "compute";
}

int tl_cost_report_measure(const tl_profile *p, const tl_graph *g, const int64_t *syms, tl_cost_report_opts o,
                           tl_cost_report *r, char *err, size_t n) {
  memset(r, 0, sizeof *r);
  tl_tensor **in = NULL;
  be_program *prog = NULL;
  be_plan pl;
  memset(&pl, 0, sizeof pl);
  int32_t *map = NULL, *set = NULL;
  int rc = -1;
  if (tl_cost_predict(p, g, syms, &r->pc, err, n)) goto done;
  in = tl_xcalloc((size_t)g->ninputs + 1, sizeof *in);
  be_options bo = be_options_default();
  if (o.opt_level >= 0) bo.opt_level = o.opt_level;
  /* compiled as the engines compile it with this profile */
  bo.own_math = p->own_math;
  bo.split_elems = (long)p->parallel_min_elems;
  tl_error e = {0};
  if (tl_timing_inputs(g, syms, in, err, n)) goto done;
  if (!(prog = be_compile(g, &bo, &e))) {
    tl_error_to(&e, err, n);
    goto done;
  }
  r->measured = tl_time_run(prog, in, syms, o.runs, o.budget_s, err, n);
  if (r->measured < 0) goto done;
  if (be_plan_build(&pl, g, err, n)) goto done;
  r->ks = tl_xcalloc((size_t)r->pc.nks + 1, sizeof *r->ks);
  r->nks = r->pc.nks;
  double t_start = tl_now_ms(); /* the kernels' measurements, for o.time_limit_s */
  map = tl_xmalloc(((size_t)g->nnodes + 1) * sizeof *map);
  set = tl_xmalloc(((size_t)g->nnodes + 1) * sizeof *set);
  for (int32_t j = 0; j < g->nnodes; j++) map[j] = -1;
  for (int i = 0; i < r->pc.nks; i++) {
    const tl_kernel_cost *kc = &r->pc.ks[i];
    tl_report_kernel *rk = &r->ks[i];
    rk->kind = kind_name(kc->kind);
    rk->bound = bound_of(p, kc);
    rk->predicted = p->run_overhead + kc->predicted;
    rk->measured = -1;
    char kerr[256] = "";
    /* past the time limit, the remaining kernels are predicted only */
    bool measure = !(o.time_limit_s > 0 && tl_now_ms() - t_start > o.time_limit_s * 1e3);
    tl_graph *kg = measure ? kernel_graph(&pl, &pl.ks[i], map, set, kerr, sizeof kerr) : NULL;
    if (!measure) {
      r->nunmeasured++; /* rk->measured stays -1, with no note */
      continue;
    }
    if (kg) {
      tl_tensor **kin = tl_xcalloc((size_t)kg->ninputs + 1, sizeof *kin);
      be_program *kp = NULL;
      tl_error ke = {0};
      if (!tl_timing_inputs(kg, syms, kin, kerr, sizeof kerr) &&
          ((kp = be_compile(kg, &bo, &ke)) || tl_error_to(&ke, kerr, sizeof kerr) == 0)) {
        rk->measured = tl_time_run(kp, kin, syms, o.runs, o.budget_s, kerr, sizeof kerr);
        rk->not_one = be_program_stats(kp)->nkernels != 1;
      }
      if (rk->measured < 0) snprintf(rk->note, sizeof rk->note, "%s", kerr);
      be_program_free(kp);
      for (int j = 0; j < kg->ninputs; j++) tl_tensor_free(kin[j]);
      tl_free(kin);
      tl_graph_free(kg);
    } else {
      snprintf(rk->note, sizeof rk->note, "%s", kerr);
    }
  }
  rc = 0;
done:
  tl_free(map);
  tl_free(set);
  be_plan_free(&pl);
  if (in)
    for (int i = 0; i < g->ninputs; i++) tl_tensor_free(in[i]);
  tl_free(in);
  be_program_free(prog);
  if (rc) tl_cost_report_free(r);
  return rc;
}

void tl_cost_report_free(tl_cost_report *r) {
  tl_program_cost_free(&r->pc);
  tl_free(r->ks);
  memset(r, 0, sizeof *r);
}
