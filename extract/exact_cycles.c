/* exact_cycles.c - acyclicity for the exact extractor. The model (exact.c)
 * has no acyclicity rows at first; they are added lazily, from three
 * places that all deal with cycles of classes in a solution:
 *  - the cycles of each solution CBC returns become rows for the next
 *    round (ex_cut_cycles);
 *  - inside a round, CBC's cut loop calls ex_separate(), which finds the
 *    violated cycle rows of its LP solutions by shortest paths;
 *  - a solution with cycles is repaired into an acyclic one, which may
 *    become the incumbent (ex_repair).
 * Why the rows are valid is in exact.c's overview. */
#include "extract/exact_internal.h"
#include "util/alloc.h"

#include <math.h>
#include <string.h>

/* ---- cycles in a solution ------------------------------------------------- */

/* The node each class chose in a solution (EX_NONE where none); with
 * from_roots only the part reachable from the roots. */
void ex_chosen(const model *m, const double *sol, bool from_roots, uint32_t *pick) {
  const ex_graph *g = m->g;
  for (uint32_t c = 0; c < g->n_classes; c++) pick[c] = EX_NONE;
  for (uint32_t n = 0; n < g->n_nodes; n++)
    if (m->col[n] != EX_NONE && sol[m->col[n]] > 0.5) pick[g->node_class[n]] = n;
  if (from_roots) ex_trim(g, pick);
}

/* y_i - [i != 0] X_{c_i} terms of the cycle row for class c_i with successor d. */
static void cycle_terms(const model *m, lp *l, uint32_t c, uint32_t d, bool first) {
  const ex_graph *g = m->g;
  for (uint32_t n = g->class_start[c]; n < g->class_start[c + 1]; n++) {
    if (m->col[n] == EX_NONE) continue;
    bool to_d = false;
    for (uint32_t k = g->child_start[n]; k < g->child_start[n + 1] && !to_d; k++) to_d = g->child[k] == d;
    double coef = (to_d ? 1.0 : 0.0) - (first ? 0.0 : 1.0);
    if (coef != 0.0) ex_lp_term(l, m->col[n], coef);
  }
}

/* Adds one row per cycle of the chosen graph found by a colour DFS (each
 * back edge closes one). Returns the number of rows added; 0 means acyclic. */
uint32_t ex_cut_cycles(const model *m, lp *l, const uint32_t *pick, uint8_t *colour, uint32_t *stk, uint32_t *pos) {
  const ex_graph *g = m->g;
  uint32_t nc = g->n_classes, added = 0;
  memset(colour, 0, nc);
  for (uint32_t s = 0; s < nc && added < EX_CUTS_PER_ROUND; s++) {
    if (colour[s] || pick[s] == EX_NONE) continue;
    uint32_t sp = 0;
    stk[sp++] = s, colour[s] = 1, pos[s] = g->child_start[pick[s]];
    while (sp && added < EX_CUTS_PER_ROUND) {
      uint32_t c = stk[sp - 1], n = pick[c];
      if (pos[c] == g->child_start[n + 1]) {
        colour[c] = 2, sp--;
        continue;
      }
      uint32_t d = g->child[pos[c]++];
      if (pick[d] == EX_NONE || colour[d] == 2) continue;
      if (colour[d] == 0) {
        stk[sp++] = d, colour[d] = 1, pos[d] = g->child_start[pick[d]];
        continue;
      }
      /* d is on the stack: the cycle is d ... c -> d. */
      uint32_t i = sp;
      while (stk[i - 1] != d) i--;
      for (uint32_t j = i - 1; j < sp; j++) cycle_terms(m, l, stk[j], j + 1 < sp ? stk[j + 1] : d, j == i - 1);
      ex_lp_row(l, 'L', 0.0);
      added++;
    }
  }
  return added;
}

/* ---- cycle rows from the LP relaxation ------------------------------------ */

/* The support of LP solution x (the support type, exact_internal.h). */
static bool support_build(support *s, const model *m, const double *x) {
  const ex_graph *g = m->g;
  uint32_t nc = g->n_classes;
  s->n = 0;
  for (uint32_t c = 0; c < nc; c++) {
    s->start[c] = s->n;
    s->X[c] = 0;
    if (!m->live[c]) continue;
    uint32_t first = s->n;
    for (uint32_t n = g->class_start[c]; n < g->class_start[c + 1]; n++) {
      if (m->col[n] == EX_NONE || x[m->col[n]] < EX_EPS) continue;
      double v = x[m->col[n]];
      s->X[c] += v;
      for (uint32_t k = g->child_start[n]; k < g->child_start[n + 1]; k++) {
        uint32_t d = g->child[k];
        /* Edges only inside SCCs can close a cycle. */
        if (m->scc[d] != m->scc[c]) continue;
        uint32_t e = s->slot[d];
        if (e >= first && e < s->n && s->to[e] == d) {
          bool again = false; /* the same node with d twice adds once */
          for (uint32_t j = g->child_start[n]; j < k && !again; j++) again = g->child[j] == d;
          if (!again) s->y[e] += v;
          continue;
        }
        if (s->n == s->cap) {
          uint32_t ncap = s->cap ? 2 * s->cap : 1024;
          uint32_t *t = tl_xrealloc(s->to, (size_t)ncap * sizeof *t);
          if (!t) return false;
          s->to = t;
          double *y = tl_xrealloc(s->y, (size_t)ncap * sizeof *y);
          if (!y) return false;
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
static uint32_t shortest_cycle(support *s, uint32_t src, ex_heap *h, uint32_t *cyc) {
  uint32_t nt = 0, last = EX_NONE;
  double best = s->X[src] - EX_EPS;
  h->n = 0;
  s->dist[src] = 0, s->touched[nt++] = src;
  ex_heap_push(h, 0, src);
  double du;
  uint32_t u;
  while (ex_heap_pop(h, &du, &u)) {
    if (du > s->dist[u] || du >= best) continue;
    for (uint32_t e = s->start[u]; e < s->start[u + 1]; e++) {
      uint32_t v = s->to[e];
      double len = s->X[u] - s->y[e];
      double dv = du + (len > 0 ? len : 0);
      if (v == src) {
        if (dv < best) best = dv, last = u;
        continue;
      }
      if (dv < s->dist[v] && dv < best) {
        if (s->dist[v] == INFINITY) s->touched[nt++] = v;
        s->dist[v] = dv, s->pred[v] = u;
        if (!ex_heap_push(h, dv, v)) break; /* OOM: give up this source, keep what was found */
      }
    }
  }
  uint32_t k = 0;
  if (last != EX_NONE) {
    for (uint32_t v = last; v != src; v = s->pred[v]) cyc[k++] = v;
    cyc[k++] = src;
    /* Reverse into src, c_1, ..., c_{k-1}. */
    for (uint32_t i = 0, j = k - 1; i < j; i++, j--) {
      uint32_t t = cyc[i];
      cyc[i] = cyc[j], cyc[j] = t;
    }
  }
  for (uint32_t i = 0; i < nt; i++) s->dist[s->touched[i]] = INFINITY;
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

void COINLINKAGE_CB ex_separate(void *osi, void *osi_cuts, void *app) {
  sep *sp = app;
  const model *m = sp->m;
  const ex_graph *g = m->g;
  /* CBC's heuristics (e.g. its small sub-branch-and-bound) run the cut
   * generators on reduced copies of the model whose columns are not ours:
   * rows in our numbering would index past their matrix (a crash seen on
   * mixture_logpdf). Separate only on the model itself. */
  if (Osi_getNumCols(osi) != (int)sp->l->ncols) return;
  if (sp->oom || !support_build(&sp->s, m, Osi_getColSolution(osi))) {
    sp->oom = true;
    return;
  }
  memset(sp->s.on_cut, 0, g->n_classes);
  uint32_t cuts = 0;
  for (uint32_t c = 0; c < g->n_classes && cuts < EX_CUTS_PER_ROUND; c++) {
    if (!m->live[c] || !sp->cyclic[m->scc[c]] || sp->s.on_cut[c] || sp->s.X[c] < EX_EPS) continue;
    uint32_t k = shortest_cycle(&sp->s, c, &sp->h, sp->cyc);
    if (!k) continue;
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
      for (uint32_t i = 0; i < sp->row.rn; i++) ex_lp_term(sp->l, (uint32_t)sp->row.ri[i], sp->row.rv[i]);
      ex_lp_row(sp->l, 'L', 0.0);
      sp->kept++;
    }
    cuts++;
  }
}

bool ex_sep_init(sep *sp, const model *m, lp *l) {
  const ex_graph *g = m->g;
  uint32_t nc = g->n_classes;
  *sp = (sep){.m = m, .l = l};
  support *s = &sp->s;
  s->X = tl_xmalloc(((size_t)nc + 1) * sizeof(double));
  s->start = tl_xmalloc(((size_t)nc + 2) * sizeof(uint32_t));
  s->slot = tl_xmalloc(((size_t)nc + 1) * sizeof(uint32_t));
  s->dist = tl_xmalloc(((size_t)nc + 1) * sizeof(double));
  s->pred = tl_xmalloc(((size_t)nc + 1) * sizeof(uint32_t));
  s->touched = tl_xmalloc(((size_t)nc + 1) * sizeof(uint32_t));
  s->on_cut = tl_xmalloc((size_t)nc + 1);
  sp->cyc = tl_xmalloc(((size_t)nc + 1) * sizeof(uint32_t));
  sp->cyclic = tl_xcalloc((size_t)m->n_scc + 1, 1);
  uint32_t *size = tl_xcalloc((size_t)m->n_scc + 1, sizeof(uint32_t));
  bool ok =
      s->X && s->start && s->slot && s->dist && s->pred && s->touched && s->on_cut && sp->cyc && sp->cyclic && size;
  for (uint32_t c = 0; ok && c < nc; c++) {
    s->slot[c] = EX_NONE, s->dist[c] = INFINITY;
    if (m->live[c] && ++size[m->scc[c]] > 1) sp->cyclic[m->scc[c]] = 1;
  }
  tl_free(size);
  return ok;
}

void ex_sep_free(sep *sp) {
  support *s = &sp->s;
  tl_free(s->X), tl_free(s->start), tl_free(s->to), tl_free(s->y), tl_free(s->slot), tl_free(s->dist);
  tl_free(s->pred), tl_free(s->touched), tl_free(s->on_cut), tl_free(sp->cyc), tl_free(sp->cyclic);
  ex_lp_free(&sp->row);
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
bool ex_repair(const model *m, const uint32_t *pstart, const uint32_t *par, const uint32_t *pick, uint32_t *out,
               double *tcost, uint32_t *left, uint32_t *queue) {
  const ex_graph *g = m->g;
  uint32_t nc = g->n_classes, qh = 0, qt = 0;
  ex_heap h = {0};
  bool ok = false;
  for (uint32_t c = 0; c < nc; c++) out[c] = EX_NONE, tcost[c] = INFINITY;
  for (uint32_t n = 0; n < g->n_nodes; n++) {
    left[n] = g->child_start[n + 1] - g->child_start[n];
    if (left[n] || !m->cand[n]) continue;
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
      if (out[c] != EX_NONE) continue;
      key = g->node_cost[n];
      for (uint32_t k = g->child_start[n]; k < g->child_start[n + 1]; k++) key += tcost[g->child[k]];
    } else if (ex_heap_pop(&h, &key, &n)) {
      c = g->node_class[n];
      if (out[c] != EX_NONE) continue;
    } else {
      break;
    }
    out[c] = n, tcost[c] = key;
    for (uint32_t k = pstart[c]; k < pstart[c + 1]; k++) {
      uint32_t p = par[k], pc = g->node_class[p];
      if (out[pc] != EX_NONE || !m->cand[p] || --left[p] != 0) continue;
      if (pick[pc] == p) {
        queue[qt++] = pc; /* each node reaches zero once: qt <= n_classes */
        continue;
      }
      double v = g->node_cost[p];
      for (uint32_t j = g->child_start[p]; j < g->child_start[p + 1]; j++) v += tcost[g->child[j]];
      if (!ex_heap_push(&h, v, p)) goto out;
    }
  }
  ok = ex_dag_improve(g, out) == EX_OK;
out:
  ex_heap_free(&h);
  return ok;
}
