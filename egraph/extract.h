/* extract.h - choosing one term per e-class (the interface), and the greedy
 * bottom-up extractor with a per-op weight (egg's AstSize when all are 1).
 *
 * An extractor fills a choice (one node per class reachable from the root)
 * and its cost. Cost functions must be monotone in the children's costs
 * (egg's contract), which makes the greedy fixpoint optimal for tree cost.
 * tlaloc's optimizer does not use this vtable: opt/opt.c turns the
 * reachable e-graph into an ex_graph and runs extract/'s extractors on it
 * under the cost model (extract/cost.h). This greedy extractor serves the
 * e-graph's own tests and the egg benchmark. */
#ifndef TL_EGRAPH_EXTRACT_H
#define TL_EGRAPH_EXTRACT_H

#include "egraph/egraph.h"

typedef struct eg_choice {
  uint32_t *node; /* per id: chosen node id of the class, or EG_NONE */
  double *cost;   /* per id: cost of that class's best term */
  size_t n;       /* ids covered */
} eg_choice;

typedef struct eg_extractor {
  /* Fills ch for every class (at least those reachable from root); returns
   * 0, or -1 if root has no finite-cost term. Requires a rebuilt e-graph. */
  int (*extract)(const struct eg_extractor *x, eg_egraph *g, eg_id root, eg_choice *ch);
  void *ctx;
} eg_extractor;

/* Greedy tree-cost extractor: cost(node) = weight[op] + sum of children.
 * weights: nops entries, or NULL for 1 each (AST size). Borrowed. */
eg_extractor eg_greedy_extractor(const double *weights);

void eg_choice_free(eg_choice *ch);
/* The chosen term of root as an s-expression (malloc'd), NULL if none. */
char *eg_choice_term(eg_egraph *g, const eg_choice *ch, eg_id root);

/* Convenience: greedy AST-size extraction of root as text (malloc'd). */
char *eg_extract_best(eg_egraph *g, eg_id root, double *cost);

#endif
