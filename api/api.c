/* api.c - the public C API (include/tlaloc.h) over the internal modules. */
#include "tlaloc.h"

#include "backend/blas.h"
#include "cost/profile.h"
#include "engine/engine.h"
#include "interp/interp.h"
#include "ir/tg.h"
#include "opt/opt.h"
#include "util/error.h"
#include "util/util.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The public statuses are util/error.h's, number for number. */
_Static_assert((int)TLALOC_OK == TL_OK && (int)TLALOC_CHECK_FAILED == TL_CHECK_FAILED &&
                  (int)TLALOC_BAD_INPUT == TL_BAD_INPUT && (int)TLALOC_OUT_OF_MEMORY == TL_OUT_OF_MEMORY &&
                  (int)TLALOC_INTERNAL_ERROR == TL_INTERNAL && (int)TLALOC_BACKEND_FAILED == TL_BACKEND_FAILED,
              "tlaloc_status and tl_status differ");

_Static_assert(TLALOC_MAX_RANK == TL_MAX_RANK, "public and internal max rank agree");
_Static_assert((int)TLALOC_F64 == (int)TL_F64 && (int)TLALOC_BOOL == (int)TL_BOOL,
               "public and internal dtype codes agree");

static tlaloc_status tlaloc_parse_unguarded(const char *src, size_t len, const char *file, tlaloc_graph **out,
                           char **errors) {
  tl_diag d;
  tl_diag_init(&d, file, src, len);
  *out = tl_tg_parse(src, len, &d);
  if (errors) *errors = *out ? NULL : tl_xstrdup(tl_diag_text(&d));
  tl_diag_free(&d);
  return *out ? TLALOC_OK : TLALOC_BAD_INPUT;
}

void tlaloc_graph_free(tlaloc_graph *g) { tl_graph_free(g); }
static char *tlaloc_print_unguarded(const tlaloc_graph *g) { return tl_tg_print(g); }
int tlaloc_num_inputs(const tlaloc_graph *g) { return g->ninputs; }
int tlaloc_num_outputs(const tlaloc_graph *g) { return g->noutputs; }

const char *tlaloc_input_name(const tlaloc_graph *g, int i) {
  return i >= 0 && i < g->ninputs ? g->names[g->nodes[g->inputs[i]].name] : NULL;
}

const char *tlaloc_output_name(const tlaloc_graph *g, int i) {
  return i >= 0 && i < g->noutputs ? g->names[g->outputs[i].name] : NULL;
}

static char *type_string(const tlaloc_graph *g, const tl_type *t) {
  char buf[256];
  return tl_xstrdup(tl_type_str(g, t, buf, sizeof buf));
}

static char *tlaloc_input_type_unguarded(const tlaloc_graph *g, int i) {
  return i >= 0 && i < g->ninputs ? type_string(g, &g->nodes[g->inputs[i]].type) : NULL;
}

static char *tlaloc_output_type_unguarded(const tlaloc_graph *g, int i) {
  return i >= 0 && i < g->noutputs ? type_string(g, &g->nodes[g->outputs[i].node].type) : NULL;
}

static void set_error(char **errors, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void set_error(char **errors, const char *fmt, ...) {
  if (!errors) return;
  tl_buf b = {0};
  char tmp[1024];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(tmp, sizeof tmp, fmt, ap);
  va_end(ap);
  tl_buf_printf(&b, "%s", tmp);
  *errors = b.s;
}

/* Wraps the input descriptors and binds the symbols; -1 with a message. */
static int bind(const tlaloc_graph *g, const tlaloc_tensor *inputs, int nin, int nout, tl_tensor **in,
                int64_t *syms, char *err, size_t n) {
  if (nin != g->ninputs || nout != g->noutputs) {
    snprintf(err, n, "graph '%s' takes %d inputs and gives %d outputs (called with %d and %d)",
             g->name, g->ninputs, g->noutputs, nin, nout);
    return -1;
  }
  for (int i = 0; i < g->nsyms; i++) syms[i] = -1;
  for (int i = 0; i < nin; i++) {
    const tlaloc_tensor *x = &inputs[i];
    if (x->dtype < 0 || x->dtype >= TL_DTYPE_COUNT || x->rank < 0 || x->rank > TL_MAX_RANK ||
        !(in[i] = tl_tensor_wrap((tl_dtype)x->dtype, x->rank, x->dims, x->data))) {
      snprintf(err, n, "input %d has a bad descriptor (dtype %d, rank %d)", i, x->dtype, x->rank);
      return -1;
    }
  }
  return tl_bind_inputs(g, in, syms, err, n);
}

/* The dims of t when only loops' :trips symbols (bound when those loops
 * have run) leave some unknown: those are -1. False when t needs another
 * symbol the inputs did not bind (the caller's error stands). */
static bool late_dims(const tl_graph *g, const tl_type *t, const int64_t *syms, int64_t *dims) {
  if (!tl_graph_stacks(g)) return false;
  int64_t *s1 = tl_xmalloc(((size_t)g->nsyms + 1) * sizeof *s1), *s2 = tl_xmalloc(((size_t)g->nsyms + 1) * sizeof *s2);
  memcpy(s1, syms, (size_t)g->nsyms * sizeof *s1);
  memcpy(s2, syms, (size_t)g->nsyms * sizeof *s2);
  for (int32_t i = 0; i < g->nnodes; i++) { /* two trial values for each :trips still unbound */
    const tl_node *x = &g->nodes[i];
    int s = (x->op == TL_OP_LOOP && (x->attrs.present & TL_A_TRIPS)) ? tl_dim_sym_id(x->attrs.tdim) : -1;
    if (s >= 0 && syms[s] < 0) s1[s] = 1000003, s2[s] = 1999993; /* far apart: floordiv(t, k) differs too */
  }
  char e[256];
  int64_t d1[TL_MAX_RANK], d2[TL_MAX_RANK];
  bool ok = !tl_concrete_dims(g, t, s1, d1, e, sizeof e) && !tl_concrete_dims(g, t, s2, d2, e, sizeof e);
  for (int k = 0; ok && k < t->rank; k++) dims[k] = d1[k] == d2[k] ? d1[k] : -1;
  tl_free(s1);
  tl_free(s2);
  return ok;
}

static tlaloc_status tlaloc_output_shapes_unguarded(const tlaloc_graph *g, const tlaloc_tensor *inputs, int nin,
                                   tlaloc_tensor *outputs, int nout, char **errors) {
  char err[1024];
  if (errors) *errors = NULL;
  tl_tensor **in = tl_xcalloc((size_t)nin + 1, sizeof *in);
  int64_t *syms = tl_xmalloc(((size_t)g->nsyms + 1) * sizeof *syms);
  tlaloc_status st = TLALOC_OK;
  if (bind(g, inputs, nin, nout, in, syms, err, sizeof err)) st = TLALOC_BAD_INPUT;
  for (int i = 0; i < nout && st == TLALOC_OK; i++) {
    const tl_type *t = &g->nodes[g->outputs[i].node].type;
    memset(&outputs[i], 0, sizeof outputs[i]);
    outputs[i].dtype = t->dtype;
    outputs[i].rank = t->rank;
    if (tl_concrete_dims(g, t, syms, outputs[i].dims, err, sizeof err) && !late_dims(g, t, syms, outputs[i].dims))
      st = TLALOC_BAD_INPUT;
  }
  if (st != TLALOC_OK) set_error(errors, "%s", err);
  for (int i = 0; i < nin; i++) tl_tensor_free(in[i]);
  tl_free(in);
  tl_free(syms);
  return st;
}

static tlaloc_status tlaloc_run_unguarded(const tlaloc_graph *g, const tlaloc_tensor *inputs, int nin,
                         tlaloc_tensor *outputs, int nout, char **errors) {
  char err[1024];
  if (errors) *errors = NULL;
  tl_tensor **in = tl_xcalloc((size_t)nin + 1, sizeof *in);
  tl_tensor **out = tl_xcalloc((size_t)nout + 1, sizeof *out);
  int64_t *syms = tl_xmalloc(((size_t)g->nsyms + 1) * sizeof *syms);
  tlaloc_status st = TLALOC_OK;
  if (bind(g, inputs, nin, nout, in, syms, err, sizeof err) || tl_interp_run(g, in, syms, out, err, sizeof err))
    st = TLALOC_BAD_INPUT;
  /* caller buffers must have the output's exact type */
  for (int i = 0; i < nout && st == TLALOC_OK; i++) {
    const tlaloc_tensor *o = &outputs[i];
    if (!o->data) continue;
    const tl_tensor *t = out[i];
    bool same = o->dtype == t->dtype && o->rank == t->rank;
    for (int k = 0; same && k < t->rank; k++) same = o->dims[k] == t->dims[k];
    if (!same) {
      char want[256];
      tl_type ty;
      memset(&ty, 0, sizeof ty);
      ty.dtype = t->dtype;
      ty.rank = t->rank;
      memcpy(ty.dims, t->dims, sizeof ty.dims);
      snprintf(err, sizeof err, "output %d ('%s') is %s; the buffer given does not match", i,
               g->names[g->outputs[i].name], tl_type_str(NULL, &ty, want, sizeof want));
      st = TLALOC_BAD_INPUT;
    }
  }
  if (st == TLALOC_OK) {
    for (int i = 0; i < nout; i++) {
      tl_tensor *t = out[i];
      if (outputs[i].data) {
        memcpy(outputs[i].data, t->data, (size_t)t->numel * tl_dtype_size((tl_dtype)t->dtype));
      } else {
        memset(&outputs[i], 0, sizeof outputs[i]);
        outputs[i].dtype = t->dtype;
        outputs[i].rank = t->rank;
        memcpy(outputs[i].dims, t->dims, sizeof t->dims);
        outputs[i].data = t->data; /* ownership passes to the caller */
        t->owns = false;
      }
    }
  } else {
    set_error(errors, "%s", err);
  }
  for (int i = 0; i < nout; i++) tl_tensor_free(out[i]);
  for (int i = 0; i < nin; i++) tl_tensor_free(in[i]);
  tl_free(in);
  tl_free(out);
  tl_free(syms);
  return st;
}

/* ---- compiled programs ---------------------------------------------------- */

struct tl_api_program {
  const tl_graph *g;
  const tl_engine *engine;
  void *prog;
  /* per-call descriptors, reused: a program runs on one thread at a time,
   * and the per-call path then allocates nothing */
  tl_tensor *in, *out;
  tl_tensor **inp, **outp;
  int64_t *syms;
  bool *allocated;
  bool stacks; /* a loop with :stack: output shapes known only after a run */
};

static tlaloc_status tlaloc_compile_unguarded(const tlaloc_graph *g, const tlaloc_compile_options *opts,
                             tlaloc_program **out, char **errors) {
  if (errors) *errors = NULL;
  *out = NULL;
  tl_engine_opts eo = tl_engine_opts_default();
  const tl_engine *engine = tl_engine_find("llvm", 0);
  if (opts && opts->engine && !(engine = tl_engine_find(opts->engine, 0))) {
    char names[256];
    set_error(errors, "no engine '%s' (engines: %s)", opts->engine, tl_engine_names(names, sizeof names));
    return TLALOC_BAD_INPUT;
  }
  if (opts && opts->device) {
    const char *d = opts->device, *name = !strcmp(d, "cpu") ? "llvm" : d;
    const tl_engine *de = !strcmp(d, "cpu") || !strcmp(d, "gpu") || !strcmp(d, "gpu-sim") || !strcmp(d, "auto")
                              ? tl_engine_find(name, 0) : NULL;
    if (!de) {
      set_error(errors, "device '%s': expected cpu, gpu, gpu-sim or auto", d);
      return TLALOC_BAD_INPUT;
    }
    if (opts->engine && de != engine) {
      set_error(errors, "engine '%s' and device '%s' name different engines", opts->engine, d);
      return TLALOC_BAD_INPUT;
    }
    engine = de;
  }
  if (opts) {
    if (opts->opt_level < -1 || opts->opt_level > 3) {
      set_error(errors, "opt_level %d: expected -1 (no IR passes), 0 (the default), 1, 2 or 3",
                opts->opt_level);
      return TLALOC_BAD_INPUT;
    }
    if (opts->threads < 0) {
      set_error(errors, "threads %d: expected 0 (the default) or a count", opts->threads);
      return TLALOC_BAD_INPUT;
    }
    if (opts->use_cache < -1 || opts->use_cache > 1) {
      set_error(errors, "use_cache %d: expected 0 (the default), 1 (on) or -1 (off)",
                opts->use_cache);
      return TLALOC_BAD_INPUT;
    }
    eo.opt_level = opts->opt_level;
    eo.threads = opts->threads;
    eo.use_cache = opts->use_cache;
    eo.cache_dir = opts->cache_dir;
  }
  tl_error err = {0};
  void *prog = engine->compile(g, &eo, &err);
  if (!prog) {
    set_error(errors, "%s", err.msg);
    return (tlaloc_status)err.status;
  }
  tlaloc_program *p = tl_xcalloc(1, sizeof *p);
  p->g = g;
  p->engine = engine;
  p->prog = prog;
  p->in = tl_xcalloc((size_t)g->ninputs + 1, sizeof *p->in);
  p->inp = tl_xcalloc((size_t)g->ninputs + 1, sizeof *p->inp);
  p->out = tl_xcalloc((size_t)g->noutputs + 1, sizeof *p->out);
  p->outp = tl_xcalloc((size_t)g->noutputs + 1, sizeof *p->outp);
  p->syms = tl_xcalloc((size_t)g->nsyms + 1, sizeof *p->syms);
  p->allocated = tl_xcalloc((size_t)g->noutputs + 1, sizeof *p->allocated);
  for (int i = 0; i < g->ninputs; i++) p->inp[i] = &p->in[i];
  for (int i = 0; i < g->noutputs; i++) p->outp[i] = &p->out[i];
  p->stacks = tl_graph_stacks(g);
  *out = p;
  return TLALOC_OK;
}

/* Fills t from the public descriptor x without allocating; NULL, or what
 * is wrong with the descriptor. */
static const char *describe(tl_tensor *t, const tlaloc_tensor *x) {
  if (x->dtype < 0 || x->dtype >= TL_DTYPE_COUNT) return "no such dtype";
  if (x->rank < 0 || x->rank > TL_MAX_RANK) return "rank out of range";
  int64_t numel = 1;
  for (int k = 0; k < x->rank; k++) {
    int64_t d = x->dims[k];
    if (d < 0) return "a negative dim";
    if (d && numel > TL_TENSOR_MAX_BYTES / d) return "too many elements";
    numel *= d;
  }
  if (numel && !x->data) return "data is NULL";
  t->dtype = (uint8_t)x->dtype;
  t->rank = (uint8_t)x->rank;
  t->owns = false;
  memcpy(t->dims, x->dims, (size_t)x->rank * sizeof *t->dims);
  t->numel = numel;
  t->data = x->data;
  return NULL;
}

/* Allocates the outputs whose data is NULL, at their shapes for the inputs
 * already described in p->in. */
static int allocate_outputs(tlaloc_program *p, tlaloc_tensor *outputs, char *err, size_t n) {
  /* every failure here is the inputs' (out of memory unwinds) */
  const tl_graph *g = p->g;
  for (int s = 0; s < g->nsyms; s++) p->syms[s] = -1;
  if (tl_bind_inputs(g, p->inp, p->syms, err, n)) return -1;
  for (int i = 0; i < g->noutputs; i++) {
    if (outputs[i].data) continue;
    const tl_type *ty = &g->nodes[g->outputs[i].node].type;
    int64_t dims[TL_MAX_RANK];
    if (tl_concrete_dims(g, ty, p->syms, dims, err, n)) return -1;
    tl_tensor *t = tl_tensor_new((tl_dtype)ty->dtype, ty->rank, dims, err, n);
    if (!t) return -1;
    memset(&outputs[i], 0, sizeof outputs[i]);
    outputs[i].dtype = t->dtype;
    outputs[i].rank = t->rank;
    memcpy(outputs[i].dims, dims, (size_t)ty->rank * sizeof *dims);
    outputs[i].data = t->data; /* ownership passes to the caller */
    p->allocated[i] = true;
    t->owns = false;
    tl_tensor_free(t);
  }
  return 0;
}

/* A graph with a loop's :stack: its output shapes are known only when it
 * has run, so it runs with fresh results, handed over (an output without
 * data) or copied into the caller's buffer (whose dims must then be the
 * result's). */
static int run_fresh(tlaloc_program *p, tlaloc_tensor *outputs, tl_error *err) {
  const tl_graph *g = p->g;
  tl_tensor **res = tl_xcalloc((size_t)g->noutputs + 1, sizeof *res);
  int rc = p->engine->run(p->prog, p->inp, NULL, res, err);
  for (int i = 0; i < g->noutputs && !rc; i++) {
    const tl_tensor *t = res[i];
    if (!outputs[i].data) continue;
    bool same = outputs[i].dtype == t->dtype && outputs[i].rank == t->rank;
    for (int k = 0; same && k < t->rank; k++) same = outputs[i].dims[k] == t->dims[k];
    if (!same)
      rc = tl_fail(err, TL_BAD_INPUT, "output %d ('%s') came out with other dims than its buffer's (a loop's "
                   ":stack decides them: pass no buffer, tlaloc allocates it)", i, g->names[g->outputs[i].name]);
    else if (t->numel)
      memcpy(outputs[i].data, t->data, (size_t)t->numel * tl_dtype_size((tl_dtype)t->dtype));
  }
  for (int i = 0; i < g->noutputs && !rc; i++) {
    tl_tensor *t = res[i];
    if (outputs[i].data) continue;
    memset(&outputs[i], 0, sizeof outputs[i]);
    outputs[i].dtype = t->dtype;
    outputs[i].rank = t->rank;
    memcpy(outputs[i].dims, t->dims, (size_t)t->rank * sizeof *t->dims);
    if (t->owns) { /* ownership passes to the caller */
      outputs[i].data = t->data;
      t->owns = false;
    } else {
      size_t sz = (size_t)t->numel * tl_dtype_size((tl_dtype)t->dtype);
      outputs[i].data = tl_xmalloc(sz ? sz : 1);
      if (sz) memcpy(outputs[i].data, t->data, sz);
    }
  }
  for (int i = 0; i < g->noutputs; i++) tl_tensor_free(res[i]);
  tl_free(res);
  return rc;
}

static tlaloc_status tlaloc_program_run_unguarded(tlaloc_program *p, const tlaloc_tensor *inputs, int nin,
                                 tlaloc_tensor *outputs, int nout, char **errors) {
  tl_error err; /* the per-call path: status and an empty message, not 4 KiB of zeros */
  tl_error_clear(&err);
  if (errors) *errors = NULL;
  const tl_graph *g = p->g;
  if (nin != g->ninputs || nout != g->noutputs) {
    set_error(errors, "graph '%s' takes %d inputs and gives %d outputs (called with %d and %d)",
              g->name, g->ninputs, g->noutputs, nin, nout);
    return TLALOC_BAD_INPUT;
  }
  for (int i = 0; i < nin; i++) {
    const char *why = describe(&p->in[i], &inputs[i]);
    if (why) {
      set_error(errors, "input %d ('%s') has a bad descriptor (dtype %d, rank %d): %s", i,
                g->names[g->nodes[g->inputs[i]].name], inputs[i].dtype, inputs[i].rank, why);
      return TLALOC_BAD_INPUT;
    }
  }
  if (p->stacks) {
    int rc = run_fresh(p, outputs, &err);
    if (rc) set_error(errors, "%s", err.msg);
    return rc ? (tlaloc_status)err.status : TLALOC_OK;
  }
  bool any_alloc = false;
  for (int i = 0; i < nout; i++) any_alloc |= !outputs[i].data;
  int rc = any_alloc && allocate_outputs(p, outputs, TL_EMSG(&err)) ? tl_fail_kind(&err, TL_BAD_INPUT) : 0;
  for (int i = 0; i < nout && !rc; i++) {
    const char *why = describe(&p->out[i], &outputs[i]);
    if (why)
      rc = tl_fail(&err, TL_BAD_INPUT, "output %d ('%s') has a bad descriptor (dtype %d, rank %d): %s", i,
                   g->names[g->outputs[i].name], outputs[i].dtype, outputs[i].rank, why);
  }
  if (!rc) rc = p->engine->run_into(p->prog, p->inp, NULL, p->outp, &err);
  if (any_alloc)
    for (int i = 0; i < nout; i++) {
      if (p->allocated[i] && rc) { /* nothing allocated survives a failure */
        tl_free(outputs[i].data);
        outputs[i].data = NULL;
      }
      p->allocated[i] = false;
    }
  if (rc) {
    set_error(errors, "%s", err.msg);
    return (tlaloc_status)err.status;
  }
  return TLALOC_OK;
}

static char *tlaloc_program_stats_unguarded(const tlaloc_program *p) { return p->engine->describe(p->prog); }

const char *tlaloc_engine_name(int i) {
  const tl_engine *e = tl_engine_at(i);
  return e ? e->name : NULL;
}

void tlaloc_program_free(tlaloc_program *p) {
  if (!p) return;
  p->engine->free(p->prog);
  tl_free(p->in);
  tl_free(p->inp);
  tl_free(p->out);
  tl_free(p->outp);
  tl_free(p->syms);
  tl_free(p->allocated);
  tl_free(p);
}

const char *tlaloc_op_name(int i) { return i >= 0 && i < TL_OP_COUNT ? tl_ops[i].name : NULL; }
int tlaloc_op_arity(int i) { return i >= 0 && i < TL_OP_COUNT ? tl_ops[i].arity : 0; }
const char *tlaloc_op_libm(int i) { return i >= 0 && i < TL_OP_COUNT ? tl_ops[i].math : NULL; }

const char *tlaloc_op_kind(int i) {
  return i >= 0 && i < TL_OP_COUNT ? tl_kind_names[tl_ops[i].kind] : NULL;
}

const char *tlaloc_version(void) { return TLALOC_VERSION; }

static tl_opt *make_opt(const tlaloc_opt_options *opts, bool explain, char **errors) {
  tl_opt_params p = tl_opt_defaults();
  p.rule_paths = opts->rule_paths;
  p.nrule_paths = opts->rule_paths ? opts->nrules : 0;
  p.explain = explain;
  if (opts->limits && tl_opt_parse_limits(opts->limits, &p)) {
    set_error(errors, "limits '%s': expected iters=N,nodes=N,time=SECONDS,mem=MIB", opts->limits);
    return NULL;
  }
  p.cost = opts->cost;
  if (opts->extract) {
    p.extract = ex_kind_parse(opts->extract);
    p.dag_max_classes = 0; /* asked for by name: no size fallback */
    if (p.extract == EX_KIND_COUNT) {
      set_error(errors, "extract '%s': expected tree, dag or exact", opts->extract);
      return NULL;
    }
  }
  if (opts->extract_seconds < 0) {
    set_error(errors, "extract_seconds %g: expected a time limit > 0 (or 0 for the default)",
              opts->extract_seconds);
    return NULL;
  }
  if (opts->extract_seconds > 0) p.extract_seconds = opts->extract_seconds;
  p.plugins = opts->plugins;
  p.nplugins = opts->plugins ? opts->nplugins : 0;
  tl_profile prof; /* tl_opt_new copies it */
  if (opts->profile) {
    char perr[512];
    int rc = tl_profile_load(opts->profile, &prof, perr, sizeof perr);
    if (rc == 1) {
      set_error(errors, "machine profile %s: no such file", opts->profile);
      return NULL;
    }
    if (rc) {
      set_error(errors, "machine profile: %s", perr);
      return NULL;
    }
    p.profile = &prof;
  }
  char *err = tl_xmalloc(1 << 16);
  tl_opt *o = tl_opt_new(&p, err, 1 << 16);
  if (!o) set_error(errors, "%s", err);
  tl_free(err);
  return o;
}

/* The statistics of a run as one JSON object. */
static char *stats_json(tl_opt *o, double ms) {
  const eg_report *r = tl_opt_report(o);
  const eg_phase_report *last = &r->phases[r->nphases - 1];
  uint32_t iters = 0;
  for (int i = 0; i < r->nphases; i++) iters += r->phases[i].niters;
  size_t en, ec, pb;
  tl_opt_sizes(o, &en, &ec, &pb);
  tl_buf b = {0};
  tl_buf_printf(&b, "{\"stop\": \"%s\", \"iterations\": %u, \"enodes\": %zu, \"eclasses\": %zu, "
                    "\"peak_bytes\": %zu, \"optimize_ms\": %.3f",
                eg_stop_name(last->stop), iters, en, ec, pb, ms);
  const tl_opt_cost_report *c = tl_opt_cost(o);
  if (c) {
    tl_buf_printf(&b, ", \"cost\": \"");
    for (const char *s = c->objective; *s; s++) /* the expression is user text */
      if (*s == '"' || *s == '\\') tl_buf_printf(&b, "\\%c", *s);
      else if ((unsigned char)*s >= 0x20) tl_buf_printf(&b, "%c", *s);
    tl_buf_printf(&b, "\", \"extract\": \"%s\", \"extract_ms\": %.3f, \"objective\": %.9g, "
                      "\"optimal\": %s, \"peak_bytes_program\": %.0f",
                  ex_kind_name(c->extractor), c->extract_ms, c->objective_total,
                  c->optimal ? "true" : "false", c->peak_bytes);
    /* the program's cost properties, apart so a plugin's names cannot clash */
    const tl_cost_registry *reg = tl_opt_costs(o);
    tl_buf_printf(&b, ", \"program\": {");
    for (int p = 0, first = 1; p < tl_cost_nprops(reg); p++)
      if (tl_cost_prop_kind(reg, p) == TL_PROP_COST) {
        tl_buf_printf(&b, "%s\"%s\": %.9g", first ? "" : ", ", tl_cost_prop_name(reg, p), c->totals[p]);
        first = 0;
      }
    tl_buf_printf(&b, "}");
  }
  tl_buf_printf(&b, "}");
  return b.s;
}

static tlaloc_status tlaloc_optimize_opts_unguarded(const tlaloc_graph *g, const tlaloc_opt_options *opts,
                                   tlaloc_graph **out, char **stats, char **errors) {
  if (errors) *errors = NULL;
  if (stats) *stats = NULL;
  *out = NULL;
  tlaloc_opt_options none;
  memset(&none, 0, sizeof none);
  tl_opt *o = make_opt(opts ? opts : &none, false, errors);
  if (!o) return TLALOC_BAD_INPUT;
  tl_error err = {0};
  double t0 = tl_now_ms();
  *out = tl_opt_graph(o, g, &err);
  double ms = tl_now_ms() - t0;
  if (!*out) {
    set_error(errors, "%s", err.msg);
    tl_opt_free(o);
    return (tlaloc_status)err.status;
  }
  if (stats) *stats = stats_json(o, ms);
  tl_opt_free(o);
  return TLALOC_OK;
}

tlaloc_status tlaloc_optimize(const tlaloc_graph *g, const char *const *rule_paths, int nrules,
                              const char *limits, tlaloc_graph **out, char **stats, char **errors) {
  tlaloc_opt_options opts;
  memset(&opts, 0, sizeof opts);
  opts.rule_paths = rule_paths;
  opts.nrules = nrules;
  opts.limits = limits;
  return tlaloc_optimize_opts(g, &opts, out, stats, errors);
}

static tlaloc_status tlaloc_prove_unguarded(const tlaloc_graph *a, const tlaloc_graph *b, const char *const *rule_paths,
                           int nrules, const char *limits, char **explanation, char **errors) {
  if (errors) *errors = NULL;
  if (explanation) *explanation = NULL;
  tlaloc_opt_options opts;
  memset(&opts, 0, sizeof opts);
  opts.rule_paths = rule_paths;
  opts.nrules = nrules;
  opts.limits = limits;
  tl_opt *o = make_opt(&opts, true, errors);
  if (!o) return TLALOC_BAD_INPUT;
  char *text = NULL;
  size_t len = 0;
  FILE *f = open_memstream(&text, &len);
  char err[1024];
  int r = f ? tl_opt_prove(o, a, b, f, err, sizeof err) : -1;
  if (f) fclose(f);
  if (!f) snprintf(err, sizeof err, "out of memory");
  tl_opt_free(o);
  /* open_memstream's buffer is libc's: the caller gets a tl_ copy */
  char *mine = r >= 0 && explanation && text ? tl_try_strdup(text) : NULL;
  tl_free_foreign(text);
  if (r >= 0 && explanation && !mine) {
    r = -1;
    snprintf(err, sizeof err, "out of memory");
  }
  if (r < 0) {
    set_error(errors, "%s", err);
    return TLALOC_BAD_INPUT;
  }
  if (explanation) *explanation = mine;
  return r == 1 ? TLALOC_OK : TLALOC_CHECK_FAILED;
}

void tlaloc_free(void *p) { tl_free(p); }

void tlaloc_malloc_tune(void) { tl_alloc_tune(); }

const char *tlaloc_blas_tune(void) { return be_blas_tune(); }

/* After an unwind: "out of memory" in *errors when that small string can
 * still be had (the failed allocation was undone). */
static tlaloc_status api_out_of_memory(char **errors, size_t failed) {
  char msg[64];
  snprintf(msg, sizeof msg, "out of memory (allocating %zu bytes)", failed);
  if (errors) *errors = tl_try_strdup(msg);
  return TLALOC_OUT_OF_MEMORY;
}

/* The public entry points: each runs in a region (util/alloc.h), so that
 * running out of memory anywhere below frees what the call allocated and
 * returns TLALOC_OUT_OF_MEMORY (NULL for the text functions). */
tlaloc_status tlaloc_parse(const char *src, size_t len, const char *file, tlaloc_graph **out,
                           char **errors) {
  tl_region r;
  if (!TL_REGION_TRY(&r)) {
    if (out) *out = NULL;
    return api_out_of_memory(errors, r.failed);
  }
  tlaloc_status st = tlaloc_parse_unguarded(src, len, file, out, errors);
  tl_region_end(&r);
  return st;
}

char *tlaloc_print(const tlaloc_graph *g) {
  tl_region r;
  if (!TL_REGION_TRY(&r)) return NULL;
  char *s = tlaloc_print_unguarded(g);
  tl_region_end(&r);
  return s;
}

char *tlaloc_input_type(const tlaloc_graph *g, int i) {
  tl_region r;
  if (!TL_REGION_TRY(&r)) return NULL;
  char *s = tlaloc_input_type_unguarded(g, i);
  tl_region_end(&r);
  return s;
}

char *tlaloc_output_type(const tlaloc_graph *g, int i) {
  tl_region r;
  if (!TL_REGION_TRY(&r)) return NULL;
  char *s = tlaloc_output_type_unguarded(g, i);
  tl_region_end(&r);
  return s;
}

tlaloc_status tlaloc_output_shapes(const tlaloc_graph *g, const tlaloc_tensor *inputs, int nin,
                                   tlaloc_tensor *outputs, int nout, char **errors) {
  tl_region r;
  if (!TL_REGION_TRY(&r)) {
    return api_out_of_memory(errors, r.failed);
  }
  tlaloc_status st = tlaloc_output_shapes_unguarded(g, inputs, nin, outputs, nout, errors);
  tl_region_end(&r);
  return st;
}

/* A run of a graph or of a compiled program under a region: on an unwind
 * (out of memory) the outputs whose data tlaloc allocated are NULL again,
 * so the caller frees nothing that the region took back. */
typedef struct api_run {
  bool program; /* p's run, else g's */
  const tlaloc_graph *g;
  tlaloc_program *p;
  const tlaloc_tensor *inputs;
  int nin;
} api_run;

static tlaloc_status run_guarded(const api_run *a, tlaloc_tensor *outputs, int nout, char **errors) {
  unsigned char small[64], *fresh = nout <= 64 ? small : tl_try_malloc((size_t)nout);
  if (!fresh) return api_out_of_memory(errors, (size_t)nout);
  for (int i = 0; i < nout; i++) fresh[i] = outputs[i].data == NULL;
  tl_region r;
  if (!TL_REGION_TRY(&r)) {
    for (int i = 0; i < nout; i++)
      if (fresh[i]) outputs[i].data = NULL;
    if (fresh != small) tl_free(fresh);
    return api_out_of_memory(errors, r.failed);
  }
  tlaloc_status st = a->program ? tlaloc_program_run_unguarded(a->p, a->inputs, a->nin, outputs, nout, errors)
                                : tlaloc_run_unguarded(a->g, a->inputs, a->nin, outputs, nout, errors);
  tl_region_end(&r);
  if (fresh != small) tl_free(fresh);
  return st;
}

tlaloc_status tlaloc_run(const tlaloc_graph *g, const tlaloc_tensor *inputs, int nin,
                         tlaloc_tensor *outputs, int nout, char **errors) {
  return run_guarded(&(api_run){false, g, NULL, inputs, nin}, outputs, nout, errors);
}

tlaloc_status tlaloc_compile(const tlaloc_graph *g, const tlaloc_compile_options *opts,
                             tlaloc_program **out, char **errors) {
  tl_region r;
  if (!TL_REGION_TRY(&r)) {
    if (out) *out = NULL;
    return api_out_of_memory(errors, r.failed);
  }
  tlaloc_status st = tlaloc_compile_unguarded(g, opts, out, errors);
  tl_region_end(&r);
  return st;
}

tlaloc_status tlaloc_program_run(tlaloc_program *p, const tlaloc_tensor *inputs, int nin,
                                 tlaloc_tensor *outputs, int nout, char **errors) {
  return run_guarded(&(api_run){true, NULL, p, inputs, nin}, outputs, nout, errors);
}

char *tlaloc_program_stats(const tlaloc_program *p) {
  tl_region r;
  if (!TL_REGION_TRY(&r)) return NULL;
  char *s = tlaloc_program_stats_unguarded(p);
  tl_region_end(&r);
  return s;
}

tlaloc_status tlaloc_optimize_opts(const tlaloc_graph *g, const tlaloc_opt_options *opts,
                                   tlaloc_graph **out, char **stats, char **errors) {
  tl_region r;
  if (!TL_REGION_TRY(&r)) {
    if (out) *out = NULL;
    if (stats) *stats = NULL;
    return api_out_of_memory(errors, r.failed);
  }
  tlaloc_status st = tlaloc_optimize_opts_unguarded(g, opts, out, stats, errors);
  tl_region_end(&r);
  return st;
}

tlaloc_status tlaloc_prove(const tlaloc_graph *a, const tlaloc_graph *b, const char *const *rule_paths,
                           int nrules, const char *limits, char **explanation, char **errors) {
  tl_region r;
  if (!TL_REGION_TRY(&r)) {
    if (explanation) *explanation = NULL;
    return api_out_of_memory(errors, r.failed);
  }
  tlaloc_status st = tlaloc_prove_unguarded(a, b, rule_paths, nrules, limits, explanation, errors);
  tl_region_end(&r);
  return st;
}
