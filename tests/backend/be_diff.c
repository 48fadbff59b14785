/* be_diff.c - differential test of the CPU backend against the reference
 * interpreter: every graph of examples/, tests/backend/graphs/ and
 * tests/gpu/graphs/ at several symbol sizes (0 included), then random
 * graphs (be_random.c).
 * Exit 0 iff every comparison passes.
 *
 * usage: be-diff SOURCE_DIR [--random N] [--seed S] [-v] */
#include "backend/backend.h"
#include "interp/interp.h"
#include "ir/symdim.h"
#include "ir/tg.h"
#include "util/util.h"

#include <dirent.h>
#include <unistd.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int be_random_graphs(int count, uint64_t seed, int verbose);
int be_compare(const tl_graph *g, tl_tensor **inputs, const int64_t *syms, const char *what, int verbose);
int be_compare_opts(const tl_graph *g, tl_tensor **inputs, const int64_t *syms, const char *what, int verbose,
                    const be_options *o, be_stats *st);
int be_fusion_tests(const char *srcdir, int verbose);
int be_loop_tests(int verbose);
int be_pass_tests(int verbose);
int be_short_tests(int verbose);
int be_vmath_tests(const char *srcdir, int verbose);
int be_jit_share_tests(const char *srcdir);

/* f32 GEMM accumulates in f32 (OpenBLAS); the interpreter in f64 */
static double f32_rtol = 1e-5, f32_scale = 1;
/* an f64 value computed from f32 ones (exp of an f32, then promoted) is
 * only as close as f32: both sides may call different f32 exp/log
 * implementations (libm's and libmvec's differ by an ulp or two) */
static bool f64_from_f32;
/* be_compare_opts runs through be_run_into (outputs allocated here) rather
 * than be_run, whose fresh outputs turn streaming stores off */
int be_compare_into;

static bool close_enough(double a, double b, int dt) {
  if (dt == TL_F64 && f64_from_f32) dt = TL_F32;
  if (isnan(a) || isnan(b)) return isnan(a) && isnan(b);
  if (isinf(a) || isinf(b)) return a == b || (dt == TL_F32 && fabs(a - b) <= 1e-5 * fmax(fabs(a), fabs(b)));
  double rtol = dt == TL_F32 ? f32_rtol : 1e-12, atol = dt == TL_F32 ? f32_rtol * f32_scale : 1e-12;
  return fabs(a - b) <= rtol * fmax(fabs(a), fabs(b)) + atol;
}

int be_compare(const tl_graph *g, tl_tensor **inputs, const int64_t *syms, const char *what, int verbose) {
  be_options o = be_options_default();
  return be_compare_opts(g, inputs, syms, what, verbose, &o, NULL);
}

static bool same_tensor(const tl_tensor *a, const tl_tensor *b) {
  return a->dtype == b->dtype && a->numel == b->numel &&
         !memcmp(a->data, b->data, (size_t)a->numel * tl_dtype_size((tl_dtype)a->dtype));
}

/* 0 when compiled (under o) and interpreted agree (both errors also
 * agree), and the inputs are left as they were (unless o lets the program
 * destroy them: then each run gets fresh copies). st: the compile's
 * statistics after the runs (may be NULL). */
int be_compare_opts(const tl_graph *g, tl_tensor **inputs, const int64_t *syms, const char *what, int verbose,
                    const be_options *o, be_stats *st) {
  char e1[512] = "";
  tl_error e2 = {0};
  int no = g->noutputs, ni = g->ninputs;
  tl_tensor **ref = tl_xcalloc((size_t)no + 1, sizeof *ref), **got = tl_xcalloc((size_t)no + 1, sizeof *got);
  tl_tensor **orig = tl_xcalloc((size_t)ni + 1, sizeof *orig), **run_in = tl_xcalloc((size_t)ni + 1, sizeof *run_in);
  for (int i = 0; i < ni; i++) orig[i] = tl_tensor_copy(inputs[i]);
  int bad = 0;
  int r1 = tl_interp_run(g, inputs, syms, ref, e1, sizeof e1);
  f32_rtol = 1e-5;
  f64_from_f32 = false;
  for (int i = 0; i < g->nnodes; i++) {
    if (g->nodes[i].op == TL_OP_MATMUL && g->nodes[i].type.dtype == TL_F32) f32_rtol = 1e-4;
    if (g->nodes[i].type.dtype == TL_F32) f64_from_f32 = true;
  }
  be_program *p = be_compile(g, o, &e2);
  if (!p) {
    printf("FAIL %s: compile: %s\n", what, e2.msg);
    bad = 1;
    goto done;
  }
  /* twice as asked (buffers are reused), then once into buffers the
   * caller owns filled with 0x7e bytes (a finite 8.4e37 in f32, 126 in a
   * bool): an element no kernel writes shows there (be_run's fresh
   * outputs of 1 MiB and more are not zeroed either: jit.c, new_output) */
  for (int rep = 0; rep < 3 && !bad; rep++) {
    for (int i = 0; i < ni; i++) run_in[i] = o->destroy_inputs ? tl_tensor_copy(inputs[i]) : inputs[i];
    int r2;
    if ((be_compare_into || rep == 2) && !r1) { /* into buffers the caller owns (frame flag fresh = 0) */
      r2 = 0;
      for (int i = 0; i < no && !r2; i++) {
        if (!(got[i] = tl_tensor_new((tl_dtype)ref[i]->dtype, ref[i]->rank, ref[i]->dims, TL_EMSG(&e2)))) r2 = -1;
        else memset(got[i]->data, 0x7e, (size_t)got[i]->numel * tl_dtype_size((tl_dtype)got[i]->dtype));
      }
      if (!r2) r2 = be_run_into(p, run_in, syms, got, &e2);
    } else {
      r2 = be_run(p, run_in, syms, got, &e2);
    }
    for (int i = 0; i < ni; i++) {
      if (o->destroy_inputs) tl_tensor_free(run_in[i]);
      else if (!same_tensor(inputs[i], orig[i]) && !bad) {
        printf("FAIL %s: input %d was overwritten\n", what, i);
        bad = 1;
      }
    }
    if (r1 || r2) {
      if (!r1 != !r2) {
        printf("FAIL %s: interp %s, compiled %s\n", what, r1 ? e1 : "ok", r2 ? e2.msg : "ok");
        bad = 1;
      }
    } else {
      for (int i = 0; i < no && !bad; i++) {
        const tl_tensor *a = ref[i], *b = got[i];
        if (a->dtype != b->dtype || a->rank != b->rank || a->numel != b->numel ||
            memcmp(a->dims, b->dims, (size_t)a->rank * sizeof a->dims[0])) {
          printf("FAIL %s: output %d shape/dtype differs\n", what, i);
          bad = 1;
          break;
        }
        f32_scale = 1;
        if (f32_rtol > 1e-5) /* GEMM error is relative to the output's norm */
          for (int64_t k = 0; k < a->numel; k++) {
            double v = fabs(tl_tensor_get_f64(a, k));
            if (v > f32_scale && v < 1e30) f32_scale = v;
          }
        for (int64_t k = 0; k < a->numel; k++) {
          bool ok;
          if (tl_dtype_is_float((tl_dtype)a->dtype))
            ok = close_enough(tl_tensor_get_f64(a, k), tl_tensor_get_f64(b, k), a->dtype);
          else
            ok = tl_tensor_get_i64(a, k) == tl_tensor_get_i64(b, k);
          if (!ok) {
            printf("FAIL %s: output %d element %lld: interp %.17g compiled %.17g\n", what, i, (long long)k,
                   tl_tensor_get_f64(a, k), tl_tensor_get_f64(b, k));
            bad = 1;
            break;
          }
        }
      }
    }
    for (int i = 0; i < no; i++) {
      tl_tensor_free(got[i]);
      got[i] = NULL;
    }
  }
done:
  if (bad && verbose) {
    char *s = tl_tg_print(g);
    printf("%s\n", s);
    tl_free(s);
  }
  if (p && st) *st = *be_program_stats(p);
  be_program_free(p);
  for (int i = 0; i < no; i++) tl_tensor_free(ref[i]);
  for (int i = 0; i < ni; i++) tl_tensor_free(orig[i]);
  tl_free(ref);
  tl_free(got);
  tl_free(orig);
  tl_free(run_in);
  return bad;
}

static int run_example(const char *path, int verbose) {
  char err[512];
  size_t len;
  char *src = tl_read_file(path, &len, err, sizeof err);
  if (!src) {
    printf("FAIL %s: %s\n", path, err);
    return 1;
  }
  tl_diag d;
  tl_diag_init(&d, path, src, len);
  tl_graph *g = tl_tg_parse(src, len, &d);
  tl_diag_free(&d);
  tl_free(src);
  if (!g) {
    printf("FAIL %s: parse\n", path);
    return 1;
  }
  int bad = 0;
  static const int64_t sizes[] = {5, 1, 0, 37};
  for (int si = 0; si < 4; si++) {
    int64_t *syms = tl_xcalloc((size_t)g->nsyms + 1, sizeof *syms);
    tl_tensor **in = tl_xcalloc((size_t)g->ninputs + 1, sizeof *in);
    char what[9000];
    snprintf(what, sizeof what, "%s (syms from %lld)", path, (long long)sizes[si]);
    if (tl_syms_at(g, syms, sizes[si], 1, err, sizeof err)) {
      /* a derived dim negative at these sizes (a slice's bound): no run */
      if (verbose) printf("skip %s: %s\n", what, err);
    } else if (tl_random_inputs(g, in, syms, 42 + (uint64_t)si, err, sizeof err)) {
      printf("FAIL %s: inputs: %s\n", what, err);
      bad = 1;
    } else {
      bad |= be_compare(g, in, syms, what, verbose);
      if (si == 0) { /* LLVM's default<O3> as well as the default kernel pipeline */
        be_options o3 = be_options_default();
        o3.opt_level = 3;
        strcat(what, " at -O3");
        bad |= be_compare_opts(g, in, syms, what, verbose, &o3, NULL);
      }
    }
    for (int i = 0; i < g->ninputs; i++) tl_tensor_free(in[i]);
    tl_free(in);
    tl_free(syms);
  }
  tl_graph_free(g);
  return bad;
}

/* The only entry in dir (a compile of one program there): its path in
 * path, its bytes returned (NULL if there is not exactly one). */
static char *only_entry(const char *dir, char *path, size_t n, size_t *len) {
  DIR *dp = opendir(dir);
  if (!dp) return NULL;
  struct dirent *de;
  int count = 0;
  while ((de = readdir(dp)))
    if (de->d_name[0] != '.') count += snprintf(path, n, "%s/%s", dir, de->d_name) < (int)n ? 1 : 2;
  closedir(dp);
  char err[256];
  return count == 1 ? tl_read_file(path, len, err, sizeof err) : NULL;
}

static int write_bytes(const char *path, const void *data, size_t len) {
  FILE *f = fopen(path, "wb");
  if (!f) return -1;
  bool ok = fwrite(data, 1, len, f) == len;
  return fclose(f) == 0 && ok ? 0 : -1;
}

static tl_graph *load_example(const char *srcdir, const char *name) {
  char path[4096], err[512];
  snprintf(path, sizeof path, "%s/examples/%s.tg", srcdir, name);
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

/* Bad cache entries: for each of two programs, its entry is replaced by a
 * truncated, a bit-flipped, an empty, a bare object (no header) and the
 * other program's entry (a sound object for another program: linking it
 * gave softplus_naive a loss of 0 and made layer_norm crash). Each time
 * the compile must notice (cache_bad, no hit), compute what the
 * interpreter computes, and leave the entry as a fresh compile writes it;
 * the compile after that is a hit. */
static int cache_repair_test(const char *srcdir, const char *dir) {
  static const char *const names[2] = {"softplus_naive", "layer_norm"};
  enum { HDR = 72 }; /* jit.c's cache_hdr */
  tl_graph *g[2] = {0};
  char sub[2][4400], path[2][4800];
  tl_error err = {0};
  char *good[2] = {0};
  size_t len[2] = {0};
  int bad = 0;
  for (int i = 0; i < 2 && !bad; i++) {
    g[i] = load_example(srcdir, names[i]);
    snprintf(sub[i], sizeof sub[i], "%s/%s", dir, names[i]);
    be_options o = be_options_default();
    o.cache_dir = sub[i];
    be_program *p = g[i] ? be_compile(g[i], &o, &err) : NULL;
    be_program_free(p);
    good[i] = p ? only_entry(sub[i], path[i], sizeof path[i], &len[i]) : NULL;
    if (!good[i] || len[i] <= HDR + 16) {
      printf("FAIL cache repair: no entry for %s\n", names[i]);
      bad = 1;
    }
  }
  enum { TRUNC_HALF, TRUNC_HEADER, TRUNC_ONE, FLIP_OBJECT, FLIP_HEADER, EMPTY, BARE_OBJECT, OTHER, EXTRA, NCASE };
  static const char *const what[NCASE] = {"truncated to half", "truncated to the header", "one byte short",
                                          "bytes flipped in the object", "a byte flipped in the header",
                                          "empty", "a bare object file", "the other program's entry",
                                          "a byte appended"};
  for (int i = 0; i < 2 && !bad; i++) {
    int64_t syms[2] = {5, -1};
    tl_tensor *in[3] = {0};
    if (tl_random_inputs(g[i], in, syms, 11, TL_EMSG(&err))) {
      printf("FAIL cache repair: inputs: %s\n", err.msg);
      bad = 1;
    }
    for (int c = 0; c < NCASE && !bad; c++) {
      char *b = tl_xmalloc(len[i] + len[!i] + 1);
      size_t n = len[i];
      memcpy(b, good[i], n);
      switch (c) {
      case TRUNC_HALF: n /= 2; break;
      case TRUNC_HEADER: n = HDR; break;
      case TRUNC_ONE: n--; break;
      case FLIP_OBJECT:
        for (size_t k = n / 2; k < n / 2 + 16; k++) b[k] ^= (char)0x5a;
        break;
      case FLIP_HEADER: b[20] ^= 1; break;
      case EMPTY: n = 0; break;
      case BARE_OBJECT:
        n -= HDR;
        memmove(b, b + HDR, n);
        break;
      case OTHER:
        n = len[!i];
        memcpy(b, good[!i], n);
        break;
      case EXTRA: b[n++] = 0; break;
      }
      char label[256];
      snprintf(label, sizeof label, "cache repair: %s, entry %s", names[i], what[c]);
      be_options o = be_options_default();
      o.cache_dir = sub[i];
      be_stats st;
      memset(&st, 0, sizeof st);
      if (write_bytes(path[i], b, n)) {
        printf("FAIL %s: cannot write the entry\n", label);
        bad = 1;
      } else if (be_compare_opts(g[i], in, syms, label, 0, &o, &st)) {
        bad = 1; /* be_compare_opts said why */
      } else if (st.cache_hit || !st.cache_bad) {
        printf("FAIL %s: hit %d bad %d, expected a bad entry\n", label, st.cache_hit, st.cache_bad);
        bad = 1;
      } else {
        size_t rl = 0;
        char *r = tl_read_file(path[i], &rl, TL_EMSG(&err));
        if (!r || rl != len[i] || memcmp(r, good[i], rl)) {
          printf("FAIL %s: the entry was not rewritten as a fresh compile writes it\n", label);
          bad = 1;
        }
        tl_free(r);
        memset(&st, 0, sizeof st);
        if (!bad && (be_compare_opts(g[i], in, syms, label, 0, &o, &st) || !st.cache_hit || st.cache_bad)) {
          printf("FAIL %s: the repaired entry is not a hit\n", label);
          bad = 1;
        }
      }
      tl_free(b);
    }
    for (int k = 0; k < g[i]->ninputs; k++) tl_tensor_free(in[k]);
  }
  if (!bad) printf("cache repair: %d kinds of bad entry on 2 programs, each recompiled and replaced\n", NCASE);
  for (int i = 0; i < 2; i++) {
    tl_free(good[i]);
    tl_graph_free(g[i]);
  }
  return bad;
}

/* A module compiled in two halves on two threads (jit.c, "parallel
 * codegen") stores both objects in one cache entry; a hit links both. Each
 * example compiles (a miss) and then hits, both computing what the
 * interpreter does; with two CPUs at least one of them must be cut in two
 * (be_stats.par_modules), else the halves were never exercised. */
static int split_cache_test(const char *srcdir, const char *dir) {
  static const char *const names[] = {"attention", "adam_step", "layer_norm", "xent"};
  enum { N = sizeof names / sizeof *names };
  const char *ct = getenv("TLALOC_COMPILE_THREADS");
  bool two = sysconf(_SC_NPROCESSORS_ONLN) > 1 && !(ct && *ct);
  int bad = 0, split = 0;
  for (int i = 0; i < N && !bad; i++) {
    tl_graph *g = load_example(srcdir, names[i]);
    tl_tensor **in = g ? tl_xcalloc((size_t)g->ninputs + 1, sizeof *in) : NULL;
    int64_t *syms = g ? tl_xmalloc(((size_t)g->nsyms + 1) * sizeof *syms) : NULL;
    char err[256], sub[4400], label[2][96];
    if (!g || tl_syms_at(g, syms, 6, 1, err, sizeof err) || tl_random_inputs(g, in, syms, 5, err, sizeof err)) {
      printf("FAIL split cache: %s: %s\n", names[i], g ? err : "cannot load");
      bad = 1;
    }
    snprintf(sub, sizeof sub, "%s/split-%s", dir, names[i]);
    be_options o = be_options_default();
    o.cache_dir = sub;
    be_stats st[2];
    for (int k = 0; k < 2 && !bad; k++) {
      snprintf(label[k], sizeof label[k], "split cache: %s, %s", names[i], k ? "hit" : "miss");
      bad = be_compare_opts(g, in, syms, label[k], 0, &o, &st[k]) || st[k].cache_hit != k;
      if (bad) printf("FAIL %s (cache hit %d)\n", label[k], st[k].cache_hit);
    }
    if (!bad && st[0].par_modules == 2) split++;
    for (int k = 0; g && k < g->ninputs; k++) tl_tensor_free(in[k]);
    tl_free(in);
    tl_free(syms);
    tl_graph_free(g);
  }
  if (!bad && two && split == 0) {
    printf("FAIL split cache: no example was compiled in two halves on this %ld-CPU machine\n",
           sysconf(_SC_NPROCESSORS_ONLN));
    bad = 1;
  }
  if (!bad) printf("split cache: %d of %d examples compiled in two halves, each a miss then a hit\n", split, N);
  return bad;
}

/* Cache: a miss then a hit (no LLVM work) that computes the same thing. */
static int cache_test(const char *srcdir) {
  char dir[4096], path[4200];
  tl_error err = {0};
  snprintf(dir, sizeof dir, "/tmp/tlaloc-be-cache-test.%ld", (long)getpid());
  snprintf(path, sizeof path, "%s/examples/xent.tg", srcdir);
  size_t len;
  char *src = tl_read_file(path, &len, TL_EMSG(&err));
  tl_diag d;
  tl_diag_init(&d, path, src, len);
  tl_graph *g = tl_tg_parse(src, len, &d);
  tl_diag_free(&d);
  tl_free(src);
  be_options o = be_options_default();
  o.cache_dir = dir;
  int bad = 0;
  be_program *a = be_compile(g, &o, &err);
  be_program *b = a ? be_compile(g, &o, &err) : NULL;
  if (!a || !b) {
    printf("FAIL cache: %s\n", err.msg);
    bad = 1;
  } else {
    const be_stats *sa = be_program_stats(a), *sb = be_program_stats(b);
    printf("cache: miss %.2f ms (lower %.2f opt %.2f codegen %.2f jit %.2f), hit %.2f ms (cache %.2f jit %.2f)\n",
           sa->total_ms, sa->lower_ms, sa->opt_ms, sa->codegen_ms, sa->jit_ms, sb->total_ms, sb->cache_ms, sb->jit_ms);
    if (sa->cache_hit || !sb->cache_hit || sb->opt_ms != 0 || sb->codegen_ms != 0) {
      printf("FAIL cache: expected a miss then a hit without LLVM work\n");
      bad = 1;
    }
    int64_t syms[4] = {7, -1, -1, -1};
    tl_tensor *in[4] = {0}, *oa[2] = {0}, *ob[2] = {0};
    tl_random_inputs(g, in, syms, 3, TL_EMSG(&err));
    if (be_run(a, in, syms, oa, &err) || be_run(b, in, syms, ob, &err) ||
        memcmp(oa[0]->data, ob[0]->data, (size_t)oa[0]->numel * 4)) {
      printf("FAIL cache: hit and miss programs differ\n");
      bad = 1;
    }
    tl_tensor_free(oa[0]);
    tl_tensor_free(ob[0]);
    for (int i = 0; i < g->ninputs; i++) tl_tensor_free(in[i]);
  }
  be_program_free(a);
  be_program_free(b);
  tl_graph_free(g);
  bad |= cache_repair_test(srcdir, dir);
  bad |= split_cache_test(srcdir, dir);
  char cmd[8300];
  snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
  if (system(cmd)) bad = 1;
  return bad;
}

int main(int argc, char **argv) {
  if (argc < 2) {
    fprintf(stderr, "usage: be-diff SOURCE_DIR [--random N] [--seed S] [-v] [--only loops|pass|short]\n");
    return 2;
  }
  int nrandom = 300, verbose = 0;
  uint64_t seed = 1;
  const char *env = getenv("TLALOC_BE_RANDOM");
  if (env) nrandom = atoi(env);
  for (int i = 2; i < argc; i++) {
    if (!strcmp(argv[i], "--random") && i + 1 < argc) nrandom = atoi(argv[++i]);
    else if (!strcmp(argv[i], "--seed") && i + 1 < argc) seed = strtoull(argv[++i], NULL, 10);
    else if (!strcmp(argv[i], "-v")) verbose = 1;
    else if (!strcmp(argv[i], "--only") && i + 1 < argc) { /* one group of cases alone */
      const char *o = argv[++i];
      int f = !strcmp(o, "loops") ? be_loop_tests(verbose) : !strcmp(o, "pass") ? be_pass_tests(verbose)
            : !strcmp(o, "short") ? be_short_tests(verbose)
            : !strcmp(o, "vmath") ? be_vmath_tests(argv[1], verbose)
            : !strcmp(o, "fusion") ? be_fusion_tests(argv[1], verbose)
            : (fprintf(stderr, "be-diff: --only %s?\n", o), 1);
      return f ? 1 : 0;
    }
  }
  /* the examples, graphs kept as regression tests of the backend, and the
   * GPU kernels' graphs (index maps, row modes and special values that
   * both backends lower from the same plans) */
  static const char *const dirs[3] = {"examples", "tests/backend/graphs", "tests/gpu/graphs"};
  int fails = 0, n = 0;
  for (int di = 0; di < 3; di++) {
    char dir[4096];
    snprintf(dir, sizeof dir, "%s/%s", argv[1], dirs[di]);
    DIR *dp = opendir(dir);
    if (!dp) {
      printf("FAIL cannot open %s\n", dir);
      return 1;
    }
    struct dirent *de;
    while ((de = readdir(dp))) {
      size_t l = strlen(de->d_name);
      if (l < 4 || strcmp(de->d_name + l - 3, ".tg")) continue;
      char path[8192];
      snprintf(path, sizeof path, "%s/%s", dir, de->d_name);
      fails += run_example(path, verbose);
      n++;
    }
    closedir(dp);
  }
  printf("examples, tests/backend/graphs and tests/gpu/graphs: %d files, %d failed\n", n, fails);
  fails += cache_test(argv[1]);
  fails += be_jit_share_tests(argv[1]);
  fails += be_fusion_tests(argv[1], verbose);
  fails += be_loop_tests(verbose);
  fails += be_pass_tests(verbose);
  fails += be_short_tests(verbose);
  fails += be_vmath_tests(argv[1], verbose);
  int rf = nrandom > 0 ? be_random_graphs(nrandom, seed, verbose) : 0;
  return fails || rf ? 1 : 0;
}
