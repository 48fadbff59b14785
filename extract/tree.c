/* tree.c - tree-greedy extraction: for every class, the node minimising
 * cost(node) + sum of the children's tree costs.
 *
 * Rather than iterating the Bellman-Ford style fixpoint until nothing
 * changes, classes are settled in increasing cost order, Dijkstra-like: a
 * node becomes a candidate once all its children are settled, and the
 * cheapest candidate settles its class. This is Knuth's generalisation of
 * Dijkstra to superior functions (Knuth, "A generalization of Dijkstra's
 * algorithm", IPL 1977): for costs >= 0, node cost + children's costs is
 * monotone and never below any child's cost, so the first settlement of a
 * class is its fixpoint value -- the same answer as the fixpoint, in
 * O(E log E).
 *
 * Acyclicity holds by construction for any costs: a class only ever picks a
 * node whose children were settled before it, so the settle order is a
 * topological order of the choice. This is what makes negative costs safe
 * (the plain fixpoint would chase a negative cycle forever). With negative
 * costs the settle order is no longer the cost order, so a second pass
 * re-chooses, in settle order, the cheapest node whose children all settled
 * earlier -- still topological, never worse. */
#include "extract/ex_internal.h"
#include "util/alloc.h"

#include <math.h>
#include <string.h>

bool ex_parents(const ex_graph *g, uint32_t **start, uint32_t **par) {
  uint32_t ne = g->child_start[g->n_nodes];
  *start = tl_xcalloc((size_t)g->n_classes + 2, sizeof(uint32_t));
  *par = tl_xmalloc(((size_t)ne + 1) * sizeof(uint32_t));
  if (!*start || !*par) return false;
  uint32_t *s = *start;
  for (uint32_t k = 0; k < ne; k++) s[g->child[k] + 2]++;
  for (uint32_t c = 0; c < g->n_classes; c++) s[c + 2] += s[c + 1];
  for (uint32_t n = 0; n < g->n_nodes; n++)
    for (uint32_t k = g->child_start[n]; k < g->child_start[n + 1]; k++) (*par)[s[g->child[k] + 1]++] = n;
  return true;
}

ex_status ex_tree_choice(const ex_graph *g, uint32_t *choice, double *cost) {
  uint32_t *pstart = NULL, *par = NULL;
  ex_status st = EX_ERR_NOMEM;
  if (ex_parents(g, &pstart, &par)) st = ex_tree_choice_par(g, pstart, par, choice, cost);
  tl_free(pstart), tl_free(par);
  return st;
}

ex_status ex_tree_choice_par(const ex_graph *g, const uint32_t *pstart, const uint32_t *par, uint32_t *choice,
                             double *cost) {
  uint32_t nc = g->n_classes, nn = g->n_nodes;
  uint32_t *left = tl_xmalloc(((size_t)nn + 1) * sizeof(uint32_t));
  double *sum = tl_xmalloc(((size_t)nn + 1) * sizeof(double));
  uint32_t *order = tl_xmalloc(((size_t)nc + 1) * sizeof(uint32_t));
  uint32_t *rank = tl_xmalloc(((size_t)nc + 1) * sizeof(uint32_t));
  ex_heap h = {0};
  ex_status st = EX_ERR_NOMEM;
  if (!left || !sum || !order || !rank) goto out;
  for (uint32_t c = 0; c < nc; c++) choice[c] = EX_NONE, cost[c] = INFINITY, rank[c] = EX_NONE;
  for (uint32_t n = 0; n < nn; n++) {
    left[n] = g->child_start[n + 1] - g->child_start[n];
    sum[n] = g->node_cost[n];
    if (!left[n] && !ex_heap_push(&h, sum[n], n)) goto out;
  }
  uint32_t settled = 0;
  double key;
  uint32_t n;
  while (ex_heap_pop(&h, &key, &n)) {
    uint32_t c = g->node_class[n];
    if (choice[c] != EX_NONE) continue;
    choice[c] = n, cost[c] = key, rank[c] = settled, order[settled++] = c;
    for (uint32_t k = pstart[c]; k < pstart[c + 1]; k++) {
      uint32_t p = par[k];
      if (choice[g->node_class[p]] != EX_NONE) continue;
      sum[p] += key;
      if (--left[p] == 0 && !ex_heap_push(&h, sum[p], p)) goto out;
    }
  }
  if (g->has_negative) {
    for (uint32_t i = 0; i < settled; i++) {
      uint32_t c = order[i];
      for (uint32_t m = g->class_start[c]; m < g->class_start[c + 1]; m++) {
        double s = g->node_cost[m];
        uint32_t k = g->child_start[m];
        for (; k < g->child_start[m + 1]; k++) {
          if (rank[g->child[k]] >= i) break;
          s += cost[g->child[k]];
        }
        if (k == g->child_start[m + 1] && s < cost[c]) cost[c] = s, choice[c] = m;
      }
    }
  }
  st = EX_OK;
out:
  ex_heap_free(&h);
  tl_free(left), tl_free(sum), tl_free(order), tl_free(rank);
  return st;
}
