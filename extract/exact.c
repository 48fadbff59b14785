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
 * the rounds few: CBC's cut loop calls back into ex_separate(), which finds
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
 * Two steps before the branch and bound are described in their own files:
 * the lower bound without the solver (costs >= 0) in exact_bound.c, and
 * the LP stage (mandatory classes, the LP relaxation, reduced-cost fixing)
 * in exact_reduce.c.
 *
 * The DAG-aware heuristic's answer is handed to CBC as a MIP start, so the
 * incumbent is never worse than it. A solution with cycles is also
 * repaired into an acyclic one (ex_repair()), which becomes the incumbent when
 * it is cheaper. On the time limit, the result is the best acyclic solution
 * seen, with the best lower bound proven (each round's model relaxes the
 * problem, so its bound holds). A node cost beyond EX_SOLVER_MAX_COST in
 * magnitude is out of the solver's range: the heuristic's answer is then
 * the result, unproved, with the combinatorial bound.
 *
 * Files (declarations shared between them in exact_internal.h, the rest
 * static; the exact_*.c files are built only with CBC, see meson.build):
 *   exact.c         this overview, the shrinking of the model, its rows,
 *                   the solver loop (rounds of CBC) and the entry point;
 *   exact_lp.c      the model collected as arrays and loaded into CBC;
 *   exact_bound.c   the combinatorial lower bound;
 *   exact_cycles.c  cycle rows from solutions and from LP solutions (CBC's
 *                   cut callback), and the repair of cyclic solutions;
 *   exact_reduce.c  the LP stage. */
#include "extract/ex_internal.h"
#include "util/alloc.h"

#include <math.h>
#include <string.h>

#ifdef EX_HAVE_CBC
#include "extract/exact_internal.h"

/* Classes with at most this many nodes get the pairwise dominance check. */
#define EX_DOMINANCE_MAX 256

/* Costs the solver is given at most (in magnitude). CLP asserts that every
 * objective coefficient is below 1e25, and its tolerances are absolute long
 * before that: a model with a larger cost is not solved (see below). */
#define EX_SOLVER_MAX_COST 1e15

/* Marks the classes reachable from the roots through candidate nodes. */
bool ex_mark_live(model *m) {
  const ex_graph *g = m->g;
  uint32_t *stk = tl_xmalloc(((size_t)g->n_classes + 1) * sizeof(uint32_t));
  if (!stk) return false;
  memset(m->live, 0, g->n_classes);
  uint32_t sp = 0;
  for (uint32_t r = 0; r < g->n_roots; r++)
    if (!m->live[g->roots[r]]) m->live[g->roots[r]] = 1, stk[sp++] = g->roots[r];
  while (sp) {
    uint32_t c = stk[--sp];
    for (uint32_t n = g->class_start[c]; n < g->class_start[c + 1]; n++) {
      if (!m->cand[n]) continue;
      for (uint32_t k = g->child_start[n]; k < g->child_start[n + 1]; k++)
        if (!m->live[g->child[k]]) m->live[g->child[k]] = 1, stk[sp++] = g->child[k];
    }
  }
  tl_free(stk);
  return true;
}

/* Is every child class of a also a child class of b? (small lists: quadratic) */
static bool children_subset(const ex_graph *g, uint32_t a, uint32_t b) {
  for (uint32_t i = g->child_start[a]; i < g->child_start[a + 1]; i++) {
    uint32_t j = g->child_start[b];
    while (j < g->child_start[b + 1] && g->child[j] != g->child[i]) j++;
    if (j == g->child_start[b + 1]) return false;
  }
  return true;
}

static void dominance(model *m) {
  const ex_graph *g = m->g;
  for (uint32_t c = 0; c < g->n_classes; c++) {
    uint32_t b = g->class_start[c], e = g->class_start[c + 1];
    if (!m->live[c] || e - b > EX_DOMINANCE_MAX) continue;
    for (uint32_t x = b; x < e; x++) {
      if (!m->cand[x]) continue;
      for (uint32_t y = b; y < e && m->cand[x]; y++) {
        if (y == x || !m->cand[y] || g->node_cost[y] > g->node_cost[x]) continue;
        /* y dominates x; on a tie in both directions keep the lower id. */
        if (children_subset(g, y, x) && !(g->node_cost[y] == g->node_cost[x] && children_subset(g, x, y) && y > x))
          m->cand[x] = 0;
      }
    }
  }
}

/* Tarjan's SCC algorithm, iterative, over live classes and candidate edges.
 * SCC ids are given in completion order: every SCC reachable from another
 * has a smaller id. */
bool ex_sccs(model *m) {
  const ex_graph *g = m->g;
  uint32_t nc = g->n_classes;
  uint32_t *idx = tl_xmalloc(((size_t)nc + 1) * sizeof(uint32_t));
  uint32_t *low = tl_xmalloc(((size_t)nc + 1) * sizeof(uint32_t));
  uint32_t *stk = tl_xmalloc(((size_t)nc + 1) * sizeof(uint32_t));
  uint8_t *on = tl_xcalloc((size_t)nc + 1, 1);
  uint32_t *cs = tl_xmalloc(((size_t)nc + 1) * sizeof(uint32_t)); /* call stack: class */
  uint32_t *cn = tl_xmalloc(((size_t)nc + 1) * sizeof(uint32_t)); /* current node */
  uint32_t *ck = tl_xmalloc(((size_t)nc + 1) * sizeof(uint32_t)); /* current child slot */
  bool ok = idx && low && stk && on && cs && cn && ck;
  uint32_t next = 0, sp = 0, ns = 0;
  for (uint32_t c = 0; ok && c < nc; c++) idx[c] = EX_NONE, m->scc[c] = EX_NONE;
  for (uint32_t s = 0; ok && s < nc; s++) {
    if (!m->live[s] || idx[s] != EX_NONE) continue;
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
        if (ck[fp - 1] == EX_NONE) ck[fp - 1] = g->child_start[n];
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
      if (fp && low[v] < low[cs[fp - 1]]) low[cs[fp - 1]] = low[v];
    }
  }
  tl_free(idx), tl_free(low), tl_free(stk), tl_free(on), tl_free(cs), tl_free(cn), tl_free(ck);
  m->n_scc = ns;
  return ok;
}

/* ---- the model's rows ------------------------------------------------------ */

static int edge_cmp(const void *a, const void *b) {
  const edge *x = a, *y = b;
  if (x->child != y->child) return x->child < y->child ? -1 : 1;
  return (x->node > y->node) - (x->node < y->node);
}

/* The coverage rows of class c: for every child class d of its nodes,
 *   sum of x_n over c's nodes having d as a child - X_d <= 0.
 * (child, node) pairs are sorted so each d is one run, linear in the
 * class's edges. False on OOM. */
static bool cover_rows(const model *m, lp *l, uint32_t c, edges *eb) {
  const ex_graph *g = m->g;
  eb->n = 0;
  for (uint32_t n = g->class_start[c]; n < g->class_start[c + 1]; n++) {
    if (m->col[n] == EX_NONE) continue;
    for (uint32_t k = g->child_start[n]; k < g->child_start[n + 1]; k++) {
      if (eb->n == eb->cap) {
        size_t nc = eb->cap ? 2 * eb->cap : 64;
        edge *v = tl_xrealloc(eb->v, nc * sizeof *v);
        if (!v) return false;
        eb->v = v, eb->cap = nc;
      }
      eb->v[eb->n++] = (edge){g->child[k], n};
    }
  }
  if (eb->n > 1) qsort(eb->v, eb->n, sizeof *eb->v, edge_cmp);
  for (size_t i = 0; i < eb->n;) {
    uint32_t d = eb->v[i].child;
    for (; i < eb->n && eb->v[i].child == d; i++)
      if (i == 0 || eb->v[i - 1].child != d || eb->v[i - 1].node != eb->v[i].node)
        ex_lp_term(l, m->col[eb->v[i].node], 1.0);
    for (uint32_t q = g->class_start[d]; q < g->class_start[d + 1]; q++)
      if (m->col[q] != EX_NONE) ex_lp_term(l, m->col[q], -1.0);
    ex_lp_row(l, 'L', 0.0);
  }
  return true;
}

/* Columns for the candidate nodes of live classes (m->col) and the rows
 * that do not change between rounds: one per class (= 1 for roots and
 * mandatory classes, <= 1 otherwise), the coverage rows, and with negative
 * costs the chosen-parent rows. False on OOM. */
bool ex_build_rows(model *m, lp *l, work *w, bool mand) {
  const ex_graph *g = m->g;
  w->n_mrow = 0;
  for (uint32_t n = 0; n < g->n_nodes; n++) {
    m->col[n] = EX_NONE;
    if (m->cand[n] && m->live[g->node_class[n]]) m->col[n] = ex_lp_col(l, g->node_cost[n]);
  }
  for (uint32_t c = 0; c < g->n_classes; c++) {
    if (!m->live[c]) continue;
    for (uint32_t n = g->class_start[c]; n < g->class_start[c + 1]; n++)
      if (m->col[n] != EX_NONE) ex_lp_term(l, m->col[n], 1.0);
    if (mand && m->mand[c] && !m->isroot[c]) {
      if (!ex_lp_grow((void **)&w->mrow, &w->cap_mrow, w->n_mrow + 1, sizeof(uint32_t))) return false;
      w->mrow[w->n_mrow++] = l->nrows;
    }
    ex_lp_row(l, m->isroot[c] || (mand && m->mand[c]) ? 'E' : 'L', 1.0);
    if (g->has_negative && !m->isroot[c]) {
      /* X_c <= number of chosen parent nodes */
      for (uint32_t n = g->class_start[c]; n < g->class_start[c + 1]; n++)
        if (m->col[n] != EX_NONE) ex_lp_term(l, m->col[n], 1.0);
      for (uint32_t q = w->pstart[c]; q < w->pstart[c + 1]; q++) {
        uint32_t pn = w->par[q];
        /* A parent with c twice is listed twice: count it once. */
        if (m->col[pn] != EX_NONE && (q == w->pstart[c] || w->par[q - 1] != pn)) ex_lp_term(l, m->col[pn], -1.0);
      }
      ex_lp_row(l, 'L', 0.0);
    }
    if (!cover_rows(m, l, c, &w->eb)) return false;
  }
  return !l->oom;
}

/* ---- the solver loop ------------------------------------------------------ */

/* Rounds of CBC on model m until a solution without cycles comes back or the
 * deadline passes. A cheaper acyclic solution (the solver's or a repaired
 * one) replaces choice and *best; *lb rises to each round's bound, which holds
 * for m (every round relaxes it); *optimal is set when the last round
 * proved its solution optimal for m, within the relative gap. */
ex_status ex_rounds(model *m, work *w, const ex_params *p, double deadline, double gap, bool mand, uint32_t *choice,
                    double *best, double *lb, bool *optimal) {
  const ex_graph *g = m->g;
  uint32_t nc = g->n_classes;
  lp l = {0};
  sep sp = {0};
  double *start = NULL;
  int *sidx = NULL;
  Cbc_Model *cbc = NULL;
  ex_status st = EX_ERR_NOMEM;
  if (!ex_build_rows(m, &l, w, mand)) goto out;
  start = tl_xmalloc(((size_t)l.ncols + 1) * sizeof(double));
  sidx = tl_xmalloc(((size_t)l.ncols + 1) * sizeof(int));
  if (!start || !sidx) goto out;
  for (uint32_t i = 0; i < l.ncols; i++) sidx[i] = (int)i;
  uint32_t n_live = 0;
  for (uint32_t c = 0; c < nc; c++) n_live += m->live[c];
  bool cyclic = m->n_scc < n_live; /* some SCC has two classes or more */
  if (cyclic && !ex_sep_init(&sp, m, &l)) goto out;
  st = EX_OK;

  /* Solve, cut the cycles of the solution, solve again. */
  for (;;) {
    double left = deadline - ex_now();
    if (left < 0.01) break;
    if (!(cbc = ex_lp_load(&l, true))) {
      st = EX_ERR_NOMEM;
      goto out;
    }
    Cbc_setLogLevel(cbc, p->log_level);
    /* Preprocessing stays off: it renumbers and drops columns, while
     * ex_separate() and the MIP start read columns by our numbering (and CBC
     * 2.10.8's CglPreProcess::postProcess crashed on tensat/bert_acyclic).
     * The pruning above already does the presolve that matters here. */
    Cbc_setParameter(cbc, "preprocess", "off");
    /* Zero-half cut separation ran for a minute on tensat/bert_acyclic
     * without looking at the clock; without it the time limit holds. */
    Cbc_setParameter(cbc, "zeroHalfCuts", "off");
    /* The limit is wall-clock time, as documented (CBC counts CPU time by
     * default, which overruns on a loaded machine). */
    Cbc_setParameter(cbc, "timeMode", "elapsed");
    if (isfinite(left)) Cbc_setMaximumSeconds(cbc, left);
    if (cyclic) Cbc_addCutCallback(cbc, ex_separate, "cycles", &sp);
    Cbc_setAllowableGap(cbc, 1e-7);
    Cbc_setAllowableFractionGap(cbc, gap);
    /* MIP start: the incumbent, which satisfies every row added so far. */
    for (uint32_t i = 0; i < l.ncols; i++) start[i] = 0.0;
    for (uint32_t c = 0; c < nc; c++)
      if (choice[c] != EX_NONE && m->col[choice[c]] != EX_NONE) start[m->col[choice[c]]] = 1.0;
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
    if (sane && isfinite(rb) && rb > *lb) *lb = rb;
    if (!sane || !sol) break;
    ex_chosen(m, sol, !g->has_negative, w->pick);
    uint32_t cuts = ex_cut_cycles(m, &l, w->pick, w->colour, w->stk, w->pos);
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
        if (!other || other == sol) continue;
        ex_chosen(m, other, !g->has_negative, w->alt);
        cuts += ex_cut_cycles(m, &l, w->alt, w->colour, w->stk, w->pos);
      }
      ex_chosen(m, sol, !g->has_negative, w->pick);
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
    ex_chosen(m, sol, false, w->pick);
    if (!ex_repair(m, w->pstart, w->par, w->pick, w->alt, w->tc, w->left_n, w->stk)) {
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
  if (cbc) Cbc_deleteModel(cbc);
  ex_lp_free(&l);
  tl_free(start), tl_free(sidx);
  ex_sep_free(&sp);
  return st;
}

/* ---- the entry point ------------------------------------------------------ */

static bool model_init(model *m, const ex_graph *g) {
  size_t nc = g->n_classes, nn = g->n_nodes;
  *m = (model){.g = g};
  m->cand = tl_xmalloc(nn + 1);
  m->live = tl_xmalloc(nc + 1);
  m->isroot = tl_xcalloc(nc + 1, 1);
  m->mand = tl_xcalloc(nc + 1, 1);
  m->col = tl_xmalloc((nn + 1) * sizeof(uint32_t));
  m->scc = tl_xmalloc((nc + 1) * sizeof(uint32_t));
  if (!m->cand || !m->live || !m->isroot || !m->mand || !m->col || !m->scc) return false;
  for (uint32_t r = 0; r < g->n_roots; r++) m->isroot[g->roots[r]] = 1;
  return true;
}

static void model_free(model *m) {
  tl_free(m->cand), tl_free(m->live), tl_free(m->isroot), tl_free(m->mand), tl_free(m->col), tl_free(m->scc);
}

static bool work_init(work *w, const ex_graph *g) {
  size_t nc = g->n_classes, nn = g->n_nodes;
  *w = (work){0};
  w->tc = tl_xmalloc((nc + 1) * sizeof(double));
  w->pick = tl_xmalloc((nc + 1) * sizeof(uint32_t));
  w->alt = tl_xmalloc((nc + 1) * sizeof(uint32_t));
  w->stk = tl_xmalloc((nc + 1) * sizeof(uint32_t));
  w->pos = tl_xmalloc((nc + 1) * sizeof(uint32_t));
  w->colour = tl_xmalloc(nc + 1);
  w->ok = tl_xmalloc(nc + 1);
  w->left_n = tl_xmalloc((nn + 1) * sizeof(uint32_t));
  return w->tc && w->pick && w->alt && w->stk && w->pos && w->colour && w->ok && w->left_n;
}

static void work_free(work *w) {
  tl_free(w->pstart), tl_free(w->par), tl_free(w->tc), tl_free(w->pick), tl_free(w->alt), tl_free(w->stk);
  tl_free(w->pos), tl_free(w->colour), tl_free(w->ok), tl_free(w->left_n), tl_free(w->eb.v), tl_free(w->mrow);
}

ex_status ex_exact_choice(const ex_graph *g, const ex_params *p, uint32_t *choice, double *lower_bound_out,
                          bool *optimal, tl_error *d) {
  if (!ex_solver_load(d)) return EX_ERR_SOLVER;
  double t0 = ex_now();
  double deadline = p->time_limit_s > 0 ? t0 + p->time_limit_s : INFINITY;
  ex_status st = ex_dag_choice(g, choice, d);
  if (st != EX_OK) return st;
  for (uint32_t r = 0; r < g->n_roots; r++)
    if (choice[g->roots[r]] == EX_NONE) return EX_OK; /* infeasible: ex_extract reports it */
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
  if (!ok) goto out;
  /* Extractability comes from the tree pass: a class with no tree choice
   * has no acyclic extraction at all. */
  if (ex_tree_choice(g, w.pick, w.tc) != EX_OK) goto out;
  for (uint32_t n = 0; n < nn; n++) {
    uint32_t c = g->node_class[n];
    m.cand[n] = 1;
    for (uint32_t k = g->child_start[n]; k < g->child_start[n + 1]; k++)
      if (g->child[k] == c || w.pick[g->child[k]] == EX_NONE) m.cand[n] = 0;
  }
  if (!ex_mark_live(&m)) goto out;
  if (!g->has_negative) {
    dominance(&m);
    if (!ex_mark_live(&m)) goto out;
  }
  /* The incumbent must stay expressible: un-prune its nodes (dominance may
   * have removed one that the heuristic chose). */
  for (uint32_t c = 0; c < nc; c++)
    if (choice[c] != EX_NONE) m.cand[choice[c]] = 1, m.live[c] = 1;
  if (!ex_mark_live(&m) || !ex_sccs(&m)) goto out;

  st = EX_OK;
  if (!g->has_negative) {
    double b = ex_lower_bound(&m);
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
  /* Costs out of the solver's range: the DAG heuristic's choice stands,
   * not proved optimal, with the combinatorial bound when there is one. */
  for (uint32_t n = 0; n < nn; n++)
    if (m.cand[n] && m.live[g->node_class[n]] && !(fabs(g->node_cost[n]) <= EX_SOLVER_MAX_COST)) goto out;
  if (!ex_parents(g, &w.pstart, &w.par)) {
    st = EX_ERR_NOMEM;
    goto out;
  }
  bool mand_rows = false;
  st = ex_reduce(&m, &h, &w, p, deadline, choice, &best, &lb, optimal, &mand_rows);
  if (st == EX_OK && !*optimal) st = ex_rounds(&m, &w, p, deadline, 1e-9, mand_rows, choice, &best, &lb, optimal);
out:
  if (st == EX_OK) {
    /* Bounds come from the shrunk model, which has the same optimum; clamp
     * numerical noise so lb <= the reported cost, and report the cost itself
     * when optimality is proven. */
    *lower_bound_out = *optimal || lb > best ? best : lb;
  }
  model_free(&m), model_free(&h);
  work_free(&w);
  if (st == EX_ERR_NOMEM) ex_fail(d, st, "out of memory in exact extraction");
  return st;
}

#else

ex_status ex_exact_choice(const ex_graph *g, const ex_params *p, uint32_t *choice, double *lower_bound, bool *optimal,
                          tl_error *d) {
  (void)g, (void)p, (void)choice, (void)lower_bound, (void)optimal;
  return ex_fail(d, EX_ERR_SOLVER,
                 "exact extraction needs CBC (coinor-libcbc-dev); "
                 "this tlaloc was built without it");
}

#endif
