/* Tests of the machine profile and the time model's prediction:
 *  1. the profile file: defaults, round trip, where it lives
 *     (TLALOC_PROFILE, XDG_CACHE_HOME, HOME), and every malformed-file
 *     error with its exact message;
 *  2. the roofline (tl_profile_kernel_time): overheads, bandwidth and the
 *     thread split, math, GEMM;
 *  3. tl_cost_predict on small graphs whose work is known by hand. */
#include "measure/calibrate.h"

#include "../common/tltest.h"

#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static char dir[64];

static void mk_dir(void) {
  snprintf(dir, sizeof dir, "/tmp/tl-profile-XXXXXX");
  cr_assert_not_null(mkdtemp(dir));
}

static void rm_dir(void) {
  char cmd[128];
  snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
  cr_assert_eq(system(cmd), 0);
}

/* Writes text to DIR/name; returns the path (static buffer). */
static const char *write_file(const char *name, const char *text) {
  static char path[128];
  snprintf(path, sizeof path, "%s/%s", dir, name);
  FILE *f = fopen(path, "w");
  cr_assert_not_null(f);
  fputs(text, f);
  fclose(f);
  return path;
}

TestSuite(profile, .init = mk_dir, .fini = rm_dir);

Test(profile, defaults_are_positive_and_unmeasured) {
  tl_profile p;
  tl_profile_default(&p);
  cr_expect(!p.measured);
  cr_expect(p.threads >= 1);
  double v[] = {p.bw_1, p.bw_all, p.flops_1, p.flops_all, p.gemm_f32, p.gemm_f64, p.kernel_overhead,
                p.par_overhead, p.run_overhead, p.parallel_min_elems, p.f64_factor};
  for (size_t i = 0; i < sizeof v / sizeof *v; i++) cr_expect_gt(v[i], 0, "field %zu", i);
  cr_expect_gt(p.elem_ns[TL_OP_EXP], 0);
  cr_expect_eq(p.elem_ns[TL_OP_ADD], 0, "plain arithmetic counts as flops");
}

/* The vector math without a profile follows the CPU kind (cost/profile.c,
 * default_own_math: tlaloc's own f32 exp and tanh on AMD family 26, Zen 5,
 * libmvec elsewhere), read here from /proc/cpuinfo rather than cpuid; a
 * profile without the vmath keys keeps that default, one with them wins. */
Test(profile, vector_math_default_follows_the_cpu) {
  FILE *f = fopen("/proc/cpuinfo", "r");
  if (!f) cr_skip_test("no /proc/cpuinfo");
  char line[512], vendor[64] = "";
  int family = -1;
  while (fgets(line, sizeof line, f) && (family < 0 || !vendor[0])) {
    if (!strncmp(line, "vendor_id", 9) && strchr(line, ':')) sscanf(strchr(line, ':') + 1, "%63s", vendor);
    if (!strncmp(line, "cpu family", 10) && strchr(line, ':')) family = atoi(strchr(line, ':') + 1);
  }
  fclose(f);
  tl_profile d, p;
  tl_profile_default(&d);
#if defined(__x86_64__)
  bool zen5 = !strcmp(vendor, "AuthenticAMD") && family == 26;
  cr_expect_eq(d.own_math, zen5 ? (unsigned)(TL_OWN_EXP32 | TL_OWN_TANH32) : 0u, "vendor %s family %d", vendor, family);
#else
  cr_expect_eq(d.own_math, 0u);
#endif
  char err[256] = "";
  const char *path = write_file("nokeys.txt", "cpu Some CPU\nthreads 2\n");
  cr_assert_eq(tl_profile_load(path, &p, err, sizeof err), 0, "%s", err);
  cr_expect_eq(p.own_math, d.own_math, "a profile without vmath keys keeps the default");
  path = write_file("keys.txt", "vmath.exp libmvec\nvmath.tanh own\n");
  cr_assert_eq(tl_profile_load(path, &p, err, sizeof err), 0, "%s", err);
  cr_expect_eq(p.own_math, (unsigned)TL_OWN_TANH32, "the profile's keys win over the default");
}

Test(profile, missing_file_gives_defaults) {
  tl_profile p, d;
  char err[256] = "";
  char path[128];
  snprintf(path, sizeof path, "%s/none.txt", dir);
  cr_expect_eq(tl_profile_load(path, &p, err, sizeof err), 1);
  tl_profile_default(&d);
  cr_expect_eq(memcmp(&p, &d, sizeof p), 0);
  /* tl_profile_get: a missing stored profile is not an error */
  setenv("TLALOC_PROFILE", path, 1);
  cr_expect_eq(tl_profile_get(&p, err, sizeof err), 0);
  cr_expect(!p.measured);
  cr_expect_eq(p.bw_1, d.bw_1);
}

Test(profile, loads_keys_over_defaults) {
  const char *path = write_file("p.txt", "# tlaloc profile 1\n"
                                         "cpu Some CPU   \n"
                                         "threads 4\n"
                                         "\n"
                                         "bw_1 1e10   # one thread\n"
                                         "run_overhead 2e-7\n"
                                         "elem.exp 0.25\n"
                                         "elem.add 0.1\n");
  tl_profile p, d;
  char err[256] = "";
  cr_assert_eq(tl_profile_load(path, &p, err, sizeof err), 0, "%s", err);
  tl_profile_default(&d);
  cr_expect(p.measured);
  cr_expect_str_eq(p.cpu, "Some CPU");
  cr_expect_eq(p.threads, 4);
  cr_expect_eq(p.bw_1, 1e10);
  cr_expect_eq(p.run_overhead, 2e-7);
  cr_expect_eq(p.elem_ns[TL_OP_EXP], 0.25);
  cr_expect_eq(p.elem_ns[TL_OP_ADD], 0.1);
  cr_expect_eq(p.bw_all, d.bw_all, "keys not in the file keep their defaults");
}

/* A malformed file: status 2, the exact message, and the defaults. */
static void expect_error(const char *text, const char *msg_after_path) {
  const char *path = write_file("bad.txt", text);
  tl_profile p;
  char err[512] = "", want[512];
  cr_expect_eq(tl_profile_load(path, &p, err, sizeof err), 2, "file: %s", text);
  snprintf(want, sizeof want, "%s%s", path, msg_after_path);
  cr_expect_str_eq(err, want);
  cr_expect(!p.measured, "a malformed file leaves the defaults");
}

Test(profile, malformed_files) {
  expect_error("# p\nbw_1\n", ":2: 'bw_1' has no value");
  expect_error("threads 2\nfrobs 3\n", ":2: unknown key 'frobs'");
  expect_error("vmath.exp fast\n", ":1: 'vmath.exp fast': expected vmath.exp or vmath.tanh, then own or libmvec");
  expect_error("blas.core ThisNameIsFarTooLongForAnyKernelSetOfOpenBLAS\n",
               ":1: 'blas.core ThisNameIsFarTooLongForAnyKernelSetOfOpenBLAS': expected an OpenBLAS kernel "
               "set's name");
  expect_error("vmath.sin own\n", ":1: 'vmath.sin own': expected vmath.exp or vmath.tanh, then own or libmvec");
  expect_error("bw_1 -5\n", ":1: 'bw_1' needs a finite non-negative number");
  expect_error("bw_1 -1e-3\n", ":1: 'bw_1' needs a finite non-negative number");
  expect_error("bw_1 inf\n", ":1: 'bw_1' needs a finite non-negative number");
  expect_error("bw_1 nan\n", ":1: 'bw_1' needs a finite non-negative number");
  expect_error("bw_1 5x\n", ":1: 'bw_1' needs a finite non-negative number");
  expect_error("bw_1 5 6\n", ":1: 'bw_1' needs a finite non-negative number");
  expect_error("\n\n\nelem.frob 0.3\n", ":4: unknown op 'frob'");
  expect_error("elem.exp -0.3\n", ":1: 'elem.exp' needs a finite non-negative number");
  expect_error("threads 0\n", ":1: threads must be an integer in 1..4096");
  expect_error("threads 2.5\n", ":1: threads must be an integer in 1..4096");
  expect_error("gemm_f32 0\n", ": bandwidths and rates must be positive");
}

Test(profile, malformed_levels_and_f64_costs) {
  expect_error("mem.abc 1e10 2e10\n", ":1: 'mem.abc': 'abc' is not a size in bytes");
  expect_error("mem.1.5 1e10 2e10\n", ":1: 'mem.1.5': '1.5' is not a size in bytes");
  expect_error("mem.1024 1e10\n",
               ":1: 'mem.1024' needs two positive numbers (bandwidth on one thread and on all threads)");
  expect_error("mem.1024 1e10 0\n",
               ":1: 'mem.1024' needs two positive numbers (bandwidth on one thread and on all threads)");
  expect_error("mem.1024 1e10 2e10 3e10\n",
               ":1: 'mem.1024' needs two positive numbers (bandwidth on one thread and on all threads)");
  expect_error("mem.1024 1e10 2e10\nmem.1024 1e10 2e10\n", ":2: 'mem.1024' is given twice");
  expect_error("elem64.nope 1\n", ":1: unknown op 'nope'");
  expect_error("fault_bw 0\n", ": bandwidths and rates must be positive");
}

Test(profile, levels_sorted_on_load) {
  const char *path = write_file("l.txt", "mem.4096 9e10 9e10\nmem.1024 1e11 2e11\nelem64.tanh 2.5\n");
  tl_profile p;
  char err[256] = "";
  cr_assert_eq(tl_profile_load(path, &p, err, sizeof err), 0, "%s", err);
  cr_assert_eq(p.nlevels, 2);
  cr_expect_eq(p.level_bytes[0], 1024);
  cr_expect_eq(p.level_bw_all[0], 2e11);
  cr_expect_eq(p.level_bytes[1], 4096);
  cr_expect_eq(p.elem_ns_f64[TL_OP_TANH], 2.5);
}

Test(profile, stored_malformed_profile_is_an_error) {
  const char *path = write_file("bad.txt", "bw_1 fast\n");
  setenv("TLALOC_PROFILE", path, 1);
  tl_profile p;
  char err[512] = "";
  cr_expect_eq(tl_profile_get(&p, err, sizeof err), 2);
  cr_expect(strstr(err, "bad.txt:1: 'bw_1' needs a finite non-negative number") != NULL, "%s", err);
}

Test(profile, path_order) {
  char buf[256];
  setenv("TLALOC_PROFILE", "/x/p.txt", 1);
  setenv("XDG_CACHE_HOME", "/xdg", 1);
  setenv("HOME", "/home/u", 1);
  cr_expect_str_eq(tl_profile_path(buf, sizeof buf), "/x/p.txt");
  unsetenv("TLALOC_PROFILE");
  cr_expect_str_eq(tl_profile_path(buf, sizeof buf), "/xdg/tlaloc/profile.txt");
  unsetenv("XDG_CACHE_HOME");
  cr_expect_str_eq(tl_profile_path(buf, sizeof buf), "/home/u/.cache/tlaloc/profile.txt");
  unsetenv("HOME");
  cr_expect_null(tl_profile_path(buf, sizeof buf));
}

Test(profile, save_load_round_trip) {
  tl_profile p, q;
  tl_profile_default(&p);
  snprintf(p.cpu, sizeof p.cpu, "Test CPU 9000");
  p.threads = 3;
  p.bw_1 = 1.234567e10;
  p.par_overhead = 4.5e-6;
  p.elem_ns[TL_OP_TANH] = 0.375;
  p.elem_ns[TL_OP_POW] = 0;
  p.elem_ns_f64[TL_OP_EXP] = 1.25;
  p.nlevels = 2;
  p.level_bytes[0] = 98304;
  p.level_bw_1[0] = 5e10;
  p.level_bw_all[0] = 6e10;
  p.level_bytes[1] = 1572864;
  p.level_bw_1[1] = 4e10;
  p.level_bw_all[1] = 7e10;
  p.own_math = TL_OWN_TANH32;
  snprintf(p.blas_core, sizeof p.blas_core, "SkylakeX");
  char path[128], err[256] = "";
  snprintf(path, sizeof path, "%s/sub/dir/profile.txt", dir); /* folders are created */
  cr_assert_eq(tl_profile_save(path, &p, err, sizeof err), 0, "%s", err);
  cr_assert_eq(tl_profile_load(path, &q, err, sizeof err), 0, "%s", err);
  cr_expect(q.measured);
  cr_expect_str_eq(q.cpu, "Test CPU 9000");
  cr_expect_eq(q.threads, 3);
  cr_expect_float_eq(q.bw_1, p.bw_1, 1e-5 * p.bw_1);
  cr_expect_float_eq(q.par_overhead, p.par_overhead, 1e-12);
  cr_expect_eq(q.elem_ns[TL_OP_TANH], 0.375);
  cr_expect_eq(q.elem_ns[TL_OP_POW], 0, "a zero cost is written and read back as zero");
  cr_expect_eq(q.elem_ns_f64[TL_OP_EXP], 1.25);
  cr_expect_eq(q.own_math, (unsigned)TL_OWN_TANH32, "vmath.tanh own, vmath.exp libmvec");
  cr_expect_str_eq(q.blas_core, "SkylakeX");
  cr_assert_eq(q.nlevels, 2);
  cr_expect_eq(q.level_bytes[1], 1572864);
  cr_expect_float_eq(q.level_bw_all[1], 7e10, 1e3);
  cr_expect_float_eq(q.level_bw_1[0], 5e10, 1e3);
}

/* ---- the roofline ------------------------------------------------------ */

static tl_profile simple_profile(void) {
  tl_profile p;
  tl_profile_default(&p);
  p.threads = 2;
  p.bw_1 = 1e10;
  p.bw_all = 2e10;
  p.flops_1 = 1e10;
  p.flops_all = 2e10;
  p.gemm_f32 = 1e11;
  p.gemm_f64 = 5e10;
  p.kernel_overhead = 1e-6;
  p.par_overhead = 2e-6;
  p.run_overhead = 3e-6;
  p.parallel_min_elems = 1000;
  p.f64_factor = 2;
  /* what the predict tests' hand-computed times assume */
  p.nlevels = 0;
  p.fault_bw = 5e9;
  p.elem_ns[TL_OP_EXP] = 0.5;
  p.elem_ns[TL_OP_NEG] = p.elem_ns_f64[TL_OP_NEG] = 0; /* one flop */
  return p;
}

Test(roofline, terms) {
  tl_profile p = simple_profile();
  tl_kernel_work w = {0};
  cr_expect_float_eq(tl_profile_kernel_time(&p, &w), 1e-6, 1e-15, "an empty kernel costs its call");
  w.elems = 10;
  w.bytes = 1e4; /* 1 us on one thread */
  cr_expect_float_eq(tl_profile_kernel_time(&p, &w), 2e-6, 1e-15);
  w.math_ns = 3000; /* 3 us of math outweighs the memory */
  cr_expect_float_eq(tl_profile_kernel_time(&p, &w), 4e-6, 1e-15);
  w.elems = 1000; /* split: math halves, the split costs par_overhead */
  cr_expect_float_eq(tl_profile_kernel_time(&p, &w), 1e-6 + 2e-6 + 1.5e-6, 1e-15);
  tl_kernel_work g = {.gemm_flops_f32 = 1e6, .gemm_flops_f64 = 1e6, .bytes = 1e3};
  cr_expect_float_eq(tl_profile_kernel_time(&p, &g), 1e-6 + 1e-5 + 2e-5, 1e-15);
}

Test(roofline, cache_levels) {
  tl_profile p = simple_profile();
  p.kernel_overhead = 0;
  p.nlevels = 2;
  p.level_bytes[0] = 1e4;
  p.level_bw_1[0] = 1e11;
  p.level_bw_all[0] = 2e11;
  p.level_bytes[1] = 1e6;
  p.level_bw_1[1] = 5e10;
  p.level_bw_all[1] = 1e11;
  tl_kernel_work w = {.bytes = 1e4};
  cr_expect_float_eq(tl_profile_kernel_time(&p, &w), 1e-7, 1e-18, "held by the first level");
  w.bytes = 2e4;
  cr_expect_float_eq(tl_profile_kernel_time(&p, &w), 4e-7, 1e-18, "the second level");
  w.bytes = 2e6;
  cr_expect_float_eq(tl_profile_kernel_time(&p, &w), 2e-4, 1e-15, "memory");
  w.elems = 1e6; /* split: the all-threads column */
  w.bytes = 2e4;
  cr_expect_float_eq(tl_profile_kernel_time(&p, &w), 2e-6 + 2e-7, 1e-18);
  /* a level measured slower than a larger one (noise) is read as the larger one's */
  p.level_bw_1[0] = 1e10;
  tl_kernel_work a = {.bytes = 9e3}, b = {.bytes = 1.1e4};
  cr_expect_leq(tl_profile_kernel_time(&p, &a), tl_profile_kernel_time(&p, &b));
  /* time never falls as bytes grow, across every level boundary */
  double last = 0;
  for (double by = 100; by < 1e8; by *= 1.07) {
    tl_kernel_work v = {.bytes = by};
    double t = tl_profile_kernel_time(&p, &v);
    cr_expect_geq(t, last, "at %g bytes", by);
    last = t;
  }
}

Test(roofline, rows_and_f64_math) {
  tl_profile p = simple_profile();
  p.row_ns = 2;
  p.elem_ns_f64[TL_OP_TANH] = 3;
  tl_type x32 = {.dtype = TL_F32, .rank = 2, .dims = {100, 50}}, r32 = {.dtype = TL_F32, .rank = 1, .dims = {100}};
  const tl_type *in[1] = {&x32};
  tl_attrs a;
  tl_attrs_init(&a);
  a.present = TL_A_AXIS;
  a.naxes = 1;
  a.axes[0] = 1;
  tl_kernel_work w;
  tl_node_work(&p, TL_OP_SUM, &a, &r32, in, 1, 0, &w);
  cr_expect_float_eq(w.math_ns, 100 * 2.0, 1e-9, "one pass over 100 rows");
  tl_node_work(&p, TL_OP_LOG_SOFTMAX, &a, &x32, in, 1, 0, &w);
  cr_expect_float_eq(w.math_ns, 5000 * p.elem_ns[TL_OP_LOG_SOFTMAX] + 100 * 3 * 2.0, 1e-9, "three passes");
  tl_node_work(&p, TL_OP_LOGSUMEXP, &a, &r32, in, 1, 0, &w);
  cr_expect_float_eq(w.math_ns, 5000 * p.elem_ns[TL_OP_LOGSUMEXP] + 100 * 2 * 2.0, 1e-9, "two passes");
  tl_type x64 = {.dtype = TL_F64, .rank = 1, .dims = {10}};
  const tl_type *in64[1] = {&x64};
  tl_node_work(&p, TL_OP_TANH, NULL, &x64, in64, 1, 0, &w);
  cr_expect_float_eq(w.math_ns, 30, 1e-9, "measured f64 cost");
  tl_node_work(&p, TL_OP_EXP, NULL, &x64, in64, 1, 0, &w);
  cr_expect_float_eq(w.math_ns, 10 * p.elem_ns[TL_OP_EXP] * p.f64_factor, 1e-9, "f32 cost times f64_factor");
  cr_expect_eq(tl_row_passes(TL_OP_SOFTMAX), 3);
  cr_expect_eq(tl_row_passes(TL_OP_MAX), 1);
}

Test(roofline, monotone) {
  tl_profile p = simple_profile();
  tl_kernel_work w = {.elems = 100, .bytes = 1e5, .flops = 1e3, .math_ns = 10};
  double t = tl_profile_kernel_time(&p, &w);
  tl_kernel_work v = w;
  v.bytes *= 2;
  cr_expect_geq(tl_profile_kernel_time(&p, &v), t);
  v = w;
  v.flops *= 1000;
  cr_expect_geq(tl_profile_kernel_time(&p, &v), t);
  v = w;
  v.math_ns *= 1000;
  cr_expect_geq(tl_profile_kernel_time(&p, &v), t);
}

/* ---- prediction of compiled programs ------------------------------------ */

static void predict(const char *src, const int64_t *syms, tl_program_cost *c) {
  tl_graph *g = tlt_parse(src, NULL);
  cr_assert_not_null(g);
  tl_profile p = simple_profile();
  char err[256] = "";
  cr_assert_eq(tl_cost_predict(&p, g, syms, c, err, sizeof err), 0, "%s", err);
  tl_graph_free(g);
}

Test(predict, fused_elementwise) {
  tl_program_cost c;
  /* one fused kernel: reads x and y, writes z; exp is math, mul and add flops */
  predict("(graph g (in x f32 [500]) (in y f32 [500]) (out z (add (mul (exp x) y) 1)))", NULL, &c);
  cr_assert_eq(c.nks, 1);
  tl_profile p = simple_profile();
  cr_expect_float_eq(c.ks[0].w.bytes, 3 * 500 * 4, 1e-9);
  cr_expect_float_eq(c.ks[0].w.flops, 2 * 500, 1e-9);
  cr_expect_float_eq(c.ks[0].w.math_ns, 500 * p.elem_ns[TL_OP_EXP], 1e-9);
  cr_expect(!c.ks[0].parallel, "500 elements stay on one thread");
  /* by hand: memory 6000 B / 1e10 B/s = 0.6 us outweighs the arithmetic,
   * 1000 flops / 1e10 + 500 x 0.5 ns = 0.35 us; plus the call, 1 us */
  cr_expect_float_eq(c.ks[0].predicted, 1.6e-6, 1e-15);
  cr_expect_float_eq(c.total, 3e-6 + 1.6e-6, 1e-15, "and the program's call, 3 us");
  tl_program_cost_free(&c);
}

Test(predict, symbols_and_split) {
  tl_program_cost c;
  int64_t syms[1] = {4000};
  predict("(graph g (in x f64 [n]) (out z (neg x)))", syms, &c);
  cr_assert_eq(c.nks, 1);
  cr_expect_float_eq(c.ks[0].w.bytes, 2 * 4000 * 8, 1e-9);
  cr_expect_float_eq(c.ks[0].elems, 4000, 1e-9);
  cr_expect(c.ks[0].parallel, "4000 >= parallel_min_elems 1000");
  tl_program_cost_free(&c);
}

Test(predict, reductions_and_matmul) {
  tl_program_cost c;
  /* a full reduction has no outer dim to split; the row sum does */
  predict("(graph g (in x f32 [100 50]) (in w f32 [50 20])"
          " (out s (sum (exp x)))"
          " (out r (sum x :axis 1))"
          " (out m (matmul x w)))",
          NULL, &c);
  cr_assert_eq(c.nks, 3);
  int seen = 0;
  tl_profile p = simple_profile();
  for (int i = 0; i < c.nks; i++) {
    const tl_kernel_cost *k = &c.ks[i];
    if (k->w.gemm_flops_f32 > 0) {
      cr_expect_float_eq(k->w.gemm_flops_f32, 2.0 * 100 * 20 * 50, 1e-6);
      cr_expect_float_eq(k->w.bytes, (100 * 50 + 50 * 20 + 100 * 20) * 4.0, 1e-6);
      seen |= 1;
    } else if (k->w.math_ns > 0) {
      cr_expect_float_eq(k->w.math_ns, 5000 * p.elem_ns[TL_OP_EXP], 1e-6, "exp fused into the sum");
      cr_expect_float_eq(k->w.bytes, 5000 * 4 + 4, 1e-6);
      cr_expect(!k->parallel);
      seen |= 2;
    } else {
      cr_expect_float_eq(k->w.bytes, 5000 * 4 + 100 * 4, 1e-6);
      cr_expect_float_eq(k->elems, 5000, 1e-6);
      cr_expect(k->parallel, "5000 elements, 100 rows: split");
      seen |= 4;
    }
  }
  cr_expect_eq(seen, 7);
  tl_program_cost_free(&c);
}

Test(predict, producer_computed_in_every_pass) {
  tl_program_cost c;
  /* exp is fused into the softmax row kernel, which makes three passes */
  predict("(graph g (in x f32 [10 100]) (out y (softmax (exp x) :axis 1)))", NULL, &c);
  cr_assert_eq(c.nks, 1);
  tl_profile p = simple_profile();
  cr_expect_float_eq(c.ks[0].w.math_ns, 1000 * (3 * p.elem_ns[TL_OP_EXP] + p.elem_ns[TL_OP_SOFTMAX]), 1e-9);
  cr_expect_float_eq(c.ks[0].w.bytes, 2 * 1000 * 4, 1e-9, "but reads its operand once from memory");
  tl_program_cost_free(&c);
}

Test(predict, large_outputs_pay_for_fresh_pages) {
  tl_program_cost small, big;
  int64_t s1[1] = {1 << 20}, s2[1] = {1 << 23}; /* 4 MiB and 32 MiB outputs */
  predict("(graph g (in x f32 [n]) (out y (neg x)))", s1, &small);
  predict("(graph g (in x f32 [n]) (out y (neg x)))", s2, &big);
  /* by hand: both split over 2 threads (1 us call + 2 us split) and
   * memory-bound at 2e10 B/s (neg's 2^20 or 2^23 flops at 2e10 flop/s take
   * a quarter of the time); only the 32 MiB output pays for its fresh
   * pages, 2^25 B at 5e9 B/s */
  cr_expect_float_eq(small.ks[0].predicted, 3e-6 + 8388608 / 2e10, 1e-15);
  cr_expect_float_eq(big.ks[0].predicted, 3e-6 + 67108864 / 2e10 + 33554432 / 5e9, 1e-12);
  tl_program_cost_free(&small);
  tl_program_cost_free(&big);
}

Test(predict, unbound_symbol_is_an_error) {
  tl_graph *g = tlt_parse("(graph g (in x f32 [n]) (out z (neg x)))", NULL);
  cr_assert_not_null(g);
  tl_profile p = simple_profile();
  tl_program_cost c;
  char err[256] = "";
  int64_t syms[1] = {-1};
  cr_expect_eq(tl_cost_predict(&p, g, syms, &c, err, sizeof err), -1);
  cr_expect_str_eq(err, "symbolic dim 'n' has no size (bind it with --dim n=SIZE)");
  tl_graph_free(g);
}
