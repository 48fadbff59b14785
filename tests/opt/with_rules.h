/* with_rules.h - an optimizer over rules given as text, for the opt tests
 * (written to a temporary .rw file, read by tl_opt_new, removed). Header-only,
 * test code only. */
#ifndef TL_TESTS_OPT_WITH_RULES_H
#define TL_TESTS_OPT_WITH_RULES_H

#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>

#include "opt/opt.h"

static inline tl_opt *with_rules(const char *text, tl_opt_params p) {
  char path[] = "/tmp/tlaloc-rules-XXXXXX.rw";
  int fd = mkstemps(path, 3);
  cr_assert_geq(fd, 0);
  FILE *f = fdopen(fd, "w");
  fputs(text, f);
  fclose(f);
  const char *paths[1] = {path};
  p.rule_paths = paths;
  p.nrule_paths = 1;
  char err[4096];
  tl_opt *o = tl_opt_new(&p, err, sizeof err);
  remove(path);
  cr_assert(o, "%s", err);
  return o;
}

#endif
