/* exact_bound.c - the exact extractor's combinatorial lower bound, computed
 * before any solver runs: where it meets the DAG extractor's cost, CBC is
 * not called at all. It reads only the shrunk model (exact.c), so it is a
 * file of its own.
 *
 * Lower bound without the solver (costs >= 0). Two classes whose reachable
 * sets are disjoint cannot share anything, so their sub-extractions' costs
 * add up; otherwise at least the larger must be paid. This gives, by the
 * same Knuth-style pass as tree.c,
 *   LB(c) = min over nodes n of c: cost(n) + sum over groups of n's children
 *           with pairwise disjoint reachable sets of the largest LB in each,
 * a lower bound on the DAG cost of any extraction of c (by induction on
 * the extraction: a node's cost is never part of its children's). On
 * tree-shaped e-graphs (egg's associativity and commutativity samples) it
 * is exact where the LP relaxation is weak (egg/math_associate_adds: LP
 * value 2, CBC's bound 3.7 after 10 s, optimum 13), and the solver is not
 * needed at all. */
#include "extract/exact_internal.h"
#include "util/alloc.h"

#include <math.h>

/* The lower bound keeps one reachable-set bitset per SCC; it is skipped
 * when those would take more than this many bytes. */
#define EX_LB_BITS_MAX ((size_t)64 << 20)
/* Children (or roots) grouped by the lower bound, at most; beyond, the
 * pairwise test would be quadratic. */
#define EX_LB_GROUP_MAX 256

typedef struct bound {
  size_t words;
  uint64_t *reach; /* [n_scc * words]: live classes reachable from the SCC */
  uint32_t *uf;    /* union-find over one node's children */
  double *gmax;    /* largest lb[] of each union-find group */
  uint32_t *kids;  /* distinct children of one node */
} bound;

static bool reach_meet(const bound *b, const model *m, uint32_t c, uint32_t d) {
  const uint64_t *x = b->reach + (size_t)m->scc[c] * b->words;
  const uint64_t *y = b->reach + (size_t)m->scc[d] * b->words;
  for (size_t w = 0; w < b->words; w++)
    if (x[w] & y[w]) return true;
  return false;
}

static uint32_t uf_find(uint32_t *uf, uint32_t i) {
  while (uf[i] != i) i = uf[i] = uf[uf[i]];
  return i;
}

/* Sum over groups of classes[0..k) with pairwise disjoint reachable sets of
 * the largest lb[] in each group. Above EX_LB_GROUP_MAX classes the
 * pairwise test is skipped and the largest alone is taken (still a lower
 * bound). */
static double group_sum(bound *b, const model *m, const uint32_t *cls, uint32_t k, const double *lb) {
  double best = 0;
  if (k > EX_LB_GROUP_MAX) {
    for (uint32_t i = 0; i < k; i++) best = lb[cls[i]] > best ? lb[cls[i]] : best;
    return best;
  }
  for (uint32_t i = 0; i < k; i++) b->uf[i] = i;
  for (uint32_t i = 0; i < k; i++)
    for (uint32_t j = i + 1; j < k; j++)
      if (uf_find(b->uf, i) != uf_find(b->uf, j) && reach_meet(b, m, cls[i], cls[j]))
        b->uf[uf_find(b->uf, i)] = uf_find(b->uf, j);
  double *gmax = b->gmax;
  for (uint32_t i = 0; i < k; i++) gmax[i] = 0;
  for (uint32_t i = 0; i < k; i++) {
    uint32_t r = uf_find(b->uf, i);
    if (lb[cls[i]] > gmax[r]) gmax[r] = lb[cls[i]];
  }
  double sum = 0;
  for (uint32_t i = 0; i < k; i++)
    if (uf_find(b->uf, i) == i) sum += gmax[i];
  return sum;
}

/* Distinct children of node n into b->kids; returns their number. */
static uint32_t distinct_children(const ex_graph *g, bound *b, uint32_t n) {
  uint32_t k = 0;
  for (uint32_t i = g->child_start[n]; i < g->child_start[n + 1]; i++) {
    uint32_t d = g->child[i], j = 0;
    while (j < k && b->kids[j] != d) j++;
    if (j == k) b->kids[k++] = d;
  }
  return k;
}

/* The lower bound of the header, for the roots together; -INFINITY when
 * it is not computed (memory cap) and NAN on OOM. */
double ex_lower_bound(const model *m) {
  const ex_graph *g = m->g;
  uint32_t nc = g->n_classes, nn = g->n_nodes;
  bound b = {.words = ((size_t)nc + 63) / 64};
  if ((size_t)m->n_scc * b.words * 8 > EX_LB_BITS_MAX) return -INFINITY;
  uint32_t maxk = g->n_roots;
  for (uint32_t n = 0; n < nn; n++)
    if (g->child_start[n + 1] - g->child_start[n] > maxk) maxk = g->child_start[n + 1] - g->child_start[n];
  uint32_t *pstart = NULL, *par = NULL, *first = NULL, *next = NULL, *left = NULL;
  double *lb = NULL, result = NAN;
  uint8_t *done = NULL;
  ex_heap h = {0};
  b.reach = tl_xcalloc((size_t)m->n_scc * b.words + 1, sizeof(uint64_t));
  b.uf = tl_xmalloc(((size_t)maxk + 1) * sizeof(uint32_t));
  b.gmax = tl_xmalloc(((size_t)maxk + 1) * sizeof(double));
  b.kids = tl_xmalloc(((size_t)maxk + 1) * sizeof(uint32_t));
  first = tl_xmalloc(((size_t)m->n_scc + 1) * sizeof(uint32_t));
  next = tl_xmalloc(((size_t)nc + 1) * sizeof(uint32_t));
  left = tl_xmalloc(((size_t)nn + 1) * sizeof(uint32_t));
  lb = tl_xmalloc(((size_t)nc + 1) * sizeof(double));
  done = tl_xcalloc((size_t)nc + 1, 1);
  if (!b.reach || !b.uf || !b.gmax || !b.kids || !first || !next || !left || !lb || !done ||
      !ex_parents(g, &pstart, &par))
    goto out;
  /* Members of each SCC; SCCs in id order see their successors done. */
  for (uint32_t s = 0; s < m->n_scc; s++) first[s] = EX_NONE;
  for (uint32_t c = 0; c < nc; c++)
    if (m->live[c]) next[c] = first[m->scc[c]], first[m->scc[c]] = c;
  for (uint32_t s = 0; s < m->n_scc; s++) {
    uint64_t *r = b.reach + (size_t)s * b.words;
    for (uint32_t c = first[s]; c != EX_NONE; c = next[c]) {
      r[c / 64] |= (uint64_t)1 << (c % 64);
      for (uint32_t n = g->class_start[c]; n < g->class_start[c + 1]; n++) {
        if (!m->cand[n]) continue;
        for (uint32_t k = g->child_start[n]; k < g->child_start[n + 1]; k++) {
          uint32_t t = m->scc[g->child[k]];
          if (t == s) continue;
          const uint64_t *rt = b.reach + (size_t)t * b.words;
          for (size_t w = 0; w < b.words; w++) r[w] |= rt[w];
        }
      }
    }
  }
  /* Knuth's pass, as in tree.c, over candidate nodes of live classes. */
  for (uint32_t c = 0; c < nc; c++) lb[c] = INFINITY;
  for (uint32_t n = 0; n < nn; n++) {
    left[n] = EX_NONE;
    if (!m->cand[n] || !m->live[g->node_class[n]]) continue;
    left[n] = g->child_start[n + 1] - g->child_start[n];
    if (!left[n] && !ex_heap_push(&h, g->node_cost[n], n)) goto out;
  }
  double key;
  uint32_t n;
  while (ex_heap_pop(&h, &key, &n)) {
    uint32_t c = g->node_class[n];
    if (done[c]) continue;
    done[c] = 1, lb[c] = key;
    for (uint32_t k = pstart[c]; k < pstart[c + 1]; k++) {
      uint32_t p = par[k];
      if (left[p] == EX_NONE || done[g->node_class[p]] || --left[p] != 0) continue;
      double v;
      if (g->child_start[p + 1] - g->child_start[p] > EX_LB_GROUP_MAX) {
        v = 0; /* too many children to group: the largest alone */
        for (uint32_t j = g->child_start[p]; j < g->child_start[p + 1]; j++)
          v = lb[g->child[j]] > v ? lb[g->child[j]] : v;
      } else {
        v = group_sum(&b, m, b.kids, distinct_children(g, &b, p), lb);
      }
      if (!ex_heap_push(&h, g->node_cost[p] + v, p)) goto out;
    }
  }
  result = group_sum(&b, m, g->roots, g->n_roots, lb);
out:
  ex_heap_free(&h);
  tl_free(b.reach), tl_free(b.uf), tl_free(b.gmax), tl_free(b.kids), tl_free(first), tl_free(next), tl_free(left),
      tl_free(lb);
  tl_free(done);
  tl_free(pstart), tl_free(par);
  return result;
}
