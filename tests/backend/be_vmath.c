/* be_vmath.c - tlaloc's own f32 exp and tanh (be_options.vector_math = 2),
 * part of be-diff:
 *  - the compiled exp and tanh against f64 libm on special values (exact
 *    where the result is exactly representable: 0, -0, +-inf, NaN, 1,
 *    overflow to inf, underflow to 0) and within 4 ulp on subnormal
 *    results, the polynomial/exp-form boundary of tanh, and random inputs
 *    (uniform over the interesting ranges and over all f32 bit patterns);
 *  - the examples and graphs built on exp (sigmoid, softplus, softmax,
 *    logsumexp, the benchmark's chain) agree with the interpreter as with
 *    libmvec. */
#include "backend/backend.h"
#include "interp/interp.h"
#include "tests/common/tltest.h"
#include "util/util.h"

#include <dirent.h>
#include <float.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int be_compare_opts(const tl_graph *g, tl_tensor **inputs, const int64_t *syms, const char *what, int verbose,
                    const be_options *o, be_stats *st);

#define MAX_ULP 4.0

/* |got - ref| in units of the f32 ulp at ref (subnormal spacing below
 * FLT_MIN); infinity counts as the value one ulp past FLT_MAX, so a
 * result at the overflow threshold may round either way. */
static double ulp_err(float got, double ref) {
  double top = ldexp(1.0, 128);
  double g = isinf(got) ? copysign(top, got) : got;
  double r = fabs(ref) > top ? copysign(top, ref) : ref;
  int ex;
  frexp(r, &ex); /* r = m 2^ex, m in [0.5, 1) */
  double ulp = ldexp(1.0, (ex - 1 < -126 ? -126 : ex - 1) - 23);
  return fabs(g - r) / ulp;
}

static uint64_t rng_next(uint64_t *s) { /* splitmix64 */
  uint64_t z = (*s += 0x9e3779b97f4a7c15ull);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}
static double rng_unit(uint64_t *s) { return (double)(rng_next(s) >> 11) * 0x1p-53; }

/* inputs with an exactly known result: {x, exp(x), tanh(x)} */
static const float exact[][3] = {
  {0.0f, 1.0f, 0.0f},        {-0.0f, 1.0f, -0.0f},     {INFINITY, INFINITY, 1.0f},
  {-INFINITY, 0.0f, -1.0f},  {88.8f, INFINITY, 1.0f},  {100.0f, INFINITY, 1.0f},
  {1e30f, INFINITY, 1.0f},   {-104.0f, 0.0f, -1.0f},   {-200.0f, 0.0f, -1.0f},
  {-1e30f, 0.0f, -1.0f},
};

/* inputs checked within MAX_ULP (exp is checked where it is finite) */
static const float near[] = {
  88.7f,      -88.7f,     88.72f,      88.7228f,  103.9f,   -103.9f,    -87.3f,  -87.34f,  -88.0f,
  -95.0f,     -100.0f,    -103.0f,     -103.27f,  -103.97f, 1e-8f,      -1e-8f,  1e-30f,   -1e-30f,
  FLT_MIN,    -FLT_MIN,   1e-45f,      0.5f,      -0.5f,    9.0f,       -9.0f,   0.625f,   -0.625f,
  0.6249999f, -0.6249999f, 0.62500006f, 0.3466f,   -0.3466f, 0.34657359f, 1.0f,   -1.0f,    2.0f,
  0.1f,       -0.1f,      10.0f,       -10.0f,    9.01f,    44.0f,      -44.0f,  3.0f,     -5.5f,   20.0f,
  -20.0f,
};

typedef struct acc {
  double max_e, max_t, sum_e, sum_t;
  long n_e, n_t;
  float worst_e, worst_t;
} acc;

static int check_one(float x, float ge, float gt, acc *a, int verbose) {
  int bad = 0;
  if (isnan(x)) {
    if (!isnan(ge) || !isnan(gt)) {
      printf("FAIL vmath: exp/tanh(NaN) = %g / %g, expected NaN\n", ge, gt);
      bad = 1;
    }
    return bad;
  }
  double re = exp((double)x), rt = tanh((double)x);
  double ee = ulp_err(ge, re), et = ulp_err(gt, rt);
  if (!(ee <= MAX_ULP)) {
    printf("FAIL vmath: exp(%.9g) = %.9g, libm %.17g: %.2f ulp\n", x, ge, re, ee);
    bad = 1;
  }
  if (!(et <= MAX_ULP)) {
    printf("FAIL vmath: tanh(%.9g) = %.9g, libm %.17g: %.2f ulp\n", x, gt, rt, et);
    bad = 1;
  }
  if (ee > a->max_e) a->max_e = ee, a->worst_e = x;
  if (et > a->max_t) a->max_t = et, a->worst_t = x;
  a->sum_e += ee, a->sum_t += et;
  a->n_e++, a->n_t++;
  if (verbose && bad) fflush(stdout);
  return bad;
}

static int accuracy_test(int verbose) {
  char *diag = NULL;
  tl_error err = {0};
  tl_graph *g = tlt_parse("(graph v (in x f32 [n]) (out e (exp x)) (out t (tanh x)))", &diag);
  tl_free(diag);
  if (!g) {
    printf("FAIL vmath: parse\n");
    return 1;
  }
  be_options o = be_options_default();
  o.vector_math = 2;
  o.use_cache = 0;
  o.threads = 1;
  be_program *p = be_compile(g, &o, &err);
  if (!p) {
    printf("FAIL vmath: compile: %s\n", err.msg);
    tl_graph_free(g);
    return 1;
  }
  /* specials first, then random; an odd length leaves a scalar tail */
  const int nexact = (int)(sizeof exact / sizeof exact[0]), nnear = (int)(sizeof near / sizeof near[0]);
  const int64_t nrand = 3 * 100000 + 1;
  int64_t n = nexact + 2 * nnear + 1 + nrand;
  tl_tensor *x = tl_tensor_new(TL_F32, 1, &n, TL_EMSG(&err));
  if (!x) {
    printf("FAIL vmath: %s\n", err.msg);
    be_program_free(p);
    tl_graph_free(g);
    return 1;
  }
  float *xv = x->data;
  int64_t k = 0;
  for (int i = 0; i < nexact; i++) xv[k++] = exact[i][0];
  for (int i = 0; i < nnear; i++) xv[k++] = near[i], xv[k++] = -near[i];
  xv[k++] = NAN;
  uint64_t s = 7;
  for (int64_t i = 0; i < nrand; i++) {
    int kind = (int)(i % 3);
    if (kind == 0) xv[k++] = (float)(-110.0 + 200.0 * rng_unit(&s)); /* exp's whole range */
    else if (kind == 1) xv[k++] = (float)(-12.0 + 24.0 * rng_unit(&s)); /* tanh's non-saturated range */
    else {
      uint32_t b = (uint32_t)rng_next(&s); /* any f32, NaNs included */
      memcpy(&xv[k++], &b, 4);
    }
  }
  tl_tensor *out[2] = {0};
  int bad = 0;
  if (be_run(p, &x, &n, out, &err)) {
    printf("FAIL vmath: run: %s\n", err.msg);
    bad = 1;
  } else {
    const float *ge = out[0]->data, *gt = out[1]->data;
    for (int i = 0; i < nexact; i++) {
      /* bit-exact: the sign of a zero counts */
      if (memcmp(&ge[i], &exact[i][1], 4) || memcmp(&gt[i], &exact[i][2], 4)) {
        printf("FAIL vmath: x = %.9g: exp %.9g tanh %.9g, expected %.9g %.9g\n", exact[i][0], ge[i], gt[i],
               exact[i][1], exact[i][2]);
        bad = 1;
      }
    }
    acc a = {0};
    for (int64_t i = nexact; i < n; i++) bad |= check_one(xv[i], ge[i], gt[i], &a, verbose);
    if (verbose || bad)
      printf("vmath: %ld inputs: exp max %.3f ulp (x = %.9g) mean %.4f; tanh max %.3f ulp (x = %.9g) mean %.4f\n",
             a.n_e, a.max_e, a.worst_e, a.sum_e / (double)a.n_e, a.max_t, a.worst_t, a.sum_t / (double)a.n_t);
  }
  for (int i = 0; i < 2; i++) tl_tensor_free(out[i]);
  tl_tensor_free(x);
  be_program_free(p);
  tl_graph_free(g);
  return bad;
}

/* graphs whose f32 exp or tanh now come from the own kernels */
static const char *const graphs[] = {
  "(graph c (in a f32 [n]) (in b f32 [n]) (out y (add (mul (tanh (exp (mul a 0.5))) b) 1)))",
  "(graph s (in x f32 [n]) (out y (sigmoid x)) (out z (softplus x)))",
  "(graph m (in x f32 [r c]) (out y (softmax x :axis 1)) (out z (logsumexp x :axis 1)))",
  "(graph m (in x f32 [r c]) (out y (log_softmax x :axis 0)))",
  "(graph t (in x f32 [n]) (out y (tanh (mul x 3.0))))",
};

static int agree_test(const char *srcdir, int verbose) {
  be_options o = be_options_default();
  o.vector_math = 2;
  o.use_cache = 0;
  int bad = 0, ng = 0;
  for (size_t i = 0; i < sizeof graphs / sizeof graphs[0]; i++) {
    char err[512], *diag = NULL, what[64];
    tl_graph *g = tlt_parse(graphs[i], &diag);
    tl_free(diag);
    if (!g) {
      printf("FAIL vmath: graph %zu: parse\n", i);
      bad = 1;
      continue;
    }
    int64_t syms[2] = {1003, 37};
    if (g->nsyms == 2) syms[0] = 29;
    tl_tensor *in[2] = {0};
    if (tl_random_inputs(g, in, syms, 11, err, sizeof err)) {
      printf("FAIL vmath: graph %zu: inputs: %s\n", i, err);
      bad = 1;
    } else {
      for (int th = 1; th <= 2; th++) {
        o.threads = th;
        snprintf(what, sizeof what, "vmath graph %zu (%d thread%s)", i, th, th > 1 ? "s" : "");
        bad |= be_compare_opts(g, in, syms, what, verbose, &o, NULL);
      }
    }
    for (int j = 0; j < g->ninputs; j++) tl_tensor_free(in[j]);
    tl_graph_free(g);
    ng++;
  }
  /* every example at one size */
  o.threads = 0;
  char dir[4096];
  snprintf(dir, sizeof dir, "%s/examples", srcdir);
  DIR *dp = opendir(dir);
  if (!dp) {
    printf("FAIL vmath: cannot open %s\n", dir);
    return 1;
  }
  struct dirent *de;
  while ((de = readdir(dp))) {
    size_t l = strlen(de->d_name);
    if (l < 4 || strcmp(de->d_name + l - 3, ".tg")) continue;
    char path[8192], err[512];
    snprintf(path, sizeof path, "%s/%s", dir, de->d_name);
    size_t len;
    char *src = tl_read_file(path, &len, err, sizeof err);
    char *diag = NULL;
    tl_graph *g = src ? tlt_parse(src, &diag) : NULL;
    tl_free(diag);
    tl_free(src);
    if (!g) {
      printf("FAIL vmath: %s: cannot read or parse\n", path);
      bad = 1;
      continue;
    }
    int64_t *syms = tl_xcalloc((size_t)g->nsyms + 1, sizeof *syms);
    for (int s = 0; s < g->nsyms; s++) syms[s] = 37 + s;
    tl_tensor **in = tl_xcalloc((size_t)g->ninputs + 1, sizeof *in);
    char what[8300];
    snprintf(what, sizeof what, "vmath %s", path);
    if (tl_random_inputs(g, in, syms, 42, err, sizeof err)) {
      printf("FAIL %s: inputs: %s\n", what, err);
      bad = 1;
    } else {
      bad |= be_compare_opts(g, in, syms, what, verbose, &o, NULL);
    }
    for (int i = 0; i < g->ninputs; i++) tl_tensor_free(in[i]);
    tl_free(in);
    tl_free(syms);
    tl_graph_free(g);
    ng++;
  }
  closedir(dp);
  if (verbose) printf("vmath: %d graphs compared with the interpreter\n", ng);
  return bad;
}

int be_vmath_tests(const char *srcdir, int verbose) {
  int bad = accuracy_test(verbose);
  bad |= agree_test(srcdir, verbose);
  printf("vmath (own f32 exp/tanh): %s\n", bad ? "FAILED" : "ok");
  return bad;
}
