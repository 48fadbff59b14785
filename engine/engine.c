/* engine.c - the engine table: the reference interpreter, the LLVM CPU
 * backend, the GPU backend and its emulator behind engine.h's interface.
 * Each entry adapts its module's own API; nothing here computes. */
#include "engine/engine.h"
#include "engine/staged.h"

#include "backend/backend.h"
#include "cost/cost.h"
#include "cost/profile.h"
#include "gpu/gpu.h"
#include "interp/interp.h"
#include "util/util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

tl_engine_opts tl_engine_opts_default(void) {
  tl_engine_opts o;
  memset(&o, 0, sizeof o);
  return o;
}

/* ---- the reference interpreter ------------------------------------------ */

static void *interp_compile(const tl_graph *g, const tl_engine_opts *o, tl_error *err) {
  (void)o;
  for (int32_t i = 0; i < g->nnodes; i++)
    if (!tl_interp_has(g->nodes[i].op)) {
      tl_fail(err, TL_BAD_INPUT, "interp: op %s has no interpreter kernel", tl_ops[g->nodes[i].op].name);
      return NULL;
    }
  return (void *)g;
}

/* The interpreter's only failures are the input's (running out of memory
 * unwinds, util/alloc.h). */
static int interp_run(void *prog, tl_tensor *const *inputs, const int64_t *syms, tl_tensor **outputs,
                      tl_error *err) {
  return tl_interp_run(prog, inputs, syms, outputs, TL_EMSG(err)) ? tl_fail_kind(err, TL_BAD_INPUT) : 0;
}

/* run_into for an engine that allocates its results: res (rc, the run's
 * status) checked against the caller's buffers and copied; res freed. */
static int copy_results(const tl_graph *g, tl_tensor **res, int rc, tl_tensor *const *outputs, tl_error *err) {
  for (int i = 0; !rc && i < g->noutputs; i++) {
    const tl_tensor *r = res[i], *o = outputs[i];
    bool same = r->dtype == o->dtype && r->rank == o->rank;
    for (int k = 0; same && k < r->rank; k++) same = r->dims[k] == o->dims[k];
    if (!same) {
      rc = tl_fail(err, TL_BAD_INPUT, "output %d ('%s'): the buffer given does not have the output's dtype and shape",
                   i, g->names[g->outputs[i].name]);
    }
  }
  for (int i = 0; !rc && i < g->noutputs; i++)
    if (res[i]->numel) memcpy(outputs[i]->data, res[i]->data, (size_t)res[i]->numel * tl_dtype_size((tl_dtype)res[i]->dtype));
  for (int i = 0; i < g->noutputs; i++) tl_tensor_free(res[i]);
  tl_free(res);
  return rc;
}

/* The interpreter allocates its results: run, check, copy. */
static int interp_run_into(void *prog, tl_tensor *const *inputs, const int64_t *syms,
                           tl_tensor *const *outputs, tl_error *err) {
  const tl_graph *g = prog;
  tl_tensor **res = tl_xcalloc((size_t)g->noutputs + 1, sizeof *res);
  return copy_results(g, res, interp_run((void *)g, inputs, syms, res, err), outputs, err);
}

static char *interp_describe(const void *prog) {
  (void)prog;
  return tl_xstrdup("{\"engine\": \"interp\"}");
}

static void interp_free(void *prog) { (void)prog; }

/* ---- the LLVM CPU backend ----------------------------------------------- */

static void *llvm_compile(const tl_graph *g, const tl_engine_opts *o, tl_error *err) {
  be_options bo = be_options_default();
  if (o->opt_level) bo.opt_level = o->opt_level < 0 ? 0 : o->opt_level;
  bo.threads = o->threads;
  if (o->use_cache) bo.use_cache = o->use_cache > 0;
  bo.cache_dir = o->cache_dir;
  bo.destroy_inputs = o->destroy_inputs;
  /* the vector math `tlaloc calibrate` measured faster here (without a
   * profile the CPU kind's default, cost/profile.c; an unreadable profile
   * is the defaults, as for the cost model) */
  tl_profile prof;
  char perr[256];
  if (tl_profile_get(&prof, perr, sizeof perr)) tl_profile_default(&prof);
  bo.own_math = prof.own_math;
  bo.split_elems = (long)prof.parallel_min_elems; /* where splitting pays here */
  return be_compile(g, &bo, err);
}

static int llvm_run(void *prog, tl_tensor *const *inputs, const int64_t *syms, tl_tensor **outputs,
                    tl_error *err) {
  return be_run(prog, inputs, syms, outputs, err);
}

static int llvm_run_into(void *prog, tl_tensor *const *inputs, const int64_t *syms,
                         tl_tensor *const *outputs, tl_error *err) {
  return be_run_into(prog, inputs, syms, outputs, err);
}

static char *llvm_describe(const void *prog) {
  const be_stats *s = be_program_stats(prog);
  tl_buf b = {0};
  tl_buf_printf(&b, "{\"engine\": \"llvm\", \"plan_ms\": %.3f, \"lower_ms\": %.3f, \"opt_ms\": %.3f, "
                    "\"codegen_ms\": %.3f, \"cache_ms\": %.3f, \"jit_ms\": %.3f, \"compile_ms\": %.3f, "
                    "\"cache_hit\": %s, \"cache_bad\": %s, \"kernels\": %d, \"inplace\": %d, "
                    "\"one_pass\": %d, \"arena_bytes\": %zu}",
                s->plan_ms, s->lower_ms, s->opt_ms, s->codegen_ms, s->cache_ms, s->jit_ms, s->total_ms,
                s->cache_hit ? "true" : "false", s->cache_bad ? "true" : "false", s->nkernels, s->ninplace,
                s->npasses, s->arena_bytes);
  return b.s;
}

static void llvm_free(void *prog) { be_program_free(prog); }

/* ---- the GPU backend: on the GPU, and on the host's emulator of the grid ---- */

static void *gpu_compile_with(const tl_graph *g, const tl_engine_opts *o, int sim, tl_error *err) {
  gpu_options go = gpu_options_default();
  go.sim = sim;
  if (o->opt_level) go.opt_level = o->opt_level < 0 ? 0 : o->opt_level;
  return gpu_compile(g, &go, err);
}

static void *gpu_eng_compile(const tl_graph *g, const tl_engine_opts *o, tl_error *err) {
  return gpu_compile_with(g, o, 0, err);
}

static void *sim_eng_compile(const tl_graph *g, const tl_engine_opts *o, tl_error *err) {
  return gpu_compile_with(g, o, 1, err);
}

static int gpu_eng_run(void *prog, tl_tensor *const *inputs, const int64_t *syms, tl_tensor **outputs,
                       tl_error *err) {
  return gpu_run(prog, inputs, syms, outputs, err);
}

static int gpu_eng_run_into(void *prog, tl_tensor *const *inputs, const int64_t *syms, tl_tensor *const *outputs,
                            tl_error *err) {
  return gpu_run_into(prog, inputs, syms, outputs, err);
}

static char *gpu_eng_describe(const void *prog) { return gpu_describe(prog); }
static void gpu_eng_free(void *prog) { gpu_program_free(prog); }

/* ---- auto: the CPU or the GPU, whichever the cost model predicts faster ----
 * Decided at each run, on the call's sizes (tl_cost_place): a program that
 * is fast on the CPU stays there, one whose kernels outweigh copying its
 * inputs over and its outputs back goes to the GPU. The CPU program is
 * compiled up front (it is also the answer whenever there is no GPU); the
 * GPU's when it is first chosen. */

typedef struct auto_prog {
  const tl_graph *g;
  tl_engine_opts o;
  tl_profile prof;
  void *cpu, *gpu;
  int gpu_ok;
  char why[512];   /* why the GPU is not used, when it is not */
  tl_placement last;
  int last_gpu, runs;
} auto_prog;

static void *auto_compile(const tl_graph *g, const tl_engine_opts *o, tl_error *err) {
  auto_prog *a = tl_xcalloc(1, sizeof *a);
  a->g = g;
  a->o = *o;
  char perr[512];
  if (tl_profile_get(&a->prof, perr, sizeof perr)) tl_profile_default(&a->prof);
  if (!(a->cpu = llvm_compile(g, o, err))) {
    tl_free(a);
    return NULL;
  }
  a->gpu_ok = gpu_available(a->why, sizeof a->why);
  return a;
}

/* The engine's program for this call's sizes. */
static void *auto_choose(auto_prog *a, tl_tensor *const *inputs, const int64_t *sym_values) {
  const tl_graph *g = a->g;
  int64_t *syms = tl_xcalloc((size_t)g->nsyms + 1, sizeof *syms);
  for (int s = 0; s < g->nsyms; s++) syms[s] = sym_values ? sym_values[s] : -1;
  char e2[512];
  int bound = !tl_bind_inputs(g, inputs, syms, e2, sizeof e2);
  int place = bound && !tl_cost_place(&a->prof, g, syms, 0, &a->last, e2, sizeof e2);
  tl_free(syms);
  a->runs++;
  a->last_gpu = 0;
  if (!place || !a->last.gpu || !a->gpu_ok) return a->cpu;
  tl_error gerr = {0};
  if (!a->gpu && !(a->gpu = gpu_compile_with(g, &a->o, 0, &gerr))) {
    /* the CPU program answers instead: not this call's failure */
    snprintf(a->why, sizeof a->why, "%.500s", gerr.msg);
    a->gpu_ok = 0;
    return a->cpu;
  }
  a->last_gpu = 1;
  return a->gpu;
}

static int auto_run(void *prog, tl_tensor *const *inputs, const int64_t *syms, tl_tensor **outputs,
                    tl_error *err) {
  auto_prog *a = prog;
  void *p = auto_choose(a, inputs, syms);
  return p == a->gpu ? gpu_run(p, inputs, syms, outputs, err) : be_run(p, inputs, syms, outputs, err);
}

static int auto_run_into(void *prog, tl_tensor *const *inputs, const int64_t *syms, tl_tensor *const *outputs,
                         tl_error *err) {
  auto_prog *a = prog;
  void *p = auto_choose(a, inputs, syms);
  return p == a->gpu ? gpu_run_into(p, inputs, syms, outputs, err) : be_run_into(p, inputs, syms, outputs, err);
}

static char *auto_describe(const void *prog) {
  const auto_prog *a = prog;
  char *inner = a->last_gpu ? gpu_describe(a->gpu) : llvm_describe(a->cpu);
  tl_buf b = {0};
  tl_buf_printf(&b, "{\"engine\": \"auto\", \"device\": \"%s\", \"predicted_cpu_us\": %.3f, "
                    "\"predicted_gpu_us\": %.3f, \"predicted_gpu_kernels_us\": %.3f, \"predicted_h2d_us\": %.3f, "
                    "\"predicted_d2h_us\": %.3f, \"gpu\": \"%s\", \"program\": %s}",
                a->last_gpu ? "gpu" : "cpu", a->last.cpu_s * 1e6, a->last.gpu_s * 1e6, a->last.gpu_kernels_s * 1e6,
                a->last.h2d_s * 1e6, a->last.d2h_s * 1e6, a->gpu_ok ? "available" : a->why, inner);
  tl_free(inner);
  return b.s;
}

static void auto_free(void *prog) {
  auto_prog *a = prog;
  if (!a) return;
  be_program_free(a->cpu);
  gpu_program_free(a->gpu);
  tl_free(a);
}

/* ---- the table ----------------------------------------------------------
 * The LLVM backend compiles functions, conditionals and loops into its
 * program; on the GPU engines and auto a graph with them runs staged
 * (engine/staged.h): their programs are wrapped so that one interface
 * serves both. */

static const tl_engine raw[] = {
  {"llvm", "LLVM CPU backend: fused kernels JIT-compiled for the host", llvm_compile, llvm_run, llvm_run_into,
   llvm_describe, llvm_free, NULL},
  {"gpu", "GPU backend: the same kernels as PTX (LLVM NVPTX), run through the CUDA driver", gpu_eng_compile,
   gpu_eng_run, gpu_eng_run_into, gpu_eng_describe, gpu_eng_free, gpu_available},
  {"gpu-sim", "the GPU backend's kernels on the host's emulator of the grid (every block, every thread)",
   sim_eng_compile, gpu_eng_run, gpu_eng_run_into, gpu_eng_describe, gpu_eng_free, NULL},
  {"auto", "llvm or gpu at each run, whichever the cost model predicts faster for the call's sizes (copies included)",
   auto_compile, auto_run, auto_run_into, auto_describe, auto_free, NULL},
};

typedef struct wprog {
  const tl_engine *raw;
  void *p;        /* the raw engine's program, or */
  tl_staged *s;   /* the staged one (the graph has control flow) */
  const tl_graph *g;
  tl_graph *inlined; /* what runs when calls were inlined (owned), else NULL */
} wprog;

static void *wrap_compile(const tl_engine *e, const tl_graph *g, const tl_engine_opts *o, tl_error *err) {
  wprog *w = tl_xcalloc(1, sizeof *w);
  w->raw = e;
  w->g = g;
  const tl_graph *run = g;
  if (tl_graph_has_control(g) && !g->fns->calls_decided) {
    /* small straight-line functions are inlined: they fuse with their
     * callers, and a graph left without control flow is compiled whole
     * (unless the optimizer's cost model chose which calls stay) */
    w->inlined = tl_inline_calls(g, TL_INLINE_MAX_NODES, TL_EMSG(err));
    if (!w->inlined) {
      tl_fail_kind(err, TL_INTERNAL);
      tl_free(w);
      return NULL;
    }
    run = w->inlined;
  }
  /* the LLVM backend compiles control flow into its program (branches and
   * loops in the generated code); the others run it staged, and so does
   * llvm under TLALOC_STAGED=1 (bench/control measures one against the
   * other) and for a loop with :stack */
  const char *st = getenv("TLALOC_STAGED");
  bool staged = e != &raw[0] || (st && *st && *st != '0') || tl_graph_stacks(run);
  if (tl_graph_has_control(run) && staged) w->s = tl_staged_compile(run, e, o, err);
  else w->p = e->compile(run, o, err);
  if (!w->s && !w->p) {
    tl_graph_free(w->inlined);
    tl_free(w);
    return NULL;
  }
  return w;
}

static void *w_llvm(const tl_graph *g, const tl_engine_opts *o, tl_error *err) { return wrap_compile(&raw[0], g, o, err); }
static void *w_gpu(const tl_graph *g, const tl_engine_opts *o, tl_error *err) { return wrap_compile(&raw[1], g, o, err); }
static void *w_sim(const tl_graph *g, const tl_engine_opts *o, tl_error *err) { return wrap_compile(&raw[2], g, o, err); }
static void *w_auto(const tl_graph *g, const tl_engine_opts *o, tl_error *err) { return wrap_compile(&raw[3], g, o, err); }

static int w_run(void *prog, tl_tensor *const *inputs, const int64_t *syms, tl_tensor **outputs, tl_error *err) {
  wprog *w = prog;
  return w->s ? tl_staged_run(w->s, inputs, syms, outputs, err) : w->raw->run(w->p, inputs, syms, outputs, err);
}

static int w_run_into(void *prog, tl_tensor *const *inputs, const int64_t *syms, tl_tensor *const *outputs,
                      tl_error *err) {
  wprog *w = prog;
  if (!w->s) return w->raw->run_into(w->p, inputs, syms, outputs, err);
  /* staged: run, check, copy (as the interpreter does) */
  const tl_graph *g = w->g;
  tl_tensor **res = tl_xcalloc((size_t)g->noutputs + 1, sizeof *res);
  return copy_results(g, res, tl_staged_run(w->s, inputs, syms, res, err), outputs, err);
}

static char *w_describe(const void *prog) {
  const wprog *w = prog;
  return w->s ? tl_staged_describe(w->s) : w->raw->describe(w->p);
}

static void w_free(void *prog) {
  wprog *w = prog;
  if (!w) return;
  if (w->s) tl_staged_free(w->s);
  else w->raw->free(w->p);
  tl_graph_free(w->inlined);
  tl_free(w);
}

static const tl_engine engines[] = {
  {"interp", "the reference interpreter (plain C, one kernel per op, slow on purpose)", interp_compile,
   interp_run, interp_run_into, interp_describe, interp_free, NULL},
  {"llvm", "LLVM CPU backend: fused kernels JIT-compiled for the host", w_llvm, w_run, w_run_into, w_describe,
   w_free, NULL},
  {"gpu", "GPU backend: the same kernels as PTX (LLVM NVPTX), run through the CUDA driver", w_gpu, w_run,
   w_run_into, w_describe, w_free, gpu_available},
  {"gpu-sim", "the GPU backend's kernels on the host's emulator of the grid (every block, every thread)", w_sim,
   w_run, w_run_into, w_describe, w_free, NULL},
  {"auto", "llvm or gpu at each run, whichever the cost model predicts faster for the call's sizes (copies included)",
   w_auto, w_run, w_run_into, w_describe, w_free, NULL},
};
enum { NENGINES = sizeof engines / sizeof engines[0] };

const tl_engine *tl_engine_find(const char *name, size_t n) {
  if (!n) n = strlen(name);
  for (int i = 0; i < NENGINES; i++)
    if (strlen(engines[i].name) == n && !memcmp(engines[i].name, name, n)) return &engines[i];
  return NULL;
}

const tl_engine *tl_engine_at(int i) { return i >= 0 && i < NENGINES ? &engines[i] : NULL; }

char *tl_engine_names(char *buf, size_t n) {
  size_t l = 0;
  buf[0] = 0;
  for (int i = 0; i < NENGINES && l < n; i++)
    l += (size_t)snprintf(buf + l, n - l, "%s%s", i ? ", " : "", engines[i].name);
  return buf;
}
