/* bench_grad_deep.c - the grad transform on deep graphs: y = sin(...sin(x))
 * chains of 10^4, 10^5 and 10^6 nodes (every traversal of grad/ is a loop
 * over node ids, so depth costs time and memory, never stack). Prints the
 * milliseconds of gr_transform and the nodes of the result per depth.
 *
 *   bench-grad-deep            10^4, 10^5, 10^6
 *   bench-grad-deep --smoke    10^4 (exits 1 when the transform fails) */
#include "grad/grad.h"
#include "util/util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int main(int argc, char **argv) {
  int smoke = argc > 1 && !strcmp(argv[1], "--smoke");
  gr_rules *r = gr_rules_new();
  tl_buf d = {0};
  if (gr_rules_load_path(r, tl_rules_dir(), &d)) {
    fprintf(stderr, "%s", d.s ? d.s : "bench-grad-deep: cannot read the derivative rules\n");
    return 1;
  }
  printf("| depth | grad ms | nodes before | nodes after |\n|---|---|---|---|\n");
  for (int depth = 10000; depth <= (smoke ? 10000 : 1000000); depth *= 10) {
    tl_graph *g = tl_graph_new("deep");
    tl_type t = {.dtype = TL_F64};
    char err[512];
    int32_t y = tl_graph_add_input(g, "x", &t, (tl_loc){0, 0});
    for (int i = 0; i < depth; i++) y = tl_graph_add(g, TL_OP_SIN, NULL, &y, 1, (tl_loc){0, 0}, err, sizeof err);
    tl_graph_add_output(g, "y", y);
    gr_params p = {.mode = GR_GRAD};
    double t0 = tl_now_ms();
    tl_graph *dg = gr_transform(g, r, &p, err, sizeof err);
    double ms = tl_now_ms() - t0;
    if (!dg) {
      fprintf(stderr, "bench-grad-deep: %s\n", err);
      return 1;
    }
    printf("| %d | %.0f | %d | %d |\n", depth, ms, g->nnodes, dg->nnodes);
    tl_graph_free(dg);
    tl_graph_free(g);
  }
  tl_free(d.s);
  gr_rules_free(r);
  return 0;
}
