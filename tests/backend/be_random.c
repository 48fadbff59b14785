/* be_random.c - random graphs (random_graph.c) through the backend's
 * differential test. */
#include "backend/backend.h"
#include "tests/backend/random_graph.h"
#include "interp/interp.h"
#include "util/util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int be_compare_opts(const tl_graph *g, tl_tensor **inputs, const int64_t *syms, const char *what, int verbose,
                    const be_options *o, be_stats *st);

/* count graphs compiled under o (NULL: the defaults); prints how many
 * reached each output depth. */
int be_random_graphs_opts(int count, uint64_t seed, int verbose, const be_options *o, const char *label) {
  rg_seed(seed);
  int fails = 0, errs = 0, maxd = 0, hist[9] = {0};
  be_options def = be_options_default();
  if (!o) o = &def;
  for (int i = 0; i < count; i++) {
    int d;
    tl_graph *g = rg_graph(&d);
    if (d > maxd) maxd = d;
    hist[d < 8 ? d : 8]++;
    tl_tensor *in[4] = {0};
    char err[256], what[64];
    if (tl_random_inputs(g, in, NULL, seed + (uint64_t)i, err, sizeof err)) {
      errs++;
    } else {
      snprintf(what, sizeof what, "random graph %d (seed %llu)", i, (unsigned long long)seed);
      fails += be_compare_opts(g, in, NULL, what, verbose, o, NULL);
    }
    for (int k = 0; k < g->ninputs; k++) tl_tensor_free(in[k]);
    tl_graph_free(g);
  }
  printf("random%s: %d graphs (max depth %d; by depth 0..8:", label, count, maxd);
  for (int d = 0; d <= 8; d++) printf(" %d", hist[d]);
  printf("), %d failed, %d skipped\n", fails, errs);
  return fails;
}

int be_random_graphs(int count, uint64_t seed, int verbose) {
  return be_random_graphs_opts(count, seed, verbose, NULL, "");
}
