/* tltest.h - helpers shared by the Criterion tests: parse .tg text, visit
 * every .tg file of a folder, run a graph on random inputs through the
 * interpreter, and compare an optimised result with the original's. Header-only, test code only. */
#ifndef TL_TESTS_TLTEST_H
#define TL_TESTS_TLTEST_H

#include <dirent.h>
#include <math.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "interp/interp.h"
#include "ir/tg.h"
#include "util/util.h"

/* Parses src (named t.tg in messages). On failure the diagnostics go to
 * *diag_text when given (caller frees), else to stderr. */
static inline tl_graph *tlt_parse(const char *src, char **diag_text) {
  tl_diag d;
  tl_diag_init(&d, "t.tg", src, strlen(src));
  tl_graph *g = tl_tg_parse(src, strlen(src), &d);
  if (diag_text) *diag_text = tl_xstrdup(tl_diag_text(&d));
  else if (!g) fprintf(stderr, "%s", tl_diag_text(&d));
  tl_diag_free(&d);
  return g;
}

/* Calls fn(name, src, len, ctx) for every *.tg file in dir (src is
 * NUL-terminated and freed after the call). Returns the number of files,
 * or -1 when the folder or a file cannot be read. */
static inline int tlt_each_tg(const char *dir, void (*fn)(const char *name, const char *src, size_t len, void *ctx),
                              void *ctx) {
  DIR *d = opendir(dir);
  if (!d) return -1;
  int count = 0;
  struct dirent *ent;
  while ((ent = readdir(d)) != NULL) {
    size_t n = strlen(ent->d_name);
    if (n < 4 || strcmp(ent->d_name + n - 3, ".tg") != 0) continue;
    char path[4096], err[256];
    snprintf(path, sizeof path, "%s/%s", dir, ent->d_name);
    size_t len;
    char *src = tl_read_file(path, &len, err, sizeof err);
    if (!src) {
      fprintf(stderr, "%s\n", err);
      count = -1;
      break;
    }
    fn(ent->d_name, src, len, ctx);
    tl_free(src);
    count++;
  }
  closedir(d);
  return count;
}

/* ---- values: the interpreter is the oracle ---------------------------------- */

/* Runs g with random inputs (seed) and symbols bound to `size`. */
static inline int tlt_run_random(const tl_graph *g, uint64_t seed, int64_t size, tl_tensor **outs) {
  int64_t *syms = tl_xmalloc(((size_t)g->nsyms + 1) * sizeof *syms);
  tl_tensor **ins = tl_xcalloc((size_t)g->ninputs + 1, sizeof *ins);
  char err[512];
  int rc = tl_syms_at(g, syms, size, 0, err, sizeof err); /* derived dims follow */
  if (rc == 0) rc = tl_random_inputs(g, ins, syms, seed, err, sizeof err);
  if (rc == 0) rc = tl_interp_run(g, ins, syms, outs, err, sizeof err);
  if (rc) fprintf(stderr, "%s\n", err);
  for (int i = 0; i < g->ninputs; i++) tl_tensor_free(ins[i]);
  tl_free(ins);
  tl_free(syms);
  return rc;
}

/* Equal within a dtype tolerance, scaled by the magnitudes involved; where
 * the original is inf or NaN the optimised one may be finite (a stability
 * rewrite), never the other way round. */
/* Equal within a dtype tolerance, scaled by the magnitudes involved; where
 * the original is inf or NaN the optimised one may be finite (a stability
 * rewrite), never the other way round. */
static inline bool tlt_close_enough(const tl_tensor *a, const tl_tensor *b, char *why, size_t n) {
  if (a->dtype != b->dtype || a->numel != b->numel) {
    snprintf(why, n, "dtype or size differs");
    return false;
  }
  double rtol = a->dtype == TL_F32 ? 2e-4 : 1e-9, scale = 0;
  for (int64_t i = 0; i < a->numel; i++) {
    double x = tl_tensor_get_f64(a, i);
    if (isfinite(x) && fabs(x) > scale) scale = fabs(x);
  }
  for (int64_t i = 0; i < a->numel; i++) {
    double x = tl_tensor_get_f64(a, i), y = tl_tensor_get_f64(b, i);
    if (!isfinite(x)) continue; /* original overflowed or was undefined */
    if (!isfinite(y) || fabs(x - y) > rtol * (fabs(x) + 1e-3 * scale) + 1e-30) {
      snprintf(why, n, "element %lld: original %.17g, optimised %.17g", (long long)i, x, y);
      return false;
    }
  }
  return true;
}

#endif
