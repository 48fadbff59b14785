/* be_short.c - softmax and log_softmax over short rows held in vector
 * registers (backend/lower_short.c), part of be-diff. Row lengths: the
 * powers of two to 32 and lengths around them, known and symbolic;
 * softmax and log_softmax, f32 and f64, against the interpreter on row
 * counts that leave partial blocks and chunks (3, 37-39 and 1000 rows,
 * 1000 also on two threads; no rows; no columns), with and without NaN
 * and infinities; inputs read from their buffer and through the first
 * pass (a computing producer, an int input, a transposed one, a rank-3
 * one); the math on vectors through scalar libm lane by lane and through
 * tlaloc's own f32 exp. Each case also checks whether the kernel took the
 * short-row path: known lengths exactly when 2 to one vector, symbolic
 * ones always (behind the run-time test), so a change that silently routes
 * rows elsewhere fails too. TLALOC_NO_AVX512=1 runs the same cases on
 * AVX2's paths (8-lane f32 blocks; no padded known lengths, which need AVX-512); the
 * test suite does so (tests/backend/meson.build). SSE's
 * widths (4 f32, 2 f64) are not run here. */
#include "backend/be_internal.h"
#include "interp/interp.h"
#include "tests/common/tltest.h"
#include "util/alloc.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

int be_compare_opts(const tl_graph *g, tl_tensor **inputs, const int64_t *syms, const char *what, int verbose,
                    const be_options *o, be_stats *st);
void be_add_specials(tl_tensor *t); /* be_loops.c */

int be_emitted_has(const tl_graph *g, const char *needle, char *err, size_t n); /* be_loops.c */

/* The vector width in elements of dt on this host, as the emitter sees it
 * (lower.c: TLALOC_NO_AVX512 set and not 0 takes AVX-512 away). */
static int host_lanes(int dt) {
  LLVMTargetMachineRef tm = be_host_tm(1);
  char *f = tm ? LLVMGetTargetMachineFeatureString(tm) : NULL;
  const char *no = getenv("TLALOC_NO_AVX512");
  bool avx512 = f && strstr(f, "+avx512f") && !(no && *no && *no != '0');
  int bytes = avx512 ? 64 : f && strstr(f, "+avx2") ? 32 : 16;
  if (f) LLVMDisposeMessage(f);
  if (tm) LLVMDisposeTargetMachine(tm);
  return bytes / (dt == TL_F32 ? 4 : 8);
}

/* Zeros of both signs, values near the dtype's largest (two in a row
 * overflow when the sum is rounded to f32) and subnormals, in a float
 * input, on top of be_add_specials. */
static void add_magnitudes(tl_tensor *t) {
  for (int64_t i = 0; i < t->numel; i++) {
    double v = i % 13 == 4    ? -0.0
               : i % 11 == 2  ? 0.0
               : i % 31 == 9  ? 3.0e38
               : i % 37 == 10 ? -2.5e38
               : i % 19 == 6  ? 1e-40
                              : 1;
    if (v == 1) continue;
    if (t->dtype == TL_F32)
      ((float *)t->data)[i] = (float)v;
    else if (t->dtype == TL_F64)
      ((double *)t->data)[i] = v * (i % 2 ? 1e270 : 1);
  }
}

/* want_short: 1 the module must have the short-row path, 0 must not, -1
 * unchecked; on 1 to maxth threads */
static int run_path(const char *name, const char *text, const int64_t *syms, int special, const char *needle,
                    int want_short, int maxth, int vm, int verbose) {
  char *diag = NULL, err[512];
  tl_graph *g = tlt_parse(text, &diag);
  if (!g) {
    printf("FAIL %s: parse: %s\n", name, diag);
    tl_free(diag);
    return 1;
  }
  tl_free(diag);
  int bad = 0;
  if (want_short >= 0) {
    int h = be_emitted_has(g, needle, err, sizeof err);
    if (h != want_short) {
      printf("FAIL %s: %s\n", name, h < 0 ? err : h ? "took the short-row path" : "did not take the short-row path");
      bad = 1;
    }
  }
  int64_t sy[4] = {syms[0], syms[1], syms[2], syms[3]};
  tl_tensor *in[2] = {0};
  if (tl_random_inputs(g, in, sy, 11, err, sizeof err)) {
    printf("FAIL %s: inputs: %s\n", name, err);
    bad = 1;
  } else {
    if (special) be_add_specials(in[0]);
    if (special == 2) add_magnitudes(in[0]);
    be_options o = be_options_default();
    o.use_cache = 0;
    if (vm >= 0) o.vector_math = vm;
    for (int th = 1; th <= maxth && !bad; th++) {
      char what[300];
      snprintf(what, sizeof what, "%s (%d thread%s)", name, th, th > 1 ? "s" : "");
      o.threads = th;
      bad = be_compare_opts(g, in, sy, what, verbose, &o, NULL);
    }
  }
  for (int i = 0; i < g->ninputs; i++) tl_tensor_free(in[i]);
  tl_graph_free(g);
  return bad;
}

static int run_vm(const char *name, const char *text, const int64_t *syms, int special, int want_short, int maxth,
                  int vm, int verbose) {
  return run_path(name, text, syms, special, "shortrows", want_short, maxth, vm, verbose);
}

static int run(const char *name, const char *text, const int64_t *syms, int special, int want_short, int maxth,
               int verbose) {
  return run_vm(name, text, syms, special, want_short, maxth, -1, verbose);
}

/* Sums and means over the last axis (lower_sums.c's halving trees):
 * known lengths take the path when from 2 to 32 elements and the
 * input is a buffer (powers of two and multiples of the f64 lanes as
 * sum_block's transposed blocks, the others as sum_rows' masked rows); symbolic lengths always have it,
 * behind the run-time test (1 to 32 elements: one loop over a row's whole
 * vectors; longer rows run the row passes). Against the interpreter on 1000 rows
 * (whole blocks, a partial one, two threads), 3 and 37 rows (partial
 * blocks alone), with and without NaN and infinities, and with values
 * near overflow, subnormals and zeros of both signs. */
static int sum_tests(int verbose, int *n) {
  static const char *ops[2] = {"sum", "mean"}, *dts[2] = {"f32", "f64"};
  static const int64_t lens[] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 15, 16, 17, 24, 31, 32, 33, 64};
  int L = host_lanes(TL_F32) >= 8 ? host_lanes(TL_F64) : 0; /* no path below AVX2 */
  int fails = 0;
  char name[200], text[400];
  for (int op = 0; op < 2; op++)
    for (int t = 0; t < 2; t++)
      for (size_t li = 0; li < sizeof lens / sizeof *lens; li++) {
        int64_t d = lens[li];
        int taken = L && d >= 2 && d <= 32; /* SUMMAX */
        for (int k = 0; k < 5; k++) {
          int sym = k >= 3; /* 3, 4: the length symbolic, 1000 and 37 rows */
          int64_t r = k == 0 || k == 3 ? 1000 : k == 1 ? 3 : 37;
          int special = (int)(li + (size_t)k) % 3; /* 2: also huge, tiny and signed zeros */
          snprintf(name, sizeof name, "%s f%s [%lld %lld]%s%s", ops[op], dts[t] + 1, (long long)r, (long long)d,
                   sym ? " (symbolic)" : "",
                   special == 2 ? ", NaN, infinities, huge, subnormal, zeros"
                   : special    ? ", NaN and infinities"
                                : "");
          if (sym)
            snprintf(text, sizeof text, "(graph s (in x %s [r c]) (out y (%s x :axis 1)))", dts[t], ops[op]);
          else
            snprintf(text, sizeof text, "(graph s (in x %s [%lld %lld]) (out y (%s x :axis 1)))", dts[t], (long long)r,
                     (long long)d, ops[op]);
          int64_t syms[4] = {sym ? r : 0, sym ? d : 0};
          fails += run_path(name, text, syms, special, "shortsums", sym ? L > 0 : taken, k == 0 || k == 3 ? 2 : 1, -1,
                            verbose);
          (*n)++;
        }
      }
  int L8 = L > 0; /* rows of 8 take the path (AVX2 and up) */
  static const struct {
    const char *name, *text;
    int64_t syms[4];
    int path;
  } edge[] = {
      {"sum f32 [0 8]", "(graph s (in x f32 [0 8]) (out y (sum x :axis 1)))", {0}, 1},
      {"sum over rank 3, [3 7 8]", "(graph s (in x f32 [3 7 8]) (out y (sum x :axis 2)))", {0}, 1},
      {"mean over rank 3, [5 1 8], two threads", "(graph s (in x f64 [5 1 8]) (out y (mean x :axis -1)))", {0}, 1},
      {"sum over rank 3 of a symbolic [a b 8]", "(graph s (in x f32 [a b 8]) (out y (sum x :axis 2)))", {7, 9}, 1},
      {"sum of rows of a symbolic length", "(graph s (in x f32 [r c]) (out y (sum x :axis 1)))", {37, 8}, 1},
      {"sum of rows of a symbolic length, none", "(graph s (in x f32 [r c]) (out y (sum x :axis 1)))", {37, 0}, 1},
      {"sum of no rows of a symbolic length", "(graph s (in x f64 [r c]) (out y (mean x :axis 1)))", {0, 5}, 1},
      {"sum over axis 0 of [8 8]", "(graph s (in x f32 [8 8]) (out y (sum x :axis 0)))", {0}, 0},
      {"sum over both axes of [8 8]", "(graph s (in x f32 [8 8]) (out y (sum x)))", {0}, 0},
      {"sum of exp(x) (a computing producer), [37 8]",
       "(graph s (in x f32 [37 8]) (out y (sum (exp x) :axis 1)))",
       {0},
       0},
      {"sum of i32 rows, [37 8]", "(graph s (in x i32 [37 8]) (out y (sum x :axis 1)))", {0}, 0},
      {"sum of a transpose, [8 37] -> [37 8]",
       "(graph s (in x f32 [8 37]) (out y (sum (transpose x) :axis 1)))",
       {0},
       0},
      {"sum keeping its axis, [37 16]", "(graph s (in x f64 [37 16]) (out y (sum x :axis 1 :keepdims true)))", {0}, 1},
  };
  for (size_t i = 0; i < sizeof edge / sizeof *edge; i++, (*n)++)
    fails +=
        run_path(edge[i].name, edge[i].text, edge[i].syms, (int)i % 3, "shortsums", edge[i].path && L8, 2, -1, verbose);
  /* a symbolic power of two calls its known length's blocks (AVX2 and up) */
  static const struct {
    const char *name, *text;
    int64_t syms[4];
  } pow2[] = {
      {"sum f32 [r c], c = 8: the known blocks", "(graph s (in x f32 [r c]) (out y (sum x :axis 1)))", {1000, 8}},
      {"mean f64 [r c], c = 32: the known blocks", "(graph s (in x f64 [r c]) (out y (mean x :axis 1)))", {37, 32}},
      {"sum f32 [r c], c = 2: the known blocks", "(graph s (in x f32 [r c]) (out y (sum x :axis 1)))", {3, 2}},
  };
  for (size_t i = 0; i < sizeof pow2 / sizeof *pow2; i++, (*n)++)
    fails += run_path(pow2[i].name, pow2[i].text, pow2[i].syms, (int)i % 3, "pow2sums", L > 0, 2, -1, verbose);
  /* with AVX-512, sum_block's kernels leave the vector width to LLVM's
   * tuning for the CPU (a 256-bit legal width), and so do the functions a
   * symbolic length's powers of two call; kernels that call libmvec must
   * not (its 512-bit argument would be split) */
  static const struct {
    const char *name, *text;
    int want;
  } width[] = {
      {"sum f32 [37 16]: width left to the CPU's tuning", "(graph s (in x f32 [37 16]) (out y (sum x :axis 1)))", 1},
      {"sum f32 [37 24] (a multiple of the lanes): sum_block's blocks, width left to the CPU's tuning",
       "(graph s (in x f32 [37 24]) (out y (sum x :axis 1)))", 1},
      {"sum f32 [37 10]: sum_rows, 512-bit", "(graph s (in x f32 [37 10]) (out y (sum x :axis 1)))", 0},
      {"sum f32 [r c]: its power-of-two blocks' width left to the CPU's tuning",
       "(graph s (in x f32 [r c]) (out y (sum x :axis 1)))", 1},
      {"log_softmax f32 [37 16]: 512-bit", "(graph s (in x f32 [37 16]) (out y (log_softmax x :axis 1)))", 0},
  };
  for (size_t i = 0; i < sizeof width / sizeof *width; i++, (*n)++) {
    char *diag = NULL, err[512];
    tl_graph *g = tlt_parse(width[i].text, &diag);
    tl_free(diag);
    int h = g ? be_emitted_has(g, "\"min-legal-vector-width\"=\"256\"", err, sizeof err) : -1;
    int want = host_lanes(TL_F64) == 8 && width[i].want;
    if (h != want) {
      printf("FAIL %s: %s\n", width[i].name,
             h < 0 ? (g ? err : "parse")
             : h   ? "256-bit legal width"
                   : "no 256-bit legal width");
      fails++;
    }
    tl_graph_free(g);
  }
  return fails;
}

/* The input's last element right before a page that cannot be read, and
 * (after) its first element right after one: the partial last block must
 * not load past its rows, nor a padded block's masked loads (whose
 * addresses start before the row) before the first (a load that does
 * faults), which the value checks cannot see (lanes read outside the rows
 * are dropped before the store). */
static int guarded_tests(int verbose, int *n) {
  static const struct {
    const char *name, *text;
    int64_t syms[4];
  } cases[] = {
      {"sum f32 [37 12]", "(graph s (in x f32 [37 12]) (out y (sum x :axis 1)))", {0}},
      {"mean f64 [37 24]", "(graph s (in x f64 [37 24]) (out y (mean x :axis 1)))", {0}},
      {"sum f32 [37 16]", "(graph s (in x f32 [37 16]) (out y (sum x :axis 1)))", {0}},
      {"sum f32 [r c], c = 5", "(graph s (in x f32 [r c]) (out y (sum x :axis 1)))", {37, 5}},
      {"sum f32 [r c], c = 16", "(graph s (in x f32 [r c]) (out y (sum x :axis 1)))", {37, 16}},
      {"mean f64 [r c], c = 4", "(graph s (in x f64 [r c]) (out y (mean x :axis 1)))", {37, 4}},
      {"sum f64 [r c], c = 31", "(graph s (in x f64 [r c]) (out y (sum x :axis 1)))", {37, 31}},
      {"log_softmax f32 [37 24]", "(graph s (in x f32 [37 24]) (out y (log_softmax x :axis 1)))", {0}},
      {"softmax f32 [r c], c = 10", "(graph s (in x f32 [r c]) (out y (softmax x :axis 1)))", {37, 10}},
      {"softmax f32 [r c], c = 5", "(graph s (in x f32 [r c]) (out y (softmax x :axis 1)))", {37, 5}},
      {"log_softmax f64 [r c], c = 3", "(graph s (in x f64 [r c]) (out y (log_softmax x :axis 1)))", {37, 3}},
  };
  int fails = 0;
  size_t page = (size_t)sysconf(_SC_PAGESIZE);
  for (size_t c = 0; c < 2 * sizeof cases / sizeof *cases; c++, (*n)++) {
    size_t i = c / 2;
    int after = (int)(c % 2); /* the first element right after the page */
    char *diag = NULL, err[512], what[200];
    tl_graph *g = tlt_parse(cases[i].text, &diag);
    tl_free(diag);
    int64_t sy[4] = {cases[i].syms[0], cases[i].syms[1]};
    tl_tensor *in[2] = {0};
    if (!g || tl_random_inputs(g, in, sy, 5, err, sizeof err)) {
      printf("FAIL %s (guarded): %s\n", cases[i].name, g ? err : "parse");
      tl_graph_free(g);
      fails++;
      continue;
    }
    size_t bytes = (size_t)in[0]->numel * tl_dtype_size((tl_dtype)in[0]->dtype);
    size_t span = (bytes + page - 1) / page * page;
    char *map = mmap(NULL, span + page, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (map == MAP_FAILED || mprotect(after ? map : map + span, page, PROT_NONE)) {
      printf("FAIL %s (guarded): mmap\n", cases[i].name);
      fails++;
    } else {
      void *own = in[0]->data;
      in[0]->data = after ? map + page : map + span - bytes;
      memcpy(in[0]->data, own, bytes);
      be_options o = be_options_default();
      o.use_cache = 0;
      o.threads = 1;
      snprintf(what, sizeof what, "%s, input %s an unreadable page", cases[i].name,
               after ? "right after" : "right before");
      fails += be_compare_opts(g, in, sy, what, verbose, &o, NULL);
      in[0]->data = own;
    }
    if (map != MAP_FAILED) munmap(map, span + page);
    tl_tensor_free(in[0]);
    tl_graph_free(g);
  }
  return fails;
}

int be_short_tests(int verbose);
int be_short_tests(int verbose) {
  static const char *ops[2] = {"softmax", "log_softmax"}, *dts[2] = {"f32", "f64"};
  /* every power of two to 64 (a known row of 2 to four vectors takes the
   * path: blocks up to one vector, wide rows above), and lengths around
   * them */
  static const int64_t lens[] = {1, 2, 3, 4, 5, 7, 8, 10, 15, 16, 17, 24, 32, 33, 47, 64, 65};
  int fails = 0, n = 0;
  char name[200], text[400];
  for (int op = 0; op < 2; op++)
    for (int t = 0; t < 2; t++) {
      int vw = host_lanes(t ? TL_F64 : TL_F32);
      for (size_t li = 0; li < sizeof lens / sizeof *lens; li++) {
        int64_t d = lens[li];
        int special = (int)(li % 2), blocked = d >= 2 && d <= 4 * vw;
        /* known sizes: 1000 rows (blocks, a partial block's chunks, split
         * across threads), 3 rows (chunks alone) */
        for (int k = 0; k < 2; k++) {
          int64_t r = k ? 3 : 1000;
          snprintf(name, sizeof name, "%s %s [%lld %lld]%s", ops[op], dts[t], (long long)r, (long long)d,
                   special ? ", NaN and infinities" : "");
          snprintf(text, sizeof text, "(graph s (in x %s [%lld %lld]) (out y (%s x :axis 1)))", dts[t], (long long)r,
                   (long long)d, ops[op]);
          int64_t none[4] = {0};
          fails += run(name, text, none, special, blocked, k ? 1 : 2, verbose);
          n++;
        }
        /* symbolic sizes (the path is always emitted; flat blocks take 1 to
         * four vectors, chunks small powers of two) */
        int64_t r = 37 + (int64_t)li % 3;
        snprintf(name, sizeof name, "%s %s [r c], r=%lld c=%lld%s", ops[op], dts[t], (long long)r, (long long)d,
                 special ? ", NaN and infinities" : "");
        snprintf(text, sizeof text, "(graph s (in x %s [r c]) (out y (%s x :axis -1)))", dts[t], ops[op]);
        int64_t sy[4] = {r, d};
        fails += run(name, text, sy, special, 1, 1, verbose);
        n++;
      }
    }
  /* no rows; rows split across threads with a symbolic length */
  static const struct {
    const char *name, *text;
    int64_t syms[4];
    int special;
  } edge[] = {
      {"log_softmax f32 [0 8]", "(graph s (in x f32 [0 8]) (out y (log_softmax x :axis 1)))", {0}, 0},
      {"softmax f64 [r c], r=0 c=4", "(graph s (in x f64 [r c]) (out y (softmax x :axis 1)))", {0, 4}, 0},
      {"log_softmax f32 [r c], r=0 c=0", "(graph s (in x f32 [r c]) (out y (log_softmax x :axis 1)))", {0, 0}, 0},
      {"log_softmax f32 [r c], r=5 c=0", "(graph s (in x f32 [r c]) (out y (log_softmax x :axis 1)))", {5, 0}, 0},
      {"softmax f32 [r c], r=5000 c=8", "(graph s (in x f32 [r c]) (out y (softmax x :axis 1)))", {5000, 8}, 1},
      {"log_softmax f64 [r c], r=3001 c=2", "(graph s (in x f64 [r c]) (out y (log_softmax x :axis 1)))", {3001, 2}, 1},
  };
  for (size_t i = 0; i < sizeof edge / sizeof *edge; i++, n++)
    fails += run(edge[i].name, edge[i].text, edge[i].syms, edge[i].special, -1, 2, verbose);
  /* which blocks a symbolic length's kernel carries: padded blocks when
   * VW / 2 >= 4 with AVX2 or AVX-512, flat blocks with AVX2 or AVX-512 */
  for (int t = 0; t < 2; t++)
    for (int w = 0; w < 2; w++, n++) {
      char *diag = NULL, err[512];
      static const char *needle[2] = {"padcols", "flatrows"};
      snprintf(text, sizeof text, "(graph s (in x %s [r c]) (out y (log_softmax x :axis 1)))", dts[t]);
      tl_graph *g = tlt_parse(text, &diag);
      tl_free(diag);
      int avx2 = host_lanes(TL_F32) >= 8, want = avx2 && (w || host_lanes(t ? TL_F64 : TL_F32) / 2 >= 4);
      int h = g ? be_emitted_has(g, needle[w], err, sizeof err) : -1;
      if (h != want) {
        printf("FAIL log_softmax %s [r c]: %s\n", dts[t], h < 0 ? (g ? err : "parse") : h ? "has" : "lacks");
        printf("  (%s blocks)\n", needle[w]);
        fails++;
      }
      tl_graph_free(g);
    }
  /* inputs through the first pass */
  static const struct {
    const char *name, *text;
    int64_t syms[4];
    int special;
  } other[] = {
      {"log_softmax of 2x+1, [37 8]",
       "(graph s (in x f32 [37 8]) (out y (log_softmax (add (mul x 2.0) 1.0) :axis 1)))",
       {0},
       1},
      {"softmax of expm1(30x), [37 4]",
       "(graph s (in x f32 [37 4]) (out y (softmax (expm1 (mul x 30.0)) :axis 1)))",
       {0},
       0},
      {"log_softmax of 2x+1, wide rows [37 24]",
       "(graph s (in x f32 [37 24]) (out y (log_softmax (add (mul x 2.0) 1.0) :axis 1)))",
       {0},
       1},
      {"softmax of expm1(30x), wide rows [37 40]",
       "(graph s (in x f32 [37 40]) (out y (softmax (expm1 (mul x 30.0)) :axis 1)))",
       {0},
       0},
      {"softmax of a transpose, wide rows [20 50] -> [50 20]",
       "(graph s (in x f64 [20 50]) (out y (softmax (transpose x :perm [1 0]) :axis 1)))",
       {0},
       1},
      {"log_softmax of expm1(30x), symbolic rows of 8",
       "(graph s (in x f64 [r c]) (out y (log_softmax (expm1 (mul x 30.0)) :axis 1)))",
       {45, 8},
       1},
      {"log_softmax of i32, [33 16]", "(graph s (in x i32 [33 16]) (out y (log_softmax x :axis 1)))", {0}, 0},
      /* a symbolic length of VW / 2 takes the known length's blocks */
      {"softmax, symbolic rows of 8", "(graph s (in x f32 [r c]) (out y (softmax x :axis 1)))", {70, 8}, 1},
      {"log_softmax of 2x, symbolic rows of 4", "(graph s (in x f64 [r c]) (out y (log_softmax (mul x 2.0) :axis 1)))",
       {70, 4}, 1},
      {"log_softmax over rank 3, symbolic [a b 8]", "(graph s (in x f32 [a b c]) (out y (log_softmax x :axis 2)))",
       {5, 13, 8}, 1},
      {"softmax of a transpose, [8 50] -> [50 8]",
       "(graph s (in x f32 [8 50]) (out y (softmax (transpose x :perm [1 0]) :axis 1)))",
       {0},
       1},
      {"log_softmax of a transpose, symbolic",
       "(graph s (in x f64 [c r]) (out y (log_softmax (transpose x) :axis 1)))",
       {4, 29},
       1},
      {"softmax over rank 3, [3 7 8]", "(graph s (in x f32 [3 7 8]) (out y (softmax x :axis 2)))", {0}, 1},
      {"log_softmax over rank 3, symbolic [a b 16]",
       "(graph s (in x f32 [a b c]) (out y (log_softmax x :axis -1)))",
       {5, 9, 16},
       1},
      {"log_softmax over rank 3, symbolic [a b 2], split",
       "(graph s (in x f64 [a b c]) (out y (log_softmax x :axis 2)))",
       {300, 20, 2},
       0},
      {"softmax into its input's buffer (x - 1 dies)",
       "(graph s (in x f32 [r c]) (let u (sub x 1.0)) (out y (softmax u :axis 1)) (out m (sum y)))",
       {100, 4},
       1},
  };
  for (size_t i = 0; i < sizeof other / sizeof *other; i++, n++)
    fails += run(other[i].name, other[i].text, other[i].syms, other[i].special, -1, 2, verbose);
  /* the math on vectors other ways: lane by lane through scalar libm
   * (vector_math 0), tlaloc's own f32 exp on whole vectors (2) */
  static const struct {
    const char *name, *text;
    int64_t syms[4];
  } vm[] = {
      {"log_softmax f32 [37 8]", "(graph s (in x f32 [37 8]) (out y (log_softmax x :axis 1)))", {0}},
      {"softmax f32 [41 10]", "(graph s (in x f32 [41 10]) (out y (softmax x :axis 1)))", {0}},
      {"log_softmax f32 [r c], c=4", "(graph s (in x f32 [r c]) (out y (log_softmax x :axis 1)))", {23, 4}},
      {"softmax f64 [r c], c=2", "(graph s (in x f64 [r c]) (out y (softmax x :axis 1)))", {23, 2}},
  };
  for (int v = 0; v <= 2; v += 2)
    for (size_t i = 0; i < sizeof vm / sizeof *vm; i++, n++) {
      snprintf(name, sizeof name, "%s, vector_math %d", vm[i].name, v);
      fails += run_vm(name, vm[i].text, vm[i].syms, (int)i % 2, -1, 1, v, verbose);
    }
  fails += sum_tests(verbose, &n);
  fails += guarded_tests(verbose, &n);
  printf("short rows: %d cases (softmax and log_softmax, rows of 1-65 known and symbolic, f32 and f64, inputs through "
         "the first pass, vector math 0 and 2; sums and means of rows of 1-64, known and symbolic; inputs against an "
         "unreadable page), %d failed\n",
         n, fails);
  return fails;
}
