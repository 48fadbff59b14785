/* extract.h - choosing one e-node per e-class: the extractors, the generic
 * e-graph they read, and the egraph-serialize JSON reader.
 *
 *   ex_graph *g; tl_error d;
 *   if (ex_read_json("bert.json", &g, &d) != EX_OK) { fputs(d.msg, stderr); return 2; }
 *   ex_result r;
 *   ex_params p = ex_params_default();
 *   if (ex_extract(g, EX_DAG, p, &r, &d) == EX_OK)
 *     printf("dag %g tree %g\n", r.dag_cost, r.tree_cost);
 *   ex_result_free(&r); ex_graph_free(g);
 *
 * The extractors know nothing about JSON or about egraph/: anything that can
 * describe classes, nodes, costs and roots through the builder below
 * (ex_graph_add_class / ex_graph_add_node / ex_graph_add_root /
 * ex_graph_finish) can be extracted from. Costs are plain doubles computed by
 * the caller (e.g. from the cost-model registry); they may be negative.
 *
 * Semantics. A choice maps every class reachable from the roots to one of its
 * nodes; the children of a chosen node are classes, which must be chosen too,
 * and the chosen graph must be acyclic. Its DAG cost is the sum of the costs
 * of the distinct chosen nodes reachable from the roots (a shared class is
 * paid once); its tree cost is the sum over roots of the fully unfolded term
 * (a shared class is paid once per use). */
#ifndef EX_EXTRACT_H
#define EX_EXTRACT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "util/error.h"

#define EX_NONE UINT32_MAX /* "no node / no class" in choices and lookups */

typedef enum ex_status {
  EX_OK = 0,
  EX_ERR_IO,         /* file cannot be read */
  EX_ERR_SYNTAX,     /* not JSON */
  EX_ERR_SCHEMA,     /* JSON, but not a valid e-graph (missing field, bad child, empty root) */
  EX_ERR_INFEASIBLE, /* a root has no acyclic extraction (only cyclic choices) */
  EX_ERR_NOMEM,
  EX_ERR_SOLVER, /* the ILP solver is missing or failed */
  EX_ERR_INVALID /* a choice given to ex_check is not a valid extraction */
} ex_status;

/* Failures are util/error.h's tl_error: the message, already prefixed with
 * the file name when there is one, and the kind (EX_ERR_NOMEM: out of
 * memory; EX_ERR_SOLVER: backend failed; the others: bad input). Filled
 * only when a function returns something other than EX_OK. */

/* ---- the generic e-graph --------------------------------------------------
 * Immutable after ex_graph_finish. Nodes are numbered so that the nodes of
 * class c are class_start[c] .. class_start[c+1]-1; the children of node n
 * are the class ids child[child_start[n] .. child_start[n+1]-1]. Names are
 * optional and only used for printing. */
typedef struct ex_graph {
  uint32_t n_classes, n_nodes, n_roots;
  uint32_t *class_start;            /* [n_classes+1] */
  uint32_t *node_class;             /* [n_nodes] */
  double *node_cost;                /* [n_nodes] */
  uint32_t *child_start;            /* [n_nodes+1] */
  uint32_t *child;                  /* [child_start[n_nodes]] class ids */
  uint32_t *roots;                  /* [n_roots], distinct */
  bool has_negative;                /* some node cost < 0 */
  struct ex_graph_build *b;         /* builder state; NULL once finished */
  char *names;                      /* arena of NUL-terminated names */
  uint32_t *class_name, *node_name; /* offsets into names, EX_NONE if unnamed */
  uint32_t *node_input;             /* [n_nodes] insertion index of each final node */
} ex_graph;

/* A new empty graph under construction; NULL when out of memory. */
ex_graph *ex_graph_new(void);
/* Adds a class (name may be NULL) and returns its id, EX_NONE on OOM. */
uint32_t ex_graph_add_class(ex_graph *g, const char *name);
/* Adds a node of class cls with n children (class ids, duplicates allowed).
 * Returns its insertion index, EX_NONE on OOM or a bad class id. finish
 * renumbers nodes to group them by class (stable within a class); the
 * insertion index of final node n is then node_input[n]. */
uint32_t ex_graph_add_node(ex_graph *g, uint32_t cls, double cost, const uint32_t *children, uint32_t n,
                           const char *name);
/* Marks a class as a root (duplicates are ignored). */
ex_status ex_graph_add_root(ex_graph *g, uint32_t cls);
/* Freezes the graph. Fails (EX_ERR_SCHEMA, message in d) when a child or root
 * names a class that has no node. */
ex_status ex_graph_finish(ex_graph *g, tl_error *d);
void ex_graph_free(ex_graph *g);
/* Printable names; fall back to the decimal id when unnamed (buf >= 16 bytes). */
const char *ex_graph_class_name(const ex_graph *g, uint32_t c, char *buf, size_t len);
const char *ex_graph_node_name(const ex_graph *g, uint32_t n, char *buf, size_t len);

/* ---- the JSON reader -------------------------------------------------------
 * Reads egraph-serialize JSON (extraction-gym's format): {"nodes": {id: {op,
 * children: [node ids], eclass, cost}}, "root_eclasses": [...]}. On error
 * returns a status, *out = NULL, and d->msg names the file and the problem. */
ex_status ex_read_json(const char *path, ex_graph **out, tl_error *d);
/* Same, from memory (name is used in messages only). */
ex_status ex_read_json_buf(const char *buf, size_t len, const char *name, ex_graph **out, tl_error *d);

/* ---- choices --------------------------------------------------------------- */

/* EX_OK when choice[] (EX_NONE for unchosen classes) is a valid extraction:
 * every root chosen, every reachable class chosen with one of its own
 * nodes, and the chosen graph reachable from the roots acyclic. */
ex_status ex_check(const ex_graph *g, const uint32_t *choice, tl_error *d);
/* Sum of the costs of distinct chosen nodes reachable from the roots. The
 * choice must pass ex_check. */
double ex_dag_cost(const ex_graph *g, const uint32_t *choice);
/* Sum over the roots of the unfolded term's cost. The choice must pass
 * ex_check. May be astronomically large on DAG-shaped graphs (doubles). */
double ex_tree_cost(const ex_graph *g, const uint32_t *choice);

/* ---- extractors ------------------------------------------------------------ */

typedef enum ex_kind {
  EX_TREE,  /* tree-greedy bottom-up: optimal tree cost for costs >= 0 */
  EX_DAG,   /* DAG-aware greedy with shared classes counted once, then local search */
  EX_EXACT, /* ILP (CBC) minimising the DAG cost; time-limited */
  EX_KIND_COUNT
} ex_kind;

typedef struct ex_params {
  double time_limit_s; /* EX_EXACT: solver wall-clock limit (<= 0: none) */
  int log_level;       /* 0 silent; > 0 lets the solver print */
} ex_params;

typedef struct ex_result {
  uint32_t *choice; /* [n_classes]; EX_NONE where unreachable; owned */
  double dag_cost, tree_cost;
  double seconds;     /* wall time of the extraction itself */
  double lower_bound; /* EX_EXACT: proven lower bound on the DAG cost;
                          others: -INFINITY */
  bool optimal;       /* EX_EXACT proved the DAG cost optimal */
} ex_result;

ex_params ex_params_default(void); /* 10 s limit, silent */

/* Runs one extractor. On EX_OK, r holds a choice that passes ex_check
 * (always: the result is validated before returning) and must be released
 * with ex_result_free. Errors: EX_ERR_INFEASIBLE when a root has only cyclic
 * choices, EX_ERR_NOMEM, EX_ERR_SOLVER. r is zeroed on error. */
ex_status ex_extract(const ex_graph *g, ex_kind kind, ex_params p, ex_result *r, tl_error *d);
void ex_result_free(ex_result *r);

/* "tree" | "dag" | "exact" <-> kind; ex_kind_parse returns EX_KIND_COUNT
 * for an unknown name. */
const char *ex_kind_name(ex_kind k);
ex_kind ex_kind_parse(const char *s);

#endif
