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
 *    idea). Sets are bitsets over the classes that can be shared (the
 *    others' costs are folded into their one parent, see dagsets), stored
 *    over their word range only; a node's value is computed once, when its
 *    last child settles, by reading its children's sets, and a set is
 *    written once, when its class settles.
 * 2. Keep the better (by true DAG cost) of that and the tree-greedy choice,
 *    so the result is never worse than tree-greedy's DAG cost.
 * 3. Local search on the whole solution: for each used class, try each
 *    alternative node, score it by the exact change in DAG cost (classes the
 *    switch makes unreachable are refunded, newly needed ones paid at their
 *    current choice), reject switches that would close a cycle, and apply
 *    improving ones; repeat a few rounds. A cheap bound from tree costs
 *    skips switches that cannot win before they are scored, and after a
 *    switch only the classes above it are brought up to date. */
#include "extract/ex_internal.h"
#include "util/alloc.h"

#include <math.h>
#include <string.h>

/* The sets' arena may not grow beyond this many bytes (in the worst case
 * the sets are quadratic); past it, step 1 is abandoned and the tree choice
 * seeds the local search. */
#define EX_DAG_SETS_MAX ((size_t)512 << 20)

/* Only classes that can be shared need a bit. A class with one parent
 * occurrence in the whole e-graph ("private") is in a sub-extraction exactly
 * when that parent node is, so no union can see it twice: its cost is folded
 * into the owner of that parent node instead. own(c) is the cost of c's
 * chosen node plus the own costs of its private children, and
 *   D(c) = [c private] own(c) + sum of own(e) over the shared e in S(c),
 * where S(c) is the set of shared classes in c's sub-extraction (c included
 * when shared). On tree-like parts of an e-graph most classes are private
 * (two thirds on herbie), so the sets are that much smaller. */
typedef struct dagsets {
  const ex_graph *g;
  uint32_t *bit; /* [n_classes] bit of a shared class, EX_NONE for a private one */
  uint32_t *cls; /* [shared classes] the class of each bit */
  /* S(c) is stored only over its word range [lo[c], hi[c]): outside it the
   * set is empty. Sets are unions of their children's sets, and e-graphs
   * number related classes close together, so the ranges are usually
   * narrower than the universe. Word w of S(c) is arena[off[c] + w - lo[c]];
   * a class gets its words when it settles, so memory is the sum of the
   * ranges, and only what is written is touched. */
  uint64_t *arena;
  size_t used, cap;
  size_t *off;
  uint32_t *lo, *hi;
  uint64_t *tmp; /* [universe words] scratch, kept zero between uses */
  double *own;   /* own(c) of each settled class */
  double *val;   /* D(c) */
} dagsets;

static bool is_private(const dagsets *ds, uint32_t c) { return ds->bit[c] == EX_NONE; }

/* Sum of own() over the classes whose bits are set in word w. */
static double bits_cost(const dagsets *ds, size_t w, uint64_t bits) {
  double v = 0;
  while (bits) {
    v += ds->own[ds->cls[w * 64 + (size_t)__builtin_ctzll(bits)]];
    bits &= bits - 1;
  }
  return v;
}

/* Word w of S(c); zero outside its range. */
static uint64_t set_word(const dagsets *ds, uint32_t c, size_t w) {
  return w >= ds->lo[c] && w < ds->hi[c] ? ds->arena[ds->off[c] + w - ds->lo[c]] : 0;
}

/* The value of node n: the DAG cost of its sub-extraction, cost(n) plus the
 * union of its children's. This is called once per node, when its last
 * child settles, and only reads: the widest child is taken whole through
 * D, the private children add their own cost, and the other children add
 * the shared classes the widest lacks. With one such child (the common
 * binary case) that is a single pass over its range; with more, they are
 * merged in tmp so that a class two of them share is paid once. */
static double node_value(dagsets *ds, uint32_t n) {
  const ex_graph *g = ds->g;
  uint32_t b = g->child_start[n], e = g->child_start[n + 1];
  if (b == e) return g->node_cost[n];
  uint32_t big = g->child[b], others = 0, other = EX_NONE;
  for (uint32_t k = b + 1; k < e; k++) {
    uint32_t c = g->child[k];
    if (ds->hi[c] - ds->lo[c] > ds->hi[big] - ds->lo[big]) big = c;
  }
  double v = g->node_cost[n] + ds->val[big];
  for (uint32_t k = b; k < e; k++) {
    uint32_t c = g->child[k];
    if (c == big) continue;
    /* A private child occurs once in the whole graph, so only here. */
    if (is_private(ds, c)) v += ds->own[c];
    if (ds->lo[c] < ds->hi[c] && c != other) others++, other = c;
  }
  if (others == 0) return v;
  if (others == 1) {
    const uint64_t *so = ds->arena + ds->off[other] - ds->lo[other];
    for (size_t w = ds->lo[other]; w < ds->hi[other]; w++) {
      uint64_t nw = so[w] & ~set_word(ds, big, w);
      if (nw) v += bits_cost(ds, w, nw);
    }
    return v;
  }
  uint32_t tlo = UINT32_MAX, thi = 0;
  for (uint32_t k = b; k < e; k++) {
    uint32_t c = g->child[k];
    if (c == big || ds->lo[c] >= ds->hi[c]) continue;
    const uint64_t *so = ds->arena + ds->off[c] - ds->lo[c];
    for (size_t w = ds->lo[c]; w < ds->hi[c]; w++) {
      uint64_t nw = so[w] & ~ds->tmp[w] & ~set_word(ds, big, w);
      ds->tmp[w] |= so[w];
      if (nw) v += bits_cost(ds, w, nw);
    }
    if (ds->lo[c] < tlo) tlo = ds->lo[c];
    if (ds->hi[c] > thi) thi = ds->hi[c];
  }
  memset(ds->tmp + tlo, 0, (size_t)(thi - tlo) * sizeof(uint64_t));
  return v;
}

/* Settles class c with node n: S(c) = the union of the children's sets,
 * plus c when shared, in fresh arena words; own(c) and D(c) (the key n was
 * settled with). False when the arena cannot grow. */
static bool settle(dagsets *ds, uint32_t c, uint32_t n, double key) {
  const ex_graph *g = ds->g;
  uint32_t lo = UINT32_MAX, hi = 0;
  if (!is_private(ds, c)) lo = ds->bit[c] / 64, hi = lo + 1;
  double own = g->node_cost[n];
  for (uint32_t k = g->child_start[n]; k < g->child_start[n + 1]; k++) {
    uint32_t d = g->child[k];
    if (is_private(ds, d)) own += ds->own[d];
    if (ds->lo[d] >= ds->hi[d]) continue;
    if (ds->lo[d] < lo) lo = ds->lo[d];
    if (ds->hi[d] > hi) hi = ds->hi[d];
  }
  ds->own[c] = own;
  ds->val[c] = key;
  if (lo >= hi) {
    ds->off[c] = 0, ds->lo[c] = ds->hi[c] = 0; /* empty */
    return true;
  }
  size_t need = ds->used + (hi - lo);
  if (need > ds->cap) {
    size_t nc = ds->cap ? ds->cap : 4096;
    while (nc < need) nc *= 2;
    if (nc * sizeof(uint64_t) > EX_DAG_SETS_MAX) return false;
    uint64_t *a = tl_xrealloc(ds->arena, nc * sizeof(uint64_t));
    if (!a) return false;
    ds->arena = a, ds->cap = nc;
  }
  uint64_t *s = ds->arena + ds->used - lo;
  memset(s + lo, 0, (hi - lo) * sizeof(uint64_t));
  for (uint32_t k = g->child_start[n]; k < g->child_start[n + 1]; k++) {
    uint32_t d = g->child[k];
    const uint64_t *sd = ds->arena + ds->off[d] - ds->lo[d];
    for (size_t w = ds->lo[d]; w < ds->hi[d]; w++) s[w] |= sd[w];
  }
  if (!is_private(ds, c)) s[ds->bit[c] / 64] |= (uint64_t)1 << (ds->bit[c] % 64);
  ds->off[c] = ds->used, ds->lo[c] = lo, ds->hi[c] = hi;
  ds->used = need;
  return true;
}

/* Step 1. Fills choice[] for all extractable classes. Returns EX_ERR_NOMEM
 * also when the sets would be too large (the caller then falls back). */
static ex_status greedy_sets(const ex_graph *g, const uint32_t *pstart, const uint32_t *par, uint32_t *choice) {
  uint32_t nc = g->n_classes, nn = g->n_nodes;
  dagsets ds = {.g = g};
  uint32_t *left = tl_xmalloc(((size_t)nn + 1) * sizeof(uint32_t));
  ds.bit = tl_xmalloc(((size_t)nc + 1) * sizeof(uint32_t));
  ds.cls = tl_xmalloc(((size_t)nc + 1) * sizeof(uint32_t));
  ds.off = tl_xmalloc(((size_t)nc + 1) * sizeof(size_t));
  ds.lo = tl_xmalloc(((size_t)nc + 1) * sizeof(uint32_t));
  ds.hi = tl_xmalloc(((size_t)nc + 1) * sizeof(uint32_t));
  ds.own = tl_xmalloc(((size_t)nc + 1) * sizeof(double));
  ds.val = tl_xmalloc(((size_t)nc + 1) * sizeof(double));
  ex_heap h = {0};
  ex_status st = EX_ERR_NOMEM;
  if (!left || !ds.bit || !ds.cls || !ds.off || !ds.lo || !ds.hi || !ds.own || !ds.val) goto out;
  /* In-degree counts occurrences, so a node with the same child twice
   * makes it shared. */
  uint32_t shared = 0;
  for (uint32_t c = 0; c < nc; c++) {
    ds.bit[c] = EX_NONE;
    if (pstart[c + 1] - pstart[c] != 1) ds.cls[shared] = c, ds.bit[c] = shared++;
  }
  ds.tmp = tl_xcalloc((size_t)shared / 64 + 2, sizeof(uint64_t));
  if (!ds.tmp) goto out;
  for (uint32_t c = 0; c < nc; c++) choice[c] = EX_NONE;
  for (uint32_t n = 0; n < nn; n++) {
    left[n] = g->child_start[n + 1] - g->child_start[n];
    if (!left[n] && !ex_heap_push(&h, g->node_cost[n], n)) goto out;
  }
  double key;
  uint32_t n;
  while (ex_heap_pop(&h, &key, &n)) {
    uint32_t c = g->node_class[n];
    if (choice[c] != EX_NONE) continue;
    choice[c] = n;
    if (!settle(&ds, c, n, key)) goto out;
    for (uint32_t k = pstart[c]; k < pstart[c + 1]; k++) {
      uint32_t p = par[k];
      if (choice[g->node_class[p]] == EX_NONE && --left[p] == 0 && !ex_heap_push(&h, node_value(&ds, p), p)) goto out;
    }
  }
  st = EX_OK;
out:
  ex_heap_free(&h);
  tl_free(left), tl_free(ds.bit), tl_free(ds.cls), tl_free(ds.arena), tl_free(ds.off), tl_free(ds.lo), tl_free(ds.hi);
  tl_free(ds.tmp), tl_free(ds.own), tl_free(ds.val);
  return st;
}

/* ---- step 3: local search ------------------------------------------------ */

typedef struct search {
  const ex_graph *g;
  const uint32_t *pstart, *par; /* parents index */
  uint32_t *choice;             /* full: every extractable class has a node */
  uint32_t *ref;                /* chosen edges (with multiplicity) into each class, +1 for roots */
  /* Heights: strictly decreasing along chosen edges (exact after
   * heights(), only that after update_up()), so that reaches() can stop
   * below the class it looks for. */
  uint32_t *h;
  /* Tree cost of each class under the current choice, split into its
   * positive and negative parts (a node's cost counts in one of them). */
  double *tpos, *tneg;
  uint32_t *stk, *log, nlog;
  uint32_t *mark, stamp;
  size_t work; /* classes touched so far, bounded by the budget */
} search;

/* Heights and split tree costs over the full choice graph (acyclic),
 * iterative post-order. */
static void heights(search *s) {
  const ex_graph *g = s->g;
  uint32_t nc = g->n_classes;
  for (uint32_t c = 0; c < nc; c++) s->h[c] = EX_NONE;
  for (uint32_t r = 0; r < nc; r++) {
    if (s->h[r] != EX_NONE || s->choice[r] == EX_NONE) continue;
    uint32_t sp = 0;
    s->stk[sp++] = r;
    while (sp) {
      uint32_t c = s->stk[sp - 1], n = s->choice[c], hmax = 0;
      double tp = g->node_cost[n] > 0 ? g->node_cost[n] : 0;
      double tn = g->node_cost[n] < 0 ? g->node_cost[n] : 0;
      bool ready = true;
      for (uint32_t k = g->child_start[n]; k < g->child_start[n + 1]; k++) {
        uint32_t d = g->child[k];
        if (s->h[d] == EX_NONE) {
          ready = false;
          s->stk[sp++] = d;
        } else {
          if (s->h[d] + 1 > hmax) hmax = s->h[d] + 1;
          tp += s->tpos[d], tn += s->tneg[d];
        }
      }
      if (ready) {
        s->h[c] = hmax;
        s->tpos[c] = tp, s->tneg[c] = tn;
        sp--;
      }
      s->work++;
    }
  }
}

/* After class c switched node: restores what reaches() and the bounds rely
 * on, walking up from c only as far as something loosens. Heights must
 * stay strictly decreasing along chosen edges, tpos an upper and tneg a
 * lower bound; a tightening need not be passed on (the parents' stale
 * values still satisfy that), so a switch deep in a large graph usually
 * touches a handful of classes instead of the whole graph. When the walk
 * grows past the graph's size, one full pass is cheaper. */
static void update_up(search *s, uint32_t c) {
  const ex_graph *g = s->g;
  size_t cap = (size_t)g->child_start[g->n_nodes] + g->n_classes + 2;
  size_t limit = cap, steps = 0, sp = 0;
  s->stk[sp++] = c;
  while (sp) {
    uint32_t x = s->stk[--sp], n = s->choice[x], h = 0;
    if (++steps > limit) {
      heights(s);
      return;
    }
    s->work++;
    double tp = g->node_cost[n] > 0 ? g->node_cost[n] : 0;
    double tn = g->node_cost[n] < 0 ? g->node_cost[n] : 0;
    for (uint32_t k = g->child_start[n]; k < g->child_start[n + 1]; k++) {
      uint32_t d = g->child[k];
      if (s->h[d] + 1 > h) h = s->h[d] + 1;
      tp += s->tpos[d], tn += s->tneg[d];
    }
    bool looser = h > s->h[x] || tp > s->tpos[x] || tn < s->tneg[x];
    s->h[x] = h, s->tpos[x] = tp, s->tneg[x] = tn;
    if (!looser) continue;
    if (sp + (s->pstart[x + 1] - s->pstart[x]) > cap) {
      heights(s);
      return;
    }
    for (uint32_t k = s->pstart[x]; k < s->pstart[x + 1]; k++) {
      uint32_t p = s->par[k], pc = g->node_class[p];
      if (s->choice[pc] == p) s->stk[sp++] = pc;
    }
  }
}

/* Can c be reached from the children of node n through chosen edges? */
static bool reaches(search *s, uint32_t n, uint32_t c) {
  const ex_graph *g = s->g;
  uint32_t sp = 0;
  s->stamp++;
  for (uint32_t k = g->child_start[n]; k < g->child_start[n + 1]; k++) {
    uint32_t d = g->child[k];
    if (s->h[d] >= s->h[c] && s->mark[d] != s->stamp) s->mark[d] = s->stamp, s->stk[sp++] = d;
  }
  while (sp) {
    uint32_t x = s->stk[--sp];
    s->work++;
    if (x == c) return true;
    uint32_t m = s->choice[x];
    for (uint32_t k = g->child_start[m]; k < g->child_start[m + 1]; k++) {
      uint32_t d = g->child[k];
      /* Heights strictly decrease along edges: below h[c], c is unreachable. */
      if (s->h[d] >= s->h[c] && s->mark[d] != s->stamp) s->mark[d] = s->stamp, s->stk[sp++] = d;
    }
  }
  return false;
}

/* Adds (dir = +1) or removes (dir = -1) the references of node n's
 * children, cascading into classes that become used or unused. Returns the
 * change in DAG cost. When log is on, every ref change is recorded so that
 * undo() can restore it. */
static double cascade(search *s, uint32_t n, int dir, bool log) {
  const ex_graph *g = s->g;
  double delta = 0;
  uint32_t sp = 0;
  s->stk[sp++] = n;
  while (sp) {
    uint32_t m = s->stk[--sp];
    for (uint32_t k = g->child_start[m]; k < g->child_start[m + 1]; k++) {
      uint32_t d = g->child[k];
      s->work++;
      if (log) s->log[s->nlog++] = d;
      if (dir > 0 ? s->ref[d]++ == 0 : --s->ref[d] == 0) {
        delta += dir * g->node_cost[s->choice[d]];
        s->stk[sp++] = s->choice[d];
      }
    }
  }
  return delta;
}

/* Reverts logged changes made by cascade(+1) then cascade(-1). */
static void undo(search *s, uint32_t n_add) {
  for (uint32_t i = 0; i < s->nlog; i++) {
    if (i < n_add)
      s->ref[s->log[i]]--;
    else
      s->ref[s->log[i]]++;
  }
  s->nlog = 0;
}

/* Improves choice[] in place; never increases the DAG cost. */
static ex_status local_search(const ex_graph *g, const uint32_t *pstart, const uint32_t *par, uint32_t *choice) {
  uint32_t nc = g->n_classes;
  size_t ne = g->child_start[g->n_nodes];
  search s = {.g = g, .pstart = pstart, .par = par, .choice = choice};
  s.ref = tl_xcalloc((size_t)nc + 1, sizeof(uint32_t));
  s.h = tl_xmalloc(((size_t)nc + 1) * sizeof(uint32_t));
  s.tpos = tl_xmalloc(((size_t)nc + 1) * sizeof(double));
  s.tneg = tl_xmalloc(((size_t)nc + 1) * sizeof(double));
  s.mark = tl_xcalloc((size_t)nc + 1, sizeof(uint32_t));
  /* Stack and log: a cascade touches each class once per incoming edge. */
  s.stk = tl_xmalloc((ne + nc + 2) * sizeof(uint32_t));
  s.log = tl_xmalloc((2 * ne + 2) * sizeof(uint32_t));
  ex_status st = EX_ERR_NOMEM;
  if (!s.ref || !s.h || !s.tpos || !s.tneg || !s.mark || !s.stk || !s.log) goto out;
  for (uint32_t r = 0; r < g->n_roots; r++)
    if (s.ref[g->roots[r]]++ == 0) cascade(&s, choice[g->roots[r]], +1, false);
  heights(&s);
  /* Budget: a few dozen sweeps' worth of the graph; keeps the worst case
   * near-linear (each evaluation may cascade through a large subgraph). */
  size_t budget = 40 * (ne + g->n_nodes + nc) + 100000;
  bool improved = true;
  for (int round = 0; improved && round < 8 && s.work < budget; round++) {
    improved = false;
    for (uint32_t c = 0; c < nc && s.work < budget; c++) {
      if (!s.ref[c]) continue;
      uint32_t cur = choice[c], best = EX_NONE;
      double best_delta = -1e-9 * (1 + fabs(g->node_cost[cur]));
      /* Bound before evaluating: a switch refunds at most the positive
       * part of what cur's subterms cost, and pays at least the negative
       * part of what n's subterms cost (tree costs over-count shared
       * classes, so both bounds hold). A switch that cannot win even so
       * is skipped, which keeps long chains, where each evaluation would
       * walk everything below, linear. */
      double refund_max = 0;
      for (uint32_t k = g->child_start[cur]; k < g->child_start[cur + 1]; k++) refund_max += s.tpos[g->child[k]];
      for (uint32_t n = g->class_start[c]; n < g->class_start[c + 1]; n++) {
        if (n == cur) continue;
        bool usable = true;
        double add_min = 0;
        for (uint32_t k = g->child_start[n]; k < g->child_start[n + 1] && usable; k++) {
          usable = choice[g->child[k]] != EX_NONE && g->child[k] != c;
          if (usable) add_min += s.tneg[g->child[k]];
        }
        if (!usable || g->node_cost[n] - g->node_cost[cur] + add_min - refund_max >= best_delta) continue;
        if (reaches(&s, n, c)) continue;
        s.nlog = 0;
        double delta = g->node_cost[n] - g->node_cost[cur];
        delta += cascade(&s, n, +1, true);
        uint32_t n_add = s.nlog;
        delta += cascade(&s, cur, -1, true);
        undo(&s, n_add);
        if (delta < best_delta) best_delta = delta, best = n;
      }
      if (best != EX_NONE) {
        cascade(&s, best, +1, false);
        cascade(&s, cur, -1, false);
        choice[c] = best;
        update_up(&s, c);
        improved = true;
      }
    }
  }
  st = EX_OK;
out:
  tl_free(s.ref), tl_free(s.h), tl_free(s.tpos), tl_free(s.tneg), tl_free(s.mark), tl_free(s.stk), tl_free(s.log);
  return st;
}

ex_status ex_dag_improve(const ex_graph *g, uint32_t *choice) {
  uint32_t *pstart = NULL, *par = NULL;
  ex_status st = EX_ERR_NOMEM;
  if (ex_parents(g, &pstart, &par)) st = local_search(g, pstart, par, choice);
  tl_free(pstart), tl_free(par);
  return st;
}

ex_status ex_dag_choice(const ex_graph *g, uint32_t *choice, tl_error *d) {
  uint32_t nc = g->n_classes;
  uint32_t *alt = tl_xmalloc(((size_t)nc + 1) * sizeof(uint32_t));
  double *tc = tl_xmalloc(((size_t)nc + 1) * sizeof(double));
  uint32_t *pstart = NULL, *par = NULL;
  ex_status st = EX_ERR_NOMEM;
  /* One parents index serves the tree pass and steps 1 and 3. */
  if (!alt || !tc || !ex_parents(g, &pstart, &par)) goto out;
  if ((st = ex_tree_choice_par(g, pstart, par, choice, tc)) != EX_OK) goto out;
  /* A root without a choice: nothing to improve; ex_extract reports it. */
  for (uint32_t r = 0; r < g->n_roots; r++)
    if (choice[g->roots[r]] == EX_NONE) goto out;
  if (greedy_sets(g, pstart, par, alt) == EX_OK && ex_dag_cost(g, alt) < ex_dag_cost(g, choice))
    memcpy(choice, alt, (size_t)nc * sizeof(uint32_t));
  st = local_search(g, pstart, par, choice);
out:
  tl_free(alt), tl_free(tc), tl_free(pstart), tl_free(par);
  if (st == EX_ERR_NOMEM) ex_fail(d, st, "out of memory in DAG extraction");
  return st;
}
