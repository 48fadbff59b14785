/* runner.h - equality saturation: a schedule of phases, each running a set of
 * rulesets until saturation or a limit, with egg 0.9.5's Runner semantics.
 *
 * One iteration: check the limits; search every rule (in file order) on the
 * rebuilt e-graph; apply every rule's matches (conditions checked per match
 * at apply time); rebuild once. Limits are checked again after each rule's
 * search and apply and after the iteration, and, unlike egg, while applying:
 * the node limit after every application, the others every 64, so that one
 * rule's matches cannot multiply the e-graph past the limit (unless
 * eg_run_params.limits_between_rules asks for egg's checks only). A stop inside
 * an iteration still ends it with its rebuild. Saturated: an iteration
 * applied nothing, no rule is banned, and the sizes did not change.
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
  EG_STOP_NONE,
  EG_STOP_SATURATED,
  EG_STOP_ITERATIONS,
  EG_STOP_NODES,
  EG_STOP_TIME,
  EG_STOP_MEMORY
} eg_stop;
const char *eg_stop_name(eg_stop s); /* "Saturated", "IterLimit", ... */

/* Zero means no limit. nodes compares with eg_total_size (egg's memo size).
 * The stop passes it by what the last application added at most (its
 * right-hand side's new nodes and the analysis' leaves for them); the
 * rebuild after the stop re-keys nodes in the memo, which eg_total_size
 * counts too (as egg's does), so the memo size printed for that iteration
 * can be larger, while the live e-nodes do not grow by it. */
typedef struct eg_limits {
  uint32_t iters;
  size_t nodes;
  double seconds;
  size_t bytes; /* eg_bytes of the e-graph plus the rules' match buffers */
} eg_limits;

typedef enum eg_sched { EG_SCHED_BACKOFF, EG_SCHED_SIMPLE } eg_sched;

/* The backoff scheduler bans a rule whose matches in one search exceed
 *     max(match_limit, match_per_node * N0) << times_banned,
 * N0 the live e-nodes when the phase starts (the program's size, for the
 * first phase), for ban_length << times_banned iterations. egg's
 * BackoffScheduler has the fixed part only: 1000 matches, tuned on terms of
 * tens of nodes. On a 10^6-node tensor graph a rule as tame as
 * (mul ?x 1) => ?x finds 10^5 matches, and every rule is banned in its first
 * iterations: nothing applies until the bans' growing limits catch up. Why
 * N0 and not the e-graph's current size: a rule that explodes (associativity
 * and commutativity on classes of many equivalent nodes) finds more matches
 * as the e-graph grows, so a limit that grew with it would let the growth
 * feed itself (the 43-node mixture_logpdf example went from 12k to 214k
 * e-nodes that way); a limit fixed by the program's size bans such a rule
 * once it finds twice as many matches as the program has nodes, the ratio
 * egg's 1000 allows a program of 500 nodes. Below 500 nodes the limit is
 * egg's. match_per_node 0 keeps egg's fixed limit at every size. */
typedef struct eg_run_params {
  eg_sched sched;
  uint32_t match_limit;  /* backoff: matches per search before a ban, at least */
  uint32_t ban_length;   /* backoff: iterations of the first ban */
  double match_per_node; /* backoff: matches per starting e-node before a ban */
  /* Check the limits only where egg does (at the start, after each rule's
   * search and apply, after the iteration), not while a rule applies: one
   * rule can then overshoot the node limit by all it adds, as egg's
   * NodeLimit(376892) against a limit of 100000 does. For measuring against
   * egg on the same work; off by default, since an exploding rule is then
   * bounded only by the time and memory limits checked after it. */
  bool limits_between_rules;
  /* Threads searching the rules of an iteration (this one included; 0 or 1:
   * this thread only, at most EG_MAX_SEARCH_THREADS + 1). The matches and
   * everything after them are the same for any count; workers start once an
   * iteration begins with 2048 e-nodes or more, and only the search phase
   * runs on them (apply and rebuild stay on this thread). */
  uint32_t search_threads;
  /* Apply again the matches a rule found and applied in an earlier
   * iteration (through nodes unchanged since: eg_prog_skip_applied): egg
   * does, and they add nothing; by default they are skipped at the search
   * (counted, not kept). For checking that skipping them changes nothing. */
  bool apply_repeats;
  /* Give a right-hand side's new top node a class of its own and unite it
   * with the matched class, as egg does; by default the node joins the
   * matched class directly (eg_add_into), the same e-graph without the
   * short-lived class. For checking that the two agree. */
  bool top_node_own_class;
  /* Apply a rule's matches in the order the search found them (classes by
   * ascending id, the oldest first); by default the newest classes' matches
   * go first, which leaves fewer duplicate nodes for the rebuild to merge
   * (runner.c, the apply loop). For comparing the two. */
  bool apply_in_search_order;
} eg_run_params;
enum { EG_MAX_SEARCH_THREADS = 15 };
/* backoff, 1000, 5 (egg's defaults), 2 matches per starting e-node, limits
 * checked while applying */
eg_run_params eg_run_defaults(void);

/* rulesets: names separated by spaces or commas; NULL or "" = every rule. */
typedef struct eg_phase {
  const char *rulesets;
  eg_limits limits;
} eg_phase;
/* Is ruleset `set` among `sets` (a phase's rulesets: NULL or "" = all)? */
bool eg_ruleset_in(const eg_rules *rules, int set, const char *sets);

/* applied (here and per rule): matches whose right-hand side changed the
 * e-graph, by a union of two classes or by its new top node joining the
 * matched class (eg_add_into; counted even where the analysis prunes the
 * node at once). */
typedef struct eg_iter_stats {
  size_t enodes, eclasses, memo, applied, bytes, banned;
  double search_ms, apply_ms, rebuild_ms;
} eg_iter_stats;

typedef struct eg_rule_stats {
  /* repeats: matches found and not applied, being found and applied in an
   * earlier iteration (eg_run_params.apply_repeats) */
  size_t searches, matches, repeats, applied, refused_conds;
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
  /* Largest bytes held by the rules' match buffers at once (they live from
   * an iteration's search to its apply; not part of eg_bytes). */
  size_t match_bytes;
  eg_rule_stats *rules; /* per rule of the book, summed over phases */
  int nrules;
  int error; /* 1: a phase named an unknown ruleset */
  char msg[160];
} eg_report;

/* Runs the phases in order on g. Never NULL (error is set on bad input). */
eg_report *eg_run(eg_egraph *g, const eg_rules *rules, const eg_phase *phases, int nphases, eg_run_params p);
void eg_report_free(eg_report *r);
/* The --stats text: stop reasons, per-iteration and per-rule tables. */
void eg_report_print(const eg_report *r, const eg_rules *rules, FILE *f);

#endif
