/* test_run.c - saturation on egg's math suite: expected best terms, the
 * backoff scheduler's bans, clean NodeLimit/TimeLimit stops, phases. */
#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>

#include "egraph/extract.h"
#include "util/alloc.h"
#include "tests/support/egg_math.h"
#include "egraph/runner.h"

static eg_math M;
static eg_rules *R;
static void setup(void) {
  eg_math_init(&M);
  R = eg_rules_new(&M.lang, M.conds);
  tl_diag d = {0};
  cr_assert_eq(eg_rules_load_file(R, TL_SOURCE_ROOT "/bench/egraph/egg-math.rw", &d), 0, "%s", tl_diag_text(&d));
  tl_diag_free(&d);
}
static void teardown(void) {
  eg_rules_free(R);
  eg_math_fini(&M);
}
TestSuite(egraph_run, .init = setup, .fini = teardown);

static eg_egraph *graph(void) {
  eg_params p = eg_math_params(&M, false);
  p.check = true;
  return eg_new(p);
}

/* A fresh math e-graph holding expr, run once under rp within lim, its
 * invariants checked; *root: expr's class. */
static eg_report *run_term(const char *expr, eg_limits lim, eg_run_params rp, eg_egraph **g, eg_id *root) {
  *g = graph();
  char err[256];
  *root = eg_add_term(*g, expr, err, sizeof err);
  cr_assert_neq(*root, EG_NONE, "%s", err);
  eg_phase ph = {NULL, lim};
  eg_report *rep = eg_run(*g, R, &ph, 1, rp);
  cr_assert(eg_check(*g, err, sizeof err), "%s: %s", expr, err);
  return rep;
}

static char *best_after(const char *expr, eg_limits lim, eg_sched s, eg_stop *stop) {
  eg_egraph *g = graph();
  char err[128];
  eg_id root = eg_add_term(g, expr, err, sizeof err);
  cr_assert_neq(root, EG_NONE, "%s", err);
  eg_phase ph = {NULL, lim};
  eg_run_params rp = eg_run_defaults();
  rp.sched = s;
  eg_report *rep = eg_run(g, R, &ph, 1, rp);
  if (stop) *stop = rep->phases[0].stop;
  eg_report_free(rep);
  char *b = eg_extract_best(g, root, NULL);
  eg_free(g);
  return b;
}

Test(egraph_run, math_best_terms) {
  eg_limits lim = {30, 100000, 20, 0};
  eg_stop st;
  char *b = best_after("(+ x (+ x (+ x x)))", lim, EG_SCHED_BACKOFF, &st);
  cr_assert_str_eq(b, "(* x 4)");
  cr_assert_eq(st, EG_STOP_SATURATED);
  tl_free(b);
  b = best_after("(d x (+ 1 (* 2 x)))", lim, EG_SCHED_BACKOFF, &st);
  cr_assert_str_eq(b, "2");
  cr_assert_eq(st, EG_STOP_SATURATED);
  tl_free(b);
  b = best_after("(/ 1 (- (/ (+ 1 (sqrt five)) 2) (/ (- 1 (sqrt five)) 2)))", (eg_limits){12, 100000, 20, 0},
                 EG_SCHED_BACKOFF, NULL);
  cr_assert_str_eq(b, "(/ 1 (sqrt five))");
  tl_free(b);
  b = best_after("(d x (- (pow x 3) (* 7 (pow x 2))))", (eg_limits){30, 100000, 20, 0}, EG_SCHED_BACKOFF, NULL);
  cr_assert_str_eq(b, "(* x (+ -14 (* x 3)))");
  tl_free(b);
}

Test(egraph_run, integral_by_parts_is_proven) {
  eg_egraph *g = graph();
  char err[128];
  eg_id root = eg_add_term(g, "(i (* (cos x) x) x)", err, sizeof err);
  eg_phase ph = {NULL, {10, 100000, 20, 0}};
  eg_report_free(eg_run(g, R, &ph, 1, eg_run_defaults()));
  eg_id want = eg_add_term(g, "(+ (cos x) (* x (sin x)))", err, sizeof err);
  eg_rebuild(g);
  cr_assert_eq(eg_find(g, root), eg_find(g, want));
  double cost;
  tl_free(eg_extract_best(g, root, &cost));
  cr_assert_eq(cost, 6);
  eg_free(g);
}

Test(egraph_run, backoff_bans_explosive_rules) {
  eg_egraph *g = graph();
  char err[128];
  eg_add_term(g, "(+ a (+ b (+ c (+ d e))))", err, sizeof err);
  eg_phase ph = {NULL, {12, 100000, 20, 0}};
  eg_run_params rp = eg_run_defaults();
  rp.match_limit = 8;
  rp.ban_length = 3;
  rp.match_per_node = 0; /* the fixed limit of egg's scheduler */
  eg_report *rep = eg_run(g, R, &ph, 1, rp);
  const eg_rule_stats *add_zero = NULL, *comm = &rep->rules[0];
  for (int i = 0; i < R->nrules; i++)
    if (!strcmp(R->rules[i].name, "add-zero")) add_zero = &rep->rules[i];
  /* add-zero matches every class (> 8 at once): banned at iteration 0 for 3
   * iterations, then for 6 when it explodes again; never searched while banned */
  cr_assert_geq(add_zero->times_banned, 1);
  cr_assert_lt(add_zero->searches, rep->phases[0].niters);
  cr_assert_geq(comm->times_banned, 1);
  /* the simple scheduler searches every rule every iteration */
  eg_report_free(rep);
  eg_free(g);
  g = graph();
  eg_add_term(g, "(+ a (+ b (+ c (+ d e))))", err, sizeof err);
  rp.sched = EG_SCHED_SIMPLE;
  ph.limits.iters = 3;
  rep = eg_run(g, R, &ph, 1, rp);
  for (int i = 0; i < R->nrules; i++) cr_assert_eq(rep->rules[i].searches, rep->phases[0].niters);
  eg_report_free(rep);
  eg_free(g);
}

/* The backoff limit scales with the program: on a sum of 1500 symbols
 * (2999 e-nodes) commutativity finds 1499 matches at once, over egg's fixed
 * 1000 (banned, nothing applied) but within 2 per starting e-node. */
Test(egraph_run, backoff_limit_scales_with_program_size) {
  enum { N = 1500 };
  char *t = tl_xmalloc(N * 16 + 16), *p = t;
  cr_assert(t);
  for (int i = 0; i < N - 1; i++) p += sprintf(p, "(+ s%d ", i);
  p += sprintf(p, "s%d", N - 1);
  for (int i = 0; i < N - 1; i++) *p++ = ')';
  *p = 0;
  int comm = -1;
  for (int i = 0; i < R->nrules; i++)
    if (!strcmp(R->rules[i].name, "comm-add")) comm = i;
  cr_assert_geq(comm, 0);
  for (int scaled = 0; scaled < 2; scaled++) {
    eg_egraph *g = graph();
    char err[128];
    cr_assert_neq(eg_add_term(g, t, err, sizeof err), EG_NONE, "%s", err);
    eg_phase ph = {NULL, {1, 0, 0, 0}};
    eg_run_params rp = eg_run_defaults();
    if (!scaled) rp.match_per_node = 0;
    eg_report *rep = eg_run(g, R, &ph, 1, rp);
    const eg_rule_stats *c = &rep->rules[comm];
    cr_assert_eq(c->times_banned, scaled ? 0u : 1u);
    cr_assert_eq(c->applied, scaled ? (size_t)N - 1 : 0);
    eg_report_free(rep);
    eg_free(g);
  }
  tl_free(t);
}

Test(egraph_run, node_limit_stops_cleanly) {
  eg_egraph *g = graph();
  char err[256];
  eg_id root = eg_add_term(g, "(+ a (+ b (+ c (+ d (+ e (+ f (+ g h)))))))", err, sizeof err);
  eg_phase ph = {NULL, {30, 2000, 20, 0}};
  eg_run_params rp = eg_run_defaults();
  rp.sched = EG_SCHED_SIMPLE;
  eg_report *rep = eg_run(g, R, &ph, 1, rp);
  cr_assert_eq(rep->phases[0].stop, EG_STOP_NODES);
  cr_assert_gt(rep->phases[0].stop_value, 2000);
  cr_assert(eg_check(g, err, sizeof err), "%s", err);
  char *b = eg_extract_best(g, root, NULL);
  cr_assert(b);
  tl_free(b);
  eg_report_free(rep);
  eg_free(g);
}

/* With egg's limit checks (between rules only) the node limit stops where
 * egg 0.9.5's does, overshooting by a whole rule: on (i (* (cos x) x) x),
 * Simple scheduler, 100000 nodes, egg stops in iteration 8 with 149707
 * e-nodes in 60994 classes (shared/bench/egg-math-suite.md; the e-nodes
 * and classes do not depend on the order classes are visited in, the memo
 * count does). The default checks while applying and stops far sooner. */
Test(egraph_run, limits_between_rules_stop_where_egg_does) {
  for (int between = 0; between < 2; between++) {
    eg_params p = eg_math_params(&M, false);
    eg_egraph *g = eg_new(p); /* no eg_check per rebuild: 150k e-nodes */
    char err[256];
    cr_assert_neq(eg_add_term(g, "(i (* (cos x) x) x)", err, sizeof err), EG_NONE, "%s", err);
    eg_phase ph = {NULL, {30, 100000, 60, 0}};
    eg_run_params rp = eg_run_defaults();
    rp.sched = EG_SCHED_SIMPLE;
    rp.match_per_node = 0;
    rp.limits_between_rules = between;
    eg_report *rep = eg_run(g, R, &ph, 1, rp);
    cr_assert_eq(rep->phases[0].stop, EG_STOP_NODES);
    cr_assert_eq(rep->phases[0].niters, 8u);
    if (between) {
      cr_assert_eq(eg_nenodes(g), 149707u);
      cr_assert_eq(eg_nclasses(g), 60994u);
      cr_assert_gt(rep->phases[0].stop_value, 150000);
    } else {
      cr_assert_lt(rep->phases[0].stop_value, 100100);
      cr_assert_lt(eg_nenodes(g), 100000u);
    }
    cr_assert(eg_check(g, err, sizeof err), "%s", err);
    eg_report_free(rep);
    eg_free(g);
  }
}

/* Searching on several threads changes nothing but the time: the same
 * matches in the same order, so the same iterations, sizes, applications
 * and bans, on rows large enough for the workers to start (>= 2048 e-nodes)
 * under both schedulers. */
Test(egraph_run, threaded_search_does_the_same_work) {
  const char *exprs[] = {"(i (* (cos x) x) x)", "(+ a (+ b (+ c (+ d (+ e (+ f (+ g h)))))))",
                         "(d x (- (pow x 3) (* 7 (pow x 2))))"};
  for (int e = 0; e < 3; e++)
    for (int sched = 0; sched < 2; sched++) {
      eg_report *rep[2];
      eg_egraph *g[2];
      for (int t = 0; t < 2; t++) {
        g[t] = eg_new(eg_math_params(&M, false));
        char err[256];
        cr_assert_neq(eg_add_term(g[t], exprs[e], err, sizeof err), EG_NONE, "%s", err);
        eg_phase ph = {NULL, {30, 40000, 60, 0}};
        eg_run_params rp = eg_run_defaults();
        rp.sched = sched ? EG_SCHED_SIMPLE : EG_SCHED_BACKOFF;
        rp.match_per_node = 0;
        rp.search_threads = t ? 2 : 1;
        rep[t] = eg_run(g[t], R, &ph, 1, rp);
      }
      const eg_phase_report *a = &rep[0]->phases[0], *b = &rep[1]->phases[0];
      cr_assert_eq(a->stop, b->stop, "%s", exprs[e]);
      cr_assert_eq(a->niters, b->niters, "%s", exprs[e]);
      cr_assert_gt(eg_nenodes(g[0]), 2048u, "%s: too small for the workers", exprs[e]);
      for (uint32_t i = 0; i < a->niters; i++) {
        const eg_iter_stats *x = &a->iters[i], *y = &b->iters[i];
        cr_assert(x->enodes == y->enodes && x->eclasses == y->eclasses && x->memo == y->memo &&
                      x->applied == y->applied && x->banned == y->banned,
                  "%s: iteration %u differs", exprs[e], i);
      }
      for (int r = 0; r < rep[0]->nrules; r++) {
        const eg_rule_stats *x = &rep[0]->rules[r], *y = &rep[1]->rules[r];
        cr_assert(x->searches == y->searches && x->matches == y->matches && x->applied == y->applied &&
                      x->refused_conds == y->refused_conds && x->times_banned == y->times_banned,
                  "%s: rule %d differs", exprs[e], r);
      }
      for (int t = 0; t < 2; t++) {
        eg_report_free(rep[t]);
        eg_free(g[t]);
      }
    }
}

/* Skipping the matches a rule found and applied in the previous iteration
 * (the default) against applying them again as egg does: every row of the
 * math suite under both schedulers stops alike after as many iterations,
 * with the same e-nodes, e-classes and bans each iteration, the same
 * matches found per rule and the same best term. The hash-cons count (memo)
 * and the unions counted may differ: an application repeated after a child
 * class merged within the iteration adds a duplicate node, which the
 * rebuild merges into the old one; so a node limit, which reads the memo,
 * may stop the last iteration at another point (those rows compare the
 * iterations before it). Some rows must skip repeats at all. */
Test(egraph_run, skipping_repeated_matches_does_the_same_work) {
  const char *exprs[] = {"(+ x (+ x (+ x x)))",
                         "(* (+ a b) (+ c d))",
                         "(d x (+ 1 (* 2 x)))",
                         "(d x (- (pow x 3) (* 7 (pow x 2))))",
                         "(+ (* y (+ x y)) (- (+ x 2) (+ x x)))",
                         "(i (* (cos x) x) x)",
                         "(+ a (+ b (+ c (+ d (+ e (+ f (+ g h)))))))",
                         "(/ 1 (- (/ (+ 1 (sqrt five)) 2) (/ (- 1 (sqrt five)) 2)))"};
  size_t skipped = 0;
  for (int e = 0; e < 8; e++)
    for (int sched = 0; sched < 2; sched++) {
      eg_report *rep[2];
      eg_egraph *g[2];
      eg_id root[2];
      for (int t = 0; t < 2; t++) {
        g[t] = eg_new(eg_math_params(&M, false));
        char err[256];
        root[t] = eg_add_term(g[t], exprs[e], err, sizeof err);
        cr_assert_neq(root[t], EG_NONE, "%s", err);
        eg_phase ph = {NULL, {sched ? 12 : 30, 60000, 60, 0}};
        eg_run_params rp = eg_run_defaults();
        rp.sched = sched ? EG_SCHED_SIMPLE : EG_SCHED_BACKOFF;
        rp.apply_repeats = t == 1;
        rep[t] = eg_run(g[t], R, &ph, 1, rp);
        cr_assert(eg_check(g[t], err, sizeof err), "%s", err);
      }
      const eg_phase_report *a = &rep[0]->phases[0], *b = &rep[1]->phases[0];
      cr_assert_eq(a->stop, b->stop, "%s", exprs[e]);
      cr_assert_eq(a->niters, b->niters, "%s", exprs[e]);
      bool cut = a->stop == EG_STOP_NODES;
      for (uint32_t i = 0; i + cut < a->niters; i++) {
        const eg_iter_stats *x = &a->iters[i], *y = &b->iters[i];
        cr_assert(x->enodes == y->enodes && x->eclasses == y->eclasses && x->banned == y->banned,
                  "%s (%s): iteration %u differs: %zu/%zu e-nodes, %zu/%zu e-classes", exprs[e],
                  sched ? "simple" : "backoff", i, x->enodes, y->enodes, x->eclasses, y->eclasses);
      }
      for (int r = 0; r < rep[0]->nrules; r++) {
        const eg_rule_stats *x = &rep[0]->rules[r], *y = &rep[1]->rules[r];
        cr_assert(x->searches == y->searches && x->matches == y->matches && x->times_banned == y->times_banned &&
                      y->repeats == 0,
                  "%s: rule %d differs", exprs[e], r);
        skipped += x->repeats;
      }
      char *best[2];
      for (int t = 0; t < 2; t++) best[t] = eg_extract_best(g[t], root[t], NULL);
      cr_assert(best[0] && best[1] && (cut || !strcmp(best[0], best[1])), "%s: best %s against %s", exprs[e], best[0],
                best[1]);
      for (int t = 0; t < 2; t++) {
        tl_free(best[t]);
        eg_report_free(rep[t]);
        eg_free(g[t]);
      }
    }
  cr_assert_gt(skipped, 100000u, "only %zu repeats skipped", skipped);
}

/* A right-hand side's new top node joins the matched class directly
 * (eg_add_into) instead of getting a class of its own and a union (egg's
 * way, top_node_own_class). ConstantFold's merge, modify and pruning run on
 * the class in both ways: the two e-graphs grow alike, iteration by
 * iteration, to the same best terms. (The applied counts may differ: a node
 * added into a class holding its constant counts, where its own class
 * would have been folded into that class before the union, which then
 * finds nothing to do.) */
Test(egraph_run, adding_into_the_matched_class_does_the_same_work) {
  const char *exprs[] = {"(+ x (+ x (+ x x)))",
                         "(* (+ a b) (+ c d))",
                         "(d x (+ 1 (* 2 x)))",
                         "(d x (- (pow x 3) (* 7 (pow x 2))))",
                         "(+ (* y (+ x y)) (- (+ x 2) (+ x x)))",
                         "(i (* (cos x) x) x)",
                         "(* (+ 2 3) (- (* 4 x) (+ 1 (* 2 (* 2 x)))))",
                         "(/ 1 (- (/ (+ 1 (sqrt five)) 2) (/ (- 1 (sqrt five)) 2)))"};
  for (int e = 0; e < 8; e++)
    for (int sched = 0; sched < 2; sched++) {
      eg_report *rep[2];
      eg_egraph *g[2];
      eg_id root[2];
      for (int t = 0; t < 2; t++) {
        eg_run_params rp = eg_run_defaults();
        rp.sched = sched ? EG_SCHED_SIMPLE : EG_SCHED_BACKOFF;
        rp.top_node_own_class = t == 0;
        rep[t] = run_term(exprs[e], (eg_limits){sched ? 8 : 14, 20000, 60, 0}, rp, &g[t], &root[t]);
      }
      cr_assert_lt(eg_nids(g[1]), eg_nids(g[0]), "%s: no top node was added into its class", exprs[e]);
      const eg_phase_report *a = &rep[0]->phases[0], *b = &rep[1]->phases[0];
      cr_assert_eq(a->stop, b->stop, "%s", exprs[e]);
      cr_assert_eq(a->niters, b->niters, "%s", exprs[e]);
      for (uint32_t i = 0; i < a->niters; i++) {
        const eg_iter_stats *x = &a->iters[i], *y = &b->iters[i];
        cr_assert(x->enodes == y->enodes && x->eclasses == y->eclasses && x->memo == y->memo,
                  "%s (%s): iteration %u differs: %zu/%zu e-nodes, %zu/%zu e-classes, %zu/%zu memo", exprs[e],
                  sched ? "simple" : "backoff", i, x->enodes, y->enodes, x->eclasses, y->eclasses, x->memo, y->memo);
      }
      char *best[2];
      for (int t = 0; t < 2; t++) best[t] = eg_extract_best(g[t], root[t], NULL);
      cr_assert(best[0] && best[1] && !strcmp(best[0], best[1]), "%s: best %s against %s", exprs[e], best[0], best[1]);
      for (int t = 0; t < 2; t++) {
        tl_free(best[t]);
        eg_report_free(rep[t]);
        eg_free(g[t]);
      }
    }
}

/* The order a rule's matches are applied in changes only how many
 * duplicate nodes the apply phase stores before the rebuild merges them:
 * each iteration ends with the same e-nodes and e-classes, and the newest
 * classes first (the default) store fewer. The golden ratio under the
 * simple scheduler is the row where it matters most: 21814 stored against
 * 26072 after 10 iterations, and in the 11th (too large for a test) 282k
 * against 518k (egg's math suite, runner.c's apply loop). */
Test(egraph_run, applying_the_newest_classes_first_stores_fewer_duplicates) {
  const char *exprs[] = {"(+ x (+ x (+ x x)))",
                         "(* (+ a b) (+ c d))",
                         "(d x (- (pow x 3) (* 7 (pow x 2))))",
                         "(+ (* y (+ x y)) (- (+ x 2) (+ x x)))",
                         "(i (* (cos x) x) x)",
                         "(+ a (+ b (+ c (+ d (+ e (+ f (+ g h)))))))",
                         "(/ 1 (- (/ (+ 1 (sqrt five)) 2) (/ (- 1 (sqrt five)) 2)))"};
  size_t total[2] = {0, 0};
  for (int e = 0; e < 7; e++)
    for (int sched = 0; sched < 2; sched++) {
      eg_report *rep[2];
      eg_egraph *g[2];
      eg_id root[2];
      for (int t = 0; t < 2; t++) {
        eg_run_params rp = eg_run_defaults();
        rp.sched = sched ? EG_SCHED_SIMPLE : EG_SCHED_BACKOFF;
        rp.apply_in_search_order = t == 0;
        /* iteration limits only: the node limit reads the stored count */
        rep[t] = run_term(exprs[e], (eg_limits){sched ? (e == 6 ? 10 : 7) : 12, 10000000, 60, 0}, rp, &g[t], &root[t]);
        total[t] += eg_total_size(g[t]);
      }
      const eg_phase_report *a = &rep[0]->phases[0], *b = &rep[1]->phases[0];
      cr_assert_eq(a->stop, b->stop, "%s", exprs[e]);
      cr_assert_eq(a->niters, b->niters, "%s", exprs[e]);
      for (uint32_t i = 0; i < a->niters; i++) {
        const eg_iter_stats *x = &a->iters[i], *y = &b->iters[i];
        cr_assert(x->enodes == y->enodes && x->eclasses == y->eclasses,
                  "%s (%s): iteration %u differs: %zu/%zu e-nodes, %zu/%zu e-classes", exprs[e],
                  sched ? "simple" : "backoff", i, x->enodes, y->enodes, x->eclasses, y->eclasses);
      }
      if (e == 6 && sched)
        cr_assert_lt(eg_total_size(g[1]) * 10, eg_total_size(g[0]) * 9,
                     "golden ratio, simple: %zu stored newest-first against %zu in search order", eg_total_size(g[1]),
                     eg_total_size(g[0]));
      /* equal costs: a tie may pick another term of that cost */
      char *best[2];
      double cost[2];
      for (int t = 0; t < 2; t++) best[t] = eg_extract_best(g[t], root[t], &cost[t]);
      cr_assert(best[0] && best[1] && cost[0] == cost[1], "%s: best %s (%g) against %s (%g)", exprs[e], best[0],
                cost[0], best[1], cost[1]);
      for (int t = 0; t < 2; t++) {
        tl_free(best[t]);
        eg_report_free(rep[t]);
        eg_free(g[t]);
      }
    }
  cr_assert_lt(total[1], total[0], "all rows: %zu stored newest-first against %zu in search order", total[1], total[0]);
}

/* A phase that stops while applying leaves the rules it was applying
 * without a new anchor, so the next phase applies what the stopped one
 * found and did not apply: saturating afterwards gives the e-graph that
 * applying every match gives. */
Test(egraph_run, a_phase_stopped_while_applying_skips_nothing_unapplied) {
  const char *exprs[] = {"(+ x (+ x (+ x x)))", "(* (+ a b) (+ c d))", "(+ a (+ b (+ c (+ d e))))"};
  size_t cuts[] = {20, 45, 100, 250, 600};
  int compared = 0;
  for (int e = 0; e < 3; e++)
    for (int sched = 0; sched < 2; sched++)
      for (int c = 0; c < 5; c++) {
        size_t en[2], ec[2];
        char *best[2];
        bool cut[2], sat[2];
        for (int t = 0; t < 2; t++) {
          eg_egraph *g = graph();
          char err[256];
          eg_id root = eg_add_term(g, exprs[e], err, sizeof err);
          cr_assert_neq(root, EG_NONE, "%s", err);
          /* a node limit first (it stops in the middle of a rule's
           * matches), then on to saturation */
          eg_phase ph[2] = {{NULL, {30, cuts[c], 60, 0}}, {NULL, {60, 400000, 60, 0}}};
          eg_run_params rp = eg_run_defaults();
          rp.sched = sched ? EG_SCHED_SIMPLE : EG_SCHED_BACKOFF;
          rp.apply_repeats = t == 1;
          eg_report *rep = eg_run(g, R, ph, 2, rp);
          cr_assert(eg_check(g, err, sizeof err), "%s", err);
          cut[t] = rep->phases[0].stop == EG_STOP_NODES;
          sat[t] = rep->phases[1].stop == EG_STOP_SATURATED;
          en[t] = eg_nenodes(g);
          ec[t] = eg_nclasses(g);
          best[t] = eg_extract_best(g, root, NULL);
          eg_report_free(rep);
          eg_free(g);
        }
        if (cut[0] && cut[1]) {
          cr_assert(sat[0] && sat[1], "%s: the second phase should saturate", exprs[e]);
          cr_assert(en[0] == en[1] && ec[0] == ec[1], "%s (%s, cut at %zu): %zu/%zu e-nodes, %zu/%zu e-classes",
                    exprs[e], sched ? "simple" : "backoff", cuts[c], en[0], en[1], ec[0], ec[1]);
          cr_assert_str_eq(best[0], best[1]);
          compared++;
        }
        for (int t = 0; t < 2; t++) tl_free(best[t]);
      }
  cr_assert_geq(compared, 12, "only %d runs were cut and compared", compared);
}

Test(egraph_run, time_and_memory_limits_stop_cleanly) {
  eg_egraph *g = graph();
  char err[256];
  eg_id root = eg_add_term(g, "(i (* (cos x) x) x)", err, sizeof err);
  eg_phase ph = {NULL, {100, 0, 0.05, 0}};
  eg_run_params rp = eg_run_defaults();
  rp.sched = EG_SCHED_SIMPLE;
  eg_report *rep = eg_run(g, R, &ph, 1, rp);
  cr_assert_eq(rep->phases[0].stop, EG_STOP_TIME);
  /* seen soon after: the clock is read between rules once enough work has
   * passed (runner.c, clock_due), and while applying */
  cr_assert_lt(rep->phases[0].stop_value, 0.5, "the 0.05 s limit was seen after %g s", rep->phases[0].stop_value);
  cr_assert(eg_check(g, err, sizeof err), "%s", err);
  char *b = eg_extract_best(g, root, NULL);
  cr_assert(b);
  tl_free(b);
  eg_report_free(rep);
  ph.limits = (eg_limits){100, 0, 0, eg_bytes(g) + 100000};
  rep = eg_run(g, R, &ph, 1, rp);
  cr_assert_eq(rep->phases[0].stop, EG_STOP_MEMORY);
  cr_assert(eg_check(g, err, sizeof err), "%s", err);
  eg_report_free(rep);
  eg_free(g);
}

Test(egraph_run, phases_and_unknown_ruleset) {
  eg_rules *r = eg_rules_new(&M.lang, M.conds);
  const char *t = "(ruleset fold (rule zero-add (+ ?a 0) => ?a))\n"
                  "(ruleset comm (rule comm-add (+ ?a ?b) => (+ ?b ?a)))\n";
  cr_assert_eq(eg_rules_load(r, "p.rw", t, strlen(t), NULL), 0);
  eg_egraph *g = graph();
  char err[128];
  eg_id root = eg_add_term(g, "(+ 0 y)", err, sizeof err);
  eg_phase ph[2] = {{"fold", {5, 0, 0, 0}}, {"comm fold", {5, 0, 0, 0}}};
  eg_report *rep = eg_run(g, r, ph, 2, eg_run_defaults());
  cr_assert_eq(rep->nphases, 2);
  cr_assert_eq(rep->phases[0].stop, EG_STOP_SATURATED);
  cr_assert_eq(rep->rules[1].searches, rep->phases[1].niters); /* comm only in phase 2 */
  char *b = eg_extract_best(g, root, NULL);
  cr_assert_str_eq(b, "y");
  tl_free(b);
  eg_report_free(rep);
  eg_phase bad = {"nope", {1, 0, 0, 0}};
  rep = eg_run(g, r, &bad, 1, eg_run_defaults());
  cr_assert_eq(rep->error, 1);
  cr_assert_str_eq(rep->msg, "unknown ruleset 'nope'");
  eg_report_free(rep);
  eg_free(g);
  eg_rules_free(r);
}
