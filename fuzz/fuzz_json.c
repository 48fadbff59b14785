/* fuzz_json.c - the egraph-serialize JSON reader, then the extractors on
 * what it accepts. Properties: a refusal has a message naming the input;
 * tree and dag agree on feasibility; every choice passes ex_check and its
 * reported costs are the costs of the choice; with non-negative costs the
 * tree extractor's tree cost is optimal (no other choice has a lower one),
 * and on tiny graphs the exact extractor's proved optimum is no worse than
 * dag's. */
#include "fuzz/fuzz.h"
#include "extract/extract.h"

#include <math.h>
#include <string.h>

int LLVMFuzzerInitialize(int *argc, char ***argv) {
  (void)argc, (void)argv;
  return 0;
}

/* a <= b up to rounding (costs are sums of doubles in different orders) */
static bool leq(double a, double b) {
  return a <= b || fabs(a - b) <= 1e-9 * fmax(fabs(a), fabs(b)) || (isinf(a) && isinf(b));
}

static bool same(double a, double b) { return leq(a, b) && leq(b, a); }

static void check_result(const ex_graph *g, const ex_result *r, const char *what) {
  tl_error d;
  if (ex_check(g, r->choice, &d) != EX_OK) FUZZ_FAIL("%s: invalid choice: %s", what, d.msg);
  double dc = ex_dag_cost(g, r->choice), tc = ex_tree_cost(g, r->choice);
  if (!same(dc, r->dag_cost)) FUZZ_FAIL("%s: dag cost %.17g, the choice costs %.17g", what, r->dag_cost, dc);
  if (!isnan(tc) && !same(tc, r->tree_cost))
    FUZZ_FAIL("%s: tree cost %.17g, the choice costs %.17g", what, r->tree_cost, tc);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  ex_graph *g;
  tl_error d;
  ex_status st = ex_read_json_buf((const char *)data, size, "fuzz.json", &g, &d);
  if (st != EX_OK) {
    if (strncmp(d.msg, "fuzz.json", 9) != 0) FUZZ_FAIL("refused without naming the input: '%s'", d.msg);
    return 0;
  }
  ex_params p = ex_params_default();
  ex_result rt = {0}, rd = {0};
  ex_status st_t = ex_extract(g, EX_TREE, p, &rt, &d);
  ex_status st_d = ex_extract(g, EX_DAG, p, &rd, &d);
  if ((st_t == EX_ERR_INFEASIBLE) != (st_d == EX_ERR_INFEASIBLE))
    FUZZ_FAIL("tree says %d, dag says %d on feasibility", (int)st_t, (int)st_d);
  if (st_t == EX_OK) check_result(g, &rt, "tree");
  if (st_d == EX_OK) check_result(g, &rd, "dag");
  if (st_t == EX_OK && st_d == EX_OK && !g->has_negative && !leq(rt.tree_cost, rd.tree_cost))
    FUZZ_FAIL("tree's tree cost %.17g is above dag's choice's %.17g", rt.tree_cost, rd.tree_cost);
  if (st_d == EX_OK && g->n_nodes <= 12) {
    ex_result rx = {0};
    p.time_limit_s = 2;
    if (ex_extract(g, EX_EXACT, p, &rx, &d) == EX_OK) {
      check_result(g, &rx, "exact");
      if (rx.optimal && !leq(rx.dag_cost, rd.dag_cost))
        FUZZ_FAIL("exact's optimum %.17g is above dag's %.17g", rx.dag_cost, rd.dag_cost);
      ex_result_free(&rx);
    }
  }
  ex_result_free(&rt);
  ex_result_free(&rd);
  ex_graph_free(g);
  return 0;
}
