/* test_cost.c - the cost model and extraction from tlaloc's e-graph: the
 * objective decides what is extracted (matrix-chain order by time, a
 * smaller peak by memory, an energy plugin's choice), every extracted
 * program computes what the original computes (the interpreter is the
 * oracle), the expression parser's errors, the monotonicity check, the
 * placement/transfer properties, the peak-memory measure, and the C API's
 * profile option.
 *
 * Every optimizer here uses the built-in default profile, so the choices do
 * not depend on a profile that `tlaloc calibrate` may have stored. */
#include <criterion/criterion.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "tlaloc.h"
#include "backend/backend.h"
#include "cost/cost.h"
#include "interp/interp.h"
#include "ir/tg.h"
#include "opt/opt.h"
#include "util/util.h"
#include "tests/common/tltest.h"

static tl_profile default_profile(void) {
  tl_profile p;
  tl_profile_default(&p);
  return p;
}

/* An optimizer over the shipped algebraic + stability rules. */
static tl_opt *make_opt(const char *cost, ex_kind kind, const char *plugin, char *err, size_t n) {
  static const char *paths[2] = {TL_SOURCE_DIR "/rules/algebraic.rw", TL_SOURCE_DIR "/rules/stability.rw"};
  tl_profile prof = default_profile();
  tl_opt_params p = tl_opt_defaults();
  p.rule_paths = paths;
  p.nrule_paths = 2;
  p.check = true;
  p.cost = cost;
  p.extract = kind;
  p.extract_seconds = 5;
  p.profile = &prof;
  const char *plugins[1] = {plugin};
  p.plugins = plugins;
  p.nplugins = plugin ? 1 : 0;
  return tl_opt_new(&p, err, n);
}

static tl_opt *must_opt(const char *cost, ex_kind kind, const char *plugin) {
  char err[4096];
  tl_opt *o = make_opt(cost, kind, plugin, err, sizeof err);
  cr_assert(o, "cost '%s': %s", cost, err);
  return o;
}

static tl_graph *parse(const char *src) { return tlt_parse(src, NULL); }

/* Optimises src; returns the program and its text (caller frees both). */
static tl_graph *optimise(tl_opt *o, const tl_graph *g, char **text) {
  tl_error err = {0};
  tl_graph *best = tl_opt_graph(o, g, &err);
  cr_assert(best, "%s", err.msg);
  *text = tl_tg_print(best);
  return best;
}

/* ---- values: the interpreter is the oracle (tltest.h) ------------------------ */

static void expect_same_values_n(const tl_graph *g, const tl_graph *best, const char *what, int seeds) {
  for (uint64_t seed = 1; seed <= (uint64_t)seeds; seed++) {
    tl_tensor *o1[8] = {0}, *o2[8] = {0};
    cr_assert_leq(g->noutputs, 8);
    cr_assert_eq(tlt_run_random(g, seed, 3, o1), 0, "%s", what);
    cr_assert_eq(tlt_run_random(best, seed, 3, o2), 0, "%s optimised", what);
    for (int i = 0; i < g->noutputs; i++) {
      char why[256];
      cr_expect(tlt_close_enough(o1[i], o2[i], why, sizeof why), "%s output %d (seed %llu): %s", what, i,
                (unsigned long long)seed, why);
      tl_tensor_free(o1[i]);
      tl_tensor_free(o2[i]);
    }
  }
}

static void expect_same_values(const tl_graph *g, const tl_graph *best, const char *what) {
  expect_same_values_n(g, best, what, 2);
}

static int count(const char *s, const char *sub) {
  int n = 0;
  for (const char *p = strstr(s, sub); p; p = strstr(p + 1, sub)) n++;
  return n;
}

/* ---- the matrix chain: time picks the cheap association -------------------- */

#define AB_C "(matmul (matmul A B) C)"
#define A_BC "(matmul A (matmul B C))"

/* Minimum run time (ms) of g compiled by the backend on random inputs. */
static double run_ms(const tl_graph *g) {
  tl_error err = {0};
  be_options bo = be_options_default();
  bo.use_cache = 0;
  be_program *prog = be_compile(g, &bo, &err);
  cr_assert(prog, "%s", err.msg);
  tl_tensor *ins[3] = {0}, *outs[1] = {0};
  int64_t syms[1] = {-1}; /* no symbolic dims */
  cr_assert_eq(tl_random_inputs(g, ins, syms, 7, TL_EMSG(&err)), 0, "%s", err.msg);
  double best = INFINITY;
  for (int r = 0; r < 9; r++) {
    double t0 = tl_now_ms();
    cr_assert_eq(be_run(prog, ins, NULL, outs, &err), 0, "%s", err.msg);
    double t = tl_now_ms() - t0;
    if (t < best) best = t;
    tl_tensor_free(outs[0]);
  }
  for (int i = 0; i < 3; i++) tl_tensor_free(ins[i]);
  be_program_free(prog);
  return best;
}

/* dims "A B C" as [m k] [k n] [n p]; written as `written`; the cheap
 * association is `cheap`. */
static void chain_case(const char *shapes, const char *written, const char *cheap, ex_kind kind) {
  char src[512];
  snprintf(src, sizeof src, "(graph chain %s (out D %s))", shapes, written);
  tl_graph *g = parse(src);
  cr_assert(g, "%s", src);
  tl_opt *o = must_opt("time", kind, NULL);
  char *text;
  tl_graph *best = optimise(o, g, &text);
  cr_expect(strstr(text, cheap) != NULL, "%s, written %s, extractor %s: expected %s, got\n%s", shapes,
            written, ex_kind_name(kind), cheap, text);
  expect_same_values_n(g, best, shapes, 1); /* 10^7 multiply-adds in the interpreter */
  tl_free(text);
  tl_graph_free(best);
  tl_graph_free(g);
  tl_opt_free(o);
}

#define WIDE "(in A f32 [10 1000]) (in B f32 [1000 10]) (in C f32 [10 1000])"
#define TALL "(in A f32 [1000 10]) (in B f32 [10 1000]) (in C f32 [1000 10])"

Test(cost, matrix_chain_time_picks_the_cheap_order_both_ways) {
  for (int k = 0; k < EX_KIND_COUNT; k++) {
    /* A B is 10x10: (A B) C is 4e5 flops, A (B C) 4e7 */
    chain_case(WIDE, A_BC, AB_C, (ex_kind)k);
    chain_case(WIDE, AB_C, AB_C, (ex_kind)k);
    /* B C is 10x10: A (B C) is 4e5 flops, (A B) C 4e7 */
    chain_case(TALL, AB_C, A_BC, (ex_kind)k);
    chain_case(TALL, A_BC, A_BC, (ex_kind)k);
  }
}

/* The order time picks is measurably faster when compiled and run. */
Test(cost, matrix_chain_choice_is_measurably_faster) {
  tl_graph *slow = parse("(graph c " WIDE " (out D " A_BC "))");
  cr_assert(slow);
  tl_opt *o = must_opt("time", EX_DAG, NULL);
  char *text;
  tl_graph *fast = optimise(o, slow, &text);
  cr_assert(strstr(text, AB_C), "%s", text);
  double t_slow = run_ms(slow), t_fast = run_ms(fast);
  cr_expect_lt(t_fast * 3, t_slow, "chosen order %.3f ms, written order %.3f ms: not 3x faster", t_fast, t_slow);
  fprintf(stderr, "matrix chain [10x1000][1000x10][10x1000]: A(BC) %.3f ms, (AB)C %.3f ms\n", t_slow, t_fast);
  tl_free(text);
  tl_graph_free(fast);
  tl_graph_free(slow);
  tl_opt_free(o);
}

/* ---- memory: a smaller peak than time's choice ------------------------------- */

/* cost.h's definition of the peak (tl_cost_peak_bytes) computed again here
 * for the extracted programs: nodes run in id order, a value is allocated
 * when computed and freed after its last reader (a value nobody reads, right
 * after it is computed), outputs live to the end; inputs and scalar
 * literals are not counted. */
static double peak_oracle(const tl_graph *g, double sym) {
  int32_t n = g->nnodes;
  int32_t *last = tl_xmalloc(((size_t)n + 1) * sizeof *last);
  bool *keep = tl_xcalloc((size_t)n + 1, 1), *freed = tl_xcalloc((size_t)n + 1, 1);
  double *bytes = tl_xcalloc((size_t)n + 1, sizeof *bytes);
  cr_assert(last && keep && freed && bytes);
  for (int32_t i = 0; i < n; i++) {
    const tl_node *x = &g->nodes[i];
    last[i] = i;
    for (int k = 0; k < x->ninputs; k++) last[tl_node_inputs(g, x)[k]] = i;
    bool scalar_lit = tl_ops[x->op].kind == TL_KIND_CONSTANT && x->type.rank == 0;
    if (x->op == TL_OP_INPUT || scalar_lit) continue;
    double e = (double)tl_dtype_size(x->type.dtype);
    for (int d = 0; d < x->type.rank; d++) e *= x->type.dims[d] < 0 ? sym : (double)x->type.dims[d];
    bytes[i] = e;
  }
  for (int32_t i = 0; i < g->noutputs; i++) keep[g->outputs[i].node] = true;
  double live = 0, peak = 0;
  for (int32_t i = 0; i < n; i++) {
    live += bytes[i];
    if (live > peak) peak = live;
    const tl_node *x = &g->nodes[i];
    for (int k = -1; k < x->ninputs; k++) {
      int32_t v = k < 0 ? i : tl_node_inputs(g, x)[k];
      if (last[v] == i && !keep[v] && !freed[v]) {
        freed[v] = true;
        live -= bytes[v];
      }
    }
  }
  tl_free(last), tl_free(keep), tl_free(freed), tl_free(bytes);
  return peak;
}

/* (A B) C does fewer flops (3.6e6 against 6.9e6) but its intermediate A B
 * (400x25) is bigger than B C (90x90): time and memory disagree. */
Test(cost, memory_picks_a_smaller_peak_than_time) {
  tl_graph *g = parse("(graph m (in A f32 [400 90]) (in B f32 [90 25]) (in C f32 [25 90]) (out D " AB_C "))");
  cr_assert(g);
  double peak[2], mem[2], tim[2];
  const char *costs[2] = {"time", "memory"}, *want[2] = {AB_C, A_BC};
  for (int i = 0; i < 2; i++) {
    tl_opt *o = must_opt(costs[i], EX_DAG, NULL);
    char *text;
    tl_graph *best = optimise(o, g, &text);
    cr_expect(strstr(text, want[i]) != NULL, "cost %s: expected %s, got\n%s", costs[i], want[i], text);
    const tl_opt_cost_report *c = tl_opt_cost(o);
    cr_assert(c);
    peak[i] = c->peak_bytes;
    cr_expect_eq(peak[i], peak_oracle(best, 1024));
    mem[i] = c->totals[tl_cost_find(tl_opt_costs(o), "memory")];
    tim[i] = c->totals[tl_cost_find(tl_opt_costs(o), "time")];
    expect_same_values(g, best, costs[i]);
    tl_free(text);
    tl_graph_free(best);
    tl_opt_free(o);
  }
  /* (A B) C: A B and D live at once: (400*25 + 400*90) * 4 bytes */
  cr_expect_eq(peak[0], (400.0 * 25 + 400 * 90) * 4);
  cr_expect_eq(peak[1], (90.0 * 90 + 400 * 90) * 4);
  cr_expect_lt(peak[1], peak[0]);
  cr_expect_lt(mem[1], mem[0]);
  cr_expect_lt(tim[0], tim[1]);
  tl_graph_free(g);
}

/* ---- the energy plugin --------------------------------------------------------- */

/* A [512 40], B [40 10], C [10 25]. (A B) C: 665600 flops, 176680 bytes
 * moved; A (B C): 1044000 flops, 143720 bytes. The time roofline (GEMM at
 * 75 GFLOP/s, 15.5 GB/s: both orders compute-bound) prefers the first by
 * 13%, the energy model (2 pJ per flop, 64 pJ per byte) the second by 12%. */
#define ENERGY_G "(graph e (in A f32 [512 40]) (in B f32 [40 10]) (in C f32 [10 25]) (out D " AB_C "))"

Test(cost, energy_plugin_changes_what_is_extracted) {
  tl_graph *g = parse(ENERGY_G);
  cr_assert(g);
  const char *costs[2] = {"time", "energy"}, *want[2] = {AB_C, A_BC};
  double energy[2];
  for (int i = 0; i < 2; i++) {
    tl_opt *o = must_opt(costs[i], EX_DAG, TL_ENERGY_PLUGIN);
    char *text;
    tl_graph *best = optimise(o, g, &text);
    cr_expect(strstr(text, want[i]) != NULL, "cost %s: expected %s, got\n%s", costs[i], want[i], text);
    int id = tl_cost_find(tl_opt_costs(o), "energy");
    cr_assert_geq(id, 0);
    energy[i] = tl_opt_cost(o)->totals[id];
    expect_same_values(g, best, costs[i]);
    tl_free(text);
    tl_graph_free(best);
    tl_opt_free(o);
  }
  cr_expect_lt(energy[1], energy[0]);
  /* 2 pJ * 1044000 flops + 64 pJ * 143720 bytes */
  cr_expect_float_eq(energy[1], (2.0 * 1044000 + 64.0 * 143720) * 1e-12, 1e-18);
  tl_graph_free(g);
}

Test(cost, plugin_errors) {
  char err[1024];
  tl_opt *o = make_opt("time", EX_DAG, "/nonexistent/p.so", err, sizeof err);
  cr_expect_null(o);
  cr_expect(strstr(err, "plugin /nonexistent/p.so: cannot load it") != NULL, "%s", err);
  o = make_opt("time", EX_DAG, "libm.so.6", err, sizeof err);
  cr_expect_null(o);
  cr_expect(strstr(err, "plugin libm.so.6: has no 'tlaloc_plugin_init'") != NULL, "%s", err);
  /* without the plugin, its property is unknown */
  o = make_opt("energy", EX_DAG, NULL, err, sizeof err);
  cr_expect_null(o);
  cr_expect(strstr(err, "unknown property 'energy'") != NULL, "%s", err);
}

/* Two optimizers with the plugin on two threads (each its own registry). */
static void *plugin_worker(void *arg) {
  const char *cost = arg;
  tl_error err = {0};
  long ok = 1;
  for (int rep = 0; rep < 3 && ok; rep++) {
    tl_opt *o = make_opt(cost, EX_DAG, TL_ENERGY_PLUGIN, TL_EMSG(&err));
    tl_graph *g = parse(ENERGY_G);
    tl_graph *best = o && g ? tl_opt_graph(o, g, &err) : NULL;
    char *text = best ? tl_tg_print(best) : NULL;
    ok = text && strstr(text, strcmp(cost, "energy") == 0 ? A_BC : AB_C) != NULL;
    tl_free(text);
    tl_graph_free(best);
    tl_graph_free(g);
    tl_opt_free(o);
  }
  return (void *)ok;
}

Test(cost, two_registries_on_two_threads) {
  pthread_t t[2];
  const char *costs[2] = {"energy", "time"};
  for (int i = 0; i < 2; i++) pthread_create(&t[i], NULL, plugin_worker, (void *)costs[i]);
  for (int i = 0; i < 2; i++) {
    void *r;
    pthread_join(t[i], &r);
    cr_expect(r == (void *)1, "thread %d (cost %s) extracted the wrong program", i, costs[i]);
  }
}

/* ---- every example, every extractor, several objectives ------------------------ */

typedef struct sweep {
  tl_opt *o[3 * EX_KIND_COUNT];
  const char *what[3 * EX_KIND_COUNT];
  int n;
} sweep;

static void example_all_objectives(const char *name, const char *src, size_t len, void *ctx) {
  (void)len;
  sweep *s = ctx;
  tl_graph *g = parse(src);
  cr_assert(g, "%s", name);
  for (int i = 0; i < s->n; i++) {
    char what[256];
    tl_error err = {0};
    snprintf(what, sizeof what, "%s under %s", name, s->what[i]);
    tl_graph *best = tl_opt_graph(s->o[i], g, &err);
    cr_assert(best, "%s: %s", what, err.msg);
    const tl_opt_cost_report *c = tl_opt_cost(s->o[i]);
    cr_assert(c);
    /* the extractor's DAG cost is the rebuilt program's objective */
    cr_expect(fabs(c->dag_cost - c->objective_total) <= 1e-9 * fabs(c->dag_cost) + 1e-12,
              "%s: extractor cost %.17g, program cost %.17g", what, c->dag_cost, c->objective_total);
    expect_same_values(g, best, what);
    tl_graph_free(best);
  }
  tl_graph_free(g);
}

Test(cost, every_example_under_every_extractor_keeps_its_value, .timeout = 240) {
  sweep s = {.n = 0};
  static const char *costs[3] = {TL_COST_DEFAULT, "memory", "ops"};
  static char labels[3 * EX_KIND_COUNT][64];
  for (int c = 0; c < 3; c++)
    for (int k = 0; k < EX_KIND_COUNT; k++) {
      s.o[s.n] = must_opt(costs[c], (ex_kind)k, NULL);
      snprintf(labels[s.n], sizeof labels[s.n], "cost '%s', %s", costs[c], ex_kind_name((ex_kind)k));
      s.what[s.n] = labels[s.n];
      s.n++;
    }
  cr_expect_geq(tlt_each_tg(TL_SOURCE_DIR "/examples", example_all_objectives, &s), 12);
  for (int i = 0; i < s.n; i++) tl_opt_free(s.o[i]);
}

/* The DAG extractor counts a shared subexpression once: x*y is used twice,
 * and tree-greedy's choice is never cheaper in DAG cost. */
Test(cost, dag_is_never_worse_than_tree) {
  tl_graph *g = parse("(graph s (in x f32 [64 64]) (in y f32 [64 64]) "
                      "(let p (exp (mul x y))) (out a (add p 1)) (out b (mul p 2)))");
  cr_assert(g);
  double cost[EX_KIND_COUNT];
  for (int k = 0; k < EX_KIND_COUNT; k++) {
    tl_opt *o = must_opt(TL_COST_DEFAULT, (ex_kind)k, NULL);
    char *text;
    tl_graph *best = optimise(o, g, &text);
    cost[k] = tl_opt_cost(o)->dag_cost;
    cr_expect_eq(count(text, "(exp"), 1, "exp computed once: %s", text);
    expect_same_values(g, best, ex_kind_name((ex_kind)k));
    tl_free(text);
    tl_graph_free(best);
    tl_opt_free(o);
  }
  cr_expect_leq(cost[EX_DAG], cost[EX_TREE] + 1e-15);
  cr_expect_leq(cost[EX_EXACT], cost[EX_DAG] + 1e-15);
  tl_graph_free(g);
}

/* ---- the objective's parser ------------------------------------------------------ */

Test(cost, expression_parser_errors) {
  tl_profile prof = default_profile();
  tl_cost_registry *r = tl_cost_registry_new(&prof, 1024);
  struct { const char *text, *msg; } bad[] = {
    {"", "cost expression '': column 1: expected a property, a number or '(' at the end"},
    {"time +", "cost expression 'time +': column 7: expected a property, a number or '(' at the end"},
    {"time +* 2", "cost expression 'time +* 2': column 7: expected a property, a number or '(', not '*'"},
    {"tme", "cost expression 'tme': column 1: unknown property 'tme' (properties: placement, flops, "
            "bytes, time, memory, transfer, accuracy, code)"},
    {"time + 1e-9*memroy", "column 13: unknown property 'memroy'"},
    {"(time + memory", "cost expression '(time + memory': column 15: expected ')' to close the '(' of column 1"},
    {"time memory", "cost expression 'time memory': column 6: unexpected 'm' (expected + - * / or the end)"},
    {"time)", "column 5: unexpected ')'"},
    {"2 $ time", "column 3: unexpected '$'"},
    {"1e999", "column 1: number out of range"},
  };
  for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
    char err[512] = "";
    tl_cost_expr *e = tl_cost_expr_parse(r, bad[i].text, err, sizeof err);
    cr_expect_null(e, "'%s' parsed", bad[i].text);
    cr_expect(strstr(err, bad[i].msg) != NULL, "'%s': got \"%s\", want \"%s\"", bad[i].text, err, bad[i].msg);
    tl_cost_expr_free(e);
  }
  char deep[400];
  memset(deep, '(', 100);
  snprintf(deep + 100, sizeof deep - 100, "time");
  char err[512];
  cr_expect_null(tl_cost_expr_parse(r, deep, err, sizeof err));
  cr_expect(strstr(err, "nested too deeply") != NULL, "%s", err);
  tl_cost_registry_free(r);
}

Test(cost, expression_values) {
  tl_profile prof = default_profile();
  tl_cost_registry *r = tl_cost_registry_new(&prof, 1024);
  double props[TL_COST_MAX_PROPS] = {0};
  props[tl_cost_find(r, "time")] = 3;
  props[tl_cost_find(r, "memory")] = 8;
  props[tl_cost_find(r, "flops")] = 5;
  struct { const char *text; double want; } ok[] = {
    {"time", 3}, {"time + 1e-9*memory", 3 + 8e-9}, {"2*(time + 3) - -memory/4", 14},
    {"-time*-2", 6}, {"time - memory - flops", -10}, {"memory / flops / 2", 0.8},
    {"  ( ( time ) )  ", 3}, {".5*memory", 4},
  };
  for (size_t i = 0; i < sizeof ok / sizeof *ok; i++) {
    char err[512];
    tl_cost_expr *e = tl_cost_expr_parse(r, ok[i].text, err, sizeof err);
    cr_assert(e, "'%s': %s", ok[i].text, err);
    cr_expect_float_eq(tl_cost_expr_eval(e, props), ok[i].want, 1e-12, "'%s'", ok[i].text);
    tl_cost_expr_free(e);
  }
  tl_cost_registry_free(r);
}

/* ---- the registry ---------------------------------------------------------------- */

static double zero_fn(const tl_cost_node *n, void *u) {
  (void)n;
  (void)u;
  return 0;
}

Test(cost, registry_errors) {
  tl_profile prof = default_profile();
  tl_cost_registry *r = tl_cost_registry_new(&prof, 1024);
  char err[256];
  cr_expect_eq(tl_cost_add_property(r, "time", TL_PROP_COST, zero_fn, NULL, err, sizeof err), -1);
  cr_expect_str_eq(err, "cost property 'time' is already registered");
  cr_expect_eq(tl_cost_add_property(r, "2x", TL_PROP_COST, zero_fn, NULL, err, sizeof err), -1);
  cr_expect(strstr(err, "cost property name '2x' is not a name") != NULL, "%s", err);
  cr_expect_eq(tl_cost_register(r, "nope", "exp", zero_fn, NULL, err, sizeof err), -1);
  cr_expect_str_eq(err, "cost function for unknown property 'nope'");
  cr_expect_eq(tl_cost_register(r, "time", "expo", zero_fn, NULL, err, sizeof err), -1);
  cr_expect_str_eq(err, "cost function for property 'time': unknown op 'expo'");
  cr_expect_eq(tl_cost_register(r, "time", "exp", zero_fn, NULL, err, sizeof err), 0);
  int id = tl_cost_add_property(r, "mine", TL_PROP_COST, zero_fn, NULL, err, sizeof err);
  cr_expect_eq(id, 8);
  cr_expect_eq(tl_cost_nprops(r), 9);
  cr_expect_str_eq(tl_cost_prop_name(r, id), "mine");
  tl_cost_registry_free(r);
}

/* A cost function that is cheaper when its operands are dearer breaks the
 * contract; the optimizer (check on) names the property and the op. */
static double backwards(const tl_cost_node *n, void *u) {
  (void)u;
  double c = 10;
  for (int k = 0; k < n->nin; k++) c -= n->in[k][7];
  return c;
}

static double forwards(const tl_cost_node *n, void *u) {
  (void)u;
  double c = 1;
  for (int k = 0; k < n->nin; k++) c += 2 * n->in[k][7];
  return c;
}

Test(cost, monotonicity_violation_is_caught) {
  tl_opt *o = must_opt("time", EX_DAG, NULL);
  tl_cost_registry *r = tl_opt_costs(o);
  tl_error err = {0};
  int id = tl_cost_add_property(r, "weird", TL_PROP_COST, forwards, NULL, TL_EMSG(&err));
  cr_assert_eq(id, 9, "%s", err.msg); /* after the built-ins and `ops` */
  cr_assert_eq(tl_cost_register(r, "weird", "exp", backwards, NULL, TL_EMSG(&err)), 0, "%s", err.msg);
  cr_assert_eq(tl_opt_set_cost(o, "time + weird", TL_EMSG(&err)), 0, "%s", err.msg);
  tl_graph *g = parse("(graph g (in x f32 [4]) (out y (neg (exp x))))");
  /* the function reads property 7 (`ops` here) as "its operands' cost" */
  tl_graph *best = tl_opt_graph(o, g, &err);
  cr_expect_null(best);
  cr_expect(strstr(err.msg, "cost function for property 'weird' of op 'exp' is not monotone") != NULL, "%s", err.msg);
  /* a monotone function is accepted */
  cr_assert_eq(tl_cost_register(r, "weird", "exp", forwards, NULL, TL_EMSG(&err)), 0, "%s", err.msg);
  best = tl_opt_graph(o, g, &err);
  cr_expect(best, "%s", err.msg);
  tl_graph_free(best);
  tl_graph_free(g);
  tl_opt_free(o);
}

static double nan_fn(const tl_cost_node *n, void *u) {
  (void)n;
  (void)u;
  return NAN;
}

Test(cost, non_finite_costs_are_errors) {
  tl_opt *o = must_opt("time / memory", EX_DAG, NULL);
  tl_graph *g = parse("(graph g (in x f32 [4]) (out y (exp x)))");
  tl_error err = {0};
  /* an input materialises nothing: time / memory is 0/0 there */
  cr_expect_null(tl_opt_graph(o, g, &err));
  cr_expect(strstr(err.msg, "cost expression 'time / memory' is NaN on op 'in'") != NULL, "%s", err.msg);
  cr_assert_eq(tl_cost_add_property(tl_opt_costs(o), "bad", TL_PROP_COST, nan_fn, NULL, TL_EMSG(&err)), 9);
  cr_assert_eq(tl_opt_set_cost(o, "time", TL_EMSG(&err)), 0);
  cr_expect_null(tl_opt_graph(o, g, &err));
  cr_expect(strstr(err.msg, "cost property 'bad' of op 'in' is NaN") != NULL, "%s", err.msg);
  tl_graph_free(g);
  tl_opt_free(o);
}

/* ---- placement and transfer -------------------------------------------------------- */

static double on_device(const tl_cost_node *n, void *u) {
  (void)n;
  (void)u;
  return 1;
}

/* With matmul placed on a device (value 1), a matmul pays for moving its
 * host operands there and its host consumer pays for moving the product
 * back: three copies over the link, of 4*8*16, 4*16*4 and 4*8*4 bytes. */
Test(cost, placement_drives_transfer) {
  tl_opt *o = must_opt("time", EX_DAG, NULL);
  tl_cost_registry *r = tl_opt_costs(o);
  char err[1024];
  cr_assert_eq(tl_cost_register(r, "placement", "matmul", on_device, NULL, err, sizeof err), 0, "%s", err);
  tl_graph *g = parse("(graph t (in A f32 [8 16]) (in B f32 [16 4]) (out y (neg (matmul A B))))");
  char *text;
  tl_graph *best = optimise(o, g, &text);
  double transfer = tl_opt_cost(o)->totals[tl_cost_find(r, "transfer")];
  const tl_profile *p = tl_cost_profile(r);
  double want = 3 * p->link_latency + (4.0 * (8 * 16 + 16 * 4) + 4.0 * 8 * 4) / p->link_bw;
  cr_expect_float_eq(transfer, want, 1e-12 * want, "transfer %g s, expected %g", transfer, want);
  tl_free(text);
  tl_graph_free(best);
  tl_graph_free(g);
  tl_opt_free(o);
}

Test(cost, transfer_is_zero_on_the_host) {
  tl_opt *o = must_opt("time", EX_DAG, NULL);
  tl_graph *g = parse("(graph t (in A f32 [8 16]) (in B f32 [16 4]) (out y (neg (matmul A B))))");
  char *text;
  tl_graph *best = optimise(o, g, &text);
  cr_expect_eq(tl_opt_cost(o)->totals[tl_cost_find(tl_opt_costs(o), "transfer")], 0);
  tl_free(text);
  tl_graph_free(best);
  tl_graph_free(g);
  tl_opt_free(o);
}

/* ---- built-in properties on known nodes ----------------------------------------------- */

Test(cost, builtin_properties_of_a_program) {
  tl_profile prof = default_profile();
  tl_cost_registry *r = tl_cost_registry_new(&prof, 1024);
  /* exp is fused into the sum: it reads x (4096 B), does 1024 transcendental
   * elements, writes nothing; the sum reads 1024 floats and writes one */
  tl_graph *g = parse("(graph p (in x f32 [1024]) (out s (sum (exp x))))");
  cr_assert(g);
  double totals[TL_COST_MAX_PROPS], obj, peak;
  char err[256];
  cr_assert_eq(tl_cost_graph(r, NULL, g, NULL, totals, &obj, &peak, err, sizeof err), 0, "%s", err);
  cr_expect_float_eq(totals[tl_cost_find(r, "bytes")], 4096.0 + 4096 + 4, 1e-9);
  cr_expect_float_eq(totals[tl_cost_find(r, "flops")], 1024.0 + 1024, 1e-9);
  cr_expect_float_eq(totals[tl_cost_find(r, "memory")], 4096.0 + 4, 1e-9);
  cr_expect_float_eq(totals[tl_cost_find(r, "accuracy")], 1.0, 1e-12);
  /* exp: 0.5 ns per element, no kernel of its own; sum: one kernel */
  double t_exp = 1024 * 0.5e-9, t_sum = prof.kernel_overhead + fmax(4100 / prof.bw_1, 1024 / prof.flops_1);
  cr_expect_float_eq(totals[tl_cost_find(r, "time")], t_exp + t_sum, 1e-15);
  /* exp's result (4096 B) and the sum (4 B) are live together */
  cr_expect_float_eq(peak, 4096.0 + 4, 1e-9);
  tl_graph_free(g);
  tl_cost_registry_free(r);
}

Test(cost, peak_bytes_frees_after_the_last_reader) {
  /* a = exp x (400 B); b = neg a (400 B, a dies); c = sum b (4 B, b dies);
   * d = add c 1 (4 B). Peak: a and b together = 800 B. */
  tl_graph *g = parse("(graph p (in x f32 [100]) (let a (exp x)) (let b (neg a)) (out d (add (sum b) 1)))");
  cr_assert(g);
  cr_expect_float_eq(tl_cost_peak_bytes(g, 1024), 800.0, 1e-9);
  cr_expect_float_eq(peak_oracle(g, 1024), 800.0, 1e-9, "the oracle agrees with the hand count");
  /* symbolic dims count as sym_size elements */
  tl_graph *h = parse("(graph q (in x f64 [n]) (out y (exp x)))");
  cr_assert(h);
  cr_expect_float_eq(tl_cost_peak_bytes(h, 10), 80.0, 1e-9);
  cr_expect_float_eq(peak_oracle(h, 10), 80.0, 1e-9);
  tl_graph_free(g);
  tl_graph_free(h);
}

/* ---- tlaloc_opt_options.profile: a profile file for one optimization ---- */

static double program_time(const char *stats) {
  const char *p = strstr(stats, "\"program\"");
  cr_assert(p, "%s", stats);
  p = strstr(p, "\"time\": ");
  cr_assert(p, "%s", stats);
  return strtod(p + 8, NULL);
}

static tlaloc_status optimize_with_profile(const tlaloc_graph *g, const char *profile, char **stats,
                                           char **err) {
  tlaloc_opt_options o;
  memset(&o, 0, sizeof o);
  o.profile = profile;
  tlaloc_graph *out = NULL;
  tlaloc_status st = tlaloc_optimize_opts(g, &o, &out, stats, err);
  if (out) tlaloc_graph_free(out);
  return st;
}

static void write_text(const char *path, const char *text) {
  FILE *f = fopen(path, "w");
  cr_assert(f, "%s", path);
  fputs(text, f);
  fclose(f);
}

Test(cost, api_profile_option) {
  const char *src = "(graph m (in A f32 [400 90]) (in B f32 [90 25]) (out D (matmul A B)))";
  tlaloc_graph *g = NULL;
  char *err = NULL, *stats = NULL;
  cr_assert_eq(tlaloc_parse(src, strlen(src), "<api>", &g, &err), TLALOC_OK, "%s", err);
  tlaloc_free(err);
  char dir[] = "/tmp/tl-cost-profile-XXXXXX";
  cr_assert(mkdtemp(dir));
  char fast[64], slow[64], bad[64], missing[64];
  snprintf(fast, sizeof fast, "%s/fast.txt", dir);
  snprintf(slow, sizeof slow, "%s/slow.txt", dir);
  snprintf(bad, sizeof bad, "%s/bad.txt", dir);
  snprintf(missing, sizeof missing, "%s/missing.txt", dir);
  write_text(fast, "# a machine with a fast GEMM\ngemm_f32 1e12\n");
  write_text(slow, "gemm_f32 1e6\n");
  write_text(bad, "bogus 1\n");
  /* the profile given is the one the cost model reads */
  cr_assert_eq(optimize_with_profile(g, fast, &stats, &err), TLALOC_OK, "%s", err);
  double t_fast = program_time(stats);
  tlaloc_free(stats);
  tlaloc_free(err);
  cr_assert_eq(optimize_with_profile(g, slow, &stats, &err), TLALOC_OK, "%s", err);
  double t_slow = program_time(stats);
  tlaloc_free(stats);
  tlaloc_free(err);
  cr_expect_gt(t_slow, 100 * t_fast, "slow %g, fast %g", t_slow, t_fast);
  /* a missing or malformed file is an error */
  cr_expect_eq(optimize_with_profile(g, missing, &stats, &err), TLALOC_BAD_INPUT);
  cr_expect(err && strstr(err, "no such file"), "%s", err ? err : "(none)");
  tlaloc_free(stats);
  tlaloc_free(err);
  cr_expect_eq(optimize_with_profile(g, bad, &stats, &err), TLALOC_BAD_INPUT);
  cr_expect(err && strstr(err, "unknown key 'bogus'"), "%s", err ? err : "(none)");
  tlaloc_free(stats);
  tlaloc_free(err);
  remove(fast);
  remove(slow);
  remove(bad);
  rmdir(dir);
  tlaloc_graph_free(g);
}
