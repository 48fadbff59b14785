/* fuzz_pipeline.c - the whole pipeline on small graphs: parse, infer,
 * interpret, optimise under small limits with the default rules, compile
 * the optimised graph with the LLVM JIT and run it on the same
 * deterministic random inputs as the interpreter.
 *
 * Properties: the optimised graph has the original's output types; where
 * the original runs, so does the optimised graph; the compiled program and
 * the interpreter agree on success or failure and, on the optimised
 * graph's outputs, within the dtype's tolerance.
 *
 * The tolerance has to separate backend bugs from rounding amplified by an
 * ill-conditioned graph (a fuzzer writes plenty: exp of exp, x - x, log
 * near 0). So each graph is also interpreted in the other float precision
 * (its text with f32 and f64 swapped, on the inputs converted): the gap
 * between the two is a measured condition estimate. An element whose two
 * precisions disagree on being finite is not compared; the others may be
 * off by a small multiple of that gap plus a few ulps of the output's
 * scale.
 *
 * Graphs are skipped (not failures) when a value would hold more than
 * MAX_ELEMS elements, when they have more than MAX_NODES nodes, or when
 * the backend does not support an op on a dtype. Symbols take sizes from
 * the input's hash: 0, 1, 2, 3 or 5. */
#include "fuzz/fuzz.h"
#include "util/alloc.h"
#include "backend/backend.h"
#include "interp/interp.h"
#include "ir/tg.h"
#include "opt/opt.h"

#include <math.h>
#include <string.h>
#include <xxhash.h>

#define MAX_ELEMS 4096
#define MAX_TOTAL 65536
#define MAX_NODES 160

static tl_opt *opt;

int LLVMFuzzerInitialize(int *argc, char ***argv) {
  (void)argc, (void)argv;
  setenv("TLALOC_PROFILE", "/nonexistent/tlaloc-fuzz-profile", 1); /* the built-in model */
  tl_opt_params p = tl_opt_defaults();
  /* iterations and nodes only: a time limit would make runs irreproducible */
  p.limits = (eg_limits){.iters = 6, .nodes = 4000, .seconds = 60, .bytes = 256u << 20};
  p.check = true;
  p.extract_seconds = 60;
  char err[1024];
  opt = tl_opt_new(&p, err, sizeof err);
  if (!opt) FUZZ_FAIL("the optimizer cannot start: %s", err);
  return 0;
}

static tl_graph *parse(const char *src, size_t len, const char *name) {
  tl_diag d;
  tl_diag_init(&d, name, src, len);
  tl_graph *g = tl_tg_parse(src, len, &d);
  tl_diag_free(&d);
  return g;
}

/* Symbol sizes of g from the names bound in (from, fsyms); -1 if absent. */
static void syms_by_name(const tl_graph *g, int64_t *syms, const tl_graph *from, const int64_t *fsyms) {
  for (int i = 0; i < g->nsyms; i++) {
    syms[i] = -1;
    for (int k = 0; k < from->nsyms; k++)
      if (strcmp(g->syms[i], from->syms[k]) == 0) syms[i] = fsyms[k];
  }
}

/* Whether every value of g holds at most MAX_ELEMS elements (MAX_TOTAL in
 * all) under syms. */
static bool small_enough(const tl_graph *g, const int64_t *syms) {
  int64_t total = 0;
  for (int32_t i = 0; i < g->nnodes; i++) {
    const tl_type *t = &g->nodes[i].type;
    int64_t n = 1;
    for (int k = 0; k < t->rank; k++) {
      int64_t d = t->dims[k];
      if (tl_dim_is_sym(d)) d = syms[tl_dim_sym_id(d)];
      if (d < 0) return false;
      if (d > MAX_ELEMS || (d && n > MAX_ELEMS / d)) return false;
      n *= d;
    }
    if (n > MAX_ELEMS) return false;
    if ((total += n) > MAX_TOTAL) return false;
  }
  return true;
}

static void free_all(tl_tensor **t, int n) {
  for (int i = 0; i < n; i++) tl_tensor_free(t[i]), t[i] = NULL;
}

/* The graph's text with f32 and f64 swapped, parsed; NULL if it does not
 * parse (a name or literal the swap changes into something else). */
static tl_graph *twin_graph(const tl_graph *g) {
  char *s = tl_tg_print(g);
  for (char *p = s; (p = strchr(p, 'f')) != NULL; p++)
    if ((p[1] == '3' && p[2] == '2') || (p[1] == '6' && p[2] == '4')) {
      bool was32 = p[1] == '3';
      p[1] = was32 ? '6' : '3';
      p[2] = was32 ? '4' : '2';
      p += 2;
    }
  tl_graph *t = parse(s, strlen(s), "twin.tg");
  tl_free(s);
  return t;
}

/* x converted to dtype dt (floats only change; others are copied). */
static tl_tensor *convert(const tl_tensor *x, int dt) {
  char err[128];
  tl_tensor *y = tl_tensor_new((tl_dtype)dt, x->rank, x->dims, err, sizeof err);
  if (!y) FUZZ_FAIL("%s", err);
  for (int64_t i = 0; i < x->numel; i++) {
    if (tl_dtype_is_float((tl_dtype)x->dtype)) tl_tensor_set_f64(y, i, tl_tensor_get_f64(x, i));
    else tl_tensor_set_i64(y, i, tl_tensor_get_i64(x, i));
  }
  return y;
}

static int twin_dtype(int dt) { return dt == TL_F32 ? TL_F64 : dt == TL_F64 ? TL_F32 : dt; }

/* Compares output o of the compiled program (got) with the interpreter's
 * (ref); tw is the twin's output (NULL when there is no twin). from_f32:
 * the graph computes in f32 somewhere, so an f64 output is only as close
 * as f32 (the two sides' f32 exp or log may differ by an ulp or two before
 * the promotion), as in tests/backend/be_diff.c. */
static void compare(const char *name, const tl_tensor *ref, const tl_tensor *got, const tl_tensor *tw,
                    bool from_f32, const char *text) {
  if (got->dtype != ref->dtype || got->rank != ref->rank || got->numel != ref->numel ||
      memcmp(got->dims, ref->dims, (size_t)ref->rank * sizeof *ref->dims) != 0)
    FUZZ_FAIL("output %s: compiled and interpreted shapes or dtypes differ\n%s", name, text);
  if (tw && tw->numel != ref->numel) FUZZ_FAIL("output %s: the twin has another size\n%s", name, text);
  bool f32 = ref->dtype == TL_F32 || (ref->dtype == TL_F64 && from_f32);
  bool flt = tl_dtype_is_float((tl_dtype)ref->dtype);
  double scale = 0;
  for (int64_t i = 0; i < ref->numel; i++) {
    double r = tl_tensor_get_f64(ref, i);
    if (isfinite(r)) scale = fmax(scale, fabs(r));
  }
  /* a few ulps of the value and of the output's scale */
  double rtol = f32 ? 1e-5 : flt ? 1e-13 : 0, atol = f32 ? 1e-6 : flt ? 1e-14 : 0;
  /* gap between the precisions -> allowed error in this precision: an f32
   * result may be off by a multiple of the gap; an f64 one, by a multiple
   * of the gap scaled by the ratio of the two epsilons */
  double gapk = f32 ? 16 : 16 * 1e-9;
  for (int64_t i = 0; i < ref->numel; i++) {
    double r = tl_tensor_get_f64(ref, i), g = tl_tensor_get_f64(got, i);
    double t = tw ? tl_tensor_get_f64(tw, i) : r;
    if (r == g || (isnan(r) && isnan(g))) continue;
    /* ill-conditioned: the two precisions disagree on finiteness */
    if (isnan(r) != isnan(t) || isinf(r) != isinf(t)) continue;
    if (isfinite(r) && isfinite(g)) {
      double allowed = rtol * fmax(fabs(r), fabs(g)) + atol * scale + gapk * fabs(r - t);
      if (!flt && fabs(r - t) > 0) continue; /* a discrete result of a rounding-dependent value */
      if (fabs(r - g) <= allowed) continue;
    } else if (!isnan(r) && !isnan(g) && f32 && fabs(t) > 3e38) {
      continue; /* at the edge of f32's range: inf on one side, FLT_MAX-ish on the other */
    }
    FUZZ_FAIL("output %s[%lld]: compiled %.17g, interpreted %.17g (other precision %.17g)\n%s",
              name, (long long)i, g, r, t, text);
  }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  static const int64_t sizes[] = {3, 1, 2, 0, 5};
  char err[1024];
  tl_error oe = {0}, e2 = {0};
  int64_t syms[256], bsyms[256], tsyms[256];
  tl_tensor *in[64] = {0}, *out0[64] = {0}, *out1[64] = {0}, *out2[64] = {0}, *outt[64] = {0};
  tl_tensor *tin[64] = {0};
  tl_graph *g = parse((const char *)data, size, "fuzz.tg");
  if (!g) return 0;
  uint64_t h = XXH3_64bits(data, size);
  if (g->nnodes > MAX_NODES || g->nsyms > 256 || g->noutputs == 0 || g->ninputs > 64 ||
      g->noutputs > 64)
    goto skip;
  /* base symbols get sizes; derived dims follow, and sizes that break one
   * of their checks (a slice's bound, symbols that must be equal) are
   * refused by the graph itself: not an input to compare on */
  for (int i = 0; i < g->nsyms; i++) syms[i] = tl_sym_derived(g, i) ? -1 : sizes[(h >> (3 * (i % 20))) % 5];
  if (tl_syms_eval(g, syms, err, sizeof err) || !small_enough(g, syms)) goto skip;
  if (tl_random_inputs(g, in, syms, h, err, sizeof err)) FUZZ_FAIL("random inputs: %s", err);
  int r0 = tl_interp_run(g, in, syms, out0, err, sizeof err);

  tl_graph *best = tl_opt_graph(opt, g, &oe);
  if (!best) FUZZ_FAIL("the optimizer failed on a valid graph (%s): %s", tl_status_name(oe.status), oe.msg);
  char *text = tl_tg_print(best);
  if (best->noutputs != g->noutputs || best->ninputs != g->ninputs)
    FUZZ_FAIL("the optimised graph has other inputs or outputs:\n%s", text);
  if (best->nsyms > 256) FUZZ_FAIL("symbols appeared");
  syms_by_name(best, bsyms, g, syms);
  if (tl_bind_inputs(best, in, bsyms, err, sizeof err))
    FUZZ_FAIL("the inputs do not fit the optimised graph: %s\n%s", err, text);
  int r1 = tl_interp_run(best, in, bsyms, out1, err, sizeof err);
  if (r0 == 0 && r1 != 0) FUZZ_FAIL("the original runs, the optimised graph fails: %s\n%s", err, text);
  for (int i = 0; r0 == 0 && i < g->noutputs; i++) {
    const tl_tensor *a = out0[i], *b = out1[i];
    if (a->dtype != b->dtype || a->rank != b->rank ||
        memcmp(a->dims, b->dims, (size_t)a->rank * sizeof *a->dims) != 0)
      FUZZ_FAIL("output %d: the optimised graph changed its type\n%s", i, text);
  }

  be_options bo = be_options_default();
  bo.use_cache = 0;
  bo.threads = 1;
  be_program *p = be_compile(best, &bo, &e2);
  if (!p) {
    /* an op or dtype the backend lacks is the only acceptable refusal */
    if (e2.status != TL_BAD_INPUT || !strstr(e2.msg, "not supported"))
      FUZZ_FAIL("compile (%s): %s\n%s", tl_status_name(e2.status), e2.msg, text);
    goto done;
  }
  int r2 = be_run(p, in, bsyms, out2, &e2);
  if ((r1 == 0) != (r2 == 0))
    FUZZ_FAIL("interpreted: %s; compiled: %s\n%s", r1 ? err : "ok", r2 ? e2.msg : "ok", text);
  if (r2 && e2.status != TL_BAD_INPUT) FUZZ_FAIL("run (%s): %s\n%s", tl_status_name(e2.status), e2.msg, text);
  if (r1 == 0) {
    tl_graph *twin = twin_graph(best);
    int rt = -1;
    if (twin) {
      for (int i = 0; i < best->ninputs; i++) tin[i] = convert(in[i], twin_dtype(in[i]->dtype));
      syms_by_name(twin, tsyms, best, bsyms);
      rt = tl_bind_inputs(twin, tin, tsyms, err, sizeof err) ? -1
           : tl_interp_run(twin, tin, tsyms, outt, err, sizeof err);
    }
    bool from_f32 = false;
    for (int32_t i = 0; i < best->nnodes; i++) from_f32 |= best->nodes[i].type.dtype == TL_F32;
    for (int i = 0; i < best->noutputs; i++)
      compare(best->names[best->outputs[i].name], out1[i], out2[i], rt == 0 ? outt[i] : NULL,
              from_f32, text);
    free_all(outt, best->noutputs);
    free_all(tin, best->ninputs);
    tl_graph_free(twin);
  }
  free_all(out2, best->noutputs);
  be_program_free(p);
done:
  free_all(out1, best->noutputs);
  tl_free(text);
  tl_graph_free(best);
  free_all(out0, g->noutputs);
  free_all(in, g->ninputs);
skip:
  tl_graph_free(g);
  return 0;
}
