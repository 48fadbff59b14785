/* tltest.h - helpers shared by the Criterion tests: parse .tg text, and
 * visit every .tg file of a folder. Header-only, test code only. */
#ifndef TL_TESTS_TLTEST_H
#define TL_TESTS_TLTEST_H

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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
    free(src);
    count++;
  }
  closedir(d);
  return count;
}

#endif
