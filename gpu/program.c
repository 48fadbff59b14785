/* program.c - a GPU program: the CPU backend's kernel plan, one kernel
 * description per kernel (gb.h), the runtime's tables (gpurt.h), the PTX
 * (gk_nvptx.c) and a device to run it on: the CUDA driver (engine `gpu`)
 * or the emulator (engine `gpu-sim`).
 *
 * The plan is the CPU backend's (backend/plan.c) with one difference: a
 * kernel may write over a dead input's buffer, because on the GPU every
 * input is a device copy. Its steps are explicit: each input copied to
 * the device, each kernel launched in plan order, each output copied back. */
#include "gpu/gpu_internal.h"

#include "interp/interp.h"
#include "util/util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

gpu_options gpu_options_default(void) {
  gpu_options o;
  memset(&o, 0, sizeof o);
  o.use_cublas = 1;
  const char *ol = getenv("TLALOC_GPU_OPT_LEVEL");
  /* -O2: -O3 compiled the examples' kernels 15% slower (the matmul
   * kernel's unrolling above all: mlp_layer 41 -> 23 ms) for no change the
   * emulator or ptxas can see */
  o.opt_level = ol && *ol >= '0' && *ol <= '3' && !ol[1] ? *ol - '0' : 2;
  o.sim_blocks = 3;
  return o;
}

const char *gpu_arch(const gpu_options *o) {
  if (o && o->arch && *o->arch) return o->arch;
  const char *e = getenv("TLALOC_GPU_ARCH");
  return e && *e ? e : "sm_90";
}

const char *gpu_libdevice_path(const gpu_options *o, char *buf, size_t n) {
  if (o && o->libdevice) {
    if (!*o->libdevice) return NULL;
    snprintf(buf, n, "%s", o->libdevice);
  } else {
    const char *home = getenv("CUDA_HOME");
    snprintf(buf, n, "%s/nvvm/libdevice/libdevice.10.bc", home && *home ? home : "/usr/local/cuda");
  }
  FILE *f = fopen(buf, "rb");
  if (!f) return NULL;
  fclose(f);
  return buf;
}

int gpu_available(char *why, size_t n) { return gpu_rt_cuda_available(why, n); }

/* ---- plan and descriptions -------------------------------------------------------- */

int gpu_build_make(gpu_build *b, const tl_graph *g, int math, const char *name_prefix, char *err, size_t n) {
  memset(b, 0, sizeof *b);
  b->g = g;
  b->math = math;
  be_options bo = be_options_default();
  be_rules own;
  const be_rules *rules = be_rules_get(&bo, &own, err, n);
  if (!rules) return -1;
  int rc = be_plan_build_for(&b->plan, g, rules, 1, false, err, n); /* no BE_K_ROWS kernels here */
  if (rules == &own) be_rules_free(&own);
  if (rc) {
    /* the plan's message names the backend; this is the GPU's */
    if (!strncmp(err, "backend: ", 9)) memmove(err, "gpu: ", 5), memmove(err + 5, err + 9, strlen(err + 9) + 1);
    return -1;
  }
  /* a split reduction's partial results: a temporary of the plan's */
  int np = b->plan.nks, nsplit = 0;
  int32_t *scratch = tl_xcalloc((size_t)np + 1, sizeof *scratch);
  int *slots = tl_xcalloc((size_t)np + 1, sizeof *slots);
  for (int i = 0; i < np; i++) {
    tl_type st;
    scratch[i] = -1;
    if (!gb_red_split(g, &b->plan.ks[i], &st, &slots[i])) continue;
    scratch[i] = be_plan_add_buf(&b->plan, BE_BUF_TEMP, b->plan.ks[i].node, -1, &st);
    nsplit++;
  }
  b->is_const = tl_xcalloc((size_t)b->plan.nbufs + 1, 1);
  for (int i = 0; i < b->plan.nbufs; i++) b->is_const[i] = b->plan.bufs[i].kind == BE_BUF_CONST;
  b->ks = tl_xcalloc((size_t)(np + nsplit) + 1, sizeof *b->ks);
  gb gbs = {.p = &b->plan, .g = g, .math = math, .is_const = b->is_const, .err = err, .errn = n};
  rc = 0;
  for (int i = 0; i < np && !rc; i++) {
    /* stage 0: the plan kernel's own; a split reduction's 1 then 2 */
    int first = scratch[i] >= 0 ? 1 : 0, last = first ? 2 : 0;
    for (int stage = first; stage <= last && !rc; stage++) {
      char name[64];
      snprintf(name, sizeof name, "%sk%d%s", name_prefix ? name_prefix : "", i, stage == 1 ? "_part" : "");
      gbs.failed = 0;
      rc = gb_kernel(&gbs, i, name, stage, scratch[i], slots[i]);
      b->ks[b->nks++] = gbs.k;
      const char *dump = getenv("TLALOC_GPU_DUMP");
      if (!rc && dump && *dump == '1') {
        char *t = gk_print(gbs.k);
        fputs(t, stderr);
        tl_free(t);
      }
    }
  }
  tl_free(scratch);
  tl_free(slots);
  return rc ? -1 : 0;
}

void gpu_build_free(gpu_build *b) {
  for (int i = 0; i < b->nks; i++) gk_free(b->ks[i]);
  tl_free(b->ks);
  tl_free(b->is_const);
  be_plan_free(&b->plan);
  memset(b, 0, sizeof *b);
}

void gpu_tables_make(gpu_tables *t, const gpu_build *b) {
  memset(t, 0, sizeof *t);
  const be_plan *p = &b->plan;
  const tl_graph *g = b->g;
  t->bufs = tl_xcalloc((size_t)p->nbufs + 1, sizeof *t->bufs);
  for (int i = 0; i < p->nbufs; i++) {
    const be_buf *bb = &p->bufs[i];
    gpu_rt_buf *r = &t->bufs[i];
    r->kind = bb->kind;
    r->index = bb->index;
    r->dtype = bb->dtype;
    r->rank = bb->rank;
    memcpy(r->dims, bb->dims, sizeof r->dims);
  }
  t->ks = tl_xcalloc((size_t)b->nks + 1, sizeof *t->ks);
  t->lists = tl_xcalloc((size_t)b->nks + 1, sizeof *t->lists);
  for (int i = 0; i < b->nks; i++) {
    const gk_kernel *k = b->ks[i];
    const be_kern *kk = &p->ks[k->plan_kernel];
    gpu_rt_kernel *r = &t->ks[i];
    int32_t *l = t->lists[i] = tl_xcalloc((size_t)(k->nbufs + k->nsyms + kk->nreads + 1) + 1, sizeof *l);
    r->name = k->name;
    r->threads = k->launch.threads;
    r->nwork = k->launch.nwork;
    memcpy(r->work, k->launch.work, sizeof r->work);
    memcpy(r->wdiv, k->launch.wdiv, sizeof r->wdiv);
    r->per_block = k->launch.per_block;
    r->nbufs = k->nbufs;
    /* (no memcpy from a NULL list of none) */
    if (k->nbufs) memcpy(l, k->bufs, (size_t)k->nbufs * sizeof *l);
    r->bufs = l;
    r->nsyms = k->nsyms;
    if (k->nsyms) memcpy(l + k->nbufs, k->syms, (size_t)k->nsyms * sizeof *l);
    r->syms = l + k->nbufs;
    /* a split reduction's first kernel writes the scratch buffer, the
     * second reads it */
    const int32_t *reads = k->stage == 2 ? &k->scratch : kk->reads;
    r->nreads = k->stage == 2 ? 1 : kk->nreads;
    if (r->nreads) memcpy(l + k->nbufs + k->nsyms, reads, (size_t)r->nreads * sizeof *l);
    r->reads = l + k->nbufs + k->nsyms;
    r->out = k->stage == 1 ? k->scratch : kk->out;
    if (kk->kind == BE_K_MATMUL) {
      const tl_node *x = &g->nodes[kk->node];
      const tl_type *at = &g->nodes[tl_node_inputs(g, x)[0]].type, *bt = &g->nodes[tl_node_inputs(g, x)[1]].type;
      r->gemm = 1;
      r->ga = kk->opbuf[0];
      r->gb = kk->opbuf[1];
      r->gta = kk->trans[0];
      r->gtb = kk->trans[1];
      r->gar = at->rank;
      r->gbr = bt->rank;
      memcpy(r->gad, at->dims, sizeof r->gad);
      memcpy(r->gbd, bt->dims, sizeof r->gbd);
    }
  }
  int ns = 0;
  t->steps = tl_xcalloc((size_t)(p->nbufs + b->nks) + 1, sizeof *t->steps);
  for (int i = 0; i < p->nbufs; i++)
    if (p->bufs[i].kind == BE_BUF_INPUT) t->steps[ns++] = (gpu_rt_step){GPU_RT_H2D, i};
  for (int i = 0; i < b->nks; i++) t->steps[ns++] = (gpu_rt_step){GPU_RT_LAUNCH, i};
  for (int i = 0; i < p->nbufs; i++)
    if (p->bufs[i].kind == BE_BUF_OUTPUT) t->steps[ns++] = (gpu_rt_step){GPU_RT_D2H, i};
  t->prog = (gpu_rt_prog){.nbufs = p->nbufs, .nsyms = g->nsyms, .ninputs = g->ninputs, .noutputs = g->noutputs,
                          .nkernels = b->nks, .nsteps = ns, .bufs = t->bufs, .ks = t->ks, .steps = t->steps};
}

void gpu_tables_free(gpu_tables *t) {
  if (t->lists)
    for (int i = 0; i < t->prog.nkernels; i++) tl_free(t->lists[i]);
  tl_free(t->lists);
  tl_free(t->bufs);
  tl_free(t->ks);
  tl_free(t->steps);
  memset(t, 0, sizeof *t);
}

/* ---- PTX ---------------------------------------------------------------------------- */

static int math_mode(const gpu_options *o, const char **ld, char *buf, size_t n) {
  *ld = gpu_libdevice_path(o, buf, n);
  if (o->math == GPU_MATH_OWN) {
    *ld = NULL;
    return GB_MATH_OWN;
  }
  if (o->math == GPU_MATH_LIBDEVICE || o->sim) return GB_MATH_LIBDEVICE;
  return *ld ? GB_MATH_LIBDEVICE : GB_MATH_OWN;
}

char *gpu_ptx(const tl_graph *g, const gpu_options *o, const char *name_prefix, gpu_ptx_stats *st, char *err,
              size_t n) {
  gpu_options def = gpu_options_default();
  if (!o) o = &def;
  gpu_ptx_stats local;
  if (!st) st = &local;
  memset(st, 0, sizeof *st);
  double t0 = tl_now_ms();
  char buf[4096];
  const char *ld;
  int math = math_mode(o, &ld, buf, sizeof buf);
  if (math == GB_MATH_LIBDEVICE && !ld) {
    snprintf(err, n, "gpu: libdevice not found (CUDA_HOME, /usr/local/cuda) but asked for");
    return NULL;
  }
  gpu_build b;
  if (gpu_build_make(&b, g, math, name_prefix, err, n)) {
    gpu_build_free(&b);
    return NULL;
  }
  st->build_ms = tl_now_ms() - t0;
  char *ptx = gpu_nvptx(&b, gpu_arch(o), ld, o->opt_level, st, err, n);
  st->nkernels = b.nks;
  gpu_build_free(&b);
  st->total_ms = tl_now_ms() - t0;
  return ptx;
}

/* ---- programs ------------------------------------------------------------------------- */

struct gpu_program {
  const tl_graph *g;
  gpu_options o;
  gpu_build b;
  gpu_tables t;
  char *ptx;
  gpu_ptx_stats ps;
  gpu_rt_cuda cuda;
  int cuda_open;
  gpu_sim sim;
  gpu_rt_dev dev;
  gpu_rt_state st;
  double compile_ms, load_ms, run_ms;
};

gpu_program *gpu_compile(const tl_graph *g, const gpu_options *opt, tl_error *err) {
  double t0 = tl_now_ms();
  gpu_program *p = tl_xcalloc(1, sizeof *p);
  p->g = g;
  p->o = opt ? *opt : gpu_options_default();
  char why[512];
  if (!p->o.sim && !gpu_available(why, sizeof why)) {
    tl_fail(err, TL_BACKEND_FAILED, "%s", why);
    tl_free(p);
    return NULL;
  }
  char buf[4096];
  const char *ld;
  int math = math_mode(&p->o, &ld, buf, sizeof buf);
  if (gpu_build_make(&p->b, g, math, NULL, TL_EMSG(err))) {
    tl_fail_kind(err, TL_BAD_INPUT);
    gpu_program_free(p);
    return NULL;
  }
  p->ps.build_ms = tl_now_ms() - t0;
  gpu_tables_make(&p->t, &p->b);
  if (p->o.sim) {
    p->dev = gpu_sim_dev(&p->sim, &p->b, p->o.sim_blocks ? p->o.sim_blocks : 3);
  } else {
    p->ptx = gpu_nvptx(&p->b, gpu_arch(&p->o), ld, p->o.opt_level, &p->ps, TL_EMSG(err));
    if (!p->ptx) {
      tl_fail_kind(err, TL_BACKEND_FAILED);
      gpu_program_free(p);
      return NULL;
    }
    double t1 = tl_now_ms();
    if (gpu_rt_cuda_open(&p->cuda, &p->t.prog, p->ptx, p->o.use_cublas, TL_EMSG(err))) {
      tl_fail_kind(err, TL_BACKEND_FAILED);
      gpu_program_free(p);
      return NULL;
    }
    p->cuda_open = 1;
    p->load_ms = tl_now_ms() - t1;
    p->dev = gpu_rt_cuda_dev(&p->cuda);
  }
  gpu_rt_init(&p->st, &p->t.prog, &p->dev);
  p->compile_ms = tl_now_ms() - t0;
  return p;
}

void gpu_program_free(gpu_program *p) {
  if (!p) return;
  gpu_rt_fini(&p->st);
  if (p->cuda_open) gpu_rt_cuda_close(&p->cuda);
  gpu_tables_free(&p->t);
  gpu_build_free(&p->b);
  tl_free(p->ptx);
  tl_free(p);
}

static void views(const tl_graph *g, tl_tensor *const *ts, int nt, gpu_rt_tensor *v) {
  (void)g;
  for (int i = 0; i < nt; i++) {
    memset(&v[i], 0, sizeof v[i]);
    v[i].dtype = ts[i]->dtype;
    v[i].rank = ts[i]->rank;
    memcpy(v[i].dims, ts[i]->dims, (size_t)ts[i]->rank * sizeof *v[i].dims);
    v[i].data = ts[i]->data;
  }
}

/* The outcome of the runtime's code rc as the engines report it. */
static int report(const gpu_program *p, int rc, tl_error *err) {
  if (rc < 0) return tl_fail_kind(err, TL_BACKEND_FAILED); /* a driver call's message */
  if (rc == 0) return 0;
  return be_run_error(p->g, rc, err);
}

/* One call on the device once inputs and outputs are bound: the inputs
 * up, the kernels, the outputs down. */
static int call(gpu_program *p, const gpu_rt_tensor *vin, gpu_rt_tensor *vout, tl_error *err) {
  int rc = gpu_rt_upload(&p->st, vin, TL_EMSG(err));
  if (!rc) rc = gpu_rt_exec(&p->st, TL_EMSG(err));
  if (!rc) rc = gpu_rt_download(&p->st, vout, TL_EMSG(err));
  return report(p, rc, err);
}

/* Binds the symbols with the interpreter's messages (input names), then
 * prepares the device. */
static int prepare(gpu_program *p, tl_tensor *const *inputs, const int64_t *sym_values, gpu_rt_tensor *vin,
                   int64_t *syms, tl_error *err) {
  const tl_graph *g = p->g;
  for (int s = 0; s < g->nsyms; s++) syms[s] = sym_values ? sym_values[s] : -1;
  for (int i = 0; i < g->ninputs; i++)
    if (!inputs[i]) {
      return tl_fail(err, TL_BAD_INPUT, "input '%s' is missing", g->names[g->nodes[g->inputs[i]].name]);
    }
  if (tl_bind_inputs(g, inputs, syms, TL_EMSG(err))) return tl_fail_kind(err, TL_BAD_INPUT);
  views(g, inputs, g->ninputs, vin);
  /* the intermediates' device memory */
  return gpu_rt_prepare(&p->st, vin, syms, TL_EMSG(err)) ? tl_fail_kind(err, TL_BACKEND_FAILED) : 0;
}

int gpu_run(gpu_program *p, tl_tensor *const *inputs, const int64_t *sym_values, tl_tensor **outputs,
            tl_error *err) {
  const tl_graph *g = p->g;
  double t0 = tl_now_ms();
  for (int i = 0; i < g->noutputs; i++) outputs[i] = NULL;
  gpu_rt_tensor *vin = tl_xcalloc((size_t)g->ninputs + 1, sizeof *vin);
  gpu_rt_tensor *vout = tl_xcalloc((size_t)g->noutputs + 1, sizeof *vout);
  int64_t *syms = tl_xcalloc((size_t)g->nsyms + 1, sizeof *syms);
  int rc = prepare(p, inputs, sym_values, vin, syms, err);
  for (int i = 0; !rc && i < g->noutputs; i++) {
    int dt, rank;
    int64_t dims[8];
    gpu_rt_output_type(&p->st, i, &dt, &rank, dims);
    if (!(outputs[i] = tl_tensor_new((tl_dtype)dt, rank, dims, TL_EMSG(err)))) rc = tl_fail_kind(err, TL_BAD_INPUT);
    else views(g, &outputs[i], 1, &vout[i]);
  }
  if (!rc) {
    rc = call(p, vin, vout, err);
  }
  if (rc)
    for (int i = 0; i < g->noutputs; i++) {
      tl_tensor_free(outputs[i]);
      outputs[i] = NULL;
    }
  tl_free(vin);
  tl_free(vout);
  tl_free(syms);
  p->run_ms = tl_now_ms() - t0;
  return rc;
}

int gpu_run_into(gpu_program *p, tl_tensor *const *inputs, const int64_t *sym_values, tl_tensor *const *outputs,
                 tl_error *err) {
  const tl_graph *g = p->g;
  double t0 = tl_now_ms();
  gpu_rt_tensor *vin = tl_xcalloc((size_t)g->ninputs + 1, sizeof *vin);
  gpu_rt_tensor *vout = tl_xcalloc((size_t)g->noutputs + 1, sizeof *vout);
  int64_t *syms = tl_xcalloc((size_t)g->nsyms + 1, sizeof *syms);
  int rc = prepare(p, inputs, sym_values, vin, syms, err);
  for (int i = 0; !rc && i < g->noutputs; i++) {
    int dt, rank;
    int64_t dims[8];
    gpu_rt_output_type(&p->st, i, &dt, &rank, dims);
    const tl_tensor *o = outputs[i];
    if (!o || o->dtype != dt || o->rank != rank || memcmp(o->dims, dims, (size_t)rank * sizeof *dims) ||
        (!o->data && o->numel > 0)) {
      tl_fail(err, TL_BAD_INPUT, "output %d ('%s'): the buffer given does not have the output's dtype and shape", i,
               g->names[g->outputs[i].name]);
      rc = -1;
    }
  }
  if (!rc) {
    views(g, outputs, g->noutputs, vout);
    rc = call(p, vin, vout, err);
  }
  tl_free(vin);
  tl_free(vout);
  tl_free(syms);
  p->run_ms = tl_now_ms() - t0;
  return rc;
}

int gpu_program_kernels(const gpu_program *p) { return p->b.plan.nks; }
const char *gpu_device_name(const gpu_program *p) { return p->cuda_open ? p->cuda.devname : ""; }

double gpu_time(gpu_program *p, int ki, int reps, char *err, size_t n) {
  if (!p->cuda_open || !p->st.planned) {
    snprintf(err, n, "gpu: timing needs a program of the gpu engine that has run");
    return -1;
  }
  if (ki < 0) {
    double ms = gpu_rt_cuda_time_exec(&p->cuda, &p->st, reps, err, n);
    return ms < 0 ? -1 : ms * 1e-3;
  }
  /* plan kernel ki: both kernels of a split reduction */
  double ms = 0;
  for (int i = 0; i < p->b.nks; i++) {
    if (p->b.ks[i]->plan_kernel != ki) continue;
    double t = gpu_rt_cuda_time_kernel(&p->cuda, &p->st, i, reps, err, n);
    if (t < 0) return -1;
    ms += t;
  }
  return ms * 1e-3;
}

double gpu_copy_seconds(gpu_program *p, size_t bytes, int reps, int h2d, char *err, size_t n) {
  if (!p->cuda_open) {
    snprintf(err, n, "gpu: timing needs a program of the gpu engine");
    return -1;
  }
  return h2d ? gpu_rt_cuda_h2d_time(&p->cuda, bytes, reps, err, n) : gpu_rt_cuda_copy_time(&p->cuda, bytes, reps, err, n);
}

static const char *const kind_names[] = {"fused", "reduce", "softmax", "matmul", "take-chk", "scatter"};

char *gpu_describe(const gpu_program *p) {
  tl_buf b = {0};
  tl_buf_printf(&b, "{\"engine\": \"%s\", \"device\": \"%s\", \"arch\": \"%s\", \"math\": \"%s\", "
                    "\"build_ms\": %.3f, \"lower_ms\": %.3f, \"link_ms\": %.3f, \"opt_ms\": %.3f, \"emit_ms\": %.3f, "
                    "\"load_ms\": %.3f, \"compile_ms\": %.3f, \"run_ms\": %.3f, \"kernels\": %d, \"inplace\": %d, "
                    "\"h2d_bytes\": %.0f, \"d2h_bytes\": %.0f, \"launches\": %d, \"cublas_gemms\": %d, \"steps\": [",
                p->o.sim ? "gpu-sim" : "gpu", p->o.sim ? "emulator" : p->cuda.devname, gpu_arch(&p->o),
                p->b.math == GB_MATH_OWN ? "own" : p->o.sim ? "libm (as libdevice)" : "libdevice", p->ps.build_ms,
                p->ps.lower_ms, p->ps.link_ms, p->ps.opt_ms, p->ps.emit_ms, p->load_ms, p->compile_ms, p->run_ms,
                p->b.nks, p->b.plan.ninplace, p->st.bytes_h2d, p->st.bytes_d2h, p->st.launches, p->st.gemms);
  const gpu_rt_prog *pr = &p->t.prog;
  for (int i = 0; i < pr->nsteps; i++) {
    const gpu_rt_step *s = &pr->steps[i];
    if (s->kind == GPU_RT_LAUNCH) {
      const be_kern *k = &p->b.plan.ks[p->b.ks[s->arg]->plan_kernel];
      tl_buf_printf(&b, "%s\"launch %s (%s %s)\"", i ? ", " : "", pr->ks[s->arg].name, kind_names[k->kind],
                    tl_ops[p->g->nodes[k->node].op].name);
    } else {
      const gpu_rt_buf *bb = &pr->bufs[s->arg];
      int32_t node = s->kind == GPU_RT_H2D ? p->g->inputs[bb->index] : p->g->outputs[bb->index].node;
      const char *name = s->kind == GPU_RT_H2D ? p->g->names[p->g->nodes[node].name] : p->g->names[p->g->outputs[bb->index].name];
      tl_buf_printf(&b, "%s\"%s %s\"", i ? ", " : "", s->kind == GPU_RT_H2D ? "h2d" : "d2h", name);
    }
  }
  tl_buf_printf(&b, "]}");
  return b.s;
}
