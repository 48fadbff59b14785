/* exact.c - optimal DAG extraction as a 0-1 integer program, solved by CBC
 * (COIN-OR Branch and Cut, Debian coinor-libcbc-dev, through its C API).
 *
 * Model. x_n = 1 when node n is chosen; X_c = sum_{n in c} x_n says whether
 * class c is chosen.
 *   X_c <= 1                          every class at most one node (= 1 for roots)
 *   sum_{n in c, d in ch(n)} x_n <= X_d
 *                                     for every class c and child class d of
 *                                     its nodes: a chosen node's children are
 *                                     chosen. Since c chooses at most one
 *                                     node, the sum over c's nodes is bounded
 *                                     at once: one row per (class, child
 *                                     class) instead of one per (node, child),
 *                                     and a tighter relaxation.
 *   min sum cost(n) x_n
 * Acyclicity is added lazily. The model is solved without it; when the
 * solution has a cycle of classes c_0 -> c_1 -> ... -> c_{k-1} -> c_0, with
 * y_i = sum of x_n over the nodes of c_i that have c_{i+1} as a child,
 *   y_0 + ... + y_{k-1} <= X_{c_1} + ... + X_{c_{k-1}}
 * is added (valid for every acyclic choice: the used edges of the cycle form
 * paths, so they are fewer than the chosen classes on it; unlike
 * "sum y <= k - 1" it also cuts small fractional cycles), and the model is
 * solved again. A solution without a cycle is optimal for the whole problem,
 * because every added row holds for all acyclic choices. Two things keep
 * the rounds few: CBC's cut loop calls back into separate(), which finds
 * the violated rows of its LP solutions by shortest paths, and the cycles
 * of every solution CBC kept, not only the best, are cut after a round.
 * Order variables with big-M rows would make a complete model in one
 * solve, but their LP relaxation is no tighter than no acyclicity rows at
 * all (measured on tensat/bert_acyclic: 0.374 both ways).
 * With negative costs the solver would also like to switch on unreachable
 * classes for their negative cost; for those graphs every non-root class
 * chosen must have a chosen parent node:
 *   X_d <= sum_{n has child d} x_n
 * which, together with acyclicity, makes "chosen" equal "reachable"; cycles
 * are then searched among all chosen classes, not only the reachable ones.
 *
 * Shrinking before solving (all sound for optimality):
 *  - nodes with a child that has no acyclic extraction, or whose child is its
 *    own class, can never be in a valid choice;
 *  - only classes reachable from the roots through remaining nodes matter;
 *  - with costs >= 0, node m is dominated by a node n of the same class with
 *    cost(n) <= cost(m) and children(n) a subset of children(m): swapping m
 *    for n keeps any solution valid and acyclic and never costs more.
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
 * needed at all.
 *
 * The DAG-aware heuristic's answer is handed to CBC as a MIP start, so the
 * incumbent is never worse than it. A solution with cycles is also
 * repaired into an acyclic one (repair()), which becomes the incumbent when
 * it is cheaper. On the time limit, the result is the best acyclic solution
 * seen, with the best lower bound proven (each round's model relaxes the
 * problem, so its bound holds). */
#include "extract/ex_internal.h"

#include <float.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#ifdef EX_HAVE_CBC
#include <Cbc_C_Interface.h>

/* Classes with at most this many nodes get the pairwise dominance check. */
#define EX_DOMINANCE_MAX 256
/* The lower bound keeps one reachable-set bitset per SCC; it is skipped
 * when those would take more than this many bytes. */
#define EX_LB_BITS_MAX ((size_t)64 << 20)
/* Children (or roots) grouped by the lower bound, at most; beyond, the
 * pairwise test would be quadratic. */
#define EX_LB_GROUP_MAX 256
/* At most this many cycle rows are added per round. */
#define EX_CUTS_PER_ROUND 2000

typedef struct model {
  const ex_graph *g;
  uint8_t *cand;     /* [n_nodes] node may be chosen */
  uint8_t *live;     /* [n_classes] class reachable through candidates */
  uint8_t *isroot;   /* [n_classes] */
  uint32_t *col;     /* [n_nodes] column of x_n, EX_NONE when not a candidate */
  uint32_t *scc;     /* [n_classes] SCC id, in completion order (sinks first) */
  uint32_t n_scc;
} model;

/* The model is collected here and handed to CBC in one Cbc_loadProblem:
 * CBC's incremental Cbc_addRow re-packs its matrix on every call (quadratic;
 * minutes on tensat/bert). Rows added for cycles accumulate here too, and
 * each round loads the whole model again. */
typedef struct lp {
  uint32_t ncols, capc, nrows, capr, nz, capz;
  double *clb, *cub, *obj;
  double *rlb, *rub;
  uint32_t *zr, *zc;
  double *zv;
  /* The row being built. */
  int *ri;
  double *rv;
  uint32_t rn, rcap;
  bool oom;
} lp;

static bool lp_grow(void **p, uint32_t *cap, uint32_t need, size_t sz)
{
  if (need <= *cap)
    return true;
  uint32_t nc = *cap ? *cap : 256;
  while (nc < need)
    nc *= 2;
  void *q = realloc(*p, (size_t)nc * sz);
  if (!q)
    return false;
  *p = q;
  *cap = nc;
  return true;
}

/* A 0-1 column with objective coefficient obj. */
static uint32_t lp_col(lp *l, double obj)
{
  uint32_t need = l->ncols + 1, cap = l->capc, c2 = cap, c3 = cap;
  if (!lp_grow((void **)&l->clb, &cap, need, sizeof(double)) ||
      !lp_grow((void **)&l->cub, &c2, need, sizeof(double)) ||
      !lp_grow((void **)&l->obj, &c3, need, sizeof(double))) {
    l->oom = true;
    return 0;
  }
  if (need > l->capc)
    l->capc = cap;
  l->clb[l->ncols] = 0.0, l->cub[l->ncols] = 1.0, l->obj[l->ncols] = obj;
  return l->ncols++;
}

/* Appends coef * x[col] to the row being built. */
static void lp_term(lp *l, uint32_t col, double coef)
{
  uint32_t cap = l->rcap, c2 = cap;
  if (!lp_grow((void **)&l->ri, &cap, l->rn + 1, sizeof(int)) ||
      !lp_grow((void **)&l->rv, &c2, l->rn + 1, sizeof(double))) {
    l->oom = true;
    return;
  }
  l->rcap = cap;
  l->ri[l->rn] = (int)col, l->rv[l->rn++] = coef;
}

/* Ends the row being built: sum (sense 'L' <=, 'G' >=, 'E' =) rhs. Each
 * column must occur once in it. */
static void lp_row(lp *l, char sense, double rhs)
{
  uint32_t k = l->rn;
  l->rn = 0;
  uint32_t need = l->nrows + 1, cap = l->capr, c2 = cap;
  uint32_t nz = l->nz + k, z1 = l->capz, z2 = z1, z3 = z1;
  if (!lp_grow((void **)&l->rlb, &cap, need, sizeof(double)) ||
      !lp_grow((void **)&l->rub, &c2, need, sizeof(double)) ||
      !lp_grow((void **)&l->zr, &z1, nz, sizeof(uint32_t)) ||
      !lp_grow((void **)&l->zc, &z2, nz, sizeof(uint32_t)) ||
      !lp_grow((void **)&l->zv, &z3, nz, sizeof(double))) {
    l->oom = true;
    return;
  }
  if (need > l->capr)
    l->capr = cap;
  if (nz > l->capz)
    l->capz = z1;
  l->rlb[l->nrows] = sense == 'L' ? -DBL_MAX : rhs;
  l->rub[l->nrows] = sense == 'G' ? DBL_MAX : rhs;
  for (uint32_t i = 0; i < k; i++)
    l->zr[l->nz] = l->nrows, l->zc[l->nz] = (uint32_t)l->ri[i], l->zv[l->nz++] = l->rv[i];
  l->nrows++;
}

/* Column-major copy of the triplets, loaded into a new CBC model; with
 * integer false the columns stay continuous (the LP relaxation). */
static Cbc_Model *lp_load(const lp *l, bool integer)
{
  CoinBigIndex *start = calloc((size_t)l->ncols + 2, sizeof *start);
  int *idx = malloc(((size_t)l->nz + 1) * sizeof *idx);
  double *val = malloc(((size_t)l->nz + 1) * sizeof *val);
  Cbc_Model *cbc = NULL;
  if (!start || !idx || !val)
    goto out;
  for (uint32_t i = 0; i < l->nz; i++)
    start[l->zc[i] + 2]++;
  for (uint32_t c = 0; c < l->ncols; c++)
    start[c + 2] += start[c + 1];
  for (uint32_t i = 0; i < l->nz; i++) {
    CoinBigIndex at = start[l->zc[i] + 1]++;
    idx[at] = (int)l->zr[i], val[at] = l->zv[i];
  }
  if (!(cbc = Cbc_newModel()))
    goto out;
  Cbc_loadProblem(cbc, (int)l->ncols, (int)l->nrows, start, idx, val, l->clb, l->cub, l->obj,
                  l->rlb, l->rub);
  for (uint32_t c = 0; c < l->ncols; c++) {
    char nm[24];
    /* Distinct names: CBC's MIP start is resolved through column names. */
    snprintf(nm, sizeof nm, "c%u", c);
    Cbc_setColName(cbc, (int)c, nm);
    if (integer)
      Cbc_setInteger(cbc, (int)c);
  }
out:
  free(start), free(idx), free(val);
  return cbc;
}

static void lp_free(lp *l)
{
  free(l->clb), free(l->cub), free(l->obj), free(l->rlb), free(l->rub);
  free(l->zr), free(l->zc), free(l->zv), free(l->ri), free(l->rv);
}

/* Marks the classes reachable from the roots through candidate nodes. */
static bool mark_live(model *m)
{
  const ex_graph *g = m->g;
  uint32_t *stk = malloc(((size_t)g->n_classes + 1) * sizeof(uint32_t));
  if (!stk)
    return false;
  memset(m->live, 0, g->n_classes);
  uint32_t sp = 0;
  for (uint32_t r = 0; r < g->n_roots; r++)
    if (!m->live[g->roots[r]])
      m->live[g->roots[r]] = 1, stk[sp++] = g->roots[r];
  while (sp) {
    uint32_t c = stk[--sp];
    for (uint32_t n = g->class_start[c]; n < g->class_start[c + 1]; n++) {
      if (!m->cand[n])
        continue;
      for (uint32_t k = g->child_start[n]; k < g->child_start[n + 1]; k++)
        if (!m->live[g->child[k]])
          m->live[g->child[k]] = 1, stk[sp++] = g->child[k];
    }
  }
  free(stk);
  return true;
}

/* Is every child class of a also a child class of b? (small lists: quadratic) */
static bool children_subset(const ex_graph *g, uint32_t a, uint32_t b)
{
  for (uint32_t i = g->child_start[a]; i < g->child_start[a + 1]; i++) {
    uint32_t j = g->child_start[b];
    while (j < g->child_start[b + 1] && g->child[j] != g->child[i])
      j++;
    if (j == g->child_start[b + 1])
      return false;
  }
  return true;
}

static void dominance(model *m)
{
  const ex_graph *g = m->g;
  for (uint32_t c = 0; c < g->n_classes; c++) {
    uint32_t b = g->class_start[c], e = g->class_start[c + 1];
    if (!m->live[c] || e - b > EX_DOMINANCE_MAX)
      continue;
    for (uint32_t x = b; x < e; x++) {
      if (!m->cand[x])
        continue;
      for (uint32_t y = b; y < e && m->cand[x]; y++) {
        if (y == x || !m->cand[y] || g->node_cost[y] > g->node_cost[x])
          continue;
        /* y dominates x; on a tie in both directions keep the lower id. */
        if (children_subset(g, y, x) &&
            !(g->node_cost[y] == g->node_cost[x] && children_subset(g, x, y) && y > x))
          m->cand[x] = 0;
      }
    }
  }
}

/* Tarjan's SCC algorithm, iterative, over live classes and candidate edges.
 * SCC ids are given in completion order: every SCC reachable from another
 * has a smaller id. */
static bool sccs(model *m)
{
  const ex_graph *g = m->g;
  uint32_t nc = g->n_classes;
  uint32_t *idx = malloc(((size_t)nc + 1) * sizeof(uint32_t));
  uint32_t *low = malloc(((size_t)nc + 1) * sizeof(uint32_t));
  uint32_t *stk = malloc(((size_t)nc + 1) * sizeof(uint32_t));
  uint8_t *on = calloc((size_t)nc + 1, 1);
  uint32_t *cs = malloc(((size_t)nc + 1) * sizeof(uint32_t)); /* call stack: class */
  uint32_t *cn = malloc(((size_t)nc + 1) * sizeof(uint32_t)); /* current node */
  uint32_t *ck = malloc(((size_t)nc + 1) * sizeof(uint32_t)); /* current child slot */
  bool ok = idx && low && stk && on && cs && cn && ck;
  uint32_t next = 0, sp = 0, ns = 0;
  for (uint32_t c = 0; ok && c < nc; c++)
    idx[c] = EX_NONE, m->scc[c] = EX_NONE;
  for (uint32_t s = 0; ok && s < nc; s++) {
    if (!m->live[s] || idx[s] != EX_NONE)
      continue;
    uint32_t fp = 0;
    cs[fp] = s, cn[fp] = g->class_start[s], ck[fp] = EX_NONE, fp++;
    idx[s] = low[s] = next++, stk[sp++] = s, on[s] = 1;
    while (fp) {
      uint32_t v = cs[fp - 1];
      /* Advance to the next candidate edge of v. */
      uint32_t w = EX_NONE;
      while (cn[fp - 1] < g->class_start[v + 1]) {
        uint32_t n = cn[fp - 1];
        if (!m->cand[n]) {
          cn[fp - 1]++, ck[fp - 1] = EX_NONE;
          continue;
        }
        if (ck[fp - 1] == EX_NONE)
          ck[fp - 1] = g->child_start[n];
        if (ck[fp - 1] < g->child_start[n + 1]) {
          w = g->child[ck[fp - 1]++];
          break;
        }
        cn[fp - 1]++, ck[fp - 1] = EX_NONE;
      }
      if (w != EX_NONE) {
        if (idx[w] == EX_NONE) {
          idx[w] = low[w] = next++, stk[sp++] = w, on[w] = 1;
          cs[fp] = w, cn[fp] = g->class_start[w], ck[fp] = EX_NONE, fp++;
        } else if (on[w] && idx[w] < low[v]) {
          low[v] = idx[w];
        }
        continue;
      }
      if (low[v] == idx[v]) {
        uint32_t x;
        do {
          x = stk[--sp];
          on[x] = 0;
          m->scc[x] = ns;
        } while (x != v);
        ns++;
      }
      fp--;
      if (fp && low[v] < low[cs[fp - 1]])
        low[cs[fp - 1]] = low[v];
    }
  }
  free(idx), free(low), free(stk), free(on), free(cs), free(cn), free(ck);
  m->n_scc = ns;
  return ok;
}

/* ---- the combinatorial lower bound (costs >= 0) -------------------------- */

typedef struct bound {
  size_t words;
  uint64_t *reach; /* [n_scc * words]: live classes reachable from the SCC */
  uint32_t *uf;    /* union-find over one node's children */
  double *gmax;    /* largest lb[] of each union-find group */
  uint32_t *kids;  /* distinct children of one node */
} bound;

static bool reach_meet(const bound *b, const model *m, uint32_t c, uint32_t d)
{
  const uint64_t *x = b->reach + (size_t)m->scc[c] * b->words;
  const uint64_t *y = b->reach + (size_t)m->scc[d] * b->words;
  for (size_t w = 0; w < b->words; w++)
    if (x[w] & y[w])
      return true;
  return false;
}

static uint32_t uf_find(uint32_t *uf, uint32_t i)
{
  while (uf[i] != i)
    i = uf[i] = uf[uf[i]];
  return i;
}

/* Sum over groups of classes[0..k) with pairwise disjoint reachable sets of
 * the largest lb[] in each group. Above EX_LB_GROUP_MAX classes the
 * pairwise test is skipped and the largest alone is taken (still a lower
 * bound). */
static double group_sum(bound *b, const model *m, const uint32_t *cls, uint32_t k,
                        const double *lb)
{
  double best = 0;
  if (k > EX_LB_GROUP_MAX) {
    for (uint32_t i = 0; i < k; i++)
      best = lb[cls[i]] > best ? lb[cls[i]] : best;
    return best;
  }
  for (uint32_t i = 0; i < k; i++)
    b->uf[i] = i;
  for (uint32_t i = 0; i < k; i++)
    for (uint32_t j = i + 1; j < k; j++)
      if (uf_find(b->uf, i) != uf_find(b->uf, j) && reach_meet(b, m, cls[i], cls[j]))
        b->uf[uf_find(b->uf, i)] = uf_find(b->uf, j);
  double *gmax = b->gmax;
  for (uint32_t i = 0; i < k; i++)
    gmax[i] = 0;
  for (uint32_t i = 0; i < k; i++) {
    uint32_t r = uf_find(b->uf, i);
    if (lb[cls[i]] > gmax[r])
      gmax[r] = lb[cls[i]];
  }
  double sum = 0;
  for (uint32_t i = 0; i < k; i++)
    if (uf_find(b->uf, i) == i)
      sum += gmax[i];
  return sum;
}

/* Distinct children of node n into b->kids; returns their number. */
static uint32_t distinct_children(const ex_graph *g, bound *b, uint32_t n)
{
  uint32_t k = 0;
  for (uint32_t i = g->child_start[n]; i < g->child_start[n + 1]; i++) {
    uint32_t d = g->child[i], j = 0;
    while (j < k && b->kids[j] != d)
      j++;
    if (j == k)
      b->kids[k++] = d;
  }
  return k;
}

/* The lower bound of the header, for the roots together; -INFINITY when
 * it is not computed (memory cap) and NAN on OOM. */
static double lower_bound(const model *m)
{
  const ex_graph *g = m->g;
  uint32_t nc = g->n_classes, nn = g->n_nodes;
  bound b = {.words = ((size_t)nc + 63) / 64};
  if ((size_t)m->n_scc * b.words * 8 > EX_LB_BITS_MAX)
    return -INFINITY;
  uint32_t maxk = g->n_roots;
  for (uint32_t n = 0; n < nn; n++)
    if (g->child_start[n + 1] - g->child_start[n] > maxk)
      maxk = g->child_start[n + 1] - g->child_start[n];
  uint32_t *pstart = NULL, *par = NULL, *first = NULL, *next = NULL, *left = NULL;
  double *lb = NULL, result = NAN;
  uint8_t *done = NULL;
  ex_heap h = {0};
  b.reach = calloc((size_t)m->n_scc * b.words + 1, sizeof(uint64_t));
  b.uf = malloc(((size_t)maxk + 1) * sizeof(uint32_t));
  b.gmax = malloc(((size_t)maxk + 1) * sizeof(double));
  b.kids = malloc(((size_t)maxk + 1) * sizeof(uint32_t));
  first = malloc(((size_t)m->n_scc + 1) * sizeof(uint32_t));
  next = malloc(((size_t)nc + 1) * sizeof(uint32_t));
  left = malloc(((size_t)nn + 1) * sizeof(uint32_t));
  lb = malloc(((size_t)nc + 1) * sizeof(double));
  done = calloc((size_t)nc + 1, 1);
  if (!b.reach || !b.uf || !b.gmax || !b.kids || !first || !next || !left || !lb || !done ||
      !ex_parents(g, &pstart, &par))
    goto out;
  /* Members of each SCC; SCCs in id order see their successors done. */
  for (uint32_t s = 0; s < m->n_scc; s++)
    first[s] = EX_NONE;
  for (uint32_t c = 0; c < nc; c++)
    if (m->live[c])
      next[c] = first[m->scc[c]], first[m->scc[c]] = c;
  for (uint32_t s = 0; s < m->n_scc; s++) {
    uint64_t *r = b.reach + (size_t)s * b.words;
    for (uint32_t c = first[s]; c != EX_NONE; c = next[c]) {
      r[c / 64] |= (uint64_t)1 << (c % 64);
      for (uint32_t n = g->class_start[c]; n < g->class_start[c + 1]; n++) {
        if (!m->cand[n])
          continue;
        for (uint32_t k = g->child_start[n]; k < g->child_start[n + 1]; k++) {
          uint32_t t = m->scc[g->child[k]];
          if (t == s)
            continue;
          const uint64_t *rt = b.reach + (size_t)t * b.words;
          for (size_t w = 0; w < b.words; w++)
            r[w] |= rt[w];
        }
      }
    }
  }
  /* Knuth's pass, as in tree.c, over candidate nodes of live classes. */
  for (uint32_t c = 0; c < nc; c++)
    lb[c] = INFINITY;
  for (uint32_t n = 0; n < nn; n++) {
    left[n] = EX_NONE;
    if (!m->cand[n] || !m->live[g->node_class[n]])
      continue;
    left[n] = g->child_start[n + 1] - g->child_start[n];
    if (!left[n] && !ex_heap_push(&h, g->node_cost[n], n))
      goto out;
  }
  double key;
  uint32_t n;
  while (ex_heap_pop(&h, &key, &n)) {
    uint32_t c = g->node_class[n];
    if (done[c])
      continue;
    done[c] = 1, lb[c] = key;
    for (uint32_t k = pstart[c]; k < pstart[c + 1]; k++) {
      uint32_t p = par[k];
      if (left[p] == EX_NONE || done[g->node_class[p]] || --left[p] != 0)
        continue;
      double v;
      if (g->child_start[p + 1] - g->child_start[p] > EX_LB_GROUP_MAX) {
        v = 0; /* too many children to group: the largest alone */
        for (uint32_t j = g->child_start[p]; j < g->child_start[p + 1]; j++)
          v = lb[g->child[j]] > v ? lb[g->child[j]] : v;
      } else {
        v = group_sum(&b, m, b.kids, distinct_children(g, &b, p), lb);
      }
      if (!ex_heap_push(&h, g->node_cost[p] + v, p))
        goto out;
    }
  }
  result = group_sum(&b, m, g->roots, g->n_roots, lb);
out:
  ex_heap_free(&h);
  free(b.reach), free(b.uf), free(b.gmax), free(b.kids), free(first), free(next), free(left), free(lb);
  free(done);
  free(pstart), free(par);
  return result;
}

/* ---- cycles in a solution ------------------------------------------------- */

/* The node each class chose in a solution (EX_NONE where none); with
 * from_roots only the part reachable from the roots. */
static void chosen(const model *m, const double *sol, bool from_roots, uint32_t *pick)
{
  const ex_graph *g = m->g;
  for (uint32_t c = 0; c < g->n_classes; c++)
    pick[c] = EX_NONE;
  for (uint32_t n = 0; n < g->n_nodes; n++)
    if (m->col[n] != EX_NONE && sol[m->col[n]] > 0.5)
      pick[g->node_class[n]] = n;
  if (from_roots)
    ex_trim(g, pick);
}

/* y_i - [i != 0] X_{c_i} terms of the cycle row for class c_i with successor d. */
static void cycle_terms(const model *m, lp *l, uint32_t c, uint32_t d, bool first)
{
  const ex_graph *g = m->g;
  for (uint32_t n = g->class_start[c]; n < g->class_start[c + 1]; n++) {
    if (m->col[n] == EX_NONE)
      continue;
    bool to_d = false;
    for (uint32_t k = g->child_start[n]; k < g->child_start[n + 1] && !to_d; k++)
      to_d = g->child[k] == d;
    double coef = (to_d ? 1.0 : 0.0) - (first ? 0.0 : 1.0);
    if (coef != 0.0)
      lp_term(l, m->col[n], coef);
  }
}

/* Adds one row per cycle of the chosen graph found by a colour DFS (each
 * back edge closes one). Returns the number of rows added; 0 means acyclic. */
static uint32_t cut_cycles(const model *m, lp *l, const uint32_t *pick, uint8_t *colour,
                           uint32_t *stk, uint32_t *pos)
{
  const ex_graph *g = m->g;
  uint32_t nc = g->n_classes, added = 0;
  memset(colour, 0, nc);
  for (uint32_t s = 0; s < nc && added < EX_CUTS_PER_ROUND; s++) {
    if (colour[s] || pick[s] == EX_NONE)
      continue;
    uint32_t sp = 0;
    stk[sp++] = s, colour[s] = 1, pos[s] = g->child_start[pick[s]];
    while (sp && added < EX_CUTS_PER_ROUND) {
      uint32_t c = stk[sp - 1], n = pick[c];
      if (pos[c] == g->child_start[n + 1]) {
        colour[c] = 2, sp--;
        continue;
      }
      uint32_t d = g->child[pos[c]++];
      if (pick[d] == EX_NONE || colour[d] == 2)
        continue;
      if (colour[d] == 0) {
        stk[sp++] = d, colour[d] = 1, pos[d] = g->child_start[pick[d]];
        continue;
      }
      /* d is on the stack: the cycle is d ... c -> d. */
      uint32_t i = sp;
      while (stk[i - 1] != d)
        i--;
      for (uint32_t j = i - 1; j < sp; j++)
        cycle_terms(m, l, stk[j], j + 1 < sp ? stk[j + 1] : d, j == i - 1);
      lp_row(l, 'L', 0.0);
      added++;
    }
  }
  return added;
}

/* ---- cycle rows from the LP relaxation ------------------------------------ */

/* The support of an LP solution as a class graph: for each class c with
 * X_c > 0, its out-edges c -> d with weight y_cd = sum of x_n over c's nodes
 * having d as a child. Compressed rows; rebuilt after every LP solve. */
typedef struct support {
  double *X;           /* [n_classes] */
  uint32_t *start;     /* [n_classes + 1] */
  uint32_t *to;        /* [edges] */
  double *y;           /* [edges] */
  uint32_t n, cap;
  uint32_t *slot;      /* [n_classes] scratch: edge index of d for the current c */
  double *dist;        /* [n_classes] Dijkstra */
  uint32_t *pred;      /* [n_classes] Dijkstra: predecessor class */
  uint32_t *touched;   /* [n_classes] classes whose dist was set */
  uint8_t *on_cut;     /* [n_classes] already on a cycle cut this round */
} support;

#define EX_EPS 1e-6

static bool support_build(support *s, const model *m, const double *x)
{
  const ex_graph *g = m->g;
  uint32_t nc = g->n_classes;
  s->n = 0;
  for (uint32_t c = 0; c < nc; c++) {
    s->start[c] = s->n;
    s->X[c] = 0;
    if (!m->live[c])
      continue;
    uint32_t first = s->n;
    for (uint32_t n = g->class_start[c]; n < g->class_start[c + 1]; n++) {
      if (m->col[n] == EX_NONE || x[m->col[n]] < EX_EPS)
        continue;
      double v = x[m->col[n]];
      s->X[c] += v;
      for (uint32_t k = g->child_start[n]; k < g->child_start[n + 1]; k++) {
        uint32_t d = g->child[k];
        /* Edges only inside SCCs can close a cycle. */
        if (m->scc[d] != m->scc[c])
          continue;
        uint32_t e = s->slot[d];
        if (e >= first && e < s->n && s->to[e] == d) {
          bool again = false; /* the same node with d twice adds once */
          for (uint32_t j = g->child_start[n]; j < k && !again; j++)
            again = g->child[j] == d;
          if (!again)
            s->y[e] += v;
          continue;
        }
        if (s->n == s->cap) {
          uint32_t ncap = s->cap ? 2 * s->cap : 1024;
          uint32_t *t = realloc(s->to, (size_t)ncap * sizeof *t);
          if (!t)
            return false;
          s->to = t;
          double *y = realloc(s->y, (size_t)ncap * sizeof *y);
          if (!y)
            return false;
          s->y = y, s->cap = ncap;
        }
        s->slot[d] = s->n;
        s->to[s->n] = d, s->y[s->n++] = v;
      }
    }
  }
  s->start[nc] = s->n;
  return true;
}

/* Shortest cycle through class src in the support graph, with edge length
 * X_c - y_cd (>= 0): the cycle row for it, with src as the excluded class,
 * is violated when the cycle is shorter than X_src. Writes the cycle
 * (src first) to cyc and returns its length in classes, 0 when there is no
 * violated one. */
static uint32_t shortest_cycle(support *s, uint32_t src, ex_heap *h, uint32_t *cyc)
{
  uint32_t nt = 0, last = EX_NONE;
  double best = s->X[src] - EX_EPS;
  h->n = 0;
  s->dist[src] = 0, s->touched[nt++] = src;
  ex_heap_push(h, 0, src);
  double du;
  uint32_t u;
  while (ex_heap_pop(h, &du, &u)) {
    if (du > s->dist[u] || du >= best)
      continue;
    for (uint32_t e = s->start[u]; e < s->start[u + 1]; e++) {
      uint32_t v = s->to[e];
      double len = s->X[u] - s->y[e];
      double dv = du + (len > 0 ? len : 0);
      if (v == src) {
        if (dv < best)
          best = dv, last = u;
        continue;
      }
      if (dv < s->dist[v] && dv < best) {
        if (s->dist[v] == INFINITY)
          s->touched[nt++] = v;
        s->dist[v] = dv, s->pred[v] = u;
        if (!ex_heap_push(h, dv, v))
          break; /* OOM: give up this source, keep what was found */
      }
    }
  }
  uint32_t k = 0;
  if (last != EX_NONE) {
    for (uint32_t v = last; v != src; v = s->pred[v])
      cyc[k++] = v;
    cyc[k++] = src;
    /* Reverse into src, c_1, ..., c_{k-1}. */
    for (uint32_t i = 0, j = k - 1; i < j; i++, j--) {
      uint32_t t = cyc[i];
      cyc[i] = cyc[j], cyc[j] = t;
    }
  }
  for (uint32_t i = 0; i < nt; i++)
    s->dist[s->touched[i]] = INFINITY;
  return k;
}

/* Separation of cycle rows inside CBC's cut loop: CBC calls this with the
 * LP solution of the root's cut passes and of the tree's nodes, and the
 * violated cycle rows found by shortest_cycle from every class on a
 * non-trivial SCC go back as cuts. (The callback is an ordinary cut
 * generator, not a lazy-constraint hook: solutions found by CBC's
 * heuristics are not shown to it, which is why the solver loop still
 * checks every solution for cycles.) Rows found here are also kept in the
 * model for the next round, up to EX_CUTS_KEPT. */
#define EX_CUTS_KEPT 20000

typedef struct sep {
  const model *m;
  lp *l;           /* the model: kept rows are appended here */
  lp row;          /* row buffer only */
  support s;
  ex_heap h;
  uint32_t *cyc;
  uint8_t *cyclic; /* [n_scc] SCC has more than one class */
  uint32_t kept;
  bool oom;
} sep;

static void COINLINKAGE_CB separate(void *osi, void *osi_cuts, void *app)
{
  sep *sp = app;
  const model *m = sp->m;
  const ex_graph *g = m->g;
  /* CBC's heuristics (e.g. its small sub-branch-and-bound) run the cut
   * generators on reduced copies of the model whose columns are not ours:
   * rows in our numbering would index past their matrix (a crash seen on
   * mixture_logpdf). Separate only on the model itself. */
  if (Osi_getNumCols(osi) != (int)sp->l->ncols)
    return;
  if (sp->oom || !support_build(&sp->s, m, Osi_getColSolution(osi))) {
    sp->oom = true;
    return;
  }
  memset(sp->s.on_cut, 0, g->n_classes);
  uint32_t cuts = 0;
  for (uint32_t c = 0; c < g->n_classes && cuts < EX_CUTS_PER_ROUND; c++) {
    if (!m->live[c] || !sp->cyclic[m->scc[c]] || sp->s.on_cut[c] || sp->s.X[c] < EX_EPS)
      continue;
    uint32_t k = shortest_cycle(&sp->s, c, &sp->h, sp->cyc);
    if (!k)
      continue;
    sp->row.rn = 0;
    for (uint32_t i = 0; i < k; i++) {
      sp->s.on_cut[sp->cyc[i]] = 1;
      cycle_terms(m, &sp->row, sp->cyc[i], sp->cyc[(i + 1) % k], i == 0);
    }
    if (sp->row.oom) {
      sp->oom = true;
      return;
    }
    OsiCuts_addRowCut(osi_cuts, (int)sp->row.rn, sp->row.ri, sp->row.rv, 'L', 0.0);
    if (sp->kept < EX_CUTS_KEPT) {
      for (uint32_t i = 0; i < sp->row.rn; i++)
        lp_term(sp->l, (uint32_t)sp->row.ri[i], sp->row.rv[i]);
      lp_row(sp->l, 'L', 0.0);
      sp->kept++;
    }
    cuts++;
  }
}

static bool sep_init(sep *sp, const model *m, lp *l)
{
  const ex_graph *g = m->g;
  uint32_t nc = g->n_classes;
  *sp = (sep){.m = m, .l = l};
  support *s = &sp->s;
  s->X = malloc(((size_t)nc + 1) * sizeof(double));
  s->start = malloc(((size_t)nc + 2) * sizeof(uint32_t));
  s->slot = malloc(((size_t)nc + 1) * sizeof(uint32_t));
  s->dist = malloc(((size_t)nc + 1) * sizeof(double));
  s->pred = malloc(((size_t)nc + 1) * sizeof(uint32_t));
  s->touched = malloc(((size_t)nc + 1) * sizeof(uint32_t));
  s->on_cut = malloc((size_t)nc + 1);
  sp->cyc = malloc(((size_t)nc + 1) * sizeof(uint32_t));
  sp->cyclic = calloc((size_t)m->n_scc + 1, 1);
  uint32_t *size = calloc((size_t)m->n_scc + 1, sizeof(uint32_t));
  bool ok = s->X && s->start && s->slot && s->dist && s->pred && s->touched && s->on_cut &&
            sp->cyc && sp->cyclic && size;
  for (uint32_t c = 0; ok && c < nc; c++) {
    s->slot[c] = EX_NONE, s->dist[c] = INFINITY;
    if (m->live[c] && ++size[m->scc[c]] > 1)
      sp->cyclic[m->scc[c]] = 1;
  }
  free(size);
  return ok;
}

static void sep_free(sep *sp)
{
  support *s = &sp->s;
  free(s->X), free(s->start), free(s->to), free(s->y), free(s->slot), free(s->dist);
  free(s->pred), free(s->touched), free(s->on_cut), free(sp->cyc), free(sp->cyclic);
  lp_free(&sp->row);
  ex_heap_free(&sp->h);
}

/* ---- incumbents from cyclic solutions --------------------------------------- */

/* An acyclic choice close to a solution that has cycles: classes settle in a
 * topological order, as in tree.c, but a class whose picked node has all its
 * children settled takes that node at once; only when no such class is left
 * does the cheapest other node (by tree cost) settle its class, which is
 * where the solution's cycles are broken. The DAG extractor's local search
 * then polishes the result. Fills out[] (all extractable classes); false on
 * OOM. */
static bool repair(const model *m, const uint32_t *pstart, const uint32_t *par,
                   const uint32_t *pick, uint32_t *out, double *tcost, uint32_t *left,
                   uint32_t *queue)
{
  const ex_graph *g = m->g;
  uint32_t nc = g->n_classes, qh = 0, qt = 0;
  ex_heap h = {0};
  bool ok = false;
  for (uint32_t c = 0; c < nc; c++)
    out[c] = EX_NONE, tcost[c] = INFINITY;
  for (uint32_t n = 0; n < g->n_nodes; n++) {
    left[n] = g->child_start[n + 1] - g->child_start[n];
    if (left[n] || !m->cand[n])
      continue;
    uint32_t c = g->node_class[n];
    if (pick[c] == n)
      queue[qt++] = c;
    else if (!ex_heap_push(&h, g->node_cost[n], n))
      goto out;
  }
  for (;;) {
    uint32_t c, n;
    double key;
    if (qh < qt) {
      c = queue[qh++], n = pick[c];
      if (out[c] != EX_NONE)
        continue;
      key = g->node_cost[n];
      for (uint32_t k = g->child_start[n]; k < g->child_start[n + 1]; k++)
        key += tcost[g->child[k]];
    } else if (ex_heap_pop(&h, &key, &n)) {
      c = g->node_class[n];
      if (out[c] != EX_NONE)
        continue;
    } else {
      break;
    }
    out[c] = n, tcost[c] = key;
    for (uint32_t k = pstart[c]; k < pstart[c + 1]; k++) {
      uint32_t p = par[k], pc = g->node_class[p];
      if (out[pc] != EX_NONE || !m->cand[p] || --left[p] != 0)
        continue;
      if (pick[pc] == p) {
        queue[qt++] = pc; /* each node reaches zero once: qt <= n_classes */
        continue;
      }
      double v = g->node_cost[p];
      for (uint32_t j = g->child_start[p]; j < g->child_start[p + 1]; j++)
        v += tcost[g->child[j]];
      if (!ex_heap_push(&h, v, p))
        goto out;
    }
  }
  ok = ex_dag_improve(g, out) == EX_OK;
out:
  ex_heap_free(&h);
  return ok;
}

/* ---- the solver loop ------------------------------------------------------ */

typedef struct edge {
  uint32_t child, node;
} edge;

typedef struct edges {
  edge *v;
  size_t n, cap;
} edges;

static int edge_cmp(const void *a, const void *b)
{
  const edge *x = a, *y = b;
  if (x->child != y->child)
    return x->child < y->child ? -1 : 1;
  return (x->node > y->node) - (x->node < y->node);
}

/* The coverage rows of class c: for every child class d of its nodes,
 *   sum of x_n over c's nodes having d as a child - X_d <= 0.
 * (child, node) pairs are sorted so each d is one run, linear in the
 * class's edges. False on OOM. */
static bool cover_rows(const model *m, lp *l, uint32_t c, edges *eb)
{
  const ex_graph *g = m->g;
  eb->n = 0;
  for (uint32_t n = g->class_start[c]; n < g->class_start[c + 1]; n++) {
    if (m->col[n] == EX_NONE)
      continue;
    for (uint32_t k = g->child_start[n]; k < g->child_start[n + 1]; k++) {
      if (eb->n == eb->cap) {
        size_t nc = eb->cap ? 2 * eb->cap : 64;
        edge *v = realloc(eb->v, nc * sizeof *v);
        if (!v)
          return false;
        eb->v = v, eb->cap = nc;
      }
      eb->v[eb->n++] = (edge){g->child[k], n};
    }
  }
  if (eb->n > 1)
    qsort(eb->v, eb->n, sizeof *eb->v, edge_cmp);
  for (size_t i = 0; i < eb->n;) {
    uint32_t d = eb->v[i].child;
    for (; i < eb->n && eb->v[i].child == d; i++)
      if (i == 0 || eb->v[i - 1].child != d || eb->v[i - 1].node != eb->v[i].node)
        lp_term(l, m->col[eb->v[i].node], 1.0);
    for (uint32_t q = g->class_start[d]; q < g->class_start[d + 1]; q++)
      if (m->col[q] != EX_NONE)
        lp_term(l, m->col[q], -1.0);
    lp_row(l, 'L', 0.0);
  }
  return true;
}

ex_status ex_exact_choice(const ex_graph *g, const ex_params *p, uint32_t *choice,
                          double *lower_bound_out, bool *optimal, ex_diag *d)
{
  double t0 = ex_now();
  ex_status st = ex_dag_choice(g, choice, d);
  if (st != EX_OK)
    return st;
  for (uint32_t r = 0; r < g->n_roots; r++)
    if (choice[g->roots[r]] == EX_NONE)
      return EX_OK; /* infeasible: ex_extract reports it */
  ex_trim(g, choice);
  double best = ex_dag_cost(g, choice), lb = -INFINITY;

  uint32_t nc = g->n_classes, nn = g->n_nodes;
  model m = {.g = g};
  m.cand = malloc((size_t)nn + 1);
  m.live = malloc((size_t)nc + 1);
  m.isroot = calloc((size_t)nc + 1, 1);
  m.col = malloc(((size_t)nn + 1) * sizeof(uint32_t));
  m.scc = malloc(((size_t)nc + 1) * sizeof(uint32_t));
  double *tc = malloc(((size_t)nc + 1) * sizeof(double));
  uint32_t *pick = malloc(((size_t)nc + 1) * sizeof(uint32_t));
  uint32_t *stk = malloc(((size_t)nc + 1) * sizeof(uint32_t));
  uint32_t *pos = malloc(((size_t)nc + 1) * sizeof(uint32_t));
  uint8_t *colour = malloc((size_t)nc + 1);
  uint32_t *alt = malloc(((size_t)nc + 1) * sizeof(uint32_t));
  uint32_t *left_n = malloc(((size_t)nn + 1) * sizeof(uint32_t));
  uint32_t *pstart = NULL, *par = NULL;
  double *start = NULL;
  int *sidx = NULL;
  Cbc_Model *cbc = NULL;
  lp l = {0};
  edges eb = {0};
  sep sp = {0};
  st = EX_ERR_NOMEM;
  if (!m.cand || !m.live || !m.isroot || !m.col || !m.scc || !tc || !pick || !stk || !pos ||
      !colour || !alt || !left_n)
    goto out;
  /* Extractability comes from the tree pass: a class with no tree choice
   * has no acyclic extraction at all. */
  if (ex_tree_choice(g, pick, tc) != EX_OK)
    goto out;
  for (uint32_t n = 0; n < nn; n++) {
    uint32_t c = g->node_class[n];
    m.cand[n] = 1;
    for (uint32_t k = g->child_start[n]; k < g->child_start[n + 1]; k++)
      if (g->child[k] == c || pick[g->child[k]] == EX_NONE)
        m.cand[n] = 0;
  }
  if (!mark_live(&m))
    goto out;
  if (!g->has_negative) {
    dominance(&m);
    if (!mark_live(&m))
      goto out;
  }
  /* The incumbent must stay expressible: un-prune its nodes (dominance may
   * have removed one that the heuristic chose). */
  for (uint32_t c = 0; c < nc; c++)
    if (choice[c] != EX_NONE)
      m.cand[choice[c]] = 1, m.live[c] = 1;
  if (!mark_live(&m) || !sccs(&m))
    goto out;
  for (uint32_t r = 0; r < g->n_roots; r++)
    m.isroot[g->roots[r]] = 1;

  st = EX_OK;
  if (!g->has_negative) {
    double b = lower_bound(&m);
    if (isnan(b)) {
      st = EX_ERR_NOMEM;
      goto out;
    }
    lb = b;
    if (best - lb <= 1e-9 * (1 + fabs(best))) {
      *optimal = true;
      goto out;
    }
  }

  /* Columns and the rows that do not change between rounds. */
  for (uint32_t n = 0; n < nn; n++) {
    m.col[n] = EX_NONE;
    if (m.cand[n] && m.live[g->node_class[n]])
      m.col[n] = lp_col(&l, g->node_cost[n]);
  }
  if (!ex_parents(g, &pstart, &par)) {
    st = EX_ERR_NOMEM;
    goto out;
  }
  for (uint32_t c = 0; c < nc; c++) {
    if (!m.live[c])
      continue;
    for (uint32_t n = g->class_start[c]; n < g->class_start[c + 1]; n++)
      if (m.col[n] != EX_NONE)
        lp_term(&l, m.col[n], 1.0);
    lp_row(&l, m.isroot[c] ? 'E' : 'L', 1.0);
    if (g->has_negative && !m.isroot[c]) {
      /* X_c <= number of chosen parent nodes */
      for (uint32_t n = g->class_start[c]; n < g->class_start[c + 1]; n++)
        if (m.col[n] != EX_NONE)
          lp_term(&l, m.col[n], 1.0);
      for (uint32_t q = pstart[c]; q < pstart[c + 1]; q++) {
        uint32_t pn = par[q];
        /* A parent with c twice is listed twice: count it once. */
        if (m.col[pn] != EX_NONE && (q == pstart[c] || par[q - 1] != pn))
          lp_term(&l, m.col[pn], -1.0);
      }
      lp_row(&l, 'L', 0.0);
    }
    if (!cover_rows(&m, &l, c, &eb)) {
      st = EX_ERR_NOMEM;
      goto out;
    }
  }
  if (l.oom) {
    st = EX_ERR_NOMEM;
    goto out;
  }
  start = malloc(((size_t)l.ncols + 1) * sizeof(double));
  sidx = malloc(((size_t)l.ncols + 1) * sizeof(int));
  if (!start || !sidx) {
    st = EX_ERR_NOMEM;
    goto out;
  }
  for (uint32_t i = 0; i < l.ncols; i++)
    sidx[i] = (int)i;

  bool cyclic = m.n_scc < nc; /* some SCC has two classes or more */
  if (cyclic && !sep_init(&sp, &m, &l)) {
    st = EX_ERR_NOMEM;
    goto out;
  }

  /* Solve, cut the cycles of the solution, solve again. */
  for (;;) {
    double left = p->time_limit_s > 0 ? p->time_limit_s - (ex_now() - t0) : 0;
    if (p->time_limit_s > 0 && left < 0.01)
      break;
    if (!(cbc = lp_load(&l, true))) {
      st = EX_ERR_NOMEM;
      goto out;
    }
    Cbc_setLogLevel(cbc, p->log_level);
    /* Preprocessing stays off: it renumbers and drops columns, while
     * separate() and the MIP start read columns by our numbering (and CBC
     * 2.10.8's CglPreProcess::postProcess crashed on tensat/bert_acyclic).
     * The pruning above already does the presolve that matters here. */
    Cbc_setParameter(cbc, "preprocess", "off");
    /* Zero-half cut separation ran for a minute on tensat/bert_acyclic
     * without looking at the clock; without it the time limit holds. */
    Cbc_setParameter(cbc, "zeroHalfCuts", "off");
    /* The limit is wall-clock time, as documented (CBC counts CPU time by
     * default, which overruns on a loaded machine). */
    Cbc_setParameter(cbc, "timeMode", "elapsed");
    if (p->time_limit_s > 0)
      Cbc_setMaximumSeconds(cbc, left);
    if (cyclic)
      Cbc_addCutCallback(cbc, separate, "cycles", &sp);
    Cbc_setAllowableGap(cbc, 1e-7);
    Cbc_setAllowableFractionGap(cbc, 1e-9);
    /* MIP start: the incumbent, which satisfies every row added so far. */
    for (uint32_t i = 0; i < l.ncols; i++)
      start[i] = 0.0;
    for (uint32_t c = 0; c < nc; c++)
      if (choice[c] != EX_NONE && m.col[choice[c]] != EX_NONE)
        start[m.col[choice[c]]] = 1.0;
    Cbc_setMIPStartI(cbc, (int)l.ncols, sidx, start);

    int rc = Cbc_solve(cbc);
    if (sp.oom) {
      st = EX_ERR_NOMEM;
      goto out;
    }
    const double *sol = Cbc_bestSolution(cbc);
    bool proven = rc == 0 && Cbc_isProvenOptimal(cbc);
    /* Every round's model relaxes the real problem: its bound holds
     * (status 0: finished, 1: stopped on the time limit). */
    bool sane = rc == 0 || rc == 1;
    double rb = proven && sol ? Cbc_getObjValue(cbc) : Cbc_getBestPossibleObjValue(cbc);
    if (sane && isfinite(rb) && rb > lb)
      lb = rb;
    if (!sane || !sol)
      break;
    chosen(&m, sol, !g->has_negative, pick);
    uint32_t cuts = cut_cycles(&m, &l, pick, colour, stk, pos);
    if (l.oom) {
      st = EX_ERR_NOMEM;
      goto out;
    }
    if (cuts) {
      /* The other solutions CBC kept on the way have cycles of their own:
       * cutting them now saves rounds. */
      int ns = Cbc_numberSavedSolutions(cbc);
      for (int i = 0; i < ns && cuts < EX_CUTS_PER_ROUND; i++) {
        const double *other = Cbc_savedSolution(cbc, i);
        if (!other || other == sol)
          continue;
        chosen(&m, other, !g->has_negative, alt);
        cuts += cut_cycles(&m, &l, alt, colour, stk, pos);
      }
      chosen(&m, sol, !g->has_negative, pick);
    }
    if (!cuts) {
      ex_trim(g, pick);
      if (ex_check(g, pick, NULL) == EX_OK) {
        double v = ex_dag_cost(g, pick);
        if (v < best) {
          best = v;
          memcpy(choice, pick, (size_t)nc * sizeof(uint32_t));
        }
        *optimal = proven;
      }
      break;
    }
    /* The solution has cycles, but a repaired copy may still beat the
     * incumbent (and then starts the next round). */
    chosen(&m, sol, false, pick);
    if (!repair(&m, pstart, par, pick, alt, tc, left_n, stk)) {
      st = EX_ERR_NOMEM;
      goto out;
    }
    ex_trim(g, alt);
    if (ex_check(g, alt, NULL) == EX_OK && ex_dag_cost(g, alt) < best) {
      best = ex_dag_cost(g, alt);
      memcpy(choice, alt, (size_t)nc * sizeof(uint32_t));
    }
    Cbc_deleteModel(cbc);
    cbc = NULL;
  }
out:
  if (st == EX_OK) {
    /* Bounds come from the shrunk model, which has the same optimum; clamp
     * numerical noise so lb <= the reported cost, and report the cost itself
     * when optimality is proven. */
    *lower_bound_out = *optimal || lb > best ? best : lb;
  }
  if (cbc)
    Cbc_deleteModel(cbc);
  lp_free(&l);
  free(m.cand), free(m.live), free(m.isroot), free(m.col), free(m.scc);
  free(tc), free(pick), free(stk), free(pos), free(colour), free(alt), free(left_n);
  free(pstart), free(par);
  free(start), free(sidx), free(eb.v);
  sep_free(&sp);
  if (st == EX_ERR_NOMEM)
    ex_fail(d, st, "out of memory in exact extraction");
  return st;
}

#else

ex_status ex_exact_choice(const ex_graph *g, const ex_params *p, uint32_t *choice,
                          double *lower_bound, bool *optimal, ex_diag *d)
{
  (void)g, (void)p, (void)choice, (void)lower_bound, (void)optimal;
  return ex_fail(d, EX_ERR_SOLVER, "exact extraction needs CBC (coinor-libcbc-dev); "
                                   "this tlaloc was built without it");
}

#endif
