/* opt.h - the optimizer: a graph goes into an e-graph, rule sets saturate it
 * in phases, the cheapest equivalent program under the cost model comes out
 * as a graph.
 *
 *   tl_opt_params p = tl_opt_defaults();
 *   p.rule_paths = paths; p.nrule_paths = 1;        // files or folders of .rw
 *   p.cost = "time + 1e-9*memory"; p.extract = EX_DAG;
 *   tl_opt *o = tl_opt_new(&p, err, sizeof err);     // rules parsed once
 *   tl_error e = {0};
 *   tl_graph *best = tl_opt_graph(o, g, &e);         // NULL: e.status, e.msg
 *   ... tl_opt_report(o) has the runner's statistics, tl_opt_cost(o) the
 *       extraction's
 *   tl_opt_free(o);
 *
 * Extraction: every e-class reachable from the outputs becomes a class of an
 * ex_graph (extract/extract.h) whose nodes cost the objective evaluated on
 * the e-node (extract/cost.h); the chosen extractor picks one node per
 * class and the chosen terms are rebuilt as a graph. */
#ifndef TL_OPT_OPT_H
#define TL_OPT_OPT_H

#include <stdio.h>

#include "egraph/runner.h"
#include "cost/cost.h"
#include "extract/extract.h"
#include "ir/ir.h"

#define TL_OPT_MAX_PHASES 8
/* Rounds of control-flow rules and rewriting after the first (opt.c). */
#define TL_OPT_CONTROL_ROUNDS 3

typedef struct tl_opt_params {
  const char *const *rule_paths; /* .rw files or folders (every *.rw inside) */
  int nrule_paths;               /* 0: the default rules folder */
  /* phases: ruleset names per phase ("" = every rule); 0 phases = one phase
   * of every rule */
  const char *phases[TL_OPT_MAX_PHASES];
  int nphases;
  eg_limits limits;              /* per phase */
  /* The node limit scales with the program: a phase stops at limits.nodes +
   * nodes_per_node x (the e-nodes the loaded program makes), so a program
   * larger than limits.nodes is rewritten at all; the byte limit
   * (limits.bytes) still bounds the memory. 0: limits.nodes alone (what an
   * explicit nodes= in tl_opt_parse_limits sets). */
  double nodes_per_node;
  eg_run_params run;
  bool explain;                  /* keep proofs (prove, --explain) */
  bool check;                    /* check e-graph invariants every rebuild, and
                                    the cost functions' monotonicity */
  /* extraction */
  const char *cost;              /* objective over properties; NULL: TL_COST_DEFAULT */
  ex_kind extract;               /* tree, dag (default) or exact */
  uint32_t dag_max_classes;      /* dag on more classes than this runs tree
                                    instead (dag's greedy step keeps n^2/8
                                    bytes of bitsets); 0: no limit. 16384 */
  double extract_seconds;        /* exact's time limit (then its best incumbent) */
  const char *const *plugins;    /* cost plugins (.so) loaded into the registry */
  int nplugins;
  const tl_profile *profile;     /* machine profile; NULL: tl_profile_get() */
  double sym_size;               /* elements a symbolic dim counts as (1024) */
} tl_opt_params;

/* 30 iterations, 100000 + 10 per program e-node nodes, 2 GiB, 10 s; cost
 * TL_COST_DEFAULT, dag extraction up to 16384 classes (tree above), exact
 * limited to 10 s. */
tl_opt_params tl_opt_defaults(void);

typedef struct tl_opt tl_opt;

/* Parses the rule files, loads the profile and the plugins, parses the
 * cost expression. NULL with every diagnostic in err. */
tl_opt *tl_opt_new(const tl_opt_params *p, char *err, size_t err_size);
void tl_opt_free(tl_opt *o);

/* The optimizer's cost registry: register properties and functions from C
 * (then re-parse the objective with tl_opt_set_cost if it names them). It
 * already holds the built-ins, `ops` (the per-op weights of the greedy
 * extractor that came before the registry) and the plugins' properties. */
tl_cost_registry *tl_opt_costs(tl_opt *o);
/* Replaces the objective. -1 with a message (column, unknown property). */
int tl_opt_set_cost(tl_opt *o, const char *expr, char *err, size_t err_size);

/* What the last tl_opt_graph's extraction did and what its program costs. */
typedef struct tl_opt_cost_report {
  const char *objective;   /* the expression */
  ex_kind extractor;       /* the one that ran */
  bool dag_too_large;      /* dag was asked for, tree ran (dag_max_classes) */
  double extract_ms;       /* building the ex_graph and extracting */
  uint32_t classes, nodes; /* size of the ex_graph (the reachable e-graph) */
  double dag_cost;         /* the extractor's objective value */
  bool optimal;            /* exact proved it optimal */
  double lower_bound;      /* exact's bound; -inf otherwise */
  double objective_total;  /* the rebuilt program's objective (sum over its nodes) */
  const double *totals;    /* [nprops] the program's cost properties (value ones: 0) */
  double peak_bytes;       /* live intermediates and outputs at peak (tl_cost_peak_bytes) */
} tl_opt_cost_report;
/* NULL before a successful tl_opt_graph. Valid until the next run. */
const tl_opt_cost_report *tl_opt_cost(const tl_opt *o);

/* Optimises g (g is not changed). NULL on failure: the graph or a cost
 * function refused (TL_BAD_INPUT), the ILP solver failed
 * (TL_BACKEND_FAILED), extraction or rebuilding went wrong (TL_INTERNAL).
 * A stop at a limit is a normal outcome: the best program found is
 * returned. */
tl_graph *tl_opt_graph(tl_opt *o, const tl_graph *g, tl_error *err);

/* After tl_opt_graph: the statistics (--stats: saturation, extraction and
 * the program's cost properties), the rules that fired and the costs of the
 * candidates at each output (--explain). */
void tl_opt_print_stats(const tl_opt *o, FILE *f);
void tl_opt_print_explain(tl_opt *o, FILE *f);

/* Proves the outputs of a and b equal (matched by name). Returns 1 when
 * every pair is proved, 0 when not (the report says where saturation
 * stopped), -1 on bad input. With explanations, writes the rewrite chains. */
int tl_opt_prove(tl_opt *o, const tl_graph *a, const tl_graph *b, FILE *out, char *err,
                 size_t err_size);

/* Parses "iters=30,nodes=100000,time=5,mem=512" (mem in MiB) into
 * p->limits; nodes= is then exact (p->nodes_per_node = 0). -1 on a
 * malformed string. */
int tl_opt_parse_limits(const char *s, tl_opt_params *p);

/* After a run: its report and the e-graph's final size. */
const eg_report *tl_opt_report(const tl_opt *o);
void tl_opt_sizes(const tl_opt *o, size_t *enodes, size_t *eclasses, size_t *peak_bytes);

/* The graph's e-graph (after saturation with the rules when o has any) as
 * Graphviz: e-classes as clusters. */
int tl_opt_dot(tl_opt *o, const tl_graph *g, bool saturate, FILE *out, char *err, size_t err_size);

#endif
