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
 * LP stage (before the branch and bound). The LP relaxation above is weak
 * where classes are shared: a class used by two half-chosen parents is paid
 * half, and the fractions shrink with depth (tensat/bert_acyclic: LP 0.374,
 * optimum 0.708). Three exact steps, repeated while they remove nodes:
 *  - mandatory classes: a class without which the roots have no acyclic
 *    extraction is in every solution, so X_c = 1 (such a class is in the
 *    incumbent too, so only the incumbent's classes are tested, each by one
 *    extractability pass with the class banned);
 *  - the LP relaxation is solved by CLP; its value, capped at the
 *    incumbent's cost, is a lower bound;
 *  - reduced-cost fixing: a node at 0 with reduced cost r in an LP solution
 *    of value v is in no solution cheaper than v + r, so when that exceeds
 *    the incumbent's cost the node goes. Fewer nodes make more classes
 *    mandatory, which raises the next LP value.
 * The model then keeps every solution cheaper than the incumbent, so bounds
 * of the reduced model, capped at the incumbent's cost, hold for the whole.
 * Fixing needs a good incumbent, so once, the problem restricted to the
 * nodes with small reduced costs (a heuristic choice) is solved by the same
 * rounds as below, for an incumbent only. On tensat/bert_acyclic this takes
 * the model from 20244 to 969 columns and its LP value from 0.589 to 0.7078.
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
#include <Clp_C_Interface.h>

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
/* Work (nodes + edges visited) spent on finding mandatory classes, at most. */
#define EX_MANDATORY_WORK ((uint64_t)200 << 20)
/* Rounds of LP relaxation and reduced-cost fixing, at most. */
#define EX_REDUCE_ROUNDS 8
/* The LP heuristic runs only when its problem keeps at most this share of
 * the columns, within this share of the time left (or this many seconds
 * without a time limit). */
#define EX_HEUR_KEEP 0.9
#define EX_HEUR_SHARE 0.3
#define EX_HEUR_SECONDS 60.0
/* It stops once its incumbent is within this fraction of its bound: it is
 * there for an incumbent, not for a proof. */
#define EX_HEUR_GAP 1e-3
/* Mandatory-class rows go into the branch-and-bound model only when they
 * raise the LP value by more than this share of the gap: where they do
 * not, they only perturb CBC's search (maxsat/hamming6-2: incumbent -2792
 * with them, -2793 without; the LP value is the same). */
#define EX_MAND_GAIN 0.01
/* Share of the time left that the LP without those rows may take. */
#define EX_PLAIN_SHARE 0.1

typedef struct model {
  const ex_graph *g;
  uint8_t *cand;     /* [n_nodes] node may be chosen */
  uint8_t *live;     /* [n_classes] class reachable through candidates */
  uint8_t *isroot;   /* [n_classes] */
  uint32_t *col;     /* [n_nodes] column of x_n, EX_NONE when not a candidate */
  uint32_t *scc;     /* [n_classes] SCC id, in completion order (sinks first) */
  uint32_t n_scc;
  uint8_t *mand;     /* [n_classes] every valid extraction uses the class */
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

/* Column-major copy of the triplets (start[ncols+1], idx, val), as both
 * CBC and CLP load them. False on OOM (the arrays are freed). */
static bool lp_csc(const lp *l, CoinBigIndex **startp, int **idxp, double **valp)
{
  CoinBigIndex *start = calloc((size_t)l->ncols + 2, sizeof *start);
  int *idx = malloc(((size_t)l->nz + 1) * sizeof *idx);
  double *val = malloc(((size_t)l->nz + 1) * sizeof *val);
  if (!start || !idx || !val) {
    free(start), free(idx), free(val);
    return false;
  }
  for (uint32_t i = 0; i < l->nz; i++)
    start[l->zc[i] + 2]++;
  for (uint32_t c = 0; c < l->ncols; c++)
    start[c + 2] += start[c + 1];
  for (uint32_t i = 0; i < l->nz; i++) {
    CoinBigIndex at = start[l->zc[i] + 1]++;
    idx[at] = (int)l->zr[i], val[at] = l->zv[i];
  }
  *startp = start, *idxp = idx, *valp = val;
  return true;
}

/* The model loaded into a new CBC model; with integer false the columns
 * stay continuous (the LP relaxation). */
static Cbc_Model *lp_load(const lp *l, bool integer)
{
  CoinBigIndex *start;
  int *idx;
  double *val;
  if (!lp_csc(l, &start, &idx, &val))
    return NULL;
  Cbc_Model *cbc = Cbc_newModel();
  if (!cbc)
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

/* ---- the model's rows ------------------------------------------------------ */

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

/* Scratch arrays shared by the stages below, sized once per extraction. */
typedef struct work {
  uint32_t *pstart, *par;           /* parents index (ex_parents) */
  double *tc;                       /* [n_classes] tree costs (repair) */
  uint32_t *pick, *alt, *stk, *pos; /* [n_classes] */
  uint8_t *colour, *ok;             /* [n_classes] */
  uint32_t *left_n;                 /* [n_nodes] */
  edges eb;
  uint32_t *mrow, n_mrow, cap_mrow; /* rows of mandatory classes (build_rows) */
} work;

/* Columns for the candidate nodes of live classes (m->col) and the rows
 * that do not change between rounds: one per class (= 1 for roots and
 * mandatory classes, <= 1 otherwise), the coverage rows, and with negative
 * costs the chosen-parent rows. False on OOM. */
static bool build_rows(model *m, lp *l, work *w, bool mand)
{
  const ex_graph *g = m->g;
  w->n_mrow = 0;
  for (uint32_t n = 0; n < g->n_nodes; n++) {
    m->col[n] = EX_NONE;
    if (m->cand[n] && m->live[g->node_class[n]])
      m->col[n] = lp_col(l, g->node_cost[n]);
  }
  for (uint32_t c = 0; c < g->n_classes; c++) {
    if (!m->live[c])
      continue;
    for (uint32_t n = g->class_start[c]; n < g->class_start[c + 1]; n++)
      if (m->col[n] != EX_NONE)
        lp_term(l, m->col[n], 1.0);
    if (mand && m->mand[c] && !m->isroot[c]) {
      if (!lp_grow((void **)&w->mrow, &w->cap_mrow, w->n_mrow + 1, sizeof(uint32_t)))
        return false;
      w->mrow[w->n_mrow++] = l->nrows;
    }
    lp_row(l, m->isroot[c] || (mand && m->mand[c]) ? 'E' : 'L', 1.0);
    if (g->has_negative && !m->isroot[c]) {
      /* X_c <= number of chosen parent nodes */
      for (uint32_t n = g->class_start[c]; n < g->class_start[c + 1]; n++)
        if (m->col[n] != EX_NONE)
          lp_term(l, m->col[n], 1.0);
      for (uint32_t q = w->pstart[c]; q < w->pstart[c + 1]; q++) {
        uint32_t pn = w->par[q];
        /* A parent with c twice is listed twice: count it once. */
        if (m->col[pn] != EX_NONE && (q == w->pstart[c] || w->par[q - 1] != pn))
          lp_term(l, m->col[pn], -1.0);
      }
      lp_row(l, 'L', 0.0);
    }
    if (!cover_rows(m, l, c, &w->eb))
      return false;
  }
  return !l->oom;
}

/* ---- mandatory classes and reduced-cost fixing ---------------------------- */

/* w->ok[c] = 1 for the classes that have an acyclic extraction through
 * candidate nodes without using class `banned` (EX_NONE: none banned).
 * Knuth-style, as in tree.c but without costs: a node settles its class
 * once all its children have settled. Linear in the graph. */
static void extractable(const model *m, work *w, uint32_t banned)
{
  const ex_graph *g = m->g;
  uint32_t qh = 0, qt = 0;
  memset(w->ok, 0, g->n_classes);
  for (uint32_t n = 0; n < g->n_nodes; n++) {
    w->left_n[n] = m->cand[n] ? g->child_start[n + 1] - g->child_start[n] : EX_NONE;
    uint32_t c = g->node_class[n];
    if (w->left_n[n] == 0 && c != banned && !w->ok[c])
      w->ok[c] = 1, w->stk[qt++] = c;
  }
  while (qh < qt) {
    uint32_t c = w->stk[qh++];
    for (uint32_t k = w->pstart[c]; k < w->pstart[c + 1]; k++) {
      uint32_t p = w->par[k], pc = g->node_class[p];
      if (w->left_n[p] == EX_NONE || --w->left_n[p] != 0 || pc == banned || w->ok[pc])
        continue;
      w->ok[pc] = 1, w->stk[qt++] = pc; /* each class once: qt <= n_classes */
    }
  }
}

/* Drops candidate nodes with a child that has no acyclic extraction any
 * more (after nodes were fixed to 0), then recomputes the live classes.
 * One pass suffices: extractability is witnessed by nodes whose children
 * are all extractable, and those stay. */
static bool drop_dead(model *m, work *w)
{
  const ex_graph *g = m->g;
  extractable(m, w, EX_NONE);
  for (uint32_t n = 0; n < g->n_nodes; n++)
    for (uint32_t k = g->child_start[n]; m->cand[n] && k < g->child_start[n + 1]; k++)
      if (!w->ok[g->child[k]])
        m->cand[n] = 0;
  return mark_live(m);
}

/* Marks the classes that every valid extraction must use: X_c = 1 is then
 * a valid row, and a strong one: without it the LP pays half of a class
 * shared by two half-chosen parents, and the fractions shrink with depth
 * (tensat/bert_acyclic: LP 0.374 -> 0.589 with these rows). Such a class
 * is in every extraction, the incumbent's included, so only the
 * incumbent's classes are tested, each by banning it and asking whether
 * the roots are still extractable. `budget` bounds the work (nodes + edges
 * visited) over all calls; classes once mandatory stay so, since models
 * only lose nodes. */
static void find_mandatory(model *m, work *w, const uint32_t *choice, uint64_t *budget)
{
  const ex_graph *g = m->g;
  uint64_t cost = (uint64_t)g->n_nodes + g->child_start[g->n_nodes] + g->n_classes;
  for (uint32_t c = 0; c < g->n_classes; c++) {
    if (choice[c] == EX_NONE || m->isroot[c] || m->mand[c])
      continue;
    if (*budget < cost)
      return;
    *budget -= cost;
    extractable(m, w, c);
    for (uint32_t r = 0; r < g->n_roots && !m->mand[c]; r++)
      if (!w->ok[g->roots[r]])
        m->mand[c] = 1;
  }
}

/* The incumbent's nodes stay in the model (so it stays a MIP start). */
static bool keep_incumbent(model *m, const uint32_t *choice)
{
  const ex_graph *g = m->g;
  bool changed = false;
  for (uint32_t c = 0; c < g->n_classes; c++)
    if (choice[c] != EX_NONE && !m->cand[choice[c]])
      m->cand[choice[c]] = 1, changed = true;
  return !changed || mark_live(m);
}

/* Solves the LP relaxation of l with CLP: its value, solution and reduced
 * costs (arrays of l->ncols). When plain is not NULL, the rows listed in
 * relax[0..n_relax) are then relaxed to <= and the LP solved again from
 * there (primal simplex, within a share of the time): *plain is that
 * value, NAN when unsolved.
 * Returns 1 when the first solve is proven optimal, 0 when not (time
 * limit, numerical trouble), -1 on OOM. */
static int lp_relax(const lp *l, double seconds, double *value, double *x, double *rc,
                    const uint32_t *relax, uint32_t n_relax, double *plain)
{
  CoinBigIndex *start = NULL;
  int *idx = NULL;
  double *val = NULL;
  if (!lp_csc(l, &start, &idx, &val))
    return -1;
  Clp_Simplex *clp = Clp_newModel();
  int ok = -1;
  if (clp) {
    Clp_loadProblem(clp, (int)l->ncols, (int)l->nrows, start, idx, val, l->clb, l->cub, l->obj,
                    l->rlb, l->rub);
    Clp_setLogLevel(clp, 0);
    if (isfinite(seconds))
      Clp_setMaximumSeconds(clp, seconds);
    Clp_initialSolve(clp);
    ok = 0;
    if (Clp_isProvenOptimal(clp)) {
      *value = Clp_objectiveValue(clp);
      memcpy(x, Clp_getColSolution(clp), (size_t)l->ncols * sizeof(double));
      memcpy(rc, Clp_getReducedCost(clp), (size_t)l->ncols * sizeof(double));
      ok = 1;
      if (plain) {
        double *lo = Clp_rowLower(clp);
        for (uint32_t i = 0; i < n_relax; i++)
          lo[relax[i]] = -DBL_MAX;
        /* Bounded: when it takes long, the rows moved the LP a lot. */
        if (isfinite(seconds))
          Clp_setMaximumSeconds(clp, seconds * EX_PLAIN_SHARE);
        Clp_primal(clp, 0);
        *plain = Clp_isProvenOptimal(clp) ? Clp_objectiveValue(clp) : NAN;
      }
    }
    Clp_deleteModel(clp);
  }
  free(start), free(idx), free(val);
  return ok;
}

/* ---- the solver loop ------------------------------------------------------ */

/* Rounds of CBC on model m until a solution without cycles comes back or the
 * deadline passes. A cheaper acyclic solution (the solver's or a repaired
 * one) replaces choice and *best; *lb rises to each round's bound, which holds
 * for m (every round relaxes it); *optimal is set when the last round
 * proved its solution optimal for m, within the relative gap. */
static ex_status rounds(model *m, work *w, const ex_params *p, double deadline, double gap,
                        bool mand, uint32_t *choice, double *best, double *lb, bool *optimal)
{
  const ex_graph *g = m->g;
  uint32_t nc = g->n_classes;
  lp l = {0};
  sep sp = {0};
  double *start = NULL;
  int *sidx = NULL;
  Cbc_Model *cbc = NULL;
  ex_status st = EX_ERR_NOMEM;
  if (!build_rows(m, &l, w, mand))
    goto out;
  start = malloc(((size_t)l.ncols + 1) * sizeof(double));
  sidx = malloc(((size_t)l.ncols + 1) * sizeof(int));
  if (!start || !sidx)
    goto out;
  for (uint32_t i = 0; i < l.ncols; i++)
    sidx[i] = (int)i;
  uint32_t n_live = 0;
  for (uint32_t c = 0; c < nc; c++)
    n_live += m->live[c];
  bool cyclic = m->n_scc < n_live; /* some SCC has two classes or more */
  if (cyclic && !sep_init(&sp, m, &l))
    goto out;
  st = EX_OK;

  /* Solve, cut the cycles of the solution, solve again. */
  for (;;) {
    double left = deadline - ex_now();
    if (left < 0.01)
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
    if (isfinite(left))
      Cbc_setMaximumSeconds(cbc, left);
    if (cyclic)
      Cbc_addCutCallback(cbc, separate, "cycles", &sp);
    Cbc_setAllowableGap(cbc, 1e-7);
    Cbc_setAllowableFractionGap(cbc, gap);
    /* MIP start: the incumbent, which satisfies every row added so far. */
    for (uint32_t i = 0; i < l.ncols; i++)
      start[i] = 0.0;
    for (uint32_t c = 0; c < nc; c++)
      if (choice[c] != EX_NONE && m->col[choice[c]] != EX_NONE)
        start[m->col[choice[c]]] = 1.0;
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
    if (sane && isfinite(rb) && rb > *lb)
      *lb = rb;
    if (!sane || !sol)
      break;
    chosen(m, sol, !g->has_negative, w->pick);
    uint32_t cuts = cut_cycles(m, &l, w->pick, w->colour, w->stk, w->pos);
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
        chosen(m, other, !g->has_negative, w->alt);
        cuts += cut_cycles(m, &l, w->alt, w->colour, w->stk, w->pos);
      }
      chosen(m, sol, !g->has_negative, w->pick);
    }
    if (!cuts) {
      ex_trim(g, w->pick);
      if (ex_check(g, w->pick, NULL) == EX_OK) {
        double v = ex_dag_cost(g, w->pick);
        if (v < *best) {
          *best = v;
          memcpy(choice, w->pick, (size_t)nc * sizeof(uint32_t));
        }
        *optimal = proven;
      }
      break;
    }
    /* The solution has cycles, but a repaired copy may still beat the
     * incumbent (and then starts the next round). */
    chosen(m, sol, false, w->pick);
    if (!repair(m, w->pstart, w->par, w->pick, w->alt, w->tc, w->left_n, w->stk)) {
      st = EX_ERR_NOMEM;
      goto out;
    }
    ex_trim(g, w->alt);
    if (ex_check(g, w->alt, NULL) == EX_OK && ex_dag_cost(g, w->alt) < *best) {
      *best = ex_dag_cost(g, w->alt);
      memcpy(choice, w->alt, (size_t)nc * sizeof(uint32_t));
    }
    Cbc_deleteModel(cbc);
    cbc = NULL;
  }
out:
  if (cbc)
    Cbc_deleteModel(cbc);
  lp_free(&l);
  free(start), free(sidx);
  sep_free(&sp);
  return st;
}

/* ---- reduction by the LP relaxation --------------------------------------- */

/* Is the gap between the incumbent and the bound closed? */
static bool closed(double best, double lb)
{
  return best - lb <= 1e-9 * (1 + fabs(best));
}

/* A cheaper incumbent from a smaller problem: model m without the nodes
 * that the LP relaxation (value v, solution x, reduced costs rc) leaves at
 * 0 with a reduced cost above half the gap, solved by rounds() within a
 * share of the time left. Any acyclic extraction of the smaller problem is
 * one of the whole, so only the incumbent is taken from it (its bound says
 * nothing about the whole). This matters when the heuristics' incumbent is
 * far from the optimum, which keeps reduced-cost fixing weak
 * (tensat/bert_acyclic: 0.827, while the smaller problem's optimum, 0.708,
 * is the whole one's). */
static ex_status lp_heuristic(const model *m, model *h, work *w, const ex_params *p,
                              double deadline, const double *x, const double *rc, double v,
                              uint32_t *choice, double *best, uint64_t *budget)
{
  const ex_graph *g = m->g;
  double tau = (*best - v) / 2;
  uint32_t total = 0, kept = 0;
  memcpy(h->cand, m->cand, g->n_nodes);
  memcpy(h->mand, m->mand, g->n_classes);
  for (uint32_t n = 0; n < g->n_nodes; n++) {
    uint32_t c = m->col[n];
    if (c == EX_NONE)
      continue;
    total++;
    if (x[c] > EX_EPS || rc[c] <= tau)
      kept++;
    else
      h->cand[n] = 0;
  }
  /* Not worth a second solve when it would be about as large. */
  if ((double)kept > EX_HEUR_KEEP * total)
    return EX_OK;
  if (!mark_live(h) || !keep_incumbent(h, choice) || !drop_dead(h, w) ||
      !keep_incumbent(h, choice) || !sccs(h))
    return EX_ERR_NOMEM;
  find_mandatory(h, w, choice, budget);
  double now = ex_now(), share = isfinite(deadline) ? (deadline - now) * EX_HEUR_SHARE
                                                    : EX_HEUR_SECONDS;
  double hlb = -INFINITY;
  bool hopt = false;
  return rounds(h, w, p, now + share, EX_HEUR_GAP, true, choice, best, &hlb, &hopt);
}

/* Before the branch and bound: rounds of (mandatory classes, LP relaxation,
 * reduced-cost fixing). With LP value v and reduced cost r_n > 0 of a node
 * at 0, every solution that uses n costs at least v + r_n (LP duality); when
 * that is above the incumbent's cost, n can go. Fewer nodes make more
 * classes mandatory, which raises the next LP value, and so on. The model
 * keeps every solution cheaper than the incumbent, so the LP value of the
 * reduced model, capped at the incumbent's cost, bounds the optimum. */
static ex_status reduce(model *m, model *h, work *w, const ex_params *p, double deadline,
                        uint32_t *choice, double *best, double *lb, bool *optimal,
                        bool *mand_rows)
{
  const ex_graph *g = m->g;
  lp l = {0};
  double *x = NULL, *rc = NULL;
  ex_status st = EX_OK;
  bool tried = false, changed = false;
  uint64_t budget = EX_MANDATORY_WORK;
  for (int round = 0; round < EX_REDUCE_ROUNDS; round++) {
    double left = deadline - ex_now();
    if (left < 0.05)
      break;
    find_mandatory(m, w, choice, &budget);
    lp_free(&l);
    l = (lp){0};
    st = EX_ERR_NOMEM;
    if (!build_rows(m, &l, w, true))
      goto out;
    free(x), free(rc);
    x = malloc(((size_t)l.ncols + 1) * sizeof(double));
    rc = malloc(((size_t)l.ncols + 1) * sizeof(double));
    if (!x || !rc)
      goto out;
    double v, plain = NAN;
    int solved = lp_relax(&l, left, &v, x, rc, w->mrow, w->n_mrow, round == 0 ? &plain : NULL);
    if (solved < 0)
      goto out;
    st = EX_OK;
    if (!solved)
      break;
    if (round == 0)
      *mand_rows = isnan(plain) || v - plain > EX_MAND_GAIN * (*best - plain);
    double b = v < *best ? v : *best;
    if (b > *lb)
      *lb = b;
    if (closed(*best, *lb)) {
      *optimal = true;
      break;
    }
    if (!tried) {
      tried = true;
      st = lp_heuristic(m, h, w, p, deadline, x, rc, v, choice, best, &budget);
      if (st != EX_OK)
        goto out;
      if (closed(*best, *lb)) {
        *optimal = true;
        break;
      }
    }
    /* Margin: CLP's reduced costs are exact only to its tolerances. */
    double cut = *best + 1e-6 * (1 + fabs(*best));
    uint32_t fixed = 0;
    for (uint32_t n = 0; n < g->n_nodes; n++) {
      uint32_t c = m->col[n];
      if (c != EX_NONE && x[c] <= EX_EPS && rc[c] > 0 && v + rc[c] > cut)
        m->cand[n] = 0, fixed++;
    }
    if (!fixed)
      break;
    changed = true;
    st = EX_ERR_NOMEM;
    if (!keep_incumbent(m, choice) || !drop_dead(m, w) || !keep_incumbent(m, choice))
      goto out;
    st = EX_OK;
  }
  if (changed && !sccs(m))
    st = EX_ERR_NOMEM;
out:
  lp_free(&l);
  free(x), free(rc);
  return st;
}

static bool model_init(model *m, const ex_graph *g)
{
  size_t nc = g->n_classes, nn = g->n_nodes;
  *m = (model){.g = g};
  m->cand = malloc(nn + 1);
  m->live = malloc(nc + 1);
  m->isroot = calloc(nc + 1, 1);
  m->mand = calloc(nc + 1, 1);
  m->col = malloc((nn + 1) * sizeof(uint32_t));
  m->scc = malloc((nc + 1) * sizeof(uint32_t));
  if (!m->cand || !m->live || !m->isroot || !m->mand || !m->col || !m->scc)
    return false;
  for (uint32_t r = 0; r < g->n_roots; r++)
    m->isroot[g->roots[r]] = 1;
  return true;
}

static void model_free(model *m)
{
  free(m->cand), free(m->live), free(m->isroot), free(m->mand), free(m->col), free(m->scc);
}

static bool work_init(work *w, const ex_graph *g)
{
  size_t nc = g->n_classes, nn = g->n_nodes;
  *w = (work){0};
  w->tc = malloc((nc + 1) * sizeof(double));
  w->pick = malloc((nc + 1) * sizeof(uint32_t));
  w->alt = malloc((nc + 1) * sizeof(uint32_t));
  w->stk = malloc((nc + 1) * sizeof(uint32_t));
  w->pos = malloc((nc + 1) * sizeof(uint32_t));
  w->colour = malloc(nc + 1);
  w->ok = malloc(nc + 1);
  w->left_n = malloc((nn + 1) * sizeof(uint32_t));
  return w->tc && w->pick && w->alt && w->stk && w->pos && w->colour && w->ok && w->left_n;
}

static void work_free(work *w)
{
  free(w->pstart), free(w->par), free(w->tc), free(w->pick), free(w->alt), free(w->stk);
  free(w->pos), free(w->colour), free(w->ok), free(w->left_n), free(w->eb.v), free(w->mrow);
}

ex_status ex_exact_choice(const ex_graph *g, const ex_params *p, uint32_t *choice,
                          double *lower_bound_out, bool *optimal, ex_diag *d)
{
  double t0 = ex_now();
  double deadline = p->time_limit_s > 0 ? t0 + p->time_limit_s : INFINITY;
  ex_status st = ex_dag_choice(g, choice, d);
  if (st != EX_OK)
    return st;
  for (uint32_t r = 0; r < g->n_roots; r++)
    if (choice[g->roots[r]] == EX_NONE)
      return EX_OK; /* infeasible: ex_extract reports it */
  ex_trim(g, choice);
  double best = ex_dag_cost(g, choice), lb = -INFINITY;

  uint32_t nc = g->n_classes, nn = g->n_nodes;
  model m, h;
  work w;
  /* All three initialised (and so freeable) even when one fails. */
  bool ok = model_init(&m, g);
  ok = model_init(&h, g) && ok;
  ok = work_init(&w, g) && ok;
  st = EX_ERR_NOMEM;
  if (!ok)
    goto out;
  /* Extractability comes from the tree pass: a class with no tree choice
   * has no acyclic extraction at all. */
  if (ex_tree_choice(g, w.pick, w.tc) != EX_OK)
    goto out;
  for (uint32_t n = 0; n < nn; n++) {
    uint32_t c = g->node_class[n];
    m.cand[n] = 1;
    for (uint32_t k = g->child_start[n]; k < g->child_start[n + 1]; k++)
      if (g->child[k] == c || w.pick[g->child[k]] == EX_NONE)
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

  st = EX_OK;
  if (!g->has_negative) {
    double b = lower_bound(&m);
    if (isnan(b)) {
      st = EX_ERR_NOMEM;
      goto out;
    }
    lb = b;
    if (closed(best, lb)) {
      *optimal = true;
      goto out;
    }
  }
  if (!ex_parents(g, &w.pstart, &w.par)) {
    st = EX_ERR_NOMEM;
    goto out;
  }
  bool mand_rows = false;
  st = reduce(&m, &h, &w, p, deadline, choice, &best, &lb, optimal, &mand_rows);
  if (st == EX_OK && !*optimal)
    st = rounds(&m, &w, p, deadline, 1e-9, mand_rows, choice, &best, &lb, optimal);
out:
  if (st == EX_OK) {
    /* Bounds come from the shrunk model, which has the same optimum; clamp
     * numerical noise so lb <= the reported cost, and report the cost itself
     * when optimality is proven. */
    *lower_bound_out = *optimal || lb > best ? best : lb;
  }
  model_free(&m), model_free(&h);
  work_free(&w);
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
