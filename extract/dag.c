/* dag.c - DAG-aware extraction: minimise the cost of the distinct chosen
 * nodes, so a class shared by several parents is paid once.
 *
 * Exact DAG extraction is NP-hard, so this is a heuristic in three steps:
 *
 * 1. Greedy DAG with cost sets. For a settled class c, S(c) is the set of
 *    classes its current sub-extraction uses and D(c) the sum of their chosen
 *    nodes' costs -- the exact DAG cost of extracting c alone. A node's
 *    candidate value is cost(node) + cost of the union of its children's
 *    sets: sharing between siblings is seen. Classes are settled in
 *    increasing candidate value, Knuth/Dijkstra style, exactly like tree.c;
 *    a node is a candidate only when all its children are settled, so the
 *    choice is acyclic by construction and every S(c) is consistent with the
 *    final choice (no stale sets, unlike fixpoint formulations of the same
 *    idea). Sets are bitsets over classes: unions are word ORs and only the
 *    newly added bits are summed.
 * 2. Keep the better (by true DAG cost) of that and the tree-greedy choice,
 *    so the result is never worse than tree-greedy's DAG cost.
 * 3. Local search on the whole solution: for each used class, try each
 *    alternative node, score it by the exact change in DAG cost (classes the
 *    switch makes unreachable are refunded, newly needed ones paid at their
 *    current choice), reject switches that would close a cycle, and apply
 *    improving ones; repeat a few rounds. */
#include "extract/ex_internal.h"

#include <math.h>
#include <string.h>

/* Bitsets above this many bytes are not attempted (quadratic memory);
 * step 1 is skipped and the tree choice seeds the local search. */
#define EX_DAG_BITSET_MAX ((size_t)512 << 20)

typedef struct dagsets {
  const ex_graph *g;
  size_t words;   /* 64-bit words per set */
  uint64_t *bits; /* [n_classes * words] */
  uint64_t *tmp;  /* [words] scratch union */
  double *cc;     /* cost of the chosen node of each settled class */
  uint32_t *size; /* |S(c)| */
  double *val;    /* D(c) */
  /* Word range [lo, hi) outside which S(c) is empty. Sets are unions of
   * their children's sets, and e-graphs number related classes close
   * together, so the ranges are usually far narrower than the universe:
   * unions, copies and popcounts only walk the range. tmp is kept zero
   * outside [tlo, thi), the range of the last union. */
  uint32_t *lo, *hi;
  uint32_t tlo, thi;
} dagsets;

/* Union of the children's sets of node n into ds->tmp; returns its cost
 * plus cost(n). The largest child set is copied and the others add only
 * their new bits, so a chain costs O(words) per node. */
static double node_union(dagsets *ds, uint32_t n)
{
  const ex_graph *g = ds->g;
  uint32_t b = g->child_start[n], e = g->child_start[n + 1];
  memset(ds->tmp + ds->tlo, 0, (size_t)(ds->thi - ds->tlo) * sizeof(uint64_t));
  ds->tlo = ds->thi = 0;
  if (b == e)
    return g->node_cost[n];
  uint32_t big = g->child[b], lo = UINT32_MAX, hi = 0;
  for (uint32_t k = b; k < e; k++) {
    uint32_t c = g->child[k];
    if (ds->size[c] > ds->size[big])
      big = c;
    if (ds->lo[c] < lo)
      lo = ds->lo[c];
    if (ds->hi[c] > hi)
      hi = ds->hi[c];
  }
  ds->tlo = lo, ds->thi = hi;
  memcpy(ds->tmp + ds->lo[big], ds->bits + (size_t)big * ds->words + ds->lo[big],
         (size_t)(ds->hi[big] - ds->lo[big]) * sizeof(uint64_t));
  double v = g->node_cost[n] + ds->val[big];
  for (uint32_t k = b; k < e; k++) {
    uint32_t c = g->child[k];
    if (c == big)
      continue;
    const uint64_t *s = ds->bits + (size_t)c * ds->words;
    for (size_t w = ds->lo[c]; w < ds->hi[c]; w++) {
      uint64_t nw = s[w] & ~ds->tmp[w];
      if (!nw)
        continue;
      ds->tmp[w] |= nw;
      while (nw) {
        v += ds->cc[w * 64 + (size_t)__builtin_ctzll(nw)];
        nw &= nw - 1;
      }
    }
  }
  return v;
}

/* Step 1. Fills choice[] for all extractable classes. Returns EX_ERR_NOMEM
 * also when the bitsets would be too large (the caller then falls back). */
static ex_status greedy_sets(const ex_graph *g, uint32_t *choice)
{
  uint32_t nc = g->n_classes, nn = g->n_nodes;
  dagsets ds = {.g = g, .words = ((size_t)nc + 63) / 64};
  if ((size_t)nc * ds.words * 8 > EX_DAG_BITSET_MAX)
    return EX_ERR_NOMEM;
  uint32_t *pstart = NULL, *par = NULL;
  uint32_t *left = malloc(((size_t)nn + 1) * sizeof(uint32_t));
  ds.bits = calloc((size_t)nc * ds.words + 1, sizeof(uint64_t));
  ds.tmp = calloc(ds.words + 1, sizeof(uint64_t));
  ds.cc = calloc((size_t)nc + 1, sizeof(double));
  ds.size = calloc((size_t)nc + 1, sizeof(uint32_t));
  ds.val = calloc((size_t)nc + 1, sizeof(double));
  ds.lo = calloc((size_t)nc + 1, sizeof(uint32_t));
  ds.hi = calloc((size_t)nc + 1, sizeof(uint32_t));
  ex_heap h = {0};
  ex_status st = EX_ERR_NOMEM;
  if (!left || !ds.bits || !ds.tmp || !ds.cc || !ds.size || !ds.val || !ds.lo || !ds.hi ||
      !ex_parents(g, &pstart, &par))
    goto out;
  for (uint32_t c = 0; c < nc; c++)
    choice[c] = EX_NONE;
  for (uint32_t n = 0; n < nn; n++) {
    left[n] = g->child_start[n + 1] - g->child_start[n];
    if (!left[n] && !ex_heap_push(&h, g->node_cost[n], n))
      goto out;
  }
  double key;
  uint32_t n;
  while (ex_heap_pop(&h, &key, &n)) {
    uint32_t c = g->node_class[n];
    if (choice[c] != EX_NONE)
      continue;
    choice[c] = n;
    ds.cc[c] = g->node_cost[n];
    ds.val[c] = node_union(&ds, n); /* includes cost(n) */
    uint64_t *s = ds.bits + (size_t)c * ds.words;
    uint32_t lo = ds.tlo, hi = ds.thi, cw = c / 64;
    if (lo == hi)
      lo = cw, hi = cw + 1;
    else if (cw < lo)
      lo = cw;
    else if (cw >= hi)
      hi = cw + 1;
    memcpy(s + ds.tlo, ds.tmp + ds.tlo, (size_t)(ds.thi - ds.tlo) * sizeof(uint64_t));
    s[cw] |= (uint64_t)1 << (c % 64);
    ds.lo[c] = lo, ds.hi[c] = hi;
    uint32_t pop = 0;
    for (size_t w = lo; w < hi; w++)
      pop += (uint32_t)__builtin_popcountll(s[w]);
    ds.size[c] = pop;
    for (uint32_t k = pstart[c]; k < pstart[c + 1]; k++) {
      uint32_t p = par[k];
      if (choice[g->node_class[p]] == EX_NONE && --left[p] == 0 &&
          !ex_heap_push(&h, node_union(&ds, p), p))
        goto out;
    }
  }
  st = EX_OK;
out:
  ex_heap_free(&h);
  free(left), free(pstart), free(par);
  free(ds.bits), free(ds.tmp), free(ds.cc), free(ds.size), free(ds.val);
  free(ds.lo), free(ds.hi);
  return st;
}

/* ---- step 3: local search ------------------------------------------------ */

typedef struct search {
  const ex_graph *g;
  uint32_t *choice; /* full: every extractable class has a node */
  uint32_t *ref;    /* chosen edges (with multiplicity) into each class, +1 for roots */
  uint32_t *h;      /* height of each class in the full choice graph */
  uint32_t *stk, *log, nlog;
  uint32_t *mark, stamp;
  size_t work;      /* classes touched so far, bounded by the budget */
} search;

/* Heights over the full choice graph (acyclic), iterative post-order. */
static void heights(search *s)
{
  const ex_graph *g = s->g;
  uint32_t nc = g->n_classes;
  for (uint32_t c = 0; c < nc; c++)
    s->h[c] = EX_NONE;
  for (uint32_t r = 0; r < nc; r++) {
    if (s->h[r] != EX_NONE || s->choice[r] == EX_NONE)
      continue;
    uint32_t sp = 0;
    s->stk[sp++] = r;
    while (sp) {
      uint32_t c = s->stk[sp - 1], n = s->choice[c], hmax = 0;
      bool ready = true;
      for (uint32_t k = g->child_start[n]; k < g->child_start[n + 1]; k++) {
        uint32_t d = g->child[k];
        if (s->h[d] == EX_NONE) {
          ready = false;
          s->stk[sp++] = d;
        } else if (s->h[d] + 1 > hmax) {
          hmax = s->h[d] + 1;
        }
      }
      if (ready) {
        s->h[c] = hmax;
        sp--;
      }
      s->work++;
    }
  }
}

/* Can c be reached from the children of node n through chosen edges? */
static bool reaches(search *s, uint32_t n, uint32_t c)
{
  const ex_graph *g = s->g;
  uint32_t sp = 0;
  s->stamp++;
  for (uint32_t k = g->child_start[n]; k < g->child_start[n + 1]; k++) {
    uint32_t d = g->child[k];
    if (s->h[d] >= s->h[c] && s->mark[d] != s->stamp)
      s->mark[d] = s->stamp, s->stk[sp++] = d;
  }
  while (sp) {
    uint32_t x = s->stk[--sp];
    s->work++;
    if (x == c)
      return true;
    uint32_t m = s->choice[x];
    for (uint32_t k = g->child_start[m]; k < g->child_start[m + 1]; k++) {
      uint32_t d = g->child[k];
      /* Heights strictly decrease along edges: below h[c], c is unreachable. */
      if (s->h[d] >= s->h[c] && s->mark[d] != s->stamp)
        s->mark[d] = s->stamp, s->stk[sp++] = d;
    }
  }
  return false;
}

/* Adds (dir = +1) or removes (dir = -1) the references of node n's
 * children, cascading into classes that become used or unused. Returns the
 * change in DAG cost. When log is on, every ref change is recorded so that
 * undo() can restore it. */
static double cascade(search *s, uint32_t n, int dir, bool log)
{
  const ex_graph *g = s->g;
  double delta = 0;
  uint32_t sp = 0;
  s->stk[sp++] = n;
  while (sp) {
    uint32_t m = s->stk[--sp];
    for (uint32_t k = g->child_start[m]; k < g->child_start[m + 1]; k++) {
      uint32_t d = g->child[k];
      s->work++;
      if (log)
        s->log[s->nlog++] = d;
      if (dir > 0 ? s->ref[d]++ == 0 : --s->ref[d] == 0) {
        delta += dir * g->node_cost[s->choice[d]];
        s->stk[sp++] = s->choice[d];
      }
    }
  }
  return delta;
}

/* Reverts logged changes made by cascade(+1) then cascade(-1). */
static void undo(search *s, uint32_t n_add)
{
  for (uint32_t i = 0; i < s->nlog; i++) {
    if (i < n_add)
      s->ref[s->log[i]]--;
    else
      s->ref[s->log[i]]++;
  }
  s->nlog = 0;
}

/* Improves choice[] in place; never increases the DAG cost. */
static ex_status local_search(const ex_graph *g, uint32_t *choice)
{
  uint32_t nc = g->n_classes;
  size_t ne = g->child_start[g->n_nodes];
  search s = {.g = g, .choice = choice};
  s.ref = calloc((size_t)nc + 1, sizeof(uint32_t));
  s.h = malloc(((size_t)nc + 1) * sizeof(uint32_t));
  s.mark = calloc((size_t)nc + 1, sizeof(uint32_t));
  /* Stack and log: a cascade touches each class once per incoming edge. */
  s.stk = malloc((ne + nc + 2) * sizeof(uint32_t));
  s.log = malloc((2 * ne + 2) * sizeof(uint32_t));
  ex_status st = EX_ERR_NOMEM;
  if (!s.ref || !s.h || !s.mark || !s.stk || !s.log)
    goto out;
  for (uint32_t r = 0; r < g->n_roots; r++)
    if (s.ref[g->roots[r]]++ == 0)
      cascade(&s, choice[g->roots[r]], +1, false);
  heights(&s);
  /* Budget: a few dozen sweeps' worth of the graph; keeps the worst case
   * near-linear (each evaluation may cascade through a large subgraph). */
  size_t budget = 40 * (ne + g->n_nodes + nc) + 100000;
  bool improved = true;
  for (int round = 0; improved && round < 8 && s.work < budget; round++) {
    improved = false;
    for (uint32_t c = 0; c < nc && s.work < budget; c++) {
      if (!s.ref[c])
        continue;
      uint32_t cur = choice[c], best = EX_NONE;
      double best_delta = -1e-9 * (1 + fabs(g->node_cost[cur]));
      for (uint32_t n = g->class_start[c]; n < g->class_start[c + 1]; n++) {
        if (n == cur)
          continue;
        bool usable = true;
        for (uint32_t k = g->child_start[n]; k < g->child_start[n + 1] && usable; k++)
          usable = choice[g->child[k]] != EX_NONE && g->child[k] != c;
        if (!usable || reaches(&s, n, c))
          continue;
        s.nlog = 0;
        double delta = g->node_cost[n] - g->node_cost[cur];
        delta += cascade(&s, n, +1, true);
        uint32_t n_add = s.nlog;
        delta += cascade(&s, cur, -1, true);
        undo(&s, n_add);
        if (delta < best_delta)
          best_delta = delta, best = n;
      }
      if (best != EX_NONE) {
        cascade(&s, best, +1, false);
        cascade(&s, cur, -1, false);
        choice[c] = best;
        heights(&s);
        improved = true;
      }
    }
  }
  st = EX_OK;
out:
  free(s.ref), free(s.h), free(s.mark), free(s.stk), free(s.log);
  return st;
}

ex_status ex_dag_choice(const ex_graph *g, uint32_t *choice, ex_diag *d)
{
  uint32_t nc = g->n_classes;
  uint32_t *alt = malloc(((size_t)nc + 1) * sizeof(uint32_t));
  double *tc = malloc(((size_t)nc + 1) * sizeof(double));
  ex_status st = EX_ERR_NOMEM;
  if (!alt || !tc)
    goto out;
  if ((st = ex_tree_choice(g, choice, tc)) != EX_OK)
    goto out;
  /* A root without a choice: nothing to improve; ex_extract reports it. */
  for (uint32_t r = 0; r < g->n_roots; r++)
    if (choice[g->roots[r]] == EX_NONE)
      goto out;
  if (greedy_sets(g, alt) == EX_OK && ex_dag_cost(g, alt) < ex_dag_cost(g, choice))
    memcpy(choice, alt, (size_t)nc * sizeof(uint32_t));
  st = local_search(g, choice);
out:
  free(alt), free(tc);
  if (st == EX_ERR_NOMEM)
    ex_fail(d, st, "out of memory in DAG extraction");
  return st;
}
