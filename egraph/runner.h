/* runner.h - equality saturation: a schedule of phases, each running a set of
 * rulesets until saturation or a limit, with egg 0.9.5's Runner semantics.
 *
 * One iteration: check the limits; search every rule (in file order) on the
 * rebuilt e-graph; apply every rule's matches (conditions checked per match
 * at apply time); rebuild once. Limits are checked again after each rule's
 * search and apply and after the iteration. Saturated: an iteration applied
 * nothing, no rule is banned, and the sizes did not change.
 *
 *   eg_phase ph = {.rulesets = "simplify", .limits = {.iters = 30, .nodes = 100000}};
 *   eg_report *rep = eg_run(g, rules, &ph, 1, eg_run_defaults());
 *   eg_report_print(rep, rules, stdout); eg_report_free(rep); */
#ifndef TL_EGRAPH_RUNNER_H
#define TL_EGRAPH_RUNNER_H

#include <stdio.h>

#include "egraph/egraph.h"
#include "egraph/rules.h"

typedef enum eg_stop {
  EG_STOP_NONE, EG_STOP_SATURATED, EG_STOP_ITERATIONS, EG_STOP_NODES,
  EG_STOP_TIME, EG_STOP_MEMORY
} eg_stop;
const char *eg_stop_name(eg_stop s); /* "Saturated", "IterLimit", ... */

/* Zero means no limit. nodes compares with eg_total_size (egg's memo size). */
typedef struct eg_limits {
  uint32_t iters;
  size_t nodes;
  double seconds;
  size_t bytes; /* eg_bytes of the e-graph */
} eg_limits;

typedef enum eg_sched { EG_SCHED_BACKOFF, EG_SCHED_SIMPLE } eg_sched;

typedef struct eg_run_params {
  eg_sched sched;
  uint32_t match_limit; /* backoff: matches per iteration before a ban */
  uint32_t ban_length;  /* backoff: iterations of the first ban */
} eg_run_params;
eg_run_params eg_run_defaults(void); /* backoff, 1000, 5 (egg's defaults) */

/* rulesets: names separated by spaces or commas; NULL or "" = every rule. */
typedef struct eg_phase {
  const char *rulesets;
  eg_limits limits;
} eg_phase;

typedef struct eg_iter_stats {
  size_t enodes, eclasses, memo, applied, bytes;
  double search_ms, apply_ms, rebuild_ms;
} eg_iter_stats;

typedef struct eg_rule_stats {
  size_t searches, matches, applied, refused_conds;
  double search_ms, apply_ms;
  uint32_t times_banned;
} eg_rule_stats;

typedef struct eg_phase_report {
  eg_stop stop;
  double stop_value; /* the iteration count, memo size, seconds or bytes */
  eg_iter_stats *iters;
  uint32_t niters;
  double ms;
} eg_phase_report;

typedef struct eg_report {
  eg_phase_report *phases;
  int nphases;
  eg_rule_stats *rules; /* per rule of the book, summed over phases */
  int nrules;
  int error;            /* 1: a phase named an unknown ruleset */
  char msg[160];
} eg_report;

/* Runs the phases in order on g. Never NULL (error is set on bad input). */
eg_report *eg_run(eg_egraph *g, const eg_rules *rules, const eg_phase *phases,
                  int nphases, eg_run_params p);
void eg_report_free(eg_report *r);
/* The --stats text: stop reasons, per-iteration and per-rule tables. */
void eg_report_print(const eg_report *r, const eg_rules *rules, FILE *f);

#endif
