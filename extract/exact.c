/* exact.c - optimal DAG extraction as a 0-1 integer program, solved by CBC
 * (COIN-OR Branch and Cut, Debian coinor-libcbc-dev, through its C API).
 *
 * Model. x_n = 1 when node n is chosen.
 *   sum_{n in c} x_n <= 1           every class at most one node (= 1 for roots)
 *   x_n <= sum_{m in d} x_m         a chosen node's child classes are chosen
 *   min sum cost(n) x_n
 * Acyclicity only matters inside strongly connected components of the class
 * graph, so only classes in a non-trivial SCC get an order variable
 * o_c in [0, |SCC|-1], and only edges inside an SCC get the big-M row
 *   o_c - o_d >= 1 - |SCC| (1 - x_n)   (n in c chosen => c above its child d)
 * (Miller-Tucker-Zemlin style). On acyclic e-graphs the model is therefore
 * just the covering rows, which CBC closes quickly.
 * With negative costs the solver would also like to switch on unreachable
 * classes for their negative cost; for those graphs every non-root class
 * chosen must have a chosen parent node:
 *   sum_{m in d} x_m <= sum_{n has child d} x_n
 * which, together with acyclicity, makes "chosen" equal "reachable".
 *
 * Shrinking before solving (all sound for optimality):
 *  - nodes with a child that has no acyclic extraction, or whose child is its
 *    own class, can never be in a valid choice;
 *  - only classes reachable from the roots through remaining nodes matter;
 *  - with costs >= 0, node m is dominated by a node n of the same class with
 *    cost(n) <= cost(m) and children(n) a subset of children(m): swapping m
 *    for n keeps any solution valid and acyclic and never costs more.
 *
 * The DAG-aware heuristic's answer is handed to CBC as a MIP start, so when
 * the time limit hits, CBC's incumbent is at least as good; the result is
 * the better of the two, with CBC's best bound as the lower bound. */
#include "extract/ex_internal.h"

#include <float.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#ifdef EX_HAVE_CBC
#include <Cbc_C_Interface.h>

/* Classes with at most this many nodes get the pairwise dominance check. */
#define EX_DOMINANCE_MAX 64

typedef struct model {
  const ex_graph *g;
  uint8_t *cand;     /* [n_nodes] node may be chosen */
  uint8_t *live;     /* [n_classes] class reachable through candidates */
  uint32_t *col;     /* [n_nodes] column of x_n, EX_NONE when not a candidate */
  uint32_t *scc;     /* [n_classes] SCC id */
  uint32_t *scc_size;
  uint32_t *ocol;    /* [n_classes] column of o_c, EX_NONE when none */
} model;

/* The model is collected here and handed to CBC in one Cbc_loadProblem:
 * CBC's incremental Cbc_addRow re-packs its matrix on every call (quadratic;
 * minutes on tensat/bert). */
typedef struct lp {
  uint32_t ncols, capc, nrows, capr, nz, capz;
  double *clb, *cub, *obj;
  uint8_t *isint;
  double *rlb, *rub;
  uint32_t *zr, *zc;
  double *zv;
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

static uint32_t lp_col(lp *l, double lb, double ub, double obj, bool isint)
{
  uint32_t need = l->ncols + 1, cap = l->capc, c2 = cap, c3 = cap, c4 = cap;
  if (!lp_grow((void **)&l->clb, &cap, need, sizeof(double)) ||
      !lp_grow((void **)&l->cub, &c2, need, sizeof(double)) ||
      !lp_grow((void **)&l->obj, &c3, need, sizeof(double)) ||
      !lp_grow((void **)&l->isint, &c4, need, 1)) {
    l->oom = true;
    return 0;
  }
  if (need > l->capc)
    l->capc = cap;
  l->clb[l->ncols] = lb, l->cub[l->ncols] = ub, l->obj[l->ncols] = obj;
  l->isint[l->ncols] = isint;
  return l->ncols++;
}

/* Row sum_i v[i] x[c[i]] (sense 'L' <=, 'G' >=, 'E' =) rhs. */
static void lp_row(lp *l, int k, const int *c, const double *v, char sense, double rhs)
{
  uint32_t need = l->nrows + 1, cap = l->capr, c2 = cap;
  uint32_t nz = l->nz + (uint32_t)k, z1 = l->capz, z2 = z1, z3 = z1;
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
  for (int i = 0; i < k; i++)
    l->zr[l->nz] = l->nrows, l->zc[l->nz] = (uint32_t)c[i], l->zv[l->nz++] = v[i];
  l->nrows++;
}

/* Column-major copy of the triplets, loaded into CBC. */
static bool lp_load(lp *l, Cbc_Model *cbc)
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
  Cbc_loadProblem(cbc, (int)l->ncols, (int)l->nrows, start, idx, val, l->clb, l->cub, l->obj,
                  l->rlb, l->rub);
  for (uint32_t c = 0; c < l->ncols; c++) {
    char nm[24];
    /* Distinct names: CBC's MIP start is resolved through column names. */
    snprintf(nm, sizeof nm, "c%u", c);
    Cbc_setColName(cbc, (int)c, nm);
    if (l->isint[c])
      Cbc_setInteger(cbc, (int)c);
  }
  free(start), free(idx), free(val);
  return true;
}

static void lp_free(lp *l)
{
  free(l->clb), free(l->cub), free(l->obj), free(l->isint);
  free(l->rlb), free(l->rub), free(l->zr), free(l->zc), free(l->zv);
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

/* Tarjan's SCC algorithm, iterative, over live classes and candidate edges. */
static bool sccs(model *m, uint32_t *n_scc)
{
  const ex_graph *g = m->g;
  uint32_t nc = g->n_classes;
  uint32_t *idx = malloc(((size_t)nc + 1) * sizeof(uint32_t));
  uint32_t *low = malloc(((size_t)nc + 1) * sizeof(uint32_t));
  uint32_t *stk = malloc(((size_t)nc + 1) * sizeof(uint32_t));
  uint8_t *on = calloc((size_t)nc + 1, 1);
  uint32_t *cs = malloc(((size_t)nc + 1) * sizeof(uint32_t));   /* call stack: class */
  uint32_t *cn = malloc(((size_t)nc + 1) * sizeof(uint32_t));   /* current node */
  uint32_t *ck = malloc(((size_t)nc + 1) * sizeof(uint32_t));   /* current child slot */
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
        uint32_t x, size = 0;
        do {
          x = stk[--sp];
          on[x] = 0;
          m->scc[x] = ns;
          size++;
        } while (x != v);
        m->scc_size[ns++] = size;
      }
      fp--;
      if (fp && low[v] < low[cs[fp - 1]])
        low[cs[fp - 1]] = low[v];
    }
  }
  free(idx), free(low), free(stk), free(on), free(cs), free(cn), free(ck);
  *n_scc = ns;
  return ok;
}

/* Longest chain below c through chosen same-SCC edges: a feasible o_c for
 * the MIP start (the chosen graph is acyclic, so this terminates). */
static void start_orders(const model *m, const uint32_t *choice, double *o)
{
  const ex_graph *g = m->g;
  uint32_t nc = g->n_classes;
  uint8_t *st = calloc((size_t)nc + 1, 1);
  /* A class may be pushed once per parent edge before it is expanded. */
  uint32_t *stk = malloc(((size_t)g->child_start[g->n_nodes] + 2) * sizeof(uint32_t));
  if (!st || !stk) {
    free(st), free(stk);
    return;
  }
  for (uint32_t s = 0; s < nc; s++) {
    if (m->ocol[s] == EX_NONE || st[s] || choice[s] == EX_NONE)
      continue;
    uint32_t sp = 0;
    stk[sp++] = s;
    while (sp) {
      uint32_t c = stk[sp - 1], n = choice[c];
      if (!st[c]) {
        st[c] = 1;
        for (uint32_t k = g->child_start[n]; k < g->child_start[n + 1]; k++) {
          uint32_t d = g->child[k];
          if (m->scc[d] == m->scc[c] && !st[d])
            stk[sp++] = d;
        }
        continue;
      }
      sp--;
      if (st[c] == 2)
        continue;
      double h = 0;
      for (uint32_t k = g->child_start[n]; k < g->child_start[n + 1]; k++) {
        uint32_t d = g->child[k];
        if (m->scc[d] == m->scc[c] && o[m->ocol[d]] + 1 > h)
          h = o[m->ocol[d]] + 1;
      }
      o[m->ocol[c]] = h;
      st[c] = 2;
    }
  }
  free(st), free(stk);
}

ex_status ex_exact_choice(const ex_graph *g, const ex_params *p, uint32_t *choice,
                          double *lower_bound, bool *optimal, ex_diag *d)
{
  ex_status st = ex_dag_choice(g, choice, d);
  if (st != EX_OK)
    return st;
  for (uint32_t r = 0; r < g->n_roots; r++)
    if (choice[g->roots[r]] == EX_NONE)
      return EX_OK; /* infeasible: ex_extract reports it */
  ex_trim(g, choice);
  double best = ex_dag_cost(g, choice);

  uint32_t nc = g->n_classes, nn = g->n_nodes;
  model m = {.g = g};
  m.cand = malloc((size_t)nn + 1);
  m.live = malloc((size_t)nc + 1);
  m.col = malloc(((size_t)nn + 1) * sizeof(uint32_t));
  m.scc = malloc(((size_t)nc + 1) * sizeof(uint32_t));
  m.scc_size = malloc(((size_t)nc + 1) * sizeof(uint32_t));
  m.ocol = malloc(((size_t)nc + 1) * sizeof(uint32_t));
  double *tc = malloc(((size_t)nc + 1) * sizeof(double));
  uint32_t *tch = malloc(((size_t)nc + 1) * sizeof(uint32_t));
  int *ri = NULL;
  double *rv = NULL, *start = NULL;
  Cbc_Model *cbc = NULL;
  lp l = {0};
  uint32_t ncols = 0, n_scc = 0;
  st = EX_ERR_NOMEM;
  if (!m.cand || !m.live || !m.col || !m.scc || !m.scc_size || !m.ocol || !tc || !tch)
    goto out;
  /* Extractability comes from the tree pass: a class with no tree choice
   * has no acyclic extraction at all. */
  if (ex_tree_choice(g, tch, tc) != EX_OK)
    goto out;
  for (uint32_t n = 0; n < nn; n++) {
    uint32_t c = g->node_class[n];
    m.cand[n] = 1;
    for (uint32_t k = g->child_start[n]; k < g->child_start[n + 1]; k++)
      if (g->child[k] == c || tch[g->child[k]] == EX_NONE)
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
  if (!mark_live(&m) || !sccs(&m, &n_scc))
    goto out;

  for (uint32_t n = 0; n < nn; n++) {
    m.col[n] = EX_NONE;
    if (m.cand[n] && m.live[g->node_class[n]]) {
      m.col[n] = lp_col(&l, 0.0, 1.0, g->node_cost[n], true);
    }
  }
  for (uint32_t c = 0; c < nc; c++) {
    m.ocol[c] = EX_NONE;
    if (m.live[c] && m.scc_size[m.scc[c]] > 1) {
      m.ocol[c] = lp_col(&l, 0.0, (double)(m.scc_size[m.scc[c]] - 1), 0.0, false);
    }
  }
  uint32_t maxrow = 3;
  for (uint32_t c = 0; c < nc; c++)
    if (g->class_start[c + 1] - g->class_start[c] + 2 > maxrow)
      maxrow = g->class_start[c + 1] - g->class_start[c] + 2;
  uint32_t *pstart = NULL, *par = NULL;
  if (g->has_negative) {
    if (!ex_parents(g, &pstart, &par)) {
      free(pstart), free(par);
      goto out;
    }
    for (uint32_t c = 0; c < nc; c++)
      if (pstart[c + 1] - pstart[c] + g->class_start[c + 1] - g->class_start[c] > maxrow)
        maxrow = pstart[c + 1] - pstart[c] + g->class_start[c + 1] - g->class_start[c];
  }
  ri = malloc(((size_t)maxrow + 1) * sizeof(int));
  rv = malloc(((size_t)maxrow + 1) * sizeof(double));
  if (!ri || !rv) {
    free(pstart), free(par);
    goto out;
  }
  uint8_t *isroot = calloc((size_t)nc + 1, 1);
  if (!isroot) {
    free(pstart), free(par);
    goto out;
  }
  for (uint32_t r = 0; r < g->n_roots; r++)
    isroot[g->roots[r]] = 1;
  for (uint32_t c = 0; c < nc; c++) {
    if (!m.live[c])
      continue;
    int k = 0;
    for (uint32_t n = g->class_start[c]; n < g->class_start[c + 1]; n++)
      if (m.col[n] != EX_NONE)
        ri[k] = (int)m.col[n], rv[k++] = 1.0;
    lp_row(&l, k, ri, rv, isroot[c] ? 'E' : 'L', 1.0);
    if (g->has_negative && !isroot[c]) {
      /* chosen(c) <= number of chosen parent nodes */
      int k2 = k;
      for (uint32_t q = pstart[c]; q < pstart[c + 1]; q++) {
        uint32_t pn = par[q];
        if (m.col[pn] == EX_NONE)
          continue;
        bool dup = false;
        for (int z = k; z < k2; z++)
          dup |= ri[z] == (int)m.col[pn];
        if (!dup)
          ri[k2] = (int)m.col[pn], rv[k2++] = -1.0;
      }
      lp_row(&l, k2, ri, rv, 'L', 0.0);
    }
  }
  free(isroot), free(pstart), free(par);
  for (uint32_t n = 0; n < nn; n++) {
    if (m.col[n] == EX_NONE)
      continue;
    uint32_t c = g->node_class[n];
    for (uint32_t k = g->child_start[n]; k < g->child_start[n + 1]; k++) {
      uint32_t dc = g->child[k];
      bool seen = false;
      for (uint32_t j = g->child_start[n]; j < k; j++)
        seen |= g->child[j] == dc;
      if (seen)
        continue;
      /* x_n - sum_{m in dc} x_m <= 0 */
      int z = 0;
      ri[z] = (int)m.col[n], rv[z++] = 1.0;
      for (uint32_t q = g->class_start[dc]; q < g->class_start[dc + 1]; q++)
        if (m.col[q] != EX_NONE)
          ri[z] = (int)m.col[q], rv[z++] = -1.0;
      lp_row(&l, z, ri, rv, 'L', 0.0);
      if (m.scc[dc] == m.scc[c] && m.ocol[c] != EX_NONE) {
        double big = (double)m.scc_size[m.scc[c]];
        int cols[3] = {(int)m.ocol[c], (int)m.ocol[dc], (int)m.col[n]};
        double vals[3] = {1.0, -1.0, -big};
        lp_row(&l, 3, cols, vals, 'G', 1.0 - big);
      }
    }
  }

  if (l.oom)
    goto out;
  ncols = l.ncols;
  cbc = Cbc_newModel();
  if (!cbc || !lp_load(&l, cbc))
    goto out;
  Cbc_setLogLevel(cbc, p->log_level);
  /* CBC 2.10.8's CglPreProcess crashes in postProcess on some of these
   * models (tensat/bert_acyclic); the model is already presolved by the
   * pruning above, so preprocessing is switched off. */
  Cbc_setParameter(cbc, "preprocess", "off");
  /* Zero-half cut separation ran for a minute on tensat/bert_acyclic
   * without looking at the clock; without it the time limit holds. */
  Cbc_setParameter(cbc, "zeroHalfCuts", "off");

  /* MIP start: the heuristic's choice. */
  start = calloc((size_t)ncols + 1, sizeof(double));
  int *sidx = malloc(((size_t)ncols + 1) * sizeof(int));
  if (!start || !sidx) {
    free(sidx);
    goto out;
  }
  for (uint32_t c = 0; c < nc; c++)
    if (choice[c] != EX_NONE && m.col[choice[c]] != EX_NONE)
      start[m.col[choice[c]]] = 1.0;
  start_orders(&m, choice, start);
  for (uint32_t i = 0; i < ncols; i++)
    sidx[i] = (int)i;
  Cbc_setMIPStartI(cbc, (int)ncols, sidx, start);
  free(sidx);
  if (p->time_limit_s > 0)
    Cbc_setMaximumSeconds(cbc, p->time_limit_s);
  Cbc_setAllowableGap(cbc, 1e-7);
  Cbc_setAllowableFractionGap(cbc, 1e-9);

  int rc = Cbc_solve(cbc);
  st = EX_OK;
  const double *sol = Cbc_bestSolution(cbc);
  if (rc >= 0 && sol) {
    for (uint32_t c = 0; c < nc; c++)
      tch[c] = EX_NONE;
    for (uint32_t n = 0; n < nn; n++)
      if (m.col[n] != EX_NONE && sol[m.col[n]] > 0.5)
        tch[g->node_class[n]] = n;
    ex_trim(g, tch);
    if (ex_check(g, tch, NULL) == EX_OK) {
      double v = ex_dag_cost(g, tch);
      if (v < best) {
        best = v;
        memcpy(choice, tch, (size_t)nc * sizeof(uint32_t));
      }
    }
  }
  *optimal = rc >= 0 && Cbc_isProvenOptimal(cbc);
  double lb = Cbc_getBestPossibleObjValue(cbc);
  /* CBC reports its bound on the shrunk model, which has the same optimum;
   * clamp numerical noise so lb <= the reported cost, and report the cost
   * itself when optimality is proven. */
  if (*optimal || !isfinite(lb) || lb > best)
    lb = *optimal ? best : (isfinite(lb) && lb > best ? best : lb);
  *lower_bound = lb;
out:
  if (cbc)
    Cbc_deleteModel(cbc);
  lp_free(&l);
  free(m.cand), free(m.live), free(m.col), free(m.scc), free(m.scc_size), free(m.ocol);
  free(tc), free(tch), free(ri), free(rv), free(start);
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
