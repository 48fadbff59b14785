/* test_limits.c - the optimizer on long programs: the extracted program of
 * a long chain is rebuilt whatever its shape, and the default limits scale
 * with the program so that a large one is rewritten. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ir/tg.h"
#include "opt/opt.h"
#include "util/util.h"
#include "tests/common/tltest.h"

/* A chain of n lets; fmt is one link, "%s" its operand. */
static tl_graph *chain(int n, const char *fmt) {
  tl_buf b = {0};
  tl_buf_printf(&b, "(graph chain (in x f32 [4])\n");
  char prev[32] = "x";
  for (int i = 1; i <= n; i++) {
    tl_buf_printf(&b, "  (let v%d ", i);
    tl_buf_printf(&b, fmt, prev);
    tl_buf_printf(&b, ")\n");
    snprintf(prev, sizeof prev, "v%d", i);
  }
  tl_buf_printf(&b, "  (out y %s))\n", prev);
  tl_graph *g = tlt_parse(b.s, NULL);
  free(b.s);
  cr_assert(g);
  return g;
}

static tl_opt *with_rules(const char *text, tl_opt_params p) {
  char path[] = "/tmp/tlaloc-limits-XXXXXX.rw";
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

/* (add 1 v) at every link: the class of the literal is an operand at each
 * level of the chosen term, which once read as a cycle in the choice. */
Test(opt_limits, chain_with_a_shared_operand_is_rebuilt) {
  tl_graph *g = chain(3000, "(add 1 %s)");
  tl_opt *o = with_rules("(ruleset r (rule mul-one (mul ?x 1) => ?x))\n", tl_opt_defaults());
  char err[1024];
  tl_graph *best = tl_opt_graph(o, g, err, sizeof err);
  cr_assert(best, "%s", err);
  cr_assert(tl_graph_equal(g, best));
  tl_graph_free(best);
  tl_opt_free(o);
  tl_graph_free(g);
}
