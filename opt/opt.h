/* opt.h - the optimizer: a graph goes into an e-graph, rule sets saturate it
 * in phases, the cheapest equivalent program comes out as a graph.
 *
 *   tl_opt_params p = tl_opt_defaults();
 *   p.rule_paths = paths; p.nrule_paths = 1;        // files or folders of .rw
 *   tl_opt *o = tl_opt_new(&p, err, sizeof err);     // rules parsed once
 *   tl_graph *best = tl_opt_graph(o, g, err, sizeof err);
 *   ... tl_opt_report(o) has the runner's statistics
 *   tl_opt_free(o);
 */
#ifndef TL_OPT_OPT_H
#define TL_OPT_OPT_H

#include <stdio.h>

#include "egraph/runner.h"
#include "ir/ir.h"

#define TL_OPT_MAX_PHASES 8

typedef struct tl_opt_params {
  const char *const *rule_paths; /* .rw files or folders (every *.rw inside) */
  int nrule_paths;               /* 0: the default rules folder */
  /* phases: ruleset names per phase ("" = every rule); 0 phases = one phase
   * of every rule */
  const char *phases[TL_OPT_MAX_PHASES];
  int nphases;
  eg_limits limits;              /* per phase */
  eg_run_params run;
  bool explain;                  /* keep proofs (prove, --explain) */
  bool check;                    /* check e-graph invariants every rebuild */
} tl_opt_params;

tl_opt_params tl_opt_defaults(void); /* 30 iterations, 100000 nodes, 10 s */

/* The rules folder used when none is given: $TLALOC_RULES_DIR, else the
 * source tree's rules/. */
const char *tl_opt_default_rules_dir(void);

typedef struct tl_opt tl_opt;

/* Parses the rule files. NULL with every rule-file diagnostic in err. */
tl_opt *tl_opt_new(const tl_opt_params *p, char *err, size_t err_size);
void tl_opt_free(tl_opt *o);

/* Optimises g (g is not changed). NULL with a message on failure. A stop
 * at a limit is a normal outcome: the best program found is returned. */
tl_graph *tl_opt_graph(tl_opt *o, const tl_graph *g, char *err, size_t err_size);

/* After tl_opt_graph: the statistics (--stats), the rules that fired and
 * the costs of the candidates at each output (--explain). */
void tl_opt_print_stats(const tl_opt *o, FILE *f);
void tl_opt_print_explain(tl_opt *o, FILE *f);

/* Proves the outputs of a and b equal (matched by name). Returns 1 when
 * every pair is proved, 0 when not (the report says where saturation
 * stopped), -1 on bad input. With explanations, writes the rewrite chains. */
int tl_opt_prove(tl_opt *o, const tl_graph *a, const tl_graph *b, FILE *out, char *err,
                 size_t err_size);

/* Parses "iters=30,nodes=100000,time=5,mem=512" (mem in MiB) into l;
 * -1 on a malformed string. */
int tl_opt_parse_limits(const char *s, eg_limits *l);

/* After a run: its report and the e-graph's final size. */
const eg_report *tl_opt_report(const tl_opt *o);
void tl_opt_sizes(const tl_opt *o, size_t *enodes, size_t *eclasses, size_t *peak_bytes);

/* The graph's e-graph (after saturation with the rules when o has any) as
 * Graphviz: e-classes as clusters. */
int tl_opt_dot(tl_opt *o, const tl_graph *g, bool saturate, FILE *out, char *err, size_t err_size);

#endif
