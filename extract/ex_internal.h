/* ex_internal.h - helpers shared by the extractors (private to extract/). */
#ifndef EX_INTERNAL_H
#define EX_INTERNAL_H

#include "extract/extract.h"

#include <stdarg.h>
#include <stdlib.h>

/* Wall clock in seconds (monotonic). */
double ex_now(void);
/* printf into d->msg (d may be NULL). Returns st so callers can `return ex_fail(...)`. */
ex_status ex_fail(tl_error *d, ex_status st, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/* Tree-greedy core, shared by EX_TREE and as the starting point of the
 * others: fills choice[] for every class that has an acyclic extraction
 * (EX_NONE elsewhere) and cost[] with its tree cost (INFINITY elsewhere). */
ex_status ex_tree_choice(const ex_graph *g, uint32_t *choice, double *cost);
/* The same, with the parents index (ex_parents) already built. */
ex_status ex_tree_choice_par(const ex_graph *g, const uint32_t *pstart, const uint32_t *par, uint32_t *choice,
                             double *cost);

/* DAG-aware and exact extractors: fill choice[] (all classes; callers trim
 * to the reachable part). */
ex_status ex_dag_choice(const ex_graph *g, uint32_t *choice, tl_error *d);
/* The DAG extractor's local search (step 3) from a given choice, which must
 * cover every class that has an acyclic extraction; never raises its DAG
 * cost. */
ex_status ex_dag_improve(const ex_graph *g, uint32_t *choice);
ex_status ex_exact_choice(const ex_graph *g, const ex_params *p, uint32_t *choice, double *lower_bound, bool *optimal,
                          tl_error *d);

/* Keeps choice[] only on classes reachable from the roots (others EX_NONE).
 * The choice must cover every reachable class. */
void ex_trim(const ex_graph *g, uint32_t *choice);

/* Parents index: for class c, the nodes having c as a child (once per
 * occurrence) are par[start[c] .. start[c+1]). Both arrays malloc'd (the
 * caller frees them, also on failure); false on OOM. */
bool ex_parents(const ex_graph *g, uint32_t **start, uint32_t **par);

/* Binary min-heap of (key, id) pairs, used by the Knuth-style passes. */
typedef struct ex_heap {
  double *key;
  uint32_t *id;
  uint32_t n, cap;
} ex_heap;
bool ex_heap_push(ex_heap *h, double key, uint32_t id);
bool ex_heap_pop(ex_heap *h, double *key, uint32_t *id);
void ex_heap_free(ex_heap *h);

#endif
