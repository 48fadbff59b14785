/* test_limits.c - the optimizer on long programs: the extracted program of
 * a long chain is rebuilt whatever its shape, and the default limits scale
 * with the program so that a large one is rewritten. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ir/tg.h"
#include "egraph/runner.h"
#include "opt/opt.h"
#include "util/util.h"
#include "tests/common/tltest.h"
#include "tests/opt/with_rules.h"

/* A chain of n lets; fmt is one link, "%s" its operand. */
static tl_graph *chain(int n, const char *fmt) {
  tl_buf b = {0};
  tl_buf_printf(&b, "(graph chain (in x f32 [4])\n");
  char prev[32] = "x";
  for (int i = 1; i <= n; i++) {
    tl_buf_printf(&b, "  (let v%d ", i);
    tl_buf_printf(&b, fmt, prev);
    tl_buf_printf(&b, ")\n");
    snprintf(prev, sizeof prev, "v%d", i);
  }
  tl_buf_printf(&b, "  (out y %s))\n", prev);
  tl_graph *g = tlt_parse(b.s, NULL);
  tl_free(b.s);
  cr_assert(g);
  return g;
}

/* (add 1 v) at every link: the class of the literal is an operand at each
 * level of the chosen term, which once read as a cycle in the choice. */
Test(opt_limits, chain_with_a_shared_operand_is_rebuilt) {
  tl_graph *g = chain(3000, "(add 1 %s)");
  tl_opt *o = with_rules("(ruleset r (rule mul-one (mul ?x 1) => ?x))\n", tl_opt_defaults());
  tl_error err = {0};
  tl_graph *best = tl_opt_graph(o, g, &err);
  cr_assert(best, "%s", err.msg);
  cr_assert(tl_graph_equal(g, best));
  tl_graph_free(best);
  tl_opt_free(o);
  tl_graph_free(g);
}

static tl_opt *algebraic(tl_opt_params p) {
  const char *paths[1] = {TL_SOURCE_DIR "/rules/algebraic.rw"};
  p.rule_paths = paths;
  p.nrule_paths = 1;
  char err[4096];
  tl_opt *o = tl_opt_new(&p, err, sizeof err);
  cr_assert(o, "%s", err);
  return o;
}

static size_t applied(const tl_opt *o) {
  const eg_report *r = tl_opt_report(o);
  size_t n = 0;
  for (int i = 0; i < r->nrules; i++) n += r->rules[i].applied;
  return n;
}

/* 120,000 links of (mul v 1), more than the 100,000 nodes of the fixed
 * limit: with it, saturation stopped at NodeLimit before any rewrite; with
 * the default (scaled) limit every link goes and y = x comes out. */
Test(opt_limits, default_node_limit_scales_with_the_program) {
  tl_graph *g = chain(120000, "(mul %s 1)");
  tl_error err = {0};
  tl_opt *o = algebraic(tl_opt_defaults());
  tl_graph *best = tl_opt_graph(o, g, &err);
  cr_assert(best, "%s", err.msg);
  const eg_report *r = tl_opt_report(o);
  cr_assert_eq(r->phases[0].stop, EG_STOP_SATURATED, "stop %s", eg_stop_name(r->phases[0].stop));
  cr_assert_geq(applied(o), 120000);
  cr_assert_eq(best->nodes[best->outputs[0].node].op, TL_OP_INPUT);
  tl_graph_free(best);
  tl_opt_free(o);

  tl_opt_params p = tl_opt_defaults();
  cr_assert_eq(tl_opt_parse_limits("nodes=100000", &p), 0);
  cr_assert_eq(p.nodes_per_node, 0);
  o = algebraic(p);
  best = tl_opt_graph(o, g, &err);
  cr_assert(best, "%s", err.msg);
  cr_assert_eq(tl_opt_report(o)->phases[0].stop, EG_STOP_NODES);
  cr_assert_eq(applied(o), 0);
  tl_graph_free(best);
  tl_opt_free(o);
  tl_graph_free(g);
}

/* (add a (add b ... n)) over 14 inputs: associativity, commutativity and
 * distributivity multiply the e-graph within one iteration (the simple
 * scheduler once reported 791,173 e-nodes against a limit of 100,000). The
 * limit now holds while applying: the stop and the e-nodes pass it by what
 * one application adds at most: a right-hand side of algebraic.rw has at
 * most 4 nodes, and the analysis adds at most one leaf per new class. */
Test(opt_limits, node_limit_holds_within_an_iteration) {
  tl_buf b = {0};
  tl_buf_printf(&b, "(graph sum14\n");
  const char *names = "abcdefghijklmn";
  for (int i = 0; i < 14; i++) tl_buf_printf(&b, "  (in %c f32 [4])\n", names[i]);
  tl_buf_printf(&b, "  (out y ");
  for (int i = 0; i < 13; i++) tl_buf_printf(&b, "(add %c ", names[i]);
  tl_buf_printf(&b, "n");
  for (int i = 0; i < 13; i++) tl_buf_printf(&b, ")");
  tl_buf_printf(&b, "))\n");
  tl_graph *g = tlt_parse(b.s, NULL);
  tl_free(b.s);
  cr_assert(g);
  const size_t limit = 100000, slack = 8;
  eg_sched sched[2] = {EG_SCHED_SIMPLE, EG_SCHED_BACKOFF};
  for (int s = 0; s < 2; s++) {
    tl_opt_params p = tl_opt_defaults();
    cr_assert_eq(tl_opt_parse_limits("nodes=100000,time=60,iters=100", &p), 0);
    p.run.sched = sched[s];
    p.check = true; /* eg_check after every rebuild, the last one too */
    tl_opt *o = algebraic(p);
    tl_error err = {0};
    tl_graph *best = tl_opt_graph(o, g, &err);
    cr_assert(best, "%s", err.msg);
    const eg_phase_report *ph = &tl_opt_report(o)->phases[0];
    cr_assert_eq(ph->stop, EG_STOP_NODES, "scheduler %d: stop %s", s, eg_stop_name(ph->stop));
    cr_assert_leq(ph->stop_value, (double)(limit + slack), "scheduler %d: %g", s, ph->stop_value);
    size_t enodes, eclasses, peak;
    tl_opt_sizes(o, &enodes, &eclasses, &peak);
    cr_assert_leq(enodes, limit + slack, "scheduler %d: %zu e-nodes", s, enodes);
    for (uint32_t i = 0; i < ph->niters; i++) cr_assert_leq(ph->iters[i].enodes, limit + slack);
    tl_graph_free(best);
    tl_opt_free(o);
  }
  tl_graph_free(g);
}
