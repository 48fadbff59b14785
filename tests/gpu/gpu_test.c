/* gpu_test.c - tests of the GPU backend, one mode per test:
 *
 *   gpu-test sim SRC [--random N]    every example (at several symbol sizes),
 *                                    hand-written graphs for each kernel kind and
 *                                    mode, and N random graphs (tests/backend's
 *                                    generator) on the emulator (gpu-sim), against
 *                                    the interpreter
 *   gpu-test gpu SRC [--random N]    the same on the GPU (engine gpu); exit 77
 *                                    with "skipped: ..." without driver or GPU
 *   gpu-test ptxas SRC [--random N]  every kernel of the same graphs as PTX, each
 *                                    module through ptxas -arch=sm_90 (CUDA_HOME or
 *                                    /usr/local/cuda); exit 77, "skipped: no ptxas"
 *   gpu-test emulator                the emulator's checks: races, barriers and
 *                                    shuffles in divergent code, bounds, alignment
 *                                    claims (hand-built kernels that must fail)
 *   gpu-test own-math                the project's own f32 exp/log/log1p/tanh (no
 *                                    libdevice): accuracy in ulp over sweeps of every
 *                                    f32 range on the emulator, refusals of the rest
 *   gpu-test driver                  the runtime without a driver or without a GPU
 *                                    (a stub libcuda) says so
 *   gpu-test placement               the cost model's CPU-or-GPU choice on graphs
 *                                    where the answer is known, predictions printed
 *   gpu-test write-random DIR N      the first N random graphs of the modes above
 *                                    as .tg files (scripts/gpu-prepare.sh)
 * Exit 0 when everything passed, 1 on a failure, 77 for a skip. */
#include "cost/cost.h"
#include "engine/engine.h"
#include "gpu/gk.h"
#include "gpu/gk_sim.h"
#include "gpu/gpu.h"
#include "interp/interp.h"
#include "ir/tg.h"
#include "tests/backend/random_graph.h"
#include "tests/common/tltest.h"
#include "util/util.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

/* ---- the graphs ----------------------------------------------------------------- */

/* Graphs for the kernel kinds and modes the examples and random graphs
 * reach rarely or never are the .tg files of tests/gpu/graphs (each says what it is
 * for); those whose runs must fail, on every engine alike, are
 * the files of tests/gpu/graphs/fail. Symbols are bound to 700 and to 3 (0 for the
 * failing ones). scripts/gpu-prepare.sh carries them to a GPU machine too. */

/* ---- comparing with the interpreter --------------------------------------------------- */

static bool close_enough(double a, double b, int dt, double rtol, double scale) {
  if (isnan(a) || isnan(b)) return isnan(a) && isnan(b);
  if (isinf(a) || isinf(b)) return a == b || (dt == TL_F32 && fabs(a - b) <= 1e-5 * fmax(fabs(a), fabs(b)));
  return fabs(a - b) <= rtol * fmax(fabs(a), fabs(b)) + rtol * scale;
}

typedef struct tally {
  int graphs, runs, failed, refused_both;
} tally;

/* 0 when the engine and the interpreter agree on g with these inputs (or
 * both refuse to run it). */
static int compare(const tl_engine *eng, const tl_graph *g, tl_tensor **in, const int64_t *syms, const char *what,
                   tally *t) {
  char e1[1024] = "";
  tl_error e2 = {0};
  int no = g->noutputs;
  tl_tensor **ref = tl_xcalloc((size_t)no + 1, sizeof *ref), **got = tl_xcalloc((size_t)no + 1, sizeof *got);
  int r1 = tl_interp_run(g, in, syms, ref, e1, sizeof e1);
  bool mm = false, red = false, f32 = false;
  for (int i = 0; i < g->nnodes; i++) {
    mm |= g->nodes[i].op == TL_OP_MATMUL;
    red |= tl_ops[g->nodes[i].op].kind == TL_KIND_REDUCTION;
    f32 |= g->nodes[i].type.dtype == TL_F32;
  }
  tl_engine_opts eo = tl_engine_opts_default();
  void *p = eng->compile(g, &eo, &e2);
  int bad = 0;
  if (!p) {
    printf("FAIL %s on %s: compile: %s\n", what, eng->name, e2.msg);
    bad = 1;
  }
  for (int rep = 0; p && rep < 2 && !bad; rep++) { /* twice: the device pool is reused */
    int r2 = eng->run(p, in, syms, got, &e2);
    t->runs++;
    if (r1 || r2) {
      if (!r1 != !r2) {
        printf("FAIL %s on %s: interp %s, %s %s\n", what, eng->name, r1 ? e1 : "ok", eng->name, r2 ? e2.msg : "ok");
        bad = 1;
      } else if (rep == 0) {
        t->refused_both++;
      }
      continue;
    }
    for (int i = 0; i < no && !bad; i++) {
      const tl_tensor *a = ref[i], *b = got[i];
      if (a->dtype != b->dtype || a->rank != b->rank || a->numel != b->numel) {
        printf("FAIL %s on %s: output %d: dtype or shape differs\n", what, eng->name, i);
        bad = 1;
        break;
      }
      /* f32 results computed through f32 math (libm's f32 functions, GEMM
       * and reductions in other orders) are as close as f32 allows; an f64
       * computed from f32 values too */
      int dt = a->dtype == TL_F64 && f32 ? TL_F32 : a->dtype;
      double rtol = dt == TL_F32 ? (mm || red ? 1e-4 : 1e-5) : 1e-11, scale = 1;
      if (mm || red)
        for (int64_t k = 0; k < a->numel; k++) {
          double v = fabs(tl_tensor_get_f64(a, k));
          if (v > scale && v < 1e30) scale = v;
        }
      for (int64_t k = 0; k < a->numel; k++) {
        bool ok = tl_dtype_is_float((tl_dtype)a->dtype)
                      ? close_enough(tl_tensor_get_f64(a, k), tl_tensor_get_f64(b, k), dt, rtol, scale)
                      : tl_tensor_get_i64(a, k) == tl_tensor_get_i64(b, k);
        if (!ok) {
          printf("FAIL %s on %s: output %d element %lld: interp %.17g, %s %.17g\n", what, eng->name, i,
                 (long long)k, tl_tensor_get_f64(a, k), eng->name, tl_tensor_get_f64(b, k));
          bad = 1;
          break;
        }
      }
    }
    for (int i = 0; i < no; i++) {
      tl_tensor_free(got[i]);
      got[i] = NULL;
    }
  }
  if (bad) {
    char *s = tl_tg_print(g);
    printf("%s\n", s);
    tl_free(s);
  }
  if (p) eng->free(p);
  for (int i = 0; i < no; i++) tl_tensor_free(ref[i]);
  tl_free(ref);
  tl_free(got);
  t->failed += bad;
  return bad;
}

/* g on random inputs with every symbol = size (+ its number). */
static int compare_sized(const tl_engine *eng, const tl_graph *g, int64_t size, uint64_t seed, const char *what,
                         tally *t) {
  char err[512], w[512];
  int64_t *syms = tl_xcalloc((size_t)g->nsyms + 1, sizeof *syms);
  tl_tensor **in = tl_xcalloc((size_t)g->ninputs + 1, sizeof *in);
  int bad = 0;
  snprintf(w, sizeof w, "%s (symbols from %lld)", what, (long long)size);
  if (tl_syms_at(g, syms, size, 1, err, sizeof err) || tl_random_inputs(g, in, syms, seed, err, sizeof err)) {
    printf("FAIL %s: inputs: %s\n", w, err);
    bad = 1;
  } else {
    /* take's indices within range, negative ones included */
    for (int i = 0; i < g->ninputs; i++) {
      const char *nm = g->names[g->nodes[g->inputs[i]].name];
      if ((!strcmp(nm, "i") || !strcmp(nm, "j")) && !tl_dtype_is_float((tl_dtype)in[i]->dtype))
        for (int64_t k = 0; k < in[i]->numel; k++) tl_tensor_set_i64(in[i], k, (int64_t)((k * 7 + 3) % 6) - 3);
    }
    bad = compare(eng, g, in, syms, w, t);
  }
  for (int i = 0; i < g->ninputs; i++) tl_tensor_free(in[i]);
  tl_free(in);
  tl_free(syms);
  return bad;
}

static tl_graph *load(const char *path) {
  char err[512];
  size_t len;
  char *src = tl_read_file(path, &len, err, sizeof err);
  if (!src) return NULL;
  tl_diag d;
  tl_diag_init(&d, path, src, len);
  tl_graph *g = tl_tg_parse(src, len, &d);
  tl_diag_free(&d);
  tl_free(src);
  return g;
}

/* The paths of the .tg files of src/sub (sorted), NULL-terminated. */
static char **tg_files(const char *src, const char *sub) {
  char dir[4096];
  snprintf(dir, sizeof dir, "%s/%s", src, sub);
  char **list = tl_xcalloc(256, sizeof *list);
  int n = 0;
  FILE *p;
  char cmd[4200];
  snprintf(cmd, sizeof cmd, "ls %s/*.tg 2>/dev/null", dir);
  if ((p = popen(cmd, "r"))) {
    char line[4200];
    while (n < 255 && fgets(line, sizeof line, p)) {
      line[strcspn(line, "\n")] = 0;
      list[n++] = tl_xstrdup(line);
    }
    pclose(p);
  }
  return list;
}

static void free_list(char **l) {
  for (int i = 0; l[i]; i++) tl_free(l[i]);
  tl_free(l);
}

static int count(char **l) {
  int n = 0;
  while (l[n]) n++;
  return n;
}

static int diff_mode(const char *engine, const char *src, int nrandom) {
  const tl_engine *eng = tl_engine_find(engine, 0);
  char why[512];
  if (eng->available && !eng->available(why, sizeof why)) {
    printf("skipped: the real GPU kernels against the interpreter: %s\n", why);
    return 77;
  }
  tally t = {0};
  char **ex = tg_files(src, "examples"), **sp = tg_files(src, "tests/gpu/graphs"),
       **fl = tg_files(src, "tests/gpu/graphs/fail");
  static const int64_t sizes[] = {0, 1, 7, 130};
  for (int i = 0; ex[i]; i++) {
    tl_graph *g = load(ex[i]);
    if (!g) {
      printf("FAIL %s: does not parse\n", ex[i]);
      t.failed++;
      continue;
    }
    t.graphs++;
    for (int s = 0; s < 4; s++) compare_sized(eng, g, sizes[s], 42 + (uint64_t)s, ex[i], &t);
    tl_graph_free(g);
  }
  int nex = t.graphs;
  for (int i = 0; sp[i]; i++) {
    tl_graph *g = load(sp[i]);
    if (!g) {
      printf("FAIL %s: does not parse\n", sp[i]);
      t.failed++;
      continue;
    }
    t.graphs++;
    compare_sized(eng, g, 700, 7 + (uint64_t)i, sp[i], &t);
    compare_sized(eng, g, 3, 9 + (uint64_t)i, sp[i], &t);
    tl_graph_free(g);
  }
  int refused = t.refused_both;
  for (int i = 0; fl[i]; i++) {
    tl_graph *g = load(fl[i]);
    tally f = {0};
    if (g) compare_sized(eng, g, 0, 1, fl[i], &f);
    if (!g || f.refused_both != 1) {
      printf("FAIL %s on %s: the run should fail on both engines\n", fl[i], eng->name);
      t.failed++;
    }
    t.failed += f.failed;
    tl_graph_free(g);
  }
  rg_seed(7);
  for (int i = 0; i < nrandom; i++) {
    int d;
    tl_graph *g = rg_graph(&d);
    char what[64];
    snprintf(what, sizeof what, "random graph %d", i);
    t.graphs++;
    compare_sized(eng, g, 0, 1000 + (uint64_t)i, what, &t);
    tl_graph_free(g);
  }
  printf("%s against the interpreter: %d graphs (%d examples at 4 sizes, %d of tests/gpu/graphs at 2, %d random), "
         "%d runs, %d refused by both, %d error cases failing on both as they should, %d failed\n",
         engine, t.graphs, nex, count(sp), nrandom, t.runs, refused, count(fl), t.failed);
  free_list(ex);
  free_list(sp);
  free_list(fl);
  return t.failed ? 1 : 0;
}

/* ---- ptxas -------------------------------------------------------------------------- */

static int ptxas_path(char *buf, size_t n) {
  const char *home = getenv("CUDA_HOME");
  snprintf(buf, n, "%s/bin/ptxas", home && *home ? home : "/usr/local/cuda");
  return access(buf, X_OK);
}

typedef struct pstats {
  int modules, kernels, accepted, rejected, refused;
  double ms_total, ms_max;
} pstats;

static void ptx_one(const tl_graph *g, const gpu_options *o, const char *ptxas, const char *tmp, const char *what,
                    pstats *ps) {
  char err[2048];
  gpu_ptx_stats st;
  char *ptx = gpu_ptx(g, o, NULL, &st, err, sizeof err);
  if (!ptx) {
    if (o->math == GPU_MATH_OWN && strstr(err, "needs libdevice")) {
      ps->refused++;
      return;
    }
    printf("FAIL %s: no PTX: %s\n", what, err);
    ps->rejected++;
    return;
  }
  ps->modules++;
  ps->kernels += st.nkernels;
  ps->ms_total += st.total_ms;
  if (st.total_ms > ps->ms_max) ps->ms_max = st.total_ms;
  FILE *f = fopen(tmp, "w");
  fputs(ptx, f);
  fclose(f);
  tl_free(ptx);
  char cmd[9000];
  snprintf(cmd, sizeof cmd, "%s -arch=%s %s -o /dev/null 2>&1", ptxas, gpu_arch(o), tmp);
  FILE *p = popen(cmd, "r");
  char out[4096] = "";
  size_t got = p ? fread(out, 1, sizeof out - 1, p) : 0;
  out[got] = 0;
  int rc = p ? pclose(p) : -1;
  if (rc == 0) {
    ps->accepted++;
  } else {
    ps->rejected++;
    printf("FAIL %s: ptxas rejects the PTX (kept in %s.bad): %s\n", what, tmp, out);
    char keep[4200];
    snprintf(keep, sizeof keep, "%s.bad", tmp);
    rename(tmp, keep);
  }
}

static int ptxas_mode(const char *src, int nrandom) {
  char ptxas[4096];
  if (ptxas_path(ptxas, sizeof ptxas)) {
    printf("skipped: no ptxas (looked for %s; set CUDA_HOME)\n", ptxas);
    return 77;
  }
  char tmp[64];
  snprintf(tmp, sizeof tmp, "/tmp/tlaloc-ptxas-%ld.ptx", (long)getpid());
  char ldb[4096];
  gpu_options o = gpu_options_default();
  bool have_ld = gpu_libdevice_path(&o, ldb, sizeof ldb) != NULL;
  pstats ps = {0}, own = {0};
  char **ex = tg_files(src, "examples"), **sp = tg_files(src, "tests/gpu/graphs");
  for (int i = 0; ex[i]; i++) {
    tl_graph *g = load(ex[i]);
    ptx_one(g, &o, ptxas, tmp, ex[i], &ps);
    gpu_options oo = o;
    oo.math = GPU_MATH_OWN;
    ptx_one(g, &oo, ptxas, tmp, ex[i], &own);
    tl_graph_free(g);
  }
  int nex = ps.modules;
  for (int i = 0; sp[i]; i++) {
    tl_graph *g = load(sp[i]);
    ptx_one(g, &o, ptxas, tmp, sp[i], &ps);
    tl_graph_free(g);
  }
  rg_seed(7);
  for (int i = 0; i < nrandom; i++) {
    int d;
    tl_graph *g = rg_graph(&d);
    char what[64];
    snprintf(what, sizeof what, "random graph %d", i);
    ptx_one(g, &o, ptxas, tmp, what, &ps);
    tl_graph_free(g);
  }
  unlink(tmp);
  printf("ptxas -arch=%s (%s): %d modules, %d kernels (%d examples, %d of tests/gpu/graphs, %d random graphs): "
         "%d accepted, %d rejected; compile %.1f ms per module on average, %.1f at most\n",
         gpu_arch(&o), have_ld ? "libdevice linked" : "no libdevice: the project's own math", ps.modules, ps.kernels,
         nex, count(sp), nrandom, ps.accepted, ps.rejected, ps.modules ? ps.ms_total / ps.modules : 0, ps.ms_max);
  free_list(ex);
  free_list(sp);
  printf("ptxas, the examples without libdevice (own f32 exp/log/log1p/tanh): %d accepted, %d rejected, %d refused "
         "with the 'needs libdevice' message\n", own.accepted, own.rejected, own.refused);
  return ps.rejected || own.rejected || ps.accepted == 0 ? 1 : 0;
}

/* ---- the emulator's checks ------------------------------------------------------------- */

/* Runs k on a grid of 2 blocks of 64 threads over buffer 0 (n floats) and
 * buffer 1 (n floats); 0 when it passed, else the message in err. */
static int sim_run(const gk_kernel *k, float *b0, float *b1, int64_t n, char *err, size_t en) {
  void *bufs[2] = {b0, b1};
  int64_t numel[2] = {n, n}, syms[1] = {0};
  int32_t e = 0;
  gk_sim_args a = {.grid = 2, .block = 64, .bufs = bufs, .numel = numel, .syms = syms, .err = &e};
  err[0] = 0;
  return gk_sim_launch(k, &a, err, en);
}

/* expect: NULL (must pass) or a piece of the message it must fail with */
static int expect(const char *name, gk_kernel *k, const char *want, float *b0, float *b1, int64_t n) {
  char err[1024], verr[512];
  if (gk_verify(k, verr, sizeof verr)) {
    printf("FAIL emulator check %s: the kernel is malformed: %s\n", name, verr);
    gk_free(k);
    return 1;
  }
  int rc = sim_run(k, b0, b1, n, err, sizeof err);
  gk_free(k);
  bool ok = want ? rc != 0 && strstr(err, want) : rc == 0;
  printf("%s emulator check %-28s %s\n", ok ? "ok  " : "FAIL", name, rc ? err : "(passes)");
  return ok ? 0 : 1;
}

static gk_kernel *kernel(void) { return gk_new("check", 64); }
static int32_t tid(gk_kernel *k) { return gk_sreg_v(k, GK_TID); }
static int32_t gtid(gk_kernel *k) {
  return gk_add(k, gk_mul(k, gk_sreg_v(k, GK_CTAID), gk_sreg_v(k, GK_NTID)), tid(k));
}

static int emulator_mode(void) {
  enum { N = 128 };
  float b0[N], b1[N];
  for (int i = 0; i < N; i++) b0[i] = (float)i, b1[i] = 0;
  int fails = 0;
  /* shared memory: neighbours' values, with and without the barrier */
  for (int bar = 0; bar < 2; bar++) {
    gk_kernel *k = kernel();
    int32_t sh = gk_shm(k, GK_F32, 64);
    gk_shstore(k, sh, tid(k), gk_load(k, 0, TL_F32, gtid(k)));
    if (bar) gk_barrier(k);
    int32_t nb = gk_bin_v(k, GK_AND, gk_add(k, tid(k), gk_i64(k, 1)), gk_i64(k, 63));
    gk_store(k, 1, TL_F32, gtid(k), gk_shload(k, sh, nb));
    fails += expect(bar ? "neighbours with a barrier" : "neighbours without a barrier", k,
                    bar ? NULL : "race: reads shared array", b0, b1, N);
  }
  for (int i = 0; i < N; i++)
    if (b1[i] != b0[(i & ~63) | ((i + 1) & 63)]) {
      printf("FAIL emulator check: neighbours with a barrier computed %g at %d\n", b1[i], i);
      fails++;
      break;
    }
  { /* write after read in one phase */
    gk_kernel *k = kernel();
    int32_t sh = gk_shm(k, GK_F32, 64);
    gk_shstore(k, sh, tid(k), gk_load(k, 0, TL_F32, gtid(k)));
    gk_barrier(k);
    int32_t v = gk_shload(k, sh, gk_bin_v(k, GK_XOR, tid(k), gk_i64(k, 1)));
    gk_shstore(k, sh, tid(k), v);
    gk_store(k, 1, TL_F32, gtid(k), v);
    fails += expect("write after others read", k, "race: writes shared array", b0, b1, N);
  }
  { /* a barrier under a branch that half the block takes */
    gk_kernel *k = kernel();
    gk_if(k, gk_icmp_v(k, GK_ISLT, tid(k), gk_i64(k, 16)));
    gk_barrier(k);
    gk_end(k);
    fails += expect("barrier in divergent code", k, "barrier not reached", b0, b1, N);
  }
  { /* a shuffle with half the warp */
    gk_kernel *k = kernel();
    gk_if(k, gk_icmp_v(k, GK_ISLT, tid(k), gk_i64(k, 16)));
    gk_store(k, 1, TL_F32, gtid(k), gk_shfl_xor(k, gk_load(k, 0, TL_F32, gtid(k)), 1));
    gk_end(k);
    fails += expect("shuffle in divergent code", k, "shuffle in warp 0 with 16 of 32 lanes", b0, b1, N);
  }
  { /* a full-warp butterfly: every lane gets the warp's sum */
    gk_kernel *k = kernel();
    int32_t v = gk_load(k, 0, TL_F32, gtid(k));
    for (int off = 16; off; off /= 2) v = gk_bin_v(k, GK_FADD, v, gk_shfl_xor(k, v, off));
    gk_store(k, 1, TL_F32, gtid(k), v);
    fails += expect("warp sum by shuffles", k, NULL, b0, b1, N);
    float want = 0;
    for (int i = 0; i < 32; i++) want += b0[i];
    if (b1[5] != want) {
      printf("FAIL emulator check: the warp sum is %g, not %g\n", b1[5], want);
      fails++;
    }
  }
  { /* every thread writes element 0 */
    gk_kernel *k = kernel();
    gk_store(k, 1, TL_F32, gk_i64(k, 0), gk_load(k, 0, TL_F32, gtid(k)));
    fails += expect("threads write one element", k, "race: writes buffer 1 element 0", b0, b1, N);
  }
  { /* block 1 reads what block 0 wrote: no barrier orders blocks */
    gk_kernel *k = kernel();
    gk_store(k, 1, TL_F32, gtid(k), gk_load(k, 0, TL_F32, gtid(k)));
    gk_if(k, gk_icmp_v(k, GK_IEQ, gk_sreg_v(k, GK_CTAID), gk_i64(k, 1)));
    gk_store(k, 0, TL_F32, gtid(k), gk_load(k, 1, TL_F32, tid(k)));
    gk_end(k);
    fails += expect("read across blocks", k, "race: reads buffer 1", b0, b1, N);
  }
  { /* out of bounds */
    gk_kernel *k = kernel();
    gk_store(k, 1, TL_F32, gtid(k), gk_load(k, 0, TL_F32, gk_add(k, gtid(k), gk_i64(k, 1))));
    fails += expect("read past the end", k, "outside [0, 128)", b0, b1, N);
  }
  { /* a 16-byte claim on an odd index */
    gk_kernel *k = kernel();
    int32_t i = gk_bin_v(k, GK_SREM, gk_add(k, gk_mul(k, gtid(k), gk_i64(k, 4)), gk_i64(k, 1)), gk_i64(k, N));
    k->align_base = i;
    k->align_vec = 4;
    gk_store(k, 1, TL_F32, gtid(k), gk_load(k, 0, TL_F32, i));
    fails += expect("misaligned 16-byte access", k, "claims 16-byte alignment", b0, b1, N);
  }
  { /* shared memory read before any write */
    gk_kernel *k = kernel();
    int32_t sh = gk_shm(k, GK_F32, 64);
    gk_store(k, 1, TL_F32, gtid(k), gk_shload(k, sh, tid(k)));
    fails += expect("uninitialised shared memory", k, "never written", b0, b1, N);
  }
  { /* a loop that never advances */
    gk_kernel *k = kernel();
    int32_t v = gk_var(k, GK_I64);
    gk_loop(k, v, gk_i64(k, 0), gk_i64(k, 4), gk_i64(k, 0));
    gk_end(k);
    fails += expect("loop step 0", k, "not positive", b0, b1, N);
  }
  { /* integer division by zero */
    gk_kernel *k = kernel();
    int32_t z = gk_bin_v(k, GK_SREM, tid(k), gk_sreg_v(k, GK_NTID));
    gk_store(k, 1, TL_F32, gtid(k), gk_conv_v(k, GK_SITOFP, gk_bin_v(k, GK_SDIV, tid(k), z), GK_F32));
    fails += expect("division by zero", k, "integer division by zero", b0, b1, N);
  }
  printf("emulator checks: %d failed\n", fails);
  return fails ? 1 : 0;
}

/* ---- the project's own math ------------------------------------------------------------- */

static double ulps(float got, double want) {
  if (isnan(want)) return isnan(got) ? 0 : INFINITY;
  float w = (float)want; /* the correctly rounded result (overflow included) */
  if (isinf(w) || isinf(got)) return w == got ? 0 : INFINITY;
  if (w == got) return 0;
  double ulp = fabs((double)nextafterf(w, INFINITY) - (double)w);
  if (ulp == 0 || !isfinite(ulp)) ulp = 1.4e-45;
  return fabs((double)got - want) / ulp;
}

static int own_math_mode(void) {
  static const struct { const char *op; double (*ref)(double); double lo, hi; double max_ulp; } fs[] = {
    {"exp", exp, -104, 89, 4}, {"log", log, 0, 3.4e38, 4}, {"log1p", log1p, -1, 3.4e38, 4},
    {"tanh", tanh, -12, 12, 4},
  };
  enum { N = 200000 };
  int fails = 0;
  gpu_options o = gpu_options_default();
  o.sim = 1;
  o.math = GPU_MATH_OWN;
  o.sim_blocks = 64;
  for (size_t f = 0; f < sizeof fs / sizeof *fs; f++) {
    char text[256];
    tl_error err = {0};
    snprintf(text, sizeof text, "(graph m (in x f32 [%d]) (out y (%s x)))", N, fs[f].op);
    tl_graph *g = tlt_parse(text, NULL);
    gpu_program *p = gpu_compile(g, &o, &err);
    if (!p) {
      printf("FAIL own %s: %s\n", fs[f].op, err.msg);
      fails++;
      tl_graph_free(g);
      continue;
    }
    int64_t dims[1] = {N};
    tl_tensor *x = tl_tensor_new(TL_F32, 1, dims, TL_EMSG(&err)), *y = NULL;
    float *xs = x->data;
    /* every binade of the range, evenly in each, then the special values */
    static const float special_vals[] = {0.0f, -0.0f, 1.0f, -1.0f, INFINITY, -INFINITY, NAN, 1e-45f, -1e-45f,
                                         1.17549435e-38f, 3.4e38f, -3.4e38f, 88.7f, 89.5f, -103.9f, -150.0f,
                                         -0.99999994f, 1e-10f, -1e-10f, 0.5f};
    int ns = (int)(sizeof special_vals / sizeof *special_vals);
    for (int i = 0; i < N - ns; i++) {
      double u = (double)i / (N - ns);
      double v;
      if (fs[f].lo >= 0) v = exp(log(1e-44) + u * (log(fs[f].hi) - log(1e-44))); /* log-spaced */
      else if (!strcmp(fs[f].op, "log1p")) v = u < 0.5 ? -1 + pow(10, -7 * (1 - 2 * u)) : exp(log(1e-30) + (2 * u - 1) * (log(fs[f].hi) - log(1e-30)));
      else v = fs[f].lo + u * (fs[f].hi - fs[f].lo);
      xs[i] = (float)v;
    }
    for (int i = 0; i < ns; i++) xs[N - ns + i] = special_vals[i];
    double worst = 0;
    float at = 0;
    if (gpu_run(p, &x, NULL, &y, &err)) {
      printf("FAIL own %s: run: %s\n", fs[f].op, err.msg);
      fails++;
    } else {
      const float *ys = y->data;
      for (int i = 0; i < N; i++) {
        double u = ulps(ys[i], fs[f].ref((double)xs[i]));
        if (u > worst) worst = u, at = xs[i];
      }
      bool ok = worst <= fs[f].max_ulp;
      printf("%s own f32 %-6s max error %.2f ulp over %d values (at x = %.9g; bound %.0f)\n", ok ? "ok  " : "FAIL",
             fs[f].op, worst, N, (double)at, fs[f].max_ulp);
      fails += !ok;
    }
    tl_tensor_free(x);
    tl_tensor_free(y);
    gpu_program_free(p);
    tl_graph_free(g);
  }
  /* composites built on them run; other functions and f64 are refused by name */
  static const char *const ok_graphs[] = {
    "(graph c (in x f32 [50]) (out a (sigmoid x)) (out b (softplus x)) (out c (softmax x)) (out d (log_softmax x))"
    " (out e (logaddexp x (neg x))) (out f (xlogy (abs x) (abs x))))",
  };
  static const char *const refused[][2] = {
    {"(graph c (in x f32 [5]) (out a (sin x)))", "the math function sin on f32 needs libdevice"},
    {"(graph c (in x f64 [5]) (out a (exp x)))", "the math function exp on f64 needs libdevice"},
    {"(graph c (in x f32 [5]) (out a (remainder x 2.0)))", "the math function fmod on f32 needs libdevice"},
  };
  tally t = {0};
  const tl_engine *sim = tl_engine_find("gpu-sim", 0);
  (void)sim;
  for (size_t i = 0; i < sizeof ok_graphs / sizeof *ok_graphs; i++) {
    tl_graph *g = tlt_parse(ok_graphs[i], NULL);
    tl_error err = {0};
    gpu_program *p = gpu_compile(g, &o, &err);
    tl_tensor *in[1] = {0}, *out[8] = {0}, *ref[8] = {0};
    tl_random_inputs(g, in, NULL, 3, TL_EMSG(&err));
    if (!p || gpu_run(p, in, NULL, out, &err) || tl_interp_run(g, in, NULL, ref, TL_EMSG(&err))) {
      printf("FAIL own math composites: %s\n", err.msg);
      fails++;
    } else {
      for (int k = 0; k < g->noutputs; k++)
        for (int64_t e = 0; e < ref[k]->numel; e++)
          if (!close_enough(tl_tensor_get_f64(ref[k], e), tl_tensor_get_f64(out[k], e), TL_F32, 1e-5, 1)) {
            printf("FAIL own math composites: output %d element %lld: %.9g vs %.9g\n", k, (long long)e,
                   tl_tensor_get_f64(ref[k], e), tl_tensor_get_f64(out[k], e));
            fails++;
            break;
          }
      printf("ok   own math: sigmoid, softplus, softmax, log_softmax, logaddexp, xlogy on f32 agree with the "
             "interpreter\n");
    }
    for (int k = 0; k < 8; k++) {
      tl_tensor_free(out[k]);
      tl_tensor_free(ref[k]);
    }
    tl_tensor_free(in[0]);
    gpu_program_free(p);
    tl_graph_free(g);
  }
  for (size_t i = 0; i < sizeof refused / sizeof *refused; i++) {
    tl_graph *g = tlt_parse(refused[i][0], NULL);
    tl_error err = {0};
    gpu_program *p = gpu_compile(g, &o, &err);
    bool ok = !p && strstr(err.msg, refused[i][1]);
    printf("%s own math refuses: %s\n", ok ? "ok  " : "FAIL", p ? "(compiled!)" : err.msg);
    fails += !ok;
    gpu_program_free(p);
    tl_graph_free(g);
  }
  (void)t;
  printf("own math: %d failed\n", fails);
  return fails ? 1 : 0;
}

/* ---- the driver ------------------------------------------------------------------------------- */

static int driver_mode(void) {
  int fails = 0;
  char why[512];
  /* in a child: the driver is loaded once per process */
  static const struct { const char *lib, *want; } cases[] = {
    {"libtlaloc-no-such-driver.so.1", "gpu: no CUDA driver (libtlaloc-no-such-driver.so.1 not found)"},
    {"/usr/local/cuda/lib64/stubs/libcuda.so", "gpu: no GPU (cuInit: "},
  };
  for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
    if (i == 1 && access(cases[i].lib, R_OK)) {
      printf("skipped: the stub driver case (no %s)\n", cases[i].lib);
      continue;
    }
    int fd[2];
    if (pipe(fd)) return 1;
    pid_t pid = fork();
    if (pid == 0) {
      close(fd[0]);
      setenv("TLALOC_LIBCUDA", cases[i].lib, 1);
      char w[512] = "";
      int ok = gpu_available(w, sizeof w);
      /* a program cannot be compiled for the GPU either, with the same message */
      tl_graph *g = tlt_parse("(graph t (in x f32 [4]) (out y (exp x)))", NULL);
      tl_error err = {0};
      gpu_options o = gpu_options_default();
      gpu_program *p = gpu_compile(g, &o, &err);
      dprintf(fd[1], "%d\n%s\n%s\n", ok, w, p ? "compiled" : err.msg);
      _exit(0);
    }
    close(fd[1]);
    char buf[2048] = "";
    ssize_t got = read(fd[0], buf, sizeof buf - 1);
    buf[got > 0 ? got : 0] = 0;
    close(fd[0]);
    waitpid(pid, NULL, 0);
    char *w = strchr(buf, '\n'), *e = w ? strchr(w + 1, '\n') : NULL;
    bool ok = buf[0] == '0' && w && strstr(w, cases[i].want) && e && strstr(e, cases[i].want);
    if (w) *strchr(w + 1, '\n') = 0;
    printf("%s driver %s: %s\n", ok ? "ok  " : "FAIL", cases[i].lib, w ? w + 1 : buf);
    fails += !ok;
  }
  if (gpu_available(why, sizeof why)) {
    printf("this machine has a GPU: tests/gpu's 'gpu' mode runs the kernels\n");
  } else {
    bool ok = strstr(why, "gpu: no CUDA driver (libcuda.so.1 not found)") || strstr(why, "gpu: no GPU (");
    printf("%s this machine: %s (the GPU kernels are checked on the emulator and by ptxas)\n", ok ? "ok  " : "FAIL",
           why);
    fails += !ok;
  }
  return fails ? 1 : 0;
}

/* ---- placement ---------------------------------------------------------------------------------- */

static int placement_mode(void) {
  /* the built-in profile (an H100/H200-class GPU on PCIe 5, the reference
   * 2-vCPU machine), not this machine's stored one: the answers are the
   * model's, and the test must not depend on where it runs */
  tl_profile prof;
  tl_profile_default(&prof);
  static const struct { const char *name, *text; int64_t n; int gpu; } cases[] = {
    {"a tiny graph", "(graph t (in x f32 [16]) (out y (add (mul x 2.0) 1.0)))", 0, 0},
    {"a small softmax", "(graph t (in x f32 [64 128]) (out y (softmax x :axis 1)))", 0, 0},
    {"a huge input, plus 1", "(graph t (in x f32 [n]) (out y (add x 1.0)))", 100000000, 0},
    {"a large elementwise chain", "(graph t (in x f32 [n]) (out y (tanh (exp (sin (cos (erf (sigmoid x))))))))",
     20000000, 1},
    {"a large matmul", "(graph t (in a f32 [4096 4096]) (in b f32 [4096 4096]) (out c (matmul a b)))", 0, 1},
    {"attention, t = 4096, d = 64",
     "(graph t (in q f32 [4096 64]) (in k f32 [4096 64]) (in v f32 [4096 64])"
     " (out o (matmul (softmax (div (matmul q (transpose k)) 8.0) :axis -1) v)))", 0, 1},
  };
  int fails = 0;
  for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
    tl_graph *g = tlt_parse(cases[i].text, NULL);
    int64_t syms[1] = {cases[i].n};
    tl_placement pl;
    tl_error err = {0};
    if (tl_cost_place(&prof, g, g->nsyms ? syms : NULL, 0, &pl, TL_EMSG(&err))) {
      printf("FAIL placement of %s: %s\n", cases[i].name, err.msg);
      fails++;
      tl_graph_free(g);
      continue;
    }
    bool ok = pl.gpu == (cases[i].gpu != 0);
    printf("%s placement of %-28s cpu %12.1f us | gpu %12.1f us = kernels %10.1f + in %10.1f (%.3g B) + out %10.1f "
           "(%.3g B) + sync -> %s\n", ok ? "ok  " : "FAIL", cases[i].name, pl.cpu_s * 1e6, pl.gpu_s * 1e6,
           pl.gpu_kernels_s * 1e6, pl.h2d_s * 1e6, pl.h2d_bytes, pl.d2h_s * 1e6, pl.d2h_bytes, pl.gpu ? "GPU" : "CPU");
    fails += !ok;
    tl_graph_free(g);
  }
  /* the auto engine runs a tiny graph on the CPU and says so */
  const tl_engine *a = tl_engine_find("auto", 0);
  tl_graph *g = tlt_parse(cases[0].text, NULL);
  tl_engine_opts eo = tl_engine_opts_default();
  tl_error err = {0};
  void *p = a->compile(g, &eo, &err);
  tl_tensor *in[1] = {0}, *out[1] = {0};
  tl_random_inputs(g, in, NULL, 1, TL_EMSG(&err));
  if (!p || a->run(p, in, NULL, out, &err)) {
    printf("FAIL the auto engine: %s\n", err.msg);
    fails++;
  } else {
    char *d = a->describe(p);
    bool ok = strstr(d, "\"device\": \"cpu\"") != NULL;
    printf("%s the auto engine on a tiny graph: %.200s...\n", ok ? "ok  " : "FAIL", d);
    fails += !ok;
    tl_free(d);
  }
  if (p) a->free(p);
  tl_tensor_free(in[0]);
  tl_tensor_free(out[0]);
  tl_graph_free(g);
  printf("placement: %d failed\n", fails);
  return fails ? 1 : 0;
}

/* The random graphs of the differential modes (the same seed, so the same
 * sequence) as DIR/random-NNN.tg, for scripts/gpu-prepare.sh to carry to a
 * GPU machine that has no tlaloc of its own. */
static int write_random_mode(const char *dir, int n) {
  rg_seed(7);
  for (int i = 0; i < n; i++) {
    int d;
    tl_graph *g = rg_graph(&d);
    char *text = tl_tg_print(g), path[4096];
    tl_graph_free(g);
    snprintf(path, sizeof path, "%s/random-%03d.tg", dir, i);
    FILE *f = fopen(path, "w");
    int ok = f && text && fputs(text, f) >= 0;
    if (f && fclose(f)) ok = 0;
    tl_free(text);
    if (!ok) {
      fprintf(stderr, "gpu-test: cannot write %s\n", path);
      return 1;
    }
  }
  return 0;
}

int main(int argc, char **argv) {
  if (argc < 2) {
    fprintf(stderr, "usage: gpu-test sim|gpu|ptxas SRC [--random N] | emulator | own-math | driver | placement | "
                    "write-random DIR N\n");
    return 2;
  }
  int nrandom = 300;
  for (int i = 3; i + 1 < argc; i++)
    if (!strcmp(argv[i], "--random")) nrandom = atoi(argv[i + 1]);
  const char *m = argv[1];
  if (!strcmp(m, "sim") && argc > 2) return diff_mode("gpu-sim", argv[2], nrandom);
  if (!strcmp(m, "gpu") && argc > 2) return diff_mode("gpu", argv[2], nrandom);
  if (!strcmp(m, "ptxas") && argc > 2) return ptxas_mode(argv[2], nrandom);
  if (!strcmp(m, "emulator")) return emulator_mode();
  if (!strcmp(m, "own-math")) return own_math_mode();
  if (!strcmp(m, "driver")) return driver_mode();
  if (!strcmp(m, "placement")) return placement_mode();
  if (!strcmp(m, "write-random") && argc > 3) return write_random_mode(argv[2], atoi(argv[3]));
  fprintf(stderr, "gpu-test: unknown mode '%s'\n", m);
  return 2;
}
