/* extract.c - the one entry point over all extractors: runs the chosen one,
 * times it, trims the choice to what the roots reach, and validates it, so
 * every caller (CLI, tests, bench, the optimizer) gets the same guarantee:
 * an EX_OK result is a valid acyclic extraction. */
#include "extract/ex_internal.h"
#include "util/alloc.h"

#include <assert.h>
#include <math.h>
#include <string.h>

/* The extractors behind one signature; indexed by ex_kind. */
typedef struct ex_extractor {
  const char *name;
  ex_status (*run)(const ex_graph *g, const ex_params *p, uint32_t *choice, double *lb, bool *optimal, tl_error *d);
} ex_extractor;

static ex_status run_tree(const ex_graph *g, const ex_params *p, uint32_t *choice, double *lb, bool *optimal,
                          tl_error *d) {
  (void)p, (void)lb, (void)optimal;
  double *tc = tl_xmalloc(((size_t)g->n_classes + 1) * sizeof(double));
  if (!tc) return ex_fail(d, EX_ERR_NOMEM, "out of memory in tree extraction");
  ex_status st = ex_tree_choice(g, choice, tc);
  tl_free(tc);
  if (st != EX_OK) return ex_fail(d, st, "out of memory in tree extraction");
  return EX_OK;
}

static ex_status run_dag(const ex_graph *g, const ex_params *p, uint32_t *choice, double *lb, bool *optimal,
                         tl_error *d) {
  (void)p, (void)lb, (void)optimal;
  return ex_dag_choice(g, choice, d);
}

static const ex_extractor extractors[] = {
    [EX_TREE] = {"tree", run_tree},
    [EX_DAG] = {"dag", run_dag},
    [EX_EXACT] = {"exact", ex_exact_choice},
};
static_assert(sizeof extractors / sizeof extractors[0] == EX_KIND_COUNT, "one extractor per ex_kind");

const char *ex_kind_name(ex_kind k) { return k < EX_KIND_COUNT ? extractors[k].name : "?"; }

ex_kind ex_kind_parse(const char *s) {
  for (int k = 0; k < EX_KIND_COUNT; k++)
    if (strcmp(s, extractors[k].name) == 0) return (ex_kind)k;
  return EX_KIND_COUNT;
}

ex_params ex_params_default(void) { return (ex_params){.time_limit_s = 10.0, .log_level = 0}; }

void ex_result_free(ex_result *r) {
  tl_free(r->choice);
  memset(r, 0, sizeof *r);
}

ex_status ex_extract(const ex_graph *g, ex_kind kind, ex_params p, ex_result *r, tl_error *d) {
  memset(r, 0, sizeof *r);
  if (kind >= EX_KIND_COUNT) return ex_fail(d, EX_ERR_INVALID, "unknown extractor %d", (int)kind);
  uint32_t *choice = tl_xmalloc(((size_t)g->n_classes + 1) * sizeof(uint32_t));
  if (!choice) return ex_fail(d, EX_ERR_NOMEM, "out of memory");
  double lb = -INFINITY;
  bool optimal = false;
  double t0 = ex_now();
  ex_status st = extractors[kind].run(g, &p, choice, &lb, &optimal, d);
  double t1 = ex_now();
  if (st == EX_OK) {
    char buf[32];
    for (uint32_t i = 0; i < g->n_roots; i++)
      if (choice[g->roots[i]] == EX_NONE) {
        st = EX_ERR_INFEASIBLE;
        break;
      }
    if (st == EX_ERR_INFEASIBLE) {
      /* Name the first root without a finite extraction. */
      for (uint32_t i = 0; i < g->n_roots; i++)
        if (choice[g->roots[i]] == EX_NONE) {
          ex_fail(d, st,
                  "no acyclic extraction exists: every choice for root e-class '%s' "
                  "leads into a cycle",
                  ex_graph_class_name(g, g->roots[i], buf, sizeof buf));
          break;
        }
    }
  }
  if (st == EX_OK) {
    ex_trim(g, choice);
    tl_error cd;
    if (ex_check(g, choice, &cd) != EX_OK)
      st = ex_fail(d, EX_ERR_INVALID, "internal error: %s extractor returned an invalid choice: %s",
                   extractors[kind].name, cd.msg);
  }
  if (st != EX_OK) {
    tl_free(choice);
    return st;
  }
  r->choice = choice;
  r->seconds = t1 - t0;
  r->dag_cost = ex_dag_cost(g, choice);
  r->tree_cost = ex_tree_cost(g, choice);
  r->lower_bound = kind == EX_EXACT ? lb : -INFINITY;
  r->optimal = kind == EX_EXACT && optimal;
  return EX_OK;
}
