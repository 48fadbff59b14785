/* exact_solver.c - CBC and CLP opened at first use (see exact_internal.h:
 * loading them with tlaloc cost every process 7-10 ms). The library names
 * are the sonames of the build's CBC (extract/meson.build). */
#define EX_SOLVER_TABLE
#include "extract/exact_internal.h"

#include <dlfcn.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>

ex_solver_api ex_solver;

static pthread_once_t load_once = PTHREAD_ONCE_INIT;
static char load_err[512]; /* empty when everything was found */

/* dlsym hands back an object pointer; the entry points are functions */
static void *entry(void *lib, const char *name) { return lib ? dlsym(lib, name) : NULL; }

static void load(void) {
  void *cbc = dlopen(EX_CBC_LIB, RTLD_NOW | RTLD_LOCAL);
  void *clp = cbc ? dlopen(EX_CLP_LIB, RTLD_NOW | RTLD_LOCAL) : NULL;
  if (!cbc || !clp) {
    const char *why = dlerror(); /* names the library */
    snprintf(load_err, sizeof load_err, "exact extraction needs CBC and CLP, which could not be loaded: %s",
             why ? why : "unknown reason");
    if (cbc) dlclose(cbc);
    return;
  }
  /* CLP's own entry points in libClp, CBC's and its Osi ones in CBC's */
#define EX_SOLVER_FIND(f)                                                                            \
  if (!load_err[0]) {                                                                                \
    bool in_cbc = strncmp(#f, "Clp_", 4) != 0;                                                           \
    void *a = entry(in_cbc ? cbc : clp, #f);                                                         \
    if (a) memcpy(&ex_solver.f, &a, sizeof a);                                                       \
    else snprintf(load_err, sizeof load_err, "exact extraction: %s has no %s", in_cbc ? EX_CBC_LIB : EX_CLP_LIB, #f); \
  }
  EX_SOLVER_FNS(EX_SOLVER_FIND)
#undef EX_SOLVER_FIND
}

bool ex_solver_load(tl_error *d) {
  pthread_once(&load_once, load);
  if (!load_err[0]) return true;
  ex_fail(d, EX_ERR_SOLVER, "%s", load_err);
  return false;
}
