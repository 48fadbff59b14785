/* exact_reduce.c - the exact extractor's LP stage: mandatory classes, the
 * LP relaxation solved by CLP, reduced-cost fixing, and one solve of a
 * smaller problem for a better incumbent. It runs between the shrinking of
 * the model and the branch and bound (exact.c), only removes nodes and
 * raises the bound, and is the only user of CLP, so it is a file of its own.
 *
 * LP stage (before the branch and bound). The LP relaxation of the model
 * (exact.c) is weak where classes are shared: a class used by two
 * half-chosen parents is paid half, and the fractions shrink with depth
 * (tensat/bert_acyclic: LP 0.374, optimum 0.708). Three exact steps,
 * repeated while they remove nodes:
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
 * rounds as the branch and bound (ex_rounds), for an incumbent only. On
 * tensat/bert_acyclic this takes the model from 20244 to 969 columns and
 * its LP value from 0.589 to 0.7078. */
#include "extract/exact_internal.h"
#include "util/alloc.h"

#include <float.h>
#include <math.h>
#include <string.h>


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

/* ---- mandatory classes and reduced-cost fixing ---------------------------- */

/* w->ok[c] = 1 for the classes that have an acyclic extraction through
 * candidate nodes without using class `banned` (EX_NONE: none banned).
 * Knuth-style, as in tree.c but without costs: a node settles its class
 * once all its children have settled. Linear in the graph. */
static void extractable(const model *m, work *w, uint32_t banned) {
  const ex_graph *g = m->g;
  uint32_t qh = 0, qt = 0;
  memset(w->ok, 0, g->n_classes);
  for (uint32_t n = 0; n < g->n_nodes; n++) {
    w->left_n[n] = m->cand[n] ? g->child_start[n + 1] - g->child_start[n] : EX_NONE;
    uint32_t c = g->node_class[n];
    if (w->left_n[n] == 0 && c != banned && !w->ok[c]) w->ok[c] = 1, w->stk[qt++] = c;
  }
  while (qh < qt) {
    uint32_t c = w->stk[qh++];
    for (uint32_t k = w->pstart[c]; k < w->pstart[c + 1]; k++) {
      uint32_t p = w->par[k], pc = g->node_class[p];
      if (w->left_n[p] == EX_NONE || --w->left_n[p] != 0 || pc == banned || w->ok[pc]) continue;
      w->ok[pc] = 1, w->stk[qt++] = pc; /* each class once: qt <= n_classes */
    }
  }
}

/* Drops candidate nodes with a child that has no acyclic extraction any
 * more (after nodes were fixed to 0), then recomputes the live classes.
 * One pass suffices: extractability is witnessed by nodes whose children
 * are all extractable, and those stay. */
static bool drop_dead(model *m, work *w) {
  const ex_graph *g = m->g;
  extractable(m, w, EX_NONE);
  for (uint32_t n = 0; n < g->n_nodes; n++)
    for (uint32_t k = g->child_start[n]; m->cand[n] && k < g->child_start[n + 1]; k++)
      if (!w->ok[g->child[k]]) m->cand[n] = 0;
  return ex_mark_live(m);
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
static void find_mandatory(model *m, work *w, const uint32_t *choice, uint64_t *budget) {
  const ex_graph *g = m->g;
  uint64_t cost = (uint64_t)g->n_nodes + g->child_start[g->n_nodes] + g->n_classes;
  for (uint32_t c = 0; c < g->n_classes; c++) {
    if (choice[c] == EX_NONE || m->isroot[c] || m->mand[c]) continue;
    if (*budget < cost) return;
    *budget -= cost;
    extractable(m, w, c);
    for (uint32_t r = 0; r < g->n_roots && !m->mand[c]; r++)
      if (!w->ok[g->roots[r]]) m->mand[c] = 1;
  }
}

/* The incumbent's nodes stay in the model (so it stays a MIP start). */
static bool keep_incumbent(model *m, const uint32_t *choice) {
  const ex_graph *g = m->g;
  bool changed = false;
  for (uint32_t c = 0; c < g->n_classes; c++)
    if (choice[c] != EX_NONE && !m->cand[choice[c]]) m->cand[choice[c]] = 1, changed = true;
  return !changed || ex_mark_live(m);
}

/* Solves the LP relaxation of l with CLP: its value, solution and reduced
 * costs (arrays of l->ncols). When plain is not NULL, the rows listed in
 * relax[0..n_relax) are then relaxed to <= and the LP solved again from
 * there (primal simplex, within a share of the time): *plain is that
 * value, NAN when unsolved.
 * Returns 1 when the first solve is proven optimal, 0 when not (time
 * limit, numerical trouble), -1 on OOM. */
static int lp_relax(const lp *l, double seconds, double *value, double *x, double *rc, const uint32_t *relax,
                    uint32_t n_relax, double *plain) {
  CoinBigIndex *start = NULL;
  int *idx = NULL;
  double *val = NULL;
  if (!ex_lp_csc(l, &start, &idx, &val)) return -1;
  Clp_Simplex *clp = Clp_newModel();
  int ok = -1;
  if (clp) {
    Clp_loadProblem(clp, (int)l->ncols, (int)l->nrows, start, idx, val, l->clb, l->cub, l->obj, l->rlb, l->rub);
    Clp_setLogLevel(clp, 0);
    if (isfinite(seconds)) Clp_setMaximumSeconds(clp, seconds);
    Clp_initialSolve(clp);
    ok = 0;
    if (Clp_isProvenOptimal(clp)) {
      *value = Clp_objectiveValue(clp);
      memcpy(x, Clp_getColSolution(clp), (size_t)l->ncols * sizeof(double));
      memcpy(rc, Clp_getReducedCost(clp), (size_t)l->ncols * sizeof(double));
      ok = 1;
      if (plain) {
        double *lo = Clp_rowLower(clp);
        for (uint32_t i = 0; i < n_relax; i++) lo[relax[i]] = -DBL_MAX;
        /* Bounded: when it takes long, the rows moved the LP a lot. */
        if (isfinite(seconds)) Clp_setMaximumSeconds(clp, seconds * EX_PLAIN_SHARE);
        Clp_primal(clp, 0);
        *plain = Clp_isProvenOptimal(clp) ? Clp_objectiveValue(clp) : NAN;
      }
    }
    Clp_deleteModel(clp);
  }
  tl_free(start), tl_free(idx), tl_free(val);
  return ok;
}

/* ---- reduction by the LP relaxation --------------------------------------- */

/* A cheaper incumbent from a smaller problem: model m without the nodes
 * that the LP relaxation (value v, solution x, reduced costs rc) leaves at
 * 0 with a reduced cost above half the gap, solved by ex_rounds() within a
 * share of the time left. Any acyclic extraction of the smaller problem is
 * one of the whole, so only the incumbent is taken from it (its bound says
 * nothing about the whole). This matters when the heuristics' incumbent is
 * far from the optimum, which keeps reduced-cost fixing weak
 * (tensat/bert_acyclic: 0.827, while the smaller problem's optimum, 0.708,
 * is the whole one's). */
static ex_status lp_heuristic(const model *m, model *h, work *w, const ex_params *p, double deadline, const double *x,
                              const double *rc, double v, uint32_t *choice, double *best, uint64_t *budget) {
  const ex_graph *g = m->g;
  double tau = (*best - v) / 2;
  uint32_t total = 0, kept = 0;
  memcpy(h->cand, m->cand, g->n_nodes);
  memcpy(h->mand, m->mand, g->n_classes);
  for (uint32_t n = 0; n < g->n_nodes; n++) {
    uint32_t c = m->col[n];
    if (c == EX_NONE) continue;
    total++;
    if (x[c] > EX_EPS || rc[c] <= tau)
      kept++;
    else
      h->cand[n] = 0;
  }
  /* Not worth a second solve when it would be about as large. */
  if ((double)kept > EX_HEUR_KEEP * total) return EX_OK;
  if (!ex_mark_live(h) || !keep_incumbent(h, choice) || !drop_dead(h, w) || !keep_incumbent(h, choice) || !ex_sccs(h))
    return EX_ERR_NOMEM;
  find_mandatory(h, w, choice, budget);
  double now = ex_now(), share = isfinite(deadline) ? (deadline - now) * EX_HEUR_SHARE : EX_HEUR_SECONDS;
  double hlb = -INFINITY;
  bool hopt = false;
  return ex_rounds(h, w, p, now + share, EX_HEUR_GAP, true, choice, best, &hlb, &hopt);
}

/* Before the branch and bound: rounds of (mandatory classes, LP relaxation,
 * reduced-cost fixing). With LP value v and reduced cost r_n > 0 of a node
 * at 0, every solution that uses n costs at least v + r_n (LP duality); when
 * that is above the incumbent's cost, n can go. Fewer nodes make more
 * classes mandatory, which raises the next LP value, and so on. The model
 * keeps every solution cheaper than the incumbent, so the LP value of the
 * reduced model, capped at the incumbent's cost, bounds the optimum. */
ex_status ex_reduce(model *m, model *h, work *w, const ex_params *p, double deadline, uint32_t *choice, double *best,
                    double *lb, bool *optimal, bool *mand_rows) {
  const ex_graph *g = m->g;
  lp l = {0};
  double *x = NULL, *rc = NULL;
  ex_status st = EX_OK;
  bool tried = false, changed = false;
  uint64_t budget = EX_MANDATORY_WORK;
  for (int round = 0; round < EX_REDUCE_ROUNDS; round++) {
    double left = deadline - ex_now();
    if (left < 0.05) break;
    find_mandatory(m, w, choice, &budget);
    ex_lp_free(&l);
    l = (lp){0};
    st = EX_ERR_NOMEM;
    if (!ex_build_rows(m, &l, w, true)) goto out;
    tl_free(x), tl_free(rc);
    x = tl_xmalloc(((size_t)l.ncols + 1) * sizeof(double));
    rc = tl_xmalloc(((size_t)l.ncols + 1) * sizeof(double));
    if (!x || !rc) goto out;
    double v, plain = NAN;
    int solved = lp_relax(&l, left, &v, x, rc, w->mrow, w->n_mrow, round == 0 ? &plain : NULL);
    if (solved < 0) goto out;
    st = EX_OK;
    if (!solved) break;
    if (round == 0) *mand_rows = isnan(plain) || v - plain > EX_MAND_GAIN * (*best - plain);
    double b = v < *best ? v : *best;
    if (b > *lb) *lb = b;
    if (closed(*best, *lb)) {
      *optimal = true;
      break;
    }
    if (!tried) {
      tried = true;
      st = lp_heuristic(m, h, w, p, deadline, x, rc, v, choice, best, &budget);
      if (st != EX_OK) goto out;
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
      if (c != EX_NONE && x[c] <= EX_EPS && rc[c] > 0 && v + rc[c] > cut) m->cand[n] = 0, fixed++;
    }
    if (!fixed) break;
    changed = true;
    st = EX_ERR_NOMEM;
    if (!keep_incumbent(m, choice) || !drop_dead(m, w) || !keep_incumbent(m, choice)) goto out;
    st = EX_OK;
  }
  if (changed && !ex_sccs(m)) st = EX_ERR_NOMEM;
out:
  ex_lp_free(&l);
  tl_free(x), tl_free(rc);
  return st;
}
