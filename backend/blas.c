/* blas.c - OpenBLAS's kernel set, found and switched through its own
 * dynamic-arch entry points (backend/blas.h says why and when). */
#include "backend/blas.h"

#include <dlfcn.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "cost/profile.h"

/* OpenBLAS's entry points (driver/others/dynamic.c): quit forgets the
 * kernel set, init picks one again (OPENBLAS_CORETYPE first, else by
 * cpuid) and sets its blocking parameters, corename names it. */
typedef struct blas_api {
  void (*quit)(void);
  void (*init)(void);
  char *(*corename)(void);
  void *lib; /* the library they come from */
} blas_api;

static blas_api api;
static pthread_once_t api_once = PTHREAD_ONCE_INIT;

/* The BLAS that generated code calls: cblas_sgemm in the global scope,
 * where the JIT resolves symbols. When no library there has it (libtlaloc.so
 * loaded RTLD_LOCAL, as Python's ctypes does), OpenBLAS is made global, so
 * that the JIT and this file talk to the same instance. */
void *be_blas_global(void) {
  void *global = dlopen(NULL, RTLD_NOW);
  void *f = global ? dlsym(global, "cblas_sgemm") : NULL;
  if (global) dlclose(global);
  if (!f) {
    static const char *const blas[] = {"libopenblas.so.0", "libopenblas.so", "libblas.so.3"};
    for (size_t i = 0; i < sizeof blas / sizeof *blas && !f; i++) {
      void *h = dlopen(blas[i], RTLD_NOW | RTLD_GLOBAL); /* kept open: the JIT's code calls it */
      f = h ? dlsym(h, "cblas_sgemm") : NULL;
    }
  }
  return f;
}

static void api_init(void) {
  void *gemm = be_blas_global();
  Dl_info in;
  if (!gemm || !dladdr(gemm, &in) || !in.dli_fname) return;
  /* the library that holds that cblas_sgemm, already loaded: its own
   * dynamic-arch functions, not another OpenBLAS copy's (Debian's
   * libblas.so.3 is a second copy with its own kernel choice) */
  void *h = dlopen(in.dli_fname, RTLD_NOW | RTLD_NOLOAD);
  if (!h) return;
  blas_api a = {0};
  *(void **)&a.quit = dlsym(h, "gotoblas_dynamic_quit");
  *(void **)&a.init = dlsym(h, "gotoblas_dynamic_init");
  *(void **)&a.corename = dlsym(h, "gotoblas_corename");
  a.lib = h;
  if (a.quit && a.init && a.corename) api = a;
  /* else: not a dynamic-arch OpenBLAS; the handle stays open (cheap) */
}

static const blas_api *get_api(void) {
  pthread_once(&api_once, api_init);
  return api.init ? &api : NULL;
}

const char *be_blas_core(void) {
  const blas_api *a = get_api();
  return a ? a->corename() : NULL;
}

/* A kernel set, the table OpenBLAS keeps for it, and the CPU features its
 * kernels use (the compiler's runtime checks, which include the OS saving
 * the registers). */
typedef struct blas_core {
  const char *name, *table;
  int (*runs)(void);
} blas_core;

static int runs_avx2(void) { return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma"); }
static int runs_avx512(void) {
  return runs_avx2() && __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512cd") &&
         __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512dq") &&
         __builtin_cpu_supports("avx512vl");
}
static int runs_bf16(void) { return runs_avx512() && __builtin_cpu_supports("avx512bf16"); }

static const blas_core cores[] = {
    {"Haswell", "gotoblas_HASWELL", runs_avx2},
    {"Zen", "gotoblas_ZEN", runs_avx2},
    {"SkylakeX", "gotoblas_SKYLAKEX", runs_avx512},
    {"Cooperlake", "gotoblas_COOPERLAKE", runs_bf16},
};

int be_blas_cores(const char **out, int max) {
  const blas_api *a = get_api();
  if (!a || max <= 0) return 0;
  const char *cur = a->corename();
  int n = 0;
  out[n++] = cur;
  for (size_t i = 0; i < sizeof cores / sizeof *cores && n < max; i++)
    if (strcasecmp(cores[i].name, cur) && dlsym(a->lib, cores[i].table) && cores[i].runs()) out[n++] = cores[i].name;
  return n;
}

int be_blas_set_core(const char *name, char *err, size_t n) {
  const blas_api *a = get_api();
  if (!a) {
    snprintf(err, n, "the BLAS in this process cannot switch kernels (not a dynamic-arch OpenBLAS)");
    return -1;
  }
  const char *c[16];
  int nc = be_blas_cores(c, 16), k = 0;
  while (k < nc && strcasecmp(c[k], name)) k++;
  if (k == nc) {
    snprintf(err, n, "OpenBLAS kernel set '%s' is not one this CPU and library can run", name);
    return -1;
  }
  if (k == 0) return 0; /* already running it */
  /* OpenBLAS reads the variable only inside init; the caller's own value
   * (if any) is put back */
  const char *old = getenv("OPENBLAS_CORETYPE");
  char keep[128];
  if (old) snprintf(keep, sizeof keep, "%s", old);
  setenv("OPENBLAS_CORETYPE", name, 1);
  a->quit();
  a->init();
  if (old) {
    setenv("OPENBLAS_CORETYPE", keep, 1);
  } else {
    unsetenv("OPENBLAS_CORETYPE");
  }
  if (strcasecmp(a->corename(), name)) {
    snprintf(err, n, "OpenBLAS chose kernel set '%s' when asked for '%s'", a->corename(), name);
    return -1;
  }
  return 0;
}

const char *be_blas_default_core(void) {
  const char *cur = be_blas_core();
  if (!cur || !runs_avx512() || (strcasecmp(cur, "Haswell") && strcasecmp(cur, "Zen"))) return NULL;
  const char *c[16];
  int nc = be_blas_cores(c, 16);
  for (int i = 0; i < nc; i++)
    if (!strcasecmp(c[i], "SkylakeX")) return c[i];
  return NULL;
}

/* Once per process: the profile's kernel set, else the default rule. The
 * profile's set was measured running here, so it applies even over
 * OPENBLAS_CORETYPE (some images set that to an AVX2 set as a blanket
 * workaround); without a profile the variable is the user's choice and is
 * kept. TLALOC_BLAS_TUNE=0: OpenBLAS's own choice, always. */
static void tune_once(void) {
  const char *off = getenv("TLALOC_BLAS_TUNE"), *user = getenv("OPENBLAS_CORETYPE");
  if ((off && !strcmp(off, "0")) || !get_api()) return;
  tl_profile p;
  char err[256];
  if (tl_profile_get(&p, err, sizeof err) == 0 && p.blas_core[0] && be_blas_set_core(p.blas_core, err, sizeof err) == 0)
    return;
  /* no profile, or one from another machine (or library) naming a set
   * this one lacks */
  const char *want = user && *user ? NULL : be_blas_default_core();
  if (want) be_blas_set_core(want, err, sizeof err);
}

const char *be_blas_tune(void) {
  static pthread_once_t once = PTHREAD_ONCE_INIT;
  pthread_once(&once, tune_once);
  return be_blas_core();
}
