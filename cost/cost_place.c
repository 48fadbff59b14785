/* cost/cost_place.c - the CPU or the GPU for a program (cost.h,
 * tl_cost_place): the program's `time` under a registry placed on each
 * device, with the GPU's copies and synchronisation added. docs/gpu.md
 * ("Placement") describes the model; `tlaloc run --device auto` and the
 * `auto` engine decide with it. */
#include "cost/cost.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/util.h"

static void concrete(const tl_type *t, const int64_t *syms, int nsyms, tl_type *out) {
  *out = *t;
  for (int i = 0; i < t->rank; i++) {
    int64_t d = t->dims[i];
    if (tl_dim_is_sym(d) && syms && tl_dim_sym_id(d) < nsyms && syms[tl_dim_sym_id(d)] >= 0)
      out->dims[i] = syms[tl_dim_sym_id(d)];
  }
}

static double bytes_of(const tl_type *t, double sym_size) {
  return tl_type_elems(t, sym_size) * (double)tl_dtype_size((tl_dtype)t->dtype);
}

/* The sum of `time` over g's nodes under r (each node its own part, as
 * extraction charges it); -1 with a message. */
static int total_time(const tl_cost_registry *r, const tl_graph *g, const int64_t *syms, double *out, char *err,
                      size_t n) {
  int np = tl_cost_nprops(r), tp = tl_cost_find(r, "time");
  double sym_size = tl_cost_sym_size(r);
  double *props = tl_xcalloc((size_t)g->nnodes * (size_t)np + 1, sizeof *props);
  double *opnd = tl_xmalloc(((size_t)TL_GRAPH_MAX_ARGS * (size_t)np + 1) * sizeof *opnd);
  const double **in = tl_xmalloc(TL_GRAPH_MAX_ARGS * sizeof *in);
  tl_type *types = tl_xmalloc((TL_GRAPH_MAX_ARGS + 1) * sizeof *types);
  const tl_type **in_type = tl_xmalloc(TL_GRAPH_MAX_ARGS * sizeof *in_type);
  bool *known = tl_xcalloc(TL_GRAPH_MAX_ARGS, sizeof *known);
  double *values = tl_xcalloc(TL_GRAPH_MAX_ARGS, sizeof *values);
  int rc = 0;
  *out = 0;
  for (int32_t id = 0; id < g->nnodes && !rc; id++) {
    const tl_node *nd = &g->nodes[id];
    const int32_t *args = tl_node_inputs(g, nd);
    concrete(&nd->type, syms, g->nsyms, &types[TL_GRAPH_MAX_ARGS]);
    for (int k = 0; k < nd->ninputs; k++) {
      double *v = opnd + (size_t)k * (size_t)np;
      for (int q = 0; q < np; q++)
        v[q] = tl_cost_prop_kind(r, q) == TL_PROP_VALUE ? props[(size_t)args[k] * (size_t)np + (size_t)q] : 0;
      in[k] = v;
      concrete(&g->nodes[args[k]].type, syms, g->nsyms, &types[k]);
      in_type[k] = &types[k];
    }
    tl_cost_node cn = {.op = nd->op, .attrs = &nd->attrs, .type = &types[TL_GRAPH_MAX_ARGS], .nin = nd->ninputs,
                       .in_type = in_type, .in_known = known, .in_value = values, .in = in,
                       .profile = tl_cost_profile(r), .sym_size = sym_size};
    double *o = props + (size_t)id * (size_t)np;
    rc = tl_cost_eval(r, &cn, o, err, n);
    *out += o[tp];
  }
  tl_free(props);
  tl_free(opnd);
  tl_free(in);
  tl_free(types);
  tl_free(in_type);
  tl_free(known);
  tl_free(values);
  return rc;
}

int tl_cost_place(const tl_profile *p, const tl_graph *g, const int64_t *syms, double sym_size, tl_placement *out,
                  char *err, size_t n) {
  memset(out, 0, sizeof *out);
  if (sym_size <= 0) sym_size = 1024;
  tl_cost_registry *cpu = tl_cost_registry_new(p, sym_size), *gpu = tl_cost_registry_new(p, sym_size);
  tl_cost_set_device(gpu, TL_DEVICE_GPU);
  double tc = 0, tg = 0;
  int rc = total_time(cpu, g, syms, &tc, err, n);
  if (!rc) rc = total_time(gpu, g, syms, &tg, err, n);
  if (!rc) {
    tl_type t;
    for (int i = 0; i < g->ninputs; i++) {
      concrete(&g->nodes[g->inputs[i]].type, syms, g->nsyms, &t);
      double b = bytes_of(&t, sym_size);
      out->h2d_bytes += b;
      out->h2d_s += tl_profile_transfer_time(p, b);
    }
    for (int i = 0; i < g->noutputs; i++) {
      concrete(&g->nodes[g->outputs[i].node].type, syms, g->nsyms, &t);
      double b = bytes_of(&t, sym_size);
      out->d2h_bytes += b;
      out->d2h_s += tl_profile_transfer_time(p, b);
    }
    out->cpu_s = tc + p->run_overhead;
    /* a program that computes anything launches at least one kernel: the
     * per-node model charges none for a wholly fused elementwise graph (its
     * root's kernel is the call on the CPU, run_overhead) */
    bool computes = false;
    for (int32_t i = 0; i < g->nnodes; i++) {
      tl_kind k = tl_ops[g->nodes[i].op].kind;
      computes |= k != TL_KIND_SOURCE && k != TL_KIND_CONSTANT;
    }
    out->gpu_kernels_s = tg + (computes ? p->gpu_launch : 0);
    out->gpu_s = out->gpu_kernels_s + out->h2d_s + out->d2h_s + p->gpu_sync;
    out->gpu = out->gpu_s < out->cpu_s;
  }
  tl_cost_registry_free(cpu);
  tl_cost_registry_free(gpu);
  return rc;
}
